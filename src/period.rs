//! Monthly billing periods in the site's IANA time zone.
//!
//! A period is a calendar month: it starts at local midnight on the 1st and ends (exclusive) at
//! local midnight on the 1st of the next month. Both instants are written in RFC 3339 with the
//! UTC offset in force at that instant, so a March period in Europe/Berlin starts at `+01:00` and
//! ends at `+02:00` (the clocks changed in between).
//!
//! ```
//! use waldur_usage::period;
//!
//! let now: jiff::Timestamp = "2024-06-15T12:00:00Z".parse().unwrap();
//! let p = period::month_period("Europe/Berlin", 2024, 3, now).unwrap();
//! assert_eq!(p.period, "2024-03");
//! assert_eq!(p.start, "2024-03-01T00:00:00+01:00");
//! assert_eq!(p.end, "2024-04-01T00:00:00+02:00");
//! assert!(p.closed);
//! ```
//!
//! This room owns [`Period`], the month itself, and what is computed from it: parsing the
//! command line's months, days and instants (`parse`), numbered ranges of month records
//! (`range`), the site's and the server's zones (`zones`), the window of a period record
//! (`window`). It must not know sacct, config files or the Waldur API; it writes
//! [`MonthRecord`]s but never reads or writes a stream.

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::records::MonthRecord;

mod error;
mod parse;
mod range;
mod window;
mod zones;

#[cfg(test)]
mod tests;

pub use error::PeriodError;
pub use parse::{check_instant, now, parse_bound, parse_date, parse_instant, parse_month};
pub use range::{current_and_previous, month_period, months_before, periods_between, split_range};
pub use window::{Window, whole_month, window};
pub use zones::{BillingZones, CLOCK_MARGIN_SECONDS, Standing, zone};

/// The longest range one run may cover, in months (10 years).
pub const MAX_MONTHS: usize = 120;

/// Years a billing month may lie in: from the Unix epoch to the year before jiff's last,
/// so that every month has a successor.
pub const YEARS: std::ops::RangeInclusive<i16> = 1970..=9998;

/// A calendar month: the unit Waldur bills in. The one month type of all four tools.
///
/// A month has no zone of its own; its instants depend on where it is seen from. The site's
/// `timezone` decides which jobs belong to it (`month-split`, `slurm-usage`), the Waldur
/// server's `TIME_ZONE` decides which month a POST is filed under ([`BillingZones`]).
///
/// ```
/// use waldur_usage::period::Period;
///
/// let march: Period = "2024-03".parse().unwrap();
/// assert_eq!(march.billing_period(), "2024-03-01");
/// assert_eq!(march.next().to_string(), "2024-04");
/// let tallinn = jiff::tz::TimeZone::get("Europe/Tallinn").unwrap();
/// let (start, end) = march.bounds(&tallinn);
/// assert_eq!(start.to_string(), "2024-02-29T22:00:00Z");
/// assert_eq!(end.to_string(), "2024-03-31T21:00:00Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i16,
    month: i8,
}

impl Period {
    /// The month `year`-`month`, if the year is in [`YEARS`] and the month in 1..=12.
    pub fn new(year: i16, month: i8) -> Option<Period> {
        (YEARS.contains(&year) && (1..=12).contains(&month)).then_some(Period { year, month })
    }

    /// Parse `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError::BadMonth(text.to_string());
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if (1..=12).contains(&month) && !YEARS.contains(&year) {
            return Err(PeriodError::OutOfRange {
                what: format!("{text:?}"),
                year,
            });
        }
        Period::new(year, month).ok_or_else(bad)
    }

    /// The month that `at` falls in, seen from `tz`.
    pub fn containing(at: Timestamp, tz: &TimeZone) -> Period {
        let date = at.to_zoned(tz.clone()).date();
        Period {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The year.
    pub fn year(&self) -> i16 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(&self) -> i8 {
        self.month
    }

    /// The month after this one.
    pub fn next(&self) -> Period {
        let (year, month) = next_month(self.year, self.month);
        Period { year, month }
    }

    /// The month before this one.
    pub fn previous(&self) -> Period {
        if self.month == 1 {
            Period {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Period {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Its first day.
    pub fn first_day(&self) -> Date {
        jiff::civil::date(self.year, self.month, 1)
    }

    /// Waldur's `billing_period`: the first day of the month, `YYYY-MM-01`.
    pub fn billing_period(&self) -> String {
        format!("{:04}-{:02}-01", self.year, self.month)
    }

    /// Local midnight of the 1st in `tz` (the earlier instant if midnight repeats, the first
    /// instant after the gap if it is skipped).
    pub fn start(&self, tz: &TimeZone) -> Zoned {
        self.first_day()
            .to_zoned(tz.clone())
            .expect("midnight of a day between 1970 and 9999 exists in every zone")
    }

    /// `[start, end)` of the month in `tz`.
    pub fn bounds(&self, tz: &TimeZone) -> (Timestamp, Timestamp) {
        (
            self.start(tz).timestamp(),
            self.next().start(tz).timestamp(),
        )
    }

    /// True when the whole month lies before `now`, seen from `tz`.
    pub fn is_closed(&self, tz: &TimeZone, now: Timestamp) -> bool {
        self.bounds(tz).1 <= now
    }

    /// True when the month has begun at `now`, seen from `tz`.
    pub fn has_started(&self, tz: &TimeZone, now: Timestamp) -> bool {
        self.bounds(tz).0 <= now
    }

    /// The `period` record of this month in `tz_name`; `index`/`count` are 1/1.
    pub fn record(&self, tz_name: &str, now: Timestamp) -> Result<MonthRecord, PeriodError> {
        let tz = zone(tz_name)?;
        let start = self.start(&tz);
        let end = self.next().start(&tz);
        Ok(MonthRecord {
            period: self.to_string(),
            start: rfc3339(&start),
            end: rfc3339(&end),
            timezone: tz_name.to_string(),
            index: 1,
            count: 1,
            closed: end.timestamp() <= now,
        })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Period, PeriodError> {
        Period::parse(s)
    }
}

/// Format an instant in `zoned`'s offset as RFC 3339, e.g. `2024-03-01T00:00:00+01:00`.
pub fn rfc3339(zoned: &Zoned) -> String {
    zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn next_month(year: i16, month: i8) -> (i16, i8) {
    if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    }
}

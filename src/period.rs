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

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use crate::records::MonthRecord;

/// The longest range one run may cover, in months (10 years).
pub const MAX_MONTHS: usize = 120;

/// Why a period could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodError {
    /// A month was not written as `YYYY-MM`.
    BadMonth(String),
    /// A date was not written as `YYYY-MM-DD`.
    BadDate(String),
    /// The time zone is not a known IANA name.
    UnknownZone(String),
    /// The range ends before it starts.
    EndBeforeStart {
        /// First day.
        start: String,
        /// Last day.
        end: String,
    },
    /// The range covers more than [`MAX_MONTHS`] months.
    RangeTooLong {
        /// How many months it covers.
        months: usize,
    },
    /// A period record's instants could not be read, or time arithmetic overflowed.
    Time(String),
    /// A month or an instant lies outside [`YEARS`].
    OutOfRange {
        /// What it is (`--now`, `the clock`, a month as written).
        what: String,
        /// Its year.
        year: i16,
    },
}

impl fmt::Display for PeriodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeriodError::BadMonth(s) => {
                write!(f, "{s:?} is not a month; write it as YYYY-MM, e.g. 2024-03")
            }
            PeriodError::BadDate(s) => write!(
                f,
                "{s:?} is not a date; write it as YYYY-MM-DD, e.g. 2024-03-31"
            ),
            PeriodError::UnknownZone(s) => write!(
                f,
                "unknown time zone {s:?}; use an IANA name such as Europe/Tallinn or UTC (is tzdata installed?)"
            ),
            PeriodError::EndBeforeStart { start, end } => {
                write!(f, "the end date {end} is before the start date {start}")
            }
            PeriodError::RangeTooLong { months } => write!(
                f,
                "the range covers {months} months, more than the limit of {MAX_MONTHS} (10 years); \
                 split it into several runs of at most 10 years each"
            ),
            PeriodError::Time(s) => write!(f, "{s}"),
            PeriodError::OutOfRange { what, year } => write!(
                f,
                "{what} lies in the year {year}: the tools bill months from 1970 to 9998 only \
                 (check the value, or the system clock)"
            ),
        }
    }
}

impl std::error::Error for PeriodError {}

/// Years a billing month may lie in: from the Unix epoch to the year before jiff's last,
/// so that every month has a successor.
pub const YEARS: std::ops::RangeInclusive<i16> = 1970..=9998;

/// How far behind "now" the `date` of current-month usage is set, so that a server whose
/// clock is a little behind ours never sees a date in its future.
pub const CLOCK_MARGIN_SECONDS: i64 = 300;

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

/// Where a month stands on the Waldur server at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It is the server's current month: usage dated now is filed under it.
    Current,
    /// The server has moved past it: only a staff token, on a server that honours `date`, can
    /// still write it.
    Past {
        /// The server's current month.
        server: Period,
    },
    /// The server has not reached it yet: anything sent now would be filed under `server`.
    Future {
        /// The server's current month.
        server: Period,
    },
}

/// The two clocks a billing month is read from: the site's `timezone` (which jobs belong to a
/// month) and the Waldur server's `TIME_ZONE` (which month a POST is filed under).
///
/// At 00:30 on April 1st in Tallinn a UTC server is still in March: April's first usage
/// would land in March. At 21:00 on March 31st in New York a UTC server is already in April.
///
/// ```
/// use waldur_usage::period::{BillingZones, Period, Standing};
///
/// let zones = BillingZones::new("Europe/Tallinn", "UTC").unwrap();
/// let now: jiff::Timestamp = "2024-03-31T21:30:00Z".parse().unwrap(); // 00:30 in Tallinn
/// assert_eq!(zones.site_month(now).to_string(), "2024-04");
/// assert_eq!(zones.server_month(now).to_string(), "2024-03");
/// let april: Period = "2024-04".parse().unwrap();
/// let march = april.previous();
/// assert_eq!(zones.standing(march, now), Standing::Current);
/// assert_eq!(zones.standing(april, now), Standing::Future { server: march });
/// assert_eq!(zones.current_date(march, now), "2024-03-31T21:25:00Z");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BillingZones {
    /// The site's zone name (the config's `timezone`).
    pub site_name: String,
    /// The site's zone.
    pub site: TimeZone,
    /// The server's zone name (`waldur_timezone`, UTC by default).
    pub server_name: String,
    /// The server's zone.
    pub server: TimeZone,
}

impl BillingZones {
    /// Look up both zones by IANA name.
    pub fn new(site: &str, server: &str) -> Result<BillingZones, PeriodError> {
        Ok(BillingZones {
            site_name: site.to_string(),
            site: zone(site)?,
            server_name: server.to_string(),
            server: zone(server)?,
        })
    }

    /// The month it is at the site at `now`.
    pub fn site_month(&self, now: Timestamp) -> Period {
        Period::containing(now, &self.site)
    }

    /// The month it is on the Waldur server at `now`.
    pub fn server_month(&self, now: Timestamp) -> Period {
        Period::containing(now, &self.server)
    }

    /// Where `period` stands on the server at `now`.
    pub fn standing(&self, period: Period, now: Timestamp) -> Standing {
        let server = self.server_month(now);
        match period.cmp(&server) {
            std::cmp::Ordering::Equal => Standing::Current,
            std::cmp::Ordering::Less => Standing::Past { server },
            std::cmp::Ordering::Greater => Standing::Future { server },
        }
    }

    /// The `date` for usage of the server's current month: now less
    /// [`CLOCK_MARGIN_SECONDS`], in whole seconds, clamped inside the month in the server's
    /// zone (never before its first instant, never at or after its end).
    pub fn current_date(&self, period: Period, now: Timestamp) -> String {
        let (start, end) = period.bounds(&self.server);
        let wanted = now
            .checked_sub(CLOCK_MARGIN_SECONDS.seconds())
            .unwrap_or(now);
        let last = end.checked_sub(1.second()).unwrap_or(start);
        let chosen = wanted.max(start).min(last);
        Timestamp::from_second(chosen.as_second())
            .unwrap_or(chosen)
            .to_string()
    }

    /// The `date` for usage of a past month (staff backfill): the 15th at 12:00 in the
    /// server's zone, inside the month whatever the zones.
    pub fn past_date(&self, period: Period) -> String {
        let noon = jiff::civil::date(period.year, period.month, 15).at(12, 0, 0, 0);
        noon.to_zoned(self.server.clone())
            .map(|z| z.timestamp())
            .unwrap_or_else(|_| period.bounds(&self.server).0)
            .to_string()
    }
}

/// Look up an IANA time zone.
pub fn zone(tz_name: &str) -> Result<TimeZone, PeriodError> {
    TimeZone::get(tz_name).map_err(|_| PeriodError::UnknownZone(tz_name.to_string()))
}

/// Parse `YYYY-MM` into (year, month).
pub fn parse_month(text: &str) -> Result<(i16, i8), PeriodError> {
    let p = Period::parse(text)?;
    Ok((p.year, p.month))
}

/// Parse `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, PeriodError> {
    let t = text.trim();
    if t.len() != 10 {
        return Err(PeriodError::BadDate(text.to_string()));
    }
    t.parse::<Date>()
        .map_err(|_| PeriodError::BadDate(text.to_string()))
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

/// The billing period of `year`-`month` in `tz_name`; `index`/`count` are 1/1.
pub fn month_period(
    tz_name: &str,
    year: i16,
    month: i8,
    now: Timestamp,
) -> Result<MonthRecord, PeriodError> {
    Period::parse(&format!("{year:04}-{month:02}"))?.record(tz_name, now)
}

fn number(mut periods: Vec<MonthRecord>) -> Vec<MonthRecord> {
    let count = periods.len() as u32;
    for (i, p) in periods.iter_mut().enumerate() {
        p.index = i as u32 + 1;
        p.count = count;
    }
    periods
}

/// Every month touched by the inclusive day range `start..=end`, oldest first, numbered.
pub fn periods_between(
    tz_name: &str,
    start: Date,
    end: Date,
    now: Timestamp,
) -> Result<Vec<MonthRecord>, PeriodError> {
    zone(tz_name)?;
    if end < start {
        return Err(PeriodError::EndBeforeStart {
            start: start.to_string(),
            end: end.to_string(),
        });
    }
    let months = (i32::from(end.year()) - i32::from(start.year())) * 12 + i32::from(end.month())
        - i32::from(start.month())
        + 1;
    let months = months as usize;
    if months > MAX_MONTHS {
        return Err(PeriodError::RangeTooLong { months });
    }
    let (mut y, mut m) = (start.year(), start.month());
    let mut out = Vec::with_capacity(months);
    for _ in 0..months {
        out.push(month_period(tz_name, y, m, now)?);
        (y, m) = next_month(y, m);
    }
    Ok(number(out))
}

/// The month containing `now` in `tz_name` and the `previous` months before it, oldest first.
pub fn current_and_previous(
    tz_name: &str,
    now: Timestamp,
    previous: u32,
) -> Result<Vec<MonthRecord>, PeriodError> {
    let tz = zone(tz_name)?;
    let today = now.to_zoned(tz).date();
    if previous as usize >= MAX_MONTHS {
        return Err(PeriodError::RangeTooLong {
            months: previous as usize + 1,
        });
    }
    let first = today
        .first_of_month()
        .checked_sub((previous as i64).months())
        .map_err(|e| PeriodError::Time(e.to_string()))?;
    periods_between(tz_name, first, today, now)
}

/// The `n` whole months before the month containing `now` in `tz_name`, oldest first,
/// numbered; none when `n` is 0.
pub fn months_before(
    tz_name: &str,
    now: Timestamp,
    n: u32,
) -> Result<Vec<MonthRecord>, PeriodError> {
    let tz = zone(tz_name)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if n as usize > MAX_MONTHS {
        return Err(PeriodError::RangeTooLong { months: n as usize });
    }
    let this_month = now.to_zoned(tz).date().first_of_month();
    let first = this_month
        .checked_sub((n as i64).months())
        .map_err(|e| PeriodError::Time(e.to_string()))?;
    let last = this_month
        .yesterday()
        .map_err(|e| PeriodError::Time(e.to_string()))?;
    periods_between(tz_name, first, last, now)
}

/// Parse one end of a day range: `YYYY-MM-DD`, or `YYYY-MM` for a whole month (its first day
/// when `last` is false, its last day when `last` is true).
pub fn parse_bound(text: &str, last: bool) -> Result<Date, PeriodError> {
    if text.trim().len() == 7 {
        let (year, month) = parse_month(text)?;
        let first = Date::new(year, month, 1).map_err(|e| PeriodError::Time(e.to_string()))?;
        return Ok(if last { first.last_of_month() } else { first });
    }
    parse_date(text)
}

/// Cut the inclusive day range `start..=end` into consecutive ranges of at most
/// [`MAX_MONTHS`] months each, cut at month boundaries: how to split a range that is too long.
pub fn split_range(start: Date, end: Date) -> Vec<(Date, Date)> {
    let mut out = Vec::new();
    let mut from = start;
    while from <= end {
        let next = from
            .first_of_month()
            .checked_add((MAX_MONTHS as i64).months())
            .ok();
        match next {
            Some(next) if next <= end => {
                let to = next.yesterday().unwrap_or(next);
                out.push((from, to));
                from = next;
            }
            _ => {
                out.push((from, end));
                break;
            }
        }
    }
    out
}

/// Parse an RFC 3339 instant with an offset (`--now`), in the years [`YEARS`].
///
/// ```
/// use waldur_usage::period::parse_instant;
/// assert!(parse_instant("--now", "2024-03-01T00:10:00+01:00").is_ok());
/// let e = parse_instant("--now", "0000-01-01T00:00:00Z").unwrap_err().to_string();
/// assert!(e.contains("lies in the year 0"), "{e}");
/// ```
pub fn parse_instant(what: &str, text: &str) -> Result<Timestamp, PeriodError> {
    let at = text.trim().parse::<Timestamp>().map_err(|_| {
        PeriodError::Time(format!(
            "{what} {text:?} is not an RFC 3339 instant with an offset, e.g. \
             2024-03-01T00:10:00+01:00 or 2024-03-01T00:10:00Z"
        ))
    })?;
    check_instant(&format!("{what} {text:?}"), at)
}

/// `at`, if it lies in the years [`YEARS`] (in UTC, with a day to spare at either end so that
/// every zone's month around it exists).
pub fn check_instant(what: &str, at: Timestamp) -> Result<Timestamp, PeriodError> {
    let date = at.to_zoned(TimeZone::UTC).date();
    let year = date.year();
    let inside = YEARS.contains(&year)
        && !(year == *YEARS.start() && date.month() == 1 && date.day() == 1)
        && !(year == *YEARS.end() && date.month() == 12 && date.day() == 31);
    if inside {
        Ok(at)
    } else {
        Err(PeriodError::OutOfRange {
            what: what.to_string(),
            year,
        })
    }
}

/// The system clock, if it lies in the years [`YEARS`].
pub fn now() -> Result<Timestamp, PeriodError> {
    check_instant("the system clock", Timestamp::now())
}

/// The first instant of the month a period record names and of the next, in `tz`.
fn month_bounds(
    period: &MonthRecord,
    tz: &TimeZone,
) -> Result<(Timestamp, Timestamp), PeriodError> {
    let month = Period::parse(&period.period)
        .map_err(|e| PeriodError::Time(format!("period record: {e}")))?;
    Ok(month.bounds(tz))
}

/// Check that a period record spans exactly the month it names, in its zone: what month-split
/// writes, and all that may be billed (a part of a month is a partial total).
pub fn whole_month(period: &MonthRecord) -> Result<(), PeriodError> {
    let tz = zone(&period.timezone)?;
    let (month_start, month_end) = month_bounds(period, &tz)?;
    let instant = |text: &str| text.parse::<Timestamp>().ok();
    if (instant(&period.start), instant(&period.end)) != (Some(month_start), Some(month_end)) {
        return Err(PeriodError::Time(format!(
            "period {}: start {} and end {} are not that whole month in {} ({} to {}): only \
             whole months are billed",
            period.period,
            period.start,
            period.end,
            period.timezone,
            rfc3339(&month_start.to_zoned(tz.clone())),
            rfc3339(&month_end.to_zoned(tz)),
        )));
    }
    Ok(())
}

/// The sacct query window of a period: [start, min(end, now)), in the period's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub start: Zoned,
    /// Exclusive end: the period end, or now for the current period.
    pub end: Zoned,
}

impl Window {
    /// Length in whole seconds (0 for a period that has not started).
    pub fn seconds(&self) -> i64 {
        (self.end.timestamp().as_second() - self.start.timestamp().as_second()).max(0)
    }
}

/// The window to query for `period` at `now` (the end is clamped to now).
pub fn window(period: &MonthRecord, now: Timestamp) -> Result<Window, PeriodError> {
    let tz = zone(&period.timezone)?;
    let parse = |field: &str, text: &str| {
        text.parse::<Timestamp>().map_err(|e| {
            PeriodError::Time(format!(
                "period {}: bad {field} {text:?}: {e}",
                period.period
            ))
        })
    };
    let start = parse("start", &period.start)?;
    let end = parse("end", &period.end)?;
    // A period record's window lies inside the month it names, in its zone: a record named
    // 2024-03 that runs from January to April would bill three months as March. (A part of the
    // month is a window slurm-usage can measure; waldur-push, which bills, takes only whole
    // months: see [`whole_month`].)
    let (month_start, month_end) = month_bounds(period, &tz)?;
    if start < month_start || end > month_end || start > end {
        return Err(PeriodError::Time(format!(
            "period {}: the window {} to {} is not inside that month in {} (it runs from {} to \
             {})",
            period.period,
            period.start,
            period.end,
            period.timezone,
            rfc3339(&month_start.to_zoned(tz.clone())),
            rfc3339(&month_end.to_zoned(tz.clone())),
        )));
    }
    let end = end.min(now).max(start);
    Ok(Window {
        start: start.to_zoned(tz.clone()),
        end: end.to_zoned(tz),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_period_record_stays_inside_the_month_it_names() {
        let now = ts("2025-01-01T00:00:00Z");
        let march = month_period("Europe/Berlin", 2024, 3, now).unwrap();
        assert_eq!(window(&march, now).unwrap().seconds(), 31 * 86400 - 3600);
        assert!(whole_month(&march).is_ok());
        let mut wide = march.clone();
        wide.start = "2024-01-01T00:00:00+01:00".into();
        assert_eq!(
            window(&wide, now).unwrap_err().to_string(),
            "period 2024-03: the window 2024-01-01T00:00:00+01:00 to 2024-04-01T00:00:00+02:00 \
             is not inside that month in Europe/Berlin (it runs from 2024-03-01T00:00:00+01:00 \
             to 2024-04-01T00:00:00+02:00)"
        );
        // A part of the month can be measured, but not billed.
        let mut part = march.clone();
        part.start = "2024-03-10T00:00:00+01:00".into();
        assert_eq!(window(&part, now).unwrap().seconds(), 22 * 86400 - 3600);
        assert!(
            whole_month(&part)
                .unwrap_err()
                .to_string()
                .ends_with("only whole months are billed")
        );
        // The same instants written in UTC are the same month.
        let mut utc = march.clone();
        utc.start = "2024-02-29T23:00:00Z".into();
        assert!(window(&utc, now).is_ok() && whole_month(&utc).is_ok());
        for name in ["2024-13", "March", "2024-3", "0000-01", "9999-12"] {
            let mut bad = march.clone();
            bad.period = name.into();
            let e = window(&bad, now).unwrap_err().to_string();
            assert!(e.starts_with("period record: "), "{name}: {e}");
        }
    }

    #[test]
    fn dst_months_carry_both_offsets() {
        let p = month_period("Europe/Berlin", 2024, 10, ts("2025-01-01T00:00:00Z")).unwrap();
        assert_eq!(
            (p.start.as_str(), p.end.as_str()),
            ("2024-10-01T00:00:00+02:00", "2024-11-01T00:00:00+01:00")
        );
        let p = month_period("America/New_York", 2024, 3, ts("2025-01-01T00:00:00Z")).unwrap();
        assert_eq!(
            (p.start.as_str(), p.end.as_str()),
            ("2024-03-01T00:00:00-05:00", "2024-04-01T00:00:00-04:00")
        );
    }

    #[test]
    fn ranges_cover_every_touched_month_and_number_them() {
        let ps = periods_between(
            "UTC",
            parse_date("2023-12-31").unwrap(),
            parse_date("2024-02-01").unwrap(),
            ts("2024-06-01T00:00:00Z"),
        )
        .unwrap();
        let names: Vec<_> = ps
            .iter()
            .map(|p| (p.period.as_str(), p.index, p.count))
            .collect();
        assert_eq!(
            names,
            vec![("2023-12", 1, 3), ("2024-01", 2, 3), ("2024-02", 3, 3)]
        );
        assert!(matches!(
            periods_between(
                "UTC",
                parse_date("2020-01-01").unwrap(),
                parse_date("2030-01-31").unwrap(),
                ts("2024-06-01T00:00:00Z")
            ),
            Err(PeriodError::RangeTooLong { months: 121 })
        ));
    }

    #[test]
    fn current_month_is_open_and_its_window_ends_now() {
        let now = ts("2024-03-01T00:10:00+01:00");
        let ps = current_and_previous("Europe/Berlin", now, 1).unwrap();
        assert_eq!(
            ps.iter().map(|p| p.period.as_str()).collect::<Vec<_>>(),
            ["2024-02", "2024-03"]
        );
        assert!(ps[0].closed && !ps[1].closed);
        let w = window(&ps[1], now).unwrap();
        assert_eq!(w.seconds(), 600);
    }

    #[test]
    fn months_before_excludes_the_current_month() {
        let now = ts("2024-01-10T00:00:00Z");
        let ps = months_before("UTC", now, 2).unwrap();
        let got: Vec<_> = ps
            .iter()
            .map(|p| (p.period.as_str(), p.index, p.count, p.closed))
            .collect();
        assert_eq!(got, [("2023-11", 1, 2, true), ("2023-12", 2, 2, true)]);
        assert!(months_before("UTC", now, 0).unwrap().is_empty());
        // 120 months before is the limit; 121 is too long.
        assert_eq!(months_before("UTC", now, 120).unwrap().len(), 120);
        assert_eq!(
            months_before("UTC", now, 121),
            Err(PeriodError::RangeTooLong { months: 121 })
        );
    }

    #[test]
    fn leap_february_window_is_29_days() {
        // 29 days x 86400 s = 2505600 s; 2023 had 28 days = 2419200 s.
        let now = ts("2025-01-01T00:00:00Z");
        let p = month_period("UTC", 2024, 2, now).unwrap();
        assert_eq!(window(&p, now).unwrap().seconds(), 2_505_600);
        let p = month_period("UTC", 2023, 2, now).unwrap();
        assert_eq!(window(&p, now).unwrap().seconds(), 2_419_200);
        // March in Berlin lost an hour to DST: 31 x 86400 - 3600 = 2674800.
        let p = month_period("Europe/Berlin", 2024, 3, now).unwrap();
        assert_eq!(window(&p, now).unwrap().seconds(), 2_674_800);
    }

    #[test]
    fn range_bounds_take_days_or_whole_months() {
        let d = |s: &str| parse_date(s).unwrap();
        assert_eq!(parse_bound("2024-02", false), Ok(d("2024-02-01")));
        assert_eq!(parse_bound("2024-02", true), Ok(d("2024-02-29")));
        assert_eq!(parse_bound("2023-02", true), Ok(d("2023-02-28")));
        assert_eq!(parse_bound("2024-02-10", true), Ok(d("2024-02-10")));
        assert_eq!(
            parse_bound("2024-2", true),
            Err(PeriodError::BadDate("2024-2".into()))
        );
    }

    #[test]
    fn long_ranges_split_into_ten_year_runs() {
        let d = |s: &str| parse_date(s).unwrap();
        assert_eq!(
            split_range(d("2000-03-15"), d("2021-01-31")),
            [
                (d("2000-03-15"), d("2010-02-28")),
                (d("2010-03-01"), d("2020-02-29")),
                (d("2020-03-01"), d("2021-01-31")),
            ]
        );
        assert_eq!(
            split_range(d("2024-01-01"), d("2024-01-01")),
            [(d("2024-01-01"), d("2024-01-01"))]
        );
        // Every run is within the limit.
        for (s, e) in split_range(d("1990-01-01"), d("2024-12-31")) {
            assert!(periods_between("UTC", s, e, ts("2025-01-01T00:00:00Z")).is_ok());
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        assert_eq!(
            parse_month("2024-3"),
            Err(PeriodError::BadMonth("2024-3".into()))
        );
        assert_eq!(
            parse_month("2024-13"),
            Err(PeriodError::BadMonth("2024-13".into()))
        );
        assert!(parse_date("2024-02-30").is_err());
        assert!(matches!(
            zone("Mars/Olympus"),
            Err(PeriodError::UnknownZone(_))
        ));
    }

    #[test]
    fn months_parse_format_and_step() {
        let p = Period::parse("2024-03").unwrap();
        assert_eq!(p.to_string(), "2024-03");
        assert_eq!(p.billing_period(), "2024-03-01");
        assert_eq!(
            Period::parse("2024-12").unwrap().next().to_string(),
            "2025-01"
        );
        assert_eq!(
            Period::parse("2024-01").unwrap().previous().to_string(),
            "2023-12"
        );
        for bad in [
            "2024-3", "2024-13", "24-03", "2024/03", "abcd-ef", "2024-00", "+024-03", "March",
        ] {
            assert_eq!(
                Period::parse(bad),
                Err(PeriodError::BadMonth(bad.into())),
                "{bad}"
            );
        }
        for (far, year) in [("1969-12", 1969), ("9999-01", 9999), ("0000-06", 0)] {
            assert_eq!(
                Period::parse(far),
                Err(PeriodError::OutOfRange {
                    what: format!("{far:?}"),
                    year
                })
            );
        }
    }

    #[test]
    fn bounds_follow_the_time_zone_including_dst() {
        let tz = TimeZone::get("Europe/Tallinn").unwrap();
        let (start, end) = Period::parse("2024-03").unwrap().bounds(&tz);
        // Tallinn is UTC+2 in winter, UTC+3 from the last Sunday of March.
        assert_eq!(start, ts("2024-02-29T22:00:00Z"));
        assert_eq!(end, ts("2024-03-31T21:00:00Z"));
    }

    #[test]
    fn closed_means_the_month_has_ended_in_the_given_zone() {
        let tz = TimeZone::get("Europe/Tallinn").unwrap();
        let march = Period::parse("2024-03").unwrap();
        // 2024-03-31T21:30Z is already April 1st 00:30 in Tallinn.
        assert!(march.is_closed(&tz, ts("2024-03-31T21:30:00Z")));
        assert!(!march.is_closed(&tz, ts("2024-03-31T20:59:59Z")));
        assert!(!march.is_closed(&TimeZone::UTC, ts("2024-03-31T21:30:00Z")));
        assert!(!march.has_started(&tz, ts("2024-02-29T21:59:59Z")));
    }

    fn zones(site: &str) -> BillingZones {
        BillingZones::new(site, "UTC").unwrap()
    }

    #[test]
    fn east_of_the_server_the_new_month_starts_before_the_servers() {
        // 00:30 on April 1st in Tallinn is 21:30 on March 31st in UTC.
        let z = zones("Europe/Tallinn");
        let now = ts("2024-03-31T21:30:00Z");
        let march = Period::parse("2024-03").unwrap();
        assert_eq!(z.site_month(now), march.next());
        assert_eq!(z.server_month(now), march);
        assert_eq!(z.standing(march, now), Standing::Current);
        assert_eq!(
            z.standing(march.next(), now),
            Standing::Future { server: march }
        );
    }

    #[test]
    fn west_of_the_server_the_servers_month_ends_first() {
        // 21:00 on March 31st in New York (EDT, UTC-4) is 01:00 on April 1st in UTC.
        let z = zones("America/New_York");
        let now = ts("2024-04-01T01:00:00Z");
        let march = Period::parse("2024-03").unwrap();
        assert_eq!(z.site_month(now), march);
        assert_eq!(
            z.standing(march, now),
            Standing::Past {
                server: march.next()
            }
        );
    }

    #[test]
    fn current_dates_stay_inside_the_servers_month() {
        let z = zones("Europe/Tallinn");
        let march = Period::parse("2024-03").unwrap();
        // 12:00:00.750 less 300 s is 11:55:00.750, shown to the second.
        assert_eq!(
            z.current_date(march, ts("2024-03-10T12:00:00.750Z")),
            "2024-03-10T11:55:00Z"
        );
        // Two minutes into the server's month the margin would leave it: its start is used.
        assert_eq!(
            z.current_date(march, ts("2024-03-01T00:02:00Z")),
            "2024-03-01T00:00:00Z"
        );
        // A clock past the month's end never gives a date in the next month.
        assert_eq!(
            z.current_date(march, ts("2024-04-01T00:10:00Z")),
            "2024-03-31T23:59:59Z"
        );
    }

    #[test]
    fn past_dates_are_mid_month_in_the_servers_zone() {
        let march = Period::parse("2024-03").unwrap();
        assert_eq!(zones("UTC").past_date(march), "2024-03-15T12:00:00Z");
        let tallinn_server = BillingZones::new("UTC", "Europe/Tallinn").unwrap();
        assert_eq!(tallinn_server.past_date(march), "2024-03-15T10:00:00Z");
    }
}

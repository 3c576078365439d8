//! Billing periods as waldur-push sees them, and the `date` sent with usage (DESIGN.md §3,
//! "Dates sent to Waldur").
//!
//! Waldur files usage under the month of `date`, computed in the *server's* time zone. For
//! the current period the date is "now" less a small margin for clock skew (a date in the
//! future is refused), but never before the period's start. For past periods it is the 15th
//! at 12:00 UTC, which is inside the same month in every time zone.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// How far behind "now" the date of current-period usage is set.
pub const CLOCK_MARGIN_SECONDS: i64 = 300;

/// A monthly billing period, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i16,
    month: i8,
}

impl Period {
    /// Parse `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad = || format!("{text:?} is not a period of the form YYYY-MM");
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(bad());
        }
        Ok(Period { year, month })
    }

    /// Waldur's `billing_period`: the first day of the month, `YYYY-MM-01`.
    pub fn billing_period(&self) -> String {
        format!("{:04}-{:02}-01", self.year, self.month)
    }

    /// `[start, end)` of the month in `tz`.
    pub fn bounds(&self, tz: &TimeZone) -> (Timestamp, Timestamp) {
        let first = jiff::civil::date(self.year, self.month, 1);
        let next = first
            .checked_add(1.month())
            .expect("months from 1970 to 9999 have a successor");
        let at = |d: jiff::civil::Date| {
            d.to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .expect("midnight of a valid date exists in every zone")
        };
        (at(first), at(next))
    }

    /// True when the whole month lies in the past.
    pub fn is_closed(&self, tz: &TimeZone, now: Timestamp) -> bool {
        self.bounds(tz).1 <= now
    }

    /// True when the month has begun.
    pub fn has_started(&self, tz: &TimeZone, now: Timestamp) -> bool {
        self.bounds(tz).0 <= now
    }

    /// The `date` to send with usage of this period: the 15th 12:00 UTC for a closed period;
    /// otherwise now less [`CLOCK_MARGIN_SECONDS`], but not before the start of the period.
    pub fn submission_date(&self, tz: &TimeZone, now: Timestamp, closed: bool) -> String {
        if closed {
            return format!("{:04}-{:02}-15T12:00:00Z", self.year, self.month);
        }
        let start = self.bounds(tz).0;
        let candidate = now
            .checked_sub(CLOCK_MARGIN_SECONDS.seconds())
            .unwrap_or(now);
        let chosen = candidate.max(start);
        let whole = Timestamp::from_second(chosen.as_second()).unwrap_or(chosen);
        whole.to_string()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_formats_periods() {
        let p = Period::parse("2024-03").unwrap();
        assert_eq!(p.to_string(), "2024-03");
        assert_eq!(p.billing_period(), "2024-03-01");
        for bad in [
            "2024-3", "2024-13", "24-03", "2024/03", "abcd-ef", "2024-00",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
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
    fn closed_means_the_month_has_ended_in_the_site_zone() {
        let tz = TimeZone::get("Europe/Tallinn").unwrap();
        let march = Period::parse("2024-03").unwrap();
        // 2024-03-31T21:30Z is already April 1st 00:30 in Tallinn.
        assert!(march.is_closed(&tz, ts("2024-03-31T21:30:00Z")));
        assert!(!march.is_closed(&tz, ts("2024-03-31T20:59:59Z")));
        assert!(!march.is_closed(&TimeZone::UTC, ts("2024-03-31T21:30:00Z")));
        assert!(!march.has_started(&tz, ts("2024-02-29T21:59:59Z")));
    }

    #[test]
    fn dates_are_mid_month_for_the_past_and_recent_for_the_present() {
        let tz = TimeZone::get("Europe/Tallinn").unwrap();
        let march = Period::parse("2024-03").unwrap();
        let now = ts("2024-03-10T12:00:00.750Z");
        assert_eq!(
            march.submission_date(&tz, now, true),
            "2024-03-15T12:00:00Z"
        );
        // 12:00:00.750 less 300 s is 11:55:00.750, shown to the second.
        assert_eq!(
            march.submission_date(&tz, now, false),
            "2024-03-10T11:55:00Z"
        );
        // Two minutes into the month the margin would leave it: the start is used instead.
        let early = ts("2024-02-29T22:02:00Z");
        assert_eq!(
            march.submission_date(&tz, early, false),
            "2024-02-29T22:00:00Z"
        );
    }
}

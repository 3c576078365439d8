//! Reading months, days, range bounds (`YYYY-MM` or `YYYY-MM-DD`) and instants from the
//! command line, and the clock, within the years [`YEARS`](super::YEARS).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::{Period, PeriodError, YEARS};

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

//! What a period record spans: the whole month it names (billing) and the sacct window
//! inside it, clamped to now (measuring).

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use super::{Period, PeriodError, rfc3339, zone};
use crate::records::MonthRecord;

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

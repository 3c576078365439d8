//! Day ranges as numbered lists of month records: one month, a range, the reporting cycle,
//! and cutting a range that is too long into runs.

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

use super::{MAX_MONTHS, Period, PeriodError, next_month, zone};
use crate::records::MonthRecord;

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

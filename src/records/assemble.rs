//! Grouping a record stream into complete periods: all or nothing per period.

use std::collections::BTreeMap;
use std::fmt;

use super::{MonthEndRecord, MonthRecord, Record};

/// The records of one period, complete: its `period_end` arrived and the count matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletePeriod {
    /// The `period` record, when the stream carried one.
    pub period: Option<MonthRecord>,
    /// The data records (`tres`, `job` or `usage`) of the period, in stream order.
    pub records: Vec<Record>,
    /// The closing record.
    pub end: MonthEndRecord,
}

/// A period could not be completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodError {
    /// `period_end` announced a different number of records than arrived.
    CountMismatch {
        /// `YYYY-MM`.
        period: String,
        /// What `period_end` said.
        expected: u64,
        /// What arrived.
        seen: u64,
        /// Line of the `period_end`.
        line: usize,
    },
    /// The stream ended before the period's `period_end`.
    Unterminated {
        /// `YYYY-MM`.
        period: String,
        /// Data records seen for it.
        seen: u64,
    },
}

impl fmt::Display for PeriodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeriodError::CountMismatch {
                period,
                expected,
                seen,
                line,
            } => write!(
                f,
                "period {period}: period_end on line {line} announces {expected} records but \
                 {seen} arrived; the stream is damaged, nothing of {period} is used"
            ),
            PeriodError::Unterminated { period, seen } => write!(
                f,
                "period {period}: the input ended before its period_end ({seen} records seen); \
                 an upstream stage failed or was cut short, nothing of {period} is used"
            ),
        }
    }
}

impl std::error::Error for PeriodError {}

/// Groups a record stream into complete periods (DESIGN.md §2, all-or-nothing per period).
///
/// Feed every record with [`MonthAssembler::push`]; a [`CompletePeriod`] comes back when a
/// period's `period_end` arrives with a matching count. At the end of the stream
/// [`MonthAssembler::finish`] names the periods that never completed.
#[derive(Debug, Default)]
pub struct MonthAssembler {
    open: BTreeMap<String, (Option<MonthRecord>, Vec<Record>)>,
}

impl MonthAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one record read from `line`. `tres`, `usage` and `job` records are data; `period`
    /// opens a period; `period_end` closes one. Other kinds are ignored (returns `Ok(None)`).
    pub fn push(
        &mut self,
        line: usize,
        record: Record,
    ) -> Result<Option<CompletePeriod>, PeriodError> {
        match record {
            Record::Period(p) => {
                let key = p.period.clone();
                self.open.entry(key).or_default().0 = Some(p);
                Ok(None)
            }
            Record::Tres(ref r) => {
                let key = r.period.clone();
                self.open.entry(key).or_default().1.push(record);
                Ok(None)
            }
            Record::Usage(ref r) => {
                let key = r.period.clone();
                self.open.entry(key).or_default().1.push(record);
                Ok(None)
            }
            Record::Job(ref r) => {
                let key = r.period.clone();
                self.open.entry(key).or_default().1.push(record);
                Ok(None)
            }
            Record::PeriodEnd(end) => {
                let (period, records) = self.open.remove(&end.period).unwrap_or_default();
                let seen = records.len() as u64;
                if seen != end.records {
                    return Err(PeriodError::CountMismatch {
                        period: end.period,
                        expected: end.records,
                        seen,
                        line,
                    });
                }
                Ok(Some(CompletePeriod {
                    period,
                    records,
                    end,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Periods that saw data (or a `period` record) but no `period_end`.
    pub fn finish(self) -> Vec<PeriodError> {
        self.open
            .into_iter()
            .map(|(period, (_, records))| PeriodError::Unterminated {
                period,
                seen: records.len() as u64,
            })
            .collect()
    }
}

//! The record contract between the tools: one JSON object per line, its `kind` field saying
//! what it is (DESIGN.md §2).
//!
//! | kind | written by |
//! |---|---|
//! | `period` | month-split |
//! | `tres` | slurm-usage |
//! | `job` | slurm-usage `--jobs` (audit) |
//! | `usage` | usage-convert |
//! | `period_end` | slurm-usage (passed on by usage-convert) |
//! | `result` | waldur-push |
//!
//! Unknown fields are ignored; a record of an unknown kind is kept as [`Record::Other`] and passed
//! through unchanged. A missing required field is an error naming the line.
//!
//! ```
//! use waldur_usage::records::{Record, RecordReader};
//!
//! let input = "{\"kind\":\"period_end\",\"period\":\"2024-03\",\"records\":0,\"jobs\":0,\"lines\":0,\"skipped_lines\":0}\n";
//! let mut reader = RecordReader::new(input.as_bytes());
//! let (line, record) = reader.next().unwrap().unwrap();
//! assert_eq!(line, 1);
//! assert!(matches!(record, Record::PeriodEnd(_)));
//! ```
//!
//! This room owns the shape of each record and of a stream of them; it must not know how a
//! record is computed (sacct, conversion) or what Waldur does with it. `kinds` holds the
//! record types, `record` the [`Record`] of one line, `stream` reading and writing lines,
//! `assemble` the all-or-nothing grouping into complete periods.

mod assemble;
mod kinds;
mod record;
mod stream;

#[cfg(test)]
mod tests;

pub use assemble::{CompletePeriod, MonthAssembler, PeriodError};
pub use kinds::{
    JobRecord, MonthEndRecord, MonthRecord, RequestRecord, ResultRecord, TresRecord, UsageRecord,
};
pub use record::Record;
pub use stream::{RecordError, RecordReader, RecordWriter};

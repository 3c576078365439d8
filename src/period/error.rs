//! Why a period, a bound or an instant could not be computed, in words for the command line.

use std::fmt;

use super::MAX_MONTHS;

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
    /// A month or an instant lies outside [`YEARS`](super::YEARS).
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

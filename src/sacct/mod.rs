//! `slurm-usage`: run sacct, parse its output with nom, and sum exact TRES x seconds per
//! (period, account, user).
//!
//! One concern per module:
//! - [`tres`]: TRES strings (`cpu=2,mem=2.50G,gres/gpu:a100=1`), units, the GPU rule;
//! - [`elapsed`]: `ElapsedRaw` and every printed form of `Elapsed`;
//! - [`jobid`]: job ids (arrays, het jobs, steps);
//! - [`line`](mod@line): the columns of a line, header detection, one line to one allocation (with a
//!   bounded cache of parsed TRES strings, since jobs of one shape print the same string);
//! - [`names`]: account and user names, interned and grouped case-insensitively;
//! - [`sums`]: exact sums by (pair, TRES) in little memory;
//! - [`aggregate`]: exact sums per account and user;
//! - [`summary`]: a period's records sorted, written as JSON lines (large ones on two threads);
//! - [`read`]: one period's whole stream, the bad-line policy, `--jobs` spooling;
//! - [`command`]: the sacct command line and running it with a timeout;
//! - [`check`]: `--check` diagnostics;
//! - [`pipeline`]: the tool itself: periods in, records out, one failure never hiding another.
//!
//! ```
//! use waldur_usage::config::Compat;
//! use waldur_usage::sacct::line::{AccountFilter, Layout, EXACT_FORMAT};
//! use waldur_usage::sacct::read::{read_period, ReadOptions};
//!
//! let dump = "1|hpc_a|alice|COMPLETED|3600|cpu=4,mem=2.50G|\n";
//! let opts = ReadOptions {
//!     compat: Compat::Exact,
//!     filter: AccountFilter::All,
//!     skip_bad_lines: false,
//!     jobs: false,
//!     layout: Layout::from_format(EXACT_FORMAT, Compat::Exact).unwrap(),
//!     window_seconds: Some(31 * 86_400),
//! };
//! let data = read_period(dump.as_bytes(), "2024-03", &opts).unwrap();
//! let total = &data.tres_records()[0];
//! assert_eq!(total.user, None);
//! assert_eq!(total.tres_seconds["cpu"], 4 * 3600);
//! assert_eq!(total.tres_seconds["mem"], 2560 * 3600);
//! ```

pub mod aggregate;
pub mod check;
pub mod command;
pub mod elapsed;
mod fold_thread;
pub mod jobid;
pub mod line;
pub mod names;
pub mod pipeline;
pub mod read;
pub mod summary;
pub mod sums;
pub mod tres;

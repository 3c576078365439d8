//! The `slurm-usage` tool: periods in, records out.
//!
//! For each period: run sacct over its window (or read the saved `--input`), fold the lines,
//! and write `period`, the `tres` (or `job`) records and `period_end`, all only after the whole
//! input was read and sacct exited 0. A period that fails writes nothing, is reported on stderr
//! with sacct's stderr, and the other periods still run; the exit status names the failure.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use crate::cli::exit;
use crate::config::Compat;
use crate::period;
use crate::records::{MonthEndRecord, MonthRecord, Record, RecordReader, RecordWriter};

use super::command::{RunError, SacctQuery, run_streaming};
use super::line::{AccountFilter, Layout};
use super::read::{MonthData, ReadError, ReadOptions, read_period};

/// Where a period's sacct lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Run sacct.
    Sacct,
    /// A saved sacct output file.
    File(PathBuf),
    /// Saved sacct output on stdin (`--input -`).
    Stdin,
}

/// Everything `slurm-usage` needs besides the periods.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the lines come from.
    pub source: Source,
    /// Formula.
    pub compat: Compat,
    /// Which accounts are reported.
    pub filter: AccountFilter,
    /// `--accounts` for sacct, when given.
    pub accounts: Option<Vec<String>>,
    /// `--clusters` for sacct.
    pub cluster: Option<String>,
    /// The sacct program.
    pub sacct: PathBuf,
    /// Time zone of the configuration (periods are expected in it).
    pub timezone: String,
    /// sacct timeout.
    pub timeout: Duration,
    /// `--skip-bad-lines`.
    pub skip_bad_lines: bool,
    /// `--jobs`.
    pub jobs: bool,
    /// Columns of input without a header.
    pub layout: Layout,
    /// The clock.
    pub now: Timestamp,
}

/// One period that produced no records.
#[derive(Debug)]
pub struct MonthFailure {
    /// `YYYY-MM`.
    pub period: String,
    /// Exit status class.
    pub code: u8,
    /// Why.
    pub message: String,
}

/// How a run went.
#[derive(Debug, Default)]
pub struct Summary {
    /// Periods written.
    pub done: Vec<MonthEndRecord>,
    /// Periods that failed.
    pub failed: Vec<MonthFailure>,
}

impl Summary {
    /// `Ok` when every period was written; else [`StopError::Periods`].
    pub fn into_result(self) -> Result<(), StopError> {
        let Some(first) = self.failed.first() else {
            return Ok(());
        };
        Err(StopError::Periods {
            code: first.code,
            total: self.failed.len() + self.done.len(),
            failed: self.failed.into_iter().map(|f| f.period).collect(),
        })
    }
}

/// Why a run stopped, or that some of its periods failed. `src/cli.rs` maps each to its exit
/// status.
#[derive(Debug)]
pub enum StopError {
    /// A record on stdin is not valid (exit 65).
    Input(crate::records::RecordError),
    /// Writing the records failed (exit 74; a closed pipe is told apart).
    Write(std::io::Error),
    /// Saved input came with other than one `period` record on stdin (exit 64).
    PeriodCount(usize),
    /// These periods failed and wrote no records; `code` is the first one's exit status.
    Periods {
        /// Exit status class of the first failure.
        code: u8,
        /// Periods in the run.
        total: usize,
        /// The failed periods, `YYYY-MM`.
        failed: Vec<String>,
    },
}

impl std::fmt::Display for StopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopError::Input(e) => write!(f, "{e}"),
            StopError::Write(_) => f.write_str("writing records"),
            StopError::PeriodCount(count) => write!(
                f,
                "--input holds the sacct output of one period, but stdin carried {count} \
                 period records; give exactly one, or use --period YYYY-MM"
            ),
            StopError::Periods { total, failed, .. } => write!(
                f,
                "{} of {total} periods failed and wrote no records: {}",
                failed.len(),
                failed.join(", ")
            ),
        }
    }
}

impl std::error::Error for StopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The input error's text is already the message; the write error is the cause.
        match self {
            StopError::Write(e) => Some(e),
            _ => None,
        }
    }
}

impl Settings {
    fn read_options(&self, window_seconds: Option<u64>) -> ReadOptions {
        ReadOptions {
            compat: self.compat,
            filter: self.filter.clone(),
            skip_bad_lines: self.skip_bad_lines,
            jobs: self.jobs,
            layout: self.layout.clone(),
            window_seconds,
        }
    }

    /// Read one period's lines from the configured source. Nothing is written.
    pub fn collect(&self, p: &MonthRecord) -> Result<MonthData, MonthFailure> {
        let fail = |code: u8, message: String| MonthFailure {
            period: p.period.clone(),
            code,
            message: format!("period {}: {message}", p.period),
        };
        // The whole period's length bounds every elapsed time, for a live query too (not the
        // window clipped to now: sacct's clock runs on while it works).
        let length = period::window(p, Timestamp::MAX)
            .map_err(|e| fail(exit::DATAERR, e.to_string()))?
            .seconds();
        let opts = self.read_options(u64::try_from(length).ok());
        let read_code = |e: &ReadError| match e {
            ReadError::Io(_) => exit::IOERR,
            _ => exit::DATAERR,
        };
        match &self.source {
            Source::File(path) => {
                let file = File::open(path).map_err(|e| {
                    fail(
                        exit::NOINPUT,
                        format!("cannot open --input {}: {e}", path.display()),
                    )
                })?;
                let reader = BufReader::with_capacity(256 * 1024, file);
                read_period(reader, &p.period, &opts)
                    .map_err(|e| fail(read_code(&e), format!("{}: {e}", path.display())))
            }
            Source::Stdin => {
                let stdin = std::io::stdin().lock();
                let reader = BufReader::with_capacity(256 * 1024, stdin);
                read_period(reader, &p.period, &opts)
                    .map_err(|e| fail(read_code(&e), format!("stdin: {e}")))
            }
            Source::Sacct => {
                let window =
                    period::window(p, self.now).map_err(|e| fail(exit::DATAERR, e.to_string()))?;
                if p.timezone != self.timezone {
                    crate::warn!(
                        "period {}: computed in {} but the configuration says {}; querying sacct in {}",
                        p.period,
                        p.timezone,
                        self.timezone,
                        p.timezone
                    );
                }
                if window.seconds() == 0 {
                    crate::info!(
                        "period {}: has not started yet at {}, nothing to query",
                        p.period,
                        self.now
                    );
                    return read_period(std::io::empty(), &p.period, &opts)
                        .map_err(|e| fail(read_code(&e), e.to_string()));
                }
                let query = SacctQuery {
                    program: self.sacct.clone(),
                    compat: self.compat,
                    cluster: self.cluster.as_deref(),
                    accounts: self.accounts.as_deref(),
                    start: &window.start,
                    end: &window.end,
                };
                let inv = query.invocation();
                crate::debug!("period {}: running {inv}", p.period);
                match run_streaming(&inv, self.timeout, |r| read_period(r, &p.period, &opts)) {
                    Ok((data, stderr)) => {
                        for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
                            crate::warn!("period {}: sacct said: {line}", p.period);
                        }
                        Ok(data)
                    }
                    Err(e) => {
                        let code = match &e {
                            RunError::Unavailable { .. } => exit::UNAVAILABLE,
                            RunError::Consume(r) => read_code(r),
                            _ => exit::TEMPFAIL,
                        };
                        Err(fail(code, e.to_string()))
                    }
                }
            }
        }
    }

    /// Collect and write one period.
    pub fn process<W: Write>(
        &self,
        p: &MonthRecord,
        out: &mut RecordWriter<W>,
    ) -> Result<Result<MonthEndRecord, MonthFailure>, StopError> {
        let data = match self.collect(p) {
            Ok(d) => d,
            Err(f) => {
                crate::error!("{}", f.message);
                return Ok(Err(f));
            }
        };
        let end = data.write(Some(p), out).map_err(StopError::Write)?;
        crate::info!(
            "period {} ({}/{}): {} records, {} allocations in {} lines, {} skipped",
            p.period,
            p.index,
            p.count,
            end.records,
            end.jobs,
            end.lines,
            end.skipped_lines
        );
        Ok(Ok(end))
    }
}

/// Where the periods come from.
#[derive(Debug, Clone)]
pub enum Periods {
    /// From the command line.
    Given(Vec<MonthRecord>),
    /// `period` records on stdin; other records are passed through.
    Stdin,
}

/// Run the tool over `periods`, writing to `stdout`.
pub fn run<R: BufRead, W: Write>(
    settings: &Settings,
    periods: Periods,
    stdin: R,
    stdout: W,
) -> Result<Summary, StopError> {
    let mut out = RecordWriter::new(stdout);
    let mut summary = Summary::default();
    let handle = |p: &MonthRecord,
                  out: &mut RecordWriter<W>,
                  summary: &mut Summary|
     -> Result<(), StopError> {
        match settings.process(p, out)? {
            Ok(end) => summary.done.push(end),
            Err(f) => summary.failed.push(f),
        }
        Ok(())
    };
    match periods {
        Periods::Given(list) => {
            for p in &list {
                handle(p, &mut out, &mut summary)?;
            }
        }
        Periods::Stdin => {
            let records = RecordReader::new(stdin);
            if settings.source != Source::Sacct {
                // Saved input belongs to one period: read them all to know there is one.
                let all = records
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(StopError::Input)?;
                let count = all
                    .iter()
                    .filter(|(_, r)| matches!(r, Record::Period(_)))
                    .count();
                if count != 1 {
                    return Err(StopError::PeriodCount(count));
                }
                for (_, r) in all {
                    match r {
                        Record::Period(p) => handle(&p, &mut out, &mut summary)?,
                        other => out.write(&other).map_err(StopError::Write)?,
                    }
                }
            } else {
                for item in records {
                    let (_, r) = item.map_err(StopError::Input)?;
                    match r {
                        Record::Period(p) => handle(&p, &mut out, &mut summary)?,
                        other => out.write(&other).map_err(StopError::Write)?,
                    }
                }
            }
        }
    }
    out.flush().map_err(StopError::Write)?;
    Ok(summary)
}

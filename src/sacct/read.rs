//! Reading one period's sacct output, streaming: header detection, the bad-line policy, and
//! every allocation folded into an [`Aggregator`] (and, for `--jobs`, spooled as job records).
//!
//! Nothing is written while reading: the caller emits the period only once the whole stream was
//! read and sacct exited 0, so a failed period leaves no records at all.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};

use crate::records::{JobRecord, MonthEndRecord, MonthRecord, Record, RecordWriter, TresRecord};

use super::aggregate::{AggregateError, Aggregator, Named, Names, Usage, job_usage};
use super::line::{
    AccountFilter, Allocation, Layout, LayoutError, LineParser, Parsed, header_names, is_header,
    unsupported_format,
};
use super::summary::Summary;
use super::tres::TresTable;
use crate::config::Compat;

/// How to read a stream.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Which formula: decides the TRES and elapsed columns.
    pub compat: Compat,
    /// Which accounts are ours.
    pub filter: AccountFilter,
    /// Count malformed lines in `skipped_lines` instead of failing the period.
    pub skip_bad_lines: bool,
    /// Keep one job record per allocation (`--jobs`).
    pub jobs: bool,
    /// The columns of a stream without a header line.
    pub layout: Layout,
    /// Length of the period in seconds (end - start): a longer elapsed time is a bad line.
    /// `None` checks no bound.
    pub window_seconds: Option<u64>,
}

/// Reading failed; the period must not be emitted.
#[derive(Debug)]
pub enum ReadError {
    /// A malformed line (and `--skip-bad-lines` was not given).
    BadLine {
        /// 1-based line number in the sacct output.
        line: u64,
        /// What is wrong.
        reason: String,
        /// The line, shortened to 300 characters.
        content: String,
    },
    /// The whole input is in a style we cannot read (fixed width, JSON).
    Unsupported(String),
    /// The header line lacks columns we need.
    Layout(LayoutError),
    /// The sums of the period do not fit (impossible for real data; never clipped).
    Aggregate(AggregateError),
    /// Reading the stream or the job spool failed.
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::BadLine {
                line,
                reason,
                content,
            } => write!(
                f,
                "sacct output line {line}: {reason}: {content:?} (use --skip-bad-lines to count \
                 such lines and go on)"
            ),
            ReadError::Unsupported(what) => f.write_str(what),
            ReadError::Layout(e) => write!(f, "sacct header line: {e}"),
            ReadError::Aggregate(e) => write!(f, "summing the period: {e}"),
            ReadError::Io(e) => write!(f, "reading sacct output: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    /// Line `number` is malformed for `reason`; the line is shown shortened.
    pub(super) fn bad_line(number: u64, reason: String, line: &[u8]) -> ReadError {
        ReadError::BadLine {
            line: number,
            reason,
            content: shorten(line),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Job records of a period, spooled to an unlinked temporary file so that a month of millions
/// of jobs needs no memory and nothing reaches stdout before the period is known to be good.
#[derive(Debug)]
pub struct JobSpool {
    file: BufWriter<File>,
    count: u64,
}

impl JobSpool {
    fn new() -> io::Result<JobSpool> {
        let dir = std::env::temp_dir();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for attempt in 0..100u32 {
            let path = dir.join(format!(
                "slurm-usage-jobs-{}-{stamp}-{attempt}",
                std::process::id()
            ));
            match File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    std::fs::remove_file(&path)?;
                    return Ok(JobSpool {
                        file: BufWriter::with_capacity(256 * 1024, file),
                        count: 0,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("creating a spool file in {}: {e}", dir.display()),
                    ));
                }
            }
        }
        Err(io::Error::other("could not create a unique spool file"))
    }

    fn push(&mut self, record: &Record) -> io::Result<()> {
        self.file.write_all(record.to_json().as_bytes())?;
        self.file.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// Number of job records held.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when no job was spooled.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn replay<W: Write>(self, out: &mut RecordWriter<W>) -> io::Result<()> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        for line in BufReader::with_capacity(256 * 1024, file).lines() {
            let line = line?;
            let record = Record::from_json(&line).map_err(io::Error::other)?;
            out.write(&record)?;
        }
        Ok(())
    }
}

/// Everything read for one period, ready to be written.
#[derive(Debug)]
pub struct MonthData {
    /// `YYYY-MM`.
    pub period: String,
    /// The `tres` records: account totals (exact sums of their users) and users, sorted.
    summary: Summary,
    /// Job records, with `--jobs`.
    pub jobs: Option<JobSpool>,
    /// Lines read, header excluded.
    pub lines: u64,
    /// Allocations counted.
    pub allocations: u64,
    /// Malformed lines skipped.
    pub skipped_lines: u64,
}

impl MonthData {
    /// The `tres` records (with `--jobs` they are not written; the job records are).
    pub fn tres_records(&self) -> Vec<TresRecord> {
        self.summary.records(&self.period)
    }

    /// Write the period: `period` (when given), the data records, then `period_end`.
    pub fn write<W: Write>(
        self,
        period: Option<&MonthRecord>,
        out: &mut RecordWriter<W>,
    ) -> io::Result<MonthEndRecord> {
        if let Some(p) = period {
            out.write(&Record::Period(p.clone()))?;
        }
        let records = match self.jobs {
            Some(spool) => {
                let n = spool.len();
                spool.replay(out)?;
                n
            }
            None => {
                self.summary.write_json(&self.period, out.raw())?;
                self.summary.len() as u64
            }
        };
        let end = MonthEndRecord {
            period: self.period,
            records,
            jobs: self.allocations,
            lines: self.lines,
            skipped_lines: self.skipped_lines,
        };
        out.write(&Record::PeriodEnd(end.clone()))?;
        Ok(end)
    }
}

/// How many skipped lines are named on stderr one by one before only counting.
const WARN_LINES: u64 = 20;

fn shorten(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.into_owned(),
    }
}

/// Name a skipped line on stderr (the first [`WARN_LINES`] of them; then only count).
fn warn_skipped(period: &str, number: u64, skipped: u64, reason: &str, line: &[u8]) {
    if skipped <= WARN_LINES {
        crate::warn!(
            "period {period}: skipping sacct output line {number}: {reason}: {:?}",
            shorten(line)
        );
    } else if skipped == WARN_LINES + 1 {
        crate::warn!("period {period}: more bad lines follow; only their count is kept");
    }
}

/// The lines of a stream, each with its newline (the last one may lack it), borrowed from the
/// reader's buffer when they lie whole in it: sacct's output is read without a copy per line.
struct LineSource<R> {
    input: R,
    /// A line that spans two buffer fills.
    carry: Vec<u8>,
    /// Bytes of the line handed out last, consumed before the next one.
    pending: usize,
}

impl<R: BufRead> LineSource<R> {
    fn new(input: R) -> Self {
        LineSource {
            input,
            carry: Vec::with_capacity(1024),
            pending: 0,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.input.consume(std::mem::take(&mut self.pending));
        self.carry.clear();
        loop {
            let (newline, available) = {
                let buf = self.input.fill_buf()?;
                (memchr::memchr(b'\n', buf), buf.len())
            };
            match newline {
                _ if available == 0 => {
                    return Ok((!self.carry.is_empty()).then_some(self.carry.as_slice()));
                }
                Some(i) if self.carry.is_empty() => {
                    self.pending = i + 1;
                    return Ok(Some(&self.input.fill_buf()?[..=i]));
                }
                Some(i) => {
                    self.carry.extend_from_slice(&self.input.fill_buf()?[..=i]);
                    self.input.consume(i + 1);
                    return Ok(Some(self.carry.as_slice()));
                }
                None => {
                    self.carry.extend_from_slice(self.input.fill_buf()?);
                    self.input.consume(available);
                }
            }
        }
    }
}

/// Where the scanning loop hands each line that is not a header, a step or another account's:
/// straight to a [`Folder`], or to the batches of the folding thread (see
/// [`super::fold_thread`]).
pub(super) trait Sink {
    /// A billable allocation, line `number`.
    fn allocation(&mut self, number: u64, line: &[u8], alloc: &Allocation<'_>) -> Fed;

    /// A malformed line: skipped with `--skip-bad-lines`, else the period's error.
    fn bad(&mut self, number: u64, reason: String, line: &[u8]) -> Fed;
}

/// What a [`Sink`] answers: go on, or the period's error.
pub(super) type Fed = Result<(), ReadError>;

/// What [`scan`] counted.
pub(super) struct Scanned {
    /// Lines read, header excluded.
    pub lines: u64,
}

/// The sacct output's lines, classified: header detection, stream-level faults, the parse.
pub(super) fn scan<R: BufRead>(
    input: R,
    parser: &mut LineParser,
    opts: &ReadOptions,
    sink: &mut impl Sink,
) -> Result<Scanned, ReadError> {
    let mut source = LineSource::new(input);
    let (mut number, mut lines) = (0u64, 0u64);
    let mut first = true;
    while let Some(mut line) = source.next_line()? {
        number += 1;
        // sacct ends every line, the last one too, with a newline: without one the dump was cut.
        let cut = match line.strip_suffix(b"\n") {
            Some(l) => {
                line = l;
                false
            }
            None => true,
        };
        line = line.strip_suffix(b"\r").unwrap_or(line);
        // Stream-level faults are bad lines like any other; a blank line before the header
        // leaves the header still recognised when they are skipped.
        let fault = if cut {
            Some("no newline at the end: the input was cut")
        } else if line.trim_ascii().is_empty() {
            Some("the line is blank (sacct prints no blank lines)")
        } else {
            None
        };
        if let Some(reason) = fault {
            lines += 1;
            sink.bad(number, reason.to_string(), line)?;
            continue;
        }
        if first {
            first = false;
            if let Some(what) = unsupported_format(line) {
                return Err(ReadError::Unsupported(what));
            }
            if is_header(line) {
                let layout = Layout::from_names(&header_names(line), opts.compat)
                    .map_err(ReadError::Layout)?;
                parser.set_layout(layout);
                continue;
            }
        }
        lines += 1;
        match parser.parse(line) {
            Ok(Parsed::Allocation(a)) => sink.allocation(number, line, &a)?,
            Ok(Parsed::Step | Parsed::OtherAccount) => {}
            Err(e) => sink.bad(number, e.to_string(), line)?,
        }
    }
    Ok(Scanned { lines })
}

/// The period's sums, and its job records with `--jobs`: the line-by-line fold of one period,
/// in line order, with the bad-line policy.
#[derive(Debug)]
pub(super) struct Folder {
    period: String,
    skip_bad_lines: bool,
    aggregate: Aggregator,
    jobs: Option<JobSpool>,
    allocations: u64,
    skipped: u64,
}

impl Folder {
    pub(super) fn new(period: &str, opts: &ReadOptions) -> Result<Folder, ReadError> {
        Ok(Folder {
            period: period.to_string(),
            skip_bad_lines: opts.skip_bad_lines,
            aggregate: Aggregator::new(),
            jobs: if opts.jobs {
                Some(JobSpool::new()?)
            } else {
                None
            },
            allocations: 0,
            skipped: 0,
        })
    }

    /// Add line `number`'s allocation, whose names were resolved on the reading thread, to the
    /// sums; a rejected one is a bad line.
    pub(super) fn fold_named(
        &mut self,
        number: u64,
        line: &[u8],
        named: Named,
        usage: &Usage<'_>,
    ) -> Fed {
        let added = self.aggregate.add_named(named, usage);
        self.counted(number, line, added.map_err(|e| e.to_string()))
    }

    /// Count an allocation that was taken, or name the line and why it was refused.
    fn counted(&mut self, number: u64, line: &[u8], added: Result<(), String>) -> Fed {
        match added {
            Ok(()) => {
                self.allocations += 1;
                Ok(())
            }
            Err(reason) => self.bad(number, reason, line),
        }
    }

    /// Take over the names the reading thread resolved (see [`Folder::fold_named`]).
    pub(super) fn adopt_names(&mut self, names: Names) {
        self.aggregate.adopt_names(names);
    }

    /// The sorted records of the period, and its counts.
    pub(super) fn finish(
        mut self,
        scanned: Scanned,
        table: &TresTable,
    ) -> Result<MonthData, ReadError> {
        let (period, skipped) = (&self.period, self.skipped);
        if skipped > 0 {
            crate::warn!("period {period}: skipped {skipped} malformed sacct output lines");
        }
        if let Some(spool) = self.jobs.as_mut() {
            spool.file.flush()?;
        }
        let summary = self.aggregate.finish(table).map_err(ReadError::Aggregate)?;
        Ok(MonthData {
            period: self.period,
            summary,
            jobs: self.jobs,
            lines: scanned.lines,
            allocations: self.allocations,
            skipped_lines: skipped,
        })
    }
}

impl Sink for Folder {
    fn allocation(&mut self, number: u64, line: &[u8], a: &Allocation<'_>) -> Fed {
        let mut added = self
            .aggregate
            .add_usage(&Usage::of(a))
            .map_err(|e| e.to_string());
        if added.is_ok() {
            if let Some(spool) = self.jobs.as_mut() {
                // Names were checked as UTF-8 by the aggregator just now.
                let record = Record::Job(JobRecord {
                    period: self.period.clone(),
                    job_id: String::from_utf8_lossy(a.job_id).into_owned(),
                    account: String::from_utf8_lossy(a.account).into_owned(),
                    user: String::from_utf8_lossy(a.user).into_owned(),
                    state: String::from_utf8_lossy(a.state).into_owned(),
                    elapsed_seconds: a.seconds,
                    tres_seconds: job_usage(a),
                });
                // The allocation stays in the sums: as before, a spool failure is a bad line.
                added = spool.push(&record).map_err(|e| e.to_string());
            }
        }
        self.counted(number, line, added)
    }

    fn bad(&mut self, number: u64, reason: String, line: &[u8]) -> Fed {
        if !self.skip_bad_lines {
            return Err(ReadError::bad_line(number, reason, line));
        }
        self.skipped += 1;
        warn_skipped(&self.period, number, self.skipped, &reason, line);
        Ok(())
    }
}

/// Read a whole sacct output stream as the data of `period`.
///
/// Without `--jobs`, the lines are parsed on this thread and folded on another (see
/// `fold_thread.rs`); the outcome is the same as one loop's, bad lines included.
pub fn read_period<R: BufRead>(
    input: R,
    period: &str,
    opts: &ReadOptions,
) -> Result<MonthData, ReadError> {
    let mut parser = LineParser::new(opts.layout.clone(), opts.filter.clone());
    parser.set_window(opts.window_seconds);
    let mut folder = Folder::new(period, opts)?;
    if !opts.jobs {
        return super::fold_thread::read(input, parser, folder, opts);
    }
    let scanned = scan(input, &mut parser, opts, &mut folder)?;
    folder.finish(scanned, parser.table())
}

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

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

/// A billing period: one calendar month in the site's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// First instant of the month, RFC 3339 with the offset in force then.
    pub start: String,
    /// First instant of the next month (exclusive end), RFC 3339 with offset.
    pub end: String,
    /// IANA time zone the month was computed in.
    pub timezone: String,
    /// 1-based position of this period in the run, for "month 3/12" progress.
    pub index: u32,
    /// Number of periods in the run.
    pub count: u32,
    /// True when the whole period lies in the past.
    pub closed: bool,
}

/// Raw usage of one account (or one user in it) in one period, in TRES x seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TresRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// SLURM account as sacct prints it.
    pub account: String,
    /// SLURM user; `None` (JSON `null`, which must be written) for the account total.
    #[serde(deserialize_with = "present_or_null")]
    pub user: Option<String>,
    /// Number of job allocations counted.
    pub jobs: u64,
    /// TRES name -> TRES x seconds. Memory is in MiB x seconds. Exact integers.
    #[serde(deserialize_with = "distinct_keys")]
    pub tres_seconds: BTreeMap<String, u128>,
}

/// Usage of one account (or user) in one period, in Waldur units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// SLURM account as sacct prints it.
    pub account: String,
    /// SLURM user; `None` (JSON `null`, which must be written) for the account total.
    #[serde(deserialize_with = "present_or_null")]
    pub user: Option<String>,
    /// Number of job allocations counted.
    pub jobs: u64,
    /// Waldur component type -> amount, a decimal string with exactly 2 places.
    #[serde(deserialize_with = "distinct_keys")]
    pub components: BTreeMap<String, String>,
}

/// Closes a period: consumers act on a period only once this arrived and `records` matches the
/// number of `tres`/`usage` records they saw for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthEndRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// Number of data records (`tres`, `job` or `usage`) of the period in the stream.
    pub records: u64,
    /// Number of job allocations counted.
    pub jobs: u64,
    /// Number of sacct lines read.
    pub lines: u64,
    /// Number of sacct lines skipped as malformed (only with `--skip-bad-lines`).
    pub skipped_lines: u64,
}

/// One job allocation, for audits (`slurm-usage --jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// `JobIDRaw` (or `JobID` when that is all the input has).
    pub job_id: String,
    /// SLURM account.
    pub account: String,
    /// SLURM user.
    pub user: String,
    /// Job state, e.g. `COMPLETED` or `CANCELLED by 0`.
    pub state: String,
    /// Elapsed seconds inside the period window.
    pub elapsed_seconds: u64,
    /// TRES name -> TRES x seconds for this job.
    #[serde(deserialize_with = "distinct_keys")]
    pub tres_seconds: BTreeMap<String, u128>,
}

/// What waldur-push did with one (period, account) or one part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// SLURM account.
    pub account: String,
    /// Waldur resource UUID, or `None` when the account has no resource.
    #[serde(deserialize_with = "present_or_null")]
    pub resource: Option<String>,
    /// `set_usage`, `set_user_usages`, `set_user_usage`, ...
    pub action: String,
    /// `updated`, `unchanged`, `dry_run`, `skipped` or `failed`.
    pub status: String,
    /// Why, when it was not a plain update.
    #[serde(default)]
    pub reason: Option<String>,
    /// The component, when the result is about one component (a held-back decrease, the
    /// per-user usage of one component).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The request that would be sent (`--dry-run`, `--offline`). Never holds credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestRecord>,
}

/// An HTTP request as shown in a `result` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// `POST`.
    pub method: String,
    /// Path from the installation root, e.g. `/api/marketplace-component-usages/set_usage/`.
    pub path: String,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// Reads an `Option` field that must be present, though it may be `null`: a record that lacks
/// `user` is damaged, not an account total.
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// Reads a JSON object into a map, refusing a key that comes twice: JSON parsers disagree on
/// which of two values wins, so `{"cpu": 1, "cpu": 2}` has no meaning to bill.
fn distinct_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Distinct<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Distinct<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "the key {key:?} comes twice"
                    )));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Distinct(std::marker::PhantomData))
}

/// One line of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `kind: period`.
    Period(MonthRecord),
    /// `kind: tres`.
    Tres(TresRecord),
    /// `kind: job`.
    Job(JobRecord),
    /// `kind: usage`.
    Usage(UsageRecord),
    /// `kind: period_end`.
    PeriodEnd(MonthEndRecord),
    /// `kind: result`.
    Result(ResultRecord),
    /// A kind this version does not know: passed through as it came.
    Other {
        /// The `kind` field.
        kind: String,
        /// The whole line, unchanged.
        raw: String,
    },
}

impl Record {
    /// The value of the `kind` field.
    pub fn kind(&self) -> &str {
        match self {
            Record::Period(_) => "period",
            Record::Tres(_) => "tres",
            Record::Job(_) => "job",
            Record::Usage(_) => "usage",
            Record::PeriodEnd(_) => "period_end",
            Record::Result(_) => "result",
            Record::Other { kind, .. } => kind,
        }
    }

    /// Serialize to one JSON line (without the newline), `kind` first.
    pub fn to_json(&self) -> String {
        fn tagged<T: Serialize>(kind: &str, body: &T) -> String {
            let body = serde_json::to_string(body).expect("records serialize");
            // `body` is a non-empty JSON object: splice `kind` in as its first member.
            format!("{{\"kind\":\"{kind}\",{}", &body[1..])
        }
        match self {
            Record::Period(r) => tagged("period", r),
            Record::Tres(r) => tagged("tres", r),
            Record::Job(r) => tagged("job", r),
            Record::Usage(r) => tagged("usage", r),
            Record::PeriodEnd(r) => tagged("period_end", r),
            Record::Result(r) => tagged("result", r),
            Record::Other { raw, .. } => raw.clone(),
        }
    }

    /// Parse one JSON line.
    pub fn from_json(line: &str) -> Result<Record, String> {
        #[derive(Deserialize)]
        struct Kind {
            kind: Option<serde_json::Value>,
        }
        let peek: Kind = serde_json::from_str(line).map_err(|e| {
            if e.is_data() {
                "not a JSON object".to_string()
            } else {
                format!("not valid JSON: {e}")
            }
        })?;
        let kind = match peek.kind {
            Some(serde_json::Value::String(k)) => k,
            Some(_) => return Err("field `kind` is not a string".into()),
            None => return Err("missing field `kind`".into()),
        };
        fn typed<T: for<'de> Deserialize<'de>>(kind: &str, line: &str) -> Result<T, String> {
            serde_json::from_str(line).map_err(|e| format!("bad `{kind}` record: {e}"))
        }
        Ok(match kind.as_str() {
            "period" => Record::Period(typed(&kind, line)?),
            "tres" => Record::Tres(typed(&kind, line)?),
            "job" => Record::Job(typed(&kind, line)?),
            "usage" => Record::Usage(typed(&kind, line)?),
            "period_end" => Record::PeriodEnd(typed(&kind, line)?),
            "result" => Record::Result(typed(&kind, line)?),
            _ => Record::Other {
                kind,
                raw: line.trim().to_string(),
            },
        })
    }
}

/// A record stream could not be read.
#[derive(Debug)]
pub enum RecordError {
    /// Reading failed.
    Io(io::Error),
    /// Line `line` is not a valid record.
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Io(e) => write!(f, "reading records: {e}"),
            RecordError::Invalid { line, message } => write!(f, "input line {line}: {message}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Reads records line by line, skipping blank lines, and numbers them from 1.
pub struct RecordReader<R> {
    input: R,
    line: usize,
    buf: String,
}

impl<R: BufRead> RecordReader<R> {
    /// Read records from `input`.
    pub fn new(input: R) -> Self {
        RecordReader {
            input,
            line: 0,
            buf: String::new(),
        }
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<(usize, Record), RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.input.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(RecordError::Io(e))),
            }
            self.line += 1;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            return Some(
                Record::from_json(text)
                    .map(|r| (self.line, r))
                    .map_err(|message| RecordError::Invalid {
                        line: self.line,
                        message,
                    }),
            );
        }
    }
}

/// Writes records as JSON Lines. Flushes after every `period_end` so a downstream stage sees
/// complete periods as soon as they exist.
pub struct RecordWriter<W: Write> {
    out: io::BufWriter<W>,
}

impl<W: Write> RecordWriter<W> {
    /// Write records to `out`.
    pub fn new(out: W) -> Self {
        RecordWriter {
            out: io::BufWriter::with_capacity(64 * 1024, out),
        }
    }

    /// Write one record and a newline.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        self.out.write_all(record.to_json().as_bytes())?;
        self.out.write_all(b"\n")?;
        if matches!(record, Record::PeriodEnd(_)) {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Flush what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The buffered output, for a stage that writes its own already-serialized record lines
    /// (each one JSON object, `kind` first, and a newline).
    pub fn raw(&mut self) -> &mut impl Write {
        &mut self.out
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn tres(period: &str, user: Option<&str>) -> Record {
        Record::Tres(TresRecord {
            period: period.into(),
            account: "hpc_a".into(),
            user: user.map(Into::into),
            jobs: 1,
            tres_seconds: BTreeMap::from([("cpu".to_string(), 3600u128)]),
        })
    }

    fn end(period: &str, records: u64) -> Record {
        Record::PeriodEnd(MonthEndRecord {
            period: period.into(),
            records,
            jobs: 1,
            lines: 1,
            skipped_lines: 0,
        })
    }

    #[test]
    fn a_key_that_comes_twice_is_refused_anywhere_in_a_record() {
        let twice = r#"{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"tres_seconds":{"cpu":3600000,"cpu":7200000}}"#;
        let e = Record::from_json(twice).unwrap_err();
        assert!(e.contains("the key \"cpu\" comes twice"), "{e}");
        let usage = r#"{"kind":"usage","period":"2024-03","account":"a","user":null,"jobs":1,"components":{"cpu":"1.00","cpu":"2.00"}}"#;
        assert!(
            Record::from_json(usage)
                .unwrap_err()
                .contains("comes twice")
        );
        let field = r#"{"kind":"tres","period":"2024-03","account":"a","account":"b","user":null,"jobs":1,"tres_seconds":{}}"#;
        let e = Record::from_json(field).unwrap_err();
        assert!(e.contains("duplicate field `account`"), "{e}");
    }

    #[test]
    fn round_trips_every_kind_with_kind_first() {
        let r = tres("2024-03", None);
        let json = r.to_json();
        assert!(json.starts_with("{\"kind\":\"tres\""), "{json}");
        assert_eq!(Record::from_json(&json).unwrap(), r);
        let big = Record::Tres(TresRecord {
            tres_seconds: BTreeMap::from([("mem".to_string(), u128::from(u64::MAX) * 7)]),
            ..match tres("2024-03", Some("u")) {
                Record::Tres(t) => t,
                _ => unreachable!(),
            }
        });
        assert_eq!(Record::from_json(&big.to_json()).unwrap(), big);
    }

    #[test]
    fn unknown_kinds_pass_through_unchanged_and_unknown_fields_are_ignored() {
        let line = r#"{"kind":"future","x":1}"#;
        assert_eq!(Record::from_json(line).unwrap().to_json(), line);
        let extra = r#"{"kind":"period_end","period":"2024-03","records":0,"jobs":0,"lines":0,"skipped_lines":0,"new":true}"#;
        assert!(matches!(
            Record::from_json(extra).unwrap(),
            Record::PeriodEnd(_)
        ));
    }

    #[test]
    fn reader_names_the_line_of_a_bad_record() {
        let input = "\n{\"kind\":\"tres\",\"period\":\"2024-03\"}\n";
        let err = RecordReader::new(input.as_bytes())
            .next()
            .unwrap()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("input line 2: bad `tres` record: missing field"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_user_is_an_error_not_an_account_total() {
        let line = r#"{"kind":"tres","period":"2024-03","account":"a","jobs":1,"tres_seconds":{}}"#;
        let err = Record::from_json(line).unwrap_err();
        assert!(err.contains("missing field `user`"), "{err}");
        let total = line.replace("\"jobs\"", "\"user\":null,\"jobs\"");
        assert!(matches!(Record::from_json(&total), Ok(Record::Tres(t)) if t.user.is_none()));
    }

    #[test]
    fn assembler_releases_a_period_only_when_complete() {
        let mut a = MonthAssembler::new();
        assert_eq!(a.push(1, tres("2024-03", None)).unwrap(), None);
        assert_eq!(a.push(2, tres("2024-03", Some("u"))).unwrap(), None);
        let done = a.push(3, end("2024-03", 2)).unwrap().unwrap();
        assert_eq!(done.records.len(), 2);
        assert!(a.finish().is_empty());
    }

    #[test]
    fn assembler_rejects_a_short_count_and_reports_cut_streams() {
        let mut a = MonthAssembler::new();
        a.push(1, tres("2024-03", None)).unwrap();
        assert!(matches!(
            a.push(2, end("2024-03", 3)),
            Err(PeriodError::CountMismatch {
                seen: 1,
                expected: 3,
                line: 2,
                ..
            })
        ));
        a.push(3, tres("2024-04", None)).unwrap();
        assert_eq!(
            a.finish(),
            vec![PeriodError::Unterminated {
                period: "2024-04".into(),
                seen: 1
            }]
        );
    }
}

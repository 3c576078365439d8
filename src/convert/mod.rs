//! `usage-convert`: TRES x seconds (`tres` records) to Waldur component amounts (`usage`
//! records), exactly.
//!
//! - [`ratio`]: exact fractions on `u128` and the one half-even rounding to a two-place
//!   [`Amount`](crate::decimal::Amount);
//! - [`mapping`]: the per-component rules built from `backend_components`;
//! - [`line`](mod@line): a one-pass reader of plain `tres` lines, borrowing from the line (the fast
//!   path; anything it does not take goes to the full record parser);
//! - [`convert_stream`] (here): the record stream: `tres` in, `usage` out, `period`,
//!   `period_end` and unknown kinds passed through unchanged.
//!
//! Each `tres` record becomes exactly one `usage` record, so the `records` count of every
//! `period_end` stays right. On any error the stream stops before the period's `period_end`,
//! so a downstream stage can never take the period as complete.

mod fast;
pub mod line;
pub mod mapping;
pub mod ratio;

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, BufRead, Write};

use crate::records::{Record, RecordError, RecordWriter};

pub use mapping::{ConvertError, Converter};

/// What went wrong while converting a stream.
#[derive(Debug)]
pub enum StreamError {
    /// The input could not be read, or a line is not a valid record.
    Read(RecordError),
    /// A record of a kind usage-convert cannot take (for example `usage`: already converted).
    WrongKind {
        /// 1-based input line.
        line: usize,
        /// Its `kind`.
        kind: String,
    },
    /// A record could not be converted exactly.
    Convert {
        /// 1-based input line.
        line: usize,
        /// Why.
        error: ConvertError,
    },
    /// A record names a month that does not exist (`2024-13`, `March`).
    BadPeriod {
        /// 1-based input line.
        line: usize,
        /// Why.
        error: crate::period::PeriodError,
    },
    /// Writing the output failed.
    Write(io::Error),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Read(e) => write!(f, "{e}"),
            StreamError::WrongKind { line, kind } => {
                let why = match kind.as_str() {
                    "usage" => "the input is already converted (run usage-convert once, on \
                                slurm-usage's output)"
                        .to_string(),
                    "job" => "per-job audit records (slurm-usage --jobs) are not converted; run \
                              slurm-usage without --jobs"
                        .to_string(),
                    "result" => "this is waldur-push output; usage-convert reads slurm-usage's \
                                 `tres` records"
                        .to_string(),
                    other => format!("usage-convert reads `tres` records, not `{other}`"),
                };
                write!(f, "input line {line}: a `{kind}` record: {why}")
            }
            StreamError::Convert { line, error } => write!(f, "input line {line}: {error}"),
            StreamError::BadPeriod { line, error } => write!(f, "input line {line}: {error}"),
            StreamError::Write(e) => write!(f, "writing records: {e}"),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Write(e) => Some(e),
            _ => None,
        }
    }
}

/// Counts of one run, for the summary log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// `tres` records converted (= `usage` records written).
    pub converted: u64,
    /// `period_end` records passed on.
    pub periods: u64,
    /// Other records passed on unchanged (`period`, unknown kinds).
    pub passed: u64,
    /// TRES names seen in the input that no component reads (ignored).
    pub unused_tres: BTreeSet<String>,
    /// Periods that had records but no `period_end` by the end of the input: an upstream stage
    /// failed or was cut short, and no consumer will take them as complete.
    pub unterminated: BTreeSet<String>,
}

/// Convert every `tres` record read from `input` with `converter` and write the stream to
/// `output`. Stops at the first error; what was written before it never includes the failing
/// period's `period_end`.
///
/// Lines are read and numbered as [`crate::records::RecordReader`] does (blank lines skipped).
/// A `tres` line the fast reader ([`line::parse`]) takes is converted in place; every other line
/// goes through [`Record::from_json`], so its record or its error is exactly the full parser's.
pub fn convert_stream<R: BufRead, W: Write>(
    converter: &Converter,
    mut input: R,
    output: W,
) -> Result<Stats, StreamError> {
    let mut writer = RecordWriter::new(output);
    let mut stats = Stats::default();
    let mut fast = fast::FastPath::new(converter);
    let mut buf = String::new();
    let mut line = 0;
    loop {
        buf.clear();
        match input.read_line(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(StreamError::Read(RecordError::Io(e))),
        }
        line += 1;
        let text = buf.trim();
        if text.is_empty() {
            continue;
        }
        if let Some(tres) = line::parse(text) {
            fast.convert(line, &tres, &mut stats, writer.raw())?;
            continue;
        }
        let record = Record::from_json(text)
            .map_err(|message| StreamError::Read(RecordError::Invalid { line, message }))?;
        let out = convert_record(converter, &mut stats, line, record)?;
        writer.write(&out).map_err(StreamError::Write)?;
    }
    writer.flush().map_err(StreamError::Write)?;
    Ok(stats)
}

/// One record the full parser read: a `tres` record converted, `period`, `period_end` and
/// unknown kinds passed on, the rest refused.
fn convert_record(
    converter: &Converter,
    stats: &mut Stats,
    line: usize,
    record: Record,
) -> Result<Record, StreamError> {
    let named = match &record {
        Record::Tres(r) => Some(r.period.as_str()),
        Record::Period(r) => Some(r.period.as_str()),
        Record::PeriodEnd(r) => Some(r.period.as_str()),
        _ => None,
    };
    if let Some(name) = named {
        crate::period::Period::parse(name)
            .map_err(|error| StreamError::BadPeriod { line, error })?;
    }
    Ok(match record {
        Record::Tres(tres) => {
            for name in tres.tres_seconds.keys() {
                if !converter.uses(name) && !stats.unused_tres.contains(name) {
                    stats.unused_tres.insert(name.clone());
                }
            }
            let usage = converter
                .convert(&tres)
                .map_err(|error| StreamError::Convert { line, error })?;
            stats.converted += 1;
            if !stats.unterminated.contains(&usage.period) {
                stats.unterminated.insert(usage.period.clone());
            }
            Record::Usage(usage)
        }
        Record::PeriodEnd(ref end) => {
            stats.periods += 1;
            stats.unterminated.remove(&end.period);
            record
        }
        Record::Period(ref p) => {
            stats.passed += 1;
            stats.unterminated.insert(p.period.clone());
            record
        }
        Record::Other { .. } => {
            stats.passed += 1;
            record
        }
        Record::Usage(_) | Record::Job(_) | Record::Result(_) => {
            return Err(StreamError::WrongKind {
                line,
                kind: record.kind().to_string(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn converter() -> Converter {
        converter_with("cpu: { unit_factor: 60 }")
    }

    fn converter_with(component: &str) -> Converter {
        let yaml = format!(
            "offerings:\n  - name: T\n    waldur_api_url: https://w.example/api/\n    \
             waldur_offering_uuid: 0123456789abcdef0123456789abcdef\n    \
             backend_components:\n      {component}\n"
        );
        let config = Config::parse(&yaml, "t.yaml").unwrap();
        Converter::new(config.offering(None).unwrap()).unwrap()
    }

    fn run(input: &str) -> (Result<Stats, StreamError>, String) {
        let mut out = Vec::new();
        let result = convert_stream(&converter(), input.as_bytes(), &mut out);
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn converts_tres_and_passes_the_rest_through() {
        let input = concat!(
            r#"{"kind":"period","period":"2024-03","start":"2024-03-01T00:00:00Z","end":"2024-04-01T00:00:00Z","timezone":"UTC","index":1,"count":1,"closed":true}"#,
            "\n",
            r#"{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"tres_seconds":{"cpu":7200,"energy":5}}"#,
            "\n",
            r#"{"kind":"future","x":1}"#,
            "\n",
            r#"{"kind":"period_end","period":"2024-03","records":1,"jobs":1,"lines":1,"skipped_lines":0}"#,
            "\n",
        );
        let (stats, out) = run(input);
        let stats = stats.unwrap();
        assert_eq!((stats.converted, stats.periods, stats.passed), (1, 1, 2));
        assert!(stats.unterminated.is_empty());
        assert_eq!(
            stats.unused_tres.into_iter().collect::<Vec<_>>(),
            ["energy"]
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], input.lines().next().unwrap());
        // 7200 CPU-seconds / 60 / 60 = 2 CPU-hours.
        assert_eq!(
            lines[1],
            r#"{"kind":"usage","period":"2024-03","account":"a","user":null,"jobs":1,"components":{"cpu":"2.00"}}"#
        );
        assert_eq!(lines[2], r#"{"kind":"future","x":1}"#);
        assert_eq!(lines[3], input.lines().nth(3).unwrap());
    }

    #[test]
    fn the_fast_path_writes_escaped_names_as_serde_json_does() {
        let input = concat!(
            r#"{"kind":"tres", "period":"2024-03","account":"caf\u00e9 \"q\" \\ \/","#,
            r#""user":"\u0001\t\ud83d\ude00é","jobs":7,"tres_seconds":{"c\u0070u":7200}}"#,
            "\n",
        );
        assert!(line::parse(input.trim()).is_some());
        let (stats, out) = run(input);
        assert_eq!(stats.unwrap().converted, 1);
        assert_eq!(
            out,
            concat!(
                r#"{"kind":"usage","period":"2024-03","account":"café \"q\" \\ /","#,
                r#""user":"\u0001\t😀é","jobs":7,"components":{"cpu":"2.00"}}"#,
                "\n",
            )
        );
    }

    #[test]
    fn a_key_twice_is_refused_with_the_full_parsers_words() {
        let input = concat!(
            r#"{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"#,
            r#""tres_seconds":{"cpu":3600000,"cpu":7200000}}"#,
            "\n",
        );
        assert!(line::parse(input.trim()).is_none());
        let (result, out) = run(input);
        assert_eq!(
            result.unwrap_err().to_string(),
            "input line 1: bad `tres` record: the key \"cpu\" comes twice at line 1 column 104"
        );
        assert!(out.is_empty(), "{out}");
    }

    #[test]
    fn the_fast_path_refuses_an_amount_past_i128_hundredths_as_the_full_one_does() {
        // unit_factor 1: 3 seconds are 5 hundredths; 5k is the largest multiple of 5 an i128
        // holds.
        let c = converter_with("cpu: { unit_factor: 1 }");
        let k = i128::MAX as u128 / 5;
        let line = |seconds: u128| {
            format!(
                r#"{{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"tres_seconds":{{"cpu":{seconds}}}}}"#
            )
        };
        for (seconds, fits) in [(3 * k, true), (3 * (k + 1), false)] {
            let input = line(seconds);
            assert!(line::parse(&input).is_some(), "{input}");
            let mut out = Vec::new();
            let result = convert_stream(&c, input.as_bytes(), &mut out);
            let full = match Record::from_json(&input).unwrap() {
                Record::Tres(tres) => c.convert(&tres),
                other => panic!("{other:?}"),
            };
            match (result, full) {
                (Ok(_), Ok(usage)) if fits => {
                    let want = format!("{}\n", Record::Usage(usage).to_json());
                    assert_eq!(String::from_utf8(out).unwrap(), want);
                }
                (Err(e), Err(error)) if !fits => {
                    assert_eq!(e.to_string(), format!("input line 1: {error}"));
                    assert!(out.is_empty());
                }
                (fast, full) => panic!("{seconds}: {fast:?} / {full:?}"),
            }
        }
    }

    #[test]
    fn periods_cut_short_upstream_are_named() {
        let input = concat!(
            r#"{"kind":"tres","period":"2024-02","account":"a","user":null,"jobs":1,"tres_seconds":{}}"#,
            "\n",
            r#"{"kind":"period_end","period":"2024-02","records":1,"jobs":1,"lines":1,"skipped_lines":0}"#,
            "\n",
            r#"{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"tres_seconds":{}}"#,
            "\n",
        );
        let (stats, _) = run(input);
        assert_eq!(
            stats.unwrap().unterminated.into_iter().collect::<Vec<_>>(),
            ["2024-03"]
        );
    }

    #[test]
    fn converted_input_is_refused_with_its_line_and_no_period_end_follows() {
        let input = concat!(
            r#"{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"tres_seconds":{}}"#,
            "\n\n",
            r#"{"kind":"usage","period":"2024-03","account":"a","user":null,"jobs":1,"components":{}}"#,
            "\n",
            r#"{"kind":"period_end","period":"2024-03","records":2,"jobs":1,"lines":1,"skipped_lines":0}"#,
            "\n",
        );
        let (result, out) = run(input);
        assert_eq!(
            result.unwrap_err().to_string(),
            "input line 3: a `usage` record: the input is already converted (run usage-convert \
             once, on slurm-usage's output)"
        );
        assert!(!out.contains("period_end"), "{out}");
    }
}

//! One line of the pipeline as a [`Record`] of its `kind`: reading it from JSON and writing it
//! back, `kind` first.

use serde::{Deserialize, Serialize};

use super::{JobRecord, MonthEndRecord, MonthRecord, ResultRecord, TresRecord, UsageRecord};

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

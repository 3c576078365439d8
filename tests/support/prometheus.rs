//! Reading the Prometheus text exposition format (what node_exporter's textfile collector
//! reads): `# HELP` and `# TYPE` lines and samples with labels, label values unescaped
//! (`\\`, `\"`, `\n`; spaces and commas are plain characters inside the quotes).

use std::collections::BTreeMap;

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order of the line.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A whole exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Family name -> its HELP text, unescaped.
    pub help: BTreeMap<String, String>,
    /// Family name -> its TYPE (`counter`, `gauge`, `histogram`, `summary`, `untyped`).
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Reads `text`; an `Err` names the line and what is wrong with it.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut exposition = Exposition::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            let fail = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.trim_start().splitn(3, [' ', '\t']);
                match (words.next(), words.next(), words.next()) {
                    (Some("HELP"), Some(name), text) => {
                        let help = unescape(text.unwrap_or(""), false).map_err(|e| fail(&e))?;
                        exposition.help.insert(name.to_string(), help);
                    }
                    (Some("TYPE"), Some(name), Some(kind)) => {
                        exposition
                            .types
                            .insert(name.to_string(), kind.trim().to_string());
                    }
                    (Some("TYPE"), ..) => return Err(fail("a TYPE without a type")),
                    _ => {} // any other comment
                }
                continue;
            }
            exposition.samples.push(sample(line).map_err(|e| fail(&e))?);
        }
        Ok(exposition)
    }

    /// The TYPE of the family a sample belongs to (a histogram's or summary's `_bucket`, `_sum`
    /// and `_count` samples belong to the family without the suffix); `untyped` without one.
    pub fn kind(&self, sample_name: &str) -> &str {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| sample_name.strip_suffix(suffix))
            .find(|base| {
                self.types
                    .get(*base)
                    .is_some_and(|t| t == "histogram" || t == "summary")
            })
            .unwrap_or(sample_name);
        self.types.get(family).map_or("untyped", String::as_str)
    }

    /// Every sample as `name{k=v,...}` (labels sorted by name, values unquoted) -> value,
    /// after checking that its family's TYPE is one of `kinds`.
    pub fn by_key(&self, kinds: &[&str]) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .map(|s| {
                let kind = self.kind(&s.name);
                assert!(kinds.contains(&kind), "{} is a {kind}", s.name);
                let mut labels: Vec<String> =
                    s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                labels.sort();
                (format!("{}{{{}}}", s.name, labels.join(",")), s.value)
            })
            .collect()
    }
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// The leading metric or label name of `s` and the rest.
fn split_name(s: &str) -> Result<(&str, &str), String> {
    let end = s
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(s.len(), |(i, _)| i);
    if end == 0 {
        return Err("a name was expected".into());
    }
    Ok(s.split_at(end))
}

fn sample(line: &str) -> Result<Sample, String> {
    let (name, mut rest) = split_name(line)?;
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner.trim_start();
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = split_name(rest)?;
            let after = after.trim_start();
            let quoted = after
                .strip_prefix("=")
                .map(str::trim_start)
                .and_then(|a| a.strip_prefix('"'))
                .ok_or(format!("{label}: '=\"' expected"))?;
            let (value, after) = quoted_value(quoted)?;
            labels.push((label.to_string(), value));
            rest = after.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after.trim_start();
            } else if !rest.starts_with('}') {
                return Err("',' or '}' expected after a label".into());
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|e| format!("the value {v:?}: {e}"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|e| format!("the timestamp {timestamp:?}: {e}"))?;
    }
    if fields.next().is_some() {
        return Err("more than a value and a timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// A label value after its opening quote: the value unescaped and what follows the closing
/// quote.
fn quoted_value(s: &str) -> Result<(String, &str), String> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Ok((unescape(&s[..i], true)?, &s[i + 1..])),
            _ => {}
        }
    }
    Err("a label value is not closed".into())
}

/// `\\` and `\n` (and `\"` in label values) to the characters they stand for.
fn unescape(s: &str, label_value: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if label_value => out.push('"'),
            // HELP text keeps any other backslash as it is.
            Some(other) if !label_value => {
                out.push('\\');
                out.push(other);
            }
            other => return Err(format!("the escape \\{}", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{Exposition, Sample};

    #[test]
    fn help_type_and_samples_with_and_without_labels() {
        let text = "# HELP runs_total Runs, by \\\\ outcome.\\nSecond line.\n\
                    # TYPE runs_total counter\n\
                    # a plain comment\n\
                    \n\
                    runs_total{outcome=\"ok\",host=\"a\"} 3\n\
                    runs_total{outcome=\"failed\",} 1 1700000000000\n\
                    temperature -1.5e1\n\
                    up +Inf\n";
        let e = Exposition::parse(text).unwrap();
        assert_eq!(e.help["runs_total"], "Runs, by \\ outcome.\nSecond line.");
        assert_eq!(e.types["runs_total"], "counter");
        assert_eq!(e.kind("runs_total"), "counter");
        assert_eq!(e.kind("temperature"), "untyped");
        assert_eq!(
            e.samples[0],
            Sample {
                name: "runs_total".into(),
                labels: vec![("outcome".into(), "ok".into()), ("host".into(), "a".into())],
                value: 3.0,
            }
        );
        assert_eq!(
            e.samples[1].labels,
            vec![("outcome".into(), "failed".into())]
        );
        assert_eq!(e.samples[2].value, -15.0);
        assert_eq!(e.samples[3].value, f64::INFINITY);
        let keys: Vec<String> = e.by_key(&["counter", "untyped"]).into_keys().collect();
        assert_eq!(
            keys,
            [
                "runs_total{host=a,outcome=ok}",
                "runs_total{outcome=failed}",
                "temperature{}",
                "up{}"
            ]
        );
    }

    /// The crate this replaces dropped such samples without a word.
    #[test]
    fn label_values_keep_spaces_commas_quotes_backslashes_and_newlines() {
        let text = "# TYPE info gauge\n\
                    info{offering=\"HPC cluster, main\",note=\"say \\\"hi\\\"\\\\ \\n\"} 1\n";
        let e = Exposition::parse(text).unwrap();
        assert_eq!(
            e.samples,
            [Sample {
                name: "info".into(),
                labels: vec![
                    ("offering".into(), "HPC cluster, main".into()),
                    ("note".into(), "say \"hi\"\\ \n".into()),
                ],
                value: 1.0,
            }]
        );
        assert_eq!(
            e.by_key(&["gauge"]).into_keys().collect::<Vec<_>>(),
            ["info{note=say \"hi\"\\ \n,offering=HPC cluster, main}"]
        );
    }

    #[test]
    fn histogram_parts_belong_to_their_family() {
        let text = "# TYPE latency histogram\n\
                    latency_bucket{le=\"0.5\"} 2\n\
                    latency_sum 0.7\n\
                    latency_count 2\n";
        let e = Exposition::parse(text).unwrap();
        for name in ["latency_bucket", "latency_sum", "latency_count"] {
            assert_eq!(e.kind(name), "histogram");
        }
    }

    #[test]
    fn malformed_lines_are_refused_with_the_line_number() {
        for (text, why) in [
            ("a{b=\"c} 1\n", "not closed"),
            ("a{b=c} 1\n", "'=\"' expected"),
            ("a{b=\"c\" d=\"e\"} 1\n", "',' or '}'"),
            ("a\n", "no value"),
            ("a one\n", "the value"),
            ("a 1 2 3\n", "more than"),
            ("{b=\"c\"} 1\n", "a name"),
            ("ok 1\n# TYPE a\n", "line 2: a TYPE without a type"),
        ] {
            let err = Exposition::parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}

//! Run metrics for Prometheus, written for node_exporter's textfile collector.
//!
//! One waldur-push run (a push or an audit) updates one file in the Prometheus text
//! exposition format. The file is rewritten whole, atomically (a temporary file in the same
//! directory, then a rename), so the collector never reads half of it. Counters
//! (`..._total`) add this run's counts to those already in the file, so they only grow, as
//! Prometheus expects of counters; the last success and the audit's differences are kept from
//! the file when this run does not set them. Samples of other offerings in the same file are
//! kept as they are, so several offerings may share one file; a lock file beside it
//! (`PATH.lock`, created exclusively and removed after) keeps two runs from updating it at
//! once.
//!
//! This module knows nothing of Waldur or records: the caller hands it a [`RunMetrics`].
//!
//! ```
//! use waldur_usage::metrics::{RunMetrics, render};
//! let mut run = RunMetrics::new("hpc");
//! run.finished = 1_700_000_000.0;
//! run.duration_seconds = 1.5;
//! run.success = true;
//! run.records.updated = 3;
//! let text = render(&run, "");
//! assert!(text.contains("waldur_usage_records_total{offering=\"hpc\",status=\"updated\"} 3\n"));
//! assert!(text.contains("waldur_usage_last_success_timestamp_seconds{offering=\"hpc\"} 1700000000\n"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Result records of one run, by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Sent, and Waldur stored it.
    pub updated: u64,
    /// Waldur already held the value: nothing sent.
    pub unchanged: u64,
    /// Held back: a decrease (sent only with `--allow-decrease`).
    pub held: u64,
    /// Skipped: a closed month, an unknown account, an Erred resource, outside the prefix.
    pub skipped: u64,
    /// Not submitted because a request failed.
    pub failed: u64,
}

impl RecordCounts {
    /// `(status label, count)` in a fixed order.
    pub fn by_status(&self) -> [(&'static str, u64); 5] {
        [
            ("updated", self.updated),
            ("unchanged", self.unchanged),
            ("held", self.held),
            ("skipped", self.skipped),
            ("failed", self.failed),
        ]
    }
}

/// What one run reports.
#[derive(Debug, Clone, Default)]
pub struct RunMetrics {
    /// The offering's name in the config (the `offering` label).
    pub offering: String,
    /// When the run ended, in Unix seconds.
    pub finished: f64,
    /// How long it ran, in seconds.
    pub duration_seconds: f64,
    /// Whether it succeeded: nothing failed (a warning, exit 3, is a success).
    pub success: bool,
    /// Result records by status (a push; all zero for an audit).
    pub records: RecordCounts,
    /// Requests sent: `(method, code) -> count`; the code is the HTTP status, or `none` when
    /// no answer came (refused, reset, timed out).
    pub requests: BTreeMap<(String, String), u64>,
    /// For an audit: the lines whose status is not `ok`.
    pub audit_differences: Option<u64>,
}

impl RunMetrics {
    /// Empty metrics of `offering`.
    pub fn new(offering: &str) -> RunMetrics {
        RunMetrics {
            offering: offering.to_string(),
            ..RunMetrics::default()
        }
    }
}

/// One metric family: name, type and help text.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

/// Declares the metric families, each a constant whose doc comment is its `# HELP` text, and
/// [`FAMILIES`], all of them in the order the file lists them.
macro_rules! families {
    ($(#[doc = $help:literal] $constant:ident: $kind:ident $name:ident;)+) => {
        $(
            #[doc = $help]
            const $constant: Family = Family {
                name: stringify!($name),
                kind: stringify!($kind),
                help: $help.trim_ascii_start(),
            };
        )+
        /// Every family, in the order the file lists them.
        const FAMILIES: &[&Family] = &[$(&$constant),+];
    };
}

families! {
    /// When the last waldur-push run (push or audit) ended, in Unix seconds.
    LAST_RUN: gauge waldur_usage_last_run_timestamp_seconds;
    /// When the last waldur-push run in which nothing failed ended, in Unix seconds.
    LAST_SUCCESS: gauge waldur_usage_last_success_timestamp_seconds;
    /// Usage results by status: updated, unchanged, held (a decrease), skipped, failed.
    RECORDS: counter waldur_usage_records_total;
    /// HTTP requests to Waldur by method and status code (none: no answer).
    REQUESTS: counter waldur_usage_requests_total;
    /// How long the last waldur-push run took, in seconds.
    DURATION: gauge waldur_usage_run_duration_seconds;
    /// Values that differ between SLURM and Waldur in the last audit.
    AUDIT: gauge waldur_usage_audit_differences;
}

/// A label value escaped for the text format (backslash, double quote, newline).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `{offering="x",k="v"}`.
fn labels(offering: &str, more: &[(&str, &str)]) -> String {
    let mut s = format!("{{offering=\"{}\"", escape(offering));
    for (k, v) in more {
        let _ = write!(s, ",{k}=\"{}\"", escape(v));
    }
    s.push('}');
    s
}

/// A sample value as the text format writes it: integers without a fraction.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The samples of a previous file: `metric name -> (labels text -> value)`. Lines that are not
/// samples of our families (comments, others' metrics) are left out.
fn previous_samples(text: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(open) = line.find('{') else { continue };
        let Some(close) = line.rfind('}') else {
            continue;
        };
        let name = &line[..open];
        if !FAMILIES.iter().any(|f| f.name == name) || close < open {
            continue;
        }
        let Ok(value) = line[close + 1..].trim().parse::<f64>() else {
            continue;
        };
        out.entry(name.to_string())
            .or_default()
            .insert(line[open..=close].to_string(), value);
    }
    out
}

/// The whole file after `run`, given the `previous` file's text (empty when there is none).
pub fn render(run: &RunMetrics, previous: &str) -> String {
    let mut samples = previous_samples(previous);
    let mine = labels(&run.offering, &[]);
    let mut set = |family: &Family, labels: String, value: f64| {
        samples
            .entry(family.name.to_string())
            .or_default()
            .insert(labels, value);
    };
    set(&LAST_RUN, mine.clone(), run.finished);
    set(&DURATION, mine.clone(), run.duration_seconds);
    if run.success {
        set(&LAST_SUCCESS, mine.clone(), run.finished);
    }
    if let Some(d) = run.audit_differences {
        set(&AUDIT, mine.clone(), d as f64);
    }
    let mut add = |family: &Family, labels: String, delta: u64| {
        *samples
            .entry(family.name.to_string())
            .or_default()
            .entry(labels)
            .or_insert(0.0) += delta as f64;
    };
    for (status, count) in run.records.by_status() {
        add(
            &RECORDS,
            labels(&run.offering, &[("status", status)]),
            count,
        );
    }
    for ((method, code), count) in &run.requests {
        add(
            &REQUESTS,
            labels(&run.offering, &[("method", method), ("code", code)]),
            *count,
        );
    }
    let mut text = String::new();
    for family in FAMILIES {
        let Some(rows) = samples.get(family.name) else {
            continue;
        };
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(text, "# TYPE {} {}", family.name, family.kind);
        for (labels, value) in rows {
            let _ = writeln!(text, "{}{labels} {}", family.name, number(*value));
        }
    }
    text
}

/// Update the metrics file at `path` with `run`: under a lock on `PATH.lock`, read the file,
/// write the new text to a temporary file beside it, and rename it over the old one.
pub fn update_file(path: &Path, run: &RunMetrics) -> io::Result<()> {
    let context = |what: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    };
    let lock_path = with_suffix(path, ".lock");
    let _lock = LockFile::take(&lock_path).map_err(|e| context("cannot lock", &lock_path, e))?;
    let previous = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(context("cannot read", path, e)),
    };
    let text = render(run, &previous);
    let tmp = with_suffix(path, &format!(".tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        // node_exporter runs as another user, and the units' UMask=0077 would hide the file
        // from it: the metrics hold no secret, so the file is 0644 whatever the umask.
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(context("cannot write", path, e));
    }
    Ok(())
}

/// A lock held by creating a file that must not exist (`O_EXCL`), removed on drop. A lock
/// file older than [`STALE_LOCK`] was left by a run that died, and is taken over.
struct LockFile(PathBuf);

/// Updating the file takes milliseconds: a lock this old belongs to no running writer.
const STALE_LOCK: std::time::Duration = std::time::Duration::from_secs(60);

impl LockFile {
    fn take(path: &Path) -> io::Result<LockFile> {
        let started = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(_) => return Ok(LockFile(path.to_path_buf())),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if age.is_some_and(|a| a > STALE_LOCK) {
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    if started.elapsed() > std::time::Duration::from_secs(10) {
                        return Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            "another run has held it for 10 s",
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(offering: &str) -> RunMetrics {
        let mut r = RunMetrics::new(offering);
        r.finished = 1_700_000_000.5;
        r.duration_seconds = 2.25;
        r
    }

    #[test]
    fn counters_add_up_across_runs_and_the_last_success_is_kept_through_a_failure() {
        let mut first = run("hpc");
        first.success = true;
        first.records.updated = 4;
        first.requests.insert(("POST".into(), "201".into()), 4);
        let text = render(&first, "");
        let mut second = run("hpc");
        second.finished = 1_700_001_800.0;
        second.records.failed = 1;
        second.records.updated = 1;
        second.requests.insert(("POST".into(), "500".into()), 4);
        let text = render(&second, &text);
        let samples = previous_samples(&text);
        let get = |name: &str, labels: &str| samples[name][labels];
        assert_eq!(
            get(RECORDS.name, "{offering=\"hpc\",status=\"updated\"}"),
            5.0
        );
        assert_eq!(
            get(RECORDS.name, "{offering=\"hpc\",status=\"failed\"}"),
            1.0
        );
        assert_eq!(
            get(
                REQUESTS.name,
                "{offering=\"hpc\",method=\"POST\",code=\"201\"}"
            ),
            4.0
        );
        assert_eq!(
            get(
                REQUESTS.name,
                "{offering=\"hpc\",method=\"POST\",code=\"500\"}"
            ),
            4.0
        );
        // The failed run moved the last run, not the last success.
        assert_eq!(get(LAST_RUN.name, "{offering=\"hpc\"}"), 1_700_001_800.0);
        assert_eq!(
            get(LAST_SUCCESS.name, "{offering=\"hpc\"}"),
            1_700_000_000.5
        );
    }

    #[test]
    fn other_offerings_are_kept_and_label_values_are_escaped() {
        let other = render(&run("other"), "");
        let text = render(&run("a \"quoted\" \\ name"), &other);
        assert!(text.contains(
            "waldur_usage_last_run_timestamp_seconds{offering=\"a \\\"quoted\\\" \\\\ name\"} 1700000000.5\n"
        ));
        assert!(text.contains("waldur_usage_last_run_timestamp_seconds{offering=\"other\"}"));
        // One HELP and TYPE per family, even with two offerings.
        assert_eq!(
            text.matches("# TYPE waldur_usage_last_run_timestamp_seconds gauge")
                .count(),
            1
        );
    }
}

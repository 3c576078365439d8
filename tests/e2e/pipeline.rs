//! Running our four tools as real processes, the config they share, and the report windows.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::support::scratch::write_mode;
use std::process::{Command, Stdio};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use waldur_usage::records::{MonthRecord, Record, RecordReader};

use super::cluster::CLUSTER;

/// The billing time zone of the test config: not the machine's (UTC), so local-time handling
/// between the tools and sacct is exercised for real.
pub const TIMEZONE: &str = "Europe/Tallinn";

/// The allocation prefix of the test config.
pub const PREFIX: &str = "hpc_";

/// Configured components: (name = TRES = Waldur type, unit_factor as written, factor as
/// mantissa / 10^scale). Factors that are not whole numbers exercise exact decimal division.
pub const COMPONENTS: [(&str, &str, u128, u32); 3] = [
    // CPU-minutes.
    ("cpu", "1", 1, 0),
    // MiB-minutes / 102.4: tenths of GiB-minutes.
    ("mem", "102.4", 1024, 1),
    // GPU-quarter-minutes.
    ("gres/gpu", "0.25", 25, 2),
];

/// The TRES names of the configured components.
pub fn tres_names() -> Vec<&'static str> {
    COMPONENTS.iter().map(|c| c.0).collect()
}

/// Writes the waldur-site-agent style config (mode 0600) and returns its path.
pub fn write_config(dir: &Path, waldur_api_url: &str, offering_uuid: &str) -> PathBuf {
    let mut components = String::new();
    for (name, factor, _, _) in COMPONENTS {
        components.push_str(&format!(
            "      {name}:\n        measured_unit: units\n        unit_factor: {factor}\n        accounting_type: usage\n        label: {name}\n"
        ));
    }
    let yaml = format!(
        "timezone: {TIMEZONE}\n\
         offerings:\n\
         \x20 - name: e2e\n\
         \x20   waldur_api_url: {waldur_api_url}\n\
         \x20   waldur_offering_uuid: {offering_uuid}\n\
         \x20   backend_type: slurm\n\
         \x20   backend_settings:\n\
         \x20     slurm_bin_path: /usr/bin\n\
         \x20     cluster_name: {CLUSTER}\n\
         \x20     allocation_prefix: {PREFIX}\n\
         \x20   backend_components:\n{components}"
    );
    let path = dir.join("config.yaml");
    write_mode(&path, &yaml, 0o600);
    path
}

/// The path of one of our binaries.
pub fn bin(name: &str) -> &'static str {
    match name {
        "month-split" => env!("CARGO_BIN_EXE_month-split"),
        "slurm-usage" => env!("CARGO_BIN_EXE_slurm-usage"),
        "usage-convert" => env!("CARGO_BIN_EXE_usage-convert"),
        "waldur-push" => env!("CARGO_BIN_EXE_waldur-push"),
        other => panic!("no binary {other}"),
    }
}

/// Runs one stage with `input` on stdin; returns stdout. Panics with its stderr if it fails.
pub fn stage(name: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    stage_exits(name, args, input, 0)
}

/// [`stage`], expecting exit status `code` (waldur-push exits 3 when it skipped something).
pub fn stage_exits(name: &str, args: &[&str], input: &[u8], code: i32) -> Vec<u8> {
    let mut child = Command::new(bin(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // A stage may exit without reading everything; that shows in its status.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for stage");
    writer.join().expect("stdin writer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{name} {args:?} failed ({}):\n{stderr}",
        out.status
    );
    if !stderr.trim().is_empty() {
        eprintln!("--- {name} stderr:\n{stderr}");
    }
    out.stdout
}

/// Parses a stage's output into records (a bad line fails the test naming it).
pub fn records(output: &[u8]) -> Vec<Record> {
    RecordReader::new(output)
        .map(|r| r.map(|(_, rec)| rec).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The config time zone.
pub fn zone() -> TimeZone {
    TimeZone::get(TIMEZONE).expect("tzdata has the test zone")
}

/// Wall-clock time of `t` in the config zone, as sacct reads it (`YYYY-MM-DDTHH:MM:SS`).
pub fn local(t: Timestamp) -> String {
    t.to_zoned(zone()).strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// RFC 3339 with the zone's offset, as period records carry instants.
pub fn rfc3339(t: Timestamp) -> String {
    t.to_zoned(zone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// First instant of the billing month holding `t`.
pub fn month_start(t: Timestamp) -> Timestamp {
    t.to_zoned(zone())
        .first_of_month()
        .and_then(|d| d.start_of_day())
        .expect("month start")
        .timestamp()
}

/// `YYYY-MM` of the month holding `t`.
pub fn month(t: Timestamp) -> String {
    t.to_zoned(zone()).strftime("%Y-%m").to_string()
}

/// A `period` record for an arbitrary window `[start, end)` inside one month.
pub fn period_record(start: Timestamp, end: Timestamp) -> Vec<u8> {
    let record = Record::Period(MonthRecord {
        period: month(start),
        start: rfc3339(start),
        end: rfc3339(end),
        timezone: TIMEZONE.into(),
        index: 1,
        count: 1,
        closed: end <= Timestamp::now(),
    });
    format!("{}\n", record.to_json()).into_bytes()
}

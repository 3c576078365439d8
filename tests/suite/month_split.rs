//! `month-split` run as a binary: exact periods for the time zones and calendar edges that
//! break naive month arithmetic, and plain usage errors with exit 64.

use crate::support::text::assert_contains;
use assert_cmd::cargo::cargo_bin_cmd;

use crate::support::scratch::ScratchFile;

/// Run month-split with `args` (logs off); return (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = cargo_bin_cmd!("month-split")
        .args(["--log-level", "error"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Run and expect success; stdout lines.
fn lines(args: &[&str]) -> Vec<String> {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "month-split {args:?} failed: {err}");
    out.lines().map(String::from).collect()
}

/// A `period` record as month-split writes it.
fn record(period: &str, start: &str, end: &str, tz: &str, i: u32, n: u32, closed: bool) -> String {
    format!(
        "{{\"kind\":\"period\",\"period\":\"{period}\",\"start\":\"{start}\",\"end\":\"{end}\",\
         \"timezone\":\"{tz}\",\"index\":{i},\"count\":{n},\"closed\":{closed}}}"
    )
}

const LATER: &str = "2025-01-01T00:00:00Z";

#[test]
fn dst_months_in_berlin_start_and_end_with_the_offset_in_force() {
    // Clocks go forward on 2024-03-31 (+01:00 -> +02:00) and back on 2024-10-27.
    assert_eq!(
        lines(&[
            "--tz",
            "Europe/Berlin",
            "--start",
            "2024-03-15",
            "--end",
            "2024-03-15",
            "--now",
            LATER
        ]),
        [record(
            "2024-03",
            "2024-03-01T00:00:00+01:00",
            "2024-04-01T00:00:00+02:00",
            "Europe/Berlin",
            1,
            1,
            true
        )]
    );
    assert_eq!(
        lines(&[
            "--tz",
            "Europe/Berlin",
            "--start",
            "2024-10",
            "--now",
            LATER,
            "--end",
            "2024-10"
        ]),
        [record(
            "2024-10",
            "2024-10-01T00:00:00+02:00",
            "2024-11-01T00:00:00+01:00",
            "Europe/Berlin",
            1,
            1,
            true
        )]
    );
}

#[test]
fn dst_months_in_new_york() {
    // 2024-03-10 -05:00 -> -04:00; 2024-11-03 back to -05:00.
    assert_eq!(
        lines(&[
            "--tz",
            "America/New_York",
            "--start",
            "2024-03-10",
            "--end",
            "2024-03-10",
            "--now",
            LATER
        ]),
        [record(
            "2024-03",
            "2024-03-01T00:00:00-05:00",
            "2024-04-01T00:00:00-04:00",
            "America/New_York",
            1,
            1,
            true
        )]
    );
    assert_eq!(
        lines(&[
            "--tz",
            "America/New_York",
            "--start",
            "2024-11-03",
            "--end",
            "2024-11-03",
            "--now",
            LATER
        ]),
        [record(
            "2024-11",
            "2024-11-01T00:00:00-04:00",
            "2024-12-01T00:00:00-05:00",
            "America/New_York",
            1,
            1,
            true
        )]
    );
}

#[test]
fn half_hour_offset_kolkata_picks_the_local_month() {
    // 2024-06-30T20:00Z is 2024-07-01T01:30+05:30: already July in Kolkata, still June in UTC.
    assert_eq!(
        lines(&[
            "--tz",
            "Asia/Kolkata",
            "--current",
            "--now",
            "2024-06-30T20:00:00Z"
        ]),
        [record(
            "2024-07",
            "2024-07-01T00:00:00+05:30",
            "2024-08-01T00:00:00+05:30",
            "Asia/Kolkata",
            1,
            1,
            false
        )]
    );
}

#[test]
fn plus_fourteen_kiritimati_is_a_day_ahead_of_utc() {
    // 2024-03-01T00:30+14:00 is 2024-02-29T10:30Z: March there, February in UTC. February ended
    // at 2024-03-01T00:00+14:00, 30 minutes before now, so it is closed.
    assert_eq!(
        lines(&[
            "--tz",
            "Pacific/Kiritimati",
            "--current",
            "--previous",
            "1",
            "--now",
            "2024-03-01T00:30:00+14:00"
        ]),
        [
            record(
                "2024-02",
                "2024-02-01T00:00:00+14:00",
                "2024-03-01T00:00:00+14:00",
                "Pacific/Kiritimati",
                1,
                2,
                true
            ),
            record(
                "2024-03",
                "2024-03-01T00:00:00+14:00",
                "2024-04-01T00:00:00+14:00",
                "Pacific/Kiritimati",
                2,
                2,
                false
            ),
        ]
    );
}

#[test]
fn leap_february_has_a_29th_and_a_common_one_does_not() {
    // 2024 is a leap year: 2024-02-29 is a day of February; YYYY-MM as --end means its last day.
    let feb = record(
        "2024-02",
        "2024-02-01T00:00:00+00:00",
        "2024-03-01T00:00:00+00:00",
        "UTC",
        1,
        1,
        true,
    );
    assert_eq!(
        lines(&[
            "--start",
            "2024-02-29",
            "--end",
            "2024-02-29",
            "--now",
            LATER
        ]),
        std::slice::from_ref(&feb)
    );
    assert_eq!(
        lines(&["--start", "2024-02", "--end", "2024-02", "--now", LATER]),
        [feb]
    );
    let (code, out, err) = run(&[
        "--start",
        "2023-02-29",
        "--end",
        "2023-03-01",
        "--now",
        LATER,
    ]);
    assert_eq!((code, out.as_str()), (64, ""));
    assert_eq!(
        err,
        "month-split: error: \"2023-02-29\" is not a date; write it as YYYY-MM-DD, e.g. 2024-03-31\n"
    );
}

#[test]
fn a_range_across_new_year_covers_both_months_and_only_the_past_one_is_closed() {
    assert_eq!(
        lines(&[
            "--start",
            "2023-12-15",
            "--end",
            "2024-01-15",
            "--now",
            "2024-01-10T00:00:00Z",
            "--format",
            "tsv"
        ]),
        [
            "2023-12\t2023-12-01T00:00:00+00:00\t2024-01-01T00:00:00+00:00\t1\t2\ttrue",
            "2024-01\t2024-01-01T00:00:00+00:00\t2024-02-01T00:00:00+00:00\t2\t2\tfalse",
        ]
    );
}

#[test]
fn previous_one_at_ten_past_midnight_on_the_first_is_last_month() {
    // 00:10 Berlin on March 1st is 23:10 UTC on February 29th: the local month has turned.
    let now = "2024-03-01T00:10:00+01:00";
    let feb = record(
        "2024-02",
        "2024-02-01T00:00:00+01:00",
        "2024-03-01T00:00:00+01:00",
        "Europe/Berlin",
        1,
        1,
        true,
    );
    assert_eq!(
        lines(&["--tz", "Europe/Berlin", "--previous", "1", "--now", now]),
        [feb]
    );
    assert_eq!(
        lines(&[
            "--tz",
            "Europe/Berlin",
            "--current",
            "--previous",
            "1",
            "--now",
            now
        ]),
        [
            record(
                "2024-02",
                "2024-02-01T00:00:00+01:00",
                "2024-03-01T00:00:00+01:00",
                "Europe/Berlin",
                1,
                2,
                true
            ),
            record(
                "2024-03",
                "2024-03-01T00:00:00+01:00",
                "2024-04-01T00:00:00+02:00",
                "Europe/Berlin",
                2,
                2,
                false
            ),
        ]
    );
}

#[test]
fn a_five_year_range_is_sixty_numbered_periods() {
    let got = lines(&[
        "--start",
        "2020-01-01",
        "--end",
        "2024-12-31",
        "--now",
        "2024-06-15T00:00:00Z",
        "--format",
        "tsv",
    ]);
    // 5 years x 12 months = 60; June 2024 (the 54th: 4 x 12 + 6) is the first still open.
    assert_eq!(got.len(), 60);
    assert_eq!(
        got[0],
        "2020-01\t2020-01-01T00:00:00+00:00\t2020-02-01T00:00:00+00:00\t1\t60\ttrue"
    );
    assert_eq!(
        got[52],
        "2024-05\t2024-05-01T00:00:00+00:00\t2024-06-01T00:00:00+00:00\t53\t60\ttrue"
    );
    assert_eq!(
        got[53],
        "2024-06\t2024-06-01T00:00:00+00:00\t2024-07-01T00:00:00+00:00\t54\t60\tfalse"
    );
    assert_eq!(
        got[59],
        "2024-12\t2024-12-01T00:00:00+00:00\t2025-01-01T00:00:00+00:00\t60\t60\tfalse"
    );
    for (i, line) in got.iter().enumerate() {
        assert_eq!(line.split('\t').nth(3), Some((i + 1).to_string().as_str()));
    }
}

fn config(extra: &str) -> ScratchFile {
    ScratchFile::new(
        "month-split",
        "config.yaml",
        &format!(
            "{extra}offerings:\n  - name: T\n    waldur_api_url: https://w.example/api/\n    \
         waldur_offering_uuid: 0123456789abcdef0123456789abcdef\n    \
         backend_components:\n      cpu: {{ unit_factor: 60000 }}\n"
        ),
    )
}

#[test]
fn the_config_gives_the_zone_and_the_reporting_cycle_and_flags_override_it() {
    let cfg = config("timezone: Europe/Tallinn\nreporting_periods: 3\n");
    let c = cfg.as_str();
    let now = "2024-06-15T12:00:00Z";
    // No selection flag: current month + reporting_periods - 1 = 2 earlier months.
    assert_eq!(
        lines(&["-c", c, "--now", now, "--format", "tsv"]),
        [
            "2024-04\t2024-04-01T00:00:00+03:00\t2024-05-01T00:00:00+03:00\t1\t3\ttrue",
            "2024-05\t2024-05-01T00:00:00+03:00\t2024-06-01T00:00:00+03:00\t2\t3\ttrue",
            "2024-06\t2024-06-01T00:00:00+03:00\t2024-07-01T00:00:00+03:00\t3\t3\tfalse",
        ]
    );
    // --previous and --tz win over the config.
    assert_eq!(
        lines(&[
            "-c",
            c,
            "--now",
            now,
            "--current",
            "--previous",
            "0",
            "--tz",
            "UTC",
            "--format",
            "tsv"
        ]),
        ["2024-06\t2024-06-01T00:00:00+00:00\t2024-07-01T00:00:00+00:00\t1\t1\tfalse"]
    );
    // Without a config and without flags: the current month in UTC.
    assert_eq!(
        lines(&["--now", now, "--format", "tsv"]),
        ["2024-06\t2024-06-01T00:00:00+00:00\t2024-07-01T00:00:00+00:00\t1\t1\tfalse"]
    );
}

#[test]
fn usage_errors_exit_64_with_a_plain_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--start", "2024-03-01", "--end", "2024-02-01"],
            "the end date 2024-02-01 is before the start date 2024-03-01",
        ),
        (
            &["--start", "2024/03/01"],
            "\"2024/03/01\" is not a date; write it as YYYY-MM-DD, e.g. 2024-03-31",
        ),
        (
            &["--current", "--tz", "Europe/Atlantis"],
            "unknown time zone \"Europe/Atlantis\"; use an IANA name such as Europe/Tallinn or UTC (is tzdata installed?)",
        ),
        (
            &["--start", "2010-01-01", "--end", "2024-06-30"],
            "2010-01-01 to 2024-06-30 covers 174 months, more than the limit of 120 (10 years); \
             split it into runs of at most 10 years: --start 2010-01-01 --end 2019-12-31, then \
             --start 2020-01-01 --end 2024-06-30",
        ),
        (
            &["--current", "--now", "yesterday"],
            "--now \"yesterday\" is not an RFC 3339 instant with an offset, e.g. 2024-03-01T00:10:00+01:00 or 2024-03-01T00:10:00Z",
        ),
        (
            &["--end", "2024-01-01"],
            "--end needs --start (the first day of the range)",
        ),
        (
            &["--start", "2024-01-01", "--current"],
            "--start/--end pick the months themselves; do not combine them with --current or --previous",
        ),
    ];
    for (args, message) in cases {
        let (code, out, err) = run(args);
        assert_eq!(code, 64, "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}");
        assert_eq!(err, format!("month-split: error: {message}\n"), "{args:?}");
    }
    // A range of exactly 10 years (120 months) is allowed.
    assert_eq!(
        lines(&["--start", "2010-01", "--end", "2019-12", "--now", LATER]).len(),
        120
    );
}

#[test]
fn a_bad_config_exits_78_naming_the_key() {
    let cfg = config("timezone: Mars/Olympus\n");
    let (code, _, err) = run(&["-c", cfg.as_str(), "--current"]);
    assert_eq!(code, 78);
    assert!(
        err.starts_with(&format!(
            "month-split: error: {}: timezone: unknown time zone \"Mars/Olympus\"",
            cfg.as_str()
        )),
        "{err}"
    );
}

#[test]
fn help_teaches_with_examples_and_version_works() {
    let out = cargo_bin_cmd!("month-split")
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for needle in [
        "--start 2024-01-01 --end 2024-12-31",
        "--format tsv",
        "while IFS=",
        "--version",
        "--log-level",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
    let out = cargo_bin_cmd!("month-split")
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("month-split {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn instants_and_months_outside_1970_to_9998_are_refused_saying_so() {
    let range = "lies in the year {}: the tools bill months from 1970 to 9998 only (check the \
                 value, or the system clock)";
    for (now, year) in [
        ("0000-01-01T00:00:00Z", "0"),
        ("1969-12-31T12:00:00Z", "1969"),
        ("9999-06-01T00:00:00Z", "9999"),
    ] {
        let (code, out, err) = run(&["--now", now, "--current"]);
        assert_eq!(code, 64, "{err}");
        assert!(out.is_empty());
        assert_eq!(
            err.trim(),
            format!(
                "month-split: error: --now {now:?} {}",
                range.replace("{}", year)
            )
        );
    }
    // A range that reaches before 1970 names the first month outside.
    let (code, _, err) = run(&[
        "--now",
        "1970-01-15T00:00:00Z",
        "--current",
        "--previous",
        "1",
    ]);
    assert_eq!(code, 64);
    assert_contains(
        &err,
        &format!("\"1969-12\" {}", range.replace("{}", "1969")),
    );
    // slurm-usage reads --now the same way.
    let out = cargo_bin_cmd!("slurm-usage")
        .args([
            "--now",
            "0000-01-01T00:00:00Z",
            "--period",
            "2024-03",
            "--input",
            "/dev/null",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert_contains(&err, "--now \"0000-01-01T00:00:00Z\" lies in the year 0");
    let out = cargo_bin_cmd!("slurm-usage")
        .args(["--period", "9999-01", "--input", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("\"9999-01\" {}", range.replace("{}", "9999")))
    );
}

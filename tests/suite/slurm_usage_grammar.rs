//! The strict line grammar of sacct output, end to end through the `slurm-usage` binary with
//! `--period 2024-03 --input -`: each fault that used to pass silently now fails the period
//! (exit 65, the error names the line, the field and what is wrong), or with
//! `--skip-bad-lines` is counted in `skipped_lines` while the other lines add up exactly.

use std::collections::BTreeMap;

use crate::support::text::assert_contains;
use assert_cmd::Command;
use serde_json::Value;

const HEADER: &str = "JobIDRaw|Account|User|State|ElapsedRaw|AllocTRES|ReqTRES\n";
/// Line 2: alice, 100 s of cpu=2,mem=10M -> cpu 200, mem 1000.
const ALICE: &str = "1|hpc_a|alice|COMPLETED|100|cpu=2,mem=10M|\n";
/// Line 4: bob, 10 s of cpu=1 -> cpu 10.
const BOB: &str = "2|hpc_a|bob|COMPLETED|10|cpu=1|\n";

/// Header, alice, `bad` as line 3, bob.
fn dump(bad: &str) -> Vec<u8> {
    format!("{HEADER}{ALICE}{bad}\n{BOB}").into_bytes()
}

fn run(input: Vec<u8>, skip: bool) -> (Option<i32>, String, Vec<Value>) {
    let mut args = vec!["--period", "2024-03", "--input", "-"];
    if skip {
        args.push("--skip-bad-lines");
    }
    let out = Command::cargo_bin("slurm-usage")
        .unwrap()
        .env_remove("WALDUR_SITE_AGENT_LOG_LEVEL")
        .args(&args)
        .write_stdin(input)
        .output()
        .unwrap();
    let recs = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        recs,
    )
}

/// Exit 65, nothing written, and stderr names `line` with exactly `reason`.
fn assert_refused(input: Vec<u8>, line: u64, reason: &str) {
    let (code, err, recs) = run(input.clone(), false);
    assert_eq!(code, Some(65), "{err}");
    assert!(recs.is_empty(), "a failed period wrote records");
    let want = format!("sacct output line {line}: {reason}: ");
    assert!(
        err.contains(&want),
        "want {want:?} in {err:?} for {:?}",
        String::from_utf8_lossy(&input)
    );
    assert_contains(&err, "use --skip-bad-lines");
}

fn usage(recs: &[Value], user: Option<&str>) -> BTreeMap<String, u64> {
    let r = recs
        .iter()
        .find(|r| r["kind"] == "tres" && r["account"] == "hpc_a" && r["user"].as_str() == user)
        .unwrap_or_else(|| panic!("no record for {user:?} in {recs:?}"));
    r["tres_seconds"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// With --skip-bad-lines: exit 0, one skipped line of `lines`, alice and bob exact.
fn assert_skipped_rest_exact(input: Vec<u8>, lines: u64) {
    let (code, err, recs) = run(input, true);
    assert_eq!(code, Some(0), "{err}");
    let end = recs.last().unwrap();
    assert_eq!(end["kind"], "period_end");
    assert_eq!(end["skipped_lines"], 1, "{err}");
    assert_eq!(end["lines"], lines);
    assert_eq!(end["jobs"], 2);
    assert_eq!(
        usage(&recs, Some("alice")),
        map(&[("cpu", 200), ("mem", 1000)])
    );
    assert_eq!(usage(&recs, Some("bob")), map(&[("cpu", 10)]));
    // The account total: 200 + 10 CPU-s, 1000 MiB-s.
    assert_eq!(usage(&recs, None), map(&[("cpu", 210), ("mem", 1000)]));
    assert_contains(&err, "skipping sacct output line");
}

#[test]
fn tres_names_outside_slurms_set_are_bad_lines() {
    let unknown = "unknown TRES type (SLURM has cpu, mem, energy, node, billing, fs, vmem, \
                   pages, gres, license, bb, ic, in lower case)";
    for (entry, why) in [
        ("me m=256000M", unknown),
        ("CPU=64", unknown),
        ("me\0m=1", unknown),
        ("foo=3", unknown),
        ("gres/=1", "the /name of the TRES is empty"),
        (
            "gres=1",
            "this TRES type needs a /name (gres/gpu, license/matlab, ...)",
        ),
        (
            "gres/g pu=1",
            "the /name of the TRES holds a space, a control character, = , or a byte outside \
             printable ASCII",
        ),
    ] {
        let bad = format!("3|hpc_a|alice|COMPLETED|5|cpu=1,{entry}|");
        let reason = format!("AllocTRES: TRES entry {entry:?}: {why}");
        assert_refused(dump(&bad), 3, &reason);
        assert_skipped_rest_exact(dump(&bad), 3);
    }
    // Real names still count: gres/gpu:a100, license/..., fs/disk.
    let good = "3|hpc_a|alice|COMPLETED|5|cpu=1,gres/gpu:a100=2,license/matlab@srv=1,fs/disk=7|";
    let (code, err, recs) = run(dump(good), false);
    assert_eq!(code, Some(0), "{err}");
    // alice: cpu 200 + 5, mem 1000, gpus 2 x 5 = 10 (typed only, summed), license 5, fs 35.
    assert_eq!(
        usage(&recs, Some("alice")),
        map(&[
            ("cpu", 205),
            ("fs/disk", 35),
            ("gres/gpu", 10),
            ("gres/gpu:a100", 10),
            ("license/matlab@srv", 5),
            ("mem", 1000)
        ])
    );
}

#[test]
fn elapsed_longer_than_the_period_is_a_bad_line() {
    // March 2024 in UTC: 31 x 86400 = 2,678,400 s.
    for raw in ["2678401", "9999999999999999999"] {
        let bad = format!("3|hpc_a|alice|COMPLETED|{raw}|cpu=1|");
        let n: u64 = raw.parse().unwrap();
        let reason = format!("ElapsedRaw \"{raw}\" is {n} s, longer than the period (2678400 s)");
        assert_refused(dump(&bad), 3, &reason);
        assert_skipped_rest_exact(dump(&bad), 3);
    }
    let (code, err, recs) = run(dump("3|hpc_a|alice|COMPLETED|2678400|cpu=1|"), false);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        usage(&recs, Some("alice")),
        map(&[("cpu", 200 + 2_678_400), ("mem", 1000)])
    );
}

#[test]
fn a_last_line_without_newline_means_the_input_was_cut() {
    let mut input = format!("{HEADER}{ALICE}{BOB}").into_bytes();
    input.pop();
    assert_refused(input.clone(), 3, "no newline at the end: the input was cut");
    // Skipped: bob's cut line is not counted.
    let (code, err, recs) = run(input, true);
    assert_eq!(code, Some(0), "{err}");
    let end = recs.last().unwrap();
    assert_eq!(
        (end["skipped_lines"].clone(), end["lines"].clone()),
        (1.into(), 2.into())
    );
    assert_eq!(usage(&recs, None), map(&[("cpu", 200), ("mem", 1000)]));
    assert!(recs.iter().all(|r| r["user"] != "bob"));
}

#[test]
fn blank_lines_are_bad_lines() {
    for blank in ["", "  \t", "\r"] {
        assert_refused(
            dump(blank),
            3,
            "the line is blank (sacct prints no blank lines)",
        );
        assert_skipped_rest_exact(dump(blank), 3);
    }
    // A blank first line: still a bad line; when skipped, the header after it still counts.
    let input = format!("\n{HEADER}{ALICE}{BOB}").into_bytes();
    assert_refused(
        input.clone(),
        1,
        "the line is blank (sacct prints no blank lines)",
    );
    let (code, err, recs) = run(input, true);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(recs.last().unwrap()["skipped_lines"], 1);
    assert_eq!(usage(&recs, None), map(&[("cpu", 210), ("mem", 1000)]));
}

#[test]
fn states_sacct_does_not_print_are_bad_lines() {
    let why = "is not a job state sacct prints (COMPLETED, FAILED, CANCELLED by <uid>, ...)";
    for (line, state) in [
        // User and State swapped.
        ("3|hpc_a|COMPLETED|hpcuser1|5|cpu=1|", "hpcuser1"),
        ("3|hpc_a|alice|completed|5|cpu=1|", "completed"),
        ("3|hpc_a|alice|CANCELLED+|5|cpu=1|", "CANCELLED+"),
        ("3|hpc_a|alice|CANCELLED by x|5|cpu=1|", "CANCELLED by x"),
        ("3|hpc_a|alice||5|cpu=1|", ""),
    ] {
        assert_refused(dump(line), 3, &format!("State {state:?} {why}"));
        assert_skipped_rest_exact(dump(line), 3);
    }
    // What sacct prints is accepted: 5 s of cpu=1 each for carol.
    let ok = "3|hpc_a|carol|CANCELLED by 0|5|cpu=1|\n4|hpc_a|carol|OUT_OF_MEMORY|5|cpu=1|";
    let (code, err, recs) = run(dump(ok), false);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(usage(&recs, Some("carol")), map(&[("cpu", 10)]));
}

#[test]
fn account_and_user_names_with_odd_characters_are_bad_lines() {
    let rule = "but names are made of A-Z a-z 0-9 . _ @ $ -";
    for (line, column, name, what) in [
        (
            "3|hpc a|alice|COMPLETED|5|cpu=1|",
            "Account",
            "hpc a",
            "a space",
        ),
        (
            "3|hpc_a|al\0ice|COMPLETED|5|cpu=1|",
            "User",
            "al\0ice",
            "a NUL byte",
        ),
        (
            "3|hpc_a|al\tice|COMPLETED|5|cpu=1|",
            "User",
            "al\tice",
            "a tab",
        ),
        (
            "3|hpc_a+b|alice|COMPLETED|5|cpu=1|",
            "Account",
            "hpc_a+b",
            "'+'",
        ),
        (
            "3|hpc_a|dom\\alice|COMPLETED|5|cpu=1|",
            "User",
            "dom\\alice",
            "'\\\\'",
        ),
    ] {
        let reason = format!("{column} {name:?} holds {what}, {rule}");
        assert_refused(dump(line), 3, &reason);
        assert_skipped_rest_exact(dump(line), 3);
    }
    for c in "()|,=*\"';:/!#%&".chars() {
        let line = format!("3|hpc_a|al{c}ice|COMPLETED|5|cpu=1|");
        let (code, err, _) = run(dump(&line), false);
        assert_eq!(code, Some(65), "{c:?}: {err}");
        assert!(err.contains("sacct output line 3: "), "{c:?}: {err}");
    }
    // The allowed characters pass: 5 s of cpu=1.
    let (code, err, recs) = run(dump("3|hpc_a|j.doe-2@x$|COMPLETED|5|cpu=1|"), false);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(usage(&recs, Some("j.doe-2@x$")), map(&[("cpu", 5)]));
}

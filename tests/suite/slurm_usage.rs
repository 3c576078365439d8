//! slurm-usage on saved sacct output (`--input`): every `--parsable2` capture of the fixtures,
//! the reference agent's worked examples E3 and E7 in `--compat reference`, and the input
//! errors. Expected numbers are worked out from the fixture lines in the comments.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::support::scratch::ScratchFile;
use crate::support::text::assert_contains;
use assert_cmd::Command;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sacct")
        .join(name);
    p.to_string_lossy().into_owned()
}

fn cmd() -> Command {
    let mut c = Command::cargo_bin("slurm-usage").unwrap();
    // No config on the test machine: --input runs without one (UTC, no prefix).
    c.env_remove("WALDUR_SITE_AGENT_LOG_LEVEL");
    c
}

/// Run and return the records of stdout; asserts the exit status.
fn records(args: &[&str], code: i32) -> Vec<Value> {
    let out = cmd().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `tres_seconds` of the record for (account, user) as name -> value.
fn usage(recs: &[Value], account: &str, user: Option<&str>) -> BTreeMap<String, u128> {
    let r = recs
        .iter()
        .find(|r| r["kind"] == "tres" && r["account"] == account && r["user"].as_str() == user)
        .unwrap_or_else(|| panic!("no record for {account}/{user:?}"));
    r["tres_seconds"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap() as u128))
        .collect()
}

fn jobs(recs: &[Value], account: &str, user: Option<&str>) -> u64 {
    recs.iter()
        .find(|r| r["kind"] == "tres" && r["account"] == account && r["user"].as_str() == user)
        .unwrap()["jobs"]
        .as_u64()
        .unwrap()
}

fn map(pairs: &[(&str, u128)]) -> BTreeMap<String, u128> {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

fn end(recs: &[Value]) -> &Value {
    let last = recs.last().unwrap();
    assert_eq!(last["kind"], "period_end");
    last
}

/// The eleven allocations of the capture (b3 has them with AllocTRES and ElapsedRaw):
///
/// ```text
/// job  account     user      ElapsedRaw  AllocTRES
/// 1    hpc_alloc2  hpcuser1   2          billing=2,cpu=2,mem=200M,node=1
/// 2    hpc_alloc1  hpcuser2   4          billing=2,cpu=2,gres/gpu=1,mem=1G,node=1
/// 3    hpc_alloc2  hpcuser1  78          billing=1,cpu=1,mem=64M,node=1
/// 4    hpc_alloc1  hpcuser1   4          billing=1,cpu=1,mem=100M,node=1
/// 6    hpc_alloc2  hpcuser3   1          billing=1,cpu=1,mem=50M,node=1
/// 8    hpc_alloc1  hpcuser2   2          billing=1,cpu=1,mem=50M,node=1
/// 5_1  hpc_alloc2  hpcuser3   2          billing=1,cpu=1,mem=50M,node=1
/// 5_2  hpc_alloc2  hpcuser3   2          (same)
/// 5_3  hpc_alloc2  hpcuser3   2          (same)
/// 11   hpc_alloc2  hpcuser3   0          (empty: cancelled while pending)
/// 12   hpc_alloc1  hpcuser1   0          billing=1,cpu=1,mem=50M,node=1
/// ```
fn assert_whole_day(recs: &[Value]) {
    // hpc_alloc1/hpcuser2: job 2 (4 s) + job 8 (2 s)
    //   billing 2x4 + 1x2 = 10, cpu 2x4 + 1x2 = 10, gres/gpu 1x4 = 4,
    //   mem 1024x4 + 50x2 = 4196 (1G = 1024 MiB), node 1x4 + 1x2 = 6
    assert_eq!(
        usage(recs, "hpc_alloc1", Some("hpcuser2")),
        map(&[
            ("billing", 10),
            ("cpu", 10),
            ("gres/gpu", 4),
            ("mem", 4196),
            ("node", 6)
        ])
    );
    // hpc_alloc1/hpcuser1: job 4 (4 s) + job 12 (0 s)
    //   billing 1x4 = 4, cpu 4, mem 100x4 = 400, node 4
    assert_eq!(
        usage(recs, "hpc_alloc1", Some("hpcuser1")),
        map(&[("billing", 4), ("cpu", 4), ("mem", 400), ("node", 4)])
    );
    // hpc_alloc1 total: 10 + 4 = 14, 14, gpu 4, mem 4196 + 400 = 4596, node 6 + 4 = 10
    assert_eq!(
        usage(recs, "hpc_alloc1", None),
        map(&[
            ("billing", 14),
            ("cpu", 14),
            ("gres/gpu", 4),
            ("mem", 4596),
            ("node", 10)
        ])
    );
    assert_eq!(jobs(recs, "hpc_alloc1", None), 4);
    // hpc_alloc2/hpcuser1: job 1 (2 s) + job 3 (78 s)
    //   billing 2x2 + 1x78 = 82, cpu 82, mem 200x2 + 64x78 = 400 + 4992 = 5392, node 2 + 78 = 80
    assert_eq!(
        usage(recs, "hpc_alloc2", Some("hpcuser1")),
        map(&[("billing", 82), ("cpu", 82), ("mem", 5392), ("node", 80)])
    );
    // hpc_alloc2/hpcuser3: job 6 (1 s) + 5_1, 5_2, 5_3 (2 s each) + job 11 (0 s)
    //   billing 1 + 3x2 = 7, cpu 7, mem 50x1 + 3x(50x2) = 350, node 7
    assert_eq!(
        usage(recs, "hpc_alloc2", Some("hpcuser3")),
        map(&[("billing", 7), ("cpu", 7), ("mem", 350), ("node", 7)])
    );
    assert_eq!(jobs(recs, "hpc_alloc2", Some("hpcuser3")), 5);
    // hpc_alloc2 total: billing 82 + 7 = 89, cpu 89, mem 5392 + 350 = 5742, node 80 + 7 = 87
    assert_eq!(
        usage(recs, "hpc_alloc2", None),
        map(&[("billing", 89), ("cpu", 89), ("mem", 5742), ("node", 87)])
    );
    assert_eq!(jobs(recs, "hpc_alloc2", None), 7);
}

fn kinds(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .map(|r| match r["user"].as_str() {
            Some(u) if r["kind"] == "tres" => format!("{}/{u}", r["account"].as_str().unwrap()),
            None if r["kind"] == "tres" => r["account"].as_str().unwrap().to_string(),
            _ => r["kind"].as_str().unwrap().to_string(),
        })
        .collect()
}

#[test]
fn allocation_and_step_captures_give_alloctres_times_elapsedraw() {
    // b1 has no header and the column list of its command; b2, b4, b5 carry step lines
    // (.batch, .extern, .0), which are not billed: the sums equal b3's.
    let detail =
        "JobID,Account,User,State,Start,End,Elapsed,ElapsedRaw,AllocTRES,ReqTRES,NNodes,NCPUS";
    let runs: Vec<(Vec<String>, u64)> = vec![
        (
            vec![
                fixture("b1_steps_detail.noheader.txt"),
                "--fields".into(),
                detail.into(),
            ],
            33,
        ),
        (vec![fixture("b2_steps_detail.header.txt")], 33),
        (vec![fixture("b3_alloc_detail.header.txt")], 11),
        (vec![fixture("b4_steps_detail.truncate.header.txt")], 33),
        (vec![fixture("b5_steps_detail.accounts.header.txt")], 33),
        // d3 has both JobID and JobIDRaw, and JobName, Submit, ... in between.
        (vec![fixture("d3_jobs_overview.header.txt")], 33),
    ];
    for (input, lines) in runs {
        let mut args = vec!["--period", "2026-11", "--input"];
        args.extend(input.iter().map(String::as_str));
        let recs = records(&args, 0);
        assert_whole_day(&recs);
        // Sorted: account lower-cased, total first, then users.
        assert_eq!(
            kinds(&recs),
            vec![
                "period",
                "hpc_alloc1",
                "hpc_alloc1/hpcuser1",
                "hpc_alloc1/hpcuser2",
                "hpc_alloc2",
                "hpc_alloc2/hpcuser1",
                "hpc_alloc2/hpcuser3",
                "period_end"
            ],
            "{input:?}"
        );
        let e = end(&recs);
        assert_eq!(e["records"], 6);
        assert_eq!(e["jobs"], 11);
        assert_eq!(e["lines"], lines, "{input:?}");
        assert_eq!(e["skipped_lines"], 0);
    }
}

#[test]
fn reqtres_captures_in_reference_mode_give_the_same_day() {
    // Same jobs, ReqTRES x Elapsed. Job 11 requested billing=2,cpu=2,mem=50M,node=1 but ran
    // 00:00:00, adding 0 to each; every other ReqTRES equals its AllocTRES.
    let f = "Account,ReqTRES,Elapsed,User";
    for (name, fields) in [
        ("a1_alloc_acct-reqtres-elapsed-user.noheader.txt", Some(f)),
        (
            "a2_alloc_acct-reqtres-elapsed-user.accounts.noheader.txt",
            Some(f),
        ),
        ("a3_alloc_acct-reqtres-elapsed-user.header.txt", None),
        (
            "a4_alloc_acct-reqtres-elapsed-user.truncate.noheader.txt",
            Some(f),
        ),
        (
            "a5_alloc_acct-reqtres-elapsed-user.accounts.truncate.header.txt",
            None,
        ),
        // --parsable: every line ends with `|`.
        (
            "d1_alloc_acct-reqtres-elapsed-user.parsable1.header.txt",
            None,
        ),
    ] {
        let path = fixture(name);
        let mut args = vec![
            "--period",
            "2026-11",
            "--compat",
            "reference",
            "--input",
            &path,
        ];
        if let Some(f) = fields {
            args.extend(["--fields", f]);
        }
        let recs = records(&args, 0);
        assert_whole_day(&recs);
        assert_eq!(end(&recs)["jobs"], 11, "{name}");
    }
}

#[test]
fn window_captures_show_truncation() {
    // Job 3 (1 cpu, 64M) ran 78 s; a 20 s window cuts it. c1/c3 are not truncated (78 s),
    // c2/c4 are (20 s): cpu 1x78 = 78 vs 1x20 = 20, mem 64x78 = 4992 vs 64x20 = 1280.
    let whole = map(&[("billing", 78), ("cpu", 78), ("mem", 4992), ("node", 78)]);
    let cut = map(&[("billing", 20), ("cpu", 20), ("mem", 1280), ("node", 20)]);
    for (name, compat, want) in [
        (
            "c1_window_alloc_acct-reqtres-elapsed-user.header.txt",
            "reference",
            &whole,
        ),
        (
            "c2_window_alloc_acct-reqtres-elapsed-user.truncate.header.txt",
            "reference",
            &cut,
        ),
        ("c3_window_steps_detail.header.txt", "exact", &whole),
        ("c4_window_steps_detail.truncate.header.txt", "exact", &cut),
    ] {
        let path = fixture(name);
        let recs = records(
            &["--period", "2026-11", "--compat", compat, "--input", &path],
            0,
        );
        assert_eq!(&usage(&recs, "hpc_alloc2", None), want, "{name}");
        assert_eq!(
            &usage(&recs, "hpc_alloc2", Some("hpcuser1")),
            want,
            "{name}"
        );
        assert_eq!(end(&recs)["jobs"], 1);
    }
}

#[test]
fn a_job_that_never_started_counts_but_uses_nothing() {
    // c5: held job 7, cancelled: AllocTRES empty, ElapsedRaw 0. One job, no TRES at all.
    let path = fixture("c5_held_cancelled_job_by_id.header.txt");
    let recs = records(&["--period", "2026-11", "--input", &path], 0);
    assert_eq!(usage(&recs, "hpc_alloc1", Some("hpcuser2")), map(&[]));
    assert_eq!(jobs(&recs, "hpc_alloc1", None), 1);
    // In reference mode its ReqTRES (billing=1,cpu=1,mem=50M,node=1) x 0 s shows up as zeros.
    let recs = records(
        &[
            "--period",
            "2026-11",
            "--compat",
            "reference",
            "--input",
            &path,
        ],
        0,
    );
    assert_eq!(
        usage(&recs, "hpc_alloc1", None),
        map(&[("billing", 0), ("cpu", 0), ("mem", 0), ("node", 0)])
    );
}

fn write_temp(name: &str, text: &str) -> ScratchFile {
    ScratchFile::new("slurm-usage", name, text)
}

/// The records of June 2024 from `dump` (`Account|ReqTRES|Elapsed|User` lines, saved as
/// `name`) with `--compat reference` and `extra` arguments; exit 0.
fn reference_records(name: &str, dump: &str, extra: &[&str]) -> Vec<Value> {
    let path = write_temp(name, dump);
    let mut args = vec!["--period", "2024-06", "--compat", "reference"];
    args.extend_from_slice(extra);
    args.extend(["--fields", "Account,ReqTRES,Elapsed,User"]);
    args.extend(["--input", path.to_str().unwrap()]);
    records(&args, 0)
}

#[test]
fn reference_example_e3_matches_the_python_agents_raw_sums() {
    // notes/reference-agent.md §9 E3: ReqTRES cpu=64, mem=256000M; the reference reports
    // cpu = 64 x hours x 60 CPU-minutes (0.64 / 1.28 / 1.92 k-Hours at unit_factor 60000) and
    // mem 2500 / 5000 / 7500 gb-Hours at unit_factor 61440.
    let dump = "\
e2e_project|cpu=64,mem=256000M,node=1|10:00:00|e2euser1
e2e_project|cpu=64,mem=256000M,node=1|20:00:00|e2euser2
e2e_project|cpu=64,mem=256000M,node=1|1-06:00:00|e2euser3
";
    let recs = reference_records("e3.txt", dump, &[]);
    // e2euser1: 10 h = 36000 s; cpu 64 x 36000 = 2,304,000 s = 38,400 CPU-min = 0.64 x 60000.
    // mem 256000 x 36000 = 9,216,000,000 MiB-s = 153,600,000 MiB-min = 2500 x 61440.
    let u1 = usage(&recs, "e2e_project", Some("e2euser1"));
    assert_eq!((u1["cpu"], u1["mem"]), (2_304_000, 9_216_000_000));
    assert_eq!((u1["cpu"] / 60, u1["mem"] / 60), (38_400, 2500 * 61_440));
    // e2euser2: 20 h = 72000 s -> cpu 4,608,000 (1.28 k-Hours), mem 5000 gb-Hours.
    let u2 = usage(&recs, "e2e_project", Some("e2euser2"));
    assert_eq!((u2["cpu"] / 60, u2["mem"] / 60), (76_800, 5000 * 61_440));
    // e2euser3: 1-06:00:00 = 30 h = 108000 s -> cpu 6,912,000 (1.92 k-Hours), mem 7500.
    let u3 = usage(&recs, "e2e_project", Some("e2euser3"));
    assert_eq!((u3["cpu"], u3["mem"] / 60), (6_912_000, 7500 * 61_440));
    // Total 3.84 k-Hours = 230,400 CPU-min = 13,824,000 CPU-s.
    let t = usage(&recs, "e2e_project", None);
    assert_eq!(t["cpu"], 13_824_000);
    assert_eq!(t["cpu"] / 60, 230_400);
}

#[test]
fn reference_example_e7_matches_the_python_agents_raw_sums() {
    // notes/reference-agent.md §9 E7, lines verbatim.
    let dump = "\
hpc_alloc1|billing=4,cpu=4,mem=8192M,node=1|01:00:00|alice
hpc_alloc1|billing=64,cpu=64,gres/gpu=2,mem=256000M,node=1|1-00:00:00|bob
hpc_alloc1|billing=1,cpu=1,mem=100M,node=1|00:00:03|alice
hpc_alloc1|billing=2,cpu=2,mem=1000M,node=1|00:00:00|carol
hpc_alloc2|billing=2,cpu=2,mem=2048M,node=1|00:30:00|dave
";
    let recs = reference_records("e7.txt", dump, &["--tz", "Europe/Tallinn"]);
    // alice: cpu 4 x 3600 + 1 x 3 = 14,403 s = 240.05 CPU-min x 60;
    //        mem 8192 x 3600 + 100 x 3 = 29,491,500 MiB-s = 491,525 MiB-min x 60.
    let alice = usage(&recs, "hpc_alloc1", Some("alice"));
    assert_eq!((alice["cpu"], alice["mem"]), (14_403, 29_491_500));
    assert_eq!(alice["mem"], 491_525 * 60);
    assert!(!alice.contains_key("gres/gpu"));
    // bob: 1 day = 86400 s; cpu 64 x 86400 = 5,529,600 = 92,160 x 60;
    //      mem 256000 x 86400 = 22,118,400,000 = 368,640,000 x 60; gpu 2 x 86400 = 172,800 = 2880 x 60.
    let bob = usage(&recs, "hpc_alloc1", Some("bob"));
    assert_eq!(
        (bob["cpu"], bob["mem"], bob["gres/gpu"]),
        (92_160 * 60, 368_640_000 * 60, 2880 * 60)
    );
    // carol ran 0 s: present with zeros.
    let carol = usage(&recs, "hpc_alloc1", Some("carol"));
    assert_eq!((carol["cpu"], carol["mem"]), (0, 0));
    // TOTAL: cpu 92,400.05 CPU-min = 5,544,003 s; mem 369,131,525 MiB-min = 22,147,891,500 s;
    //        gpu 2880 GPU-min = 172,800 s.
    let total = usage(&recs, "hpc_alloc1", None);
    assert_eq!(
        (total["cpu"], total["mem"], total["gres/gpu"]),
        (5_544_003, 22_147_891_500, 172_800)
    );
    assert_eq!(total["mem"], 369_131_525 * 60);
    assert_eq!(jobs(&recs, "hpc_alloc1", None), 4);
    // dave: 30 min; cpu 2 x 1800 = 3600 = 60 x 60; mem 2048 x 1800 = 3,686,400 = 61,440 x 60.
    let dave = usage(&recs, "hpc_alloc2", None);
    assert_eq!((dave["cpu"], dave["mem"]), (60 * 60, 61_440 * 60));
    // The period is computed in Tallinn (+03:00 in June).
    assert_eq!(recs[0]["start"], "2024-06-01T00:00:00+03:00");
}

#[test]
fn jobs_mode_writes_one_audit_record_per_allocation() {
    let path = fixture("b2_steps_detail.header.txt");
    let recs = records(&["--period", "2026-11", "--jobs", "--input", &path], 0);
    let jobs: Vec<&Value> = recs.iter().filter(|r| r["kind"] == "job").collect();
    assert_eq!(jobs.len(), 11);
    assert_eq!(end(&recs)["records"], 11);
    // Job 2: 4 s of billing=2,cpu=2,gres/gpu=1,mem=1G,node=1 -> 8, 8, 4, 4096, 4.
    let j2 = jobs.iter().find(|j| j["job_id"] == "2").unwrap();
    assert_eq!(j2["state"], "COMPLETED");
    assert_eq!(j2["elapsed_seconds"], 4);
    assert_eq!(
        j2["tres_seconds"],
        serde_json::json!({"billing": 8, "cpu": 8, "gres/gpu": 4, "mem": 4096, "node": 4})
    );
    let j8 = jobs.iter().find(|j| j["job_id"] == "8").unwrap();
    assert_eq!(j8["state"], "CANCELLED by 0");
    assert!(jobs.iter().any(|j| j["job_id"] == "5_2"));
}

#[test]
fn prefix_and_account_filters_apply_to_saved_input() {
    let path = fixture("b3_alloc_detail.header.txt");
    let recs = records(
        &[
            "--period",
            "2026-11",
            "--accounts",
            "HPC_ALLOC1",
            "--input",
            &path,
        ],
        0,
    );
    assert_eq!(
        kinds(&recs),
        vec![
            "period",
            "hpc_alloc1",
            "hpc_alloc1/hpcuser1",
            "hpc_alloc1/hpcuser2",
            "period_end"
        ]
    );
    // Lines are still counted, jobs only for the account kept.
    assert_eq!(
        (end(&recs)["lines"].as_u64(), end(&recs)["jobs"].as_u64()),
        (Some(11), Some(4))
    );
    let recs = records(
        &[
            "--period", "2026-11", "--prefix", "other_", "--input", &path,
        ],
        0,
    );
    assert_eq!(kinds(&recs), vec!["period", "period_end"]);
}

#[test]
fn fixed_width_json_and_wrong_columns_fail_with_a_clear_error() {
    for (name, says) in [
        (
            "d2_alloc_detail.fixedwidth.header.txt",
            "fixed-width sacct output",
        ),
        ("d4_sacct_json.json", "JSON (sacct --json)"),
        // No AllocTRES in the reference captures: tells how to bill ReqTRES instead.
        (
            "a3_alloc_acct-reqtres-elapsed-user.header.txt",
            "lack AllocTRES (use --compat reference",
        ),
    ] {
        let out = cmd()
            .args(["--period", "2026-11", "--input", &fixture(name)])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(65), "{name}");
        assert!(out.stdout.is_empty(), "{name}: no records on failure");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{name}: {err}");
    }
}

#[test]
fn a_bad_line_fails_the_period_naming_it_unless_skipped() {
    let dump = "\
JobIDRaw|Account|User|State|ElapsedRaw|AllocTRES|ReqTRES
1|hpc_a|alice|COMPLETED|10|cpu=2,mem=1G|cpu=2
2|hpc_a|bob|COMPLETED|ten|cpu=2|cpu=2
3|hpc_a|bob|COMPLETED|5|cpu=4|cpu=4
";
    let path = write_temp("bad.txt", dump);
    let p = path.to_str().unwrap();
    let out = cmd()
        .args(["--period", "2024-03", "--input", p])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_contains(
        &err,
        "sacct output line 3: ElapsedRaw \"ten\" is not a duration (expected whole seconds): \
             \"2|hpc_a|bob|COMPLETED|ten|cpu=2|cpu=2\"",
    );
    let out = cmd()
        .args(["--period", "2024-03", "--skip-bad-lines", "--input", p])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_contains(
        &err,
        "warning: period 2024-03: skipping sacct output line 3",
    );
    let recs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // alice 2 x 10 = 20 cpu-s, bob 4 x 5 = 20; total 40. mem 1024 x 10 = 10240.
    assert_eq!(
        usage(&recs, "hpc_a", None),
        map(&[("cpu", 40), ("mem", 10_240)])
    );
    assert_eq!(end(&recs)["skipped_lines"], 1);
    assert_eq!(end(&recs)["lines"], 3);
    assert_eq!(end(&recs)["jobs"], 2);
}

#[test]
fn saved_input_belongs_to_one_period() {
    let path = fixture("b3_alloc_detail.header.txt");
    let out = cmd()
        .args([
            "--start",
            "2024-01-01",
            "--end",
            "2024-02-29",
            "--input",
            &path,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cover 2 months"));
    // Two period records on stdin: refused too.
    let p = r#"{"kind":"period","period":"2024-01","start":"2024-01-01T00:00:00+00:00","end":"2024-02-01T00:00:00+00:00","timezone":"UTC","index":1,"count":2,"closed":true}
{"kind":"period","period":"2024-02","start":"2024-02-01T00:00:00+00:00","end":"2024-03-01T00:00:00+00:00","timezone":"UTC","index":2,"count":2,"closed":true}
"#;
    let out = cmd()
        .args(["--input", &path])
        .write_stdin(p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    // One period record on stdin is passed through, followed by its data.
    let one = p.lines().next().unwrap();
    let out = cmd()
        .args(["--input", &path])
        .write_stdin(one)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().next().unwrap(), one);
    assert!(text.lines().last().unwrap().contains("\"period_end\""));
}

#[test]
fn saved_input_on_stdin() {
    let dump = std::fs::read_to_string(fixture("b3_alloc_detail.header.txt")).unwrap();
    let out = cmd()
        .args(["--period", "2026-11", "--input", "-"])
        .write_stdin(dump)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let recs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_whole_day(&recs);
}

#[test]
fn help_teaches_and_version_answers() {
    let out = cmd().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for want in [
        "AllocTRES x ElapsedRaw",
        "Examples:",
        "--input sacct-2024-03.txt",
        "--version",
        "--log-level",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
    let out = cmd().arg("--version").output().unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("slurm-usage ")
    );
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        vec!["--period", "2024-13", "--input", "x"],
        vec![
            "--period",
            "2024-03",
            "--start",
            "2024-03-01",
            "--end",
            "2024-03-02",
            "--input",
            "x",
        ],
        vec!["--period", "2024-03", "--compat", "python2", "--input", "x"],
        vec![
            "--period",
            "2024-03",
            "--fields",
            "Account,User",
            "--input",
            "x",
        ],
        vec![
            "--period",
            "2024-03",
            "--tz",
            "Mars/Olympus",
            "--input",
            "x",
        ],
        vec!["--input", "-"],
        vec!["--bogus"],
    ] {
        let out = cmd().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cmd()
        .args(["--period", "2024-03", "--input", "/nonexistent/dump"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66));
}

#[test]
fn het_job_steps_in_jobidraw_form_parse_and_are_not_billed_twice() {
    // sacct prints a het job's step as `<job>.<step>+<component>` in JobIDRaw. Each component
    // is its own allocation (billed); the steps are inside them (not billed again).
    let dump = "\
JobIDRaw|Account|User|ElapsedRaw|AllocTRES
123+0|hpc_alloc1|hpcuser1|10|billing=2,cpu=2,mem=100M,node=1
123+1|hpc_alloc1|hpcuser1|10|billing=4,cpu=4,mem=300M,node=1
123.0+0|hpc_alloc1|hpcuser1|9|cpu=2,mem=100M,node=1
123.0+1|hpc_alloc1|hpcuser1|9|cpu=4,mem=300M,node=1
123.batch+0|hpc_alloc1|hpcuser1|10|cpu=2,mem=100M,node=1
";
    let path = write_temp("het.txt", dump);
    let recs = records(
        &["--period", "2026-11", "--input", path.to_str().unwrap()],
        0,
    );
    // (2 + 4) CPUs x 10 s = 60 CPU-s; (100 + 300) MiB x 10 s = 4000 MiB-s; two allocations.
    let u = usage(&recs, "hpc_alloc1", Some("hpcuser1"));
    assert_eq!((u["cpu"], u["mem"]), (60, 4000));
    assert_eq!(jobs(&recs, "hpc_alloc1", Some("hpcuser1")), 2);
}

#[test]
fn start_and_end_take_a_whole_month_as_month_split_does() {
    // `--start 2024-03 --end 2024-03` is March 1st to March 31st in every tool that takes them:
    // slurm-usage reports the same one period as with `--period 2024-03`, and its period
    // record is month-split's, byte for byte.
    let path = fixture("b3_alloc_detail.header.txt");
    let now = "2024-05-01T00:00:00Z";
    let run = |args: &[&str]| {
        let out = cmd()
            .args(args)
            .args(["--now", now, "--input", &path, "--log-level", "error"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let by_month = run(&["--start", "2024-03", "--end", "2024-03"]);
    assert_eq!(by_month, run(&["--period", "2024-03"]));
    assert_eq!(
        by_month,
        run(&["--start", "2024-03-01", "--end", "2024-03-31"])
    );
    let split = Command::cargo_bin("month-split")
        .unwrap()
        .args([
            "--tz", "UTC", "--start", "2024-03", "--end", "2024-03", "--now", now,
        ])
        .output()
        .unwrap();
    assert_eq!(split.status.code(), Some(0), "{split:?}");
    let period = String::from_utf8(split.stdout).unwrap();
    assert_eq!(by_month.lines().next(), period.lines().next());
    assert_contains(
        &period,
        r#""period":"2024-03","start":"2024-03-01T00:00:00+00:00","end":"2024-04-01T00:00:00+00:00""#,
    );
    // A month range still covers its months: two here, which one saved dump cannot hold.
    let out = cmd()
        .args([
            "--start", "2024-02", "--end", "2024-03", "--now", now, "--input", &path,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cover 2 months"));
}

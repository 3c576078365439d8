//! slurm-usage running a fake `sacct` (a shell script the test writes into a temp dir and puts
//! on PATH): the exact argv and TZ it receives, its timeout, non-zero exit, signals and stderr,
//! and `--check` with fake sacctmgr / sinfo.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::text::{assert_contains, assert_status};
use assert_cmd::Command;
use serde_json::Value;

use crate::support::scratch::Scratch;

/// A fresh directory holding a config and fake SLURM tools.
struct Site {
    dir: Scratch,
}

impl Site {
    fn new(extra_backend: &str) -> Site {
        let dir = Scratch::new("slurm-usage-sacct");
        fs::create_dir_all(dir.join("bin")).unwrap();
        let config = format!(
            r#"timezone: Europe/Berlin
offerings:
  - name: HPC
    waldur_api_url: https://waldur.example.com/api/
    waldur_api_token: not-used-here
    waldur_offering_uuid: d629d5e45567425da9cdbdc1af67b32c
    backend_type: slurm
    backend_settings:
      allocation_prefix: hpc_
      cluster_name: ci
{extra_backend}
    backend_components:
      cpu: {{ measured_unit: k-Hours, unit_factor: 60000, accounting_type: usage, label: CPU }}
"#
        );
        fs::write(dir.join("config.yaml"), config).unwrap();
        Site { dir }
    }

    /// Write an executable script `bin/<name>`; `$LOG` in it is this site's directory.
    fn tool(&self, name: &str, body: &str) {
        let path = self.dir.join("bin").join(name);
        let script = format!("#!/bin/sh\nLOG='{}'\n{body}\n", self.dir.path().display());
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A fake sacct that records its argv (one per line) and TZ per call, then runs `body`.
    fn sacct(&self, body: &str) {
        self.tool(
            "sacct",
            &format!(
                "n=$(ls \"$LOG\" | grep -c '^argv')\n\
                 printf '%s\\n' \"$@\" > \"$LOG/argv.$n\"\n\
                 printf '%s\\n' \"$TZ\" > \"$LOG/tz.$n\"\n{body}"
            ),
        );
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("slurm-usage").unwrap();
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env_remove("TZ")
            .env_remove("WALDUR_SITE_AGENT_LOG_LEVEL")
            .arg("-c")
            .arg(self.dir.join("config.yaml"));
        c
    }

    fn argv(&self, n: usize) -> Vec<String> {
        read_lines(&self.dir.join(format!("argv.{n}")))
    }

    fn tz(&self, n: usize) -> String {
        read_lines(&self.dir.join(format!("tz.{n}"))).join("")
    }

    fn calls(&self) -> usize {
        fs::read_dir(self.dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("argv.")
            })
            .count()
    }
}

fn read_lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(String::from)
        .collect()
}

fn parse(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const FORMAT: &str = "--format=JobIDRaw,Account,User,State,ElapsedRaw,AllocTRES,ReqTRES";

fn expected_argv(start: &str, end: &str) -> Vec<String> {
    [
        "--allusers",
        "--allocations",
        "--duplicates",
        "--truncate",
        "--noconvert",
        "--parsable2",
        "--noheader",
        "--clusters=ci",
        &format!("--starttime={start}"),
        &format!("--endtime={end}"),
        FORMAT,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Output of the fake sacct: two of our accounts (one spelled upper-case), one of another
/// prefix whose odd TRES must not matter, and a step line.
const OUTPUT: &str = "cat <<'EOF'
100|hpc_alpha|alice|COMPLETED|3600|billing=4,cpu=4,mem=2.50G,node=1|cpu=4
101|HPC_ALPHA|bob|RUNNING|7200|cpu=8,gres/gpu:a100=2,gres/gpu:v100=1,gres/gpumem=16G,mem=8G,node=1|cpu=8
101.batch|hpc_alpha||RUNNING|7200|cpu=8,mem=8G,node=1|
102|other_acct|carol|COMPLETED|60|cpu=weird|cpu=1
103_[1-5%2]|hpc_beta|dave|PENDING|0||cpu=1
EOF";

#[test]
fn dst_month_windows_in_berlin_and_the_exact_argv_and_tz() {
    let site = Site::new("");
    site.sacct(OUTPUT);
    let out = site
        .cmd()
        .args([
            "--start",
            "2024-03-01",
            "--end",
            "2024-03-31",
            "--now",
            "2025-01-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert_status(&out, 0);
    // March 2024 in Berlin: local midnights; the clocks went forward on the 31st, which the
    // wall-clock strings need not mention because TZ=Europe/Berlin makes sacct read them right.
    assert_eq!(
        site.argv(0),
        expected_argv("2024-03-01T00:00:00", "2024-04-01T00:00:00")
    );
    assert_eq!(site.tz(0), "Europe/Berlin");

    let out2 = site
        .cmd()
        .args(["--period", "2024-10", "--now", "2025-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert_eq!(out2.status.code(), Some(0));
    assert_eq!(
        site.argv(1),
        expected_argv("2024-10-01T00:00:00", "2024-11-01T00:00:00")
    );
    assert_eq!(site.tz(1), "Europe/Berlin");

    let recs = parse(&out.stdout);
    assert_eq!(recs[0]["start"], "2024-03-01T00:00:00+01:00");
    assert_eq!(recs[0]["end"], "2024-04-01T00:00:00+02:00");
    let names: Vec<(String, Option<String>)> = recs[1..recs.len() - 1]
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap().into(),
                r["user"].as_str().map(Into::into),
            )
        })
        .collect();
    // Sorted lower-case, first spelling kept, other_acct filtered out by the hpc_ prefix.
    assert_eq!(
        names,
        vec![
            ("hpc_alpha".into(), None),
            ("hpc_alpha".into(), Some("alice".into())),
            ("hpc_alpha".into(), Some("bob".into())),
            ("hpc_beta".into(), None),
            ("hpc_beta".into(), Some("dave".into())),
        ]
    );
    // alice: 3600 s x cpu 4 = 14400; mem 2.50G = 2560 MiB x 3600 = 9,216,000.
    // bob: 7200 s x cpu 8 = 57600; gres/gpu = a100 2 + v100 1 = 3 -> 21600;
    //      mem 8G = 8192 x 7200 = 58,982,400; gres/gpumem 16G = 16384 x 7200 = 117,964,800.
    let total = &recs[1]["tres_seconds"];
    assert_eq!(
        total,
        &serde_json::json!({
            "billing": 4 * 3600,
            "cpu": 14_400 + 57_600,
            "gres/gpu": 21_600,
            "gres/gpu:a100": 2 * 7200,
            "gres/gpu:v100": 7200,
            "gres/gpumem": 117_964_800u64,
            "mem": 9_216_000u64 + 58_982_400,
            "node": 3600 + 7200
        })
    );
    assert_eq!(recs[1]["jobs"], 2);
    // The pending array record counts as a job with no usage.
    assert_eq!(recs[4]["jobs"], 1);
    assert_eq!(recs[4]["tres_seconds"], serde_json::json!({}));
    let end = recs.last().unwrap();
    assert_eq!(
        (&end["records"], &end["jobs"], &end["lines"]),
        (
            &serde_json::json!(5),
            &serde_json::json!(3),
            &serde_json::json!(5)
        )
    );
}

#[test]
fn the_current_month_ends_at_now_and_a_dst_fold_is_written_as_uts() {
    let site = Site::new("");
    site.sacct("true");
    // 2024-10-15T10:20:30Z is 12:20:30 in Berlin (+02:00).
    let out = site
        .cmd()
        .args(["--period", "2024-10", "--now", "2024-10-15T10:20:30.75Z"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        site.argv(0),
        expected_argv("2024-10-01T00:00:00", "2024-10-15T12:20:30")
    );
    let recs = parse(&out.stdout);
    assert_eq!(recs[0]["closed"], false);
    assert_eq!(
        recs.len(),
        2,
        "period and period_end only: sacct printed nothing"
    );
    // 2024-10-27T00:30:00Z is 02:30 in Berlin, an hour that happens twice: a naive time could
    // mean either, so the end is given as uts<epoch>: 1729989000.
    let out = site
        .cmd()
        .args(["--period", "2024-10", "--now", "2024-10-27T00:30:00Z"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        site.argv(1),
        expected_argv("2024-10-01T00:00:00", "uts1729989000")
    );
}

#[test]
fn period_records_on_stdin_and_a_future_period_needs_no_sacct() {
    let site = Site::new("");
    site.sacct(OUTPUT);
    let input = concat!(
        r#"{"kind":"period","period":"2024-03","start":"2024-03-01T00:00:00+01:00","end":"2024-04-01T00:00:00+02:00","timezone":"Europe/Berlin","index":1,"count":2,"closed":true}"#,
        "\n",
        r#"{"kind":"note","text":"passed through"}"#,
        "\n",
        r#"{"kind":"period","period":"2024-12","start":"2024-12-01T00:00:00+01:00","end":"2025-01-01T00:00:00+01:00","timezone":"Europe/Berlin","index":2,"count":2,"closed":false}"#,
        "\n"
    );
    let out = site
        .cmd()
        .args(["--now", "2024-11-20T00:00:00Z"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert_status(&out, 0);
    // Only March ran sacct; December starts after now.
    assert_eq!(site.calls(), 1);
    let recs = parse(&out.stdout);
    let kinds: Vec<&str> = recs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "period",
            "tres",
            "tres",
            "tres",
            "tres",
            "tres",
            "period_end",
            "note",
            "period",
            "period_end"
        ]
    );
    assert_eq!(recs[9]["records"], 0);
}

#[test]
fn accounts_override_the_prefix_and_reference_mode_changes_the_query() {
    let site = Site::new("");
    site.sacct("echo '7|hpc_x|u|COMPLETED|00:01:00|cpu=2'");
    let out = site
        .cmd()
        .args([
            "--period",
            "2024-03",
            "--now",
            "2025-01-01T00:00:00Z",
            "--accounts",
            "hpc_x,Proj_Y",
            "--compat",
            "reference",
        ])
        .output()
        .unwrap();
    assert_status(&out, 0);
    assert_eq!(
        site.argv(0),
        vec![
            "--allusers",
            "--allocations",
            "--truncate",
            "--noconvert",
            "--parsable2",
            "--noheader",
            "--clusters=ci",
            "--accounts=hpc_x,Proj_Y",
            "--starttime=2024-03-01T00:00:00",
            "--endtime=2024-04-01T00:00:00",
            "--format=JobIDRaw,Account,User,State,Elapsed,ReqTRES",
        ]
    );
    // ReqTRES cpu=2 x Elapsed 1 min = 120 cpu-s.
    let recs = parse(&out.stdout);
    assert_eq!(recs[1]["tres_seconds"], serde_json::json!({"cpu": 120}));
}

#[test]
fn slurm_bin_path_in_the_config_is_used_instead_of_path() {
    let site = Site::new("      slurm_bin_path: BINDIR");
    let cfg = site.dir.join("config.yaml");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("BINDIR", &site.dir.join("sbin").display().to_string());
    fs::write(&cfg, text).unwrap();
    // The PATH one would report a job; the configured directory has none, so it is unavailable.
    site.sacct(OUTPUT);
    let out = site.cmd().args(["--period", "2024-03"]).output().unwrap();
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_contains(
        &err,
        &format!(
            "cannot run `TZ=Europe/Berlin {}/sacct",
            site.dir.join("sbin").display()
        ),
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_sacct_exits_69() {
    let site = Site::new("");
    let out = site
        .cmd()
        .env("PATH", site.dir.join("bin"))
        .args(["--period", "2024-03"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_failing_sacct_fails_its_period_only_with_its_stderr() {
    let site = Site::new("");
    // February works, March fails after printing part of its output.
    site.sacct(
        "case \"$*\" in\n\
         *starttime=2024-03*) echo '1|hpc_a|u|COMPLETED|10|cpu=1|'; \
         echo 'sacct: error: Problem talking to the database: Connection refused' >&2; exit 1;;\n\
         *) echo '2|hpc_a|u|COMPLETED|10|cpu=1|';;\n\
         esac",
    );
    let out = site
        .cmd()
        .args([
            "--start",
            "2024-02-01",
            "--end",
            "2024-03-31",
            "--now",
            "2025-01-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let recs = parse(&out.stdout);
    // Only February's records: period, total, user, period_end. Nothing of March.
    assert_eq!(recs.len(), 4);
    assert!(recs.iter().all(|r| r["period"] == "2024-02"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_contains(&err, "period 2024-03: `TZ=Europe/Berlin sacct");
    assert_contains(
        &err,
        "exited with status 1; its stderr:\nsacct: error: Problem talking to the database: Connection refused",
    );
    assert_contains(&err, "1 of 2 periods failed and wrote no records: 2024-03");
}

#[test]
fn a_killed_sacct_fails_the_period() {
    let site = Site::new("");
    site.sacct("echo '1|hpc_a|u|COMPLETED|10|cpu=1|'; kill -9 $$");
    let out = site.cmd().args(["--period", "2024-03"]).output().unwrap();
    assert_eq!(out.status.code(), Some(75));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("was killed by signal 9"));
}

#[test]
fn a_hanging_sacct_is_killed_at_the_timeout() {
    let site = Site::new("");
    // A child (sleep) holds stdout open too: only killing the process group ends it.
    site.sacct("echo '1|hpc_a|u|COMPLETED|10|cpu=1|'; echo 'sacct: slow' >&2; sleep 60");
    let t0 = Instant::now();
    let out = site
        .cmd()
        .args(["--period", "2024-03", "--timeout", "1"])
        .output()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(75));
    assert!(out.stdout.is_empty(), "no partial total");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_contains(
        &err,
        "did not finish within 1 s and was killed; its stderr:\nsacct: slow",
    );
}

#[test]
fn bad_sacct_lines_fail_with_65_or_are_counted() {
    let site = Site::new("");
    site.sacct("echo '1|hpc_a|u|COMPLETED|10|cpu=1|'; echo '2|hpc_a|u|COMPLETED|10|cpu=1,cpu=2|'; echo 'harmless' >&2");
    let out = site.cmd().args(["--period", "2024-03"]).output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_contains(
        &err,
        "sacct output line 2: AllocTRES: TRES entry \"cpu=2\": this TRES appears twice",
    );
    let out = site
        .cmd()
        .args(["--period", "2024-03", "--skip-bad-lines"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let recs = parse(&out.stdout);
    assert_eq!(recs.last().unwrap()["skipped_lines"], 1);
    assert_eq!(recs[1]["tres_seconds"], serde_json::json!({"cpu": 10}));
    // stderr of a successful sacct is shown as warnings.
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("warning: period 2024-03: sacct said: harmless")
    );
}

fn check_tools(site: &Site, clusters: &str) {
    site.sacct("echo 'slurm-wlm 22.05.8'");
    site.tool("sinfo", "echo 'slurm-wlm 22.05.8'");
    site.tool(
        "sacctmgr",
        &format!(
            "case \"$*\" in\n\
             --version) echo 'slurm-wlm 22.05.8';;\n\
             *'list cluster'*) printf '{clusters}';;\n\
             *'list account'*) printf 'hpc_alloc1\\nhpc_alloc2\\nroot\\n';;\n\
             *'show tres'*) printf 'cpu|\\nmem|\\nenergy|\\nnode|\\nbilling|\\nfs|disk\\n';;\n\
             esac"
        ),
    );
}

#[test]
fn check_reports_versions_cluster_and_accounts() {
    let site = Site::new("");
    check_tools(&site, "ci\\nother\\n");
    let out = site.cmd().arg("--check").output().unwrap();
    assert_status(&out, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_contains(&text, "[ ok ] sacct: slurm-wlm 22.05.8 (sacct --version)");
    assert_contains(
        &text,
        "[ ok ] cluster: cluster_name \"ci\" is known to slurmdbd",
    );
    assert_contains(
        &text,
        "[ ok ] accounts: 2 accounts start with \"hpc_\": hpc_alloc1, hpc_alloc2",
    );
    assert_contains(
        &text,
        "[ ok ] tres: SLURM accounts every TRES the components read: cpu",
    );
    assert!(text.ends_with("all checks passed\n"));

    let out = site.cmd().args(["--check", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 6);
}

#[test]
fn check_names_a_component_tres_that_slurm_does_not_account() {
    // gres/gpu is configured, but this SLURM has no GPUs in AccountingStorageTRES: every GPU
    // amount would be 0.00.
    let site = Site::new("");
    check_tools(&site, "ci\\n");
    let config = site.dir.join("config.yaml");
    let text = fs::read_to_string(&config).unwrap().replace(
        "      cpu: {",
        "      gres/gpu: { measured_unit: gpu-Hours, unit_factor: 60, accounting_type: usage }\n      cpu: {",
    );
    fs::write(&config, text).unwrap();
    let out = site.cmd().arg("--check").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_contains(
        &text,
        "[FAIL] tres: SLURM does not account gres/gpu, which the components read: they \
             would be 0.00 for every resource (SLURM accounts: cpu, mem, energy, node, billing, \
             fs/disk)",
    );
    assert_contains(
        &text,
        "fix: add the TRES to AccountingStorageTRES in slurm.conf and restart slurmctld, or \
             fix backend_components in the config",
    );
}

#[test]
fn check_fails_with_what_to_fix() {
    let site = Site::new("");
    check_tools(&site, "other\\n");
    let out = site.cmd().args(["--check", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cluster = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cluster")
        .unwrap();
    assert_eq!(cluster["ok"], false);
    assert_eq!(
        cluster["fix"],
        "set backend_settings.cluster_name to one of the listed clusters"
    );
    // No sinfo: the tool is unavailable (69 wins over configuration problems).
    fs::remove_file(site.dir.join("bin/sinfo")).unwrap();
    let out = site
        .cmd()
        .env("PATH", site.dir.join("bin"))
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_contains(&text, "[FAIL] sinfo: cannot run `sinfo --version`");
    assert_contains(&text, "fix: install the Slurm client tools");
}

#[test]
fn a_period_record_that_is_not_its_month_runs_no_sacct() {
    // Named March, but January to April: sacct would bill three months as March.
    let site = Site::new("");
    site.sacct(OUTPUT);
    let wide = r#"{"kind":"period","period":"2024-03","start":"2024-01-01T00:00:00+01:00","end":"2024-04-01T00:00:00+02:00","timezone":"Europe/Berlin","index":1,"count":1,"closed":true}"#;
    let month_13 = r#"{"kind":"period","period":"2024-13","start":"2024-12-01T00:00:00+01:00","end":"2025-01-01T00:00:00+01:00","timezone":"Europe/Berlin","index":1,"count":1,"closed":true}"#;
    for (record, message) in [
        (
            wide,
            "period 2024-03: the window 2024-01-01T00:00:00+01:00 to 2024-04-01T00:00:00+02:00 \
             is not inside that month in Europe/Berlin (it runs from 2024-03-01T00:00:00+01:00 \
             to 2024-04-01T00:00:00+02:00)",
        ),
        (
            month_13,
            "period record: \"2024-13\" is not a month; write it as YYYY-MM, e.g. 2024-03",
        ),
    ] {
        let out = site
            .cmd()
            .args(["--now", "2024-11-20T00:00:00Z"])
            .write_stdin(format!("{record}\n"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{err}");
        assert_contains(&err, message);
        assert_eq!(site.calls(), 0);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("\"tres\""));
    }
}

//! End-to-end tests of the shell wrappers (`shell/waldur-usage-report`,
//! `shell/waldur-usage-backfill`) with the real binaries, a fake `sacct` first on PATH and the
//! fake Waldur server in-process.
//!
//! The fake sacct prints one fixed dump (below) for every period it is asked about, so the
//! numbers Waldur must end up with can be written out by hand. Files in its directory steer it:
//! `sleep` (seconds to sleep before answering), `fail-start` (fail when `--starttime` begins
//! with that text), `fail-after-output` (print the dump, then fail). It logs every call's
//! arguments to `sacct.log` and brackets each call with `start PID` / `end PID` lines in
//! `calls.log`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_waldur::{
    FakeWaldur, Fault, FaultKind, PROVIDER_TOKEN, STAFF_TOKEN, Setup,
};
use crate::support::prometheus::Exposition;
use crate::support::scratch::{Scratch, write_mode};
use crate::support::text::{assert_contains, assert_lacks};

/// What the fake sacct prints (`--parsable2 --noheader`, the default `--format`:
/// JobIDRaw|Account|User|State|ElapsedRaw|AllocTRES|ReqTRES).
///
/// Expected usage with the seed guide's factors (cpu 60000, mem 61440, gres/gpu 60, all per
/// TRES-minute, so amount = TRES x seconds / 60 / factor):
///
/// | job | account | user | TRES x seconds |
/// |---|---|---|---|
/// | 1001 | hpc_alloc1 | hpcuser1 | cpu 64 x 72000 = 4,608,000; mem 256000 MiB x 72000 = 18,432,000,000 |
/// | 1002 | hpc_alloc1 | hpcuser2 | cpu 16 x 36000 = 576,000; mem 65536 MiB (64G) x 36000 = 2,359,296,000; gpu 2 x 36000 = 72,000 |
/// | 1003 | hpc_alloc2 | hpcuser3 | cpu 8 x 45000 = 360,000; mem 16384 MiB (16G) x 45000 = 737,280,000 |
///
/// 1002.batch is a step (not billed), 1004 is in an account without the `hpc_` prefix
/// (ignored). hpc_erred has no jobs and is Erred in Waldur (skipped).
const DUMP: &str = "\
1001|hpc_alloc1|hpcuser1|COMPLETED|72000|billing=64,cpu=64,mem=256000M,node=1|billing=64,cpu=64,mem=256000M,node=1
1002|hpc_alloc1|hpcuser2|COMPLETED|36000|billing=16,cpu=16,gres/gpu=2,mem=64G,node=1|billing=16,cpu=16,gres/gpu=2,mem=64G,node=1
1002.batch|hpc_alloc1|hpcuser2|COMPLETED|36000|cpu=16,gres/gpu=2,mem=64G,node=1|
1003|hpc_alloc2|hpcuser3|FAILED|45000|billing=8,cpu=8,mem=16G,node=1|billing=8,cpu=8,mem=16G,node=1
1004|other_dept|hpcuser1|COMPLETED|3600|billing=16,cpu=16,mem=1G,node=1|billing=16,cpu=16,mem=1G,node=1
";

/// The component usages Waldur must hold for one month after the dump was reported:
/// (account, component) -> amount.
///
/// - hpc_alloc1 cpu: (4,608,000 + 576,000) / 60 / 60000 = 5,184,000 / 3,600,000 = 1.44
/// - hpc_alloc1 mem: (18,432,000,000 + 2,359,296,000) / 60 / 61440 = 20,791,296,000 / 3,686,400 = 5640.00
/// - hpc_alloc1 gres/gpu: 72,000 / 60 / 60 = 20.00
/// - hpc_alloc2 cpu: 360,000 / 3,600,000 = 0.10; mem: 737,280,000 / 3,686,400 = 200.00;
///   gres/gpu: none used, the account total carries every component: 0.00
fn expected_usages() -> BTreeMap<(String, String), String> {
    [
        ("hpc_alloc1", "cpu", "1.44"),
        ("hpc_alloc1", "mem", "5640.00"),
        ("hpc_alloc1", "gres/gpu", "20.00"),
        ("hpc_alloc2", "cpu", "0.10"),
        ("hpc_alloc2", "mem", "200.00"),
        ("hpc_alloc2", "gres/gpu", "0.00"),
    ]
    .iter()
    .map(|(a, c, v)| ((a.to_string(), c.to_string()), v.to_string()))
    .collect()
}

/// Per-user usages of one month: (account, component, user) -> amount. Users carry only the
/// components they used: hpcuser1 cpu 4,608,000 / 3,600,000 = 1.28, mem 18,432,000,000 /
/// 3,686,400 = 5000.00; hpcuser2 cpu 576,000 / 3,600,000 = 0.16, mem 2,359,296,000 / 3,686,400
/// = 640.00, gres/gpu 72,000 / 3600 = 20.00; hpcuser3 cpu 0.10, mem 200.00 (as its account).
fn expected_user_usages() -> BTreeMap<(String, String, String), String> {
    [
        ("hpc_alloc1", "cpu", "hpcuser1", "1.28"),
        ("hpc_alloc1", "cpu", "hpcuser2", "0.16"),
        ("hpc_alloc1", "mem", "hpcuser1", "5000.00"),
        ("hpc_alloc1", "mem", "hpcuser2", "640.00"),
        ("hpc_alloc1", "gres/gpu", "hpcuser2", "20.00"),
        ("hpc_alloc2", "cpu", "hpcuser3", "0.10"),
        ("hpc_alloc2", "mem", "hpcuser3", "200.00"),
    ]
    .iter()
    .map(|(a, c, u, v)| ((a.to_string(), c.to_string(), u.to_string()), v.to_string()))
    .collect()
}

/// Writes an executable script.
fn write_script(path: &Path, text: &str) {
    write_mode(path, text, 0o755);
}

/// Everything one test needs: the fake Waldur, a fake sacct, a config.
struct Rig {
    fake: FakeWaldur,
    setup: Setup,
    dir: Scratch,
}

impl Rig {
    fn new(name: &str) -> Rig {
        Rig::with_setup(name, Setup::small())
    }

    /// A bin dir (`WALDUR_USAGE_BIN_DIR`) with the real tools but `shimmed`, which is a bash
    /// script `body(real path of shimmed)`.
    fn bin_with_shim(&self, shimmed: &str, body: impl Fn(&Path) -> String) -> PathBuf {
        let bin = self.dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let real_dir = Path::new(env!("CARGO_BIN_EXE_waldur-push"))
            .parent()
            .unwrap();
        for tool in ["month-split", "slurm-usage", "usage-convert", "waldur-push"] {
            if tool != shimmed {
                std::os::unix::fs::symlink(real_dir.join(tool), bin.join(tool)).unwrap();
            }
        }
        let script = format!("#!/bin/bash\n{}", body(&real_dir.join(shimmed)));
        write_script(&bin.join(shimmed), &script);
        bin
    }

    fn with_setup(name: &str, setup: Setup) -> Rig {
        let fake = FakeWaldur::start(setup.clone());
        let dir = Scratch::new(name);
        let sbin = dir.join("slurm");
        std::fs::create_dir_all(&sbin).unwrap();
        std::fs::write(dir.join("dump.txt"), DUMP).unwrap();
        let d = dir.path().display();
        write_script(
            &sbin.join("sacct"),
            &format!(
                r#"#!/bin/sh
# fake sacct for tests/suite/wrappers.rs
d='{d}'
if [ "$1" = --version ]; then echo "slurm 23.02.6"; exit 0; fi
env > "$d/sacct.env"
echo "$*" >> "$d/sacct.log"
echo "start $$" >> "$d/calls.log"
if [ -f "$d/sleep" ]; then sleep "$(cat "$d/sleep")"; fi
if [ -f "$d/fail-start" ]; then
  case "$*" in
    *--starttime="$(cat "$d/fail-start")"*)
      echo "sacct: error: Problem talking to the database: Connection refused" >&2
      echo "end $$" >> "$d/calls.log"
      exit 1 ;;
  esac
fi
cat "$d/dump.txt"
echo "end $$" >> "$d/calls.log"
if [ -f "$d/fail-after-output" ]; then
  echo "sacct: error: slurmdbd: connection lost" >&2
  exit 1
fi
exit 0
"#
            ),
        );
        write_script(&sbin.join("sinfo"), "#!/bin/sh\necho \"slurm 23.02.6\"\n");
        write_script(
            &sbin.join("sacctmgr"),
            "#!/bin/sh\ncase \"$*\" in\n  *--version*) echo \"slurm 23.02.6\" ;;\n  \
             *'list cluster'*) echo ci ;;\n  \
             *'list account'*) printf 'root\\nhpc_alloc1\\nhpc_alloc2\\nhpc_erred\\nother_dept\\n' ;;\n  \
             *'show tres'*) printf 'cpu|\\nmem|\\nnode|\\nbilling|\\ngres|gpu\\n' ;;\n  \
             *) echo \"sacctmgr: unexpected arguments: $*\" >&2; exit 1 ;;\nesac\n",
        );
        let config = format!(
            r#"timezone: "UTC"
reporting_periods: 1
offerings:
  - name: "{name}"
    waldur_api_url: "{url}"
    waldur_offering_uuid: "{uuid}"
    backend_type: "slurm"
    reporting_backend: "slurm"
    backend_settings:
      allocation_prefix: "hpc_"
      slurm_bin_path: "{sbin}"
    backend_components:
      cpu: {{ measured_unit: "k-Hours", unit_factor: 60000, accounting_type: "usage", label: "CPU" }}
      mem: {{ measured_unit: "gb-Hours", unit_factor: 61440, accounting_type: "usage", label: "RAM" }}
      gres/gpu: {{ measured_unit: "gpu-Hours", unit_factor: 60, accounting_type: "usage", label: "GPU" }}
"#,
            name = setup.offering.name,
            url = fake.base_url(),
            uuid = setup.offering.uuid,
            sbin = sbin.display(),
        );
        std::fs::write(dir.join("config.yaml"), config).unwrap();
        std::fs::set_permissions(
            dir.join("config.yaml"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        Rig { fake, setup, dir }
    }

    /// Create or remove a steering file of the fake sacct.
    fn sacct_option(&self, name: &str, value: Option<&str>) {
        let path = self.dir.join(name);
        match value {
            Some(v) => std::fs::write(path, v).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn sacct_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("sacct.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A wrapper command with the test environment: binaries from this build, the fake sacct
    /// first on PATH, a private lock file and temp dir, the provider token in the environment.
    fn wrapper(&self, script: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("shell")
                .join(script),
        );
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_slurm-usage"))
            .parent()
            .unwrap()
            .to_path_buf();
        let path = format!(
            "{}:{}",
            self.dir.join("slurm").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let tmp = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        cmd.env("PATH", path)
            .env("WALDUR_USAGE_BIN_DIR", bin_dir)
            .env("WALDUR_USAGE_LOCK_FILE", self.dir.join("report.lock"))
            .env("WALDUR_API_TOKEN", PROVIDER_TOKEN)
            .env("WALDUR_USAGE_ETC_DIR", self.dir.join("etc-waldur"))
            .env("TMPDIR", tmp)
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WALDUR_SITE_AGENT_LOG_LEVEL")
            .env_remove("WALDUR_USAGE_LOOP_SECONDS")
            .env_remove("WALDUR_SITE_AGENT_REPORT_PERIOD_MINUTES")
            .stdin(Stdio::null());
        cmd
    }

    fn report(&self, extra: &[&str]) -> Command {
        let mut cmd = self.wrapper("waldur-usage-report");
        cmd.arg("-c").arg(self.dir.join("config.yaml")).args(extra);
        cmd
    }

    /// Waldur's component usages for `billing_period` (YYYY-MM-01), by (account, component).
    fn usages(&self, billing_period: &str) -> BTreeMap<(String, String), String> {
        self.fake
            .usages()
            .into_iter()
            .filter(|u| u.billing_period == billing_period)
            .map(|u| {
                (
                    (self.account_of(&u.resource_uuid), u.component_type),
                    u.usage,
                )
            })
            .collect()
    }

    fn user_usages(&self, billing_period: &str) -> BTreeMap<(String, String, String), String> {
        self.fake
            .user_usages()
            .into_iter()
            .filter(|u| u.billing_period == billing_period)
            .map(|u| {
                (
                    (
                        self.account_of(&u.resource_uuid),
                        u.component_type,
                        u.username,
                    ),
                    u.usage,
                )
            })
            .collect()
    }

    fn account_of(&self, resource_uuid: &str) -> String {
        let wanted = resource_uuid.replace('-', "");
        self.setup
            .resources
            .iter()
            .find(|r| r.uuid.replace('-', "") == wanted)
            .map(|r| r.backend_id.clone())
            .unwrap_or_else(|| format!("unknown resource {resource_uuid}"))
    }

    /// The usage-submitting POSTs the fake received (agent registration excluded).
    fn usage_posts(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.contains("set_"))
            .count()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn last_line(output: &Output) -> String {
    text(&output.stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("run wrapper")
}

/// [`run`], asserting that it succeeded.
#[track_caller]
fn run_ok(cmd: Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "{}", describe(&out));
    out
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// The billing period of the current month in UTC (the config's zone), `YYYY-MM-01`.
fn current_billing_period() -> String {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    format!("{:04}-{:02}-01", now.year(), now.month())
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_child(child: Child) -> Output {
    child.wait_with_output().expect("wait for wrapper")
}

#[test]
fn a_cycle_reports_exact_usage_then_a_second_cycle_changes_nothing() {
    let rig = Rig::new("normal");
    let period = current_billing_period();

    let first = run(rig.report(&[]));
    assert!(first.status.success(), "{}", describe(&first));
    assert_eq!(rig.sacct_calls().len(), 1, "one period, one sacct call");
    assert_eq!(
        rig.usages(&period),
        expected_usages(),
        "{}",
        describe(&first)
    );
    assert_eq!(rig.user_usages(&period), expected_user_usages());
    let last = last_line(&first);
    assert!(
        last.contains("cycle done") && last.contains("1 of 1 offerings reported"),
        "last line: {last}"
    );
    assert!(last.contains("failed 0"), "last line: {last}");
    assert!(
        !last.contains("updated 0,"),
        "the first cycle updates: {last}"
    );
    let first_posts = rig.usage_posts();
    assert!(first_posts > 0);

    // Nothing changed in SLURM: the second cycle reads Waldur and sends no usage at all.
    rig.fake.clear_requests();
    let second = run(rig.report(&[]));
    assert!(second.status.success(), "{}", describe(&second));
    assert_eq!(rig.usage_posts(), 0, "{}", describe(&second));
    assert_eq!(rig.usages(&period), expected_usages());
    let last = last_line(&second);
    assert!(
        last.contains("updated 0,") && last.contains("failed 0"),
        "last line: {last}"
    );

    // The token never shows up in anything the wrappers or tools printed.
    for output in [&first, &second] {
        let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(!all.contains(PROVIDER_TOKEN), "token leaked: {all}");
    }
}

#[test]
fn results_file_holds_the_result_records_the_summary_counts() {
    let rig = Rig::new("results");
    let results = rig.dir.join("results.jsonl");
    let out = run_ok(rig.report(&["--results", results.to_str().unwrap()]));
    let records = std::fs::read_to_string(&results).unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in records.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
        assert_eq!(v["kind"], "result", "{line}");
        *counts
            .entry(v["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let last = last_line(&out);
    for status in ["updated", "unchanged", "skipped", "failed"] {
        let n = counts.get(status).copied().unwrap_or(0);
        assert!(
            last.contains(&format!("{status} {n}")),
            "summary should count {n} {status} like the records do: {last}"
        );
    }
    assert_eq!(counts.get("failed"), None);
    assert!(
        counts.get("updated").copied().unwrap_or(0) >= 2,
        "{counts:?}"
    );
}

#[test]
fn a_server_echoing_the_token_in_its_error_body_never_puts_it_in_the_results_file() {
    let rig = Rig::new("echo-token");
    rig.fake
        .inject(Fault::new("POST", "set_usage/", FaultKind::EchoHeaders(400)).times(100));
    let results = rig.dir.join("results.jsonl");
    let out = run(rig.report(&["--results", results.to_str().unwrap()]));
    assert!(!out.status.success(), "{}", describe(&out));
    let records = std::fs::read_to_string(&results).unwrap();
    assert!(
        records.contains("Token [redacted]"),
        "the failed records say what the server said, without the key:\n{records}"
    );
    for (what, text) in [
        ("results file", records),
        ("stdout", text(&out.stdout)),
        ("stderr", text(&out.stderr)),
    ] {
        assert!(
            !text.contains(PROVIDER_TOKEN) && !text.contains(&PROVIDER_TOKEN[..16]),
            "{what} shows the token:\n{text}"
        );
    }
}

#[test]
fn a_sacct_failure_mid_stream_submits_nothing_and_fails_the_cycle() {
    let rig = Rig::new("sacct-fails");
    // sacct prints the whole dump, then fails: slurm-usage must drop the period entirely.
    rig.sacct_option("fail-after-output", Some("1"));
    let out = run(rig.report(&[]));
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(rig.usage_posts(), 0, "{}", describe(&out));
    assert!(rig.fake.usages().is_empty());
    let last = last_line(&out);
    assert!(
        last.contains("cycle FAILED") && last.contains("0 of 1 offerings reported"),
        "last line: {last}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("slurm-usage exited"),
        "the failing stage is named: {stderr}"
    );
}

#[test]
fn a_stage_killed_mid_stream_submits_nothing() {
    let rig = Rig::new("convert-dies");
    // A bin dir where usage-convert passes on only its first two records and then dies: the
    // period's usage records arrive, its period_end never does.
    let bin = rig.bin_with_shim("usage-convert", |real| {
        format!(
            "\"{}\" \"$@\" | head -n 2\necho 'usage-convert: killed' >&2\nkill -KILL $$\n",
            real.display()
        )
    });
    let mut cmd = rig.report(&[]);
    cmd.env("WALDUR_USAGE_BIN_DIR", &bin);
    let out = run(cmd);
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(rig.usage_posts(), 0, "{}", describe(&out));
    assert!(rig.fake.usages().is_empty());
    let stderr = text(&out.stderr);
    assert_contains(&stderr, "usage-convert exited");
    assert!(
        last_line(&out).contains("cycle FAILED"),
        "{}",
        describe(&out)
    );
}

#[test]
fn waldur_push_options_pass_through_the_report_wrapper() {
    let rig = Rig::new("passthrough");
    // A shim waldur-push that records its argv, then runs the real one.
    let log = rig.dir.join("push-argv.log");
    let bin = rig.bin_with_shim("waldur-push", |real| {
        format!(
            "echo \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        )
    });
    let mut cmd = rig.report(&[
        "--no-register",
        "--dry-run",
        "--waldur-timezone",
        "UTC",
        "--",
        "--concurrency",
        "2",
    ]);
    cmd.env("WALDUR_USAGE_BIN_DIR", &bin);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let argv = std::fs::read_to_string(&log).unwrap();
    // The wrapper first asks waldur-push for the config's offerings, then runs the push once.
    let (listing, argv) = argv.split_once('\n').unwrap();
    assert!(
        listing.ends_with("--list-offerings --log-level error"),
        "{listing}"
    );
    assert_eq!(argv.lines().count(), 1, "{argv}");
    assert_contains(
        argv,
        "--dry-run --no-register --waldur-timezone UTC --concurrency 2",
    );
    // Dry run and no registration: not a single write reached the fake.
    assert_eq!(rig.usage_posts(), 0);
    assert!(
        rig.fake.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        rig.fake.requests()
    );
}

#[test]
fn a_cycle_timeout_leaves_no_sacct_behind() {
    let rig = Rig::new("sacct-hangs");
    // A sacct that hangs as one process (as the real one does when slurmdbd stops answering),
    // after writing its PID.
    let pid_file = rig.dir.join("sacct.pid");
    write_script(
        &rig.dir.join("slurm").join("sacct"),
        &format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'slurm 23.02.6'; exit 0; fi\n\
             echo $$ > '{}'\nexec sleep 300\n",
            pid_file.display()
        ),
    );
    let started = std::time::Instant::now();
    let out = run(rig.report(&["--timeout", "3"]));
    let took = started.elapsed();
    // timed out: 75, the next cycle retries; --kill-after=10 bounds it at about 13 s.
    assert_eq!(out.status.code(), Some(75), "{}", describe(&out));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(rig.usage_posts(), 0);
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("sacct ran")
        .trim()
        .parse()
        .unwrap();
    // slurm-usage was killed; its sacct got SIGTERM from the kernel (PR_SET_PDEATHSIG).
    let proc = PathBuf::from(format!("/proc/{pid}"));
    wait_for("sacct to end", Duration::from_secs(5), || {
        !proc.exists()
            || std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| s.contains(") Z "))
    });
}

#[test]
fn two_cycles_at_once_never_overlap() {
    let rig = Rig::new("lock");
    rig.sacct_option("sleep", Some("2"));
    let first = rig
        .report(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first cycle holds the lock and is inside sacct.
    wait_for(
        "the first cycle to call sacct",
        Duration::from_secs(30),
        || !rig.sacct_calls().is_empty(),
    );

    // Without --wait the second cycle exits 0 at once and says why.
    let started = Instant::now();
    let second = run(rig.report(&[]));
    assert!(second.status.success(), "{}", describe(&second));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "it must not wait for the 2 s sacct: {:?}",
        started.elapsed()
    );
    assert!(
        text(&second.stderr).contains("another reporting cycle is running"),
        "{}",
        describe(&second)
    );

    // With --wait the third cycle runs after the first one.
    let third = rig
        .report(&["--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = wait_child(first);
    let third = wait_child(third);
    assert!(first.status.success(), "{}", describe(&first));
    assert!(third.status.success(), "{}", describe(&third));
    assert!(
        last_line(&third).contains("cycle done"),
        "{}",
        describe(&third)
    );
    // sacct ran exactly twice (first and third) and never twice at the same time.
    let calls = std::fs::read_to_string(rig.dir.join("calls.log")).unwrap();
    let events: Vec<&str> = calls
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(events, ["start", "end", "start", "end"], "{calls}");
    assert_eq!(rig.usages(&current_billing_period()), expected_usages());
}

#[test]
fn loop_runs_cycles_a_period_apart() {
    let rig = Rig::new("loop");
    let mut cmd = rig.report(&["--loop", "--cycles", "2"]);
    // The loop period is WALDUR_SITE_AGENT_REPORT_PERIOD_MINUTES (whole minutes); the seconds
    // override shortens a one-minute period to 1.5 s for the test.
    cmd.env("WALDUR_SITE_AGENT_REPORT_PERIOD_MINUTES", "1")
        .env("WALDUR_USAGE_LOOP_SECONDS", "1.5");
    let started = Instant::now();
    let out = run(cmd);
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(rig.sacct_calls().len(), 2, "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("cycle done").count(), 2, "{stderr}");
    assert!(
        elapsed >= Duration::from_millis(1500),
        "the second cycle starts one period after the first: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(50), "{elapsed:?}");
    assert_eq!(rig.usages(&current_billing_period()), expected_usages());
}

#[test]
fn backfill_loads_each_month_and_reports_the_failed_one() {
    let rig = Rig::new("backfill");
    // February's sacct fails; January and March must still be loaded.
    rig.sacct_option("fail-start", Some("2024-02-01T00:00:00"));
    let token_file = rig.dir.join("staff-token");
    std::fs::write(&token_file, format!("{STAFF_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mut cmd = rig.wrapper("waldur-usage-backfill");
    cmd.args(["--config", rig.dir.join("config.yaml").to_str().unwrap()])
        .args(["--offering-uuid", &rig.setup.offering.uuid])
        .args(["--start-date", "2024-01-10", "--end-date", "2024-03-05"])
        .args(["--user-token-file", token_file.to_str().unwrap()])
        // The environment's provider token must not be used for the backfill.
        .env("WALDUR_API_TOKEN", PROVIDER_TOKEN);
    let out = run(cmd);
    assert!(!out.status.success(), "a month failed: {}", describe(&out));
    let stderr = text(&out.stderr);
    for (i, month) in ["2024-01", "2024-02", "2024-03"].iter().enumerate() {
        let line = format!("Processing month {}/3: {month}", i + 1);
        assert!(
            stderr.lines().any(|l| l == line),
            "missing {line:?}: {stderr}"
        );
    }
    assert_eq!(rig.sacct_calls().len(), 3, "{stderr}");
    let last = last_line(&out);
    assert!(
        last.contains("2 loaded") && last.contains("1 failed: 2024-02 (slurm-usage exited"),
        "last line: {last}"
    );
    assert_eq!(rig.usages("2024-01-01"), expected_usages(), "{stderr}");
    assert_eq!(rig.usages("2024-03-01"), expected_usages());
    assert!(
        rig.usages("2024-02-01").is_empty(),
        "nothing for the failed month"
    );
    assert_eq!(rig.user_usages("2024-03-01"), expected_user_usages());
    // Every usage POST was made with the staff token, none with the provider token.
    for r in rig.fake.requests() {
        if r.method == "POST" && r.path.contains("set_") {
            assert_eq!(
                r.authorization.as_deref(),
                Some(format!("Token {STAFF_TOKEN}").as_str()),
                "{} {}",
                r.method,
                r.path
            );
        }
    }
    assert!(!stderr.contains(STAFF_TOKEN) && !text(&out.stdout).contains(STAFF_TOKEN));
}

#[test]
fn backfill_on_a_server_that_ignores_date_stops_and_says_not_to_re_run() {
    // Waldur 7.0.7 would file every month under its current one: the first month is refused
    // before any write, the others are not attempted, and the advice is not "run it again".
    let rig = Rig::with_setup("backfill-7.0", Setup::small().waldur_7_0());
    let token_file = rig.dir.join("staff-token");
    std::fs::write(&token_file, format!("{STAFF_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = rig.wrapper("waldur-usage-backfill");
    cmd.args(["--config", rig.dir.join("config.yaml").to_str().unwrap()])
        .args(["--offering-uuid", &rig.setup.offering.uuid])
        .args(["--start-date", "2024-01-01", "--end-date", "2024-02-29"])
        .args(["--user-token-file", token_file.to_str().unwrap()]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(69), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert_contains(&stderr, "Waldur 7.0.7 files usage under its current month");
    assert_contains(&stderr, "Do not re-run");
    assert_lacks(&stderr, "Re-run the failed months");
    let last = last_line(&out);
    assert!(
        last.contains("0 loaded") && last.contains("not attempted: 2024-02"),
        "last line: {last}"
    );
    assert_eq!(rig.usage_posts(), 0);
    assert!(rig.fake.usages().is_empty());
}

#[test]
fn a_cycle_by_hand_finds_the_token_where_the_readme_puts_it() {
    // The token only in <etc>/waldur-api-token (standing in for /etc/waldur), as the README
    // says: no WALDUR_API_TOKEN, no systemd credential, no --token-file.
    let rig = Rig::new("site-token");
    let etc = rig.dir.join("etc-waldur");
    std::fs::create_dir_all(&etc).unwrap();
    let token = etc.join("waldur-api-token");
    std::fs::write(&token, format!("{PROVIDER_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = rig.report(&["--dry-run"]);
    cmd.env_remove("WALDUR_API_TOKEN");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(rig.usage_posts(), 0);
    // And --token-file works the same, with no file in <etc>.
    std::fs::remove_file(&token).unwrap();
    let elsewhere = rig.dir.join("my-token");
    std::fs::write(&elsewhere, format!("{PROVIDER_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = rig.report(&["--dry-run", "--token-file", elsewhere.to_str().unwrap()]);
    cmd.env_remove("WALDUR_API_TOKEN");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Without either, no token: exit 77.
    let mut cmd = rig.report(&["--dry-run"]);
    cmd.env_remove("WALDUR_API_TOKEN");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(77), "{}", describe(&out));
}

#[test]
fn backfill_token_on_the_command_line_warns_and_never_reaches_argv() {
    let rig = Rig::new("backfill-argv");
    // A shim waldur-push that records its argv and the mode of the token file it was given.
    let log = rig.dir.join("push-argv.log");
    let bin = rig.bin_with_shim("waldur-push", |real| {
        format!(
            "echo \"$*\" >> '{log}'\nprev=\nfor a in \"$@\"; do\n  if [ \"$prev\" = --token-file ]; then stat -c 'mode %a' \"$a\" >> '{log}'; fi\n  prev=$a\ndone\nexec '{real}' \"$@\"\n",
            log = log.display(),
            real = real.display()
        )
    });
    let mut cmd = rig.wrapper("waldur-usage-backfill");
    cmd.args(["-c", rig.dir.join("config.yaml").to_str().unwrap()])
        .args(["-o", &rig.setup.offering.uuid])
        .args(["-s", "2024-05-01", "-e", "2024-05-31"])
        .args(["-t", STAFF_TOKEN])
        .env("WALDUR_USAGE_BIN_DIR", &bin);
    let out = run_ok(cmd);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("(ps)"), "warns about ps: {stderr}");
    let argv = std::fs::read_to_string(&log).unwrap();
    assert!(!argv.contains(STAFF_TOKEN), "token on argv: {argv}");
    assert_contains(&argv, "--staff");
    assert_contains(&argv, "mode 600");
    assert_eq!(rig.usages("2024-05-01"), expected_usages());
    // The private token file is gone afterwards.
    let leftovers: Vec<_> = std::fs::read_dir(rig.dir.join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn backfill_with_a_non_staff_token_stops_after_the_first_month() {
    let rig = Rig::new("backfill-nonstaff");
    let token_file = rig.dir.join("token");
    std::fs::write(&token_file, PROVIDER_TOKEN).unwrap();
    let mut cmd = rig.wrapper("waldur-usage-backfill");
    cmd.args(["-c", rig.dir.join("config.yaml").to_str().unwrap()])
        .args(["-o", &rig.setup.offering.uuid])
        .args(["-s", "2024-01-01", "-e", "2024-03-31"])
        .args(["--user-token-file", token_file.to_str().unwrap()]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(77), "{}", describe(&out));
    assert_eq!(rig.usage_posts(), 0);
    // Asked once before any month, and answered in terms of this script's own options: the
    // user gave --user-token-file, never --staff or --token-file.
    let stderr = text(&out.stderr);
    let last = last_line(&out);
    assert_contains(
        &last,
        &format!("the token from --user-token-file {}", token_file.display()),
    );
    assert_contains(&last, "is not staff");
    assert!(
        last.ends_with("give a staff user's token with --user-token-file FILE"),
        "{last}"
    );
    assert_lacks(&stderr, "Processing month");
    assert_lacks(&stderr, "--staff");
    assert_lacks(&stderr, "--token-file");
}

#[test]
fn a_refused_token_fails_the_cycle_in_one_line_without_broken_pipe_echoes() {
    let rig = Rig::new("refused-token");
    let mut cmd = rig.report(&[]);
    cmd.env(
        "WALDUR_API_TOKEN",
        "0000000000000000000000000000000000000bad",
    );
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(77), "{}", describe(&out));
    assert_eq!(rig.usage_posts(), 0);
    let stderr = text(&out.stderr);
    // waldur-push stops at the token; the stages before it then write into a closed pipe.
    // That is an echo of the one failure, not a second one: nothing says "Broken pipe", and
    // the summary names only waldur-push.
    assert!(!stderr.to_lowercase().contains("broken pipe"), "{stderr}");
    assert_lacks(&stderr, "exited 74");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    let failed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": FAILED: "))
        .collect();
    assert_eq!(failed.len(), 1, "{stderr}");
    assert!(
        failed[0].contains(": FAILED: waldur-push exited 77 (permission denied (token)); "),
        "{}",
        failed[0]
    );
    assert!(!failed[0].contains("slurm-usage exited") && !failed[0].contains("usage-convert"));
    assert!(last_line(&out).contains("cycle FAILED"), "{stderr}");
    // One line from waldur-push saying why, one summary line, and the cycle's total.
    assert!(errors.len() <= 3, "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|l| l.starts_with("waldur-push: error:") && l.contains("401")),
        "{errors:#?}"
    );
}

#[test]
fn wrappers_reject_bad_arguments_with_status_64() {
    let rig = Rig::new("usage");
    for (script, args) in [
        ("waldur-usage-report", vec!["--bogus"]),
        ("waldur-usage-report", vec!["--timeout", "0"]),
        ("waldur-usage-report", vec!["--cycles", "2"]),
        (
            "waldur-usage-backfill",
            vec!["-s", "2024-01-01", "-e", "2024-02-01"],
        ),
        ("waldur-usage-diagnose", vec!["--nope"]),
    ] {
        let mut cmd = rig.wrapper(script);
        cmd.args(&args);
        let out = run(cmd);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{script} {args:?}: {}",
            describe(&out)
        );
        assert!(text(&out.stderr).contains("--help"), "{script} {args:?}");
    }
}

#[test]
fn diagnose_says_ready_or_names_what_to_fix() {
    let rig = Rig::new("diagnose");
    let mut cmd = rig.wrapper("waldur-usage-diagnose");
    cmd.args(["-c", rig.dir.join("config.yaml").to_str().unwrap()]);
    let out = run(cmd);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert_contains(&stdout, "READY");
    assert_lacks(&stdout, "NOT READY");
    assert_eq!(rig.usage_posts(), 0, "diagnose submits nothing");

    // A token Waldur does not know: the verdict names the Waldur check and the fix, and the
    // exit status is waldur-push --check's.
    let mut cmd = rig.wrapper("waldur-usage-diagnose");
    cmd.args(["-c", rig.dir.join("config.yaml").to_str().unwrap()])
        .env(
            "WALDUR_API_TOKEN",
            "0000000000000000000000000000000000000bad",
        );
    let out = run(cmd);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(77), "{}", describe(&out));
    assert_contains(&stdout, "NOT READY: 1 problem(s)");
    assert_contains(&stdout, "the token was refused");
    assert!(!stdout.contains("0000000000000000000000000000000000000bad"));
}

#[test]
fn every_offering_of_the_config_is_reported_and_one_failing_does_not_stop_the_others() {
    let rig = Rig::new("two-offerings");
    // A second offering that Waldur does not know, listed first: its waldur-push fails, the
    // real offering after it is still reported, and the cycle fails naming the unknown one.
    let config = std::fs::read_to_string(rig.dir.join("config.yaml")).unwrap();
    let (head, first) = config.split_once("offerings:\n").unwrap();
    let unknown = "0ffe00000000000000000000000000ff";
    let second = first
        .replace(&rig.setup.offering.name, "Unknown offering")
        .replace(&rig.setup.offering.uuid, unknown);
    std::fs::write(
        rig.dir.join("config.yaml"),
        format!("{head}offerings:\n{second}{first}"),
    )
    .unwrap();

    let out = run(rig.report(&[]));
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(rig.sacct_calls().len(), 2, "one sacct run per offering");
    assert_eq!(
        rig.usages(&current_billing_period()),
        expected_usages(),
        "{}",
        describe(&out)
    );
    let last = last_line(&out);
    assert!(
        last.contains("cycle FAILED")
            && last.contains("1 of 2 offerings reported")
            && last.contains(&format!("failed: offering {unknown}")),
        "last line: {last}"
    );

    // --offering picks one: only the known offering, and the cycle succeeds.
    let out = run_ok(rig.report(&["--offering", &rig.setup.offering.uuid]));
    assert_eq!(rig.sacct_calls().len(), 3);
    assert!(last_line(&out).contains("1 of 1 offerings reported"));
}

/// The offering entry of a rig's config (from `  - name:` to the end), with a cluster name.
fn offering_entry(rig: &Rig, cluster: &str) -> String {
    let config = std::fs::read_to_string(rig.dir.join("config.yaml")).unwrap();
    let (_, entry) = config.split_once("offerings:\n").unwrap();
    entry.replace(
        "      allocation_prefix: \"hpc_\"\n",
        &format!("      allocation_prefix: \"hpc_\"\n      cluster_name: \"{cluster}\"\n"),
    )
}

#[test]
fn two_clusters_on_two_waldur_offerings_are_reported_in_one_cycle() {
    // Cluster ci reports to offering A on one Waldur, cluster ci2 to offering B on another.
    let a = Rig::new("two-clusters-a");
    let mut second = Setup::small();
    second.offering.uuid = "0ff2000000000000000000000000000b".into();
    second.offering.name = "Cluster two".into();
    let b = Rig::with_setup("two-clusters-b", second.clone());
    let config = format!(
        "timezone: \"UTC\"\nreporting_periods: 1\nofferings:\n{}{}",
        offering_entry(&a, "ci"),
        offering_entry(&b, "ci2")
    );
    std::fs::write(a.dir.join("config.yaml"), config).unwrap();
    // The offerings as the wrapper finds them: asked of waldur-push, not grepped from YAML.
    let listed = Command::new(env!("CARGO_BIN_EXE_waldur-push"))
        .arg("-c")
        .arg(a.dir.join("config.yaml"))
        .arg("--list-offerings")
        .output()
        .unwrap();
    assert_eq!(
        text(&listed.stdout),
        format!(
            "{{\"cluster_name\":\"ci\",\"name\":\"{}\",\"uuid\":\"{}\"}}\n\
             {{\"cluster_name\":\"ci2\",\"name\":\"Cluster two\",\"uuid\":\"{}\"}}\n",
            a.setup.offering.name, a.setup.offering.uuid, second.offering.uuid
        )
    );
    let out = run_ok(a.report(&[]));
    assert!(
        last_line(&out).contains("2 of 2 offerings reported"),
        "{}",
        describe(&out)
    );
    // Each offering's slurm_bin_path is its own rig's fake sacct: one call each, with its
    // cluster.
    let (calls_a, calls_b) = (a.sacct_calls(), b.sacct_calls());
    assert_eq!(
        (calls_a.len(), calls_b.len()),
        (1, 1),
        "{calls_a:?} {calls_b:?}"
    );
    assert!(calls_a[0].contains("--clusters=ci "), "{calls_a:?}");
    assert!(calls_b[0].contains("--clusters=ci2 "), "{calls_b:?}");
    let period = current_billing_period();
    assert_eq!(a.usages(&period), expected_usages());
    assert_eq!(b.usages(&period), expected_usages());
    assert_eq!(b.user_usages(&period), expected_user_usages());

    // Offering B's Waldur no longer takes the token: A is still stored, and the cycle fails
    // naming B.
    let mut refusing = second.clone();
    for t in &mut refusing.tokens {
        t.token = format!("{}0", &t.token[..t.token.len() - 1]);
    }
    let c = Rig::with_setup("two-clusters-c", refusing);
    let d = Rig::new("two-clusters-d");
    let config = format!(
        "timezone: \"UTC\"\nreporting_periods: 1\nofferings:\n{}{}",
        offering_entry(&c, "ci2"),
        offering_entry(&d, "ci")
    );
    std::fs::write(d.dir.join("config.yaml"), config).unwrap();
    let out = run(d.report(&[]));
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(d.usages(&period), expected_usages(), "{}", describe(&out));
    assert!(c.fake.usages().is_empty());
    let last = last_line(&out);
    assert!(
        last.contains("cycle FAILED")
            && last.contains("1 of 2 offerings reported")
            && last.contains(&format!("failed: offering {}", second.offering.uuid)),
        "last line: {last}"
    );
}

#[test]
fn the_token_from_the_environment_reaches_waldur_push_alone() {
    // WALDUR_API_TOKEN comes from the environment file, as on EL8 without credentials. sacct
    // runs below slurm-usage, so what it sees is what slurm-usage was given.
    let rig = Rig::new("token-env");
    run_ok(rig.report(&[]));
    assert_eq!(rig.usages(&current_billing_period()), expected_usages());
    let env = std::fs::read_to_string(rig.dir.join("sacct.env")).expect("sacct ran");
    assert!(
        env.contains("WALDUR_USAGE_BIN_DIR="),
        "the dump is sacct's env:\n{env}"
    );
    assert!(
        !env.contains("WALDUR_API_TOKEN"),
        "sacct got the token:\n{env}"
    );
    assert!(!env.contains(PROVIDER_TOKEN), "sacct got the token:\n{env}");

    // The diagnose's SLURM checks run without it too.
    std::fs::remove_file(rig.dir.join("sacct.env")).unwrap();
    let mut diagnose = rig.wrapper("waldur-usage-diagnose");
    diagnose.arg("-c").arg(rig.dir.join("config.yaml"));
    run_ok(diagnose);
    if let Ok(env) = std::fs::read_to_string(rig.dir.join("sacct.env")) {
        assert!(
            !env.contains(PROVIDER_TOKEN),
            "diagnose gave sacct the token:\n{env}"
        );
    }
}

/// `cmd` run by `sh` after `umask 077`, with the same environment.
fn with_umask_077(cmd: Command) -> Command {
    let mut wrapped = Command::new("sh");
    wrapped
        .arg("-c")
        .arg("umask 077 && exec \"$@\"")
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

/// The samples of a metrics file, `name{labels}` -> value, each a counter or a gauge.
fn metric_samples(path: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).expect("the metrics file exists");
    Exposition::parse(&text)
        .expect("the metrics file parses")
        .by_key(&["counter", "gauge"])
}

#[test]
fn the_report_wrapper_passes_the_metrics_file_to_waldur_push() {
    // An offering name of its own, seen in the samples' labels.
    let mut setup = Setup::small();
    setup.offering.name = "hpc-cluster".into();
    let rig = Rig::with_setup("metrics", setup);
    let prom = rig.dir.join("textfile/waldur-usage.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let results = rig.dir.join("results.jsonl");
    // Under the units' UMask=0077, as the service runs it.
    run_ok(with_umask_077(rig.report(&[
        "--metrics-file",
        prom.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ])));
    let mode = std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o644,
        "node_exporter, another user, must be able to read it"
    );
    let updated = std::fs::read_to_string(&results)
        .unwrap()
        .matches("\"status\":\"updated\"")
        .count();
    assert!(updated > 0);
    let samples = metric_samples(&prom);
    let offering = &rig.setup.offering.name;
    let key = |name: &str, labels: &str| format!("{name}{{offering={offering}{labels}}}");
    assert_eq!(
        samples[&key("waldur_usage_records_total", ",status=updated")],
        updated as f64
    );
    assert_eq!(
        samples[&key("waldur_usage_last_success_timestamp_seconds", "")],
        samples[&key("waldur_usage_last_run_timestamp_seconds", "")]
    );

    // WALDUR_USAGE_METRICS_FILE does the same for a timer that sets it in the environment file;
    // the audit wrapper writes the audit's differences there: 0 right after the push.
    let mut audit = rig.wrapper("waldur-usage-audit");
    audit
        .arg("-c")
        .arg(rig.dir.join("config.yaml"))
        .args(["--period", &current_billing_period()[..7]])
        .env("WALDUR_USAGE_METRICS_FILE", &prom);
    run_ok(audit);
    let samples = metric_samples(&prom);
    assert_eq!(samples[&key("waldur_usage_audit_differences", "")], 0.0);
    assert_eq!(
        samples[&key("waldur_usage_records_total", ",status=updated")],
        updated as f64,
        "the audit sent nothing"
    );
}

#[test]
fn the_audit_wrapper_finds_a_fresh_push_ok_and_an_unreported_month_missing() {
    let rig = Rig::new("audit");
    run_ok(rig.report(&[]));
    let posts = rig.usage_posts();
    let month = current_billing_period()[..7].to_string();

    let audit = |extra: &[&str]| {
        let mut cmd = rig.wrapper("waldur-usage-audit");
        cmd.arg("-c").arg(rig.dir.join("config.yaml")).args(extra);
        run(cmd)
    };
    // This month, right after the push: every line ok, exit 0, nothing sent.
    let out = audit(&["--period", &month]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let table = text(&out.stdout);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    // hpc_alloc1: cpu, mem, gpu totals and 2 users each; hpc_alloc2: cpu, mem, one user each.
    assert_eq!(rows.len(), 13, "{table}");
    assert!(rows.iter().all(|r| r.ends_with("  ok")), "{table}");
    assert!(
        rows.iter().any(|r| r.starts_with(&month)
            && r.contains("hpc_alloc1")
            && r.contains(" cpu ")
            && r.contains("(total)")
            && r.contains("1.44     1.44        0.00  ok")),
        "{table}"
    );
    assert_eq!(rig.usage_posts(), posts, "the audit wrote nothing");
    assert!(
        last_line(&out).contains("all 1 offerings agree with SLURM"),
        "{}",
        describe(&out)
    );

    // The default is last month, which was never reported: every value is missing, exit 1.
    let out = audit(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let lines = text(&out.stdout);
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(records.len(), 13, "{lines}");
    let previous = {
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        let first = jiff::civil::date(now.year(), now.month(), 1);
        let last = first.checked_sub(jiff::Span::new().days(1)).unwrap();
        format!("{:04}-{:02}", last.year(), last.month())
    };
    for r in &records {
        assert_eq!(r["kind"], "audit", "{r}");
        assert_eq!(r["period"], previous.as_str(), "{r}");
        // Nothing stored: a value SLURM measured is missing; a zero needs no row in Waldur.
        let expected = if r["slurm"] == "0.00" {
            "ok"
        } else {
            "missing"
        };
        assert_eq!(r["status"], expected, "{r}");
    }
    let missing = records.iter().filter(|r| r["status"] == "missing").count();
    assert_eq!(missing, 12, "{lines}");
    let err = text(&out.stderr);
    assert_contains(&err, &format!("auditing {previous}"));
    assert!(
        last_line(&out).contains("differences in 1 of 1 offerings"),
        "{}",
        describe(&out)
    );

    // Bad arguments are refused with 64 before anything runs.
    let out = audit(&["--period", "2024-3"]);
    assert_eq!(out.status.code(), Some(64), "{}", describe(&out));
    assert!(text(&out.stderr).contains("expected a month YYYY-MM, got '2024-3'"));
}

//! `waldur-usage-diagnose` against the real single-node SLURM (`shell/slurm-dev-cluster up`) and
//! the project's fake Waldur, with `cluster_name` set as `man 5 waldur-usage-config` shows.
//!
//! SLURM 22.05 answers `sacctmgr list account cluster=ci` (without `withassoc`) with a
//! "continue? (Y/N)" prompt and then spins until a timeout; with slurmdbd stopped, the verdict
//! must name slurmdbd, and only it. This file stops slurmdbd for a moment, so its test
//! runs only while no `e2e_slurm` test uses the cluster (`cluster::exclusive`): they share one
//! test binary.
//!
//! Needs root and the cluster, like `e2e_slurm`; `WALDUR_USAGE_E2E=skip` skips it. Alone,
//! with the other e2e tests: `cargo test --test suite e2e`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::e2e::cluster::{self, HOW_TO_START};
use crate::e2e::pipeline::{bin, write_config};
use crate::support::fake_waldur::{FakeWaldur, PROVIDER_TOKEN, Setup};
use crate::support::scratch::Scratch;
use crate::support::text::{assert_contains, assert_lacks};

/// The bound: a diagnose that needs longer than this has waited on something.
const QUICK: Duration = Duration::from_secs(10);

fn dev_cluster(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("shell/slurm-dev-cluster");
    let out = Command::new(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run shell/slurm-dev-cluster");
    assert!(
        out.status.success(),
        "slurm-dev-cluster {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts slurmdbd again however the test ends.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        dev_cluster(&["up"]);
    }
}

fn diagnose(config: &Path) -> (Output, Duration) {
    let bin_dir = Path::new(bin("waldur-push")).parent().unwrap();
    let t0 = Instant::now();
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("shell/waldur-usage-diagnose"))
        .arg("-c")
        .arg(config)
        .env("WALDUR_USAGE_BIN_DIR", bin_dir)
        .env("WALDUR_API_TOKEN", PROVIDER_TOKEN)
        .env("WALDUR_USAGE_ETC_DIR", config.parent().unwrap().join("etc"))
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("WALDUR_SITE_AGENT_LOG_LEVEL")
        .stdin(Stdio::null())
        .output()
        .expect("run waldur-usage-diagnose");
    (out, t0.elapsed())
}

fn verdict(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let at = stdout.find("== verdict").unwrap_or(0);
    stdout[at..].to_string()
}

#[test]
fn diagnose_with_cluster_name_is_quick_and_names_slurmdbd_only_when_it_is_down() {
    if cluster::skipped_on_purpose() {
        eprintln!("e2e_diagnose: skipped because WALDUR_USAGE_E2E=skip");
        return;
    }
    if let Err(e) = cluster::preflight() {
        panic!("cannot run the end-to-end test: {e}\n\n{HOW_TO_START}");
    }
    let _cluster = cluster::exclusive();
    let fake = FakeWaldur::start(Setup::small());
    let dir = Scratch::new("e2e-diagnose");
    let config = write_config(dir.path(), &fake.base_url(), &Setup::small().offering.uuid);
    let yaml = std::fs::read_to_string(&config).unwrap();
    assert_contains(&yaml, "cluster_name: ci");

    // Everything up: READY, well inside the bound (a prompting sacctmgr would take the 60 s
    // command timeout).
    let (out, took) = diagnose(&config);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(verdict(&out).contains("READY"), "{shown}");
    assert!(took < QUICK, "diagnose took {took:?}: {shown}");
    // The account tree of slurm-dev-cluster: two allocations and the two accounts above them.
    assert_contains(
        &shown,
        "[ ok ] accounts: 4 accounts start with \"hpc_\": hpc_alloc1, hpc_alloc2, \
             hpc_customer1, hpc_project1",
    );

    // slurmdbd stopped: exit 69 (unavailable), the verdict names slurmdbd and how to start it,
    // and does not blame slurmctld, which still answers its ping.
    let _restart = RestartOnDrop;
    dev_cluster(&["stop", "slurmdbd"]);
    let (out, took) = diagnose(&config);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(69), "{shown}");
    assert!(took < QUICK, "diagnose took {took:?}: {shown}");
    let verdict = verdict(&out);
    assert!(verdict.contains("NOT READY"), "{shown}");
    assert_contains(&verdict, "start slurmdbd (systemctl start slurmdbd)");
    assert_lacks(&verdict, "slurmctld");
    assert_contains(
        &shown,
        "[ ok ] slurmctld: answers (scontrol ping: Slurmctld(primary) at ",
    );
    assert_contains(&shown, "[FAIL] slurmdbd: does not answer (sacctmgr: ");
}

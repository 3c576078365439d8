//! `shell/demo`, the README's first command, and `shell/demo --against-fake`, its "try it
//! against a fake Waldur" mode: run as a user would, with this build's binaries.

use crate::support::text::assert_lacks;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::scratch::Scratch;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_waldur-push"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn demo(args: &[&str], log: &Path) -> Output {
    let fake = bin_dir().join("examples/fake-waldur");
    assert!(
        fake.exists(),
        "{} is missing: `cargo test` builds the examples; alone, run `cargo build --example \
         fake-waldur` first",
        fake.display()
    );
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("shell/demo"))
        .args(args)
        .env("WALDUR_USAGE_BIN_DIR", bin_dir())
        .env("WALDUR_USAGE_DEMO_LOG", log)
        .env_remove("WALDUR_API_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .output()
        .expect("run shell/demo")
}

#[test]
fn against_the_fake_the_sample_month_is_sent_once_and_the_second_cycle_changes_nothing() {
    let scratch = Scratch::new("demo");
    let log = scratch.join("log.jsonl");
    let out = demo(&["--against-fake"], &log);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{shown}");
    // The sample has four allocations (physics lies outside the hpc_ prefix): one set_usage per
    // resource, and one set_user_usages per (resource, component) with user rows: cpu and mem
    // for all four, gres/gpu only for hpc_ml. 4 + 9 = 13 results.
    let results: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  results: "))
        .collect();
    assert_eq!(
        results,
        ["  results: updated 13", "  results: unchanged 13"],
        "{shown}"
    );
    // The audit that follows finds every value as SLURM measured it: 32 lines, all ok, among
    // them hpc_ml's GPUs (457.80 = 301.63 + 156.17 GPU-hours).
    let audit: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("audit: "))
        .skip(2)
        .take_while(|l| l.starts_with("  2024-03"))
        .collect();
    assert_eq!(audit.len(), 32, "{shown}");
    assert!(audit.iter().all(|l| l.ends_with("  ok")), "{shown}");
    assert!(
        audit.iter().any(|l| l.contains("hpc_ml")
            && l.contains("gres/gpu   (total)     457.80     457.80        0.00  ok")),
        "{shown}"
    );
    // 13 usage POSTs and the agent identity (create, register_service) in the first cycle;
    // the second cycle reads and finds every value equal, so it writes nothing.
    let requests = std::fs::read_to_string(&log).unwrap();
    let writes = requests
        .lines()
        .filter(|l| l.contains("\"method\":\"POST\"") || l.contains("\"method\":\"PUT\""))
        .count();
    assert_eq!(writes, 15, "{requests}");
    assert!(
        stdout.contains("The fake Waldur received 15 POST(s) in all"),
        "{shown}"
    );
    // The staff token never shows.
    assert_lacks(&shown, "57aff0000000000000000000000000000000c0de");
}

#[test]
fn demo_rejects_an_unknown_argument_with_64() {
    let scratch = Scratch::new("demo-unused");
    let log = scratch.join("log.jsonl");
    let out = demo(&["--bogus"], &log);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument --bogus"));
}

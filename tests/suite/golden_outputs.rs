//! The pipeline's output bytes, stage by stage, on every fixture and on generated dumps, against
//! outputs recorded from a known build (`tests/fixtures/golden/`). A rewrite for speed or
//! structure must leave every byte, message and exit code as it was.
//!
//! Each case runs `slurm-usage` on a saved sacct dump, `usage-convert` on its output and
//! `waldur-push --offline` on that. Small outputs are stored whole (`NAME.txt`: each stage's
//! exit status, stderr and stdout); the generated dumps, whose outputs run to megabytes, store
//! their size and FNV-1a hash instead.
//!
//! To record the outputs of a given build (once, from the build the rewrite must match):
//! `GOLDEN_RECORD=DIR cargo test --test suite golden_outputs::`, with DIR holding that build's four
//! binaries and `gen-sacct`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::scratch::Scratch;

const SAMPLE: &str = "sample/waldur-site-agent-config.yaml";
/// A fixed clock: the fixtures were captured on 2026-11-25; every period is closed.
const NOW: &str = "2026-12-02T10:00:00Z";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of the binaries under test (or, when recording, of the recorded build).
fn bin_dir() -> PathBuf {
    match std::env::var_os("GOLDEN_RECORD") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_BIN_EXE_slurm-usage"))
            .parent()
            .unwrap()
            .to_path_buf(),
    }
}

fn gen_sacct() -> PathBuf {
    let dir = bin_dir();
    let recorded = dir.join("gen-sacct");
    if recorded.exists() {
        return recorded;
    }
    let built = dir.join("examples/gen-sacct");
    assert!(
        built.exists(),
        "{} is missing: `cargo test` builds the examples; alone, run `cargo build --example \
         gen-sacct` first",
        built.display()
    );
    built
}

/// One stage's result.
struct Stage {
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn run(tool: &str, args: &[&str], stdin: &[u8]) -> Stage {
    use std::io::Write;
    let mut child = Command::new(bin_dir().join(tool))
        .args(args)
        .current_dir(root())
        .env_remove("WALDUR_API_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Stage {
        status: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// slurm-usage with `args`, then usage-convert and waldur-push --offline with `config`.
fn pipeline(slurm_usage: &[&str], config: &str) -> [Stage; 3] {
    let first = run("slurm-usage", slurm_usage, b"");
    let second = run("usage-convert", &["-c", config], &first.stdout);
    let third = run(
        "waldur-push",
        &["-c", config, "--offline", "--now", NOW],
        &second.stdout,
    );
    [first, second, third]
}

/// 64-bit FNV-1a: a stable fingerprint of a large output.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const TOOLS: [&str; 3] = ["slurm-usage", "usage-convert", "waldur-push --offline"];

/// The stages as text: whole, or (`hashed`) stdout as size and hash.
fn describe(stages: &[Stage; 3], hashed: bool) -> String {
    let mut text = String::new();
    for (tool, s) in TOOLS.iter().zip(stages) {
        let _ = writeln!(text, "== {tool}: exit {:?}", s.status);
        let _ = writeln!(text, "-- stderr");
        text.push_str(&String::from_utf8_lossy(&s.stderr));
        if hashed {
            let _ = writeln!(
                text,
                "-- stdout: {} bytes, {} lines, FNV-1a {:016x}",
                s.stdout.len(),
                s.stdout.iter().filter(|&&b| b == b'\n').count(),
                fnv1a(&s.stdout)
            );
        } else {
            let _ = writeln!(text, "-- stdout");
            text.push_str(&String::from_utf8_lossy(&s.stdout));
        }
    }
    text
}

/// Compare with (or, when recording, write) `tests/fixtures/golden/NAME.txt`.
fn check(name: &str, actual: &str) {
    let path = root()
        .join("tests/fixtures/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("GOLDEN_RECORD").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if expected != actual {
        let at = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name}: the output differs from {} from line {}:\n expected: {:?}\n actual:   {:?}",
            path.display(),
            at + 1,
            expected.lines().nth(at),
            actual.lines().nth(at)
        );
    }
}

/// How slurm-usage reads each captured dump: (file, extra arguments).
const FIXTURES: &[(&str, &[&str])] = &[
    (
        "a1_alloc_acct-reqtres-elapsed-user.noheader.txt",
        &[
            "--compat",
            "reference",
            "--fields",
            "Account,ReqTRES,Elapsed,User",
        ],
    ),
    (
        "a2_alloc_acct-reqtres-elapsed-user.accounts.noheader.txt",
        &[
            "--compat",
            "reference",
            "--fields",
            "Account,ReqTRES,Elapsed,User",
        ],
    ),
    (
        "a3_alloc_acct-reqtres-elapsed-user.header.txt",
        &["--compat", "reference"],
    ),
    ("a3_alloc_acct-reqtres-elapsed-user.header.txt", &[]),
    (
        "a4_alloc_acct-reqtres-elapsed-user.truncate.noheader.txt",
        &[
            "--compat",
            "reference",
            "--fields",
            "Account,ReqTRES,Elapsed,User",
        ],
    ),
    (
        "a5_alloc_acct-reqtres-elapsed-user.accounts.truncate.header.txt",
        &["--compat", "reference"],
    ),
    ("b1_steps_detail.noheader.txt", &[]),
    ("b2_steps_detail.header.txt", &[]),
    ("b2_steps_detail.header.txt", &["--compat", "reference"]),
    ("b2_steps_detail.header.txt", &["--jobs"]),
    ("b3_alloc_detail.header.txt", &[]),
    ("b4_steps_detail.truncate.header.txt", &[]),
    (
        "b5_steps_detail.accounts.header.txt",
        &["--accounts", "hpc_alloc1"],
    ),
    (
        "c1_window_alloc_acct-reqtres-elapsed-user.header.txt",
        &["--compat", "reference"],
    ),
    (
        "c2_window_alloc_acct-reqtres-elapsed-user.truncate.header.txt",
        &["--compat", "reference"],
    ),
    ("c3_window_steps_detail.header.txt", &[]),
    ("c4_window_steps_detail.truncate.header.txt", &[]),
    ("c5_held_cancelled_job_by_id.header.txt", &[]),
    (
        "d1_alloc_acct-reqtres-elapsed-user.parsable1.header.txt",
        &["--compat", "reference"],
    ),
    ("d2_alloc_detail.fixedwidth.header.txt", &[]),
    ("d3_jobs_overview.header.txt", &[]),
    ("d3_jobs_overview.header.txt", &["--skip-bad-lines"]),
];

#[test]
fn every_captured_sacct_dump_gives_the_recorded_bytes_at_every_stage() {
    for (n, (file, extra)) in FIXTURES.iter().enumerate() {
        let input = format!("tests/fixtures/sacct/{file}");
        let mut args = vec![
            "-c", SAMPLE, "--period", "2026-11", "--now", NOW, "--input", &input,
        ];
        args.extend_from_slice(extra);
        let name = format!("sacct-{n:02}-{}", file.split('_').next().unwrap());
        check(&name, &describe(&pipeline(&args, SAMPLE), false));
    }
}

#[test]
fn the_sample_month_gives_the_recorded_bytes_with_every_config() {
    let configs = [
        SAMPLE,
        "tests/fixtures/convert/hours.yaml",
        "tests/fixtures/convert/node-hours.yaml",
        "tests/fixtures/convert/node-hours-60.yaml",
        "tests/fixtures/convert/seed.yaml",
    ];
    let dumps = [
        ("sample", "sample/sacct-2024-03.txt"),
        ("e7", "tests/fixtures/convert/e7-sacct.txt"),
    ];
    for (n, config) in configs.iter().enumerate() {
        for (name, dump) in dumps {
            let args = [
                "-c", config, "--period", "2024-03", "--now", NOW, "--input", dump,
            ];
            check(
                &format!("{name}-config{n}"),
                &describe(&pipeline(&args, config), false),
            );
        }
    }
}

/// The benchmark's kind of input, small: the default mix, and the pairs mode.
#[test]
fn generated_dumps_give_the_recorded_bytes() {
    let dir = Scratch::new("golden");
    for (name, args) in [
        ("gen-20000", &["20000", "42"][..]),
        ("gen-50000-pairs-20000", &["50000", "7", "20000"][..]),
        ("gen-3000-pairs-3000", &["3000", "42", "3000"][..]),
    ] {
        let out = Command::new(gen_sacct()).args(args).output().unwrap();
        assert!(out.status.success(), "gen-sacct {args:?}");
        let dump = dir.join(format!("{name}.txt"));
        std::fs::write(&dump, &out.stdout).unwrap();
        let dump = dump.to_str().unwrap();
        // UTC (no config for slurm-usage): the dumps hold jobs of up to 31 days.
        let args = ["--period", "2024-03", "--now", NOW, "--input", dump];
        let stages = pipeline(&args, SAMPLE);
        let text = describe(&stages, true).replace(dump, "DUMP");
        check(name, &text);
    }
}

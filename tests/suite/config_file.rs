//! The config file as every tool reads it (issue 16): a regular file of at most 1 MiB that
//! others cannot write, with distinct offering names and sane nesting. Each refusal exits 78
//! and says what to do.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::scratch::ScratchFile;
use crate::support::text::assert_contains;
use assert_cmd::cargo::cargo_bin_cmd;

const CONFIG: i32 = 78;

fn seed() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/convert/seed.yaml"
    );
    fs::read_to_string(path).unwrap()
}

fn write(name: &str, text: &str, mode: u32) -> ScratchFile {
    ScratchFile::with_mode("config-file", name, text, mode)
}

/// usage-convert with this config and no input: (exit code, stderr).
fn load(path: &std::path::Path) -> (i32, String) {
    let out = cargo_bin_cmd!("usage-convert")
        .arg("-c")
        .arg(path)
        .write_stdin("")
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_seed_config_loads() {
    let (code, err) = load(write("ok.yaml", &seed(), 0o600).path());
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_device_or_an_endless_file_is_refused_at_once() {
    let started = Instant::now();
    let (code, err) = load(std::path::Path::new("/dev/zero"));
    assert_eq!(code, CONFIG, "{err}");
    assert_contains(
        &err,
        "/dev/zero: is not a regular file; give the path of the YAML config file",
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A regular file over 1 MiB: refused without parsing it.
    let big = format!("{}\n#{}\n", seed(), "x".repeat(1 << 20));
    let (code, err) = load(write("big.yaml", &big, 0o600).path());
    assert_eq!(code, CONFIG, "{err}");
    assert_contains(
        &err,
        "is larger than 1024 KiB; a site-agent config is a few KiB",
    );
}

#[test]
fn a_config_anyone_can_write_is_refused_and_a_group_writable_one_warns() {
    let path = write("open.yaml", &seed(), 0o666);
    let (code, err) = load(&path);
    assert_eq!(code, CONFIG, "{err}");
    assert_contains(
        &err,
        &format!(
            "{}: anyone can write this file (mode 0666), so anyone could send the usage and \
             the token elsewhere; run: chmod o-w {}",
            path.display(),
            path.display()
        ),
    );
    let path = write("group.yaml", &seed(), 0o660);
    let (code, err) = load(&path);
    assert_eq!(code, 0, "{err}");
    assert_contains(&err, "the file's group can write it (mode 0660)");
}

#[test]
fn two_offerings_with_one_name_are_refused() {
    let text = seed();
    let start = text.find("  - name:").unwrap();
    let offering = &text[start..];
    let twice = format!(
        "{text}{}",
        offering.replace(
            "d629d5e45567425da9cdbdc1af67b32c",
            "11111111111111111111111111111111"
        )
    );
    let (code, err) = load(write("twice.yaml", &twice, 0o600).path());
    assert_eq!(code, CONFIG, "{err}");
    assert_contains(
        &err,
        "offerings[1].name: \"Example SLURM Offering\" is also the name of offerings[0]; \
             --offering NAME could not tell them apart, so give each offering its own name",
    );
}

#[test]
fn deeply_nested_brackets_are_refused_quickly() {
    // 200 KB of `[`: the YAML parser would take tens of seconds over it.
    let text = format!("{}\nextra: {}\n", seed(), "[".repeat(200_000));
    let started = Instant::now();
    let (code, err) = load(write("deep.yaml", &text, 0o600).path());
    assert_eq!(code, CONFIG, "{err}");
    assert_contains(
        &err,
        "brackets nested more than 64 deep; a site-agent config never needs that",
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Brackets in quotes and comments do not count; real flow lists do not come near.
    let fine = format!(
        "{}\nnote: \"{}\"\n# {}\nlist: [[1, 2], {{a: [3]}}]\n",
        seed(),
        "[".repeat(100),
        "{".repeat(100)
    );
    let (code, err) = load(write("fine.yaml", &fine, 0o600).path());
    assert_eq!(code, 0, "{err}");
}

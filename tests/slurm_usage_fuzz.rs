//! Bounded property test: mutated and random sacct output never makes the parser or the
//! binary panic, and whatever is accepted adds up (each account total equals the sum of its
//! users, per TRES and in jobs). A seeded PRNG keeps every run identical; a failing case prints
//! its seed and input.

use std::collections::BTreeMap;
use std::path::PathBuf;

use assert_cmd::Command;
use waldur_usage::config::Compat;
use waldur_usage::sacct::line::{AccountFilter, Layout, default_format};
use waldur_usage::sacct::read::{ReadOptions, read_period};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the grammars, plus anything at all now and then.
const ALPHABET: &[u8] = b"|,=.:-_+[]%/KMGTPE0123456789 \n\r\tNoneUnknownINVALIDgres/gpu:mem";

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sacct");
    let mut lines = vec![
        b"100|hpc_a|alice|COMPLETED|3600|billing=4,cpu=4,mem=2.50G,node=1|cpu=4".to_vec(),
        b"101_[1-5%2]|hpc_a|bob|PENDING|0||cpu=1".to_vec(),
        b"102+1|HPC_A|Bob|CANCELLED by 0|86400|cpu=8,gres/gpu:a100=2,gres/gpumem=16G|".to_vec(),
        b"102.batch|hpc_a||COMPLETED|5|cpu=1|".to_vec(),
    ];
    for f in ["b3_alloc_detail.header.txt", "d3_jobs_overview.header.txt"] {
        let text = std::fs::read(dir.join(f)).unwrap();
        lines.extend(text.split(|&b| b == b'\n').skip(1).map(<[u8]>::to_vec));
    }
    lines
}

fn mutate(rng: &mut Rng, line: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(line.len() + 1);
        match rng.below(7) {
            0 if !line.is_empty() => {
                line.remove(at.min(line.len() - 1));
            }
            1 => line.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            2 => line.insert(at, rng.next() as u8),
            3 => line.truncate(at),
            4 if !line.is_empty() => {
                let from = rng.below(line.len());
                let piece: Vec<u8> = line[from..(from + rng.below(12)).min(line.len())].to_vec();
                line.splice(at..at, piece);
            }
            5 => {
                let digits = format!("{}", rng.next() >> rng.below(64));
                line.splice(at..at, digits.bytes());
            }
            _ => {}
        }
    }
}

fn random_input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.below(4) == 0 {
        out.extend_from_slice(b"JobIDRaw|Account|User|State|ElapsedRaw|AllocTRES|ReqTRES\n");
    }
    for _ in 0..=rng.below(12) {
        let mut line = seeds[rng.below(seeds.len())].clone();
        if rng.below(3) > 0 {
            mutate(rng, &mut line);
        }
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    out
}

fn options(compat: Compat, skip: bool, jobs: bool, fields: Option<&str>) -> ReadOptions {
    ReadOptions {
        compat,
        filter: AccountFilter::All,
        skip_bad_lines: skip,
        jobs,
        layout: Layout::from_format(fields.unwrap_or(default_format(compat)), compat).unwrap(),
        window_seconds: Some(31 * 86_400),
    }
}

/// Skipped lines are warned about on stderr; keep the test output readable.
fn quiet() {
    waldur_usage::cli::init_logging(Some("error"), None).unwrap();
}

#[test]
fn the_parser_never_panics_and_accepted_input_adds_up() {
    quiet();
    let seeds = seeds();
    let detail =
        "JobID,Account,User,State,Start,End,Elapsed,ElapsedRaw,AllocTRES,ReqTRES,NNodes,NCPUS";
    let started = std::time::Instant::now();
    let (mut accepted, mut rejected) = (0u32, 0u32);
    for seed in 1..=4000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let input = random_input(&mut rng, &seeds);
        for (compat, fields) in [
            (Compat::Exact, None),
            (Compat::Reference, None),
            (Compat::Exact, Some(detail)),
        ] {
            let opts = options(compat, seed % 2 == 0, false, fields);
            let result =
                std::panic::catch_unwind(|| read_period(input.as_slice(), "2024-03", &opts));
            let Ok(result) = result else {
                panic!(
                    "seed {seed}: panic on input {:?}",
                    String::from_utf8_lossy(&input)
                );
            };
            let Ok(data) = result else {
                rejected += 1;
                continue;
            };
            accepted += 1;
            let recs = data.tres_records();
            let mut per_account: BTreeMap<String, (u64, BTreeMap<String, u128>)> = BTreeMap::new();
            for r in recs.iter().filter(|r| r.user.is_some()) {
                let e = per_account
                    .entry(r.account.to_ascii_lowercase())
                    .or_default();
                e.0 += r.jobs;
                for (k, v) in &r.tres_seconds {
                    *e.1.entry(k.clone()).or_default() += v;
                }
            }
            let totals: Vec<_> = recs.iter().filter(|r| r.user.is_none()).collect();
            assert_eq!(totals.len(), per_account.len(), "seed {seed}: {recs:?}");
            for t in totals {
                let sum = &per_account[&t.account.to_ascii_lowercase()];
                assert_eq!((t.jobs, &t.tres_seconds), (sum.0, &sum.1), "seed {seed}");
            }
            let jobs: u64 = per_account.values().map(|s| s.0).sum();
            assert_eq!(jobs, data.allocations, "seed {seed}");
            assert!(
                data.allocations + data.skipped_lines <= data.lines,
                "seed {seed}"
            );
        }
    }
    // Both outcomes are exercised, so neither branch is vacuous.
    assert!(
        accepted > 500 && rejected > 500,
        "accepted {accepted}, rejected {rejected}"
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "keep the property test bounded"
    );
}

#[test]
fn the_binary_never_panics_on_mutated_input() {
    let seeds = seeds();
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03));
        let input = random_input(&mut rng, &seeds);
        let mut args = vec!["--period", "2024-03", "--input", "-"];
        if seed % 3 == 0 {
            args.push("--skip-bad-lines");
        }
        if seed % 5 == 0 {
            args.push("--jobs");
        }
        let out = Command::cargo_bin("slurm-usage")
            .unwrap()
            .args(&args)
            .write_stdin(input.clone())
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(65),
            "seed {seed}: exit {code:?} on {:?}\n{}",
            String::from_utf8_lossy(&input),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        if code == Some(0) {
            // Complete: period, data, period_end whose count matches.
            let lines: Vec<&str> = text.lines().collect();
            let end: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
            assert_eq!(end["kind"], "period_end");
            assert_eq!(
                end["records"].as_u64().unwrap() as usize,
                lines.len() - 2,
                "seed {seed}"
            );
        } else {
            assert!(
                text.is_empty(),
                "seed {seed}: a failed period wrote records"
            );
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    quiet();
    let mut rng = Rng(0x1234_5678);
    for _ in 0..3000 {
        let len = rng.below(200);
        let input: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(2) == 0 {
                    ALPHABET[rng.below(ALPHABET.len())]
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        for compat in [Compat::Exact, Compat::Reference] {
            let opts = options(compat, true, true, None);
            assert!(
                std::panic::catch_unwind(|| read_period(input.as_slice(), "2024-03", &opts))
                    .is_ok(),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

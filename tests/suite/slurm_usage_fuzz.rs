//! Bounded property test: mutated and random sacct output never makes the parser or the
//! binary panic, and whatever is accepted adds up (each account total equals the sum of its
//! users, per TRES and in jobs). A seeded PRNG keeps every run identical; a failing case prints
//! its seed and input.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use assert_cmd::Command;
use waldur_usage::config::Compat;

use crate::support::rng::Rng;
use waldur_usage::sacct::line::{AccountFilter, Layout, default_format};
use waldur_usage::sacct::read::{ReadOptions, read_period};

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
    for _ in 0..=rng.index(4) {
        let at = rng.index(line.len() + 1);
        match rng.index(7) {
            0 if !line.is_empty() => {
                line.remove(at.min(line.len() - 1));
            }
            1 => line.insert(at, ALPHABET[rng.index(ALPHABET.len())]),
            2 => line.insert(at, rng.next() as u8),
            3 => line.truncate(at),
            4 if !line.is_empty() => {
                let from = rng.index(line.len());
                let piece: Vec<u8> = line[from..(from + rng.index(12)).min(line.len())].to_vec();
                line.splice(at..at, piece);
            }
            5 => {
                let digits = format!("{}", rng.next() >> rng.index(64));
                line.splice(at..at, digits.bytes());
            }
            _ => {}
        }
    }
}

fn random_input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.index(4) == 0 {
        out.extend_from_slice(b"JobIDRaw|Account|User|State|ElapsedRaw|AllocTRES|ReqTRES\n");
    }
    for _ in 0..=rng.index(12) {
        let mut line = seeds[rng.index(seeds.len())].clone();
        if rng.index(3) > 0 {
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
        let len = rng.index(200);
        let input: Vec<u8> = (0..len)
            .map(|_| {
                if rng.index(2) == 0 {
                    ALPHABET[rng.index(ALPHABET.len())]
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

/// Valid lines of the default format (JobIDRaw,Account,User,State,ElapsedRaw,AllocTRES,ReqTRES),
/// most from fixture b3.
const MEANING_BASE: &[&str] = &[
    "1|hpc_alloc2|hpcuser1|COMPLETED|2|billing=2,cpu=2,mem=200M,node=1|billing=2,cpu=2,mem=200M,node=1",
    "2|hpc_alloc1|hpcuser2|COMPLETED|4|billing=2,cpu=2,gres/gpu=1,mem=1G,node=1|billing=2,cpu=2,gres/gpu=1,mem=1G,node=1",
    "3|hpc_alloc2|hpcuser1|TIMEOUT|78|billing=1,cpu=1,mem=64M,node=1|billing=1,cpu=1,mem=64M,node=1",
    "8|hpc_alloc1|hpcuser2|CANCELLED by 0|2|billing=1,cpu=1,mem=50M,node=1|billing=1,cpu=1,mem=50M,node=1",
    "5_1|hpc_alloc2|hpcuser3|COMPLETED|2|billing=1,cpu=1,mem=50M,node=1|billing=1,cpu=1,mem=50M,node=1",
    "11|hpc_alloc2|hpcuser3|CANCELLED by 0|0||billing=2,cpu=2,mem=50M,node=1",
    "100|hpc_a|alice|COMPLETED|3600|billing=4,cpu=4,mem=2.50G,node=1|cpu=4",
    "102+1|HPC_A|Bob|CANCELLED by 0|86400|cpu=8,gres/gpu:a100=2,gres/gpumem=16G|",
    "103_[1-5%2]|hpc_a|bob|PENDING|Unknown||cpu=1",
    "1.batch|hpc_alloc2||COMPLETED|2|cpu=2,mem=200M,node=1|",
];

/// March 2024 in UTC.
const MARCH: u64 = 31 * 86_400;

/// Per lower-cased account: jobs and TRES x seconds (zero entries left out).
type Totals = BTreeMap<String, (u64, BTreeMap<String, u128>)>;

/// The job states slurm-usage(1) lists as the ones sacct prints (the paragraph "State, when
/// the columns include it, is one sacct prints: ..."), read from the man page once.
fn documented_states() -> &'static [String] {
    static STATES: OnceLock<Vec<String>> = OnceLock::new();
    STATES.get_or_init(|| {
        let page = concat!(env!("CARGO_MANIFEST_DIR"), "/man/slurm-usage.1");
        let page = std::fs::read_to_string(page).unwrap();
        let (_, after) = page
            .split_once("is one sacct prints:")
            .expect("slurm-usage(1) lists the states");
        let paragraph = after.split(".IP").next().unwrap();
        let states: Vec<String> = paragraph
            .lines()
            .filter(|line| !line.starts_with('.')) // roff requests: `.BI "CANCELLED by " UID`
            .flat_map(|line| line.split([' ', ',', '.', '(']))
            .filter(|w| w.len() > 1 && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
            .map(String::from)
            .collect();
        assert!(states.iter().any(|s| s == "COMPLETED"), "{states:?}");
        states
    })
}

/// What one line means by the grammar of slurm-usage(1), written here independently of the
/// library: `Err` for a bad line, `Ok(None)` for a step, else (account, TRES x seconds).
#[allow(clippy::type_complexity)]
fn oracle(line: &[u8]) -> Result<Option<(String, BTreeMap<String, u128>)>, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("blank".into());
    }
    let mut f: Vec<&[u8]> = line.split(|&b| b == b'|').collect();
    if f.len() == 8 && f[7].is_empty() {
        f.pop();
    }
    if f.len() != 7 {
        return Err("fields".into());
    }
    let (id, account, user, state, elapsed, tres) = (f[0], f[1], f[2], f[3], f[4], f[5]);
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if id.contains(&b'.') {
        return Ok(None);
    }
    // 123, 123_4, 123_[1-5%2], each with an optional +N.
    let (id, het) = match id.iter().position(|&b| b == b'+') {
        Some(i) => (&id[..i], Some(&id[i + 1..])),
        None => (id, None),
    };
    let (job, array) = match id.iter().position(|&b| b == b'_') {
        Some(i) => (&id[..i], Some(&id[i + 1..])),
        None => (id, None),
    };
    let array_ok = match array {
        None => true,
        Some(a) if digits(a) => true,
        Some(a) => {
            a.len() > 2
                && a[0] == b'['
                && a[a.len() - 1] == b']'
                && a[1..a.len() - 1]
                    .iter()
                    .all(|&b| b.is_ascii_digit() || b"-,%:".contains(&b))
        }
    };
    if !digits(job) || !array_ok || het.is_some_and(|h| !digits(h)) {
        return Err("job id".into());
    }
    let name_ok = |s: &[u8]| {
        !s.is_empty()
            && s.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"._@$-".contains(&b))
    };
    if !name_ok(account) || !name_ok(user) {
        return Err("name".into());
    }
    let state_ok = documented_states().iter().any(|s| s.as_bytes() == state)
        || state
            .strip_prefix(b"CANCELLED by ")
            .is_some_and(|u| digits(u) && u.len() <= 10);
    if !state_ok {
        return Err("state".into());
    }
    let seconds: Option<u128> = match elapsed {
        b"" | b"None" | b"Unknown" => None,
        e if digits(e) && e.len() <= 20 => {
            let s: u128 = std::str::from_utf8(e).unwrap().parse().unwrap();
            if s > u128::from(MARCH) {
                return Err("elapsed bound".into());
            }
            Some(s)
        }
        _ => return Err("elapsed".into()),
    };
    let mut values: BTreeMap<String, u128> = BTreeMap::new();
    if !tres.is_empty() {
        for entry in tres.split(|&b| b == b',') {
            let eq = entry.iter().position(|&b| b == b'=').ok_or("no =")?;
            let (name, value) = (&entry[..eq], &entry[eq + 1..]);
            let (kind, sub) = match name.iter().position(|&b| b == b'/') {
                Some(i) => (&name[..i], Some(&name[i + 1..])),
                None => (name, None),
            };
            let kind = std::str::from_utf8(kind).map_err(|_| "utf8")?;
            let named = ["gres", "license", "bb", "fs", "ic"].contains(&kind);
            // A TRES SLURM cannot name prints as its numeric id.
            let plain = ["cpu", "mem", "energy", "node", "billing", "vmem", "pages"]
                .contains(&kind)
                || (!kind.is_empty() && kind.bytes().all(|b| b.is_ascii_digit()));
            match sub {
                None if plain => {}
                Some(s)
                    if named
                        && !s.is_empty()
                        && s.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b'=') => {}
                _ => return Err("tres name".into()),
            }
            let name = std::str::from_utf8(name).unwrap().to_string();
            // DIGITS[.DIGITS][KMGTP], rounded up to whole base units (MiB for memory).
            let (number, suffix) = match value.last() {
                Some(&c) if b"KMGTP".contains(&c) => (&value[..value.len() - 1], Some(c)),
                _ => (value, None),
            };
            let (int, frac) = match number.iter().position(|&b| b == b'.') {
                Some(i) => (&number[..i], Some(&number[i + 1..])),
                None => (number, None),
            };
            if !digits(int) || frac.is_some_and(|f| !digits(f)) {
                return Err("tres value".into());
            }
            let frac = frac.unwrap_or(b"");
            if int.len() > 20 || frac.len() > 18 {
                return Err("tres range".into());
            }
            let memory = name == "mem" || name == "gres/gpumem" || kind == "bb";
            // A bare number is already in base units (MiB for memory).
            let up = match suffix {
                None => 0,
                Some(c) => {
                    b"KMGTP".iter().position(|&x| x == c).unwrap() as i32 + 1
                        - if memory { 2 } else { 0 }
                }
            };
            let mut num: u128 = std::str::from_utf8(&[int, frac].concat())
                .unwrap()
                .parse()
                .unwrap();
            let mut den: u128 = 10u128.pow(frac.len() as u32);
            if up >= 0 {
                num = num.checked_mul(1u128 << (10 * up)).ok_or("range")?;
            } else {
                den <<= 10 * (-up);
            }
            let v = num.div_ceil(den);
            if v > u128::from(u64::MAX) {
                return Err("tres range".into());
            }
            if values.insert(name, v).is_some() {
                return Err("tres twice".into());
            }
        }
        if !values.contains_key("gres/gpu") {
            let typed: Vec<u128> = values
                .iter()
                .filter(|(k, _)| k.len() > 9 && k.starts_with("gres/gpu:"))
                .map(|(_, &v)| v)
                .collect();
            if !typed.is_empty() {
                values.insert("gres/gpu".into(), typed.iter().sum());
            }
        }
    }
    let seconds = match seconds {
        Some(s) if s > 0 && values.is_empty() => return Err("usage unknown".into()),
        Some(s) => s,
        None if values.is_empty() || state == b"PENDING" => 0,
        None => return Err("no elapsed".into()),
    };
    let usage = values
        .into_iter()
        .map(|(k, v)| (k, v * seconds))
        .filter(|&(_, v)| v > 0)
        .collect();
    Ok(Some((
        String::from_utf8_lossy(account).to_ascii_lowercase(),
        usage,
    )))
}

fn add(totals: &mut Totals, account: String, usage: BTreeMap<String, u128>) {
    let e = totals.entry(account).or_default();
    e.0 += 1;
    for (k, v) in usage {
        *e.1.entry(k).or_default() += v;
    }
}

/// Mutate one line of a valid dump per input; whenever the parser accepts, the totals must be
/// those of the untouched lines plus what [`oracle`] makes of the mutated text, and the oracle
/// must find the mutated text grammatical. Prints the counts.
fn meaning(mutants: u64) {
    quiet();
    let started = std::time::Instant::now();
    let opts = options(Compat::Exact, false, false, None);
    let base: Vec<Vec<u8>> = MEANING_BASE.iter().map(|l| l.as_bytes().to_vec()).collect();
    let (mut accepted, mut refused, mut changed, mut strict) = (0u64, 0u64, 0u64, 0u64);
    let mut rng = Rng(0x005e_ed0f_6a11_u64);
    let mut unmutated = Totals::new();
    for l in &base {
        if let Some((a, u)) = oracle(l).unwrap() {
            add(&mut unmutated, a, u);
        }
    }
    for n in 0..mutants {
        let k = rng.index(base.len());
        let mut line = base[k].clone();
        mutate(&mut rng, &mut line);
        let mut input = b"JobIDRaw|Account|User|State|ElapsedRaw|AllocTRES|ReqTRES\n".to_vec();
        for (i, l) in base.iter().enumerate() {
            input.extend_from_slice(if i == k { &line } else { l });
            input.push(b'\n');
        }
        let result = std::panic::catch_unwind(|| read_period(input.as_slice(), "2024-03", &opts));
        let Ok(result) = result else {
            panic!("mutant {n}: panic on {:?}", String::from_utf8_lossy(&input));
        };
        // The mutated text may now be several lines (an inserted newline), or none.
        let mutated: Vec<&[u8]> = line.split(|&b| b == b'\n').collect();
        let verdicts: Vec<_> = mutated.iter().map(|l| oracle(l)).collect();
        let Ok(data) = result else {
            refused += 1;
            if verdicts.iter().all(Result::is_ok) {
                // Refused though the written grammar allows it (stricter, never looser).
                strict += 1;
            }
            continue;
        };
        accepted += 1;
        let mut expected = Totals::new();
        for (i, l) in base.iter().enumerate() {
            if i != k {
                if let Some((a, u)) = oracle(l).unwrap() {
                    add(&mut expected, a, u);
                }
            }
        }
        for (text, v) in mutated.iter().zip(verdicts) {
            match v {
                Ok(Some((a, u))) => add(&mut expected, a, u),
                Ok(None) => {}
                Err(why) => panic!(
                    "mutant {n}: accepted {:?}, which the grammar refuses ({why})",
                    String::from_utf8_lossy(text)
                ),
            }
        }
        let mut got = Totals::new();
        for r in data.tres_records().iter().filter(|r| r.user.is_none()) {
            let usage = r
                .tres_seconds
                .iter()
                .filter(|&(_, &v)| v > 0)
                .map(|(k, &v)| (k.clone(), v))
                .collect();
            got.insert(r.account.to_ascii_lowercase(), (r.jobs, usage));
        }
        assert_eq!(
            got,
            expected,
            "mutant {n}: totals of {:?}",
            String::from_utf8_lossy(&line)
        );
        if got != unmutated {
            changed += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{mutants} mutants in {secs:.1} s: {accepted} accepted ({changed} of them changed the \
         totals, each by exactly what the grammar says the mutated line means), {refused} \
         refused ({strict} of those the written grammar would allow)"
    );
    assert!(accepted > 100 && refused > 100, "{accepted} / {refused}");
}

#[test]
fn accepted_mutants_mean_what_the_grammar_says() {
    let mutants = std::env::var("FUZZ_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let started = std::time::Instant::now();
    meaning(mutants);
    if mutants <= 20_000 {
        assert!(started.elapsed().as_secs() < 30, "keep it bounded");
    }
}

#[test]
#[ignore = "long: 200,000 mutants; cargo test --test suite slurm_usage_fuzz:: -- --ignored --nocapture"]
fn accepted_mutants_mean_what_the_grammar_says_200k() {
    meaning(200_000);
}

//! Synthetic `sacct --parsable2 --noheader` output in slurm-usage's default format
//! (`JobIDRaw,Account,User,State,ElapsedRaw,AllocTRES,ReqTRES`), for benchmarks.
//!
//! ```text
//! cargo run --release --example gen-sacct -- JOBS [SEED [PAIRS]] > dump.txt
//! ```
//!
//! The mix: 500 accounts (`hpc_acct_000`..), 2,000 users each working in two or three
//! accounts, mostly COMPLETED jobs with some FAILED / TIMEOUT / `CANCELLED by UID` / RUNNING,
//! 1% never started (empty AllocTRES), 10% on GPUs (untyped plus typed, or typed only, some with
//! `gres/gpumem`), 10% running for days (up to a whole month, as `--truncate` clips them),
//! memory written as sacct does (`1000M`, `4G`, `2.50G`). Output is deterministic per seed.
//!
//! With PAIRS, the jobs spread over exactly PAIRS distinct (account, user) pairs instead (or
//! over JOBS pairs, if fewer), the axis along which large sites grow: `max(40, PAIRS / 1600)`
//! accounts (`hpc_acct_0000`..) and every user (`user000000`..) working in each of them. Job `n`
//! goes to pair `n * STEP mod PAIRS` with STEP coprime to PAIRS, so every pair gets
//! `JOBS / PAIRS` jobs or one more, in a scattered order. Everything else is drawn as above.

use std::io::{self, BufWriter, Write};

const ACCOUNTS: u64 = 500;
const USERS: u64 = 2000;

#[path = "../tests/support/rng.rs"]
#[allow(dead_code)] // `index` serves the fuzz test
mod rng;

use rng::Rng;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || io::Error::other("usage: gen-sacct JOBS [SEED [PAIRS]]");
    let jobs: u64 = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let seed: u64 = match args.next() {
        Some(s) => s.parse().map_err(|_| usage())?,
        None => 42,
    };
    let pairs: Option<u64> = match args.next() {
        Some(p) => Some(p.parse().ok().filter(|&p| p > 0).ok_or_else(usage)?),
        None => None,
    };
    let spread = pairs.map(Spread::new);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let out = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut tres = String::with_capacity(160);
    for n in 0..jobs {
        let user = rng.below(USERS);
        // Each user works in two or three accounts.
        let account = match rng.below(if user % 4 == 0 { 3 } else { 2 }) {
            0 => (user * 7) % ACCOUNTS,
            1 => (user * 13 + 1) % ACCOUNTS,
            _ => (user * 31 + 5) % ACCOUNTS,
        };
        let state_roll = rng.below(100);
        let started = state_roll != 0;
        let state = match state_roll {
            0 => "CANCELLED by 0".to_string(),
            1..=80 => "COMPLETED".to_string(),
            81..=85 => "FAILED".to_string(),
            86..=90 => "TIMEOUT".to_string(),
            91..=95 => format!("CANCELLED by {}", 10_000 + user),
            _ => "RUNNING".to_string(),
        };
        let elapsed = if !started {
            0
        } else if rng.below(10) == 0 {
            // Multi-day: 1 to 31 days.
            86_400 + rng.below(30 * 86_400)
        } else {
            1 + rng.below(6 * 3600)
        };
        let cpus = 1u64 << rng.below(8);
        let nodes = 1 + cpus / 64;
        tres.clear();
        use std::fmt::Write as _;
        let _ = write!(tres, "billing={cpus},cpu={cpus},");
        if rng.below(10) == 0 {
            let gpus = 1 + rng.below(4);
            match rng.below(3) {
                0 => {
                    let _ = write!(tres, "gres/gpu:a100={gpus},gres/gpu={gpus},");
                }
                1 => {
                    let _ = write!(tres, "gres/gpu:a100={gpus},gres/gpu:v100=1,");
                }
                _ => {
                    let _ = write!(tres, "gres/gpu={gpus},gres/gpumem={}G,", 40 * gpus);
                }
            }
        }
        match rng.below(4) {
            0 => write!(tres, "mem={}M,", 1000 * cpus),
            1 => write!(tres, "mem={}G,", 4 * cpus),
            2 => write!(tres, "mem={}.50G,", 2 * cpus),
            _ => write!(tres, "mem={}M,", 3900 * cpus),
        }
        .map_err(|_| io::Error::other("format"))?;
        let _ = write!(tres, "node={nodes}");
        let alloc = if started { tres.as_str() } else { "" };
        let id = 1_000_000 + n;
        match &spread {
            None => writeln!(
                out,
                "{id}|hpc_acct_{account:03}|user{user:04}|{state}|{elapsed}|{alloc}|{tres}"
            )?,
            Some(spread) => {
                let (account, user) = spread.pair(n);
                writeln!(
                    out,
                    "{id}|hpc_acct_{account:04}|user{user:06}|{state}|{elapsed}|{alloc}|{tres}"
                )?
            }
        }
    }
    out.flush()
}

/// The pairs mode: job `n` to pair `n * step mod pairs`, pair `k` to account `k mod accounts`
/// and user `k / accounts`.
struct Spread {
    pairs: u64,
    step: u64,
    accounts: u64,
}

impl Spread {
    fn new(pairs: u64) -> Self {
        let gcd = |mut a: u64, mut b: u64| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let mut step = 1_000_003;
        while gcd(step, pairs) != 1 {
            step += 2;
        }
        Spread {
            pairs,
            step,
            accounts: (pairs / 1600).max(40),
        }
    }

    fn pair(&self, n: u64) -> (u64, u64) {
        let k = ((u128::from(n) * u128::from(self.step)) % u128::from(self.pairs)) as u64;
        (k % self.accounts, k / self.accounts)
    }
}

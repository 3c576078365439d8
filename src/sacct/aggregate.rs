//! Sums of TRES x seconds per account and per (account, user), exact in `u128`.
//!
//! Accounts and users are grouped by their ASCII lower-case form (Slurm keeps names lower-case,
//! but a hand-made dump or a Waldur `backend_id` may not) and keep the spelling of their first
//! line. The records come out sorted by lower-cased account, the account total (`user: null`)
//! first, then the users sorted, so two runs over the same data diff cleanly.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::records::TresRecord;

use super::line::Allocation;
use super::tres::{TresId, TresTable};

/// A small, fast, non-cryptographic hasher (the "Fx" multiply-rotate scheme) for the short
/// account and user names; the input is sacct's own output, not an adversary's.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 56));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Usage of one account or one user: job count and TRES x seconds by TRES id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Allocations counted.
    pub jobs: u64,
    /// `tres[id]` is `Some(sum)` once that TRES appeared in any of the allocations (a zero sum
    /// is kept, so a TRES that was allocated for 0 s still shows up).
    pub tres: Vec<Option<u128>>,
}

impl Usage {
    /// Add an allocation; all or nothing (on overflow nothing changes).
    fn add(&mut self, alloc: &Allocation<'_>) -> Result<(), AggregateError> {
        // u64 x u64 always fits in u128; only a sum can overflow. Check every sum first.
        let product = |value: u64| u128::from(value) * u128::from(alloc.seconds);
        for &(id, value) in alloc.tres {
            let current = self
                .tres
                .get(usize::from(id))
                .copied()
                .flatten()
                .unwrap_or(0);
            current
                .checked_add(product(value))
                .ok_or(AggregateError::Overflow)?;
        }
        self.jobs += 1;
        for &(id, value) in alloc.tres {
            let i = usize::from(id);
            if self.tres.len() <= i {
                self.tres.resize(i + 1, None);
            }
            let slot = &mut self.tres[i];
            *slot = Some(slot.unwrap_or(0) + product(value));
        }
        Ok(())
    }

    /// The sums by TRES name.
    pub fn named(&self, table: &TresTable) -> BTreeMap<String, u128> {
        self.tres
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (table.name(i as TresId).to_string(), v)))
            .collect()
    }
}

/// Usage of one allocation by TRES name (for `--jobs`).
pub fn job_usage(alloc: &Allocation<'_>) -> BTreeMap<String, u128> {
    let table = alloc.table;
    alloc
        .tres
        .iter()
        .map(|&(id, v)| {
            (
                table.name(id).to_string(),
                u128::from(v) * u128::from(alloc.seconds),
            )
        })
        .collect()
}

/// An allocation could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateError {
    /// A sum passed 2^128 (impossible for real data; never wrapped or clipped).
    Overflow,
    /// An account or user name is not valid UTF-8 and cannot be written to JSON faithfully.
    NotUtf8(&'static str),
}

impl fmt::Display for AggregateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateError::Overflow => f.write_str("a TRES x seconds sum overflows 128 bits"),
            AggregateError::NotUtf8(what) => write!(f, "the {what} name is not valid UTF-8"),
        }
    }
}

impl std::error::Error for AggregateError {}

#[derive(Debug, Default)]
struct AccountUsage {
    name: String,
    total: Usage,
    users: FxMap<Box<[u8]>, (String, Usage)>,
}

/// Per-account and per-user sums of one period.
#[derive(Debug, Default)]
pub struct Aggregator {
    accounts: FxMap<Box<[u8]>, AccountUsage>,
    key: Vec<u8>,
}

fn lower_into(buf: &mut Vec<u8>, name: &[u8]) {
    buf.clear();
    buf.extend(name.iter().map(u8::to_ascii_lowercase));
}

fn utf8(name: &[u8], what: &'static str) -> Result<String, AggregateError> {
    std::str::from_utf8(name)
        .map(str::to_string)
        .map_err(|_| AggregateError::NotUtf8(what))
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of allocations added.
    pub fn jobs(&self) -> u64 {
        self.accounts.values().map(|a| a.total.jobs).sum()
    }

    /// Add one allocation to its account total and its user; all or nothing, so a line
    /// rejected here (and skipped with `--skip-bad-lines`) leaves no trace.
    pub fn add(&mut self, alloc: &Allocation<'_>) -> Result<(), AggregateError> {
        lower_into(&mut self.key, alloc.account);
        let account = match self.accounts.get_mut(self.key.as_slice()) {
            Some(a) => a,
            None => {
                // Check both names before creating anything.
                let name = utf8(alloc.account, "account")?;
                utf8(alloc.user, "user")?;
                self.accounts
                    .entry(self.key.clone().into_boxed_slice())
                    .or_insert(AccountUsage {
                        name,
                        ..AccountUsage::default()
                    })
            }
        };
        lower_into(&mut self.key, alloc.user);
        // The total is added first: a user's sums never exceed its account's, so once the
        // total took the allocation the user's share cannot overflow.
        match account.users.get_mut(self.key.as_slice()) {
            Some((_, user)) => {
                account.total.add(alloc)?;
                user.add(alloc)
            }
            None => {
                let name = utf8(alloc.user, "user")?;
                account.total.add(alloc)?;
                let mut user = Usage::default();
                user.add(alloc)?;
                account
                    .users
                    .insert(self.key.clone().into_boxed_slice(), (name, user));
                Ok(())
            }
        }
    }

    /// The `tres` records of `period`, sorted (see the module docs).
    pub fn records(&self, period: &str, table: &TresTable) -> Vec<TresRecord> {
        let mut accounts: Vec<_> = self.accounts.iter().collect();
        accounts.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        for (_, account) in accounts {
            out.push(TresRecord {
                period: period.to_string(),
                account: account.name.clone(),
                user: None,
                jobs: account.total.jobs,
                tres_seconds: account.total.named(table),
            });
            let mut users: Vec<_> = account.users.iter().collect();
            users.sort_by(|a, b| a.0.cmp(b.0));
            for (_, (name, usage)) in users {
                out.push(TresRecord {
                    period: period.to_string(),
                    account: account.name.clone(),
                    user: Some(name.clone()),
                    jobs: usage.jobs,
                    tres_seconds: usage.named(table),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sacct::tres::parse_tres;

    fn alloc<'a>(
        table: &'a TresTable,
        account: &'a str,
        user: &'a str,
        seconds: u64,
        tres: &'a [(TresId, u64)],
    ) -> Allocation<'a> {
        Allocation {
            table,
            job_id: b"1",
            account: account.as_bytes(),
            user: user.as_bytes(),
            state: b"COMPLETED",
            seconds,
            tres,
        }
    }

    #[test]
    fn sums_per_user_and_account_grouped_case_insensitively_and_sorted() {
        let mut table = TresTable::new();
        let mut a = Vec::new();
        parse_tres(b"cpu=4,mem=1G", &mut table, &mut a).unwrap();
        let mut b = Vec::new();
        parse_tres(b"cpu=1,gres/gpu=2", &mut table, &mut b).unwrap();
        let mut agg = Aggregator::new();
        let t = &table;
        agg.add(&alloc(t, "Zeta", "bob", 10, &a)).unwrap();
        agg.add(&alloc(t, "zeta", "Alice", 100, &b)).unwrap();
        agg.add(&alloc(t, "alpha", "carol", 3, &a)).unwrap();
        agg.add(&alloc(t, "ZETA", "BOB", 5, &a)).unwrap();
        let recs = agg.records("2024-03", &table);
        let keys: Vec<_> = recs
            .iter()
            .map(|r| (r.account.as_str(), r.user.as_deref(), r.jobs))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("alpha", None, 1),
                ("alpha", Some("carol"), 1),
                ("Zeta", None, 3),
                ("Zeta", Some("Alice"), 1),
                ("Zeta", Some("bob"), 2),
            ]
        );
        // Zeta total: cpu 4x10 + 1x100 + 4x5 = 160; mem 1024x10 + 1024x5 = 15360; gpu 2x100 = 200.
        let zeta = &recs[2].tres_seconds;
        assert_eq!(zeta["cpu"], 160);
        assert_eq!(zeta["mem"], 15_360);
        assert_eq!(zeta["gres/gpu"], 200);
        // bob: cpu 4x10 + 4x5 = 60, and no GPU key at all.
        assert_eq!(recs[4].tres_seconds["cpu"], 60);
        assert!(!recs[4].tres_seconds.contains_key("gres/gpu"));
    }

    #[test]
    fn a_rejected_allocation_leaves_no_trace() {
        // Found by the property test: a new account with a user name that is not UTF-8 used to
        // leave an empty account total behind when the line was skipped.
        let table = TresTable::new();
        let mut agg = Aggregator::new();
        let mut bad = alloc(&table, "acct", "x", 5, &[]);
        bad.user = b"\xff";
        assert_eq!(agg.add(&bad), Err(AggregateError::NotUtf8("user")));
        assert!(agg.records("2024-03", &table).is_empty());
        agg.add(&alloc(&table, "acct", "ok", 5, &[])).unwrap();
        assert_eq!(agg.add(&bad), Err(AggregateError::NotUtf8("user")));
        let recs = agg.records("2024-03", &table);
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].jobs, recs[1].jobs), (1, 1));
    }

    #[test]
    fn a_month_of_a_huge_job_does_not_overflow() {
        // 100,000 cores x 31 days x 86400 s = 267,840,000,000,000 core-seconds, and memory of
        // 2^40 MiB (1 EiB) for the same time, added 1000 times.
        let mut table = TresTable::new();
        let mut t = Vec::new();
        parse_tres(b"cpu=100000,mem=1048576T", &mut table, &mut t).unwrap();
        let mut agg = Aggregator::new();
        for _ in 0..1000 {
            agg.add(&alloc(&table, "a", "u", 31 * 86_400, &t)).unwrap();
        }
        let recs = agg.records("2024-03", &table);
        assert_eq!(recs[0].tres_seconds["cpu"], 100_000u128 * 2_678_400 * 1000);
        assert_eq!(
            recs[0].tres_seconds["mem"],
            (1u128 << 40) * 2_678_400 * 1000
        );
    }
}

//! Sums of TRES x seconds per account and per (account, user), exact in `u128`.
//!
//! Accounts and users are grouped by their ASCII lower-case form (Slurm keeps names lower-case,
//! but a hand-made dump or a Waldur `backend_id` may not) and keep the spelling of their first
//! line. The records come out sorted by lower-cased account, the account total (`user: null`)
//! first, then the users sorted, so two runs over the same data diff cleanly.

use std::collections::BTreeMap;
use std::fmt;

use crate::records::TresRecord;

use super::hash::FxMap;
use super::line::Allocation;
use super::tres::{TresId, TresTable};

/// How many TRES ids are summed inline (no pointer to chase in the hot loop); sites with more
/// TRES kinds spill the rest into a vector.
const INLINE: usize = 16;

/// Usage of one account or one user: job count and TRES x seconds by TRES id.
///
/// A TRES that appeared in any allocation is "seen" and reported even when its sum is zero
/// (allocated for 0 s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Allocations counted.
    pub jobs: u64,
    sums: [u128; INLINE],
    /// Bit `id` set once TRES `id` (< [`INLINE`]) was seen.
    seen: u32,
    /// Sums and seen flags of ids from [`INLINE`] on.
    extra: Vec<(u128, bool)>,
}

impl Usage {
    fn slot(&mut self, id: TresId) -> &mut u128 {
        let i = usize::from(id);
        if i < INLINE {
            return &mut self.sums[i];
        }
        if self.extra.len() <= i - INLINE {
            self.extra.resize(i - INLINE + 1, (0, false));
        }
        &mut self.extra[i - INLINE].0
    }

    fn mark(&mut self, id: TresId) {
        let i = usize::from(id);
        if i < INLINE {
            self.seen |= 1 << i;
        } else {
            self.extra[i - INLINE].1 = true;
        }
    }

    /// The sum of TRES `id`, if it was seen.
    pub fn get(&self, id: TresId) -> Option<u128> {
        let i = usize::from(id);
        if i < INLINE {
            (self.seen & (1 << i) != 0).then_some(self.sums[i])
        } else {
            self.extra
                .get(i - INLINE)
                .and_then(|&(v, seen)| seen.then_some(v))
        }
    }

    fn ids(&self) -> impl Iterator<Item = TresId> + '_ {
        (0..INLINE + self.extra.len()).map(|i| i as TresId)
    }

    /// Add an allocation; all or nothing (on overflow nothing changes).
    fn add(&mut self, alloc: &Allocation<'_>) -> Result<(), AggregateError> {
        // u64 x u64 always fits in u128; only a sum can overflow, which is undone.
        let seconds = u128::from(alloc.seconds);
        for (done, &(id, value)) in alloc.tres.iter().enumerate() {
            let slot = self.slot(id);
            match slot.checked_add(u128::from(value) * seconds) {
                Some(sum) => *slot = sum,
                None => {
                    for &(id, value) in &alloc.tres[..done] {
                        *self.slot(id) -= u128::from(value) * seconds;
                    }
                    return Err(AggregateError::Overflow);
                }
            }
        }
        for &(id, _) in alloc.tres {
            self.mark(id);
        }
        self.jobs += 1;
        Ok(())
    }

    /// Add another usage (an account total from its users).
    fn merge(&mut self, other: &Usage) -> Result<(), AggregateError> {
        for id in other.ids() {
            if let Some(v) = other.get(id) {
                let slot = self.slot(id);
                *slot = slot.checked_add(v).ok_or(AggregateError::Overflow)?;
                self.mark(id);
            }
        }
        self.jobs += other.jobs;
        Ok(())
    }

    /// The sums by TRES name.
    pub fn named(&self, table: &TresTable) -> BTreeMap<String, u128> {
        self.ids()
            .filter_map(|id| self.get(id).map(|v| (table.name(id).to_string(), v)))
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

/// One (account, user) pair: names as first seen, keys lower-cased.
#[derive(Debug)]
struct Slot {
    account_key: Box<[u8]>,
    user_key: Box<[u8]>,
    account: String,
    user: String,
    usage: Usage,
}

/// Per-(account, user) sums of one period; account totals are the exact sums of their users,
/// computed when the records are made. One hash lookup per line.
#[derive(Debug, Default)]
pub struct Aggregator {
    /// `lower(account) | lower(user)` -> index into `slots` (`|` cannot occur in a field).
    index: FxMap<Box<[u8]>, usize>,
    /// In order of first appearance.
    slots: Vec<Slot>,
    key: Vec<u8>,
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
        self.slots.iter().map(|s| s.usage.jobs).sum()
    }

    /// Add one allocation to its (account, user); all or nothing, so a line rejected here
    /// (and skipped with `--skip-bad-lines`) leaves no trace.
    pub fn add(&mut self, alloc: &Allocation<'_>) -> Result<(), AggregateError> {
        self.key.clear();
        self.key
            .extend(alloc.account.iter().map(u8::to_ascii_lowercase));
        self.key.push(b'|');
        self.key
            .extend(alloc.user.iter().map(u8::to_ascii_lowercase));
        if let Some(&i) = self.index.get(self.key.as_slice()) {
            return self.slots[i].usage.add(alloc);
        }
        let account = utf8(alloc.account, "account")?;
        let user = utf8(alloc.user, "user")?;
        let mut usage = Usage::default();
        usage.add(alloc)?;
        let split = alloc.account.len();
        self.slots.push(Slot {
            account_key: self.key[..split].into(),
            user_key: self.key[split + 1..].into(),
            account,
            user,
            usage,
        });
        self.index
            .insert(self.key.clone().into_boxed_slice(), self.slots.len() - 1);
        Ok(())
    }

    /// The `tres` records of `period`, sorted (see the module docs).
    pub fn records(
        &self,
        period: &str,
        table: &TresTable,
    ) -> Result<Vec<TresRecord>, AggregateError> {
        // Sort by (account key, user key); ties cannot happen (the pair is the map key).
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.slots[a], &self.slots[b]);
            (&a.account_key, &a.user_key).cmp(&(&b.account_key, &b.user_key))
        });
        let mut out = Vec::with_capacity(order.len() + order.len() / 2);
        let mut group = order.as_slice();
        while let Some(&first) = group.first() {
            let key = &self.slots[first].account_key;
            let n = group
                .iter()
                .take_while(|&&i| &self.slots[i].account_key == key)
                .count();
            let (members, rest) = group.split_at(n);
            // The account keeps the spelling of its earliest line.
            let earliest = members.iter().copied().min().unwrap_or(first);
            let account = &self.slots[earliest].account;
            let mut total = Usage::default();
            for &i in members {
                total.merge(&self.slots[i].usage)?;
            }
            out.push(TresRecord {
                period: period.to_string(),
                account: account.clone(),
                user: None,
                jobs: total.jobs,
                tres_seconds: total.named(table),
            });
            for &i in members {
                let s = &self.slots[i];
                out.push(TresRecord {
                    period: period.to_string(),
                    account: account.clone(),
                    user: Some(s.user.clone()),
                    jobs: s.usage.jobs,
                    tres_seconds: s.usage.named(table),
                });
            }
            group = rest;
        }
        Ok(out)
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
        let recs = agg.records("2024-03", &table).unwrap();
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
        assert!(agg.records("2024-03", &table).unwrap().is_empty());
        agg.add(&alloc(&table, "acct", "ok", 5, &[])).unwrap();
        assert_eq!(agg.add(&bad), Err(AggregateError::NotUtf8("user")));
        let recs = agg.records("2024-03", &table).unwrap();
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
        let recs = agg.records("2024-03", &table).unwrap();
        assert_eq!(recs[0].tres_seconds["cpu"], 100_000u128 * 2_678_400 * 1000);
        assert_eq!(
            recs[0].tres_seconds["mem"],
            (1u128 << 40) * 2_678_400 * 1000
        );
    }
}

//! Sums of TRES x seconds per account and per (account, user), exact in `u128`.
//!
//! Accounts and users are grouped by their ASCII lower-case form (Slurm keeps names lower-case,
//! but a hand-made dump or a Waldur `backend_id` may not; see [`super::names`]). An account
//! keeps the spelling of its first line, a user in it the spelling of the first line of that
//! (account, user) pair. The records come out sorted by lower-cased account, the account total
//! (`user: null`) first, then the users sorted, so two runs over the same data diff cleanly.
//!
//! The state per pair is compact: two name ids, a job count and the sums in [`super::sums`].
//! Account totals are summed as the lines arrive, in a second, small [`Sums`] keyed by account,
//! so finishing reads no pair twice; the records are sorted once, at the end, into a
//! [`Summary`] (see [`super::summary`]).

use std::collections::BTreeMap;
use std::fmt;

use super::line::Allocation;
use super::names::{NameId, NameTable, json_string};
use super::summary::{Group, Summary};
use super::sums::{Overflow, PairId, Sums};
use super::tres::{TresId, TresTable};
use crate::hash::FxMap;

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

impl From<Overflow> for AggregateError {
    fn from(_: Overflow) -> Self {
        AggregateError::Overflow
    }
}

/// What the sums need of one allocation (see [`Allocation`]).
#[derive(Debug, Clone, Copy)]
pub struct Usage<'a> {
    /// Account as printed.
    pub account: &'a [u8],
    /// User as printed.
    pub user: &'a [u8],
    /// Seconds the allocation ran in the window.
    pub seconds: u64,
    /// TRES of the allocation in base units.
    pub tres: &'a [(TresId, u64)],
}

impl<'a> Usage<'a> {
    /// The parts of `alloc` that the sums need.
    pub fn of(alloc: &Allocation<'a>) -> Usage<'a> {
        Usage {
            account: alloc.account,
            user: alloc.user,
            seconds: alloc.seconds,
            tres: alloc.tres,
        }
    }
}

/// An allocation's account and user as interned ids.
#[derive(Debug, Clone, Copy)]
pub struct Named {
    /// The account's id.
    pub account: NameId,
    /// The user's id.
    pub user: NameId,
    /// This line spells the user differently from the user's first line (its case).
    pub respelled: bool,
}

/// The account and user names of a period, interned (see [`super::names`]). The reading thread
/// holds them while the sums are folded on another, and hands them over at the end.
#[derive(Debug, Default)]
pub struct Names {
    pub(super) accounts: NameTable,
    pub(super) users: NameTable,
}

impl Names {
    /// The ids of `usage`'s account and user, interning a new one; a new name must be UTF-8.
    pub fn resolve(&mut self, usage: &Usage<'_>) -> Result<Named, AggregateError> {
        let (account, user) = (
            self.accounts.find(usage.account),
            self.users.find(usage.user),
        );
        let (account, user) = match (account, user) {
            (Some(a), Some(u)) => (a, u),
            (account, user) => {
                // Names are checked before anything is kept.
                let account_text = utf8(usage.account, "account")?;
                let user_text = utf8(usage.user, "user")?;
                (
                    account
                        .unwrap_or_else(|| self.accounts.insert_new(usage.account, account_text)),
                    user.unwrap_or_else(|| self.users.insert_new(usage.user, user_text)),
                )
            }
        };
        let respelled = self.users.text(user).as_bytes() != usage.user;
        Ok(Named {
            account,
            user,
            respelled,
        })
    }
}

/// One (account, user) pair.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pair {
    pub(super) account: NameId,
    pub(super) user: NameId,
    pub(super) jobs: u64,
}

/// Per-(account, user) sums of one period, and per account the exact sums of its users. Three
/// small hash lookups per line, no allocation once the names are known.
#[derive(Debug, Default)]
pub struct Aggregator {
    pub(super) names: Names,
    /// `account << 32 | user` -> pair.
    index: FxMap<u64, PairId>,
    /// In order of first appearance.
    pub(super) pairs: Vec<Pair>,
    pub(super) sums: Sums,
    /// Per account id: the sums of its pairs (a TRES is seen when any pair saw it).
    account_sums: Sums,
    /// Per account id: its allocations.
    account_jobs: Vec<u64>,
    /// An account total passed 2^128: [`Aggregator::finish`] fails the period.
    account_overflow: bool,
    /// The user's spelling in pairs whose first line spelled the user differently from the
    /// user's first line anywhere: (text, JSON string).
    pub(super) spellings: FxMap<PairId, (Box<str>, Box<str>)>,
}

fn utf8<'a>(name: &'a [u8], what: &'static str) -> Result<&'a str, AggregateError> {
    std::str::from_utf8(name).map_err(|_| AggregateError::NotUtf8(what))
}

fn pair_key(account: NameId, user: NameId) -> u64 {
    u64::from(account) << 32 | u64::from(user)
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of allocations added.
    pub fn jobs(&self) -> u64 {
        self.pairs.iter().map(|p| p.jobs).sum()
    }

    /// Add the allocation's TRES x seconds to `pair`; all or nothing.
    fn add_sums(&mut self, pair: PairId, alloc: &Usage<'_>) -> Result<(), AggregateError> {
        Ok(self.sums.add_line(pair, alloc.seconds, alloc.tres)?)
    }

    /// Add one allocation to its (account, user); all or nothing, so a line rejected here
    /// (and skipped with `--skip-bad-lines`) leaves no trace.
    pub fn add(&mut self, alloc: &Allocation<'_>) -> Result<(), AggregateError> {
        self.add_usage(&Usage::of(alloc))
    }

    /// [`Aggregator::add`] for the parts of an allocation that the sums need.
    pub fn add_usage(&mut self, alloc: &Usage<'_>) -> Result<(), AggregateError> {
        let named = self.names.resolve(alloc)?;
        self.add_named(named, alloc)
    }

    /// Add an allocation whose names [`Names::resolve`] gave `named` (these names, or the ones
    /// handed over later with [`Aggregator::adopt_names`]); all or nothing.
    pub fn add_named(&mut self, named: Named, alloc: &Usage<'_>) -> Result<(), AggregateError> {
        let (account, user) = (named.account, named.user);
        if let Some(&pair) = self.index.get(&pair_key(account, user)) {
            self.add_sums(pair, alloc)?;
            self.pairs[pair as usize].jobs += 1;
            self.add_to_account(account, alloc);
            return Ok(());
        }
        // A known user spelled in another case: the same bytes but for ASCII case, so text.
        let respelled = match named.respelled {
            true => Some(utf8(alloc.user, "user")?),
            false => None,
        };
        let pair = PairId::try_from(self.pairs.len()).expect("fewer than 2^32 pairs");
        if let Err(e) = self.add_sums(pair, alloc) {
            for &(id, _) in alloc.tres {
                self.sums.unsee(pair, id);
            }
            return Err(e);
        }
        if let Some(text) = respelled {
            self.spellings
                .insert(pair, (text.into(), json_string(text).into()));
        }
        self.pairs.push(Pair {
            account,
            user,
            jobs: 1,
        });
        self.index.insert(pair_key(account, user), pair);
        self.add_to_account(account, alloc);
        Ok(())
    }

    /// Take over the names that ids given to [`Aggregator::add_named`] refer to.
    pub fn adopt_names(&mut self, names: Names) {
        self.names = names;
    }

    /// Add an allocation already added to one of `account`'s pairs to the account's total. A
    /// total past 2^128 fails the period in [`Aggregator::finish`], as the line itself was good.
    fn add_to_account(&mut self, account: NameId, alloc: &Usage<'_>) {
        let index = account as usize;
        if index >= self.account_jobs.len() {
            self.account_jobs.resize(index + 1, 0);
        }
        self.account_jobs[index] += 1;
        if self
            .account_sums
            .add_line(account, alloc.seconds, alloc.tres)
            .is_err()
        {
            self.account_overflow = true;
        }
    }

    /// Sort the pairs and group them by account: the records of the period, ready to write.
    pub fn finish(self, table: &TresTable) -> Result<Summary, AggregateError> {
        if self.account_overflow {
            return Err(AggregateError::Overflow);
        }
        let (account_rank, user_rank) = (self.names.accounts.ranks(), self.names.users.ranks());
        // (account rank, user rank, pair): distinct pairs never tie.
        let mut keys: Vec<u128> = self
            .pairs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                u128::from(account_rank[p.account as usize]) << 64
                    | u128::from(user_rank[p.user as usize]) << 32
                    | i as u128
            })
            .collect();
        keys.sort_unstable();
        let mut by_name: Vec<TresId> = (0..table.len() as TresId).collect();
        by_name.sort_by(|&a, &b| table.name(a).cmp(table.name(b)));
        // The account's rank is the top word of the key: a group ends where it changes.
        let mut groups = Vec::new();
        let mut start = 0;
        while start < keys.len() {
            let rank = keys[start] >> 64;
            let end = start + keys[start..].partition_point(|&k| k >> 64 == rank);
            let account = self.pairs[keys[start] as PairId as usize].account;
            let row = self.account_sums.row(account);
            groups.push(Group {
                account,
                members: start..end,
                jobs: self.account_jobs[account as usize],
                total: by_name.iter().map(|&id| row.get(id)).collect(),
            });
            start = end;
        }
        let order: Vec<PairId> = keys.iter().map(|&k| k as PairId).collect();
        drop(keys);
        Ok(Summary {
            tres_json: by_name
                .iter()
                .map(|&id| json_string(table.name(id)))
                .collect(),
            tres_names: by_name
                .iter()
                .map(|&id| table.name(id).to_string())
                .collect(),
            by_name,
            groups,
            order,
            aggregator: self,
        })
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
        let recs = agg.finish(&table).unwrap().records("2024-03");
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
        let mut bad = alloc(&table, "acct", "x", 5, &[]);
        bad.user = b"\xff";
        let mut agg = Aggregator::new();
        assert_eq!(agg.add(&bad), Err(AggregateError::NotUtf8("user")));
        assert!(agg.finish(&table).unwrap().records("2024-03").is_empty());
        let mut agg = Aggregator::new();
        assert_eq!(agg.add(&bad), Err(AggregateError::NotUtf8("user")));
        agg.add(&alloc(&table, "acct", "ok", 5, &[])).unwrap();
        assert_eq!(agg.add(&bad), Err(AggregateError::NotUtf8("user")));
        let recs = agg.finish(&table).unwrap().records("2024-03");
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
        let recs = agg.finish(&table).unwrap().records("2024-03");
        assert_eq!(recs[0].tres_seconds["cpu"], 100_000u128 * 2_678_400 * 1000);
        assert_eq!(
            recs[0].tres_seconds["mem"],
            (1u128 << 40) * 2_678_400 * 1000
        );
    }

    #[test]
    fn a_user_keeps_the_spelling_of_the_first_line_of_each_pair_and_the_json_is_serdes() {
        let mut table = TresTable::new();
        let mut t = Vec::new();
        parse_tres(b"cpu=2,mem=1M", &mut table, &mut t).unwrap();
        let mut agg = Aggregator::new();
        agg.add(&alloc(&table, "b", "BOB", 1, &t)).unwrap();
        agg.add(&alloc(&table, "a", "bob", 2, &t)).unwrap();
        agg.add(&alloc(&table, "b", "bob", 4, &t)).unwrap();
        agg.add(&alloc(&table, "a", "J\u{e9}r\u{f4}me \"x\"", 8, &[]))
            .unwrap();
        let summary = agg.finish(&table).unwrap();
        let records = summary.records("2024-03");
        let users: Vec<_> = records.iter().map(|r| r.user.as_deref()).collect();
        assert_eq!(
            users,
            [
                None,
                Some("bob"),
                Some("J\u{e9}r\u{f4}me \"x\""),
                None,
                Some("BOB")
            ]
        );
        // Sorted by lower-cased name ("bob" < "j\u{e9}r\u{f4}me"); b/BOB: cpu 2 x (1 + 4) = 10.
        assert_eq!(records[4].tres_seconds["cpu"], 10);
        // A user seen with no TRES has an empty map, and the account total is still there.
        assert!(records[2].tres_seconds.is_empty());
        let mut json = Vec::new();
        summary.write_json("2024-03", &mut json).unwrap();
        let expected: String = records
            .into_iter()
            .map(|r| crate::records::Record::Tres(r).to_json() + "\n")
            .collect();
        assert_eq!(String::from_utf8(json).unwrap(), expected);
    }

    #[test]
    fn an_account_total_past_two_to_the_128_fails_the_period() {
        let mut table = TresTable::new();
        let mut t = Vec::new();
        parse_tres(b"cpu=18446744073709551615", &mut table, &mut t).unwrap();
        let mut agg = Aggregator::new();
        // Each user alone fits (2^64 - 1)^2 < 2^128; their sum does not.
        agg.add(&alloc(&table, "a", "u1", u64::MAX, &t)).unwrap();
        agg.add(&alloc(&table, "a", "u2", u64::MAX, &t)).unwrap();
        assert_eq!(agg.finish(&table).err(), Some(AggregateError::Overflow));
    }
}

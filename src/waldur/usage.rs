//! The compact state of one period's usage: what waldur-push holds between a period's first
//! record and its `period_end`.
//!
//! A large site sends hundreds of thousands of (account, user) records a month, so nothing
//! here is a map per record: component and user names are interned once per period, an
//! account's total is one small array indexed by component, and its users are rows into two
//! flat arrays (component id, amount). Amounts stay exact ([`Amount`], hundredths).
//!
//! [`MonthBuilder`] takes the records in stream order; [`MonthBuilder::finish`] sorts
//! everything the way the old map-based state iterated it (accounts by lower-cased name,
//! users by name, components by name) and checks the period's consistency, giving a
//! [`MonthUsage`] to read through [`AccountView`] and [`UserView`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::amount::Amount;
use crate::period::Period;
use crate::records::MonthRecord;

/// A fast hasher for interned names and ids (the input is the site's own pipeline).
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word: [u8; 8] = chunk.try_into().expect("8 bytes");
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Shifts, not a copy through memory: a short tail is the common case.
            let word = rest
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b));
            self.write_u64(word);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        // The product's high bits depend on all input bits; hashbrown takes its bucket from
        // the low ones.
        self.0.rotate_left(26)
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// An interned name's number within its period.
pub type NameId = u32;

/// Names interned once per period: each distinct name is stored once and known by its id.
#[derive(Debug, Default, Clone)]
pub struct Names {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, NameId, Fx>,
}

impl Names {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = NameId::try_from(self.names.len()).expect("fewer than 2^32 names a period");
        self.names.push(name.into());
        self.index.insert(name.into(), id);
        id
    }

    /// The id of `name`, if interned.
    pub fn find(&self, name: &str) -> Option<NameId> {
        self.index.get(name).copied()
    }

    /// The name of `id`.
    pub fn get(&self, id: NameId) -> &str {
        &self.names[id as usize]
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name was interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One user's row: its values are `comps[start..next.start]` / `amounts[..]`.
#[derive(Debug, Clone, Copy)]
struct Row {
    user: NameId,
    start: u32,
    line: usize,
}

/// The usage of one account in one period.
#[derive(Debug, Clone)]
pub struct AccountUsage {
    key: Box<str>,
    account: Box<str>,
    /// Component id -> amount; `None` until the account total arrived.
    total: Option<Vec<Option<Amount>>>,
    total_line: usize,
    rows: Vec<Row>,
    comps: Vec<NameId>,
    amounts: Vec<Amount>,
}

impl AccountUsage {
    fn row_range(&self, i: usize) -> std::ops::Range<usize> {
        let start = self.rows[i].start as usize;
        let end = self
            .rows
            .get(i + 1)
            .map_or(self.comps.len(), |r| r.start as usize);
        start..end
    }
}

/// Why a period's records do not add up, found when it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inconsistency {
    /// An account has per-user records but no total.
    NoTotal {
        /// The account as first written.
        account: String,
    },
    /// A user's amount is above the account total of the same component.
    AboveTotal {
        /// The user.
        user: String,
        /// The account as first written.
        account: String,
        /// The component.
        component: String,
        /// The user's amount.
        amount: Amount,
        /// The account total (zero when the total has no such component).
        limit: Amount,
        /// Input line of the user's record.
        user_line: usize,
        /// Input line of the account total.
        total_line: usize,
    },
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inconsistency::NoTotal { account } => write!(
                f,
                "account {account:?} has per-user records but no account total (a record with \
                 \"user\": null)"
            ),
            Inconsistency::AboveTotal {
                user,
                account,
                component,
                amount,
                limit,
                user_line,
                total_line,
            } => write!(
                f,
                "input line {user_line}: user {user:?} of account {account:?} has {component} \
                 {amount}, more than the account total {limit} (line {total_line})"
            ),
        }
    }
}

impl std::error::Error for Inconsistency {}

/// A (lower-cased account, user) that came twice: the line of its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    /// Input line of the first record.
    pub first: usize,
}

/// Collects one period's usage records in stream order.
#[derive(Debug, Default)]
pub struct MonthBuilder {
    components: Names,
    users: Names,
    accounts: Vec<AccountUsage>,
    by_key: HashMap<Box<str>, u32, Fx>,
    last: Option<(String, u32)>,
    /// User id -> 1 + the account of its latest row (0: none yet). While an account's
    /// records come in one run, a user already has a row in it exactly when this names it.
    latest: Vec<u32>,
    /// The account whose run of records is going on.
    current: Option<u32>,
    /// The users of accounts whose records came in more than one run, for those the
    /// run check cannot answer.
    reopened: HashMap<u32, HashSet<NameId, Fx>, Fx>,
}

/// An account's number within a [`MonthBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountId(u32);

impl MonthBuilder {
    /// An empty period.
    pub fn new() -> Self {
        Self::default()
    }

    /// The account written `account` (trimmed, not empty), grouped case-insensitively; the
    /// first spelling is kept.
    pub fn account(&mut self, account: &str) -> AccountId {
        if let Some((raw, id)) = &self.last {
            if raw == account {
                return AccountId(*id);
            }
        }
        let key = account.to_lowercase();
        let id = match self.by_key.get(key.as_str()) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.accounts.len()).expect("fewer than 2^32 accounts");
                self.accounts.push(AccountUsage {
                    key: key.as_str().into(),
                    account: account.into(),
                    total: None,
                    total_line: 0,
                    rows: Vec::new(),
                    comps: Vec::new(),
                    amounts: Vec::new(),
                });
                self.by_key.insert(key.into_boxed_str(), id);
                id
            }
        };
        match &mut self.last {
            Some((raw, last)) => {
                raw.clear();
                raw.push_str(account);
                *last = id;
            }
            None => self.last = Some((account.to_string(), id)),
        }
        AccountId(id)
    }

    /// Add the record of `user` (`None`: the account total) read from `line`.
    pub fn add<'c>(
        &mut self,
        account: AccountId,
        user: Option<&str>,
        values: impl IntoIterator<Item = (&'c str, Amount)>,
        line: usize,
    ) -> Result<(), Duplicate> {
        if self.current != Some(account.0) {
            self.current = Some(account.0);
            let a = &self.accounts[account.0 as usize];
            if !a.rows.is_empty() && !self.reopened.contains_key(&account.0) {
                let users = a.rows.iter().map(|r| r.user).collect();
                self.reopened.insert(account.0, users);
            }
        }
        let a = &mut self.accounts[account.0 as usize];
        match user {
            None => {
                if a.total.is_some() {
                    return Err(Duplicate {
                        first: a.total_line,
                    });
                }
                let mut total = Vec::new();
                for (name, amount) in values {
                    let id = self.components.intern(name) as usize;
                    if total.len() <= id {
                        total.resize(id + 1, None);
                    }
                    total[id] = Some(amount);
                }
                a.total = Some(total);
                a.total_line = line;
            }
            Some(user) => {
                let id = self.users.intern(user);
                if self.latest.len() <= id as usize {
                    self.latest.resize(id as usize + 1, 0);
                }
                let mark = account.0 + 1;
                let again = match self.reopened.get_mut(&account.0) {
                    Some(users) => !users.insert(id),
                    None => self.latest[id as usize] == mark,
                };
                if again {
                    let first = a.rows.iter().find(|r| r.user == id).map_or(0, |r| r.line);
                    return Err(Duplicate { first });
                }
                self.latest[id as usize] = mark;
                let start = u32::try_from(a.comps.len()).expect("fewer than 2^32 values");
                a.rows.push(Row {
                    user: id,
                    start,
                    line,
                });
                for (name, amount) in values {
                    a.comps.push(self.components.intern(name));
                    a.amounts.push(amount);
                }
            }
        }
        Ok(())
    }

    /// Close the period: sort, then check that every account has a total and no user is above
    /// it (accounts, users and components in name order; the first problem is returned).
    pub fn finish(
        self,
        period: Period,
        record: Option<MonthRecord>,
    ) -> Result<MonthUsage, Inconsistency> {
        let MonthBuilder {
            components,
            users,
            mut accounts,
            ..
        } = self;
        let mut order: Vec<NameId> = (0..components.len() as NameId).collect();
        order.sort_by(|&a, &b| components.get(a).cmp(components.get(b)));
        let mut rank = vec![0u32; order.len()];
        for (r, &id) in order.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        accounts.sort_by(|a, b| a.key.cmp(&b.key));
        let mut by_name: Vec<NameId> = (0..users.len() as NameId).collect();
        by_name.sort_unstable_by(|&a, &b| users.get(a).cmp(users.get(b)));
        let mut user_rank = vec![0u32; by_name.len()];
        for (r, &id) in by_name.iter().enumerate() {
            user_rank[id as usize] = r as u32;
        }
        drop(by_name);
        for a in &mut accounts {
            sort_rows(a, &user_rank, &rank);
        }
        let month = MonthUsage {
            period,
            record,
            components,
            order,
            users,
            accounts,
        };
        for a in month.accounts() {
            let Some(total) = &a.usage.total else {
                return Err(Inconsistency::NoTotal {
                    account: a.account().to_string(),
                });
            };
            for u in a.users() {
                for (&c, &amount) in u.comps.iter().zip(u.amounts) {
                    let limit = total.get(c as usize).copied().flatten();
                    let limit = limit.unwrap_or(Amount::ZERO);
                    if amount > limit {
                        return Err(Inconsistency::AboveTotal {
                            user: u.name().to_string(),
                            account: a.account().to_string(),
                            component: month.components.get(c).to_string(),
                            amount,
                            limit,
                            user_line: u.line,
                            total_line: a.usage.total_line,
                        });
                    }
                }
            }
        }
        Ok(month)
    }
}

/// Rows in user-name order, each row's values in component-name order, rebuilt contiguous.
fn sort_rows(a: &mut AccountUsage, user_rank: &[u32], rank: &[u32]) {
    let mut idx: Vec<usize> = (0..a.rows.len()).collect();
    idx.sort_unstable_by_key(|&x| user_rank[a.rows[x].user as usize]);
    let mut rows = Vec::with_capacity(a.rows.len());
    let mut comps = Vec::with_capacity(a.comps.len());
    let mut amounts = Vec::with_capacity(a.amounts.len());
    let mut values: Vec<(NameId, Amount)> = Vec::new();
    for i in idx {
        let range = a.row_range(i);
        values.clear();
        values.extend(
            a.comps[range.clone()]
                .iter()
                .copied()
                .zip(a.amounts[range].iter().copied()),
        );
        values.sort_by_key(|(c, _)| rank[*c as usize]);
        rows.push(Row {
            start: comps.len() as u32,
            ..a.rows[i]
        });
        for (c, v) in &values {
            comps.push(*c);
            amounts.push(*v);
        }
    }
    a.rows = rows;
    a.comps = comps;
    a.amounts = amounts;
}

/// A complete period, ready to submit.
#[derive(Debug, Clone)]
pub struct MonthUsage {
    /// The month.
    pub period: Period,
    /// The `period` record, when the stream carried one (it says whether the month is closed).
    pub record: Option<MonthRecord>,
    components: Names,
    /// Component ids in name order.
    order: Vec<NameId>,
    users: Names,
    /// Sorted by lower-cased account.
    accounts: Vec<AccountUsage>,
}

impl MonthUsage {
    /// The accounts, by lower-cased name.
    pub fn accounts(&self) -> impl ExactSizeIterator<Item = AccountView<'_>> + '_ {
        self.accounts
            .iter()
            .map(move |usage| AccountView { month: self, usage })
    }

    /// The account whose lower-cased name is `key`.
    pub fn account(&self, key: &str) -> Option<AccountView<'_>> {
        let i = self.accounts.binary_search_by(|a| (*a.key).cmp(key)).ok()?;
        Some(AccountView {
            month: self,
            usage: &self.accounts[i],
        })
    }

    /// True when some account has per-user usage.
    pub fn has_users(&self) -> bool {
        self.accounts.iter().any(|a| !a.rows.is_empty())
    }

    /// The component names in the period, in name order, with their ids.
    pub fn components(&self) -> impl Iterator<Item = (NameId, &str)> + '_ {
        self.order.iter().map(|&id| (id, self.components.get(id)))
    }

    /// The id of a component name in this period, if any record has it.
    pub fn component_id(&self, name: &str) -> Option<NameId> {
        self.components.find(name)
    }

    /// The name of a user id.
    pub fn user_name(&self, id: NameId) -> &str {
        self.users.get(id)
    }
}

/// One account of a [`MonthUsage`].
#[derive(Debug, Clone, Copy)]
pub struct AccountView<'a> {
    month: &'a MonthUsage,
    usage: &'a AccountUsage,
}

impl<'a> AccountView<'a> {
    /// The account, lower-cased.
    pub fn key(&self) -> &'a str {
        &self.usage.key
    }

    /// The account as first written in the input.
    pub fn account(&self) -> &'a str {
        &self.usage.account
    }

    /// The account total, component -> amount, in component-name order.
    pub fn total(&self) -> impl Iterator<Item = (&'a str, Amount)> + 'a {
        let month = self.month;
        let total = self.usage.total.as_deref().unwrap_or(&[]);
        month.order.iter().filter_map(move |&id| {
            let amount = total.get(id as usize).copied().flatten()?;
            Some((month.components.get(id), amount))
        })
    }

    /// The total of one component.
    pub fn total_of(&self, component: &str) -> Option<Amount> {
        let id = self.month.components.find(component)?;
        self.total_of_id(id)
    }

    /// The id of a component name in this period, if any record has it.
    pub fn component_id(&self, name: &str) -> Option<NameId> {
        self.month.components.find(name)
    }

    /// The total of one component id.
    pub fn total_of_id(&self, id: NameId) -> Option<Amount> {
        let total = self.usage.total.as_deref()?;
        total.get(id as usize).copied().flatten()
    }

    /// True when the account has per-user usage.
    pub fn has_users(&self) -> bool {
        !self.usage.rows.is_empty()
    }

    /// The users, in name order.
    pub fn users(&self) -> impl ExactSizeIterator<Item = UserView<'a>> + 'a {
        let (month, usage) = (self.month, self.usage);
        (0..usage.rows.len()).map(move |i| user_view(month, usage, i))
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<UserView<'a>> {
        let users = &self.month.users;
        let rows = &self.usage.rows;
        let i = rows
            .binary_search_by(|r| users.get(r.user).cmp(name))
            .ok()?;
        Some(user_view(self.month, self.usage, i))
    }
}

fn user_view<'a>(month: &'a MonthUsage, usage: &'a AccountUsage, i: usize) -> UserView<'a> {
    let range = usage.row_range(i);
    let row = usage.rows[i];
    UserView {
        month,
        id: row.user,
        line: row.line,
        comps: &usage.comps[range.clone()],
        amounts: &usage.amounts[range],
    }
}

/// One user of an account.
#[derive(Debug, Clone, Copy)]
pub struct UserView<'a> {
    month: &'a MonthUsage,
    id: NameId,
    line: usize,
    comps: &'a [NameId],
    amounts: &'a [Amount],
}

impl<'a> UserView<'a> {
    /// The user's id within the period.
    pub fn id(&self) -> NameId {
        self.id
    }

    /// The user name.
    pub fn name(&self) -> &'a str {
        self.month.users.get(self.id)
    }

    /// Component -> amount, in component-name order.
    pub fn values(&self) -> impl Iterator<Item = (&'a str, Amount)> + 'a {
        let month = self.month;
        self.comps
            .iter()
            .zip(self.amounts)
            .map(move |(&c, &a)| (month.components.get(c), a))
    }

    /// The amount of one component.
    pub fn get(&self, component: &str) -> Option<Amount> {
        self.get_id(self.month.components.find(component)?)
    }

    /// The amount of one component id.
    pub fn get_id(&self, id: NameId) -> Option<Amount> {
        let i = self.comps.iter().position(|&c| c == id)?;
        Some(self.amounts[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amt(s: &str) -> Amount {
        Amount::parse_plain(s).unwrap()
    }

    fn march() -> Period {
        Period::parse("2024-03").unwrap()
    }

    #[test]
    fn amounts_stay_exact_and_names_round_trip_in_name_order() {
        let mut b = MonthBuilder::new();
        let a = b.account("HPC_b");
        b.add(
            a,
            Some("zoe"),
            [("mem", amt("0.01")), ("cpu", amt("1.5"))],
            2,
        )
        .unwrap();
        b.add(a, None, [("mem", amt("6008.00")), ("cpu", amt("1.54"))], 1)
            .unwrap();
        b.add(a, Some("al"), [("cpu", amt("0.04"))], 3).unwrap();
        let other = b.account("hpc_A");
        b.add(other, None, [("gpu", amt("99999999999999999999.99"))], 4)
            .unwrap();
        assert_eq!(b.account("hpc_b"), a, "grouped case-insensitively");
        let m = b.finish(march(), None).unwrap();
        let names: Vec<(&str, &str)> = m.accounts().map(|a| (a.key(), a.account())).collect();
        assert_eq!(names, [("hpc_a", "hpc_A"), ("hpc_b", "HPC_b")]);
        let big = m.account("hpc_a").unwrap().total_of("gpu").unwrap();
        assert_eq!(big.hundredths(), 9_999_999_999_999_999_999_999);
        let b = m.account("hpc_b").unwrap();
        let total: Vec<(&str, i128)> = b.total().map(|(c, v)| (c, v.hundredths())).collect();
        assert_eq!(total, [("cpu", 154), ("mem", 600_800)]);
        let users: Vec<(&str, Vec<(&str, String)>)> = b
            .users()
            .map(|u| {
                (
                    u.name(),
                    u.values().map(|(c, v)| (c, v.to_string())).collect(),
                )
            })
            .collect();
        assert_eq!(
            users,
            [
                ("al", vec![("cpu", "0.04".to_string())]),
                ("zoe", vec![("cpu", "1.50".into()), ("mem", "0.01".into())]),
            ]
        );
        let zoe = b.user("zoe").unwrap();
        assert_eq!(m.user_name(zoe.id()), "zoe");
        assert_eq!(zoe.get("mem"), Some(amt("0.01")));
        assert_eq!(zoe.get("gpu"), None);
        assert!(b.user("bob").is_none());
        let comps: Vec<&str> = m.components().map(|(_, c)| c).collect();
        assert_eq!(comps, ["cpu", "gpu", "mem"]);
        assert!(m.has_users());
    }

    #[test]
    fn a_user_above_the_total_is_refused_naming_both_lines() {
        let mut b = MonthBuilder::new();
        let a = b.account("hpc_a");
        b.add(a, None, [("cpu", amt("1.00"))], 1).unwrap();
        b.add(a, Some("ann"), [("cpu", amt("1.00"))], 2).unwrap();
        b.add(
            a,
            Some("bob"),
            [("cpu", amt("0.50")), ("mem", amt("0.01"))],
            3,
        )
        .unwrap();
        let e = b.finish(march(), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input line 3: user \"bob\" of account \"hpc_a\" has mem 0.01, more than the \
             account total 0.00 (line 1)"
        );
        let mut b = MonthBuilder::new();
        let a = b.account("hpc_a");
        b.add(a, Some("ann"), [("cpu", amt("0"))], 7).unwrap();
        let e = b.finish(march(), None).unwrap_err();
        assert!(matches!(e, Inconsistency::NoTotal { ref account } if account == "hpc_a"));
    }

    #[test]
    fn a_record_that_comes_twice_names_the_first_line() {
        let mut b = MonthBuilder::new();
        let a = b.account("Hpc_a");
        b.add(a, None, [], 4).unwrap();
        b.add(a, Some("ann"), [], 5).unwrap();
        let again = b.account("HPC_A");
        assert_eq!(b.add(again, None, [], 9), Err(Duplicate { first: 4 }));
        assert_eq!(
            b.add(again, Some("ann"), [], 10),
            Err(Duplicate { first: 5 })
        );
        let other = b.account("hpc_b");
        assert_eq!(b.add(other, Some("ann"), [], 11), Ok(()));
        // hpc_a again, after hpc_b: its earlier users are still known.
        assert_eq!(b.add(a, Some("bob"), [], 12), Ok(()));
        assert_eq!(b.add(a, Some("ann"), [], 13), Err(Duplicate { first: 5 }));
        assert_eq!(b.add(other, Some("bob"), [], 14), Ok(()));
        assert_eq!(b.add(a, Some("bob"), [], 15), Err(Duplicate { first: 12 }));
        assert_eq!(
            b.add(other, Some("ann"), [], 16),
            Err(Duplicate { first: 11 })
        );
    }
}

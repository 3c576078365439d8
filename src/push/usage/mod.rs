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

pub use super::intern::NameId;
use super::intern::Names;
use crate::decimal::Amount;
use crate::hash::Fx;
use crate::period::Period;
use crate::records::MonthRecord;

mod view;
pub use view::{AccountView, UserView};

#[cfg(test)]
mod tests;

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

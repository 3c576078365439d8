//! Reading a [`MonthUsage`]: accounts, their totals and their users, all in name order.

use super::{AccountUsage, MonthUsage, NameId};
use crate::decimal::Amount;

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
    pub(super) usage: &'a AccountUsage,
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
    pub(super) line: usize,
    pub(super) comps: &'a [NameId],
    pub(super) amounts: &'a [Amount],
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

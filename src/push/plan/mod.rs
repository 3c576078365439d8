//! The pure "what changed" computation: from one complete period of usage and what Waldur
//! already holds, decide which POSTs to make. No I/O here, so every rule is unit-tested.
//! This file holds the types (what Waldur holds, what to send), `diff.rs` the computation,
//! `tests.rs` one test per rule.
//!
//! Rules (issue 4, DESIGN.md §3):
//! - accounts map to resources by `backend_id`, case-insensitively; only OK, Updating and
//!   Terminating resources take usage, others are reported as skipped with their state;
//! - a resource's totals are POSTed (all its components in one `set_usage`) when any
//!   component differs from Waldur's value, compared exactly to two places;
//! - a component whose new value is lower than Waldur's is held back (a `skipped` result with
//!   `decrease: <old> -> <new>`) unless decreases are allowed; the rest of the resource goes on;
//! - a reportable resource with no usage in the period gets zeros for the components Waldur
//!   has no record of, and nothing else (zeros are never sent as a decrease); when an
//!   `allocation_prefix` is configured, only resources whose `backend_id` has it: the others
//!   were never measured, and a zero for them would be a guess;
//! - per-user values go per component, in one bulk POST holding the users whose value differs
//!   (held back the same way when lower).

use std::collections::{BTreeSet, HashMap};

use super::input::{AccountView, MonthUsage};
use crate::decimal::Amount;
use crate::records::ResultRecord;
use crate::waldur::api::{
    ComponentUsage, ComponentUserUsage, OfferingComponent, Resource, UsageItem,
};

mod diff;
#[cfg(test)]
mod tests;

pub use diff::plan;

/// What Waldur knows about the offering, read once per run.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Component types that may be sent: configured, present in Waldur, and reportable.
    pub sendable: BTreeSet<String>,
    /// The offering's resources.
    pub resources: Vec<Resource>,
    by_account: HashMap<String, Vec<usize>>,
}

/// The resource an account maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// One reportable resource.
    Reportable(&'a Resource),
    /// A resource exists but does not take usage now.
    NotReportable(&'a Resource),
    /// Several reportable resources share the backend_id.
    Ambiguous(Vec<&'a Resource>),
    /// No resource has it.
    Missing,
}

impl Catalog {
    /// Build the catalog; returns warnings about components that cannot be sent.
    pub fn new<'c>(
        waldur_components: &[OfferingComponent],
        configured: impl IntoIterator<Item = &'c str>,
        resources: Vec<Resource>,
    ) -> (Catalog, Vec<String>) {
        let mut warnings = Vec::new();
        let mut sendable = BTreeSet::new();
        for name in configured {
            match waldur_components.iter().find(|c| c.type_ == name) {
                None => warnings.push(format!(
                    "component {name:?} is configured but the Waldur offering has no such \
                     component; it is not sent (Waldur has: {})",
                    waldur_components
                        .iter()
                        .map(|c| c.type_.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(c) if !c.reportable() => warnings.push(format!(
                    "component {name:?} has billing type {:?} in Waldur, which takes no usage \
                     reports; it is not sent",
                    c.billing_type.as_deref().unwrap_or("")
                )),
                Some(_) => {
                    sendable.insert(name.to_string());
                }
            }
        }
        let mut by_account: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in resources.iter().enumerate() {
            if let Some(id) = r
                .backend_id
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                by_account.entry(id.to_lowercase()).or_default().push(i);
            }
        }
        (
            Catalog {
                sendable,
                resources,
                by_account,
            },
            warnings,
        )
    }

    /// The resource for a (lower-cased) account.
    pub fn lookup(&self, account: &str) -> Lookup<'_> {
        let Some(found) = self.by_account.get(account) else {
            return Lookup::Missing;
        };
        let all: Vec<&Resource> = found.iter().map(|&i| &self.resources[i]).collect();
        let reportable: Vec<&Resource> = all.iter().copied().filter(|r| r.reportable()).collect();
        match reportable.len() {
            0 => Lookup::NotReportable(all[0]),
            1 => Lookup::Reportable(reportable[0]),
            _ => Lookup::Ambiguous(reportable),
        }
    }

    /// The UUID of the resource a (lower-cased) account maps to, when exactly one resource
    /// (reportable or not) has that backend_id.
    pub fn resource_uuid(&self, account: &str) -> Option<String> {
        match self.lookup(account) {
            Lookup::Reportable(r) | Lookup::NotReportable(r) => Some(r.uuid.clone()),
            Lookup::Ambiguous(_) | Lookup::Missing => None,
        }
    }

    /// Reportable resources with a backend_id, for zero-filling: (lower-cased account, resource).
    pub fn reportable_accounts(&self) -> Vec<(String, &Resource)> {
        let mut out: Vec<(String, &Resource)> = self
            .by_account
            .keys()
            .filter_map(|account| match self.lookup(account) {
                Lookup::Reportable(r) => Some((account.clone(), r)),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// What Waldur holds for one period.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    totals: HashMap<(String, String), Vec<(String, Amount)>>,
    users: HashMap<(String, String), Amount>,
}

impl Existing {
    /// Index the period's component usages and per-user usages.
    pub fn new(usages: &[ComponentUsage], user_usages: &[ComponentUserUsage]) -> Existing {
        let mut totals: HashMap<(String, String), Vec<(String, Amount)>> = HashMap::new();
        for u in usages {
            if let Some(resource) = &u.resource_uuid {
                totals
                    .entry((resource.clone(), u.type_.clone()))
                    .or_default()
                    .push((u.uuid.clone(), u.usage));
            }
        }
        let mut users = HashMap::new();
        for u in user_usages {
            if let Some(cu) = u.component_usage_uuid() {
                users.insert((cu, u.username.clone()), u.usage);
            }
        }
        Existing { totals, users }
    }

    /// Replace the component usages (after new ones were created), keeping per-user values.
    pub fn refresh_totals(&mut self, usages: &[ComponentUsage]) {
        let users = std::mem::take(&mut self.users);
        *self = Existing::new(usages, &[]);
        self.users = users;
    }

    /// The stored total of a resource's component: `None` when Waldur has no record.
    /// With duplicate records (possible after plan switches) the highest counts.
    pub fn total(&self, resource: &str, component: &str) -> Option<Amount> {
        let rows = self
            .totals
            .get(&(resource.to_string(), component.to_string()))?;
        rows.iter().map(|(_, a)| *a).max()
    }

    /// True when Waldur holds exactly one record with exactly this value.
    fn total_matches(&self, resource: &str, component: &str, value: Amount) -> bool {
        matches!(
            self.totals.get(&(resource.to_string(), component.to_string())),
            Some(rows) if rows.len() == 1 && rows[0].1 == value
        )
    }

    /// The UUID of the component usage for per-user values.
    pub fn component_usage(&self, resource: &str, component: &str) -> Option<&str> {
        self.totals
            .get(&(resource.to_string(), component.to_string()))
            .and_then(|rows| rows.first())
            .map(|(uuid, _)| uuid.as_str())
    }

    /// A user's stored value under a component usage.
    pub fn user(&self, component_usage: &str, username: &str) -> Option<Amount> {
        self.users
            .get(&(component_usage.to_string(), username.to_string()))
            .copied()
    }
}

/// One `set_usage` to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalPost {
    /// The account (as in the input, or the backend_id for zero-fills).
    pub account: String,
    /// Resource UUID.
    pub resource: String,
    /// The components to send.
    pub usages: Vec<UsageItem>,
    /// Some component has no record in Waldur yet (its UUID must be learnt afterwards).
    pub creates: bool,
    /// Zeros for a resource without usage in the period.
    pub zero_fill: bool,
}

/// One component's per-user usages to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPost {
    /// The account.
    pub account: String,
    /// Resource UUID.
    pub resource: String,
    /// Component type.
    pub component: String,
    /// User -> amount, only those that differ from Waldur.
    pub items: Vec<(String, Amount)>,
}

/// The work for one period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `set_usage` calls, made first.
    pub totals: Vec<TotalPost>,
    /// Per-user calls, made after the totals.
    pub users: Vec<UserPost>,
    /// Results decided without a request: unchanged, skipped.
    pub results: Vec<ResultRecord>,
    /// Input components that are not sent (not sendable), for a warning.
    pub dropped_components: BTreeSet<String>,
}

/// Options of the computation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Send values lower than Waldur's.
    pub allow_decrease: bool,
    /// The configured `allocation_prefix`, lower-cased: resources without it are outside what
    /// slurm-usage measured and never get zeros.
    pub measured_prefix: Option<String>,
    /// Send no zeros at all: the period is not the server's current month (a guessed zero
    /// must never land in a closed month), or what was read of Waldur may be incomplete.
    pub skip_zero_fill: bool,
}

/// A result record without a request.
pub fn result(
    period: &str,
    account: &str,
    resource: Option<&str>,
    action: &str,
    status: &str,
    reason: Option<String>,
    component: Option<&str>,
) -> ResultRecord {
    ResultRecord {
        period: period.to_string(),
        account: account.to_string(),
        resource: resource.map(str::to_string),
        action: action.to_string(),
        status: status.to_string(),
        reason,
        component: component.map(str::to_string),
        request: None,
    }
}

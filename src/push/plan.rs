//! The pure "what changed" computation: from one complete period of usage and what Waldur
//! already holds, decide which POSTs to make. No I/O here, so every rule is unit-tested.
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
use crate::records::ResultRecord;
use crate::waldur::amount::Amount;
use crate::waldur::api::{
    ComponentUsage, ComponentUserUsage, OfferingComponent, Resource, UsageItem,
};

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

/// Decide the POSTs for one period.
pub fn plan(
    usage: &MonthUsage,
    catalog: &Catalog,
    existing: &Existing,
    options: PlanOptions,
) -> Plan {
    let period = usage.period.to_string();
    let mut plan = Plan::default();
    for account in usage.accounts() {
        let (key, name) = (account.key(), account.account());
        let skipped = |resource: Option<&str>, reason: String| {
            result(
                &period,
                name,
                resource,
                "set_usage",
                "skipped",
                Some(reason),
                None,
            )
        };
        let resource = match catalog.lookup(key) {
            Lookup::Reportable(r) => r,
            Lookup::NotReportable(r) => {
                plan.results.push(skipped(
                    Some(&r.uuid),
                    format!(
                        "resource state {}: Waldur takes usage only for OK, Updating and \
                         Terminating resources",
                        r.state.as_deref().unwrap_or("unknown")
                    ),
                ));
                continue;
            }
            Lookup::Ambiguous(rs) => {
                let ids: Vec<&str> = rs.iter().map(|r| r.uuid.as_str()).collect();
                plan.results.push(skipped(
                    None,
                    format!(
                        "several resources have backend_id {name:?}: {}",
                        ids.join(", ")
                    ),
                ));
                continue;
            }
            Lookup::Missing => {
                plan.results.push(skipped(
                    None,
                    format!(
                        "no resource: no active resource of the offering has backend_id {name:?}"
                    ),
                ));
                continue;
            }
        };
        let rid = resource.uuid.as_str();
        plan_total(
            &mut plan, &period, name, rid, account, catalog, existing, &options,
        );
        for component in &catalog.sendable {
            plan_users(
                &mut plan, &period, name, rid, component, account, existing, &options,
            );
        }
        for user in account.users() {
            for (c, _) in user.values() {
                if !catalog.sendable.contains(c) && !plan.dropped_components.contains(c) {
                    plan.dropped_components.insert(c.to_string());
                }
            }
        }
    }
    // Zeros for reportable resources without usage in this (complete) period.
    let idle = if options.skip_zero_fill {
        Vec::new()
    } else {
        catalog.reportable_accounts()
    };
    for (key, resource) in idle {
        if usage.account(&key).is_some() {
            continue;
        }
        let account = resource.backend_id.clone().unwrap_or_default();
        if let Some(prefix) = &options.measured_prefix {
            if !key.starts_with(prefix.as_str()) {
                plan.results.push(result(
                    &period,
                    &account,
                    Some(&resource.uuid),
                    "set_usage",
                    "skipped",
                    Some(format!(
                        "backend_id outside allocation_prefix {prefix:?}: not measured, nothing sent"
                    )),
                    None,
                ));
                continue;
            }
        }
        let missing: Vec<UsageItem> = catalog
            .sendable
            .iter()
            .filter(|c| existing.total(&resource.uuid, c).is_none())
            .map(|c| UsageItem {
                type_: c.clone(),
                amount: Amount::ZERO,
            })
            .collect();
        if missing.is_empty() {
            plan.results.push(result(
                &period,
                &account,
                Some(&resource.uuid),
                "set_usage",
                "unchanged",
                Some("no usage in the period".into()),
                None,
            ));
        } else {
            plan.totals.push(TotalPost {
                account,
                resource: resource.uuid.clone(),
                usages: missing,
                creates: true,
                zero_fill: true,
            });
        }
    }
    plan
}

#[allow(clippy::too_many_arguments)]
fn plan_total(
    plan: &mut Plan,
    period: &str,
    account: &str,
    rid: &str,
    total: AccountView<'_>,
    catalog: &Catalog,
    existing: &Existing,
    options: &PlanOptions,
) {
    let mut send = Vec::new();
    let mut changed = false;
    let mut creates = false;
    for (component, value) in total.total() {
        if !catalog.sendable.contains(component) {
            plan.dropped_components.insert(component.to_string());
            continue;
        }
        let old = existing.total(rid, component);
        if let Some(old) = old {
            if value < old && !options.allow_decrease {
                plan.results.push(result(
                    period,
                    account,
                    Some(rid),
                    "set_usage",
                    "skipped",
                    Some(format!("decrease: {old} -> {value}")),
                    Some(component),
                ));
                continue;
            }
        } else {
            creates = true;
        }
        if !existing.total_matches(rid, component, value) {
            changed = true;
        }
        send.push(UsageItem {
            type_: component.to_string(),
            amount: value,
        });
    }
    if changed {
        plan.totals.push(TotalPost {
            account: account.to_string(),
            resource: rid.to_string(),
            usages: send,
            creates,
            zero_fill: false,
        });
    } else if send.is_empty() && !total.total().any(|(c, _)| catalog.sendable.contains(c)) {
        plan.results.push(result(
            period,
            account,
            Some(rid),
            "set_usage",
            "skipped",
            Some(format!(
                "none of its components ({}) is a reportable component of the offering",
                total.total().map(|(c, _)| c).collect::<Vec<_>>().join(", ")
            )),
            None,
        ));
    } else if !send.is_empty() {
        plan.results.push(result(
            period,
            account,
            Some(rid),
            "set_usage",
            "unchanged",
            None,
            None,
        ));
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_users(
    plan: &mut Plan,
    period: &str,
    account: &str,
    rid: &str,
    component: &str,
    usage: AccountView<'_>,
    existing: &Existing,
    options: &PlanOptions,
) {
    let Some(id) = usage.component_id(component) else {
        return;
    };
    let cu = existing.component_usage(rid, component);
    let mut items = Vec::new();
    let mut held = Vec::new();
    let mut any = false;
    for u in usage.users() {
        let Some(value) = u.get_id(id) else {
            continue;
        };
        any = true;
        let user = u.name();
        let old = cu.and_then(|cu| existing.user(cu, user));
        match old {
            Some(old) if old == value => {}
            Some(old) if value < old && !options.allow_decrease => {
                held.push(format!("{user} {old} -> {value}"));
            }
            _ => items.push((user.to_string(), value)),
        }
    }
    if !any {
        return;
    }
    if !held.is_empty() {
        plan.results.push(result(
            period,
            account,
            Some(rid),
            "set_user_usages",
            "skipped",
            Some(format!("decrease: {}", held.join(", "))),
            Some(component),
        ));
    }
    if !items.is_empty() {
        plan.users.push(UserPost {
            account: account.to_string(),
            resource: rid.to_string(),
            component: component.to_string(),
            items,
        });
    } else if held.is_empty() {
        plan.results.push(result(
            period,
            account,
            Some(rid),
            "set_user_usages",
            "unchanged",
            None,
            Some(component),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::push::usage::MonthBuilder;

    fn amt(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    fn comp(t: &str, billing: &str) -> OfferingComponent {
        OfferingComponent {
            type_: t.into(),
            billing_type: Some(billing.into()),
            measured_unit: None,
        }
    }

    fn res(uuid: &str, backend_id: &str, state: &str) -> Resource {
        Resource {
            uuid: uuid.into(),
            name: Some(format!("r-{backend_id}")),
            backend_id: Some(backend_id.into()),
            state: Some(state.into()),
        }
    }

    fn catalog() -> Catalog {
        let (c, warnings) = Catalog::new(
            &[
                comp("cpu", "usage"),
                comp("mem", "usage"),
                comp("fee", "fixed"),
            ],
            ["cpu", "mem", "gpu", "fee"],
            vec![
                res("r1", "hpc_a", "OK"),
                res("r2", "HPC_B", "Terminating"),
                res("r3", "hpc_err", "Erred"),
                res("r4", "hpc_idle", "OK"),
            ],
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("\"gpu\" is configured but the Waldur offering has no such"));
        assert!(warnings[1].contains("\"fee\" has billing type \"fixed\""));
        c
    }

    /// (component, amount) pairs.
    type Values<'a> = &'a [(&'a str, &'a str)];

    /// (account, total, [(user, values)]).
    type AccountSpec<'a> = (&'a str, Values<'a>, &'a [(&'a str, Values<'a>)]);

    fn usage(accounts: &[AccountSpec<'_>]) -> MonthUsage {
        let mut b = MonthBuilder::new();
        fn values<'v>(v: Values<'v>) -> Vec<(&'v str, Amount)> {
            v.iter().map(|(c, a)| (*c, amt(a))).collect()
        }
        for (line, (name, total, users)) in accounts.iter().enumerate() {
            let id = b.account(name);
            b.add(id, None, values(total), line * 100).unwrap();
            for (i, (u, v)) in users.iter().enumerate() {
                b.add(id, Some(u), values(v), line * 100 + i + 1).unwrap();
            }
        }
        b.finish(Period::parse("2024-03").unwrap(), None).unwrap()
    }

    fn cu(uuid: &str, resource: &str, t: &str, usage: &str) -> ComponentUsage {
        ComponentUsage {
            uuid: uuid.into(),
            type_: t.into(),
            usage: amt(usage),
            resource_uuid: Some(resource.into()),
        }
    }

    fn uu(cu: &str, user: &str, usage: &str) -> ComponentUserUsage {
        ComponentUserUsage {
            username: user.into(),
            usage: amt(usage),
            component_usage: Some(format!("https://w/api/marketplace-component-usages/{cu}/")),
            component_type: None,
            user: None,
        }
    }

    fn statuses(plan: &Plan) -> Vec<(String, String, Option<String>, Option<String>)> {
        plan.results
            .iter()
            .map(|r| {
                (
                    r.account.clone(),
                    r.status.clone(),
                    r.component.clone(),
                    r.reason.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn first_submission_sends_everything_and_zero_fills_idle_resources() {
        let u = usage(&[
            (
                "hpc_a",
                &[("cpu", "1.50"), ("mem", "10.00"), ("gpu", "1.00")],
                &[
                    ("alice", &[("cpu", "1.00")]),
                    ("bob", &[("cpu", "0.50"), ("mem", "10.00")]),
                ],
            ),
            ("hpc_b", &[("cpu", "2.00")], &[]),
        ]);
        let p = plan(&u, &catalog(), &Existing::default(), PlanOptions::default());
        // gpu is not sendable; HPC_B matches hpc_b case-insensitively; hpc_idle gets zeros;
        // hpc_err is Erred but has no usage, so nothing is said about it.
        assert_eq!(
            p.totals,
            vec![
                TotalPost {
                    account: "hpc_a".into(),
                    resource: "r1".into(),
                    usages: vec![
                        UsageItem {
                            type_: "cpu".into(),
                            amount: amt("1.5")
                        },
                        UsageItem {
                            type_: "mem".into(),
                            amount: amt("10")
                        },
                    ],
                    creates: true,
                    zero_fill: false,
                },
                TotalPost {
                    account: "hpc_b".into(),
                    resource: "r2".into(),
                    usages: vec![UsageItem {
                        type_: "cpu".into(),
                        amount: amt("2")
                    }],
                    creates: true,
                    zero_fill: false,
                },
                TotalPost {
                    account: "hpc_idle".into(),
                    resource: "r4".into(),
                    usages: vec![
                        UsageItem {
                            type_: "cpu".into(),
                            amount: Amount::ZERO
                        },
                        UsageItem {
                            type_: "mem".into(),
                            amount: Amount::ZERO
                        },
                    ],
                    creates: true,
                    zero_fill: true,
                },
            ]
        );
        assert_eq!(
            p.users,
            vec![
                UserPost {
                    account: "hpc_a".into(),
                    resource: "r1".into(),
                    component: "cpu".into(),
                    items: vec![("alice".into(), amt("1")), ("bob".into(), amt("0.5"))],
                },
                UserPost {
                    account: "hpc_a".into(),
                    resource: "r1".into(),
                    component: "mem".into(),
                    items: vec![("bob".into(), amt("10"))],
                },
            ]
        );
        assert!(p.results.is_empty(), "{:?}", p.results);
        assert_eq!(p.dropped_components, BTreeSet::from(["gpu".to_string()]));
    }

    #[test]
    fn unchanged_values_make_no_post_even_when_spelled_differently() {
        let u = usage(&[(
            "hpc_a",
            &[("cpu", "100.00")],
            &[("alice", &[("cpu", "100")])],
        )]);
        let existing = Existing::new(
            &[
                cu("c1", "r1", "cpu", "100.0000"),
                cu("b1", "r2", "cpu", "0"),
                cu("b2", "r2", "mem", "0"),
                cu("i1", "r4", "cpu", "0"),
                cu("i2", "r4", "mem", "0"),
            ],
            &[uu("c1", "alice", "100.00")],
        );
        let p = plan(&u, &catalog(), &existing, PlanOptions::default());
        assert!(p.totals.is_empty() && p.users.is_empty(), "{p:?}");
        assert_eq!(
            statuses(&p),
            vec![
                ("hpc_a".into(), "unchanged".into(), None, None),
                ("hpc_a".into(), "unchanged".into(), Some("cpu".into()), None),
                (
                    "HPC_B".into(),
                    "unchanged".into(),
                    None,
                    Some("no usage in the period".into())
                ),
                (
                    "hpc_idle".into(),
                    "unchanged".into(),
                    None,
                    Some("no usage in the period".into())
                ),
            ]
        );
    }

    #[test]
    fn resources_outside_the_allocation_prefix_get_no_guessed_zeros() {
        // Only hpc_a has usage. With prefix "hpc_i", hpc_idle is in scope and gets its zeros;
        // hpc_a is reported anyway (it came in the input); HPC_B is out of scope, so nothing
        // is sent for it: slurm-usage never measured it.
        let u = usage(&[("hpc_a", &[("cpu", "1.00")], &[])]);
        let options = PlanOptions {
            allow_decrease: false,
            measured_prefix: Some("hpc_i".into()),
            ..PlanOptions::default()
        };
        let p = plan(&u, &catalog(), &Existing::default(), options);
        let sent: Vec<(&str, bool)> = p
            .totals
            .iter()
            .map(|t| (t.account.as_str(), t.zero_fill))
            .collect();
        assert_eq!(sent, vec![("hpc_a", false), ("hpc_idle", true)]);
        assert_eq!(
            statuses(&p),
            vec![(
                "HPC_B".into(),
                "skipped".into(),
                None,
                Some(
                    "backend_id outside allocation_prefix \"hpc_i\": not measured, nothing sent"
                        .into()
                )
            )]
        );
    }

    #[test]
    fn a_change_sends_all_components_of_that_resource_only() {
        let u = usage(&[
            ("hpc_a", &[("cpu", "2.00"), ("mem", "5.00")], &[]),
            ("hpc_b", &[("cpu", "1.00")], &[]),
        ]);
        let existing = Existing::new(
            &[
                cu("c1", "r1", "cpu", "1.00"),
                cu("c2", "r1", "mem", "5.00"),
                cu("c3", "r2", "cpu", "1.00"),
            ],
            &[],
        );
        let p = plan(&u, &catalog(), &existing, PlanOptions::default());
        assert_eq!(p.totals.len(), 2, "{:?}", p.totals); // hpc_a and the hpc_idle zeros
        assert_eq!(p.totals[0].resource, "r1");
        assert_eq!(
            p.totals[0].usages,
            vec![
                UsageItem {
                    type_: "cpu".into(),
                    amount: amt("2")
                },
                UsageItem {
                    type_: "mem".into(),
                    amount: amt("5")
                },
            ]
        );
        assert!(!p.totals[0].creates);
        assert_eq!(p.totals[1].resource, "r4");
    }

    #[test]
    fn a_decrease_is_held_back_but_the_rest_goes_through() {
        let u = usage(&[(
            "hpc_a",
            &[("cpu", "90.00"), ("mem", "6.00")],
            &[("alice", &[("cpu", "4.00")]), ("bob", &[("cpu", "7.00")])],
        )]);
        let existing = Existing::new(
            &[
                cu("c1", "r1", "cpu", "100.00"),
                cu("c2", "r1", "mem", "5.00"),
            ],
            &[uu("c1", "alice", "5.00"), uu("c1", "bob", "6.00")],
        );
        let p = plan(&u, &catalog(), &existing, PlanOptions::default());
        assert_eq!(
            p.totals[0].usages,
            vec![UsageItem {
                type_: "mem".into(),
                amount: amt("6")
            }]
        );
        assert_eq!(p.users[0].items, vec![("bob".to_string(), amt("7"))]);
        assert_eq!(
            statuses(&p)[..2],
            [
                (
                    "hpc_a".into(),
                    "skipped".into(),
                    Some("cpu".into()),
                    Some("decrease: 100.00 -> 90.00".into())
                ),
                (
                    "hpc_a".into(),
                    "skipped".into(),
                    Some("cpu".into()),
                    Some("decrease: alice 5.00 -> 4.00".into())
                ),
            ]
        );
        let p = plan(
            &u,
            &catalog(),
            &existing,
            PlanOptions {
                allow_decrease: true,
                ..PlanOptions::default()
            },
        );
        assert_eq!(p.totals[0].usages.len(), 2);
        assert_eq!(p.users[0].items.len(), 2);
    }

    #[test]
    fn unknown_erred_and_ambiguous_accounts_are_skipped_with_reasons() {
        let (cat, _) = Catalog::new(
            &[comp("cpu", "usage")],
            ["cpu"],
            vec![
                res("r3", "hpc_err", "Erred"),
                res("r5", "dup", "OK"),
                res("r6", "DUP", "OK"),
            ],
        );
        let u = usage(&[
            ("hpc_err", &[("cpu", "1.00")], &[]),
            ("dup", &[("cpu", "1.00")], &[]),
            ("nobody", &[("cpu", "1.00")], &[]),
        ]);
        let p = plan(&u, &cat, &Existing::default(), PlanOptions::default());
        assert!(p.totals.is_empty());
        let s = statuses(&p);
        assert_eq!(s[0].0, "dup");
        assert_eq!(
            s[0].3.as_deref(),
            Some("several resources have backend_id \"dup\": r5, r6")
        );
        assert_eq!(
            s[1].3.as_deref(),
            Some(
                "resource state Erred: Waldur takes usage only for OK, Updating and Terminating resources"
            )
        );
        assert_eq!(
            s[2].3.as_deref(),
            Some("no resource: no active resource of the offering has backend_id \"nobody\"")
        );
    }

    #[test]
    fn outside_the_servers_current_month_no_zero_is_guessed() {
        // The same input as the first submission, for a month that is not the server's
        // current one: hpc_a and hpc_b are sent, hpc_idle gets nothing and no result.
        let u = usage(&[
            ("hpc_a", &[("cpu", "1.50")], &[]),
            ("hpc_b", &[("cpu", "2.00")], &[]),
        ]);
        let options = PlanOptions {
            skip_zero_fill: true,
            ..PlanOptions::default()
        };
        let p = plan(&u, &catalog(), &Existing::default(), options);
        let sent: Vec<(&str, bool)> = p
            .totals
            .iter()
            .map(|t| (t.account.as_str(), t.zero_fill))
            .collect();
        assert_eq!(sent, [("hpc_a", false), ("hpc_b", false)]);
        assert!(p.results.iter().all(|r| r.account != "hpc_idle"));
    }

    #[test]
    fn zero_fill_never_lowers_a_stored_value() {
        // hpc_idle has cpu 5.00 stored and no mem record: only mem gets a zero.
        let u = usage(&[]);
        let existing = Existing::new(&[cu("i1", "r4", "cpu", "5.00")], &[]);
        let p = plan(
            &u,
            &catalog(),
            &existing,
            PlanOptions {
                allow_decrease: true,
                ..PlanOptions::default()
            },
        );
        let idle: Vec<_> = p.totals.iter().filter(|t| t.resource == "r4").collect();
        assert_eq!(
            idle[0].usages,
            vec![UsageItem {
                type_: "mem".into(),
                amount: Amount::ZERO
            }]
        );
    }
}

//! The diff itself: one period's usage against what Waldur holds, account by account, then
//! the zeros for idle resources.

use super::{
    AccountView, Amount, Catalog, Existing, Lookup, MonthUsage, Plan, PlanOptions, TotalPost,
    UsageItem, UserPost, result,
};

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
        let idle_result = |status: &str, reason: String| {
            result(
                &period,
                &account,
                Some(&resource.uuid),
                "set_usage",
                status,
                Some(reason),
                None,
            )
        };
        if let Some(prefix) = &options.measured_prefix {
            if !key.starts_with(prefix.as_str()) {
                plan.results.push(idle_result(
                    "skipped",
                    format!(
                        "backend_id outside allocation_prefix {prefix:?}: not measured, nothing sent"
                    ),
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
            plan.results
                .push(idle_result("unchanged", "no usage in the period".into()));
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
    let total_result = |status: &str, reason: Option<String>, component: Option<&str>| {
        result(
            period,
            account,
            Some(rid),
            "set_usage",
            status,
            reason,
            component,
        )
    };
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
                plan.results.push(total_result(
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
        plan.results.push(total_result(
            "skipped",
            Some(format!(
                "none of its components ({}) is a reportable component of the offering",
                total.total().map(|(c, _)| c).collect::<Vec<_>>().join(", ")
            )),
            None,
        ));
    } else if !send.is_empty() {
        plan.results.push(total_result("unchanged", None, None));
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

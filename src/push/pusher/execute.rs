//! What a period's plan turns into: its POSTs, totals first, then per-user values (bulk, or
//! one POST per user on an older Waldur); with `--dry-run`, their rendering instead.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use serde_json::json;

use super::{MonthOutcome, Pusher, worse};
use crate::cli::exit;
use crate::push::plan::{Existing, Plan, TotalPost, UserPost, result};
use crate::push::readback::Sent;
use crate::push::render::{self, ResultWriter};
use crate::push::submit::run_bounded;
use crate::records::ResultRecord;
use crate::waldur::api::{self, SetUsage, SetUserUsages, UserUsageItem, path};
use crate::waldur::error::ApiError;
use crate::{error, warn};

impl Pusher<'_> {
    /// Make the plan's POSTs: the totals first, then the per-user values of the resources
    /// whose totals went through.
    pub(super) fn execute(
        &self,
        period: &str,
        date: &str,
        plan: Plan,
        existing: &mut Existing,
    ) -> MonthOutcome {
        let Plan {
            totals,
            users,
            mut results,
            ..
        } = plan;
        let mut exit_code = None;
        let total_results = run_bounded(&totals, self.options.concurrency, |t| {
            self.post_total(period, date, t)
        });
        let mut failed_resources = HashSet::new();
        let mut created = false;
        let mut sent = Vec::new();
        for (t, (record, code)) in totals.iter().zip(total_results) {
            if code.is_some() {
                failed_resources.insert(t.resource.clone());
            } else {
                created |= t.creates;
                sent.extend(t.usages.iter().map(|i| Sent {
                    account: t.account.clone(),
                    resource: t.resource.clone(),
                    component: i.type_.clone(),
                    user: None,
                    amount: i.amount,
                }));
            }
            exit_code = worse(exit_code, code);
            results.push(record);
        }
        if users.is_empty() {
            return MonthOutcome {
                results,
                exit: exit_code,
                sent,
                ..MonthOutcome::default()
            };
        }
        let needs_uuids = users.iter().any(|u| {
            existing
                .component_usage(&u.resource, &u.component)
                .is_none()
        });
        if created && needs_uuids {
            match api::component_usages(self.client, &self.offering_uuid, &format!("{}-01", period))
            {
                Ok(rows) => existing.refresh_totals(&rows),
                Err(e) => {
                    for u in &users {
                        results.push(user_result(
                            period,
                            u,
                            "failed",
                            Some(format!(
                                "not sent: re-reading the component usages failed: {}",
                                e.short()
                            )),
                            "set_user_usages",
                        ));
                    }
                    return MonthOutcome {
                        results,
                        exit: worse(exit_code, Some(e.exit_code())),
                        sent,
                        ..MonthOutcome::default()
                    };
                }
            }
        }
        let links = self.user_links();
        let to_send: Vec<UserPost> = users
            .iter()
            .filter(|u| !failed_resources.contains(&u.resource))
            .cloned()
            .collect();
        let unlinked = self.unlinked_users(period, &to_send, &links);
        let user_results = run_bounded(&users, self.options.concurrency, |u| {
            if failed_resources.contains(&u.resource) {
                let r = user_result(
                    period,
                    u,
                    "failed",
                    Some("not sent: the resource's set_usage failed".into()),
                    "set_user_usages",
                );
                // The set_usage failure already set the exit status.
                return (r, None);
            }
            match existing.component_usage(&u.resource, &u.component) {
                Some(cu) => self.post_users(period, u, cu, &links),
                None => (
                    user_result(
                        period,
                        u,
                        "failed",
                        Some(format!(
                            "Waldur holds no {} usage of this resource for {period}, so per-user \
                             usage has nothing to attach to",
                            u.component
                        )),
                        "set_user_usages",
                    ),
                    Some(exit::PROTOCOL),
                ),
            }
        });
        for (u, (record, code)) in users.iter().zip(user_results) {
            if record.status == "updated" {
                sent.extend(u.items.iter().map(|(name, amount)| Sent {
                    account: u.account.clone(),
                    resource: u.resource.clone(),
                    component: u.component.clone(),
                    user: Some(name.clone()),
                    amount: *amount,
                }));
            }
            exit_code = worse(exit_code, code);
            results.push(record);
        }
        MonthOutcome {
            results,
            exit: exit_code,
            sent,
            unlinked,
            ..MonthOutcome::default()
        }
    }

    /// The users of `users` that are no offering user: their usage goes without a link, and
    /// Waldur never adds one later (notes/waldur-7.0.md). One warning per period.
    fn unlinked_users(
        &self,
        period: &str,
        users: &[UserPost],
        links: &HashMap<String, String>,
    ) -> Vec<String> {
        if self.offering_users_unknown.load(Ordering::Relaxed) {
            // Listing them failed, which was a warning of its own.
            return Vec::new();
        }
        let names: BTreeSet<&str> = users
            .iter()
            .flat_map(|u| u.items.iter().map(|(n, _)| n.as_str()))
            .filter(|n| !links.contains_key(*n))
            .collect();
        if !names.is_empty() {
            warn!(
                "{period}: per-user usage of {} user(s) is sent without a link to a Waldur user, \
                 because they are not offering users of this offering, and Waldur never adds \
                 the link later: {}",
                names.len(),
                names.iter().copied().collect::<Vec<_>>().join(", ")
            );
        }
        names.into_iter().map(str::to_string).collect()
    }

    fn post_total(&self, period: &str, date: &str, t: &TotalPost) -> (ResultRecord, Option<u8>) {
        let body = total_body(t, date);
        let reason = t.zero_fill.then(|| {
            "no usage in the period: zeros for components Waldur had no record of".to_string()
        });
        match self.client.post_created(path::SET_USAGE, &body) {
            Ok(_) => (
                result(
                    period,
                    &t.account,
                    Some(&t.resource),
                    "set_usage",
                    "updated",
                    reason,
                    None,
                ),
                None,
            ),
            Err(e) => {
                error!("{period} {}: set_usage failed: {e}", t.account);
                (
                    result(
                        period,
                        &t.account,
                        Some(&t.resource),
                        "set_usage",
                        "failed",
                        Some(e.short()),
                        None,
                    ),
                    Some(e.exit_code()),
                )
            }
        }
    }

    /// username -> offering-user URL, listed once per run on first need.
    fn user_links(&self) -> HashMap<String, String> {
        let mut cached = self
            .offering_users
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(map) = cached.as_ref() {
            return map.clone();
        }
        let map = match api::offering_users(self.client, &self.offering_uuid) {
            Ok(list) => list
                .into_iter()
                .filter_map(|u| Some((u.username.filter(|n| !n.is_empty())?, u.url?)))
                .collect(),
            Err(e) => {
                self.offering_users_unknown.store(true, Ordering::Relaxed);
                warn!(
                    "listing the offering users failed ({e}); per-user usage is sent without \
                     links to Waldur users"
                );
                HashMap::new()
            }
        };
        *cached = Some(map.clone());
        map
    }

    fn post_users(
        &self,
        period: &str,
        u: &UserPost,
        cu: &str,
        links: &HashMap<String, String>,
    ) -> (ResultRecord, Option<u8>) {
        let items = user_items(u, links);
        if !self.bulk_unsupported.load(Ordering::Relaxed) {
            let body = json!(SetUserUsages {
                usages: items.clone()
            });
            match self.client.post_created(&path::set_user_usages(cu), &body) {
                Ok(_) => {
                    return (
                        user_result(period, u, "updated", None, "set_user_usages"),
                        None,
                    );
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    error!(
                        "{period} {} {}: set_user_usages failed: {e}",
                        u.account, u.component
                    );
                    return (
                        user_result(period, u, "failed", Some(e.short()), "set_user_usages"),
                        Some(e.exit_code()),
                    );
                }
            }
        }
        // No bulk endpoint (Waldur before 8.0.5): one POST per user.
        let mut failed = Vec::new();
        let mut first_error: Option<ApiError> = None;
        for item in &items {
            match self
                .client
                .post_created(&path::set_user_usage(cu), &json!(item))
            {
                Ok(_) => {
                    if !self.bulk_unsupported.swap(true, Ordering::Relaxed) {
                        warn!(
                            "this Waldur has no set_user_usages (bulk) endpoint; per-user usage \
                             goes one POST per user"
                        );
                    }
                }
                Err(e) => {
                    failed.push(item.username.clone());
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => (
                user_result(period, u, "updated", None, "set_user_usage"),
                None,
            ),
            Some(e) => {
                error!(
                    "{period} {} {}: set_user_usage failed: {e}",
                    u.account, u.component
                );
                let reason = format!(
                    "{} of {} users not sent ({}): {}",
                    failed.len(),
                    items.len(),
                    failed.join(", "),
                    e.short()
                );
                (
                    user_result(period, u, "failed", Some(reason), "set_user_usage"),
                    Some(e.exit_code()),
                )
            }
        }
    }

    /// `--dry-run`: write the plan's POSTs as result records instead of sending them.
    pub(super) fn dry_run(
        &self,
        period: &str,
        date: &str,
        plan: &Plan,
        existing: &Existing,
        out: &mut ResultWriter<'_>,
    ) -> MonthOutcome {
        render::log_totals(&plan.totals);
        let links = if plan.users.is_empty() {
            HashMap::new()
        } else {
            self.user_links()
        };
        let unlinked = self.unlinked_users(period, &plan.users, &links);
        render::dry_run(period, date, plan, existing, &links, out);
        MonthOutcome {
            unlinked,
            ..MonthOutcome::default()
        }
    }
}

/// The `set_usage` body of a planned total, dated `date`.
pub(super) fn total_body(t: &TotalPost, date: &str) -> serde_json::Value {
    json!(SetUsage {
        resource: t.resource.clone(),
        date: date.to_string(),
        usages: t.usages.clone(),
    })
}

fn user_items(u: &UserPost, links: &HashMap<String, String>) -> Vec<UserUsageItem> {
    u.items
        .iter()
        .map(|(name, amount)| UserUsageItem {
            username: name.clone(),
            usage: *amount,
            user: links.get(name).cloned(),
        })
        .collect()
}

fn user_result(
    period: &str,
    u: &UserPost,
    status: &str,
    reason: Option<String>,
    action: &str,
) -> ResultRecord {
    result(
        period,
        &u.account,
        Some(&u.resource),
        action,
        status,
        reason,
        Some(&u.component),
    )
}

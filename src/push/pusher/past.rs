//! Past months: a month the server has closed, without staff (compare and name what never
//! reached Waldur), and a staff backfill whose first write tests where the server files it.

use super::execute::total_body;
use super::{MonthOutcome, Pusher, worse};
use crate::cli::exit;
use crate::push::filing::DateSupport;
use crate::push::input::MonthUsage;
use crate::push::plan::{Existing, Plan, TotalPost, result};
use crate::push::readback;
use crate::waldur::api::{UsageItem, path};
use crate::{error, info, warn};

impl Pusher<'_> {
    /// A month the server has left, without staff: nothing is sent. Its totals are read and
    /// compared, so that usage that never reached Waldur is named, with the amounts, while a
    /// staff backfill can still close the gap.
    pub(super) fn closed_month(&self, usage: &MonthUsage, reason: String) -> MonthOutcome {
        let period = usage.period.to_string();
        let stored = match self.read_period(&usage.period.billing_period(), false) {
            Ok(e) => e,
            Err(e) => {
                warn!(
                    "{period}: held back, nothing of it is sent: {reason}; what Waldur holds for \
                     {period} could not be read to compare ({})",
                    e.short()
                );
                return self.refuse_all(usage, "skipped", reason, None);
            }
        };
        let mut results = Vec::new();
        let mut unsent = Vec::new();
        for a in usage.accounts() {
            let resource = self.catalog.resource_uuid(a.key());
            let differs: Vec<String> = match &resource {
                Some(rid) => a
                    .total()
                    .filter(|(c, _)| self.catalog.sendable.contains(*c))
                    .filter_map(|(c, v)| {
                        let held = stored.total(rid, c);
                        (held != Some(v)).then(|| match held {
                            Some(h) => format!("{c} {v} (Waldur {h})"),
                            None => format!("{c} {v} (Waldur none)"),
                        })
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let (status, why) = if resource.is_some() && differs.is_empty() {
                (
                    "unchanged",
                    format!("closed month: Waldur already holds these totals for {period}"),
                )
            } else if differs.is_empty() {
                ("skipped", reason.clone())
            } else {
                unsent.push(format!("{} {}", a.account(), differs.join(", ")));
                (
                    "skipped",
                    format!("{reason}; unsent: {}", differs.join(", ")),
                )
            };
            results.push(result(
                &period,
                a.account(),
                resource.as_deref(),
                "set_usage",
                status,
                Some(why),
                None,
            ));
        }
        if !unsent.is_empty() {
            let first = usage.period.first_day();
            warn!(
                "{period} has ended on Waldur with usage that was never sent: {}; load it with a \
                 staff token: waldur-usage-backfill --start-date {first} --end-date {}",
                unsent.join("; "),
                first.last_of_month()
            );
        }
        MonthOutcome {
            results,
            ..MonthOutcome::default()
        }
    }

    /// A staff backfill on a server whose handling of `date` is not known: the first
    /// resource's POST is the test. If it lands in its month the rest follows; if it lands in
    /// the server's current month instead, that month's previous values are written back and
    /// the run stops.
    pub(super) fn verified_backfill(
        &self,
        usage: &MonthUsage,
        date: &str,
        mut plan: Plan,
        existing: &mut Existing,
    ) -> MonthOutcome {
        let period = usage.period;
        let name = period.to_string();
        if plan.totals.is_empty() {
            return self.execute(&name, date, plan, existing);
        }
        let server = self.options.zones.server_month(self.options.now());
        let before = match self.read_period(&server.billing_period(), false) {
            Ok(e) => e,
            Err(e) => {
                return self.fail_all(
                    usage,
                    format!(
                        "not submitted: the server's version is not known, and its current month \
                         {server} could not be read to verify the first write"
                    ),
                    &e,
                );
            }
        };
        let first = plan.totals.remove(0);
        let probe = Plan {
            totals: vec![first.clone()],
            ..Plan::default()
        };
        let mut outcome = self.execute(&name, date, probe, existing);
        if outcome.exit.is_some() {
            outcome.stop = true;
            return outcome;
        }
        let check = self.read_period(&period.billing_period(), false);
        let landed = check
            .as_ref()
            .map(|stored| readback::compare(&outcome.sent, stored).is_empty())
            .unwrap_or(false);
        if landed {
            info!(
                "{name}: the first write landed in {name}: this server honours date; the rest \
                 of the backfill follows"
            );
            *self.date_support.lock().unwrap_or_else(|p| p.into_inner()) = DateSupport::Honoured {
                version: "unknown, verified by a write".into(),
            };
            let mut rest = self.execute(&name, date, plan, existing);
            outcome.results.append(&mut rest.results);
            outcome.sent.append(&mut rest.sent);
            outcome.exit = worse(outcome.exit, rest.exit);
            self.read_back(period, &mut outcome);
            return outcome;
        }
        // Undo: write back the server's current month as it was for the probed resource.
        let restore: Vec<UsageItem> = first
            .usages
            .iter()
            .filter_map(|i| {
                before.total(&first.resource, &i.type_).map(|v| UsageItem {
                    type_: i.type_.clone(),
                    amount: v,
                })
            })
            .collect();
        let not_restorable: Vec<&str> = first
            .usages
            .iter()
            .filter(|i| before.total(&first.resource, &i.type_).is_none())
            .map(|i| i.type_.as_str())
            .collect();
        let undo_date = self.options.zones.current_date(server, self.options.now());
        let undo = TotalPost {
            usages: restore,
            ..first.clone()
        };
        let undone = undo.usages.is_empty()
            || self
                .client
                .post_created(path::SET_USAGE, &total_body(&undo, &undo_date))
                .is_ok();
        let mut reason = format!(
            "the first write of {name} (resource {}) did not land in {name}: this server files \
             usage under its current month ({server}) whatever date is sent, so {name} cannot \
             be loaded on it; nothing more was sent",
            first.resource
        );
        if undone && not_restorable.is_empty() {
            reason.push_str(&format!("; {server} was written back as it was"));
        } else {
            reason.push_str(&format!(
                "; {server} of resource {} could not be restored exactly ({}): check it in Waldur",
                first.resource,
                if undone {
                    format!("it had no value for {}", not_restorable.join(", "))
                } else {
                    "the restoring POST failed".to_string()
                }
            ));
        }
        error!("{reason}");
        outcome.results = usage
            .accounts()
            .map(|a| {
                result(
                    &name,
                    a.account(),
                    self.catalog.resource_uuid(a.key()).as_deref(),
                    "set_usage",
                    "failed",
                    Some(reason.clone()),
                    None,
                )
            })
            .collect();
        outcome.sent.clear();
        outcome.exit = Some(exit::UNAVAILABLE);
        outcome.stop = true;
        outcome
    }
}

//! One waldur-push run: check the token and read the offering once, then for each complete
//! period read what Waldur holds, plan, and POST what changed.
//!
//! Requests per period: the offering's component usages (and, when the input has per-user
//! values, its component user usages), both paged at 300; then the POSTs; then, only if new
//! component usages were created and per-user values need their UUIDs, one more listing of the
//! component usages. Offering users are listed once per run, and only when a per-user POST is
//! about to be made.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use serde_json::json;

use super::audit::{self, AuditLine};
use super::filing::{self, DateSupport, Filing};
use super::input::MonthUsage;
use super::plan::{self, Catalog, Existing, Plan, PlanOptions, TotalPost, UserPost, result};
use super::readback::{self, Sent};
use super::render::{self, ResultWriter};
use super::submit::run_bounded;
use crate::cli::exit;
use crate::config::{Offering, normalize_uuid};
use crate::period::{BillingZones, Period};
use crate::records::ResultRecord;
use crate::waldur::api::UsageItem;
use crate::waldur::api::{self, SetUsage, SetUserUsages, UserUsageItem, path};
use crate::waldur::error::ApiError;
use crate::waldur::http::Client;
use crate::{debug, error, info, warn};

/// Reads of a period's read-back when its listing does not add up (rows moved between
/// pages) before the values that seem missing are reported as unverified.
const READ_BACK_READS: u32 = 3;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Staff token: closed (past) periods may be submitted.
    pub staff: bool,
    /// Send values lower than Waldur's.
    pub allow_decrease: bool,
    /// Read from Waldur but send nothing; print the POSTs instead.
    pub dry_run: bool,
    /// POSTs in flight at once.
    pub concurrency: usize,
    /// A fixed current instant (`--now`, for tests and reruns); `None` reads the clock each
    /// time a decision is made, so a run that crosses midnight sees the new month.
    pub now: Option<Timestamp>,
    /// The site's and the Waldur server's time zones.
    pub zones: BillingZones,
    /// The configured `allocation_prefix`: resources without it get no zeros (see
    /// [`super::plan::PlanOptions::measured_prefix`]).
    pub allocation_prefix: Option<String>,
}

impl PushOptions {
    /// The instant decisions are made at: `--now`, or the clock.
    pub fn now(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }
}

/// Why a run could not start.
#[derive(Debug)]
pub enum SetupError {
    /// A Waldur request failed.
    Api(ApiError),
    /// `--staff` with a token whose user is not staff.
    NotStaff(String),
    /// Nothing configured can be sent to this offering.
    Config(String),
}

impl SetupError {
    /// The exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            SetupError::Api(e) => e.exit_code(),
            SetupError::NotStaff(_) => exit::NOPERM,
            SetupError::Config(_) => exit::CONFIG,
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Api(e) => write!(f, "{e}"),
            SetupError::NotStaff(m) | SetupError::Config(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<ApiError> for SetupError {
    fn from(e: ApiError) -> Self {
        SetupError::Api(e)
    }
}

/// The result of one period.
#[derive(Debug, Clone, Default)]
pub struct MonthOutcome {
    /// One record per decision or request.
    pub results: Vec<ResultRecord>,
    /// The exit status the failures call for, if any failed.
    pub exit: Option<u8>,
    /// The values that POSTs answered 201 for, to be read back.
    pub sent: Vec<Sent>,
    /// Stop the run after this period: what Waldur stores cannot be trusted to be where it
    /// was sent, so sending more could only add damage.
    pub stop: bool,
    /// Users whose per-user usage went without a link to a Waldur user (not offering users).
    pub unlinked: Vec<String>,
    /// Things held back without a result record of their own (the zeros for idle resources,
    /// when what was read of Waldur did not add up); each had its warning line.
    pub held_back: usize,
}

/// Pick the more important of two exit statuses: permissions, configuration, bad input,
/// refusals, then outages.
pub fn worse(a: Option<u8>, b: Option<u8>) -> Option<u8> {
    fn rank(code: u8) -> u8 {
        match code {
            exit::NOPERM => 6,
            exit::CONFIG => 5,
            exit::DATAERR => 4,
            exit::PROTOCOL => 3,
            exit::TEMPFAIL => 2,
            _ => 1,
        }
    }
    match (a, b) {
        (Some(x), Some(y)) => Some(if rank(y) > rank(x) { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Ask the server its version (staff can read it) to learn whether it honours `date`.
fn server_date_support(client: &Client) -> DateSupport {
    match api::version(client) {
        Ok(v) => {
            let support = DateSupport::from_version(&v);
            match &support {
                DateSupport::Ignored { version } => warn!(
                    "Waldur {version} ignores the date of usage and files it under its current \
                     month: past months cannot be loaded on it"
                ),
                DateSupport::Honoured { version } => {
                    info!("Waldur {version} files usage under the month of its date")
                }
                DateSupport::Unknown => info!(
                    "Waldur reports version {v:?}: whether it honours the date of usage is \
                     verified with the first write of a past month"
                ),
            }
            support
        }
        Err(e) => {
            info!(
                "the server's version could not be read ({}); whether it honours the date of \
                 usage is verified with the first write of a past month",
                e.short()
            );
            DateSupport::Unknown
        }
    }
}

/// A connected run against one offering.
pub struct Pusher<'a> {
    client: &'a Client,
    offering_uuid: String,
    catalog: Catalog,
    options: PushOptions,
    offering_users: Mutex<Option<HashMap<String, String>>>,
    bulk_unsupported: AtomicBool,
    warned: Mutex<BTreeSet<String>>,
    date_support: Mutex<DateSupport>,
    offering_users_unknown: AtomicBool,
}

impl<'a> Pusher<'a> {
    /// Check the token (and staff rights with `--staff`), read the offering's components and
    /// resources.
    pub fn connect(
        client: &'a Client,
        offering: &Offering,
        options: PushOptions,
    ) -> Result<Pusher<'a>, SetupError> {
        let (me, _) = api::users_me(client)?;
        let who = me.username.clone().unwrap_or_else(|| "(unknown)".into());
        let staff = me.is_staff == Some(true);
        info!(
            "Waldur at {} accepted the token of user {who}{}",
            client.base().root(),
            if staff { " (staff)" } else { "" }
        );
        if options.staff && !staff {
            return Err(SetupError::NotStaff(format!(
                "--staff was given, but Waldur user {who} is not staff; loading past months \
                 needs a staff user's token (--token-file PATH)"
            )));
        }
        let date_support = if options.staff {
            server_date_support(client)
        } else {
            DateSupport::Unknown
        };
        let uuid = normalize_uuid(&offering.waldur_offering_uuid);
        let details = api::offering(client, &uuid)?;
        let resources = api::resources(client, &uuid)?;
        let (catalog, warnings) = Catalog::new(
            &details.components,
            offering.components.keys().map(String::as_str),
            resources,
        );
        for w in warnings {
            warn!("{w}");
        }
        if catalog.sendable.is_empty() {
            return Err(SetupError::Config(format!(
                "none of the configured components ({}) is a usage component of Waldur \
                 offering {uuid}; nothing could be sent",
                offering
                    .components
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let reportable = catalog.resources.iter().filter(|r| r.reportable()).count();
        info!(
            "offering {:?}: {} resources ({reportable} take usage); components sent: {}",
            details.name.as_deref().unwrap_or(&uuid),
            catalog.resources.len(),
            catalog
                .sendable
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Pusher {
            client,
            offering_uuid: uuid,
            catalog,
            options,
            offering_users: Mutex::new(None),
            bulk_unsupported: AtomicBool::new(false),
            warned: Mutex::new(BTreeSet::new()),
            date_support: Mutex::new(date_support),
            offering_users_unknown: AtomicBool::new(false),
        })
    }

    /// The offering UUID (hex).
    pub fn offering_uuid(&self) -> &str {
        &self.offering_uuid
    }

    /// Compare what Waldur holds for the month with the usage records (`--audit`): read-only.
    /// A listing that does not add up is an error: an audit of rows that moved between pages
    /// would report differences that are not there.
    pub fn audit_period(&self, usage: &MonthUsage) -> Result<Vec<AuditLine>, ApiError> {
        let billing_period = usage.period.billing_period();
        let totals =
            api::component_usage_listing(self.client, &self.offering_uuid, &billing_period)?;
        if let Some(gap) = api::listing_gap(&totals) {
            return Err(ApiError::Decode {
                method: "GET".into(),
                path: self.client.display_path(path::COMPONENT_USAGES),
                detail: format!("the listing of {} does not add up: {gap}", usage.period),
            });
        }
        let users = api::user_usages(self.client, &self.offering_uuid, &billing_period)?;
        Ok(audit::audit(
            usage,
            &self.catalog,
            &audit::Stored {
                usages: &totals.items,
                user_usages: &users,
            },
        ))
    }

    fn warn_once(&self, key: &str, message: impl FnOnce() -> String) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.insert(key.to_string()) {
            warn!("{}", message());
        }
    }

    /// Submit one complete period, if the server files it under its own month now. A dry
    /// run writes its results to `out` as it goes; the other results come back in the outcome.
    pub fn push_period(&self, usage: &MonthUsage, out: &mut ResultWriter<'_>) -> MonthOutcome {
        let period = usage.period.to_string();
        let zones = &self.options.zones;
        let now = self.options.now();
        if !usage.period.has_started(&zones.site, now) {
            return self.refuse_all(
                usage,
                "failed",
                format!("period {period} has not started yet (now is {now}); nothing is sent"),
                Some(exit::DATAERR),
            );
        }
        let support = self.date_support();
        let (date, current) = match filing::decide(
            usage.period,
            usage.record.as_ref(),
            zones,
            now,
            self.options.staff,
            &support,
        ) {
            Filing::Send { date, current } => (date, current),
            Filing::Hold {
                reason,
                closed: true,
            } if !self.options.staff => return self.closed_month(usage, reason),
            Filing::Hold { reason, .. } => {
                warn!("{period}: held back, nothing of it is sent: {reason}");
                return self.refuse_all(usage, "skipped", reason, None);
            }
            Filing::Refuse { reason } => {
                let mut outcome = self.refuse_all(usage, "failed", reason, Some(exit::UNAVAILABLE));
                outcome.stop = true;
                return outcome;
            }
        };
        let billing_period = usage.period.billing_period();
        let (mut existing, gap) = match self.read_period_counted(&billing_period, usage.has_users())
        {
            Ok(e) => e,
            Err(e) => {
                return self.refuse_all(
                    usage,
                    "failed",
                    format!(
                        "not submitted: reading what Waldur holds for {period} failed: {}",
                        e.short()
                    ),
                    Some(e.exit_code()),
                );
            }
        };
        let plan = plan::plan(
            usage,
            &self.catalog,
            &existing,
            PlanOptions {
                allow_decrease: self.options.allow_decrease,
                measured_prefix: self
                    .options
                    .allocation_prefix
                    .as_ref()
                    .map(|p| p.to_lowercase()),
                skip_zero_fill: !current || gap.is_some(),
            },
        );
        // Zeros go only where Waldur holds no record; a row missed by the read would get one
        // over its real value. So a listing that does not add up zero-fills nothing.
        let zeros_held = match &gap {
            Some(why) if current => {
                warn!(
                    "{period}: no zeros are sent for idle resources: the component usages read \
                     from Waldur do not add up ({why}); the next run tries again"
                );
                1
            }
            _ => 0,
        };
        for r in plan.results.iter().filter(|r| r.status == "skipped") {
            let what = match &r.component {
                Some(c) => format!("{} {} ({c})", r.account, r.action),
                None => format!("{} {}", r.account, r.action),
            };
            warn!(
                "{period} {what}: not sent: {}",
                r.reason.as_deref().unwrap_or("skipped")
            );
        }
        for c in &plan.dropped_components {
            self.warn_once(&format!("drop:{c}"), || {
                format!("component {c:?} in the input is not sent: the offering does not take it")
            });
        }
        let mut outcome = if self.options.dry_run {
            self.dry_run(&period, &date, &plan, &existing, out)
        } else if !current && support == DateSupport::Unknown {
            self.verified_backfill(usage, &date, plan, &mut existing)
        } else {
            let mut outcome = self.execute(&period, &date, plan, &mut existing);
            self.read_back(usage.period, &mut outcome);
            outcome
        };
        outcome.held_back += zeros_held;
        outcome
    }

    /// What the server does with `date`, as far as this run knows.
    fn date_support(&self) -> DateSupport {
        self.date_support
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The component usages (and, with `users`, the per-user usages) of one billing period.
    fn read_period(&self, billing_period: &str, users: bool) -> Result<Existing, ApiError> {
        self.read_period_counted(billing_period, users)
            .map(|(existing, _)| existing)
    }

    /// [`Pusher::read_period`], and why the component usages may be incomplete (see
    /// [`api::listing_gap`]).
    fn read_period_counted(
        &self,
        billing_period: &str,
        users: bool,
    ) -> Result<(Existing, Option<String>), ApiError> {
        let totals =
            api::component_usage_listing(self.client, &self.offering_uuid, billing_period)?;
        let gap = api::listing_gap(&totals);
        let users = if users {
            api::user_usages(self.client, &self.offering_uuid, billing_period)?
        } else {
            Vec::new()
        };
        Ok((Existing::new(&totals.items, &users), gap))
    }

    /// A month the server has left, without staff: nothing is sent. Its totals are read and
    /// compared, so that usage that never reached Waldur is named, with the amounts, while a
    /// staff backfill can still close the gap.
    fn closed_month(&self, usage: &MonthUsage, reason: String) -> MonthOutcome {
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

    /// After the POSTs of a period, read the period again and compare it with what was sent.
    /// A difference stops the run: the server filed the usage elsewhere, or changed it.
    fn read_back(&self, period: Period, outcome: &mut MonthOutcome) {
        if outcome.sent.is_empty() {
            return;
        }
        let name = period.to_string();
        let users = outcome.sent.iter().any(|s| s.user.is_some());
        let mut reads = 0;
        let mismatches = loop {
            reads += 1;
            let (stored, gap) = match self.read_period_counted(&period.billing_period(), users) {
                Ok(read) => read,
                Err(e) => {
                    error!(
                        "{name}: reading back what was sent failed ({}); whether Waldur filed \
                         it under {name} is not known",
                        e.short()
                    );
                    outcome.exit = worse(outcome.exit, Some(e.exit_code()));
                    outcome.stop = true;
                    return;
                }
            };
            let mismatches = readback::compare(&outcome.sent, &stored);
            match gap {
                // Rows moved between pages: a value missing from this read proves nothing.
                Some(gap) if !mismatches.is_empty() && reads < READ_BACK_READS => {
                    warn!("{name}: the read-back listing did not add up ({gap}); reading it again");
                }
                Some(gap) if !mismatches.is_empty() => {
                    error!(
                        "{name}: {} of {} values sent could not be verified: the listing did \
                         not add up in {reads} reads ({gap}); the run stops here, and the next \
                         run reads the period again",
                        mismatches.len(),
                        outcome.sent.len()
                    );
                    outcome.exit = worse(outcome.exit, Some(exit::TEMPFAIL));
                    outcome.stop = true;
                    return;
                }
                _ => break mismatches,
            }
        };
        if mismatches.is_empty() {
            debug!(
                "{name}: read back {} values, all as sent",
                outcome.sent.len()
            );
            return;
        }
        let elsewhere = self.filed_elsewhere(period, &mismatches);
        for m in &mismatches {
            let mut text = format!("read-back: {}", m.describe(&name));
            if let Some(month) = elsewhere.get(&(m.sent.resource.clone(), m.sent.component.clone()))
            {
                text.push_str(&format!("; the server filed it under {month}"));
            }
            error!("{text}");
            let mut r = result(
                &name,
                &m.sent.account,
                Some(&m.sent.resource),
                if m.sent.user.is_some() {
                    "set_user_usages"
                } else {
                    "set_usage"
                },
                "failed",
                Some(text),
                Some(&m.sent.component),
            );
            r.request = None;
            outcome.results.push(r);
        }
        error!(
            "{name}: {} of {} values sent are not stored as sent; the run stops here, nothing \
             more is sent",
            mismatches.len(),
            outcome.sent.len()
        );
        outcome.exit = worse(outcome.exit, Some(exit::PROTOCOL));
        outcome.stop = true;
    }

    /// Where the server filed totals that are missing from their month: its current month,
    /// when that holds exactly the value sent.
    fn filed_elsewhere(
        &self,
        period: Period,
        mismatches: &[readback::Mismatch],
    ) -> HashMap<(String, String), Period> {
        let server = self.options.zones.server_month(self.options.now());
        let mut found = HashMap::new();
        if server == period {
            return found;
        }
        let Ok(there) = self.read_period(&server.billing_period(), false) else {
            return found;
        };
        for m in mismatches.iter().filter(|m| m.sent.user.is_none()) {
            if there.total(&m.sent.resource, &m.sent.component) == Some(m.sent.amount) {
                found.insert((m.sent.resource.clone(), m.sent.component.clone()), server);
            }
        }
        found
    }

    /// A staff backfill on a server whose handling of `date` is not known: the first
    /// resource's POST is the test. If it lands in its month the rest follows; if it lands in
    /// the server's current month instead, that month's previous values are written back and
    /// the run stops.
    fn verified_backfill(
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
                return self.refuse_all(
                    usage,
                    "failed",
                    format!(
                        "not submitted: the server's version is not known, and its current month \
                         {server} could not be read to verify the first write: {}",
                        e.short()
                    ),
                    Some(e.exit_code()),
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
                    self.catalog
                        .resource_uuid(&a.account().to_lowercase())
                        .as_deref(),
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

    fn execute(
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

    fn dry_run(
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

    /// The same outcome for every account of the period, with the account's resource where
    /// the offering has one.
    fn refuse_all(
        &self,
        usage: &MonthUsage,
        status: &str,
        reason: String,
        code: Option<u8>,
    ) -> MonthOutcome {
        let period = usage.period.to_string();
        if status == "failed" {
            error!("{reason}");
        } else {
            info!("{period}: {reason}");
        }
        MonthOutcome {
            results: usage
                .accounts()
                .map(|a| {
                    result(
                        &period,
                        a.account(),
                        self.catalog.resource_uuid(a.key()).as_deref(),
                        "set_usage",
                        status,
                        Some(reason.clone()),
                        None,
                    )
                })
                .collect(),
            exit: code,
            ..MonthOutcome::default()
        }
    }
}

fn total_body(t: &TotalPost, date: &str) -> serde_json::Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_rank_permissions_first_and_outages_last() {
        assert_eq!(worse(None, None), None);
        assert_eq!(worse(Some(exit::TEMPFAIL), None), Some(exit::TEMPFAIL));
        assert_eq!(
            worse(Some(exit::TEMPFAIL), Some(exit::PROTOCOL)),
            Some(exit::PROTOCOL)
        );
        assert_eq!(
            worse(Some(exit::NOPERM), Some(exit::DATAERR)),
            Some(exit::NOPERM)
        );
        assert_eq!(
            worse(Some(exit::DATAERR), Some(exit::PROTOCOL)),
            Some(exit::DATAERR)
        );
    }
}

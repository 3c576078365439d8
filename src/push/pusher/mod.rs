//! One waldur-push run: check the token and read the offering once, then for each complete
//! period read what Waldur holds, plan, and POST what changed.
//!
//! Requests per period: the offering's component usages (and, when the input has per-user
//! values, its component user usages), both paged at 300; then the POSTs; then, only if new
//! component usages were created and per-user values need their UUIDs, one more listing of the
//! component usages. Offering users are listed once per run, and only when a per-user POST is
//! about to be made.
//!
//! The run is split by what it does: this file sets it up and decides, per period, what
//! happens; `execute.rs` makes the POSTs (or renders them for a dry run); `verify.rs` reads
//! back what was sent; `past.rs` handles months the server has already closed.

mod execute;
mod past;
mod verify;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use jiff::Timestamp;

use super::audit::{self, AuditLine};
use super::filing::{self, DateSupport, Filing};
use super::input::MonthUsage;
use super::plan::{self, Catalog, Existing, PlanOptions, result};
use super::readback::Sent;
use super::render::ResultWriter;
use crate::cli::exit;
use crate::config::{Offering, normalize_uuid};
use crate::period::BillingZones;
use crate::records::ResultRecord;
use crate::waldur::api::{self, path};
use crate::waldur::error::ApiError;
use crate::waldur::http::Client;
use crate::{error, info, warn};

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
                return self.fail_all(
                    usage,
                    format!("not submitted: reading what Waldur holds for {period} failed"),
                    &e,
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

    /// Every account of the period failed because a read failed: `what` went wrong, then the
    /// error in short; the exit status is the error's.
    fn fail_all(&self, usage: &MonthUsage, what: String, e: &ApiError) -> MonthOutcome {
        self.refuse_all(
            usage,
            "failed",
            format!("{what}: {}", e.short()),
            Some(e.exit_code()),
        )
    }
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

//! `waldur-push --check`: the Waldur half of the diagnostics, for a human.
//!
//! Checks, each printed as one `ok`/`warn`/`FAIL` line: the token is accepted (and whose it
//! is), the server's clock (its `Date` header) against ours, the offering and its components
//! against the config, the resources by state, the offering users, and write access.
//!
//! Write access cannot be read off a Waldur 7.0.x: a role without permissions still reads
//! everything checked here (notes/waldur-7.0.md, "Roles and tokens"). Without `--write` it is
//! reported as unknown; with `--write` one resource's stored usage of the server's current
//! month is POSTed back unchanged through `set_usage` (a no-op for billing), and the answer
//! decides.

use std::collections::BTreeMap;
use std::io::Write;

use jiff::Timestamp;
use serde_json::json;

use super::plan::Catalog;
use super::pusher::worse;
use crate::cli::exit;
use crate::config::{Offering, normalize_uuid};
use crate::decimal::Amount;
use crate::period::BillingZones;
use crate::waldur::api::{self, SetUsage, UsageItem, path};
use crate::waldur::error::ApiError;
use crate::waldur::http::Client;

/// Clock difference that is reported as a problem: Waldur refuses usage dated in its future.
pub const MAX_SKEW_SECONDS: i64 = 120;

/// What `--check` may do beyond reading.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// `--write`: test write access by re-sending one stored value unchanged.
    pub write: bool,
    /// The site's and the server's zones (the server's decides the current month).
    pub zones: BillingZones,
    /// Now (`--now` or the clock).
    pub now: Timestamp,
}

/// What `--check` found out about write access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAccess {
    /// A re-sent value was stored (201).
    Can(String),
    /// The server answered 403; the server's message.
    Cannot(String),
    /// Not tested, or the test told nothing; why.
    Unknown(String),
}

/// Collects the lines and the worst exit status.
struct Report<'o, W: Write> {
    out: &'o mut W,
    worst: Option<u8>,
}

impl<W: Write> Report<'_, W> {
    fn line(&mut self, level: &str, text: String) -> std::io::Result<()> {
        writeln!(self.out, "{level:<4} {text}")
    }

    fn fail(&mut self, code: u8, text: String) -> std::io::Result<()> {
        self.worst = worse(self.worst, Some(code));
        self.line("FAIL", text)
    }
}

/// Run the checks, writing one line per finding to `out`; returns the exit status the
/// problems call for (`None`: no problem). API failures exit as everywhere else (77 for a
/// refused token or missing rights, 76 for a refusal such as an offering that is not visible,
/// 75 for an outage); a wrong clock 69; no sendable component 78; "cannot write" 77.
pub fn run(
    client: &Client,
    offering: &Offering,
    token_source: &str,
    options: &CheckOptions,
    out: &mut impl Write,
) -> std::io::Result<Option<u8>> {
    let mut report = Report { out, worst: None };
    let r = &mut report;
    r.line(
        "ok",
        format!(
            "Waldur: {} (User-Agent {})",
            client.base().root(),
            crate::waldur::http::USER_AGENT
        ),
    )?;
    let me = match api::users_me(client) {
        Ok(me) => me,
        Err(e) => {
            r.fail(e.exit_code(), format!("token from {token_source}: {e}"))?;
            return Ok(r.worst);
        }
    };
    let (user, reply) = me;
    let staff = user.is_staff == Some(true);
    r.line(
        "ok",
        format!(
            "token from {token_source}: accepted for Waldur user {} (staff: {})",
            user.username.as_deref().unwrap_or("(unknown)"),
            if staff { "yes" } else { "no" }
        ),
    )?;
    match reply
        .header("date")
        .and_then(|d| jiff::fmt::rfc2822::parse(d).ok())
    {
        Some(server) => {
            let skew = Timestamp::now().as_second() - server.timestamp().as_second();
            let text = format!("clock: ours is {skew:+} s from the server's Date header");
            if skew.abs() > MAX_SKEW_SECONDS {
                r.fail(
                    exit::UNAVAILABLE,
                    format!("{text}; fix NTP, Waldur refuses usage dated in its future"),
                )?;
            } else {
                r.line("ok", text)?;
            }
        }
        None => r.line("warn", "clock: the server sent no Date header".into())?,
    }
    let uuid = normalize_uuid(&offering.waldur_offering_uuid);
    let details = match api::offering(client, &uuid) {
        Ok(d) => d,
        Err(e) => {
            r.fail(e.exit_code(), format!("offering {uuid}: {e}"))?;
            return Ok(r.worst);
        }
    };
    let components: Vec<String> = details
        .components
        .iter()
        .map(|c| format!("{} ({})", c.type_, c.billing_type.as_deref().unwrap_or("?")))
        .collect();
    r.line(
        "ok",
        format!(
            "offering {:?} ({uuid}): components {}",
            details.name.as_deref().unwrap_or(""),
            components.join(", ")
        ),
    )?;
    let resources = match api::resources(client, &uuid) {
        Ok(r) => r,
        Err(e) => {
            r.fail(e.exit_code(), format!("resources: {e}"))?;
            return Ok(r.worst);
        }
    };
    let (catalog, warnings) = Catalog::new(
        &details.components,
        offering.components.keys().map(String::as_str),
        resources,
    );
    for w in warnings {
        r.line("warn", w)?;
    }
    if catalog.sendable.is_empty() {
        r.fail(
            exit::CONFIG,
            "no configured component can be sent to this offering".into(),
        )?;
    } else {
        let sendable: Vec<&str> = catalog.sendable.iter().map(String::as_str).collect();
        r.line("ok", format!("components sent: {}", sendable.join(", ")))?;
    }
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for r in &catalog.resources {
        *states
            .entry(r.state.clone().unwrap_or_else(|| "?".into()))
            .or_default() += 1;
    }
    let no_backend = catalog
        .resources
        .iter()
        .filter(|r| r.backend_id.as_deref().is_none_or(|b| b.trim().is_empty()))
        .count();
    let by_state: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    r.line(
        "ok",
        format!(
            "resources: {} ({}); {no_backend} without backend_id",
            catalog.resources.len(),
            by_state.join(", ")
        ),
    )?;
    match api::offering_users(client, &uuid) {
        Ok(users) => {
            let named = users
                .iter()
                .filter(|u| u.username.as_deref().is_some_and(|n| !n.is_empty()))
                .count();
            let level = if users.is_empty() { "warn" } else { "ok" };
            r.line(
                level,
                format!(
                    "offering users: {} ({named} with a username){}",
                    users.len(),
                    if users.is_empty() {
                        "; per-user usage will not be linked to Waldur users"
                    } else {
                        ""
                    }
                ),
            )?;
        }
        Err(e) => r.line("warn", format!("offering users: {e}"))?,
    }
    match write_access(client, &catalog, &uuid, staff, options) {
        WriteAccess::Can(how) => r.line("ok", format!("write access: can write ({how})"))?,
        WriteAccess::Cannot(message) => r.fail(
            exit::NOPERM,
            format!("write access: cannot write (403: {message})"),
        )?,
        WriteAccess::Unknown(why) => r.line("warn", format!("write access: unknown ({why})"))?,
    }
    Ok(r.worst)
}

/// Find out whether the token may write usage. Without `options.write` nothing is sent.
pub fn write_access(
    client: &Client,
    catalog: &Catalog,
    offering_uuid: &str,
    staff: bool,
    options: &CheckOptions,
) -> WriteAccess {
    if !options.write {
        let who = if staff {
            "a staff user may set usage, but "
        } else {
            ""
        };
        return WriteAccess::Unknown(format!(
            "not tested: {who}reading cannot tell, a role without permissions still reads \
             everything; --check --write re-sends one stored value of this month unchanged"
        ));
    }
    let period = options.zones.server_month(options.now);
    let stored = match api::component_usages(client, offering_uuid, &period.billing_period()) {
        Ok(rows) => rows,
        Err(e) => {
            return WriteAccess::Unknown(format!(
                "reading the stored usage of {period} failed: {}",
                e.short()
            ));
        }
    };
    // resource -> component -> stored values (more than one: ambiguous, not re-sent).
    let mut by_resource: BTreeMap<&str, BTreeMap<&str, Vec<Amount>>> = BTreeMap::new();
    for row in &stored {
        if let Some(resource) = row.resource_uuid.as_deref() {
            if catalog.sendable.contains(&row.type_) {
                by_resource
                    .entry(resource)
                    .or_default()
                    .entry(row.type_.as_str())
                    .or_default()
                    .push(row.usage);
            }
        }
    }
    let chosen = by_resource.iter().find(|(resource, components)| {
        catalog
            .resources
            .iter()
            .any(|r| r.uuid == **resource && r.reportable())
            && components.values().all(|v| v.len() == 1)
    });
    let Some((resource, components)) = chosen else {
        return WriteAccess::Unknown(format!(
            "nothing to re-send: no resource that takes usage has a stored value for {period}"
        ));
    };
    // Every stored component of the resource, so that a 7.0.x server's
    // `resource.current_usages` (the components of the last request) stays complete.
    let usages: Vec<UsageItem> = components
        .iter()
        .map(|(c, v)| UsageItem {
            type_: c.to_string(),
            amount: v[0],
        })
        .collect();
    let shown: Vec<String> = usages
        .iter()
        .map(|u| format!("{} {}", u.type_, u.amount))
        .collect();
    let body = json!(SetUsage {
        resource: resource.to_string(),
        date: options.zones.current_date(period, options.now),
        usages,
    });
    match client.post_created(path::SET_USAGE, &body) {
        Ok(_) => WriteAccess::Can(format!(
            "re-sent the stored {} of resource {resource} for {period} unchanged",
            shown.join(", ")
        )),
        Err(e) if e.status() == Some(403) => {
            let message = match &e {
                ApiError::Status { message, .. } => {
                    message.split_whitespace().collect::<Vec<_>>().join(" ")
                }
                other => other.short(),
            };
            WriteAccess::Cannot(message)
        }
        Err(e) => WriteAccess::Unknown(format!(
            "re-sending a stored value of {period} failed: {}",
            e.short()
        )),
    }
}

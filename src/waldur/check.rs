//! `waldur-push --check`: the Waldur half of the diagnostics, for a human.
//!
//! Checks, each printed as one `ok`/`warn`/`FAIL` line: the token is accepted (and whose it
//! is), the server's clock (its `Date` header) against ours, the offering and its components
//! against the config, the resources by state, and the offering users.

use std::collections::BTreeMap;
use std::io::Write;

use jiff::Timestamp;

use super::api;
use super::http::Client;
use super::plan::Catalog;
use crate::config::{Offering, normalize_uuid};

/// Clock difference that is reported as a problem: Waldur refuses usage dated in its future.
pub const MAX_SKEW_SECONDS: i64 = 120;

/// Run the checks, writing one line per finding to `out`; returns the number of problems.
pub fn run(
    client: &Client,
    offering: &Offering,
    token_source: &str,
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let mut problems = 0;
    let mut line = |out: &mut dyn Write, level: &str, text: String| -> std::io::Result<()> {
        if level == "FAIL" {
            problems += 1;
        }
        writeln!(out, "{level:<4} {text}")
    };
    line(
        out,
        "ok",
        format!(
            "Waldur: {} (User-Agent {})",
            client.base().root(),
            super::http::USER_AGENT
        ),
    )?;
    let me = match api::users_me(client) {
        Ok(me) => me,
        Err(e) => {
            line(out, "FAIL", format!("token from {token_source}: {e}"))?;
            return Ok(problems);
        }
    };
    let (user, reply) = me;
    line(
        out,
        "ok",
        format!(
            "token from {token_source}: accepted for Waldur user {} (staff: {})",
            user.username.as_deref().unwrap_or("(unknown)"),
            if user.is_staff == Some(true) {
                "yes"
            } else {
                "no"
            }
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
                line(
                    out,
                    "FAIL",
                    format!("{text}; fix NTP, Waldur refuses usage dated in its future"),
                )?;
            } else {
                line(out, "ok", text)?;
            }
        }
        None => line(out, "warn", "clock: the server sent no Date header".into())?,
    }
    let uuid = normalize_uuid(&offering.waldur_offering_uuid);
    let details = match api::offering(client, &uuid) {
        Ok(d) => d,
        Err(e) => {
            line(out, "FAIL", format!("offering {uuid}: {e}"))?;
            return Ok(problems);
        }
    };
    let components: Vec<String> = details
        .components
        .iter()
        .map(|c| format!("{} ({})", c.type_, c.billing_type.as_deref().unwrap_or("?")))
        .collect();
    line(
        out,
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
            line(out, "FAIL", format!("resources: {e}"))?;
            return Ok(problems);
        }
    };
    let (catalog, warnings) = Catalog::new(
        &details.components,
        offering.components.keys().map(String::as_str),
        resources,
    );
    for w in warnings {
        line(out, "warn", w)?;
    }
    if catalog.sendable.is_empty() {
        line(
            out,
            "FAIL",
            "no configured component can be sent to this offering".into(),
        )?;
    } else {
        let sendable: Vec<&str> = catalog.sendable.iter().map(String::as_str).collect();
        line(
            out,
            "ok",
            format!("components sent: {}", sendable.join(", ")),
        )?;
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
    line(
        out,
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
            line(
                out,
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
        Err(e) => line(out, "warn", format!("offering users: {e}"))?,
    }
    Ok(problems)
}

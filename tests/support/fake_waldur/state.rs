//! The fake server's domain model: what Waldur would hold in its database for one offering,
//! plus the clock and time zone used for billing periods (`notes/waldur-api.md` §6).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde_json::Value;

use super::setup::{
    OfferingSetup, OfferingUserSetup, ResourceSetup, Setup, StoredUsage, StoredUserUsage,
    TokenSetup, det_uuid,
};

/// A component usage row with the fields the public [`StoredUsage`] leaves out.
#[derive(Clone, Debug)]
pub struct UsageRow {
    pub stored: StoredUsage,
    pub created: String,
    pub description: String,
    pub policy: String,
    pub modified_by: Option<u64>,
}

/// A user usage row with the fields the public [`StoredUserUsage`] leaves out.
#[derive(Clone, Debug)]
pub struct UserUsageRow {
    pub stored: StoredUserUsage,
    pub created: String,
    pub modified: String,
}

/// A site-agent identity.
#[derive(Clone, Debug)]
pub struct Identity {
    pub uuid: String,
    pub offering: String,
    pub name: String,
    pub created_by: Option<String>,
    pub version: Option<String>,
    pub dependencies: Value,
    pub config_file_path: Option<String>,
    pub config_file_content: Option<String>,
    pub last_restarted: Option<String>,
    pub created: String,
    pub modified: String,
}

/// A service registered under an identity.
#[derive(Clone, Debug)]
pub struct Service {
    pub uuid: String,
    pub identity: String,
    pub name: String,
    pub mode: Option<String>,
    pub created: String,
    pub modified: String,
}

/// A processor registered under a service.
#[derive(Clone, Debug)]
pub struct Processor {
    pub uuid: String,
    pub service: String,
    pub name: String,
    pub backend_type: String,
    pub backend_version: Option<String>,
    pub created: String,
    pub modified: String,
}

/// Everything the fake knows.
pub struct State {
    pub tokens: Vec<TokenSetup>,
    pub offering: OfferingSetup,
    pub resources: Vec<ResourceSetup>,
    pub offering_users: Vec<OfferingUserSetup>,
    pub usages: Vec<UsageRow>,
    pub user_usages: Vec<UserUsageRow>,
    pub identities: Vec<Identity>,
    pub services: Vec<Service>,
    pub processors: Vec<Processor>,
    pub legacy_no_bulk_user_usages: bool,
    pub accept_erred: bool,
    pub tz: TimeZone,
    pub fixed_now: Option<Timestamp>,
    counter: u64,
}

impl State {
    /// Builds the state from a setup, checking what the fake relies on.
    pub fn new(setup: Setup) -> Result<State, String> {
        let tz = TimeZone::get(&setup.time_zone)
            .map_err(|e| format!("time_zone {:?}: {e}", setup.time_zone))?;
        let fixed_now = match &setup.now {
            Some(text) => Some(
                text.parse::<Timestamp>()
                    .map_err(|e| format!("now {text:?}: {e}"))?,
            ),
            None => None,
        };
        let mut state = State {
            tokens: setup.tokens,
            offering: setup.offering,
            resources: setup.resources,
            offering_users: setup.offering_users,
            usages: vec![],
            user_usages: vec![],
            identities: vec![],
            services: vec![],
            processors: vec![],
            legacy_no_bulk_user_usages: setup.legacy_no_bulk_user_usages,
            accept_erred: setup.accept_erred,
            tz,
            fixed_now,
            counter: 0,
        };
        for u in setup.existing_usages {
            let cents = parse_cents(&u.usage)
                .ok_or_else(|| format!("existing usage {:?}: bad usage", u.uuid))?;
            let date = u.date.clone();
            state.usages.push(UsageRow {
                stored: StoredUsage {
                    usage: format_cents(cents),
                    ..u
                },
                created: date,
                description: String::new(),
                policy: "none".into(),
                modified_by: None,
            });
        }
        for u in setup.existing_user_usages {
            if !state
                .usages
                .iter()
                .any(|p| p.stored.uuid == u.component_usage_uuid)
            {
                return Err(format!(
                    "existing user usage {:?}: parent {:?} is not in existing_usages",
                    u.uuid, u.component_usage_uuid
                ));
            }
            let cents = parse_cents(&u.usage)
                .ok_or_else(|| format!("existing user usage {:?}: bad usage", u.uuid))?;
            let now = state.render(state.now());
            state.user_usages.push(UserUsageRow {
                stored: StoredUserUsage {
                    usage: format_cents(cents),
                    ..u
                },
                created: now.clone(),
                modified: now,
            });
        }
        Ok(state)
    }

    /// The server's current instant.
    pub fn now(&self) -> Timestamp {
        self.fixed_now.unwrap_or_else(Timestamp::now)
    }

    /// A new deterministic UUID with this tag that no object uses yet.
    pub fn next_uuid(&mut self, tag: u16) -> String {
        loop {
            self.counter += 1;
            let candidate = det_uuid(tag, self.counter);
            let taken = self.usages.iter().any(|u| u.stored.uuid == candidate)
                || self.user_usages.iter().any(|u| u.stored.uuid == candidate);
            if !taken {
                return candidate;
            }
        }
    }

    /// An instant rendered as DRF does: ISO 8601 in the server zone with a `+HH:MM` offset.
    pub fn render(&self, ts: Timestamp) -> String {
        render_in(&ts.to_zoned(self.tz.clone()))
    }

    /// The billing period (first of the month, server zone) of an instant.
    pub fn billing_period(&self, ts: Timestamp) -> Date {
        ts.to_zoned(self.tz.clone()).date().first_of_month()
    }

    /// The user a token belongs to.
    pub fn user_for_token(&self, key: &str) -> Option<(usize, &TokenSetup)> {
        self.tokens.iter().enumerate().find(|(_, t)| t.token == key)
    }

    /// A resource by (normalised) UUID.
    pub fn resource(&self, uuid: &str) -> Option<&ResourceSetup> {
        self.resources.iter().find(|r| r.uuid == uuid)
    }

    /// The billing type of a component type of the offering.
    pub fn billing_type(&self, component_type: &str) -> Option<&str> {
        self.offering
            .components
            .iter()
            .find(|c| c.type_ == component_type)
            .map(|c| c.billing_type.as_str())
    }

    /// Index of the usage row for (resource, component, period).
    pub fn usage_index(&self, resource: &str, component: &str, period: &str) -> Option<usize> {
        self.usages.iter().position(|u| {
            u.stored.resource_uuid == resource
                && u.stored.component_type == component
                && u.stored.billing_period == period
        })
    }

    /// After user usages changed: a parent whose total is exactly 0 takes the sum of its user
    /// usages (`notes/waldur-api.md` §4.8).
    pub fn sync_zero_total(&mut self, parent_uuid: &str) {
        let Some(parent) = self
            .usages
            .iter_mut()
            .find(|u| u.stored.uuid == parent_uuid)
        else {
            return;
        };
        if parse_cents(&parent.stored.usage) != Some(0) {
            return;
        }
        let sum: i128 = self
            .user_usages
            .iter()
            .filter(|u| u.stored.component_usage_uuid == parent_uuid)
            .filter_map(|u| parse_cents(&u.stored.usage))
            .sum();
        parent.stored.usage = format_cents(sum);
    }
}

/// Renders a zoned instant as `YYYY-MM-DDThh:mm:ss[.ffffff]+HH:MM`.
pub fn render_in(z: &Zoned) -> String {
    let micros = z.subsec_nanosecond() / 1000;
    let frac = if micros > 0 {
        format!(".{micros:06}")
    } else {
        String::new()
    };
    format!(
        "{}{frac}{}",
        z.strftime("%Y-%m-%dT%H:%M:%S"),
        z.strftime("%:z")
    )
}

/// Parses a decimal with at most 2 places (`-?\d{0,18}(\.\d{0,2})?`, at least one digit) into
/// hundredths.
pub fn parse_cents(s: &str) -> Option<i128> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.len() > 18 || frac.len() > 2 || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let hundredths: i128 = format!("{frac:0<2}").parse().ok()?;
    let value = whole * 100 + hundredths;
    Some(if negative { -value } else { value })
}

/// Formats hundredths as a 2-place decimal string, as DRF renders a `DecimalField`.
pub fn format_cents(c: i128) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let a = c.abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

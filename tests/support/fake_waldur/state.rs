//! The fake server's domain model: what Waldur would hold in its database for one offering,
//! plus the clock and time zone used for billing periods (`notes/waldur-api.md` §6).

use std::collections::{HashMap, HashSet};

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
    /// `stored.date` parsed, for ordering.
    pub instant: Timestamp,
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

/// Everything the fake knows. Usage rows are only ever appended, so the indexes (positions in
/// `usages` / `user_usages`) stay valid; they keep a 1,000-resource offering fast.
pub struct State {
    pub tokens: Vec<TokenSetup>,
    pub offering: OfferingSetup,
    pub resources: Vec<ResourceSetup>,
    pub offering_users: Vec<OfferingUserSetup>,
    /// Component usages; add with [`State::push_usage`].
    pub usages: Vec<UsageRow>,
    /// User usages; add with [`State::push_user_usage`].
    pub user_usages: Vec<UserUsageRow>,
    resource_index: HashMap<String, usize>,
    usage_by_key: HashMap<(String, String, String), usize>,
    usage_by_uuid: HashMap<String, usize>,
    user_usage_by_key: HashMap<(String, String), usize>,
    user_usage_by_uuid: HashMap<String, usize>,
    children: HashMap<String, Vec<usize>>,
    usage_order: Option<Vec<usize>>,
    user_usage_order: Option<Vec<usize>>,
    offering_user_uuids: HashSet<String>,
    pub identities: Vec<Identity>,
    pub services: Vec<Service>,
    pub processors: Vec<Processor>,
    pub legacy_no_bulk_user_usages: bool,
    pub accept_erred: bool,
    pub tz: TimeZone,
    pub fixed_now: Option<Timestamp>,
    /// `GET /api/version/` for staff.
    pub server_version: String,
    /// 7.0.x: `date` is ignored.
    pub ignores_date: bool,
    /// The next this many `set_usage` items are stored 1.00 higher than sent (a read-back
    /// mismatch).
    pub tamper_writes: u32,
    /// Fresh roles: non-staff tokens get 403 on usage POSTs.
    pub roles_without_permissions: bool,
    /// Ties of the usage listing break differently on each listing request.
    pub unstable_usage_order: bool,
    /// Unknown paths get Django's HTML 404 page.
    pub html_not_found: bool,
    /// The identity endpoints are unknown paths.
    pub no_agent_identities: bool,
    /// Component-usage listing requests so far (for [`State::unstable_usage_order`]).
    pub usage_listings: u64,
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
        let resource_index = setup
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| (r.uuid.clone(), i))
            .collect();
        let offering_user_uuids = setup
            .offering_users
            .iter()
            .map(|u| u.uuid.clone())
            .collect();
        let mut state = State {
            tokens: setup.tokens,
            offering: setup.offering,
            resources: setup.resources,
            offering_users: setup.offering_users,
            usages: vec![],
            user_usages: vec![],
            resource_index,
            usage_by_key: HashMap::new(),
            usage_by_uuid: HashMap::new(),
            user_usage_by_key: HashMap::new(),
            user_usage_by_uuid: HashMap::new(),
            children: HashMap::new(),
            usage_order: None,
            user_usage_order: None,
            offering_user_uuids,
            identities: vec![],
            services: vec![],
            processors: vec![],
            legacy_no_bulk_user_usages: setup.legacy_no_bulk_user_usages,
            accept_erred: setup.accept_erred,
            tz,
            fixed_now,
            server_version: setup.version,
            ignores_date: setup.ignores_date,
            tamper_writes: 0,
            roles_without_permissions: setup.roles_without_permissions,
            unstable_usage_order: setup.unstable_usage_order,
            html_not_found: setup.html_not_found,
            no_agent_identities: setup.no_agent_identities,
            usage_listings: 0,
            counter: 0,
        };
        for u in setup.existing_usages {
            let cents = parse_cents(&u.usage)
                .ok_or_else(|| format!("existing usage {:?}: bad usage", u.uuid))?;
            let date = u.date.clone();
            let instant = date
                .parse::<Timestamp>()
                .map_err(|e| format!("existing usage {:?}: date {date:?}: {e}", u.uuid))?;
            state.push_usage(UsageRow {
                stored: StoredUsage {
                    usage: format_cents(cents),
                    ..u
                },
                instant,
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
            state.push_user_usage(UserUsageRow {
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
            let taken = self.usage_by_uuid.contains_key(&candidate)
                || self.user_usage_by_uuid.contains_key(&candidate);
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
        self.resource_index.get(uuid).map(|&i| &self.resources[i])
    }

    /// A resource, mutable (its state may change).
    pub fn resource_mut(&mut self, uuid: &str) -> Option<&mut ResourceSetup> {
        self.resource_index
            .get(uuid)
            .map(|&i| &mut self.resources[i])
    }

    /// Whether an offering user with this UUID exists.
    pub fn has_offering_user(&self, uuid: &str) -> bool {
        self.offering_user_uuids.contains(uuid)
    }

    /// Forgets the cached list orders; call after changing a usage row's date.
    pub fn invalidate_orders(&mut self) {
        self.usage_order = None;
        self.user_usage_order = None;
    }

    /// Positions of all usages in the list endpoint's default order `-date, component type`
    /// (`notes/waldur-api.md` §1.5), then UUID. Cached until the next write.
    pub fn usage_order(&mut self) -> Vec<usize> {
        if self.usage_order.is_none() {
            let mut order: Vec<usize> = (0..self.usages.len()).collect();
            let rows = &self.usages;
            order.sort_by_cached_key(|&i| {
                let s = &rows[i].stored;
                (
                    std::cmp::Reverse(rows[i].instant),
                    s.component_type.as_str(),
                    s.uuid.as_str(),
                )
            });
            self.usage_order = Some(order);
        }
        self.usage_order.clone().unwrap_or_default()
    }

    /// The order of the next component-usage listing: [`State::usage_order`], except that with
    /// [`State::unstable_usage_order`] every second listing request breaks ties by descending
    /// UUID instead (what a database may do when the ordering leaves ties).
    pub fn listing_usage_order(&mut self) -> Vec<usize> {
        let order = self.usage_order();
        if !self.unstable_usage_order {
            return order;
        }
        self.usage_listings += 1;
        if self.usage_listings % 2 == 1 {
            return order;
        }
        let mut order = order;
        let rows = &self.usages;
        order.sort_by_cached_key(|&i| {
            let s = &rows[i].stored;
            (
                std::cmp::Reverse(rows[i].instant),
                s.component_type.clone(),
                std::cmp::Reverse(s.uuid.clone()),
            )
        });
        order
    }

    /// Positions of all user usages in the default order `-component_usage.date, component
    /// type`, then username and UUID. Cached until the next write.
    pub fn user_usage_order(&mut self) -> Vec<usize> {
        if self.user_usage_order.is_none() {
            let mut order: Vec<usize> = (0..self.user_usages.len()).collect();
            let rows = &self.user_usages;
            let parent_date = |parent: &str| {
                self.usage_by_uuid
                    .get(parent)
                    .map_or(Timestamp::UNIX_EPOCH, |&p| self.usages[p].instant)
            };
            order.sort_by_cached_key(|&i| {
                let s = &rows[i].stored;
                (
                    std::cmp::Reverse(parent_date(&s.component_usage_uuid)),
                    s.component_type.as_str(),
                    s.username.as_str(),
                    s.uuid.as_str(),
                )
            });
            self.user_usage_order = Some(order);
        }
        self.user_usage_order.clone().unwrap_or_default()
    }

    /// Appends a component usage (its key and UUID must be new).
    pub fn push_usage(&mut self, row: UsageRow) {
        self.invalidate_orders();
        let s = &row.stored;
        let key = (
            s.resource_uuid.clone(),
            s.component_type.clone(),
            s.billing_period.clone(),
        );
        self.usage_by_key.insert(key, self.usages.len());
        self.usage_by_uuid.insert(s.uuid.clone(), self.usages.len());
        self.usages.push(row);
    }

    /// Appends a user usage (its key and UUID must be new).
    pub fn push_user_usage(&mut self, row: UserUsageRow) {
        self.invalidate_orders();
        let s = &row.stored;
        let i = self.user_usages.len();
        self.user_usage_by_key
            .insert((s.component_usage_uuid.clone(), s.username.clone()), i);
        self.user_usage_by_uuid.insert(s.uuid.clone(), i);
        self.children
            .entry(s.component_usage_uuid.clone())
            .or_default()
            .push(i);
        self.user_usages.push(row);
    }

    /// A component usage by UUID.
    pub fn usage_by_uuid(&self, uuid: &str) -> Option<&UsageRow> {
        self.usage_by_uuid.get(uuid).map(|&i| &self.usages[i])
    }

    /// A user usage by UUID.
    pub fn user_usage_by_uuid(&self, uuid: &str) -> Option<&UserUsageRow> {
        self.user_usage_by_uuid
            .get(uuid)
            .map(|&i| &self.user_usages[i])
    }

    /// Index of the user usage for (component usage, username).
    pub fn user_usage_index(&self, parent: &str, username: &str) -> Option<usize> {
        self.user_usage_by_key
            .get(&(parent.to_string(), username.to_string()))
            .copied()
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
        self.usage_by_key
            .get(&(
                resource.to_string(),
                component.to_string(),
                period.to_string(),
            ))
            .copied()
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

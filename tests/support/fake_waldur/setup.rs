//! The fake server's configuration ([`Setup`]) and the public records of its state
//! ([`StoredUsage`], [`StoredUserUsage`]). All derive serde so the standalone runner
//! (`examples/fake-waldur.rs`) can read a setup from JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A deterministic UUID: 4 hex digits of `tag` then `n` as 28 hex digits.
pub fn det_uuid(tag: u16, n: u64) -> String {
    format!("{tag:04x}{n:028x}")
}

/// UUID tags used by [`Setup::small`] / [`Setup::large`] and for objects the fake creates.
pub mod tags {
    /// Offerings.
    pub const OFFERING: u16 = 0x0ffe;
    /// The provider customer.
    pub const CUSTOMER: u16 = 0xc057;
    /// Resources.
    pub const RESOURCE: u16 = 0xa110;
    /// Offering users.
    pub const OFFERING_USER: u16 = 0x05e5;
    /// Users (token owners and offering users' Waldur accounts).
    pub const USER: u16 = 0x0001;
    /// Offering components.
    pub const COMPONENT: u16 = 0xc0de;
    /// Component usages created by the fake.
    pub const COMPONENT_USAGE: u16 = 0xcc00;
    /// Component user usages created by the fake.
    pub const USER_USAGE: u16 = 0xcd00;
    /// Agent identities, services, processors created by the fake.
    pub const IDENTITY: u16 = 0x1de0;
    /// Agent services.
    pub const SERVICE: u16 = 0x5e70;
    /// Agent processors.
    pub const PROCESSOR: u16 = 0x9c00;
    /// The service provider record, the consumer project and customer.
    pub const MISC: u16 = 0x3150;
}

/// The staff token of [`Setup::small`] and [`Setup::large`].
pub const STAFF_TOKEN: &str = "57aff0000000000000000000000000000000c0de";
/// The service-provider (offering manager) token of [`Setup::small`] and [`Setup::large`].
pub const PROVIDER_TOKEN: &str = "900d0000000000000000000000000000000c0de1";

/// An API token and the user it belongs to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenSetup {
    /// The key sent as `Authorization: Token <key>`.
    pub token: String,
    /// The Waldur username of the token's owner.
    pub username: String,
    /// Staff users may backfill past periods and see `/api/version/`. Non-staff tokens act
    /// as the offering's service provider.
    #[serde(default)]
    pub is_staff: bool,
}

/// One offering component.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComponentSetup {
    /// The component type (key in usage reports), e.g. `cpu`, `gres/gpu`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `usage`, `limit`, `one`, `fixed` or `few`.
    #[serde(default = "usage_billing")]
    pub billing_type: String,
    /// Display unit, e.g. `k-Hours`.
    #[serde(default)]
    pub measured_unit: String,
    /// Waldur's unit factor (informational).
    #[serde(default = "one")]
    pub unit_factor: u64,
}

fn usage_billing() -> String {
    "usage".into()
}

fn one() -> u64 {
    1
}

/// The one offering the fake serves.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OfferingSetup {
    /// Offering UUID (32 hex).
    pub uuid: String,
    /// Offering name.
    pub name: String,
    /// The provider customer's UUID.
    pub customer_uuid: String,
    /// Components, in display order.
    pub components: Vec<ComponentSetup>,
}

/// One resource (an allocation; `backend_id` is the SLURM account).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceSetup {
    /// Resource UUID (32 hex).
    pub uuid: String,
    /// Display name.
    pub name: String,
    /// The SLURM account.
    pub backend_id: String,
    /// `Creating`, `OK`, `Erred`, `Updating`, `Terminating` or `Terminated`.
    #[serde(default = "ok_state")]
    pub state: String,
}

fn ok_state() -> String {
    "OK".into()
}

/// One offering user (a cluster account of a Waldur user).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OfferingUserSetup {
    /// Offering-user UUID (32 hex).
    pub uuid: String,
    /// The cluster username.
    pub username: String,
}

/// A component usage row: the month's total of one component of one resource.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredUsage {
    /// ComponentUsage UUID (stable across updates).
    pub uuid: String,
    /// The resource.
    pub resource_uuid: String,
    /// The component type.
    pub component_type: String,
    /// First day of the billing month, `YYYY-MM-01`.
    pub billing_period: String,
    /// The value as Waldur renders it: a decimal string with 2 places, e.g. `"12.30"`.
    pub usage: String,
    /// When it was reported (the `date` sent, or the server's now), RFC 3339 in the server zone.
    pub date: String,
}

/// A per-user usage row under a component usage.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredUserUsage {
    /// ComponentUserUsage UUID.
    pub uuid: String,
    /// The parent ComponentUsage.
    pub component_usage_uuid: String,
    /// The parent's resource.
    pub resource_uuid: String,
    /// The parent's component type.
    pub component_type: String,
    /// The parent's billing period, `YYYY-MM-01`.
    pub billing_period: String,
    /// The cluster username (the upsert key).
    pub username: String,
    /// Decimal string with 2 places.
    pub usage: String,
    /// Offering-user URL, when one was linked.
    #[serde(default)]
    pub user: Option<String>,
}

/// Everything the fake starts with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Setup {
    /// Accepted tokens.
    pub tokens: Vec<TokenSetup>,
    /// The offering.
    pub offering: OfferingSetup,
    /// Its resources, in the order lists return them.
    pub resources: Vec<ResourceSetup>,
    /// Its offering users, in the order lists return them.
    pub offering_users: Vec<OfferingUserSetup>,
    /// Pre-seeded component usages.
    pub existing_usages: Vec<StoredUsage>,
    /// Pre-seeded user usages (their parents must be in `existing_usages`).
    pub existing_user_usages: Vec<StoredUserUsage>,
    /// Behave like a Waldur older than 8.0.5: `set_user_usages` answers 404.
    pub legacy_no_bulk_user_usages: bool,
    /// Accept usage for Erred resources (default: 400, as the last readable server code).
    pub accept_erred: bool,
    /// Added to every request. In JSON: milliseconds.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// The server's "now" (RFC 3339); `None` uses the real clock.
    pub now: Option<String>,
    /// The server `TIME_ZONE` (IANA) in which billing months are computed.
    pub time_zone: String,
    /// What `GET /api/version/` answers to staff.
    pub version: String,
    /// Behave like Waldur 7.0.x: `date` in the usage POSTs is accepted and ignored, and every
    /// row goes to the server's current month (notes/waldur-7.0.md). Use with `version`
    /// `7.0.7`, or with another version to model a server that lies about itself.
    pub ignores_date: bool,
    /// Behave like a freshly installed Waldur 7.0.7 whose roles have no permissions yet
    /// (notes/waldur-7.0.md, "Roles and tokens"): every non-staff token reads as usual, but
    /// each usage POST answers 403 `{"detail": "You do not have permission to perform this
    /// action."}` after validating its body, and stores nothing.
    pub roles_without_permissions: bool,
    /// Break ties of the component-usage listing's default ordering (`-date, component.type`)
    /// differently on each listing request, alternating ascending and descending UUID, as a
    /// database may: pages of one listing then overlap and miss rows.
    pub unstable_usage_order: bool,
    /// Answer unknown paths with Django's HTML "Not Found" page instead of DRF's JSON, as a
    /// Waldur 7.0.7 does (notes/waldur-7.0.md, "Endpoints and filters").
    pub html_not_found: bool,
    /// The site-agent identity endpoints do not exist: their paths are unknown (404).
    pub no_agent_identities: bool,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            tokens: vec![],
            offering: OfferingSetup {
                uuid: det_uuid(tags::OFFERING, 1),
                name: "HPC1 SLURM cluster".into(),
                customer_uuid: det_uuid(tags::CUSTOMER, 1),
                components: vec![],
            },
            resources: vec![],
            offering_users: vec![],
            existing_usages: vec![],
            existing_user_usages: vec![],
            legacy_no_bulk_user_usages: false,
            accept_erred: false,
            latency: Duration::ZERO,
            now: None,
            time_zone: "UTC".into(),
            version: "8.1.3".into(),
            ignores_date: false,
            roles_without_permissions: false,
            unstable_usage_order: false,
            html_not_found: false,
            no_agent_identities: false,
        }
    }
}

fn component(type_: &str, measured_unit: &str, unit_factor: u64) -> ComponentSetup {
    ComponentSetup {
        type_: type_.into(),
        billing_type: "usage".into(),
        measured_unit: measured_unit.into(),
        unit_factor,
    }
}

fn standard_tokens() -> Vec<TokenSetup> {
    vec![
        TokenSetup {
            token: STAFF_TOKEN.into(),
            username: "staff".into(),
            is_staff: true,
        },
        TokenSetup {
            token: PROVIDER_TOKEN.into(),
            username: "slurm-agent-hpc1".into(),
            is_staff: false,
        },
    ]
}

fn standard_components() -> Vec<ComponentSetup> {
    // Units and factors as in the seed guide: CPU k-Hours, memory GB-Hours, GPU hours.
    vec![
        component("cpu", "k-Hours", 60000),
        component("mem", "gb-Hours", 61440),
        component("gres/gpu", "gpu-Hours", 60),
    ]
}

impl Setup {
    /// This setup as a Waldur 7.0.7 that ignores `date`.
    pub fn waldur_7_0(mut self) -> Setup {
        self.version = "7.0.7".into();
        self.ignores_date = true;
        self.html_not_found = true;
        self
    }

    /// This setup without the site-agent identity endpoints (their paths answer 404).
    pub fn without_agent_identities(mut self) -> Setup {
        self.no_agent_identities = true;
        self
    }

    /// This setup with roles that carry no permissions: non-staff tokens can read but get 403
    /// on every usage POST (see [`Setup::roles_without_permissions`]).
    pub fn without_role_permissions(mut self) -> Setup {
        self.roles_without_permissions = true;
        self
    }

    /// One offering with `cpu`, `mem` and `gres/gpu` usage components, a staff token
    /// ([`STAFF_TOKEN`]) and a provider token ([`PROVIDER_TOKEN`]), resources `hpc_alloc1`
    /// (OK), `hpc_alloc2` (OK) and `hpc_erred` (Erred), and offering users `hpcuser1`,
    /// `hpcuser2`, `hpcuser3` (the users of the sacct fixtures).
    pub fn small() -> Setup {
        let resources = [
            ("hpc_alloc1", "Allocation 1", "OK"),
            ("hpc_alloc2", "Allocation 2", "OK"),
            ("hpc_erred", "Broken allocation", "Erred"),
        ];
        Setup {
            tokens: standard_tokens(),
            offering: OfferingSetup {
                components: standard_components(),
                ..Setup::default().offering
            },
            resources: resources
                .iter()
                .enumerate()
                .map(|(i, (backend_id, name, state))| ResourceSetup {
                    uuid: det_uuid(tags::RESOURCE, i as u64 + 1),
                    name: (*name).into(),
                    backend_id: (*backend_id).into(),
                    state: (*state).into(),
                })
                .collect(),
            offering_users: (1..=3)
                .map(|i| OfferingUserSetup {
                    uuid: det_uuid(tags::OFFERING_USER, i),
                    username: format!("hpcuser{i}"),
                })
                .collect(),
            ..Setup::default()
        }
    }

    /// The offering of `sample/waldur-site-agent-config.yaml` (its UUID and name), with the
    /// tokens and components of [`Setup::small`], a resource for each allocation of
    /// `sample/sacct-2024-03.txt` (`physics` lies outside the `hpc_` prefix and has none) and
    /// its users as offering users. `shell/demo --against-fake` runs a cycle against it.
    pub fn sample() -> Setup {
        let allocations = ["hpc_astro", "hpc_bio", "hpc_chem", "hpc_ml"];
        let users = [
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
        ];
        Setup {
            offering: OfferingSetup {
                uuid: "d629d5e45567425da9cdbdc1af67b32c".into(),
                name: "Example SLURM Offering".into(),
                ..Setup::small().offering
            },
            resources: allocations
                .iter()
                .zip(1..)
                .map(|(backend_id, i)| ResourceSetup {
                    uuid: det_uuid(tags::RESOURCE, i),
                    name: format!("Allocation {backend_id}"),
                    backend_id: (*backend_id).into(),
                    state: "OK".into(),
                })
                .collect(),
            offering_users: users
                .iter()
                .zip(1..)
                .map(|(username, i)| OfferingUserSetup {
                    uuid: det_uuid(tags::OFFERING_USER, i),
                    username: (*username).into(),
                })
                .collect(),
            ..Setup::small()
        }
    }

    /// An offering with the same tokens and components as [`Setup::small`], `resources`
    /// OK resources `hpc_alloc_00001`... and `users` offering users `user00001`...
    pub fn large(resources: usize, users: usize) -> Setup {
        Setup {
            resources: (1..=resources as u64)
                .map(|i| ResourceSetup {
                    uuid: det_uuid(tags::RESOURCE, i),
                    name: format!("Allocation {i}"),
                    backend_id: format!("hpc_alloc_{i:05}"),
                    state: "OK".into(),
                })
                .collect(),
            offering_users: (1..=users as u64)
                .map(|i| OfferingUserSetup {
                    uuid: det_uuid(tags::OFFERING_USER, i),
                    username: format!("user{i:05}"),
                })
                .collect(),
            ..Setup::small()
        }
    }

    /// The UUID of the resource with this `backend_id` (panics when there is none: a test bug).
    pub fn resource_uuid(&self, backend_id: &str) -> String {
        self.resources
            .iter()
            .find(|r| r.backend_id == backend_id)
            .map(|r| r.uuid.clone())
            .unwrap_or_else(|| panic!("no resource with backend_id {backend_id}"))
    }
}

/// `Duration` as integer milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

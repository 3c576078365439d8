//! The domain types read from the config (offerings, components, secrets, OIDC settings) and
//! picking an offering by name or UUID. The factors are [`Factor`]s, which live with the other
//! exact decimals in [`crate::decimal`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::{ConfigError, Factor};

/// A secret string (API token, OIDC client secret). Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which formula slurm-usage uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    /// AllocTRES x ElapsedRaw with `--duplicates`: what was really allocated.
    #[default]
    Exact,
    /// ReqTRES x Elapsed without `--duplicates`: the Python agent's numbers.
    Reference,
}

impl Compat {
    /// Parse `exact` or `reference`.
    pub fn parse(text: &str) -> Option<Compat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "exact" | "alloc" => Some(Compat::Exact),
            "reference" | "python" => Some(Compat::Reference),
            _ => None,
        }
    }
}

/// One `backend_components` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Waldur unit label, e.g. `k-Hours`.
    pub measured_unit: Option<String>,
    /// `usage`, `limit` or `one`; has no effect on reporting.
    pub accounting_type: Option<String>,
    /// Human label.
    pub label: Option<String>,
    /// Divisor from SLURM TRES-minutes to Waldur units (default 1).
    pub unit_factor: Factor,
    /// Whether `unit_factor` was written in the config (mapping mode uses 1 otherwise).
    pub unit_factor_given: bool,
    /// TRES name -> factor, for a component computed from several TRES (mapping mode).
    pub target_components: BTreeMap<String, Factor>,
}

/// `backend_settings` keys used for reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSettings {
    /// Directory holding sacct, sacctmgr and sinfo (default `/usr/bin`).
    pub slurm_bin_path: PathBuf,
    /// Whether `slurm_bin_path` was written in the config (else tools are looked up on `PATH`).
    pub slurm_bin_path_given: bool,
    /// Cluster to query (`--clusters`), if set.
    pub cluster_name: Option<String>,
    /// Prefix of the SLURM accounts that are Waldur allocations (account discovery).
    pub allocation_prefix: Option<String>,
    /// Formula to use (our extension; default exact).
    pub compat: Compat,
}

/// One entry of `offerings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offering {
    /// Position in the `offerings` list.
    pub index: usize,
    /// `name`.
    pub name: String,
    /// `waldur_api_url`, as written.
    pub waldur_api_url: String,
    /// `waldur_offering_uuid`, as written.
    pub waldur_offering_uuid: String,
    /// `waldur_api_token`, if the config holds one.
    pub waldur_api_token: Option<Secret>,
    /// OIDC client credentials (`oidc_token_url`, `oidc_client_id`, `oidc_client_secret`).
    pub oidc: Option<OidcSettings>,
    /// `verify_ssl` (default true).
    pub verify_ssl: bool,
    /// The Waldur server's time zone: the offering's `waldur_timezone`, else the top-level
    /// one, else `UTC`.
    pub waldur_timezone: String,
    /// `backend_settings`.
    pub backend: BackendSettings,
    /// `backend_components`, by name.
    pub components: BTreeMap<String, Component>,
}

/// OIDC client-credentials settings of an offering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Token endpoint.
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from.
    pub file: String,
    /// IANA time zone of the billing months at the site (default `UTC`): which jobs belong
    /// to a month.
    pub timezone: String,
    /// `waldur_timezone`: the Waldur server's `TIME_ZONE` (default `UTC`, Waldur's default),
    /// in which the server decides which month a POST is filed under. An offering may
    /// override it.
    pub waldur_timezone: String,
    /// Months per reporting cycle, current included (default 2, 1..=12).
    pub reporting_periods: u32,
    /// `log_level`, if set.
    pub log_level: Option<String>,
    /// `global_proxy`, if set and not empty.
    pub global_proxy: Option<String>,
    /// `offerings`.
    pub offerings: Vec<Offering>,
    /// Whether the file can be read by group or others (tokens inside would be exposed).
    pub readable_by_others: bool,
}

impl Config {
    /// Pick the offering named by `--offering` (its name, or its UUID with or without dashes, in
    /// any case). Without a selector the config must have exactly one offering.
    pub fn offering(&self, selector: Option<&str>) -> Result<&Offering, ConfigError> {
        let err = |message: String| ConfigError {
            file: self.file.clone(),
            key: "offerings".into(),
            message,
        };
        let names = || {
            self.offerings
                .iter()
                .map(|o| format!("{:?} ({})", o.name, o.waldur_offering_uuid))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match selector {
            None if self.offerings.len() == 1 => Ok(&self.offerings[0]),
            None => Err(err(format!(
                "the config has {} offerings; pick one with --offering NAME|UUID: {}",
                self.offerings.len(),
                names()
            ))),
            Some(sel) => {
                let wanted = normalize_uuid(sel);
                self.offerings
                    .iter()
                    .find(|o| o.name == sel || normalize_uuid(&o.waldur_offering_uuid) == wanted)
                    .ok_or_else(|| {
                        err(format!(
                            "no offering named {sel:?}; the config has: {}",
                            names()
                        ))
                    })
            }
        }
    }
}

/// Lower-case hex without dashes, for comparing UUIDs however they were written.
pub fn normalize_uuid(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

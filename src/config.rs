//! The waldur-site-agent YAML configuration, read unchanged, so a site can point both tools at
//! the same file.
//!
//! Only the keys that matter for usage reporting are modelled; every other key is accepted and
//! ignored (the same file also drives the Python agent's other modes). Errors name the file, the
//! key path and what was expected:
//!
//! ```text
//! /etc/waldur/cfg.yaml: offerings[0].backend_components.cpu.unit_factor: expected a number greater than 0, found -1
//! ```
//!
//! ```
//! use waldur_usage::config::Config;
//!
//! let yaml = r#"
//! timezone: Europe/Tallinn
//! offerings:
//!   - name: HPC
//!     waldur_api_url: https://waldur.example.com/api/
//!     waldur_offering_uuid: 0123456789abcdef0123456789abcdef
//!     backend_settings: { allocation_prefix: hpc_ }
//!     backend_components:
//!       cpu: { measured_unit: k-Hours, unit_factor: 60000, accounting_type: usage, label: CPU }
//! "#;
//! let config = Config::parse(yaml, "example.yaml").unwrap();
//! let offering = config.offering(None).unwrap();
//! assert_eq!(offering.components["cpu"].unit_factor.to_string(), "60000");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_norway::Value;

/// Where the site agent keeps its config; our default too.
pub const DEFAULT_PATH: &str = "/etc/waldur/waldur-site-agent-config.yaml";

/// A configuration problem. Maps to exit status 78 in the binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or a label for in-memory text).
    pub file: String,
    /// Key path such as `offerings[0].waldur_api_url`; empty for whole-file problems.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

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

/// An exact positive decimal from the config (`unit_factor`, `factor`): `mantissa / 10^scale`.
///
/// YAML numbers are read as their decimal text, so `0.1` is exactly one tenth, not the nearest
/// binary float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Factor {
    /// The digits without the decimal point.
    pub mantissa: u128,
    /// How many of them are after the decimal point.
    pub scale: u32,
}

impl Factor {
    /// The factor 1.
    pub const ONE: Factor = Factor {
        mantissa: 1,
        scale: 0,
    };

    /// Parse a plain decimal such as `60000`, `60000.0`, `0.5` or `1e3`; must be greater than 0.
    pub fn parse(text: &str) -> Option<Factor> {
        let text = text.trim();
        let (digits, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let digits = digits.strip_prefix('+').unwrap_or(digits);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut mantissa: u128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(u128::from(b - b'0'))?;
        }
        let mut scale = frac.len() as i64 - i64::from(exponent);
        while scale < 0 {
            mantissa = mantissa.checked_mul(10)?;
            scale += 1;
        }
        let mut scale = u32::try_from(scale).ok()?;
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        if mantissa == 0 || scale > 30 {
            return None;
        }
        Some(Factor { mantissa, scale })
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{int}.{frac}")
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
    /// Read and validate a config file.
    ///
    /// The file must be a regular file of at most [`MAX_CONFIG_BYTES`], that others cannot
    /// write (whoever can write it can point `waldur_api_url` and the token elsewhere).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let file = path.display().to_string();
        let whole = |message: String| ConfigError {
            file: file.clone(),
            key: String::new(),
            message,
        };
        let cannot_read = |e: std::io::Error| whole(format!("cannot read the config file: {e}"));
        let handle = std::fs::File::open(path).map_err(cannot_read)?;
        let meta = handle.metadata().map_err(cannot_read)?;
        if !meta.is_file() {
            return Err(whole(
                "is not a regular file; give the path of the YAML config file".into(),
            ));
        }
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            return Err(whole(format!(
                "anyone can write this file (mode {:04o}), so anyone could send the usage and \
                 the token elsewhere; run: chmod o-w {file}",
                mode & 0o7777
            )));
        }
        if mode & 0o020 != 0 {
            crate::warn!(
                "{file}: the file's group can write it (mode {:04o}); make sure that group is \
                 trusted, or run: chmod g-w {file}",
                mode & 0o7777
            );
        }
        let mut bytes = Vec::new();
        handle
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot_read)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(whole(format!(
                "is larger than {} KiB; a site-agent config is a few KiB",
                MAX_CONFIG_BYTES / 1024
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            whole(format!(
                "is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        let mut config = Config::parse(&text, &file)?;
        config.readable_by_others = mode & 0o044 != 0;
        Ok(config)
    }

    /// Parse and validate config text; `file` labels error messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        if let Some(line) = too_deep(text) {
            return Err(ConfigError {
                file: file.into(),
                key: String::new(),
                message: format!(
                    "line {line}: brackets nested more than {MAX_FLOW_DEPTH} deep; a site-agent \
                     config never needs that"
                ),
            });
        }
        let root: Value = serde_norway::from_str(text).map_err(|e| ConfigError {
            file: file.into(),
            key: String::new(),
            message: format!("not valid YAML: {e}"),
        })?;
        let root = Node {
            file,
            path: String::new(),
            value: &root,
        };
        root.expect_mapping()?;
        let timezone = zone_key(&root, "timezone")?.unwrap_or_else(|| "UTC".to_string());
        let waldur_timezone =
            zone_key(&root, "waldur_timezone")?.unwrap_or_else(|| "UTC".to_string());
        let reporting_periods = match root.get("reporting_periods") {
            Some(n) => {
                let v = n.integer()?;
                if !(1..=12).contains(&v) {
                    return Err(n.err(&format!("expected a whole number from 1 to 12, found {v}")));
                }
                v as u32
            }
            None => 2,
        };
        let log_level = root.get("log_level").map(|n| n.string()).transpose()?;
        let global_proxy = root
            .get("global_proxy")
            .map(|n| n.string())
            .transpose()?
            .filter(|p| !p.trim().is_empty());
        let top_compat = root.get("compat").map(|n| n.compat()).transpose()?;
        let list = root.get("offerings").ok_or_else(|| {
            root.child_err(
                "offerings",
                "missing: the config must list at least one offering",
            )
        })?;
        let items = list.sequence()?;
        if items.is_empty() {
            return Err(list.err("expected at least one offering, found an empty list"));
        }
        let offerings = items
            .iter()
            .enumerate()
            .map(|(i, _)| parse_offering(i, &list, top_compat, &waldur_timezone))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, o) in offerings.iter().enumerate() {
            if let Some(j) = offerings[..i].iter().position(|p| p.name == o.name) {
                return Err(ConfigError {
                    file: file.into(),
                    key: format!("offerings[{i}].name"),
                    message: format!(
                        "{:?} is also the name of offerings[{j}]; --offering NAME could not tell \
                         them apart, so give each offering its own name",
                        o.name
                    ),
                });
            }
        }
        Ok(Config {
            file: file.into(),
            timezone,
            waldur_timezone,
            reporting_periods,
            log_level,
            global_proxy,
            offerings,
            readable_by_others: false,
        })
    }

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

/// The largest config file read (1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Deepest nesting of YAML flow collections (`[`, `{`) accepted.
pub const MAX_FLOW_DEPTH: usize = 64;

/// The line where flow brackets first nest deeper than [`MAX_FLOW_DEPTH`], outside quotes and
/// comments. The YAML parser's time grows badly with such nesting; nothing real needs it.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '#') if previous.is_whitespace() => break,
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some(n + 1);
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            previous = c;
        }
    }
    None
}

/// Lower-case hex without dashes, for comparing UUIDs however they were written.
pub fn normalize_uuid(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// An optional IANA time zone under `key`.
fn zone_key(node: &Node<'_>, key: &str) -> Result<Option<String>, ConfigError> {
    let Some(n) = node.get(key) else {
        return Ok(None);
    };
    let zone = n.string()?;
    if zone.trim().is_empty() {
        return Err(node.child_err(
            key,
            "expected an IANA time zone such as Europe/Tallinn, found an empty string",
        ));
    }
    if jiff::tz::TimeZone::get(&zone).is_err() {
        return Err(node.child_err(
            key,
            &format!("unknown time zone {zone:?} (expected an IANA name such as Europe/Tallinn; is tzdata installed?)"),
        ));
    }
    Ok(Some(zone))
}

fn parse_offering(
    index: usize,
    list: &Node<'_>,
    top_compat: Option<Compat>,
    top_waldur_timezone: &str,
) -> Result<Offering, ConfigError> {
    let node = list.at_index(index);
    node.expect_mapping()?;
    let waldur_timezone =
        zone_key(&node, "waldur_timezone")?.unwrap_or_else(|| top_waldur_timezone.to_string());
    let required = |key: &str| -> Result<String, ConfigError> {
        let n = node
            .get(key)
            .ok_or_else(|| node.child_err(key, "missing (required for reporting)"))?;
        let s = n.string()?;
        if s.trim().is_empty() {
            return Err(n.err("expected a value, found an empty string"));
        }
        Ok(s)
    };
    let name = required("name")?;
    let waldur_api_url = required("waldur_api_url")?;
    if !(waldur_api_url.starts_with("http://") || waldur_api_url.starts_with("https://")) {
        return Err(node.child_err(
            "waldur_api_url",
            &format!(
                "expected a URL starting with https:// (or http://), found {waldur_api_url:?}"
            ),
        ));
    }
    let waldur_offering_uuid = required("waldur_offering_uuid")?;
    let hex = normalize_uuid(&waldur_offering_uuid);
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(node.child_err(
            "waldur_offering_uuid",
            &format!(
                "expected a UUID (32 hex digits, dashes allowed), found {waldur_offering_uuid:?}"
            ),
        ));
    }
    let waldur_api_token = node
        .get("waldur_api_token")
        .map(|n| n.string())
        .transpose()?
        .filter(|t| !t.trim().is_empty())
        .map(|t| Secret::new(t.trim()));
    let oidc_keys = ["oidc_token_url", "oidc_client_id", "oidc_client_secret"];
    let oidc_values = oidc_keys
        .iter()
        .map(|k| node.get(k).map(|n| n.string()).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let oidc = match oidc_values.as_slice() {
        [Some(url), Some(id), Some(secret)] if !url.is_empty() => Some(OidcSettings {
            token_url: url.clone(),
            client_id: id.clone(),
            client_secret: Secret::new(secret.clone()),
        }),
        [None, None, None] => None,
        _ => {
            return Err(node.child_err(
                "oidc_token_url",
                "OIDC needs all three of oidc_token_url, oidc_client_id and oidc_client_secret",
            ));
        }
    };
    let verify_ssl = match node.get("verify_ssl") {
        Some(n) => n.boolean()?,
        None => true,
    };
    let backend = match node.get("backend_settings") {
        Some(n) => parse_backend(&n, top_compat)?,
        None => BackendSettings {
            slurm_bin_path: PathBuf::from("/usr/bin"),
            slurm_bin_path_given: false,
            cluster_name: None,
            allocation_prefix: None,
            compat: top_compat.unwrap_or_default(),
        },
    };
    let components_node = node.get("backend_components").ok_or_else(|| {
        node.child_err(
            "backend_components",
            "missing: list the components to report (cpu, mem, ...)",
        )
    })?;
    let mut components = BTreeMap::new();
    for (key, value) in components_node.entries()? {
        let node = components_node.at_key(&key, value);
        let component = parse_component(&node)?;
        check_measures_something(&key, &component, &node)?;
        components.insert(key.clone(), component);
    }
    if components.is_empty() {
        return Err(components_node.err("expected at least one component"));
    }
    Ok(Offering {
        index,
        name,
        waldur_api_url,
        waldur_offering_uuid,
        waldur_api_token,
        oidc,
        verify_ssl,
        waldur_timezone,
        backend,
        components,
    })
}

fn parse_backend(
    node: &Node<'_>,
    top_compat: Option<Compat>,
) -> Result<BackendSettings, ConfigError> {
    node.expect_mapping()?;
    let opt = |key: &str| -> Result<Option<String>, ConfigError> {
        Ok(node
            .get(key)
            .map(|n| n.string())
            .transpose()?
            .filter(|s| !s.trim().is_empty()))
    };
    let compat = match node.get("compat") {
        Some(n) => n.compat()?,
        None => top_compat.unwrap_or_default(),
    };
    let bin_path = opt("slurm_bin_path")?;
    Ok(BackendSettings {
        slurm_bin_path_given: bin_path.is_some(),
        slurm_bin_path: PathBuf::from(bin_path.unwrap_or_else(|| "/usr/bin".into())),
        cluster_name: opt("cluster_name")?,
        allocation_prefix: opt("allocation_prefix")?,
        compat,
    })
}

/// Whether SLURM can report a TRES of this name in AllocTRES: the built-in types, or a
/// `gres/`, `license/`, `fs/`, `bb/` or `ic/` type with a name.
///
/// ```
/// use waldur_usage::config::is_measurable_tres;
/// assert!(is_measurable_tres("gres/gpu") && is_measurable_tres("mem"));
/// assert!(!is_measurable_tres("gpu") && !is_measurable_tres("gres/"));
/// ```
pub fn is_measurable_tres(name: &str) -> bool {
    const BUILT_IN: [&str; 7] = ["cpu", "mem", "node", "billing", "energy", "vmem", "pages"];
    const TYPED: [&str; 5] = ["gres/", "license/", "fs/", "bb/", "ic/"];
    BUILT_IN.contains(&name)
        || TYPED
            .iter()
            .any(|t| name.strip_prefix(t).is_some_and(|rest| !rest.is_empty()))
}

impl Offering {
    /// The SLURM TRES that the offering's usage components read: each component's own name,
    /// or the TRES of its `target_components`; only those SLURM can report
    /// ([`is_measurable_tres`]). Sorted, each once.
    pub fn tres_read(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .components
            .iter()
            .filter(|(_, c)| c.accounting_type.as_deref().is_none_or(|t| t == "usage"))
            .flat_map(|(key, c)| {
                if c.target_components.is_empty() {
                    vec![key.clone()]
                } else {
                    c.target_components.keys().cloned().collect()
                }
            })
            .filter(|t| is_measurable_tres(t))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// A usage component must read at least one TRES that SLURM reports; otherwise it would bill
/// 0.00 for every resource, silently. (A `limit` component is not measured, so not checked.)
fn check_measures_something(
    key: &str,
    component: &Component,
    node: &Node<'_>,
) -> Result<(), ConfigError> {
    if component
        .accounting_type
        .as_deref()
        .is_some_and(|t| t != "usage")
    {
        return Ok(());
    }
    let hint = |name: &str| {
        if is_measurable_tres(&format!("gres/{name}")) && !name.contains('/') {
            format!(" (did you mean gres/{name}?)")
        } else {
            String::new()
        }
    };
    if node.get("target_components").is_some() && component.target_components.is_empty() {
        return Err(node.child_err(
            "target_components",
            "names no TRES, so this component would be 0.00 for every resource: list the TRES \
             it adds up, or remove target_components to read the TRES of the same name",
        ));
    }
    if component.target_components.is_empty() {
        if !is_measurable_tres(key) {
            return Err(node.err(&format!(
                "SLURM reports no TRES named {key:?}, so this component would be 0.00 for every \
                 resource{}: name it after a TRES (cpu, mem, node, billing, gres/NAME, \
                 license/NAME, ...) or map it with target_components",
                hint(key)
            )));
        }
        return Ok(());
    }
    // A mapping may add a TRES this SLURM does not have (the reference agent's own example adds
    // `gpu`), but at least one of its sources must be something SLURM reports.
    if !component
        .target_components
        .keys()
        .any(|t| is_measurable_tres(t))
    {
        let names: Vec<String> = component
            .target_components
            .keys()
            .map(|t| format!("{t:?}{}", hint(t)))
            .collect();
        return Err(node.child_err(
            "target_components",
            &format!(
                "names no TRES that SLURM reports ({}), so this component would be 0.00 for \
                 every resource: use TRES names (cpu, mem, node, billing, gres/NAME, \
                 license/NAME, ...)",
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

fn parse_component(node: &Node<'_>) -> Result<Component, ConfigError> {
    node.expect_mapping()?;
    let text = |key: &str| node.get(key).map(|n| n.string()).transpose();
    let (unit_factor, unit_factor_given) = match node.get("unit_factor") {
        Some(n) => (n.factor()?, true),
        None => (Factor::ONE, false),
    };
    let mut target_components = BTreeMap::new();
    if let Some(targets) = node.get("target_components") {
        for (tres, spec) in targets.entries()? {
            let spec = targets.at_key(&tres, spec);
            let factor = match spec.get("factor") {
                Some(f) => f.factor()?,
                None if spec.value.is_null() => Factor::ONE,
                None => {
                    spec.expect_mapping()?;
                    Factor::ONE
                }
            };
            target_components.insert(tres, factor);
        }
    }
    Ok(Component {
        measured_unit: text("measured_unit")?,
        accounting_type: text("accounting_type")?,
        label: text("label")?,
        unit_factor,
        unit_factor_given,
        target_components,
    })
}

/// A YAML value together with its key path, for error messages.
struct Node<'a> {
    file: &'a str,
    path: String,
    value: &'a Value,
}

impl<'a> Node<'a> {
    fn err(&self, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            key: if self.path.is_empty() {
                "(top level)".into()
            } else {
                self.path.clone()
            },
            message: message.into(),
        }
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn child_err(&self, key: &str, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            key: self.child_path(key),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        match self.value {
            Value::Null => "nothing (null)".into(),
            Value::Bool(b) => format!("{b}"),
            Value::Number(n) => format!("{n}"),
            Value::String(s) => format!("{s:?}"),
            Value::Sequence(_) => "a list".into(),
            Value::Mapping(_) => "a mapping".into(),
            Value::Tagged(_) => "a tagged value".into(),
        }
    }

    fn expect_mapping(&self) -> Result<(), ConfigError> {
        match self.value {
            Value::Mapping(_) => Ok(()),
            _ => Err(self.err(&format!(
                "expected a mapping of keys, found {}",
                self.describe()
            ))),
        }
    }

    fn get(&self, key: &str) -> Option<Node<'a>> {
        let Value::Mapping(map) = self.value else {
            return None;
        };
        map.get(key).map(|value| Node {
            file: self.file,
            path: self.child_path(key),
            value,
        })
    }

    fn at_index(&self, i: usize) -> Node<'a> {
        let Value::Sequence(seq) = self.value else {
            unreachable!("checked by sequence()")
        };
        Node {
            file: self.file,
            path: format!("{}[{i}]", self.path),
            value: &seq[i],
        }
    }

    fn at_key(&self, key: &str, value: &'a Value) -> Node<'a> {
        Node {
            file: self.file,
            path: self.child_path(key),
            value,
        }
    }

    fn sequence(&self) -> Result<&'a Vec<Value>, ConfigError> {
        match self.value {
            Value::Sequence(s) => Ok(s),
            _ => Err(self.err(&format!("expected a list, found {}", self.describe()))),
        }
    }

    fn entries(&self) -> Result<Vec<(String, &'a Value)>, ConfigError> {
        match self.value {
            Value::Mapping(map) => map
                .iter()
                .map(|(k, v)| match k {
                    Value::String(s) => Ok((s.clone(), v)),
                    Value::Number(n) => Ok((n.to_string(), v)),
                    _ => Err(self.err("expected string keys")),
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => Err(self.err(&format!(
                "expected a mapping of keys, found {}",
                self.describe()
            ))),
        }
    }

    fn string(&self) -> Result<String, ConfigError> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.err(&format!("expected a string, found {}", self.describe()))),
        }
    }

    fn integer(&self) -> Result<i64, ConfigError> {
        match self.value {
            Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or_default()),
            Value::String(s) if s.trim().parse::<i64>().is_ok() => {
                Ok(s.trim().parse().unwrap_or_default())
            }
            _ => Err(self.err(&format!(
                "expected a whole number, found {}",
                self.describe()
            ))),
        }
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(true),
                "false" | "no" | "0" | "off" => Ok(false),
                _ => Err(self.err(&format!(
                    "expected true or false, found {}",
                    self.describe()
                ))),
            },
            _ => Err(self.err(&format!(
                "expected true or false, found {}",
                self.describe()
            ))),
        }
    }

    fn factor(&self) -> Result<Factor, ConfigError> {
        let text = match self.value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        Factor::parse(&text).ok_or_else(|| {
            self.err(&format!(
                "expected a number greater than 0, found {}",
                self.describe()
            ))
        })
    }

    fn compat(&self) -> Result<Compat, ConfigError> {
        let s = self.string()?;
        Compat::parse(&s)
            .ok_or_else(|| self.err(&format!("expected `exact` or `reference`, found {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
timezone: "Europe/Tallinn"
log_level: INFO
sentry_dsn: null
offerings:
  - name: "Example SLURM Offering"
    waldur_api_url: "https://waldur.example.com/api/"
    waldur_api_token: "fake-token-for-tests"
    waldur_offering_uuid: "d629d5e45567425da9cdbdc1af67b32c"
    backend_type: "slurm"
    order_processing_backend: "slurm"
    reporting_backend: "slurm"
    backend_settings:
      default_account: "root"
      customer_prefix: "hpc_"
      project_prefix: "hpc_"
      allocation_prefix: "hpc_"
      qos_downscaled: "limited"
    backend_components:
      cpu:
        limit: 10
        measured_unit: "k-Hours"
        unit_factor: 60000
        accounting_type: "usage"
        label: "CPU"
      mem:
        limit: 10
        measured_unit: "gb-Hours"
        unit_factor: 61440
        accounting_type: "usage"
        label: "RAM"
"#;

    #[test]
    fn reads_the_seed_guide_config_and_ignores_unknown_keys() {
        let c = Config::parse(SEED, "seed.yaml").unwrap();
        assert_eq!(c.timezone, "Europe/Tallinn");
        assert_eq!(c.reporting_periods, 2);
        let o = c.offering(None).unwrap();
        assert_eq!(o.backend.allocation_prefix.as_deref(), Some("hpc_"));
        assert_eq!(o.backend.slurm_bin_path, PathBuf::from("/usr/bin"));
        assert_eq!(
            o.components["mem"].unit_factor,
            Factor {
                mantissa: 61440,
                scale: 0
            }
        );
        assert!(o.verify_ssl);
        assert_eq!(
            format!("{:?}", o.waldur_api_token),
            "Some(Secret(<redacted>))"
        );
    }

    #[test]
    fn errors_name_file_key_path_and_expectation() {
        let bad = SEED.replace("unit_factor: 61440", "unit_factor: -1");
        let e = Config::parse(&bad, "seed.yaml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "seed.yaml: offerings[0].backend_components.mem.unit_factor: expected a number greater than 0, found -1"
        );
        let bad = SEED.replace("Europe/Tallinn", "Europe/Atlantis");
        let e = Config::parse(&bad, "seed.yaml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("seed.yaml: timezone: unknown time zone"),
            "{e}"
        );
        let bad = SEED.replace(
            "    waldur_offering_uuid: \"d629d5e45567425da9cdbdc1af67b32c\"\n",
            "",
        );
        let e = Config::parse(&bad, "seed.yaml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "seed.yaml: offerings[0].waldur_offering_uuid: missing (required for reporting)"
        );
    }

    #[test]
    fn picks_offerings_by_name_or_uuid_in_any_form() {
        let c = Config::parse(SEED, "seed.yaml").unwrap();
        assert!(c.offering(Some("Example SLURM Offering")).is_ok());
        assert!(
            c.offering(Some("D629D5E4-5567-425D-A9CD-BDC1AF67B32C"))
                .is_ok()
        );
        let e = c.offering(Some("other")).unwrap_err();
        assert!(e.to_string().contains("no offering named \"other\""), "{e}");
    }

    #[test]
    fn factors_are_exact_decimals() {
        assert_eq!(
            Factor::parse("60000.0"),
            Some(Factor {
                mantissa: 6,
                scale: 0
            })
            .map(|_| Factor {
                mantissa: 60000,
                scale: 0
            })
        );
        assert_eq!(
            Factor::parse("0.1"),
            Some(Factor {
                mantissa: 1,
                scale: 1
            })
        );
        assert_eq!(
            Factor::parse("1e3"),
            Some(Factor {
                mantissa: 1000,
                scale: 0
            })
        );
        assert_eq!(Factor::parse("2.50").unwrap().to_string(), "2.5");
        assert_eq!(Factor::parse("0.05").unwrap().to_string(), "0.05");
        for bad in ["0", "-1", "", "abc", "0.0", "1.2.3"] {
            assert_eq!(Factor::parse(bad), None, "{bad}");
        }
    }
}

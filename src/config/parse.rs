//! Walking the YAML into the domain types: the top level, offerings, backend settings and
//! components, with the key-by-key checks of their values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_norway::Value;

use super::validate::check_measures_something;
use super::yaml::{MAX_FLOW_DEPTH, Node, too_deep};
use super::{
    BackendSettings, Compat, Component, Config, ConfigError, Factor, Offering, OidcSettings,
    Secret, normalize_uuid,
};

impl Config {
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

/// The walker's readers for the config's own value types.
impl Node<'_> {
    pub(super) fn factor(&self) -> Result<Factor, ConfigError> {
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

    pub(super) fn compat(&self) -> Result<Compat, ConfigError> {
        let s = self.string()?;
        Compat::parse(&s)
            .ok_or_else(|| self.err(&format!("expected `exact` or `reference`, found {s:?}")))
    }
}

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
//!
//! This room owns reading the file and turning it into [`Config`]; it must not know sacct,
//! the conversion arithmetic or the Waldur API. `yaml` is the walker (a value and its key
//! path); `model` the domain types; `parse` maps one onto the other; `validate` checks
//! what a component measures; `file` reads the file from disk.

mod error;
mod file;
mod model;
mod parse;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

/// The config's factors are exact decimals, read by the same reader as amounts.
pub use crate::decimal::Factor;
pub use error::ConfigError;
pub use file::MAX_CONFIG_BYTES;
pub use model::{
    BackendSettings, Compat, Component, Config, Offering, OidcSettings, Secret, normalize_uuid,
};
pub use validate::is_measurable_tres;
pub use yaml::MAX_FLOW_DEPTH;

/// Where the site agent keeps its config; our default too.
pub const DEFAULT_PATH: &str = "/etc/waldur/waldur-site-agent-config.yaml";

//! Unit tests of the config: the seed guide config, path-named errors, offerings, factors.

use super::*;
use std::path::PathBuf;

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

//! Helpers for the waldur-push tests: a fake Waldur with a config and token files pointing at
//! it, a runner for the real binary, and usage-record builders.
//!
//! Every run checks that no token appears in the captured stdout or stderr.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::support::fake_waldur::{
    FakeWaldur, LoggedRequest, PROVIDER_TOKEN, STAFF_TOKEN, Setup, StoredUsage, StoredUserUsage,
    det_uuid,
};
use crate::support::scratch::Scratch;

/// The instant the fake and the tool agree on: March 2024 is the current period.
pub const NOW: &str = "2024-03-20T12:00:00Z";
/// The `date` sent for March: NOW less the 300 s margin.
pub const MARCH_DATE: &str = "2024-03-20T11:55:00Z";

/// A fake Waldur and the files that point the tool at it.
pub struct Env {
    pub fake: FakeWaldur,
    pub setup: Setup,
    pub dir: Scratch,
    pub config: PathBuf,
    pub provider_token: PathBuf,
    pub staff_token: PathBuf,
}

impl Env {
    /// Start the fake with `setup` (its clock set to [`NOW`] unless the setup has one).
    pub fn new(mut setup: Setup) -> Env {
        if setup.now.is_none() {
            setup.now = Some(NOW.into());
        }
        let fake = FakeWaldur::start(setup.clone());
        let dir = Scratch::new("waldur-push");
        let config = dir.write_mode(
            "config.yaml",
            &config_yaml(&fake.base_url(), &setup.offering.uuid),
            0o600,
        );
        let provider_token =
            dir.write_mode("provider-token", &format!("{PROVIDER_TOKEN}\n"), 0o600);
        let staff_token = dir.write_mode("staff-token", &format!("{STAFF_TOKEN}\n"), 0o600);
        Env {
            fake,
            setup,
            dir,
            config,
            provider_token,
            staff_token,
        }
    }

    /// The tool with the config and [`NOW`], and no inherited token variables.
    pub fn command(&self) -> assert_cmd::Command {
        self.command_with(&self.config)
    }

    /// [`Env::command`] with another config file.
    pub fn command_with(&self, config: &Path) -> assert_cmd::Command {
        let mut cmd = self.bare_command(config);
        cmd.args(["--now", NOW]);
        cmd
    }

    /// The tool with a config and no inherited token variables, nothing else.
    pub fn bare_command(&self, config: &Path) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("waldur-push").unwrap();
        cmd.env_remove("WALDUR_API_TOKEN")
            .env("WALDUR_USAGE_ETC_DIR", self.dir.path())
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("WALDUR_SITE_AGENT_LOG_LEVEL")
            .env_remove("JOURNAL_STREAM")
            .args(["-c", config.to_str().unwrap()]);
        cmd
    }

    /// Run with `input` on stdin, the provider token file (unless `args` names a token), and
    /// unless `args` say otherwise one POST at a time (so request logs have a fixed order),
    /// 3 retries at most 50 ms apart, and a 2 s timeout.
    pub fn run(&self, args: &[&str], input: &str) -> Run {
        self.run_with(&self.config, args, input)
    }

    /// [`Env::run`] with another config file.
    pub fn run_with(&self, config: &Path, args: &[&str], input: &str) -> Run {
        let mut cmd = if args.contains(&"--now") {
            self.bare_command(config)
        } else {
            self.command_with(config)
        };
        if !args
            .iter()
            .any(|a| a.starts_with("--token") || *a == "--offline")
        {
            cmd.args(["--token-file", self.provider_token.to_str().unwrap()]);
        }
        for (flag, value) in [
            ("--concurrency", "1"),
            ("--retries", "3"),
            ("--retry-max-delay", "0.05"),
            ("--timeout", "2"),
        ] {
            if !args.contains(&flag) {
                cmd.args([flag, value]);
            }
        }
        let output = cmd
            .args(args)
            .write_stdin(input.to_string())
            .output()
            .unwrap();
        Run::from(output)
    }

    /// Another config file (mode 0600) in the directory, holding `yaml`.
    fn extra_config(&self, yaml: &str) -> PathBuf {
        static CONFIGS: AtomicU32 = AtomicU32::new(0);
        let n = CONFIGS.fetch_add(1, Ordering::Relaxed);
        self.dir
            .write_mode(&format!("config-{n}.yaml"), yaml, 0o600)
    }

    /// A second config file whose only change is `waldur_api_url`.
    pub fn config_with_url(&self, url: &str) -> PathBuf {
        self.extra_config(&config_yaml(url, &self.setup.offering.uuid))
    }

    /// A second config file whose only change is the site's `timezone`.
    pub fn config_in_zone(&self, timezone: &str) -> PathBuf {
        self.extra_config(&config_yaml_in(
            timezone,
            &self.fake.base_url(),
            &self.setup.offering.uuid,
        ))
    }

    /// The UUID of the resource with this backend_id.
    pub fn resource(&self, backend_id: &str) -> String {
        self.setup.resource_uuid(backend_id)
    }

    /// `(method, path)` of every request so far.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.fake
            .requests()
            .into_iter()
            .map(|r| (r.method, r.path))
            .collect()
    }

    /// The POST requests so far.
    pub fn posts(&self) -> Vec<LoggedRequest> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" || r.method == "PUT")
            .collect()
    }

    /// The backend_id of the resource with `uuid` (the uuid itself when unknown).
    fn backend_id(&self, uuid: &str) -> String {
        self.setup
            .resources
            .iter()
            .find(|r| r.uuid == uuid)
            .map(|r| r.backend_id.clone())
            .unwrap_or_else(|| uuid.to_string())
    }

    /// Stored totals as `(billing_period, backend_id, component, usage)`.
    pub fn totals(&self) -> Vec<(String, String, String, String)> {
        let name = |uuid: &str| self.backend_id(uuid);
        self.fake
            .usages()
            .into_iter()
            .map(|u: StoredUsage| {
                (
                    u.billing_period,
                    name(&u.resource_uuid),
                    u.component_type,
                    u.usage,
                )
            })
            .collect()
    }

    /// Stored per-user values as `(billing_period, backend_id, component, username, usage)`.
    pub fn user_totals(&self) -> Vec<(String, String, String, String, String)> {
        let name = |uuid: &str| self.backend_id(uuid);
        self.fake
            .user_usages()
            .into_iter()
            .map(|u: StoredUserUsage| {
                (
                    u.billing_period,
                    name(&u.resource_uuid),
                    u.component_type,
                    u.username,
                    u.usage,
                )
            })
            .collect()
    }
}

/// The site-agent YAML for the fake's offering (components as in the seed guide).
pub fn config_yaml(url: &str, offering_uuid: &str) -> String {
    config_yaml_in("UTC", url, offering_uuid)
}

/// [`config_yaml`] with the site's `timezone`.
pub fn config_yaml_in(timezone: &str, url: &str, offering_uuid: &str) -> String {
    format!(
        "timezone: {timezone}\n\
         offerings:\n\
         \x20 - name: HPC1\n\
         \x20   waldur_api_url: \"{url}\"\n\
         \x20   waldur_offering_uuid: \"{offering_uuid}\"\n\
         \x20   backend_settings: {{ allocation_prefix: hpc_ }}\n\
         \x20   backend_components:\n\
         \x20     cpu: {{ measured_unit: k-Hours, unit_factor: 60000, accounting_type: usage }}\n\
         \x20     mem: {{ measured_unit: gb-Hours, unit_factor: 61440, accounting_type: usage }}\n\
         \x20     gres/gpu: {{ measured_unit: gpu-Hours, unit_factor: 60, accounting_type: usage }}\n"
    )
}

/// `(account, action, status, component, reason)` of a result record.
pub type Outcome = (String, String, String, Option<String>, Option<String>);

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        let run = Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        run.assert_no_token();
        run
    }
}

impl Run {
    /// Asserts the exit status, showing stderr when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code, code, "{}", self.stderr);
    }

    /// Asserts that stderr holds `text`, showing stderr when it does not.
    #[track_caller]
    pub fn assert_stderr_contains(&self, text: &str) {
        assert!(self.stderr.contains(text), "{}", self.stderr);
    }

    /// The tokens of the fake never appear in what the tool printed.
    pub fn assert_no_token(&self) {
        for secret in [PROVIDER_TOKEN, STAFF_TOKEN] {
            assert!(
                !self.stdout.contains(secret) && !self.stderr.contains(secret),
                "a token was printed:\n{self:?}"
            );
        }
    }

    /// The result records on stdout.
    pub fn results(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The stdout records of one kind.
    pub fn results_of_kind(&self, kind: &str) -> Vec<Value> {
        self.results()
            .into_iter()
            .filter(|r| r["kind"] == kind)
            .collect()
    }

    /// `(account, action, status, component, reason)` of each result.
    pub fn outcomes(&self) -> Vec<Outcome> {
        let s = |v: &Value| v.as_str().map(str::to_string);
        self.results()
            .iter()
            .map(|r| {
                (
                    s(&r["account"]).unwrap_or_default(),
                    s(&r["action"]).unwrap_or_default(),
                    s(&r["status"]).unwrap_or_default(),
                    s(&r["component"]),
                    s(&r["reason"]),
                )
            })
            .collect()
    }

    /// The summary line of a period on stderr.
    pub fn summary(&self, period: &str) -> String {
        let needle = format!("period {period}: ");
        self.stderr
            .lines()
            .find_map(|l| l.find(&needle).map(|i| l[i..].to_string()))
            .unwrap_or_else(|| panic!("no summary for {period}:\n{}", self.stderr))
    }
}

/// One usage record line.
pub fn usage(
    period: &str,
    account: &str,
    user: Option<&str>,
    components: &[(&str, &str)],
) -> String {
    let comps: serde_json::Map<String, Value> = components
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let record = serde_json::json!({
        "kind": "usage", "period": period, "account": account, "user": user,
        "jobs": 1, "components": comps,
    });
    format!("{record}\n")
}

/// A `period_end` line announcing `records` records.
pub fn period_end(period: &str, records: usize) -> String {
    format!(
        "{{\"kind\":\"period_end\",\"period\":\"{period}\",\"records\":{records},\"jobs\":{records},\"lines\":{records},\"skipped_lines\":0}}\n"
    )
}

/// A whole period from usage lines: the lines then a matching `period_end`.
pub fn period(period_key: &str, lines: &[String]) -> String {
    let mut text: String = lines.concat();
    text.push_str(&period_end(period_key, lines.len()));
    text
}

/// One usage row of [`period_of`]: `(account, user, components)`.
pub type Row<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)]);

/// A whole period of usage records, one a row, then its `period_end`.
pub fn period_of(period_key: &str, rows: &[Row]) -> String {
    let lines: Vec<String> = rows
        .iter()
        .map(|(account, user, components)| usage(period_key, account, *user, components))
        .collect();
    period(period_key, &lines)
}

/// The POST bodies sent to paths containing `path_contains`.
pub fn bodies(requests: &[LoggedRequest], path_contains: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains(path_contains))
        .map(|r| r.body.clone().unwrap_or(Value::Null))
        .collect()
}

/// Shorthand for owned string tuples in expectations.
pub fn t4(a: &str, b: &str, c: &str, d: &str) -> (String, String, String, String) {
    (a.into(), b.into(), c.into(), d.into())
}

/// Shorthand for owned string tuples in expectations.
pub fn t5(a: &str, b: &str, c: &str, d: &str, e: &str) -> (String, String, String, String, String) {
    (a.into(), b.into(), c.into(), d.into(), e.into())
}

/// The common input: hpc_alloc1 with two users in March (total cpu 1.54 = 1.00 + 0.54).
pub fn march_input() -> String {
    period_of(
        "2024-03",
        &[
            ("hpc_alloc1", None, &[("cpu", "1.54"), ("mem", "6008.00")]),
            (
                "hpc_alloc1",
                Some("hpcuser1"),
                &[("cpu", "1.00"), ("mem", "4000.00")],
            ),
            (
                "hpc_alloc1",
                Some("hpcuser2"),
                &[("cpu", "0.54"), ("mem", "2008.00")],
            ),
        ],
    )
}

/// [`Setup::small`] with March 2024 values already stored: `(backend id, component, value)`.
pub fn seeded(stored: &[(&str, &str, &str)]) -> Setup {
    let mut s = Setup::small();
    for (i, (backend, component, value)) in stored.iter().enumerate() {
        s.existing_usages.push(StoredUsage {
            uuid: det_uuid(0xeee0, i as u64 + 1),
            resource_uuid: s.resource_uuid(backend),
            component_type: component.to_string(),
            billing_period: "2024-03-01".into(),
            usage: value.to_string(),
            date: "2024-03-19T00:00:00+00:00".into(),
        });
    }
    s
}

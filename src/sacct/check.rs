//! `slurm-usage --check`: are the SLURM tools there and answering, is the configured cluster
//! known, which accounts would be reported. Each finding says what to fix.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::cli::exit;

use super::command::{Invocation, RunError, run_capture, tool_path};
use super::line::AccountFilter;

/// What `--check` looks at.
#[derive(Debug, Clone)]
pub struct CheckSettings<'a> {
    /// `backend_settings.slurm_bin_path` when set.
    pub bin_path: Option<&'a Path>,
    /// `backend_settings.cluster_name`.
    pub cluster: Option<&'a str>,
    /// Which accounts are reported.
    pub filter: &'a AccountFilter,
    /// Timeout for each command.
    pub timeout: Duration,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it is fine.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do about it, when not fine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Exit status this failure maps to (69 tool missing or failing, 78 configuration).
    #[serde(skip)]
    code: u8,
}

/// All findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// True when every check passed.
    pub ok: bool,
    /// The findings, in the order they were made.
    pub checks: Vec<Check>,
}

impl CheckReport {
    /// Exit status: 0 when all passed, else 69 if a tool is missing or failing, else 78.
    pub fn exit_code(&self) -> u8 {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.code)
            .min_by_key(|&c| if c == exit::UNAVAILABLE { 0 } else { 1 })
            .unwrap_or(exit::OK)
    }

    /// One line per finding, for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            s.push_str(&format!(
                "[{}] {}: {}\n",
                if c.ok { " ok " } else { "FAIL" },
                c.name,
                c.detail
            ));
            if let Some(fix) = &c.fix {
                s.push_str(&format!("       fix: {fix}\n"));
            }
        }
        s.push_str(if self.ok {
            "all checks passed\n"
        } else {
            "some checks failed\n"
        });
        s
    }

    /// One JSON object, for machines.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"ok\":false}".into())
    }
}

fn finding(name: &str, ok: bool, detail: String, fix: Option<String>, code: u8) -> Check {
    Check {
        name: name.into(),
        ok,
        detail,
        fix,
        code,
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Run the tool; on failure record a finding and return `None`.
fn ask(checks: &mut Vec<Check>, name: &str, inv: Invocation, timeout: Duration) -> Option<String> {
    match run_capture(&inv, timeout) {
        Ok((out, _)) => Some(out),
        Err(e) => {
            let fix = match &e {
                RunError::Unavailable { .. } => {
                    "install the Slurm client tools on this host, or set \
                     backend_settings.slurm_bin_path to the directory holding them"
                }
                RunError::Timeout { .. } => {
                    "slurmdbd or slurmctld does not answer; check that they run and are reachable"
                }
                _ => "check that munge runs and slurm.conf is readable by this user",
            };
            checks.push(finding(
                name,
                false,
                e.to_string(),
                Some(fix.into()),
                exit::UNAVAILABLE,
            ));
            None
        }
    }
}

fn list(names: &[String], max: usize) -> String {
    let mut s = names
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        s.push_str(&format!(", ... ({} more)", names.len() - max));
    }
    s
}

/// Run every check.
pub fn run_checks(settings: &CheckSettings<'_>) -> CheckReport {
    let mut checks = Vec::new();
    let t = settings.timeout;
    for tool in ["sacct", "sacctmgr", "sinfo"] {
        let inv = Invocation {
            program: tool_path(settings.bin_path, tool),
            args: vec!["--version".into()],
            tz: None,
        };
        let shown = inv.to_string();
        if let Some(out) = ask(&mut checks, tool, inv, t) {
            let version = first_line(&out);
            let ok = !version.is_empty();
            checks.push(finding(
                tool,
                ok,
                if ok {
                    format!("{version} ({shown})")
                } else {
                    format!("`{shown}` printed no version")
                },
                (!ok).then(|| "check the Slurm installation".to_string()),
                exit::UNAVAILABLE,
            ));
        }
    }
    let sacctmgr = |args: &[&str]| Invocation {
        program: tool_path(settings.bin_path, "sacctmgr"),
        args: ["--parsable2", "--noheader"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect(),
        tz: None,
    };
    let names = |out: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split('|').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    if let Some(out) = ask(
        &mut checks,
        "clusters",
        sacctmgr(&["list", "cluster", "format=cluster"]),
        t,
    ) {
        let clusters = names(&out);
        let check = match settings.cluster {
            Some(c) if clusters.iter().any(|x| x.eq_ignore_ascii_case(c)) => finding(
                "cluster",
                true,
                format!("cluster_name {c:?} is known to slurmdbd"),
                None,
                exit::OK,
            ),
            Some(c) => finding(
                "cluster",
                false,
                format!(
                    "cluster_name {c:?} is not among the clusters slurmdbd knows: {}",
                    list(&clusters, 20)
                ),
                Some("set backend_settings.cluster_name to one of the listed clusters".into()),
                exit::CONFIG,
            ),
            None if clusters.is_empty() => finding(
                "cluster",
                false,
                "slurmdbd lists no cluster".into(),
                Some("register the cluster with `sacctmgr add cluster NAME`".into()),
                exit::UNAVAILABLE,
            ),
            None => finding(
                "cluster",
                true,
                format!(
                    "no cluster_name configured, sacct reports the local cluster; slurmdbd knows: {}",
                    list(&clusters, 20)
                ),
                None,
                exit::OK,
            ),
        };
        checks.push(check);
    }
    let account_args = account_query(settings.cluster);
    let account_args: Vec<&str> = account_args.iter().map(String::as_str).collect();
    if let Some(out) = ask(&mut checks, "accounts", sacctmgr(&account_args), t) {
        let mut all = names(&out);
        // withassoc lists an account once per association.
        all.sort();
        all.dedup();
        let check = match settings.filter {
            AccountFilter::All => finding(
                "accounts",
                true,
                format!(
                    "no allocation_prefix configured: all {} accounts are reported",
                    all.len()
                ),
                None,
                exit::OK,
            ),
            AccountFilter::Prefix(p) => {
                let pl = p.to_ascii_lowercase();
                let ours: Vec<String> = all
                    .iter()
                    .filter(|a| a.to_ascii_lowercase().starts_with(&pl))
                    .cloned()
                    .collect();
                if ours.is_empty() {
                    finding(
                        "accounts",
                        false,
                        format!("no account starts with allocation_prefix {p:?}"),
                        Some(
                            "check backend_settings.allocation_prefix against `sacctmgr list account`"
                                .into(),
                        ),
                        exit::CONFIG,
                    )
                } else {
                    finding(
                        "accounts",
                        true,
                        format!(
                            "{} accounts start with {p:?}: {}",
                            ours.len(),
                            list(&ours, 20)
                        ),
                        None,
                        exit::OK,
                    )
                }
            }
            AccountFilter::List(wanted) => {
                let missing: Vec<String> = wanted
                    .iter()
                    .filter(|w| !all.iter().any(|a| a.eq_ignore_ascii_case(w)))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    finding(
                        "accounts",
                        true,
                        format!("all {} requested accounts exist", wanted.len()),
                        None,
                        exit::OK,
                    )
                } else {
                    finding(
                        "accounts",
                        false,
                        format!("unknown to slurmdbd: {}", list(&missing, 20)),
                        Some("check the names given to --accounts".into()),
                        exit::CONFIG,
                    )
                }
            }
        };
        checks.push(check);
    }
    CheckReport {
        ok: checks.iter().all(|c| c.ok),
        checks,
    }
}

/// The `sacctmgr list account` arguments. `cluster=` is an association option: without
/// `withassoc`, SLURM 22.05 asks "Are you sure you want to continue?" and, with no answer,
/// loops on "Y or N please" until the timeout.
fn account_query(cluster: Option<&str>) -> Vec<String> {
    let mut args = vec!["list".to_string(), "account".to_string()];
    if let Some(c) = cluster {
        args.push("withassoc".into());
        args.push(format!("cluster={c}"));
    }
    args.push("format=account".into());
    args
}

#[cfg(test)]
mod tests {
    use super::account_query;

    #[test]
    fn a_cluster_filter_asks_for_associations_so_sacctmgr_never_prompts() {
        assert_eq!(
            account_query(Some("ci")),
            [
                "list",
                "account",
                "withassoc",
                "cluster=ci",
                "format=account"
            ]
        );
        assert_eq!(account_query(None), ["list", "account", "format=account"]);
    }
}

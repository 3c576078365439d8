//! The checks themselves, in order: the tools' versions, the cluster, the accounts, the TRES.

use std::path::Path;
use std::time::Duration;

use super::super::command::{Invocation, tool_path};
use super::super::line::AccountFilter;
use super::daemons::{ask, blame_daemons};
use super::report::{finding, first_line, list};
use super::{Check, CheckReport};
use crate::cli::exit;

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
    /// The TRES the configured components read (`cpu`, `mem`, `gres/gpu`, ...): each must be
    /// one this SLURM accounts (`sacctmgr show tres`). Empty: not checked.
    pub tres: &'a [String],
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
    if !settings.tres.is_empty() {
        if let Some(out) = ask(
            &mut checks,
            "tres",
            sacctmgr(&["show", "tres", "format=type,name"]),
            t,
        ) {
            checks.push(tres_finding(settings.tres, &accounted_tres(&out)));
        }
    }
    blame_daemons(&mut checks, settings);
    CheckReport {
        ok: checks.iter().all(|c| c.ok),
        checks,
    }
}

/// The TRES names in `sacctmgr --parsable2 --noheader show tres format=type,name` output
/// (`cpu|`, `gres|gpu`): `cpu`, `gres/gpu`.
pub fn accounted_tres(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let (kind, name) = l.trim().split_once('|').unwrap_or((l.trim(), ""));
            let (kind, name) = (kind.trim(), name.trim().trim_end_matches('|'));
            match (kind.is_empty(), name.is_empty()) {
                (true, _) => None,
                (false, true) => Some(kind.to_string()),
                (false, false) => Some(format!("{kind}/{name}")),
            }
        })
        .collect()
}

/// Whether every TRES the components read is one SLURM accounts.
pub(super) fn tres_finding(wanted: &[String], accounted: &[String]) -> Check {
    let missing: Vec<String> = wanted
        .iter()
        .filter(|w| !accounted.iter().any(|a| a == *w))
        .cloned()
        .collect();
    if missing.is_empty() {
        finding(
            "tres",
            true,
            format!(
                "SLURM accounts every TRES the components read: {}",
                wanted.join(", ")
            ),
            None,
            exit::OK,
        )
    } else {
        finding(
            "tres",
            false,
            format!(
                "SLURM does not account {}, which the components read: they would be 0.00 for \
                 every resource (SLURM accounts: {})",
                missing.join(", "),
                list(accounted, 30)
            ),
            Some(
                "add the TRES to AccountingStorageTRES in slurm.conf and restart slurmctld, or \
                 fix backend_components in the config"
                    .into(),
            ),
            exit::CONFIG,
        )
    }
}

/// The `sacctmgr list account` arguments. `cluster=` is an association option: without
/// `withassoc`, SLURM 22.05 asks "Are you sure you want to continue?" and, with no answer,
/// loops on "Y or N please" until the timeout.
pub(super) fn account_query(cluster: Option<&str>) -> Vec<String> {
    let mut args = vec!["list".to_string(), "account".to_string()];
    if let Some(c) = cluster {
        args.push("withassoc".into());
        args.push(format!("cluster={c}"));
    }
    args.push("format=account".into());
    args
}

//! `slurm-usage --check`: are the SLURM tools there and answering, is the configured cluster
//! known, which accounts would be reported. Each finding says what to fix.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::cli::exit;

use super::command::{Invocation, RunError, run_capture, run_streaming, tool_path};
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
    /// The TRES the configured components read (`cpu`, `mem`, `gres/gpu`, ...): each must be
    /// one this SLURM accounts (`sacctmgr show tres`). Empty: not checked.
    pub tres: &'a [String],
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

/// Run the tool; on failure record a finding and return `None`. A command that ran but failed
/// or hung is not blamed on a daemon here: [`ping_daemons`] runs afterwards and names one only
/// when its ping fails.
fn ask(checks: &mut Vec<Check>, name: &str, inv: Invocation, timeout: Duration) -> Option<String> {
    match run_capture(&inv, timeout) {
        Ok((out, _)) => Some(out),
        Err(e) => {
            let fix = match &e {
                RunError::Unavailable { .. } => {
                    "install the Slurm client tools on this host, or set \
                     backend_settings.slurm_bin_path to the directory holding them"
                }
                _ => DAEMON_FIX_PENDING,
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

/// Placeholder fix of a failed or hung command until the daemons have been pinged.
const DAEMON_FIX_PENDING: &str = "(pinging the daemons)";

/// How long a ping may take: a daemon that answers does so in milliseconds.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// What a daemon's ping showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ping {
    /// It answered.
    Up(String),
    /// It did not answer: what the ping printed.
    Down(String),
    /// The ping itself could not be run or its answer was not understood.
    Unknown(String),
}

/// Read `scontrol ping`'s answer, e.g. `Slurmctld(primary) at vm is UP`.
pub fn read_scontrol_ping(stdout: &str) -> Ping {
    let answer = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.contains(" is UP") || l.contains(" is DOWN"))
        .map(str::to_string)
        .unwrap_or_else(|| first_line(stdout));
    if answer.ends_with(" is UP") {
        Ping::Up(answer)
    } else if answer.contains(" is DOWN") || answer.starts_with("no answer within") {
        Ping::Down(answer)
    } else {
        Ping::Unknown(format!("unexpected answer {answer:?}"))
    }
}

/// Read the answer of the slurmdbd ping: `sacctmgr ping` on SLURM 23.02 and later, or on
/// older versions (which answer "invalid keyword: ping") `sacctmgr list cluster`, whose
/// connection error names slurmdbd's host and port.
pub fn read_slurmdbd_ping(result: Result<&str, &str>) -> Ping {
    match result {
        Ok(out) => Ping::Up(first_line(out)),
        Err(err) => {
            // Only what says the daemon is not there; a munge or permission error is not.
            let connection = [
                "Connection refused",
                "Connection timed out",
                "No route to host",
                "Unable to contact slurm",
                "no answer within",
            ];
            let line = err
                .lines()
                .find(|l| connection.iter().any(|c| l.contains(c)))
                .map(str::trim);
            match line {
                Some(l) => Ping::Down(l.to_string()),
                None => Ping::Unknown(first_line(err)),
            }
        }
    }
}

/// Run a ping: `Ok(stdout)` when it exits 0, else `Err` with everything it printed (a stopped
/// slurmctld makes `scontrol ping` print "... is DOWN" on stdout and exit 1).
fn ping(inv: Invocation) -> Result<String, String> {
    let stdout = std::cell::RefCell::new(String::new());
    let result = run_streaming(&inv, PING_TIMEOUT, |r| {
        r.read_to_string(&mut stdout.borrow_mut())
    });
    let printed = |stderr: &str| format!("{}\n{}", stdout.borrow().trim(), stderr.trim());
    match result {
        Ok(_) => Ok(stdout.take()),
        Err(RunError::Failed { stderr, .. }) => Err(printed(&stderr)),
        Err(RunError::Timeout { after, stderr, .. }) => Err(format!(
            "no answer within {} s {}",
            after.as_secs(),
            printed(&stderr)
        )),
        Err(e) => Err(format!("cannot run: {e}")),
    }
}

/// Ping slurmctld (`scontrol ping`) and slurmdbd (`sacctmgr ping`, or `sacctmgr list cluster`
/// before 23.02). Called only after a command failed or hung, to say which daemon to look at.
fn ping_daemons(settings: &CheckSettings<'_>) -> (Ping, Ping) {
    let tool = |name: &str, args: &[&str]| Invocation {
        program: tool_path(settings.bin_path, name),
        args: args.iter().map(|s| s.to_string()).collect(),
        tz: None,
    };
    let ctld = match ping(tool("scontrol", &["ping"])) {
        Ok(out) => read_scontrol_ping(&out),
        // A stopped slurmctld: scontrol still prints "... is DOWN", and exits non-zero.
        Err(e) => read_scontrol_ping(&e),
    };
    let dbd = match ping(tool("sacctmgr", &["ping"])) {
        Err(e) if e.contains("invalid keyword") => {
            let out = ping(tool(
                "sacctmgr",
                &[
                    "--parsable2",
                    "--noheader",
                    "list",
                    "cluster",
                    "format=cluster",
                ],
            ));
            read_slurmdbd_ping(out.as_deref().map_err(String::as_str))
        }
        other => read_slurmdbd_ping(other.as_deref().map_err(String::as_str)),
    };
    (ctld, dbd)
}

/// After a failed or hung command: one finding per daemon, and the fix of each failed command
/// names the daemon that is down, or says that both answered.
fn blame_daemons(checks: &mut Vec<Check>, settings: &CheckSettings<'_>) {
    if !checks
        .iter()
        .any(|c| c.fix.as_deref() == Some(DAEMON_FIX_PENDING))
    {
        return;
    }
    let (ctld, dbd) = ping_daemons(settings);
    let mut down = Vec::new();
    for (daemon, how, result) in [
        ("slurmctld", "scontrol ping", &ctld),
        ("slurmdbd", "sacctmgr", &dbd),
    ] {
        let check = match result {
            Ping::Up(answer) => finding(
                daemon,
                true,
                format!("answers ({how}: {answer})"),
                None,
                exit::OK,
            ),
            Ping::Down(answer) => {
                down.push(daemon);
                finding(
                    daemon,
                    false,
                    format!("does not answer ({how}: {answer})"),
                    Some(format!(
                        "start {daemon} (systemctl start {daemon}) and read its log; check \
                         that this host reaches it (slurm.conf / slurmdbd.conf host and port)"
                    )),
                    exit::UNAVAILABLE,
                )
            }
            Ping::Unknown(why) => finding(
                daemon,
                true,
                format!("not known whether it answers ({how}: {why})"),
                None,
                exit::OK,
            ),
        };
        checks.push(check);
    }
    let fix = if down.is_empty() {
        "slurmctld and slurmdbd answer their pings, so the command itself failed: read its \
         messages above, check munge (munge -n | unmunge) and that slurm.conf is readable by \
         this user"
            .to_string()
    } else {
        format!("{} does not answer: see below", down.join(" and "))
    };
    for c in checks
        .iter_mut()
        .filter(|c| c.fix.as_deref() == Some(DAEMON_FIX_PENDING))
    {
        c.fix = Some(fix.clone());
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
fn tres_finding(wanted: &[String], accounted: &[String]) -> Check {
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
    use super::{
        Ping, account_query, accounted_tres, read_scontrol_ping, read_slurmdbd_ping, tres_finding,
    };

    #[test]
    fn tres_are_read_from_sacctmgr_and_missing_ones_named() {
        let out = "cpu|\nmem|\nenergy|\nnode|\nbilling|\nfs|disk\nvmem|\npages|\ngres|gpu\n";
        let accounted = accounted_tres(out);
        assert_eq!(
            accounted,
            [
                "cpu", "mem", "energy", "node", "billing", "fs/disk", "vmem", "pages", "gres/gpu"
            ]
        );
        let ok = tres_finding(&["cpu".into(), "gres/gpu".into()], &accounted);
        assert!(ok.ok);
        let bad = tres_finding(&["cpu".into(), "gres/gpu:a100".into()], &accounted);
        assert!(!bad.ok);
        assert_eq!(bad.code, 78);
        assert!(
            bad.detail
                .starts_with("SLURM does not account gres/gpu:a100, which the components read"),
            "{}",
            bad.detail
        );
    }

    #[test]
    fn pings_are_read_from_what_slurm_22_05_prints() {
        assert_eq!(
            read_scontrol_ping("Slurmctld(primary) at vm is UP\n"),
            Ping::Up("Slurmctld(primary) at vm is UP".into())
        );
        assert_eq!(
            read_scontrol_ping("Slurmctld(primary) at vm is DOWN\n"),
            Ping::Down("Slurmctld(primary) at vm is DOWN".into())
        );
        assert!(matches!(read_scontrol_ping(""), Ping::Unknown(_)));
        // slurmdbd stopped: what `sacctmgr list cluster` writes to stderr on 22.05.
        let refused = "sacctmgr: error: slurm_persist_conn_open_without_init: failed to open \
                       persistent connection to host:localhost:6819: Connection refused\n\
                       sacctmgr: error: Sending PersistInit msg: Connection refused\n";
        assert_eq!(
            read_slurmdbd_ping(Err(refused)),
            Ping::Down(
                "sacctmgr: error: slurm_persist_conn_open_without_init: failed to open \
                 persistent connection to host:localhost:6819: Connection refused"
                    .into()
            )
        );
        assert_eq!(read_slurmdbd_ping(Ok("ci\n")), Ping::Up("ci".into()));
        assert!(matches!(
            read_slurmdbd_ping(Err("sacctmgr: error: Munge decode failed")),
            Ping::Unknown(_)
        ));
    }

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

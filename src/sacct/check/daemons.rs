//! Asking a SLURM tool, and after a command failed or hung, pinging slurmctld and slurmdbd
//! to say which daemon to look at.

use std::time::Duration;

use super::super::command::{Invocation, RunError, run_capture, run_streaming, tool_path};
use super::report::{finding, first_line};
use super::{Check, CheckSettings};
use crate::cli::exit;

/// Run the tool; on failure record a finding and return `None`. A command that ran but failed
/// or hung is not blamed on a daemon here: [`ping_daemons`] runs afterwards and names one only
/// when its ping fails.
pub(super) fn ask(
    checks: &mut Vec<Check>,
    name: &str,
    inv: Invocation,
    timeout: Duration,
) -> Option<String> {
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
pub(super) fn blame_daemons(checks: &mut Vec<Check>, settings: &CheckSettings<'_>) {
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

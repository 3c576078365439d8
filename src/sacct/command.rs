//! Building the sacct command line and running it: its own process group, `TZ` set, stdout
//! streamed to a consumer, stderr collected apart on a thread, and a timeout that kills it.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use jiff::Zoned;
use jiff::tz::AmbiguousOffset;

use crate::config::Compat;

use super::line::default_format;

/// The program to run for a SLURM tool: `<slurm_bin_path>/<name>` when the config sets
/// `slurm_bin_path`, else the bare name, looked up on `PATH`.
pub fn tool_path(bin_path: Option<&Path>, name: &str) -> PathBuf {
    match bin_path {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

/// A window edge as sacct should read it with `TZ` set to the edge's zone.
///
/// Normally the local wall-clock time `YYYY-MM-DDTHH:MM:SS`. When that wall-clock time is
/// ambiguous (the repeated hour when clocks go back) or does not exist (the skipped hour), a
/// naive time cannot name the instant, so the edge is written as `uts<unix seconds>`, which
/// Slurm's time parser has accepted since 2010 (field notes B4). Month edges are local
/// midnights and never hit this; "now" inside a DST change can. Sub-second parts are dropped.
pub fn window_edge(edge: &Zoned) -> String {
    let civil = edge.datetime();
    let whole = civil.with().subsec_nanosecond(0).build().unwrap_or(civil);
    match edge.time_zone().to_ambiguous_timestamp(whole).offset() {
        AmbiguousOffset::Unambiguous { .. } => whole.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        AmbiguousOffset::Gap { .. } | AmbiguousOffset::Fold { .. } => {
            format!("uts{}", edge.timestamp().as_second())
        }
    }
}

/// A command to run: program, arguments and the `TZ` to give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Program path or name.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Value of `TZ` in its environment, if any.
    pub tz: Option<String>,
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tz) = &self.tz {
            write!(f, "TZ={tz} ")?;
        }
        write!(f, "{}", self.program.display())?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// What to ask sacct for one period.
#[derive(Debug, Clone)]
pub struct SacctQuery<'a> {
    /// The sacct program.
    pub program: PathBuf,
    /// The formula (decides `--duplicates` and `--format`).
    pub compat: Compat,
    /// `--clusters`.
    pub cluster: Option<&'a str>,
    /// `--accounts` (none: all accounts, filtered by prefix afterwards).
    pub accounts: Option<&'a [String]>,
    /// Window start (inclusive), in the zone given to sacct as `TZ`.
    pub start: &'a Zoned,
    /// Window end (exclusive).
    pub end: &'a Zoned,
}

impl SacctQuery<'_> {
    /// The command line (DESIGN.md §3).
    pub fn invocation(&self) -> Invocation {
        let mut args: Vec<String> = vec!["--allusers".into(), "--allocations".into()];
        if self.compat == Compat::Exact {
            args.push("--duplicates".into());
        }
        args.extend(
            ["--truncate", "--noconvert", "--parsable2", "--noheader"]
                .iter()
                .map(|s| s.to_string()),
        );
        if let Some(c) = self.cluster {
            args.push(format!("--clusters={c}"));
        }
        if let Some(list) = self.accounts {
            args.push(format!("--accounts={}", list.join(",")));
        }
        args.push(format!("--starttime={}", window_edge(self.start)));
        args.push(format!("--endtime={}", window_edge(self.end)));
        args.push(format!("--format={}", default_format(self.compat)));
        Invocation {
            program: self.program.clone(),
            args,
            tz: Some(
                self.start
                    .time_zone()
                    .iana_name()
                    .unwrap_or("UTC")
                    .to_string(),
            ),
        }
    }
}

/// Running a command failed.
#[derive(Debug)]
pub enum RunError<E> {
    /// The program could not be started (missing, not executable).
    Unavailable {
        /// The command.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// It ran longer than the timeout and was killed.
    Timeout {
        /// The command.
        command: String,
        /// The timeout.
        after: Duration,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// It exited non-zero or was killed by a signal.
    Failed {
        /// The command.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The consumer of its output failed (the command was stopped).
    Consume(E),
    /// Waiting for it failed.
    Io(io::Error),
}

fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended abnormally".into(),
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        "; it wrote nothing to stderr".into()
    } else {
        format!("; its stderr:\n{s}")
    }
}

impl<E: fmt::Display> fmt::Display for RunError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Unavailable { command, source } => {
                write!(f, "cannot run `{command}`: {source}")
            }
            RunError::Timeout {
                command,
                after,
                stderr,
            } => write!(
                f,
                "`{command}` did not finish within {} s and was killed{}",
                after.as_secs(),
                stderr_suffix(stderr)
            ),
            RunError::Failed {
                command,
                status,
                stderr,
            } => write!(
                f,
                "`{command}` {}{}",
                describe_status(status),
                stderr_suffix(stderr)
            ),
            RunError::Consume(e) => write!(f, "{e}"),
            RunError::Io(e) => write!(f, "waiting for a command: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RunError<E> {}

/// Send SIGKILL to the process group `pgid` (the child and anything it started).
/// The command gets SIGTERM when this process dies, however it dies. Its own process group
/// (for the timeout above) keeps it out of reach of a signal sent to ours: without this, a
/// `timeout` that kills slurm-usage would leave sacct running, an orphan.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        // prctl(2) and getppid(2) from the C library std already links.
        fn prctl(option: i32, ...) -> i32;
        fn getppid() -> i32;
    }
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGTERM: std::ffi::c_ulong = 15;
    let parent = std::process::id() as i32;
    // SAFETY: between fork and exec only async-signal-safe calls are made: prctl and getppid.
    unsafe {
        cmd.pre_exec(move || {
            if prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect (ESRCH: no allocation here).
            if getppid() != parent {
                const ESRCH: i32 = 3;
                return Err(io::Error::from_raw_os_error(ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

fn kill_group(pgid: u32) {
    unsafe extern "C" {
        // kill(2) from the C library std already links; it only takes integers.
        safe fn kill(pid: i32, sig: i32) -> i32;
    }
    const SIGKILL: i32 = 9;
    if let Ok(pid) = i32::try_from(pgid) {
        if pid > 1 {
            kill(-pid, SIGKILL);
        }
    }
}

/// How much of a command's stderr is kept (its end, where the reason usually is).
const STDERR_KEEP: usize = 16 * 1024;

fn collect_stderr(mut stream: impl Read) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut dropped = false;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * STDERR_KEEP {
                    kept.drain(..kept.len() - STDERR_KEEP);
                    dropped = true;
                }
            }
        }
    }
    if kept.len() > STDERR_KEEP {
        kept.drain(..kept.len() - STDERR_KEEP);
        dropped = true;
    }
    let text = String::from_utf8_lossy(&kept).into_owned();
    if dropped {
        format!("[... earlier stderr dropped ...]\n{text}")
    } else {
        text
    }
}

/// Run `inv`, hand its stdout to `consume` as it arrives, and succeed only if `consume`
/// succeeded, the command exited 0 and it finished within `timeout`. Returns the consumer's
/// result and the command's stderr.
///
/// The command runs in its own process group so that a timeout kills it and anything it
/// started (a wrapper script's children would otherwise keep the pipe open).
pub fn run_streaming<T, E>(
    inv: &Invocation,
    timeout: Duration,
    consume: impl FnOnce(&mut dyn BufRead) -> Result<T, E>,
) -> Result<(T, String), RunError<E>> {
    let command = inv.to_string();
    let mut cmd = Command::new(&inv.program);
    cmd.args(&inv.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut cmd);
    if let Some(tz) = &inv.tz {
        cmd.env("TZ", OsString::from(tz));
    }
    let mut child = cmd.spawn().map_err(|source| RunError::Unavailable {
        command: command.clone(),
        source,
    })?;
    let pid = child.id();
    let stderr = child
        .stderr
        .take()
        .map(|s| std::thread::spawn(move || collect_stderr(s)));
    let timed_out = Arc::new(AtomicBool::new(false));
    let (done, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let timed_out = Arc::clone(&timed_out);
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
                timed_out.store(true, Ordering::SeqCst);
                kill_group(pid);
            }
        })
    };
    let result = match child.stdout.take() {
        Some(out) => {
            let mut reader = BufReader::with_capacity(256 * 1024, out);
            let r = consume(&mut reader);
            if r.is_err() {
                // We will not use the rest; stop the command instead of draining it.
                kill_group(pid);
            }
            r
        }
        None => consume(&mut io::empty()),
    };
    let status = child.wait();
    let _ = done.send(());
    let _ = watchdog.join();
    let stderr = stderr
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    if timed_out.load(Ordering::SeqCst) {
        return Err(RunError::Timeout {
            command,
            after: timeout,
            stderr,
        });
    }
    let value = result.map_err(RunError::Consume)?;
    let status = status.map_err(RunError::Io)?;
    if !status.success() {
        return Err(RunError::Failed {
            command,
            status,
            stderr,
        });
    }
    Ok((value, stderr))
}

/// Run `inv` and return its whole stdout (for short answers such as `--version`).
pub fn run_capture(
    inv: &Invocation,
    timeout: Duration,
) -> Result<(String, String), RunError<io::Error>> {
    run_streaming(inv, timeout, |r| {
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        Ok(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoned(s: &str) -> Zoned {
        s.parse().unwrap()
    }

    #[test]
    fn edges_are_local_wall_clock_or_uts_inside_a_dst_change() {
        assert_eq!(
            window_edge(&zoned("2024-03-01T00:00:00+01:00[Europe/Berlin]")),
            "2024-03-01T00:00:00"
        );
        // Sub-seconds are dropped.
        assert_eq!(
            window_edge(&zoned("2024-06-15T12:34:56.789+02:00[Europe/Berlin]")),
            "2024-06-15T12:34:56"
        );
        // 2024-10-27 02:30 happens twice in Berlin (fold): 00:30 UTC is the first one.
        // 2024-10-27T00:30:00Z = 1729989000.
        assert_eq!(
            window_edge(&zoned("2024-10-27T02:30:00+02:00[Europe/Berlin]")),
            "uts1729989000"
        );
        // The second 02:30 (+01:00) = 01:30 UTC = 1729992600.
        assert_eq!(
            window_edge(&zoned("2024-10-27T02:30:00+01:00[Europe/Berlin]")),
            "uts1729992600"
        );
    }

    #[test]
    fn default_and_reference_queries() {
        let start = zoned("2024-03-01T00:00:00+01:00[Europe/Berlin]");
        let end = zoned("2024-04-01T00:00:00+02:00[Europe/Berlin]");
        let accounts = vec!["a".to_string(), "b".to_string()];
        let q = SacctQuery {
            program: "sacct".into(),
            compat: Compat::Exact,
            cluster: Some("ci"),
            accounts: Some(&accounts),
            start: &start,
            end: &end,
        };
        assert_eq!(
            q.invocation().to_string(),
            "TZ=Europe/Berlin sacct --allusers --allocations --duplicates --truncate --noconvert \
             --parsable2 --noheader --clusters=ci --accounts=a,b --starttime=2024-03-01T00:00:00 \
             --endtime=2024-04-01T00:00:00 --format=JobIDRaw,Account,User,State,ElapsedRaw,AllocTRES,ReqTRES"
        );
        let q = SacctQuery {
            compat: Compat::Reference,
            cluster: None,
            accounts: None,
            ..q
        };
        assert_eq!(
            q.invocation().args.join(" "),
            "--allusers --allocations --truncate --noconvert --parsable2 --noheader \
             --starttime=2024-03-01T00:00:00 --endtime=2024-04-01T00:00:00 \
             --format=JobIDRaw,Account,User,State,Elapsed,ReqTRES"
        );
    }

    fn sh(script: &str) -> Invocation {
        Invocation {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            tz: Some("Europe/Berlin".into()),
        }
    }

    #[test]
    fn streams_stdout_keeps_stderr_apart_and_passes_tz() {
        let (out, err) =
            run_capture(&sh("echo \"$TZ\"; echo oops >&2"), Duration::from_secs(10)).unwrap();
        assert_eq!(out, "Europe/Berlin\n");
        assert_eq!(err, "oops\n");
    }

    #[test]
    fn non_zero_exit_and_signals_fail_with_stderr() {
        let e = run_capture(
            &sh("echo partial; echo 'sacct: error: slurmdbd down' >&2; exit 1"),
            Duration::from_secs(10),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RunError::Failed { .. }));
        assert!(
            text.ends_with("exited with status 1; its stderr:\nsacct: error: slurmdbd down"),
            "{text}"
        );
        let e = run_capture(&sh("kill -TERM $$"), Duration::from_secs(10)).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("was killed by signal 15; it wrote nothing to stderr"),
            "{e}"
        );
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let t0 = std::time::Instant::now();
        // The child `sleep` inherits stdout; only a group kill closes the pipe early.
        let e = run_capture(
            &sh("echo started; sleep 30; echo never"),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(e, RunError::Timeout { .. }), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }

    #[test]
    fn a_missing_program_is_unavailable() {
        let inv = Invocation {
            program: "/nonexistent/sacct".into(),
            args: vec![],
            tz: None,
        };
        assert!(matches!(
            run_capture(&inv, Duration::from_secs(1)),
            Err(RunError::Unavailable { .. })
        ));
    }
}

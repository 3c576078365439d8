//! Shared command-line plumbing: exit codes, argument parsing with argh, `--version`, and logging
//! to stderr.
//!
//! Every binary follows the same shape:
//!
//! ```no_run
//! use waldur_usage::cli::{self, Failure};
//!
//! #[derive(argh::FromArgs)]
//! /// Example tool.
//! struct Args {
//!     /// print the version and exit
//!     #[argh(switch)]
//!     version: bool,
//! }
//!
//! fn run(_args: Args) -> Result<(), Failure> {
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     cli::main("example-tool", run)
//! }
//! ```

use std::fmt;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// Exit statuses (sysexits.h), so wrappers and systemd can tell failures apart.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// A failure that fits no other class.
    pub const FAILURE: u8 = 1;
    /// Nothing failed, but something was held back or skipped (a decrease, a closed month, a
    /// month the server has not reached, an unknown account, an Erred resource): everything
    /// else was sent. The warnings name what.
    pub const HELD: u8 = 3;
    /// The command line was wrong.
    pub const USAGE: u8 = 64;
    /// Input data was malformed (a bad sacct line, a bad record).
    pub const DATAERR: u8 = 65;
    /// An input file does not exist or cannot be read.
    pub const NOINPUT: u8 = 66;
    /// A service (sacct, Waldur) is not available.
    pub const UNAVAILABLE: u8 = 69;
    /// An internal error: a bug, or (waldur-usage-report) a stage died of a broken pipe.
    pub const SOFTWARE: u8 = 70;
    /// A file cannot be created (waldur-usage-report: its lock file).
    pub const CANTCREAT: u8 = 73;
    /// Reading or writing failed.
    pub const IOERR: u8 = 74;
    /// A temporary failure: trying again later may work.
    pub const TEMPFAIL: u8 = 75;
    /// The remote side answered something we do not understand, or refused the request (4xx).
    pub const PROTOCOL: u8 = 76;
    /// Not allowed: bad credentials, missing staff rights, no right to write usage.
    pub const NOPERM: u8 = 77;
    /// The configuration file is wrong.
    pub const CONFIG: u8 = 78;

    /// Every status above with its name, in order: the README's and the man page's exit
    /// status tables are checked against it (tests/suite/man_pages.rs).
    pub const ALL: [(&str, u8); 14] = [
        ("OK", OK),
        ("FAILURE", FAILURE),
        ("HELD", HELD),
        ("USAGE", USAGE),
        ("DATAERR", DATAERR),
        ("NOINPUT", NOINPUT),
        ("UNAVAILABLE", UNAVAILABLE),
        ("SOFTWARE", SOFTWARE),
        ("CANTCREAT", CANTCREAT),
        ("IOERR", IOERR),
        ("TEMPFAIL", TEMPFAIL),
        ("PROTOCOL", PROTOCOL),
        ("NOPERM", NOPERM),
        ("CONFIG", CONFIG),
    ];
}

/// An error on its way out of a binary: the message chain and the exit status to use.
#[derive(Debug)]
pub struct Failure {
    /// Exit status, one of [`exit`].
    pub code: u8,
    /// What went wrong, with context.
    pub error: anyhow::Error,
}

impl Failure {
    /// A failure with an explicit exit status.
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
        }
    }

    /// True when the cause is a write to a pipe whose reader has gone (`EPIPE`).
    pub fn is_broken_pipe(&self) -> bool {
        self.error.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }

    /// A usage error (exit 64) with a plain message.
    pub fn usage(message: impl fmt::Display) -> Self {
        Failure::new(exit::USAGE, anyhow::anyhow!("{message}"))
    }
}

impl From<crate::sacct::pipeline::StopError> for Failure {
    /// slurm-usage's outcomes: bad records 65, a failed write 74, a wrong period count 64,
    /// failed periods the first one's status.
    fn from(e: crate::sacct::pipeline::StopError) -> Self {
        use crate::sacct::pipeline::StopError;
        let code = match &e {
            StopError::Input(_) => exit::DATAERR,
            StopError::Write(_) => exit::IOERR,
            StopError::PeriodCount(_) => exit::USAGE,
            StopError::Periods { code, .. } => *code,
        };
        Failure::new(code, e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl From<anyhow::Error> for Failure {
    /// Errors without an explicit class exit with status 1.
    fn from(error: anyhow::Error) -> Self {
        Failure {
            code: exit::FAILURE,
            error,
        }
    }
}

/// Attach an exit status to any `Result`.
pub trait ExitWith<T> {
    /// Turn the error into a [`Failure`] with exit status `code`.
    fn exit_with(self, code: u8) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> ExitWith<T> for Result<T, E> {
    fn exit_with(self, code: u8) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(code, e))
    }
}

/// Parse the process arguments into `A`, handle `--help` and `--version`, run `body`, and turn
/// its outcome into an exit status. Errors are printed as `tool: error: message`.
pub fn main<A, F>(tool: &str, body: F) -> ExitCode
where
    A: argh::FromArgs,
    F: FnOnce(A) -> Result<(), Failure>,
{
    set_tool_name(tool);
    let args = match parse_args::<A>(tool, std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(code) => return ExitCode::from(code),
    };
    match body(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_broken_pipe() => {
            // The reader went away (`| head`, or a later pipeline stage that failed and said
            // why): repeating "Broken pipe" would only bury the message that matters.
            log(
                Level::Debug,
                format_args!("stopped: the output was closed by its reader ({failure})"),
            );
            ExitCode::from(exit::IOERR)
        }
        Err(failure) => {
            let level = if failure.code == exit::HELD {
                Level::Warn
            } else {
                Level::Error
            };
            log(level, format_args!("{failure}"));
            ExitCode::from(failure.code)
        }
    }
}

/// Parse `args` (without the program name) for `tool`. Prints help or errors itself and returns
/// the exit status to use when the program should stop: 0 after `--help` or `--version`, 64
/// after a usage error.
pub fn parse_args<A: argh::FromArgs>(
    tool: &str,
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<A, u8> {
    let mut strings = Vec::new();
    for arg in args {
        match arg.into_string() {
            Ok(s) => strings.push(s),
            Err(raw) => {
                eprintln!("{tool}: error: argument {raw:?} is not valid UTF-8");
                return Err(exit::USAGE);
            }
        }
    }
    for arg in &strings {
        if arg == "--" {
            break;
        }
        if arg == "--version" || arg == "-V" {
            println!("{tool} {}", env!("CARGO_PKG_VERSION"));
            return Err(exit::OK);
        }
    }
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    match A::from_args(&[tool], &refs) {
        Ok(args) => Ok(args),
        Err(early) => match early.status {
            Ok(()) => {
                print!("{}", early.output);
                Err(exit::OK)
            }
            Err(()) => {
                eprintln!("{tool}: error: {}", early.output.trim_end());
                eprintln!("Run '{tool} --help' for the options.");
                Err(exit::USAGE)
            }
        },
    }
}

/// How much is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something looks wrong but work goes on.
    Warn = 1,
    /// Progress an operator wants to see.
    Info = 2,
    /// Details for troubleshooting.
    Debug = 3,
}

impl Level {
    /// Parse a level name as the site agent spells them (`DEBUG`, `INFO`, `WARNING`, `ERROR`,
    /// `CRITICAL`), in any case.
    pub fn parse(name: &str) -> Option<Level> {
        match name.trim().to_ascii_lowercase().as_str() {
            "error" | "critical" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// The syslog priority journald reads from a `<N>` prefix.
    fn syslog_priority(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static TOOL: OnceLock<String> = OnceLock::new();

fn set_tool_name(tool: &str) {
    let _ = TOOL.set(tool.to_string());
}

/// Set the log level from, in order of precedence: the `--log-level` flag, the
/// `WALDUR_SITE_AGENT_LOG_LEVEL` environment variable, the config's `log_level`.
/// An unknown name is a usage error.
pub fn init_logging(flag: Option<&str>, config_level: Option<&str>) -> Result<(), Failure> {
    let env = std::env::var("WALDUR_SITE_AGENT_LOG_LEVEL").ok();
    let (source, name) = if let Some(f) = flag {
        ("--log-level", f.to_string())
    } else if let Some(e) = env.filter(|e| !e.trim().is_empty()) {
        ("WALDUR_SITE_AGENT_LOG_LEVEL", e)
    } else if let Some(c) = config_level {
        ("log_level in the config", c.to_string())
    } else {
        return Ok(());
    };
    match Level::parse(&name) {
        Some(level) => {
            LEVEL.store(level as u8, Ordering::Relaxed);
            Ok(())
        }
        None => Err(Failure::usage(format!(
            "{source}: unknown log level {name:?} (use error, warning, info or debug)"
        ))),
    }
}

/// Is `level` currently logged?
pub fn enabled(level: Level) -> bool {
    (level as u8) <= LEVEL.load(Ordering::Relaxed)
}

/// Write one log line to stderr: `tool: level: message`, or with a `<N>` priority prefix when
/// stderr is connected to the systemd journal.
pub fn log(level: Level, message: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let tool = TOOL.get().map(String::as_str).unwrap_or("waldur-usage");
    let mut err = std::io::stderr().lock();
    let _ = if stderr_is_journal() {
        writeln!(err, "<{}>{tool}: {message}", level.syslog_priority())
    } else {
        writeln!(err, "{tool}: {}: {message}", level.label())
    };
}

/// True when stderr is the journal stream systemd gave us (`$JOURNAL_STREAM` names its device
/// and inode).
fn stderr_is_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
            return false;
        };
        if std::io::stderr().is_terminal() {
            return false;
        }
        let Some((dev, ino)) = stream.split_once(':') else {
            return false;
        };
        let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
            return false;
        };
        dev.parse::<u64>().ok() == Some(meta.dev()) && ino.parse::<u64>().ok() == Some(meta.ino())
    })
}

/// Log an error line (see [`log`]).
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::cli::log($crate::cli::Level::Error, format_args!($($arg)*)) };
}

/// Log a warning line (see [`log`]).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::cli::log($crate::cli::Level::Warn, format_args!($($arg)*)) };
}

/// Log an info line (see [`log`]).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::cli::log($crate::cli::Level::Info, format_args!($($arg)*)) };
}

/// Log a debug line (see [`log`]).
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::cli::log($crate::cli::Level::Debug, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(argh::FromArgs, Debug)]
    /// Test tool.
    struct Args {
        /// a number
        #[argh(option)]
        n: u32,
    }

    fn parse(args: &[&str]) -> Result<Args, u8> {
        parse_args::<Args>("t", args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn usage_errors_exit_64() {
        assert_eq!(parse(&["--bogus"]).unwrap_err(), exit::USAGE);
        assert_eq!(parse(&["--n", "x"]).unwrap_err(), exit::USAGE);
    }

    #[test]
    fn help_and_version_exit_0_even_without_required_options() {
        assert_eq!(parse(&["--help"]).unwrap_err(), exit::OK);
        assert_eq!(parse(&["--version"]).unwrap_err(), exit::OK);
        assert_eq!(parse(&["--n", "3"]).unwrap().n, 3);
    }

    #[test]
    fn level_names_follow_the_site_agent() {
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse("critical"), Some(Level::Error));
        assert_eq!(Level::parse("loud"), None);
    }
}

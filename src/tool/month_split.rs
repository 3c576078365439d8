//! `month-split`: its flags and its main flow (see [`crate::period`]).

use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;

use super::flags::tool_args;
use crate::cli::{self, ExitWith, Failure, exit};
use crate::config::Config;
use crate::period::{self, MAX_MONTHS, PeriodError};
use crate::records::{MonthRecord, Record, RecordWriter};
use crate::{debug, info};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Tsv,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Format::Json),
            "tsv" => Ok(Format::Tsv),
            other => Err(format!("unknown format {other:?}; use json or tsv")),
        }
    }
}

tool_args! {
    /// Print the monthly billing periods to report, one `period` record per line, oldest first.
    /// A period is a calendar month in the site's time zone: start at local midnight on the 1st,
    /// end (exclusive) at local midnight on the 1st of the next month, both in RFC 3339 with the UTC
    /// offset in force then. Without --start, --current or --previous it prints the reporting
    /// cycle: the current month and, with -c, the config's reporting_periods - 1 months before it.
    #[argh(
        example = "The reporting cycle of a config (current month + reporting_periods - 1 before):\n  {command_name} -c /etc/waldur/waldur-site-agent-config.yaml",
        example = "This month and last month, in Tallinn time:\n  {command_name} --current --previous 1 --tz Europe/Tallinn",
        example = "Backfill 2024 (inclusive days; every month they touch):\n  {command_name} -c cfg.yaml --start 2024-01-01 --end 2024-12-31 | slurm-usage -c cfg.yaml | ...",
        example = "Loop over months in shell:\n  {command_name} --start 2024-01 --end 2024-06 --format tsv |\n    while IFS=$'\\t' read -r period start end index count closed; do\n      echo \"month $index/$count: $period\"\n    done",
        example = "What would the 00:10 run on March 1st report?\n  {command_name} --current --previous 1 --tz Europe/Berlin --now 2024-03-01T00:10:00+01:00",
        note = "--start and --end take YYYY-MM-DD (inclusive) or YYYY-MM (the whole month); --end defaults to today. A range may cover at most 120 months (10 years).\nThe current period's end is the end of the month; slurm-usage clamps its query to now. `closed` is true when the whole period is in the past.\nTSV columns: period, start, end, index, count, closed (no header).",
        error_code(
            64,
            "bad command line: end before start, malformed date, unknown time zone, range over 10 years"
        ),
        error_code(78, "bad configuration file")
    )]
    pub struct Args {
        /// the waldur-site-agent config; gives `timezone` and `reporting_periods` (optional)
        #[argh(option, short = 'c')]
        config: Option<PathBuf>,
        shared start,
        shared end,
        /// the month containing now
        #[argh(switch)]
        current: bool,
        /// the N months before the current one (with -c and --current: reporting_periods - 1)
        #[argh(option)]
        previous: Option<u32>,
        shared now,
        shared tz,
        /// output format: json (JSON Lines records, the default) or tsv
        #[argh(option, default = "Format::Json")]
        format: Format,
        shared log_level,
        shared version,
    }
}

/// A period error as a usage error, with a concrete way to split a range that is too long.
fn usage_error(
    error: PeriodError,
    range: Option<(jiff::civil::Date, jiff::civil::Date)>,
) -> Failure {
    match (&error, range) {
        (PeriodError::RangeTooLong { months }, Some((start, end))) => {
            let runs: Vec<String> = period::split_range(start, end)
                .iter()
                .map(|(s, e)| format!("--start {s} --end {e}"))
                .collect();
            Failure::usage(format!(
                "{start} to {end} covers {months} months, more than the limit of {MAX_MONTHS} \
                 (10 years); split it into runs of at most 10 years: {}",
                runs.join(", then ")
            ))
        }
        _ => Failure::usage(error),
    }
}

/// The tool: the months to report, written as `period` records or TSV on stdout.
pub fn run(args: Args) -> Result<(), Failure> {
    let _ = args.version; // handled by cli::main
    cli::init_logging(args.log_level.as_deref(), None)?;
    let config = match &args.config {
        Some(path) => Some(Config::load(path).exit_with(exit::CONFIG)?),
        None => None,
    };
    if let Some(c) = &config {
        cli::init_logging(args.log_level.as_deref(), c.log_level.as_deref())?;
    }
    let tz = match (&args.tz, &config) {
        (Some(tz), _) => tz.clone(),
        (None, Some(c)) => c.timezone.clone(),
        (None, None) => "UTC".to_string(),
    };
    period::zone(&tz).map_err(|e| usage_error(e, None))?;
    let now = match &args.now {
        Some(text) => period::parse_instant("--now", text).map_err(|e| usage_error(e, None))?,
        None => period::now().exit_with(exit::UNAVAILABLE)?,
    };

    let range_given = args.start.is_some() || args.end.is_some();
    let periods = if range_given {
        if args.current || args.previous.is_some() {
            return Err(Failure::usage(
                "--start/--end pick the months themselves; do not combine them with --current \
                 or --previous",
            ));
        }
        let Some(start_text) = &args.start else {
            return Err(Failure::usage(
                "--end needs --start (the first day of the range)",
            ));
        };
        let start = period::parse_bound(start_text, false).map_err(|e| usage_error(e, None))?;
        let end = match &args.end {
            Some(text) => period::parse_bound(text, true).map_err(|e| usage_error(e, None))?,
            None => now
                .to_zoned(period::zone(&tz).map_err(|e| usage_error(e, None))?)
                .date(),
        };
        period::periods_between(&tz, start, end, now)
            .map_err(|e| usage_error(e, Some((start, end))))?
    } else {
        // The reporting cycle: --current is the default; the config's reporting_periods gives
        // the number of earlier months unless --previous says otherwise.
        let current = args.current || args.previous.is_none();
        let previous = match (args.previous, &config) {
            (Some(n), _) => n,
            (None, Some(c)) => c.reporting_periods.saturating_sub(1),
            (None, None) => 0,
        };
        if current {
            period::current_and_previous(&tz, now, previous).map_err(|e| usage_error(e, None))?
        } else if previous == 0 {
            return Err(Failure::usage(
                "--previous 0 without --current selects no month",
            ));
        } else {
            period::months_before(&tz, now, previous).map_err(|e| usage_error(e, None))?
        }
    };
    debug!("{} periods in {tz} at {now}", periods.len());
    write(&periods, args.format).exit_with(exit::IOERR)?;
    if let (Some(first), Some(last)) = (periods.first(), periods.last()) {
        info!(
            "periods: {} ({} to {}, {tz})",
            periods.len(),
            first.period,
            last.period
        );
    }
    Ok(())
}

fn write(periods: &[MonthRecord], format: Format) -> io::Result<()> {
    let stdout = io::stdout().lock();
    match format {
        Format::Json => {
            let mut w = RecordWriter::new(stdout);
            for p in periods {
                w.write(&Record::Period(p.clone()))?;
            }
            w.flush()
        }
        Format::Tsv => {
            let mut w = io::BufWriter::new(stdout);
            for p in periods {
                writeln!(
                    w,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    p.period, p.start, p.end, p.index, p.count, p.closed
                )?;
            }
            w.flush()
        }
    }
}

//! `slurm-usage`: its flags and its main flow (see [`crate::sacct`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::flags::tool_args;
use crate::cli::{self, ExitWith, Failure, exit};
use crate::config::{self, Compat, Config};
use crate::period;
use crate::sacct::check::{CheckSettings, run_checks};
use crate::sacct::command::tool_path;
use crate::sacct::line::{AccountFilter, Layout, default_format};
use crate::sacct::pipeline::{self, Periods, Settings, Source};

tool_args! {
    #[argh(
        description = "Sum SLURM usage per account and per user, exactly, from sacct.\n\n\
        For each billing period (period records on stdin, or --period / --start --end) it runs\n\
        sacct over the period's window in the configured time zone, and writes JSON Lines: the\n\
        period record, one tres record per account (user null: the account total) and per user\n\
        in it, with integer TRES x seconds (memory in MiB x seconds), then period_end. Usage is\n\
        AllocTRES x ElapsedRaw; --compat reference uses the Python agent's ReqTRES x Elapsed.\n\
        A period whose sacct fails, times out or prints a bad line writes no records at all;\n\
        the other periods still run and the exit status says what failed.",
        example = "\
        month-split -c cfg.yaml --current --previous 1 | {command_name} -c cfg.yaml | usage-convert -c cfg.yaml\n\
        {command_name} -c cfg.yaml --period 2024-03 --accounts hpc_alloc1,hpc_alloc2\n\
        {command_name} --period 2024-03 --input sacct-2024-03.txt | jq .\n\
        {command_name} --period 2024-03 --input a1.txt --fields Account,ReqTRES,Elapsed,User --compat reference\n\
        {command_name} -c cfg.yaml --check",
        note = "Saved input (--input) may have a header line; without one its columns are those of the\n\
        default query (JobIDRaw,Account,User,State,ElapsedRaw,AllocTRES,ReqTRES) or --fields.\n\
        Without a config file, --input uses UTC and no account prefix unless --tz / --prefix.",
        error_code(64, "bad command line"),
        error_code(65, "bad sacct output or input records (the line is named)"),
        error_code(66, "--input file missing"),
        error_code(69, "sacct (or sacctmgr, sinfo) missing or not answering"),
        error_code(75, "sacct failed or timed out: try again later"),
        error_code(78, "configuration error")
    )]
    pub struct Args {
        shared config,

        shared offering,

        shared period,

        shared start,

        shared end,

        shared now,

        shared input,

        /// columns of --input without a header line, comma-separated (e.g. Account,ReqTRES,Elapsed,User)
        #[argh(option)]
        fields: Option<String>,

        shared tz,

        /// report only accounts starting with PREFIX (default: the config's allocation_prefix)
        #[argh(option)]
        prefix: Option<String>,

        /// report only these accounts, comma-separated (passed to sacct as --accounts)
        #[argh(option)]
        accounts: Option<String>,

        /// formula: exact (AllocTRES x ElapsedRaw, default) or reference (ReqTRES x Elapsed)
        #[argh(option)]
        compat: Option<String>,

        /// write one job record per allocation instead of the per-account sums (audit)
        #[argh(switch)]
        jobs: bool,

        /// count malformed sacct lines in period_end.skipped_lines instead of failing the period
        #[argh(switch)]
        skip_bad_lines: bool,

        /// seconds after which sacct is killed and its period fails (default 600)
        #[argh(option, default = "600")]
        timeout: u64,

        /// check that sacct, sacctmgr and sinfo answer, the cluster is known and accounts exist
        #[argh(switch)]
        check: bool,

        /// with --check: print the findings as one JSON object
        #[argh(switch)]
        json: bool,

        shared log_level,

        shared version,
    }
}

fn load_config(args: &Args) -> Result<Option<Config>, Failure> {
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(config::DEFAULT_PATH), false),
    };
    if !explicit && args.input.is_some() && !Path::new(&path).exists() {
        return Ok(None);
    }
    Config::load(&path).map(Some).exit_with(exit::CONFIG)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

/// The tool: sums per account and user for each period, or `--check`.
pub fn run(args: Args) -> Result<(), Failure> {
    let _ = args.version;
    let config = load_config(&args)?;
    cli::init_logging(
        args.log_level.as_deref(),
        config.as_ref().and_then(|c| c.log_level.as_deref()),
    )?;
    if let Some(c) = &config {
        if c.readable_by_others {
            crate::debug!("{} is readable by group or others", c.file);
        }
    }
    let offering = match &config {
        Some(c) => Some(
            c.offering(args.offering.as_deref())
                .exit_with(exit::CONFIG)?,
        ),
        None => None,
    };
    let backend = offering.map(|o| &o.backend);

    // Flags that only make sense together.
    if args.period.is_some() && (args.start.is_some() || args.end.is_some()) {
        return Err(Failure::usage(
            "give either --period or --start/--end, not both",
        ));
    }
    if args.start.is_some() != args.end.is_some() {
        return Err(Failure::usage("--start and --end go together"));
    }
    if args.fields.is_some() && args.input.is_none() {
        return Err(Failure::usage(
            "--fields describes --input; it needs --input",
        ));
    }
    if args.json && !args.check {
        return Err(Failure::usage("--json is an output style of --check"));
    }
    if args.prefix.is_some() && args.accounts.is_some() {
        return Err(Failure::usage(
            "give either --prefix or --accounts, not both",
        ));
    }
    if args.timeout == 0 {
        return Err(Failure::usage("--timeout must be at least 1 second"));
    }

    let timezone = match (&args.tz, &config) {
        (Some(tz), _) => tz.clone(),
        (None, Some(c)) => c.timezone.clone(),
        (None, None) => "UTC".to_string(),
    };
    period::zone(&timezone).map_err(|e| Failure::usage(format!("--tz: {e}")))?;
    let compat = match &args.compat {
        Some(c) => Compat::parse(c).ok_or_else(|| {
            Failure::usage(format!(
                "--compat: expected exact or reference, found {c:?}"
            ))
        })?,
        None => backend.map(|b| b.compat).unwrap_or_default(),
    };
    let accounts = args.accounts.as_deref().map(split_list);
    if accounts.as_ref().is_some_and(Vec::is_empty) {
        return Err(Failure::usage("--accounts: name at least one account"));
    }
    let filter = match (&accounts, &args.prefix) {
        (Some(list), _) => AccountFilter::List(list.clone()),
        (None, Some(p)) => AccountFilter::Prefix(p.clone()),
        (None, None) => match backend.and_then(|b| b.allocation_prefix.clone()) {
            Some(p) => AccountFilter::Prefix(p),
            None => AccountFilter::All,
        },
    };
    let bin_path = backend
        .filter(|b| b.slurm_bin_path_given)
        .map(|b| b.slurm_bin_path.as_path());
    let cluster = backend.and_then(|b| b.cluster_name.clone());
    let timeout = Duration::from_secs(args.timeout);

    if args.check {
        let tres = offering.map(|o| o.tres_read()).unwrap_or_default();
        let report = run_checks(&CheckSettings {
            bin_path,
            cluster: cluster.as_deref(),
            filter: &filter,
            timeout: timeout.min(Duration::from_secs(60)),
            tres: &tres,
        });
        if args.json {
            println!("{}", report.json());
        } else {
            print!("{}", report.human());
        }
        return match report.exit_code() {
            exit::OK => Ok(()),
            code => Err(Failure::new(
                code,
                anyhow::anyhow!("--check found problems"),
            )),
        };
    }

    let now = match &args.now {
        Some(t) => period::parse_instant("--now", t).map_err(|e| Failure::usage(e.to_string()))?,
        None => period::now().exit_with(exit::UNAVAILABLE)?,
    };
    let layout = match &args.fields {
        Some(f) => Layout::from_format(f, compat),
        None => Layout::from_format(default_format(compat), compat),
    }
    .map_err(|e| Failure::usage(format!("--fields: {e}")))?;
    let source = match args.input.as_deref() {
        None => Source::Sacct,
        Some("-") => Source::Stdin,
        Some(f) => Source::File(PathBuf::from(f)),
    };
    let usage = |e: period::PeriodError| Failure::usage(e);
    let periods = if let Some(p) = &args.period {
        let (y, m) = period::parse_month(p).map_err(usage)?;
        Periods::Given(vec![
            period::month_period(&timezone, y, m, now).map_err(usage)?,
        ])
    } else if let (Some(s), Some(e)) = (&args.start, &args.end) {
        let list = period::periods_between(
            &timezone,
            period::parse_bound(s, false).map_err(usage)?,
            period::parse_bound(e, true).map_err(usage)?,
            now,
        )
        .map_err(usage)?;
        if source != Source::Sacct && list.len() != 1 {
            return Err(Failure::usage(format!(
                "--input holds the sacct output of one period, but --start/--end cover {} months",
                list.len()
            )));
        }
        Periods::Given(list)
    } else {
        if source == Source::Stdin {
            return Err(Failure::usage(
                "--input - reads sacct output from stdin, so the period must be given with --period",
            ));
        }
        if std::io::stdin().is_terminal() {
            crate::info!(
                "reading period records from stdin (pipe month-split in, or give --period YYYY-MM)"
            );
        }
        Periods::Stdin
    };
    let settings = Settings {
        source,
        compat,
        filter,
        accounts,
        cluster,
        sacct: tool_path(bin_path, "sacct"),
        timezone,
        timeout,
        skip_bad_lines: args.skip_bad_lines,
        jobs: args.jobs,
        layout,
        now,
    };
    let stdout = std::io::stdout().lock();
    let summary = match periods {
        Periods::Stdin => pipeline::run(&settings, periods, std::io::stdin().lock(), stdout)?,
        // stdin may carry --input -; period records are not read from it.
        given => pipeline::run(&settings, given, std::io::empty(), stdout)?,
    };
    Ok(summary.into_result()?)
}

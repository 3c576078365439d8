//! `usage-convert`: its flags and its main flow (see [`crate::convert`]).

use std::io;
use std::path::PathBuf;

use super::flags::tool_args;
use crate::cli::{self, ExitWith, Failure, exit};
use crate::config::{self, Config};
use crate::convert::{self, Converter, StreamError};
use crate::{debug, info, warn};

tool_args! {
    /// Convert slurm-usage's `tres` records (TRES x seconds) on stdin into `usage` records in Waldur
    /// units on stdout, using the unit_factor and target_components of the config's
    /// backend_components. Exact arithmetic, rounded once, half to even, to 2 decimal places.
    /// `period` and `period_end` records pass through unchanged.
    #[argh(
        example = "Convert one saved month and look at it:\n  slurm-usage -c cfg.yaml --period 2024-03 --input sacct-2024-03.txt | {command_name} -c cfg.yaml | jq .",
        example = "The reporting cycle:\n  month-split -c cfg.yaml | slurm-usage -c cfg.yaml | {command_name} -c cfg.yaml | waldur-push -c cfg.yaml",
        note = "Passthrough component c: amount = tres_seconds[c] / 60 / unit_factor (unit_factor is per TRES-minute, as in the site agent: cpu 60000 = k-Hours, mem 61440 = GiB-hours from MiB).\nMapped component (target_components): amount = sum(tres_seconds[t] / 60 / factor[t]) / unit_factor, unit_factor 1 when not given. Unlike the Python agent, unit_factor is applied in mapping mode and amounts keep 2 decimals; see README.md, \"How our numbers differ from the Python agent's\".\nAccount totals (user null) carry every component (\"0.00\" when unused) and are converted from the raw total, not summed from rounded users. User records carry the components whose TRES they have. A TRES no component reads is ignored.",
        error_code(64, "bad command line"),
        error_code(
            65,
            "bad input: not a tres record stream (e.g. already converted), or an amount too large to compute exactly; the message names the line"
        ),
        error_code(74, "reading or writing failed"),
        error_code(
            78,
            "bad configuration, e.g. unit_factor or factor not a number greater than 0"
        )
    )]
    pub struct Args {
        shared config,
        shared offering,
        shared log_level,
        shared version,
    }
}

/// The tool: `tres` records on stdin to `usage` records on stdout.
pub fn run(args: Args) -> Result<(), Failure> {
    let _ = args.version; // handled by cli::main
    cli::init_logging(args.log_level.as_deref(), None)?;
    let path = args
        .config
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let config = Config::load(&path).exit_with(exit::CONFIG)?;
    cli::init_logging(args.log_level.as_deref(), config.log_level.as_deref())?;
    let offering = config
        .offering(args.offering.as_deref())
        .exit_with(exit::CONFIG)?;
    let converter = Converter::new(offering).exit_with(exit::CONFIG)?;
    for rule in converter.rules() {
        let sources: Vec<String> = rule
            .sources
            .iter()
            .map(|(tres, m)| format!("{tres} x {}/{}", m.numer(), m.denom()))
            .collect();
        debug!("{} = {}", rule.component, sources.join(" + "));
    }
    let stats = convert::convert_stream(&converter, io::stdin().lock(), io::stdout().lock())
        .map_err(|e| {
            let code = match &e {
                StreamError::Read(crate::records::RecordError::Io(_)) | StreamError::Write(_) => {
                    exit::IOERR
                }
                _ => exit::DATAERR,
            };
            Failure::new(code, e)
        })?;
    if !stats.unused_tres.is_empty() {
        let names: Vec<&str> = stats.unused_tres.iter().map(String::as_str).collect();
        debug!("ignored TRES that no component reads: {}", names.join(", "));
    }
    for period in &stats.unterminated {
        warn!(
            "period {period}: the input ended before its period_end; an upstream stage failed or \
             was cut short, so nothing of {period} will be submitted"
        );
    }
    info!(
        "converted {} records in {} periods (offering {:?})",
        stats.converted, stats.periods, offering.name
    );
    Ok(())
}

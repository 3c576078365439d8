//! `slurm-usage --check`: are the SLURM tools there and answering, is the configured cluster
//! known, which accounts would be reported. Each finding says what to fix.
//!
//! This room owns the diagnostics and their wording; it must not know periods, parsing or
//! sums. `report` holds the findings, `run` the checks in order, `daemons` asking a tool and
//! pinging the daemons when one failed.

mod daemons;
mod report;
mod run;

#[cfg(test)]
mod tests;

pub use daemons::{Ping, read_scontrol_ping, read_slurmdbd_ping};
pub use report::{Check, CheckReport};
pub use run::{CheckSettings, accounted_tres, run_checks};

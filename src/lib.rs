//! waldur-usage: SLURM usage reporting for Waldur Mastermind.
//!
//! The crate is a pipeline of small tools (`month-split`, `slurm-usage`, `usage-convert`,
//! `waldur-push`) that talk JSON Lines to each other. Everything except argument parsing lives
//! in this library; each binary in `src/bin/` is a thin `main` that calls its module in [`tool`].
//!
//! Modules, one concern each:
//! - [`records`]: the JSON Lines record contract between the tools;
//! - [`config`]: the waldur-site-agent YAML model and its validation;
//! - [`cli`]: shared command-line plumbing: exit codes, logging, `--version`;
//! - [`period`]: monthly billing periods in an IANA time zone;
//! - [`sacct`]: running sacct, parsing its output with nom, aggregating TRES x seconds;
//! - [`decimal`]: exact decimal numbers: the two-place [`decimal::Amount`] that usage is billed
//!   in and Waldur stores, and the any-scale decimals of the config; one parser for their text;
//!   no floats anywhere;
//! - [`convert`]: unit factors, component mapping, exact fractions and their rounding;
//! - [`waldur`]: the Waldur REST client (transport, auth, typed endpoints), nothing more;
//! - [`push`]: the application behind `waldur-push`: input, plan, POSTs, read-back, checks;
//! - [`metrics`]: run metrics for Prometheus's textfile collector;
//! - [`tool`]: one module per binary: its flags (the shared ones declared once) and its flow;
//! - [`hash`] and [`json_line`]: the hot loops' hasher and hand-written JSON output.

pub mod cli;
pub mod config;
pub mod convert;
pub mod decimal;
pub mod hash;
pub mod json_line;
pub mod metrics;
pub mod period;
pub mod push;
pub mod records;
pub mod sacct;
pub mod tool;
pub mod waldur;

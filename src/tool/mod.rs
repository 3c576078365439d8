//! One module per binary: its flags and its main flow; src/bin/ only calls them.
//!
//! Each tool module declares its argh `Args` (with the shared flags of `flags`, written once)
//! and a `run(args)` that `cli::main` calls. This room must not hold logic of its own beyond
//! reading flags: parsing, sums, conversion and the Waldur client live in their own rooms.

mod flags;

pub mod month_split;
pub mod slurm_usage;
pub mod usage_convert;
pub mod waldur_push;

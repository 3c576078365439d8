//! Helpers of the end-to-end tests against a real SLURM (`tests/suite/e2e_slurm.rs`,
//! `tests/suite/e2e_diagnose.rs`).
//!
//! Each test crate uses a different part of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

pub mod cluster;
pub mod mix;
pub mod oracle;
pub mod pipeline;

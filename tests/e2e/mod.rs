//! Helpers of the end-to-end test against a real SLURM (`tests/e2e_slurm.rs`).

pub mod cluster;
pub mod mix;
pub mod oracle;
pub mod pipeline;

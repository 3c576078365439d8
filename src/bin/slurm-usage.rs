//! `slurm-usage`: sacct -> exact per-account, per-user TRES x seconds (JSON Lines).
//!
//! The flags and the flow are in `waldur_usage::tool::slurm_usage`.

fn main() -> std::process::ExitCode {
    waldur_usage::cli::main("slurm-usage", waldur_usage::tool::slurm_usage::run)
}

//! `usage-convert`: turn slurm-usage's `tres` records (TRES x seconds) into `usage` records in
//! Waldur units, exactly. See `waldur_usage::convert`.
//! The flags and the flow are in `waldur_usage::tool::usage_convert`.

fn main() -> std::process::ExitCode {
    waldur_usage::cli::main("usage-convert", waldur_usage::tool::usage_convert::run)
}

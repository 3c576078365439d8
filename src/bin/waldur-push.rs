//! `waldur-push`: submit usage records to Waldur, only what changed, never a partial month.
//!
//! The flags and the run are in `waldur_usage::tool::waldur_push`.

use waldur_usage::cli;
use waldur_usage::tool::waldur_push;

fn main() -> std::process::ExitCode {
    cli::main("waldur-push", waldur_push::run)
}

//! `waldur-push`: not implemented yet; see its issue.

use waldur_usage::cli::{self, Failure};

#[derive(argh::FromArgs)]
/// Not implemented yet.
struct Args {}

fn run(_args: Args) -> Result<(), Failure> {
    Err(Failure::new(
        cli::exit::SOFTWARE,
        anyhow::anyhow!("waldur-push is not implemented yet"),
    ))
}

fn main() -> std::process::ExitCode {
    cli::main("waldur-push", run)
}

//! Standalone fake Waldur server for shell tests and benchmarks.
//!
//! ```text
//! cargo run --example fake-waldur -- --setup setup.json [--port N] [--latency-ms N] [--log FILE]
//! ```
//!
//! Prints its base URL (`http://127.0.0.1:PORT/api/`) as the first line of stdout, then
//! serves until it is killed or its stdin closes. `--setup` is a JSON [`Setup`]
//! (`latency` in milliseconds); `--setup small`, `--setup sample` (the offering of
//! `sample/waldur-site-agent-config.yaml`, for `shell/demo --against-fake`) and
//! `--setup large:R:U` use the built-in setups. `--log` appends the request log as JSON Lines (tokens replaced by user names).

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;
use support::fake_waldur::{FakeWaldur, Setup};

/// Run a fake Waldur Mastermind server on 127.0.0.1.
#[derive(FromArgs)]
struct Args {
    /// setup JSON file, or "small", "sample" (the offering of sample/), or
    /// "large:RESOURCES:USERS"
    #[argh(option)]
    setup: String,
    /// port to listen on (default: any free port)
    #[argh(option, default = "0")]
    port: u16,
    /// latency added to every request, in milliseconds (overrides the setup)
    #[argh(option)]
    latency_ms: Option<u64>,
    /// append the request log as JSON Lines to this file
    #[argh(option)]
    log: Option<String>,
}

fn load_setup(spec: &str) -> Result<Setup, String> {
    if spec == "small" {
        return Ok(Setup::small());
    }
    if spec == "sample" {
        return Ok(Setup::sample());
    }
    if let Some(rest) = spec.strip_prefix("large:") {
        let (r, u) = rest
            .split_once(':')
            .ok_or("expected large:RESOURCES:USERS")?;
        let r = r.parse().map_err(|e| format!("resources {r:?}: {e}"))?;
        let u = u.parse().map_err(|e| format!("users {u:?}: {e}"))?;
        return Ok(Setup::large(r, u));
    }
    let text = std::fs::read_to_string(spec).map_err(|e| format!("{spec}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{spec}: {e}"))
}

fn run(args: Args) -> Result<(), String> {
    let mut setup = load_setup(&args.setup)?;
    if let Some(ms) = args.latency_ms {
        setup.latency = Duration::from_millis(ms);
    }
    let fake = FakeWaldur::start_on(setup, args.port)?;
    if let Some(path) = &args.log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{path}: {e}"))?;
        fake.log_to(Box::new(std::io::LineWriter::new(file)));
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", fake.base_url()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    // Serve until stdin reaches end of file (or the process is killed).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(fake);
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-waldur: {e}");
            ExitCode::from(78)
        }
    }
}

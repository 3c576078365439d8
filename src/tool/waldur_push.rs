//! `waldur-push`: its flags and its main flow, from the parsed command line to the exit
//! status; the work itself is in [`crate::push`] and [`crate::waldur`].

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::flags::tool_args;
use crate::cli::{self, ExitWith, Failure, exit};
use crate::config::{self, Config};
use crate::metrics::{RecordCounts, RunMetrics};
use crate::period::{self, BillingZones};
use crate::push::pusher::{MonthOutcome, PushOptions, Pusher};
use crate::push::render::{self, ResultWriter};
use crate::push::stream;
use crate::push::{check, register};
use crate::waldur::auth::{self, TokenSources};
use crate::waldur::error::ApiError;
use crate::waldur::http::{Client, ClientOptions, RetryPolicy};
use crate::waldur::url::ApiBase;
use crate::{debug, error, info, warn};

tool_args! {
    /// The command line of `waldur-push`. The `argh` attributes and the doc comments of the
    /// fields are its `--help` text, word for word.
    #[argh(
        description = "Submit usage records to Waldur: only what changed, never a partial month.\n\n\
        Reads usage records (from usage-convert) on stdin. A period is acted on only after its\n\
        period_end arrived with the announced number of records; a stream cut short submits\n\
        nothing of the cut period and exits non-zero. Per period it reads what Waldur holds for\n\
        the whole offering and POSTs only resources whose values differ (set_usage), then per\n\
        component the per-user values that differ (set_user_usages, or set_user_usage per user\n\
        on an older Waldur). A value lower than Waldur's is held back unless --allow-decrease.\n\
        Past (closed) months need --staff and a staff token. Writes one result record per\n\
        decision on stdout and a summary line per period on stderr.",
        example = "\
        month-split -c cfg.yaml --current --previous 1 | slurm-usage -c cfg.yaml \\\n      | usage-convert -c cfg.yaml | {command_name} -c cfg.yaml\n\
        ... | {command_name} -c cfg.yaml --staff --token-file /run/keys/staff-token\n\
        ... | {command_name} -c cfg.yaml --dry-run | jq -c 'select(.status==\"dry_run\") | .request'\n\
        {command_name} -c cfg.yaml --offline < usage.jsonl\n\
        {command_name} -c cfg.yaml --check",
        note = "The token comes from, in order: --token (warns: ps shows it), --token-file,\n\
        $CREDENTIALS_DIRECTORY/waldur-api-token, /etc/waldur/waldur-api-token, $WALDUR_API_TOKEN,\n\
        waldur_api_token in the config, or OIDC client credentials in the config. It is never\n\
        printed.\n\
        Plain http is refused except for loopback hosts or with --allow-insecure-http.",
        error_code(
            3,
            "something was held back or skipped (a decrease, a closed month, an unknown account, an \
             Erred resource): everything else was sent"
        ),
        error_code(64, "bad command line"),
        error_code(
            65,
            "bad or incomplete input: nothing of the affected periods was sent"
        ),
        error_code(
            69,
            "--check found the clock off, or a staff backfill this server cannot file"
        ),
        error_code(
            75,
            "a request failed temporarily (5xx, 429, timeouts, refused connections): the next \
             cycle sends it"
        ),
        error_code(76, "Waldur refused a request (4xx)"),
        error_code(
            77,
            "token refused or missing, missing rights (--check --write: cannot write), or not staff \
             with --staff"
        ),
        error_code(78, "configuration error")
    )]
    pub struct Args {
        shared config,

        shared offering,

        /// read the API token from this file
        #[argh(option)]
        token_file: Option<PathBuf>,

        /// the API token itself (visible to other users in ps: prefer --token-file)
        #[argh(option)]
        token: Option<String>,

        /// the token is a staff token: allow past (closed) months, checked against users/me
        #[argh(switch)]
        staff: bool,

        /// send values lower than what Waldur holds (held back and reported by default)
        #[argh(switch)]
        allow_decrease: bool,

        /// read from Waldur but send nothing; print the POSTs as result records with status dry_run
        #[argh(switch)]
        dry_run: bool,

        /// no network at all: print the payloads per account
        #[argh(switch)]
        offline: bool,

        /// check token, offering, components, resources, offering users and clock skew, then exit
        #[argh(switch)]
        check: bool,

        /// read-only: compare what Waldur holds for each period of the input with the usage
        /// records, per resource, component and user, and print a table (statuses ok, missing,
        /// differs, extra, unlinked); exits 0 only when everything agrees
        #[argh(switch)]
        audit: bool,

        /// write run metrics for Prometheus (node_exporter's textfile collector) to this file,
        /// atomically, after a push or an audit: last run and success, records by status,
        /// requests by code, duration, audit differences
        #[argh(option)]
        metrics_file: Option<PathBuf>,

        /// with --audit: print JSON lines (kind "audit") instead of the table
        #[argh(switch)]
        json: bool,

        /// print the config's offerings as JSON lines (name, uuid, cluster_name), then exit; no
        /// network (the wrappers use it to run every offering)
        #[argh(switch)]
        list_offerings: bool,

        /// with --check: test write access by re-sending one stored usage value of this month
        /// unchanged (set_usage); without it write access is reported as unknown
        #[argh(switch)]
        write: bool,

        /// POST requests in flight at once (default 4)
        #[argh(option, default = "4")]
        concurrency: usize,

        /// timeout of one HTTP attempt in seconds (default 60)
        #[argh(option, default = "Seconds(60.0)")]
        timeout: Seconds,

        /// retries of a failed request: 5xx, 429, connection errors, timeouts (default 6)
        #[argh(option, default = "6")]
        retries: u32,

        /// longest wait between retries in seconds (default 30)
        #[argh(option, default = "Seconds(30.0)")]
        retry_max_delay: Seconds,

        /// how long the run may talk to Waldur, in seconds from its first request (default 900):
        /// then nothing more is sent, and the summary names what was not (exit 75)
        #[argh(option, default = "Seconds(900.0)")]
        max_run_time: Seconds,

        /// most pages one Waldur listing may have before the run stops with exit 76, for a
        /// server whose pagination never ends (default 2000, 600,000 rows)
        #[argh(option, default = "2000")]
        max_pages: u64,

        /// allow plain http to a host that is not a loopback address
        #[argh(switch)]
        allow_insecure_http: bool,

        /// do not register the agent identity in Waldur
        #[argh(switch)]
        no_register: bool,

        shared now,

        /// the Waldur server's time zone (its TIME_ZONE setting), in which it decides which month
        /// usage is filed under (default: waldur_timezone in the config, else UTC)
        #[argh(option)]
        waldur_timezone: Option<String>,

        shared log_level,

        shared version,
    }
}

/// A positive number of seconds, fractions allowed.
#[derive(Debug, Clone, Copy)]
struct Seconds(f64);

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().parse::<f64>() {
            Ok(v) if (0.0..=86_400.0).contains(&v) => Ok(Seconds(v)),
            _ => Err(format!("expected seconds (0 to 86400), found {s:?}")),
        }
    }
}

impl Seconds {
    fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

/// The whole run of `waldur-push` after its command line was parsed: the checks of the
/// flags, the config, then one of `--list-offerings`, `--offline`, `--check`, `--audit` or a
/// push (with `--dry-run`, a push that sends nothing).
pub fn run(args: Args) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    cli::init_logging(args.log_level.as_deref(), None)?;
    let modes = [args.dry_run, args.offline, args.check, args.audit]
        .iter()
        .filter(|m| **m)
        .count();
    if modes > 1 {
        return Err(Failure::usage(
            "--dry-run, --offline, --check and --audit exclude each other",
        ));
    }
    if args.json && !args.audit {
        return Err(Failure::usage("--json is an output style of --audit"));
    }
    if args.write && !args.check {
        return Err(Failure::usage("--write is only for --check"));
    }
    if !(1..=64).contains(&args.concurrency) {
        return Err(Failure::usage("--concurrency: expected 1 to 64"));
    }
    if args.timeout.0 <= 0.0 {
        return Err(Failure::usage("--timeout: expected more than 0 seconds"));
    }
    if args.max_run_time.0 <= 0.0 {
        return Err(Failure::usage(
            "--max-run-time: expected more than 0 seconds",
        ));
    }
    if args.max_pages == 0 {
        return Err(Failure::usage("--max-pages: expected at least 1"));
    }
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let config = Config::load(&path).exit_with(exit::CONFIG)?;
    cli::init_logging(args.log_level.as_deref(), config.log_level.as_deref())?;
    if args.list_offerings {
        for o in &config.offerings {
            println!(
                "{}",
                serde_json::json!({
                    "name": o.name,
                    "uuid": o.waldur_offering_uuid,
                    "cluster_name": o.backend.cluster_name,
                })
            );
        }
        return Ok(());
    }
    let offering = config
        .offering(args.offering.as_deref())
        .exit_with(exit::CONFIG)?;
    let server_zone = match &args.waldur_timezone {
        Some(z) => {
            period::zone(z).map_err(|e| Failure::usage(format!("--waldur-timezone: {e}")))?;
            z.clone()
        }
        None => offering.waldur_timezone.clone(),
    };
    let zones = BillingZones::new(&config.timezone, &server_zone).exit_with(exit::CONFIG)?;
    let fixed_now = match &args.now {
        Some(text) => {
            Some(period::parse_instant("--now", text).map_err(|e| Failure::usage(e.to_string()))?)
        }
        None => None,
    };
    let now = match fixed_now {
        Some(now) => now,
        None => period::now().exit_with(exit::UNAVAILABLE)?,
    };
    let stdin = std::io::stdin();
    if args.offline {
        let configured = offering.components.keys().cloned().collect();
        return stream(&mut RecordCounts::default(), stdin.lock(), |usage, out| {
            render::offline(usage, &configured, &zones, now, out);
            MonthOutcome::default()
        });
    }
    let base = ApiBase::parse(&offering.waldur_api_url, args.allow_insecure_http).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            anyhow::anyhow!("{}: waldur_api_url: {e}", config.file),
        )
    })?;
    if !base.is_https() && !base.is_loopback() {
        warn!(
            "plain http to {}: the token travels unencrypted",
            base.root()
        );
    }
    let sources = TokenSources {
        token_arg: args.token.as_deref(),
        token_file: args.token_file.as_deref(),
        credentials_directory: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        site_token_file: Some(auth::site_token_file()),
        env_token: std::env::var("WALDUR_API_TOKEN").ok(),
        config_token: offering.waldur_api_token.as_ref(),
        config_readable_by_others: config.readable_by_others,
        config_file: &config.file,
        oidc: offering.oidc.as_ref(),
    };
    let resolved = auth::resolve(&sources).map_err(|e| Failure::new(e.exit_code(), e))?;
    debug!("the token comes from {}", resolved.source);
    for w in &resolved.warnings {
        warn!("{w}");
    }
    if !offering.verify_ssl {
        warn!(
            "verify_ssl is false for offering {:?}: TLS certificates are NOT checked, so anyone \
             on the network path can read the token and change what is sent",
            offering.name
        );
    }
    let options = ClientOptions {
        timeout: args.timeout.duration(),
        retry: RetryPolicy {
            retries: args.retries,
            max_delay: args.retry_max_delay.duration(),
            base_delay: Duration::from_millis(500).min(args.retry_max_delay.duration()),
            ..RetryPolicy::default()
        },
        verify_tls: offering.verify_ssl,
        proxy: config.global_proxy.clone(),
        connections: args.concurrency,
        allow_insecure_http: args.allow_insecure_http,
        max_pages: args.max_pages,
        run_budget: args.max_run_time.duration(),
    };
    let client = Client::new(base, resolved.credential, options)
        .map_err(|e| Failure::new(exit::CONFIG, anyhow::anyhow!(e)))?;
    if args.check {
        let mut out = std::io::stdout().lock();
        let check_options = check::CheckOptions {
            write: args.write,
            zones,
            now,
        };
        let found = check::run(
            &client,
            offering,
            &resolved.source,
            &check_options,
            &mut out,
        )
        .exit_with(exit::IOERR)?;
        if let Some(code) = found {
            return Err(Failure::new(
                code,
                anyhow::anyhow!("--check found problems (the FAIL lines above)"),
            ));
        }
        return Ok(());
    }
    if std::io::stdin().is_terminal() {
        info!("reading usage records from the terminal; pipe usage-convert into me");
    }
    let push_options = PushOptions {
        staff: args.staff,
        allow_decrease: args.allow_decrease,
        dry_run: args.dry_run,
        concurrency: args.concurrency,
        now: fixed_now,
        zones,
        allocation_prefix: offering.backend.allocation_prefix.clone(),
    };
    let pusher = Pusher::connect(&client, offering, push_options)
        .map_err(|e| Failure::new(e.exit_code(), e))?;
    if args.audit {
        let mut differences = 0;
        let result = audit(stdin.lock(), &pusher, args.json, &mut differences);
        let mut metrics = RunMetrics::new(&offering.name);
        metrics.audit_differences = Some(differences as u64);
        return write_metrics(
            args.metrics_file.as_deref(),
            metrics,
            &client,
            started,
            result,
        );
    }
    if !args.no_register && !args.dry_run {
        // Whole seconds: Waldur's DRF date-times take at most 6 fractional digits.
        let restarted = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        match register::register(&client, pusher.offering_uuid(), &restarted.to_string()) {
            Ok(r) if r.identity_written || r.service_written => {
                info!("registered the agent identity in Waldur")
            }
            Ok(_) => {}
            // An older Waldur without the identity endpoints: nothing to fix, so no warning
            // every half hour.
            Err(e @ ApiError::Status { status: 404, .. }) => info!(
                "this Waldur has no agent-identity endpoint, so no identity is registered ({})",
                e.short()
            ),
            Err(e) => warn!("registering the agent identity failed (usage is still sent): {e}"),
        }
    }
    let mut metrics = RunMetrics::new(&offering.name);
    let result = stream(&mut metrics.records, stdin.lock(), |usage, out| {
        pusher.push_period(usage, out)
    });
    info!(
        "{} requests to Waldur ({} POST/PUT)",
        client.request_count(),
        client.post_count()
    );
    write_metrics(
        args.metrics_file.as_deref(),
        metrics,
        &client,
        started,
        result,
    )
}

/// `--metrics-file`: record how the run ended (when asked to), then hand its result on. A
/// metrics file that cannot be written is an error of its own (exit 74) only when the run
/// itself succeeded.
fn write_metrics(
    path: Option<&std::path::Path>,
    mut metrics: RunMetrics,
    client: &Client,
    started: std::time::Instant,
    result: Result<(), Failure>,
) -> Result<(), Failure> {
    let Some(path) = path else {
        return result;
    };
    metrics.duration_seconds = started.elapsed().as_secs_f64();
    metrics.finished = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    metrics.success = match &result {
        Ok(()) => true,
        Err(f) => f.code == exit::HELD,
    };
    metrics.requests = client.requests_by_code();
    match (crate::metrics::update_file(path, &metrics), result) {
        (Err(e), Ok(())) => Err(Failure::new(
            exit::IOERR,
            anyhow::anyhow!("the metrics file: {e}"),
        )),
        (Err(e), result) => {
            error!("the metrics file: {e}");
            result
        }
        (Ok(()), result) => result,
    }
}

/// `--audit`: the table (or JSON lines) on stdout, a verdict on stderr; `differences` gets
/// the count of lines that are not ok.
fn audit(
    input: impl BufRead,
    pusher: &Pusher<'_>,
    json: bool,
    differences: &mut usize,
) -> Result<(), Failure> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let run = crate::push::audit::run(input, &mut out, json, |month| pusher.audit_period(month))
        .exit_with(exit::IOERR)?;
    *differences = run.differences;
    if let Some(code) = run.failed {
        return Err(Failure::new(
            code,
            anyhow::anyhow!("the audit is incomplete: see the errors above"),
        ));
    }
    if run.periods == 0 {
        return Err(Failure::new(
            exit::DATAERR,
            anyhow::anyhow!("the input held no complete period: nothing was audited"),
        ));
    }
    if run.differences > 0 {
        return Err(Failure::new(
            exit::FAILURE,
            anyhow::anyhow!(
                "{} value(s) in {} period(s) differ between SLURM and Waldur: see the lines \
                 whose status is not ok",
                run.differences,
                run.periods
            ),
        ));
    }
    info!(
        "audit: {} period(s), Waldur holds exactly what SLURM measured",
        run.periods
    );
    Ok(())
}

fn stream(
    counts: &mut RecordCounts,
    input: impl BufRead,
    submit: impl FnMut(&crate::push::input::MonthUsage, &mut ResultWriter<'_>) -> MonthOutcome,
) -> Result<(), Failure> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let outcome = stream::run_stream(input, &mut out, submit).exit_with(exit::IOERR)?;
    *counts = outcome.counts;
    if outcome.periods == 0 && outcome.exit.is_none() {
        return Err(Failure::new(
            exit::DATAERR,
            anyhow::anyhow!(
                "the input held no complete period (no period_end record): nothing was sent; \
                 did an earlier stage of the pipeline fail?"
            ),
        ));
    }
    match outcome.exit {
        None if outcome.held > 0 => Err(Failure::new(
            exit::HELD,
            anyhow::anyhow!(
                "{} result(s) held back, skipped or sent without a user link, everything else \
                 was sent; see the warnings above",
                outcome.held
            ),
        )),
        None => Ok(()),
        Some(code) => Err(Failure::new(
            code,
            anyhow::anyhow!("not everything was submitted; see the lines above"),
        )),
    }
}

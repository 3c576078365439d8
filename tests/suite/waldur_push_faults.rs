//! waldur-push under injected faults: every fault either recovers by retry, leaving Waldur
//! exactly as a fault-free run does, or fails with a non-zero exit and a summary naming what
//! was not submitted. Nothing is ever sent twice with different values, and a stream cut
//! before its `period_end` submits nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::fake_waldur::{Fault, FaultKind, Setup};
use crate::support::text::assert_lacks;
use crate::waldur_push_util::*;
use serde_json::Value;

type Totals = Vec<(String, String, String, String)>;
type UserTotals = Vec<(String, String, String, String, String)>;

/// What Waldur holds after a run without faults.
fn fault_free() -> (Totals, UserTotals) {
    let env = Env::new(Setup::small());
    assert_eq!(env.run(&[], &march_input()).code, 0);
    (env.totals(), env.user_totals())
}

/// Every POST target received one value only: a retry repeats, it never sends something else.
fn assert_never_two_values(env: &Env) {
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    for r in env.posts() {
        let body = r.body.clone().unwrap_or(Value::Null);
        let key = if r.path.ends_with("/set_usage/") {
            format!("set_usage {}", body["resource"])
        } else if r.path.ends_with("/set_user_usage/") {
            format!("{} {}", r.path, body["username"])
        } else {
            r.path.clone()
        };
        if let Some(first) = seen.get(&key) {
            assert_eq!(first, &body, "{key} was sent two different bodies");
        }
        seen.insert(key, body);
    }
}

fn recovers(fault: Fault, extra: &[&str]) -> Env {
    let env = Env::new(Setup::small());
    env.fake.inject(fault.clone());
    let run = env.run(extra, &march_input());
    assert_eq!(run.code, 0, "{fault:?}: {}", run.stderr);
    assert!(
        env.fake.pending_faults().is_empty(),
        "{fault:?} never fired"
    );
    run.assert_stderr_contains("retrying in");
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 4 updated, 0 unchanged, 0 skipped, 0 failed"
    );
    env
}

fn assert_same_as_fault_free(env: &Env) {
    let (totals, users) = fault_free();
    assert_eq!(env.totals(), totals);
    assert_eq!(env.user_totals(), users);
    assert_never_two_values(env);
}

#[test]
fn server_errors_on_each_endpoint_are_retried_to_the_same_end_state() {
    for (method, path, status) in [
        ("GET", "/api/users/me/", 500),
        ("GET", "/api/marketplace-provider-resources/", 502),
        ("GET", "/api/marketplace-component-usages/", 503),
        ("GET", "/api/marketplace-component-user-usages/", 504),
        ("POST", "set_usage/", 500),
        ("POST", "set_user_usages/", 503),
    ] {
        let env = recovers(
            Fault::new(method, path, FaultKind::Status(status)).times(2),
            &[],
        );
        assert_same_as_fault_free(&env);
        // Two failed attempts, then the one that worked.
        let hits: Vec<u16> = env
            .fake
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(path))
            .map(|r| r.status)
            .take(3)
            .collect();
        assert_eq!(hits[..2], [status, status], "{path}");
        assert!(hits[2] == 200 || hits[2] == 201, "{path}: {hits:?}");
    }
}

#[test]
fn throttling_waits_what_retry_after_says() {
    let started = Instant::now();
    let env = recovers(
        Fault::new(
            "POST",
            "set_usage/",
            FaultKind::TooManyRequests {
                retry_after_secs: 1,
            },
        ),
        &[],
    );
    // --retry-max-delay is 50 ms, so only Retry-After can explain a wait of a second.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_same_as_fault_free(&env);
}

#[test]
fn resets_and_garbage_are_retried() {
    for fault in [
        Fault::new("POST", "set_user_usages/", FaultKind::Reset).times(2),
        Fault::new("GET", "/api/marketplace-offering-users/", FaultKind::Reset),
        Fault::new(
            "GET",
            "/api/marketplace-component-usages/",
            FaultKind::Garbage,
        ),
        // A 200 page instead of 201 Created: the usage was not stored, so it is sent again.
        Fault::new("POST", "set_usage/", FaultKind::Garbage),
    ] {
        let env = recovers(fault, &[]);
        assert_same_as_fault_free(&env);
    }
}

#[test]
fn a_timed_out_post_is_repeated_with_the_same_values() {
    // The first set_usage stalls past the 1 s timeout; the fake still applies it 3 s later.
    let env = recovers(
        Fault::new(
            "POST",
            "set_usage/",
            FaultKind::Delay(Duration::from_secs(3)),
        ),
        &["--timeout", "1"],
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_same_as_fault_free(&env);
}

/// Attempts at `set_usage` per resource UUID, in order of first attempt.
fn set_usage_attempts(env: &Env) -> Vec<(String, usize)> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for r in env.fake.requests_to("POST", "set_usage/") {
        let resource = r.body.as_ref().unwrap()["resource"]
            .as_str()
            .unwrap()
            .to_string();
        match seen.iter_mut().find(|(u, _)| *u == resource) {
            Some((_, n)) => *n += 1,
            None => seen.push((resource, 1)),
        }
    }
    seen
}

/// Every resource of `Setup::large` with `cpu` = `1.00`, in one period.
fn large_input(resources: usize) -> String {
    let lines: Vec<String> = (1..=resources)
        .map(|i| {
            usage(
                "2024-03",
                &format!("hpc_alloc_{i:05}"),
                None,
                &[("cpu", "1.00"), ("mem", "0.00"), ("gres/gpu", "0.00")],
            )
        })
        .collect();
    period("2024-03", &lines)
}

#[test]
fn one_resource_failing_forever_fails_alone() {
    // hpc_alloc1's set_usage answers 500 on every attempt; hpc_alloc2 (which has usage of its
    // own here) must still be stored exactly. A process-wide breaker would stop it.
    let env = Env::new(Setup::small());
    let alloc1 = env.resource("hpc_alloc1");
    env.fake.inject(
        Fault::new("POST", "set_usage/", FaultKind::Status(500))
            .with_body(&alloc1)
            .times(1000),
    );
    let input = period_of(
        "2024-03",
        &[
            ("hpc_alloc1", None, &[("cpu", "1.54")]),
            ("hpc_alloc1", Some("hpcuser1"), &[("cpu", "1.54")]),
            ("hpc_alloc2", None, &[("cpu", "2.25"), ("mem", "7.00")]),
            (
                "hpc_alloc2",
                Some("hpcuser2"),
                &[("cpu", "2.25"), ("mem", "7.00")],
            ),
        ],
    );
    let run = env.run(&[], &input);
    // 75: a temporary failure; the next cycle sends hpc_alloc1 again.
    run.assert_code(75);
    // hpc_alloc1: 1 attempt + 3 retries (--retries 3); hpc_alloc2: once.
    assert_eq!(
        set_usage_attempts(&env),
        vec![(alloc1.clone(), 4), (env.resource("hpc_alloc2"), 1)]
    );
    assert_eq!(
        env.totals(),
        vec![
            t4("2024-03-01", "hpc_alloc2", "cpu", "2.25"),
            t4("2024-03-01", "hpc_alloc2", "mem", "7.00"),
        ]
    );
    assert_eq!(
        env.user_totals(),
        vec![
            t5("2024-03-01", "hpc_alloc2", "cpu", "hpcuser2", "2.25"),
            t5("2024-03-01", "hpc_alloc2", "mem", "hpcuser2", "7.00"),
        ]
    );
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 3 updated, 0 unchanged, 0 skipped, 2 failed; not submitted: \
         hpc_alloc1 set_usage, hpc_alloc1 set_user_usages (cpu)"
    );
    let reasons: Vec<Option<String>> = run
        .outcomes()
        .into_iter()
        .filter(|o| o.0 == "hpc_alloc1")
        .map(|o| o.4)
        .collect();
    assert_eq!(
        reasons,
        vec![
            Some("HTTP 500: Server Error (500) (HTML page)".to_string()),
            Some("not sent: the resource's set_usage failed".to_string()),
        ]
    );
}

#[test]
fn an_outage_on_every_resource_trips_the_breaker_after_its_limit() {
    // Every set_usage answers 503: after 8 requests in a row used up their retries (8
    // different resources, no success between), the server is down, not one resource: the
    // last 4 resources are not attempted, and are named.
    let env = Env::new(Setup::large(12, 0));
    env.fake
        .inject(Fault::new("POST", "set_usage/", FaultKind::Status(503)).times(1000));
    let run = env.run(&["--no-register", "--retries", "0"], &large_input(12));
    run.assert_code(75);
    let attempts = set_usage_attempts(&env);
    assert_eq!(attempts.len(), 8, "{attempts:?}");
    assert!(attempts.iter().all(|(_, n)| *n == 1), "{attempts:?}");
    assert!(env.fake.usages().is_empty());
    // The summary names the first ten and counts the rest; the result records name each.
    assert_eq!(
        run.summary("2024-03"),
        format!(
            "period 2024-03: 0 updated, 0 unchanged, 0 skipped, 12 failed; not submitted: {}, \
             and 2 more",
            (1..=10)
                .map(|i| format!("hpc_alloc_{i:05} set_usage"))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .replace(", and 2 more", " and 2 more")
    );
    let failed: Vec<String> = run
        .outcomes()
        .into_iter()
        .filter(|o| o.2 == "failed")
        .map(|o| o.0)
        .collect();
    assert_eq!(
        failed,
        (1..=12)
            .map(|i| format!("hpc_alloc_{i:05}"))
            .collect::<Vec<_>>()
    );
    let reasons: Vec<String> = run.outcomes().into_iter().filter_map(|o| o.4).collect();
    assert_eq!(reasons[0], "HTTP 503: Server Error (503) (HTML page)");
    assert_eq!(
        reasons[8],
        "not sent: Waldur is unavailable (8 requests in a row failed; last: HTTP 503: \
         Server Error (503) (HTML page))"
    );
}

const IDENTITIES: &str = "marketplace-site-agent-identities";

/// A run on the March input against a fake whose `method` requests to the agent-identity
/// endpoint answer 503 forever.
fn identities_answering_503(method: &str) -> (Env, Run) {
    let env = Env::new(Setup::small());
    env.fake
        .inject(Fault::new(method, IDENTITIES, FaultKind::Status(503)).times(1000));
    let run = env.run(&[], &march_input());
    (env, run)
}

#[test]
fn an_identity_endpoint_down_never_holds_up_usage() {
    // The optional identity calls answer 503 forever: all usage is stored, the exit is 0, the
    // GET is retried at most once and nothing counts towards the breaker.
    let (env, run) = identities_answering_503("GET");
    run.assert_code(0);
    assert_eq!(env.fake.requests_to("GET", IDENTITIES).len(), 2);
    run.assert_stderr_contains(
        "registering the agent identity failed (usage is still sent): GET \
             /api/marketplace-site-agent-identities/: HTTP 503: Server Error (503) (HTML page)",
    );
    assert_same_as_fault_free(&env);
}

#[test]
fn the_identity_post_is_sent_once_and_a_404_page_is_one_line() {
    // POST answers 503: not repeated (a repeat could create a second identity).
    let (env, run) = identities_answering_503("POST");
    run.assert_code(0);
    assert_eq!(env.fake.requests_to("POST", IDENTITIES).len(), 1);
    assert_same_as_fault_free(&env);
    // A 7.0.7 without the identity endpoints answers Django's HTML page: one info line, no
    // warning, no page.
    let env = Env::new(Setup::small().waldur_7_0().without_agent_identities());
    let run = env.run(&["--now", "2024-03-20T10:00:00Z"], &march_input());
    run.assert_code(0);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("identity"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].ends_with(
            "this Waldur has no agent-identity endpoint, so no identity is registered \
             (HTTP 404: Not Found (HTML page))"
        ),
        "{}",
        lines[0]
    );
    assert_lacks(&run.stderr, "<");
    assert_lacks(&run.stderr, "WARN");
}

#[test]
fn a_server_that_goes_away_stops_the_run_within_the_breaker_limit() {
    // The server answers 10 requests, then refuses every connection. With --retries 3 the
    // breaker allows 3 requests x 4 attempts: 9 "retrying" lines, then nothing is tried and
    // every resource not stored is named.
    let env = Env::new(Setup::large(20, 0));
    env.fake.refuse_connections_after(10);
    let started = Instant::now();
    let run = env.run(&["--no-register"], &large_input(20));
    run.assert_code(75);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let retries = run
        .stderr
        .lines()
        .filter(|l| l.contains("retrying in"))
        .count();
    assert_eq!(retries, 3 * 3, "{}", run.stderr);
    let answered = env.fake.requests().len();
    assert_eq!(answered, 10);
    // Each resource is either stored or named as failed in its result record, never neither.
    let stored: Vec<String> = env.totals().into_iter().map(|t| t.1).collect();
    let failed: Vec<String> = run
        .outcomes()
        .into_iter()
        .filter(|o| o.1 == "set_usage" && o.2 == "failed")
        .map(|o| o.0)
        .collect();
    for i in 1..=20 {
        let account = format!("hpc_alloc_{i:05}");
        let named = failed.contains(&account);
        let kept = stored.contains(&account);
        assert!(named != kept, "{account}: stored {kept}, named {named}");
    }
    assert!(!stored.is_empty() && !failed.is_empty());
    assert!(run.summary("2024-03").contains("failed; not submitted: "));
    run.assert_stderr_contains(
        "not sent: Waldur is unavailable (3 requests in a row could not reach it",
    );
}

#[test]
fn a_refusal_is_not_retried_and_the_other_resources_still_go() {
    let env = Env::new(Setup::small());
    env.fake
        .inject(Fault::new("POST", "set_usage/", FaultKind::Status(400)));
    let run = env.run(&[], &march_input());
    run.assert_code(76);
    let statuses: Vec<u16> = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/set_usage/"))
        .map(|r| r.status)
        .collect();
    // hpc_alloc1 refused once (not retried), hpc_alloc2's zeros stored.
    assert_eq!(statuses, vec![400, 201]);
    assert_eq!(
        env.totals(),
        vec![
            t4("2024-03-01", "hpc_alloc2", "cpu", "0.00"),
            t4("2024-03-01", "hpc_alloc2", "gres/gpu", "0.00"),
            t4("2024-03-01", "hpc_alloc2", "mem", "0.00"),
        ]
    );
    run.assert_stderr_contains("HTTP 400: Injected fault: status 400.");
    assert!(run.summary("2024-03").ends_with(
        "not submitted: hpc_alloc1 set_usage, hpc_alloc1 set_user_usages (cpu), \
         hpc_alloc1 set_user_usages (mem)"
    ));
}

#[test]
fn a_refused_token_exits_77() {
    let env = Env::new(Setup::small());
    env.fake
        .inject(Fault::new("GET", "/api/users/me/", FaultKind::Status(401)));
    let run = env.run(&[], &march_input());
    run.assert_code(77);
    assert!(
        run.stderr
            .contains("HTTP 401 (the token is missing, wrong or expired)")
    );
    assert_eq!(env.fake.requests().len(), 1);
}

#[test]
fn a_stream_cut_before_period_end_submits_nothing() {
    let env = Env::new(Setup::small());
    let full = march_input();
    let cut: String = full.lines().take(2).map(|l| format!("{l}\n")).collect();
    let run = env.run(&[], &cut);
    run.assert_code(65);
    run.assert_stderr_contains(
        "period 2024-03: not submitted: period 2024-03: the input ended before its \
             period_end (2 records seen)",
    );
    assert!(
        env.fake
            .requests()
            .iter()
            .all(|r| !r.path.contains("usage"))
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn a_short_count_or_a_bad_line_refuses_the_period_but_not_the_others() {
    let env = Env::new(Setup::small());
    let staff = env.staff_token.to_str().unwrap().to_string();
    // February: period_end announces 3 records but 2 arrived. March: complete.
    let feb = [
        usage("2024-02", "hpc_alloc1", None, &[("cpu", "9.00")]),
        usage(
            "2024-02",
            "hpc_alloc1",
            Some("hpcuser1"),
            &[("cpu", "9.00")],
        ),
    ]
    .concat()
        + &period_end("2024-02", 3);
    let run = env.run(
        &["--staff", "--token-file", &staff],
        &(feb + &march_input()),
    );
    run.assert_code(65);
    run.assert_stderr_contains("announces 3 records but 2 arrived");
    let periods: Vec<String> = env.totals().into_iter().map(|t| t.0).collect();
    assert!(periods.iter().all(|p| p == "2024-03-01"), "{periods:?}");
    assert_eq!(env.totals().len(), 5);
    // An amount with three decimals refuses its period, naming the line.
    let env = Env::new(Setup::small());
    let bad = march_input().replace("\"0.54\"", "\"0.545\"");
    let run = env.run(&[], &bad);
    assert_eq!(run.code, 65);
    run.assert_stderr_contains(
        "input line 3: component \"cpu\": \"0.545\" is not a decimal number with at most \
             2 decimal places; nothing of 2024-03 is submitted",
    );
    assert!(env.fake.usages().is_empty());
}

/// The resource listing never ends (see [`FaultKind::EndlessPages`]), for as long as it is
/// asked.
fn endless_resource_listing(env: &Env, fresh: bool, counted: bool) {
    env.fake.inject(
        Fault::new(
            "GET",
            "/api/marketplace-provider-resources/",
            FaultKind::EndlessPages { fresh, counted },
        )
        .times(1_000_000),
    );
}

#[test]
fn an_endless_link_chain_stops_with_an_error_naming_the_listing() {
    // Same rows on every page; new rows beyond what X-Result-Count announced; new rows and
    // no count at all (only the page cap stops that one).
    for (fresh, counted, says) in [
        (false, true, "is a page already read"),
        (true, true, "more pages than the"),
        (true, false, "pages, the most one listing may have"),
    ] {
        let env = Env::new(Setup::small());
        endless_resource_listing(&env, fresh, counted);
        let started = Instant::now();
        let run = env.run(&[], &march_input());
        let took = started.elapsed();
        assert!(took < Duration::from_secs(60), "took {took:?}");
        assert_eq!(run.code, 76, "{fresh} {counted}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("GET /api/marketplace-provider-resources/: unreadable answer:")
                && run.stderr.contains(says),
            "{fresh} {counted}: {}",
            run.stderr
        );
        assert!(env.posts().is_empty());
    }
}

#[test]
fn a_page_cap_from_the_command_line_stops_an_endless_listing_there() {
    // New rows on every page and no X-Result-Count: only the cap can stop it. --max-pages 5
    // means exactly 5 GETs of that listing, then exit 76 naming the flag.
    let env = Env::new(Setup::small());
    endless_resource_listing(&env, true, false);
    let run = env.run(&["--max-pages", "5"], &march_input());
    run.assert_code(76);
    run.assert_stderr_contains(
        "still a next page after 5 pages, the most one listing may have (--max-pages)",
    );
    let listed = env
        .fake
        .requests_to("GET", "/api/marketplace-provider-resources/")
        .len();
    assert_eq!(listed, 5);
    assert!(env.posts().is_empty());
    let zero = env.run(&["--max-pages", "0"], &march_input());
    zero.assert_code(64);
    assert!(zero.stderr.contains("--max-pages: expected at least 1"));
}

/// Peak resident memory (VmHWM, KiB) of waldur-push run with `args` on `input`, read from
/// /proc every 5 ms until it exits, and its exit code.
fn peak_rss_kib(env: &Env, args: &[&str], input: &str) -> (i32, u64) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_waldur-push"))
        .env_remove("WALDUR_API_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("WALDUR_USAGE_ETC_DIR", env.dir.path())
        .args(["-c", env.config.to_str().unwrap(), "--now", NOW])
        .args(["--token-file", env.provider_token.to_str().unwrap()])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(exit) = child.try_wait().unwrap() {
            return (exit.code().unwrap_or(-1), peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_endless_listing_stays_under_300_mb_and_60_s() {
    // The fake serves new rows on every page, without a count, for as long as it is asked:
    // before the page cap, this grew to 2.7 GB in 60 s. Now it stops at 2,000 pages.
    let env = Env::new(Setup::small());
    endless_resource_listing(&env, true, false);
    let started = Instant::now();
    let (code, kib) = peak_rss_kib(&env, &["--retries", "0"], &march_input());
    let took = started.elapsed();
    eprintln!("endless listing: exit {code}, peak {kib} KiB, {took:?}");
    assert_eq!(code, 76);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(kib > 0, "no VmHWM was read");
    assert!(kib < 300 * 1024, "peak {kib} KiB");
    let listed = env
        .fake
        .requests_to("GET", "/api/marketplace-provider-resources/")
        .len();
    assert_eq!(listed, 2_000);
}

#[test]
fn the_run_stops_at_its_time_budget_and_names_what_was_not_sent() {
    // Every set_usage takes 0.6 s; the run may talk to Waldur for 2.5 s. The first POSTs are
    // stored; once the budget is used up nothing more is sent, each remaining resource is
    // named with the reason, and the exit is 75 (the next cycle sends the rest).
    let env = Env::new(Setup::large(12, 0));
    env.fake.inject(
        Fault::new(
            "POST",
            "set_usage/",
            FaultKind::Delay(Duration::from_millis(600)),
        )
        .times(1000),
    );
    let started = Instant::now();
    let run = env.run(
        &["--no-register", "--max-run-time", "2.5"],
        &large_input(12),
    );
    let took = started.elapsed();
    run.assert_code(75);
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    let outcomes = run.outcomes();
    let updated: Vec<&String> = outcomes
        .iter()
        .filter(|o| o.2 == "updated")
        .map(|o| &o.0)
        .collect();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.2 == "failed").collect();
    // 2.5 s at 0.6 s per POST: 3 or 4 are answered in time (the GETs before take a few ms).
    assert!((3..=4).contains(&updated.len()), "{outcomes:?}");
    assert_eq!(updated.len() + failed.len(), 12, "{outcomes:?}");
    let never_sent = failed
        .iter()
        .filter(|o| {
            o.4.as_deref()
                == Some("not sent: the run's time budget of 2.5 s (--max-run-time) is used up")
        })
        .count();
    // At most one POST was cut off in flight; every other failure was never sent.
    assert!(never_sent + 1 >= failed.len(), "{failed:?}");
    for cut in failed.iter().filter(|o| {
        o.4.as_deref()
            != Some("not sent: the run's time budget of 2.5 s (--max-run-time) is used up")
    }) {
        let reason = cut.4.as_deref().unwrap_or_default();
        assert!(
            reason
                .starts_with("the run's time budget of 2.5 s (--max-run-time) was used up; last: "),
            "{reason}"
        );
    }
    // Whatever was reported updated is stored exactly.
    let stored: Vec<(String, String)> = env
        .totals()
        .into_iter()
        .filter(|t| t.2 == "cpu")
        .map(|t| (t.1, t.3))
        .collect();
    for account in &updated {
        assert!(
            stored.contains(&((*account).clone(), "1.00".to_string())),
            "{account} not stored: {stored:?}"
        );
    }
}

#[test]
fn one_attempt_never_runs_past_the_time_budget() {
    // A set_usage that stalls for 8 s with --timeout 30: the attempt is cut at the 1.5 s run
    // budget, not at 30 s.
    let env = Env::new(Setup::small());
    env.fake.inject(Fault::new(
        "POST",
        "set_usage/",
        FaultKind::Delay(Duration::from_secs(8)),
    ));
    let started = Instant::now();
    let run = env.run(
        &["--no-register", "--timeout", "30", "--max-run-time", "1.5"],
        &march_input(),
    );
    let took = started.elapsed();
    run.assert_code(75);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    run.assert_stderr_contains(
        "the run's time budget of 1.5 s (--max-run-time) was used up; last: ",
    );
    run.assert_stderr_contains("not submitted:");
}

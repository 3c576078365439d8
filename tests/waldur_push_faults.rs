//! waldur-push under injected faults: every fault either recovers by retry, leaving Waldur
//! exactly as a fault-free run does, or fails with a non-zero exit and a summary naming what
//! was not submitted. Nothing is ever sent twice with different values, and a stream cut
//! before its `period_end` submits nothing.

mod support;
mod waldur_push_util;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_waldur::{Fault, FaultKind, Setup};
use waldur_push_util::*;

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
    assert!(run.stderr.contains("retrying in"), "{}", run.stderr);
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

#[test]
fn an_outage_fails_fast_and_names_what_was_not_submitted() {
    let env = Env::new(Setup::small());
    env.fake
        .inject(Fault::new("POST", "set_usage/", FaultKind::Status(503)).times(100));
    let run = env.run(&[], &march_input());
    assert_eq!(run.code, 75, "{}", run.stderr);
    // hpc_alloc1: 1 attempt + 3 retries. Then the client stops sending: hpc_alloc2's zeros
    // are not attempted at all.
    let attempts = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/set_usage/"))
        .count();
    assert_eq!(attempts, 4);
    assert!(env.fake.usages().is_empty());
    assert!(env.fake.user_usages().is_empty());
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 0 updated, 0 unchanged, 0 skipped, 4 failed; not submitted: \
         hpc_alloc1 set_usage, hpc_alloc2 set_usage, hpc_alloc1 set_user_usages (cpu), \
         hpc_alloc1 set_user_usages (mem)"
    );
    let reasons: Vec<Option<String>> = run.outcomes().into_iter().map(|o| o.4).collect();
    assert_eq!(
        reasons[0].as_deref(),
        Some("HTTP 503: <h1>Server Error (503)</h1>")
    );
    assert!(
        reasons[1]
            .as_deref()
            .unwrap()
            .starts_with("not sent: Waldur is unavailable (HTTP 503"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[2].as_deref(),
        Some("not sent: the resource's set_usage failed")
    );
}

#[test]
fn a_refusal_is_not_retried_and_the_other_resources_still_go() {
    let env = Env::new(Setup::small());
    env.fake
        .inject(Fault::new("POST", "set_usage/", FaultKind::Status(400)));
    let run = env.run(&[], &march_input());
    assert_eq!(run.code, 76, "{}", run.stderr);
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
    assert!(
        run.stderr.contains("HTTP 400: Injected fault: status 400."),
        "{}",
        run.stderr
    );
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
    assert_eq!(run.code, 77, "{}", run.stderr);
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
    assert_eq!(run.code, 65, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "period 2024-03: not submitted: period 2024-03: the input ended before its \
             period_end (2 records seen)"
        ),
        "{}",
        run.stderr
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
    assert_eq!(run.code, 65, "{}", run.stderr);
    assert!(
        run.stderr.contains("announces 3 records but 2 arrived"),
        "{}",
        run.stderr
    );
    let periods: Vec<String> = env.totals().into_iter().map(|t| t.0).collect();
    assert!(periods.iter().all(|p| p == "2024-03-01"), "{periods:?}");
    assert_eq!(env.totals().len(), 5);
    // An amount with three decimals refuses its period, naming the line.
    let env = Env::new(Setup::small());
    let bad = march_input().replace("\"0.54\"", "\"0.545\"");
    let run = env.run(&[], &bad);
    assert_eq!(run.code, 65);
    assert!(
        run.stderr.contains(
            "input line 3: component \"cpu\": \"0.545\" is not a decimal number with at most \
             2 decimal places; nothing of 2024-03 is submitted"
        ),
        "{}",
        run.stderr
    );
    assert!(env.fake.usages().is_empty());
}

//! waldur-push against the fake Waldur: the behaviours of issue 4, with exact request logs.
//!
//! The fake's clock and `--now` are 2024-03-20T12:00:00Z, so March 2024 is the current period
//! (date sent: 11:55:00, now less the 300 s margin) and earlier months are closed.

use crate::support::fake_waldur::{
    STAFF_TOKEN, Setup, StoredUsage, StoredUserUsage, det_uuid, tags,
};
use crate::support::text::{assert_contains, assert_lacks};
use crate::waldur_push_util::*;
use serde_json::{Value, json};

fn get(path: &str) -> (String, String) {
    ("GET".into(), format!("/api/{path}"))
}

fn post(path: &str) -> (String, String) {
    ("POST".into(), format!("/api/{path}"))
}

/// The start of every run: token check, offering, resources, agent identity lookup.
fn setup_calls() -> Vec<(String, String)> {
    vec![
        get("users/me/"),
        get(&format!(
            "marketplace-provider-offerings/{}/",
            det_uuid(tags::OFFERING, 1)
        )),
        get("marketplace-provider-resources/"),
        get("marketplace-site-agent-identities/"),
    ]
}

fn offering_user_url(env: &Env, n: u64) -> String {
    format!(
        "{}/api/marketplace-offering-users/{}/",
        env.fake.origin(),
        det_uuid(tags::OFFERING_USER, n)
    )
}

#[test]
fn first_submission_sends_totals_zeros_and_users_with_an_exact_request_log() {
    let env = Env::new(Setup::small());
    let run = env.run(&[], &march_input());
    run.assert_code(0);
    let a1 = env.resource("hpc_alloc1");
    let a2 = env.resource("hpc_alloc2");
    let calls = env.calls();
    let mut expected = setup_calls();
    expected.extend([
        post("marketplace-site-agent-identities/"),
        post(&format!(
            "marketplace-site-agent-identities/{}/register_service/",
            det_uuid(tags::IDENTITY, 1)
        )),
        get("marketplace-component-usages/"),
        get("marketplace-component-user-usages/"),
        post("marketplace-component-usages/set_usage/"),
        post("marketplace-component-usages/set_usage/"),
        // New records were created: one re-listing to learn their UUIDs.
        get("marketplace-component-usages/"),
        get("marketplace-offering-users/"),
    ]);
    assert_eq!(calls[..expected.len()], expected[..]);
    let usages = env.fake.usages();
    let uuid_of = |resource: &str, c: &str| {
        usages
            .iter()
            .find(|u: &&StoredUsage| u.resource_uuid == resource && u.component_type == c)
            .unwrap()
            .uuid
            .clone()
    };
    assert_eq!(
        calls[expected.len()..],
        [
            post(&format!(
                "marketplace-component-usages/{}/set_user_usages/",
                uuid_of(&a1, "cpu")
            )),
            post(&format!(
                "marketplace-component-usages/{}/set_user_usages/",
                uuid_of(&a1, "mem")
            )),
            // Read-back: the period again, totals and per-user values.
            get("marketplace-component-usages/"),
            get("marketplace-component-user-usages/"),
        ]
    );
    // The lists were filtered by the whole offering and the billing period, 300 per page.
    let reqs = env.fake.requests();
    let cu_list = &reqs[6];
    assert_eq!(
        cu_list.param("offering_uuid"),
        Some(env.setup.offering.uuid.as_str())
    );
    assert_eq!(cu_list.param("billing_period"), Some("2024-03-01"));
    assert_eq!(cu_list.param("page_size"), Some("300"));
    assert_eq!(
        reqs[7].param("component_usage__billing_period"),
        Some("2024-03-01")
    );
    // Bodies: all of hpc_alloc1's components; zeros for every component of idle hpc_alloc2;
    // nothing for hpc_erred (Erred, and no usage).
    assert_eq!(
        bodies(&reqs, "set_usage"),
        vec![
            json!({"resource": a1, "date": MARCH_DATE,
                   "usages": [{"type": "cpu", "amount": "1.54"}, {"type": "mem", "amount": "6008.00"}]}),
            json!({"resource": a2, "date": MARCH_DATE,
                   "usages": [{"type": "cpu", "amount": "0.00"}, {"type": "gres/gpu", "amount": "0.00"},
                              {"type": "mem", "amount": "0.00"}]}),
        ]
    );
    assert_eq!(
        bodies(&reqs, "set_user_usages"),
        vec![
            json!({"usages": [
                {"username": "hpcuser1", "usage": "1.00", "user": offering_user_url(&env, 1)},
                {"username": "hpcuser2", "usage": "0.54", "user": offering_user_url(&env, 2)}]}),
            json!({"usages": [
                {"username": "hpcuser1", "usage": "4000.00", "user": offering_user_url(&env, 1)},
                {"username": "hpcuser2", "usage": "2008.00", "user": offering_user_url(&env, 2)}]}),
        ]
    );
    assert!(
        reqs.iter()
            .all(|r| r.user_agent.as_deref() == Some("waldur-usage/0.1.0"))
    );
    assert_eq!(
        env.totals(),
        vec![
            t4("2024-03-01", "hpc_alloc1", "cpu", "1.54"),
            t4("2024-03-01", "hpc_alloc1", "mem", "6008.00"),
            t4("2024-03-01", "hpc_alloc2", "cpu", "0.00"),
            t4("2024-03-01", "hpc_alloc2", "gres/gpu", "0.00"),
            t4("2024-03-01", "hpc_alloc2", "mem", "0.00"),
        ]
    );
    assert_eq!(
        env.user_totals(),
        vec![
            t5("2024-03-01", "hpc_alloc1", "cpu", "hpcuser1", "1.00"),
            t5("2024-03-01", "hpc_alloc1", "cpu", "hpcuser2", "0.54"),
            t5("2024-03-01", "hpc_alloc1", "mem", "hpcuser1", "4000.00"),
            t5("2024-03-01", "hpc_alloc1", "mem", "hpcuser2", "2008.00"),
        ]
    );
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 4 updated, 0 unchanged, 0 skipped, 0 failed"
    );
    let s = |x: &str| x.to_string();
    assert_eq!(
        run.outcomes(),
        vec![
            (s("hpc_alloc1"), s("set_usage"), s("updated"), None, None),
            (
                s("hpc_alloc2"),
                s("set_usage"),
                s("updated"),
                None,
                Some(s(
                    "no usage in the period: zeros for components Waldur had no record of"
                ))
            ),
            (
                s("hpc_alloc1"),
                s("set_user_usages"),
                s("updated"),
                Some(s("cpu")),
                None
            ),
            (
                s("hpc_alloc1"),
                s("set_user_usages"),
                s("updated"),
                Some(s("mem")),
                None
            ),
        ]
    );
}

#[test]
fn an_unchanged_second_run_makes_no_post() {
    let env = Env::new(Setup::small());
    assert_eq!(env.run(&[], &march_input()).code, 0);
    env.fake.clear_requests();
    let run = env.run(&[], &march_input());
    run.assert_code(0);
    let mut expected = setup_calls();
    // The identity and its service exist now: no write. Then the two period listings.
    expected.extend([
        get("marketplace-component-usages/"),
        get("marketplace-component-user-usages/"),
    ]);
    assert_eq!(env.calls(), expected);
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 0 updated, 4 unchanged, 0 skipped, 0 failed"
    );
}

#[test]
fn a_change_submits_only_the_changed_resource_and_the_changed_users() {
    let env = Env::new(Setup::small());
    let both = |a2_cpu: &str, user2_cpu: &str| {
        period_of(
            "2024-03",
            &[
                ("hpc_alloc1", None, &[("cpu", "5.00"), ("mem", "1.00")]),
                ("hpc_alloc2", None, &[("cpu", a2_cpu), ("mem", "2.00")]),
                (
                    "hpc_alloc2",
                    Some("hpcuser1"),
                    &[("cpu", "1.00"), ("mem", "2.00")],
                ),
                ("hpc_alloc2", Some("hpcuser2"), &[("cpu", user2_cpu)]),
            ],
        )
    };
    assert_eq!(env.run(&[], &both("3.00", "2.00")).code, 0);
    env.fake.clear_requests();
    // hpc_alloc2's cpu grows from 3.00 to 3.50, all of it by hpcuser2 (2.00 -> 2.50).
    let run = env.run(&[], &both("3.50", "2.50"));
    run.assert_code(0);
    let a2 = env.resource("hpc_alloc2");
    let cpu_cu = env
        .fake
        .usages()
        .into_iter()
        .find(|u| u.resource_uuid == a2 && u.component_type == "cpu")
        .unwrap()
        .uuid;
    let posts: Vec<(String, Value)> = env
        .posts()
        .into_iter()
        .map(|r| (r.path, r.body.unwrap()))
        .collect();
    assert_eq!(
        posts,
        vec![
            (
                "/api/marketplace-component-usages/set_usage/".to_string(),
                json!({"resource": a2, "date": MARCH_DATE,
                       "usages": [{"type": "cpu", "amount": "3.50"}, {"type": "mem", "amount": "2.00"}]})
            ),
            (
                format!("/api/marketplace-component-usages/{cpu_cu}/set_user_usages/"),
                json!({"usages": [{"username": "hpcuser2", "usage": "2.50",
                                   "user": offering_user_url(&env, 2)}]})
            ),
        ]
    );
    // No re-listing, since nothing new was created: the plan's read and the read-back.
    assert_eq!(
        env.calls()
            .iter()
            .filter(|c| c.1 == "/api/marketplace-component-usages/")
            .count(),
        2
    );
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 2 updated, 2 unchanged, 0 skipped, 0 failed"
    );
}

#[test]
fn a_decrease_is_held_back_and_the_rest_of_the_resource_goes_through() {
    let setup = seeded(&[
        ("hpc_alloc1", "cpu", "2.00"),
        ("hpc_alloc1", "mem", "6000.00"),
        ("hpc_alloc2", "cpu", "0.00"),
        ("hpc_alloc2", "mem", "0.00"),
        ("hpc_alloc2", "gres/gpu", "0.00"),
    ]);
    let env = Env::new(setup);
    let input = period_of(
        "2024-03",
        &[("hpc_alloc1", None, &[("cpu", "1.54"), ("mem", "6008.00")])],
    );
    let run = env.run(&[], &input);
    // Something was held back or skipped, nothing failed: a held decrease is a warning and exit 3.
    run.assert_code(3);
    let a1 = env.resource("hpc_alloc1");
    assert_eq!(
        bodies(&env.fake.requests(), "set_usage"),
        vec![json!({"resource": a1, "date": MARCH_DATE,
                    "usages": [{"type": "mem", "amount": "6008.00"}]})]
    );
    let s = |x: &str| x.to_string();
    assert_eq!(
        run.outcomes()[0],
        (
            s("hpc_alloc1"),
            s("set_usage"),
            s("skipped"),
            Some(s("cpu")),
            Some(s("decrease: 2.00 -> 1.54"))
        )
    );
    assert_eq!(
        env.totals()[0],
        t4("2024-03-01", "hpc_alloc1", "cpu", "2.00")
    );
    // --allow-decrease sends it (with mem, unchanged now, as part of the resource's update).
    env.fake.clear_requests();
    let run = env.run(&["--allow-decrease"], &input);
    run.assert_code(0);
    assert_eq!(
        bodies(&env.fake.requests(), "set_usage"),
        vec![json!({"resource": a1, "date": MARCH_DATE,
                    "usages": [{"type": "cpu", "amount": "1.54"}, {"type": "mem", "amount": "6008.00"}]})]
    );
    assert_eq!(
        env.totals()[0],
        t4("2024-03-01", "hpc_alloc1", "cpu", "1.54")
    );
}

#[test]
fn an_old_server_without_bulk_user_usages_gets_one_post_per_user() {
    let mut setup = Setup::small();
    setup.legacy_no_bulk_user_usages = true;
    let env = Env::new(setup);
    let run = env.run(&[], &march_input());
    run.assert_code(0);
    let usages = env.fake.usages();
    let a1 = env.resource("hpc_alloc1");
    let cu = |c: &str| {
        usages
            .iter()
            .find(|u| u.resource_uuid == a1 && u.component_type == c)
            .unwrap()
            .uuid
            .clone()
    };
    let user_posts: Vec<(String, u16, Value)> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("set_user_usage"))
        .map(|r| (r.path, r.status, r.body.unwrap()))
        .collect();
    let (cpu, mem) = (cu("cpu"), cu("mem"));
    let u1 = offering_user_url(&env, 1);
    let u2 = offering_user_url(&env, 2);
    assert_eq!(
        user_posts,
        vec![
            // One bulk attempt answered 404, then per user; mem goes per user directly.
            (
                format!("/api/marketplace-component-usages/{cpu}/set_user_usages/"),
                404,
                json!({"usages": [{"username": "hpcuser1", "usage": "1.00", "user": u1},
                                  {"username": "hpcuser2", "usage": "0.54", "user": u2}]})
            ),
            (
                format!("/api/marketplace-component-usages/{cpu}/set_user_usage/"),
                201,
                json!({"username": "hpcuser1", "usage": "1.00", "user": u1})
            ),
            (
                format!("/api/marketplace-component-usages/{cpu}/set_user_usage/"),
                201,
                json!({"username": "hpcuser2", "usage": "0.54", "user": u2})
            ),
            (
                format!("/api/marketplace-component-usages/{mem}/set_user_usage/"),
                201,
                json!({"username": "hpcuser1", "usage": "4000.00", "user": u1})
            ),
            (
                format!("/api/marketplace-component-usages/{mem}/set_user_usage/"),
                201,
                json!({"username": "hpcuser2", "usage": "2008.00", "user": u2})
            ),
        ]
    );
    assert_eq!(env.user_totals().len(), 4);
    run.assert_stderr_contains("no set_user_usages (bulk) endpoint");
}

#[test]
fn lists_are_followed_over_three_and_more_pages() {
    // 650 resources: 3 pages of resources; 650 x 3 stored usages: 7 pages of 300.
    let mut setup = Setup::large(650, 0);
    for (i, r) in setup.resources.clone().iter().enumerate() {
        for (j, c) in ["cpu", "mem", "gres/gpu"].iter().enumerate() {
            setup.existing_usages.push(StoredUsage {
                uuid: det_uuid(0xeee0, (i * 3 + j) as u64 + 1),
                resource_uuid: r.uuid.clone(),
                component_type: c.to_string(),
                billing_period: "2024-03-01".into(),
                usage: "1.00".into(),
                date: "2024-03-19T00:00:00+00:00".into(),
            });
        }
    }
    let env = Env::new(setup);
    // Only the last resource changes; all others hold 1.00 and are absent from the input, so
    // they need no zeros either.
    let input = period_of(
        "2024-03",
        &[(
            "hpc_alloc_00650",
            None,
            &[("cpu", "2.00"), ("mem", "1.00"), ("gres/gpu", "1.00")],
        )],
    );
    let run = env.run(&["--no-register"], &input);
    run.assert_code(0);
    let pages = |path: &str| -> Vec<Option<String>> {
        env.fake
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .map(|r| r.param("page").map(str::to_string))
            .collect()
    };
    let p = |n: &str| Some(n.to_string());
    assert_eq!(
        pages("/api/marketplace-provider-resources/"),
        vec![None, p("2"), p("3")]
    );
    // The plan's read, then the read-back after the one POST.
    assert_eq!(
        pages("/api/marketplace-component-usages/"),
        vec![
            None,
            p("2"),
            p("3"),
            p("4"),
            p("5"),
            p("6"),
            p("7"),
            None,
            p("2"),
            p("3"),
            p("4"),
            p("5"),
            p("6"),
            p("7")
        ]
    );
    assert_eq!(
        bodies(&env.fake.requests(), "set_usage"),
        vec![
            json!({"resource": env.resource("hpc_alloc_00650"), "date": MARCH_DATE,
                    "usages": [{"type": "cpu", "amount": "2.00"}, {"type": "gres/gpu", "amount": "1.00"},
                               {"type": "mem", "amount": "1.00"}]})
        ]
    );
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 1 updated, 649 unchanged, 0 skipped, 0 failed"
    );
}

fn january_input() -> String {
    period_of(
        "2024-01",
        &[
            ("hpc_alloc1", None, &[("cpu", "7.00"), ("mem", "70.00")]),
            ("hpc_alloc1", Some("hpcuser3"), &[("cpu", "7.00")]),
        ],
    )
}

#[test]
fn staff_backfill_of_a_past_month_uses_the_mid_month_date() {
    let env = Env::new(Setup::small());
    let staff = env.staff_token.to_str().unwrap().to_string();
    let run = env.run(&["--staff", "--token-file", &staff], &january_input());
    run.assert_code(0);
    let reqs = env.fake.requests();
    assert!(
        reqs.iter()
            .all(|r| r.authorization.as_deref() == Some(&*format!("Token {STAFF_TOKEN}")))
    );
    assert_eq!(
        bodies(&reqs, "set_usage"),
        vec![
            // No zeros for idle hpc_alloc2: January is not the server's current month, and a
            // guessed zero is never sent for a closed month.
            json!({"resource": env.resource("hpc_alloc1"), "date": "2024-01-15T12:00:00Z",
                   "usages": [{"type": "cpu", "amount": "7.00"}, {"type": "mem", "amount": "70.00"}]}),
        ]
    );
    assert_eq!(
        env.totals()[..2],
        [
            t4("2024-01-01", "hpc_alloc1", "cpu", "7.00"),
            t4("2024-01-01", "hpc_alloc1", "mem", "70.00"),
        ]
    );
    assert_eq!(
        env.user_totals(),
        vec![t5("2024-01-01", "hpc_alloc1", "cpu", "hpcuser3", "7.00")]
    );
    let stored: Vec<StoredUsage> = env.fake.usages();
    assert!(
        stored
            .iter()
            .all(|u| u.date.starts_with("2024-01-15T12:00:00")),
        "{stored:?}"
    );
}

#[test]
fn a_non_staff_token_is_refused_for_backfill() {
    let env = Env::new(Setup::small());
    // With --staff: users/me says not staff, so the run stops before anything else.
    let run = env.run(&["--staff"], &january_input());
    run.assert_code(77);
    run.assert_stderr_contains("--staff was given, but Waldur user slurm-agent-hpc1 is not staff");
    assert_eq!(env.calls(), vec![get("users/me/")]);
    // Without --staff the closed month is skipped with the reason, and nothing is posted.
    env.fake.clear_requests();
    let run = env.run(&[], &january_input());
    // Something was held back or skipped, nothing failed: a held closed month is exit 3.
    run.assert_code(3);
    let s = |x: &str| x.to_string();
    assert_eq!(
        run.outcomes(),
        vec![(
            s("hpc_alloc1"),
            s("set_usage"),
            s("skipped"),
            None,
            Some(s(
                "closed month: Waldur's month is already 2024-03 (server time zone UTC) and \
                 takes usage of 2024-01 only from staff; load it with waldur-usage-backfill and \
                 a staff token; unsent: cpu 7.00 (Waldur none), mem 70.00 (Waldur none)"
            ))
        )]
    );
    // The held month names its resource, and the unsent amounts are a warning.
    assert_eq!(
        run.results()[0]["resource"],
        json!(env.resource("hpc_alloc1"))
    );
    run.assert_stderr_contains(
        "warning: 2024-01 has ended on Waldur with usage that was never sent: hpc_alloc1 \
             cpu 7.00 (Waldur none), mem 70.00 (Waldur none); load it with a staff token: \
             waldur-usage-backfill --start-date 2024-01-01 --end-date 2024-01-31",
    );
    assert!(env.posts().iter().all(|p| !p.path.contains("usage")));
    assert!(env.fake.usages().is_empty());
}

#[test]
fn erred_resources_and_unknown_accounts_are_skipped_with_reasons() {
    let env = Env::new(seeded(&[
        ("hpc_alloc1", "cpu", "0.00"),
        ("hpc_alloc1", "mem", "0.00"),
        ("hpc_alloc1", "gres/gpu", "0.00"),
        ("hpc_alloc2", "cpu", "0.00"),
        ("hpc_alloc2", "mem", "0.00"),
        ("hpc_alloc2", "gres/gpu", "0.00"),
    ]));
    let input = period_of(
        "2024-03",
        &[
            ("hpc_erred", None, &[("cpu", "1.00")]),
            ("HPC_Nobody", None, &[("cpu", "2.00")]),
        ],
    );
    let run = env.run(&[], &input);
    // Something was held back or skipped, nothing failed: skips are exit 3.
    run.assert_code(3);
    let s = |x: &str| x.to_string();
    let out = run.outcomes();
    assert_eq!(
        out[..2],
        [
            (
                s("hpc_erred"),
                s("set_usage"),
                s("skipped"),
                None,
                Some(s(
                    "resource state Erred: Waldur takes usage only for OK, Updating and \
                     Terminating resources"
                ))
            ),
            (
                s("HPC_Nobody"),
                s("set_usage"),
                s("skipped"),
                None,
                Some(s(
                    "no resource: no active resource of the offering has backend_id \"HPC_Nobody\""
                ))
            ),
        ]
    );
    // Accounts sort case-insensitively: hpc_erred before HPC_Nobody.
    assert_eq!(
        run.results()[0]["resource"],
        json!(env.resource("hpc_erred"))
    );
    assert_eq!(run.results()[1]["resource"], Value::Null);
    assert!(env.posts().iter().all(|p| !p.path.contains("usage")));
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 0 updated, 2 unchanged, 2 skipped, 0 failed"
    );
}

#[test]
fn dry_run_reads_but_prints_the_posts_instead_of_sending_them() {
    let env = Env::new(Setup::small());
    let run = env.run(&["--dry-run"], &march_input());
    run.assert_code(0);
    assert!(env.posts().is_empty(), "{:?}", env.posts());
    assert!(env.fake.usages().is_empty());
    let results = run.results();
    assert!(results.iter().all(|r| r["status"] == "dry_run"));
    assert_eq!(
        results[0]["request"],
        json!({"method": "POST", "path": "/api/marketplace-component-usages/set_usage/",
               "body": {"resource": env.resource("hpc_alloc1"), "date": MARCH_DATE,
                        "usages": [{"type": "cpu", "amount": "1.54"}, {"type": "mem", "amount": "6008.00"}]}})
    );
    let a1 = env.resource("hpc_alloc1");
    assert_eq!(
        results[2]["request"]["path"],
        json!(format!(
            "/api/marketplace-component-usages/<new cpu usage of resource {a1}>/set_user_usages/"
        ))
    );
    assert!(
        run.stderr
            .contains("dry run: POST /api/marketplace-component-usages/set_usage/ hpc_alloc1")
    );
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 0 updated, 0 unchanged, 0 skipped, 0 failed, 4 would be sent"
    );
}

#[test]
fn offline_needs_no_server_and_shows_payloads_by_account() {
    let env = Env::new(Setup::small());
    let run = env.run(&["--offline"], &march_input());
    run.assert_code(0);
    assert!(env.fake.requests().is_empty());
    let results = run.results();
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0]["request"]["body"],
        json!({"resource": "<resource of account hpc_alloc1>", "date": MARCH_DATE,
               "usages": [{"type": "cpu", "amount": "1.54"}, {"type": "mem", "amount": "6008.00"}]})
    );
    assert_eq!(
        results[1]["request"]["body"],
        json!({"usages": [{"username": "hpcuser1", "usage": "1.00"},
                          {"username": "hpcuser2", "usage": "0.54"}]})
    );
}

#[test]
fn check_reports_token_offering_resources_users_and_clock() {
    let env = Env::new(Setup::small());
    let run = env.run(&["--check"], "");
    // The fake's clock is fixed in 2024, so the skew check must fail: that is the point of it.
    assert_eq!(run.code, 69, "{}\n{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[1].starts_with("ok   token from --token-file "),
        "{lines:?}"
    );
    assert!(lines[1].ends_with("accepted for Waldur user slurm-agent-hpc1 (staff: no)"));
    assert!(lines[2].starts_with("FAIL clock: ours is +"), "{lines:?}");
    assert_eq!(
        lines[3],
        format!(
            "ok   offering \"HPC1 SLURM cluster\" ({}): components cpu (usage), mem (usage), gres/gpu (usage)",
            env.setup.offering.uuid
        )
    );
    assert_eq!(lines[4], "ok   components sent: cpu, gres/gpu, mem");
    assert_eq!(
        lines[5],
        "ok   resources: 3 (1 Erred, 2 OK); 0 without backend_id"
    );
    assert_eq!(lines[6], "ok   offering users: 3 (3 with a username)");
}

#[test]
fn check_passes_against_a_server_with_a_true_clock() {
    let mut setup = Setup::small();
    setup.now = Some(jiff::Timestamp::now().to_string());
    let env = Env::new(setup);
    let run = env.run(&["--check"], "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_contains(&run.stdout, "ok   clock: ours is ");
}

#[test]
fn the_user_usage_sum_rule_is_respected_by_sending_totals_first() {
    // Waldur sets a zero parent total to the sum of its user usages; the tool posts totals
    // first, so the stored total is the account total, not the users' sum.
    let env = Env::new(Setup::small());
    let input = period_of(
        "2024-03",
        &[
            ("hpc_alloc1", None, &[("cpu", "3.00")]),
            ("hpc_alloc1", Some("hpcuser1"), &[("cpu", "1.00")]),
        ],
    );
    assert_eq!(env.run(&[], &input).code, 0);
    assert_eq!(
        env.totals()[0],
        t4("2024-03-01", "hpc_alloc1", "cpu", "3.00")
    );
    let users: Vec<StoredUserUsage> = env.fake.user_usages();
    assert_eq!(users[0].usage, "1.00");
}

#[test]
fn a_clock_with_nanoseconds_still_gives_dates_waldur_accepts() {
    // Waldur takes at most 6 fractional digits; both the usage date and the identity's
    // last_restarted are sent in whole seconds.
    let env = Env::new(Setup::small());
    let run = env.run(&["--now", "2024-03-20T12:00:00.123456789Z"], &march_input());
    run.assert_code(0);
    assert_lacks(&run.stderr, "warning");
    let reqs = env.fake.requests();
    assert_eq!(bodies(&reqs, "set_usage")[0]["date"], json!(MARCH_DATE));
    assert_eq!(
        bodies(&reqs, "marketplace-site-agent-identities/")[0]["last_restarted"],
        json!("2024-03-20T12:00:00Z")
    );
}

/// 110 resources with all three components stored in March at 1.00, the same date: 330
/// rows, two pages of the usage listing, every `cpu` (and `mem`, `gres/gpu`) row tied.
fn tied_rows(unstable: bool) -> Setup {
    let mut setup = Setup::large(110, 0);
    setup.unstable_usage_order = unstable;
    for (i, r) in setup.resources.clone().iter().enumerate() {
        for (j, c) in ["cpu", "mem", "gres/gpu"].iter().enumerate() {
            setup.existing_usages.push(StoredUsage {
                uuid: det_uuid(0xeee0, (i * 3 + j) as u64 + 1),
                resource_uuid: r.uuid.clone(),
                component_type: c.to_string(),
                billing_period: "2024-03-01".into(),
                usage: "1.00".into(),
                date: "2024-03-19T00:00:00+00:00".into(),
            });
        }
    }
    setup
}

fn first_account_changes() -> String {
    period_of(
        "2024-03",
        &[(
            "hpc_alloc_00001",
            None,
            &[("cpu", "2.00"), ("mem", "1.00"), ("gres/gpu", "1.00")],
        )],
    )
}

#[test]
fn pages_that_overlap_zero_fill_nothing_and_say_so_once() {
    // The second page breaks the ties the other way round: it repeats 30 `mem` rows of the
    // first page and never shows the other 30. Zero-filling from that read would send
    // mem 0 over 30 stored values of 1.00.
    let env = Env::new(tied_rows(true));
    let run = env.run(&["--no-register"], &first_account_changes());
    run.assert_code(3);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("warning:"))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "waldur-push: warning: 2024-03: no zeros are sent for idle resources: the component \
             usages read from Waldur do not add up (330 rows read (300 distinct) over 2 page(s) \
             where the first page counted 330); the next run tries again",
            "waldur-push: warning: 1 result(s) held back, skipped or sent without a user link, \
             everything else was sent; see the warnings above"
        ]
    );
    assert_eq!(
        bodies(&env.fake.requests(), "set_usage"),
        vec![
            json!({"resource": env.resource("hpc_alloc_00001"), "date": MARCH_DATE,
                    "usages": [{"type": "cpu", "amount": "2.00"}, {"type": "gres/gpu", "amount": "1.00"},
                               {"type": "mem", "amount": "1.00"}]})
        ]
    );
    let changed: Vec<_> = env.totals().into_iter().filter(|t| t.3 != "1.00").collect();
    assert_eq!(
        changed,
        vec![t4("2024-03-01", "hpc_alloc_00001", "cpu", "2.00")]
    );
    assert_eq!(env.totals().len(), 330);
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 1 updated, 0 unchanged, 0 skipped, 0 failed"
    );
}

#[test]
fn pages_that_add_up_zero_fill_as_usual() {
    // The same rows in a stable order: every row is seen, the idle resources are unchanged.
    let env = Env::new(tied_rows(false));
    let run = env.run(&["--no-register"], &first_account_changes());
    run.assert_code(0);
    assert_lacks(&run.stderr, "warning:");
    assert_eq!(bodies(&env.fake.requests(), "set_usage").len(), 1);
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 1 updated, 109 unchanged, 0 skipped, 0 failed"
    );
}

#[test]
fn a_read_back_whose_pages_overlap_is_read_again_and_never_called_a_misfiling() {
    // Every resource changes, so every row is sent and read back. The unstable order makes
    // each listing repeat 30 mem rows and miss 30 others: those look "not stored". The
    // listing does not add up, so that proves nothing: it is read 3 times, then the values
    // are reported as unverified (75, the next run reads again), never as misfiled (76).
    let env = Env::new(tied_rows(true));
    let lines: Vec<String> = (1..=110)
        .map(|i| {
            usage(
                "2024-03",
                &format!("hpc_alloc_{i:05}"),
                None,
                &[("cpu", "2.00"), ("mem", "2.00"), ("gres/gpu", "2.00")],
            )
        })
        .collect();
    let run = env.run(&["--no-register"], &period("2024-03", &lines));
    run.assert_code(75);
    assert_lacks(&run.stderr, "read-back: ");
    assert_eq!(
        run.stderr
            .matches("the read-back listing did not add up")
            .count(),
        2,
        "{}",
        run.stderr
    );
    run.assert_stderr_contains(
        "2024-03: 30 of 330 values sent could not be verified: the listing did not add up \
             in 3 reads (330 rows read (300 distinct) over 2 page(s) where the first page \
             counted 330)",
    );
    // Everything was in fact stored as sent.
    assert!(env.totals().iter().all(|t| t.3 == "2.00"));
    // Without the unstable order the same run is verified and exits 0.
    let env = Env::new(tied_rows(false));
    let run = env.run(&["--no-register"], &period("2024-03", &lines));
    run.assert_code(0);
}

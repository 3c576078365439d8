//! `waldur-push --check` and `--check --write`: write access is proven by re-sending one
//! stored value unchanged, never guessed from what the token can read, and the exit statuses
//! follow the README's Troubleshooting section.

use crate::support::fake_waldur::{Setup, StoredUsage, det_uuid};
use crate::waldur_push_util::*;
use serde_json::json;

/// A setup whose clock is the real one (so the clock check passes), with stored usage of the
/// current month (UTC): hpc_alloc1 cpu 12.30 and mem 4.00, hpc_alloc2 cpu 7.00.
fn seeded_now(setup: Setup) -> (Setup, String, String) {
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let month = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m")
        .to_string();
    let mut setup = setup;
    setup.now = Some(now.to_string());
    for (i, (backend, component, value)) in [
        ("hpc_alloc1", "cpu", "12.30"),
        ("hpc_alloc1", "mem", "4.00"),
        ("hpc_alloc2", "cpu", "7.00"),
    ]
    .iter()
    .enumerate()
    {
        setup.existing_usages.push(StoredUsage {
            uuid: det_uuid(0xeee0, i as u64 + 1),
            resource_uuid: setup.resource_uuid(backend),
            component_type: component.to_string(),
            billing_period: format!("{month}-01"),
            usage: value.to_string(),
            date: format!("{month}-01T00:00:00+00:00"),
        });
    }
    (setup, now.to_string(), month)
}

/// `(uuid, billing_period, resource, component, usage)`: what billing depends on.
fn billed(env: &Env) -> Vec<(String, String, String, String, String)> {
    env.fake
        .usages()
        .into_iter()
        .map(|u| {
            (
                u.uuid,
                u.billing_period,
                u.resource_uuid,
                u.component_type,
                u.usage,
            )
        })
        .collect()
}

fn write_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.contains("write access: "))
        .unwrap_or_else(|| panic!("no write access line in:\n{stdout}"))
}

#[test]
fn a_token_that_reads_but_may_not_write_is_found_out_by_check_write() {
    let (setup, now, _) = seeded_now(Setup::small().without_role_permissions());
    let env = Env::new(setup);
    let before = env.fake.usages();
    let run = env.run(&["--check", "--write", "--now", &now], "");
    assert_eq!(run.code, 77, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        write_line(&run.stdout),
        "FAIL write access: cannot write (403: You do not have permission to perform this action.)"
    );
    // Everything readable still reads: the write line is the only FAIL.
    assert_eq!(
        run.stdout.lines().filter(|l| l.starts_with("FAIL")).count(),
        1,
        "{}",
        run.stdout
    );
    // One set_usage with hpc_alloc1's stored values, and nothing stored changed at all.
    let posts = env.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(
        posts[0].path,
        "/api/marketplace-component-usages/set_usage/"
    );
    assert_eq!(posts[0].status, 403);
    let body = posts[0].body.clone().unwrap();
    assert_eq!(body["resource"], json!(env.resource("hpc_alloc1")));
    assert_eq!(
        body["usages"],
        json!([{"type": "cpu", "amount": "12.30"}, {"type": "mem", "amount": "4.00"}])
    );
    assert_eq!(env.fake.usages(), before);
}

#[test]
fn a_writable_token_re_sends_a_stored_value_unchanged() {
    let (setup, now, month) = seeded_now(Setup::small());
    let env = Env::new(setup);
    let before = billed(&env);
    let run = env.run(&["--check", "--write", "--now", &now], "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        write_line(&run.stdout),
        format!(
            "ok   write access: can write (re-sent the stored cpu 12.30, mem 4.00 of resource {} \
             for {month} unchanged)",
            env.resource("hpc_alloc1")
        )
    );
    let posts = env.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].status, 201);
    // Same rows (same UUIDs), same periods, same values: only the rows' `date` moved.
    assert_eq!(billed(&env), before);
    assert_eq!(
        billed(&env).into_iter().map(|r| r.4).collect::<Vec<_>>(),
        vec!["12.30", "4.00", "7.00"]
    );
}

#[test]
fn without_write_the_check_says_write_access_is_unknown_and_sends_nothing() {
    let (setup, now, _) = seeded_now(Setup::small().without_role_permissions());
    let env = Env::new(setup);
    let run = env.run(&["--check", "--now", &now], "");
    // Reading cannot tell a role without permissions from a working one: not a failure.
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        write_line(&run.stdout),
        "warn write access: unknown (not tested: reading cannot tell, a role without \
         permissions still reads everything; --check --write re-sends one stored value of \
         this month unchanged)"
    );
    assert!(env.posts().is_empty(), "{:?}", env.posts());
}

#[test]
fn with_nothing_stored_this_month_write_access_stays_unknown() {
    let mut setup = Setup::small().without_role_permissions();
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    setup.now = Some(now.to_string());
    let env = Env::new(setup);
    let month = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m")
        .to_string();
    let run = env.run(&["--check", "--write", "--now", &now.to_string()], "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        write_line(&run.stdout),
        format!(
            "warn write access: unknown (nothing to re-send: no resource that takes usage has \
             a stored value for {month})"
        )
    );
    assert!(env.posts().is_empty(), "{:?}", env.posts());
    assert!(env.fake.usages().is_empty());
}

#[test]
fn check_exits_77_for_a_refused_token_and_76_for_an_invisible_offering() {
    let (setup, now, _) = seeded_now(Setup::small());
    let env = Env::new(setup);
    let bad = env.dir.join("bad-token");
    std::fs::write(&bad, "0123456789abcdef0123456789abcdef01234567\n").unwrap();
    let run = env.run(
        &[
            "--check",
            "--now",
            &now,
            "--token-file",
            bad.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code, 77, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAIL token from --token-file ") && l.contains("HTTP 401")),
        "{}",
        run.stdout
    );
    let other = env.dir.join("other-offering.yaml");
    std::fs::write(
        &other,
        config_yaml(&env.fake.base_url(), &det_uuid(0x0ffe, 99)),
    )
    .unwrap();
    let run = env.run_with(&other, &["--check", "--now", &now], "");
    assert_eq!(run.code, 76, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAIL offering ") && l.contains("HTTP 404")),
        "{}",
        run.stdout
    );
}

#[test]
fn write_is_only_for_check() {
    let env = Env::new(Setup::small());
    let run = env.run(&["--write"], "");
    run.assert_code(64);
    assert!(env.posts().is_empty());
}

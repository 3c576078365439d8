//! Billing months (issue 11): every amount lands in the month it belongs to, on every Waldur
//! version and in every time zone, or is not sent.
//!
//! Each case runs month-split with `--now` for the period records (so `closed` is what the
//! reporting cycle would have written), the real waldur-push with its own `--now`, and a fake
//! Waldur whose clock and `TIME_ZONE` are set; then it asserts the stored values of **every**
//! month the fake holds.

use std::collections::BTreeMap;

use crate::support::fake_waldur::{Setup, StoredUsage, det_uuid};
use crate::support::text::assert_contains;
use crate::waldur_push_util::*;

/// Exit status when something was held back or skipped and nothing failed.
const HELD: i32 = 3;
/// Exit status of a backfill that this server cannot file in the right month.
const UNAVAILABLE: i32 = 69;
/// Exit status of a read-back mismatch.
const PROTOCOL: i32 = 76;

/// `Setup::small()` with the fake's clock and zone, and stored totals
/// `(billing_period, backend_id, component, usage)`.
fn setup(now: &str, server_zone: &str, stored: &[(&str, &str, &str, &str)]) -> Setup {
    let mut s = Setup::small();
    s.now = Some(now.into());
    s.time_zone = server_zone.into();
    for (i, (period, backend, component, value)) in stored.iter().enumerate() {
        s.existing_usages.push(StoredUsage {
            uuid: det_uuid(0xeee0, i as u64 + 1),
            resource_uuid: s.resource_uuid(backend),
            component_type: component.to_string(),
            billing_period: period.to_string(),
            usage: value.to_string(),
            date: format!("{}T00:00:00+00:00", &period[..10]),
        });
    }
    s
}

/// The period records month-split writes for the current and previous month at `made_at`.
fn period_records(site_zone: &str, made_at: &str) -> BTreeMap<String, String> {
    let out = assert_cmd::Command::cargo_bin("month-split")
        .unwrap()
        .args(["--tz", site_zone, "--current", "--previous", "1"])
        .args(["--now", made_at])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["period"].as_str().unwrap().to_string(), format!("{l}\n"))
        })
        .collect()
}

/// A stream as the reporting cycle makes it at `made_at`: for each month, its period record,
/// hpc_alloc1's cpu total, and the period_end.
fn stream(site_zone: &str, made_at: &str, cpu: &[(&str, &str)]) -> String {
    let records = period_records(site_zone, made_at);
    cpu.iter()
        .map(|(month, value)| {
            let head = records
                .get(*month)
                .unwrap_or_else(|| panic!("month-split wrote no {month} at {made_at}"));
            head.clone() + &period_of(month, &[("hpc_alloc1", None, &[("cpu", value)])])
        })
        .collect()
}

/// One reporting cycle of a site in `site_zone` at `now`: its stream of hpc_alloc1's `cpu`
/// totals, pushed with `--now now --no-register` under a config in that zone.
fn cycle(env: &Env, site_zone: &str, now: &str, cpu: &[(&str, &str)]) -> Run {
    let config = env.config_in_zone(site_zone);
    let input = stream(site_zone, now, cpu);
    env.run_with(&config, &["--now", now, "--no-register"], &input)
}

/// A fake on UTC at `now`, with the stored totals of [`setup`].
fn utc_fake(now: &str, stored: &[(&str, &str, &str, &str)]) -> Env {
    Env::new(setup(now, "UTC", stored))
}

/// Asserts every stored cpu total: `expected` lists them as `billing_period backend cpu`,
/// separated by commas.
#[track_caller]
fn assert_cpu(env: &Env, expected: &str) {
    let expected: Vec<_> = expected
        .split(',')
        .map(|row| match row.split_whitespace().collect::<Vec<_>>()[..] {
            [period, backend, cpu] => t3(period, backend, cpu),
            _ => panic!("not `period backend cpu`: {row:?}"),
        })
        .collect();
    assert_eq!(cpu_by_month(env), expected);
}

/// waldur-push with the staff token, `--now now` and `--no-register`, on `input`.
fn staff_run(env: &Env, now: &str, input: &str) -> Run {
    let staff = env.staff_token.to_str().unwrap();
    let args = [
        "--now",
        now,
        "--no-register",
        "--staff",
        "--token-file",
        staff,
    ];
    env.run(&args, input)
}

/// Every stored total of hpc_alloc1 and hpc_alloc2 as `(billing_period, backend, cpu)`.
fn cpu_by_month(env: &Env) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = env
        .totals()
        .into_iter()
        .filter(|t| t.2 == "cpu")
        .map(|t| (t.0, t.1, t.3))
        .collect();
    v.sort();
    v
}

fn t3(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[test]
fn tallinn_at_half_past_midnight_sends_the_old_month_and_holds_the_new_one() {
    // 00:30 on April 1st in Tallinn (UTC+3) is 21:30 on March 31st on a UTC server.
    let now = "2024-03-31T21:30:00Z";
    let env = utc_fake(now, &[("2024-03-01", "hpc_alloc1", "cpu", "1.00")]);
    let sent = [("2024-03", "2.00"), ("2024-04", "0.10")];
    let run = cycle(&env, "Europe/Tallinn", now, &sent);
    run.assert_code(HELD);
    // March's final total reached March; April's first usage went nowhere (the server would
    // have filed it under March), and no zero of April was guessed into March.
    assert_cpu(
        &env,
        "2024-03-01 hpc_alloc1 2.00, 2024-03-01 hpc_alloc2 0.00",
    );
    let april: Vec<_> = run
        .results()
        .into_iter()
        .filter(|r| r["period"] == "2024-04")
        .collect();
    assert_eq!(april.len(), 1);
    assert_eq!(april[0]["status"], "skipped");
    assert_eq!(april[0]["resource"], env.resource("hpc_alloc1").as_str());
    assert_eq!(
        april[0]["reason"],
        "not sent yet: Waldur's month is still 2024-03 (server time zone UTC), so usage of \
         2024-04 sent now would be filed under 2024-03; it is sent once Waldur's clock reaches \
         2024-04"
    );
    run.assert_stderr_contains("warning: 2024-04: held back, nothing of it is sent: not sent yet");
    // March's date is inside March on the server: now less 5 minutes.
    assert_eq!(
        bodies(&env.fake.requests(), "set_usage")[0]["date"],
        "2024-03-31T21:25:00Z"
    );
}

#[test]
fn new_york_on_the_last_evening_holds_the_month_the_server_has_left() {
    // 21:00 on March 31st in New York (UTC-4) is 01:00 on April 1st on a UTC server.
    let now = "2024-04-01T01:00:00Z";
    let env = utc_fake(
        now,
        &[
            ("2024-02-01", "hpc_alloc1", "cpu", "5.00"),
            ("2024-03-01", "hpc_alloc1", "cpu", "1.00"),
        ],
    );
    let sent = [("2024-02", "5.00"), ("2024-03", "2.00")];
    let run = cycle(&env, "America/New_York", now, &sent);
    run.assert_code(HELD);
    // Nothing moved: March is not filed under April, February stays, April holds nothing.
    assert_cpu(
        &env,
        "2024-02-01 hpc_alloc1 5.00, 2024-03-01 hpc_alloc1 1.00",
    );
    assert!(env.posts().iter().all(|p| !p.path.contains("usage")));
    let outcomes = run.outcomes();
    assert_eq!(
        outcomes[0],
        (
            "hpc_alloc1".into(),
            "set_usage".into(),
            "unchanged".into(),
            None,
            Some("closed month: Waldur already holds these totals for 2024-02".into())
        )
    );
    assert_eq!(outcomes[1].2, "skipped");
    // The usage the site could not send any more is named, with the amounts.
    run.assert_stderr_contains(
        "warning: 2024-03 has ended on Waldur with usage that was never sent: hpc_alloc1 \
             cpu 2.00 (Waldur 1.00); load it with a staff token: waldur-usage-backfill \
             --start-date 2024-03-01 --end-date 2024-03-31",
    );
}

#[test]
fn auckland_holds_the_new_month_until_the_server_reaches_it() {
    // 12:00 on April 1st in Auckland (NZDT, UTC+13) is 23:00 on March 31st in UTC.
    let first = "2024-03-31T23:00:00Z";
    let env = utc_fake(first, &[]);
    let sent = [("2024-03", "4.00"), ("2024-04", "0.50")];
    let run = cycle(&env, "Pacific/Auckland", first, &sent);
    run.assert_code(HELD);
    assert_cpu(
        &env,
        "2024-03-01 hpc_alloc1 4.00, 2024-03-01 hpc_alloc2 0.00",
    );
    // 13:02 in Auckland: the server has reached April. April is sent, dated inside April on
    // the server; March is complete in Waldur and stays as it is.
    let later = "2024-04-01T00:02:00Z";
    env.fake.set_now(later);
    env.fake.clear_requests();
    let sent = [("2024-03", "4.00"), ("2024-04", "0.75")];
    let run = cycle(&env, "Pacific/Auckland", later, &sent);
    run.assert_code(0);
    assert_cpu(
        &env,
        "2024-03-01 hpc_alloc1 4.00, 2024-03-01 hpc_alloc2 0.00, \
         2024-04-01 hpc_alloc1 0.75, 2024-04-01 hpc_alloc2 0.00",
    );
    // 00:02 less the 5-minute margin would be March 31st: the date is clamped to April 1st.
    assert!(
        bodies(&env.fake.requests(), "set_usage")
            .iter()
            .all(|b| b["date"] == "2024-04-01T00:00:00Z")
    );
}

#[test]
fn a_stream_made_before_midnight_and_pushed_after_it_files_nothing_under_the_new_month() {
    let made = "2024-03-31T23:59:50Z";
    let pushed = "2024-04-01T00:00:20Z";
    let env = utc_fake(pushed, &[("2024-03-01", "hpc_alloc1", "cpu", "1.00")]);
    let input = stream("UTC", made, &[("2024-03", "2.00")]);
    assert_contains(&input, "\"closed\":false");
    let run = env.run(&["--now", pushed, "--no-register"], &input);
    run.assert_code(HELD);
    assert_cpu(&env, "2024-03-01 hpc_alloc1 1.00");
    assert!(env.posts().iter().all(|p| !p.path.contains("usage")));
    // With a staff token neither: the total stops at 23:59:50, it is not March's total.
    let run = staff_run(&env, pushed, &input);
    run.assert_code(HELD);
    run.assert_stderr_contains(
        "the data of 2024-03 was collected before the month ended, and Waldur is now in \
             2024-04",
    );
    assert_cpu(&env, "2024-03-01 hpc_alloc1 1.00");
}

/// A staff backfill of September 2024 on a server whose clock is in November.
const NOVEMBER: &str = "2024-11-25T10:00:00Z";

fn november_setup() -> Setup {
    setup(
        NOVEMBER,
        "UTC",
        &[
            ("2024-10-01", "hpc_alloc1", "cpu", "6.00"),
            ("2024-11-01", "hpc_alloc1", "cpu", "3.00"),
            ("2024-11-01", "hpc_alloc1", "mem", "30.00"),
        ],
    )
}

fn september_input() -> String {
    let record = period_records("UTC", NOVEMBER);
    assert!(!record.contains_key("2024-09"));
    let out = assert_cmd::Command::cargo_bin("month-split")
        .unwrap()
        .args(["--tz", "UTC", "--start", "2024-09", "--end", "2024-09"])
        .args(["--now", NOVEMBER])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
        + &period_of(
            "2024-09",
            &[("hpc_alloc1", None, &[("cpu", "9.00"), ("mem", "90.00")])],
        )
}

fn all_months(env: &Env) -> Vec<(String, String, String, String)> {
    let mut v = env.totals();
    v.sort();
    v
}

fn november_as_seeded() -> Vec<(String, String, String, String)> {
    vec![
        t4("2024-10-01", "hpc_alloc1", "cpu", "6.00"),
        t4("2024-11-01", "hpc_alloc1", "cpu", "3.00"),
        t4("2024-11-01", "hpc_alloc1", "mem", "30.00"),
    ]
}

#[test]
fn a_backfill_on_a_server_that_ignores_date_is_refused_before_any_write() {
    let env = Env::new(november_setup().waldur_7_0());
    for attempt in 1..=2 {
        let run = staff_run(&env, NOVEMBER, &september_input());
        assert_eq!(run.code, UNAVAILABLE, "attempt {attempt}: {}", run.stderr);
        run.assert_stderr_contains(
            "Waldur 7.0.7 files usage under its current month (2024-11) whatever date is \
                 sent, so 2024-09 cannot be loaded on this server",
        );
        assert!(env.posts().iter().all(|p| !p.path.contains("usage")));
        assert_eq!(all_months(&env), november_as_seeded(), "attempt {attempt}");
    }
}

#[test]
fn a_backfill_on_a_server_of_unknown_version_is_proven_by_its_first_write_and_undone() {
    // It ignores date but does not say so: the first write is the test, and November is
    // written back exactly as it was.
    let mut s = november_setup().waldur_7_0();
    s.version = "develop".into();
    let env = Env::new(s);
    let run = staff_run(&env, NOVEMBER, &september_input());
    run.assert_code(UNAVAILABLE);
    run.assert_stderr_contains("did not land in 2024-09");
    run.assert_stderr_contains("2024-11 was written back as it was");
    assert_eq!(all_months(&env), november_as_seeded());
}

#[test]
fn a_backfill_on_a_server_that_honours_date_changes_only_the_target_month() {
    let env = Env::new(november_setup());
    let run = staff_run(&env, NOVEMBER, &september_input());
    run.assert_code(0);
    let mut expected = vec![
        t4("2024-09-01", "hpc_alloc1", "cpu", "9.00"),
        t4("2024-09-01", "hpc_alloc1", "mem", "90.00"),
    ];
    expected.extend(november_as_seeded());
    assert_eq!(all_months(&env), expected);
    assert_eq!(
        bodies(&env.fake.requests(), "set_usage")[0]["date"],
        "2024-09-15T12:00:00Z"
    );
}

#[test]
fn a_read_back_mismatch_stops_the_run() {
    let env = Env::new(november_setup());
    env.fake.tamper_writes(1);
    let november = period_records("UTC", NOVEMBER)["2024-11"].clone()
        + &period_of("2024-11", &[("hpc_alloc1", None, &[("cpu", "4.00")])]);
    let run = staff_run(&env, NOVEMBER, &(september_input() + &november));
    run.assert_code(PROTOCOL);
    // September's cpu was stored 1.00 too high; the run stopped before November.
    run.assert_stderr_contains(
        "read-back: hpc_alloc1 (resource a1100000000000000000000000000001) cpu: sent 9.00, \
             Waldur holds 10.00 for 2024-09",
    );
    run.assert_stderr_contains("the run stops after 2024-09");
    let mut expected = vec![
        t4("2024-09-01", "hpc_alloc1", "cpu", "10.00"),
        t4("2024-09-01", "hpc_alloc1", "mem", "90.00"),
    ];
    expected.extend(november_as_seeded());
    assert_eq!(all_months(&env), expected);
}

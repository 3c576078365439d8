//! End to end against a real single-node SLURM with accounting (`shell/slurm-dev-cluster up`).
//!
//! A mix of real jobs (see `e2e/mix.rs`) runs as three users; then our tools report it and the
//! numbers are compared, with exact equality, against an independent computation from one plain
//! `sacct` query (`e2e/oracle.rs`): per account and per user, for every configured component,
//! integers before conversion and decimal strings after.
//!
//! Needs root and the cluster; without them the tests fail and say how to start it, unless
//! `WALDUR_USAGE_E2E=skip` asks to skip them. Run with `cargo test --test suite e2e`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use waldur_usage::records::Record;

use crate::e2e::cluster::{self, HOW_TO_START};
use crate::e2e::mix::{self, Mix};
use crate::e2e::oracle::{self, Key, Row, Usage};
use crate::e2e::pipeline::{self, PREFIX, TIMEZONE, local, month_start, rfc3339, stage};
use crate::support::fake_waldur::{
    FakeWaldur, PROVIDER_TOKEN, ResourceSetup, Setup, det_uuid, tags,
};
use crate::support::scratch::{Scratch, write_mode};

/// The mix is submitted once and shared by the tests (they only read accounting after it).
static MIX: Mutex<Option<Result<Arc<Mix>, String>>> = Mutex::new(None);

/// The shared job mix; `None` when skipped on purpose. Panics with instructions when the cluster
/// is not there.
fn mix() -> Option<Arc<Mix>> {
    if cluster::skipped_on_purpose() {
        eprintln!("e2e_slurm: skipped because WALDUR_USAGE_E2E=skip");
        return None;
    }
    let mut slot = MIX.lock().unwrap_or_else(|p| p.into_inner());
    let result = slot.get_or_insert_with(|| {
        cluster::preflight()
            .map_err(|e| format!("cannot run the end-to-end test: {e}\n\n{HOW_TO_START}"))
            .and_then(|()| mix::run())
            .map(Arc::new)
    });
    match result {
        Ok(mix) => Some(Arc::clone(mix)),
        Err(e) => panic!("{e}"),
    }
}

/// What the oracle says for `[start, end)`: the sums, and the rows behind them. For the report
/// window (month start to report time) it first checks that the query saw every allocation of
/// the mix.
fn oracle_for(mix: &Mix, start: Timestamp, end: Timestamp) -> (BTreeMap<Key, Usage>, Vec<Row>) {
    let (text, rows) = oracle::query(TIMEZONE, &local(start), &local(end)).unwrap();
    let report_window = start == month_start(mix.report_at) && end == mix.report_at;
    for allocation in mix.accounted.iter().filter(|_| report_window) {
        assert!(
            rows.iter().any(|r| r.job == allocation.raw_id),
            "the oracle query for [{start}, {end}) misses {allocation:?}:\n{text}"
        );
    }
    (
        oracle::aggregate(&rows, PREFIX, &pipeline::tres_names()),
        rows,
    )
}

/// The oracle's seconds for one job in a window (0 when the window does not list it).
fn job_seconds(rows: &[Row], id: &str) -> u128 {
    rows.iter().find(|r| r.job == id).map_or(0, |r| r.elapsed)
}

/// The `tres` records of `period` in a slurm-usage output, keyed like the oracle, with the
/// configured TRES they carry. Also checks that the stream closed its last period.
fn tres_of(output: &[u8], period: &str) -> BTreeMap<Key, Usage> {
    let records = pipeline::records(output);
    assert!(
        matches!(records.last(), Some(Record::PeriodEnd(_))),
        "slurm-usage output does not end with period_end:\n{}",
        String::from_utf8_lossy(output)
    );
    let mut out = BTreeMap::new();
    for record in records {
        if let Record::Tres(t) = record
            && t.period == period
        {
            let mut seconds = t.tres_seconds.clone();
            seconds.retain(|name, _| pipeline::tres_names().contains(&name.as_str()));
            let old = out.insert(
                (t.account.clone(), t.user.clone()),
                Usage {
                    jobs: t.jobs,
                    seconds,
                },
            );
            assert!(
                old.is_none(),
                "two tres records for {} {:?}",
                t.account,
                t.user
            );
        }
    }
    out
}

/// The oracle's TRES x seconds converted to Waldur amounts, keyed like usage records: account
/// totals carry every component ("0.00" when unused), users the components whose TRES they had.
fn expected_amounts(expected: &BTreeMap<Key, Usage>) -> BTreeMap<Key, BTreeMap<String, String>> {
    expected
        .iter()
        .map(|(key, usage)| {
            let amounts = pipeline::COMPONENTS
                .iter()
                .filter_map(|(name, _, mantissa, scale)| {
                    let seconds = match (usage.seconds.get(*name), &key.1) {
                        (Some(s), _) => *s,
                        (None, None) => 0,
                        (None, Some(_)) => return None,
                    };
                    Some((
                        name.to_string(),
                        oracle::waldur_amount(seconds, *mantissa, *scale),
                    ))
                })
                .collect();
            (key.clone(), amounts)
        })
        .collect()
}

/// The usage records of `period` in a usage-convert output, keyed like the oracle.
fn usage_of(output: &[u8], period: &str) -> BTreeMap<Key, BTreeMap<String, String>> {
    pipeline::records(output)
        .into_iter()
        .filter_map(|r| match r {
            Record::Usage(u) if u.period == period => Some(((u.account, u.user), u.components)),
            _ => None,
        })
        .collect()
}

#[test]
fn pipeline_reports_exactly_what_sacct_says() {
    let _cluster = cluster::shared();
    let Some(mix) = mix() else { return };
    let t = mix.report_at;
    let month_start = month_start(t);
    let (expected, rows) = oracle_for(&mix, month_start, t);

    // The running job counts up to the report time: the oracle's line for it (ElapsedRaw clipped
    // by --truncate) is T - start, with 1 CPU and 1536 MiB allocated.
    let ran = (t.as_second() - mix.running_start.as_second().max(month_start.as_second())) as u128;
    assert!(ran >= 5, "still_running ran only {ran} s before the report");
    let row = rows.iter().find(|r| r.job == mix.running.id).unwrap();
    assert_eq!(row.elapsed, ran);
    assert_eq!((row.alloc["cpu"], row.alloc["mem"]), (1, 1536));
    // The non-prefixed account is in accounting, but not among the expected keys.
    assert!(mix.accounted.iter().any(|a| a.account == "other_dept"));
    assert!(
        expected
            .keys()
            .all(|(account, _)| account.starts_with(PREFIX))
    );
    // Both allocations and every user who ran in them.
    let keys: Vec<_> = expected.keys().cloned().collect();
    let key = |a: &str, u: Option<&str>| (a.to_string(), u.map(str::to_string));
    assert_eq!(
        keys,
        vec![
            key("hpc_alloc1", None),
            key("hpc_alloc1", Some("hpcuser1")),
            key("hpc_alloc1", Some("hpcuser2")),
            key("hpc_alloc2", None),
            key("hpc_alloc2", Some("hpcuser1")),
            key("hpc_alloc2", Some("hpcuser3")),
        ]
    );
    eprintln!("e2e: oracle for [{month_start}, {t}): {expected:#?}");

    let setup = fake_setup();
    let fake = FakeWaldur::start(setup.clone());
    let scratch = Scratch::new("e2e-pipeline");
    let config = pipeline::write_config(scratch.path(), &fake.base_url(), &setup.offering.uuid);
    let config = config.to_str().unwrap();
    let token = scratch.join("token");
    write_mode(&token, PROVIDER_TOKEN, 0o600);
    let token = token.to_str().unwrap();
    let now = rfc3339(t);
    let report = || {
        let periods = stage(
            "month-split",
            &["-c", config, "--current", "--now", &now],
            b"",
        );
        let tres = stage("slurm-usage", &["-c", config, "--now", &now], &periods);
        let usage = stage("usage-convert", &["-c", config], &tres);
        // Exit 3: the offering's other_dept resource lies outside allocation_prefix, so it is
        // skipped (a warning), never zero-filled; everything else is sent.
        let results = pipeline::stage_exits(
            "waldur-push",
            &["-c", config, "--token-file", token, "--now", &now],
            &usage,
            3,
        );
        (tres, usage, results)
    };
    let (tres, usage, results) = report();

    // Integers before conversion.
    // (month-split also gives the previous month, the config's reporting cycle.)
    let period = pipeline::month(t);
    assert_eq!(
        tres_of(&tres, &period),
        expected,
        "slurm-usage vs the oracle"
    );
    // Decimal strings after.
    let amounts = expected_amounts(&expected);
    assert_eq!(
        usage_of(&usage, &period),
        amounts,
        "usage-convert vs the oracle"
    );
    // What Waldur holds now: per resource and component the account total, per user the
    // user's values, all as the oracle computed them.
    let billing_period = format!("{period}-01");
    assert_eq!(
        waldur_amounts(&fake, &setup, &billing_period),
        amounts,
        "Waldur vs the oracle; results:\n{}",
        String::from_utf8_lossy(&results)
    );
    // The non-prefixed account never reached Waldur, though it has a resource and real jobs:
    // not its usage, and not a guessed zero either (it is outside allocation_prefix).
    let other_dept = setup.resource_uuid("other_dept");
    let leaked: Vec<_> = fake
        .usages()
        .into_iter()
        .filter(|u| u.resource_uuid == other_dept)
        .collect();
    assert!(leaked.is_empty(), "other_dept usage submitted: {leaked:?}");
    assert!(
        fake.user_usages()
            .iter()
            .all(|u| u.resource_uuid != other_dept)
    );
    for record in pipeline::records(&results) {
        if let Record::Result(r) = record {
            assert_ne!(r.status, "failed", "{r:?}");
        }
    }

    // A second cycle for the same instant changes nothing: no POST at all, same values.
    let before = (fake.usages(), fake.user_usages());
    fake.clear_requests();
    let (tres2, usage2, _) = report();
    assert_eq!(
        (tres2, usage2),
        (tres, usage),
        "the second run read other numbers"
    );
    let posts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert!(posts.is_empty(), "the second run POSTed {posts:?}");
    assert_eq!((fake.usages(), fake.user_usages()), before);
}

/// The fake Waldur for the e2e test: the standard offering (cpu, mem, gres/gpu), the provider
/// token, the test users as offering users, the billing zone of the config, and a resource
/// for each allocation and also for the non-prefixed account, so that a leak would land.
fn fake_setup() -> Setup {
    let resources = ["hpc_alloc1", "hpc_alloc2", "other_dept"]
        .iter()
        .zip(1..)
        .map(|(account, i)| ResourceSetup {
            uuid: det_uuid(tags::RESOURCE, i),
            name: format!("Resource {account}"),
            backend_id: (*account).into(),
            state: "OK".into(),
        })
        .collect();
    Setup {
        resources,
        time_zone: TIMEZONE.into(),
        ..Setup::small()
    }
}

/// The fake's stored usage of the allocations in `billing_period`, keyed like usage records:
/// (account, None) -> component -> total, (account, Some(user)) -> component -> user's value.
fn waldur_amounts(
    fake: &FakeWaldur,
    setup: &Setup,
    billing_period: &str,
) -> BTreeMap<Key, BTreeMap<String, String>> {
    let mut out: BTreeMap<Key, BTreeMap<String, String>> = BTreeMap::new();
    for account in ["hpc_alloc1", "hpc_alloc2"] {
        let resource = setup.resource_uuid(account);
        for u in fake.usages() {
            if u.resource_uuid == resource && u.billing_period == billing_period {
                out.entry((account.into(), None))
                    .or_default()
                    .insert(u.component_type, u.usage);
            }
        }
        for u in fake.user_usages() {
            if u.resource_uuid == resource && u.billing_period == billing_period {
                out.entry((account.into(), Some(u.username)))
                    .or_default()
                    .insert(u.component_type, u.usage);
            }
        }
    }
    out
}

#[test]
fn split_window_parts_add_up_to_the_whole() {
    let _cluster = cluster::shared();
    let Some(mix) = mix() else { return };
    let t = mix.report_at;
    let month_start = month_start(t);
    let from = mix.running_start.max(month_start);
    // An arbitrary instant inside the running job, a whole second strictly between its start
    // (or the month start) and the report: the boundary between two adjacent windows.
    let split =
        Timestamp::from_second(from.as_second() + (t.as_second() - from.as_second()) / 2).unwrap();
    assert!(from < split && split < t, "{from} < {split} < {t}");

    let scratch = Scratch::new("e2e-split");
    // Only slurm-usage runs here: no Waldur is contacted.
    let config = pipeline::write_config(
        scratch.path(),
        "http://127.0.0.1:9/api/",
        &det_uuid(tags::OFFERING, 1),
    );
    let config = config.to_str().unwrap();
    let run = |start, end| {
        let out = stage(
            "slurm-usage",
            &["-c", config],
            &pipeline::period_record(start, end),
        );
        tres_of(&out, &pipeline::month(t))
    };
    let whole = run(month_start, t);
    let first = run(month_start, split);
    let second = run(split, t);
    let (whole_oracle, whole_rows) = oracle_for(&mix, month_start, t);
    let (first_oracle, first_rows) = oracle_for(&mix, month_start, split);
    let (second_oracle, second_rows) = oracle_for(&mix, split, t);
    assert_eq!(whole, whole_oracle, "whole window vs the oracle");
    assert_eq!(first, first_oracle, "first part vs the oracle");
    assert_eq!(second, second_oracle, "second part vs the oracle");

    // The running job is cut in two: (split - start) seconds before, (T - split) after, which
    // add up to its (T - start) in the whole window.
    let before = (split.as_second() - from.as_second()) as u128;
    let after = (t.as_second() - split.as_second()) as u128;
    let id = &mix.running.id;
    assert_eq!(job_seconds(&first_rows, id), before);
    assert_eq!(job_seconds(&second_rows, id), after);
    assert_eq!(job_seconds(&whole_rows, id), before + after);
    // After the split only the running job is left of (hpc_alloc1, hpcuser1): in the second part
    // that key is the job alone, 1 CPU and 1536 MiB for `after` seconds.
    let key = ("hpc_alloc1".to_string(), Some("hpcuser1".to_string()));
    assert_eq!(second[&key].jobs, 1);
    assert_eq!(second[&key].seconds["cpu"], after);
    assert_eq!(second[&key].seconds["mem"], 1536 * after);
    // Every key and TRES: first + second == whole (a job counted in both parts counts once in
    // the whole, so job counts are not additive and are not compared here).
    for (key, total) in &whole {
        for (name, seconds) in &total.seconds {
            let part = |m: &BTreeMap<Key, Usage>| {
                m.get(key)
                    .and_then(|u| u.seconds.get(name))
                    .copied()
                    .unwrap_or(0)
            };
            assert_eq!(
                part(&first) + part(&second),
                *seconds,
                "{key:?} {name}: parts {} + {} vs whole {seconds}",
                part(&first),
                part(&second)
            );
        }
    }
}

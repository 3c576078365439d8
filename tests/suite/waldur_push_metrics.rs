//! `waldur-push --metrics-file`: the file node_exporter's textfile collector reads, parsed
//! with a Prometheus text-format parser (`support::prometheus`), after a run with one held
//! decrease and one failure, then after a run that succeeds.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::fake_waldur::{Fault, FaultKind};
use crate::support::prometheus::Exposition;
use crate::waldur_push_util::*;

fn input() -> String {
    period_of(
        "2024-03",
        &[
            ("hpc_alloc1", None, &[("cpu", "1.50")]),
            ("hpc_alloc2", None, &[("cpu", "2.25")]),
        ],
    )
}

/// Every sample of the file as `name{sorted labels} -> value`, each a counter, a gauge or
/// untyped.
fn scrape(path: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let scrape = Exposition::parse(&text).expect("the metrics file parses");
    // Every family has its HELP and TYPE.
    for name in [
        "waldur_usage_last_run_timestamp_seconds",
        "waldur_usage_records_total",
        "waldur_usage_requests_total",
        "waldur_usage_run_duration_seconds",
    ] {
        assert!(
            scrape.help.contains_key(name),
            "no HELP for {name}:\n{text}"
        );
    }
    scrape.by_key(&["counter", "gauge", "untyped"])
}

fn records(samples: &BTreeMap<String, f64>, status: &str) -> f64 {
    samples[&format!("waldur_usage_records_total{{offering=HPC1,status={status}}}")]
}

#[test]
fn a_held_decrease_and_a_failure_are_counted_and_the_last_success_waits_for_a_good_run() {
    // hpc_alloc1 holds cpu 2.00 for March: an input of 1.50 is a decrease, held back.
    let env = Env::new(seeded(&[("hpc_alloc1", "cpu", "2.00")]));
    let alloc2 = env.resource("hpc_alloc2");
    // hpc_alloc2's set_usage answers 500 to its 4 attempts (1 + --retries 3) of the first run.
    env.fake.inject(
        Fault::new("POST", "set_usage/", FaultKind::Status(500))
            .with_body(&alloc2)
            .times(4),
    );
    let file = env.dir.join("waldur-usage.prom");
    let file_arg = file.to_str().unwrap();
    let before = jiff::Timestamp::now().as_second() as f64;
    let run = env.run(&["--no-register", "--metrics-file", file_arg], &input());
    run.assert_code(75);
    let first = scrape(&file);
    assert_eq!(records(&first, "held"), 1.0);
    assert_eq!(records(&first, "failed"), 1.0);
    assert_eq!(records(&first, "updated"), 0.0);
    assert_eq!(records(&first, "unchanged"), 0.0);
    assert_eq!(records(&first, "skipped"), 0.0);
    assert_eq!(
        first["waldur_usage_requests_total{code=500,method=POST,offering=HPC1}"],
        4.0
    );
    let last_run = first["waldur_usage_last_run_timestamp_seconds{offering=HPC1}"];
    assert!(last_run >= before && last_run < before + 60.0, "{last_run}");
    let duration = first["waldur_usage_run_duration_seconds{offering=HPC1}"];
    assert!(duration > 0.0 && duration < 60.0, "{duration}");
    // Something failed: no success yet.
    assert!(
        !first.contains_key("waldur_usage_last_success_timestamp_seconds{offering=HPC1}"),
        "{first:?}"
    );
    // No temporary or lock file is left beside it.
    let leftovers: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".prom.tmp") || n.ends_with(".prom.lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The next cycle: hpc_alloc2 is stored, the decrease is still held (exit 3, a success).
    let run = env.run(&["--no-register", "--metrics-file", file_arg], &input());
    run.assert_code(3);
    let second = scrape(&file);
    // Counters add up over the runs.
    assert_eq!(records(&second, "held"), 2.0);
    assert_eq!(records(&second, "failed"), 1.0);
    assert_eq!(records(&second, "updated"), 1.0);
    assert_eq!(
        second["waldur_usage_requests_total{code=500,method=POST,offering=HPC1}"],
        4.0
    );
    assert_eq!(
        second["waldur_usage_requests_total{code=201,method=POST,offering=HPC1}"],
        1.0
    );
    let success = second["waldur_usage_last_success_timestamp_seconds{offering=HPC1}"];
    assert_eq!(
        success,
        second["waldur_usage_last_run_timestamp_seconds{offering=HPC1}"]
    );
    assert_eq!(env.totals(), {
        let mut t = vec![
            t4("2024-03-01", "hpc_alloc1", "cpu", "2.00"),
            t4("2024-03-01", "hpc_alloc2", "cpu", "2.25"),
        ];
        t.sort();
        t
    });
}

//! `waldur-push --audit`: what Waldur holds for a month against what SLURM measured, per
//! resource, component and user, read-only (issue 15, "Done when" 1).

use crate::support::fake_waldur::{Setup, StoredUsage, StoredUserUsage, det_uuid};
use crate::waldur_push_util::*;

/// Everything agrees: exit 0. A difference of any kind: exit 1.
const DIFFERS: i32 = 1;

#[test]
fn right_after_a_push_everything_is_ok() {
    let env = Env::new(Setup::small());
    assert_eq!(env.run(&[], &march_input()).code, 0);
    let posts = env.posts().len();
    let run = env.run(&["--audit"], &march_input());
    run.assert_code(0);
    assert_eq!(env.posts().len(), posts, "the audit wrote nothing");
    let r1 = env.resource("hpc_alloc1");
    let r2 = env.resource("hpc_alloc2");
    // The push stored the input, and zeros for the idle hpc_alloc2, which need no explaining.
    let expected = format!(
        "period   account     resource{pad}  component  user        slurm   waldur  difference  status\n\
         2024-03  hpc_alloc1  {r1}  cpu        (total)      1.54     1.54        0.00  ok\n\
         2024-03  hpc_alloc1  {r1}  cpu        hpcuser1     1.00     1.00        0.00  ok\n\
         2024-03  hpc_alloc1  {r1}  cpu        hpcuser2     0.54     0.54        0.00  ok\n\
         2024-03  hpc_alloc1  {r1}  mem        (total)   6008.00  6008.00        0.00  ok\n\
         2024-03  hpc_alloc1  {r1}  mem        hpcuser1  4000.00  4000.00        0.00  ok\n\
         2024-03  hpc_alloc1  {r1}  mem        hpcuser2  2008.00  2008.00        0.00  ok\n",
        pad = " ".repeat(r1.len() - "resource".len()),
    );
    assert_eq!(run.stdout, expected);
    assert!(env.fake.usages().iter().any(|u| u.resource_uuid == r2));
    let statuses: Vec<String> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    assert!(statuses.iter().all(|s| s == "ok"), "{}", run.stdout);
    run.assert_stderr_contains("audit: 1 period(s), Waldur holds exactly what SLURM measured");
}

fn stored(s: &Setup, n: u64, backend: &str, component: &str, value: &str) -> StoredUsage {
    StoredUsage {
        uuid: det_uuid(0xeee0, n),
        resource_uuid: s.resource_uuid(backend),
        component_type: component.to_string(),
        billing_period: "2024-03-01".into(),
        usage: value.to_string(),
        date: "2024-03-19T00:00:00+00:00".into(),
    }
}

fn user_row(
    parent: &StoredUsage,
    n: u64,
    username: &str,
    value: &str,
    linked: bool,
) -> StoredUserUsage {
    StoredUserUsage {
        uuid: det_uuid(0xeee1, n),
        component_usage_uuid: parent.uuid.clone(),
        resource_uuid: parent.resource_uuid.clone(),
        component_type: parent.component_type.clone(),
        billing_period: parent.billing_period.clone(),
        username: username.to_string(),
        usage: value.to_string(),
        user: linked
            .then(|| format!("https://waldur.example.com/api/marketplace-offering-users/{n}/")),
    }
}

#[test]
fn each_kind_of_difference_has_its_line_and_exit_1() {
    // Waldur: hpc_alloc1 cpu hand-edited to 1.50 (SLURM 1.54), its mem row deleted, a cpu row
    // for hpc_alloc2 that SLURM does not explain, and hpcuser1's cpu row without a user link.
    let mut s = Setup::small();
    let cpu = stored(&s, 1, "hpc_alloc1", "cpu", "1.50");
    let extra = stored(&s, 2, "hpc_alloc2", "cpu", "3.00");
    s.existing_user_usages = vec![
        user_row(&cpu, 1, "hpcuser1", "1.00", false),
        user_row(&cpu, 2, "hpcuser2", "0.54", true),
    ];
    s.existing_usages = vec![cpu, extra];
    let env = Env::new(s);
    let run = env.run(&["--audit"], &march_input());
    run.assert_code(DIFFERS);
    assert!(env.posts().is_empty(), "the audit wrote nothing");
    let r1 = env.resource("hpc_alloc1");
    let r2 = env.resource("hpc_alloc2");
    let pad = " ".repeat(r1.len() - "resource".len());
    assert_eq!(
        run.stdout,
        format!(
            "period   account     resource{pad}  component  user        slurm  waldur  difference  status\n\
             2024-03  hpc_alloc1  {r1}  cpu        (total)      1.54    1.50       -0.04  differs\n\
             2024-03  hpc_alloc1  {r1}  cpu        hpcuser1     1.00    1.00        0.00  unlinked\n\
             2024-03  hpc_alloc1  {r1}  cpu        hpcuser2     0.54    0.54        0.00  ok\n\
             2024-03  hpc_alloc1  {r1}  mem        (total)   6008.00       -    -6008.00  missing\n\
             2024-03  hpc_alloc1  {r1}  mem        hpcuser1  4000.00       -    -4000.00  missing\n\
             2024-03  hpc_alloc1  {r1}  mem        hpcuser2  2008.00       -    -2008.00  missing\n\
             2024-03  hpc_alloc2  {r2}  cpu        (total)         -    3.00        3.00  extra\n"
        )
    );
    run.assert_stderr_contains(
        "6 value(s) in 1 period(s) differ between SLURM and Waldur: see the lines whose \
             status is not ok",
    );
    // The same as JSON lines.
    let run = env.run(&["--audit", "--json"], &march_input());
    assert_eq!(run.code, DIFFERS);
    let first: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"kind": "audit", "period": "2024-03", "account": "hpc_alloc1",
            "resource": r1, "component": "cpu", "user": null, "slurm": "1.54",
            "waldur": "1.50", "difference": "-0.04", "status": "differs"})
    );
    let statuses: Vec<String> = run
        .results_of_kind("audit")
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        statuses,
        [
            "differs", "unlinked", "ok", "missing", "missing", "missing", "extra"
        ]
    );
}

#[test]
fn audit_excludes_the_write_modes_and_json_needs_it() {
    let env = Env::new(Setup::small());
    let run = env.run(&["--audit", "--dry-run"], &march_input());
    assert_eq!(run.code, 64);
    assert!(
        run.stderr
            .contains("--dry-run, --offline, --check and --audit exclude each other")
    );
    let run = env.run(&["--json"], &march_input());
    assert_eq!(run.code, 64);
    assert!(run.stderr.contains("--json is an output style of --audit"));
}

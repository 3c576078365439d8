//! The request budget on a large offering (issue 4, "Done when" 4): 1,000 resources, 3,000
//! users, 3 components, 2 periods. An all-changed run makes at most one `set_usage` per
//! resource per period and one `set_user_usages` per component per resource per period; a
//! no-change run afterwards makes at most 100 requests and no POST.

use std::collections::BTreeMap;

use crate::support::fake_waldur::Setup;
use crate::waldur_push_util::*;

const RESOURCES: usize = 1000;
const USERS: usize = 3000;

/// Account i has users 3i-2, 3i-1, 3i; every value differs per account and user.
fn input(period_key: &str, scale: u64) -> String {
    let mut lines = Vec::with_capacity(RESOURCES * 4);
    for i in 1..=RESOURCES as u64 {
        let account = format!("hpc_alloc_{i:05}");
        let v = |base: u64| format!("{}.{:02}", base * scale, i % 100);
        lines.push(usage(
            period_key,
            &account,
            None,
            // No user is above its total (gres/gpu: users 3i-2..3i, total 9i).
            &[
                ("cpu", &v(3 * i)),
                ("mem", &v(30 * i)),
                ("gres/gpu", &v(9 * i)),
            ],
        ));
        for u in (3 * i - 2)..=(3 * i) {
            lines.push(usage(
                period_key,
                &account,
                Some(&format!("user{u:05}")),
                &[("cpu", &v(i)), ("mem", &v(10 * i)), ("gres/gpu", &v(u))],
            ));
        }
    }
    period(period_key, &lines)
}

#[test]
fn a_large_offering_stays_within_the_request_budget() {
    let env = Env::new(Setup::large(RESOURCES, USERS));
    let staff = env.staff_token.to_str().unwrap().to_string();
    let stream = input("2024-02", 1) + &input("2024-03", 1);
    let args = [
        "--staff",
        "--token-file",
        &staff,
        "--concurrency",
        "8",
        "--timeout",
        "30",
    ];

    // All changed: the first submission of both months.
    let run = env.run(&args, &stream);
    run.assert_code(0);
    let reqs = env.fake.requests();
    // GETs: 8 to start (users/me, version, offering, 4 resource pages, identity lookup); per
    // month the plan's read (1 + 1 page: nothing stored yet), the re-listing of the 3000 new
    // component usages for their UUIDs (10), and the read-back of what was sent (10 + 30
    // pages); 10 pages of offering users once: 8 + 2 x 52 + 10 = 122 (42 without read-back).
    let gets = reqs.iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets, 122, "all-changed run: {} requests", reqs.len());
    let mut per_total: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut per_users: BTreeMap<String, usize> = BTreeMap::new();
    for r in reqs.iter().filter(|r| r.method == "POST") {
        if r.path.ends_with("/set_usage/") {
            let b = r.body.as_ref().unwrap();
            let key = (b["resource"].to_string(), b["date"].to_string());
            *per_total.entry(key).or_default() += 1;
        } else if r.path.ends_with("/set_user_usages/") {
            // The component usage UUID in the path is one (resource, component, month).
            *per_users.entry(r.path.clone()).or_default() += 1;
        }
    }
    // 1000 resources x 2 months, each exactly once; 1000 x 3 components x 2 months.
    assert_eq!(per_total.len(), 2000);
    assert!(per_total.values().all(|&n| n == 1));
    assert_eq!(per_users.len(), 6000);
    assert!(per_users.values().all(|&n| n == 1));
    assert_eq!(env.fake.usages().len(), 6000);
    assert_eq!(env.fake.user_usages().len(), 18000);
    assert_eq!(
        run.summary("2024-03"),
        "period 2024-03: 4000 updated, 0 unchanged, 0 skipped, 0 failed"
    );

    // No change: reads only.
    env.fake.clear_requests();
    let run = env.run(&args, &stream);
    run.assert_code(0);
    let reqs = env.fake.requests();
    let posts = reqs.iter().filter(|r| r.method != "GET").count();
    assert_eq!(posts, 0);
    // users/me, version (staff: does the server honour date?), offering, 4 resource pages,
    // 1 identity lookup; per month 10 pages of 3000 component usages and 30 pages of 9000
    // user usages: 8 + 2 x 40 = 88. Nothing was sent, so nothing is read back.
    assert_eq!(reqs.len(), 88);
    assert_eq!(
        run.summary("2024-02"),
        "period 2024-02: 0 updated, 4000 unchanged, 0 skipped, 0 failed"
    );

    // One account changes in March: its set_usage and one set_user_usages per component.
    env.fake.clear_requests();
    let changed = input("2024-02", 1)
        + &input("2024-03", 1).replace(
            "\"account\":\"hpc_alloc_00007\",\"components\":{\"cpu\":\"21.07\"",
            "\"account\":\"hpc_alloc_00007\",\"components\":{\"cpu\":\"22.07\"",
        );
    assert_ne!(changed, stream, "the edit must hit the input");
    assert_eq!(changed.len(), stream.len());
    let run = env.run(&args, &changed);
    run.assert_code(0);
    let posts: Vec<String> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].ends_with("/set_usage/"));
}

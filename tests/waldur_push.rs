//! waldur-push against the fake Waldur: the behaviours of issue 4, with exact request logs.

mod support;
mod waldur_push_util;

use serde_json::json;
use waldur_push_util::*;

use support::fake_waldur::Setup;

fn march_input() -> String {
    period(
        "2024-03",
        &[
            usage("2024-03", "hpc_alloc1", None, &[("cpu", "1.54"), ("mem", "6008.00")]),
            usage("2024-03", "hpc_alloc1", Some("hpcuser1"), &[("cpu", "1.00"), ("mem", "4000.00")]),
            usage("2024-03", "hpc_alloc1", Some("hpcuser2"), &[("cpu", "0.54"), ("mem", "2008.00")]),
        ],
    )
}

#[test]
fn first_submission() {
    let env = Env::new(Setup::small());
    let run = env.run(&[], &march_input());
    assert_eq!(run.code, 0, "{}", run.stderr);
    println!("{:#?}", env.calls());
    println!("{}", run.stdout);
    println!("{}", run.stderr);
    for p in env.posts() { println!("{} {} {}", p.method, p.path, p.body.unwrap_or_default()); }
    println!("{:#?}", env.totals());
    println!("{:#?}", env.user_totals());
    panic!();
}

//! Records that usage-convert never writes are refused by waldur-push, naming the line, and
//! nothing of their period reaches Waldur (issue 16): amounts in any spelling but plain
//! decimals, a user above the account total, and a period that comes twice.

use crate::support::fake_waldur::Setup;
use crate::waldur_push_util::*;

/// Bad or incomplete input.
const DATAERR: i32 = 65;

/// March for hpc_alloc1 with the total's cpu written as `cpu` and its one user at 1.00.
fn march_with_total_cpu(cpu: &str) -> String {
    period_of(
        "2024-03",
        &[
            ("hpc_alloc1", None, &[("cpu", cpu)]),
            ("hpc_alloc1", Some("hpcuser1"), &[("cpu", "1.00")]),
        ],
    )
}

#[test]
fn amounts_that_are_not_plain_decimals_refuse_their_period() {
    // Each of these used to be sent: 1e5 as 100000.00, " 1.00" as 1.00.
    for amount in ["1e5", "1.2345e2", "1e20", " 1.00", "+1.00", "-1.00", "1."] {
        let env = Env::new(Setup::small());
        let run = env.run(&["--no-register"], &march_with_total_cpu(amount));
        assert_eq!(run.code, DATAERR, "{amount}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "input line 1: component \"cpu\": {amount:?} is not a plain amount: write \
                 digits with at most 2 decimal places, without sign, exponent or spaces (e.g. \
                 1.50); nothing of 2024-03 is submitted"
            )),
            "{amount}: {}",
            run.stderr
        );
        assert!(env.fake.usages().is_empty(), "{amount}");
        assert!(env.posts().is_empty(), "{amount}");
    }
    // The plain spelling of the same value goes through.
    let env = Env::new(Setup::small());
    let run = env.run(&["--no-register"], &march_with_total_cpu("1.00"));
    run.assert_code(0);
}

#[test]
fn a_user_above_the_account_total_refuses_the_period() {
    // The user's 1.00 is converted from a part of the integers the total 0.99 came from: no
    // usage-convert output holds this.
    let env = Env::new(Setup::small());
    let run = env.run(&["--no-register"], &march_with_total_cpu("0.99"));
    run.assert_code(DATAERR);
    run.assert_stderr_contains(
        "input line 2: user \"hpcuser1\" of account \"hpc_alloc1\" has cpu 1.00, more than \
             the account total 0.99 (line 1); nothing of 2024-03 is submitted",
    );
    assert!(env.posts().is_empty());
    // A user with a component the total does not have is above it too.
    let env = Env::new(Setup::small());
    let input = period_of(
        "2024-03",
        &[
            ("hpc_alloc1", None, &[("cpu", "1.00")]),
            (
                "hpc_alloc1",
                Some("hpcuser1"),
                &[("cpu", "1.00"), ("mem", "2.00")],
            ),
        ],
    );
    let run = env.run(&["--no-register"], &input);
    run.assert_code(DATAERR);
    run.assert_stderr_contains("has mem 2.00, more than the account total 0.00");
    assert!(env.posts().is_empty());
}

#[test]
fn a_period_that_comes_twice_is_refused_the_second_time() {
    // The first copy is complete and sent as it arrives; the second (1.00 then 0.00 for the
    // same account) is refused, and the run says so with exit 65.
    let env = Env::new(Setup::small());
    let first = march_with_total_cpu("2.00");
    let second = period_of("2024-03", &[("hpc_alloc1", None, &[("cpu", "0.00")])]);
    let run = env.run(&["--no-register"], &(first + &second));
    run.assert_code(DATAERR);
    run.assert_stderr_contains(
        "period 2024-03 comes twice in the input (its first copy ended at line 3, this one \
             at line 5); the second copy is not submitted",
    );
    let cpu: Vec<_> = env
        .totals()
        .into_iter()
        .filter(|t| t.1 == "hpc_alloc1" && t.2 == "cpu")
        .collect();
    assert_eq!(cpu, vec![t4("2024-03-01", "hpc_alloc1", "cpu", "2.00")]);
}

#[test]
fn only_a_period_record_of_the_whole_month_is_billed() {
    // slurm-usage may measure a part of a month; waldur-push would replace the month's value
    // with that part, so it refuses it.
    let env = Env::new(Setup::small());
    let part = r#"{"kind":"period","period":"2024-03","start":"2024-03-10T00:00:00+00:00","end":"2024-04-01T00:00:00+00:00","timezone":"UTC","index":1,"count":1,"closed":true}"#;
    let run = env.run(
        &["--no-register"],
        &format!("{part}\n{}", march_with_total_cpu("2.00")),
    );
    run.assert_code(DATAERR);
    run.assert_stderr_contains(
        "input line 1: period 2024-03: start 2024-03-10T00:00:00+00:00 and end \
             2024-04-01T00:00:00+00:00 are not that whole month in UTC (2024-03-01T00:00:00+00:00 \
             to 2024-04-01T00:00:00+00:00): only whole months are billed",
    );
    assert!(env.posts().is_empty());
}

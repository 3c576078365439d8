//! Every amount that is not sent is loud (issue 12, "Done when" 2): for each kind of held-back
//! or skipped outcome, the exit status and the one warning line that names it.

use crate::support::fake_waldur::Setup;
use crate::waldur_push_util::*;

/// Nothing failed, something needs an operator.
const HELD: i32 = 3;
/// Bad or incomplete input.
const DATAERR: i32 = 65;

/// The lines of stderr at warning level.
fn warnings(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("waldur-push: warning: "))
        .map(str::to_string)
        .collect()
}

fn march(lines: &[String]) -> String {
    period("2024-03", lines)
}

#[test]
fn a_held_decrease_is_a_warning_and_exit_3() {
    let env = Env::new(seeded(&[("hpc_alloc1", "cpu", "2.00")]));
    let run = env.run(
        &["--no-register"],
        &march(&[usage("2024-03", "hpc_alloc1", None, &[("cpu", "1.50")])]),
    );
    run.assert_code(HELD);
    assert!(
        warnings(&run).contains(
            &"2024-03 hpc_alloc1 set_usage (cpu): not sent: decrease: 2.00 -> 1.50".into()
        ),
        "{}",
        run.stderr
    );
    run.assert_stderr_contains(
        "waldur-push: warning: 1 result(s) held back, skipped or sent without a user link",
    );
}

#[test]
fn a_closed_month_without_staff_is_a_warning_and_exit_3() {
    let env = Env::new(Setup::small());
    let run = env.run(
        &["--no-register"],
        &period_of("2024-02", &[("hpc_alloc1", None, &[("cpu", "1.00")])]),
    );
    run.assert_code(HELD);
    assert_eq!(
        warnings(&run)[0],
        "2024-02 has ended on Waldur with usage that was never sent: hpc_alloc1 cpu 1.00 \
         (Waldur none); load it with a staff token: waldur-usage-backfill --start-date \
         2024-02-01 --end-date 2024-02-29"
    );
}

#[test]
fn an_unknown_account_and_an_erred_resource_are_warnings_and_exit_3() {
    let env = Env::new(Setup::small());
    let run = env.run(
        &["--no-register"],
        &march(&[
            usage("2024-03", "hpc_erred", None, &[("cpu", "1.00")]),
            usage("2024-03", "hpc_nobody", None, &[("cpu", "2.00")]),
        ]),
    );
    run.assert_code(HELD);
    let w = warnings(&run);
    assert!(
        w.contains(
            &"2024-03 hpc_erred set_usage: not sent: resource state Erred: Waldur takes usage \
              only for OK, Updating and Terminating resources"
                .into()
        ),
        "{w:?}"
    );
    assert!(
        w.contains(
            &"2024-03 hpc_nobody set_usage: not sent: no resource: no active resource of the \
              offering has backend_id \"hpc_nobody\""
                .into()
        ),
        "{w:?}"
    );
}

#[test]
fn a_user_who_is_no_offering_user_is_a_warning_and_exit_3() {
    let env = Env::new(Setup::small());
    let run = env.run(
        &["--no-register"],
        &march(&[
            usage("2024-03", "hpc_alloc1", None, &[("cpu", "1.00")]),
            usage(
                "2024-03",
                "hpc_alloc1",
                Some("hpcuser1"),
                &[("cpu", "0.60")],
            ),
            usage(
                "2024-03",
                "hpc_alloc1",
                Some("stranger"),
                &[("cpu", "0.40")],
            ),
        ]),
    );
    run.assert_code(HELD);
    assert!(
        warnings(&run).contains(
            &"2024-03: per-user usage of 1 user(s) is sent without a link to a Waldur user, \
              because they are not offering users of this offering, and Waldur never adds the \
              link later: stranger"
                .into()
        ),
        "{}",
        run.stderr
    );
    // It was sent all the same: the amount is right, only the link is missing.
    assert_eq!(
        env.user_totals(),
        [
            t5("2024-03-01", "hpc_alloc1", "cpu", "hpcuser1", "0.60"),
            t5("2024-03-01", "hpc_alloc1", "cpu", "stranger", "0.40"),
        ]
    );
    assert!(
        run.summary("2024-03")
            .ends_with(", 1 user(s) without an offering-user link"),
        "{}",
        run.stderr
    );
}

#[test]
fn empty_input_sends_nothing_and_fails() {
    let env = Env::new(Setup::small());
    let run = env.run(&["--no-register"], "");
    run.assert_code(DATAERR);
    run.assert_stderr_contains(
        "waldur-push: error: the input held no complete period (no period_end record): \
             nothing was sent",
    );
    assert!(env.fake.usages().is_empty());
}

#[test]
fn truncated_input_sends_nothing_of_the_cut_period_and_fails() {
    let env = Env::new(Setup::small());
    // The stream ends before the period_end of March.
    let cut = usage("2024-03", "hpc_alloc1", None, &[("cpu", "1.00")]);
    let run = env.run(&["--no-register"], &cut);
    run.assert_code(DATAERR);
    run.assert_stderr_contains("period 2024-03: not submitted:");
    assert!(env.fake.usages().is_empty());
}

//! Unit tests of one sacct line: layouts, headers, states, names, the filter, the TRES cache.

use super::*;
use crate::config::Compat;
use crate::sacct::tres::TresId;
fn exact() -> LineParser {
    LineParser::new(
        Layout::from_format(EXACT_FORMAT, Compat::Exact).unwrap(),
        AccountFilter::All,
    )
}

fn named(p: &LineParser, tres: &[(TresId, u64)]) -> Vec<(String, u64)> {
    let mut v: Vec<_> = tres
        .iter()
        .map(|&(id, x)| (p.table().name(id).to_string(), x))
        .collect();
    v.sort();
    v
}

#[test]
fn reads_a_default_format_line() {
    let mut p = exact();
    let line = b"8|hpc_alloc1|hpcuser2|CANCELLED by 0|2|billing=1,cpu=1,mem=50M,node=1|billing=1,cpu=1,mem=50M,node=1";
    let Parsed::Allocation(a) = p.parse(line).unwrap() else {
        panic!("not an allocation")
    };
    assert_eq!(a.job_id, b"8");
    assert_eq!(a.account, b"hpc_alloc1");
    assert_eq!(a.user, b"hpcuser2");
    assert_eq!(a.state, b"CANCELLED by 0");
    assert_eq!(a.seconds, 2);
    let tres = a.tres.to_vec();
    assert_eq!(
        named(&p, &tres),
        vec![
            ("billing".into(), 1),
            ("cpu".into(), 1),
            ("mem".into(), 50),
            ("node".into(), 1)
        ]
    );
}

#[test]
fn cached_tres_strings_give_the_same_values_and_errors_are_never_cached() {
    let mut p = exact();
    let line = b"1|a|u|COMPLETED|10|cpu=4,gres/gpu:a100=2,mem=2.50G|";
    let names = |a: &Allocation<'_>| {
        let mut v: Vec<(String, u64)> = a
            .tres
            .iter()
            .map(|&(id, x)| (a.table.name(id).to_string(), x))
            .collect();
        v.sort();
        v
    };
    let first = match p.parse(line).unwrap() {
        Parsed::Allocation(a) => names(&a),
        other => panic!("{other:?}"),
    };
    // Same string again (a cache hit), then a different one in between.
    assert!(p.parse(b"2|a|u|COMPLETED|10|cpu=1|").is_ok());
    let again = match p.parse(line).unwrap() {
        Parsed::Allocation(a) => names(&a),
        other => panic!("{other:?}"),
    };
    assert_eq!(first, again);
    assert_eq!(
        first,
        vec![
            ("cpu".into(), 4),
            ("gres/gpu".into(), 2),
            ("gres/gpu:a100".into(), 2),
            ("mem".into(), 2560)
        ]
    );
    for _ in 0..2 {
        assert!(p.parse(b"3|a|u|COMPLETED|10|cpu=4,cpu=4|").is_err());
    }
}

#[test]
fn steps_are_not_billed_and_array_and_het_ids_are() {
    let mut p = exact();
    assert_eq!(
        p.parse(b"1.batch|hpc_alloc2||COMPLETED|2|cpu=2,mem=200M,node=1|")
            .unwrap(),
        Parsed::Step
    );
    for id in ["5_1", "123_[1-5%2]", "123+0"] {
        let line = format!("{id}|a|u|COMPLETED|10|cpu=1|cpu=1");
        assert!(
            matches!(p.parse(line.as_bytes()).unwrap(), Parsed::Allocation(_)),
            "{id}"
        );
    }
}

#[test]
fn never_started_jobs_count_zero_but_unknown_usage_is_an_error() {
    let mut p = exact();
    // Cancelled while pending (fixture d3, job 11): empty AllocTRES, 0 s.
    let Parsed::Allocation(a) = p
        .parse(b"11|hpc_alloc2|hpcuser3|CANCELLED by 0|0||billing=2,cpu=2,mem=50M,node=1")
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((a.seconds, a.tres.len()), (0, 0));
    // Unknown elapsed with no allocation: never started.
    assert!(p.parse(b"12|a|u|PENDING|Unknown||cpu=1").is_ok());
    let e = p.parse(b"13|a|u|RUNNING|100||cpu=1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "AllocTRES is empty but the job ran 100 s: its usage is unknown"
    );
    let e = p.parse(b"14|a|u|RUNNING||cpu=1|cpu=1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no elapsed time (\"\") for a job with AllocTRES"
    );
}

#[test]
fn states_are_the_ones_sacct_prints() {
    for good in [
        "COMPLETED",
        "CANCELLED",
        "CANCELLED by 0",
        "CANCELLED by 4294967294",
        "BOOT_FAIL",
        "OUT_OF_MEMORY",
        "REQUEUED",
        "TIMEOUT",
    ] {
        assert!(is_state(good.as_bytes()), "{good:?}");
    }
    for bad in [
        "",
        "completed",
        "CANCELLED+",
        "CANCELLED by",
        "CANCELLED by ",
        "CANCELLED by x",
        "CANCELLED by 12345678901",
        "COMPLETED by 0",
        "COMPLETED ",
        "CD",
        "hpcuser1",
    ] {
        assert!(!is_state(bad.as_bytes()), "{bad:?}");
    }
    let mut p = exact();
    // User and State swapped: COMPLETED is a valid name, hpcuser1 no state.
    let e = p
        .parse(b"1|hpc_a|COMPLETED|hpcuser1|10|cpu=1|cpu=1")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "State \"hpcuser1\" is not a job state sacct prints (COMPLETED, FAILED, \
             CANCELLED by <uid>, ...)"
    );
}

#[test]
fn account_and_user_names_are_plain() {
    for b in b"azAZ09._@$-" {
        assert!(is_name_byte(*b), "{}", char::from(*b));
    }
    for b in b" \t\0\x7f+()|,=*\"'\\/;:!#%&<>?[]^`{}~" {
        assert!(!is_name_byte(*b), "{b:#x}");
    }
    assert!(!is_name_byte(0xc3));
    let mut p = exact();
    assert!(p.parse(b"1|hpc.a-1|user@x$|COMPLETED|10|cpu=1|").is_ok());
    let e = p.parse(b"1|hpc a|u|COMPLETED|10|cpu=1|").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Account \"hpc a\" holds a space, but names are made of A-Z a-z 0-9 . _ @ $ -"
    );
    let e = p.parse(b"1|hpc_a|u\0x|COMPLETED|10|cpu=1|").unwrap_err();
    assert_eq!(
        e.to_string(),
        "User \"u\\0x\" holds a NUL byte, but names are made of A-Z a-z 0-9 . _ @ $ -"
    );
    let e = p.parse(b"1|hpc_a|a+b|COMPLETED|10|cpu=1|").unwrap_err();
    assert!(e.to_string().contains("holds '+'"), "{e}");
    // Steps keep their empty user.
    assert_eq!(
        p.parse(b"1.batch|hpc_a||COMPLETED|10|cpu=1|").unwrap(),
        Parsed::Step
    );
}

#[test]
fn elapsed_is_bounded_by_the_period() {
    let mut p = exact();
    p.set_window(Some(2_678_400));
    assert!(p.parse(b"1|a|u|COMPLETED|2678400|cpu=1|").is_ok());
    let e = p.parse(b"1|a|u|COMPLETED|2678401|cpu=1|").unwrap_err();
    assert_eq!(
        e.to_string(),
        "ElapsedRaw \"2678401\" is 2678401 s, longer than the period (2678400 s)"
    );
    assert!(
        p.parse(b"1|a|u|COMPLETED|9999999999999999999|cpu=1|")
            .is_err()
    );
    let mut p = LineParser::new(
        Layout::from_format("Account,ReqTRES,Elapsed,User", Compat::Reference).unwrap(),
        AccountFilter::All,
    );
    p.set_window(Some(2_678_400));
    assert!(p.parse(b"a|cpu=1|31-00:00:00|u").is_ok());
    let e = p.parse(b"a|cpu=1|31-00:00:01|u").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Elapsed \"31-00:00:01\" is 2678401 s, longer than the period (2678400 s)"
    );
}

#[test]
fn field_count_and_parsable_trailing_bar() {
    let mut p = LineParser::new(
        Layout::from_format("Account,ReqTRES,Elapsed,User", Compat::Reference).unwrap(),
        AccountFilter::All,
    );
    assert!(matches!(
        p.parse(b"hpc_alloc2|billing=2,cpu=2,mem=200M,node=1|00:00:02|hpcuser1|")
            .unwrap(),
        Parsed::Allocation(Allocation { seconds: 2, .. })
    ));
    let e = p.parse(b"hpc_alloc2|cpu=2|00:00:02").unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected 4 |-separated fields (Account|ReqTRES|Elapsed|User), found 3"
    );
    assert!(p.parse(b"a|cpu=1|00:00:01|u|x").is_err());
}

#[test]
fn prefix_filter_skips_other_accounts_before_reading_them() {
    let layout = Layout::from_format(EXACT_FORMAT, Compat::Exact).unwrap();
    let mut p = LineParser::new(layout.clone(), AccountFilter::Prefix("HPC_".into()));
    // Another account's garbage TRES does not matter.
    assert_eq!(
        p.parse(b"1|other|u|COMPLETED|5|cpu=lots|").unwrap(),
        Parsed::OtherAccount
    );
    // Case-insensitive: HPC_x is ours.
    assert!(matches!(
        p.parse(b"2|HPC_x|u|COMPLETED|5|cpu=1|").unwrap(),
        Parsed::Allocation(_)
    ));
    assert!(p.parse(b"3|hpc_x|u|COMPLETED|5|cpu=lots|").is_err());
    let mut p = LineParser::new(layout, AccountFilter::List(vec!["Proj_A".into()]));
    assert_eq!(
        p.parse(b"1|proj_ab|u|COMPLETED|5|cpu=1|").unwrap(),
        Parsed::OtherAccount
    );
    assert!(matches!(
        p.parse(b"1|PROJ_A|u|COMPLETED|5|cpu=1|").unwrap(),
        Parsed::Allocation(_)
    ));
}

#[test]
fn layouts_need_their_columns() {
    let e = Layout::from_format("Account,ReqTRES,Elapsed,User", Compat::Exact).unwrap_err();
    assert!(e.0.contains("lack AllocTRES"), "{e}");
    let e = Layout::from_format("Account,AllocTRES,ElapsedRaw", Compat::Exact).unwrap_err();
    assert!(e.0.contains("lack User"), "{e}");
    // Case-insensitive names and %width suffixes, as sacct --format accepts them.
    assert!(
        Layout::from_format("jobid%20,account,user,elapsedraw,alloctres", Compat::Exact).is_ok()
    );
}

#[test]
fn header_and_unsupported_styles_are_recognised() {
    assert!(is_header(b"Account|ReqTRES|Elapsed|User"));
    assert!(is_header(b"Account|ReqTRES|Elapsed|User|"));
    assert!(is_header(
        b"JobID|Account|User|State|Start|End|Elapsed|ElapsedRaw|AllocTRES|ReqTRES|NNodes|NCPUS"
    ));
    assert!(!is_header(b"hpc_alloc2|billing=2|00:00:02|hpcuser1"));
    assert!(!is_header(b"1|physics|alice|COMPLETED|5|cpu=1|"));
    assert!(unsupported_format(b"{").unwrap().contains("JSON"));
    assert!(
        unsupported_format(b"JobID           Account      User")
            .unwrap()
            .contains("fixed-width")
    );
    assert!(unsupported_format(b"Account|User").is_none());
}

//! Unit tests of the compact usage state.

use super::*;

fn amt(s: &str) -> Amount {
    Amount::parse_plain(s).unwrap()
}

fn march() -> Period {
    Period::parse("2024-03").unwrap()
}

#[test]
fn amounts_stay_exact_and_names_round_trip_in_name_order() {
    let mut b = MonthBuilder::new();
    let a = b.account("HPC_b");
    b.add(
        a,
        Some("zoe"),
        [("mem", amt("0.01")), ("cpu", amt("1.5"))],
        2,
    )
    .unwrap();
    b.add(a, None, [("mem", amt("6008.00")), ("cpu", amt("1.54"))], 1)
        .unwrap();
    b.add(a, Some("al"), [("cpu", amt("0.04"))], 3).unwrap();
    let other = b.account("hpc_A");
    b.add(other, None, [("gpu", amt("99999999999999999999.99"))], 4)
        .unwrap();
    assert_eq!(b.account("hpc_b"), a, "grouped case-insensitively");
    let m = b.finish(march(), None).unwrap();
    let names: Vec<(&str, &str)> = m.accounts().map(|a| (a.key(), a.account())).collect();
    assert_eq!(names, [("hpc_a", "hpc_A"), ("hpc_b", "HPC_b")]);
    let big = m.account("hpc_a").unwrap().total_of("gpu").unwrap();
    assert_eq!(big.hundredths(), 9_999_999_999_999_999_999_999);
    let b = m.account("hpc_b").unwrap();
    let total: Vec<(&str, i128)> = b.total().map(|(c, v)| (c, v.hundredths())).collect();
    assert_eq!(total, [("cpu", 154), ("mem", 600_800)]);
    let users: Vec<(&str, Vec<(&str, String)>)> = b
        .users()
        .map(|u| {
            (
                u.name(),
                u.values().map(|(c, v)| (c, v.to_string())).collect(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("al", vec![("cpu", "0.04".to_string())]),
            ("zoe", vec![("cpu", "1.50".into()), ("mem", "0.01".into())]),
        ]
    );
    let zoe = b.user("zoe").unwrap();
    assert_eq!(m.user_name(zoe.id()), "zoe");
    assert_eq!(zoe.get("mem"), Some(amt("0.01")));
    assert_eq!(zoe.get("gpu"), None);
    assert!(b.user("bob").is_none());
    let comps: Vec<&str> = m.components().map(|(_, c)| c).collect();
    assert_eq!(comps, ["cpu", "gpu", "mem"]);
    assert!(m.has_users());
}

#[test]
fn a_user_above_the_total_is_refused_naming_both_lines() {
    let mut b = MonthBuilder::new();
    let a = b.account("hpc_a");
    b.add(a, None, [("cpu", amt("1.00"))], 1).unwrap();
    b.add(a, Some("ann"), [("cpu", amt("1.00"))], 2).unwrap();
    b.add(
        a,
        Some("bob"),
        [("cpu", amt("0.50")), ("mem", amt("0.01"))],
        3,
    )
    .unwrap();
    let e = b.finish(march(), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input line 3: user \"bob\" of account \"hpc_a\" has mem 0.01, more than the \
         account total 0.00 (line 1)"
    );
    let mut b = MonthBuilder::new();
    let a = b.account("hpc_a");
    b.add(a, Some("ann"), [("cpu", amt("0"))], 7).unwrap();
    let e = b.finish(march(), None).unwrap_err();
    assert!(matches!(e, Inconsistency::NoTotal { ref account } if account == "hpc_a"));
}

#[test]
fn a_record_that_comes_twice_names_the_first_line() {
    let mut b = MonthBuilder::new();
    let a = b.account("Hpc_a");
    b.add(a, None, [], 4).unwrap();
    b.add(a, Some("ann"), [], 5).unwrap();
    let again = b.account("HPC_A");
    assert_eq!(b.add(again, None, [], 9), Err(Duplicate { first: 4 }));
    assert_eq!(
        b.add(again, Some("ann"), [], 10),
        Err(Duplicate { first: 5 })
    );
    let other = b.account("hpc_b");
    assert_eq!(b.add(other, Some("ann"), [], 11), Ok(()));
    // hpc_a again, after hpc_b: its earlier users are still known.
    assert_eq!(b.add(a, Some("bob"), [], 12), Ok(()));
    assert_eq!(b.add(a, Some("ann"), [], 13), Err(Duplicate { first: 5 }));
    assert_eq!(b.add(other, Some("bob"), [], 14), Ok(()));
    assert_eq!(b.add(a, Some("bob"), [], 15), Err(Duplicate { first: 12 }));
    assert_eq!(
        b.add(other, Some("ann"), [], 16),
        Err(Duplicate { first: 11 })
    );
}

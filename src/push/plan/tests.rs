//! The rules of the plan, one test each.

use super::*;
use crate::period::Period;
use crate::push::usage::MonthBuilder;

fn amt(s: &str) -> Amount {
    Amount::parse(s).unwrap()
}

fn comp(t: &str, billing: &str) -> OfferingComponent {
    OfferingComponent {
        type_: t.into(),
        billing_type: Some(billing.into()),
        measured_unit: None,
    }
}

fn res(uuid: &str, backend_id: &str, state: &str) -> Resource {
    Resource {
        uuid: uuid.into(),
        name: Some(format!("r-{backend_id}")),
        backend_id: Some(backend_id.into()),
        state: Some(state.into()),
    }
}

fn catalog() -> Catalog {
    let (c, warnings) = Catalog::new(
        &[
            comp("cpu", "usage"),
            comp("mem", "usage"),
            comp("fee", "fixed"),
        ],
        ["cpu", "mem", "gpu", "fee"],
        vec![
            res("r1", "hpc_a", "OK"),
            res("r2", "HPC_B", "Terminating"),
            res("r3", "hpc_err", "Erred"),
            res("r4", "hpc_idle", "OK"),
        ],
    );
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("\"gpu\" is configured but the Waldur offering has no such"));
    assert!(warnings[1].contains("\"fee\" has billing type \"fixed\""));
    c
}

/// (component, amount) pairs.
type Values<'a> = &'a [(&'a str, &'a str)];

/// (account, total, [(user, values)]).
type AccountSpec<'a> = (&'a str, Values<'a>, &'a [(&'a str, Values<'a>)]);

fn usage(accounts: &[AccountSpec<'_>]) -> MonthUsage {
    let mut b = MonthBuilder::new();
    fn values<'v>(v: Values<'v>) -> Vec<(&'v str, Amount)> {
        v.iter().map(|(c, a)| (*c, amt(a))).collect()
    }
    for (line, (name, total, users)) in accounts.iter().enumerate() {
        let id = b.account(name);
        b.add(id, None, values(total), line * 100).unwrap();
        for (i, (u, v)) in users.iter().enumerate() {
            b.add(id, Some(u), values(v), line * 100 + i + 1).unwrap();
        }
    }
    b.finish(Period::parse("2024-03").unwrap(), None).unwrap()
}

fn cu(uuid: &str, resource: &str, t: &str, usage: &str) -> ComponentUsage {
    ComponentUsage {
        uuid: uuid.into(),
        type_: t.into(),
        usage: amt(usage),
        resource_uuid: Some(resource.into()),
    }
}

fn uu(cu: &str, user: &str, usage: &str) -> ComponentUserUsage {
    ComponentUserUsage {
        username: user.into(),
        usage: amt(usage),
        component_usage: Some(format!("https://w/api/marketplace-component-usages/{cu}/")),
        component_type: None,
        user: None,
    }
}

/// The default options, with decreases sent.
fn allowing_decreases() -> PlanOptions {
    PlanOptions {
        allow_decrease: true,
        ..PlanOptions::default()
    }
}

/// (account, zero_fill) of each `set_usage` the plan makes.
fn accounts_sent(plan: &Plan) -> Vec<(&str, bool)> {
    plan.totals
        .iter()
        .map(|t| (t.account.as_str(), t.zero_fill))
        .collect()
}

fn statuses(plan: &Plan) -> Vec<(String, String, Option<String>, Option<String>)> {
    plan.results
        .iter()
        .map(|r| {
            (
                r.account.clone(),
                r.status.clone(),
                r.component.clone(),
                r.reason.clone(),
            )
        })
        .collect()
}

#[test]
fn first_submission_sends_everything_and_zero_fills_idle_resources() {
    let u = usage(&[
        (
            "hpc_a",
            &[("cpu", "1.50"), ("mem", "10.00"), ("gpu", "1.00")],
            &[
                ("alice", &[("cpu", "1.00")]),
                ("bob", &[("cpu", "0.50"), ("mem", "10.00")]),
            ],
        ),
        ("hpc_b", &[("cpu", "2.00")], &[]),
    ]);
    let p = plan(&u, &catalog(), &Existing::default(), PlanOptions::default());
    // gpu is not sendable; HPC_B matches hpc_b case-insensitively; hpc_idle gets zeros;
    // hpc_err is Erred but has no usage, so nothing is said about it.
    assert_eq!(
        p.totals,
        vec![
            TotalPost {
                account: "hpc_a".into(),
                resource: "r1".into(),
                usages: vec![
                    UsageItem {
                        type_: "cpu".into(),
                        amount: amt("1.5")
                    },
                    UsageItem {
                        type_: "mem".into(),
                        amount: amt("10")
                    },
                ],
                creates: true,
                zero_fill: false,
            },
            TotalPost {
                account: "hpc_b".into(),
                resource: "r2".into(),
                usages: vec![UsageItem {
                    type_: "cpu".into(),
                    amount: amt("2")
                }],
                creates: true,
                zero_fill: false,
            },
            TotalPost {
                account: "hpc_idle".into(),
                resource: "r4".into(),
                usages: vec![
                    UsageItem {
                        type_: "cpu".into(),
                        amount: Amount::ZERO
                    },
                    UsageItem {
                        type_: "mem".into(),
                        amount: Amount::ZERO
                    },
                ],
                creates: true,
                zero_fill: true,
            },
        ]
    );
    assert_eq!(
        p.users,
        vec![
            UserPost {
                account: "hpc_a".into(),
                resource: "r1".into(),
                component: "cpu".into(),
                items: vec![("alice".into(), amt("1")), ("bob".into(), amt("0.5"))],
            },
            UserPost {
                account: "hpc_a".into(),
                resource: "r1".into(),
                component: "mem".into(),
                items: vec![("bob".into(), amt("10"))],
            },
        ]
    );
    assert!(p.results.is_empty(), "{:?}", p.results);
    assert_eq!(p.dropped_components, BTreeSet::from(["gpu".to_string()]));
}

#[test]
fn unchanged_values_make_no_post_even_when_spelled_differently() {
    let u = usage(&[(
        "hpc_a",
        &[("cpu", "100.00")],
        &[("alice", &[("cpu", "100")])],
    )]);
    let existing = Existing::new(
        &[
            cu("c1", "r1", "cpu", "100.0000"),
            cu("b1", "r2", "cpu", "0"),
            cu("b2", "r2", "mem", "0"),
            cu("i1", "r4", "cpu", "0"),
            cu("i2", "r4", "mem", "0"),
        ],
        &[uu("c1", "alice", "100.00")],
    );
    let p = plan(&u, &catalog(), &existing, PlanOptions::default());
    assert!(p.totals.is_empty() && p.users.is_empty(), "{p:?}");
    assert_eq!(
        statuses(&p),
        vec![
            ("hpc_a".into(), "unchanged".into(), None, None),
            ("hpc_a".into(), "unchanged".into(), Some("cpu".into()), None),
            (
                "HPC_B".into(),
                "unchanged".into(),
                None,
                Some("no usage in the period".into())
            ),
            (
                "hpc_idle".into(),
                "unchanged".into(),
                None,
                Some("no usage in the period".into())
            ),
        ]
    );
}

#[test]
fn resources_outside_the_allocation_prefix_get_no_guessed_zeros() {
    // Only hpc_a has usage. With prefix "hpc_i", hpc_idle is in scope and gets its zeros;
    // hpc_a is reported anyway (it came in the input); HPC_B is out of scope, so nothing
    // is sent for it: slurm-usage never measured it.
    let u = usage(&[("hpc_a", &[("cpu", "1.00")], &[])]);
    let options = PlanOptions {
        allow_decrease: false,
        measured_prefix: Some("hpc_i".into()),
        ..PlanOptions::default()
    };
    let p = plan(&u, &catalog(), &Existing::default(), options);
    assert_eq!(
        accounts_sent(&p),
        vec![("hpc_a", false), ("hpc_idle", true)]
    );
    assert_eq!(
        statuses(&p),
        vec![(
            "HPC_B".into(),
            "skipped".into(),
            None,
            Some(
                "backend_id outside allocation_prefix \"hpc_i\": not measured, nothing sent".into()
            )
        )]
    );
}

#[test]
fn a_change_sends_all_components_of_that_resource_only() {
    let u = usage(&[
        ("hpc_a", &[("cpu", "2.00"), ("mem", "5.00")], &[]),
        ("hpc_b", &[("cpu", "1.00")], &[]),
    ]);
    let existing = Existing::new(
        &[
            cu("c1", "r1", "cpu", "1.00"),
            cu("c2", "r1", "mem", "5.00"),
            cu("c3", "r2", "cpu", "1.00"),
        ],
        &[],
    );
    let p = plan(&u, &catalog(), &existing, PlanOptions::default());
    assert_eq!(p.totals.len(), 2, "{:?}", p.totals); // hpc_a and the hpc_idle zeros
    assert_eq!(p.totals[0].resource, "r1");
    assert_eq!(
        p.totals[0].usages,
        vec![
            UsageItem {
                type_: "cpu".into(),
                amount: amt("2")
            },
            UsageItem {
                type_: "mem".into(),
                amount: amt("5")
            },
        ]
    );
    assert!(!p.totals[0].creates);
    assert_eq!(p.totals[1].resource, "r4");
}

#[test]
fn a_decrease_is_held_back_but_the_rest_goes_through() {
    let u = usage(&[(
        "hpc_a",
        &[("cpu", "90.00"), ("mem", "6.00")],
        &[("alice", &[("cpu", "4.00")]), ("bob", &[("cpu", "7.00")])],
    )]);
    let existing = Existing::new(
        &[
            cu("c1", "r1", "cpu", "100.00"),
            cu("c2", "r1", "mem", "5.00"),
        ],
        &[uu("c1", "alice", "5.00"), uu("c1", "bob", "6.00")],
    );
    let p = plan(&u, &catalog(), &existing, PlanOptions::default());
    assert_eq!(
        p.totals[0].usages,
        vec![UsageItem {
            type_: "mem".into(),
            amount: amt("6")
        }]
    );
    assert_eq!(p.users[0].items, vec![("bob".to_string(), amt("7"))]);
    assert_eq!(
        statuses(&p)[..2],
        [
            (
                "hpc_a".into(),
                "skipped".into(),
                Some("cpu".into()),
                Some("decrease: 100.00 -> 90.00".into())
            ),
            (
                "hpc_a".into(),
                "skipped".into(),
                Some("cpu".into()),
                Some("decrease: alice 5.00 -> 4.00".into())
            ),
        ]
    );
    let p = plan(&u, &catalog(), &existing, allowing_decreases());
    assert_eq!(p.totals[0].usages.len(), 2);
    assert_eq!(p.users[0].items.len(), 2);
}

#[test]
fn unknown_erred_and_ambiguous_accounts_are_skipped_with_reasons() {
    let (cat, _) = Catalog::new(
        &[comp("cpu", "usage")],
        ["cpu"],
        vec![
            res("r3", "hpc_err", "Erred"),
            res("r5", "dup", "OK"),
            res("r6", "DUP", "OK"),
        ],
    );
    let u = usage(&[
        ("hpc_err", &[("cpu", "1.00")], &[]),
        ("dup", &[("cpu", "1.00")], &[]),
        ("nobody", &[("cpu", "1.00")], &[]),
    ]);
    let p = plan(&u, &cat, &Existing::default(), PlanOptions::default());
    assert!(p.totals.is_empty());
    let s = statuses(&p);
    assert_eq!(s[0].0, "dup");
    assert_eq!(
        s[0].3.as_deref(),
        Some("several resources have backend_id \"dup\": r5, r6")
    );
    assert_eq!(
        s[1].3.as_deref(),
        Some(
            "resource state Erred: Waldur takes usage only for OK, Updating and Terminating resources"
        )
    );
    assert_eq!(
        s[2].3.as_deref(),
        Some("no resource: no active resource of the offering has backend_id \"nobody\"")
    );
}

#[test]
fn outside_the_servers_current_month_no_zero_is_guessed() {
    // The same input as the first submission, for a month that is not the server's
    // current one: hpc_a and hpc_b are sent, hpc_idle gets nothing and no result.
    let u = usage(&[
        ("hpc_a", &[("cpu", "1.50")], &[]),
        ("hpc_b", &[("cpu", "2.00")], &[]),
    ]);
    let options = PlanOptions {
        skip_zero_fill: true,
        ..PlanOptions::default()
    };
    let p = plan(&u, &catalog(), &Existing::default(), options);
    assert_eq!(accounts_sent(&p), [("hpc_a", false), ("hpc_b", false)]);
    assert!(p.results.iter().all(|r| r.account != "hpc_idle"));
}

#[test]
fn zero_fill_never_lowers_a_stored_value() {
    // hpc_idle has cpu 5.00 stored and no mem record: only mem gets a zero.
    let u = usage(&[]);
    let existing = Existing::new(&[cu("i1", "r4", "cpu", "5.00")], &[]);
    let p = plan(&u, &catalog(), &existing, allowing_decreases());
    let idle: Vec<_> = p.totals.iter().filter(|t| t.resource == "r4").collect();
    assert_eq!(
        idle[0].usages,
        vec![UsageItem {
            type_: "mem".into(),
            amount: Amount::ZERO
        }]
    );
}

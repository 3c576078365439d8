//! Unit tests of the record contract: round trips, field rules, streams, the assembler.

use super::*;
use std::collections::BTreeMap;

fn tres(period: &str, user: Option<&str>) -> Record {
    Record::Tres(TresRecord {
        period: period.into(),
        account: "hpc_a".into(),
        user: user.map(Into::into),
        jobs: 1,
        tres_seconds: BTreeMap::from([("cpu".to_string(), 3600u128)]),
    })
}

fn end(period: &str, records: u64) -> Record {
    Record::PeriodEnd(MonthEndRecord {
        period: period.into(),
        records,
        jobs: 1,
        lines: 1,
        skipped_lines: 0,
    })
}

#[test]
fn a_key_that_comes_twice_is_refused_anywhere_in_a_record() {
    let twice = r#"{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"tres_seconds":{"cpu":3600000,"cpu":7200000}}"#;
    let e = Record::from_json(twice).unwrap_err();
    assert!(e.contains("the key \"cpu\" comes twice"), "{e}");
    let usage = r#"{"kind":"usage","period":"2024-03","account":"a","user":null,"jobs":1,"components":{"cpu":"1.00","cpu":"2.00"}}"#;
    assert!(
        Record::from_json(usage)
            .unwrap_err()
            .contains("comes twice")
    );
    let field = r#"{"kind":"tres","period":"2024-03","account":"a","account":"b","user":null,"jobs":1,"tres_seconds":{}}"#;
    let e = Record::from_json(field).unwrap_err();
    assert!(e.contains("duplicate field `account`"), "{e}");
}

#[test]
fn round_trips_every_kind_with_kind_first() {
    let r = tres("2024-03", None);
    let json = r.to_json();
    assert!(json.starts_with("{\"kind\":\"tres\""), "{json}");
    assert_eq!(Record::from_json(&json).unwrap(), r);
    let big = Record::Tres(TresRecord {
        tres_seconds: BTreeMap::from([("mem".to_string(), u128::from(u64::MAX) * 7)]),
        ..match tres("2024-03", Some("u")) {
            Record::Tres(t) => t,
            _ => unreachable!(),
        }
    });
    assert_eq!(Record::from_json(&big.to_json()).unwrap(), big);
}

#[test]
fn unknown_kinds_pass_through_unchanged_and_unknown_fields_are_ignored() {
    let line = r#"{"kind":"future","x":1}"#;
    assert_eq!(Record::from_json(line).unwrap().to_json(), line);
    let extra = r#"{"kind":"period_end","period":"2024-03","records":0,"jobs":0,"lines":0,"skipped_lines":0,"new":true}"#;
    assert!(matches!(
        Record::from_json(extra).unwrap(),
        Record::PeriodEnd(_)
    ));
}

#[test]
fn reader_names_the_line_of_a_bad_record() {
    let input = "\n{\"kind\":\"tres\",\"period\":\"2024-03\"}\n";
    let err = RecordReader::new(input.as_bytes())
        .next()
        .unwrap()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("input line 2: bad `tres` record: missing field"),
        "{text}"
    );
}

#[test]
fn a_missing_user_is_an_error_not_an_account_total() {
    let line = r#"{"kind":"tres","period":"2024-03","account":"a","jobs":1,"tres_seconds":{}}"#;
    let err = Record::from_json(line).unwrap_err();
    assert!(err.contains("missing field `user`"), "{err}");
    let total = line.replace("\"jobs\"", "\"user\":null,\"jobs\"");
    assert!(matches!(Record::from_json(&total), Ok(Record::Tres(t)) if t.user.is_none()));
}

#[test]
fn assembler_releases_a_period_only_when_complete() {
    let mut a = MonthAssembler::new();
    assert_eq!(a.push(1, tres("2024-03", None)).unwrap(), None);
    assert_eq!(a.push(2, tres("2024-03", Some("u"))).unwrap(), None);
    let done = a.push(3, end("2024-03", 2)).unwrap().unwrap();
    assert_eq!(done.records.len(), 2);
    assert!(a.finish().is_empty());
}

#[test]
fn assembler_rejects_a_short_count_and_reports_cut_streams() {
    let mut a = MonthAssembler::new();
    a.push(1, tres("2024-03", None)).unwrap();
    assert!(matches!(
        a.push(2, end("2024-03", 3)),
        Err(PeriodError::CountMismatch {
            seen: 1,
            expected: 3,
            line: 2,
            ..
        })
    ));
    a.push(3, tres("2024-04", None)).unwrap();
    assert_eq!(
        a.finish(),
        vec![PeriodError::Unterminated {
            period: "2024-04".into(),
            seen: 1
        }]
    );
}

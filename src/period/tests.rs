//! Unit tests of periods: records in their month, DST, ranges, windows, bounds, both zones.

use super::*;
use jiff::Timestamp;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn a_period_record_stays_inside_the_month_it_names() {
    let now = ts("2025-01-01T00:00:00Z");
    let march = month_period("Europe/Berlin", 2024, 3, now).unwrap();
    assert_eq!(window(&march, now).unwrap().seconds(), 31 * 86400 - 3600);
    assert!(whole_month(&march).is_ok());
    let mut wide = march.clone();
    wide.start = "2024-01-01T00:00:00+01:00".into();
    assert_eq!(
        window(&wide, now).unwrap_err().to_string(),
        "period 2024-03: the window 2024-01-01T00:00:00+01:00 to 2024-04-01T00:00:00+02:00 \
             is not inside that month in Europe/Berlin (it runs from 2024-03-01T00:00:00+01:00 \
             to 2024-04-01T00:00:00+02:00)"
    );
    // A part of the month can be measured, but not billed.
    let mut part = march.clone();
    part.start = "2024-03-10T00:00:00+01:00".into();
    assert_eq!(window(&part, now).unwrap().seconds(), 22 * 86400 - 3600);
    assert!(
        whole_month(&part)
            .unwrap_err()
            .to_string()
            .ends_with("only whole months are billed")
    );
    // The same instants written in UTC are the same month.
    let mut utc = march.clone();
    utc.start = "2024-02-29T23:00:00Z".into();
    assert!(window(&utc, now).is_ok() && whole_month(&utc).is_ok());
    for name in ["2024-13", "March", "2024-3", "0000-01", "9999-12"] {
        let mut bad = march.clone();
        bad.period = name.into();
        let e = window(&bad, now).unwrap_err().to_string();
        assert!(e.starts_with("period record: "), "{name}: {e}");
    }
}

#[test]
fn dst_months_carry_both_offsets() {
    let p = month_period("Europe/Berlin", 2024, 10, ts("2025-01-01T00:00:00Z")).unwrap();
    assert_eq!(
        (p.start.as_str(), p.end.as_str()),
        ("2024-10-01T00:00:00+02:00", "2024-11-01T00:00:00+01:00")
    );
    let p = month_period("America/New_York", 2024, 3, ts("2025-01-01T00:00:00Z")).unwrap();
    assert_eq!(
        (p.start.as_str(), p.end.as_str()),
        ("2024-03-01T00:00:00-05:00", "2024-04-01T00:00:00-04:00")
    );
}

#[test]
fn ranges_cover_every_touched_month_and_number_them() {
    let ps = periods_between(
        "UTC",
        parse_date("2023-12-31").unwrap(),
        parse_date("2024-02-01").unwrap(),
        ts("2024-06-01T00:00:00Z"),
    )
    .unwrap();
    let names: Vec<_> = ps
        .iter()
        .map(|p| (p.period.as_str(), p.index, p.count))
        .collect();
    assert_eq!(
        names,
        vec![("2023-12", 1, 3), ("2024-01", 2, 3), ("2024-02", 3, 3)]
    );
    assert!(matches!(
        periods_between(
            "UTC",
            parse_date("2020-01-01").unwrap(),
            parse_date("2030-01-31").unwrap(),
            ts("2024-06-01T00:00:00Z")
        ),
        Err(PeriodError::RangeTooLong { months: 121 })
    ));
}

#[test]
fn current_month_is_open_and_its_window_ends_now() {
    let now = ts("2024-03-01T00:10:00+01:00");
    let ps = current_and_previous("Europe/Berlin", now, 1).unwrap();
    assert_eq!(
        ps.iter().map(|p| p.period.as_str()).collect::<Vec<_>>(),
        ["2024-02", "2024-03"]
    );
    assert!(ps[0].closed && !ps[1].closed);
    let w = window(&ps[1], now).unwrap();
    assert_eq!(w.seconds(), 600);
}

#[test]
fn months_before_excludes_the_current_month() {
    let now = ts("2024-01-10T00:00:00Z");
    let ps = months_before("UTC", now, 2).unwrap();
    let got: Vec<_> = ps
        .iter()
        .map(|p| (p.period.as_str(), p.index, p.count, p.closed))
        .collect();
    assert_eq!(got, [("2023-11", 1, 2, true), ("2023-12", 2, 2, true)]);
    assert!(months_before("UTC", now, 0).unwrap().is_empty());
    // 120 months before is the limit; 121 is too long.
    assert_eq!(months_before("UTC", now, 120).unwrap().len(), 120);
    assert_eq!(
        months_before("UTC", now, 121),
        Err(PeriodError::RangeTooLong { months: 121 })
    );
}

#[test]
fn leap_february_window_is_29_days() {
    // 29 days x 86400 s = 2505600 s; 2023 had 28 days = 2419200 s.
    let now = ts("2025-01-01T00:00:00Z");
    let p = month_period("UTC", 2024, 2, now).unwrap();
    assert_eq!(window(&p, now).unwrap().seconds(), 2_505_600);
    let p = month_period("UTC", 2023, 2, now).unwrap();
    assert_eq!(window(&p, now).unwrap().seconds(), 2_419_200);
    // March in Berlin lost an hour to DST: 31 x 86400 - 3600 = 2674800.
    let p = month_period("Europe/Berlin", 2024, 3, now).unwrap();
    assert_eq!(window(&p, now).unwrap().seconds(), 2_674_800);
}

#[test]
fn range_bounds_take_days_or_whole_months() {
    let d = |s: &str| parse_date(s).unwrap();
    assert_eq!(parse_bound("2024-02", false), Ok(d("2024-02-01")));
    assert_eq!(parse_bound("2024-02", true), Ok(d("2024-02-29")));
    assert_eq!(parse_bound("2023-02", true), Ok(d("2023-02-28")));
    assert_eq!(parse_bound("2024-02-10", true), Ok(d("2024-02-10")));
    assert_eq!(
        parse_bound("2024-2", true),
        Err(PeriodError::BadDate("2024-2".into()))
    );
}

#[test]
fn long_ranges_split_into_ten_year_runs() {
    let d = |s: &str| parse_date(s).unwrap();
    assert_eq!(
        split_range(d("2000-03-15"), d("2021-01-31")),
        [
            (d("2000-03-15"), d("2010-02-28")),
            (d("2010-03-01"), d("2020-02-29")),
            (d("2020-03-01"), d("2021-01-31")),
        ]
    );
    assert_eq!(
        split_range(d("2024-01-01"), d("2024-01-01")),
        [(d("2024-01-01"), d("2024-01-01"))]
    );
    // Every run is within the limit.
    for (s, e) in split_range(d("1990-01-01"), d("2024-12-31")) {
        assert!(periods_between("UTC", s, e, ts("2025-01-01T00:00:00Z")).is_ok());
    }
}

#[test]
fn bad_inputs_are_named() {
    assert_eq!(
        parse_month("2024-3"),
        Err(PeriodError::BadMonth("2024-3".into()))
    );
    assert_eq!(
        parse_month("2024-13"),
        Err(PeriodError::BadMonth("2024-13".into()))
    );
    assert!(parse_date("2024-02-30").is_err());
    assert!(matches!(
        zone("Mars/Olympus"),
        Err(PeriodError::UnknownZone(_))
    ));
}

#[test]
fn months_parse_format_and_step() {
    let p = Period::parse("2024-03").unwrap();
    assert_eq!(p.to_string(), "2024-03");
    assert_eq!(p.billing_period(), "2024-03-01");
    assert_eq!(
        Period::parse("2024-12").unwrap().next().to_string(),
        "2025-01"
    );
    assert_eq!(
        Period::parse("2024-01").unwrap().previous().to_string(),
        "2023-12"
    );
    for bad in [
        "2024-3", "2024-13", "24-03", "2024/03", "abcd-ef", "2024-00", "+024-03", "March",
    ] {
        assert_eq!(
            Period::parse(bad),
            Err(PeriodError::BadMonth(bad.into())),
            "{bad}"
        );
    }
    for (far, year) in [("1969-12", 1969), ("9999-01", 9999), ("0000-06", 0)] {
        assert_eq!(
            Period::parse(far),
            Err(PeriodError::OutOfRange {
                what: format!("{far:?}"),
                year
            })
        );
    }
}

#[test]
fn bounds_follow_the_time_zone_including_dst() {
    let tz = TimeZone::get("Europe/Tallinn").unwrap();
    let (start, end) = Period::parse("2024-03").unwrap().bounds(&tz);
    // Tallinn is UTC+2 in winter, UTC+3 from the last Sunday of March.
    assert_eq!(start, ts("2024-02-29T22:00:00Z"));
    assert_eq!(end, ts("2024-03-31T21:00:00Z"));
}

#[test]
fn closed_means_the_month_has_ended_in_the_given_zone() {
    let tz = TimeZone::get("Europe/Tallinn").unwrap();
    let march = Period::parse("2024-03").unwrap();
    // 2024-03-31T21:30Z is already April 1st 00:30 in Tallinn.
    assert!(march.is_closed(&tz, ts("2024-03-31T21:30:00Z")));
    assert!(!march.is_closed(&tz, ts("2024-03-31T20:59:59Z")));
    assert!(!march.is_closed(&TimeZone::UTC, ts("2024-03-31T21:30:00Z")));
    assert!(!march.has_started(&tz, ts("2024-02-29T21:59:59Z")));
}

fn zones(site: &str) -> BillingZones {
    BillingZones::new(site, "UTC").unwrap()
}

#[test]
fn east_of_the_server_the_new_month_starts_before_the_servers() {
    // 00:30 on April 1st in Tallinn is 21:30 on March 31st in UTC.
    let z = zones("Europe/Tallinn");
    let now = ts("2024-03-31T21:30:00Z");
    let march = Period::parse("2024-03").unwrap();
    assert_eq!(z.site_month(now), march.next());
    assert_eq!(z.server_month(now), march);
    assert_eq!(z.standing(march, now), Standing::Current);
    assert_eq!(
        z.standing(march.next(), now),
        Standing::Future { server: march }
    );
}

#[test]
fn west_of_the_server_the_servers_month_ends_first() {
    // 21:00 on March 31st in New York (EDT, UTC-4) is 01:00 on April 1st in UTC.
    let z = zones("America/New_York");
    let now = ts("2024-04-01T01:00:00Z");
    let march = Period::parse("2024-03").unwrap();
    assert_eq!(z.site_month(now), march);
    assert_eq!(
        z.standing(march, now),
        Standing::Past {
            server: march.next()
        }
    );
}

#[test]
fn current_dates_stay_inside_the_servers_month() {
    let z = zones("Europe/Tallinn");
    let march = Period::parse("2024-03").unwrap();
    // 12:00:00.750 less 300 s is 11:55:00.750, shown to the second.
    assert_eq!(
        z.current_date(march, ts("2024-03-10T12:00:00.750Z")),
        "2024-03-10T11:55:00Z"
    );
    // Two minutes into the server's month the margin would leave it: its start is used.
    assert_eq!(
        z.current_date(march, ts("2024-03-01T00:02:00Z")),
        "2024-03-01T00:00:00Z"
    );
    // A clock past the month's end never gives a date in the next month.
    assert_eq!(
        z.current_date(march, ts("2024-04-01T00:10:00Z")),
        "2024-03-31T23:59:59Z"
    );
}

#[test]
fn past_dates_are_mid_month_in_the_servers_zone() {
    let march = Period::parse("2024-03").unwrap();
    assert_eq!(zones("UTC").past_date(march), "2024-03-15T12:00:00Z");
    let tallinn_server = BillingZones::new("UTC", "Europe/Tallinn").unwrap();
    assert_eq!(tallinn_server.past_date(march), "2024-03-15T10:00:00Z");
}

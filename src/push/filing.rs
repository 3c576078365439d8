//! Which billing month a POST lands in, decided at the moment of sending.
//!
//! Waldur files usage under a month computed in its own `TIME_ZONE`: from `date` on servers
//! that honour it, from its own clock on 7.0.x, which ignores `date` (notes/waldur-7.0.md).
//! So a period from the stream is sent only where the server will file it in that same month:
//!
//! - the server's current month: sent, dated now (clamped inside the month in the server's
//!   zone);
//! - a month the server has not reached yet (a site east of the server, just after its
//!   midnight): held back, it would be filed under the server's month;
//! - a month the server has left: held back without `--staff`; with `--staff` only on a server
//!   known to honour `date`, only with data collected after the month ended, dated mid-month.
//!
//! Pure: the caller brings the clock, the zones and what the server said about itself.

use jiff::Timestamp;

use crate::period::{BillingZones, Period, Standing};
use crate::records::MonthRecord;

/// What the server does with `date`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateSupport {
    /// It files usage under the month of `date` (Waldur 8.0 and later).
    Honoured {
        /// The version it reported.
        version: String,
    },
    /// It files usage under its current month whatever `date` says (Waldur 7.x and earlier).
    Ignored {
        /// The version it reported.
        version: String,
    },
    /// Not known (`/api/version/` could not be read): the first write must prove it.
    Unknown,
}

impl DateSupport {
    /// Judge a version string such as `7.0.7` or `8.1.3`: 8.0 was the first release whose
    /// usage endpoints read `date`. A string that does not start with a number is unknown.
    ///
    /// ```
    /// use waldur_usage::push::filing::DateSupport;
    ///
    /// assert!(matches!(DateSupport::from_version("7.0.7"), DateSupport::Ignored { .. }));
    /// assert!(matches!(DateSupport::from_version("8.1.3"), DateSupport::Honoured { .. }));
    /// assert_eq!(DateSupport::from_version("develop"), DateSupport::Unknown);
    /// ```
    pub fn from_version(version: &str) -> DateSupport {
        let v = version.trim().trim_start_matches(['v', 'V']);
        let major: Option<u32> = v.split(['.', '-', '+']).next().and_then(|m| m.parse().ok());
        let version = version.trim().to_string();
        match major {
            Some(m) if m >= 8 => DateSupport::Honoured { version },
            Some(_) => DateSupport::Ignored { version },
            None => DateSupport::Unknown,
        }
    }
}

/// What to do with one period now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filing {
    /// Send it, with this `date`.
    Send {
        /// The `date` of every POST of the period.
        date: String,
        /// True for the server's current month (zero-fill is allowed only there); false for a
        /// staff backfill of a past month.
        current: bool,
    },
    /// Send nothing of it: it would be filed under another month, or it may not be written.
    Hold {
        /// Why, naming both months.
        reason: String,
        /// True when the month has ended on the server (its unsent usage is worth a warning).
        closed: bool,
    },
    /// Send nothing, and fail: a staff backfill this server cannot file correctly.
    Refuse {
        /// Why, naming the server version.
        reason: String,
    },
}

/// Decide where `period` goes at `now`. `record` is the stream's `period` record, if any:
/// its `closed` says whether the data was collected after the month ended at the site.
pub fn decide(
    period: Period,
    record: Option<&MonthRecord>,
    zones: &BillingZones,
    now: Timestamp,
    staff: bool,
    support: &DateSupport,
) -> Filing {
    let server_zone = &zones.server_name;
    match zones.standing(period, now) {
        Standing::Current => Filing::Send {
            date: zones.current_date(period, now),
            current: true,
        },
        Standing::Future { server } => Filing::Hold {
            reason: format!(
                "not sent yet: Waldur's month is still {server} (server time zone \
                 {server_zone}), so usage of {period} sent now would be filed under {server}; \
                 it is sent once Waldur's clock reaches {period}"
            ),
            closed: false,
        },
        Standing::Past { server } if !staff => Filing::Hold {
            reason: format!(
                "closed month: Waldur's month is already {server} (server time zone \
                 {server_zone}) and takes usage of {period} only from staff; load it with \
                 waldur-usage-backfill and a staff token"
            ),
            closed: true,
        },
        Standing::Past { server } => {
            if record.is_some_and(|r| !r.closed) {
                return Filing::Hold {
                    reason: format!(
                        "the data of {period} was collected before the month ended, and Waldur \
                         is now in {server}: it is not a complete total; run the pipeline again \
                         to load {period}"
                    ),
                    closed: true,
                };
            }
            match support {
                DateSupport::Ignored { version } => Filing::Refuse {
                    reason: format!(
                        "Waldur {version} files usage under its current month ({server}) \
                         whatever date is sent, so {period} cannot be loaded on this server \
                         (that needs Waldur 8.0 or later); nothing of {period} was sent"
                    ),
                },
                DateSupport::Honoured { .. } | DateSupport::Unknown => Filing::Send {
                    date: zones.past_date(period),
                    current: false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn p(s: &str) -> Period {
        s.parse().unwrap()
    }

    fn record(period: &str, closed: bool) -> MonthRecord {
        let mut r = p(period).record("UTC", ts("2024-03-01T00:00:00Z")).unwrap();
        r.closed = closed;
        r
    }

    const HONOURS: fn() -> DateSupport = || DateSupport::from_version("8.1.3");

    #[test]
    fn versions_before_8_ignore_date() {
        assert_eq!(
            DateSupport::from_version("7.0.7"),
            DateSupport::Ignored {
                version: "7.0.7".into()
            }
        );
        assert_eq!(
            DateSupport::from_version("v8.0.5"),
            DateSupport::Honoured {
                version: "v8.0.5".into()
            }
        );
        assert_eq!(DateSupport::from_version(""), DateSupport::Unknown);
    }

    #[test]
    fn tallinn_after_midnight_holds_the_new_month_and_sends_the_old_one() {
        let zones = BillingZones::new("Europe/Tallinn", "UTC").unwrap();
        let now = ts("2024-03-31T21:30:00Z"); // 00:30 on April 1st in Tallinn
        let april = decide(p("2024-04"), None, &zones, now, false, &HONOURS());
        assert!(
            matches!(&april, Filing::Hold { reason, closed: false }
                if reason.contains("still 2024-03") && reason.contains("filed under 2024-03")),
            "{april:?}"
        );
        // March has ended at the site, and it is still March on the server: its final total goes.
        assert_eq!(
            decide(p("2024-03"), None, &zones, now, false, &HONOURS()),
            Filing::Send {
                date: "2024-03-31T21:25:00Z".into(),
                current: true
            }
        );
    }

    #[test]
    fn new_york_in_the_evening_of_the_last_day_holds_the_month() {
        let zones = BillingZones::new("America/New_York", "UTC").unwrap();
        let now = ts("2024-04-01T01:00:00Z"); // 21:00 on March 31st in New York
        let march = decide(p("2024-03"), None, &zones, now, false, &HONOURS());
        assert!(
            matches!(&march, Filing::Hold { reason, closed: true } if reason.contains("already 2024-04")),
            "{march:?}"
        );
    }

    #[test]
    fn a_stream_from_before_midnight_pushed_after_it_is_not_current() {
        let zones = BillingZones::new("UTC", "UTC").unwrap();
        let now = ts("2024-04-01T00:00:20Z");
        let open = record("2024-03", false);
        assert!(matches!(
            decide(p("2024-03"), Some(&open), &zones, now, false, &HONOURS()),
            Filing::Hold { closed: true, .. }
        ));
        // Not with staff either: the total stops at 23:59:50.
        assert!(matches!(
            decide(p("2024-03"), Some(&open), &zones, now, true, &HONOURS()),
            Filing::Hold { reason, .. } if reason.contains("collected before the month ended")
        ));
    }

    #[test]
    fn staff_backfill_needs_a_server_that_honours_date() {
        let zones = BillingZones::new("UTC", "UTC").unwrap();
        let now = ts("2024-11-25T00:00:00Z");
        let done = record("2024-09", true);
        assert_eq!(
            decide(p("2024-09"), Some(&done), &zones, now, true, &HONOURS()),
            Filing::Send {
                date: "2024-09-15T12:00:00Z".into(),
                current: false
            }
        );
        let old = DateSupport::from_version("7.0.7");
        assert!(matches!(
            decide(p("2024-09"), Some(&done), &zones, now, true, &old),
            Filing::Refuse { reason } if reason.contains("Waldur 7.0.7") && reason.contains("2024-11")
        ));
    }
}

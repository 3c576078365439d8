//! The two clocks of a billing month: the site's zone and the Waldur server's, where a month
//! stands on the server, and the `date` sent with its usage.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::{Period, PeriodError};

/// How far behind "now" the `date` of current-month usage is set, so that a server whose
/// clock is a little behind ours never sees a date in its future.
pub const CLOCK_MARGIN_SECONDS: i64 = 300;

/// Where a month stands on the Waldur server at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It is the server's current month: usage dated now is filed under it.
    Current,
    /// The server has moved past it: only a staff token, on a server that honours `date`, can
    /// still write it.
    Past {
        /// The server's current month.
        server: Period,
    },
    /// The server has not reached it yet: anything sent now would be filed under `server`.
    Future {
        /// The server's current month.
        server: Period,
    },
}

/// The two clocks a billing month is read from: the site's `timezone` (which jobs belong to a
/// month) and the Waldur server's `TIME_ZONE` (which month a POST is filed under).
///
/// At 00:30 on April 1st in Tallinn a UTC server is still in March: April's first usage
/// would land in March. At 21:00 on March 31st in New York a UTC server is already in April.
///
/// ```
/// use waldur_usage::period::{BillingZones, Period, Standing};
///
/// let zones = BillingZones::new("Europe/Tallinn", "UTC").unwrap();
/// let now: jiff::Timestamp = "2024-03-31T21:30:00Z".parse().unwrap(); // 00:30 in Tallinn
/// assert_eq!(zones.site_month(now).to_string(), "2024-04");
/// assert_eq!(zones.server_month(now).to_string(), "2024-03");
/// let april: Period = "2024-04".parse().unwrap();
/// let march = april.previous();
/// assert_eq!(zones.standing(march, now), Standing::Current);
/// assert_eq!(zones.standing(april, now), Standing::Future { server: march });
/// assert_eq!(zones.current_date(march, now), "2024-03-31T21:25:00Z");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BillingZones {
    /// The site's zone name (the config's `timezone`).
    pub site_name: String,
    /// The site's zone.
    pub site: TimeZone,
    /// The server's zone name (`waldur_timezone`, UTC by default).
    pub server_name: String,
    /// The server's zone.
    pub server: TimeZone,
}

impl BillingZones {
    /// Look up both zones by IANA name.
    pub fn new(site: &str, server: &str) -> Result<BillingZones, PeriodError> {
        Ok(BillingZones {
            site_name: site.to_string(),
            site: zone(site)?,
            server_name: server.to_string(),
            server: zone(server)?,
        })
    }

    /// The month it is at the site at `now`.
    pub fn site_month(&self, now: Timestamp) -> Period {
        Period::containing(now, &self.site)
    }

    /// The month it is on the Waldur server at `now`.
    pub fn server_month(&self, now: Timestamp) -> Period {
        Period::containing(now, &self.server)
    }

    /// Where `period` stands on the server at `now`.
    pub fn standing(&self, period: Period, now: Timestamp) -> Standing {
        let server = self.server_month(now);
        match period.cmp(&server) {
            std::cmp::Ordering::Equal => Standing::Current,
            std::cmp::Ordering::Less => Standing::Past { server },
            std::cmp::Ordering::Greater => Standing::Future { server },
        }
    }

    /// The `date` for usage of the server's current month: now less
    /// [`CLOCK_MARGIN_SECONDS`], in whole seconds, clamped inside the month in the server's
    /// zone (never before its first instant, never at or after its end).
    pub fn current_date(&self, period: Period, now: Timestamp) -> String {
        let (start, end) = period.bounds(&self.server);
        let wanted = now
            .checked_sub(CLOCK_MARGIN_SECONDS.seconds())
            .unwrap_or(now);
        let last = end.checked_sub(1.second()).unwrap_or(start);
        let chosen = wanted.max(start).min(last);
        Timestamp::from_second(chosen.as_second())
            .unwrap_or(chosen)
            .to_string()
    }

    /// The `date` for usage of a past month (staff backfill): the 15th at 12:00 in the
    /// server's zone, inside the month whatever the zones.
    pub fn past_date(&self, period: Period) -> String {
        let noon = jiff::civil::date(period.year, period.month, 15).at(12, 0, 0, 0);
        noon.to_zoned(self.server.clone())
            .map(|z| z.timestamp())
            .unwrap_or_else(|_| period.bounds(&self.server).0)
            .to_string()
    }
}

/// Look up an IANA time zone.
pub fn zone(tz_name: &str) -> Result<TimeZone, PeriodError> {
    TimeZone::get(tz_name).map_err(|_| PeriodError::UnknownZone(tz_name.to_string()))
}

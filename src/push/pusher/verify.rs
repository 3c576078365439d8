//! After the POSTs of a period: read it back, and where a value is missing, find the month
//! the server filed it under.

use std::collections::HashMap;

use super::{MonthOutcome, Pusher, worse};
use crate::cli::exit;
use crate::period::Period;
use crate::push::plan::result;
use crate::push::readback;
use crate::{debug, error, warn};

/// Reads of a period's read-back when its listing does not add up (rows moved between
/// pages) before the values that seem missing are reported as unverified.
const READ_BACK_READS: u32 = 3;

impl Pusher<'_> {
    /// After the POSTs of a period, read the period again and compare it with what was sent.
    /// A difference stops the run: the server filed the usage elsewhere, or changed it.
    pub(super) fn read_back(&self, period: Period, outcome: &mut MonthOutcome) {
        if outcome.sent.is_empty() {
            return;
        }
        let name = period.to_string();
        let users = outcome.sent.iter().any(|s| s.user.is_some());
        let mut reads = 0;
        let mismatches = loop {
            reads += 1;
            let (stored, gap) = match self.read_period_counted(&period.billing_period(), users) {
                Ok(read) => read,
                Err(e) => {
                    error!(
                        "{name}: reading back what was sent failed ({}); whether Waldur filed \
                         it under {name} is not known",
                        e.short()
                    );
                    outcome.exit = worse(outcome.exit, Some(e.exit_code()));
                    outcome.stop = true;
                    return;
                }
            };
            let mismatches = readback::compare(&outcome.sent, &stored);
            match gap {
                // Rows moved between pages: a value missing from this read proves nothing.
                Some(gap) if !mismatches.is_empty() && reads < READ_BACK_READS => {
                    warn!("{name}: the read-back listing did not add up ({gap}); reading it again");
                }
                Some(gap) if !mismatches.is_empty() => {
                    error!(
                        "{name}: {} of {} values sent could not be verified: the listing did \
                         not add up in {reads} reads ({gap}); the run stops here, and the next \
                         run reads the period again",
                        mismatches.len(),
                        outcome.sent.len()
                    );
                    outcome.exit = worse(outcome.exit, Some(exit::TEMPFAIL));
                    outcome.stop = true;
                    return;
                }
                _ => break mismatches,
            }
        };
        if mismatches.is_empty() {
            debug!(
                "{name}: read back {} values, all as sent",
                outcome.sent.len()
            );
            return;
        }
        let elsewhere = self.filed_elsewhere(period, &mismatches);
        for m in &mismatches {
            let mut text = format!("read-back: {}", m.describe(&name));
            if let Some(month) = elsewhere.get(&(m.sent.resource.clone(), m.sent.component.clone()))
            {
                text.push_str(&format!("; the server filed it under {month}"));
            }
            error!("{text}");
            let mut r = result(
                &name,
                &m.sent.account,
                Some(&m.sent.resource),
                if m.sent.user.is_some() {
                    "set_user_usages"
                } else {
                    "set_usage"
                },
                "failed",
                Some(text),
                Some(&m.sent.component),
            );
            r.request = None;
            outcome.results.push(r);
        }
        error!(
            "{name}: {} of {} values sent are not stored as sent; the run stops here, nothing \
             more is sent",
            mismatches.len(),
            outcome.sent.len()
        );
        outcome.exit = worse(outcome.exit, Some(exit::PROTOCOL));
        outcome.stop = true;
    }

    /// Where the server filed totals that are missing from their month: its current month,
    /// when that holds exactly the value sent.
    fn filed_elsewhere(
        &self,
        period: Period,
        mismatches: &[readback::Mismatch],
    ) -> HashMap<(String, String), Period> {
        let server = self.options.zones.server_month(self.options.now());
        let mut found = HashMap::new();
        if server == period {
            return found;
        }
        let Ok(there) = self.read_period(&server.billing_period(), false) else {
            return found;
        };
        for m in mismatches.iter().filter(|m| m.sent.user.is_none()) {
            if there.total(&m.sent.resource, &m.sent.component) == Some(m.sent.amount) {
                found.insert((m.sent.resource.clone(), m.sent.component.clone()), server);
            }
        }
        found
    }
}

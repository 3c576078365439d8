//! The loop of a push run: read the records, hand each complete period over, write its
//! results as they come, and say per period what happened (the summary line on stderr).

use std::io::{BufRead, Write};

use super::input::{Arrival, MonthUsage, Next, each_period};
use super::pusher::{MonthOutcome, worse};
use super::render::ResultWriter;
use crate::cli::exit;
use crate::records::ResultRecord;
use crate::{error, info};

/// How many failed results a summary line names.
const NAMED_FAILURES: usize = 10;

/// The result records of one period, counted by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// `updated`.
    pub updated: usize,
    /// `unchanged`.
    pub unchanged: usize,
    /// `skipped`, of which `decreases` are held-back decreases.
    pub skipped: usize,
    /// `skipped` whose reason is a decrease.
    pub decreases: usize,
    /// `failed`.
    pub failed: usize,
    /// `dry_run`.
    pub dry_run: usize,
    /// The first failed results, as `account action (component)`.
    failed_names: Vec<String>,
}

impl Tally {
    /// Count one record.
    pub fn add(&mut self, r: &ResultRecord) {
        match r.status.as_str() {
            "updated" => self.updated += 1,
            "unchanged" => self.unchanged += 1,
            "dry_run" => self.dry_run += 1,
            "skipped" => {
                self.skipped += 1;
                if r.reason
                    .as_deref()
                    .is_some_and(|x| x.starts_with("decrease"))
                {
                    self.decreases += 1;
                }
            }
            "failed" => {
                self.failed += 1;
                if self.failed_names.len() < NAMED_FAILURES {
                    self.failed_names.push(match &r.component {
                        Some(c) => format!("{} {} ({c})", r.account, r.action),
                        None => format!("{} {}", r.account, r.action),
                    });
                }
            }
            _ => {}
        }
    }
}

/// `period 2024-03: 3 updated, 997 unchanged, 1 skipped, 0 failed`.
pub fn summary_line(period: &str, tally: &Tally, unlinked: usize) -> String {
    let mut line = format!(
        "period {period}: {} updated, {} unchanged, {} skipped, {} failed",
        tally.updated, tally.unchanged, tally.skipped, tally.failed
    );
    if unlinked > 0 {
        line.push_str(&format!(
            ", {unlinked} user(s) without an offering-user link"
        ));
    }
    if tally.dry_run > 0 {
        line.push_str(&format!(", {} would be sent", tally.dry_run));
    }
    if tally.failed > 0 {
        let more = tally.failed - tally.failed_names.len();
        line.push_str(&format!(
            "; not submitted: {}",
            tally.failed_names.join(", ")
        ));
        if more > 0 {
            line.push_str(&format!(" and {more} more"));
        }
    }
    line
}

/// What a whole run amounted to.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// Periods handled (complete ones).
    pub periods: usize,
    /// Result records held back or skipped, and users sent without an offering-user link.
    pub held: usize,
    /// The exit status the failures call for; `None` when nothing failed.
    pub exit: Option<u8>,
    /// Result records by status, for the run's metrics.
    pub counts: crate::metrics::RecordCounts,
}

/// Add a period's tally (and `held_back` decisions without a record) to `counts`: a
/// `skipped` result whose reason is a decrease counts as held.
fn add_counts(counts: &mut crate::metrics::RecordCounts, tally: &Tally, held_back: usize) {
    counts.updated += tally.updated as u64;
    counts.unchanged += tally.unchanged as u64;
    counts.failed += tally.failed as u64;
    counts.held += tally.decreases as u64;
    counts.skipped += (tally.skipped - tally.decreases) as u64;
    counts.held += held_back as u64;
}

/// Read records from `input`, hand each complete period to `submit` with the writer its
/// results may be streamed to, then write the results it returns, and a summary line to
/// stderr. Incomplete or bad periods are reported and make the run fail (exit 65) without
/// anything of them being submitted.
pub fn run_stream<R: BufRead, W: Write>(
    input: R,
    out: &mut W,
    mut submit: impl FnMut(&MonthUsage, &mut ResultWriter<'_>) -> MonthOutcome,
) -> std::io::Result<RunOutcome> {
    let mut outcome = RunOutcome::default();
    let mut writer = ResultWriter::new(out);
    each_period::<_, std::io::Error>(input, |arrival| {
        let usage = match arrival {
            Arrival::Refused { period, reason } => {
                error!("period {period}: not submitted: {reason}");
                outcome.exit = worse(outcome.exit, Some(exit::DATAERR));
                return Ok(Next::Continue);
            }
            Arrival::Unreadable(why) => {
                error!("{why}; the input stops here");
                outcome.exit = worse(outcome.exit, Some(exit::DATAERR));
                return Ok(Next::Continue);
            }
            Arrival::Complete(usage) => usage,
        };
        let done = submit(&usage, &mut writer);
        for r in &done.results {
            writer.record(r);
        }
        writer.flush()?;
        let tally = writer.take_tally();
        let line = summary_line(&usage.period.to_string(), &tally, done.unlinked.len());
        if done.exit.is_some() {
            error!("{line}");
        } else {
            info!("{line}");
        }
        outcome.periods += 1;
        add_counts(&mut outcome.counts, &tally, done.held_back);
        outcome.held += tally.skipped + done.unlinked.len() + done.held_back;
        outcome.exit = worse(outcome.exit, done.exit);
        if done.stop {
            error!(
                "the run stops after {}: the periods after it in the input are not sent",
                usage.period
            );
            return Ok(Next::Stop);
        }
        Ok(Next::Continue)
    })?;
    writer.flush()?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::plan::result;

    #[test]
    fn the_summary_counts_statuses_and_names_what_failed() {
        let r = |account: &str, status: &str, component: Option<&str>| {
            result(
                "2024-03",
                account,
                None,
                "set_usage",
                status,
                None,
                component,
            )
        };
        let results = [
            r("a", "updated", None),
            r("b", "unchanged", None),
            r("c", "failed", None),
            r("d", "failed", Some("cpu")),
            r("e", "skipped", None),
        ];
        let mut tally = Tally::default();
        results.iter().for_each(|r| tally.add(r));
        assert_eq!(
            summary_line("2024-03", &tally, 0),
            "period 2024-03: 1 updated, 1 unchanged, 1 skipped, 2 failed; not submitted: \
             c set_usage, d set_usage (cpu)"
        );
        for i in 0..12 {
            tally.add(&r(&format!("x{i}"), "failed", None));
        }
        let line = summary_line("2024-03", &tally, 2);
        assert!(
            line.starts_with(
                "period 2024-03: 1 updated, 1 unchanged, 1 skipped, 14 failed, 2 user(s) \
                 without an offering-user link; not submitted: c set_usage, d set_usage (cpu), \
                 x0 set_usage"
            ),
            "{line}"
        );
        assert!(line.ends_with("x7 set_usage and 4 more"), "{line}");
    }
}

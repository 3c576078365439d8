//! Reading `usage` records into complete, validated periods.
//!
//! Records are checked as they arrive, so errors name the input line. A period is released only
//! when its `period_end` arrived with a matching count *and* none of its records was bad;
//! otherwise the whole period is refused: a partial month must never reach Waldur, because
//! `set_usage` replaces the stored month-to-date value.
//!
//! Usage lines take the fast path ([`super::line::UsageLine`]) and are folded straight into
//! the period's compact state ([`super::usage::MonthBuilder`]); every other line, and any
//! usage line the fast path does not take, is parsed as a [`Record`].

use std::collections::{BTreeMap, HashMap};

use super::line::UsageLine;
use super::usage::MonthBuilder;
pub use super::usage::{AccountView, MonthUsage, UserView};
use crate::decimal::Amount;
use crate::period::Period;
use crate::records::{MonthRecord, PeriodError, Record, RecordError};

/// What a record completed.
#[derive(Debug, Clone)]
pub enum Event {
    /// A period arrived whole and valid.
    Complete(Box<MonthUsage>),
    /// A period is refused; nothing of it may be submitted.
    Refused {
        /// `YYYY-MM` (as written).
        period: String,
        /// Why, naming lines.
        reason: String,
    },
}

/// Input that no period can be blamed for: the run stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatalInput(pub String);

/// One period between its first record and its `period_end`.
#[derive(Debug, Default)]
struct Open {
    /// The period has a `period`, `usage` or `job` record (it counts as unterminated at the end
    /// of the stream).
    counted: bool,
    /// Its `period` record.
    record: Option<MonthRecord>,
    /// Data records seen.
    seen: u64,
    /// The usage so far; dropped at the first error, since nothing of the period is used then.
    month: MonthBuilder,
    error: Option<String>,
}

/// What [`each_period`] hands its caller, in stream order.
#[derive(Debug)]
pub enum Arrival {
    /// A period arrived whole and valid.
    Complete(Box<MonthUsage>),
    /// A period is refused (a bad record, a short count, or it never completed).
    Refused {
        /// `YYYY-MM` (as written).
        period: String,
        /// Why, naming lines.
        reason: String,
    },
    /// The input cannot be read on (a line that is no record, or no period to blame): nothing
    /// more arrives after this.
    Unreadable(String),
}

/// Whether [`each_period`] reads on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next record.
    Continue,
    /// Stop reading.
    Stop,
}

/// Read a stream of usage records and hand over each period as it completes or is refused;
/// `result` records (a previous waldur-push's output) are skipped. The one loop behind both
/// the push and the audit.
pub fn each_period<R: std::io::BufRead, E>(
    mut input: R,
    mut on: impl FnMut(Arrival) -> Result<Next, E>,
) -> Result<(), E> {
    let mut collector = Collector::new();
    let mut buf = String::new();
    let mut line = 0;
    loop {
        buf.clear();
        let arrival = match input.read_line(&mut buf) {
            Ok(0) => break,
            Err(e) => Arrival::Unreadable(RecordError::Io(e).to_string()),
            Ok(_) => {
                line += 1;
                let text = buf.trim();
                if text.is_empty() {
                    continue;
                }
                match collector.push_line(line, text) {
                    Ok(None) => continue,
                    Ok(Some(Event::Complete(month))) => Arrival::Complete(month),
                    Ok(Some(Event::Refused { period, reason })) => {
                        Arrival::Refused { period, reason }
                    }
                    Err(fatal) => Arrival::Unreadable(fatal.0),
                }
            }
        };
        let unreadable = matches!(arrival, Arrival::Unreadable(_));
        if on(arrival)? == Next::Stop {
            return Ok(());
        }
        if unreadable {
            break;
        }
    }
    for (period, reason) in collector.finish() {
        if on(Arrival::Refused { period, reason })? == Next::Stop {
            break;
        }
    }
    Ok(())
}

/// Collects records into periods.
#[derive(Debug, Default)]
pub struct Collector {
    open: BTreeMap<String, Open>,
    /// Periods already completed (or refused) in this stream, with the line of their
    /// `period_end`.
    done: HashMap<String, usize>,
    /// Scratch space for one record's amounts.
    amounts: Vec<Amount>,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take one (trimmed, non-empty) line read from `line`: a usage line is folded in place,
    /// any other is parsed as a record. `result` records are skipped.
    pub fn push_line(&mut self, line: usize, text: &str) -> Result<Option<Event>, FatalInput> {
        if let Some(u) = UsageLine::parse(text) {
            self.check_usage(line, u.period(), u.account(), u.user(), u.components());
            self.count(u.period());
            return Ok(None);
        }
        match Record::from_json(text) {
            Ok(Record::Result(_)) => Ok(None),
            Ok(record) => self.push(line, record),
            Err(message) => Err(FatalInput(
                RecordError::Invalid { line, message }.to_string(),
            )),
        }
    }

    /// Take one record read from `line`.
    pub fn push(&mut self, line: usize, record: Record) -> Result<Option<Event>, FatalInput> {
        match record {
            Record::Tres(_) => Err(FatalInput(format!(
                "input line {line}: a `tres` record: waldur-push needs `usage` records in \
                 Waldur units; put usage-convert before waldur-push"
            ))),
            Record::Usage(u) => {
                let comps = u.components.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                self.check_usage(line, &u.period, &u.account, u.user.as_deref(), comps);
                self.count(&u.period);
                Ok(None)
            }
            Record::Job(j) => {
                self.count(&j.period);
                Ok(None)
            }
            Record::Period(p) => {
                if let Err(e) = crate::period::whole_month(&p) {
                    self.refuse(&p.period, format!("input line {line}: {e}"));
                }
                let open = self.open.entry(p.period.clone()).or_default();
                open.counted = true;
                open.record = Some(p);
                Ok(None)
            }
            Record::PeriodEnd(e) => {
                if let Err(err) = Period::parse(&e.period) {
                    self.refuse(&e.period, format!("input line {line}: {err}"));
                }
                Ok(Some(self.close(line, e.period, e.records)))
            }
            _ => Ok(None),
        }
    }

    /// One more data record of `period`.
    fn count(&mut self, period: &str) {
        let open = match self.open.get_mut(period) {
            Some(open) => open,
            None => self.open.entry(period.to_string()).or_default(),
        };
        open.counted = true;
        open.seen += 1;
    }

    /// The `period_end` of `key` on `line`, announcing `expected` records.
    fn close(&mut self, line: usize, key: String, expected: u64) -> Event {
        let open = self.open.remove(&key).unwrap_or_default();
        if open.seen != expected {
            let e = PeriodError::CountMismatch {
                period: key.clone(),
                expected,
                seen: open.seen,
                line,
            };
            return Event::Refused {
                period: key,
                reason: e.to_string(),
            };
        }
        if let Some(first) = self.done.insert(key.clone(), line) {
            return Event::Refused {
                reason: format!(
                    "period {key} comes twice in the input (its first copy ended at line \
                     {first}, this one at line {line}); the second copy is not submitted"
                ),
                period: key,
            };
        }
        if let Some(reason) = open.error {
            return Event::Refused {
                reason: format!("{reason}; nothing of {key} is submitted"),
                period: key,
            };
        }
        let period = match Period::parse(&key) {
            Ok(p) => p,
            Err(e) => {
                return Event::Refused {
                    period: key,
                    reason: e.to_string(),
                };
            }
        };
        match open.month.finish(period, open.record) {
            Ok(month) => Event::Complete(Box::new(month)),
            Err(e) => Event::Refused {
                reason: format!("{e}; nothing of {key} is submitted"),
                period: key,
            },
        }
    }

    /// The periods that never completed, with the reason.
    pub fn finish(self) -> Vec<(String, String)> {
        self.open
            .into_iter()
            .filter(|(_, open)| open.counted)
            .map(|(period, open)| {
                let e = PeriodError::Unterminated {
                    period: period.clone(),
                    seen: open.seen,
                };
                (period, e.to_string())
            })
            .collect()
    }

    fn refuse(&mut self, period: &str, reason: String) {
        let open = self.open.entry(period.to_string()).or_default();
        if open.error.is_none() {
            open.error = Some(reason);
            // Nothing of the period is used any more: free what it held.
            open.month = MonthBuilder::default();
        }
    }

    fn check_usage<'c>(
        &mut self,
        line: usize,
        period: &str,
        account: &str,
        user: Option<&str>,
        components: impl Iterator<Item = (&'c str, &'c str)> + Clone,
    ) {
        if self.open.get(period).is_some_and(|o| o.error.is_some()) {
            // The period is refused already; only its first error is told.
            return;
        }
        let fail = |this: &mut Self, message: String| {
            this.refuse(period, format!("input line {line}: {message}"));
        };
        if let Err(e) = Period::parse(period) {
            return fail(self, e.to_string());
        }
        let account = account.trim();
        if account.is_empty() {
            return fail(self, "empty account".into());
        }
        if user.is_some_and(|s| s.trim().is_empty()) {
            return fail(self, "empty user (use null for the account total)".into());
        }
        let mut amounts = std::mem::take(&mut self.amounts);
        amounts.clear();
        let mut bad: Option<(&str, String)> = None;
        for (name, text) in components.clone() {
            match Amount::parse_plain(text) {
                Ok(a) => amounts.push(a),
                // The first bad component in name order is the one told.
                Err(e) if bad.as_ref().is_none_or(|(b, _)| name < *b) => bad = Some((name, e)),
                Err(_) => {}
            }
        }
        if let Some((name, e)) = bad {
            self.amounts = amounts;
            return fail(self, format!("component {name:?}: {e}"));
        }
        let open = match self.open.get_mut(period) {
            Some(open) => open,
            None => self.open.entry(period.to_string()).or_default(),
        };
        let id = open.month.account(account);
        let values = components
            .map(|(name, _)| name)
            .zip(amounts.iter().copied());
        let added = open.month.add(id, user, values, line);
        self.amounts = amounts;
        if let Err(dup) = added {
            let who = match user {
                Some(user) => format!("user {user:?} of account {account:?}"),
                None => format!("the total of account {account:?}"),
            };
            let message = format!("{who} appears twice (lines {} and {line})", dup.first);
            fail(self, message);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn feed(text: &str) -> (Vec<Event>, Vec<(String, String)>, Option<FatalInput>) {
        let mut c = Collector::new();
        let mut events = Vec::new();
        for (i, text) in text.lines().enumerate() {
            match c.push_line(i + 1, text.trim()) {
                Ok(Some(e)) => events.push(e),
                Ok(None) => {}
                Err(f) => return (events, Vec::new(), Some(f)),
            }
        }
        (events, c.finish(), None)
    }

    const GOOD: &str = r#"{"kind":"usage","period":"2024-03","account":"HPC_a","user":null,"jobs":3,"components":{"cpu":"1.54","mem":"6008.00"}}
{"kind":"usage","period":"2024-03","account":"hpc_a","user":"alice","jobs":3,"components":{"cpu":"1.54"}}
{"kind":"period_end","period":"2024-03","records":2,"jobs":3,"lines":3,"skipped_lines":0}
"#;

    #[test]
    fn a_complete_period_groups_accounts_case_insensitively() {
        let (events, rest, fatal) = feed(GOOD);
        assert!(fatal.is_none() && rest.is_empty());
        let Event::Complete(p) = &events[0] else {
            panic!("{events:?}")
        };
        let a = p.account("hpc_a").unwrap();
        assert_eq!(a.account(), "HPC_a");
        assert_eq!(a.total_of("mem").unwrap(), Amount::from_hundredths(600800));
        assert_eq!(
            a.user("alice").unwrap().get("cpu").unwrap(),
            Amount::from_hundredths(154)
        );
        assert!(p.has_users());
    }

    #[test]
    fn a_bad_amount_refuses_the_whole_period_naming_the_line() {
        let bad = GOOD.replace("\"1.54\"}}", "\"1.545\"}}");
        let (events, _, _) = feed(&bad);
        let Event::Refused { period, reason } = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(period, "2024-03");
        assert!(
            reason.starts_with("input line 2: component \"cpu\": \"1.545\" is not a decimal"),
            "{reason}"
        );
        assert!(
            reason.ends_with("nothing of 2024-03 is submitted"),
            "{reason}"
        );
    }

    #[test]
    fn duplicates_users_without_total_and_cut_streams_are_refused() {
        let dup = GOOD.replace("\"user\":\"alice\"", "\"user\":null");
        let (events, _, _) = feed(&dup);
        assert!(
            matches!(&events[0], Event::Refused { reason, .. } if reason.contains("appears twice (lines 1 and 2)")),
            "{events:?}"
        );
        let no_total: String = GOOD
            .lines()
            .skip(1)
            .map(|l| l.replace("\"records\":2", "\"records\":1") + "\n")
            .collect();
        let (events, _, _) = feed(&no_total);
        assert!(
            matches!(&events[0], Event::Refused { reason, .. } if reason.contains("no account total")),
            "{events:?}"
        );
        let cut: String = GOOD.lines().take(2).map(|l| format!("{l}\n")).collect();
        let (events, rest, _) = feed(&cut);
        assert!(events.is_empty());
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, "2024-03");
        assert!(
            rest[0].1.contains("ended before its period_end"),
            "{}",
            rest[0].1
        );
    }

    #[test]
    fn tres_records_stop_the_run() {
        let text = r#"{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"tres_seconds":{"cpu":60}}"#;
        let (_, _, fatal) = feed(text);
        assert!(
            fatal
                .unwrap()
                .0
                .contains("put usage-convert before waldur-push")
        );
    }
}

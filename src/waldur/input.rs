//! Reading `usage` records into complete, validated periods.
//!
//! Records are checked as they arrive, so errors name the input line. A period is released only
//! when its `period_end` arrived with a matching count ([`MonthAssembler`]) *and* none of its
//! records was bad; otherwise the whole period is refused: a partial month must never reach
//! Waldur, because `set_usage` replaces the stored month-to-date value.

use std::collections::{BTreeMap, HashMap};

use super::amount::Amount;
use crate::period::Period;
use crate::records::{MonthAssembler, MonthRecord, Record, UsageRecord};

/// The usage of one account in one period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUsage {
    /// The account as first written in the input.
    pub account: String,
    /// The account total (`user: null`), component -> amount.
    pub total: Option<BTreeMap<String, Amount>>,
    /// User -> component -> amount.
    pub users: BTreeMap<String, BTreeMap<String, Amount>>,
}

/// A complete period, ready to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthUsage {
    /// The month.
    pub period: Period,
    /// The `period` record, when the stream carried one (it says whether the month is closed).
    pub record: Option<MonthRecord>,
    /// Lower-cased account -> usage.
    pub accounts: BTreeMap<String, AccountUsage>,
}

impl MonthUsage {
    /// True when some account has per-user usage.
    pub fn has_users(&self) -> bool {
        self.accounts.values().any(|a| !a.users.is_empty())
    }
}

/// What a record completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A period arrived whole and valid.
    Complete(MonthUsage),
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

#[derive(Debug, Default)]
struct Open {
    accounts: BTreeMap<String, AccountUsage>,
    lines: HashMap<(String, Option<String>), usize>,
    error: Option<String>,
}

/// What [`each_period`] hands its caller, in stream order.
#[derive(Debug)]
pub enum Arrival {
    /// A period arrived whole and valid.
    Complete(MonthUsage),
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
    input: R,
    mut on: impl FnMut(Arrival) -> Result<Next, E>,
) -> Result<(), E> {
    let mut collector = Collector::new();
    for item in crate::records::RecordReader::new(input) {
        let arrival = match item {
            Ok((_, Record::Result(_))) => continue,
            Ok((line, record)) => match collector.push(line, record) {
                Ok(None) => continue,
                Ok(Some(Event::Complete(month))) => Arrival::Complete(month),
                Ok(Some(Event::Refused { period, reason })) => Arrival::Refused { period, reason },
                Err(fatal) => Arrival::Unreadable(fatal.0),
            },
            Err(e) => Arrival::Unreadable(e.to_string()),
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
    assembler: MonthAssembler,
    open: BTreeMap<String, Open>,
    /// Periods already completed (or refused) in this stream, with the line of their
    /// `period_end`.
    done: HashMap<String, usize>,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take one record read from `line`.
    pub fn push(&mut self, line: usize, record: Record) -> Result<Option<Event>, FatalInput> {
        match &record {
            Record::Tres(_) => {
                return Err(FatalInput(format!(
                    "input line {line}: a `tres` record: waldur-push needs `usage` records in \
                     Waldur units; put usage-convert before waldur-push"
                )));
            }
            Record::Usage(u) => self.check_usage(line, u),
            Record::Period(p) => {
                if let Err(e) = crate::period::whole_month(p) {
                    self.refuse(&p.period, format!("input line {line}: {e}"));
                }
            }
            Record::PeriodEnd(e) => {
                if let Err(err) = Period::parse(&e.period) {
                    self.refuse(&e.period, format!("input line {line}: {err}"));
                }
            }
            _ => {}
        }
        let done = match self.assembler.push(line, record) {
            Ok(Some(done)) => done,
            Ok(None) => return Ok(None),
            Err(e) => {
                let period = match &e {
                    crate::records::PeriodError::CountMismatch { period, .. }
                    | crate::records::PeriodError::Unterminated { period, .. } => period.clone(),
                };
                self.open.remove(&period);
                return Ok(Some(Event::Refused {
                    period,
                    reason: e.to_string(),
                }));
            }
        };
        let key = done.end.period.clone();
        let open = self.open.remove(&key).unwrap_or_default();
        if let Some(first) = self.done.insert(key.clone(), line) {
            return Ok(Some(Event::Refused {
                period: key.clone(),
                reason: format!(
                    "period {key} comes twice in the input (its first copy ended at line \
                     {first}, this one at line {line}); the second copy is not submitted"
                ),
            }));
        }
        if let Some(reason) = open.error {
            return Ok(Some(Event::Refused {
                period: key,
                reason: format!("{reason}; nothing of {} is submitted", done.end.period),
            }));
        }
        let period = match Period::parse(&key) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Some(Event::Refused {
                    period: key,
                    reason: e.to_string(),
                }));
            }
        };
        for (account_key, usage) in &open.accounts {
            let Some(total) = &usage.total else {
                return Ok(Some(Event::Refused {
                    period: key.clone(),
                    reason: format!(
                        "account {:?} has per-user records but no account total \
                         (a record with \"user\": null); nothing of {key} is submitted",
                        usage.account
                    ),
                }));
            };
            // A user's amount and the total are rounded from the same integers, the user's
            // being a part of the total's: a user above the total cannot come from
            // usage-convert.
            for (user, components) in &usage.users {
                for (component, amount) in components {
                    let limit = total.get(component).copied().unwrap_or(Amount::ZERO);
                    if *amount > limit {
                        let at = |u: Option<String>| {
                            open.lines
                                .get(&(account_key.clone(), u))
                                .copied()
                                .unwrap_or(0)
                        };
                        return Ok(Some(Event::Refused {
                            period: key.clone(),
                            reason: format!(
                                "input line {}: user {user:?} of account {:?} has {component} \
                                 {amount}, more than the account total {limit} (line {}); \
                                 nothing of {key} is submitted",
                                at(Some(user.clone())),
                                usage.account,
                                at(None)
                            ),
                        }));
                    }
                }
            }
        }
        Ok(Some(Event::Complete(MonthUsage {
            period,
            record: done.period,
            accounts: open.accounts,
        })))
    }

    /// The periods that never completed, with the reason.
    pub fn finish(self) -> Vec<(String, String)> {
        self.assembler
            .finish()
            .into_iter()
            .map(|e| {
                let period = match &e {
                    crate::records::PeriodError::CountMismatch { period, .. }
                    | crate::records::PeriodError::Unterminated { period, .. } => period.clone(),
                };
                (period, e.to_string())
            })
            .collect()
    }

    fn refuse(&mut self, period: &str, reason: String) {
        let open = self.open.entry(period.to_string()).or_default();
        open.error.get_or_insert(reason);
    }

    fn check_usage(&mut self, line: usize, u: &UsageRecord) {
        let fail = |this: &mut Self, message: String| {
            this.refuse(&u.period, format!("input line {line}: {message}"));
        };
        if let Err(e) = Period::parse(&u.period) {
            return fail(self, e.to_string());
        }
        let account = u.account.trim();
        if account.is_empty() {
            return fail(self, "empty account".into());
        }
        if u.user.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return fail(self, "empty user (use null for the account total)".into());
        }
        let mut components = BTreeMap::new();
        for (name, text) in &u.components {
            match Amount::parse_plain(text) {
                Ok(a) => {
                    components.insert(name.clone(), a);
                }
                Err(e) => return fail(self, format!("component {name:?}: {e}")),
            }
        }
        let key = account.to_lowercase();
        let open = self.open.entry(u.period.clone()).or_default();
        let id = (key.clone(), u.user.clone());
        if let Some(first) = open.lines.get(&id) {
            let who = match &u.user {
                Some(user) => format!("user {user:?} of account {account:?}"),
                None => format!("the total of account {account:?}"),
            };
            let message = format!("{who} appears twice (lines {first} and {line})");
            return fail(self, message);
        }
        open.lines.insert(id, line);
        let entry = open.accounts.entry(key).or_insert_with(|| AccountUsage {
            account: account.to_string(),
            ..Default::default()
        });
        match &u.user {
            None => entry.total = Some(components),
            Some(user) => {
                entry.users.insert(user.clone(), components);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordReader;

    fn feed(text: &str) -> (Vec<Event>, Vec<(String, String)>, Option<FatalInput>) {
        let mut c = Collector::new();
        let mut events = Vec::new();
        for item in RecordReader::new(text.as_bytes()) {
            let (line, record) = item.unwrap();
            match c.push(line, record) {
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
        let a = &p.accounts["hpc_a"];
        assert_eq!(a.account, "HPC_a");
        assert_eq!(
            a.total.as_ref().unwrap()["mem"],
            Amount::from_hundredths(600800)
        );
        assert_eq!(a.users["alice"]["cpu"], Amount::from_hundredths(154));
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

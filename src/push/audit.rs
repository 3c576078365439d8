//! The audit: does what Waldur holds for a month equal what SLURM measured, for every resource,
//! component and user? Read-only and pure: the caller reads the month from Waldur and hands it
//! over with the usage records of the same month.
//!
//! Statuses, per (account, component, user):
//!
//! | status | meaning |
//! |---|---|
//! | `ok` | Waldur holds exactly what SLURM measured (nothing stored counts as 0.00) |
//! | `missing` | SLURM measured usage, Waldur holds nothing (or the account has no resource) |
//! | `differs` | both hold a value, and they differ |
//! | `extra` | Waldur holds a non-zero value that SLURM does not explain |
//! | `unlinked` | the values agree, but Waldur's per-user row has no offering-user link |

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use super::input::MonthUsage;
use super::plan::Catalog;
use crate::decimal::Amount;
use crate::waldur::api::{ComponentUsage, ComponentUserUsage};

/// How one value compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Equal.
    Ok,
    /// Measured, not stored.
    Missing,
    /// Stored differently.
    Differs,
    /// Stored, not measured.
    Extra,
    /// Equal, but the per-user row is not linked to an offering user.
    Unlinked,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Differs => "differs",
            Status::Extra => "extra",
            Status::Unlinked => "unlinked",
        })
    }
}

/// One compared value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditLine {
    /// `YYYY-MM`.
    pub period: String,
    /// The SLURM account (the resource's backend_id for rows SLURM does not have).
    pub account: String,
    /// The Waldur resource UUID, when the account has one.
    pub resource: Option<String>,
    /// The component type.
    pub component: String,
    /// `None` for the resource total.
    pub user: Option<String>,
    /// What SLURM measured (`None`: not in the usage records).
    pub slurm: Option<Amount>,
    /// What Waldur holds (`None`: nothing).
    pub waldur: Option<Amount>,
    /// The verdict.
    pub status: Status,
}

impl AuditLine {
    /// Waldur minus SLURM, absent values counting as 0.00.
    pub fn difference(&self) -> Amount {
        let v = |a: Option<Amount>| a.unwrap_or(Amount::ZERO).hundredths();
        Amount::from_hundredths(v(self.waldur) - v(self.slurm))
    }

    /// The line as a JSON record of kind `audit`.
    pub fn to_json(&self) -> String {
        let text = |a: Option<Amount>| a.map(|a| a.to_string());
        serde_json::json!({
            "kind": "audit",
            "period": self.period,
            "account": self.account,
            "resource": self.resource,
            "component": self.component,
            "user": self.user,
            "slurm": text(self.slurm),
            "waldur": text(self.waldur),
            "difference": self.difference().to_string(),
            "status": self.status,
        })
        .to_string()
    }
}

/// What Waldur holds for the month, as read for the audit.
pub struct Stored<'a> {
    /// The month's component usages of the offering.
    pub usages: &'a [ComponentUsage],
    /// The month's per-user usages of the offering.
    pub user_usages: &'a [ComponentUserUsage],
}

/// Compare one month. Lines come sorted by account, component and user (totals first).
pub fn audit(month: &MonthUsage, catalog: &Catalog, stored: &Stored<'_>) -> Vec<AuditLine> {
    let period = month.period.to_string();
    // (resource, component) -> highest stored total; component usage UUID -> (resource, type).
    let mut totals: HashMap<(String, String), Amount> = HashMap::new();
    let mut parents: HashMap<String, (String, String)> = HashMap::new();
    for u in stored.usages {
        let Some(resource) = &u.resource_uuid else {
            continue;
        };
        let key = (resource.clone(), u.type_.clone());
        let best = totals.entry(key.clone()).or_insert(u.usage);
        *best = (*best).max(u.usage);
        parents.insert(u.uuid.clone(), key);
    }
    // (resource, component, username) -> (amount, linked).
    let mut users: BTreeMap<(String, String, String), (Amount, bool)> = BTreeMap::new();
    for u in stored.user_usages {
        let Some(parent) = u.component_usage_uuid().and_then(|p| parents.get(&p)) else {
            continue;
        };
        users.insert(
            (parent.0.clone(), parent.1.clone(), u.username.clone()),
            (u.usage, u.user.is_some()),
        );
    }
    let mut lines = Vec::new();
    let mut explained: Vec<String> = Vec::new();
    for account in month.accounts() {
        let resource = catalog.resource_uuid(account.key());
        let line = |component: &str, user: Option<&str>, slurm, waldur, status| AuditLine {
            period: period.clone(),
            account: account.account().to_string(),
            resource: resource.clone(),
            component: component.to_string(),
            user: user.map(str::to_string),
            slurm,
            waldur,
            status,
        };
        let Some(uuid) = &resource else {
            for (component, amount) in account
                .total()
                .filter(|(c, _)| catalog.sendable.contains(*c))
            {
                let status = if amount == Amount::ZERO {
                    Status::Ok
                } else {
                    Status::Missing
                };
                lines.push(line(component, None, Some(amount), None, status));
            }
            continue;
        };
        explained.push(uuid.clone());
        let mut components: Vec<&str> = account
            .total()
            .map(|(c, _)| c)
            .chain(totals.keys().filter(|k| &k.0 == uuid).map(|k| k.1.as_str()))
            .filter(|c| catalog.sendable.contains(*c))
            .collect();
        components.sort();
        components.dedup();
        for component in components {
            let slurm = account.total_of(component);
            let waldur = totals.get(&(uuid.clone(), component.to_string())).copied();
            lines.push(line(component, None, slurm, waldur, compare(slurm, waldur)));
            let id = account.component_id(component);
            let mut names: Vec<&str> = account
                .users()
                .filter(|u| id.is_some_and(|id| u.get_id(id).is_some()))
                .map(|u| u.name())
                .chain(
                    users
                        .keys()
                        .filter(|k| &k.0 == uuid && k.1 == component)
                        .map(|k| k.2.as_str()),
                )
                .collect();
            names.sort();
            names.dedup();
            for name in names {
                let slurm = account.user(name).and_then(|u| u.get(component));
                let row = users.get(&(uuid.clone(), component.to_string(), name.to_string()));
                let waldur = row.map(|r| r.0);
                let mut status = compare(slurm, waldur);
                if status == Status::Ok && row.is_some_and(|r| !r.1) {
                    status = Status::Unlinked;
                }
                lines.push(line(component, Some(name), slurm, waldur, status));
            }
        }
    }
    // Rows for resources SLURM reported nothing for: only non-zero ones need explaining.
    let mut unexplained: Vec<(&(String, String), &Amount)> = totals
        .iter()
        .filter(|((r, c), a)| {
            !explained.contains(r) && **a != Amount::ZERO && catalog.sendable.contains(c)
        })
        .collect();
    unexplained.sort();
    for ((resource, component), amount) in unexplained {
        let account = catalog
            .resources
            .iter()
            .find(|r| &r.uuid == resource)
            .and_then(|r| r.backend_id.clone())
            .unwrap_or_default();
        lines.push(AuditLine {
            period: period.clone(),
            account,
            resource: Some(resource.clone()),
            component: component.clone(),
            user: None,
            slurm: None,
            waldur: Some(*amount),
            status: Status::Extra,
        });
    }
    lines
}

/// `ok`, `missing`, `differs` or `extra` for one pair of values (absent counts as 0.00).
fn compare(slurm: Option<Amount>, waldur: Option<Amount>) -> Status {
    let zero = |a: Option<Amount>| a.is_none_or(|a| a == Amount::ZERO);
    match (slurm, waldur) {
        (Some(s), Some(w)) if s == w => Status::Ok,
        (Some(_), Some(_)) => Status::Differs,
        (Some(_), None) if zero(slurm) => Status::Ok,
        (Some(_), None) => Status::Missing,
        (None, Some(_)) if zero(waldur) => Status::Ok,
        (None, Some(_)) => Status::Extra,
        (None, None) => Status::Ok,
    }
}

/// The lines as an aligned table with a header.
pub fn table(lines: &[AuditLine]) -> String {
    let amount = |a: Option<Amount>| a.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 9]> = lines
        .iter()
        .map(|l| {
            [
                l.period.clone(),
                l.account.clone(),
                l.resource.clone().unwrap_or_else(|| "-".into()),
                l.component.clone(),
                l.user.clone().unwrap_or_else(|| "(total)".into()),
                amount(l.slurm),
                amount(l.waldur),
                l.difference().to_string(),
                l.status.to_string(),
            ]
        })
        .collect();
    let header = [
        "period",
        "account",
        "resource",
        "component",
        "user",
        "slurm",
        "waldur",
        "difference",
        "status",
    ]
    .map(String::from);
    let mut widths = [0usize; 9];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                // Amounts right-aligned, the rest left-aligned.
                if (5..=7).contains(&i) {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(text: &str) -> Option<Amount> {
        Some(Amount::parse(text).unwrap())
    }

    #[test]
    fn values_compare_with_absent_as_zero() {
        assert_eq!(compare(a("1.00"), a("1.00")), Status::Ok);
        assert_eq!(compare(a("1.00"), a("1.01")), Status::Differs);
        assert_eq!(compare(a("1.00"), None), Status::Missing);
        assert_eq!(compare(a("0.00"), None), Status::Ok);
        assert_eq!(compare(None, a("0.50")), Status::Extra);
        assert_eq!(compare(None, a("0.00")), Status::Ok);
    }
}

/// How an audit run ended.
#[derive(Debug, Default)]
pub struct AuditRun {
    /// Periods audited.
    pub periods: usize,
    /// Lines whose status is not `ok`.
    pub differences: usize,
    /// The worst exit status of a failure (bad input, Waldur unreadable); `None` when none.
    pub failed: Option<u8>,
}

/// Audit every complete period of a stream of usage records. `read` compares one period with
/// Waldur; each period's lines are written as they come (a table, or JSON lines with `json`).
/// Bad input refuses its period, as in a push; an unreadable Waldur stops the run.
pub fn run<R: std::io::BufRead, W: std::io::Write>(
    input: R,
    out: &mut W,
    json: bool,
    mut read: impl FnMut(&MonthUsage) -> Result<Vec<AuditLine>, crate::waldur::error::ApiError>,
) -> std::io::Result<AuditRun> {
    use super::input::{Arrival, Next, each_period};
    use crate::cli::exit;
    use crate::error;
    let mut run = AuditRun::default();
    let fail = |run: &mut AuditRun, code: u8| {
        run.failed = Some(run.failed.map_or(code, |c| c.max(code)));
    };
    let mut header = !json;
    each_period::<_, std::io::Error>(input, |arrival| {
        let month = match arrival {
            Arrival::Refused { period, reason } => {
                error!("period {period}: not audited: {reason}");
                fail(&mut run, exit::DATAERR);
                return Ok(Next::Continue);
            }
            Arrival::Unreadable(why) => {
                error!("{why}; the input stops here");
                fail(&mut run, exit::DATAERR);
                return Ok(Next::Continue);
            }
            Arrival::Complete(month) => month,
        };
        let lines = match read(&month) {
            Ok(lines) => lines,
            Err(e) => {
                error!("period {}: Waldur could not be read: {e}", month.period);
                fail(&mut run, e.exit_code());
                return Ok(Next::Stop);
            }
        };
        run.periods += 1;
        run.differences += lines.iter().filter(|l| l.status != Status::Ok).count();
        if json {
            for l in &lines {
                writeln!(out, "{}", l.to_json())?;
            }
        } else {
            let text = table(&lines);
            // One header for the whole run.
            let body = if header {
                text.as_str()
            } else {
                text.split_once('\n').map_or("", |(_, rest)| rest)
            };
            out.write_all(body.as_bytes())?;
            header = false;
        }
        out.flush()?;
        Ok(Next::Continue)
    })?;
    Ok(run)
}

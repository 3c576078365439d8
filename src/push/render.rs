//! Result records written straight to the output as JSON, without building value trees:
//! `--offline` and `--dry-run` print one record per request, which for a large site means
//! hundreds of thousands of users, so each line is written into one reused buffer and handed
//! on.
//!
//! The bytes are those `serde_json` writes for a [`ResultRecord`] whose request body is a
//! `serde_json::Value`: the record's fields in declaration order, `kind` first; the body's
//! keys sorted (`amount` before `type`, `usage` before `user` before `username`).

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};

use jiff::Timestamp;

use super::input::MonthUsage;
use super::plan::{Existing, Plan, TotalPost, UserPost};
use super::stream::Tally;
use crate::decimal::Amount;
use crate::json_line::push_str;
use crate::period::{BillingZones, Standing};
use crate::records::ResultRecord;
use crate::waldur::api::path;

/// Where a period's result records go, as they are decided; counts them for the summary.
pub struct ResultWriter<'a> {
    out: &'a mut dyn Write,
    line: Vec<u8>,
    tally: Tally,
    error: Option<io::Error>,
}

impl<'a> ResultWriter<'a> {
    /// Write records to `out` (buffer it: one write per record).
    pub fn new(out: &'a mut dyn Write) -> Self {
        ResultWriter {
            out,
            line: Vec::with_capacity(64 * 1024),
            tally: Tally::default(),
            error: None,
        }
    }

    /// Write one record as `Record::Result` writes it.
    pub fn record(&mut self, r: &ResultRecord) {
        self.tally.add(r);
        self.line.clear();
        self.line.extend_from_slice(b"{\"kind\":\"result\",");
        let body = serde_json::to_vec(r).expect("records serialize");
        self.line.extend_from_slice(&body[1..]);
        self.emit();
    }

    /// Write the line in the buffer, a result of status `dry_run`.
    fn emit_dry_run(&mut self) {
        self.tally.dry_run += 1;
        self.emit();
    }

    fn emit(&mut self) {
        self.line.push(b'\n');
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(&self.line) {
                self.error = Some(e);
            }
        }
    }

    /// The counts of what was written since the last call.
    pub fn take_tally(&mut self) -> Tally {
        std::mem::take(&mut self.tally)
    }

    /// Flush the output; the first write error, if any.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

/// An amount as a JSON string: `"12.50"` (a negative one, which no plan sends, as
/// [`Amount`] displays it).
fn amount(buf: &mut Vec<u8>, a: Amount) {
    buf.push(b'"');
    a.push_text(buf);
    buf.push(b'"');
}

/// `key` (`,"name":`, or the opening of a record) and `value` as a JSON string.
fn field(buf: &mut Vec<u8>, key: &[u8], value: &str) {
    buf.extend_from_slice(key);
    push_str(buf, value);
}

/// `key` and `value` as a JSON string, or `null` when there is no value.
fn nullable_field(buf: &mut Vec<u8>, key: &[u8], value: Option<&str>) {
    buf.extend_from_slice(key);
    match value {
        Some(v) => push_str(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
}

/// `key` and `value` as a JSON string, or nothing at all when there is no value.
fn optional_field(buf: &mut Vec<u8>, key: &[u8], value: Option<&str>) {
    if let Some(v) = value {
        field(buf, key, v);
    }
}

/// `{"kind":"result",...,"request":{"method":"POST","path":PATH,"body":` for a dry run.
#[allow(clippy::too_many_arguments)]
fn head(
    buf: &mut Vec<u8>,
    period: &str,
    account: &str,
    resource: Option<&str>,
    action: &str,
    reason: Option<&str>,
    component: Option<&str>,
    request_path: &str,
) {
    buf.clear();
    field(buf, b"{\"kind\":\"result\",\"period\":", period);
    field(buf, b",\"account\":", account);
    nullable_field(buf, b",\"resource\":", resource);
    field(buf, b",\"action\":", action);
    nullable_field(buf, b",\"status\":\"dry_run\",\"reason\":", reason);
    optional_field(buf, b",\"component\":", component);
    field(
        buf,
        b",\"request\":{\"method\":\"POST\",\"path\":",
        request_path,
    );
    buf.extend_from_slice(b",\"body\":");
}

/// A `set_usage` body: `{"date":..,"resource":..,"usages":[{"amount":..,"type":..}]}`.
fn set_usage_body<'x>(
    buf: &mut Vec<u8>,
    date: &str,
    resource: &str,
    usages: impl Iterator<Item = (&'x str, Amount)>,
) {
    field(buf, b"{\"date\":", date);
    field(buf, b",\"resource\":", resource);
    buf.extend_from_slice(b",\"usages\":[");
    for (i, (component, value)) in usages.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"amount\":");
        amount(buf, value);
        field(buf, b",\"type\":", component);
        buf.push(b'}');
    }
    buf.extend_from_slice(b"]}}}");
}

/// One user of a `set_user_usages` body, after `{"usages":[` or a comma.
fn user_item(buf: &mut Vec<u8>, username: &str, value: Amount, link: Option<&str>) {
    buf.extend_from_slice(b"{\"usage\":");
    amount(buf, value);
    optional_field(buf, b",\"user\":", link);
    field(buf, b",\"username\":", username);
    buf.push(b'}');
}

/// The payloads of a period without any network (`--offline`): account names stand in for
/// resources, and every configured component in the input is shown (nothing is compared).
pub fn offline(
    usage: &MonthUsage,
    configured: &BTreeSet<String>,
    zones: &BillingZones,
    now: Timestamp,
    out: &mut ResultWriter<'_>,
) {
    let period = usage.period.to_string();
    let date = match zones.standing(usage.period, now) {
        Standing::Past { .. } => zones.past_date(usage.period),
        Standing::Current | Standing::Future { .. } => zones.current_date(usage.period, now),
    };
    let components: Vec<(u32, &str)> = usage
        .components()
        .filter(|(_, c)| configured.contains(*c))
        .collect();
    let mut resource = String::new();
    let mut request_path = String::new();
    for a in usage.accounts() {
        // Offline, a record names no resource and gives "offline" as its reason.
        let offline_head =
            |buf: &mut Vec<u8>, action: &str, component: Option<&str>, request_path: &str| {
                head(
                    buf,
                    &period,
                    a.account(),
                    None,
                    action,
                    Some("offline"),
                    component,
                    request_path,
                )
            };
        resource.clear();
        resource.push_str("<resource of account ");
        resource.push_str(a.account());
        resource.push('>');
        let buf = &mut out.line;
        offline_head(
            buf,
            "set_usage",
            None,
            "/api/marketplace-component-usages/set_usage/",
        );
        let total = a.total().filter(|(c, _)| configured.contains(*c));
        set_usage_body(buf, &date, &resource, total);
        out.emit_dry_run();
        for &(id, c) in &components {
            let mut users = a.users().filter_map(|u| Some((u.name(), u.get_id(id)?)));
            let Some((first, value)) = users.next() else {
                continue;
            };
            request_path.clear();
            request_path.push_str("/api/");
            request_path.push_str(&path::set_user_usages(&format!(
                "<{c} usage of account {}>",
                a.account()
            )));
            let buf = &mut out.line;
            offline_head(buf, "set_user_usages", Some(c), &request_path);
            buf.extend_from_slice(b"{\"usages\":[");
            user_item(buf, first, value, None);
            for (name, value) in users {
                buf.push(b',');
                user_item(buf, name, value, None);
            }
            buf.extend_from_slice(b"]}}}");
            out.emit_dry_run();
        }
    }
}

/// Write the results of a dry run: what was decided without a request, then the POSTs that
/// would be made, totals first.
pub fn dry_run(
    period: &str,
    date: &str,
    plan: &Plan,
    existing: &Existing,
    links: &HashMap<String, String>,
    out: &mut ResultWriter<'_>,
) {
    for r in &plan.results {
        out.record(r);
    }
    for t in &plan.totals {
        dry_run_total(period, date, t, out);
    }
    for u in &plan.users {
        dry_run_users(period, u, existing, links, out);
    }
}

/// The log line of a dry-run POST, made only when it is shown.
pub fn log_totals(totals: &[TotalPost]) {
    if !crate::cli::enabled(crate::cli::Level::Info) {
        return;
    }
    for t in totals {
        crate::info!(
            "dry run: POST /api/{} {} ({}): {}",
            path::SET_USAGE,
            t.account,
            t.resource,
            describe_items(t.usages.iter().map(|i| (i.type_.as_str(), i.amount)))
        );
    }
}

fn dry_run_total(period: &str, date: &str, t: &TotalPost, out: &mut ResultWriter<'_>) {
    let buf = &mut out.line;
    head(
        buf,
        period,
        &t.account,
        Some(&t.resource),
        "set_usage",
        None,
        None,
        &format!("/api/{}", path::SET_USAGE),
    );
    let usages = t.usages.iter().map(|i| (i.type_.as_str(), i.amount));
    set_usage_body(buf, date, &t.resource, usages);
    out.emit_dry_run();
}

fn dry_run_users(
    period: &str,
    u: &UserPost,
    existing: &Existing,
    links: &HashMap<String, String>,
    out: &mut ResultWriter<'_>,
) {
    let cu = existing
        .component_usage(&u.resource, &u.component)
        .map(str::to_string)
        .unwrap_or_else(|| format!("<new {} usage of resource {}>", u.component, u.resource));
    let p = path::set_user_usages(&cu);
    if crate::cli::enabled(crate::cli::Level::Info) {
        crate::info!(
            "dry run: POST /api/{p} {} {}: {}",
            u.account,
            u.component,
            describe_items(u.items.iter().map(|(n, a)| (&**n, *a)))
        );
    }
    let buf = &mut out.line;
    head(
        buf,
        period,
        &u.account,
        Some(&u.resource),
        "set_user_usages",
        None,
        Some(&u.component),
        &format!("/api/{p}"),
    );
    buf.extend_from_slice(b"{\"usages\":[");
    for (i, (name, value)) in u.items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        user_item(buf, name, *value, links.get(&**name).map(String::as_str));
    }
    buf.extend_from_slice(b"]}}}");
    out.emit_dry_run();
}

/// `cpu=1.00 mem=2.50`.
pub fn describe_items<'x>(items: impl Iterator<Item = (&'x str, Amount)>) -> String {
    items
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_amounts_are_written_as_serde_json_writes_them() {
        for s in [
            "plain",
            "quote\"d",
            "back\\slash",
            "tab\tnew\nline\u{1}",
            "ünï/код",
        ] {
            let mut buf = Vec::new();
            push_str(&mut buf, s);
            assert_eq!(buf, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        for h in [0, 5, 100, 123_450, i128::from(u64::MAX), i128::MAX] {
            let a = Amount::from_hundredths(h);
            let mut buf = Vec::new();
            amount(&mut buf, a);
            assert_eq!(buf, serde_json::to_vec(&a).unwrap(), "{h}");
        }
    }
}

//! The fast path for `tres` records: convert a [`TresLine`] and write its `usage` line straight
//! into the output buffer, byte for byte what `Record::to_json` writes for the record that
//! [`Converter::convert`] makes, with the same checks in the same order.

use std::io::Write;

use super::line::TresLine;
use super::mapping::{ConvertError, Converter, Overflow, Rule};
use super::{Stats, StreamError};
use crate::decimal::Amount;
use crate::json_line::{push_str, push_u128};

/// Per-stream state of the fast path: the rules as slot indices, and which TRES name the last
/// record had at each position, so the names of a stream are looked up once, not per record.
pub struct FastPath<'c> {
    rules: &'c [Rule],
    /// For each rule, the slot of each of its sources.
    slots: Vec<Vec<usize>>,
    /// Distinct source TRES names; a name's index is its slot.
    sources: Vec<&'c str>,
    /// `"component":"` for each rule, escaped as serde_json escapes it.
    keys: Vec<Vec<u8>>,
    /// The rule indices in component-name order (the order of the output map).
    order: Vec<usize>,
    /// Name seen at each position of `tres_seconds`, and its slot (`None`: read by nothing).
    seen: Vec<(String, Option<usize>)>,
    /// TRES x seconds of the current record, per slot.
    values: Vec<Option<u128>>,
    /// The current record's amount for each rule (`None`: not carried).
    amounts: Vec<Option<Amount>>,
    /// The last period that parsed as a month.
    good_period: String,
    /// The output line being built.
    out: Vec<u8>,
}

impl<'c> FastPath<'c> {
    /// The fast path for `converter`'s rules.
    pub fn new(converter: &'c Converter) -> FastPath<'c> {
        let rules = converter.rules();
        let mut sources: Vec<&str> = Vec::new();
        let mut slots = Vec::with_capacity(rules.len());
        for rule in rules {
            let mut of_rule = Vec::with_capacity(rule.sources.len());
            for (name, _) in &rule.sources {
                let slot = match sources.iter().position(|s| s == name) {
                    Some(slot) => slot,
                    None => {
                        sources.push(name);
                        sources.len() - 1
                    }
                };
                of_rule.push(slot);
            }
            slots.push(of_rule);
        }
        let keys = rules
            .iter()
            .map(|r| {
                let mut key = Vec::new();
                push_str(&mut key, &r.component);
                key.extend_from_slice(b":\"");
                key
            })
            .collect();
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by(|&a, &b| rules[a].component.cmp(&rules[b].component));
        FastPath {
            rules,
            slots,
            values: vec![None; sources.len()],
            amounts: vec![None; rules.len()],
            sources,
            keys,
            order,
            seen: Vec::new(),
            good_period: String::new(),
            out: Vec::with_capacity(256),
        }
    }

    /// Convert the record of input line `line` and write its `usage` line to `output`.
    pub fn convert(
        &mut self,
        line: usize,
        tres: &TresLine<'_>,
        stats: &mut Stats,
        output: &mut impl Write,
    ) -> Result<(), StreamError> {
        self.check_period(line, &tres.period)?;
        self.fill(tres, stats);
        self.out.clear();
        self.head(tres);
        self.components(tres)
            .map_err(|error| StreamError::Convert { line, error })?;
        self.out.extend_from_slice(b"}}\n");
        stats.converted += 1;
        if !stats.unterminated.contains(tres.period.as_ref()) {
            stats.unterminated.insert(tres.period.to_string());
        }
        output.write_all(&self.out).map_err(StreamError::Write)
    }

    /// The period must be a month; the last good one is remembered (parsing is pure).
    fn check_period(&mut self, line: usize, period: &str) -> Result<(), StreamError> {
        if period != self.good_period {
            crate::period::Period::parse(period)
                .map_err(|error| StreamError::BadPeriod { line, error })?;
            period.clone_into(&mut self.good_period);
        }
        Ok(())
    }

    /// Put the record's TRES x seconds into their slots; note the names nothing reads.
    fn fill(&mut self, tres: &TresLine<'_>, stats: &mut Stats) {
        self.values.fill(None);
        for (position, (name, seconds)) in tres.tres_seconds.iter().enumerate() {
            let slot = match self.seen.get(position) {
                Some((seen, slot)) if seen == name => *slot,
                _ => self.learn(position, name, stats),
            };
            if let Some(slot) = slot {
                self.values[slot] = Some(*seconds);
            }
        }
    }

    /// Look `name` up, remember it at `position`, and record it when nothing reads it.
    fn learn(&mut self, position: usize, name: &str, stats: &mut Stats) -> Option<usize> {
        let slot = self.sources.iter().position(|s| *s == name);
        if slot.is_none() && !stats.unused_tres.contains(name) {
            stats.unused_tres.insert(name.to_string());
        }
        let entry = (name.to_string(), slot);
        match self.seen.get_mut(position) {
            Some(seen) => *seen = entry,
            None => self.seen.push(entry),
        }
        slot
    }

    /// `{"kind":"usage","period":...,"jobs":N,"components":{`.
    fn head(&mut self, tres: &TresLine<'_>) {
        let out = &mut self.out;
        out.extend_from_slice(b"{\"kind\":\"usage\",\"period\":");
        push_str(out, &tres.period);
        out.extend_from_slice(b",\"account\":");
        push_str(out, &tres.account);
        out.extend_from_slice(b",\"user\":");
        match &tres.user {
            Some(user) => push_str(out, user),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"jobs\":");
        push_u128(out, u128::from(tres.jobs));
        out.extend_from_slice(b",\"components\":{");
    }

    /// Every component's amount, computed in rule order (so the first overflow is the one the
    /// full path names) and written in component-name order.
    fn components(&mut self, tres: &TresLine<'_>) -> Result<(), ConvertError> {
        let total = tres.user.is_none();
        for (i, rule) in self.rules.iter().enumerate() {
            let slots = &self.slots[i];
            self.amounts[i] = rule
                .amount(total, |s| self.values[slots[s]])
                .map_err(|Overflow| overflow(rule, tres))?;
        }
        let mut first = true;
        for &i in &self.order {
            if let Some(amount) = self.amounts[i] {
                if !first {
                    self.out.push(b',');
                }
                first = false;
                self.out.extend_from_slice(&self.keys[i]);
                amount.push_text(&mut self.out);
                self.out.push(b'"');
            }
        }
        Ok(())
    }
}

/// The error [`Converter::convert`] gives for `rule` on this record.
fn overflow(rule: &Rule, tres: &TresLine<'_>) -> ConvertError {
    ConvertError::Overflow {
        component: rule.component.clone(),
        period: tres.period.to_string(),
        account: tres.account.to_string(),
        user: tres.user.as_ref().map(|u| u.to_string()),
    }
}

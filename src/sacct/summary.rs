//! The sorted `tres` records of one period, as [`super::aggregate::Aggregator::finish`] leaves
//! them: account groups in name order, each with its total and its users, and their output.
//!
//! The records are written straight as JSON lines, byte for byte what serde_json writes for
//! [`Summary::records`]. A large period is rendered on two threads, in pieces of a few
//! thousand records that are written in order, so the output costs half the time and a few
//! pieces of memory. This module knows the aggregator's state, not how lines are read.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::mpsc::{channel, sync_channel};

use crate::json_line::push_u128;
use crate::records::TresRecord;

use super::aggregate::Aggregator;
use super::names::{NameId, json_string};
use super::sums::PairId;
use super::tres::TresId;

/// One account: its pairs (a range of the sorted order) and its total.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) account: NameId,
    pub(super) members: Range<usize>,
    pub(super) jobs: u64,
    /// By position in `by_name`: the sum, if any member saw that TRES.
    pub(super) total: Vec<Option<u128>>,
}

/// The sorted records of one period (see the module docs), with the account totals summed.
#[derive(Debug)]
pub struct Summary {
    pub(super) aggregator: Aggregator,
    /// Pairs sorted by (account, user).
    pub(super) order: Vec<PairId>,
    pub(super) groups: Vec<Group>,
    /// TRES ids sorted by name, and their names (plain and as JSON strings) in that order.
    pub(super) by_name: Vec<TresId>,
    pub(super) tres_names: Vec<String>,
    pub(super) tres_json: Vec<String>,
}

impl Summary {
    /// Number of records: one per account and one per (account, user).
    pub fn len(&self) -> usize {
        self.groups.len() + self.order.len()
    }

    /// True when the period had no allocation.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Visit the records in order: (account group, `None` for the total or `Some(pair)`).
    fn each<E>(
        &self,
        mut visit: impl FnMut(&Group, Option<PairId>) -> Result<(), E>,
    ) -> Result<(), E> {
        for group in &self.groups {
            visit(group, None)?;
            for &pair in &self.order[group.members.clone()] {
                visit(group, Some(pair))?;
            }
        }
        Ok(())
    }

    /// The user of `pair`: (text, JSON string).
    fn user(&self, pair: PairId) -> (&str, &[u8]) {
        let agg = &self.aggregator;
        let respelled = if agg.spellings.is_empty() {
            None
        } else {
            agg.spellings.get(&pair)
        };
        match respelled {
            Some((text, json)) => (text, json.as_bytes()),
            None => {
                let id = agg.pairs[pair as usize].user;
                (agg.names.users.text(id), agg.names.users.json(id))
            }
        }
    }

    /// The sums of a record, by position in `by_name`.
    fn sums<'s>(
        &'s self,
        group: &'s Group,
        pair: Option<PairId>,
    ) -> impl Iterator<Item = (usize, u128)> + 's {
        let row = pair.map(|p| self.aggregator.sums.row(p));
        (0..self.by_name.len()).filter_map(move |i| match row {
            None => group.total[i].map(|v| (i, v)),
            Some(row) => row.get(self.by_name[i]).map(|v| (i, v)),
        })
    }

    fn jobs(&self, group: &Group, pair: Option<PairId>) -> u64 {
        pair.map_or(group.jobs, |p| self.aggregator.pairs[p as usize].jobs)
    }

    /// The `tres` records of `period`.
    pub fn records(&self, period: &str) -> Vec<TresRecord> {
        let mut out = Vec::with_capacity(self.len());
        let agg = &self.aggregator;
        let _ = self.each(|group, pair| -> Result<(), ()> {
            out.push(TresRecord {
                period: period.to_string(),
                account: agg.names.accounts.text(group.account).to_string(),
                user: pair.map(|p| self.user(p).0.to_string()),
                jobs: self.jobs(group, pair),
                tres_seconds: self
                    .sums(group, pair)
                    .map(|(i, v)| (self.tres_names[i].clone(), v))
                    .collect(),
            });
            Ok(())
        });
        out
    }

    /// One record as a JSON line, appended to `out`.
    fn push_record(&self, period: &[u8], group: &Group, pair: Option<PairId>, out: &mut Vec<u8>) {
        let agg = &self.aggregator;
        out.extend_from_slice(b"{\"kind\":\"tres\",\"period\":");
        out.extend_from_slice(period);
        out.extend_from_slice(b",\"account\":");
        out.extend_from_slice(agg.names.accounts.json(group.account));
        out.extend_from_slice(b",\"user\":");
        match pair {
            None => out.extend_from_slice(b"null"),
            Some(p) => out.extend_from_slice(self.user(p).1),
        }
        out.extend_from_slice(b",\"jobs\":");
        push_u128(out, u128::from(self.jobs(group, pair)));
        out.extend_from_slice(b",\"tres_seconds\":{");
        for (n, (i, v)) in self.sums(group, pair).enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.tres_json[i].as_bytes());
            out.push(b':');
            push_u128(out, v);
        }
        out.extend_from_slice(b"}}\n");
    }

    /// The records in pieces of at most [`PIECE_RECORDS`], in output order.
    fn pieces(&self) -> Vec<Piece> {
        let mut pieces = Vec::new();
        for (group, g) in self.groups.iter().enumerate() {
            let mut start = g.members.start;
            let mut total = true;
            while total || start < g.members.end {
                let end = g.members.end.min(start + PIECE_RECORDS);
                pieces.push(Piece {
                    group,
                    total,
                    members: start..end,
                });
                (start, total) = (end, false);
            }
        }
        pieces
    }

    /// Append the records of `piece` to `out`.
    fn render(&self, period: &[u8], piece: &Piece, out: &mut Vec<u8>) {
        let group = &self.groups[piece.group];
        if piece.total {
            self.push_record(period, group, None, out);
        }
        for &pair in &self.order[piece.members.clone()] {
            self.push_record(period, group, Some(pair), out);
        }
    }

    /// Write the `tres` records of `period` as JSON lines, byte for byte what serde_json
    /// writes for [`Summary::records`] (`kind` first).
    pub fn write_json(&self, period: &str, out: &mut impl Write) -> io::Result<()> {
        let period = json_string(period);
        let period = period.as_bytes();
        let pieces = self.pieces();
        let mut mine = Vec::with_capacity(PIECE_RECORDS * 160);
        if self.len() < TWO_THREADS_FROM {
            for piece in &pieces {
                mine.clear();
                self.render(period, piece, &mut mine);
                out.write_all(&mine)?;
            }
            return Ok(());
        }
        // This thread renders the even pieces and writes every piece in order; a helper
        // renders the odd ones, a few pieces ahead at most.
        std::thread::scope(|scope| {
            let (rendered, odd) = sync_channel::<Vec<u8>>(2);
            let (give_back, reusable) = channel::<Vec<u8>>();
            let pieces = &pieces;
            scope.spawn(move || {
                for piece in pieces.iter().skip(1).step_by(2) {
                    let mut buffer = reusable.try_recv().unwrap_or_default();
                    buffer.clear();
                    self.render(period, piece, &mut buffer);
                    if rendered.send(buffer).is_err() {
                        return; // the writer stopped on an error
                    }
                }
            });
            for (n, piece) in pieces.iter().enumerate() {
                if n % 2 == 0 {
                    mine.clear();
                    self.render(period, piece, &mut mine);
                    out.write_all(&mine)?;
                } else {
                    let buffer = odd.recv().expect("the renderer sends every odd piece");
                    out.write_all(&buffer)?;
                    let _ = give_back.send(buffer);
                }
            }
            Ok(())
        })
    }
}

/// Records per piece of output: a few hundred kilobytes.
const PIECE_RECORDS: usize = 2048;

/// Periods with fewer records are written on one thread.
const TWO_THREADS_FROM: usize = 4 * PIECE_RECORDS;

/// Consecutive records of one account group: its total first when `total`, then `members`
/// (a range of the sorted order).
struct Piece {
    group: usize,
    total: bool,
    members: Range<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sacct::aggregate::Usage;
    use crate::sacct::tres::{TresTable, parse_tres};

    /// Accounts of 6000, 3000 and 1 users (pieces split inside the first two groups, more
    /// records than one thread writes), user `i` running `i + 1` s on 2 CPUs and, every third
    /// user, a GPU.
    fn large() -> (TresTable, Summary) {
        let mut table = TresTable::new();
        let (mut cpu, mut gpu) = (Vec::new(), Vec::new());
        parse_tres(b"cpu=2", &mut table, &mut cpu).unwrap();
        parse_tres(b"cpu=2,gres/gpu=1", &mut table, &mut gpu).unwrap();
        let mut agg = Aggregator::new();
        for (account, users) in [("zeta", 6000), ("alpha", 3000), ("mid", 1)] {
            for i in 0..users {
                let user = format!("u{i:05}");
                let tres = if i % 3 == 0 { &gpu } else { &cpu };
                let usage = Usage {
                    account: account.as_bytes(),
                    user: user.as_bytes(),
                    seconds: i + 1,
                    tres,
                };
                agg.add_usage(&usage).unwrap();
            }
        }
        let summary = agg.finish(&table).unwrap();
        (table, summary)
    }

    #[test]
    fn a_large_period_written_on_two_threads_is_serdes_output_in_order() {
        let (_table, summary) = large();
        assert_eq!(summary.len(), 3 + 9001);
        assert!(summary.len() >= TWO_THREADS_FROM);
        let records = summary.records("2024-03");
        // alpha first; its total: 2 CPUs x (1 + 2 + ... + 3000) s = 3000 x 3001 CPU-seconds.
        assert_eq!(records[0].account, "alpha");
        assert_eq!(records[0].tres_seconds["cpu"], 3000 * 3001);
        // Every third of u00000..u02999 has a GPU: 1000 of them, i = 0, 3, ..., 2997.
        assert_eq!(
            records[0].tres_seconds["gres/gpu"],
            (0..3000).step_by(3).map(|i| i + 1).sum()
        );
        let mut written = Vec::new();
        summary.write_json("2024-03", &mut written).unwrap();
        let expected: String = records
            .into_iter()
            .map(|r| crate::records::Record::Tres(r).to_json() + "\n")
            .collect();
        assert_eq!(String::from_utf8(written).unwrap(), expected);
    }

    /// Takes `room` bytes, then fails.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room < buf.len() {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "full"));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_stops_both_threads_and_is_returned() {
        let (_table, summary) = large();
        // Fails inside the second piece, which the helper thread rendered.
        let err = summary
            .write_json("2024-03", &mut Full { room: 400_000 })
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}

//! One period read on two threads: this one reads and parses the sacct lines, a second one
//! folds them into the sums, so that parsing and the hash lookups of a large site overlap.
//!
//! The folding thread sees the lines in their order and applies the same bad-line policy as the
//! one-thread loop, so the records, the counts, the warnings and the first error are the same.
//! A batch carries each allocation's line, so a line the sums reject is still named in full.

use std::io::BufRead;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use super::aggregate::{Named, Names, Usage};
use super::line::{Allocation, LineParser};
use super::read::{Fed, Folder, MonthData, ReadError, ReadOptions, Scanned, Sink, scan};
use super::tres::TresId;

/// Lines per batch: large enough that handing one over costs nothing per line, small enough to
/// stay in the cache.
const BATCH_LINES: usize = 2048;

/// Batches on their way to the folding thread (more would only hold memory).
const IN_FLIGHT: usize = 4;

/// One line for the folding thread; ranges index the batch's `bytes` and `tres`.
enum Item {
    Allocation {
        number: u64,
        line: Range<usize>,
        named: Named,
        account: Range<usize>,
        user: Range<usize>,
        seconds: u64,
        tres: Range<usize>,
    },
    /// A malformed line (only sent with `--skip-bad-lines`: without, the scan stops on it).
    Bad {
        number: u64,
        reason: String,
        line: Range<usize>,
    },
}

/// Lines handed over together.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    tres: Vec<(TresId, u64)>,
    items: Vec<Item>,
}

impl Batch {
    fn keep(&mut self, text: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(text);
        start..self.bytes.len()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.tres.clear();
        self.items.clear();
    }
}

enum Message {
    Lines(Batch),
    /// The scan is over; with the error that ended it, if any.
    End(Option<ReadError>),
}

/// The scanning side: fills batches and sends them, reusing the ones sent back.
struct Batcher {
    /// The names, resolved here so that the folding thread only adds.
    names: Names,
    batch: Batch,
    to_folder: SyncSender<Message>,
    returned: Receiver<Batch>,
    skip_bad_lines: bool,
}

/// The folding thread has stopped on an error of its own; it reports that error.
fn folder_gone() -> ReadError {
    ReadError::Io(std::io::Error::other("the folding thread stopped"))
}

impl Batcher {
    fn send(&mut self) -> Result<(), ReadError> {
        let mut next = self.returned.try_recv().unwrap_or_default();
        next.clear();
        let full = std::mem::replace(&mut self.batch, next);
        self.to_folder
            .send(Message::Lines(full))
            .map_err(|_| folder_gone())
    }

    fn pushed(&mut self) -> Result<(), ReadError> {
        if self.batch.items.len() >= BATCH_LINES {
            self.send()?;
        }
        Ok(())
    }
}

impl Sink for Batcher {
    fn allocation(&mut self, number: u64, line: &[u8], a: &Allocation<'_>) -> Fed {
        let named = match self.names.resolve(&Usage::of(a)) {
            Ok(named) => named,
            Err(e) => return self.bad(number, e.to_string(), line),
        };
        let b = &mut self.batch;
        let item = Item::Allocation {
            number,
            line: b.keep(line),
            named,
            account: b.keep(a.account),
            user: b.keep(a.user),
            seconds: a.seconds,
            tres: {
                let start = b.tres.len();
                b.tres.extend_from_slice(a.tres);
                start..b.tres.len()
            },
        };
        b.items.push(item);
        self.pushed()
    }

    fn bad(&mut self, number: u64, reason: String, line: &[u8]) -> Fed {
        if !self.skip_bad_lines {
            // The period's error, unless a line before it already failed in the folder.
            return Err(ReadError::bad_line(number, reason, line));
        }
        let line = self.batch.keep(line);
        self.batch.items.push(Item::Bad {
            number,
            reason,
            line,
        });
        self.pushed()
    }
}

/// The folding thread: every batch in order, until the end or the first error.
fn fold_all(
    mut folder: Folder,
    from_scanner: Receiver<Message>,
    back: Sender<Batch>,
) -> Result<Folder, ReadError> {
    for message in from_scanner {
        let batch = match message {
            Message::Lines(batch) => batch,
            Message::End(None) => return Ok(folder),
            Message::End(Some(e)) => return Err(e),
        };
        let bytes = &batch.bytes[..];
        for item in &batch.items {
            match item {
                Item::Allocation {
                    number,
                    line,
                    named,
                    account,
                    user,
                    seconds,
                    tres,
                } => {
                    let usage = Usage {
                        account: &bytes[account.clone()],
                        user: &bytes[user.clone()],
                        seconds: *seconds,
                        tres: &batch.tres[tres.clone()],
                    };
                    folder.fold_named(*number, &bytes[line.clone()], *named, &usage)?;
                }
                Item::Bad {
                    number,
                    reason,
                    line,
                } => folder.bad(*number, reason.clone(), &bytes[line.clone()])?,
            }
        }
        // The scanner may have finished already; then the batch is simply dropped.
        let _ = back.send(batch);
    }
    // The scanner always ends with `End`; without it, it panicked, which `read` reports.
    Err(folder_gone())
}

/// [`super::read::read_period`] without `--jobs`: parse here, fold on a second thread.
pub(super) fn read<R: BufRead>(
    input: R,
    mut parser: LineParser,
    folder: Folder,
    opts: &ReadOptions,
) -> Result<MonthData, ReadError> {
    let (to_folder, from_scanner) = sync_channel(IN_FLIGHT);
    let (back, returned) = channel();
    std::thread::scope(|scope| {
        let folding = scope.spawn(move || fold_all(folder, from_scanner, back));
        let mut batcher = Batcher {
            names: Names::default(),
            batch: Batch::default(),
            to_folder,
            returned,
            skip_bad_lines: opts.skip_bad_lines,
        };
        let scanned = scan(input, &mut parser, opts, &mut batcher);
        // What was scanned before an error is folded first: an earlier line's error wins.
        let flushed = batcher.send();
        let (lines, end) = match (scanned, flushed) {
            (Ok(s), Ok(())) => (s.lines, None),
            (Err(e), _) | (Ok(_), Err(e)) => (0, Some(e)),
        };
        // A closed channel means the folder stopped on its own error, which it returns.
        let _ = batcher.to_folder.send(Message::End(end));
        let mut folder = folding.join().expect("the folding thread does not panic")?;
        folder.adopt_names(batcher.names);
        folder.finish(Scanned { lines }, parser.table())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Compat;
    use crate::sacct::line::{AccountFilter, EXACT_FORMAT, Layout};
    use crate::sacct::read::read_period;
    use crate::sacct::tres::TresTable;

    fn options(skip_bad_lines: bool, jobs: bool) -> ReadOptions {
        ReadOptions {
            compat: Compat::Exact,
            filter: AccountFilter::All,
            skip_bad_lines,
            jobs,
            layout: Layout::from_format(EXACT_FORMAT, Compat::Exact).unwrap(),
            window_seconds: Some(31 * 86_400),
        }
    }

    /// `n` good lines of 60 s x 1 CPU, user `u{i % 7}`, with some lines replaced.
    fn dump(n: usize, replace: &[(usize, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 1..=n {
            match replace.iter().find(|(at, _)| *at == i) {
                Some((_, line)) => out.extend_from_slice(line),
                None => out.extend_from_slice(
                    format!("{i}|acct|u{}|COMPLETED|60|cpu=1|", i % 7).as_bytes(),
                ),
            }
            out.push(b'\n');
        }
        out
    }

    fn bad_line(result: Result<impl Sized, ReadError>) -> u64 {
        match result {
            Err(ReadError::BadLine { line, .. }) => line,
            Err(e) => panic!("not a bad line: {e}"),
            Ok(_) => panic!("read although a line is bad"),
        }
    }

    // Line numbers on both sides of batch boundaries: the first batch ends at BATCH_LINES.
    // Both are refused by the parser: a name must be ASCII, ElapsedRaw a number.
    const BAD_NAME: &[u8] = b"1|acct|\xff|COMPLETED|60|cpu=1|";
    const UNPARSABLE: &[u8] = b"2|acct|u1|COMPLETED|sixty|cpu=1|";

    #[test]
    fn the_first_bad_line_stops_the_period_across_batches() {
        let n = 3 * BATCH_LINES + 10;
        let strict = options(false, false);
        for (first, later) in [
            (BATCH_LINES + 5, 2 * BATCH_LINES + 1),
            (BATCH_LINES, BATCH_LINES + 1),
            (2 * BATCH_LINES + 2, 2 * BATCH_LINES + 9),
        ] {
            for (a, b) in [(BAD_NAME, UNPARSABLE), (UNPARSABLE, BAD_NAME)] {
                let input = dump(n, &[(first, a), (later, b)]);
                let line = bad_line(read_period(&input[..], "2024-03", &strict));
                assert_eq!(line, first as u64, "bad lines {first} and {later}");
            }
        }
    }

    /// Two allocations of u64::MAX TRES for u64::MAX seconds on lines 5 and 6: each fits in
    /// 128 bits ((2^64 - 1)^2 < 2^128), their sum does not. The parser's window check keeps
    /// such lines out of real input, so the batch is made by hand.
    fn overflowing_batch(names: &mut Names) -> Batch {
        let mut batch = Batch::default();
        let usage = Usage {
            account: b"acct",
            user: b"u",
            seconds: 0,
            tres: &[],
        };
        let named = names.resolve(&usage).unwrap();
        for number in [5, 6] {
            let line = batch.keep(b"the line");
            let (account, user) = (batch.keep(b"acct"), batch.keep(b"u"));
            batch.tres.push((0, u64::MAX));
            let tres = batch.tres.len() - 1..batch.tres.len();
            batch.items.push(Item::Allocation {
                number,
                line,
                named,
                account,
                user,
                seconds: u64::MAX,
                tres,
            });
        }
        batch
    }

    #[test]
    fn a_line_the_sums_refuse_wins_over_a_later_error_of_the_parser() {
        let fold = |skip_bad_lines: bool, end: Option<ReadError>| {
            let folder = Folder::new("2024-03", &options(skip_bad_lines, false)).unwrap();
            let (to_folder, from_scanner) = sync_channel(IN_FLIGHT);
            let (back, _returned) = channel();
            let mut names = Names::default();
            to_folder
                .send(Message::Lines(overflowing_batch(&mut names)))
                .unwrap();
            to_folder.send(Message::End(end)).unwrap();
            fold_all(folder, from_scanner, back).map(|mut folder| {
                folder.adopt_names(names);
                folder
            })
        };
        let later = ReadError::bad_line(7, "a later line".into(), b"x");
        match fold(false, Some(later)) {
            Err(ReadError::BadLine { line, reason, .. }) => {
                assert_eq!(
                    (line, reason.as_str()),
                    (6, "a TRES x seconds sum overflows 128 bits")
                );
            }
            Err(e) => panic!("the folder's error, not {e}"),
            Ok(_) => panic!("an overflow was folded"),
        }
        // With --skip-bad-lines line 6 is skipped and counted, and line 5 stays in the sums.
        let folder = fold(true, None).unwrap_or_else(|e| panic!("{e}"));
        let data = folder
            .finish(Scanned { lines: 2 }, &TresTable::new())
            .unwrap();
        assert_eq!(
            (data.lines, data.allocations, data.skipped_lines),
            (2, 1, 1)
        );
    }

    #[test]
    fn skipped_lines_leave_the_same_sums_and_counts_as_one_thread() {
        let n = 3 * BATCH_LINES + 10;
        let input = dump(
            n,
            &[
                (7, BAD_NAME),
                (BATCH_LINES, UNPARSABLE),
                (BATCH_LINES + 1, BAD_NAME),
                (n, UNPARSABLE),
            ],
        );
        // With --jobs the lines are folded on one thread: the reference.
        let two = read_period(&input[..], "2024-03", &options(true, false)).unwrap();
        let one = read_period(&input[..], "2024-03", &options(true, true)).unwrap();
        assert_eq!(two.tres_records(), one.tres_records());
        assert_eq!(
            (two.lines, two.allocations, two.skipped_lines),
            (n as u64, n as u64 - 4, 4)
        );
        assert_eq!(
            (one.lines, one.allocations, one.skipped_lines),
            (two.lines, two.allocations, 4)
        );
        // 60 s x 1 CPU for every good line.
        let total = &two.tres_records()[0];
        assert_eq!(total.tres_seconds["cpu"], 60 * (n as u128 - 4));
    }
}

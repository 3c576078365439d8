//! One line to one allocation: the fields split, checked and parsed, with a bounded cache
//! of parsed TRES strings.

use std::fmt;

use super::super::elapsed::{parse_elapsed, parse_elapsed_raw};
use super::super::jobid::{JobIdKind, parse_job_id};
use super::super::tres::{TresId, TresTable, parse_tres};
use super::filter::Lowered;
use super::values::check_name;
use super::{AccountFilter, Layout, is_state};
use crate::hash::FxMap;

/// A line that is not a valid allocation line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError(pub String);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LineError {}

/// One job allocation read from a line. Borrowed from the line and the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation<'a> {
    /// Job id as printed; empty when the input has no job id column.
    pub job_id: &'a [u8],
    /// Account as printed.
    pub account: &'a [u8],
    /// User as printed.
    pub user: &'a [u8],
    /// State as printed (`COMPLETED`, `CANCELLED by 0`, ...); empty without a State column.
    pub state: &'a [u8],
    /// Seconds the allocation ran in the window.
    pub seconds: u64,
    /// TRES of the allocation in base units (see [`crate::sacct::tres`]).
    pub tres: &'a [(TresId, u64)],
    /// The names behind the TRES ids.
    pub table: &'a TresTable,
}

/// What a line turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A job step (`123.batch`): not billed.
    Step,
    /// An account outside the configured prefix: not ours, not looked at further.
    OtherAccount,
    /// A billable allocation.
    Allocation(Allocation<'a>),
}

/// Turns lines into [`Parsed`] values; holds the TRES name table and reusable buffers.
#[derive(Debug, Clone)]
pub struct LineParser {
    layout: Layout,
    filter: Lowered,
    table: TresTable,
    bounds: Vec<(usize, usize)>,
    tres: Vec<(TresId, u64)>,
    /// Parsed TRES strings: jobs of the same shape print the same string, so most lines need
    /// no parsing at all. Bounded: cleared when full, so memory does not grow with the input.
    cache: FxMap<Box<[u8]>, ParsedTres>,
    /// Seconds in the period being read: no allocation can run longer in it.
    window: Option<u64>,
}

/// A parsed TRES string: (id, value in base units) pairs, GPU rule applied.
type ParsedTres = Box<[(TresId, u64)]>;

/// Most distinct TRES strings remembered (a few MB at most).
const TRES_CACHE: usize = 4096;

impl LineParser {
    /// A parser for `layout`, keeping only the accounts `filter` admits.
    pub fn new(layout: Layout, filter: AccountFilter) -> Self {
        LineParser {
            layout,
            filter: filter.lowered(),
            table: TresTable::new(),
            bounds: Vec::new(),
            tres: Vec::new(),
            cache: FxMap::default(),
            window: None,
        }
    }

    /// Refuse elapsed times longer than `seconds`, the length of the period being read (sacct
    /// `--truncate` never prints more).
    pub fn set_window(&mut self, seconds: Option<u64>) {
        self.window = seconds;
    }

    /// The TRES names seen so far.
    pub fn table(&self) -> &TresTable {
        &self.table
    }

    /// The layout in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Replace the layout (after a header line was found).
    pub fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
    }

    /// Parse one line (without its line terminator).
    pub fn parse<'a>(&'a mut self, line: &'a [u8]) -> Result<Parsed<'a>, LineError> {
        let l = &self.layout;
        self.bounds.clear();
        let body = line;
        let mut start = 0;
        for i in memchr::memchr_iter(b'|', body) {
            self.bounds.push((start, i));
            start = i + 1;
        }
        self.bounds.push((start, body.len()));
        // `--parsable` ends every line with `|`.
        if self.bounds.len() == l.width() + 1 && start == body.len() {
            self.bounds.pop();
        }
        if self.bounds.len() != l.width() {
            return Err(LineError(format!(
                "expected {} |-separated fields ({}), found {}",
                l.width(),
                l.header(),
                self.bounds.len()
            )));
        }
        let field = |i: usize| {
            let (s, e) = self.bounds[i];
            &body[s..e]
        };
        let account = field(l.account);
        if !self.filter.admits(account) {
            return Ok(Parsed::OtherAccount);
        }
        let job_id = match l.job_id {
            Some(i) => {
                let id = field(i);
                match parse_job_id(id) {
                    Some(JobIdKind::Step) => return Ok(Parsed::Step),
                    Some(JobIdKind::Allocation) => id,
                    None => {
                        return Err(LineError(format!(
                            "{} {:?} is not a job id",
                            l.names[i],
                            String::from_utf8_lossy(id)
                        )));
                    }
                }
            }
            None => b"",
        };
        if account.is_empty() {
            return Err(LineError("the Account field is empty".into()));
        }
        check_name("Account", account)?;
        let user = field(l.user);
        if user.is_empty() {
            return Err(LineError("the User field is empty".into()));
        }
        check_name("User", user)?;
        let state = match l.state {
            Some(i) => {
                let state = field(i);
                if !is_state(state) {
                    return Err(LineError(format!(
                        "State {:?} is not a job state sacct prints (COMPLETED, FAILED, \
                         CANCELLED by <uid>, ...)",
                        String::from_utf8_lossy(state)
                    )));
                }
                state
            }
            None => b"",
        };
        let tres_text = field(l.tres);
        let tres_column = l.tres_column;
        let elapsed_text = field(l.elapsed);
        let elapsed = if l.elapsed_raw {
            parse_elapsed_raw(elapsed_text)
        } else {
            parse_elapsed(elapsed_text)
        }
        .map_err(|e| LineError(e.to_string()))?;
        if let (Some(s), Some(max)) = (elapsed, self.window) {
            if s > max {
                let column = if l.elapsed_raw {
                    "ElapsedRaw"
                } else {
                    "Elapsed"
                };
                return Err(LineError(format!(
                    "{column} {:?} is {s} s, longer than the period ({max} s)",
                    String::from_utf8_lossy(elapsed_text)
                )));
            }
        }
        match self.cache.get(tres_text) {
            Some(parsed) => {
                self.tres.clear();
                self.tres.extend_from_slice(parsed);
            }
            None => {
                parse_tres(tres_text, &mut self.table, &mut self.tres)
                    .map_err(|e| LineError(format!("{tres_column}: {e}")))?;
                if self.cache.len() >= TRES_CACHE {
                    self.cache.clear();
                }
                self.cache
                    .insert(tres_text.into(), self.tres.as_slice().into());
            }
        }
        let seconds = match elapsed {
            Some(s) if s > 0 && self.tres.is_empty() => {
                return Err(LineError(format!(
                    "{tres_column} is empty but the job ran {s} s: its usage is unknown"
                )));
            }
            Some(s) => s,
            // No time recorded: zero only for a job that never started.
            None if self.tres.is_empty() || state.starts_with(b"PENDING") => 0,
            None => {
                return Err(LineError(format!(
                    "no elapsed time ({:?}) for a job with {tres_column}",
                    String::from_utf8_lossy(elapsed_text)
                )));
            }
        };
        Ok(Parsed::Allocation(Allocation {
            job_id,
            account,
            user,
            state,
            seconds,
            tres: &self.tres,
            table: &self.table,
        }))
    }
}

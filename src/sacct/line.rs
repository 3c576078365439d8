//! One line of `sacct --parsable2` (or `--parsable`) output: which column is which, header
//! detection, and the allocation a line describes.
//!
//! Columns are found by name: from a header line when the input has one, else from the
//! `--format` list that was (or would have been) requested. Only the columns needed are read;
//! others are ignored, so any superset of the needed fields works, in any order.

use std::fmt;

use crate::config::Compat;

use super::elapsed::{parse_elapsed, parse_elapsed_raw};
use super::jobid::{JobIdKind, parse_job_id};
use super::tres::{TresId, TresTable, parse_tres};
use crate::hash::FxMap;

/// The `--format` of the default query (DESIGN.md §3): AllocTRES x ElapsedRaw.
pub const EXACT_FORMAT: &str = "JobIDRaw,Account,User,State,ElapsedRaw,AllocTRES,ReqTRES";

/// The `--format` of `--compat reference`: ReqTRES x Elapsed, as the Python agent computes.
pub const REFERENCE_FORMAT: &str = "JobIDRaw,Account,User,State,Elapsed,ReqTRES";

/// The `--format` requested for `compat`.
pub fn default_format(compat: Compat) -> &'static str {
    match compat {
        Compat::Exact => EXACT_FORMAT,
        Compat::Reference => REFERENCE_FORMAT,
    }
}

/// The columns cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LayoutError {}

/// Where the needed fields are in a line, and which TRES and elapsed columns count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    names: Vec<String>,
    job_id: Option<usize>,
    account: usize,
    user: usize,
    state: Option<usize>,
    tres: usize,
    tres_column: &'static str,
    elapsed: usize,
    elapsed_raw: bool,
}

impl Layout {
    /// The layout of a comma-separated `--format` list (`%width` suffixes are ignored).
    pub fn from_format(list: &str, compat: Compat) -> Result<Layout, LayoutError> {
        let names: Vec<&str> = list.split(',').map(str::trim).collect();
        Layout::from_names(&names, compat)
    }

    /// The layout of a list of column names (matched case-insensitively, as sacct does).
    ///
    /// Needs `Account` and `User`; for [`Compat::Exact`] `AllocTRES` and `ElapsedRaw` (or
    /// `Elapsed`), for [`Compat::Reference`] `ReqTRES` and `Elapsed` (or `ElapsedRaw`). The job id
    /// (`JobIDRaw`, else `JobID`) is optional but without it step lines cannot be recognised.
    pub fn from_names(names: &[&str], compat: Compat) -> Result<Layout, LayoutError> {
        let clean: Vec<String> = names
            .iter()
            .map(|n| n.split('%').next().unwrap_or("").trim().to_string())
            .collect();
        let shown = clean.join(",");
        let find = |wanted: &str| -> Result<Option<usize>, LayoutError> {
            let mut hits = clean
                .iter()
                .enumerate()
                .filter(|(_, n)| n.eq_ignore_ascii_case(wanted));
            let first = hits.next().map(|(i, _)| i);
            if hits.next().is_some() {
                return Err(LayoutError(format!(
                    "column {wanted} appears twice in {shown}"
                )));
            }
            Ok(first)
        };
        let need = |wanted: &str, why: &str| -> Result<usize, LayoutError> {
            find(wanted)?.ok_or_else(|| {
                LayoutError(format!(
                    "the sacct columns {shown} lack {wanted}{why}; name the columns with \
                     --fields, or save sacct output with a header line"
                ))
            })
        };
        let account = need("Account", "")?;
        let user = need("User", "")?;
        let job_id = match find("JobIDRaw")? {
            Some(i) => Some(i),
            None => find("JobID")?,
        };
        let state = find("State")?;
        let (tres, tres_column, elapsed, elapsed_raw) = match compat {
            Compat::Exact => {
                let tres = need(
                    "AllocTRES",
                    " (use --compat reference to bill ReqTRES instead)",
                )?;
                match (find("ElapsedRaw")?, find("Elapsed")?) {
                    (Some(i), _) => (tres, "AllocTRES", i, true),
                    (None, Some(i)) => (tres, "AllocTRES", i, false),
                    (None, None) => (tres, "AllocTRES", need("ElapsedRaw", "")?, true),
                }
            }
            Compat::Reference => {
                let tres = need(
                    "ReqTRES",
                    " (--compat reference bills ReqTRES; drop it to bill AllocTRES)",
                )?;
                match (find("Elapsed")?, find("ElapsedRaw")?) {
                    (Some(i), _) => (tres, "ReqTRES", i, false),
                    (None, Some(i)) => (tres, "ReqTRES", i, true),
                    (None, None) => (tres, "ReqTRES", need("Elapsed", "")?, false),
                }
            }
        };
        Ok(Layout {
            names: clean,
            job_id,
            account,
            user,
            state,
            tres,
            tres_column,
            elapsed,
            elapsed_raw,
        })
    }

    /// Number of fields in a line.
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// The column names, `|`-joined as in a header.
    pub fn header(&self) -> String {
        self.names.join("|")
    }
}

/// Split a line into its fields, allowing the trailing `|` of `--parsable`.
fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let line = line.strip_suffix(b"|").unwrap_or(line);
    line.split(|&b| b == b'|')
}

/// Does this line look like a sacct header (`Account|ReqTRES|Elapsed|User`)? Every field must be
/// a column name (letters and digits, starting with a letter) and one of them `Account`.
pub fn is_header(line: &[u8]) -> bool {
    let mut account = false;
    for f in fields(line) {
        if f.is_empty() || !f[0].is_ascii_alphabetic() || !f.iter().all(u8::is_ascii_alphanumeric) {
            return false;
        }
        account |= f.eq_ignore_ascii_case(b"Account");
    }
    account
}

/// The column names of a header line.
pub fn header_names(line: &[u8]) -> Vec<&str> {
    fields(line)
        .map(|f| std::str::from_utf8(f).unwrap_or(""))
        .collect()
}

/// If the first line shows an output style we cannot read, say which and what to do instead.
pub fn unsupported_format(first_line: &[u8]) -> Option<String> {
    let trimmed = first_line.trim_ascii();
    if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        return Some(
            "this is JSON (sacct --json), whose schema changes between Slurm releases; \
             save the output of sacct --parsable2 instead"
                .into(),
        );
    }
    let no_pipe = !first_line.contains(&b'|');
    let ruler = !trimmed.is_empty() && trimmed.iter().all(|&b| b == b'-' || b == b' ');
    let columns = first_line.windows(2).any(|w| w == b"  ");
    if no_pipe && (ruler || columns) {
        return Some(
            "this is fixed-width sacct output, which cuts long values (billing=2+, CANCELLED+); \
             save the output of sacct --parsable2 instead"
                .into(),
        );
    }
    None
}

/// The job states sacct prints in `--parsable2` output (sacct(1), JOB STATE CODES). Only
/// `CANCELLED` may carry ` by <uid>` (the user who cancelled, fixture b3 `CANCELLED by 0`).
pub const STATES: [&str; 15] = [
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PENDING",
    "PREEMPTED",
    "RUNNING",
    "REQUEUED",
    "RESIZING",
    "REVOKED",
    "SUSPENDED",
    "TIMEOUT",
];

/// Is `state` one sacct prints: a name of [`STATES`], or `CANCELLED by <uid>` (decimal uid)?
pub fn is_state(state: &[u8]) -> bool {
    if STATES.iter().any(|s| s.as_bytes() == state) {
        return true;
    }
    match state.strip_prefix(b"CANCELLED by ") {
        Some(uid) => !uid.is_empty() && uid.len() <= 10 && uid.iter().all(u8::is_ascii_digit),
        None => false,
    }
}

/// Is `b` allowed in an Account or User name: `[A-Za-z0-9._@$-]`?
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'$' | b'-')
}

/// Check an Account or User name: only `[A-Za-z0-9._@$-]`, so a shifted column, a cut line or
/// a stray separator cannot pass as a name. The caller rejects empty names separately.
fn check_name(column: &str, name: &[u8]) -> Result<(), LineError> {
    match name.iter().find(|&&b| !is_name_byte(b)) {
        None => Ok(()),
        Some(&b) => Err(LineError(format!(
            "{column} {:?} holds {}, but names are made of A-Z a-z 0-9 . _ @ $ -",
            String::from_utf8_lossy(name),
            describe_byte(b)
        ))),
    }
}

/// A byte as the error messages name it.
fn describe_byte(b: u8) -> String {
    match b {
        b' ' => "a space".into(),
        b'\t' => "a tab".into(),
        0 => "a NUL byte".into(),
        b if b.is_ascii_control() => format!("the control character 0x{b:02x}"),
        b if b.is_ascii() => format!("{:?}", char::from(b)),
        b => format!("the non-ASCII byte 0x{b:02x}"),
    }
}

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
    /// TRES of the allocation in base units (see [`super::tres`]).
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

/// Which accounts are ours. Compared ASCII case-insensitively, before anything else of the
/// line is read, so another account's odd line cannot fail our period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccountFilter {
    /// Every account.
    #[default]
    All,
    /// Accounts starting with this prefix (`allocation_prefix`).
    Prefix(String),
    /// Exactly these accounts (`--accounts`).
    List(Vec<String>),
}

impl AccountFilter {
    fn lowered(self) -> Lowered {
        match self {
            AccountFilter::All => Lowered::All,
            AccountFilter::Prefix(p) if p.is_empty() => Lowered::All,
            AccountFilter::Prefix(p) => Lowered::Prefix(p.into_bytes().to_ascii_lowercase()),
            AccountFilter::List(l) => Lowered::List(
                l.into_iter()
                    .map(|a| a.into_bytes().to_ascii_lowercase())
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Clone)]
enum Lowered {
    All,
    Prefix(Vec<u8>),
    List(Vec<Vec<u8>>),
}

impl Lowered {
    fn admits(&self, account: &[u8]) -> bool {
        match self {
            Lowered::All => true,
            Lowered::Prefix(p) => {
                account.len() >= p.len() && account[..p.len()].eq_ignore_ascii_case(p)
            }
            Lowered::List(l) => l.iter().any(|a| a.eq_ignore_ascii_case(account)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn exact() -> LineParser {
        LineParser::new(
            Layout::from_format(EXACT_FORMAT, Compat::Exact).unwrap(),
            AccountFilter::All,
        )
    }

    fn named(p: &LineParser, tres: &[(TresId, u64)]) -> Vec<(String, u64)> {
        let mut v: Vec<_> = tres
            .iter()
            .map(|&(id, x)| (p.table().name(id).to_string(), x))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn reads_a_default_format_line() {
        let mut p = exact();
        let line = b"8|hpc_alloc1|hpcuser2|CANCELLED by 0|2|billing=1,cpu=1,mem=50M,node=1|billing=1,cpu=1,mem=50M,node=1";
        let Parsed::Allocation(a) = p.parse(line).unwrap() else {
            panic!("not an allocation")
        };
        assert_eq!(a.job_id, b"8");
        assert_eq!(a.account, b"hpc_alloc1");
        assert_eq!(a.user, b"hpcuser2");
        assert_eq!(a.state, b"CANCELLED by 0");
        assert_eq!(a.seconds, 2);
        let tres = a.tres.to_vec();
        assert_eq!(
            named(&p, &tres),
            vec![
                ("billing".into(), 1),
                ("cpu".into(), 1),
                ("mem".into(), 50),
                ("node".into(), 1)
            ]
        );
    }

    #[test]
    fn cached_tres_strings_give_the_same_values_and_errors_are_never_cached() {
        let mut p = exact();
        let line = b"1|a|u|COMPLETED|10|cpu=4,gres/gpu:a100=2,mem=2.50G|";
        let names = |a: &Allocation<'_>| {
            let mut v: Vec<(String, u64)> = a
                .tres
                .iter()
                .map(|&(id, x)| (a.table.name(id).to_string(), x))
                .collect();
            v.sort();
            v
        };
        let first = match p.parse(line).unwrap() {
            Parsed::Allocation(a) => names(&a),
            other => panic!("{other:?}"),
        };
        // Same string again (a cache hit), then a different one in between.
        assert!(p.parse(b"2|a|u|COMPLETED|10|cpu=1|").is_ok());
        let again = match p.parse(line).unwrap() {
            Parsed::Allocation(a) => names(&a),
            other => panic!("{other:?}"),
        };
        assert_eq!(first, again);
        assert_eq!(
            first,
            vec![
                ("cpu".into(), 4),
                ("gres/gpu".into(), 2),
                ("gres/gpu:a100".into(), 2),
                ("mem".into(), 2560)
            ]
        );
        for _ in 0..2 {
            assert!(p.parse(b"3|a|u|COMPLETED|10|cpu=4,cpu=4|").is_err());
        }
    }

    #[test]
    fn steps_are_not_billed_and_array_and_het_ids_are() {
        let mut p = exact();
        assert_eq!(
            p.parse(b"1.batch|hpc_alloc2||COMPLETED|2|cpu=2,mem=200M,node=1|")
                .unwrap(),
            Parsed::Step
        );
        for id in ["5_1", "123_[1-5%2]", "123+0"] {
            let line = format!("{id}|a|u|COMPLETED|10|cpu=1|cpu=1");
            assert!(
                matches!(p.parse(line.as_bytes()).unwrap(), Parsed::Allocation(_)),
                "{id}"
            );
        }
    }

    #[test]
    fn never_started_jobs_count_zero_but_unknown_usage_is_an_error() {
        let mut p = exact();
        // Cancelled while pending (fixture d3, job 11): empty AllocTRES, 0 s.
        let Parsed::Allocation(a) = p
            .parse(b"11|hpc_alloc2|hpcuser3|CANCELLED by 0|0||billing=2,cpu=2,mem=50M,node=1")
            .unwrap()
        else {
            panic!()
        };
        assert_eq!((a.seconds, a.tres.len()), (0, 0));
        // Unknown elapsed with no allocation: never started.
        assert!(p.parse(b"12|a|u|PENDING|Unknown||cpu=1").is_ok());
        let e = p.parse(b"13|a|u|RUNNING|100||cpu=1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "AllocTRES is empty but the job ran 100 s: its usage is unknown"
        );
        let e = p.parse(b"14|a|u|RUNNING||cpu=1|cpu=1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no elapsed time (\"\") for a job with AllocTRES"
        );
    }

    #[test]
    fn states_are_the_ones_sacct_prints() {
        for good in [
            "COMPLETED",
            "CANCELLED",
            "CANCELLED by 0",
            "CANCELLED by 4294967294",
            "BOOT_FAIL",
            "OUT_OF_MEMORY",
            "REQUEUED",
            "TIMEOUT",
        ] {
            assert!(is_state(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "",
            "completed",
            "CANCELLED+",
            "CANCELLED by",
            "CANCELLED by ",
            "CANCELLED by x",
            "CANCELLED by 12345678901",
            "COMPLETED by 0",
            "COMPLETED ",
            "CD",
            "hpcuser1",
        ] {
            assert!(!is_state(bad.as_bytes()), "{bad:?}");
        }
        let mut p = exact();
        // User and State swapped: COMPLETED is a valid name, hpcuser1 no state.
        let e = p
            .parse(b"1|hpc_a|COMPLETED|hpcuser1|10|cpu=1|cpu=1")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "State \"hpcuser1\" is not a job state sacct prints (COMPLETED, FAILED, \
             CANCELLED by <uid>, ...)"
        );
    }

    #[test]
    fn account_and_user_names_are_plain() {
        for b in b"azAZ09._@$-" {
            assert!(is_name_byte(*b), "{}", char::from(*b));
        }
        for b in b" \t\0\x7f+()|,=*\"'\\/;:!#%&<>?[]^`{}~" {
            assert!(!is_name_byte(*b), "{b:#x}");
        }
        assert!(!is_name_byte(0xc3));
        let mut p = exact();
        assert!(p.parse(b"1|hpc.a-1|user@x$|COMPLETED|10|cpu=1|").is_ok());
        let e = p.parse(b"1|hpc a|u|COMPLETED|10|cpu=1|").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Account \"hpc a\" holds a space, but names are made of A-Z a-z 0-9 . _ @ $ -"
        );
        let e = p.parse(b"1|hpc_a|u\0x|COMPLETED|10|cpu=1|").unwrap_err();
        assert_eq!(
            e.to_string(),
            "User \"u\\0x\" holds a NUL byte, but names are made of A-Z a-z 0-9 . _ @ $ -"
        );
        let e = p.parse(b"1|hpc_a|a+b|COMPLETED|10|cpu=1|").unwrap_err();
        assert!(e.to_string().contains("holds '+'"), "{e}");
        // Steps keep their empty user.
        assert_eq!(
            p.parse(b"1.batch|hpc_a||COMPLETED|10|cpu=1|").unwrap(),
            Parsed::Step
        );
    }

    #[test]
    fn elapsed_is_bounded_by_the_period() {
        let mut p = exact();
        p.set_window(Some(2_678_400));
        assert!(p.parse(b"1|a|u|COMPLETED|2678400|cpu=1|").is_ok());
        let e = p.parse(b"1|a|u|COMPLETED|2678401|cpu=1|").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ElapsedRaw \"2678401\" is 2678401 s, longer than the period (2678400 s)"
        );
        assert!(
            p.parse(b"1|a|u|COMPLETED|9999999999999999999|cpu=1|")
                .is_err()
        );
        let mut p = LineParser::new(
            Layout::from_format("Account,ReqTRES,Elapsed,User", Compat::Reference).unwrap(),
            AccountFilter::All,
        );
        p.set_window(Some(2_678_400));
        assert!(p.parse(b"a|cpu=1|31-00:00:00|u").is_ok());
        let e = p.parse(b"a|cpu=1|31-00:00:01|u").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Elapsed \"31-00:00:01\" is 2678401 s, longer than the period (2678400 s)"
        );
    }

    #[test]
    fn field_count_and_parsable_trailing_bar() {
        let mut p = LineParser::new(
            Layout::from_format("Account,ReqTRES,Elapsed,User", Compat::Reference).unwrap(),
            AccountFilter::All,
        );
        assert!(matches!(
            p.parse(b"hpc_alloc2|billing=2,cpu=2,mem=200M,node=1|00:00:02|hpcuser1|")
                .unwrap(),
            Parsed::Allocation(Allocation { seconds: 2, .. })
        ));
        let e = p.parse(b"hpc_alloc2|cpu=2|00:00:02").unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected 4 |-separated fields (Account|ReqTRES|Elapsed|User), found 3"
        );
        assert!(p.parse(b"a|cpu=1|00:00:01|u|x").is_err());
    }

    #[test]
    fn prefix_filter_skips_other_accounts_before_reading_them() {
        let layout = Layout::from_format(EXACT_FORMAT, Compat::Exact).unwrap();
        let mut p = LineParser::new(layout.clone(), AccountFilter::Prefix("HPC_".into()));
        // Another account's garbage TRES does not matter.
        assert_eq!(
            p.parse(b"1|other|u|COMPLETED|5|cpu=lots|").unwrap(),
            Parsed::OtherAccount
        );
        // Case-insensitive: HPC_x is ours.
        assert!(matches!(
            p.parse(b"2|HPC_x|u|COMPLETED|5|cpu=1|").unwrap(),
            Parsed::Allocation(_)
        ));
        assert!(p.parse(b"3|hpc_x|u|COMPLETED|5|cpu=lots|").is_err());
        let mut p = LineParser::new(layout, AccountFilter::List(vec!["Proj_A".into()]));
        assert_eq!(
            p.parse(b"1|proj_ab|u|COMPLETED|5|cpu=1|").unwrap(),
            Parsed::OtherAccount
        );
        assert!(matches!(
            p.parse(b"1|PROJ_A|u|COMPLETED|5|cpu=1|").unwrap(),
            Parsed::Allocation(_)
        ));
    }

    #[test]
    fn layouts_need_their_columns() {
        let e = Layout::from_format("Account,ReqTRES,Elapsed,User", Compat::Exact).unwrap_err();
        assert!(e.0.contains("lack AllocTRES"), "{e}");
        let e = Layout::from_format("Account,AllocTRES,ElapsedRaw", Compat::Exact).unwrap_err();
        assert!(e.0.contains("lack User"), "{e}");
        // Case-insensitive names and %width suffixes, as sacct --format accepts them.
        assert!(
            Layout::from_format("jobid%20,account,user,elapsedraw,alloctres", Compat::Exact)
                .is_ok()
        );
    }

    #[test]
    fn header_and_unsupported_styles_are_recognised() {
        assert!(is_header(b"Account|ReqTRES|Elapsed|User"));
        assert!(is_header(b"Account|ReqTRES|Elapsed|User|"));
        assert!(is_header(
            b"JobID|Account|User|State|Start|End|Elapsed|ElapsedRaw|AllocTRES|ReqTRES|NNodes|NCPUS"
        ));
        assert!(!is_header(b"hpc_alloc2|billing=2|00:00:02|hpcuser1"));
        assert!(!is_header(b"1|physics|alice|COMPLETED|5|cpu=1|"));
        assert!(unsupported_format(b"{").unwrap().contains("JSON"));
        assert!(
            unsupported_format(b"JobID           Account      User")
                .unwrap()
                .contains("fixed-width")
        );
        assert!(unsupported_format(b"Account|User").is_none());
    }
}

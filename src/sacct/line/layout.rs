//! Which column is which: the `--format` lists we request, a header line, and output styles
//! we cannot read.

use std::fmt;

use crate::config::Compat;

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
    pub(super) names: Vec<String>,
    pub(super) job_id: Option<usize>,
    pub(super) account: usize,
    pub(super) user: usize,
    pub(super) state: Option<usize>,
    pub(super) tres: usize,
    pub(super) tres_column: &'static str,
    pub(super) elapsed: usize,
    pub(super) elapsed_raw: bool,
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

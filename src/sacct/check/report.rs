//! The findings of `--check` and how they are shown: one line each for people, one JSON
//! object for machines, and the exit status they add up to.

use serde::Serialize;

use crate::cli::exit;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it is fine.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do about it, when not fine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Exit status this failure maps to (69 tool missing or failing, 78 configuration).
    #[serde(skip)]
    pub(super) code: u8,
}

/// All findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// True when every check passed.
    pub ok: bool,
    /// The findings, in the order they were made.
    pub checks: Vec<Check>,
}

impl CheckReport {
    /// Exit status: 0 when all passed, else 69 if a tool is missing or failing, else 78.
    pub fn exit_code(&self) -> u8 {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.code)
            .min_by_key(|&c| if c == exit::UNAVAILABLE { 0 } else { 1 })
            .unwrap_or(exit::OK)
    }

    /// One line per finding, for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            s.push_str(&format!(
                "[{}] {}: {}\n",
                if c.ok { " ok " } else { "FAIL" },
                c.name,
                c.detail
            ));
            if let Some(fix) = &c.fix {
                s.push_str(&format!("       fix: {fix}\n"));
            }
        }
        s.push_str(if self.ok {
            "all checks passed\n"
        } else {
            "some checks failed\n"
        });
        s
    }

    /// One JSON object, for machines.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"ok\":false}".into())
    }
}

pub(super) fn finding(
    name: &str,
    ok: bool,
    detail: String,
    fix: Option<String>,
    code: u8,
) -> Check {
    Check {
        name: name.into(),
        ok,
        detail,
        fix,
        code,
    }
}

pub(super) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

pub(super) fn list(names: &[String], max: usize) -> String {
    let mut s = names
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        s.push_str(&format!(", ... ({} more)", names.len() - max));
    }
    s
}

//! The crate's layering and file sizes, read from the source files themselves: the Waldur
//! client (src/waldur/) names none of the application's modules, the binaries stay thin, and
//! no source file grows past what one can read.

use std::path::{Path, PathBuf};

/// Crate-level names a file under src/waldur/ may refer to: the client itself, the plumbing
/// it shares with every tool, and `decimal`, because the client's payloads carry amounts
/// (`decimal::Amount`, the two places Waldur stores) and must read and write them exactly as
/// the application does.
const CLIENT_MAY_USE: &[&str] = &["waldur", "config", "cli", "decimal", "hash", "json_line"];

/// The logging macros `cli` exports at the crate root (`crate::warn!`, `use crate::{debug}`).
const LOG_MACROS: &[&str] = &["debug", "info", "warn", "error"];

/// What the client must never know: the application and the records it works on. It gets
/// plain values (strings, dates) instead.
const CLIENT_MUST_NOT_USE: &[&str] = &["push", "records", "period", "convert"];

/// Lines a file under src/bin/ must stay below: a `main` and little else.
const BIN_LINES: usize = 150;

/// Lines no .rs file under src/ may pass, its unit tests included.
const FILE_LINES: usize = 600;

/// A source file: its path relative to the crate root (with `/`) and its text.
struct Source {
    path: String,
    text: String,
}

fn sources_under(dir: &str) -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut stack = vec![root.join(dir)];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap_or_else(|e| panic!("{}: {e}", at.display())) {
            let path: PathBuf = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let relative = path.strip_prefix(root).expect("under the crate root");
                let path = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push(Source { path, text });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(!found.is_empty(), "no .rs files under {dir}");
    found
}

/// The module path of a file below src/, without `crate`: `src/waldur/http/mod.rs` is
/// `["waldur", "http"]`, `src/waldur/api.rs` is `["waldur", "api"]`.
fn module_path(path: &str) -> Vec<String> {
    let inner = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = inner.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `word` stands at `at` as a whole word.
fn word_at(text: &[u8], at: usize, word: &str) -> bool {
    text[at..].starts_with(word.as_bytes())
        && (at == 0 || !is_ident_byte(text[at - 1]))
        && text.get(at + word.len()).is_none_or(|b| !is_ident_byte(*b))
}

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while at < text.len() && text[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// After `::` at `at`: the position past it, if there is one.
fn after_colons(text: &[u8], at: usize) -> Option<usize> {
    let at = skip_space(text, at);
    text[at..]
        .starts_with(b"::")
        .then(|| skip_space(text, at + 2))
}

/// The names a path continues with at `at`: one identifier, or the first identifier of each
/// item of a `{...}` group. Each with its byte offset.
fn next_names(text: &[u8], at: usize) -> Vec<(usize, String)> {
    let ident = |from: usize| {
        let from = skip_space(text, from);
        let mut end = from;
        while end < text.len() && is_ident_byte(text[end]) {
            end += 1;
        }
        (from, String::from_utf8_lossy(&text[from..end]).into_owned())
    };
    if text.get(at) != Some(&b'{') {
        return vec![ident(at)];
    }
    let mut names = vec![ident(at + 1)];
    let mut depth = 0;
    for (i, &b) in text.iter().enumerate().skip(at) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => names.push(ident(i + 1)),
            _ => {}
        }
    }
    names.retain(|(_, n)| !n.is_empty() && n != "self");
    names
}

/// Every crate-level name a file refers to, with its line: `crate::x`, `crate::{x, y}`, and
/// `super::...::x` where the `super`s climb to the crate root. Plain `//` comment lines are
/// left out; doc comments count (their links are references too). A `super` inside an
/// inline module (`mod tests { ... }`) is counted from the file's module, which can only see a
/// name as crate-level too often, never too rarely.
fn crate_level_names(path: &str, text: &str) -> Vec<(usize, String)> {
    let code: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") && !t.starts_with("///") && !t.starts_with("//!") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let depth = module_path(path).len();
    let line_of = |offset: usize| 1 + bytes[..offset].iter().filter(|b| **b == b'\n').count();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if word_at(bytes, at, "crate") && (at == 0 || bytes[at - 1] != b'$') {
            if let Some(next) = after_colons(bytes, at + "crate".len()) {
                for (offset, name) in next_names(bytes, next) {
                    found.push((line_of(offset), name));
                }
            }
            at += "crate".len();
        } else if word_at(bytes, at, "super") && !preceded_by_colons(bytes, at) {
            let mut climbs = 1;
            let mut end = at + "super".len();
            let mut next = after_colons(bytes, end);
            while let Some(n) = next.filter(|n| word_at(bytes, *n, "super")) {
                climbs += 1;
                end = n + "super".len();
                next = after_colons(bytes, end);
            }
            if climbs >= depth {
                match next {
                    Some(n) if climbs == depth => {
                        for (offset, name) in next_names(bytes, n) {
                            found.push((line_of(offset), name));
                        }
                    }
                    _ => found.push((line_of(at), "<super past the crate root>".to_string())),
                }
            }
            at = end;
        } else {
            at += 1;
        }
    }
    found
}

fn preceded_by_colons(text: &[u8], at: usize) -> bool {
    let before = text[..at].trim_ascii_end();
    before.ends_with(b"::")
}

/// What is wrong with a crate-level name in a file of the client, if anything.
fn client_violation(name: &str) -> Option<String> {
    if CLIENT_MUST_NOT_USE.contains(&name) {
        return Some(format!(
            "refers to `crate::{name}`: the Waldur client must not know the application \
             ({}); move that code to src/push/ or pass plain values in",
            CLIENT_MUST_NOT_USE.join(", ")
        ));
    }
    if CLIENT_MAY_USE.contains(&name) || LOG_MACROS.contains(&name) {
        return None;
    }
    Some(format!(
        "refers to `crate::{name}`, which is none of what the Waldur client may use ({})",
        CLIENT_MAY_USE.join(", ")
    ))
}

#[test]
fn the_waldur_client_names_none_of_the_application() {
    let mut problems = Vec::new();
    for file in sources_under("src/waldur") {
        for (line, name) in crate_level_names(&file.path, &file.text) {
            if let Some(why) = client_violation(&name) {
                problems.push(format!("{}:{line}: {why}", file.path));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_scanner_sees_every_spelling_of_a_crate_path() {
    let text = "use crate::cli::exit;\n\
                use crate::{\n    config::Secret,\n    period::Period,\n};\n\
                // crate::records in a plain comment is not code\n\
                let m = crate::convert::x();\n\
                use super::super::super::records::ResultRecord;\n\
                use super::api::path;\n\
                /// [`crate::push`]\n\
                macro_rules! m { () => { $crate::cli::exit } }\n";
    let names = crate_level_names("src/waldur/http/retry.rs", text);
    assert_eq!(
        names,
        [
            (1, "cli".to_string()),
            (3, "config".to_string()),
            (4, "period".to_string()),
            (7, "convert".to_string()),
            (8, "records".to_string()),
            (10, "push".to_string()),
        ]
    );
    // From src/waldur/api.rs, `super` is the client and `super::super` the crate root.
    assert!(crate_level_names("src/waldur/api.rs", "use super::error;").is_empty());
    assert_eq!(
        crate_level_names("src/waldur/api.rs", "use super::super::period;"),
        [(1, "period".to_string())]
    );
    assert_eq!(
        crate_level_names("src/waldur/mod.rs", "use super::{cli, records};"),
        [(1, "cli".to_string()), (1, "records".to_string())]
    );
    assert!(client_violation("period").is_some());
    assert!(client_violation("metrics").is_some());
    assert!(client_violation("warn").is_none());
    assert!(client_violation("json_line").is_none());
}

#[test]
fn binaries_stay_thin() {
    let mut problems = Vec::new();
    for file in sources_under("src/bin") {
        let lines = file.text.lines().count();
        if lines >= BIN_LINES {
            problems.push(format!(
                "{}:{BIN_LINES}: {lines} lines; a binary must stay under {BIN_LINES} (its \
                 flags and flow belong in src/tool/)",
                file.path
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn no_source_file_is_over_the_size_limit() {
    let mut problems = Vec::new();
    for file in sources_under("src") {
        let lines = file.text.lines().count();
        if lines > FILE_LINES {
            problems.push(format!(
                "{}:{}: {lines} lines, more than {FILE_LINES}; split it along a seam (unit \
                 tests may go to a sibling file)",
                file.path,
                FILE_LINES + 1
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

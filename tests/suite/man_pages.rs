//! The man pages in `man/` match the programs: every long option a binary's or wrapper's
//! `--help` lists is documented in its page, every option a page documents exists, every page
//! renders without warnings, cross references between our pages resolve, and the exit status
//! tables of the README and waldur-push(1) list exactly the codes of `cli::exit`.
//!
//! Needs `groff` and `man` (Debian: groff-base, man-db; `.ci/ops-checks` installs them).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A program and its man page.
struct Documented {
    /// How to run it.
    command: Vec<String>,
    /// Its page under `man/`.
    page: &'static str,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn programs() -> Vec<Documented> {
    let bin = |exe: &str| vec![exe.to_string()];
    let script = |name: &str| {
        vec![
            "bash".to_string(),
            root().join("shell").join(name).display().to_string(),
        ]
    };
    vec![
        Documented {
            command: bin(env!("CARGO_BIN_EXE_month-split")),
            page: "month-split.1",
        },
        Documented {
            command: bin(env!("CARGO_BIN_EXE_slurm-usage")),
            page: "slurm-usage.1",
        },
        Documented {
            command: bin(env!("CARGO_BIN_EXE_usage-convert")),
            page: "usage-convert.1",
        },
        Documented {
            command: bin(env!("CARGO_BIN_EXE_waldur-push")),
            page: "waldur-push.1",
        },
        Documented {
            command: script("waldur-usage-report"),
            page: "waldur-usage-report.8",
        },
        Documented {
            command: script("waldur-usage-backfill"),
            page: "waldur-usage-backfill.8",
        },
        Documented {
            command: script("waldur-usage-diagnose"),
            page: "waldur-usage-diagnose.8",
        },
        Documented {
            command: script("waldur-usage-audit"),
            page: "waldur-usage-audit.8",
        },
    ]
}

fn all_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("man"))
        .expect("man/ exists")
        .map(|e| e.expect("readable man/ entry").path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["1", "5", "8"].contains(&e))
        })
        .collect();
    pages.sort();
    pages
}

/// The page's roff source with `\-` turned into `-`, so options read as typed.
fn page_text(page: &Path) -> String {
    std::fs::read_to_string(page)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()))
        .replace("\\-", "-")
}

/// Every `--long-option` in `text`.
fn long_options(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i + 2 < bytes.len() {
        let starts = bytes[i] == b'-'
            && bytes[i + 1] == b'-'
            && bytes[i + 2].is_ascii_lowercase()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-'));
        if starts {
            let mut j = i + 2;
            while j < bytes.len()
                && (bytes[j].is_ascii_lowercase() || bytes[j].is_ascii_digit() || bytes[j] == b'-')
            {
                j += 1;
            }
            found.insert(text[i..j].trim_end_matches('-').to_string());
            i = j;
        } else {
            i += 1;
        }
    }
    found
}

/// The long options a page documents in its OPTIONS section: the tag lines after `.TP`.
fn documented_options(roff: &str) -> BTreeSet<String> {
    let mut in_options = false;
    let mut after_tp = false;
    let mut found = BTreeSet::new();
    for line in roff.lines() {
        if let Some(heading) = line.strip_prefix(".SH ") {
            in_options = heading.trim() == "OPTIONS";
            continue;
        }
        if !in_options {
            continue;
        }
        if line.starts_with(".TP") {
            after_tp = true;
            continue;
        }
        if after_tp {
            found.extend(long_options(line));
            after_tp = false;
        }
    }
    found
}

/// The "Options:" section of a `--help` text: from that heading to the next line that is not
/// indented (the next heading, e.g. "Examples:"), so options only mentioned in examples are
/// not counted.
fn options_section(help: &str) -> String {
    let mut lines = help.lines().skip_while(|l| l.trim() != "Options:");
    assert!(
        lines.next().is_some(),
        "--help has no Options: section:\n{help}"
    );
    lines
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

fn help_of(program: &Documented) -> String {
    let output = Command::new(&program.command[0])
        .args(&program.command[1..])
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", program.command));
    assert!(
        output.status.success(),
        "{:?} --help exited {:?}: {}",
        program.command,
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("--help is UTF-8")
}

#[test]
fn every_option_in_help_is_in_the_man_page_and_back() {
    let mut problems = Vec::new();
    for program in programs() {
        let help = help_of(&program);
        let help_options = long_options(&options_section(&help));
        assert!(
            help_options.contains("--version") && help_options.len() >= 3,
            "{}: --help lists too few options to be real: {help_options:?}",
            program.page
        );
        let page = root().join("man").join(program.page);
        let text = page_text(&page);
        let in_page = long_options(&text);
        for option in &help_options {
            if !in_page.contains(option) {
                problems.push(format!(
                    "{}: {option} is in --help but not in the page",
                    program.page
                ));
            }
        }
        for option in documented_options(&text) {
            if !help_options.contains(&option) {
                problems.push(format!(
                    "{}: OPTIONS documents {option}, which --help does not list",
                    program.page
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn option_extraction_finds_long_options_only() {
    // The helpers above decide what the real test compares, so check them on known text:
    // `-c` is short, `--log-level` and `--dry-run` are long, `a--b` is not an option, and the
    // trailing dash of `--end-` (a line-broken word) is dropped.
    let found = long_options("  -c, --config PATH\n  --log-level L  --dry-run, a--b --end-");
    let expected: BTreeSet<String> = ["--config", "--log-level", "--dry-run", "--end"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
    let roff = ".SH OPTIONS\n.TP\n.BR -c \", \" --config \" PATH\"\nUse --other here.\n\
                .TP\n.B --dry-run\nText.\n.SH EXAMPLES\n.TP\n.B --not-an-option\n";
    let help = "Usage: x [--all]\n\nOptions:\n  --config  the config\n\n  --dry-run  send nothing\n\
                Examples:\n  x --example\n";
    assert_eq!(
        options_section(help),
        "  --config  the config\n\n  --dry-run  send nothing"
    );
    let documented = documented_options(roff);
    let expected: BTreeSet<String> = ["--config", "--dry-run"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(documented, expected);
}

#[test]
fn every_program_has_a_page_and_every_page_renders_without_warnings() {
    let pages = all_pages();
    let names: BTreeSet<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for program in programs() {
        assert!(
            names.contains(program.page),
            "man/{} is missing",
            program.page
        );
    }
    for page in ["waldur-usage-config.5", "waldur-usage-records.5"] {
        assert!(names.contains(page), "man/{page} is missing");
    }
    assert_eq!(pages.len(), 10, "expected 10 pages, found {names:?}");

    let mut problems = Vec::new();
    for page in &pages {
        // groff's own check: all warnings on, no output.
        let groff = Command::new("groff")
            .args(["-ww", "-z", "-man"])
            .arg(page)
            .output()
            .expect("groff is installed (Debian: groff-base; .ci/ops-checks installs it)");
        let stderr = String::from_utf8_lossy(&groff.stderr);
        if !groff.status.success() || !stderr.trim().is_empty() {
            problems.push(format!("groff -ww on {}: {stderr}", page.display()));
        }
        // What an admin runs: man -l, with man's warnings on.
        let man = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(page)
            .env("MANWIDTH", "80")
            .env("PAGER", "cat")
            .output()
            .expect("man is installed (Debian: man-db; .ci/ops-checks installs it)");
        let stderr = String::from_utf8_lossy(&man.stderr);
        let stdout = String::from_utf8_lossy(&man.stdout);
        if !man.status.success() || !stderr.trim().is_empty() {
            problems.push(format!("man -l {}: {stderr}", page.display()));
        }
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"] {
            if !stdout.lines().any(|l| l.trim() == section) {
                problems.push(format!(
                    "{}: rendered page has no {section} section",
                    page.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn references_to_our_pages_resolve() {
    let pages = all_pages();
    let names: BTreeSet<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let ours = [
        "month-split",
        "slurm-usage",
        "usage-convert",
        "waldur-push",
        "waldur-usage-",
    ];
    let mut problems = Vec::new();
    for page in &pages {
        let text = page_text(page);
        for line in text.lines() {
            // `.BR name (N)` is how the pages cite a page.
            let Some(rest) = line.strip_prefix(".BR ") else {
                continue;
            };
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(section)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(number) = section.strip_prefix('(').and_then(|s| s.split(')').next()) else {
                continue;
            };
            let is_ours = ours
                .iter()
                .any(|o| name == o.trim_end_matches('-') || name.starts_with(o));
            if is_ours && !names.contains(&format!("{name}.{number}")) {
                problems.push(format!(
                    "{} cites {name}({number}), which is not in man/",
                    page.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The rows of the README's `| code | meaning |` table (in its Troubleshooting section).
fn readme_exit_codes() -> Vec<(u8, String)> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("\n## Troubleshooting\n")
        .expect("README has a Troubleshooting section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut lines = section
        .lines()
        .skip_while(|l| l.trim() != "| code | meaning |");
    assert!(
        lines.next().is_some(),
        "Troubleshooting has no `| code | meaning |` table"
    );
    assert_eq!(lines.next().map(str::trim), Some("|---|---|"));
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').collect();
            assert_eq!(cells.len(), 2, "row {l:?}");
            let code = cells[0]
                .trim()
                .parse::<u8>()
                .unwrap_or_else(|e| panic!("row {l:?}: {e}"));
            (code, cells[1].trim().to_string())
        })
        .collect()
}

/// `NAME = value` of every constant in `src/cli.rs`'s `exit` module, read from the source.
fn exit_constants_in_source() -> Vec<(String, u8)> {
    let source = std::fs::read_to_string(root().join("src/cli.rs")).unwrap();
    let start = source
        .find("pub mod exit {")
        .expect("cli.rs has `pub mod exit`");
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").expect("the exit module ends")];
    body.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": u8 = ")?;
            Some((name.to_string(), value.trim_end_matches(';').parse().ok()?))
        })
        .collect()
}

/// The codes of `.B N` entries in a page's EXIT STATUS section, in order.
fn man_exit_codes(page: &str) -> Vec<u8> {
    let roff = std::fs::read_to_string(root().join("man").join(page)).unwrap();
    let start = roff
        .find("\n.SH EXIT STATUS\n")
        .unwrap_or_else(|| panic!("{page} has no EXIT STATUS section"));
    let section = &roff[start + 1..];
    let section = &section[..section[4..].find("\n.SH ").map_or(section.len(), |i| i + 4)];
    let lines: Vec<&str> = section.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .filter_map(|w| w[1].strip_prefix(".B ")?.trim().parse().ok())
        .collect()
}

#[test]
fn the_exit_status_tables_match_the_cli_exit_constants() {
    use waldur_usage::cli::exit;
    // cli::exit::ALL lists every constant of the module, as the source spells them.
    let in_source = exit_constants_in_source();
    let all: Vec<(String, u8)> = exit::ALL.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(
        in_source, all,
        "cli::exit::ALL is not the module's constants"
    );
    assert_eq!(exit::HELD, 3);

    let table = readme_exit_codes();
    let codes: Vec<u8> = table.iter().map(|(c, _)| *c).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(codes, sorted, "README codes are not unique and ascending");
    for (code, meaning) in &table {
        assert!(
            exit::ALL.iter().any(|(_, c)| c == code),
            "README code {code} ({meaning}) is no constant in cli::exit"
        );
        assert!(!meaning.is_empty(), "README code {code} has no meaning");
    }
    for (name, code) in exit::ALL {
        assert!(
            codes.contains(&code),
            "cli::exit::{name} = {code} is missing from the README table"
        );
    }
    assert_eq!(
        man_exit_codes("waldur-push.1"),
        codes,
        "man/waldur-push.1 EXIT STATUS lists other codes than the README table"
    );
}

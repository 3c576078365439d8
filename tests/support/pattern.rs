//! The OpenAPI `pattern` keyword: a small regular-expression matcher for what the Waldur schema
//! uses (anchors, `\d` `\w` `\s`, `[...]` classes with ranges and escapes, `?` `*` `+` `{m,n}`,
//! groups and `|`), with the meaning of an unanchored search as in ECMA-262 and the regex crate.
//!
//! It reads the pattern into a tree and follows the set of input positions each part can end
//! at, so no input makes it backtrack. Syntax outside that list (back-references, look-around,
//! `\b`, Unicode classes) is refused with the reason, for the caller to say it is not checked.

use std::collections::BTreeSet;

/// A pattern read and ready to match.
#[derive(Debug, Clone)]
pub struct Pattern {
    alternatives: Vec<Vec<Piece>>,
}

/// One atom and how many times it may repeat.
#[derive(Debug, Clone)]
struct Piece {
    atom: Atom,
    min: usize,
    max: Option<usize>,
}

#[derive(Debug, Clone)]
enum Atom {
    /// `^`: the start of the input.
    Start,
    /// `$`: the end of the input.
    End,
    /// Any one character of the class (or not of it, when negated).
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `(...)` or `(?:...)`.
    Group(Vec<Vec<Piece>>),
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
const SPACE: &[(char, char)] = &[('\t', '\r'), (' ', ' ')];

impl Pattern {
    /// Reads `pattern`; an `Err` says which part is not supported.
    pub fn new(pattern: &str) -> Result<Pattern, String> {
        let mut reader = Reader {
            chars: pattern.chars().collect(),
            at: 0,
        };
        let alternatives = reader.alternatives()?;
        if reader.at < reader.chars.len() {
            return Err(format!("unbalanced ')' at {}", reader.at));
        }
        Ok(Pattern { alternatives })
    }

    /// Whether the pattern matches somewhere in `s` (anchors make that the whole of it).
    pub fn is_match(&self, s: &str) -> bool {
        let input: Vec<char> = s.chars().collect();
        let starts: BTreeSet<usize> = (0..=input.len()).collect();
        !ends_of_alternatives(&self.alternatives, &input, &starts).is_empty()
    }
}

/// The positions where one of the alternatives, begun at one of `starts`, can end.
fn ends_of_alternatives(
    alternatives: &[Vec<Piece>],
    input: &[char],
    starts: &BTreeSet<usize>,
) -> BTreeSet<usize> {
    let mut ends = BTreeSet::new();
    for pieces in alternatives {
        let mut at = starts.clone();
        for piece in pieces {
            at = ends_of_piece(piece, input, &at);
            if at.is_empty() {
                break;
            }
        }
        ends.extend(at);
    }
    ends
}

/// The positions where `piece`, repeated between its bounds, can end.
fn ends_of_piece(piece: &Piece, input: &[char], starts: &BTreeSet<usize>) -> BTreeSet<usize> {
    let mut current = starts.clone();
    for _ in 0..piece.min {
        current = ends_of_atom(&piece.atom, input, &current);
    }
    let mut ends = current.clone();
    let mut count = piece.min;
    while !current.is_empty() && piece.max.is_none_or(|max| count < max) {
        current = ends_of_atom(&piece.atom, input, &current);
        current.retain(|p| !ends.contains(p));
        ends.extend(current.iter().copied());
        count += 1;
    }
    ends
}

/// The positions where one `atom` begun at one of `starts` can end.
fn ends_of_atom(atom: &Atom, input: &[char], starts: &BTreeSet<usize>) -> BTreeSet<usize> {
    match atom {
        Atom::Start => starts.iter().copied().filter(|&p| p == 0).collect(),
        Atom::End => starts
            .iter()
            .copied()
            .filter(|&p| p == input.len())
            .collect(),
        Atom::Class { negated, ranges } => starts
            .iter()
            .copied()
            .filter(|&p| {
                input.get(p).is_some_and(|&c| {
                    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)) != *negated
                })
            })
            .map(|p| p + 1)
            .collect(),
        Atom::Group(alternatives) => ends_of_alternatives(alternatives, input, starts),
    }
}

/// Reads a pattern from left to right.
struct Reader {
    chars: Vec<char>,
    at: usize,
}

impl Reader {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or("the pattern ends too early")?;
        self.at += 1;
        Ok(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.at += 1;
        }
        found
    }

    /// `a|b|...` up to the end or a `)`, which is left for the caller.
    fn alternatives(&mut self) -> Result<Vec<Vec<Piece>>, String> {
        let mut alternatives = vec![self.sequence()?];
        while self.eat('|') {
            alternatives.push(self.sequence()?);
        }
        Ok(alternatives)
    }

    fn sequence(&mut self) -> Result<Vec<Piece>, String> {
        let mut pieces = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let (min, max) = self.quantifier()?;
            if matches!(atom, Atom::Start | Atom::End) && (min, max) != (1, Some(1)) {
                return Err("a repeated anchor".into());
            }
            pieces.push(Piece { atom, min, max });
        }
        Ok(pieces)
    }

    fn atom(&mut self) -> Result<Atom, String> {
        let at = self.at;
        Ok(match self.next()? {
            '^' => Atom::Start,
            '$' => Atom::End,
            '.' => Atom::Class {
                negated: true,
                ranges: vec![('\n', '\n')],
            },
            '[' => self.class()?,
            '(' => {
                if self.eat('?') && !self.eat(':') {
                    return Err(format!("the group syntax at {at} (only (...) and (?:...))"));
                }
                let alternatives = self.alternatives()?;
                if !self.eat(')') {
                    return Err(format!("the group at {at} is not closed"));
                }
                Atom::Group(alternatives)
            }
            '\\' => self.escape(false)?,
            c @ ('*' | '+' | '?' | '{' | ']' | '}') => {
                return Err(format!(
                    "{c:?} at {at} has nothing to repeat or is unbalanced"
                ));
            }
            c => literal(c),
        })
    }

    /// After a `\`: a class escape or an escaped character. `\b`, back-references and the rest
    /// of the letters and digits are refused.
    fn escape(&mut self, in_class: bool) -> Result<Atom, String> {
        let at = self.at - 1;
        let c = self.next()?;
        let class = |negated: bool, ranges: &[(char, char)]| Atom::Class {
            negated,
            ranges: ranges.to_vec(),
        };
        Ok(match c {
            'd' => class(false, DIGIT),
            'D' if !in_class => class(true, DIGIT),
            'w' => class(false, WORD),
            'W' if !in_class => class(true, WORD),
            's' => class(false, SPACE),
            'S' if !in_class => class(true, SPACE),
            'n' => literal('\n'),
            't' => literal('\t'),
            'r' => literal('\r'),
            c if c.is_ascii_alphanumeric() => {
                return Err(format!("the escape \\{c} at {at}"));
            }
            c => literal(c),
        })
    }

    /// After a `[`: the members up to `]`, a leading `^` negating them.
    fn class(&mut self) -> Result<Atom, String> {
        let at = self.at - 1;
        let negated = self.eat('^');
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self
                .next()
                .map_err(|_| format!("the class at {at} is not closed"))?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let low = match c {
                '\\' => match self.escape(true)? {
                    Atom::Class { ranges: r, .. } if r.len() == 1 && r[0].0 == r[0].1 => r[0].0,
                    Atom::Class { ranges: r, .. } => {
                        ranges.extend(r);
                        continue;
                    }
                    _ => unreachable!("an escape is a class"),
                },
                '[' => return Err(format!("a nested class at {}", self.at - 1)),
                c => c,
            };
            // `a-z`, unless the `-` is the last member.
            if self.peek() == Some('-') && self.chars.get(self.at + 1) != Some(&']') {
                self.at += 1;
                let high = match self.next()? {
                    '\\' => match self.escape(true)? {
                        Atom::Class { ranges: r, .. } if r.len() == 1 && r[0].0 == r[0].1 => r[0].0,
                        _ => return Err(format!("a class escape ending a range in {at}")),
                    },
                    c => c,
                };
                if high < low {
                    return Err(format!("the range {low}-{high} in the class at {at}"));
                }
                ranges.push((low, high));
            } else {
                ranges.push((low, low));
            }
        }
        Ok(Atom::Class { negated, ranges })
    }

    /// `?`, `*`, `+`, `{m}`, `{m,}` or `{m,n}` (a lazy `?` after it changes nothing for a
    /// yes-or-no match); none is once.
    fn quantifier(&mut self) -> Result<(usize, Option<usize>), String> {
        let bounds = match self.peek() {
            Some('?') => (0, Some(1)),
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('{') => {
                self.at += 1;
                let min = self.number()?.ok_or("a '{' without a count")?;
                let max = if self.eat(',') {
                    self.number()?
                } else {
                    Some(min)
                };
                if !self.eat('}') {
                    return Err("a '{' repeat is not closed".into());
                }
                if max.is_some_and(|max| max < min) {
                    return Err(format!("the repeat {{{min},{max:?}}} counts down"));
                }
                self.eat('?');
                return Ok((min, max));
            }
            _ => return Ok((1, Some(1))),
        };
        self.at += 1;
        self.eat('?');
        Ok(bounds)
    }

    fn number(&mut self) -> Result<Option<usize>, String> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        if start == self.at {
            return Ok(None);
        }
        let digits: String = self.chars[start..self.at].iter().collect();
        digits
            .parse()
            .map(Some)
            .map_err(|e| format!("the count {digits}: {e}"))
    }
}

fn literal(c: char) -> Atom {
    Atom::Class {
        negated: false,
        ranges: vec![(c, c)],
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn check(pattern: &str, matching: &[&str], not_matching: &[&str]) {
        let p = Pattern::new(pattern).unwrap();
        for s in matching {
            assert!(p.is_match(s), "{pattern} should match {s:?}");
        }
        for s in not_matching {
            assert!(!p.is_match(s), "{pattern} should not match {s:?}");
        }
    }

    #[test]
    fn the_decimal_patterns_of_the_schema() {
        check(
            r"^-?\d{0,12}(?:\.\d{0,10})?$",
            &[
                "",
                "0",
                "-1",
                "12.5",
                "123456789012.0123456789",
                ".5",
                "-",
                "1.",
            ],
            &[
                "1234567890123",
                "1.01234567890",
                "1,5",
                "+1",
                "1.2.3",
                "1e5",
                " 1",
                "1\n",
            ],
        );
        check(
            r"^-?\d{0,18}(?:\.\d{0,2})?$",
            &["1.50", "-0.01", "123456789012345678.99", "7"],
            &["1.505", "1234567890123456789", "abc", "1.5x", "--1"],
        );
    }

    #[test]
    fn the_name_patterns_of_the_schema() {
        check(
            r"^[-a-zA-Z0-9_]+$",
            &["hpc_alloc1", "a-b", "-", "Z9"],
            &["", "a b", "a.b", "a/b", "é"],
        );
        check(
            r"^[a-zA-Z0-9_\-\/:]+$",
            &["cpu", "node-hours", "a/b:c_d", "/"],
            &["", "a b", "a.b", "a,b", "a\\b"],
        );
    }

    #[test]
    fn without_anchors_it_searches_and_alternatives_and_lazy_repeats_work() {
        check(r"\d+", &["abc1", "9"], &["abc", ""]);
        check(r"^(?:ab|cd)*x$", &["x", "abx", "cdabx"], &["ax", "abcx"]);
        check(r"^a{2,}?$", &["aa", "aaaa"], &["a", ""]);
        check(r"^[^a-c]\s\w.$", &["d _z", "9\t9\u{1}"], &["a _z", "d _\n"]);
    }

    #[test]
    fn syntax_outside_the_subset_is_refused_with_a_reason() {
        for pattern in [
            r"\bword", r"(?=a)", r"(a)\1", r"[a", r"(a", "a)", "*a", r"a{3,1}",
        ] {
            let err = Pattern::new(pattern).unwrap_err();
            assert!(!err.is_empty(), "{pattern}");
        }
    }
}

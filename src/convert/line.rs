//! One `tres` line read in place, in a single pass, borrowing its strings from the line.
//!
//! This is the fast path of usage-convert: [`parse`] accepts only lines it can read with
//! certainty, and each one it accepts is a line that [`Record::from_json`] reads as a `tres`
//! record with the same values. Everything else (an error, another kind, an unknown field, a
//! float, a number out of range, a key or field that comes twice, odd whitespace, an invalid
//! escape) gives `None`, and the caller hands the line to [`Record::from_json`], which decides
//! and words any error exactly as before.
//!
//! [`Record::from_json`]: crate::records::Record::from_json

use std::borrow::Cow;

/// A `tres` record borrowed from its line: strings without escapes are slices of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TresLine<'a> {
    /// `YYYY-MM` (not checked here).
    pub period: Cow<'a, str>,
    /// SLURM account.
    pub account: Cow<'a, str>,
    /// SLURM user; `None` for the account total.
    pub user: Option<Cow<'a, str>>,
    /// Number of job allocations counted.
    pub jobs: u64,
    /// TRES name -> TRES x seconds, in line order, every name distinct.
    pub tres_seconds: Vec<(Cow<'a, str>, u128)>,
}

/// Read `text` (one trimmed line) as a `tres` record, or `None` when the line is not one this
/// fast reader takes (see the module documentation).
pub fn parse(text: &str) -> Option<TresLine<'_>> {
    let mut c = Cursor {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let line = c.record()?;
    (c.pos == c.bytes.len()).then_some(line)
}

/// Store `value` in an empty `slot`; `None` when the slot is taken (a duplicate field).
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// A position in the line.
struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// The top-level object, the fields in any order.
    fn record(&mut self) -> Option<TresLine<'a>> {
        let (mut kind, mut period, mut account, mut user) = (None, None, None, None);
        let (mut jobs, mut tres_seconds) = (None, None);
        self.ws();
        self.eat(b'{')?;
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            match &*key {
                "kind" => set_once(&mut kind, self.string()?)?,
                "period" => set_once(&mut period, self.string()?)?,
                "account" => set_once(&mut account, self.string()?)?,
                "user" => set_once(&mut user, self.string_or_null()?)?,
                "jobs" => set_once(&mut jobs, u64::try_from(self.uint()?).ok()?)?,
                "tres_seconds" => set_once(&mut tres_seconds, self.seconds()?)?,
                _ => return None,
            }
            if self.end_of_member(b'}')? {
                break;
            }
        }
        self.ws();
        if kind? != "tres" {
            return None;
        }
        Some(TresLine {
            period: period?,
            account: account?,
            user: user?,
            jobs: jobs?,
            tres_seconds: tres_seconds?,
        })
    }

    /// The `tres_seconds` object: distinct names, non-negative integers.
    fn seconds(&mut self) -> Option<Vec<(Cow<'a, str>, u128)>> {
        let mut out: Vec<(Cow<'a, str>, u128)> = Vec::with_capacity(8);
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(out);
        }
        loop {
            self.ws();
            let name = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let value = self.uint()?;
            if out.iter().any(|(seen, _)| *seen == name) {
                return None;
            }
            out.push((name, value));
            if self.end_of_member(b'}')? {
                return Some(out);
            }
        }
    }

    /// After a member: `Some(false)` on `,`, `Some(true)` on `close`, `None` otherwise.
    fn end_of_member(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        match b {
            b',' => Some(false),
            b if b == close => Some(true),
            _ => None,
        }
    }

    /// Skip JSON whitespace (and only that: other white space is for the full parser).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Consume `b`, or `None`.
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.bytes.get(self.pos) == Some(&b)).then(|| self.pos += 1)
    }

    /// `null` (as `Some(None)`) or a string.
    fn string_or_null(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.bytes[self.pos..].starts_with(b"null") {
            self.pos += 4;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// An integer without sign, fraction, exponent or leading zero that fits in a `u128`. What
    /// follows it is checked by the caller (a `.` or `e` there is not a delimiter).
    fn uint(&mut self) -> Option<u128> {
        let start = self.pos;
        let digits = self.bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.pos += digits;
        let run = &self.bytes[start..self.pos];
        match run {
            [] => None,
            [b'0'] => Some(0),
            [b'0', ..] => None,
            _ if run.len() <= 19 => Some(u128::from(
                run.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
            )),
            _ => run.iter().try_fold(0u128, |n, &d| {
                n.checked_mul(10)?.checked_add(u128::from(d - b'0'))
            }),
        }
    }

    /// A JSON string, borrowed when it has no escapes. `None` on a control character or an
    /// escape the full parser might read differently or refuse (an unpaired surrogate).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.pos;
        let end = start + self.plain_run();
        self.pos = end;
        match *self.bytes.get(end)? {
            b'"' => {
                self.pos += 1;
                Some(Cow::Borrowed(&self.text[start..end]))
            }
            b'\\' => self.escaped(start).map(Cow::Owned),
            _ => None,
        }
    }

    /// Length of the run from here without `"`, `\` or a control character.
    fn plain_run(&self) -> usize {
        self.bytes[self.pos..]
            .iter()
            .take_while(|&&b| b != b'"' && b != b'\\' && b >= 0x20)
            .count()
    }

    /// The rest of a string whose first escape is at the cursor; it started at `start`.
    fn escaped(&mut self, start: usize) -> Option<String> {
        let mut out = String::with_capacity(self.pos - start + 8);
        out.push_str(&self.text[start..self.pos]);
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                b if b < 0x20 => return None,
                _ => {
                    let run = self.pos + self.plain_run();
                    out.push_str(&self.text[self.pos..run]);
                    self.pos = run;
                }
            }
        }
    }

    /// The character of the escape after a `\`.
    fn escape(&mut self) -> Option<char> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode(),
            _ => return None,
        })
    }

    /// `XXXX` after `\u`, with the low half of a surrogate pair when it is one.
    fn unicode(&mut self) -> Option<char> {
        let high = self.hex4()?;
        match high {
            0xD800..=0xDBFF => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return None;
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return None;
                }
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            }
            0xDC00..=0xDFFF => None,
            _ => char::from_u32(high),
        }
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        digits
            .iter()
            .try_fold(0u32, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"kind":"tres","period":"2024-03","account":"a","user":null,"jobs":1,"tres_seconds":{"cpu":3600000,"mem":7}}"#;

    #[test]
    fn reads_a_plain_line_borrowing_its_strings() {
        let t = parse(LINE).unwrap();
        assert!(matches!(t.account, Cow::Borrowed("a")));
        assert_eq!((t.period.as_ref(), t.user, t.jobs), ("2024-03", None, 1));
        assert_eq!(
            t.tres_seconds,
            [(Cow::Borrowed("cpu"), 3_600_000), (Cow::Borrowed("mem"), 7)]
        );
    }

    #[test]
    fn decodes_escapes_as_json_does() {
        let line = LINE.replace(
            r#""user":null"#,
            r#" "user" : "\u00e9\"q\\\/\ud83d\ude00\t" "#,
        );
        let t = parse(&line).unwrap();
        assert_eq!(t.user.as_deref(), Some("é\"q\\/😀\t"));
        let key = LINE.replace(r#""mem""#, r#""m\u0065m""#);
        assert_eq!(parse(&key).unwrap().tres_seconds[1].0, "mem");
    }

    #[test]
    fn leaves_everything_doubtful_to_the_full_parser() {
        for (from, to) in [
            (r#""cpu":3600000"#, r#""cpu":3600000,"cpu":7200000"#),
            (r#""mem":7"#, r#""m\u0065m":7,"mem":8"#),
            (r#""jobs":1"#, r#""jobs":1,"jobs":1"#),
            (r#""user":null,"#, ""),
            (r#""user":null,"#, r#""user":null,"x":1,"#),
            (r#""kind":"tres""#, r#""kind":"usage""#),
            (r#""mem":7"#, r#""mem":7.0"#),
            (r#""mem":7"#, r#""mem":-7"#),
            (r#""mem":7"#, r#""mem":07"#),
            (r#""mem":7"#, r#""mem":1e3"#),
            (
                r#""mem":7"#,
                r#""mem":340282366920938463463374607431768211456"#,
            ),
            (r#""jobs":1"#, r#""jobs":18446744073709551616"#),
            (r#""a""#, r#""\ud800""#),
            (r#""a""#, r#""\udc00x""#),
            (r#""a""#, r#""\x""#),
            (r#""a""#, "\"\u{1}\""),
            ("}}", "},}"),
            ("}}", "}}x"),
            (r#""jobs":1"#, "\"jobs\":\u{a0}1"),
        ] {
            assert!(LINE.contains(from), "{from}");
            let line = LINE.replacen(from, to, 1);
            assert_eq!(parse(&line), None, "{line}");
        }
    }

    #[test]
    fn big_values_stay_exact() {
        let max = u128::MAX.to_string();
        let line = LINE.replace(":7}", &format!(":{max}}}"));
        assert_eq!(parse(&line).unwrap().tres_seconds[1].1, u128::MAX);
    }
}

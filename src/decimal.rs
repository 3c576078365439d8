//! Exact decimal numbers: the two-place [`Amount`] that usage is billed in and Waldur stores
//! (`DecimalField(decimal_places=2)`), and the any-scale [`Factor`]s of the config
//! (`unit_factor`, `factor`). One reader takes their text (`12`, `-3.5`, `100.0000`, `1e3`,
//! `+2`) apart into sign, digits and scale; each type then applies its own rule. No floats
//! anywhere.
//!
//! Amounts are compared exactly, never as floats: `"100.0000"` equals `"100.00"` equals `100`,
//! while `"100.001"` is not an amount Waldur can hold and is rejected rather than rounded.
//! A factor is any positive decimal of up to 30 places: `0.1` is exactly one tenth.
//!
//! This room owns the numbers and their text. It must not know where they come from or go:
//! config files, records, the conversion arithmetic, the Waldur API.

use std::fmt;
use std::io::Write;

use crate::json_line::push_hundredths;

/// Decimal text as written, before a type's rule: `(-1)^negative x digits / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    /// A leading `-`.
    negative: bool,
    /// Every digit written, the point left out and trailing zeros kept (`1.50` is 150).
    digits: u128,
    /// Places after the point less the exponent: `1.50` is 2, `15e1` is -1.
    scale: i64,
}

/// Why text is not a decimal [`read`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreadable {
    /// Not `[+-]digits[.digits][(e|E)[+-]digits]` with a digit before or after the point, or
    /// an exponent past `i32`.
    NotDecimal,
    /// More digits than a `u128` holds (trailing zeros count).
    TooManyDigits,
}

/// The one reader of decimal text for [`Amount`] and [`Factor`]: `12`, `-3.5`, `100.0000`,
/// `1e3`, `+2`, `.5`, `5.`, with white space around it trimmed. It only reads; what a type
/// accepts (sign, places, size) is that type's rule.
fn read(text: &str) -> Result<Written, Unreadable> {
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (number, exponent) = match t.find(['e', 'E']) {
        Some(i) => (
            &t[..i],
            t[i + 1..]
                .parse::<i32>()
                .map_err(|_| Unreadable::NotDecimal)?,
        ),
        None => (t, 0),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(Unreadable::NotDecimal);
    }
    let mut digits: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        digits = digits
            .checked_mul(10)
            .and_then(|d| d.checked_add(u128::from(b - b'0')))
            .ok_or(Unreadable::TooManyDigits)?;
    }
    Ok(Written {
        negative,
        digits,
        scale: frac.len() as i64 - i64::from(exponent),
    })
}

/// An amount in hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i128);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// The amount `hundredths / 100`.
    pub fn from_hundredths(hundredths: i128) -> Amount {
        Amount(hundredths)
    }

    /// The amount in hundredths.
    pub fn hundredths(self) -> i128 {
        self.0
    }

    /// True when below zero.
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Parse a decimal such as `12`, `-3.5`, `100.0000` or `1e2` (surrounding white space is
    /// ignored). Digits beyond the second decimal place must be zeros.
    ///
    /// ```
    /// use waldur_usage::decimal::Amount;
    /// assert_eq!(Amount::parse("-3.5").unwrap().hundredths(), -350);
    /// assert_eq!(Amount::parse("1.00E+2"), Amount::parse(" 100.0000 "));
    /// assert!(Amount::parse("100.001").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Amount, String> {
        let bad = || format!("{text:?} is not a decimal number with at most 2 decimal places");
        let too_large = || format!("{text:?} is too large");
        let written = read(text).map_err(|e| match e {
            Unreadable::NotDecimal => bad(),
            Unreadable::TooManyDigits => too_large(),
        })?;
        // More digits than an i128 holds are too large whatever the scale, `1.000...` too.
        let mut value = i128::try_from(written.digits).map_err(|_| too_large())?;
        // value * 10^(2 - scale) hundredths; zero stays zero however far its point moves.
        let shift = 2 - written.scale;
        if value != 0 && shift >= 0 {
            for _ in 0..shift {
                value = value.checked_mul(10).ok_or_else(too_large)?;
            }
        } else if value != 0 {
            for _ in 0..-shift {
                if value % 10 != 0 {
                    return Err(bad());
                }
                value /= 10;
            }
        }
        Ok(Amount(if written.negative { -value } else { value }))
    }

    /// Parse an amount as usage-convert writes it: `^[0-9]+(\.[0-9]{1,2})?$`. No sign,
    /// exponent, spaces or extra places: a record that holds anything else was not written by
    /// usage-convert, and its meaning is not to be guessed.
    ///
    /// ```
    /// use waldur_usage::decimal::Amount;
    /// assert_eq!(Amount::parse_plain("1.50").unwrap().hundredths(), 150);
    /// assert!(Amount::parse_plain("1e5").is_err());
    /// assert!(Amount::parse_plain(" 1.00").is_err());
    /// ```
    pub fn parse_plain(text: &str) -> Result<Amount, String> {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let has_point = text.contains('.');
        if !int.is_empty() && digits(int) && digits(frac) {
            if !has_point || (1..=2).contains(&frac.len()) {
                return Amount::parse(text);
            }
            if frac.len() > 2 {
                return Err(format!(
                    "{text:?} is not a decimal number with at most 2 decimal places"
                ));
            }
        }
        Err(format!(
            "{text:?} is not a plain amount: write digits with at most 2 decimal places, \
             without sign, exponent or spaces (e.g. 1.50)"
        ))
    }

    /// Append the text [`Display`](fmt::Display) writes (`1234.50`) to `out`: digit by digit
    /// for an amount that is not negative (all that usage-convert and waldur-push write), so
    /// the hot output paths skip the formatting machinery.
    pub fn push_text(self, out: &mut Vec<u8>) {
        match u128::try_from(self.0) {
            Ok(hundredths) => push_hundredths(out, hundredths),
            Err(_) => write!(out, "{self}").expect("writing to a Vec"),
        }
    }

    /// Read a JSON string or number.
    pub fn from_json(value: &serde_json::Value) -> Result<Amount, String> {
        match value {
            serde_json::Value::String(s) => Amount::parse(s),
            serde_json::Value::Number(n) => Amount::parse(&n.to_string()),
            other => Err(format!(
                "expected a decimal string or number, found {other}"
            )),
        }
    }
}

impl fmt::Display for Amount {
    /// Always two decimal places: `1234.50`, `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl serde::Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Amount::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// An exact positive decimal from the config (`unit_factor`, `factor`): `mantissa / 10^scale`,
/// normalized (no trailing zero in the mantissa while `scale > 0`), at most 30 places.
///
/// YAML numbers are read as their decimal text, so `0.1` is exactly one tenth, not the nearest
/// binary float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Factor {
    /// The digits without the decimal point.
    pub mantissa: u128,
    /// How many of them are after the decimal point.
    pub scale: u32,
}

impl Factor {
    /// The factor 1.
    pub const ONE: Factor = Factor {
        mantissa: 1,
        scale: 0,
    };

    /// Parse a plain decimal such as `60000`, `60000.0`, `0.5` or `1e3`; must be greater than 0.
    ///
    /// ```
    /// use waldur_usage::decimal::Factor;
    /// assert_eq!(Factor::parse("2.50"), Some(Factor { mantissa: 25, scale: 1 }));
    /// assert_eq!(Factor::parse("0"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Factor> {
        let written = read(text).ok()?;
        if written.negative || written.digits == 0 {
            return None;
        }
        let (mut mantissa, mut scale) = (written.digits, written.scale);
        while scale < 0 {
            mantissa = mantissa.checked_mul(10)?;
            scale += 1;
        }
        let mut scale = u32::try_from(scale).ok()?;
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        (scale <= 30).then_some(Factor { mantissa, scale })
    }
}

impl fmt::Display for Factor {
    /// The shortest exact text: `60000`, `2.5`, `0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_compare_equal_whatever_their_spelling() {
        let a = Amount::parse("100.00").unwrap();
        assert_eq!(Amount::parse("100.0000").unwrap(), a);
        assert_eq!(Amount::parse("100").unwrap(), a);
        assert_eq!(Amount::parse("1e2").unwrap(), a);
        assert_eq!(Amount::parse("1.00E+2").unwrap(), a);
        assert_eq!(a.hundredths(), 10000);
        assert_eq!(Amount::parse(".5").unwrap().hundredths(), 50);
        assert_eq!(Amount::parse("-0.05").unwrap().hundredths(), -5);
        assert_eq!(
            Amount::from_json(&serde_json::json!(146.99)).unwrap(),
            Amount::parse("146.99").unwrap()
        );
    }

    #[test]
    fn more_than_two_places_or_garbage_is_an_error_not_a_rounding() {
        for bad in ["100.001", "1.005", "", ".", "abc", "1.2.3", "--1", "1e"] {
            assert!(Amount::parse(bad).is_err(), "{bad}");
        }
        assert!(Amount::parse("1e60").is_err());
        assert!(Amount::from_json(&serde_json::json!(null)).is_err());
    }

    #[test]
    fn records_hold_plain_amounts_only() {
        for good in ["0", "1", "1.5", "1.50", "100000.00"] {
            assert!(Amount::parse_plain(good).is_ok(), "{good}");
        }
        for bad in [
            "1e5", "1.2345e2", "1e20", " 1.00", "1.00 ", "+1.00", "-1.00", "1.", ".5", "", "0x10",
            "1,00", "١",
        ] {
            let e = Amount::parse_plain(bad).unwrap_err();
            assert!(e.contains("is not a plain amount"), "{bad}: {e}");
        }
        assert_eq!(
            Amount::parse_plain("0.545").unwrap_err(),
            "\"0.545\" is not a decimal number with at most 2 decimal places"
        );
    }

    #[test]
    fn displays_with_exactly_two_places() {
        assert_eq!(Amount::from_hundredths(123450).to_string(), "1234.50");
        assert_eq!(Amount::from_hundredths(5).to_string(), "0.05");
        assert_eq!(Amount::from_hundredths(-5).to_string(), "-0.05");
        assert_eq!(Amount::ZERO.to_string(), "0.00");
    }

    fn f(mantissa: u128, scale: u32) -> Option<Factor> {
        Some(Factor { mantissa, scale })
    }

    #[test]
    fn factors_are_exact_decimals() {
        assert_eq!(Factor::parse("60000.0"), f(60000, 0));
        assert_eq!(Factor::parse("0.1"), f(1, 1));
        assert_eq!(Factor::parse("1e3"), f(1000, 0));
        assert_eq!(Factor::parse("2.50").unwrap().to_string(), "2.5");
        assert_eq!(Factor::parse("0.05").unwrap().to_string(), "0.05");
        for bad in ["0", "-1", "", "abc", "0.0", "1.2.3"] {
            assert_eq!(Factor::parse(bad), None, "{bad}");
        }
    }

    /// What each rule makes of `text`: the amount's text or `bad` / `large` (its two errors,
    /// whose wording is checked here too), and the factor's text or `-`.
    fn both(text: &str) -> (String, String) {
        let amount = match Amount::parse(text) {
            Ok(a) => a.to_string(),
            Err(e) if e == format!("{text:?} is too large") => "large".into(),
            Err(e) => {
                let bad = format!("{text:?} is not a decimal number with at most 2 decimal places");
                assert_eq!(e, bad);
                "bad".into()
            }
        };
        let factor = Factor::parse(text).map_or("-".into(), |f| f.to_string());
        (amount, factor)
    }

    /// The inputs where the two parsers, written separately before they shared [`read`],
    /// agreed or differed, with what each gave then.
    #[test]
    fn one_reader_keeps_what_each_parser_accepted_and_refused() {
        let cases: &[(&str, &str, &str)] = &[
            // Both accept: signs, spaces, empty parts, exponents, leading and trailing zeros.
            ("12", "12.00", "12"),
            ("+2", "2.00", "2"),
            (" 5 ", "5.00", "5"),
            ("\t5\n", "5.00", "5"),
            (".5", "0.50", "0.5"),
            ("+.5", "0.50", "0.5"),
            ("5.", "5.00", "5"),
            ("0012", "12.00", "12"),
            ("100.0000", "100.00", "100"),
            ("1e3", "1000.00", "1000"),
            ("1E+3", "1000.00", "1000"),
            ("1.5e1", "15.00", "15"),
            ("25e-1", "2.50", "2.5"),
            ("1e-2", "0.01", "0.01"),
            ("5e-0", "5.00", "5"),
            // Only an amount may be negative or zero.
            ("-3.5", "-3.50", "-"),
            ("-.5", "-0.50", "-"),
            ("-1e-2", "-0.01", "-"),
            ("0", "0.00", "-"),
            ("+0", "0.00", "-"),
            ("-0", "0.00", "-"),
            ("0.00", "0.00", "-"),
            // Zero with an exponent at either end of i32 (once a loop of 2^31 steps).
            ("0e2147483647", "0.00", "-"),
            ("0e-2147483648", "0.00", "-"),
            // Only a factor may have more than two places of non-zero digits.
            ("1.005", "bad", "1.005"),
            ("100.001", "bad", "100.001"),
            ("1e-30", "bad", "0.000000000000000000000000000001"),
            ("1e-31", "bad", "-"),
            // Too large: an amount's hundredths past i128, a factor past u128.
            (
                "1e36",
                "1000000000000000000000000000000000000.00",
                "1000000000000000000000000000000000000",
            ),
            ("2e36", "large", "2000000000000000000000000000000000000"),
            ("1e40", "large", "-"),
            ("1e2147483647", "large", "-"),
            // An exponent past i32 is not a number at all, for either.
            ("1e2147483648", "bad", "-"),
            ("1e-2147483649", "bad", "-"),
            // Neither: no digits, two signs, two points or exponents, other characters.
            ("", "bad", "-"),
            (" ", "bad", "-"),
            (".", "bad", "-"),
            ("-", "bad", "-"),
            ("+", "bad", "-"),
            ("e5", "bad", "-"),
            ("1e", "bad", "-"),
            ("1e+", "bad", "-"),
            ("1e 2", "bad", "-"),
            ("1e+-2", "bad", "-"),
            ("1e2.5", "bad", "-"),
            ("1e2e3", "bad", "-"),
            ("--1", "bad", "-"),
            ("++1", "bad", "-"),
            ("+-1", "bad", "-"),
            ("-+1", "bad", "-"),
            ("- 1", "bad", "-"),
            ("1.2.3", "bad", "-"),
            ("1 000", "bad", "-"),
            ("1,5", "bad", "-"),
            ("1_000", "bad", "-"),
            ("0x10", "bad", "-"),
            ("١", "bad", "-"),
            ("inf", "bad", "-"),
            ("NaN", "bad", "-"),
        ];
        for (text, amount, factor) in cases {
            assert_eq!(
                both(text),
                (amount.to_string(), factor.to_string()),
                "{text:?}"
            );
        }
    }

    /// Every digit counts against the integer that holds them, trailing zeros too: both
    /// parsers summed all digits before looking at the scale, an amount in an i128, a factor
    /// in a u128.
    #[test]
    fn digits_past_the_integer_are_too_large_even_when_they_are_zeros() {
        let zeros = |n: usize| "0".repeat(n);
        let max = "1701411834604692317316873037158841057";
        let cases = [
            // i128::MAX hundredths, and one more; negative too (the digits are summed unsigned).
            (
                format!("{max}.27"),
                format!("{max}.27"),
                format!("{max}.27"),
            ),
            (format!("{max}.28"), "large".into(), format!("{max}.28")),
            (format!("-{max}.27"), format!("-{max}.27"), "-".into()),
            (format!("-{max}.28"), "large".into(), "-".into()),
            // 2 x 10^38 written with 38 zeros after the point: past i128, inside u128.
            (format!("2.{}", zeros(38)), "large".into(), "2".into()),
            (
                format!("1{}", zeros(38)),
                "large".into(),
                format!("1{}", zeros(38)),
            ),
            // Past u128: 10^39, and 1 followed by 40 zeros after the point.
            (format!("1{}", zeros(39)), "large".into(), "-".into()),
            (format!("1.{}", zeros(40)), "large".into(), "-".into()),
            // Leading zeros add nothing: 10^-30 is a factor, 10^-31 is not.
            (
                format!("0.{}1", zeros(29)),
                "bad".into(),
                format!("0.{}1", zeros(29)),
            ),
            (format!("0.{}1", zeros(30)), "bad".into(), "-".into()),
        ];
        for (text, amount, factor) in cases {
            assert_eq!(both(&text), (amount, factor), "{text:?}");
        }
    }

    #[test]
    fn the_reader_only_reads() {
        let w = |negative, digits, scale| {
            Ok(Written {
                negative,
                digits,
                scale,
            })
        };
        assert_eq!(read(" 1.50 "), w(false, 150, 2));
        assert_eq!(read("-15e1"), w(true, 15, -1));
        assert_eq!(read("+.5E-2"), w(false, 5, 3));
        assert_eq!(read("0.000"), w(false, 0, 3));
        assert_eq!(read("1.2.3"), Err(Unreadable::NotDecimal));
        assert_eq!(read(&"9".repeat(40)), Err(Unreadable::TooManyDigits));
    }
}

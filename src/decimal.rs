//! Exact decimal numbers: the two-place [`Amount`] that usage is billed in and Waldur stores
//! (`DecimalField(decimal_places=2)`); no floats anywhere.
//!
//! Amounts are compared exactly, never as floats: `"100.0000"` equals `"100.00"` equals `100`,
//! while `"100.001"` is not an amount Waldur can hold and is rejected rather than rounded.
//!
//! This room owns the numbers and their text. It must not know where they come from or go:
//! config files, records, the conversion arithmetic, the Waldur API.

use std::fmt;
use std::io::Write;

use crate::json_line::push_hundredths;

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

    /// Parse a decimal such as `12`, `-3.5`, `100.0000` or `1e2`. Digits beyond the second
    /// decimal place must be zeros.
    pub fn parse(text: &str) -> Result<Amount, String> {
        let t = text.trim();
        let bad = || format!("{text:?} is not a decimal number with at most 2 decimal places");
        let (negative, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let (digits, exponent) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| bad())?),
            None => (t, 0),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        // value = digits(int ++ frac) * 10^(exponent - frac.len()); we want it * 100.
        let mut mantissa: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or_else(|| format!("{text:?} is too large"))?;
        }
        let shift = i64::from(exponent) - frac.len() as i64 + 2;
        let mut value = mantissa;
        if shift >= 0 {
            for _ in 0..shift {
                value = value
                    .checked_mul(10)
                    .ok_or_else(|| format!("{text:?} is too large"))?;
            }
        } else {
            for _ in 0..(-shift) {
                if value % 10 != 0 {
                    return Err(bad());
                }
                value /= 10;
            }
        }
        Ok(Amount(if negative { -value } else { value }))
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
}

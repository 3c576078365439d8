//! Elapsed time: `ElapsedRaw` (integer seconds) and `Elapsed` in every form sacct prints.
//!
//! `Elapsed` is `[D-]HH:MM:SS` (hours always two digits below a day, any number of days), but
//! other duration fields print `MM:SS.mmm` and old or hand-edited dumps may carry hours above 24
//! without a day part, so all of these are accepted: `D-HH:MM:SS`, `HH:MM:SS` (any number of
//! hours), `MM:SS`, each with optional fractional seconds, which are truncated (whole seconds
//! is what the reference counts). Minutes and seconds must be below 60.
//!
//! Empty, `None` and `Unknown` mean "no time was recorded" and come back as `Ok(None)`: the caller
//! decides whether that may count as zero (only for a job that never started). `INVALID`
//! (a negative duration), `UNLIMITED`, `Partition_Limit` and anything else are errors.

use std::fmt;

use nom::Parser;
use nom::bytes::complete::{tag, take_while1};
use nom::combinator::{all_consuming, opt};
use nom::sequence::{preceded, terminated};

/// An elapsed value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElapsedError {
    /// The field as it was (lossy UTF-8).
    pub value: String,
    /// Which column: `Elapsed` or `ElapsedRaw`.
    pub column: &'static str,
}

impl fmt::Display for ElapsedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = if self.column == "ElapsedRaw" {
            "whole seconds"
        } else {
            "[D-]HH:MM:SS or MM:SS"
        };
        write!(
            f,
            "{} {:?} is not a duration (expected {expected})",
            self.column, self.value
        )
    }
}

impl std::error::Error for ElapsedError {}

fn error(value: &[u8], column: &'static str) -> ElapsedError {
    ElapsedError {
        value: String::from_utf8_lossy(value).into_owned(),
        column,
    }
}

/// True for the values that mean "no time recorded".
fn is_absent(field: &[u8]) -> bool {
    field.is_empty() || field == b"None" || field == b"Unknown"
}

fn digits(input: &[u8]) -> nom::IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b.is_ascii_digit()).parse(input)
}

fn number(d: &[u8]) -> Option<u64> {
    if d.len() > 19 {
        return None;
    }
    d.iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Parse an `ElapsedRaw` field: whole seconds, or `Ok(None)` when absent.
pub fn parse_elapsed_raw(field: &[u8]) -> Result<Option<u64>, ElapsedError> {
    if is_absent(field) {
        return Ok(None);
    }
    if !field.iter().all(u8::is_ascii_digit) {
        return Err(error(field, "ElapsedRaw"));
    }
    number(field)
        .map(Some)
        .ok_or_else(|| error(field, "ElapsedRaw"))
}

/// Parse an `Elapsed` field to whole seconds, or `Ok(None)` when absent.
pub fn parse_elapsed(field: &[u8]) -> Result<Option<u64>, ElapsedError> {
    if is_absent(field) {
        return Ok(None);
    }
    let err = || error(field, "Elapsed");
    // [D-] then two or three colon-separated groups, then [.fraction].
    let days = opt(terminated(digits, tag(&b"-"[..])));
    let group = preceded(tag(&b":"[..]), digits);
    let fraction = opt(preceded(tag(&b"."[..]), digits));
    let (_, (days, first, second, third, _)) = all_consuming((
        days,
        digits,
        group,
        opt(preceded(tag(&b":"[..]), digits)),
        fraction,
    ))
    .parse(field)
    .map_err(|_: nom::Err<nom::error::Error<&[u8]>>| err())?;
    let first = number(first).ok_or_else(err)?;
    let second = number(second).ok_or_else(err)?;
    let (hours, minutes, seconds) = match third {
        Some(third) => (first, second, number(third).ok_or_else(err)?),
        // MM:SS has no day part.
        None if days.is_none() => (0, first, second),
        None => return Err(err()),
    };
    if minutes >= 60 || seconds >= 60 {
        return Err(err());
    }
    let days = match days {
        Some(d) => {
            if hours >= 24 {
                return Err(err());
            }
            number(d).ok_or_else(err)?
        }
        None => 0,
    };
    days.checked_mul(86_400)
        .and_then(|s| s.checked_add(hours.checked_mul(3600)?))
        .and_then(|s| s.checked_add(minutes * 60 + seconds))
        .map(Some)
        .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Option<u64> {
        parse_elapsed(s.as_bytes()).unwrap()
    }

    #[test]
    fn every_elapsed_form() {
        // HH:MM:SS: 1 min 18 s = 78 s (fixture b2, job 3).
        assert_eq!(secs("00:01:18"), Some(78));
        // D-HH:MM:SS: 1 day = 86400 s; 30 h = 108000 s (reference E3 e2euser3).
        assert_eq!(secs("1-00:00:00"), Some(86_400));
        assert_eq!(secs("1-06:00:00"), Some(108_000));
        // Day counts of 32 and more (the reference crashes there): 32 x 86400 + 1 = 2764801.
        assert_eq!(secs("32-00:00:01"), Some(2_764_801));
        assert_eq!(secs("400-23:59:59"), Some(400 * 86_400 + 86_399));
        // Hours over 24 without a day part: 850 h = 3060000 s.
        assert_eq!(secs("850:00:00"), Some(3_060_000));
        // MM:SS and fractions, truncated: 22:53.824 = 22 x 60 + 53 = 1373.
        assert_eq!(secs("22:53.824"), Some(1373));
        assert_eq!(secs("12:34:56.789"), Some(12 * 3600 + 34 * 60 + 56));
        assert_eq!(secs("0-00:00:00"), Some(0));
        // No time recorded.
        assert_eq!(secs(""), None);
        assert_eq!(secs("None"), None);
        assert_eq!(secs("Unknown"), None);
    }

    #[test]
    fn rejects_what_is_not_an_elapsed_time() {
        for bad in [
            "INVALID",
            "UNLIMITED",
            "Partition_Limit",
            "00:60:00",
            "00:00:60",
            "1-24:00:00",
            "1-00:00",
            "12",
            "1:2:3:4",
            "-00:00:01",
            "00:00:01.",
            " 00:00:01",
            "99999999999999999999:00:00",
            "999999999999999999-00:00:00",
        ] {
            assert!(parse_elapsed(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_elapsed(b"INVALID").unwrap_err().to_string(),
            "Elapsed \"INVALID\" is not a duration (expected [D-]HH:MM:SS or MM:SS)"
        );
    }

    #[test]
    fn elapsed_raw_is_whole_seconds() {
        assert_eq!(parse_elapsed_raw(b"78").unwrap(), Some(78));
        assert_eq!(parse_elapsed_raw(b"0").unwrap(), Some(0));
        assert_eq!(parse_elapsed_raw(b"").unwrap(), None);
        assert_eq!(parse_elapsed_raw(b"Unknown").unwrap(), None);
        for bad in ["-1", "1.5", "00:00:01", "1e3", "99999999999999999999"] {
            assert!(parse_elapsed_raw(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}

//! Job ids as sacct prints them in `JobID` and `JobIDRaw`.
//!
//! ```text
//! 123            plain job (JobIDRaw is always this form, plus steps)
//! 123_4          array task
//! 123_[1-5%2]    array tasks not started yet, collapsed into one record
//! 123+0          component of a heterogeneous job (its own allocation: billed)
//! 123.batch      a step: .batch, .extern, .interactive, .0, ... (not billed)
//! 123_4.0  123+1.batch
//! 123.0+0        a step of a heterogeneous job, as JobIDRaw prints it (`<job>.<step>+<component>`)
//! ```
//!
//! Only allocations are billed; a step's usage is part of its job's allocation.

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::combinator::{all_consuming, opt};
use nom::sequence::{delimited, preceded};

/// What a job id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobIdKind {
    /// A job allocation (plain, array task or het component).
    Allocation,
    /// A step inside an allocation.
    Step,
}

fn digits(input: &[u8]) -> nom::IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b.is_ascii_digit()).parse(input)
}

fn array_spec(input: &[u8]) -> nom::IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b.is_ascii_digit() || matches!(b, b'-' | b',' | b'%' | b':')).parse(input)
}

fn step_name(input: &[u8]) -> nom::IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'_').parse(input)
}

/// Classify a job id; `None` when it is not one.
pub fn parse_job_id(field: &[u8]) -> Option<JobIdKind> {
    let array = preceded(
        tag(&b"_"[..]),
        alt((
            digits,
            delimited(tag(&b"["[..]), array_spec, tag(&b"]"[..])),
        )),
    );
    let het = preceded(tag(&b"+"[..]), digits);
    let step = preceded(tag(&b"."[..]), step_name);
    // A het job's step comes either as `123+0.0` (JobID) or `123.0+0` (JobIDRaw): the
    // component may follow the step, but only when it did not come before it.
    let step_het = preceded(tag(&b"+"[..]), digits);
    let (_, (_, _, het, step, step_het)) =
        all_consuming((digits, opt(array), opt(het), opt(step), opt(step_het)))
            .parse(field)
            .ok()?;
    if step_het.is_some() && (het.is_some() || step.is_none()) {
        return None;
    }
    Some(match step {
        Some(_) => JobIdKind::Step,
        None => JobIdKind::Allocation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_and_steps() {
        for id in [
            "123",
            "123_4",
            "123_[1-5%2]",
            "5_[1,3-7]",
            "123+0",
            "123_4+1",
        ] {
            assert_eq!(
                parse_job_id(id.as_bytes()),
                Some(JobIdKind::Allocation),
                "{id}"
            );
        }
        for id in [
            "1.batch",
            "1.extern",
            "1.0",
            "1.interactive",
            "5_1.batch",
            "123+0.batch",
            "123+1.0",
            "123.0+0",
            "123.batch+1",
        ] {
            assert_eq!(parse_job_id(id.as_bytes()), Some(JobIdKind::Step), "{id}");
        }
        for bad in [
            "", "abc", "1_", "1_[", "1_[]", "1+", "1.", "1.ba-tch", " 1", "1 ", "1+0.0+0", "1.0+",
            "1+0+0",
        ] {
            assert_eq!(parse_job_id(bad.as_bytes()), None, "{bad:?}");
        }
    }
}

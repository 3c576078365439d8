//! What the State, Account and User fields may hold, and how a bad byte is named.

use super::LineError;

/// The job states sacct prints in `--parsable2` output (sacct(1), JOB STATE CODES). Only
/// `CANCELLED` may carry ` by <uid>` (the user who cancelled, fixture b3 `CANCELLED by 0`).
pub const STATES: [&str; 15] = [
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PENDING",
    "PREEMPTED",
    "RUNNING",
    "REQUEUED",
    "RESIZING",
    "REVOKED",
    "SUSPENDED",
    "TIMEOUT",
];

/// Is `state` one sacct prints: a name of [`STATES`], or `CANCELLED by <uid>` (decimal uid)?
pub fn is_state(state: &[u8]) -> bool {
    if STATES.iter().any(|s| s.as_bytes() == state) {
        return true;
    }
    match state.strip_prefix(b"CANCELLED by ") {
        Some(uid) => !uid.is_empty() && uid.len() <= 10 && uid.iter().all(u8::is_ascii_digit),
        None => false,
    }
}

/// Is `b` allowed in an Account or User name: `[A-Za-z0-9._@$-]`?
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'$' | b'-')
}

/// Check an Account or User name: only `[A-Za-z0-9._@$-]`, so a shifted column, a cut line or
/// a stray separator cannot pass as a name. The caller rejects empty names separately.
pub(super) fn check_name(column: &str, name: &[u8]) -> Result<(), LineError> {
    match name.iter().find(|&&b| !is_name_byte(b)) {
        None => Ok(()),
        Some(&b) => Err(LineError(format!(
            "{column} {:?} holds {}, but names are made of A-Z a-z 0-9 . _ @ $ -",
            String::from_utf8_lossy(name),
            describe_byte(b)
        ))),
    }
}

/// A byte as the error messages name it.
fn describe_byte(b: u8) -> String {
    match b {
        b' ' => "a space".into(),
        b'\t' => "a tab".into(),
        0 => "a NUL byte".into(),
        b if b.is_ascii_control() => format!("the control character 0x{b:02x}"),
        b if b.is_ascii() => format!("{:?}", char::from(b)),
        b => format!("the non-ASCII byte 0x{b:02x}"),
    }
}

//! Writing JSON lines by hand, byte for byte as serde_json writes them, for the hot output
//! paths (slurm-usage's `tres` records, usage-convert's `usage` records, waldur-push's
//! offline and dry-run results).

use std::io::Write;

/// `s` as a JSON string; serde_json itself writes any string that needs escaping.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string serializes");
    }
}

/// `n` in decimal (a `u64` loop for all but the rare value past 2^64).
///
/// ```
/// let mut out = Vec::new();
/// waldur_usage::json_line::push_u128(&mut out, 1 << 70);
/// waldur_usage::json_line::push_u128(&mut out, 0);
/// assert_eq!(out, b"11805916207174113034240");
/// ```
pub fn push_u128(out: &mut Vec<u8>, n: u128) {
    let Ok(mut n) = u64::try_from(n) else {
        write!(out, "{n}").expect("writing to a Vec");
        return;
    };
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `hundredths / 100` with exactly two decimals: `1234.50`, `0.05`.
///
/// ```
/// let mut out = Vec::new();
/// waldur_usage::json_line::push_hundredths(&mut out, 123_405);
/// assert_eq!(out, b"1234.05");
/// ```
pub fn push_hundredths(out: &mut Vec<u8>, hundredths: u128) {
    push_u128(out, hundredths / 100);
    let cents = (hundredths % 100) as u8;
    out.extend_from_slice(&[b'.', b'0' + cents / 10, b'0' + cents % 10]);
}

//! TRES strings as sacct prints them in `AllocTRES` / `ReqTRES`:
//! `billing=2,cpu=2,gres/gpu=1,mem=1G,node=1`.
//!
//! Values are turned into exact integers of the TRES's base unit:
//!
//! - Suffixes `K`, `M`, `G`, `T`, `P` are powers of 1024 and may carry a fraction (`2.50G`);
//!   sacct prints fractions with `%.2f` when they are "half-exact" (field notes B6).
//! - Memory-like TRES (`mem`, `gres/gpumem`, every `bb/...`) are stored by Slurm in MiB, so their
//!   base unit is MiB: `1G` = 1024, `2.50G` = 2560, `100M` = 100, and a bare number is MiB.
//! - Every other TRES counts things; its base unit is 1, so `cpu=2` is 2 and `energy=3K` is 3072.
//! - **Rounding rule**: a value that is not a whole number of base units (`mem=1536K` is 1.5 MiB,
//!   `cpu=1.5`) is rounded **up** to the next whole unit. Slurm allocates memory in whole MiB and
//!   rounds requests up the same way, so this never bills less than was blocked, and everything
//!   downstream stays an exact integer. Nothing is ever rounded to zero unless it was zero.
//!
//! The GPU rule (field notes §0.5): `gres/gpu` is the untyped entry when present; otherwise it is
//! the sum of the typed `gres/gpu:TYPE` entries. Typed entries are also kept under their own names.
//! Names are matched exactly, never by prefix: `gres/gpumem` and `gres/gpuutil` are not GPUs.

use std::fmt;

use nom::Parser;
use nom::bytes::complete::{tag, take_till1, take_while1};
use nom::character::complete::one_of;
use nom::combinator::{all_consuming, opt};
use nom::sequence::preceded;

/// Index of a TRES name in a [`TresTable`].
pub type TresId = u16;

/// The name under which GPUs are counted.
pub const GPU: &str = "gres/gpu";

/// What a TRES measures, which decides its base unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TresKind {
    /// Stored in MiB: `mem`, `gres/gpumem`, `bb/...`.
    Memory,
    /// A typed GPU entry `gres/gpu:TYPE`.
    TypedGpu,
    /// Anything else: a count (`cpu`, `node`, `billing`, `gres/gpu`, licenses, ...).
    Count,
}

impl TresKind {
    fn of(name: &[u8]) -> TresKind {
        if name == b"mem" || name == b"gres/gpumem" || name.starts_with(b"bb/") {
            TresKind::Memory
        } else if name.starts_with(b"gres/gpu:") && name.len() > b"gres/gpu:".len() {
            TresKind::TypedGpu
        } else {
            TresKind::Count
        }
    }

    /// Power of 1024 of the base unit (MiB = 2).
    fn base_power(self) -> u32 {
        match self {
            TresKind::Memory => 2,
            TresKind::TypedGpu | TresKind::Count => 0,
        }
    }
}

/// TRES names seen so far, each with a small integer id. Aggregates are vectors indexed by id,
/// so the hot loop never allocates or hashes a TRES name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TresTable {
    names: Vec<String>,
    kinds: Vec<TresKind>,
    /// The id found at each position of the previous string: sacct prints TRES in a fixed
    /// order, so this is nearly always right and saves comparing against every name.
    hints: Vec<TresId>,
}

impl Default for TresTable {
    fn default() -> Self {
        Self::new()
    }
}

impl TresTable {
    /// A table holding only [`GPU`] (id 0).
    pub fn new() -> Self {
        TresTable {
            names: vec![GPU.to_string()],
            kinds: vec![TresKind::Count],
            hints: Vec::new(),
        }
    }

    /// The id of [`GPU`].
    pub fn gpu(&self) -> TresId {
        0
    }

    /// Number of names interned.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: [`GPU`] is interned from the start.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The name of `id`.
    pub fn name(&self, id: TresId) -> &str {
        &self.names[usize::from(id)]
    }

    /// The kind of `id`.
    pub fn kind(&self, id: TresId) -> TresKind {
        self.kinds[usize::from(id)]
    }

    /// The id of `name` found at `position` in a TRES string (the hint is tried first).
    fn lookup(&mut self, position: usize, name: &[u8]) -> Result<TresId, TresError> {
        if let Some(&id) = self.hints.get(position) {
            if self.names[usize::from(id)].as_bytes() == name {
                return Ok(id);
            }
        }
        let id = self.intern(name)?;
        match self.hints.get_mut(position) {
            Some(h) => *h = id,
            None => self.hints.push(id),
        }
        Ok(id)
    }

    /// The id of `name`, interning it when new.
    pub fn intern(&mut self, name: &[u8]) -> Result<TresId, TresError> {
        if let Some(i) = self.names.iter().position(|n| n.as_bytes() == name) {
            return Ok(i as TresId);
        }
        let text = std::str::from_utf8(name)
            .map_err(|_| TresError::new(name, "the TRES name is not valid UTF-8"))?;
        if self.names.len() > usize::from(TresId::MAX) {
            return Err(TresError::new(name, "too many distinct TRES names"));
        }
        self.names.push(text.to_string());
        self.kinds.push(TresKind::of(name));
        Ok((self.names.len() - 1) as TresId)
    }
}

/// A TRES string could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TresError {
    /// The offending entry (lossy UTF-8).
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl TresError {
    fn new(entry: &[u8], reason: &'static str) -> Self {
        TresError {
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason,
        }
    }
}

impl fmt::Display for TresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TRES entry {:?}: {}", self.entry, self.reason)
    }
}

impl std::error::Error for TresError {}

/// The TRES types SLURM has (`slurmdb_defs.c`), lower case as sacct prints them.
pub const TRES_TYPES: [&str; 12] = [
    "cpu", "mem", "energy", "node", "billing", "fs", "vmem", "pages", "gres", "license", "bb", "ic",
];

/// The types that name one resource after a `/`: `gres/gpu`, `license/matlab`, `fs/disk`.
pub const NAMED_TRES_TYPES: [&str; 5] = ["gres", "license", "bb", "fs", "ic"];

/// Check a TRES name against SLURM's grammar: `TYPE` for `cpu`, `mem`, `energy`, `node`,
/// `billing`, `vmem`, `pages`; `TYPE/NAME` for `gres`, `license`, `bb`, `fs`, `ic`, where
/// `NAME` is non-empty printable ASCII without spaces, `=` and `,` (`gres/gpu:a100`,
/// `license/matlab@srv`). Types are lower case only. The error says what is wrong.
pub fn check_tres_name(name: &[u8]) -> Result<(), &'static str> {
    let (kind, rest) = match name.iter().position(|&b| b == b'/') {
        Some(i) => (&name[..i], Some(&name[i + 1..])),
        None => (name, None),
    };
    // A TRES whose type SLURM cannot name (a deleted one) prints as its numeric id: real
    // sacct output, never a configured component, so kept and billed to nothing.
    if rest.is_none() && !kind.is_empty() && kind.iter().all(u8::is_ascii_digit) {
        return Ok(());
    }
    if !TRES_TYPES.iter().any(|t| t.as_bytes() == kind) {
        return Err(
            "unknown TRES type (SLURM has cpu, mem, energy, node, billing, fs, vmem, pages, \
             gres, license, bb, ic, in lower case)",
        );
    }
    let named = NAMED_TRES_TYPES.iter().any(|t| t.as_bytes() == kind);
    match rest {
        None if named => Err("this TRES type needs a /name (gres/gpu, license/matlab, ...)"),
        None => Ok(()),
        Some(_) if !named => Err("this TRES type takes no /name"),
        Some([]) => Err("the /name of the TRES is empty"),
        Some(n)
            if n.iter()
                .all(|&b| b.is_ascii_graphic() && b != b'=' && b != b',') =>
        {
            Ok(())
        }
        Some(_) => Err(
            "the /name of the TRES holds a space, a control character, = , or a byte outside \
             printable ASCII",
        ),
    }
}

/// The pieces of one `NAME=VALUE` entry.
struct RawEntry<'a> {
    name: &'a [u8],
    int: &'a [u8],
    frac: Option<&'a [u8]>,
    suffix: Option<char>,
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// `NAME=DIGITS[.DIGITS][K|M|G|T|P]`, the whole entry.
fn entry(input: &[u8]) -> Option<RawEntry<'_>> {
    let name = take_till1::<_, _, nom::error::Error<&[u8]>>(|b| b == b'=');
    let number = (
        take_while1(is_digit),
        opt(preceded(tag(&b"."[..]), take_while1(is_digit))),
        opt(one_of("KMGTP")),
    );
    let (_, (name, _, (int, frac, suffix))) = all_consuming((name, tag(&b"="[..]), number))
        .parse(input)
        .ok()?;
    Some(RawEntry {
        name,
        int,
        frac,
        suffix,
    })
}

fn suffix_power(suffix: char) -> u32 {
    match suffix {
        'K' => 1,
        'M' => 2,
        'G' => 3,
        'T' => 4,
        _ => 5, // 'P': the parser admits nothing else
    }
}

fn digits_value(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })
}

/// The exact value in base units, rounded up to a whole unit (see the module docs).
fn value_in_base_units(e: &RawEntry<'_>, kind: TresKind) -> Option<u64> {
    let power = e
        .suffix
        .map_or(0, |s| suffix_power(s) as i32 - kind.base_power() as i32);
    // The usual case, a whole number scaled up (or not at all): plain u64 arithmetic.
    if e.frac.is_none() && power >= 0 && e.int.len() <= 19 {
        let int = e
            .int
            .iter()
            .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0'));
        return int.checked_mul(1u64 << (10 * power as u32));
    }
    let frac = e.frac.unwrap_or(b"");
    if frac.len() > 18 || e.int.len() > 20 {
        return None;
    }
    let scale = 10u128.pow(frac.len() as u32);
    let mut numerator = digits_value(e.int)?
        .checked_mul(scale)?
        .checked_add(digits_value(frac)?)?;
    let mut denominator = scale;
    if let Some(s) = e.suffix {
        let power = suffix_power(s) as i32 - kind.base_power() as i32;
        if power >= 0 {
            numerator = numerator.checked_mul(1024u128.pow(power as u32))?;
        } else {
            denominator *= 1024u128.pow(power.unsigned_abs());
        }
    }
    u64::try_from(numerator.div_ceil(denominator)).ok()
}

/// Parse a TRES string into `out` as `(id, value in base units)` pairs, applying the GPU rule.
/// An empty string gives no entries. `out` is cleared first.
pub fn parse_tres(
    input: &[u8],
    table: &mut TresTable,
    out: &mut Vec<(TresId, u64)>,
) -> Result<(), TresError> {
    out.clear();
    if input.is_empty() {
        return Ok(());
    }
    let mut typed_gpus: Option<u64> = None;
    let mut untyped_gpu = false;
    for (position, raw) in input.split(|&b| b == b',').enumerate() {
        let e = entry(raw).ok_or_else(|| {
            TresError::new(
                raw,
                "expected NAME=NUMBER with an optional K/M/G/T/P suffix",
            )
        })?;
        check_tres_name(e.name).map_err(|why| TresError::new(raw, why))?;
        let id = table.lookup(position, e.name)?;
        let kind = table.kind(id);
        let value = value_in_base_units(&e, kind)
            .ok_or_else(|| TresError::new(raw, "the value is out of range"))?;
        if out.iter().any(|&(seen, _)| seen == id) {
            return Err(TresError::new(raw, "this TRES appears twice"));
        }
        if id == table.gpu() {
            untyped_gpu = true;
        } else if kind == TresKind::TypedGpu {
            typed_gpus = Some(
                typed_gpus
                    .unwrap_or(0)
                    .checked_add(value)
                    .ok_or_else(|| TresError::new(raw, "the GPU sum is out of range"))?,
            );
        }
        out.push((id, value));
    }
    if let (false, Some(sum)) = (untyped_gpu, typed_gpus) {
        out.push((table.gpu(), sum));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse into `(name, value)` pairs sorted by name, for readable assertions.
    fn parse(s: &str) -> Result<Vec<(String, u64)>, TresError> {
        let mut table = TresTable::new();
        let mut out = Vec::new();
        parse_tres(s.as_bytes(), &mut table, &mut out)?;
        let mut named: Vec<(String, u64)> = out
            .iter()
            .map(|&(id, v)| (table.name(id).to_string(), v))
            .collect();
        named.sort();
        Ok(named)
    }

    fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|&(n, v)| (n.to_string(), v)).collect()
    }

    #[test]
    fn reads_the_fixture_strings() {
        // Fixture b2, job 2 (gpu_job): mem=1G is 1 x 1024 MiB.
        assert_eq!(
            parse("billing=2,cpu=2,gres/gpu=1,mem=1G,node=1").unwrap(),
            pairs(&[
                ("billing", 2),
                ("cpu", 2),
                ("gres/gpu", 1),
                ("mem", 1024),
                ("node", 1)
            ])
        );
        // --mem-per-cpu=100M -n2 shows as mem=200M.
        assert_eq!(
            parse("cpu=2,mem=200M,node=1").unwrap(),
            pairs(&[("cpu", 2), ("mem", 200), ("node", 1)])
        );
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn memory_units_are_powers_of_1024_in_mib_with_exact_fractions() {
        // 2.50G = 2.5 x 1024 = 2560 MiB; 1.25T = 1.25 x 1024 x 1024 = 1310720 MiB.
        assert_eq!(parse("mem=2.50G").unwrap(), pairs(&[("mem", 2560)]));
        assert_eq!(parse("mem=1.25T").unwrap(), pairs(&[("mem", 1_310_720)]));
        // 1P = 1024^3 MiB = 1073741824.
        assert_eq!(parse("mem=1P").unwrap(), pairs(&[("mem", 1_073_741_824)]));
        // A bare number for mem is MiB.
        assert_eq!(parse("mem=4096").unwrap(), pairs(&[("mem", 4096)]));
        // 2048K = 2 MiB exactly; 1536K = 1.5 MiB is rounded up to 2 (module rule).
        assert_eq!(parse("mem=2048K").unwrap(), pairs(&[("mem", 2)]));
        assert_eq!(parse("mem=1536K").unwrap(), pairs(&[("mem", 2)]));
        // 1K = 1/1024 MiB, rounded up to 1: never rounded to zero.
        assert_eq!(parse("mem=1K").unwrap(), pairs(&[("mem", 1)]));
        assert_eq!(parse("mem=0").unwrap(), pairs(&[("mem", 0)]));
        // gres/gpumem and bb/* are MiB too: 16G = 16384.
        assert_eq!(
            parse("gres/gpumem=16G,bb/datawarp=1T").unwrap(),
            pairs(&[("bb/datawarp", 1_048_576), ("gres/gpumem", 16384)])
        );
    }

    #[test]
    fn counts_use_base_one_and_round_fractions_up() {
        // energy=3K = 3 x 1024 = 3072; cpu=1.5 rounds up to 2.
        assert_eq!(
            parse("energy=3K,cpu=1.5").unwrap(),
            pairs(&[("cpu", 2), ("energy", 3072)])
        );
        assert_eq!(
            parse("license/matlab@srv=2").unwrap(),
            pairs(&[("license/matlab@srv", 2)])
        );
    }

    #[test]
    fn gpu_rule_untyped_wins_else_typed_sum_and_never_a_prefix_match() {
        // Both tracked (Slurm's recommendation): the untyped 4 counts, not 4 + 4.
        assert_eq!(
            parse("cpu=8,gres/gpu:a100=4,gres/gpu=4").unwrap(),
            pairs(&[("cpu", 8), ("gres/gpu", 4), ("gres/gpu:a100", 4)])
        );
        // Only typed entries: 2 + 1 = 3.
        assert_eq!(
            parse("gres/gpu:a100=2,gres/gpu:v100=1").unwrap(),
            pairs(&[("gres/gpu", 3), ("gres/gpu:a100", 2), ("gres/gpu:v100", 1)])
        );
        // gres/gpumem and gres/gpuutil are not GPUs: no gres/gpu appears.
        assert_eq!(
            parse("gres/gpumem=8G,gres/gpuutil=50").unwrap(),
            pairs(&[("gres/gpumem", 8192), ("gres/gpuutil", 50)])
        );
    }

    #[test]
    fn tres_names_follow_slurms_grammar() {
        for good in [
            "cpu",
            "mem",
            "energy",
            "node",
            "billing",
            "vmem",
            "pages",
            "gres/gpu",
            "gres/gpu:a100",
            "gres/gpumem",
            "fs/disk",
            "license/matlab@srv",
            "bb/datawarp",
            "ic/ofed",
            "1001",
        ] {
            assert_eq!(check_tres_name(good.as_bytes()), Ok(()), "{good:?}");
        }
        for bad in [
            "me m",
            "CPU",
            "Mem",
            "me\0m",
            "foo",
            "",
            "gres",
            "gres/",
            "gres/ gpu",
            "gres/g\tpu",
            "gres/g\u{e9}",
            "1001/x",
            "cpu/x",
            "license",
            "/gpu",
            " cpu",
            "cpu ",
        ] {
            assert!(check_tres_name(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let e = parse("cpu=2,me m=256000M").unwrap_err();
        assert_eq!(
            e.to_string(),
            "TRES entry \"me m=256000M\": unknown TRES type (SLURM has cpu, mem, energy, node, \
             billing, fs, vmem, pages, gres, license, bb, ic, in lower case)"
        );
        assert_eq!(
            parse("gres/=1").unwrap_err().reason,
            "the /name of the TRES is empty"
        );
        for bad in ["CPU=64", "foo=3", "me\0m=1", "gres=1", "node/x=1"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_tres_string() {
        for bad in [
            "cpu",
            "cpu=",
            "=2",
            "cpu=x",
            "cpu=2,",
            ",cpu=2",
            "cpu=2;mem=1G",
            "mem=1g",
            "mem=1E",
            "mem=2.G",
            "mem=.5G",
            "cpu=-1",
            "mem=1G?",
            "cpu=NONE",
            "cpu=1,cpu=2",
            "cpu=99999999999999999999999",
            "mem=18446744073709551615P",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = parse("cpu=2,mem=lots").unwrap_err();
        assert_eq!(
            e.to_string(),
            "TRES entry \"mem=lots\": expected NAME=NUMBER with an optional K/M/G/T/P suffix"
        );
    }
}

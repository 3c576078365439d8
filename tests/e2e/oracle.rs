//! The independent computation the pipeline is checked against: one plain `sacct` query, split
//! on `|` and `,` by hand (deliberately not the crate's parser), summed per account and per user,
//! and converted to Waldur units with integer arithmetic.

use std::collections::BTreeMap;
use std::process::Command;

use super::cluster::run;

/// One allocation line of the oracle query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `JobIDRaw`.
    pub job: String,
    /// `Account`.
    pub account: String,
    /// `User`.
    pub user: String,
    /// `ElapsedRaw` inside the window (`--truncate`).
    pub elapsed: u128,
    /// `AllocTRES` as name -> count; memory in MiB.
    pub alloc: BTreeMap<String, u128>,
}

/// `(account, user)`; `user` `None` is the account total.
pub type Key = (String, Option<String>);

/// Usage of one key: allocations counted and TRES x seconds per TRES.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of allocations.
    pub jobs: u64,
    /// TRES name -> TRES x seconds (memory in MiB x seconds).
    pub seconds: BTreeMap<String, u128>,
}

/// Runs the oracle query for the window `[start, end)`, both given as local wall-clock times of
/// `timezone` (`YYYY-MM-DDTHH:MM:SS`), with `TZ` set so sacct reads them in that zone.
pub fn query(timezone: &str, start: &str, end: &str) -> Result<(String, Vec<Row>), String> {
    let out = run(Command::new("sacct").env("TZ", timezone).args([
        "--format=JobIDRaw,Account,User,ElapsedRaw,AllocTRES",
        "-X",
        "-P",
        "-n",
        "--duplicates",
        "--truncate",
        "--noconvert",
        "-a",
        "-S",
        start,
        "-E",
        end,
    ]))?;
    let rows = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_row)
        .collect::<Result<_, _>>()?;
    Ok((out, rows))
}

fn parse_row(line: &str) -> Result<Row, String> {
    let f: Vec<&str> = line.split('|').collect();
    let [job, account, user, elapsed, alloc] = f.as_slice() else {
        return Err(format!("oracle: expected 5 fields in {line:?}"));
    };
    let elapsed = elapsed
        .parse()
        .map_err(|_| format!("oracle: ElapsedRaw {elapsed:?} in {line:?}"))?;
    let mut tres = BTreeMap::new();
    for pair in alloc.split(',').filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("oracle: TRES {pair:?} in {line:?}"))?;
        let count = if name == "mem" {
            mebibytes(value).ok_or_else(|| format!("oracle: memory {value:?} in {line:?}"))?
        } else {
            value
                .parse()
                .map_err(|_| format!("oracle: TRES count {value:?} in {line:?}"))?
        };
        tres.insert(name.to_string(), count);
    }
    Ok(Row {
        job: job.to_string(),
        account: account.to_string(),
        user: user.to_string(),
        elapsed,
        alloc: tres,
    })
}

/// `1024M` -> 1024, `2G` -> 2048, `3T` -> 3145728, `2048K` -> 2 (MiB; K must be whole MiB).
fn mebibytes(value: &str) -> Option<u128> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u128 = digits.parse().ok()?;
    match unit {
        "K" => (n % 1024 == 0).then_some(n / 1024),
        "M" => Some(n),
        "G" => Some(n * 1024),
        "T" => Some(n * 1024 * 1024),
        _ => None,
    }
}

/// Sums TRES x ElapsedRaw for the accounts starting with `prefix` (case-insensitive), per
/// account (`user` None) and per (account, user), for the TRES named in `tres`. A key has a TRES
/// when some allocation of it had that TRES in AllocTRES (its sum may still be 0).
pub fn aggregate(rows: &[Row], prefix: &str, tres: &[&str]) -> BTreeMap<Key, Usage> {
    let mut out: BTreeMap<Key, Usage> = BTreeMap::new();
    let prefix = prefix.to_ascii_lowercase();
    for row in rows
        .iter()
        .filter(|r| r.account.to_ascii_lowercase().starts_with(&prefix))
    {
        for key in [
            (row.account.clone(), None),
            (row.account.clone(), Some(row.user.clone())),
        ] {
            let usage = out.entry(key).or_default();
            usage.jobs += 1;
            for name in tres {
                if let Some(count) = row.alloc.get(*name) {
                    *usage.seconds.entry(name.to_string()).or_default() += count * row.elapsed;
                }
            }
        }
    }
    out
}

/// `tres_seconds / 60 / factor` rounded half-even to 2 places, written with exactly 2 places;
/// `factor` is `mantissa / 10^scale`. All in integers:
/// `amount x 100 = tres_seconds x 10^scale x 100 / (60 x mantissa)`.
pub fn waldur_amount(tres_seconds: u128, mantissa: u128, scale: u32) -> String {
    let numerator = tres_seconds * 10u128.pow(scale) * 100;
    let denominator = 60 * mantissa;
    let (mut hundredths, remainder) = (numerator / denominator, numerator % denominator);
    if 2 * remainder > denominator || (2 * remainder == denominator && hundredths % 2 == 1) {
        hundredths += 1;
    }
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

#[test]
fn oracle_rounding_is_half_even_on_hundredths() {
    // 90 s / 60 / 1 = 1.5 exactly.
    assert_eq!(waldur_amount(90, 1, 0), "1.50");
    // 1 s / 60 / 1 = 0.016666.. -> 0.02 (above half).
    assert_eq!(waldur_amount(1, 1, 0), "0.02");
    // 3 s / 60 / 2 = 0.025 -> a tie, 2 is even: 0.02; 9 s / 60 / 2 = 0.075 -> 0.08 (7 is odd).
    assert_eq!(waldur_amount(3, 2, 0), "0.02");
    assert_eq!(waldur_amount(9, 2, 0), "0.08");
    // factor 102.4 = 1024 / 10^1: 61440 MiB s / 60 / 102.4 = 10.
    assert_eq!(waldur_amount(61440, 1024, 1), "10.00");
    // factor 0.25: 3 GPU s / 60 / 0.25 = 0.2.
    assert_eq!(waldur_amount(3, 25, 2), "0.20");
}

#[test]
fn oracle_reads_a_captured_line() {
    // From shared/fixtures/sacct, reshaped to the oracle's five fields.
    let row =
        parse_row("3|hpc_alloc1|hpcuser2|4|billing=2,cpu=2,gres/gpu=1,mem=1G,node=1").unwrap();
    assert_eq!(row.elapsed, 4);
    assert_eq!(row.alloc["mem"], 1024);
    assert_eq!(row.alloc["gres/gpu"], 1);
    let pending = parse_row("9|hpc_alloc2|hpcuser3|0|").unwrap();
    assert!(pending.alloc.is_empty());
    let rows = vec![row, pending];
    let sums = aggregate(&rows, "HPC_", &["cpu", "gres/gpu"]);
    // cpu 2 x 4 s = 8; gpu 1 x 4 s = 4; the pending job adds a job but no TRES at all.
    assert_eq!(sums[&("hpc_alloc1".into(), None)].seconds["cpu"], 8);
    assert_eq!(
        sums[&("hpc_alloc1".into(), Some("hpcuser2".into()))].seconds["gres/gpu"],
        4
    );
    assert_eq!(sums[&("hpc_alloc2".into(), None)].jobs, 1);
    assert!(sums[&("hpc_alloc2".into(), None)].seconds.is_empty());
}

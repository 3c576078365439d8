//! The record types of each `kind`, as serde reads and writes them, with the field rules
//! (present-or-null `user`, a map key only once).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A billing period: one calendar month in the site's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// First instant of the month, RFC 3339 with the offset in force then.
    pub start: String,
    /// First instant of the next month (exclusive end), RFC 3339 with offset.
    pub end: String,
    /// IANA time zone the month was computed in.
    pub timezone: String,
    /// 1-based position of this period in the run, for "month 3/12" progress.
    pub index: u32,
    /// Number of periods in the run.
    pub count: u32,
    /// True when the whole period lies in the past.
    pub closed: bool,
}

/// Declares a per-account (or per-user) record of one period: `period`, `account`, `user`
/// (present, `null` for the account total), `jobs` and one map of amounts, named per kind.
macro_rules! account_record {
    ($(#[$doc:meta])* $name:ident, $(#[$map_doc:meta])* $map:ident: $value:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            /// `YYYY-MM`.
            pub period: String,
            /// SLURM account as sacct prints it.
            pub account: String,
            /// SLURM user; `None` (JSON `null`, which must be written) for the account total.
            #[serde(deserialize_with = "present_or_null")]
            pub user: Option<String>,
            /// Number of job allocations counted.
            pub jobs: u64,
            $(#[$map_doc])*
            #[serde(deserialize_with = "distinct_keys")]
            pub $map: BTreeMap<String, $value>,
        }
    };
}

account_record!(
    /// Raw usage of one account (or one user in it) in one period, in TRES x seconds.
    TresRecord,
    /// TRES name -> TRES x seconds. Memory is in MiB x seconds. Exact integers.
    tres_seconds: u128
);

account_record!(
    /// Usage of one account (or user) in one period, in Waldur units.
    UsageRecord,
    /// Waldur component type -> amount, a decimal string with exactly 2 places.
    components: String
);

/// Closes a period: consumers act on a period only once this arrived and `records` matches the
/// number of `tres`/`usage` records they saw for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthEndRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// Number of data records (`tres`, `job` or `usage`) of the period in the stream.
    pub records: u64,
    /// Number of job allocations counted.
    pub jobs: u64,
    /// Number of sacct lines read.
    pub lines: u64,
    /// Number of sacct lines skipped as malformed (only with `--skip-bad-lines`).
    pub skipped_lines: u64,
}

/// One job allocation, for audits (`slurm-usage --jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// `JobIDRaw` (or `JobID` when that is all the input has).
    pub job_id: String,
    /// SLURM account.
    pub account: String,
    /// SLURM user.
    pub user: String,
    /// Job state, e.g. `COMPLETED` or `CANCELLED by 0`.
    pub state: String,
    /// Elapsed seconds inside the period window.
    pub elapsed_seconds: u64,
    /// TRES name -> TRES x seconds for this job.
    #[serde(deserialize_with = "distinct_keys")]
    pub tres_seconds: BTreeMap<String, u128>,
}

/// What waldur-push did with one (period, account) or one part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// `YYYY-MM`.
    pub period: String,
    /// SLURM account.
    pub account: String,
    /// Waldur resource UUID, or `None` when the account has no resource.
    #[serde(deserialize_with = "present_or_null")]
    pub resource: Option<String>,
    /// `set_usage`, `set_user_usages`, `set_user_usage`, ...
    pub action: String,
    /// `updated`, `unchanged`, `dry_run`, `skipped` or `failed`.
    pub status: String,
    /// Why, when it was not a plain update.
    #[serde(default)]
    pub reason: Option<String>,
    /// The component, when the result is about one component (a held-back decrease, the
    /// per-user usage of one component).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The request that would be sent (`--dry-run`, `--offline`). Never holds credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestRecord>,
}

/// An HTTP request as shown in a `result` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// `POST`.
    pub method: String,
    /// Path from the installation root, e.g. `/api/marketplace-component-usages/set_usage/`.
    pub path: String,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// Reads an `Option` field that must be present, though it may be `null`: a record that lacks
/// `user` is damaged, not an account total.
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// Reads a JSON object into a map, refusing a key that comes twice: JSON parsers disagree on
/// which of two values wins, so `{"cpu": 1, "cpu": 2}` has no meaning to bill.
fn distinct_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Distinct<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Distinct<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "the key {key:?} comes twice"
                    )));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Distinct(std::marker::PhantomData))
}

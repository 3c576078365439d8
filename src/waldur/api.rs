//! Typed Waldur endpoints and payloads (notes/waldur-api.md §3).
//!
//! Every response property is optional on the wire (`field=` selection), so the response types
//! default what is missing; UUIDs are normalised to 32 lower-case hex digits.

use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::http::{Client, Listing, Reply};
use super::url::Query;
use crate::config::normalize_uuid;
use crate::decimal::Amount;

/// Endpoint paths relative to `/api/`.
pub mod path {
    /// The token's user.
    pub const USERS_ME: &str = "users/me/";
    /// Component usages list.
    pub const COMPONENT_USAGES: &str = "marketplace-component-usages/";
    /// Per-user usages list.
    pub const USER_USAGES: &str = "marketplace-component-user-usages/";
    /// Resource totals.
    pub const SET_USAGE: &str = "marketplace-component-usages/set_usage/";
    /// Offering users list.
    pub const OFFERING_USERS: &str = "marketplace-offering-users/";
    /// Provider resources list.
    pub const RESOURCES: &str = "marketplace-provider-resources/";
    /// Agent identities.
    pub const IDENTITIES: &str = "marketplace-site-agent-identities/";
    /// The server's version (staff and support only).
    pub const VERSION: &str = "version/";

    /// One provider offering.
    pub fn offering(uuid: &str) -> String {
        format!("marketplace-provider-offerings/{uuid}/")
    }

    /// Bulk per-user usages of one component usage.
    pub fn set_user_usages(component_usage: &str) -> String {
        format!("marketplace-component-usages/{component_usage}/set_user_usages/")
    }

    /// One user's usage of one component usage.
    pub fn set_user_usage(component_usage: &str) -> String {
        format!("marketplace-component-usages/{component_usage}/set_user_usage/")
    }
}

fn hex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.map(|s| normalize_uuid(&s)).unwrap_or_default())
}

fn opt_hex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.map(|s| normalize_uuid(&s)))
}

/// `GET users/me/`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserMe {
    /// Login name.
    #[serde(default)]
    pub username: Option<String>,
    /// Staff users may backfill past months.
    #[serde(default)]
    pub is_staff: Option<bool>,
}

/// One component of an offering.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct OfferingComponent {
    /// The key used in usage reports.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `usage`, `limit`, `fixed`, `one` or `few`.
    #[serde(default)]
    pub billing_type: Option<String>,
    /// Unit label.
    #[serde(default)]
    pub measured_unit: Option<String>,
}

impl OfferingComponent {
    /// Whether `set_usage` accepts this component: usage, limit and prepaid (`one`).
    pub fn reportable(&self) -> bool {
        matches!(
            self.billing_type.as_deref(),
            None | Some("usage") | Some("limit") | Some("one")
        )
    }
}

/// `GET marketplace-provider-offerings/{uuid}/`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Offering {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Components.
    #[serde(default)]
    pub components: Vec<OfferingComponent>,
}

/// A provider resource.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Resource {
    /// UUID (hex).
    #[serde(default, deserialize_with = "hex")]
    pub uuid: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// The SLURM account.
    #[serde(default)]
    pub backend_id: Option<String>,
    /// `OK`, `Erred`, `Updating`, ...
    #[serde(default)]
    pub state: Option<String>,
}

/// Resource states whose usage Waldur accepts.
pub const REPORTABLE_STATES: [&str; 3] = ["OK", "Updating", "Terminating"];

impl Resource {
    /// Usage is accepted for OK, Updating and Terminating resources.
    pub fn reportable(&self) -> bool {
        REPORTABLE_STATES.contains(&self.state.as_deref().unwrap_or(""))
    }
}

/// A stored component usage (one per resource, component and month).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ComponentUsage {
    /// UUID (hex): the handle for per-user usages.
    #[serde(default, deserialize_with = "hex")]
    pub uuid: String,
    /// Component type.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// Stored amount.
    pub usage: Amount,
    /// The resource.
    #[serde(default, deserialize_with = "opt_hex")]
    pub resource_uuid: Option<String>,
}

/// A stored per-user usage.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ComponentUserUsage {
    /// Cluster user name.
    #[serde(default)]
    pub username: String,
    /// Stored amount.
    pub usage: Amount,
    /// URL of the parent component usage.
    #[serde(default)]
    pub component_usage: Option<String>,
    /// Component type.
    #[serde(default)]
    pub component_type: Option<String>,
    /// URL of the offering user the row is linked to; `None` when it has no link.
    #[serde(default)]
    pub user: Option<String>,
}

impl ComponentUserUsage {
    /// UUID (hex) of the parent component usage: the last path segment of its URL.
    pub fn component_usage_uuid(&self) -> Option<String> {
        let url = self.component_usage.as_deref()?;
        let segment = url.trim_end_matches('/').rsplit('/').next()?;
        Some(normalize_uuid(segment))
    }
}

/// An offering user: the link between a cluster user name and a Waldur user.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OfferingUser {
    /// URL, sent as `user` in per-user usages.
    #[serde(default)]
    pub url: Option<String>,
    /// Cluster user name; empty before one is assigned.
    #[serde(default)]
    pub username: Option<String>,
}

/// One item of `set_usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageItem {
    /// Component type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Month-to-date total.
    pub amount: Amount,
}

/// Body of `set_usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetUsage {
    /// Resource UUID (hex).
    pub resource: String,
    /// The instant whose month the usage belongs to.
    pub date: String,
    /// The components.
    pub usages: Vec<UsageItem>,
}

/// One user's usage of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserUsageItem {
    /// Cluster user name.
    pub username: String,
    /// Month-to-date total.
    pub usage: Amount,
    /// Offering-user URL, when the user name is known to Waldur.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Body of `set_user_usages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetUserUsages {
    /// The users.
    pub usages: Vec<UserUsageItem>,
}

/// `GET users/me/` (with its reply, for the `Date` header).
pub fn users_me(client: &Client) -> Result<(UserMe, Reply), ApiError> {
    client.get_json(
        path::USERS_ME,
        &Query::new().fields(&["username", "is_staff"]),
    )
}

/// `GET marketplace-provider-offerings/{uuid}/` with its components.
pub fn offering(client: &Client, uuid: &str) -> Result<Offering, ApiError> {
    client
        .get_json(
            &path::offering(uuid),
            &Query::new().fields(&["name", "components"]),
        )
        .map(|(o, _)| o)
}

/// The offering's resources in every state but Terminated.
pub fn resources(client: &Client, offering_uuid: &str) -> Result<Vec<Resource>, ApiError> {
    let mut q = Query::new().with("offering_uuid", offering_uuid);
    for state in ["OK", "Erred", "Updating", "Terminating", "Creating"] {
        q = q.with("state", state);
    }
    client.list(
        path::RESOURCES,
        &q.fields(&["uuid", "name", "backend_id", "state"]),
    )
}

/// Every component usage of the offering in one billing period (`YYYY-MM-01`).
pub fn component_usages(
    client: &Client,
    offering_uuid: &str,
    billing_period: &str,
) -> Result<Vec<ComponentUsage>, ApiError> {
    component_usage_listing(client, offering_uuid, billing_period).map(|l| l.items)
}

/// [`component_usages`] with the server's count, for [`listing_gap`].
///
/// The server orders by `-date, component.type`, which ties (every resource's `cpu` of one
/// day). A total order cannot be asked for: `o` accepts only `billing_period`,
/// `missing_usage_policy` and `usage` (`ComponentUsageOEnum`), no `uuid`. The filters
/// (`offering_uuid`, `billing_period`) keep the listing to one month of one offering, and the
/// caller checks the rows against `X-Result-Count` instead.
pub fn component_usage_listing(
    client: &Client,
    offering_uuid: &str,
    billing_period: &str,
) -> Result<Listing<ComponentUsage>, ApiError> {
    client.list_counted(
        path::COMPONENT_USAGES,
        &Query::new()
            .with("offering_uuid", offering_uuid)
            .with("billing_period", billing_period)
            .fields(&["uuid", "type", "usage", "resource_uuid"]),
    )
}

/// Why a listing of component usages cannot be taken as complete, if it cannot: the rows read
/// differ from the first page's `X-Result-Count`, or a row came twice (pages overlapped, so
/// others were missed), or several pages came without a count to check them against.
pub fn listing_gap(listing: &Listing<ComponentUsage>) -> Option<String> {
    let read = listing.items.len() as u64;
    let distinct = listing
        .items
        .iter()
        .map(|u| u.uuid.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;
    match listing.result_count {
        Some(count) if count == read && distinct == read => None,
        None if listing.pages <= 1 && distinct == read => None,
        Some(count) => Some(format!(
            "{read} rows read ({distinct} distinct) over {} page(s) where the first page \
             counted {count}",
            listing.pages
        )),
        None => Some(format!(
            "{read} rows read ({distinct} distinct) over {} pages without an X-Result-Count \
             to check them against",
            listing.pages
        )),
    }
}

/// Every per-user usage of the offering in one billing period (`YYYY-MM-01`).
pub fn user_usages(
    client: &Client,
    offering_uuid: &str,
    billing_period: &str,
) -> Result<Vec<ComponentUserUsage>, ApiError> {
    client.list(
        path::USER_USAGES,
        &Query::new()
            .with("offering_uuid", offering_uuid)
            .with("component_usage__billing_period", billing_period)
            .fields(&[
                "username",
                "usage",
                "component_usage",
                "component_type",
                "user",
            ]),
    )
}

/// The offering's users.
pub fn offering_users(client: &Client, offering_uuid: &str) -> Result<Vec<OfferingUser>, ApiError> {
    client.list(
        path::OFFERING_USERS,
        &Query::new()
            .with("offering_uuid", offering_uuid)
            .fields(&["username", "url"]),
    )
}

/// `GET version/`: the server's version, e.g. `7.0.7`. Staff and support only; others get 403.
/// Best effort ([`Client::optional`]): its failure never stops the run.
pub fn version(client: &Client) -> Result<String, ApiError> {
    let client = client.optional();
    #[derive(Deserialize)]
    struct Version {
        #[serde(default)]
        version: String,
    }
    client
        .get_json::<Version>(path::VERSION, &Query::new())
        .map(|(v, _)| v.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/waldur-api/examples")
            .join(name);
        std::fs::read_to_string(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
    }

    #[test]
    fn reads_the_documented_example_bodies() {
        let text = example("marketplace_component_usages_list.response.200.json");
        {
            let list: Vec<ComponentUsage> = serde_json::from_str(&text).unwrap();
            assert_eq!(list[0].type_, "cpu");
            assert_eq!(list[0].usage, Amount::parse("146.99").unwrap());
            assert_eq!(
                list[0].resource_uuid.as_deref(),
                Some("9b1f3e5d7c2a4b6e8d0f1a3c5e7b9d2f")
            );
        }
        let text = example("marketplace_component_user_usages_list.response.200.json");
        {
            let list: Vec<ComponentUserUsage> = serde_json::from_str(&text).unwrap();
            assert_eq!(
                list[0].component_usage_uuid().as_deref(),
                Some("e1d2c3b4a5f64e7d8c9b0a1f2e3d4c5b")
            );
            assert_eq!(list[0].username, "jdoe");
        }
    }

    #[test]
    fn payloads_have_the_documented_shape() {
        let body = SetUsage {
            resource: "9b1f3e5d7c2a4b6e8d0f1a3c5e7b9d2f".into(),
            date: "2024-03-15T12:00:00Z".into(),
            usages: vec![UsageItem {
                type_: "cpu".into(),
                amount: Amount::parse("146.9").unwrap(),
            }],
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"resource":"9b1f3e5d7c2a4b6e8d0f1a3c5e7b9d2f","date":"2024-03-15T12:00:00Z","usages":[{"type":"cpu","amount":"146.90"}]}"#
        );
        let users = SetUserUsages {
            usages: vec![
                UserUsageItem {
                    username: "jdoe".into(),
                    usage: Amount::from_hundredths(10144),
                    user: Some("https://w/api/marketplace-offering-users/a7/".into()),
                },
                UserUsageItem {
                    username: "legacy".into(),
                    usage: Amount::ZERO,
                    user: None,
                },
            ],
        };
        assert_eq!(
            serde_json::to_string(&users).unwrap(),
            r#"{"usages":[{"username":"jdoe","usage":"101.44","user":"https://w/api/marketplace-offering-users/a7/"},{"username":"legacy","usage":"0.00"}]}"#
        );
    }

    #[test]
    fn a_listing_is_complete_only_when_its_distinct_rows_match_the_count() {
        let row = |n: u32| ComponentUsage {
            uuid: format!("{n:032x}"),
            type_: "cpu".into(),
            usage: Amount::ZERO,
            resource_uuid: None,
        };
        let listing = |rows: &[u32], count: Option<u64>, pages: u64| Listing {
            items: rows.iter().map(|&n| row(n)).collect(),
            result_count: count,
            pages,
        };
        assert_eq!(listing_gap(&listing(&[1, 2, 3], Some(3), 2)), None);
        assert_eq!(listing_gap(&listing(&[1, 2], None, 1)), None);
        // Pages overlapped: as many rows as counted, but one twice, so one was never seen.
        assert_eq!(
            listing_gap(&listing(&[1, 2, 2], Some(3), 2)).as_deref(),
            Some("3 rows read (2 distinct) over 2 page(s) where the first page counted 3")
        );
        // A row appeared mid-listing.
        assert_eq!(
            listing_gap(&listing(&[1, 2, 3, 4], Some(3), 2)).as_deref(),
            Some("4 rows read (4 distinct) over 2 page(s) where the first page counted 3")
        );
        assert_eq!(
            listing_gap(&listing(&[1, 2], None, 2)).as_deref(),
            Some(
                "2 rows read (2 distinct) over 2 pages without an X-Result-Count to check them against"
            )
        );
    }

    #[test]
    fn numbers_and_dashed_uuids_from_the_wire_are_normalised() {
        let cu: ComponentUsage = serde_json::from_str(
            r#"{"uuid":"E1D2C3B4-A5F6-4E7D-8C9B-0A1F2E3D4C5B","type":"cpu","usage":100}"#,
        )
        .unwrap();
        assert_eq!(cu.uuid, "e1d2c3b4a5f64e7d8c9b0a1f2e3d4c5b");
        assert_eq!(cu.usage, Amount::from_hundredths(10000));
        assert!(
            serde_json::from_str::<ComponentUsage>(r#"{"uuid":"x","type":"cpu"}"#).is_err(),
            "a usage row without `usage` must not read as zero"
        );
    }
}

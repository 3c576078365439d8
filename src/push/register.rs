//! The agent identity Waldur shows for the offering (`agent-<offering uuid>` and its `report`
//! service), as the reference agent registers it, so the operator sees which reporter feeds
//! the offering. A failure here is only a warning: it never blocks usage.
//!
//! Unlike the reference agent, which rewrites the identity every 30-minute cycle, this writes
//! only what is missing or outdated: the identity when absent (POST) or of another version
//! (PUT), the `report` service when the identity lacks it. A steady run costs one GET.

use serde_json::{Value, json};

use crate::waldur::api::path;
use crate::waldur::error::ApiError;
use crate::waldur::http::Client;
use crate::waldur::url::Query;

/// The identity name for an offering.
pub fn identity_name(offering_uuid: &str) -> String {
    format!("agent-{offering_uuid}")
}

/// The service registered under the identity.
pub const SERVICE: &str = "report";

/// What [`register`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The identity was created or updated.
    pub identity_written: bool,
    /// The `report` service was registered.
    pub service_written: bool,
}

/// Make sure the identity (of this version) and its `report` service exist. Every call is
/// best effort ([`Client::optional`]): the POSTs are not retried and no failure here counts
/// towards stopping the usage that follows.
pub fn register(client: &Client, offering_uuid: &str, now: &str) -> Result<Registered, ApiError> {
    let client = &client.optional();
    let name = identity_name(offering_uuid);
    let version = env!("CARGO_PKG_VERSION");
    let found: Vec<Value> = client.list(
        path::IDENTITIES,
        &Query::new()
            .with("name", name.as_str())
            .with("offering_uuid", offering_uuid)
            .fields(&["uuid", "name", "version", "services"]),
    )?;
    let existing = found
        .iter()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name.as_str()));
    let body = json!({
        "offering": offering_uuid,
        "name": name,
        "version": version,
        "last_restarted": now,
        "dependencies": [{"package": "waldur-usage", "version": version}],
    });
    let decode = |detail: String| ApiError::Decode {
        method: "GET".into(),
        path: client.display_path(path::IDENTITIES),
        detail,
    };
    let (uuid, identity_written, has_service) = match existing {
        Some(i) => {
            let uuid = i
                .get("uuid")
                .and_then(Value::as_str)
                .ok_or_else(|| decode("the identity has no uuid".into()))?
                .to_string();
            let has_service = i
                .get("services")
                .and_then(Value::as_array)
                .is_some_and(|s| {
                    s.iter()
                        .any(|s| s.get("name").and_then(Value::as_str) == Some(SERVICE))
                });
            let same_version = i.get("version").and_then(Value::as_str) == Some(version);
            if !same_version {
                client.put(&format!("{}{uuid}/", path::IDENTITIES), &body)?;
            }
            (uuid, !same_version, has_service)
        }
        None => {
            let reply = client.post(path::IDENTITIES, &body)?;
            let created: Value =
                serde_json::from_str(&reply.body).map_err(|e| decode(e.to_string()))?;
            let uuid = created
                .get("uuid")
                .and_then(Value::as_str)
                .ok_or_else(|| decode("the new identity has no uuid".into()))?
                .to_string();
            (uuid, true, false)
        }
    };
    if !has_service {
        client.post(
            &format!("{}{uuid}/register_service/", path::IDENTITIES),
            &json!({"name": SERVICE, "mode": SERVICE}),
        )?;
    }
    Ok(Registered {
        identity_written,
        service_written: !has_service,
    })
}

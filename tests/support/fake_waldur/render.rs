//! JSON renderings of the fake's objects, shaped like the subset schema's response models.
//! URLs are absolute, built from the request's origin (`http://host:port`).

use serde_json::{Value, json};

use super::setup::{ComponentSetup, OfferingUserSetup, ResourceSetup, TokenSetup, det_uuid, tags};
use super::state::{Identity, Processor, Service, State, UsageRow, UserUsageRow};

/// Creation time of the objects that come from the setup.
const SETUP_CREATED: &str = "2025-11-03T09:20:00+00:00";
/// The consumer-side project and customer every resource belongs to.
const PROJECT_NAME: &str = "Research project";
const CONSUMER_NAME: &str = "Research customer";

fn project_uuid() -> String {
    det_uuid(tags::MISC, 1)
}

fn consumer_uuid() -> String {
    det_uuid(tags::MISC, 2)
}

/// The service provider record's UUID.
pub fn service_provider_uuid() -> String {
    det_uuid(tags::MISC, 3)
}

/// The UUID of the Waldur user behind a token.
pub fn token_user_uuid(index: usize) -> String {
    det_uuid(tags::USER, index as u64 + 1)
}

/// The UUID of the Waldur user behind an offering user.
pub fn offering_user_user_uuid(index: usize) -> String {
    det_uuid(tags::USER, 0x10000 + index as u64)
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "x".into() } else { s }
}

/// `users/me`.
pub fn user_me(origin: &str, index: usize, t: &TokenSetup, state: &State) -> Value {
    let uuid = token_user_uuid(index);
    let offering = &state.offering;
    let permissions = if t.is_staff {
        json!([])
    } else {
        json!([
            {
                "role_name": "OFFERING.MANAGER",
                "role_uuid": det_uuid(tags::MISC, 0x10),
                "scope_type": "offering",
                "scope_uuid": offering.uuid,
                "scope_name": offering.name,
                "customer_uuid": offering.customer_uuid,
                "customer_name": "HPC provider",
                "project_uuid": null,
                "resource_uuid": null,
                "expiration_time": null
            },
            {
                "role_name": "CUSTOMER.OWNER",
                "role_uuid": det_uuid(tags::MISC, 0x11),
                "scope_type": "customer",
                "scope_uuid": offering.customer_uuid,
                "scope_name": "HPC provider",
                "customer_uuid": offering.customer_uuid,
                "customer_name": "HPC provider",
                "project_uuid": null,
                "resource_uuid": null,
                "expiration_time": null
            }
        ])
    };
    json!({
        "url": format!("{origin}/api/users/{uuid}/"),
        "uuid": uuid,
        "username": t.username,
        "slug": slug(&t.username),
        "full_name": format!("{} (fake)", t.username),
        "email": format!("{}@example.org", t.username),
        "is_staff": t.is_staff,
        "is_active": true,
        "is_support": false,
        // The real server returns the caller's own token here: a client must never log it.
        "token": t.token,
        "token_lifetime": null,
        "token_expires_at": null,
        "registration_method": "default",
        "date_joined": SETUP_CREATED,
        "permissions": permissions,
        "first_name": t.username,
        "last_name": "",
        "preferred_language": "en",
        "notifications_enabled": true
    })
}

/// One offering component.
pub fn component(state: &State, index: usize, c: &ComponentSetup) -> Value {
    json!({
        "uuid": det_uuid(tags::COMPONENT, index as u64 + 1),
        "offering_uuid": state.offering.uuid,
        "billing_type": c.billing_type,
        "type": c.type_,
        "name": c.type_.to_uppercase(),
        "description": "",
        "measured_unit": c.measured_unit,
        "unit_factor": c.unit_factor,
        "limit_period": null,
        "limit_amount": null,
        "limit_decimal_places": 0,
        "article_code": "",
        "max_value": null,
        "min_value": null,
        "max_available_limit": null,
        "is_boolean": false,
        "default_limit": null,
        "factor": null,
        "is_builtin": false,
        "is_prepaid": c.billing_type == "one",
        "overage_component": null
    })
}

/// The provider offering detail.
pub fn offering(origin: &str, state: &State) -> Value {
    let o = &state.offering;
    let components: Vec<Value> = o
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| component(state, i, c))
        .collect();
    json!({
        "url": format!("{origin}/api/marketplace-provider-offerings/{}/", o.uuid),
        "uuid": o.uuid,
        "created": SETUP_CREATED,
        "name": o.name,
        "slug": slug(&o.name),
        "description": "",
        "customer": format!("{origin}/api/customers/{}/", o.customer_uuid),
        "customer_uuid": o.customer_uuid,
        "customer_name": "HPC provider",
        "type": "Marketplace.Slurm",
        "state": "Active",
        "shared": true,
        "billable": true,
        "backend_id": "",
        "attributes": {},
        "components": components,
        "partitions": [],
        "plugin_options": {
            "service_provider_can_create_offering_user": true,
            "enforce_qos": false
        }
    })
}

/// The offering's user-attribute config.
pub fn user_attribute_config(state: &State) -> Value {
    json!({
        "uuid": det_uuid(tags::MISC, 0x20),
        "created": SETUP_CREATED,
        "modified": SETUP_CREATED,
        "offering_uuid": state.offering.uuid,
        "offering_name": state.offering.name,
        "expose_username": true,
        "expose_full_name": true,
        "expose_email": true,
        "expose_phone_number": false,
        "expose_organization": false,
        "exposed_fields": ["username", "full_name", "email"],
        "is_default": false
    })
}

/// The service provider of the offering's customer.
pub fn service_provider(origin: &str, state: &State) -> Value {
    let uuid = service_provider_uuid();
    let customer = &state.offering.customer_uuid;
    json!({
        "url": format!("{origin}/api/marketplace-service-providers/{uuid}/"),
        "uuid": uuid,
        "created": SETUP_CREATED,
        "description": "",
        "enable_notifications": true,
        "customer": format!("{origin}/api/customers/{customer}/"),
        "customer_name": "HPC provider",
        "customer_uuid": customer,
        "customer_abbreviation": "HPC",
        "customer_slug": "hpc-provider",
        "customer_native_name": "",
        "customer_country": "",
        "offering_count": 1,
        "allowed_domains": []
    })
}

/// A provider resource.
pub fn resource(origin: &str, state: &State, r: &ResourceSetup) -> Value {
    let o = &state.offering;
    let limits: serde_json::Map<String, Value> = o
        .components
        .iter()
        .map(|c| (c.type_.clone(), json!(0)))
        .collect();
    json!({
        "url": format!("{origin}/api/marketplace-provider-resources/{}/", r.uuid),
        "uuid": r.uuid,
        "name": r.name,
        "slug": slug(&r.name),
        "description": "",
        "state": r.state,
        "backend_id": r.backend_id,
        "effective_id": "",
        "created": SETUP_CREATED,
        "modified": SETUP_CREATED,
        "offering": format!("{origin}/api/marketplace-provider-offerings/{}/", o.uuid),
        "offering_uuid": o.uuid,
        "offering_name": o.name,
        "offering_type": "Marketplace.Slurm",
        "offering_slug": slug(&o.name),
        "offering_backend_id": "",
        "offering_plugin_options": {"enforce_qos": false},
        "provider_uuid": o.customer_uuid,
        "provider_name": "HPC provider",
        "project": format!("{origin}/api/projects/{}/", project_uuid()),
        "project_uuid": project_uuid(),
        "project_name": PROJECT_NAME,
        "project_slug": slug(PROJECT_NAME),
        "customer_uuid": consumer_uuid(),
        "customer_name": CONSUMER_NAME,
        "customer_slug": slug(CONSUMER_NAME),
        "plan_name": "Default",
        "plan_uuid": det_uuid(tags::MISC, 0x30),
        "limits": limits,
        "current_usages": {},
        "attributes": {"name": r.name},
        "backend_metadata": {
            "state": r.state,
            "runtime_state": "",
            "action": "",
            "instance_name": null
        },
        "is_usage_based": true,
        "is_limit_based": false,
        "end_date": null,
        "username": null
    })
}

/// A component usage.
pub fn usage(state: &State, u: &UsageRow) -> Value {
    let s = &u.stored;
    with_owners(
        state,
        &s.resource_uuid,
        json!({
            "uuid": s.uuid,
            "created": u.created,
            "description": u.description,
            "type": s.component_type,
            "name": s.component_type.to_uppercase(),
            "measured_unit": measured_unit(state, &s.component_type),
            "usage": s.usage,
            "date": s.date,
            "missing_usage_policy": u.policy,
            "recurring": u.policy == "reuse",
            "billing_period": s.billing_period,
            "modified_by": u.modified_by
        }),
    )
}

/// The measured unit of a component of the offering ("" for an unknown one).
fn measured_unit<'s>(state: &'s State, component_type: &str) -> &'s str {
    state
        .offering
        .components
        .iter()
        .find(|c| c.type_ == component_type)
        .map_or("", |c| c.measured_unit.as_str())
}

/// `row` with the fields a usage row shares: its resource, offering, project and customer.
fn with_owners(state: &State, resource_uuid: &str, mut row: Value) -> Value {
    let resource = state.resource(resource_uuid);
    let owners = json!({
        "resource_name": resource.map(|r| r.name.as_str()).unwrap_or(""),
        "resource_uuid": resource_uuid,
        "offering_name": state.offering.name,
        "offering_uuid": state.offering.uuid,
        "project_name": PROJECT_NAME,
        "project_uuid": project_uuid(),
        "customer_name": CONSUMER_NAME,
        "customer_uuid": consumer_uuid()
    });
    let fields = row.as_object_mut().expect("a row is an object");
    if let Value::Object(owners) = owners {
        fields.extend(owners);
    }
    row
}

/// A component user usage.
pub fn user_usage(origin: &str, state: &State, u: &UserUsageRow) -> Value {
    let s = &u.stored;
    let parent = state
        .usages
        .iter()
        .find(|p| p.stored.uuid == s.component_usage_uuid);
    with_owners(
        state,
        &s.resource_uuid,
        json!({
            "uuid": s.uuid,
            "user": s.user,
            "username": s.username,
            "component_usage": format!("{origin}/api/marketplace-component-usages/{}/", s.component_usage_uuid),
            "usage": s.usage,
            "measured_unit": measured_unit(state, &s.component_type),
            "description": "",
            "created": u.created,
            "modified": u.modified,
            "backend_id": "",
            "component_type": s.component_type,
            "date": parent.map(|p| p.stored.date.as_str()).unwrap_or(SETUP_CREATED),
            "billing_period": s.billing_period
        }),
    )
}

/// The URL of an offering user.
pub fn offering_user_url(origin: &str, uuid: &str) -> String {
    format!("{origin}/api/marketplace-offering-users/{uuid}/")
}

/// An offering user.
pub fn offering_user(origin: &str, state: &State, index: usize, u: &OfferingUserSetup) -> Value {
    let user_uuid = offering_user_user_uuid(index);
    let o = &state.offering;
    json!({
        "url": offering_user_url(origin, &u.uuid),
        "uuid": u.uuid,
        "user": format!("{origin}/api/users/{user_uuid}/"),
        "offering": format!("{origin}/api/marketplace-provider-offerings/{}/", o.uuid),
        "username": u.username,
        "offering_uuid": o.uuid,
        "offering_name": o.name,
        "user_uuid": user_uuid,
        "user_username": format!("{}@university.example", u.username),
        "user_full_name": format!("User {}", u.username),
        "user_first_name": "User",
        "user_last_name": u.username,
        "user_email": format!("{}@university.example", u.username),
        "created": SETUP_CREATED,
        "modified": SETUP_CREATED,
        "customer_uuid": consumer_uuid(),
        "customer_name": CONSUMER_NAME,
        "is_restricted": false,
        "state": "OK",
        "runtime_state": "Active",
        "has_consent": true
    })
}

fn service_json(origin: &str, s: &Service, nested: bool, state: &State) -> Value {
    let mut v = json!({
        "uuid": s.uuid,
        "url": format!("{origin}/api/marketplace-site-agent-services/{}/", s.uuid),
        "name": s.name,
        "state": "Active",
        "created": s.created,
        "modified": s.modified,
        "mode": s.mode,
        "statistics": {}
    });
    if !nested {
        let identity_name = state
            .identities
            .iter()
            .find(|i| i.uuid == s.identity)
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let processors: Vec<Value> = state
            .processors
            .iter()
            .filter(|p| p.service == s.uuid)
            .map(|p| processor(origin, p, true, state))
            .collect();
        v["identity"] = json!(s.identity);
        v["identity_name"] = json!(identity_name);
        v["processors"] = json!(processors);
    }
    v
}

/// An agent service (nested in an identity, or the full `AgentService`).
pub fn service(origin: &str, s: &Service, state: &State) -> Value {
    service_json(origin, s, false, state)
}

/// An agent processor (nested in a service, or the full `AgentProcessor`).
pub fn processor(origin: &str, p: &Processor, nested: bool, state: &State) -> Value {
    let mut v = json!({
        "uuid": p.uuid,
        "url": format!("{origin}/api/marketplace-site-agent-processors/{}/", p.uuid),
        "name": p.name,
        "backend_type": p.backend_type,
        "created": p.created,
        "modified": p.modified,
        "last_run": null,
        "backend_version": p.backend_version
    });
    if !nested {
        let service_name = state
            .services
            .iter()
            .find(|s| s.uuid == p.service)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        v["service"] = json!(p.service);
        v["service_name"] = json!(service_name);
    }
    v
}

/// An agent identity.
pub fn identity(origin: &str, i: &Identity, state: &State) -> Value {
    let services: Vec<Value> = state
        .services
        .iter()
        .filter(|s| s.identity == i.uuid)
        .map(|s| service_json(origin, s, true, state))
        .collect();
    let mut v = json!({
        "uuid": i.uuid,
        "url": format!("{origin}/api/marketplace-site-agent-identities/{}/", i.uuid),
        "offering": i.offering,
        "created_by": i.created_by,
        "name": i.name,
        "created": i.created,
        "modified": i.modified,
        "services": services,
        "compatibility": {"status": "compatible", "message": "", "minimum_required": "0.9.0"},
        "version": i.version,
        "dependencies": i.dependencies,
        "config_file_path": i.config_file_path,
        "config_file_content": i.config_file_content
    });
    if let Some(l) = &i.last_restarted {
        v["last_restarted"] = json!(l);
    }
    v
}

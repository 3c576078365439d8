//! Site-agent identity bookkeeping (`notes/waldur-api.md` §3.14): identities (list by
//! `name`, create 201, PUT 200), `register_service` (201 new / 200 existing) and
//! `register_processor` (201 new / 200 existing).

use serde_json::{Value, json};

use super::super::openapi::{Spec, normalize_uuid};
use super::http::Response;
use super::render;
use super::routes::{Ctx, Route, bad_request, detail, paginate, template, uuid_filter};
use super::setup::tags;
use super::state::{Identity, Processor, Service, State};
use super::validate;

fn body(ctx: &Ctx, route: &Route) -> Result<Value, Response> {
    validate::body(
        Spec::subset(),
        ctx.req.method.as_str(),
        template(route),
        &ctx.req.body,
    )
    .map_err(bad_request)
}

fn opt_string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// `GET /api/marketplace-site-agent-identities/` with filters `name`, `offering_uuid`.
pub fn list_identities(state: &State, ctx: &Ctx) -> Response {
    let offering = or_answer!(uuid_filter(ctx, "offering_uuid"));
    let name = ctx.q("name").filter(|s| !s.is_empty());
    let items = state
        .identities
        .iter()
        .filter(|i| name.is_none_or(|n| i.name == n))
        .filter(|i| offering.as_ref().is_none_or(|o| &i.offering == o))
        .collect();
    paginate(ctx, items, |i| render::identity(&ctx.origin, i, state))
}

/// `GET /api/marketplace-site-agent-identities/{uuid}/`.
pub fn get_identity(state: &State, ctx: &Ctx, uuid: &str) -> Response {
    match find_identity(state, uuid) {
        Some(i) => Response::json(
            200,
            &render::identity(&ctx.origin, &state.identities[i], state),
        ),
        None => detail(404, "No AgentIdentity matches the given query."),
    }
}

fn find_identity(state: &State, uuid: &str) -> Option<usize> {
    let uuid = normalize_uuid(uuid)?;
    state.identities.iter().position(|i| i.uuid == uuid)
}

/// Checks the `offering` of an identity body; `Err` is the 400.
fn offering_of(state: &State, body: &Value) -> Result<String, Response> {
    let text = body["offering"].as_str().unwrap_or_default();
    match normalize_uuid(text) {
        Some(u) if u == state.offering.uuid => Ok(u),
        other => Err(bad_request(json!({
            "offering": [format!("Object with uuid={} does not exist.", other.unwrap_or_default())]
        }))),
    }
}

fn fill(identity: &mut Identity, body: &Value) {
    identity.name = body["name"].as_str().unwrap_or_default().to_string();
    identity.version = opt_string(body, "version");
    identity.dependencies = body.get("dependencies").cloned().unwrap_or(json!([]));
    identity.config_file_path = opt_string(body, "config_file_path");
    identity.config_file_content = opt_string(body, "config_file_content");
    identity.last_restarted = opt_string(body, "last_restarted");
}

/// `POST /api/marketplace-site-agent-identities/` → 201.
pub fn create_identity(state: &mut State, ctx: &Ctx) -> Response {
    let body = or_answer!(body(ctx, &Route::Identities));
    let offering = or_answer!(offering_of(state, &body));
    let now = state.render(state.now());
    let mut identity = Identity {
        uuid: state.next_uuid(tags::IDENTITY),
        offering,
        name: String::new(),
        created_by: Some(render::token_user_uuid(ctx.user_index)),
        version: None,
        dependencies: json!([]),
        config_file_path: None,
        config_file_content: None,
        last_restarted: None,
        created: now.clone(),
        modified: now,
    };
    fill(&mut identity, &body);
    let value = render::identity(&ctx.origin, &identity, state);
    state.identities.push(identity);
    Response::json(201, &value)
}

/// `PUT /api/marketplace-site-agent-identities/{uuid}/` → 200.
pub fn update_identity(state: &mut State, ctx: &Ctx, uuid: &str) -> Response {
    let Some(i) = find_identity(state, uuid) else {
        return detail(404, "No AgentIdentity matches the given query.");
    };
    let body = or_answer!(body(ctx, &Route::Identity(String::new())));
    let offering = or_answer!(offering_of(state, &body));
    let now = state.render(state.now());
    let identity = &mut state.identities[i];
    identity.offering = offering;
    identity.modified = now;
    fill(identity, &body);
    Response::json(
        200,
        &render::identity(&ctx.origin, &state.identities[i], state),
    )
}

/// A registration: a service or processor row, matched by its owner and name.
trait Registration {
    /// Takes `newer`'s fields but keeps this row's uuid and creation time.
    fn refresh(&mut self, newer: Self);
}

impl Registration for Service {
    fn refresh(&mut self, newer: Service) {
        self.mode = newer.mode;
        self.modified = newer.modified;
    }
}

impl Registration for Processor {
    fn refresh(&mut self, newer: Processor) {
        self.backend_type = newer.backend_type;
        self.backend_version = newer.backend_version;
        self.modified = newer.modified;
    }
}

/// A new uuid with `tag` for a row that is not `existing` yet ("" for one that is: it keeps
/// its own).
fn fresh_uuid(state: &mut State, existing: Option<usize>, tag: u16) -> String {
    match existing {
        Some(_) => String::new(),
        None => state.next_uuid(tag),
    }
}

/// Refreshes `rows[existing]` (200) or appends `row` (201): its index and the status.
fn register<T: Registration>(rows: &mut Vec<T>, existing: Option<usize>, row: T) -> (usize, u16) {
    match existing {
        Some(i) => {
            rows[i].refresh(row);
            (i, 200)
        }
        None => {
            rows.push(row);
            (rows.len() - 1, 201)
        }
    }
}

/// `POST …/identities/{uuid}/register_service/` → 201 created, 200 existing.
pub fn register_service(state: &mut State, ctx: &Ctx, uuid: &str) -> Response {
    let Some(i) = find_identity(state, uuid) else {
        return detail(404, "No AgentIdentity matches the given query.");
    };
    let body = or_answer!(body(ctx, &Route::RegisterService(String::new())));
    let identity = state.identities[i].uuid.clone();
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let mode = opt_string(&body, "mode");
    let now = state.render(state.now());
    let existing = state
        .services
        .iter()
        .position(|s| s.identity == identity && s.name == name);
    let uuid = fresh_uuid(state, existing, tags::SERVICE);
    let service = Service {
        uuid,
        identity,
        name,
        mode,
        created: now.clone(),
        modified: now,
    };
    let (index, status) = register(&mut state.services, existing, service);
    Response::json(
        status,
        &render::service(&ctx.origin, &state.services[index], state),
    )
}

/// `POST /api/marketplace-site-agent-services/{uuid}/register_processor/` → 201 / 200.
pub fn register_processor(state: &mut State, ctx: &Ctx, uuid: &str) -> Response {
    let service = normalize_uuid(uuid)
        .and_then(|u| state.services.iter().find(|s| s.uuid == u))
        .map(|s| s.uuid.clone());
    let Some(service) = service else {
        return detail(404, "No AgentService matches the given query.");
    };
    let body = or_answer!(body(ctx, &Route::RegisterProcessor(String::new())));
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let backend_type = body["backend_type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let backend_version = opt_string(&body, "backend_version");
    let now = state.render(state.now());
    let existing = state
        .processors
        .iter()
        .position(|p| p.service == service && p.name == name);
    let uuid = fresh_uuid(state, existing, tags::PROCESSOR);
    let processor = Processor {
        uuid,
        service,
        name,
        backend_type,
        backend_version,
        created: now.clone(),
        modified: now,
    };
    let (index, status) = register(&mut state.processors, existing, processor);
    Response::json(
        status,
        &render::processor(&ctx.origin, &state.processors[index], false, state),
    )
}

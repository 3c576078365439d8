//! URL routing, authentication, pagination and `field=` selection, and the read-only
//! endpoints. The POST endpoints are in `usage.rs` and `agent.rs`.
//!
//! Conventions follow `notes/waldur-api.md` §1: every path ends with a slash (Django's
//! APPEND_SLASH answers 301 otherwise), unknown paths 404 before authentication, 401 with
//! `WWW-Authenticate: Token`, wrong methods 405 after authentication (DRF order), HEAD works
//! wherever GET does.

use serde_json::{Value, json};

use super::super::openapi::normalize_uuid;
use super::http::{Request, Response, form_encode};
use super::render;
use super::setup::TokenSetup;
use super::state::State;
use super::{StoredUsage, StoredUserUsage};
use super::{agent, usage};

/// Page size when the client sends none (`PAGE_SIZE` in Waldur's settings).
pub const DEFAULT_PAGE_SIZE: usize = 10;
/// Larger `page_size` values are clamped to this (`max_page_size`).
pub const MAX_PAGE_SIZE: usize = 300;

/// The resolved endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    UsersMe,
    Version,
    Offering(String),
    UserAttributeConfig(String),
    ServiceProviders,
    Resources,
    Resource(String),
    Usages,
    SetUsage,
    Usage(String),
    SetUserUsage(String),
    SetUserUsages(String),
    UserUsages,
    UserUsage(String),
    OfferingUsers,
    OfferingUser(String),
    Identities,
    Identity(String),
    RegisterService(String),
    RegisterProcessor(String),
}

impl Route {
    /// Methods the endpoint allows (HEAD is implied by GET).
    fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::SetUsage
            | Route::SetUserUsage(_)
            | Route::SetUserUsages(_)
            | Route::RegisterService(_)
            | Route::RegisterProcessor(_) => &["POST"],
            Route::Identities => &["GET", "POST"],
            Route::Identity(_) => &["GET", "PUT"],
            _ => &["GET"],
        }
    }
}

/// Per-request context after authentication.
pub struct Ctx<'a> {
    pub req: &'a Request,
    /// `http://host:port` from the Host header.
    pub origin: String,
    pub user_index: usize,
    pub user: TokenSetup,
}

impl Ctx<'_> {
    /// The last value of a query parameter (Django's `QueryDict.get`).
    pub fn q(&self, name: &str) -> Option<&str> {
        self.req
            .query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a repeated query parameter.
    pub fn q_all(&self, name: &str) -> Vec<&str> {
        self.req
            .query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A DRF `{"detail": ...}` response.
pub fn detail(status: u16, msg: &str) -> Response {
    Response::json(status, &json!({ "detail": msg }))
}

/// A 400 with a DRF validation body.
pub fn bad_request(body: Value) -> Response {
    Response::json(400, &body)
}

/// Django's page for an unknown URL when `DEBUG` is off (what 7.0.7 sends).
pub const HTML_NOT_FOUND: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n  \
    <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource \
    was not found on this server.</p>\n</body>\n</html>\n";

fn route(path: &str, legacy_no_bulk: bool, no_identities: bool) -> Option<Route> {
    let rest = path.strip_prefix("/api/")?.strip_suffix('/')?;
    let segs: Vec<&str> = rest.split('/').collect();
    let id = |s: &str| s.to_string();
    Some(match segs.as_slice() {
        ["users", "me"] => Route::UsersMe,
        ["version"] => Route::Version,
        ["marketplace-provider-offerings", u] => Route::Offering(id(u)),
        ["marketplace-provider-offerings", u, "user-attribute-config"] => {
            Route::UserAttributeConfig(id(u))
        }
        ["marketplace-service-providers"] => Route::ServiceProviders,
        ["marketplace-provider-resources"] => Route::Resources,
        ["marketplace-provider-resources", u] => Route::Resource(id(u)),
        ["marketplace-component-usages"] => Route::Usages,
        ["marketplace-component-usages", "set_usage"] => Route::SetUsage,
        ["marketplace-component-usages", u] => Route::Usage(id(u)),
        ["marketplace-component-usages", u, "set_user_usage"] => Route::SetUserUsage(id(u)),
        // An older Waldur (before 8.0.5) has no bulk endpoint: the URL does not resolve.
        ["marketplace-component-usages", u, "set_user_usages"] if !legacy_no_bulk => {
            Route::SetUserUsages(id(u))
        }
        ["marketplace-component-user-usages"] => Route::UserUsages,
        ["marketplace-component-user-usages", u] => Route::UserUsage(id(u)),
        ["marketplace-offering-users"] => Route::OfferingUsers,
        ["marketplace-offering-users", u] => Route::OfferingUser(id(u)),
        ["marketplace-site-agent-identities", ..] if no_identities => return None,
        ["marketplace-site-agent-identities"] => Route::Identities,
        ["marketplace-site-agent-identities", u] => Route::Identity(id(u)),
        ["marketplace-site-agent-identities", u, "register_service"] => {
            Route::RegisterService(id(u))
        }
        ["marketplace-site-agent-services", u, "register_processor"] => {
            Route::RegisterProcessor(id(u))
        }
        _ => return None,
    })
}

/// The OpenAPI path template of a route (for request-body validation).
pub fn template(route: &Route) -> &'static str {
    match route {
        Route::UsersMe => "/api/users/me/",
        Route::Version => "/api/version/",
        Route::Offering(_) => "/api/marketplace-provider-offerings/{uuid}/",
        Route::UserAttributeConfig(_) => {
            "/api/marketplace-provider-offerings/{uuid}/user-attribute-config/"
        }
        Route::ServiceProviders => "/api/marketplace-service-providers/",
        Route::Resources => "/api/marketplace-provider-resources/",
        Route::Resource(_) => "/api/marketplace-provider-resources/{uuid}/",
        Route::Usages => "/api/marketplace-component-usages/",
        Route::SetUsage => "/api/marketplace-component-usages/set_usage/",
        Route::Usage(_) => "/api/marketplace-component-usages/{uuid}/",
        Route::SetUserUsage(_) => "/api/marketplace-component-usages/{uuid}/set_user_usage/",
        Route::SetUserUsages(_) => "/api/marketplace-component-usages/{uuid}/set_user_usages/",
        Route::UserUsages => "/api/marketplace-component-user-usages/",
        Route::UserUsage(_) => "/api/marketplace-component-user-usages/{uuid}/",
        Route::OfferingUsers => "/api/marketplace-offering-users/",
        Route::OfferingUser(_) => "/api/marketplace-offering-users/{uuid}/",
        Route::Identities => "/api/marketplace-site-agent-identities/",
        Route::Identity(_) => "/api/marketplace-site-agent-identities/{uuid}/",
        Route::RegisterService(_) => {
            "/api/marketplace-site-agent-identities/{uuid}/register_service/"
        }
        Route::RegisterProcessor(_) => {
            "/api/marketplace-site-agent-services/{uuid}/register_processor/"
        }
    }
}

fn unauthorized(msg: &str) -> Response {
    detail(401, msg).with_header("WWW-Authenticate", "Token")
}

/// `Authorization: Token <key>` (keyword case-insensitive, `notes/waldur-api.md` §1.2).
/// `Bearer <key>` is accepted for the same keys, standing in for OIDC/PAT tokens.
fn authenticate(state: &State, req: &Request) -> Result<(usize, TokenSetup), Response> {
    let missing = "Authentication credentials were not provided.";
    let header = req
        .header("authorization")
        .ok_or_else(|| unauthorized(missing))?;
    let parts: Vec<&str> = header.split_whitespace().collect();
    let keyword = parts.first().copied().unwrap_or("");
    if !keyword.eq_ignore_ascii_case("token") && !keyword.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized(missing));
    }
    match parts.len() {
        1 => Err(unauthorized(
            "Invalid token header. No credentials provided.",
        )),
        2 => state
            .user_for_token(parts[1])
            .map(|(i, t)| (i, t.clone()))
            .ok_or_else(|| unauthorized("Invalid token.")),
        _ => Err(unauthorized(
            "Invalid token header. Token string should not contain spaces.",
        )),
    }
}

/// Handles one request against the state.
pub fn handle(state: &mut State, req: &Request, fallback_origin: &str) -> Response {
    let Some(route) = route(
        &req.path,
        state.legacy_no_bulk_user_usages,
        state.no_agent_identities,
    ) else {
        if req.path.starts_with("/api/") && !req.path.ends_with('/') {
            let mut location = format!("{}/", req.path);
            if let Some((_, q)) = req.target.split_once('?') {
                location = format!("{location}?{q}");
            }
            return Response::empty(301).with_header("Location", location);
        }
        if state.html_not_found {
            return Response {
                status: 404,
                headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
                body: HTML_NOT_FOUND.as_bytes().to_vec(),
                head_only: false,
            };
        }
        return detail(404, "Not found.");
    };
    let (user_index, user) = or_answer!(authenticate(state, req));
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    if !route.methods().contains(&method) {
        let mut allow: Vec<&str> = route.methods().to_vec();
        if allow.contains(&"GET") {
            allow.push("HEAD");
        }
        allow.push("OPTIONS");
        return detail(405, &format!("Method \"{}\" not allowed.", req.method))
            .with_header("Allow", allow.join(", "));
    }
    let origin = req
        .header("host")
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| fallback_origin.to_string());
    let ctx = Ctx {
        req,
        origin,
        user_index,
        user,
    };
    let mut response = dispatch(state, &ctx, &route, method);
    if req.method == "HEAD" {
        response.head_only = true;
    }
    response
}

fn dispatch(state: &mut State, ctx: &Ctx, route: &Route, method: &str) -> Response {
    let origin = ctx.origin.as_str();
    match (route, method) {
        (Route::UsersMe, _) => one(
            ctx,
            render::user_me(origin, ctx.user_index, &ctx.user, state),
        ),
        (Route::Version, _) => {
            if ctx.user.is_staff {
                let v = &state.server_version;
                Response::json(200, &json!({"version": v, "latest_version": v}))
            } else {
                detail(403, "You do not have permission to perform this action.")
            }
        }
        (Route::Offering(u), _) => match normalize_uuid(u) {
            Some(u) if u == state.offering.uuid => one(ctx, render::offering(origin, state)),
            _ => detail(404, "No Offering matches the given query."),
        },
        (Route::UserAttributeConfig(u), _) => match normalize_uuid(u) {
            Some(u) if u == state.offering.uuid => {
                Response::json(200, &render::user_attribute_config(state))
            }
            _ => detail(404, "No Offering matches the given query."),
        },
        (Route::ServiceProviders, _) => service_providers(state, ctx),
        (Route::Resources, _) => resources(state, ctx),
        (Route::Resource(u), _) => {
            match normalize_uuid(u).and_then(|u| state.resource(&u).cloned()) {
                Some(r) => one(ctx, render::resource(origin, state, &r)),
                None => detail(404, "No Resource matches the given query."),
            }
        }
        (Route::Usages, _) => usages(state, ctx),
        (Route::Usage(u), _) => {
            let found = normalize_uuid(u).and_then(|u| state.usage_by_uuid(&u));
            match found {
                Some(row) => one(ctx, render::usage(state, row)),
                None => detail(404, "No ComponentUsage matches the given query."),
            }
        }
        (Route::UserUsages, _) => user_usages(state, ctx),
        (Route::UserUsage(u), _) => {
            let found = normalize_uuid(u).and_then(|u| state.user_usage_by_uuid(&u));
            match found {
                Some(row) => one(ctx, render::user_usage(origin, state, row)),
                None => detail(404, "No ComponentUserUsage matches the given query."),
            }
        }
        (Route::OfferingUsers, _) => offering_users(state, ctx),
        (Route::OfferingUser(u), _) => {
            let found = normalize_uuid(u).and_then(|u| {
                state
                    .offering_users
                    .iter()
                    .enumerate()
                    .find(|(_, ou)| ou.uuid == u)
            });
            match found {
                Some((i, ou)) => one(ctx, render::offering_user(origin, state, i, ou)),
                None => detail(404, "No OfferingUser matches the given query."),
            }
        }
        (Route::SetUsage, _) => usage::set_usage(state, ctx),
        (Route::SetUserUsage(u), _) => usage::set_user_usage(state, ctx, u, false),
        (Route::SetUserUsages(u), _) => usage::set_user_usage(state, ctx, u, true),
        (Route::Identities, "POST") => agent::create_identity(state, ctx),
        (Route::Identities, _) => agent::list_identities(state, ctx),
        (Route::Identity(u), "PUT") => agent::update_identity(state, ctx, u),
        (Route::Identity(u), _) => agent::get_identity(state, ctx, u),
        (Route::RegisterService(u), _) => agent::register_service(state, ctx, u),
        (Route::RegisterProcessor(u), _) => agent::register_processor(state, ctx, u),
    }
}

/// Keeps only the `field=` names the object knows; with none known, everything
/// (`RestrictedSerializerMixin`, `notes/waldur-api.md` §1.4).
pub fn select_fields(ctx: &Ctx, mut value: Value) -> Value {
    let wanted = ctx.q_all("field");
    if wanted.is_empty() {
        return value;
    }
    if let Some(map) = value.as_object_mut() {
        if wanted.iter().any(|w| map.contains_key(*w)) {
            map.retain(|k, _| wanted.contains(&k.as_str()));
        }
    }
    value
}

fn one(ctx: &Ctx, value: Value) -> Response {
    Response::json(200, &select_fields(ctx, value))
}

/// Rebuilds the request URL with `page` set (or removed), as DRF's `replace_query_param` /
/// `remove_query_param` do: values grouped by key, keys sorted, `quote_plus` encoding.
fn page_link(ctx: &Ctx, page: Option<usize>) -> String {
    let mut keys: Vec<&str> = Vec::new();
    for (k, _) in &ctx.req.query {
        if k != "page" && !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    keys.sort_unstable();
    let mut pairs: Vec<String> = Vec::new();
    for key in keys {
        for value in ctx.q_all(key) {
            pairs.push(format!("{}={}", form_encode(key), form_encode(value)));
        }
    }
    if let Some(p) = page {
        pairs.push(format!("page={p}"));
        pairs.sort_by(|a, b| key_of(a).cmp(key_of(b)));
    }
    let mut url = format!("{}{}", ctx.origin, ctx.req.path);
    if !pairs.is_empty() {
        url.push('?');
        url.push_str(&pairs.join("&"));
    }
    url
}

fn key_of(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(k, _)| k)
}

/// Paginates a full, ordered list (`LinkHeaderPagination`, `notes/waldur-api.md` §1.5),
/// rendering only the items of the requested page.
pub fn paginate<T>(ctx: &Ctx, items: Vec<T>, render: impl Fn(T) -> Value) -> Response {
    let count = items.len();
    let page_size = ctx
        .q("page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map_or(DEFAULT_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE));
    let pages = count.div_ceil(page_size).max(1);
    let page = match ctx.q("page") {
        None => 1,
        Some("last") => pages,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return detail(404, "Invalid page."),
        },
    };
    if page > pages {
        return detail(404, "Invalid page.");
    }
    let start = (page - 1) * page_size;
    let items: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(page_size)
        .map(|v| select_fields(ctx, render(v)))
        .collect();
    let mut links = vec![format!("<{}>; rel=\"first\"", page_link(ctx, None))];
    if page > 1 {
        let prev = if page == 2 { None } else { Some(page - 1) };
        links.push(format!("<{}>; rel=\"prev\"", page_link(ctx, prev)));
    }
    if page < pages {
        links.push(format!(
            "<{}>; rel=\"next\"",
            page_link(ctx, Some(page + 1))
        ));
    }
    let last = if pages == 1 { None } else { Some(pages) };
    links.push(format!("<{}>; rel=\"last\"", page_link(ctx, last)));
    Response::json(200, &Value::Array(items))
        .with_header("X-Result-Count", count.to_string())
        .with_header("Link", links.join(", "))
}

/// A UUID query filter: `Ok(None)` when absent, 400 "Enter a valid UUID." when malformed.
pub fn uuid_filter(ctx: &Ctx, name: &str) -> Result<Option<String>, Response> {
    match ctx.q(name) {
        None | Some("") => Ok(None),
        Some(v) => normalize_uuid(v)
            .map(Some)
            .ok_or_else(|| bad_request(json!({ name: ["Enter a valid UUID."] }))),
    }
}

/// A comma-separated UUID list filter (`offering_uuid`).
fn uuid_list_filter(ctx: &Ctx, name: &str) -> Result<Option<Vec<String>>, Response> {
    match ctx.q(name) {
        None | Some("") => Ok(None),
        Some(v) => v
            .split(',')
            .map(|p| normalize_uuid(p.trim()))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| bad_request(json!({ name: ["Enter a valid UUID."] }))),
    }
}

/// A repeated choice filter: 400 naming the first value that is not a choice.
fn choice_filter(ctx: &Ctx, name: &str, choices: &[&str]) -> Result<Vec<String>, Response> {
    let values = ctx.q_all(name);
    for v in &values {
        if !choices.contains(v) {
            return Err(bad_request(json!({
                name: [format!("Select a valid choice. {v} is not one of the available choices.")]
            })));
        }
    }
    Ok(values.into_iter().map(String::from).collect())
}

/// A boolean filter (`true`/`false`, django-filter's BooleanWidget); anything else is ignored.
fn bool_filter(ctx: &Ctx, name: &str) -> Option<bool> {
    match ctx.q(name)?.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// A date filter: 400 "Enter a valid date." when malformed.
fn date_filter(ctx: &Ctx, name: &str) -> Result<Option<String>, Response> {
    match ctx.q(name) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<jiff::civil::Date>() {
            Ok(d) if v.len() == 10 => Ok(Some(d.strftime("%Y-%m-%d").to_string())),
            _ => Err(bad_request(json!({ name: ["Enter a valid date."] }))),
        },
    }
}

fn offering_matches(state: &State, filter: &Option<Vec<String>>) -> bool {
    filter
        .as_ref()
        .is_none_or(|list| list.contains(&state.offering.uuid))
}

fn service_providers(state: &State, ctx: &Ctx) -> Response {
    let customer = or_answer!(uuid_filter(ctx, "customer_uuid"));
    let items = if customer.is_none_or(|c| c == state.offering.customer_uuid) {
        vec![render::service_provider(&ctx.origin, state)]
    } else {
        vec![]
    };
    paginate(ctx, items, |v| v)
}

/// Resource states (`ResourceState`), case-sensitive.
pub const RESOURCE_STATES: &[&str] = &[
    "Creating",
    "OK",
    "Erred",
    "Updating",
    "Terminating",
    "Terminated",
];

fn resources(state: &State, ctx: &Ctx) -> Response {
    let offering = or_answer!(uuid_list_filter(ctx, "offering_uuid"));
    let states = or_answer!(choice_filter(ctx, "state", RESOURCE_STATES));
    let backend_id = ctx.q("backend_id").filter(|s| !s.is_empty());
    let items = state
        .resources
        .iter()
        .filter(|_| offering_matches(state, &offering))
        .filter(|r| states.is_empty() || states.contains(&r.state))
        .filter(|r| backend_id.is_none_or(|b| r.backend_id == b))
        .collect();
    paginate(ctx, items, |r| render::resource(&ctx.origin, state, r))
}

/// The query filters the usage and the user-usage listings share.
struct UsageFilter<'c> {
    offering: Option<Vec<String>>,
    resource: Option<String>,
    period: Option<String>,
    ty: Option<&'c str>,
}

impl<'c> UsageFilter<'c> {
    /// Reads them from the query; the billing period is named `period_param`.
    fn read(ctx: &'c Ctx, period_param: &str) -> Result<UsageFilter<'c>, Response> {
        Ok(UsageFilter {
            resource: uuid_filter(ctx, "resource_uuid")?,
            offering: uuid_list_filter(ctx, "offering_uuid")?,
            period: date_filter(ctx, period_param)?,
            ty: ctx.q("type").filter(|s| !s.is_empty()),
        })
    }

    /// Whether a stored row passes them.
    fn keeps(&self, state: &State, row: &impl UsageKey) -> bool {
        let (resource_uuid, period, component) = row.key();
        offering_matches(state, &self.offering)
            && self.resource.as_ref().is_none_or(|r| r == resource_uuid)
            && self.period.as_ref().is_none_or(|p| p == period)
            && self.ty.is_none_or(|t| t == component)
    }
}

/// What [`UsageFilter`] looks at in a stored row: its resource, month and component.
trait UsageKey {
    fn key(&self) -> (&str, &str, &str);
}

impl UsageKey for StoredUsage {
    fn key(&self) -> (&str, &str, &str) {
        (
            &self.resource_uuid,
            &self.billing_period,
            &self.component_type,
        )
    }
}

impl UsageKey for StoredUserUsage {
    fn key(&self) -> (&str, &str, &str) {
        (
            &self.resource_uuid,
            &self.billing_period,
            &self.component_type,
        )
    }
}

fn usages(state: &mut State, ctx: &Ctx) -> Response {
    let filter = or_answer!(UsageFilter::read(ctx, "billing_period"));
    // Default ordering `-date, component.type` (§1.5), cached by the state; its ties may
    // break differently per request (`Setup::unstable_usage_order`).
    let order = state.listing_usage_order();
    let state = &*state;
    let rows: Vec<_> = order
        .iter()
        .map(|&i| &state.usages[i])
        .filter(|u| filter.keeps(state, &u.stored))
        .collect();
    paginate(ctx, rows, |u| render::usage(state, u))
}

fn user_usages(state: &mut State, ctx: &Ctx) -> Response {
    let filter = or_answer!(UsageFilter::read(ctx, "component_usage__billing_period"));
    let username = ctx.q("username").filter(|s| !s.is_empty());
    // Default ordering `-component_usage.date, component type` (§1.5), cached by the state.
    let order = state.user_usage_order();
    let state = &*state;
    let rows: Vec<_> = order
        .iter()
        .map(|&i| &state.user_usages[i])
        .filter(|u| filter.keeps(state, &u.stored))
        .filter(|u| username.is_none_or(|n| u.stored.username.contains(n)))
        .collect();
    paginate(ctx, rows, |u| render::user_usage(&ctx.origin, state, u))
}

/// Offering-user states (`OfferingUserState`), case-sensitive.
const OFFERING_USER_STATES: &[&str] = &[
    "Creating",
    "Deleted",
    "Deleting",
    "Error creating",
    "Error deleting",
    "OK",
    "Pending account linking",
    "Pending additional validation",
    "Requested",
    "Requested deletion",
];

fn offering_users(state: &State, ctx: &Ctx) -> Response {
    let offering = or_answer!(uuid_list_filter(ctx, "offering_uuid"));
    let states = or_answer!(choice_filter(ctx, "state", OFFERING_USER_STATES));
    let restricted = bool_filter(ctx, "is_restricted");
    let username = ctx.q("username").filter(|s| !s.is_empty());
    let items = state
        .offering_users
        .iter()
        .enumerate()
        .filter(|_| offering_matches(state, &offering))
        // Every fake offering user is in state OK and not restricted.
        .filter(|_| states.is_empty() || states.iter().any(|s| s == "OK"))
        .filter(|_| restricted.is_none_or(|r| !r))
        .filter(|(_, u)| username.is_none_or(|n| u.username == n))
        .collect();
    paginate(ctx, items, |(i, u)| {
        render::offering_user(&ctx.origin, state, i, u)
    })
}

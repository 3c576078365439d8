//! A fake Waldur Mastermind server for tests: the usage-reporting subset of the REST API
//! (`shared/waldur-api/openapi-usage-subset.yaml`) with the semantics of
//! `notes/waldur-api.md` §4 and §6, fault injection and a request log.
//!
//! ```ignore
//! let fake = FakeWaldur::start(Setup::small());
//! // point the client at fake.base_url() with PROVIDER_TOKEN ...
//! assert_eq!(fake.usages().len(), 3);
//! ```
//!
//! Modules: `http` (the HTTP/1.1 server), `setup` (configuration and public records),
//! `state` (the domain model), `routes` (routing, auth, pagination, read endpoints),
//! `usage` (the usage POSTs), `agent` (identity bookkeeping), `render` (JSON shapes),
//! `validate` (DRF-shaped body validation), `faults` (injected trouble).

/// The value of an `Ok`, or return the `Err`, a ready response (a 400 or 404), from the
/// handler.
macro_rules! or_answer {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

mod agent;
mod faults;
mod http;
mod render;
mod routes;
mod setup;
mod state;
mod usage;
mod validate;

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

pub use faults::{Fault, FaultKind};
pub use routes::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use setup::{
    ComponentSetup, OfferingSetup, OfferingUserSetup, PROVIDER_TOKEN, ResourceSetup, STAFF_TOKEN,
    Setup, StoredUsage, StoredUserUsage, TokenSetup, det_uuid, tags,
};
pub use usage::{BACKFILL_MSG, FUTURE_MSG};

use faults::Decision;
use http::{Outcome, Request, Response, Server};
use state::State;

/// One request as the fake saw it, with the status it answered (0: connection closed
/// without an answer, see [`FaultKind::Reset`]).
#[derive(Clone, Debug, Serialize)]
pub struct LoggedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query string, e.g. `/api/marketplace-component-usages/`.
    pub path: String,
    /// Decoded query parameters in order (repeated keys repeat).
    pub query: Vec<(String, String)>,
    /// The JSON body, when there was one and it parsed.
    pub body: Option<serde_json::Value>,
    /// The status answered.
    pub status: u16,
    /// The `Authorization` header as sent (a secret: never print it).
    #[serde(skip)]
    pub authorization: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

impl LoggedRequest {
    /// The last value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    state: Mutex<State>,
    log: Mutex<Vec<LoggedRequest>>,
    faults: Mutex<Vec<Fault>>,
    latency: Mutex<Duration>,
    origin: Mutex<String>,
    sink: Mutex<Option<Box<dyn Write + Send>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running fake server. Dropping it stops the server.
pub struct FakeWaldur {
    shared: Arc<Shared>,
    server: Server,
}

impl FakeWaldur {
    /// Starts a fake on a free loopback port. Panics on a setup error (a test bug).
    pub fn start(setup: Setup) -> FakeWaldur {
        FakeWaldur::start_on(setup, 0).unwrap_or_else(|e| panic!("fake Waldur: {e}"))
    }

    /// Starts a fake on `127.0.0.1:port` (0: any free port).
    pub fn start_on(setup: Setup, port: u16) -> Result<FakeWaldur, String> {
        let latency = setup.latency;
        let state = State::new(setup)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            latency: Mutex::new(latency),
            origin: Mutex::new(String::new()),
            sink: Mutex::new(None),
        });
        let handler = {
            let shared = shared.clone();
            Arc::new(move |req: &Request| handle(&shared, req))
        };
        let server =
            Server::start(port, handler).map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
        *lock(&shared.origin) = format!("http://{}", server.addr());
        Ok(FakeWaldur { shared, server })
    }

    /// After `n` more answered requests the server goes away: connections are refused.
    pub fn refuse_connections_after(&self, n: u64) {
        self.server.refuse_connections_after(n);
    }

    /// `http://127.0.0.1:PORT/api/`, what goes into `waldur_api_url`.
    pub fn base_url(&self) -> String {
        format!("{}/api/", self.origin())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        lock(&self.shared.origin).clone()
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    /// The requests with this method whose path contains `path_contains`.
    pub fn requests_to(&self, method: &str, path_contains: &str) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(path_contains))
            .collect()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Adds a fault; it is consumed as it fires.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Faults that have not fired (all their times) yet.
    pub fn pending_faults(&self) -> Vec<Fault> {
        lock(&self.shared.faults).clone()
    }

    /// Component usages now held, sorted by (billing period, resource, component).
    pub fn usages(&self) -> Vec<StoredUsage> {
        let mut out: Vec<StoredUsage> = lock(&self.shared.state)
            .usages
            .iter()
            .map(|u| u.stored.clone())
            .collect();
        out.sort_by(|a, b| {
            (&a.billing_period, &a.resource_uuid, &a.component_type).cmp(&(
                &b.billing_period,
                &b.resource_uuid,
                &b.component_type,
            ))
        });
        out
    }

    /// User usages now held, sorted by (billing period, resource, component, username).
    pub fn user_usages(&self) -> Vec<StoredUserUsage> {
        let mut out: Vec<StoredUserUsage> = lock(&self.shared.state)
            .user_usages
            .iter()
            .map(|u| u.stored.clone())
            .collect();
        out.sort_by(|a, b| {
            (
                &a.billing_period,
                &a.resource_uuid,
                &a.component_type,
                &a.username,
            )
                .cmp(&(
                    &b.billing_period,
                    &b.resource_uuid,
                    &b.component_type,
                    &b.username,
                ))
        });
        out
    }

    /// Sets the latency added to every request from now on.
    pub fn set_latency(&self, d: Duration) {
        *lock(&self.shared.latency) = d;
    }

    /// Moves the server's clock (RFC 3339), e.g. into the next month.
    pub fn set_now(&self, now: &str) {
        let ts = now
            .parse()
            .unwrap_or_else(|e| panic!("set_now {now:?}: {e}"));
        lock(&self.shared.state).fixed_now = Some(ts);
    }

    /// Stores the next `items` usage items of `set_usage` 1.00 higher than sent, still
    /// answering 201: what a read-back must catch.
    pub fn tamper_writes(&self, items: u32) {
        lock(&self.shared.state).tamper_writes = items;
    }

    /// Changes a resource's state (e.g. to `Terminated`).
    pub fn set_resource_state(&self, resource_uuid: &str, new_state: &str) {
        let mut state = lock(&self.shared.state);
        let r = state
            .resource_mut(resource_uuid)
            .unwrap_or_else(|| panic!("no resource {resource_uuid}"));
        r.state = new_state.to_string();
    }

    /// Writes each request to `sink` as a JSON line as it is handled (the token replaced by
    /// the name of its user, so the log can be shown safely).
    pub fn log_to(&self, sink: Box<dyn Write + Send>) {
        *lock(&self.shared.sink) = Some(sink);
    }
}

/// A request-log line for an external sink: no token, just whose it was.
#[derive(Serialize)]
struct SinkLine<'a> {
    #[serde(flatten)]
    request: &'a LoggedRequest,
    auth_user: Option<String>,
}

fn handle(shared: &Shared, req: &Request) -> (Outcome, String) {
    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    let decision = faults::decide(
        &mut lock(&shared.faults),
        &req.method,
        &req.target,
        &req.headers,
        &req.body,
    );
    let (outcome, status) = match decision {
        Decision::Replace { outcome, status } => (outcome, status),
        Decision::EndlessPages { fresh, counted } => {
            let response = endless_page(shared, req, fresh, counted);
            let status = response.status;
            (Outcome::Respond(response), status)
        }
        Decision::DelayThenProceed(d) => {
            std::thread::sleep(d);
            let response = respond(shared, req);
            let status = response.status;
            (Outcome::Respond(response), status)
        }
        Decision::Proceed => {
            let response = respond(shared, req);
            let status = response.status;
            (Outcome::Respond(response), status)
        }
    };
    let date = {
        let state = lock(&shared.state);
        state
            .now()
            .strftime("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    };
    record(shared, req, status);
    (outcome, date)
}

/// [`FaultKind::EndlessPages`]: page 1's answer, with a next link to page N+1 always.
fn endless_page(shared: &Shared, req: &Request, fresh: bool, counted: bool) -> Response {
    let page: u64 = req
        .query
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1);
    let mut first = req.clone();
    first.query.retain(|(k, _)| k != "page");
    let mut response = respond(shared, &first);
    if fresh {
        if let Ok(serde_json::Value::Array(mut rows)) = serde_json::from_slice(&response.body) {
            for (i, row) in rows.iter_mut().enumerate() {
                if let Some(uuid) = row.get_mut("uuid") {
                    *uuid =
                        serde_json::Value::String(format!("{:032x}", page * 1_000_000 + i as u64));
                }
            }
            response.body = serde_json::to_vec(&rows).expect("JSON values serialise");
        }
    }
    response
        .headers
        .retain(|(k, _)| k != "Link" && (counted || k != "X-Result-Count"));
    let mut others: Vec<String> = first
        .query
        .iter()
        .map(|(k, v)| format!("{}={}", http::form_encode(k), http::form_encode(v)))
        .collect();
    others.push(format!("page={}", page + 1));
    let next = format!("{}{}?{}", lock(&shared.origin), req.path, others.join("&"));
    response.with_header("Link", format!("<{next}>; rel=\"next\""))
}

fn respond(shared: &Shared, req: &Request) -> Response {
    let origin = lock(&shared.origin).clone();
    let mut state = lock(&shared.state);
    routes::handle(&mut state, req, &origin)
}

fn record(shared: &Shared, req: &Request, status: u16) {
    let entry = LoggedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: serde_json::from_slice(&req.body).ok(),
        status,
        authorization: req.header("authorization").map(String::from),
        user_agent: req.header("user-agent").map(String::from),
    };
    if let Some(sink) = lock(&shared.sink).as_mut() {
        let auth_user = entry.authorization.as_deref().and_then(|h| {
            let key = h.split_whitespace().nth(1)?;
            let state = lock(&shared.state);
            Some(state.user_for_token(key).map_or_else(
                || "<unknown token>".to_string(),
                |(_, t)| t.username.clone(),
            ))
        });
        let line = SinkLine {
            request: &entry,
            auth_user,
        };
        if let Ok(text) = serde_json::to_string(&line) {
            let _ = writeln!(sink, "{text}");
            let _ = sink.flush();
        }
    }
    lock(&shared.log).push(entry);
}

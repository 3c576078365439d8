//! The HTTP layer: one ureq agent (keep-alive, timeouts, system trust store, proxy), the
//! `Authorization` header, retries with capped exponential backoff, and `Link`-header
//! pagination.
//!
//! Retried: 5xx, 429 (waiting what `Retry-After` says), connection errors, timeouts, and
//! unreadable success bodies. Never retried: other 4xx, whose message is shown, and TLS failures
//! (an untrusted certificate does not pass by waiting: [`ApiError::Tls`], exit 78). POSTs are
//! retried too: every Waldur usage POST replaces the stored value with the same value, so a
//! repeat cannot double count.
//!
//! A failure costs only what depends on it: a resource whose POST keeps answering 500 fails
//! alone. The breaker (`retry.rs`) stops the run only when the server itself is gone: after
//! [`BREAKER_TRANSPORT_LIMIT`] requests in a row failed at the connection level (refused,
//! reset, timed out), or [`BREAKER_OUTAGE_LIMIT`] requests in a row used up their retries on
//! 5xx or 429 with no success between. Then every later request fails at once, so a run
//! against a dead server ends in seconds instead of retrying thousands of POSTs one by one.
//! Best-effort calls ([`Client::optional`]: identity, version) never count towards it.
//!
//! This file holds the agent, its options and one attempt; `retry.rs` the retries and the
//! breaker; `pages.rs` the pagination.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use ureq::http::HeaderMap;

use super::auth::{Credential, token_header};
use super::error::ApiError;
use super::url::{ApiBase, Query};
use crate::config::Secret;
use crate::debug;

mod pages;
mod retry;

pub use pages::Listing;
use retry::Breaker;
pub use retry::{BREAKER_OUTAGE_LIMIT, BREAKER_TRANSPORT_LIMIT, RetryPolicy};

/// The `User-Agent` header.
pub const USER_AGENT: &str = concat!("waldur-usage/", env!("CARGO_PKG_VERSION"));

/// Page size asked for in every list (Waldur's maximum).
pub const PAGE_SIZE: u32 = 300;

/// Most pages one listing may have by default (600,000 rows at [`PAGE_SIZE`], far above any
/// offering's month: 5,000 resources x 5 components is 84 pages): a server whose `Link`
/// header never ends is stopped here, if neither a repeated page nor `X-Result-Count` stop it
/// first. [`ClientOptions::max_pages`] (`--max-pages`) changes it.
pub const MAX_PAGES: u64 = 2_000;

/// How long one run may talk to Waldur by default, from its first request: 15 minutes, inside
/// the report wrapper's 20-minute cycle, so that a slow or stalling server ends the run with a
/// summary of what was and was not sent instead of a kill. [`ClientOptions::run_budget`]
/// (`--max-run-time`) changes it.
pub const RUN_BUDGET: Duration = Duration::from_secs(900);

/// Transport settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Overall timeout of one attempt (connect, send, receive).
    pub timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Verify TLS certificates (config `verify_ssl`).
    pub verify_tls: bool,
    /// Proxy URL (config `global_proxy`); `None` uses `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`
    /// and `NO_PROXY`.
    pub proxy: Option<String>,
    /// Connections kept alive (at least the number of parallel requests).
    pub connections: usize,
    /// Plain http to a non-loopback host is allowed (also for the OIDC token URL).
    pub allow_insecure_http: bool,
    /// Most pages one listing may have ([`MAX_PAGES`]).
    pub max_pages: u64,
    /// How long the client may talk to the server, from its first request ([`RUN_BUDGET`]).
    /// Once it is used up nothing more is sent, each attempt's timeout is cut to what is left,
    /// and no retry waits past it.
    pub run_budget: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            verify_tls: true,
            proxy: None,
            connections: 4,
            allow_insecure_http: false,
            max_pages: MAX_PAGES,
            run_budget: RUN_BUDGET,
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status (2xx).
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as text (empty for the 201 answers of usage POSTs).
    pub body: String,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the clones of one [`Client`] share.
struct Shared {
    agent: ureq::Agent,
    base: ApiBase,
    credential: Credential,
    options: ClientOptions,
    requests: AtomicU64,
    posts: AtomicU64,
    breaker: Mutex<Breaker>,
    /// When the run budget ends: set by the first request.
    deadline: OnceLock<Instant>,
    /// Attempts by `(method, status code)`; the code is `none` when no answer came.
    by_code: Mutex<std::collections::BTreeMap<(String, String), u64>>,
}

/// The Waldur HTTP client. Clones share the connections, counters and breaker.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    /// Best effort: few retries, never trips the breaker.
    optional: bool,
}

impl Client {
    /// Build the client. Fails only on a bad proxy URL.
    pub fn new(
        base: ApiBase,
        credential: Credential,
        options: ClientOptions,
    ) -> Result<Client, String> {
        use ureq::tls::{RootCerts, TlsConfig};
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::PlatformVerifier)
            .disable_verification(!options.verify_tls)
            .build();
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .accept("application/json")
            .max_redirects(0)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.timeout.min(Duration::from_secs(15))))
            .max_idle_connections(options.connections.max(1) + 2)
            .max_idle_connections_per_host(options.connections.max(1) + 2)
            .max_idle_age(Duration::from_secs(30))
            .tls_config(tls);
        config = config.proxy(choose_proxy(&base, options.proxy.as_deref())?);
        Ok(Client {
            shared: Arc::new(Shared {
                agent: config.build().new_agent(),
                base,
                credential,
                options,
                requests: AtomicU64::new(0),
                posts: AtomicU64::new(0),
                breaker: Mutex::new(Breaker::default()),
                deadline: OnceLock::new(),
                by_code: Mutex::default(),
            }),
            optional: false,
        })
    }

    /// The same client for best-effort calls whose failure must not hold up usage (the agent
    /// identity, the server version): a GET is retried at most once, a POST or PUT never (a
    /// repeated identity POST could create it twice), and their failures never count towards
    /// the breaker.
    pub fn optional(&self) -> Client {
        Client {
            shared: Arc::clone(&self.shared),
            optional: true,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &ApiBase {
        &self.shared.base
    }

    /// Requests sent so far (every attempt counts).
    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// POST and PUT requests sent so far (every attempt counts).
    pub fn post_count(&self) -> u64 {
        self.shared.posts.load(Ordering::Relaxed)
    }

    /// Attempts sent so far by `(method, status code)`, the code being `none` for an attempt
    /// that got no answer (refused, reset, timed out): for the run's metrics.
    pub fn requests_by_code(&self) -> std::collections::BTreeMap<(String, String), u64> {
        self.shared
            .by_code
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// GET an endpoint (relative to `/api/`).
    pub fn get(&self, path: &str, query: &Query) -> Result<Reply, ApiError> {
        self.send("GET", path, query, None, |_| Ok(()))
            .map(|(reply, ())| reply)
    }

    /// GET an endpoint and decode its JSON body.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<(T, Reply), ApiError> {
        self.send("GET", path, query, None, |reply| {
            serde_json::from_str::<T>(&reply.body).map_err(|e| e.to_string())
        })
        .map(|(reply, value)| (value, reply))
    }

    /// POST a JSON body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> Result<Reply, ApiError> {
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        self.send("POST", path, &Query::new(), Some(&bytes), |_| Ok(()))
            .map(|(reply, ())| reply)
    }

    /// POST a JSON body to an endpoint that answers 201 Created (the usage POSTs). Any other
    /// success status (a proxy's 200 page) is treated as not applied and retried: the usage
    /// POSTs replace values, so sending them again is safe.
    pub fn post_created(&self, path: &str, body: &serde_json::Value) -> Result<Reply, ApiError> {
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        self.send("POST", path, &Query::new(), Some(&bytes), |reply| {
            if reply.status == 201 {
                Ok(())
            } else {
                Err(format!(
                    "status {} instead of 201 Created, so the usage may not be stored",
                    reply.status
                ))
            }
        })
        .map(|(reply, ())| reply)
    }

    /// PUT a JSON body.
    pub fn put(&self, path: &str, body: &serde_json::Value) -> Result<Reply, ApiError> {
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        self.send("PUT", path, &Query::new(), Some(&bytes), |_| Ok(()))
            .map(|(reply, ())| reply)
    }

    /// `/api/<path>`, for messages.
    pub fn display_path(&self, path: &str) -> String {
        format!("/api/{}", path.trim_start_matches('/'))
    }

    fn count_answer(&self, method: &str, outcome: &Result<Reply, Attempt>) {
        let code = match outcome {
            Ok(reply) => reply.status.to_string(),
            Err(Attempt::Transport(_)) => "none".to_string(),
            // The token endpoint failed: nothing was sent to Waldur.
            Err(Attempt::Credentials(_)) => return,
        };
        *self
            .shared
            .by_code
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method.to_string(), code))
            .or_insert(0) += 1;
    }

    /// What is left of the run budget (which starts at the first call of this).
    fn remaining(&self) -> Duration {
        let budget = self.shared.options.run_budget;
        let deadline = *self.shared.deadline.get_or_init(|| Instant::now() + budget);
        deadline.saturating_duration_since(Instant::now())
    }

    /// Why a request is not sent, or was given up, once the run budget is used up.
    fn budget_used_up(&self, last: Option<&str>) -> String {
        let secs = self.shared.options.run_budget.as_secs_f64();
        match last {
            Some(last) => format!(
                "the run's time budget of {secs} s (--max-run-time) was used up; last: {last}"
            ),
            None => {
                format!("not sent: the run's time budget of {secs} s (--max-run-time) is used up")
            }
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.shared
            .breaker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The credential values this client sends (the token; for OIDC the client secret and the
    /// access token in use), which must never appear in a message.
    fn secrets(&self) -> Vec<Secret> {
        match &self.shared.credential {
            Credential::Token(token) => vec![token.clone()],
            Credential::Oidc(client) => client.secrets(),
        }
    }

    fn authorization(&self) -> Result<Secret, ApiError> {
        let shared = &self.shared;
        match &shared.credential {
            Credential::Token(token) => Ok(token_header(token)),
            Credential::Oidc(client) => {
                client.header(&shared.agent, shared.options.allow_insecure_http)
            }
        }
    }

    fn once(&self, method: &str, url: &str, body: Option<&[u8]>) -> Result<Reply, Attempt> {
        let auth = self.authorization().map_err(Attempt::Credentials)?;
        let shared = &*self.shared;
        shared.requests.fetch_add(1, Ordering::Relaxed);
        // One attempt never runs past the run budget.
        let timeout = Some(shared.options.timeout.min(self.remaining()));
        let result = match (method, body) {
            ("GET", _) => shared
                .agent
                .get(url)
                .config()
                .timeout_global(timeout)
                .build()
                .header("Authorization", auth.expose())
                .call(),
            ("POST", Some(b)) | ("PUT", Some(b)) => {
                shared.posts.fetch_add(1, Ordering::Relaxed);
                let builder = if method == "POST" {
                    shared.agent.post(url)
                } else {
                    shared.agent.put(url)
                };
                builder
                    .config()
                    .timeout_global(timeout)
                    .build()
                    .header("Authorization", auth.expose())
                    .content_type("application/json")
                    .send(b)
            }
            _ => unreachable!("unsupported method {method}"),
        };
        let mut response = result.map_err(Attempt::Transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(Attempt::Transport)?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// The proxy for requests to `base`: `configured` (config `global_proxy`), else the
/// environment's (`ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`, lower case too). A loopback Waldur
/// is always reached directly. Plain http through a proxy is refused: the proxy would read the
/// token in the clear (and a CONNECT tunnel to port 80 is no better).
fn choose_proxy(base: &ApiBase, configured: Option<&str>) -> Result<Option<ureq::Proxy>, String> {
    let proxy = match configured {
        Some(url) => Some(
            ureq::Proxy::new(url)
                .map_err(|e| format!("global_proxy {url:?} is not usable: {e}"))?,
        ),
        None => ureq::Proxy::try_from_env(),
    };
    let Some(proxy) = proxy else {
        return Ok(None);
    };
    if base.is_loopback() {
        debug!("{} is a loopback address: no proxy", base.root());
        return Ok(None);
    }
    if !base.is_https() {
        let source = if configured.is_some() {
            "global_proxy"
        } else {
            "the proxy environment (HTTP_PROXY, http_proxy, ALL_PROXY)"
        };
        return Err(format!(
            "{}: plain http through the proxy {}:{} (from {source}) would hand the API token \
             to the proxy in clear; use https:// for waldur_api_url, or unset the proxy",
            base.root(),
            proxy.host(),
            proxy.port()
        ));
    }
    Ok(Some(proxy))
}

enum Attempt {
    Credentials(ApiError),
    Transport(ureq::Error),
}

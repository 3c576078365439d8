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
//! alone. The [`Breaker`] stops the run only when the server itself is gone: after
//! [`BREAKER_TRANSPORT_LIMIT`] requests in a row failed at the connection level (refused,
//! reset, timed out), or [`BREAKER_OUTAGE_LIMIT`] requests in a row used up their retries on
//! 5xx or 429 with no success between. Then every later request fails at once, so a run
//! against a dead server ends in seconds instead of retrying thousands of POSTs one by one.
//! Best-effort calls ([`Client::optional`]: identity, version) never count towards it.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use ureq::http::HeaderMap;

use super::auth::{Credential, token_header};
use super::error::{ApiError, redact, server_message};
use super::url::{ApiBase, Query};
use crate::config::Secret;
use crate::{debug, warn};

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

/// When and how long to wait before trying a request again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Wait before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Longest wait between two attempts (a server's `Retry-After` may ask for more, within
    /// the budget).
    pub max_delay: Duration,
    /// A request gives up when the next attempt would start later than this after its first.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            budget: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): `base * 2^(retry-1)` capped at
    /// `max_delay`, with jitter spreading it over its upper half.
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let cap = exp.min(self.max_delay);
        let half = cap / 2;
        let spread = half.as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            random % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

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

/// Requests in a row that failed at the connection level before the client stops sending.
pub const BREAKER_TRANSPORT_LIMIT: u32 = 3;
/// Requests in a row that used up their retries on 5xx or 429 (no success between) before the
/// client stops sending: several different requests, so never one resource's fault alone.
pub const BREAKER_OUTAGE_LIMIT: u32 = 8;

/// Decides when the server, not one request, has failed.
#[derive(Debug, Default)]
struct Breaker {
    /// Requests in a row that ended in a transport failure.
    transport: u32,
    /// Requests in a row that ended in a retryable failure of any kind.
    outage: u32,
    /// Set once tripped: the failure that tripped it.
    tripped: Option<ApiError>,
}

impl Breaker {
    /// An attempt got an HTTP answer: the server is reachable.
    fn answered(&mut self, status: u16) {
        self.transport = 0;
        if status < 500 && status != 429 {
            self.outage = 0;
        }
    }

    /// A request used up its retries on `error`.
    fn gave_up(&mut self, error: &ApiError) {
        if matches!(error, ApiError::Transport { .. }) {
            self.transport += 1;
        }
        self.outage += 1;
        if self.tripped.is_none()
            && (self.transport >= BREAKER_TRANSPORT_LIMIT || self.outage >= BREAKER_OUTAGE_LIMIT)
        {
            self.tripped = Some(error.clone());
        }
    }

    /// Why nothing more is sent, if the breaker has tripped.
    fn refusal(&self) -> Option<String> {
        let cause = self.tripped.as_ref()?;
        let (count, what) = if matches!(cause, ApiError::Transport { .. }) {
            (
                self.transport.max(BREAKER_TRANSPORT_LIMIT),
                "could not reach it",
            )
        } else {
            (self.outage.max(BREAKER_OUTAGE_LIMIT), "failed")
        };
        Some(format!(
            "not sent: Waldur is unavailable ({count} requests in a row {what}; last: {})",
            cause.short()
        ))
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

    /// GET every page of a list, following `Link: rel="next"` (only its `page` value is taken,
    /// so the next request goes to the configured base URL with the same parameters).
    pub fn list<T: DeserializeOwned>(&self, path: &str, query: &Query) -> Result<Vec<T>, ApiError> {
        self.list_counted(path, query).map(|l| l.items)
    }

    /// [`Client::list`], with the `X-Result-Count` of the first page, so that a caller can
    /// tell whether the pages added up to the listing the server counted.
    pub fn list_counted<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<Listing<T>, ApiError> {
        let mut query = query.clone();
        query.set("page_size", PAGE_SIZE.to_string());
        let mut listing = Listing {
            items: Vec::new(),
            result_count: None,
            pages: 0,
        };
        let fail = |detail: String| ApiError::Decode {
            method: "GET".into(),
            path: self.display_path(path),
            detail,
        };
        // A hash of each whole page read, to see a server that serves the same page again.
        // (Rows that move between pages of an order with ties are a different matter, left to
        // the caller: see `api::listing_gap`.)
        let mut page_hashes = std::collections::HashSet::new();
        let mut page_len: u64 = 0;
        let mut page: u64 = 1;
        loop {
            if page > 1 {
                query.set("page", page.to_string());
            }
            let (rows, reply) = self.get_json::<Vec<serde_json::Value>>(path, &query)?;
            if listing.pages == 0 {
                listing.result_count = reply
                    .header("x-result-count")
                    .and_then(|c| c.trim().parse().ok());
                page_len = rows.len() as u64;
            }
            listing.pages += 1;
            let repeated = !rows.is_empty()
                && !page_hashes.insert(hash_of(&serde_json::Value::Array(rows.clone())));
            if repeated {
                return Err(fail(format!(
                    "page {page} is a page already read; the server's pagination is broken"
                )));
            }
            for row in rows {
                listing
                    .items
                    .push(serde_json::from_value(row).map_err(|e| fail(e.to_string()))?);
            }
            if let Some(count) = listing.result_count {
                let announced = count.div_ceil(page_len.max(1)).max(1);
                if listing.pages > announced + 1 {
                    return Err(fail(format!(
                        "more pages than the {announced} that X-Result-Count {count} announces \
                         ({} read); the server's pagination is broken",
                        listing.pages
                    )));
                }
            }
            match next_page(reply.header("link")) {
                Some(_) if listing.pages >= self.shared.options.max_pages => {
                    return Err(fail(format!(
                        "still a next page after {} pages, the most one listing may have \
                         (--max-pages); the server's pagination is broken",
                        self.shared.options.max_pages
                    )));
                }
                Some(next) if next > page => page = next,
                Some(next) => {
                    return Err(fail(format!(
                        "the Link header points back to page {next} from page {page}"
                    )));
                }
                None => return Ok(listing),
            }
        }
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

    fn send<T>(
        &self,
        method: &str,
        path: &str,
        query: &Query,
        body: Option<&[u8]>,
        accept: impl Fn(&Reply) -> Result<T, String>,
    ) -> Result<(Reply, T), ApiError> {
        let shown = self.display_path(path);
        let refusal = self.breaker().refusal().or_else(|| {
            self.remaining()
                .is_zero()
                .then(|| self.budget_used_up(None))
        });
        if let Some(detail) = refusal {
            return Err(ApiError::Transport {
                method: method.into(),
                path: shown,
                detail,
                attempts: 0,
            });
        }
        let mut url = self.shared.base.endpoint(path);
        let encoded = query.encode();
        if !encoded.is_empty() {
            url.push('?');
            url.push_str(&encoded);
        }
        let started = Instant::now();
        let mut policy = self.shared.options.retry;
        if self.optional {
            policy.retries = if method == "GET" {
                policy.retries.min(1)
            } else {
                0
            };
        }
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let t0 = Instant::now();
            let outcome = self.once(method, &url, body);
            let elapsed = t0.elapsed().as_millis();
            self.count_answer(method, &outcome);
            // What to do: Ok(done), Err((error, retryable, requested wait)).
            let failure: (ApiError, bool, Option<Duration>) = match outcome {
                // A token endpoint that is down is an outage like any other; a refused
                // client secret is final.
                Err(Attempt::Credentials(e)) if e.exit_code() != crate::cli::exit::TEMPFAIL => {
                    return Err(e);
                }
                Err(Attempt::Credentials(e)) => (e, true, None),
                Err(Attempt::Transport(e)) if is_tls_failure(&e) => {
                    return Err(ApiError::Tls {
                        method: method.into(),
                        path: shown,
                        detail: describe(&e),
                    });
                }
                Err(Attempt::Transport(e)) => {
                    debug!("{method} {shown}: {} ({elapsed} ms)", describe(&e));
                    let retryable = transport_retryable(&e);
                    (
                        ApiError::Transport {
                            method: method.into(),
                            path: shown.clone(),
                            detail: describe(&e),
                            attempts: attempt,
                        },
                        retryable,
                        None,
                    )
                }
                Ok(reply) => {
                    debug!("{method} {shown} -> {} ({elapsed} ms)", reply.status);
                    let status = reply.status;
                    if !self.optional {
                        self.breaker().answered(status);
                    }
                    if (200..300).contains(&status) {
                        match accept(&reply) {
                            Ok(value) => return Ok((reply, value)),
                            Err(detail) => (
                                ApiError::Decode {
                                    method: method.into(),
                                    path: shown.clone(),
                                    detail,
                                },
                                true,
                                None,
                            ),
                        }
                    } else {
                        let secrets = self.secrets();
                        let secrets: Vec<&str> = secrets.iter().map(|s| s.expose()).collect();
                        let mut message = server_message(&reply.body, &secrets);
                        if (300..400).contains(&status) {
                            let to = redact(reply.header("location").unwrap_or("?"), &secrets);
                            message = format!(
                                "redirected to {to}; check waldur_api_url (scheme, host, path)"
                            );
                        }
                        let retryable = status == 429 || status >= 500;
                        let wait = if retryable {
                            retry_after(reply.header("retry-after"))
                        } else {
                            None
                        };
                        (
                            ApiError::Status {
                                method: method.into(),
                                path: shown.clone(),
                                status,
                                message,
                                attempts: attempt,
                            },
                            retryable,
                            wait,
                        )
                    }
                }
            };
            let (error, retryable, asked) = failure;
            if !retryable {
                return Err(error);
            }
            let wait = asked.unwrap_or_else(|| policy.backoff(attempt, random()));
            let out_of_budget = started.elapsed() + wait > policy.budget;
            if attempt > policy.retries || out_of_budget {
                if !self.optional {
                    self.breaker().gave_up(&error);
                }
                return Err(error);
            }
            if wait >= self.remaining() {
                // The run's budget ends before the next attempt could start.
                return Err(ApiError::Transport {
                    method: method.into(),
                    path: shown,
                    detail: self.budget_used_up(Some(&error.short())),
                    attempts: attempt,
                });
            }
            warn!(
                "{}; retrying in {:.1} s (attempt {} of {})",
                error,
                wait.as_secs_f64(),
                attempt + 1,
                policy.retries + 1
            );
            std::thread::sleep(wait);
        }
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

/// Connection trouble and timeouts may pass; certificate and configuration errors will not.
fn transport_retryable(e: &ureq::Error) -> bool {
    use ureq::Error as E;
    matches!(
        e,
        E::Io(_)
            | E::Timeout(_)
            | E::HostNotFound
            | E::ConnectionFailed
            | E::Protocol(_)
            | E::BodyStalled
            | E::ConnectProxyFailed(_)
    )
}

/// A TLS failure: a certificate that is not trusted, expired or for another name, or a
/// handshake that cannot succeed. rustls reports these inside an I/O error of kind
/// `InvalidData`.
fn is_tls_failure(e: &ureq::Error) -> bool {
    use ureq::Error as E;
    match e {
        E::Tls(_) | E::TlsRequired => true,
        E::Io(io) => {
            let text = io.to_string();
            io.kind() == std::io::ErrorKind::InvalidData
                && (text.contains("certificate") || text.contains("handshake"))
        }
        _ => false,
    }
}

fn describe(e: &ureq::Error) -> String {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => format!("timed out ({t})"),
        E::HostNotFound => "host not found (DNS)".into(),
        E::ConnectionFailed => "connection failed".into(),
        E::Io(io) => format!("connection error: {io}"),
        other => other.to_string(),
    }
}

/// Seconds or an HTTP date.
fn retry_after(value: Option<&str>) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let secs = when.as_second() - now.as_second();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// Every page of a list, as [`Client::list_counted`] read it.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    /// The rows of all pages, in the order read.
    pub items: Vec<T>,
    /// `X-Result-Count` of the first page: how many rows the server counted then.
    pub result_count: Option<u64>,
    /// Pages read.
    pub pages: u64,
}

/// The `page` value of the `rel="next"` link, if any.
fn next_page(link: Option<&str>) -> Option<u64> {
    let link = link?;
    for part in link.split(',') {
        let (url, params) = part.split_once(';').unwrap_or((part, ""));
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            continue;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        return Query::parse(query).get("page")?.parse().ok();
    }
    None
}

/// A hash of a JSON value, to recognise a page seen before without keeping it twice.
fn hash_of(value: &serde_json::Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(value.to_string().as_bytes());
    h.finish()
}

/// A random number for jitter, without a random-number crate: `RandomState` is seeded from the
/// OS once per process and differs per call through the counter.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_is_read_from_the_link_header() {
        let link = "<https://w/api/x/?page_size=300>; rel=\"first\", \
                    <https://w/api/x/?page=3&page_size=300>; rel=\"next\", \
                    <https://w/api/x/?page=5&page_size=300>; rel=\"last\"";
        assert_eq!(next_page(Some(link)), Some(3));
        let last = "<https://w/api/x/?page_size=300>; rel=\"first\", \
                    <https://w/api/x/?page=4&page_size=300>; rel=\"prev\"";
        assert_eq!(next_page(Some(last)), None);
        assert_eq!(next_page(None), None);
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_in_the_upper_half() {
        let p = RetryPolicy {
            retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
            budget: Duration::from_secs(60),
        };
        // retry 1: 500 ms -> [250, 500]; retry 3: 2 s -> [1, 2]; retry 5: 8 s capped at 3 s
        // -> [1.5, 3].
        assert_eq!(p.backoff(1, 0), Duration::from_millis(250));
        assert_eq!(p.backoff(1, 250_000_000), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 0), Duration::from_secs(1));
        assert_eq!(p.backoff(5, 0), Duration::from_millis(1500));
        for r in 0..50 {
            let d = p.backoff(5, random().wrapping_add(r));
            assert!(
                d >= Duration::from_millis(1500) && d <= Duration::from_secs(3),
                "{d:?}"
            );
        }
    }

    #[test]
    fn the_breaker_trips_on_the_server_never_on_one_request() {
        let transport = ApiError::Transport {
            method: "POST".into(),
            path: "/api/x/".into(),
            detail: "connection failed".into(),
            attempts: 4,
        };
        let status = |s| ApiError::Status {
            method: "POST".into(),
            path: "/api/x/".into(),
            status: s,
            message: String::new(),
            attempts: 4,
        };
        // One resource's 500, then a success: never trips, however often it repeats.
        let mut b = Breaker::default();
        for _ in 0..100 {
            b.answered(500);
            b.gave_up(&status(500));
            b.answered(201);
        }
        assert!(b.refusal().is_none());
        // Connection failures in a row: trips at the limit, not before.
        for _ in 1..BREAKER_TRANSPORT_LIMIT {
            b.gave_up(&transport);
        }
        assert!(b.refusal().is_none());
        b.answered(400);
        for _ in 1..BREAKER_TRANSPORT_LIMIT {
            b.gave_up(&transport);
        }
        assert!(
            b.refusal().is_none(),
            "an answer in between resets the count"
        );
        b.gave_up(&transport);
        assert!(
            b.refusal()
                .unwrap()
                .contains("3 requests in a row could not reach it")
        );
        // 5xx on every request: trips after BREAKER_OUTAGE_LIMIT of them.
        let mut b = Breaker::default();
        for _ in 1..BREAKER_OUTAGE_LIMIT {
            b.answered(503);
            b.gave_up(&status(503));
        }
        assert!(b.refusal().is_none());
        b.answered(503);
        b.gave_up(&status(503));
        assert!(b.refusal().unwrap().contains("8 requests in a row failed"));
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(retry_after(Some("7")), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(Some("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
    }
}

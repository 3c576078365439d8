//! Retries with capped exponential backoff and `Retry-After`, the [`Breaker`] that stops a
//! run against a server that is gone, and the sorting of failures into retryable or not.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Attempt, Client, Reply};
use crate::waldur::error::{ApiError, redact, server_message};
use crate::waldur::url::Query;
use crate::{debug, warn};

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

/// Requests in a row that failed at the connection level before the client stops sending.
pub const BREAKER_TRANSPORT_LIMIT: u32 = 3;
/// Requests in a row that used up their retries on 5xx or 429 (no success between) before the
/// client stops sending: several different requests, so never one resource's fault alone.
pub const BREAKER_OUTAGE_LIMIT: u32 = 8;

/// Decides when the server, not one request, has failed.
#[derive(Debug, Default)]
pub(super) struct Breaker {
    /// Requests in a row that ended in a transport failure.
    transport: u32,
    /// Requests in a row that ended in a retryable failure of any kind.
    outage: u32,
    /// Set once tripped: the failure that tripped it.
    tripped: Option<ApiError>,
}

impl Breaker {
    /// An attempt got an HTTP answer: the server is reachable.
    pub(super) fn answered(&mut self, status: u16) {
        self.transport = 0;
        if status < 500 && status != 429 {
            self.outage = 0;
        }
    }

    /// A request used up its retries on `error`.
    pub(super) fn gave_up(&mut self, error: &ApiError) {
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
    pub(super) fn refusal(&self) -> Option<String> {
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

impl Client {
    pub(super) fn send<T>(
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

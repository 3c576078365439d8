//! Injected faults: per endpoint (method + substring of the request target), N times.

use std::time::Duration;

use super::http::{Outcome, Response};

/// A fault that fires on the next `times` requests that match.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Only requests with this method (case-insensitive); `None` matches every method.
    pub method: Option<String>,
    /// Substring of the request target (path and query string) that selects the endpoint;
    /// `""` matches every request.
    pub path_contains: String,
    /// What happens.
    pub kind: FaultKind,
    /// How many matching requests it affects; it is consumed as it fires.
    pub times: u32,
    /// Only requests whose body contains this text (e.g. one resource's UUID).
    pub body_contains: Option<String>,
}

impl Fault {
    /// A fault on `method` requests whose target contains `path_contains`, firing once.
    pub fn new(method: &str, path_contains: &str, kind: FaultKind) -> Fault {
        Fault {
            method: Some(method.to_string()),
            path_contains: path_contains.to_string(),
            kind,
            times: 1,
            body_contains: None,
        }
    }

    /// The same fault, only for requests whose body contains `text`.
    pub fn with_body(mut self, text: &str) -> Fault {
        self.body_contains = Some(text.to_string());
        self
    }

    /// The same fault firing `times` times.
    pub fn times(mut self, times: u32) -> Fault {
        self.times = times;
        self
    }

    fn matches(&self, method: &str, target: &str, body: &[u8]) -> bool {
        self.times > 0
            && self.body_contains.as_deref().is_none_or(|text| {
                body.windows(text.len().max(1))
                    .any(|w| w == text.as_bytes())
            })
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && target.contains(&self.path_contains)
    }
}

/// The kinds of trouble the fake can simulate.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Answer with this status without touching state (5xx get an HTML body like a proxy or
    /// Django's error page, others a DRF `{"detail": ...}` body).
    Status(u16),
    /// 429 with `Retry-After` and DRF's throttle body, without touching state.
    TooManyRequests {
        /// Value of `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// Sleep this long, then handle the request normally (the server still applies it: a
    /// client that timed out cannot know whether its POST landed).
    Delay(Duration),
    /// Close the connection without answering, without touching state. Logged as status 0.
    Reset,
    /// 200 with a body that is not JSON (claiming `application/json`), without touching state.
    Garbage,
    /// Answer with this status and a body that echoes the request's headers, `Authorization`
    /// included, as a debug page or a careless proxy does: an HTML page without a title for
    /// 5xx, DRF's `{"detail": "... <headers> ..."}` otherwise. Without touching state.
    EchoHeaders(u16),
    /// A list that never ends: the request is answered as if it asked for page 1, with a
    /// `Link: <...page=N+1>; rel="next"` on every page. `fresh`: each page's rows get new
    /// UUIDs (else every page repeats page 1). `counted`: keep page 1's `X-Result-Count` (else
    /// drop it, so that only a page cap can stop a client). Set `times` high.
    EndlessPages {
        /// New UUIDs on every page.
        fresh: bool,
        /// Keep `X-Result-Count`.
        counted: bool,
    },
}

/// What the server does about a request after consulting the faults.
pub enum Decision {
    /// No fault: handle normally.
    Proceed,
    /// Sleep, then handle normally.
    DelayThenProceed(Duration),
    /// Handle as page 1, then rewrite the answer into an endless chain of pages.
    EndlessPages {
        /// New UUIDs on every page.
        fresh: bool,
        /// Keep `X-Result-Count`.
        counted: bool,
    },
    /// Give this outcome instead of handling; `status` is what the log records.
    Replace { outcome: Outcome, status: u16 },
}

/// Consumes the first fault that matches and says what to do.
pub fn decide(
    faults: &mut Vec<Fault>,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Decision {
    let Some(i) = faults.iter().position(|f| f.matches(method, target, body)) else {
        return Decision::Proceed;
    };
    faults[i].times -= 1;
    let kind = faults[i].kind.clone();
    if faults[i].times == 0 {
        faults.remove(i);
    }
    match kind {
        FaultKind::Delay(d) => Decision::DelayThenProceed(d),
        FaultKind::EndlessPages { fresh, counted } => Decision::EndlessPages { fresh, counted },
        FaultKind::Reset => Decision::Replace {
            outcome: Outcome::Reset,
            status: 0,
        },
        FaultKind::Garbage => Decision::Replace {
            outcome: Outcome::Respond(Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: b"<html><body>upstream sent garbage {\"truncated\": ".to_vec(),
                head_only: false,
            }),
            status: 200,
        },
        FaultKind::TooManyRequests { retry_after_secs } => Decision::Replace {
            outcome: Outcome::Respond(
                Response::json(
                    429,
                    &serde_json::json!({
                        "detail": format!("Request was throttled. Expected available in {retry_after_secs} seconds.")
                    }),
                )
                .with_header("Retry-After", retry_after_secs.to_string()),
            ),
            status: 429,
        },
        FaultKind::EchoHeaders(status) => {
            // Authorization first, so that a message cut short still reaches it.
            let mut echoed: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            echoed.sort_by_key(|h| !h.starts_with("authorization:"));
            let response = if status >= 500 {
                Response {
                    status,
                    headers: vec![("Content-Type".into(), "text/html".into())],
                    body: format!(
                        "<html><body><p>Request headers: {}</p>\
                         <p>Internal error while handling {method} {target}.</p></body></html>",
                        echoed.join("; ")
                    )
                    .into_bytes(),
                    head_only: false,
                }
            } else {
                Response::json(
                    status,
                    &serde_json::json!({
                        "detail": format!("Rejected, headers: {}; request {method} {target}", echoed.join(", "))
                    }),
                )
            };
            Decision::Replace {
                outcome: Outcome::Respond(response),
                status,
            }
        }
        FaultKind::Status(status) if status >= 500 => Decision::Replace {
            outcome: Outcome::Respond(Response {
                status,
                headers: vec![("Content-Type".into(), "text/html".into())],
                body: format!("<h1>Server Error ({status})</h1>").into_bytes(),
                head_only: false,
            }),
            status,
        },
        FaultKind::Status(status) => Decision::Replace {
            outcome: Outcome::Respond(Response::json(
                status,
                &serde_json::json!({"detail": format!("Injected fault: status {status}.")}),
            )),
            status,
        },
    }
}

//! Errors of the Waldur client, typed so callers can tell a refusal from an outage.

use std::fmt;

use crate::cli::exit;

/// A Waldur request that did not succeed. Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The server answered with a non-success status (after retries, for 5xx and 429).
    Status {
        /// `GET`, `POST`, ...
        method: String,
        /// Path below the installation root, e.g. `/api/users/me/`.
        path: String,
        /// HTTP status.
        status: u16,
        /// The server's message (`detail`, field errors, or the start of the body).
        message: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// No usable answer: connection refused or reset, DNS, TLS, timeout (after retries).
    Transport {
        /// `GET`, `POST`, ...
        method: String,
        /// Path below the installation root.
        path: String,
        /// What happened.
        detail: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// TLS failed: the server's certificate is not trusted, expired or for another name. Not
    /// retried: it does not pass by itself.
    Tls {
        /// `GET`, `POST`, ...
        method: String,
        /// Path below the installation root.
        path: String,
        /// What the TLS library said.
        detail: String,
    },
    /// A success answer whose body is not what the API promises.
    Decode {
        /// `GET`, `POST`, ...
        method: String,
        /// Path below the installation root.
        path: String,
        /// What was wrong with it.
        detail: String,
    },
    /// No credentials could be obtained (token file unreadable, OIDC refused).
    Credentials(String),
}

impl ApiError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The sysexits status for this failure: 77 for credentials and permissions (401, 403),
    /// 76 for other refusals (4xx) and answers we cannot read, 75 for outages (5xx, 429,
    /// transport) that may pass.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApiError::Status { status, .. } => match status {
                401 | 403 => exit::NOPERM,
                429 => exit::TEMPFAIL,
                s if *s >= 500 => exit::TEMPFAIL,
                _ => exit::PROTOCOL,
            },
            ApiError::Transport { .. } => exit::TEMPFAIL,
            ApiError::Tls { .. } => exit::CONFIG,
            ApiError::Decode { .. } => exit::PROTOCOL,
            ApiError::Credentials(_) => exit::NOPERM,
        }
    }

    /// A short description for `result` records: `HTTP 400: {"usages": ...}`.
    pub fn short(&self) -> String {
        match self {
            ApiError::Status {
                status, message, ..
            } => format!("HTTP {status}: {message}"),
            ApiError::Transport { detail, .. } => detail.clone(),
            ApiError::Tls { detail, .. } => format!("TLS: {detail}"),
            ApiError::Decode { detail, .. } => format!("unreadable answer: {detail}"),
            ApiError::Credentials(m) => m.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tries = |n: &u32| {
            if *n > 1 {
                format!(" (after {n} attempts)")
            } else {
                String::new()
            }
        };
        match self {
            ApiError::Status {
                method,
                path,
                status,
                message,
                attempts,
            } => {
                let hint = match status {
                    401 => " (the token is missing, wrong or expired)",
                    403 => " (the token's user lacks the permission)",
                    _ => "",
                };
                write!(
                    f,
                    "{method} {path}: HTTP {status}{hint}: {message}{}",
                    tries(attempts)
                )
            }
            ApiError::Transport {
                method,
                path,
                detail,
                attempts,
            } => write!(f, "{method} {path}: {detail}{}", tries(attempts)),
            ApiError::Tls {
                method,
                path,
                detail,
            } => write!(
                f,
                "{method} {path}: TLS failed: {detail}; the server's certificate is not trusted \
                 by the system trust store (install its CA with update-ca-certificates or \
                 update-ca-trust), has expired, or names another host (check waldur_api_url)"
            ),
            ApiError::Decode {
                method,
                path,
                detail,
            } => write!(f, "{method} {path}: unreadable answer: {detail}"),
            ApiError::Credentials(m) => write!(f, "credentials: {m}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// Pull a readable one-line message out of an error body: DRF's `{"detail": ...}`, field
/// errors as compact JSON, the title of an HTML page (Django and proxies answer unknown paths
/// and outages with whole pages), or the start of a text body.
///
/// This is the one place where a server's body becomes a message, so it is where credentials
/// are removed: the body is [`redact`]ed (with `secrets`, the values this run sends) before
/// anything is taken from it. A debug page or a proxy that echoes the request headers then
/// cannot put the token into a log, a `result` record or a `--check` line.
///
/// ```
/// use waldur_usage::waldur::error::server_message;
/// let page = "<!doctype html>\n<html><head><title>Not Found</title></head>\n\
///             <body><h1>Not Found</h1><p>The requested resource was not found.</p></body></html>";
/// assert_eq!(server_message(page, &[]), "Not Found (HTML page)");
/// let echo = r#"{"detail": "bad request; headers: Authorization: Token 0123abcd0123abcd"}"#;
/// assert_eq!(
///     server_message(echo, &["0123abcd0123abcd"]),
///     "bad request; headers: Authorization: Token [redacted]"
/// );
/// ```
pub fn server_message(body: &str, secrets: &[&str]) -> String {
    let redacted = redact(body, secrets);
    let trimmed = redacted.trim();
    if trimmed.is_empty() {
        return "(empty body)".into();
    }
    if let Some(title) = html_title(trimmed) {
        return format!("{} (HTML page)", truncate(&title, 120));
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) {
        if let Some(detail) = value.get("detail").and_then(|d| d.as_str()) {
            return detail.to_string();
        }
        return truncate(&value.to_string(), 600);
    }
    let text: String = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&text, 300)
}

/// What replaces a credential in a message.
pub const REDACTED: &str = "[redacted]";

/// Remove credentials from a text that came from a server: every occurrence of one of
/// `secrets` (exact match; empty ones are ignored) becomes `[redacted]`, and so does the key of
/// any `Token <key>` or `Bearer <key>` (scheme matched case-insensitively, as a whole word;
/// the key is the run of characters up to the next whitespace or quote) that looks like a
/// credential: at least 8 characters with a digit in them, or at least 20. The length rule
/// keeps DRF's own messages readable: `Token has expired.` stays as it is.
///
/// ```
/// use waldur_usage::waldur::error::redact;
/// assert_eq!(
///     redact("Authorization: BEARER eyJhbGciOi.x1.y2 next", &[]),
///     "Authorization: BEARER [redacted] next"
/// );
/// assert_eq!(redact("key=s3cr3t-value!", &["s3cr3t-value"]), "key=[redacted]!");
/// assert_eq!(redact("Token has expired.", &[]), "Token has expired.");
/// ```
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    redact_schemes(&out)
}

/// The `Token <key>` / `Bearer <key>` part of [`redact`].
fn redact_schemes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let scheme = ["token", "bearer"].into_iter().find(|s| {
            bytes.len() >= i + s.len() && bytes[i..i + s.len()].eq_ignore_ascii_case(s.as_bytes())
        });
        let Some(scheme) = scheme.filter(|_| word_start) else {
            i += 1;
            continue;
        };
        let mut j = i + scheme.len();
        let spaces = j;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        if j == spaces {
            i += scheme.len();
            continue;
        }
        let key_start = j;
        while j < bytes.len()
            && !bytes[j].is_ascii_whitespace()
            && !matches!(bytes[j], b'"' | b'\'' | b'`')
        {
            j += 1;
        }
        let key = &text[key_start..j];
        let looks_secret = key != REDACTED
            && (key.len() >= 20 || (key.len() >= 8 && key.bytes().any(|b| b.is_ascii_digit())));
        if looks_secret {
            out.push_str(&text[copied..key_start]);
            out.push_str(REDACTED);
            copied = j;
        }
        i = j.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// The `<title>`, else the first `<h1>`..`<h3>`, else all text of a body that looks like HTML.
fn html_title(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let looks_html = lower.starts_with('<')
        && [
            "<html",
            "<!doctype",
            "<head",
            "<body",
            "<h1",
            "<title",
            "<p>",
        ]
        .iter()
        .any(|t| lower.contains(t));
    if !looks_html {
        return None;
    }
    let inner = |open: &str, close: &str| -> Option<String> {
        let start = lower.find(open)?;
        let after = start + lower[start..].find('>')? + 1;
        let end = after + lower[after..].find(close)?;
        Some(text_of(&body[after..end]))
    };
    ["title", "h1", "h2", "h3"]
        .iter()
        .find_map(|tag| inner(&format!("<{tag}"), &format!("</{tag}")).filter(|t| !t.is_empty()))
        .or_else(|| Some(text_of(body)).filter(|t| !t.is_empty()))
}

/// Text without tags, whitespace collapsed.
fn text_of(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> String {
        server_message(body, &[])
    }

    #[test]
    fn credentials_are_redacted_from_server_bodies() {
        let token = "0123456789abcdef0123456789abcdef01234567";
        let echo = format!(
            "<html><body><p>Request headers: Host: w; Authorization: Token {token}; \
             X-Other: bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln</p></body></html>"
        );
        let m = server_message(&echo, &[token]);
        assert!(!m.contains(token) && !m.contains("eyJ"), "{m}");
        assert!(m.contains("Authorization: Token [redacted];"), "{m}");
        assert!(m.contains("bearer [redacted]"), "{m}");
        // The exact value goes wherever it is, with or without a scheme before it.
        let json = format!(r#"{{"detail": "echo: HTTP_AUTHORIZATION='{token}'"}}"#);
        assert_eq!(
            server_message(&json, &[token]),
            "echo: HTTP_AUTHORIZATION='[redacted]'"
        );
        // A token cut off by the 300-character limit cannot leak a prefix: redaction is first.
        let long = format!("{} Token {token}", "x".repeat(280));
        assert!(!msg(&long).contains("0123456789abcdef"), "{}", msg(&long));
        // DRF's own messages are left alone.
        assert_eq!(
            msg(r#"{"detail": "Token has expired."}"#),
            "Token has expired."
        );
        assert_eq!(redact("Tokenize 12345678abc", &[]), "Tokenize 12345678abc");
        assert_eq!(redact("mytoken 12345678abc", &[]), "mytoken 12345678abc");
        assert_eq!(redact("TOKEN\t12345678abc\"", &[]), "TOKEN\t[redacted]\"");
        assert_eq!(redact("Bearer", &[]), "Bearer");
        assert_eq!(
            redact("ünï Token 12345678abc ü", &[""]),
            "ünï Token [redacted] ü"
        );
    }

    #[test]
    fn server_messages_are_short_and_readable() {
        assert_eq!(msg(r#"{"detail": "Invalid token."}"#), "Invalid token.");
        assert_eq!(
            msg(r#"{"usages": [{}, {"amount": ["Ensure..."]}]}"#),
            r#"{"usages":[{},{"amount":["Ensure..."]}]}"#
        );
        assert_eq!(
            msg("<html>\n <body>Bad   Gateway</body></html>"),
            "Bad Gateway (HTML page)"
        );
        assert_eq!(
            msg("<h1>Server Error (503)</h1>"),
            "Server Error (503) (HTML page)"
        );
        let nginx = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                     <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
                     </body>\r\n</html>\r\n";
        assert_eq!(msg(nginx), "502 Bad Gateway (HTML page)");
        let django = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <title>Page not found at /api/x/</title>\n\
             </head>\n<body>{}</body></html>",
            "<p>Using the URLconf ...</p>\n".repeat(200)
        );
        assert_eq!(msg(&django), "Page not found at /api/x/ (HTML page)");
        assert_eq!(msg("<3 plain text"), "<3 plain text");
        assert_eq!(msg(""), "(empty body)");
        assert_eq!(msg(&"x".repeat(400)).len(), 303);
    }

    #[test]
    fn exit_codes_separate_auth_refusal_and_outage() {
        let status = |s| ApiError::Status {
            method: "GET".into(),
            path: "/api/users/me/".into(),
            status: s,
            message: String::new(),
            attempts: 1,
        };
        assert_eq!(status(401).exit_code(), 77);
        assert_eq!(status(403).exit_code(), 77);
        assert_eq!(status(400).exit_code(), 76);
        assert_eq!(status(404).exit_code(), 76);
        assert_eq!(status(503).exit_code(), 75);
        assert_eq!(status(429).exit_code(), 75);
    }
}

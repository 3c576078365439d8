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
/// ```
/// use waldur_usage::waldur::error::server_message;
/// let page = "<!doctype html>\n<html><head><title>Not Found</title></head>\n\
///             <body><h1>Not Found</h1><p>The requested resource was not found.</p></body></html>";
/// assert_eq!(server_message(page), "Not Found (HTML page)");
/// ```
pub fn server_message(body: &str) -> String {
    let trimmed = body.trim();
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

    #[test]
    fn server_messages_are_short_and_readable() {
        assert_eq!(
            server_message(r#"{"detail": "Invalid token."}"#),
            "Invalid token."
        );
        assert_eq!(
            server_message(r#"{"usages": [{}, {"amount": ["Ensure..."]}]}"#),
            r#"{"usages":[{},{"amount":["Ensure..."]}]}"#
        );
        assert_eq!(
            server_message("<html>\n <body>Bad   Gateway</body></html>"),
            "Bad Gateway (HTML page)"
        );
        assert_eq!(
            server_message("<h1>Server Error (503)</h1>"),
            "Server Error (503) (HTML page)"
        );
        let nginx = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                     <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
                     </body>\r\n</html>\r\n";
        assert_eq!(server_message(nginx), "502 Bad Gateway (HTML page)");
        let django = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <title>Page not found at /api/x/</title>\n\
             </head>\n<body>{}</body></html>",
            "<p>Using the URLconf ...</p>\n".repeat(200)
        );
        assert_eq!(
            server_message(&django),
            "Page not found at /api/x/ (HTML page)"
        );
        assert_eq!(server_message("<3 plain text"), "<3 plain text");
        assert_eq!(server_message(""), "(empty body)");
        assert_eq!(server_message(&"x".repeat(400)).len(), 303);
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

//! The Waldur base URL: from `waldur_api_url` to `<base>/api/<endpoint>`.
//!
//! The site agent's config holds `waldur_api_url` such as `https://waldur.example.com/api/`. The
//! reference agent applies Python's `rstrip("/api")`, which strips any trailing run of the
//! *characters* `/`, `a`, `p`, `i` and so turns `https://hpc.wiki/api/` into `https://hpc.wik`.
//! Here at most one trailing `api` path *segment* is removed, together with the slashes around
//! it, and nothing else.
//!
//! Plain `http` is refused unless the host is a loopback address (tests, an SSH tunnel) or the
//! caller explicitly allows it: a token sent over plain http can be read on the way.

use std::fmt;

use ureq::http::Uri;

/// Why a `waldur_api_url` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

/// The root of a Waldur installation; endpoints live under `<root>/api/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase {
    /// `scheme://authority[/sub/path]`, no trailing slash.
    root: String,
    /// Whether the host is a loopback address.
    loopback: bool,
    /// Whether the scheme is https.
    https: bool,
}

impl ApiBase {
    /// Parse `waldur_api_url`. `allow_insecure_http` permits plain http to a non-loopback host.
    pub fn parse(url: &str, allow_insecure_http: bool) -> Result<ApiBase, UrlError> {
        let url = url.trim();
        let uri: Uri = url
            .parse()
            .map_err(|e| UrlError(format!("{url:?} is not a valid URL: {e}")))?;
        let scheme = uri.scheme_str().unwrap_or("");
        let https = match scheme {
            "https" => true,
            "http" => false,
            _ => {
                return Err(UrlError(format!(
                    "{url:?}: expected a URL starting with https://"
                )));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| UrlError(format!("{url:?}: the URL has no host")))?;
        if authority.as_str().contains('@') {
            return Err(UrlError(format!(
                "{url:?}: user names or passwords in the URL are not supported; use a token"
            )));
        }
        if uri.query().is_some() {
            return Err(UrlError(format!(
                "{url:?}: the URL must not carry a query string"
            )));
        }
        let loopback = is_loopback(uri.host().unwrap_or(""));
        if !https && !loopback && !allow_insecure_http {
            return Err(UrlError(format!(
                "{url:?}: plain http would send the API token unencrypted; use https:// \
                 (plain http is accepted only for loopback hosts or with --allow-insecure-http)"
            )));
        }
        let path = strip_api_segment(uri.path());
        Ok(ApiBase {
            root: format!("{scheme}://{}{path}", authority.as_str()),
            loopback,
            https,
        })
    }

    /// The installation root without `/api`, e.g. `https://waldur.example.com`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The full URL of an endpoint given relative to `/api/`, e.g. `users/me/`.
    pub fn endpoint(&self, relative: &str) -> String {
        format!("{}/api/{}", self.root, relative.trim_start_matches('/'))
    }

    /// True when the host is a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// True when the scheme is https.
    pub fn is_https(&self) -> bool {
        self.https
    }
}

/// Remove trailing slashes, then one trailing `api` segment, then trailing slashes again.
fn strip_api_segment(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    let path = match path.rsplit_once('/') {
        Some((head, "api")) => head,
        _ => path,
    };
    path.trim_end_matches('/')
}

/// `localhost`, `127.0.0.0/8` and `::1`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// Percent-encode a query-string component (RFC 3986 unreserved characters stay as they are).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode a percent-encoded query component (`+` stays `+`; Waldur's links use `%20`).
pub fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = [bytes[i + 1], bytes[i + 2]];
            let hex = std::str::from_utf8(&hex).unwrap_or("00");
            out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters in order; keys may repeat (`field=a&field=b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// An empty query.
    pub fn new() -> Self {
        Query(Vec::new())
    }

    /// Add `key=value` (builder style).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// Add one `field=` selection per name.
    pub fn fields(mut self, names: &[&str]) -> Self {
        for n in names {
            self.0.push(("field".to_string(), (*n).to_string()));
        }
        self
    }

    /// Replace every `key` by one `key=value`.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value.into()));
    }

    /// The value of the first `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `a=1&b=2`, percent-encoded; empty when there are no parameters.
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Parse the query part of a URL (after `?`).
    pub fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode_component(k), decode_component(v)),
                    None => (decode_component(p), String::new()),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(url: &str) -> String {
        ApiBase::parse(url, false).unwrap().root().to_string()
    }

    #[test]
    fn strips_one_api_segment_and_never_characters_of_the_host() {
        // The reference's rstrip("/api") would give "https://hpc.wik".
        assert_eq!(root("https://hpc.wiki/api/"), "https://hpc.wiki");
        // Hosts ending in a, p and i keep every character.
        assert_eq!(root("https://kappa/api/"), "https://kappa");
        assert_eq!(root("https://shop/api"), "https://shop");
        assert_eq!(
            root("https://waldur.example.pi/"),
            "https://waldur.example.pi"
        );
        // Without /api, only the slashes go.
        assert_eq!(
            root("https://waldur.example.com"),
            "https://waldur.example.com"
        );
        assert_eq!(
            root("https://waldur.example.com///"),
            "https://waldur.example.com"
        );
        // A sub-path install keeps its path; only one api segment is removed.
        assert_eq!(
            root("https://example.org/waldur/api/"),
            "https://example.org/waldur"
        );
        assert_eq!(
            root("https://example.org/api/api/"),
            "https://example.org/api"
        );
        // A segment merely ending in "api" is not the api segment.
        assert_eq!(
            root("https://example.org/myapi/"),
            "https://example.org/myapi"
        );
        // Ports stay.
        assert_eq!(root("https://h:8443/api/"), "https://h:8443");
    }

    #[test]
    fn endpoints_are_under_api_with_the_given_trailing_slash() {
        let base = ApiBase::parse("https://hpc.wiki/api/", false).unwrap();
        assert_eq!(base.endpoint("users/me/"), "https://hpc.wiki/api/users/me/");
        assert_eq!(
            base.endpoint("/users/me/"),
            "https://hpc.wiki/api/users/me/"
        );
    }

    #[test]
    fn plain_http_only_for_loopback_or_when_allowed() {
        let e = ApiBase::parse("http://waldur.example.com/api/", false).unwrap_err();
        assert!(e.0.contains("--allow-insecure-http"), "{e}");
        assert!(ApiBase::parse("http://waldur.example.com/api/", true).is_ok());
        for ok in [
            "http://127.0.0.1:8000/api/",
            "http://127.3.4.5/api/",
            "http://localhost:1/api/",
            "http://[::1]:8080/api/",
        ] {
            let b = ApiBase::parse(ok, false).unwrap();
            assert!(b.is_loopback() && !b.is_https(), "{ok}");
        }
        // A host that merely starts with 127 is not loopback.
        assert!(ApiBase::parse("http://127.example.com/api/", false).is_err());
        assert!(ApiBase::parse("ftp://x/api/", true).is_err());
        assert!(ApiBase::parse("https://u:p@x/api/", true).is_err());
    }

    #[test]
    fn query_encoding_round_trips() {
        let q = Query::new()
            .with("billing_period", "2024-03-01")
            .with("name", "a b&c=d/é")
            .fields(&["uuid", "type"]);
        let text = q.encode();
        assert_eq!(
            text,
            "billing_period=2024-03-01&name=a%20b%26c%3Dd%2F%C3%A9&field=uuid&field=type"
        );
        assert_eq!(Query::parse(&text), q);
    }
}

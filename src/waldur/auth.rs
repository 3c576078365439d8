//! Credentials for Waldur: where the token comes from, and OIDC client credentials.
//!
//! Sources, first found wins (DESIGN.md §5):
//! 1. `--token VALUE` (works, but `ps` shows it: warned about);
//! 2. `--token-file PATH`;
//! 3. `$CREDENTIALS_DIRECTORY/waldur-api-token` (systemd `LoadCredential=`);
//! 4. `WALDUR_API_TOKEN`;
//! 5. the offering's `waldur_api_token` in the config (warned about when the file is readable by
//!    group or others);
//! 6. the offering's OIDC client credentials (`oidc_token_url`, `oidc_client_id`,
//!    `oidc_client_secret`): a Bearer JWT from the client-credentials grant, cached until 30 s
//!    before it expires.
//!
//! The token is kept in a [`Secret`] and only exposed when the `Authorization` header is built.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{OidcSettings, Secret};

use super::error::{ApiError, server_message};
use super::url::{ApiBase, encode_component};

/// Name of the systemd credential holding the token.
pub const CREDENTIAL_NAME: &str = "waldur-api-token";

/// Where the credentials may come from; filled by the binary from flags, environment and
/// config.
#[derive(Debug, Default)]
pub struct TokenSources<'a> {
    /// `--token VALUE`.
    pub token_arg: Option<&'a str>,
    /// `--token-file PATH`.
    pub token_file: Option<&'a Path>,
    /// `$CREDENTIALS_DIRECTORY`.
    pub credentials_directory: Option<PathBuf>,
    /// The site's token file, `/etc/waldur/waldur-api-token` (see [`site_token_file`]).
    pub site_token_file: Option<PathBuf>,
    /// `$WALDUR_API_TOKEN`.
    pub env_token: Option<String>,
    /// The offering's `waldur_api_token`.
    pub config_token: Option<&'a Secret>,
    /// The config file is readable by group or others.
    pub config_readable_by_others: bool,
    /// The config file's path, for the warning.
    pub config_file: &'a str,
    /// The offering's OIDC settings.
    pub oidc: Option<&'a OidcSettings>,
}

/// The site's token file: `waldur-api-token` in `/etc/waldur`, or in `$WALDUR_USAGE_ETC_DIR`
/// (a knob for tests and staged installs). The README tells sites to put the token there, so a
/// run by hand finds the same token as the service, which gets it as a systemd credential.
pub fn site_token_file() -> PathBuf {
    let dir = std::env::var_os("WALDUR_USAGE_ETC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/waldur"));
    dir.join(CREDENTIAL_NAME)
}

/// How requests authenticate.
#[derive(Debug)]
pub enum Credential {
    /// A static token: `Authorization: Token <key>` (or `Bearer` for a personal access token,
    /// which starts with `w_`).
    Token(Secret),
    /// OIDC client credentials, exchanged for a Bearer JWT on first use.
    Oidc(OidcClient),
}

/// The chosen credential, where it came from and what to warn about.
#[derive(Debug)]
pub struct Resolved {
    /// The credential.
    pub credential: Credential,
    /// Human description of the source, e.g. `--token-file /run/keys/t` (never the value).
    pub source: String,
    /// Warnings to log.
    pub warnings: Vec<String>,
}

/// Pick the credential from the first available source.
pub fn resolve(sources: &TokenSources<'_>) -> Result<Resolved, ApiError> {
    let mut warnings = Vec::new();
    if sources.token_arg.is_some() && sources.token_file.is_some() {
        return Err(ApiError::Credentials(
            "--token and --token-file were both given; use only --token-file".into(),
        ));
    }
    if let Some(value) = sources.token_arg {
        warnings.push(
            "the token was given on the command line, where other users can see it with `ps` \
             and shell history keeps it; use --token-file or $CREDENTIALS_DIRECTORY instead"
                .to_string(),
        );
        let token = check_token(value, "--token")?;
        return Ok(Resolved {
            credential: Credential::Token(token),
            source: "--token".into(),
            warnings,
        });
    }
    if let Some(path) = sources.token_file {
        let token = read_token_file(path, &mut warnings)?;
        return Ok(Resolved {
            credential: Credential::Token(token),
            source: format!("--token-file {}", path.display()),
            warnings,
        });
    }
    if let Some(dir) = &sources.credentials_directory {
        let path = dir.join(CREDENTIAL_NAME);
        if path.exists() {
            let token = read_token_file(&path, &mut warnings)?;
            return Ok(Resolved {
                credential: Credential::Token(token),
                source: format!("systemd credential {}", path.display()),
                warnings,
            });
        }
    }
    if let Some(path) = sources.site_token_file.as_deref().filter(|p| p.exists()) {
        let token = read_token_file(path, &mut warnings)?;
        return Ok(Resolved {
            credential: Credential::Token(token),
            source: format!("token file {}", path.display()),
            warnings,
        });
    }
    if let Some(value) = sources
        .env_token
        .as_deref()
        .filter(|v| !v.trim().is_empty())
    {
        let token = check_token(value, "WALDUR_API_TOKEN")?;
        return Ok(Resolved {
            credential: Credential::Token(token),
            source: "WALDUR_API_TOKEN".into(),
            warnings,
        });
    }
    if let Some(secret) = sources.config_token {
        if sources.config_readable_by_others {
            warnings.push(format!(
                "{} holds waldur_api_token and is readable by group or others; \
                 run `chmod 600` on it, or move the token to a credential file",
                sources.config_file
            ));
        }
        let token = check_token(secret.expose(), "waldur_api_token in the config")?;
        return Ok(Resolved {
            credential: Credential::Token(token),
            source: format!("waldur_api_token in {}", sources.config_file),
            warnings,
        });
    }
    if let Some(oidc) = sources.oidc {
        if sources.config_readable_by_others {
            warnings.push(format!(
                "{} holds oidc_client_secret and is readable by group or others; \
                 run `chmod 600` on it",
                sources.config_file
            ));
        }
        return Ok(Resolved {
            credential: Credential::Oidc(OidcClient::new(oidc.clone())),
            source: format!("OIDC client {} at {}", oidc.client_id, oidc.token_url),
            warnings,
        });
    }
    Err(ApiError::Credentials(format!(
        "no Waldur token: use --token-file PATH, the systemd credential {CREDENTIAL_NAME}, \
         {}, WALDUR_API_TOKEN, or waldur_api_token / oidc_* in {}",
        sources
            .site_token_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("/etc/waldur/{CREDENTIAL_NAME}")),
        sources.config_file
    )))
}

/// Largest token file read: a token is 40 characters, a JWT a few hundred.
pub const MAX_TOKEN_FILE: u64 = 4096;

fn check_token(value: &str, source: &str) -> Result<Secret, ApiError> {
    if value.starts_with('\u{feff}') {
        return Err(ApiError::Credentials(format!(
            "{source}: the token starts with a UTF-8 byte order mark (saved by an editor that \
             adds one?); save it as plain ASCII text"
        )));
    }
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::Credentials(format!(
            "{source}: the token is empty"
        )));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::Credentials(format!(
            "{source}: the token contains spaces or control characters (is it more than one line?)"
        )));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::Credentials(format!(
            "{source}: the token contains characters that are not printable ASCII; a Waldur \
             token is plain ASCII text"
        )));
    }
    Ok(Secret::new(value))
}

/// Read a token file, refusing what cannot be a token file: not a regular file or pipe (a
/// device such as `/dev/zero` would be read forever), more than [`MAX_TOKEN_FILE`] bytes, or
/// writable by group or others (anyone who may write it can swap the token). Readable by group
/// or others only warns: a dedicated service group is a legitimate setup.
fn read_token_file(path: &Path, warnings: &mut Vec<String>) -> Result<Secret, ApiError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let shown = path.display();
    let refuse = |why: String| ApiError::Credentials(format!("the token file {shown} {why}"));
    // The type first, without opening: opening a FIFO without a writer would block.
    let meta = std::fs::metadata(path)
        .map_err(|e| ApiError::Credentials(format!("cannot read the token file {shown}: {e}")))?;
    let kind = meta.file_type();
    if !kind.is_file() && !kind.is_fifo() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "something else"
        };
        return Err(refuse(format!(
            "is not a regular file ({what}); put the token in a file of its own"
        )));
    }
    let mode = meta.permissions().mode();
    if kind.is_file() && mode & 0o022 != 0 {
        return Err(refuse(format!(
            "can be written by group or others (mode {:03o}), so anyone could replace the \
             token; run `chmod 600` on it",
            mode & 0o777
        )));
    }
    let too_big = || {
        refuse(format!(
            "is larger than {MAX_TOKEN_FILE} bytes (4 KiB); it must hold only the token"
        ))
    };
    if kind.is_file() && meta.len() > MAX_TOKEN_FILE {
        return Err(too_big());
    }
    let file = std::fs::File::open(path)
        .map_err(|e| ApiError::Credentials(format!("cannot read the token file {shown}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ApiError::Credentials(format!("cannot read the token file {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_TOKEN_FILE {
        return Err(too_big());
    }
    let source = format!("token file {shown}");
    let text = String::from_utf8(bytes).map_err(|_| {
        ApiError::Credentials(format!(
            "{source}: the token contains characters that are not printable ASCII; a Waldur \
             token is plain ASCII text"
        ))
    })?;
    if mode & 0o044 != 0 && kind.is_file() {
        warnings.push(format!(
            "the token file {shown} is readable by group or others; run `chmod 600` on it"
        ));
    }
    check_token(&text, &source)
}

/// The `Authorization` header value for a static token.
pub fn token_header(token: &Secret) -> Secret {
    let t = token.expose();
    if t.starts_with("w_") {
        Secret::new(format!("Bearer {t}"))
    } else {
        Secret::new(format!("Token {t}"))
    }
}

/// OIDC client-credentials grant with a cached access token.
#[derive(Debug)]
pub struct OidcClient {
    settings: OidcSettings,
    cached: Mutex<Option<(Secret, Instant)>>,
}

/// Refresh this long before the token expires.
const OIDC_MARGIN: Duration = Duration::from_secs(30);
/// Lifetime assumed when the answer has no `expires_in`.
const OIDC_DEFAULT_TTL: Duration = Duration::from_secs(300);

impl OidcClient {
    /// A client for these settings; no request is made yet.
    pub fn new(settings: OidcSettings) -> Self {
        OidcClient {
            settings,
            cached: Mutex::new(None),
        }
    }

    /// The `Authorization` header value, fetching a new access token when none is cached or
    /// the cached one is about to expire.
    pub fn header(
        &self,
        agent: &ureq::Agent,
        allow_insecure_http: bool,
    ) -> Result<Secret, ApiError> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, valid_until)) = cached.as_ref() {
            if Instant::now() < *valid_until {
                return Ok(Secret::new(format!("Bearer {}", token.expose())));
            }
        }
        let (token, ttl) = self.fetch(agent, allow_insecure_http)?;
        let valid_for = ttl.saturating_sub(OIDC_MARGIN);
        *cached = Some((token.clone(), Instant::now() + valid_for));
        Ok(Secret::new(format!("Bearer {}", token.expose())))
    }

    /// The client secret and the cached access token: what a message must never show.
    pub fn secrets(&self) -> Vec<Secret> {
        let mut out = vec![self.settings.client_secret.clone()];
        let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, _)) = cached.as_ref() {
            out.push(token.clone());
        }
        out
    }

    fn fetch(
        &self,
        agent: &ureq::Agent,
        allow_insecure_http: bool,
    ) -> Result<(Secret, Duration), ApiError> {
        let s = &self.settings;
        let fail =
            |m: String| ApiError::Credentials(format!("OIDC token from {}: {m}", s.token_url));
        // Same transport rule as for Waldur itself: the client secret must not travel in clear.
        ApiBase::parse(&s.token_url, allow_insecure_http).map_err(|e| fail(e.0))?;
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            encode_component(&s.client_id),
            encode_component(s.client_secret.expose())
        );
        // The identity provider being down or unreachable is an outage (retried, exit 75),
        // not a bad secret: only its refusals are credential errors.
        let unreachable = |e: ureq::Error| ApiError::Transport {
            method: "POST".into(),
            path: format!("OIDC token endpoint {}", s.token_url),
            detail: e.to_string(),
            attempts: 1,
        };
        let mut response = agent
            .post(&s.token_url)
            .content_type("application/x-www-form-urlencoded")
            .send(form.as_bytes())
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(unreachable)?;
        if status >= 500 || status == 429 {
            return Err(ApiError::Status {
                method: "POST".into(),
                path: format!("OIDC token endpoint {}", s.token_url),
                status,
                message: server_message(&body, &[s.client_secret.expose()]),
                attempts: 1,
            });
        }
        if !(200..300).contains(&status) {
            return Err(fail(format!(
                "HTTP {status}: {}",
                server_message(&body, &[s.client_secret.expose()])
            )));
        }
        let value: serde_json::Value =
            serde_json::from_str(&body).map_err(|_| fail("the answer is not JSON".into()))?;
        let token = value
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("the answer has no access_token".into()))?;
        let ttl = value
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .map(Duration::from_secs)
            .unwrap_or(OIDC_DEFAULT_TTL);
        Ok((Secret::new(token), ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("waldur-auth-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(CREDENTIAL_NAME);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn token_of(r: &Resolved) -> &str {
        match &r.credential {
            Credential::Token(t) => t.expose(),
            Credential::Oidc(_) => panic!("expected a token"),
        }
    }

    #[test]
    fn first_source_wins_in_the_documented_order() {
        let file = temp_file("order", "from-file\n", 0o600);
        let config_token = Secret::new("from-config");
        let mut s = TokenSources {
            token_file: Some(&file),
            credentials_directory: Some(file.parent().unwrap().to_path_buf()),
            env_token: Some("from-env".into()),
            config_token: Some(&config_token),
            config_file: "cfg.yaml",
            ..Default::default()
        };
        let r = resolve(&s).unwrap();
        assert_eq!(token_of(&r), "from-file");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        s.token_file = None;
        let r = resolve(&s).unwrap();
        assert_eq!(token_of(&r), "from-file");
        assert!(r.source.starts_with("systemd credential"), "{}", r.source);
        s.credentials_directory = None;
        let site = temp_file("site", "from-site\n", 0o600);
        s.site_token_file = Some(site.clone());
        let r = resolve(&s).unwrap();
        assert_eq!(token_of(&r), "from-site");
        assert_eq!(r.source, format!("token file {}", site.display()));
        // A site file that does not exist is passed over.
        s.site_token_file = Some(site.with_extension("absent"));
        assert_eq!(token_of(&resolve(&s).unwrap()), "from-env");
        s.site_token_file = None;
        assert_eq!(token_of(&resolve(&s).unwrap()), "from-env");
        s.env_token = Some("  ".into());
        assert_eq!(token_of(&resolve(&s).unwrap()), "from-config");
        s.config_token = None;
        let e = resolve(&s).unwrap_err();
        assert!(e.to_string().contains("no Waldur token"), "{e}");
    }

    #[test]
    fn risky_sources_warn_without_showing_the_token() {
        let s = TokenSources {
            token_arg: Some("sekrit-argv"),
            config_file: "cfg.yaml",
            ..Default::default()
        };
        let r = resolve(&s).unwrap();
        assert!(r.warnings[0].contains("`ps`"));
        let file = temp_file("open", "sekrit-file", 0o644);
        let s = TokenSources {
            token_file: Some(&file),
            config_file: "cfg.yaml",
            ..Default::default()
        };
        let r = resolve(&s).unwrap();
        assert!(r.warnings[0].contains("chmod 600"));
        let secret = Secret::new("sekrit-config");
        let s = TokenSources {
            config_token: Some(&secret),
            config_readable_by_others: true,
            config_file: "cfg.yaml",
            ..Default::default()
        };
        let r = resolve(&s).unwrap();
        assert!(r.warnings[0].starts_with("cfg.yaml holds waldur_api_token"));
        for w in &r.warnings {
            assert!(!w.contains("sekrit"), "{w}");
        }
        assert!(!format!("{r:?}").contains("sekrit"));
    }

    #[test]
    fn malformed_tokens_are_refused_without_echoing_them() {
        let file = temp_file("twolines", "abc def\n", 0o600);
        let s = TokenSources {
            token_file: Some(&file),
            config_file: "cfg.yaml",
            ..Default::default()
        };
        let e = resolve(&s).unwrap_err().to_string();
        assert!(e.contains("contains spaces"), "{e}");
        assert!(!e.contains("abc"), "{e}");
    }

    #[test]
    fn personal_access_tokens_use_bearer() {
        assert_eq!(
            token_header(&Secret::new("w_123_abc")).expose(),
            "Bearer w_123_abc"
        );
        assert_eq!(token_header(&Secret::new("0a1b")).expose(), "Token 0a1b");
    }
}

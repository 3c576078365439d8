//! Secrets and transport: tokens are never printed (every run in these tests is grepped, see
//! `waldur_push_util::Run`), plain http to a non-loopback host is refused, risky token sources
//! warn, and each token source and OIDC client credentials authenticate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::support::fake_waldur::{Fault, FaultKind, PROVIDER_TOKEN, STAFF_TOKEN, Setup};
use crate::support::scratch::write_mode;
use crate::support::text::{assert_contains, assert_lacks};
use crate::waldur_push_util::*;

fn small_input() -> String {
    period_of("2024-03", &[("hpc_alloc1", None, &[("cpu", "1.00")])])
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_any_request() {
    let env = Env::new(Setup::small());
    let remote = env.config_with_url("http://waldur.example.com/api/");
    let out = env
        .command_with(&remote)
        .args(["--token-file", env.provider_token.to_str().unwrap()])
        .write_stdin(small_input())
        .output()
        .unwrap();
    let run = Run::from(out);
    run.assert_code(78);
    run.assert_stderr_contains(
        "waldur_api_url: \"http://waldur.example.com/api/\": plain http would send the API \
             token unencrypted; use https://",
    );
    assert!(run.stderr.contains("--allow-insecure-http"));
}

#[test]
fn a_token_on_the_command_line_works_but_warns() {
    let env = Env::new(Setup::small());
    let run = env.run(&["--token", PROVIDER_TOKEN], &small_input());
    run.assert_code(0);
    run.assert_stderr_contains(
        "the token was given on the command line, where other users can see it with `ps`",
    );
    let auth = env.fake.requests()[0].authorization.clone();
    assert_eq!(auth, Some(format!("Token {PROVIDER_TOKEN}")));
}

#[test]
fn a_wrong_token_exits_77_without_showing_it_even_with_debug_logs() {
    let env = Env::new(Setup::small());
    let wrong = env.dir.join("wrong");
    let secret = "0123456789wrongtoken0123456789abcdefabcd";
    write_mode(&wrong, secret, 0o600);
    let run = env.run(
        &[
            "--token-file",
            wrong.to_str().unwrap(),
            "--log-level",
            "debug",
        ],
        &small_input(),
    );
    run.assert_code(77);
    run.assert_stderr_contains(
        "GET /api/users/me/: HTTP 401 (the token is missing, wrong or expired): Invalid token.",
    );
    assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
}

#[test]
fn the_systemd_credential_and_the_environment_are_token_sources() {
    let env = Env::new(Setup::small());
    let creds = env.dir.join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    write_mode(&creds.join("waldur-api-token"), STAFF_TOKEN, 0o600);
    let out = env
        .command()
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env("WALDUR_API_TOKEN", PROVIDER_TOKEN)
        .args(["--staff"])
        .write_stdin(small_input())
        .output()
        .unwrap();
    let run = Run::from(out);
    run.assert_code(0);
    // The credential comes first: the staff token was used.
    assert_eq!(
        env.fake.requests()[0].authorization,
        Some(format!("Token {STAFF_TOKEN}"))
    );
    env.fake.clear_requests();
    let out = env
        .command()
        .env("WALDUR_API_TOKEN", PROVIDER_TOKEN)
        .write_stdin(small_input())
        .output()
        .unwrap();
    assert_eq!(Run::from(out).code, 0);
    assert_eq!(
        env.fake.requests()[0].authorization,
        Some(format!("Token {PROVIDER_TOKEN}"))
    );
}

#[test]
fn a_token_in_a_world_readable_config_warns_and_verify_ssl_false_warns_loudly() {
    let env = Env::new(Setup::small());
    let config = env.dir.join("open.yaml");
    let yaml = config_yaml(&env.fake.base_url(), &env.setup.offering.uuid).replace(
        "    backend_settings:",
        &format!("    waldur_api_token: \"{PROVIDER_TOKEN}\"\n    verify_ssl: false\n    backend_settings:"),
    );
    write_mode(&config, &yaml, 0o644);
    let out = env
        .command_with(&config)
        .write_stdin(small_input())
        .output()
        .unwrap();
    let run = Run::from(out);
    run.assert_code(0);
    run.assert_stderr_contains(&format!(
        "{} holds waldur_api_token and is readable by group or others; run `chmod 600` on it",
        config.display()
    ));
    run.assert_stderr_contains("verify_ssl is false");
}

/// A one-endpoint OIDC token server: answers every POST with an access token and keeps the
/// request bodies.
fn oidc_server(access_token: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let answer = format!("{{\"access_token\":\"{access_token}\",\"expires_in\":3600}}");
    oidc_server_answering("200 OK", answer)
}

/// A one-endpoint OIDC token server giving every POST this status and JSON body.
fn oidc_server_answering(
    status: &'static str,
    answer: String,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(5) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn oidc_client_credentials_give_a_bearer_token_fetched_once() {
    let env = Env::new(Setup::small());
    // The fake accepts its tokens as Bearer too, standing in for a JWT.
    let (token_url, seen) = oidc_server(PROVIDER_TOKEN);
    let config = oidc_config(&env, &token_url);
    let out = env
        .command_with(&config)
        .write_stdin(small_input())
        .output()
        .unwrap();
    let run = Run::from(out);
    run.assert_code(0);
    assert!(!run.stderr.contains("s3cr3t") && !run.stdout.contains("s3cr3t"));
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["grant_type=client_credentials&client_id=agent&client_secret=s3cr3t-client-secret"]
    );
    let reqs = env.fake.requests();
    assert!(reqs.len() > 3);
    assert!(
        reqs.iter()
            .all(|r| r.authorization == Some(format!("Bearer {PROVIDER_TOKEN}")))
    );
}

#[test]
fn an_identity_provider_that_is_down_is_an_outage_and_a_refusal_is_a_token_error() {
    // 503 from the token endpoint: retried like any outage, exit 75 (the next cycle tries
    // again), never 77 "bad token".
    let env = Env::new(Setup::small());
    let (token_url, seen) =
        oidc_server_answering("503 Service Unavailable", "{\"error\":\"down\"}".into());
    let config = oidc_config(&env, &token_url);
    let run = Run::from(
        env.command_with(&config)
            .args(["--retries", "1", "--retry-max-delay", "0.05"])
            .write_stdin(small_input())
            .output()
            .unwrap(),
    );
    run.assert_code(75);
    assert_eq!(seen.lock().unwrap().len(), 2, "one attempt and one retry");
    run.assert_stderr_contains(&format!("POST OIDC token endpoint {token_url}: HTTP 503"));
    assert!(env.fake.requests().is_empty());
    // 401 from the token endpoint: the client secret is wrong. Not retried, exit 77.
    let env = Env::new(Setup::small());
    let (token_url, seen) =
        oidc_server_answering("401 Unauthorized", "{\"error\":\"invalid_client\"}".into());
    let config = oidc_config(&env, &token_url);
    let run = Run::from(
        env.command_with(&config)
            .args(["--retries", "1", "--retry-max-delay", "0.05"])
            .write_stdin(small_input())
            .output()
            .unwrap(),
    );
    run.assert_code(77);
    assert_eq!(seen.lock().unwrap().len(), 1);
    run.assert_stderr_contains("HTTP 401");
    assert!(!run.stderr.contains("s3cr3t"));
}

/// A config for the fake whose credentials are OIDC client credentials at `token_url`.
fn oidc_config(env: &Env, token_url: &str) -> std::path::PathBuf {
    let config = env.dir.join("oidc.yaml");
    let yaml = config_yaml(&env.fake.base_url(), &env.setup.offering.uuid).replace(
        "    backend_settings:",
        &format!(
            "    oidc_token_url: \"{token_url}\"\n    oidc_client_id: \"agent\"\n    \
             oidc_client_secret: \"s3cr3t-client-secret\"\n    backend_settings:"
        ),
    );
    write_mode(&config, &yaml, 0o600);
    config
}

/// The token in any form a debug page could show it: the exact value, and the header line.
fn assert_token_absent(what: &str, text: &str) {
    for secret in [PROVIDER_TOKEN, STAFF_TOKEN] {
        assert!(!text.contains(secret), "{what} shows the token:\n{text}");
        // A prefix long enough to identify it (a truncated message must not leak one either).
        assert!(
            !text.contains(&secret[..16]),
            "{what} shows part of the token:\n{text}"
        );
    }
}

/// The small setup, whose answers to `method` requests on paths containing `path` are an error
/// `status` quoting the request headers, `times` times.
fn echoing_headers(method: &str, path: &str, status: u16, times: u32) -> Env {
    let env = Env::new(Setup::small());
    env.fake
        .inject(Fault::new(method, path, FaultKind::EchoHeaders(status)).times(times));
    env
}

#[test]
fn error_bodies_that_echo_the_request_headers_never_show_the_token() {
    // A 400 whose DRF detail quotes the headers, and a 500 debug page listing them: in the
    // result records' reasons (stdout), the warnings and errors (stderr).
    for status in [400, 500] {
        let env = echoing_headers("POST", "set_usage/", status, 100);
        let run = env.run(&["--log-level", "debug"], &small_input());
        run.assert_code(if status == 400 { 76 } else { 75 });
        assert!(
            run.stderr.contains("authorization: Token [redacted]"),
            "the message stays useful, only the key is gone:\n{}",
            run.stderr
        );
        let reasons: Vec<String> = run.outcomes().into_iter().filter_map(|o| o.4).collect();
        assert!(
            reasons.iter().any(|r| r.contains("Token [redacted]")),
            "{reasons:?}"
        );
        assert_token_absent("stdout", &run.stdout);
        assert_token_absent("stderr", &run.stderr);
    }
}

#[test]
fn check_lines_never_show_a_token_echoed_by_the_server() {
    for status in [400, 500] {
        let env = echoing_headers("GET", "", status, 1000);
        let run = env.run(&["--check", "--retries", "0"], "");
        assert_ne!(run.code, 0, "{}", run.stdout);
        assert_contains(&run.stdout, "FAIL");
        assert!(
            format!("{}{}", run.stdout, run.stderr).contains("[redacted]"),
            "{}\n{}",
            run.stdout,
            run.stderr
        );
        assert_token_absent("--check stdout", &run.stdout);
        assert_token_absent("--check stderr", &run.stderr);
    }
}

/// Run with `--token-file PATH` and return the finished run and how long it took.
fn run_token_file(env: &Env, path: &str) -> (Run, std::time::Duration) {
    let started = std::time::Instant::now();
    let run = env.run(&["--token-file", path], &small_input());
    (run, started.elapsed())
}

#[test]
fn a_token_file_that_is_a_device_is_refused_at_once() {
    let env = Env::new(Setup::small());
    let (run, took) = run_token_file(&env, "/dev/zero");
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    assert!(run.code == 77 || run.code == 78, "{}", run.stderr);
    run.assert_stderr_contains("the token file /dev/zero is not a regular file");
    assert!(env.fake.requests().is_empty());
}

#[test]
fn a_token_file_larger_than_4_kib_is_refused_naming_the_limit() {
    let env = Env::new(Setup::small());
    let big = env.dir.join("big-token");
    write_mode(
        &big,
        &format!("{PROVIDER_TOKEN}\n{}", "#".repeat(8000)),
        0o600,
    );
    let (run, _) = run_token_file(&env, big.to_str().unwrap());
    assert!(run.code == 77 || run.code == 78, "{}", run.stderr);
    run.assert_stderr_contains(&format!(
        "the token file {} is larger than 4096 bytes (4 KiB)",
        big.display()
    ));
    assert!(env.fake.requests().is_empty());
}

#[test]
fn a_token_that_is_not_printable_ascii_is_refused_without_echoing_it() {
    let env = Env::new(Setup::small());
    for (name, content, says) in [
        (
            "bom",
            format!("\u{feff}{PROVIDER_TOKEN}\n"),
            "starts with a UTF-8 byte order mark",
        ),
        (
            "umlaut",
            format!("{}ä{}\n", &PROVIDER_TOKEN[..20], &PROVIDER_TOKEN[20..]),
            "not printable ASCII",
        ),
        ("latin1", "900d\u{00e9}".to_string(), "not printable ASCII"),
    ] {
        let path = env.dir.join(format!("token-{name}"));
        write_mode(&path, &content, 0o600);
        let (run, _) = run_token_file(&env, path.to_str().unwrap());
        assert!(run.code == 77 || run.code == 78, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(&path.display().to_string()),
            "{name}: {}",
            run.stderr
        );
        assert_lacks(&run.stderr, &PROVIDER_TOKEN[..20]);
        assert_lacks(&run.stderr, "900d");
    }
    assert!(env.fake.requests().is_empty());
    // The same rule for a token from the environment.
    let out = env
        .command()
        .env("WALDUR_API_TOKEN", format!("\u{feff}{PROVIDER_TOKEN}"))
        .write_stdin(small_input())
        .output()
        .unwrap();
    let run = Run::from(out);
    run.assert_code(77);
    run.assert_stderr_contains("WALDUR_API_TOKEN: the token starts with a UTF-8 byte order mark");
}

#[test]
fn a_token_file_others_can_write_is_refused_naming_chmod_600() {
    let env = Env::new(Setup::small());
    for mode in [0o620, 0o602, 0o666] {
        let path = env.dir.join(format!("token-{mode:o}"));
        write_mode(&path, PROVIDER_TOKEN, mode);
        let (run, _) = run_token_file(&env, path.to_str().unwrap());
        assert!(run.code == 77 || run.code == 78, "{mode:o}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "the token file {} can be written by group or others",
                path.display()
            )) && run.stderr.contains("chmod 600"),
            "{mode:o}: {}",
            run.stderr
        );
    }
    assert!(env.fake.requests().is_empty());
    // Readable by a group (a dedicated service group) still works, with a warning.
    let path = env.dir.join("token-640");
    write_mode(&path, PROVIDER_TOKEN, 0o640);
    let (run, _) = run_token_file(&env, path.to_str().unwrap());
    run.assert_code(0);
    run.assert_stderr_contains("readable by group or others");
}

/// A "proxy" that accepts connections and records every byte it receives, answering nothing.
fn recording_listener() -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    (url, seen)
}

#[test]
fn a_loopback_waldur_is_never_reached_through_a_proxy() {
    let env = Env::new(Setup::small());
    let (proxy, seen) = recording_listener();
    let out = env
        .command()
        .args(["--token-file", env.provider_token.to_str().unwrap()])
        .args(["--timeout", "2", "--retries", "0"])
        .env("HTTP_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .env("ALL_PROXY", &proxy)
        .env("HTTPS_PROXY", &proxy)
        .write_stdin(small_input())
        .output()
        .unwrap();
    let run = Run::from(out);
    run.assert_code(0);
    assert!(!env.fake.requests().is_empty(), "connected directly");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let received = seen.lock().unwrap().clone();
    assert!(
        received.is_empty(),
        "the proxy received: {}",
        String::from_utf8_lossy(&received)
    );
}

#[test]
fn plain_http_through_a_proxy_to_a_remote_host_is_refused() {
    let env = Env::new(Setup::small());
    let (proxy, seen) = recording_listener();
    let remote = env.config_with_url("http://waldur.example.com/api/");
    let out = env
        .command_with(&remote)
        .args(["--token-file", env.provider_token.to_str().unwrap()])
        .args(["--allow-insecure-http", "--timeout", "2", "--retries", "0"])
        .env("HTTP_PROXY", &proxy)
        .write_stdin(small_input())
        .output()
        .unwrap();
    let run = Run::from(out);
    run.assert_code(78);
    run.assert_stderr_contains("plain http through the proxy");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn an_untrusted_certificate_is_not_retried_and_exits_78_naming_the_trust_store() {
    // A TLS server with a self-signed certificate (openssl, installed by .ci/ops-checks): the
    // certificate will not become trusted by waiting, so one attempt, exit 78.
    let env = Env::new(Setup::small());
    let dir = env.dir.join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-days", "1", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl is installed (apt-get install openssl)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &port.to_string(),
            "-cert",
        ])
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "s_server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let config = env.config_with_url(&format!("https://127.0.0.1:{port}/api/"));
    let run = env.run_with(&config, &["--retries", "3"], &small_input());
    let _ = server.kill();
    let _ = server.wait();
    run.assert_code(78);
    assert_lacks(&run.stderr, "retrying");
    run.assert_stderr_contains("GET /api/users/me/: TLS failed: ");
    run.assert_stderr_contains("invalid peer certificate");
    run.assert_stderr_contains("not trusted by the system trust store");
}

//! A small HTTP/1.1 server on `std::net::TcpListener`: one thread per connection,
//! keep-alive, `Content-Length` and chunked request bodies, `Expect: 100-continue`.
//!
//! It knows nothing about Waldur: it hands each parsed [`Request`] to a handler and writes
//! back the [`Outcome`] (a response, or closing the connection without an answer).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Largest request head or body accepted (a guard against runaway clients).
const MAX_BODY: usize = 64 << 20;
const MAX_HEAD_LINE: usize = 64 << 10;

/// One parsed request.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The raw request target: path and query string.
    pub target: String,
    /// The path part of the target (not percent-decoded).
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body bytes (chunked bodies are de-chunked).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response to write.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers (Content-Length, Date and Connection are added by the server).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Send the headers only (HEAD), keeping the Content-Length of the body.
    pub head_only: bool,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("JSON values serialise"),
            head_only: false,
        }
    }

    /// A response with no body at all (the 201 of the usage POSTs).
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: vec![],
            body: vec![],
            head_only: false,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What to do with a request.
pub enum Outcome {
    /// Write this response.
    Respond(Response),
    /// Close the connection without answering.
    Reset,
}

/// The request handler: the request and the server's `Date` header value.
pub type Handler = dyn Fn(&Request) -> (Outcome, String) + Send + Sync;

/// A running server; [`Server::stop`] (or drop) stops it.
pub struct Server {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
    refusal: Arc<Refusal>,
}

/// "Refuse connections after N answers": once `answered` reaches `after`, the listening
/// socket is closed (new connections are refused by the kernel) and open ones are cut.
struct Refusal {
    after: AtomicU64,
    answered: AtomicU64,
    closed: AtomicBool,
}

impl Server {
    /// Binds `127.0.0.1:port` (0 picks a free port) and starts serving.
    pub fn start(port: u16, handler: Arc<Handler>) -> io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let refusal = Arc::new(Refusal {
            after: AtomicU64::new(u64::MAX),
            answered: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let acceptor = {
            let stopping = stopping.clone();
            let connections = connections.clone();
            let refusal = refusal.clone();
            std::thread::Builder::new()
                .name("fake-waldur-accept".into())
                .spawn(move || {
                    accept_loop(listener, addr, stopping, connections, refusal, handler)
                })?
        };
        Ok(Server {
            addr,
            stopping,
            connections,
            acceptor: Some(acceptor),
            refusal,
        })
    }

    /// After `n` more answered requests, stop listening: every later connection is refused,
    /// as by a server that went down. Connections already open are closed too.
    pub fn refuse_connections_after(&self, n: u64) {
        let answered = self.refusal.answered.load(Ordering::SeqCst);
        self.refusal
            .after
            .store(answered.saturating_add(n), Ordering::SeqCst);
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes open connections and waits for the acceptor thread.
    pub fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept().
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let open: Vec<TcpStream> = lock(&self.connections).drain().map(|(_, s)| s).collect();
        for stream in open {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
    refusal: Arc<Refusal>,
    handler: Arc<Handler>,
) {
    let ids = AtomicU64::new(0);
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) || refusal.closed.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            lock(&connections).insert(id, clone);
        }
        let handler = handler.clone();
        let connections = connections.clone();
        let stopping = stopping.clone();
        let refusal = refusal.clone();
        let spawned = std::thread::Builder::new()
            .name("fake-waldur-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, handler.as_ref(), &stopping, &refusal);
                lock(&connections).remove(&id);
                if refusal.closed.load(Ordering::SeqCst) {
                    // Cut every other open connection and wake accept() so that it drops
                    // the listener.
                    for (_, open) in lock(&connections).drain() {
                        let _ = open.shutdown(Shutdown::Both);
                    }
                    let _ = TcpStream::connect(addr);
                }
            });
        if spawned.is_err() {
            // Out of threads: the stream was moved into the closure and is dropped (closed).
            continue;
        }
    }
}

fn serve_connection(
    stream: TcpStream,
    handler: &Handler,
    stopping: &AtomicBool,
    refusal: &Refusal,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut reader, &mut writer)? else {
            return Ok(());
        };
        if stopping.load(Ordering::SeqCst) || refusal.closed.load(Ordering::SeqCst) {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
        let close = wants_close(&request);
        let (outcome, date) = handler(&request);
        match outcome {
            Outcome::Reset => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Outcome::Respond(response) => {
                write_response(&mut writer, &response, &date, close)?;
                let answered = refusal.answered.fetch_add(1, Ordering::SeqCst) + 1;
                if answered >= refusal.after.load(Ordering::SeqCst) {
                    refusal.closed.store(true, Ordering::SeqCst);
                    // Write only: the answer already sent must still arrive.
                    let _ = writer.shutdown(Shutdown::Write);
                    return Ok(());
                }
                if close {
                    let _ = writer.shutdown(Shutdown::Write);
                    return Ok(());
                }
            }
        }
    }
}

fn wants_close(request: &Request) -> bool {
    match request.header("connection").map(str::to_ascii_lowercase) {
        Some(v) if v.contains("close") => true,
        Some(v) if v.contains("keep-alive") => false,
        _ => false,
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_HEAD_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "request head is not UTF-8"))
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> io::Result<Option<Request>> {
    // Skip blank lines between pipelined requests.
    let request_line = loop {
        match read_line(reader)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad("malformed request line"));
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| bad("eof in headers"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("malformed header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v): &(String, String)| v.clone())
    };
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        if len > MAX_BODY {
            return Err(bad("body too large"));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };
    let (path, query_string) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q),
        None => (target.to_string(), ""),
    };
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        path,
        query: parse_query(query_string),
        headers,
        body,
    }))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| bad("eof in chunk size"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            while let Some(line) = read_line(reader)? {
                if line.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// Decodes an `application/x-www-form-urlencoded` query string.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query component as Python's `urllib.parse.quote_plus` does (what DRF uses when
/// it rebuilds pagination links).
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn write_response(w: &mut TcpStream, r: &Response, date: &str, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Date: {date}\r\n"));
    head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    head.push_str(if close {
        "Connection: close\r\n"
    } else {
        "Connection: keep-alive\r\n"
    });
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !r.head_only {
        out.extend_from_slice(&r.body);
    }
    w.write_all(&out)?;
    w.flush()
}

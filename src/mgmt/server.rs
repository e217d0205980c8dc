//! The management thread: a small HTTP/1.1 server that reads a request, hands it to the
//! [`Api`] router, writes the answer and closes the connection.
//!
//! Written on `std::net` rather than `tiny_http`: tiny_http 0.12 drains an unread body when
//! the request is dropped, with a buffer the size of the declared Content-Length
//! (tiny-http/tiny-http#290), so one unauthenticated request could make the daemon read
//! gigabytes or abort on allocation. Here the head is bounded, the token and the declared
//! length are checked before any body byte is read, and every read has a timeout.

use super::api::{Api, Report, Request, Response};
use super::store::Store;
use crate::config::ManagementConfig;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest request line plus headers.
const MAX_HEAD: usize = 16 * 1024;
/// Most headers in a request.
const MAX_HEADERS: usize = 64;
/// Connections served at once; more get 503 (a stuck client must not starve the page).
const MAX_CONNECTIONS: usize = 16;
/// A client that sends nothing for this long is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A running management server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `bind` and serves `api` on a thread named `secsip-mgmt` until [`Server::stop`].
    pub fn start(bind: SocketAddr, api: Arc<Api>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new().name("secsip-mgmt".into()).spawn(move || accept_loop(listener, api, &stop))?
        };
        Ok(Server { addr, stop, thread: Some(thread) })
    }

    /// The address it listens on (the port, when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the accept thread (connections in flight finish on
    /// their own threads, bounded by the I/O timeout).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the API as `[management]` says: refuses a non-loopback bind without a token (the
/// `--check` rule, enforced here too) and reads the token file.
pub fn start_management(cfg: &ManagementConfig, store: Arc<Mutex<Store>>, report: Report) -> Result<Server, String> {
    let addr = cfg.bind_addr()?;
    let token = cfg.token()?;
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(format!("management.bind = {:?} is not a loopback address and no token_file is set: refusing to serve", cfg.bind));
    }
    let api = Arc::new(Api::new(store, report, token, cfg.max_body_bytes));
    Server::start(addr, api).map_err(|e| format!("management.bind = {:?}: {e}", cfg.bind))
}

fn accept_loop(listener: TcpListener, api: Arc<Api>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, peer)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                    let r = Api::error(503, "unavailable", "too many management connections at once");
                    let _ = write_response(&s, &r);
                    eprintln!("mgmt: {peer} - - -> 503 0");
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let api = api.clone();
                let active2 = active.clone();
                let spawned = std::thread::Builder::new().name("secsip-mgmt-conn".into()).spawn(move || {
                    serve(s, peer, &api);
                    active2.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

struct Head {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(format!("bad request line {line:?}"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(format!("unsupported version {version:?}"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || !target.starts_with('/') {
        return Err(format!("bad request line {line:?}"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let (n, v) = l.split_once(':').ok_or_else(|| format!("bad header line {l:?}"))?;
        if n.is_empty() || n.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(format!("bad header name {n:?}"));
        }
        headers.push((n.to_string(), v.trim().to_string()));
        if headers.len() > MAX_HEADERS {
            return Err(format!("more than {MAX_HEADERS} headers"));
        }
    }
    Ok(Head { method: method.into(), path: path.into(), query: query.into(), headers })
}

/// Reads up to the end of the head; returns it and the bytes read beyond it (body start).
fn read_head(s: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            buf.truncate(i);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("request head over {MAX_HEAD} bytes"));
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("connection closed before the end of the head".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading the head: {e}")),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_response(mut s: &TcpStream, r: &Response) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (n, v) in &r.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n", r.body.len()));
    s.write_all(head.as_bytes())?;
    s.write_all(&r.body)?;
    s.flush()
}

/// After answering without reading the body: stop writing and let a little of what the client
/// is still sending arrive, so its kernel gets our answer before a reset. Bounded in bytes
/// and time, and discarded: the body itself is never taken.
fn linger(s: &mut TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn serve(mut s: TcpStream, peer: SocketAddr, api: &Api) {
    let t0 = Instant::now();
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let (method, path, resp, unread) = match exchange(&mut s, api) {
        Ok(x) => x,
        Err((m, p, r)) => (m, p, r, true),
    };
    let _ = write_response(&s, &resp);
    if unread {
        linger(&mut s);
    }
    eprintln!("mgmt: {peer} {method} {path} -> {} {}", resp.status, t0.elapsed().as_millis());
}

type Exchange = (String, String, Response, bool);
type Refusal = (String, String, Response);

/// Reads one request and answers it. `Err` is an answer given before the body was read.
fn exchange(s: &mut TcpStream, api: &Api) -> Result<Exchange, Refusal> {
    let (head, mut body) = read_head(s).map_err(|e| ("-".to_string(), "-".to_string(), Api::bad_request_response(&e)))?;
    let h = parse_head(&head).map_err(|e| ("-".to_string(), "-".to_string(), Api::bad_request_response(&e)))?;
    let refuse = |r: Response| (h.method.clone(), h.path.clone(), r);
    let hdr = |n: &str| h.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    if hdr("Transfer-Encoding").is_some() {
        return Err(refuse(Api::bad_request_response("Transfer-Encoding is not accepted: send the body with a Content-Length")));
    }
    let lengths: Vec<&str> = h.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("Content-Length")).map(|(_, v)| v.as_str()).collect();
    let len: usize = match lengths.as_slice() {
        [] => 0,
        [v] => v.parse().map_err(|_| refuse(Api::bad_request_response("bad Content-Length")))?,
        _ => return Err(refuse(Api::bad_request_response("more than one Content-Length"))),
    };
    // Who and how much, before a single body byte is read.
    let probe = Request { method: &h.method, path: &h.path, query: &h.query, headers: &h.headers, body: &[] };
    if api.needs_token(&h.method, &h.path) && !api.authorized(&probe) {
        return Err(refuse(Api::unauthorized()));
    }
    if len > api.max_body() {
        return Err(refuse(Api::too_large(api.max_body())));
    }
    if body.len() < len && hdr("Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    body.truncate(len);
    if body.len() < len {
        let mut more = vec![0u8; len - body.len()];
        s.read_exact(&mut more).map_err(|e| refuse(Api::bad_request_response(&format!("reading the body: {e}"))))?;
        body.extend_from_slice(&more);
    }
    let resp = api.handle(&Request { method: &h.method, path: &h.path, query: &h.query, headers: &h.headers, body: &body });
    Ok((h.method.clone(), h.path.clone(), resp, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_strictly() {
        let h = parse_head(b"GET /api/lists/x/entries?value=1 HTTP/1.1\r\nHost: a\r\nX-A:  b ").unwrap();
        assert_eq!((h.method.as_str(), h.path.as_str(), h.query.as_str()), ("GET", "/api/lists/x/entries", "value=1"));
        assert_eq!(h.headers, vec![("Host".into(), "a".into()), ("X-A".into(), "b".into())]);
        for bad in [&b"GET / HTTP/2\r\n"[..], b"GET  / HTTP/1.1", b"get / HTTP/1.1", b"GET x HTTP/1.1", b"GET / HTTP/1.1\r\nNoColon", b"GET / HTTP/1.1\r\nA B: c", b"\xff"] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}

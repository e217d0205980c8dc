//! The API router: a request (method, path, query, headers, body) in, a response (status,
//! headers, body) out, over the [`Store`] and a report closure. No sockets, so every route and
//! every error is tested here; `server.rs` only moves bytes.
//!
//! Error shapes and codes are those of API.md: `{"error": {"code", "message"}}`, plus
//! `"errors"` (file, line, col, id, key, message) for rules that do not compile.

use super::stats::StatsView;
use super::store::{Ds, ListedEntry, Store, StoreError, Validation, MAX_CONFIRM_S};
use super::datastore::{self, Files};
use crate::rules::compile::CompileError;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request, as the server read it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `GET`, `POST`...
    pub method: &'a str,
    /// The path, still percent-encoded, without the query.
    pub path: &'a str,
    /// The query string (after `?`), still encoded.
    pub query: &'a str,
    /// Header names and values.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// One response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers (Content-Type always).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (tests).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Builds the daemon's report (`secsip stats --json`).
pub type Report = Box<dyn Fn() -> Value + Send + Sync>;

/// The router's state.
pub struct Api {
    store: Arc<Mutex<Store>>,
    stats: Mutex<StatsView>,
    report: Report,
    token: Option<String>,
    max_body: usize,
    started: Instant,
}

/// The web manager, embedded.
const INDEX_HTML: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const STYLE_CSS: &str = include_str!("web/style.css");

struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
    errors: Option<Vec<CompileError>>,
}

type Res = Result<Response, ApiError>;

fn err(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { status, code, message: message.into(), errors: None }
}
fn bad_json(m: impl Into<String>) -> ApiError {
    err(400, "bad_json", m)
}
fn bad_request(m: impl Into<String>) -> ApiError {
    err(400, "bad_request", m)
}
fn not_found(m: impl Into<String>) -> ApiError {
    err(404, "not_found", m)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::BadRequest(m) => bad_request(m),
            StoreError::NotFound(m) => not_found(m),
            StoreError::Conflict(m) => err(409, "conflict", m),
            StoreError::Io(m) => err(500, "internal", m),
            StoreError::Invalid(errors) => {
                let n = errors.len();
                let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                ApiError { status: 422, code: "invalid_rules", message: format!("{n} error(s) in the rules; first: {first}"), errors: Some(errors) }
            }
        }
    }
}

fn error_json(e: &CompileError) -> Value {
    json!({"file": e.file.display().to_string(), "line": e.line, "col": e.col, "id": e.id, "key": e.key, "message": e.message})
}

fn errors_json(errors: &[CompileError]) -> Value {
    Value::Array(errors.iter().map(error_json).collect())
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    Response { status, headers: vec![("Content-Type".into(), content_type.into())], body }
}

fn json_response(status: u16, v: &Value) -> Response {
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    body.push(b'\n');
    respond(status, "application/json", body)
}

fn with_etag(mut r: Response, version: &str) -> Response {
    r.headers.push(("ETag".into(), format!("\"{version}\"")));
    r
}

fn error_response(e: &ApiError) -> Response {
    let mut v = json!({"error": {"code": e.code, "message": e.message}});
    if let Some(errors) = &e.errors {
        v["errors"] = errors_json(errors);
    }
    let mut r = json_response(e.status, &v);
    if e.status == 401 {
        r.headers.push(("WWW-Authenticate".into(), "Bearer".into()));
    }
    r
}

/// Percent-decodes; `+` is a space when `plus` (query strings, as forms encode them).
pub fn pct_decode(s: &str, plus: bool) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

fn query_param(query: &str, name: &str) -> Result<Option<String>, ApiError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if pct_decode(k, true).map_err(bad_request)? == name {
            return pct_decode(v, true).map(Some).map_err(bad_request);
        }
    }
    Ok(None)
}

/// Constant-time comparison: the time does not tell how much of a guess was right.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

fn header<'a>(req: &Request<'a>, name: &str) -> Option<&'a str> {
    req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The JSON object of the body; an empty body is `{}` when the body is optional.
fn body_object(req: &Request, required: bool) -> Result<Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return if required { Err(bad_json("the body must be a JSON object")) } else { Ok(Map::new()) };
    }
    match serde_json::from_slice::<Value>(req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_json("the body must be a JSON object")),
        Err(e) => Err(bad_json(format!("the body is not JSON: {e}"))),
    }
}

fn opt_str(m: &Map<String, Value>, k: &str) -> Result<Option<String>, ApiError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_json(format!("field {k} must be a string"))),
    }
}

fn req_str(m: &Map<String, Value>, k: &str) -> Result<String, ApiError> {
    opt_str(m, k)?.ok_or_else(|| bad_json(format!("missing field {k}")))
}

fn opt_u64(m: &Map<String, Value>, k: &str) -> Result<Option<u64>, ApiError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| bad_request(format!("{k} = {v}: must be a whole number of seconds"))),
    }
}

fn files_field(m: &Map<String, Value>, k: &str, required: bool) -> Result<Option<Files>, ApiError> {
    match m.get(k) {
        None | Some(Value::Null) if required => Err(bad_json(format!("missing field {k}"))),
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => {
            let mut f = Files::new();
            for (p, t) in o {
                let Value::String(t) = t else { return Err(bad_json(format!("{k}[{p:?}] must be a string (the file's text)"))) };
                f.insert(p.clone(), t.clone());
            }
            Ok(Some(f))
        }
        Some(_) => Err(bad_json(format!("field {k} must be an object of path: text"))),
    }
}

/// The version a write is based on: the body's `version`, else `If-Match`.
fn base_version(req: &Request, m: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    if let Some(v) = opt_str(m, "version")? {
        return Ok(Some(v));
    }
    Ok(header(req, "If-Match").map(|v| v.trim().trim_start_matches("W/").trim_matches('"').to_string()).filter(|v| !v.is_empty() && v != "*"))
}

fn ds_of(name: &str) -> Result<Ds, ApiError> {
    Ds::parse(name).ok_or_else(|| not_found(format!("no datastore {name:?} (running, startup, candidate)")))
}

fn only(method: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&method) {
        Ok(())
    } else {
        Err(err(405, "method_not_allowed", format!("{method} is not allowed here (allowed: {})", allowed.join(", "))))
    }
}

fn entry_json(e: &ListedEntry) -> Value {
    json!({
        "value": e.value, "source": e.source,
        "reason": e.api.as_ref().and_then(|a| a.reason.clone()),
        "added_unix": e.api.as_ref().map(|a| a.added_unix),
        "expires_unix": e.api.as_ref().and_then(|a| a.expires_unix),
    })
}

impl Api {
    /// A router over `store`; `report` builds the daemon's stats report; `token`, when set, is
    /// required on every request but the page and its assets; bodies over `max_body` get 413.
    pub fn new(store: Arc<Mutex<Store>>, report: Report, token: Option<String>, max_body: usize) -> Api {
        Api { store, stats: Mutex::new(StatsView::new()), report, token, max_body, started: Instant::now() }
    }

    /// The body limit.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The store.
    pub fn store(&self) -> &Arc<Mutex<Store>> {
        &self.store
    }

    /// True when `path` needs the token (everything but the page and its assets).
    pub fn needs_token(&self, method: &str, path: &str) -> bool {
        self.token.is_some() && !(method == "GET" && (path == "/" || path.starts_with("/static/")))
    }

    /// Checks the `Authorization` header against the token.
    pub fn authorized(&self, req: &Request) -> bool {
        let Some(token) = &self.token else { return true };
        let Some(h) = header(req, "Authorization") else { return false };
        let h = h.trim();
        match h.split_once(' ') {
            Some((scheme, given)) if scheme.eq_ignore_ascii_case("bearer") => ct_eq(given.trim().as_bytes(), token.as_bytes()),
            _ => false,
        }
    }

    /// A 401 response (the server also answers it before reading a body).
    pub fn unauthorized() -> Response {
        error_response(&err(401, "unauthorized", "a bearer token is required: Authorization: Bearer <token>"))
    }

    /// A 413 response (the server answers it without reading the body).
    pub fn too_large(max: usize) -> Response {
        error_response(&err(413, "too_large", format!("the body is larger than {max} bytes (management.max_body_bytes)")))
    }

    /// An error response of any status and code.
    pub fn error(status: u16, code: &'static str, message: &str) -> Response {
        error_response(&err(status, code, message))
    }

    /// A 400 response for a request the server could not read.
    pub fn bad_request_response(message: &str) -> Response {
        error_response(&bad_request(message))
    }

    /// Answers one request.
    pub fn handle(&self, req: &Request) -> Response {
        if self.needs_token(req.method, req.path) && !self.authorized(req) {
            return Self::unauthorized();
        }
        if req.body.len() > self.max_body {
            return Self::too_large(self.max_body);
        }
        match self.route(req) {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn route(&self, req: &Request) -> Res {
        let raw: Vec<&str> = req.path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let segs: Vec<String> = raw.iter().map(|s| pct_decode(s, false)).collect::<Result<_, _>>().map_err(bad_request)?;
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let m = req.method;
        match s.as_slice() {
            [] => {
                only(m, &["GET"])?;
                Ok(respond(200, "text/html; charset=utf-8", INDEX_HTML.into()))
            }
            ["static", "app.js"] => {
                only(m, &["GET"])?;
                Ok(respond(200, "application/javascript; charset=utf-8", APP_JS.into()))
            }
            ["static", "style.css"] => {
                only(m, &["GET"])?;
                Ok(respond(200, "text/css; charset=utf-8", STYLE_CSS.into()))
            }
            ["metrics"] => {
                only(m, &["GET"])?;
                let text = super::metrics::render(&(self.report)());
                Ok(respond(200, super::metrics::CONTENT_TYPE, text.into_bytes()))
            }
            ["api", "health"] => {
                only(m, &["GET"])?;
                Ok(json_response(200, &json!({"ok": true, "version": env!("CARGO_PKG_VERSION"), "pid": std::process::id(), "uptime_s": self.started.elapsed().as_secs_f64()})))
            }
            ["api", "stats"] => {
                only(m, &["GET"])?;
                let report = (self.report)();
                let v = self.stats.lock().unwrap_or_else(|p| p.into_inner()).view(report);
                Ok(json_response(200, &v))
            }
            ["api", "stats", "reset"] => {
                only(m, &["POST"])?;
                let report = (self.report)();
                let since = self.stats.lock().unwrap_or_else(|p| p.into_inner()).reset(&report);
                Ok(json_response(200, &json!({"since_unix": since})))
            }
            ["api", "rules"] => {
                only(m, &["GET"])?;
                self.rules()
            }
            ["api", "datastores"] => {
                only(m, &["GET"])?;
                Ok(self.datastores())
            }
            ["api", "datastores", "diff"] => {
                only(m, &["GET"])?;
                self.diff(req)
            }
            ["api", "datastores", "copy"] => {
                only(m, &["POST"])?;
                self.copy(req)
            }
            ["api", "datastores", ds] => {
                only(m, &["GET", "PUT"])?;
                let ds = ds_of(ds)?;
                if m == "GET" {
                    let st = self.lock();
                    let d = st.get(ds);
                    return Ok(with_etag(json_response(200, &json!({"name": ds.name(), "version": d.version, "files": d.files})), &d.version));
                }
                let b = body_object(req, true)?;
                let files = files_field(&b, "files", true)?.unwrap_or_default();
                let version = base_version(req, &b)?;
                let mut st = self.lock();
                let v = st.set(ds, files, version.as_deref())?;
                Ok(self.write_answer(&st, ds, &v))
            }
            ["api", "datastores", ds, "validate"] => {
                only(m, &["POST"])?;
                let ds = ds_of(ds)?;
                let b = body_object(req, false)?;
                let overlay = files_field(&b, "files", false)?;
                let v = self.lock().validate(ds, overlay)?;
                Ok(json_response(200, &json!({"valid": v.valid, "rules": v.rules, "errors": errors_json(&v.errors)})))
            }
            ["api", "datastores", ds, "files", rest @ ..] if !rest.is_empty() => {
                only(m, &["GET", "PUT", "DELETE"])?;
                let ds = ds_of(ds)?;
                let path = rest.join("/");
                datastore::check_path(&path).map_err(bad_request)?;
                match m {
                    "GET" => {
                        let st = self.lock();
                        let d = st.get(ds);
                        let text = d.files.get(&path).ok_or_else(|| not_found(format!("{} has no file {path}", ds.name())))?;
                        Ok(with_etag(json_response(200, &json!({"name": ds.name(), "version": d.version, "path": path, "text": text})), &d.version))
                    }
                    "PUT" => {
                        let b = body_object(req, true)?;
                        let text = req_str(&b, "text")?;
                        let version = base_version(req, &b)?;
                        let mut st = self.lock();
                        let v = st.set_file(ds, &path, text, version.as_deref())?;
                        Ok(self.write_answer(&st, ds, &v))
                    }
                    _ => {
                        let b = body_object(req, false)?;
                        let version = base_version(req, &b)?;
                        let mut st = self.lock();
                        let v = st.delete_file(ds, &path, version.as_deref())?;
                        Ok(self.write_answer(&st, ds, &v))
                    }
                }
            }
            ["api", "confirm"] => {
                only(m, &["POST"])?;
                let v = self.lock().confirm()?;
                Ok(json_response(200, &json!({"confirmed": true, "version": v})))
            }
            ["api", "rollback"] => {
                only(m, &["POST"])?;
                let mut st = self.lock();
                let v = st.rollback()?;
                let d = st.get(Ds::Running);
                Ok(with_etag(json_response(200, &json!({"name": "running", "version": d.version, "rules": v.rules})), &d.version))
            }
            ["api", "reload"] => {
                only(m, &["POST"])?;
                let mut st = self.lock();
                match st.reload() {
                    Ok(line) => {
                        eprintln!("secsip: {line} (through the API)");
                        let d = st.get(Ds::Running);
                        Ok(json_response(200, &json!({"name": "running", "version": d.version, "rules": d.rules, "message": line})))
                    }
                    Err(e) => {
                        eprintln!("secsip: {e}");
                        // The errors travel as a list (paths relative to startup, like the editor's);
                        // repeating them in the message would print them twice in `secsip ctl`.
                        let message = match e.errors.len() {
                            0 => e.message,
                            n => format!("reload refused, the running rules stay: {n} error(s) in the startup rules on disk"),
                        };
                        Err(ApiError { status: 422, code: "invalid_rules", message, errors: Some(e.errors) })
                    }
                }
            }
            ["api", "lists"] => {
                only(m, &["GET"])?;
                let lists: Vec<Value> = self
                    .lock()
                    .lists()
                    .into_iter()
                    .map(|(id, kind, r, a)| json!({"id": id, "kind": kind, "rules_entries": r, "api_entries": a}))
                    .collect();
                Ok(json_response(200, &json!({"lists": lists})))
            }
            ["api", "lists", id] => {
                only(m, &["GET"])?;
                let l = self.lock().list(id)?;
                let entries: Vec<Value> = l.entries.iter().map(entry_json).collect();
                Ok(json_response(200, &json!({"id": l.id, "kind": l.kind, "entries": entries})))
            }
            ["api", "lists", id, "entries"] => {
                only(m, &["POST", "DELETE"])?;
                if m == "POST" {
                    let b = body_object(req, true)?;
                    let value = req_str(&b, "value")?;
                    let ttl = opt_u64(&b, "ttl_s")?;
                    let reason = opt_str(&b, "reason")?;
                    let e = self.lock().add_entry(id, &value, ttl, reason)?;
                    return Ok(json_response(201, &entry_json(&e)));
                }
                let value = query_param(req.query, "value")?.ok_or_else(|| bad_request("missing query parameter value (…/entries?value=V)"))?;
                let e = self.lock().remove_entry(id, &value)?;
                Ok(json_response(200, &json!({"removed": entry_json(&e)})))
            }
            ["api", "bans"] => {
                only(m, &["GET", "POST"])?;
                if m == "GET" {
                    let bans: Vec<Value> = self.lock().bans().iter().map(ban_json).collect();
                    return Ok(json_response(200, &json!({"bans": bans})));
                }
                let b = body_object(req, true)?;
                let ip = req_str(&b, "ip")?;
                let ttl = opt_u64(&b, "ttl_s")?.ok_or_else(|| bad_json("missing field ttl_s"))?;
                let reason = opt_str(&b, "reason")?;
                let ban = self.lock().ban(&ip, ttl, reason)?;
                Ok(json_response(201, &ban_json(&ban)))
            }
            ["api", "bans", ip] => {
                only(m, &["DELETE"])?;
                let ip = self.lock().unban(ip)?;
                Ok(json_response(200, &json!({"removed": ip.to_string()})))
            }
            _ => Err(not_found(format!("no route {}", req.path))),
        }
    }

    fn write_answer(&self, st: &Store, ds: Ds, v: &Validation) -> Response {
        let d = st.get(ds);
        let body = json!({"name": ds.name(), "version": d.version, "valid": v.valid, "rules": v.rules, "errors": errors_json(&v.errors)});
        with_etag(json_response(200, &body), &d.version)
    }

    fn datastores(&self) -> Response {
        let st = self.lock();
        let now = st.clock().unix();
        let list: Vec<Value> = Ds::ALL
            .iter()
            .map(|&ds| {
                let d = st.get(ds);
                json!({
                    "name": ds.name(), "version": d.version, "files": d.files.len(), "bytes": datastore::bytes(&d.files),
                    "valid": d.errors.is_empty(), "rules": d.rules, "modified_unix": d.modified_unix,
                })
            })
            .collect();
        let pending = st.pending().map(|p| json!({"deadline_unix": p.deadline_unix, "remaining_s": (p.deadline_unix - now).max(0.0), "from": p.from.name()}));
        json_response(200, &json!({"datastores": list, "pending_confirm": pending, "previous_running": st.has_previous_running()}))
    }

    fn diff(&self, req: &Request) -> Res {
        let from = query_param(req.query, "from")?.ok_or_else(|| bad_request("missing query parameter from"))?;
        let to = query_param(req.query, "to")?.ok_or_else(|| bad_request("missing query parameter to"))?;
        let (a, b) = (ds_of(&from)?, ds_of(&to)?);
        let st = self.lock();
        let files: Vec<Value> = datastore::diff(&st.get(a).files, &st.get(b).files, a.name(), b.name())
            .into_iter()
            .map(|d| json!({"path": d.path, "status": d.status, "diff": d.diff}))
            .collect();
        Ok(json_response(200, &json!({"from": a.name(), "to": b.name(), "files": files})))
    }

    fn copy(&self, req: &Request) -> Res {
        let b = body_object(req, true)?;
        let from = ds_of(&req_str(&b, "from")?)?;
        let to = ds_of(&req_str(&b, "to")?)?;
        let version = base_version(req, &b)?;
        let confirm = opt_u64(&b, "confirm_s")?;
        if let Some(c) = confirm {
            if !(1..=MAX_CONFIRM_S).contains(&c) {
                return Err(bad_request(format!("confirm_s = {c}: must be 1..={MAX_CONFIRM_S}")));
            }
        }
        let mut st = self.lock();
        let v = st.copy(from, to, version.as_deref(), confirm)?;
        let d = st.get(to);
        let now = st.clock().unix();
        let pending = st.pending().map(|p| json!({"deadline_unix": p.deadline_unix, "remaining_s": (p.deadline_unix - now).max(0.0), "from": p.from.name()}));
        let body = json!({"name": to.name(), "version": d.version, "valid": v.valid, "rules": v.rules, "pending_confirm": pending});
        Ok(with_etag(json_response(200, &body), &d.version))
    }

    fn rules(&self) -> Res {
        // The report first: it may wait for the engines, and the store must not be held then.
        let report = (self.report)();
        let view = self.stats.lock().unwrap_or_else(|p| p.into_inner()).view(report);
        let st = self.lock();
        let set = st.running_set();
        let rules: Vec<Value> = set
            .rules
            .iter()
            .filter(|r| !r.is_definition)
            .map(|r| {
                json!({
                    "id": r.id, "description": r.description, "action": r.action.name(),
                    "mode": if r.monitor { "monitor" } else { "enforce" },
                    "file": r.file.display().to_string(), "line": r.line,
                    "hits": view["rule_hits"][&r.id].as_u64().unwrap_or(0),
                })
            })
            .collect();
        Ok(json_response(200, &json!({"version": st.get(Ds::Running).version, "rules": rules})))
    }
}

fn ban_json(b: &super::store::BanView) -> Value {
    json!({"ip": b.ip.to_string(), "remaining_s": b.remaining_s, "rule": b.rule, "reason": b.reason})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mgmt::store::tests::store;
    use std::time::Duration;

    struct T {
        api: Api,
        dir: std::path::PathBuf,
    }

    impl Drop for T {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(datastore::prev_dir(&self.dir));
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn api(name: &str, token: Option<&str>) -> T {
        let (s, dir) = store(name);
        let report: Report = Box::new(|| json!({"version": "x", "uptime_s": 3.5, "verdicts": {"rule.drop": 5}, "rule_hits": {"ua-block": 7}}));
        T { api: Api::new(Arc::new(Mutex::new(s)), report, token.map(str::to_string), 64 * 1024), dir }
    }

    fn call(t: &T, method: &str, target: &str, body: &str) -> Response {
        call_h(t, method, target, body, &[])
    }

    fn call_h(t: &T, method: &str, target: &str, body: &str, headers: &[(&str, &str)]) -> Response {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers: Vec<(String, String)> = headers.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        t.api.handle(&Request { method, path, query, headers: &headers, body: body.as_bytes() })
    }

    fn code(r: &Response) -> String {
        r.json()["error"]["code"].as_str().unwrap_or("").to_string()
    }

    const EXTRA: &str = "[[rule]]\nid = \"extra\"\nwhen = 'sip.method == \"MESSAGE\"'\naction = \"drop\"\n";

    #[test]
    fn static_health_metrics_and_unknown_routes() {
        let t = api("api-static", None);
        let r = call(&t, "GET", "/", "");
        assert_eq!((r.status, r.header("content-type").unwrap()), (200, "text/html; charset=utf-8"));
        assert!(String::from_utf8_lossy(&r.body).contains("/static/app.js"));
        assert_eq!(call(&t, "GET", "/static/app.js", "").status, 200);
        assert!(call(&t, "GET", "/static/style.css", "").header("content-type").unwrap().starts_with("text/css"));
        let h = call(&t, "GET", "/api/health", "").json();
        assert_eq!((h["ok"].as_bool(), h["pid"].as_u64()), (Some(true), Some(std::process::id() as u64)));
        let m = call(&t, "GET", "/metrics", "");
        assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
        assert!(String::from_utf8_lossy(&m.body).contains("secsip_uptime_seconds 3.5"));
        for p in ["/nope", "/api", "/api/nope", "/static/x.js", "/api/datastores/running/nope"] {
            let r = call(&t, "GET", p, "");
            assert_eq!((r.status, code(&r)), (404, "not_found".into()), "{p}");
        }
        for (m, p) in [("POST", "/"), ("DELETE", "/api/health"), ("POST", "/api/datastores"), ("GET", "/api/confirm"), ("PUT", "/api/lists"), ("GET", "/api/lists/block-ip/entries"), ("PUT", "/api/bans"), ("GET", "/api/bans/1.2.3.4"), ("GET", "/api/stats/reset"), ("POST", "/metrics"), ("DELETE", "/api/datastores/running"), ("GET", "/api/datastores/copy"), ("POST", "/api/datastores/diff"), ("GET", "/api/datastores/candidate/validate"), ("POST", "/api/datastores/running/files/a.toml")] {
            let r = call(&t, m, p, "");
            assert_eq!((r.status, code(&r)), (405, "method_not_allowed".into()), "{m} {p}");
        }
    }

    #[test]
    fn token_required_when_configured_and_compared_exactly() {
        let t = api("api-token", Some("0123456789abcdef"));
        assert_eq!(call(&t, "GET", "/", "").status, 200, "the page loads without the token");
        assert_eq!(call(&t, "GET", "/static/app.js", "").status, 200);
        for hdr in [None, Some("Bearer wrong-token-0000000"), Some("Bearer 0123456789abcdeF"), Some("Basic 0123456789abcdef"), Some("Bearer 0123456789abcde"), Some("Bearer")] {
            let h: Vec<(&str, &str)> = hdr.map(|v| ("Authorization", v)).into_iter().collect();
            for (m, p) in [("GET", "/api/datastores"), ("GET", "/metrics"), ("POST", "/api/reload"), ("GET", "/nope")] {
                let r = call_h(&t, m, p, "", &h);
                assert_eq!((r.status, code(&r)), (401, "unauthorized".into()), "{hdr:?} {m} {p}");
                assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            }
        }
        let r = call_h(&t, "GET", "/api/datastores", "", &[("authorization", "bearer 0123456789abcdef")]);
        assert_eq!(r.status, 200);
        let t = api("api-notoken", None);
        assert_eq!(call(&t, "GET", "/api/datastores", "").status, 200, "no token configured: loopback serves");
    }

    #[test]
    fn datastores_get_put_versions_and_conflicts() {
        let t = api("api-ds", None);
        let l = call(&t, "GET", "/api/datastores", "").json();
        let names: Vec<&str> = l["datastores"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["running", "startup", "candidate"]);
        assert_eq!((l["datastores"][0]["files"].as_u64(), l["datastores"][0]["rules"].as_u64(), l["datastores"][0]["valid"].as_bool()), (Some(2), Some(2), Some(true)));
        assert!(l["pending_confirm"].is_null() && l["previous_running"] == false);
        let r = call(&t, "GET", "/api/datastores/candidate", "");
        let v0 = r.json()["version"].as_str().unwrap().to_string();
        assert_eq!(r.header("etag").unwrap(), format!("\"{v0}\""));
        assert!(r.json()["files"]["10-base.toml"].as_str().unwrap().contains("ua-block"));
        assert_eq!(code(&call(&t, "GET", "/api/datastores/nope", "")), "not_found");
        // PUT one file with the right version, then a stale one: 409, nothing changes.
        let body = json!({"text": EXTRA, "version": v0}).to_string();
        let r = call(&t, "PUT", "/api/datastores/candidate/files/30-extra.toml", &body);
        assert_eq!(r.status, 200, "{:?}", r.json());
        let v1 = r.json()["version"].as_str().unwrap().to_string();
        assert_eq!((r.json()["valid"].as_bool(), r.json()["rules"].as_u64()), (Some(true), Some(3)));
        let r = call(&t, "PUT", "/api/datastores/candidate/files/40.toml", &body);
        assert_eq!((r.status, code(&r)), (409, "conflict".into()));
        let r = call_h(&t, "PUT", "/api/datastores/candidate/files/40.toml", &json!({"text": EXTRA}).to_string(), &[("If-Match", &format!("\"{v0}\""))]);
        assert_eq!((r.status, code(&r)), (409, "conflict".into()), "If-Match is checked too");
        let g = call(&t, "GET", "/api/datastores/candidate/files/30-extra.toml", "").json();
        assert_eq!((g["text"].as_str(), g["path"].as_str(), g["version"].as_str()), (Some(EXTRA), Some("30-extra.toml"), Some(v1.as_str())));
        assert_eq!(code(&call(&t, "GET", "/api/datastores/candidate/files/40.toml", "")), "not_found");
        assert_eq!(code(&call(&t, "GET", "/api/datastores/candidate/files/..%2Fx.toml", "")), "bad_request");
        assert_eq!(code(&call(&t, "GET", "/api/datastores/candidate/files/a%2", "")), "bad_request");
        assert_eq!(call(&t, "GET", "/api/datastores/candidate/files/lists/bad-ua.txt", "").json()["text"], "friendly-scanner\n");
        // An invalid draft is kept in candidate, refused by running (422 with errors).
        let bad = json!({"text": "[[rule]]\nid = \"x\"\nwhen = 'sip.method == '\n"}).to_string();
        let r = call(&t, "PUT", "/api/datastores/candidate/files/50-bad.toml", &bad);
        assert_eq!((r.status, r.json()["valid"].as_bool()), (200, Some(false)));
        assert_eq!(r.json()["errors"][0]["file"], "50-bad.toml");
        assert_eq!(r.json()["errors"][0]["line"], 3);
        let rv = call(&t, "GET", "/api/datastores/running", "").json()["version"].clone();
        let r = call(&t, "PUT", "/api/datastores/running/files/50-bad.toml", &bad);
        assert_eq!((r.status, code(&r)), (422, "invalid_rules".into()));
        let e = &r.json()["errors"][0];
        assert_eq!((e["file"].as_str(), e["line"].as_u64(), e["id"].as_str()), (Some("50-bad.toml"), Some(3), Some("x")));
        assert!(e["col"].as_u64().unwrap() > 1 && e["key"] == "when", "{e}");
        assert_eq!(call(&t, "GET", "/api/datastores/running", "").json()["version"], rv, "nothing changed");
        let l = call(&t, "GET", "/api/datastores", "").json();
        assert_eq!((l["datastores"][2]["valid"].as_bool(), l["datastores"][2]["rules"].is_null()), (Some(false), true));
        // DELETE a file, whole PUT, bad bodies.
        let r = call(&t, "DELETE", "/api/datastores/candidate/files/50-bad.toml", "");
        assert_eq!((r.status, r.json()["valid"].as_bool()), (200, Some(true)));
        assert_eq!(code(&call(&t, "DELETE", "/api/datastores/candidate/files/50-bad.toml", "")), "not_found");
        let r = call(&t, "PUT", "/api/datastores/candidate", &json!({"files": {"a.toml": EXTRA}}).to_string());
        assert_eq!((r.status, r.json()["rules"].as_u64()), (200, Some(1)));
        assert_eq!(code(&call(&t, "PUT", "/api/datastores/candidate", "{\"files\": ")), "bad_json");
        assert_eq!(code(&call(&t, "PUT", "/api/datastores/candidate", "[1]")), "bad_json");
        assert_eq!(code(&call(&t, "PUT", "/api/datastores/candidate", "")), "bad_json");
        let r = call(&t, "PUT", "/api/datastores/candidate", "{}");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("files"), "the message names the field");
        assert_eq!(code(&call(&t, "PUT", "/api/datastores/candidate", "{\"files\": {\"a.toml\": 1}}")), "bad_json");
        assert_eq!(code(&call(&t, "PUT", "/api/datastores/candidate", "{\"files\": {\"../a.toml\": \"\"}}")), "bad_request");
        assert_eq!(code(&call(&t, "PUT", "/api/datastores/candidate/files/a.toml", "{}")), "bad_json");
        assert_eq!(code(&call(&t, "PUT", "/api/datastores/candidate/files/a.toml", "{\"text\": 5}")), "bad_json");
        assert_eq!(code(&call(&t, "PUT", "/api/datastores/nope", "{\"files\": {}}")), "not_found");
    }

    #[test]
    fn validate_copy_diff_confirm_rollback_reload() {
        let t = api("api-copy", None);
        let r = call(&t, "POST", "/api/datastores/running/validate", "");
        assert_eq!(r.json(), json!({"valid": true, "rules": 2, "errors": []}));
        let r = call(&t, "POST", "/api/datastores/running/validate", &json!({"files": {"30-x.toml": "[[rule]]\nid = 1\n"}}).to_string());
        assert_eq!((r.status, r.json()["valid"].as_bool(), r.json()["errors"][0]["file"].as_str()), (200, Some(false), Some("30-x.toml")));
        assert_eq!(code(&call(&t, "POST", "/api/datastores/nope/validate", "")), "not_found");
        assert_eq!(code(&call(&t, "POST", "/api/datastores/running/validate", "nope")), "bad_json");
        call(&t, "PUT", "/api/datastores/candidate/files/30-extra.toml", &json!({"text": EXTRA}).to_string());
        let d = call(&t, "GET", "/api/datastores/diff?from=running&to=candidate", "").json();
        assert_eq!(d["files"].as_array().unwrap().len(), 1);
        assert_eq!((d["files"][0]["path"].as_str(), d["files"][0]["status"].as_str()), (Some("30-extra.toml"), Some("added")));
        assert!(d["files"][0]["diff"].as_str().unwrap().contains("+++ candidate/30-extra.toml"));
        assert_eq!(call(&t, "GET", "/api/datastores/diff?from=running&to=startup", "").json()["files"], json!([]));
        assert_eq!(code(&call(&t, "GET", "/api/datastores/diff?from=running", "")), "bad_request");
        assert_eq!(code(&call(&t, "GET", "/api/datastores/diff?from=running&to=nope", "")), "not_found");
        assert_eq!(code(&call(&t, "POST", "/api/confirm", "")), "conflict");
        assert_eq!(code(&call(&t, "POST", "/api/rollback", "")), "conflict");
        assert_eq!(code(&call(&t, "POST", "/api/datastores/copy", "{\"from\": \"candidate\"}")), "bad_json");
        assert_eq!(code(&call(&t, "POST", "/api/datastores/copy", "{\"from\": \"candidate\", \"to\": \"nope\"}")), "not_found");
        assert_eq!(code(&call(&t, "POST", "/api/datastores/copy", "{\"from\": \"candidate\", \"to\": \"running\", \"confirm_s\": 0}")), "bad_request");
        assert_eq!(code(&call(&t, "POST", "/api/datastores/copy", "{\"from\": \"candidate\", \"to\": \"running\", \"confirm_s\": 3601}")), "bad_request");
        assert_eq!(code(&call(&t, "POST", "/api/datastores/copy", "{\"from\": \"candidate\", \"to\": \"running\", \"version\": \"0-0\"}")), "conflict");
        let r = call(&t, "POST", "/api/datastores/copy", "{\"from\": \"candidate\", \"to\": \"running\", \"confirm_s\": 30}");
        assert_eq!((r.status, r.json()["rules"].as_u64(), r.json()["name"].as_str()), (200, Some(3), Some("running")), "{:?}", r.json());
        assert!((r.json()["pending_confirm"]["remaining_s"].as_f64().unwrap() - 30.0).abs() < 1.0);
        let l = call(&t, "GET", "/api/datastores", "").json();
        assert_eq!((l["pending_confirm"]["from"].as_str(), l["previous_running"].as_bool()), (Some("candidate"), Some(true)));
        let c = call(&t, "POST", "/api/confirm", "").json();
        assert_eq!((c["confirmed"].as_bool(), &c["version"]), (Some(true), &call(&t, "GET", "/api/datastores/running", "").json()["version"]));
        let r = call(&t, "POST", "/api/rollback", "").json();
        assert_eq!((r["name"].as_str(), r["rules"].as_u64()), (Some("running"), Some(2)));
        // Unconfirmed commit: rolled back by tick.
        call(&t, "POST", "/api/datastores/copy", "{\"from\": \"candidate\", \"to\": \"running\", \"confirm_s\": 5}");
        {
            let mut st = t.api.store().lock().unwrap();
            st.clock().advance(Duration::from_secs(6));
            assert!(st.tick()[0].contains("rolled back"));
        }
        assert_eq!(call(&t, "GET", "/api/datastores", "").json()["datastores"][0]["rules"], 2);
        // Copy to startup writes the directory; reload reads it back.
        assert_eq!(call(&t, "POST", "/api/datastores/copy", "{\"from\": \"candidate\", \"to\": \"startup\"}").status, 200);
        assert!(t.dir.join("30-extra.toml").exists());
        let r = call(&t, "POST", "/api/reload", "");
        assert_eq!((r.status, r.json()["rules"].as_u64()), (200, Some(3)), "{:?}", r.json());
        std::fs::write(t.dir.join("60-bad.toml"), "[[rule]]\n").unwrap();
        let r = call(&t, "POST", "/api/reload", "");
        assert_eq!((r.status, code(&r)), (422, "invalid_rules".into()));
        assert_eq!(r.json()["error"]["message"], "reload refused, the running rules stay: 1 error(s) in the startup rules on disk");
        let errs = r.json()["errors"].clone();
        assert_eq!(errs[0]["file"], "60-bad.toml", "the editor can place it: {errs}");
        assert!(errs[0]["line"].as_u64().is_some(), "{errs}");
    }

    #[test]
    fn lists_entries_and_bans() {
        let t = api("api-lists", None);
        let l = call(&t, "GET", "/api/lists", "").json();
        assert_eq!(l["lists"][1], json!({"id": "block-ip", "kind": "ip", "rules_entries": 1, "api_entries": 0}));
        assert_eq!(code(&call(&t, "GET", "/api/lists/nope", "")), "not_found");
        let r = call(&t, "POST", "/api/lists/block-ip/entries", &json!({"value": "203.0.113.0/24", "ttl_s": 60, "reason": "scan"}).to_string());
        assert_eq!(r.status, 201, "{:?}", r.json());
        assert_eq!((r.json()["source"].as_str(), r.json()["reason"].as_str()), (Some("api"), Some("scan")));
        let exp = r.json()["expires_unix"].as_f64().unwrap() - r.json()["added_unix"].as_f64().unwrap();
        assert!((exp - 60.0).abs() < 0.01);
        let r = call(&t, "POST", "/api/lists/block-ip/entries", &json!({"value": "nope"}).to_string());
        assert_eq!(code(&r), "bad_request");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("not an address"));
        assert_eq!(code(&call(&t, "POST", "/api/lists/block-ip/entries", &json!({"value": "1.2.3.4", "ttl_s": 0}).to_string())), "bad_request");
        assert_eq!(code(&call(&t, "POST", "/api/lists/block-ip/entries", &json!({"value": "1.2.3.4", "ttl_s": -5}).to_string())), "bad_request");
        assert_eq!(code(&call(&t, "POST", "/api/lists/block-ip/entries", &json!({"value": "1.2.3.4", "ttl_s": 999999}).to_string())), "bad_request");
        assert_eq!(code(&call(&t, "POST", "/api/lists/block-ip/entries", "{}")), "bad_json");
        assert_eq!(code(&call(&t, "POST", "/api/lists/nope/entries", &json!({"value": "1.2.3.4"}).to_string())), "not_found");
        for v in ["a", "b"] {
            assert_eq!(call(&t, "POST", "/api/lists/bad-ua/entries", &json!({"value": v}).to_string()).status, 201);
        }
        assert_eq!(code(&call(&t, "POST", "/api/lists/bad-ua/entries", &json!({"value": "c"}).to_string())), "conflict", "bound");
        let l = call(&t, "GET", "/api/lists/block-ip", "").json();
        assert_eq!(l["entries"][0], json!({"value": "192.0.2.1", "source": "rules", "reason": null, "added_unix": null, "expires_unix": null}));
        assert_eq!(l["entries"][1]["value"], "203.0.113.0/24");
        assert_eq!(code(&call(&t, "DELETE", "/api/lists/block-ip/entries?value=192.0.2.1", "")), "conflict");
        assert_eq!(code(&call(&t, "DELETE", "/api/lists/block-ip/entries?value=10.0.0.1", "")), "not_found");
        assert_eq!(code(&call(&t, "DELETE", "/api/lists/block-ip/entries", "")), "bad_request");
        let r = call(&t, "DELETE", "/api/lists/block-ip/entries?value=203.0.113.0%2F24", "");
        assert_eq!((r.status, r.json()["removed"]["value"].as_str()), (200, Some("203.0.113.0/24")));
        // Bans.
        assert_eq!(call(&t, "GET", "/api/bans", "").json(), json!({"bans": []}));
        let r = call(&t, "POST", "/api/bans", &json!({"ip": "2001:db8::7", "ttl_s": 120, "reason": "manual"}).to_string());
        assert_eq!((r.status, r.json()["rule"].as_str(), r.json()["reason"].as_str()), (201, Some("api"), Some("manual")));
        assert_eq!(code(&call(&t, "POST", "/api/bans", &json!({"ip": "2001:db8::7"}).to_string())), "bad_json");
        assert_eq!(code(&call(&t, "POST", "/api/bans", &json!({"ip": "300.1.1.1", "ttl_s": 5}).to_string())), "bad_request");
        assert_eq!(code(&call(&t, "POST", "/api/bans", &json!({"ip": "1.1.1.1", "ttl_s": 0}).to_string())), "bad_request");
        let b = call(&t, "GET", "/api/bans", "").json();
        assert_eq!(b["bans"][0]["ip"], "2001:db8::7");
        assert!(b["bans"][0]["remaining_s"].as_f64().unwrap() > 119.0);
        assert_eq!(call(&t, "DELETE", "/api/bans/2001:db8::7", "").json(), json!({"removed": "2001:db8::7"}));
        assert_eq!(code(&call(&t, "DELETE", "/api/bans/2001:db8::7", "")), "not_found");
        assert_eq!(code(&call(&t, "DELETE", "/api/bans/nope", "")), "bad_request");
    }

    #[test]
    fn stats_rules_and_oversized_bodies() {
        let t = api("api-stats", None);
        let s = call(&t, "GET", "/api/stats", "").json();
        assert_eq!((s["rule_hits"]["ua-block"].as_u64(), s["verdicts"]["rule.drop"].as_u64()), (Some(7), Some(5)));
        assert!(s["since_unix"].as_f64().unwrap() > 1.0e9);
        let r = call(&t, "GET", "/api/rules", "").json();
        assert_eq!(r["rules"][0]["id"], "ua-block");
        assert_eq!((r["rules"][0]["hits"].as_u64(), r["rules"][0]["mode"].as_str(), r["rules"][0]["action"].as_str()), (Some(7), Some("enforce"), Some("drop")));
        assert_eq!((r["rules"][0]["file"].as_str(), r["rules"][0]["line"].as_u64()), (Some("10-base.toml"), Some(12)), "the line of the rule's id");
        assert_eq!(r["version"], call(&t, "GET", "/api/datastores/running", "").json()["version"]);
        let since = call(&t, "POST", "/api/stats/reset", "").json()["since_unix"].as_f64().unwrap();
        let s = call(&t, "GET", "/api/stats", "").json();
        assert_eq!(s["since_unix"].as_f64(), Some(since));
        assert_eq!(s["rule_hits"]["ua-block"].as_u64().unwrap_or(0), 0, "deltas since the reset");
        assert_eq!(call(&t, "GET", "/api/rules", "").json()["rules"][0]["hits"], 0);
        let big = format!("{{\"text\": \"{}\"}}", "#".repeat(70 * 1024));
        let r = call(&t, "PUT", "/api/datastores/candidate/files/a.toml", &big);
        assert_eq!((r.status, code(&r)), (413, "too_large".into()));
        assert!(!t.api.store().lock().unwrap().get(Ds::Candidate).files.contains_key("a.toml"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(pct_decode("a%2Fb+c", true).unwrap(), "a/b c");
        assert_eq!(pct_decode("a+b", false).unwrap(), "a+b");
        assert!(pct_decode("%zz", false).is_err() && pct_decode("%ff", false).is_err());
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab"));
    }
}

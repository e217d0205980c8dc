// secsip web manager: plain JavaScript against the management API (src/mgmt/API.md).
// No build step, no dependencies; every request goes through api(), which adds the bearer
// token and asks for one when the server answers 401.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
const VALIDATE_MS = 400;
const TOKEN_KEY = "secsip.token";

// ---------------------------------------------------------------------------------------------
// API access

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "http_" + status;
    this.errors = (body && Array.isArray(body.errors)) ? body.errors : [];
  }
}

let tokenPrompt = null; // one dialog for every request that got 401 at the same time

function askToken() {
  if (!tokenPrompt) {
    tokenPrompt = new Promise((resolve) => {
      const dlg = $("token-dialog");
      const input = $("token-input");
      input.value = sessionStorage.getItem(TOKEN_KEY) || "";
      const done = () => {
        dlg.removeEventListener("close", done);
        if (dlg.returnValue === "ok" && input.value.trim()) {
          sessionStorage.setItem(TOKEN_KEY, input.value.trim());
          resolve(true);
        } else {
          resolve(false);
        }
        tokenPrompt = null;
      };
      dlg.addEventListener("close", done);
      dlg.returnValue = "";
      if (!dlg.open) dlg.showModal();
      input.focus();
    });
  }
  return tokenPrompt;
}

async function api(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      setConn(false, "cannot reach the appliance: " + e.message);
      throw new ApiError(0, { error: { code: "network", message: "cannot reach the appliance (" + e.message + ")" } });
    }
    setConn(true);
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = { error: { message: text.slice(0, 300) } }; }
    }
    if (res.status === 401 && attempt < 3) {
      if (await askToken()) continue;
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }
}

const enc = (p) => p.split("/").map(encodeURIComponent).join("/");

// ---------------------------------------------------------------------------------------------
// Small helpers

function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") n.className = v;
    else if (k === "text") n.textContent = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(n.dataset, v);
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined) n.append(c);
  return n;
}

function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function fmtDur(s) {
  if (s === null || s === undefined) return "–";
  s = Math.max(0, Math.round(s));
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

function fmtTime(unix) {
  if (!unix) return "–";
  const d = new Date(unix * 1000);
  return d.toLocaleString();
}

// "3600", "90s", "15m", "1h", "2d" -> seconds (null if not understood)
function parseTtl(s) {
  s = String(s || "").trim();
  if (!s) return null;
  const m = /^(\d+)\s*([smhd]?)$/i.exec(s);
  if (!m) return NaN;
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2].toLowerCase()];
}

function errorLine(e) {
  const where = [e.file || "?", e.line ?? "?", e.col ?? "?"].join(":");
  const who = e.id ? ` '${e.id}'` : "";
  const key = e.key ? ` ${e.key}:` : "";
  return `${where}:${who}${key} ${e.message}`;
}

// The message area under the header: errors (with the compiler's file:line:col) or news.
function notify(msg, errors, kind) {
  const box = $("notice");
  box.classList.toggle("info", kind === "info");
  box.setAttribute("role", kind === "info" ? "status" : "alert");
  $("notice-text").textContent = msg;
  const ul = $("notice-errors");
  ul.replaceChildren(...(errors || []).map((e) => el("li", { text: errorLine(e) })));
  box.hidden = false;
  clearTimeout(notify.timer);
  if (kind === "info") notify.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function showError(err, what) {
  const prefix = what ? what + ": " : "";
  notify(prefix + err.message + (err.status ? ` (${err.status} ${err.code})` : ""), err.errors);
}

function setConn(ok, msg) {
  const c = $("conn");
  c.classList.toggle("down", !ok);
  if (!ok) c.textContent = msg;
  else if (c.textContent.startsWith("cannot") || c.textContent === "connecting…") c.textContent = "connected";
}

// ---------------------------------------------------------------------------------------------
// Navigation: one panel at a time, chosen by the URL's hash (links work with the keyboard).

const PANELS = ["dashboard", "rules", "editor", "lists", "bans"];
let current = "dashboard";

function show(name) {
  if (!PANELS.includes(name)) name = "dashboard";
  current = name;
  for (const p of PANELS) {
    $("panel-" + p).hidden = p !== name;
    const t = $("tab-" + p);
    if (p === name) t.setAttribute("aria-current", "page"); else t.removeAttribute("aria-current");
  }
  if (name === "editor" && !cand.loaded) loadCandidate();
  if (name === "lists") loadLists();
  if (name === "bans") loadBans();
  if (name === "rules") loadRules();
}

window.addEventListener("hashchange", () => show(location.hash.slice(1)));

// ---------------------------------------------------------------------------------------------
// Dashboard: rates from successive /api/stats reports.

let prevStats = null; // {t, since, sums}
let lastRules = null; // the last /api/rules answer

function sumStats(s) {
  const v = s.verdicts || {};
  let inn = 0, fwd = 0, drop = 0;
  for (const [k, n] of Object.entries(v)) {
    inn += n;
    if (k.endsWith(".accept")) fwd += n; else drop += n;
  }
  let rx = 0, tx = 0;
  for (const q of s.queues || []) {
    const c = q.counters || {};
    rx += ((c.rx || {}).outside || 0) + ((c.rx || {}).inside || 0);
    tx += ((c.tx || {}).outside || 0) + ((c.tx || {}).inside || 0);
  }
  return { inn, fwd, drop, rx, tx, verdicts: v, hits: s.rule_hits || {} };
}

function topSources(s) {
  const t = s.top_drop_sources;
  if (!t) return [];
  if (Array.isArray(t)) {
    return t.map((x) => Array.isArray(x) ? { ip: x[0], n: x[1] }
      : { ip: x.ip ?? x.source ?? x.addr ?? x.address ?? "?", n: x.drops ?? x.count ?? x.n ?? 0 });
  }
  return Object.entries(t).map(([ip, n]) => ({ ip, n })).sort((a, b) => b.n - a.n);
}

function renderStats(s) {
  const now = performance.now();
  const cur = sumStats(s);
  let dt = 0, base = null;
  if (prevStats && prevStats.since === s.since_unix) {
    dt = (now - prevStats.t) / 1000;
    base = prevStats.sums;
  }
  const rate = (a, b) => (base && dt > 0 ? Math.max(0, (a - b) / dt) : null);
  $("rate-in").textContent = fmtNum(rate(cur.inn, base && base.inn));
  $("rate-fwd").textContent = fmtNum(rate(cur.fwd, base && base.fwd));
  $("rate-drop").textContent = fmtNum(rate(cur.drop, base && base.drop));
  $("tot-in").textContent = fmtNum(cur.inn);
  $("tot-fwd").textContent = fmtNum(cur.fwd);
  $("tot-drop").textContent = fmtNum(cur.drop);
  const frx = base ? rate(cur.rx, base.rx) : null, ftx = base ? rate(cur.tx, base.tx) : null;
  $("rate-frames").textContent = frx === null ? "–" : `${fmtNum(frx)} / ${fmtNum(ftx)}`;

  const since = s.since_unix ? ` · window since ${fmtTime(s.since_unix)}` : "";
  $("dash-meta").textContent = `secsip ${s.version || "?"} · pid ${s.pid ?? "?"} · up ${fmtDur(s.uptime_s)} · ${s.mode || "?"} mode${since}`;
  $("conn").textContent = `secsip ${s.version || "?"} · up ${fmtDur(s.uptime_s)}`;

  // Latency: the "all" line (merged over engines), else the first.
  const lat = (s.latency || []).find((l) => l.engine === "all") || (s.latency || [])[0];
  const us = (v) => (v === undefined || v === null ? "–" : v < 1000 ? v.toFixed(1) + " µs" : (v / 1000).toFixed(2) + " ms");
  $("latency").replaceChildren(lat
    ? el("div", {}, el("div", { text: `p50   ${us(lat.p50_us)}` }), el("div", { text: `p99   ${us(lat.p99_us)}` }),
      el("div", { text: `p99.9 ${us(lat.p999_us)}` }), el("div", { class: "muted", text: `n ${fmtNum(lat.count)} · max ${us(lat.max_us)}` }))
    : "no samples");
  $("bans-active").textContent = s.bans ? fmtNum(s.bans.active) : "–";
  const r = s.reloads || {};
  $("reloads").textContent = `reloads ok ${r.ok ?? "?"}, failed ${r.failed ?? "?"}`;

  const rows = (obj, prevObj, filter) => Object.entries(obj)
    .filter(([k]) => !filter || filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([k, n]) => el("tr", {}, el("td", { class: "mono", text: k }), el("td", { class: "num", text: fmtNum(n) }),
      el("td", { class: "num", text: fmtNum(rate(n, prevObj ? (prevObj[k] || 0) : 0)) })));
  const empty = (cols, msg) => [el("tr", {}, el("td", { colspan: cols, class: "muted", text: msg }))];
  let r1 = rows(cur.verdicts, base && base.verdicts, (k) => !k.endsWith(".accept"));
  $("drops-reason").replaceChildren(...(r1.length ? r1 : empty(3, "no drops")));
  const act = Object.fromEntries(((lastRules && lastRules.rules) || []).map((x) => [x.id, x.action]));
  let r2 = rows(cur.hits, base && base.hits).map((tr) => {
    const id = tr.firstChild.textContent;
    if (act[id]) tr.firstChild.append(" ", el("span", { class: "act-" + act[id], text: act[id] }));
    return tr;
  });
  $("drops-rule").replaceChildren(...(r2.length ? r2 : empty(3, "no rule hits")));
  const tops = topSources(s).slice(0, 15).map((t) => el("tr", {}, el("td", { class: "mono", text: t.ip }), el("td", { class: "num", text: fmtNum(t.n) })));
  $("top-sources").replaceChildren(...(tops.length ? tops : empty(2, "none")));

  prevStats = { t: now, since: s.since_unix, sums: cur };
}

async function pollStats() {
  try { renderStats(await api("GET", "/api/stats")); } catch (e) { if (e.status) $("dash-meta").textContent = "stats: " + e.message; }
}

$("stats-reset").addEventListener("click", async () => {
  try {
    await api("POST", "/api/stats/reset");
    prevStats = null;
    notify("Counters reset.", null, "info");
    pollStats(); loadRules();
  } catch (e) { showError(e, "reset"); }
});

// ---------------------------------------------------------------------------------------------
// Running rules and datastores.

let lastHits = {};

function renderRules(data) {
  const f = $("rules-filter").value.trim().toLowerCase();
  const rules = data.rules || [];
  const body = $("rules-body");
  const shown = rules.filter((r) => !f || [r.id, r.action, r.mode, r.file, r.description].join(" ").toLowerCase().includes(f));
  body.replaceChildren(...shown.map((r) => {
    const i = rules.indexOf(r) + 1;
    const tr = el("tr", { "data-rule-id": r.id, "data-testid": "rule-row" },
      el("td", { class: "num", text: i }),
      el("td", { class: "mono", text: r.id }),
      el("td", { class: "act-" + r.action, text: r.action ?? "–" }),
      el("td", {}, el("span", { class: "badge mode-" + r.mode, text: r.mode })),
      el("td", { class: "mono", text: `${r.file ?? "?"}:${r.line ?? "?"}` }),
      el("td", { class: "num", "data-testid": "rule-hits", text: String(r.hits ?? 0) }),
      el("td", { text: r.description || "" }));
    if (lastHits[r.id] !== undefined && (r.hits ?? 0) > lastHits[r.id]) tr.classList.add("flash");
    return tr;
  }));
  lastHits = Object.fromEntries(rules.map((r) => [r.id, r.hits ?? 0]));
  const mon = rules.filter((r) => r.mode === "monitor").length;
  $("rules-meta").textContent = `${rules.length} rules (${mon} in monitor mode) · running version ${data.version ?? "?"}`;
}

async function loadRules() {
  try { lastRules = await api("GET", "/api/rules"); renderRules(lastRules); } catch (e) { $("rules-meta").textContent = "rules: " + e.message; }
}
$("rules-filter").addEventListener("input", () => lastRules && renderRules(lastRules));

// Pending commit-confirmed: deadline kept locally so the countdown moves every second.
let pendingDeadline = null; // performance.now() ms
let pendingEnded = false;    // this page confirmed or rolled back: the end is no timeout

function renderDatastores(d) {
  $("ds-body").replaceChildren(...(d.datastores || []).map((s) => el("tr", { "data-ds": s.name },
    el("td", { text: s.name }), el("td", { class: "mono", text: s.version }),
    el("td", { class: "num", text: s.files }), el("td", { class: "num", text: fmtNum(s.bytes) }),
    el("td", {}, el("span", { class: "badge " + (s.valid ? "ok" : "bad"), text: s.valid ? "valid" : "invalid" })),
    el("td", { class: "num", text: s.rules ?? "–" }), el("td", { text: fmtTime(s.modified_unix) }))));
  const p = d.pending_confirm;
  // A pending commit that ended without Confirm or Rollback from this page timed out.
  if (!p && pendingDeadline !== null && !pendingEnded) {
    notify("The commit was not confirmed in time: running went back to the previous rules.");
    loadRules();
  }
  if (!p) pendingEnded = false;
  pendingDeadline = p ? performance.now() + p.remaining_s * 1000 : null;
  tickPending();
  $("rollback-btn").disabled = d.previous_running === false;
}

function tickPending() {
  const bar = $("pending");
  if (pendingDeadline === null) { bar.hidden = true; return; }
  const left = Math.max(0, Math.ceil((pendingDeadline - performance.now()) / 1000));
  $("pending-left").textContent = String(left);
  bar.hidden = false;
}
setInterval(tickPending, 250);

async function loadDatastores() {
  try { renderDatastores(await api("GET", "/api/datastores")); } catch (_) { /* shown by other polls */ }
}

async function confirmCommit() {
  try {
    const r = await api("POST", "/api/confirm");
    pendingDeadline = null; pendingEnded = true; tickPending();
    notify(`Commit confirmed: running stays at version ${r.version ?? "?"}.`, null, "info");
  } catch (e) { showError(e, "confirm"); }
  loadDatastores();
}

async function rollback() {
  if (!window.confirm("Put running back to the rules before its last change?")) return;
  try {
    const r = await api("POST", "/api/rollback");
    pendingDeadline = null; pendingEnded = true; tickPending();
    notify(`Rolled back: running is version ${r.version ?? "?"} with ${r.rules ?? "?"} rules.`, null, "info");
  } catch (e) { showError(e, "rollback"); }
  loadDatastores(); loadRules();
}

$("confirm-btn").addEventListener("click", confirmCommit);
$("pending-rollback-btn").addEventListener("click", rollback);
$("rollback-btn").addEventListener("click", rollback);

// ---------------------------------------------------------------------------------------------
// Candidate editor.

const cand = {
  loaded: false,
  version: null,
  files: {},   // path -> {text, saved (server text or null when new), errors: []}
  cur: null,
  valid: null,
  seq: 0,      // validation requests; only the newest answer is shown
  timer: null,
};

const dirty = (f) => f.saved === null || f.text !== f.saved;
const dirtyPaths = () => Object.keys(cand.files).filter((p) => dirty(cand.files[p]));

async function loadCandidate(keepCur) {
  try {
    const d = await api("GET", "/api/datastores/candidate");
    cand.version = d.version;
    cand.files = {};
    for (const [p, t] of Object.entries(d.files || {})) cand.files[p] = { text: t, saved: t };
    cand.loaded = true;
    const paths = Object.keys(cand.files).sort();
    const pick = keepCur && cand.files[cand.cur] ? cand.cur : paths.find((p) => p.endsWith(".toml")) || paths[0] || null;
    openFile(pick);
    validateNow();
  } catch (e) { showError(e, "loading the candidate"); }
}

function renderFiles() {
  const paths = Object.keys(cand.files).sort();
  const errFiles = new Set((cand.errors || []).map((e) => e.file));
  $("file-list").replaceChildren(...paths.map((p) => {
    const f = cand.files[p];
    const cls = [dirty(f) ? "dirty" : "", errFiles.has(p) ? "invalid" : "", f.saved === null ? "new" : ""].join(" ").trim();
    return el("li", {}, el("button", {
      type: "button", class: cls || null, "data-path": p, "data-testid": "file-item",
      "aria-current": p === cand.cur ? "true" : null,
      title: dirty(f) ? "unsaved changes" : null,
      onclick: () => openFile(p),
    }, p));
  }));
  $("cand-meta").textContent = `version ${cand.version ?? "?"} · ${paths.length} files` +
    (dirtyPaths().length ? ` · ${dirtyPaths().length} unsaved` : "");
}

function openFile(p) {
  cand.cur = p;
  const ta = $("text");
  ta.value = p ? cand.files[p].text : "";
  ta.disabled = !p;
  $("cur-file").textContent = p || "(no file)";
  ta.scrollTop = 0;
  renderFiles();
  renderMarks();
}

// Gutter line numbers and error bands, kept in step with the textarea's scrolling.
function renderMarks() {
  const ta = $("text");
  const lines = ta.value.split("\n").length;
  const errs = (cand.errors || []).filter((e) => e.file === cand.cur && e.line);
  const byLine = new Map();
  for (const e of errs) byLine.set(e.line, (byLine.get(e.line) ? byLine.get(e.line) + "\n" : "") + errorLine(e));
  const g = $("gutter");
  const frag = document.createDocumentFragment();
  for (let i = 1; i <= Math.max(lines, 1); i++) {
    const d = document.createElement("div");
    d.textContent = i;
    d.dataset.line = i;
    if (byLine.has(i)) { d.className = "err"; d.title = byLine.get(i); }
    frag.append(d);
  }
  // An error past the end (e.g. at EOF) still shows.
  for (const l of byLine.keys()) if (l > lines) { const d = el("div", { class: "err", "data-line": l, title: byLine.get(l), text: l }); frag.append(d); }
  g.replaceChildren(frag);
  const lh = lineHeight();
  $("marks").replaceChildren(...[...byLine.keys()].map((l) => el("div", { "data-line": l, style: `top:${4 + (l - 1) * lh}px` })));
  syncScroll();
}

let lhCache = 0;
function lineHeight() {
  if (!lhCache) lhCache = parseFloat(getComputedStyle($("text")).lineHeight) || 18;
  return lhCache;
}

function syncScroll() {
  const ta = $("text");
  $("gutter").scrollTop = ta.scrollTop;
  $("marks").style.transform = `translate(${-ta.scrollLeft}px, ${-ta.scrollTop}px)`;
}

function renderErrors() {
  const errs = cand.errors || [];
  $("errors").replaceChildren(...errs.map((e) => el("li", { "data-testid": "error", "data-file": e.file, "data-line": e.line },
    el("button", { type: "button", class: "link", onclick: () => gotoError(e), title: "go to the error" }, errorLine(e)))));
  const vs = $("valid-state");
  if (cand.valid === null) { vs.className = "badge busy"; vs.textContent = "checking…"; }
  else if (cand.valid) { vs.className = "badge ok"; vs.textContent = `valid${cand.rules !== null && cand.rules !== undefined ? ` · ${cand.rules} rules` : ""}`; }
  else { vs.className = "badge bad"; vs.textContent = `invalid · ${errs.length} error${errs.length === 1 ? "" : "s"}`; }
  vs.dataset.valid = cand.valid === null ? "pending" : String(cand.valid);
  renderFiles();
  renderMarks();
}

function gotoError(e) {
  if (e.file !== cand.cur && cand.files[e.file]) openFile(e.file);
  const ta = $("text");
  const lines = ta.value.split("\n");
  let pos = 0;
  for (let i = 0; i < Math.min((e.line || 1) - 1, lines.length); i++) pos += lines[i].length + 1;
  pos += Math.max(0, (e.col || 1) - 1);
  ta.focus();
  ta.setSelectionRange(pos, pos);
  ta.scrollTop = Math.max(0, ((e.line || 1) - 4) * lineHeight());
  syncScroll();
}

// Validate as you type: the candidate with every unsaved file replaced by its text.
function scheduleValidate() {
  clearTimeout(cand.timer);
  cand.valid = null;
  $("valid-state").className = "badge busy";
  $("valid-state").textContent = "checking…";
  $("valid-state").dataset.valid = "pending";
  cand.timer = setTimeout(validateNow, VALIDATE_MS);
}

async function validateNow() {
  clearTimeout(cand.timer);
  const seq = ++cand.seq;
  const files = {};
  for (const p of dirtyPaths()) files[p] = cand.files[p].text;
  try {
    const r = await api("POST", "/api/datastores/candidate/validate", { files });
    if (seq !== cand.seq) return;
    cand.valid = !!r.valid;
    cand.rules = r.rules;
    cand.errors = r.errors || [];
  } catch (e) {
    if (seq !== cand.seq) return;
    cand.valid = false;
    cand.errors = e.errors.length ? e.errors : [{ file: cand.cur, line: null, col: null, message: e.message }];
  }
  renderErrors();
}

$("text").addEventListener("input", () => {
  if (!cand.cur) return;
  cand.files[cand.cur].text = $("text").value;
  renderMarks();
  renderFiles();
  scheduleValidate();
});
$("text").addEventListener("scroll", syncScroll);

async function saveFile() {
  const p = cand.cur;
  if (!p) return;
  const f = cand.files[p];
  const res = $("commit-result");
  try {
    const r = await api("PUT", `/api/datastores/candidate/files/${enc(p)}`, { text: f.text, version: cand.version });
    f.saved = f.text;
    if (r && r.version) cand.version = r.version;
    res.className = "result ok";
    res.textContent = `Saved ${p} (candidate version ${cand.version}).` + (r && r.valid === false ? " The candidate does not compile yet." : "");
    res.dataset.state = "saved";
    renderFiles();
    validateNow();
  } catch (e) {
    if (e.status === 409) conflict(e);
    else showError(e, "saving " + p);
  }
}

function conflict(e) {
  const res = $("commit-result");
  res.className = "result bad";
  res.dataset.state = "conflict";
  res.replaceChildren(`Someone else changed the candidate since you loaded it (${e.message}). Your edit was not saved. `,
    el("button", { type: "button", onclick: () => { res.textContent = ""; loadCandidate(true); } }, "Reload the candidate (drops your unsaved edits)"));
}

$("save-btn").addEventListener("click", saveFile);
$("revert-btn").addEventListener("click", () => {
  const f = cand.files[cand.cur];
  if (!f) return;
  if (f.saved === null) { delete cand.files[cand.cur]; openFile(Object.keys(cand.files).sort()[0] || null); }
  else { f.text = f.saved; openFile(cand.cur); }
  validateNow();
});
$("cand-reload").addEventListener("click", () => {
  if (dirtyPaths().length && !window.confirm("Drop your unsaved changes and reload the candidate?")) return;
  loadCandidate(true);
});
$("cand-from-running").addEventListener("click", async () => {
  if (!window.confirm("Replace the whole candidate with the running rules?")) return;
  try { await api("POST", "/api/datastores/copy", { from: "running", to: "candidate" }); await loadCandidate(true); notify("Candidate reset to running.", null, "info"); }
  catch (e) { showError(e, "reset candidate"); }
});

$("new-file-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const p = $("new-file-path").value.trim();
  if (!/^([A-Za-z0-9._-]+\.toml|lists\/[A-Za-z0-9._-]+)$/.test(p)) {
    notify("A file is NAME.toml at the top level or lists/NAME (letters, digits, '.', '_', '-').");
    return;
  }
  if (cand.files[p]) { openFile(p); return; }
  cand.files[p] = { text: "", saved: null };
  $("new-file-path").value = "";
  openFile(p);
  $("text").focus();
});

$("delete-btn").addEventListener("click", async () => {
  const p = cand.cur;
  if (!p) return;
  if (!window.confirm(`Delete ${p} from the candidate?`)) return;
  if (cand.files[p].saved !== null) {
    try {
      const r = await api("DELETE", `/api/datastores/candidate/files/${enc(p)}`, { version: cand.version });
      if (r && r.version) cand.version = r.version;
    } catch (e) {
      if (e.status === 409) conflict(e); else showError(e, "deleting " + p);
      return;
    }
  }
  delete cand.files[p];
  openFile(Object.keys(cand.files).sort()[0] || null);
  validateNow();
});

// Diff candidate vs running.
function renderDiff(d) {
  const box = $("diff");
  box.hidden = false;
  const files = d.files || [];
  if (!files.length) { box.replaceChildren(el("p", { class: "muted", text: " The candidate is the same as running." })); return; }
  box.replaceChildren(...files.map((f) => el("div", { "data-path": f.path },
    el("h4", { text: `${f.path} (${f.status})` }),
    el("pre", {}, ...String(f.diff || "").split("\n").map((l) => el("span", {
      class: l.startsWith("+++") || l.startsWith("---") ? "hunk" : l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : l.startsWith("@@") ? "hunk" : null,
      text: l || " ",
    }))))));
}

$("diff-btn").addEventListener("click", async () => {
  const box = $("diff");
  if (!box.hidden && box.dataset.shown === "1") { box.hidden = true; box.dataset.shown = ""; return; }
  try {
    renderDiff(await api("GET", "/api/datastores/diff?from=running&to=candidate"));
    box.dataset.shown = "1";
    if (dirtyPaths().length) notify("The diff is of the saved candidate; you have unsaved files.", null, "info");
  } catch (e) { showError(e, "diff"); }
});

// Commit, commit-confirmed, startup.
async function commit(confirmS) {
  const res = $("commit-result");
  const unsaved = dirtyPaths();
  if (unsaved.length) {
    res.className = "result bad";
    res.dataset.state = "unsaved";
    res.textContent = `Save first: ${unsaved.join(", ")} ${unsaved.length === 1 ? "has" : "have"} unsaved changes (a commit takes the saved candidate).`;
    return;
  }
  const body = { from: "candidate", to: "running" };
  if (confirmS) body.confirm_s = confirmS;
  res.className = "result";
  res.textContent = "committing…";
  res.dataset.state = "busy";
  try {
    const r = await api("POST", "/api/datastores/copy", body);
    res.className = "result ok";
    res.dataset.state = "committed";
    res.textContent = `Committed: running is version ${r.version ?? "?"} with ${r.rules ?? "?"} rules` +
      (confirmS ? `; confirm within ${confirmS} s or it rolls back.` : ".");
    $("diff").hidden = true;
  } catch (e) {
    res.className = "result bad";
    res.dataset.state = "failed";
    res.textContent = "Commit refused: " + e.message;
    if (e.errors.length) { cand.errors = e.errors; cand.valid = false; renderErrors(); }
    showError(e, "commit");
  }
  loadDatastores(); loadRules(); pollStats();
}

$("commit-btn").addEventListener("click", () => commit(null));
$("commit-confirmed-btn").addEventListener("click", () => {
  const s = Number($("confirm-s").value);
  if (!Number.isInteger(s) || s < 1 || s > 3600) { notify("confirm within: 1 to 3600 seconds"); $("confirm-s").focus(); return; }
  commit(s);
});
$("startup-btn").addEventListener("click", async () => {
  if (pendingDeadline !== null && !window.confirm("A commit is still waiting for confirmation. Save running as startup anyway?")) return;
  try {
    const r = await api("POST", "/api/datastores/copy", { from: "running", to: "startup" });
    notify(`Running saved as startup (version ${r.version ?? "?"}); the previous files are kept in the rules directory's .prev.`, null, "info");
  } catch (e) { showError(e, "save as startup"); }
  loadDatastores();
});

// ---------------------------------------------------------------------------------------------
// Lists.

let curList = null;

async function loadLists() {
  try {
    const d = await api("GET", "/api/lists");
    $("lists-body").replaceChildren(...(d.lists || []).map((l) => el("tr", { class: l.id === curList ? "sel" : null, "data-list": l.id },
      el("td", {}, el("button", { type: "button", class: "link", "data-testid": "list-item", onclick: () => openList(l.id) }, l.id)),
      el("td", { text: l.kind }), el("td", { class: "num", text: l.rules_entries }), el("td", { class: "num", text: l.api_entries }))));
    if (!(d.lists || []).length) $("lists-body").replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "the running rules declare no lists" })));
  } catch (e) { showError(e, "lists"); }
}

async function openList(id) {
  curList = id;
  try {
    const d = await api("GET", `/api/lists/${encodeURIComponent(id)}`);
    $("list-title").textContent = `${d.id} (${d.kind})`;
    $("entry-form").hidden = false;
    $("entries-body").replaceChildren(...(d.entries || []).map((e) => el("tr", { "data-value": e.value },
      el("td", { class: "mono", text: e.value }), el("td", { text: e.source }), el("td", { text: e.reason || "" }),
      el("td", { text: e.expires_unix ? `${fmtTime(e.expires_unix)} (in ${fmtDur(e.expires_unix - Date.now() / 1000)})` : "never" }),
      el("td", {}, e.source === "api"
        ? el("button", { type: "button", class: "small danger", "aria-label": `remove ${e.value}`, onclick: () => removeEntry(id, e.value) }, "Remove")
        : el("span", { class: "muted", text: "in rule file" })))));
    if (!(d.entries || []).length) $("entries-body").replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "empty" })));
    loadLists();
  } catch (e) { showError(e, "list " + id); }
}

async function removeEntry(id, value) {
  try {
    await api("DELETE", `/api/lists/${encodeURIComponent(id)}/entries?value=${encodeURIComponent(value)}`);
    notify(`Removed ${value} from ${id}.`, null, "info");
  } catch (e) { showError(e, "remove"); }
  openList(id);
}

$("entry-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!curList) return;
  const body = { value: $("entry-value").value.trim() };
  const ttl = parseTtl($("entry-ttl").value);
  if (Number.isNaN(ttl)) { notify("TTL: seconds, or a number with s, m, h or d (e.g. 1h)"); return; }
  if (ttl !== null) body.ttl_s = ttl;
  if ($("entry-reason").value.trim()) body.reason = $("entry-reason").value.trim();
  try {
    await api("POST", `/api/lists/${encodeURIComponent(curList)}/entries`, body);
    $("entry-value").value = "";
    notify(`Added ${body.value} to ${curList}.`, null, "info");
    $("entry-value").focus();
  } catch (e) { showError(e, "add entry"); }
  openList(curList);
});

// ---------------------------------------------------------------------------------------------
// Bans.

async function loadBans() {
  try {
    const d = await api("GET", "/api/bans");
    const bans = d.bans || [];
    $("bans-body").replaceChildren(...(bans.length ? bans.map((b) => el("tr", { "data-ip": b.ip },
      el("td", { class: "mono", text: b.ip }), el("td", { class: "num", text: fmtDur(b.remaining_s) }),
      el("td", { class: "mono", text: b.rule }), el("td", { text: b.reason || "" }),
      el("td", {}, el("button", { type: "button", class: "small danger", "aria-label": `unban ${b.ip}`, onclick: () => unban(b.ip) }, "Unban"))))
      : [el("tr", {}, el("td", { colspan: 5, class: "muted", text: "no bans" }))]));
  } catch (e) { if (e.status) showError(e, "bans"); }
}

async function unban(ip) {
  try { await api("DELETE", `/api/bans/${encodeURIComponent(ip)}`); notify(`Unbanned ${ip}.`, null, "info"); }
  catch (e) { showError(e, "unban"); }
  loadBans();
}

$("ban-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const ttl = parseTtl($("ban-ttl").value);
  if (!ttl) { notify("TTL: seconds, or a number with s, m, h or d (e.g. 1h)"); $("ban-ttl").focus(); return; }
  const body = { ip: $("ban-ip").value.trim(), ttl_s: ttl };
  if ($("ban-reason").value.trim()) body.reason = $("ban-reason").value.trim();
  try {
    await api("POST", "/api/bans", body);
    notify(`Banned ${body.ip} for ${fmtDur(ttl)}.`, null, "info");
    $("ban-ip").value = "";
  } catch (e) { showError(e, "ban"); }
  loadBans();
});

// ---------------------------------------------------------------------------------------------
// Keyboard shortcuts, token button, polling.

document.addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && ev.key.toLowerCase() === "s" && current === "editor") {
    ev.preventDefault();
    saveFile();
  } else if (ev.altKey && !ev.ctrlKey && /^[1-5]$/.test(ev.key)) {
    ev.preventDefault();
    location.hash = "#" + PANELS[Number(ev.key) - 1];
  } else if (ev.key === "Escape" && !$("notice").hidden && !$("token-dialog").open) {
    $("notice").hidden = true;
  }
});
$("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
$("token-btn").addEventListener("click", async () => { if (await askToken()) refreshAll(); });
window.addEventListener("beforeunload", (ev) => { if (dirtyPaths().length) { ev.preventDefault(); ev.returnValue = ""; } });

function refreshAll() {
  pollStats(); loadRules(); loadDatastores();
  if (current === "bans") loadBans();
}

async function loop() {
  const t0 = performance.now();
  const jobs = [pollStats(), loadDatastores()];
  if (current === "rules" || current === "dashboard") jobs.push(loadRules());
  if (current === "bans") jobs.push(loadBans());
  await Promise.allSettled(jobs);
  setTimeout(loop, Math.max(200, POLL_MS - (performance.now() - t0)));
}

show(location.hash.slice(1));
loop();

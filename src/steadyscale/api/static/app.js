// steadyscale's live page: reads the HTTP API (/api/v1/status, /nodes, /history), follows
// /api/v1/events (server-sent events) and falls back to polling when the stream is
// unavailable. No framework and nothing fetched from elsewhere. Every value the server
// sends is put in the page as text, never as markup.
"use strict";

const TOKEN_KEY = "steadyscale.readToken";
const POLL_MS = 2000; // polling fallback, and how soon a broken stream is retried x5
const LIVE_REFRESH_MS = 10000;
const MIN_REFRESH_MS = 1000; // with the stream up, the charts still move on their own
const NODES_SHOWN = 60;
// Finished nodes older than this are not fetched: a ledger keeps every node it ever had.
const FINISHED_WITHIN_S = 3600;
const EVENTS_KEPT = 100;
const ORDER = ["queued", "requested", "launched", "pending", "running", "ready", "draining",
  "terminating", "terminated", "launch_failed", "cancelled", "interrupted", "lost"];
const FINISHED = new Set(["terminated", "launch_failed", "cancelled"]);
const VISIBLE = new Set(["pending", "running", "ready", "draining", "terminating"]);

const page = { status: null, nodes: [], history: null, samples: [], mode: "starting",
  seeded: false };
let pollTimer = null, liveTimer = null, refreshTimer = null, streamAbort = null;
let lastRefresh = 0;

const $ = (id) => document.getElementById(id);
const colorOf = (status) => `var(--${status}, #888)`;

class AuthNeeded extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { ...authHeaders(), Accept: "application/json" },
    cache: "no-store" });
  if (r.status === 401 || r.status === 403) throw new AuthNeeded(path);
  if (r.status === 404) return null;
  if (!r.ok) {
    let detail = "";
    try { detail = (await r.json()).detail || ""; } catch (e) { /* not JSON */ }
    throw new Error(`${path}: HTTP ${r.status} ${detail}`.trim());
  }
  return r.json();
}

// ---- reading the API -------------------------------------------------------------------

function asList(body, ...keys) {
  if (Array.isArray(body)) return body;
  for (const k of keys) if (body && Array.isArray(body[k])) return body[k];
  return [];
}

async function refresh() {
  lastRefresh = Date.now();
  try {
    const [status, nodes, history] = await Promise.all([
      getJSON("api/v1/status"),
      getJSON(`api/v1/nodes?finished=true&finished_within=${FINISHED_WITHIN_S}`),
      getJSON("api/v1/history").catch(() => null),
    ]);
    if (status === null) throw new Error("api/v1/status: not served here");
    page.status = status;
    page.nodes = asList(nodes, "nodes", "items");
    page.history = history;
    showProblem("");
    render();
  } catch (err) {
    if (err instanceof AuthNeeded) { askForToken(); return; }
    showProblem(`Cannot read the API: ${err.message}`);
  }
}

// A burst of events (a scale-up moves many nodes in one tick) makes one refresh, and a
// busy cluster at most one a second.
function scheduleRefresh() {
  if (refreshTimer !== null) return;
  const wait = Math.max(250, lastRefresh + MIN_REFRESH_MS - Date.now());
  refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, wait);
}

// ---- live updates: the event stream, else polling ------------------------------------

function setMode(mode, text) {
  page.mode = mode;
  const el = $("connection");
  el.dataset.state = mode;
  el.textContent = text;
}

function startPolling() {
  if (pollTimer === null) pollTimer = setInterval(refresh, POLL_MS);
}
function stopTimers() {
  for (const t of [pollTimer, liveTimer]) if (t !== null) clearInterval(t);
  pollTimer = liveTimer = null;
  if (streamAbort) streamAbort.abort();
  streamAbort = null;
}

// fetch() rather than EventSource, so the read token can go in a header.
async function follow() {
  streamAbort = new AbortController();
  const signal = streamAbort.signal;
  try {
    const r = await fetch("api/v1/events", { signal, cache: "no-store",
      headers: { ...authHeaders(), Accept: "text/event-stream" } });
    if (r.status === 401 || r.status === 403) { askForToken(); return; }
    if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
    setMode("live", "Live (event stream)");
    if (pollTimer !== null) { clearInterval(pollTimer); pollTimer = null; }
    if (liveTimer === null) liveTimer = setInterval(refresh, LIVE_REFRESH_MS);
    await readStream(r.body.getReader());
    throw new Error("stream ended");
  } catch (err) {
    if (signal.aborted) return;
    setMode("polling", `Polling every ${POLL_MS / 1000} s (event stream unavailable)`);
    startPolling();
    setTimeout(() => { if (!signal.aborted) follow(); }, POLL_MS * 5);
  }
}

async function readStream(reader) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      onMessage(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
}

function onMessage(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // a keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return;
  let body;
  try { body = JSON.parse(data.join("\n")); } catch (e) { body = { message: data.join("\n") }; }
  addEvent(kind, body);
  scheduleRefresh();
}

// ---- the read token ------------------------------------------------------------------

function askForToken() {
  stopTimers();
  setMode("token", "Needs a read token");
  showProblem(token() ? "The server refused this token: paste a valid read token above."
    : "This server asks for a read token: paste one above.");
  $("token").focus();
}

function start() {
  stopTimers();
  setMode("starting", "Connecting…");
  refresh().then(() => { if (page.mode !== "token") follow(); });
}

function wireTokenForm() {
  $("token-note").textContent = token() ? "a token is set for this tab" : "";
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    $("token-note").textContent = value ? "a token is set for this tab" : "";
    start();
  });
  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token-note").textContent = "token forgotten";
    start();
  });
}

function showProblem(text) {
  const el = $("problem");
  el.textContent = text;
  el.hidden = text === "";
}

document.addEventListener("DOMContentLoaded", () => { wireTokenForm(); start(); });

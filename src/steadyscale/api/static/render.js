// Drawing the page from what app.js read: the summary, the charts, the nodes' lifecycles
// and the recent decisions. Everything from the server goes in as text.
"use strict";

const HISTORY_MINUTES = 30;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function seconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}

function clockTime(t) { return new Date(t * 1000).toLocaleTimeString(); }

function render() {
  const s = page.status;
  $("cluster-name").textContent = s.cluster_name || "";
  document.title = `steadyscale · ${s.cluster_name || ""}`;
  renderSummary(s);
  sample(s);
  const now = latest(s.generated_at);
  renderCharts(now);
  renderNodes(now);
  if (!page.seeded) seedEvents();
  const at = $("updated");
  at.textContent = clockTime(s.generated_at);
  at.setAttribute("datetime", new Date(s.generated_at * 1000).toISOString());
}

// The server's clock, as its latest word says: the autoscaler's clock may run ahead of
// the wall's (an emulator's time scale), so the newest move can be later than the status.
function latest(generatedAt) {
  let now = generatedAt || 0;
  for (const n of page.nodes) for (const m of n.history || []) if (m.at > now) now = m.at;
  for (const p of historyPoints()) if (p.at > now) now = p.at;
  return now;
}

function renderSummary(s) {
  const totals = s.totals || {};
  const live = Object.values(totals).reduce((a, b) => a + b, 0);
  const progress = s.progress || {};
  $("demand-total").textContent = s.pending_demand ?? "–";
  $("demand-unmet").textContent = progress.unmet ?? "–";
  $("demand-infeasible").textContent = progress.infeasible ?? "–";
  $("not-visible").textContent = s.not_visible ?? "–";
  $("nodes-live").textContent = live;
  $("nodes-ready").textContent = totals.ready ?? 0;
  // What the live nodes cost, at the prices their pools had at launch (USD).
  $("cost-per-hour").textContent =
    s.cost_per_hour === undefined ? "–" : `$${s.cost_per_hour.toFixed(2)}`;
  renderMarks(s);
  const chips = $("status-counts");
  chips.replaceChildren();
  for (const status of s.statuses || Object.keys(totals)) {
    const li = el("li", { "data-status": status, "data-count": totals[status] || 0 });
    li.appendChild(el("span", { class: "dot", style: `background:${colorOf(status)}`,
      "aria-hidden": "true" }));
    li.appendChild(document.createTextNode(`${status}: ${totals[status] || 0}`));
    chips.appendChild(li);
  }
}

// What EC2's events said of live nodes (status `events`, soonest deadline first): how many
// of each kind, and the soonest deadline in the card's title.
function renderMarks(s) {
  const marks = s.events || [];
  const card = $("ec2-events");
  const kinds = {};
  for (const m of marks) kinds[m.kind] = (kinds[m.kind] || 0) + 1;
  card.textContent = marks.length
    ? Object.entries(kinds).map(([kind, n]) => `${n} ${kind}`).join(", ") : "none";
  const soonest = marks.find((m) => m.deadline !== null && m.deadline !== undefined);
  card.title = soonest
    ? `${soonest.instance_id || soonest.node_id} (${soonest.kind}): EC2 acts in `
      + `${Math.max(0, Math.round(soonest.deadline - s.generated_at))} s`
    : "";
}

// ---- over time -----------------------------------------------------------------------

// /api/v1/history's points ({minute, counts, demand, unmet, ready}, per minute), then what
// this page saw of the status since the last of them, each with an `at` and `held`: the
// bundles ready nodes hold (null where the status cannot tell).
function historyPoints() {
  const points = asList(page.history, "points")
    .filter((p) => p && (p.minute ?? p.at) !== undefined)
    .map((p) => ({ ...p, at: p.minute ?? p.at, held: Math.max(p.demand - (p.unmet ?? 0), 0) }));
  const after = points.length ? points[points.length - 1].at : -Infinity;
  return points.concat(page.samples.filter((p) => p.at > after));
}

function sample(s) {
  const at = s.generated_at;
  const last = page.samples[page.samples.length - 1];
  if (!s.progress || (last && last.at >= at)) return;
  const ready = (s.totals || {}).ready || 0;
  const held = s.progress.capacity_met ? s.pending_demand : ready === 0 ? 0 : null;
  page.samples.push({ at, counts: s.totals || {}, demand: s.pending_demand, held });
  if (page.samples.length > 2000) page.samples.shift();
}

// Nodes by status over time, rebuilt from each node's own history when the server has no
// per-minute history yet.
function statusSeriesFromNodes(now) {
  const moves = [];
  for (const n of page.nodes) {
    const h = n.history || [];
    h.forEach((m, i) => moves.push({ at: m.at, to: m.status, from: i ? h[i - 1].status : null }));
  }
  moves.sort((a, b) => a.at - b.at);
  const current = {};
  const times = [], counts = {};
  for (const k of ORDER) counts[k] = [];
  const push = (t) => {
    times.push(t);
    for (const k of ORDER) counts[k].push(current[k] || 0);
  };
  for (const m of moves) {
    if (m.from) current[m.from] = (current[m.from] || 0) - 1;
    current[m.to] = (current[m.to] || 0) + 1;
    if (times.length && times[times.length - 1] === m.at) {
      times.pop();
      for (const k of ORDER) counts[k].pop();
    }
    push(m.at);
  }
  if (times.length) push(now);
  return { times, counts };
}

function renderCharts(now) {
  const live = ORDER.filter((k) => !FINISHED.has(k));
  const points = historyPoints();
  let series;
  // Each node's own history is exact; the per-minute one takes over once it spans a while.
  if (asList(page.history, "points").length >= HISTORY_MINUTES) {
    const counts = {};
    for (const k of live) counts[k] = points.map((p) => (p.counts || {})[k] || 0);
    series = { times: points.map((p) => p.at), counts };
  } else {
    series = statusSeriesFromNodes(now);
  }
  $("status-chart").replaceChildren(
    SteadyCharts.stackedChart(series.times, live, series.counts, colorOf));
  const last = series.times.length - 1;
  const words = live.filter((k) => last >= 0 && series.counts[k][last] > 0)
    .map((k) => `${k} ${series.counts[k][last]}`);
  $("status-chart").setAttribute("aria-label", last < 1 ? "Nodes by status: no data yet"
    : `Nodes by status from ${clockTime(series.times[0])}; now ${words.join(", ") || "none"}`);
  const legend = $("status-legend");
  legend.replaceChildren();
  for (const k of live.filter((k) => series.counts[k] && series.counts[k].some((v) => v > 0))) {
    const li = el("li");
    li.appendChild(el("span", { class: "swatch", style: `background:${colorOf(k)}` }));
    li.appendChild(document.createTextNode(k));
    legend.appendChild(li);
  }
  // Ready capacity in the demand's own unit: the bundles ready nodes hold.
  const held = points.map((p) => p.held ?? null);
  $("capacity-chart").replaceChildren(SteadyCharts.lineChart(points.map((p) => p.at), [
    { name: "on ready nodes", color: "var(--capacity)", values: held },
    { name: "demand", color: "var(--demand)", values: points.map((p) => p.demand ?? null),
      dashed: true },
  ]));
  const end = points[points.length - 1];
  $("capacity-chart").setAttribute("aria-label", !end ? "Demand against ready capacity: "
    + "no data yet" : `Demand against ready capacity: now ${end.demand} bundles demanded, `
    + `${end.held ?? "unknown"} on ready nodes`);
}

// ---- each node's lifecycle -------------------------------------------------------------

function firstAt(history, statuses) {
  const m = history.find((h) => statuses.has(h.status));
  return m ? m.at : null;
}

function delays(history) {
  const launched = firstAt(history, new Set(["launched"]));
  const visible = firstAt(history, VISIBLE);
  const running = firstAt(history, new Set(["running", "ready", "draining"]));
  const ready = firstAt(history, new Set(["ready"]));
  const gap = (a, b) => (a !== null && b !== null && b >= a ? b - a : null);
  return [gap(launched, visible), gap(visible, running), gap(running, ready)];
}

function timeline(history, t0, t1, now) {
  const bar = el("div", { class: "timeline", role: "img" });
  const span = Math.max(t1 - t0, 1e-9);
  const words = [];
  const first = history.length ? history[0].at : t0;
  if (first > t0) bar.appendChild(el("span", { style: `flex:${(first - t0) / span}; opacity:0` }));
  history.forEach((m, i) => {
    const end = i + 1 < history.length ? history[i + 1].at : (FINISHED.has(m.status) ? m.at : now);
    const part = el("span", { "data-status": m.status,
      style: `flex:${Math.max(end - m.at, 0) / span}; background:${colorOf(m.status)}` });
    const words1 = `${m.status} ${seconds(end - m.at)}${m.reason ? ` (${m.reason})` : ""}`;
    part.title = words1;
    words.push(words1);
    bar.appendChild(part);
  });
  bar.setAttribute("aria-label", words.join(", then ") || "no history");
  return bar;
}

function renderNodes(now) {
  const nodes = page.nodes.slice().sort((a, b) => startOf(b) - startOf(a)).slice(0, NODES_SHOWN);
  $("nodes-shown").textContent = page.nodes.length > nodes.length
    ? `(newest ${nodes.length} of ${page.nodes.length})` : `(${page.nodes.length})`;
  const t0 = Math.min(now, ...nodes.map(startOf));
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  for (const n of nodes) {
    const history = (n.history || []).slice().sort((a, b) => a.at - b.at);
    const tr = el("tr", { "data-node-id": n.node_id, "data-status": n.status });
    tr.appendChild(el("th", { scope: "row" }, n.node_id));
    tr.appendChild(el("td", {}, n.node_type ?? "–"));
    tr.appendChild(el("td", {}, n.instance_id ?? "–"));
    const st = el("td", { title: n.reason || "" });
    st.appendChild(el("span", { class: "dot", style: `background:${colorOf(n.status)}`,
      "aria-hidden": "true" }));
    st.appendChild(document.createTextNode(n.status));
    tr.appendChild(st);
    for (const d of delays(history)) tr.appendChild(el("td", {}, seconds(d)));
    const cell = el("td", { class: "lifecycle" });
    cell.appendChild(timeline(history, t0, now, now));
    tr.appendChild(cell);
    body.appendChild(tr);
  }
}

function startOf(n) {
  const h = n.history || [];
  return h.length ? Math.min(...h.map((m) => m.at)) : Infinity;
}

// ---- recent decisions ------------------------------------------------------------------

function describe(kind, body) {
  const parts = [];
  const node = body.node_id || body.node || body.instance_id;
  if (node) parts.push(node);
  if (body.from_status || body.to_status) {
    parts.push(`${body.from_status || "?"} → ${body.to_status || "?"}`);
  }
  for (const k of ["message", "reason", "detail"]) if (body[k]) parts.push(String(body[k]));
  if (parts.length === 0) {
    for (const [k, v] of Object.entries(body)) {
      if (k !== "at" && (typeof v !== "object" || v === null)) parts.push(`${k}=${v}`);
    }
  }
  return parts.join(" · ");
}

function addEvent(kind, body, at) {
  const list = $("events");
  const li = el("li", { "data-kind": kind });
  const when = at ?? body.at ?? Date.now() / 1000;
  li.appendChild(el("time", { datetime: new Date(when * 1000).toISOString() }, clockTime(when)));
  li.appendChild(el("span", { class: "kind" }, kind));
  li.appendChild(document.createTextNode(describe(kind, body)));
  list.prepend(li);
  while (list.children.length > EVENTS_KEPT) list.lastChild.remove();
}

// Before the stream says anything, the latest moves in the nodes' histories tell the story.
function seedEvents() {
  page.seeded = true;
  const moves = [];
  for (const n of page.nodes) {
    const h = n.history || [];
    h.forEach((m, i) => moves.push({ at: m.at, body: { node_id: n.node_id,
      from_status: i ? h[i - 1].status : null, to_status: m.status, reason: m.reason } }));
  }
  moves.sort((a, b) => a.at - b.at);
  for (const m of moves.slice(-30)) addEvent("node", m.body, m.at);
}

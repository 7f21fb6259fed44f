// steadyscale's charts: small inline SVG drawings, no library. Each function takes plain
// series and returns an <svg> element; app.js decides what the series are.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const W = 560, H = 200, PAD = { l: 34, r: 8, t: 8, b: 22 };

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function niceMax(v) {
  if (v <= 4) return 4;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function clockLabel(t) {
  const d = new Date(t * 1000);
  return d.toTimeString().slice(0, 5);
}

// The frame: axes, a few value ticks and the first/last time.
function frame(svg, t0, t1, vmax) {
  const x = (t) => PAD.l + ((t - t0) / Math.max(t1 - t0, 1e-9)) * (W - PAD.l - PAD.r);
  const y = (v) => H - PAD.b - (v / vmax) * (H - PAD.t - PAD.b);
  for (const f of [0, 0.5, 1]) {
    const v = vmax * f;
    svg.appendChild(svgEl("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }));
    const label = svgEl("text", { x: PAD.l - 4, y: y(v) + 3, "text-anchor": "end" });
    label.textContent = String(Math.round(v * 10) / 10);
    svg.appendChild(label);
  }
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    const label = svgEl("text", { x: x(t), y: H - 6, "text-anchor": anchor });
    label.textContent = clockLabel(t);
    svg.appendChild(label);
  }
  return { x, y };
}

function emptyChart(message) {
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}` });
  const text = svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
  text.textContent = message;
  svg.appendChild(text);
  return svg;
}

// Stacked steps: times[i] with counts[status][i]; statuses in drawing order (bottom first).
function stackedChart(times, statuses, counts, colorOf) {
  if (times.length < 2) return emptyChart("waiting for data");
  const totals = times.map((_, i) => statuses.reduce((s, k) => s + (counts[k][i] || 0), 0));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}` });
  const sc = frame(svg, times[0], times[times.length - 1], niceMax(Math.max(1, ...totals)));
  const base = times.map(() => 0);
  for (const status of statuses) {
    const top = base.map((b, i) => b + (counts[status][i] || 0));
    if (top.every((v, i) => v === base[i])) continue;
    let d = "";
    for (let i = 0; i < times.length; i++) {
      const xe = sc.x(i + 1 < times.length ? times[i + 1] : times[i]);
      d += `${i === 0 ? "M" : "L"}${sc.x(times[i])},${sc.y(top[i])}L${xe},${sc.y(top[i])}`;
    }
    for (let i = times.length - 1; i >= 0; i--) {
      const xe = sc.x(i + 1 < times.length ? times[i + 1] : times[i]);
      d += `L${xe},${sc.y(base[i])}L${sc.x(times[i])},${sc.y(base[i])}`;
    }
    const path = svgEl("path", { d: d + "Z", fill: colorOf(status), "data-status": status });
    const title = svgEl("title");
    title.textContent = `${status}: up to ${Math.max(...top.map((v, i) => v - base[i]))}`;
    path.appendChild(title);
    svg.appendChild(path);
    for (let i = 0; i < base.length; i++) base[i] = top[i];
  }
  return svg;
}

// Lines: series = [{name, color, values, dashed}] sharing `times`, drawn in order.
function lineChart(times, series) {
  if (times.length < 2) return emptyChart("waiting for data");
  const all = series.flatMap((s) => s.values.filter((v) => v !== null));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}` });
  const sc = frame(svg, times[0], times[times.length - 1], niceMax(Math.max(1, ...all)));
  for (const s of series) {
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null) return;
      d += `${d === "" ? "M" : "L"}${sc.x(times[i])},${sc.y(v)}`;
    });
    const path = svgEl("path", {
      d, fill: "none", stroke: s.color, "stroke-width": 2, "data-series": s.name,
      "stroke-dasharray": s.dashed ? "6 4" : "none",
    });
    const title = svgEl("title");
    title.textContent = `${s.name}: now ${s.values[s.values.length - 1]}`;
    path.appendChild(title);
    svg.appendChild(path);
  }
  return svg;
}

window.SteadyCharts = { stackedChart, lineChart };

/* GovPulse live operations dashboard.
 *
 * Plain browser JavaScript, no build step. Loads /api/meta once (labels, provinces, tile grid,
 * thresholds), then subscribes to /api/stream (Server-Sent Events): the server pushes the view's
 * panels every `refresh_seconds` (≤ 2 s) and the data-age badge every second, computed once per
 * tick for every screen. When the stream is refused (the server's subscriber limit) or silent,
 * the page polls the JSON API at the same periods, and tries the stream again later.
 * State lives in the URL hash (#range=1h&province=76&lang=en), so a wall screen can be pointed
 * at a province view and a reload keeps it.
 * Every DOM node is built with createElement/textContent: API strings are never parsed as HTML.
 */
"use strict";

const TYPE_COLOURS = {
  service_request: "#56b4e9",
  complaint: "#e69f00",
  net_pracharat_usage: "#009e73",
  digital_center_activity: "#cc79a7",
  dataset_update: "#f0e442",
};
const STATUS_COLOURS = {
  COMPLETED: "#1f9e6a", APPROVED: "#5ec962", SUBMITTED: "#56b4e9", IN_PROGRESS: "#3d7fc4",
  REJECTED: "#d55e00", CANCELLED: "#8d6e63", UNKNOWN: "#6b7890",
};
const VIRIDIS = ["#2a3550", "#3b528b", "#21918c", "#5ec962", "#fde725"];
const TZ = "Asia/Bangkok";

const state = { lang: "th", range: "1h", province: null };
let meta = null;
let generation = 0; // bumps on every view change: late answers for an old view are dropped
let panelTimer = null;
let freshTimer = null;
let source = null; // the EventSource of the current view, if subscribed
let streamRetry = null;
let lastPanelsPush = 0; // when the stream last delivered panels / the badge (ms)
let lastFreshnessPush = 0;
const STREAM_RETRY_MS = 30000;
const charts = {};
let chartScale = 0; // the rem the charts were built with
let chartLang = null; // and the language of their legends
const last = {}; // last answers, to re-render on a language switch without refetching

// -- helpers ---------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function ui(key) {
  const entry = meta.labels.ui[key];
  return entry ? entry[state.lang] : key;
}

function label(group, code) {
  const entry = (meta.labels[group] || {})[code];
  return entry ? entry[state.lang] : code || "–";
}

function nameOf(item) {
  return state.lang === "th" ? item.name_th : item.name_en;
}

function locale() {
  return state.lang === "th" ? "th-TH" : "en-GB";
}

// -- dates and times ----------------------------------------------------------------------------
// Every date or time on the page goes through these: Bangkok time on a 24-hour clock, Thai
// dates with the Buddhist Era year (7 ธ.ค. 2569 22:00), English ones as in Britain
// (7 Dec 2026, 22:00). They take the language as an argument rather than reading the page
// state, so the browser test can call them (window.govpulseFormat) with fixed instants.
const DATE_LOCALES = { th: "th-TH-u-ca-buddhist", en: "en-GB" };
const DATE_STYLES = {
  time: { hour: "2-digit", minute: "2-digit" },
  date: { day: "numeric", month: "short", year: "numeric" },
  clock: {
    day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  },
};
const dateFormats = new Map();
const dayKey = new Intl.DateTimeFormat("en-CA", { timeZone: TZ }); // 2026-12-07: day changes

function formatDate(ms, style, lang) {
  const key = `${style}/${lang}`;
  if (!dateFormats.has(key)) {
    dateFormats.set(key, new Intl.DateTimeFormat(DATE_LOCALES[lang] || DATE_LOCALES.en, {
      timeZone: TZ, hourCycle: "h23", ...DATE_STYLES[style],
    }));
  }
  return dateFormats.get(key).format(new Date(ms));
}

const DAY = 86400; // seconds
// Tick steps (seconds) the time axis may use per range: minutes for the live ranges, hours
// for a day, whole days for a week, so each range has one kind of label.
const MINUTE_STEPS = [60, 120, 300, 600, 900, 1800, 3600];
const AXIS_STEPS = {
  "15m": MINUTE_STEPS,
  "1h": MINUTE_STEPS,
  "24h": [3600, 7200, 10800, 14400, 21600, 43200, DAY],
  "7d": [DAY, 2 * DAY, 7 * DAY],
};

// The time axis labels for ticks at `ticks` (Unix seconds):
// - 15 min, 1 hour: the time, 22:00;
// - 24 hours: the time, with the date under the first tick and wherever the day changes;
// - 7 days (ticks at Bangkok midnights): the date, 7 ธ.ค. 2569 / 7 Dec 2026.
function axisLabels(ticks, range, lang) {
  let previousDay = null;
  return ticks.map((ts) => {
    const ms = ts * 1e3;
    if (range === "7d") return formatDate(ms, "date", lang);
    const time = formatDate(ms, "time", lang);
    if (range !== "24h") return time;
    const day = dayKey.format(new Date(ms));
    const changed = day !== previousDay;
    previousDay = day;
    return changed ? `${time}\n${formatDate(ms, "date", lang)}` : time;
  });
}

window.govpulseFormat = {
  axisLabels,
  clock: (ms, lang) => formatDate(ms, "clock", lang),
  date: (ms, lang) => formatDate(ms, "date", lang),
  time: (ms, lang) => formatDate(ms, "time", lang),
};

function num(value, digits = 0) {
  if (value == null || Number.isNaN(value)) return "–";
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
}

function compact(value) {
  if (value == null) return "–";
  return new Intl.NumberFormat(locale(), { notation: "compact", maximumFractionDigits: 1 })
    .format(value);
}

function bytes(value) {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  while (value >= 1000 && i < units.length - 1) { value /= 1000; i += 1; }
  return `${num(value, 1)} ${units[i]}`;
}

function duration(seconds) {
  if (seconds == null) return "–";
  if (seconds < 90) return `${num(seconds)} ${ui("seconds_short")}`;
  if (seconds < 90 * 60) return `${num(seconds / 60, 1)} ${ui("minutes_short")}`;
  return `${num(seconds / 3600, 1)} ${ui("hours_short")}`;
}

function query(extra = {}) {
  const params = new URLSearchParams({ range: state.range, ...extra });
  if (state.province) params.set("province", state.province);
  return params.toString();
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function ramp(share) {
  // Interpolate the viridis-like ramp; share in [0, 1].
  const t = Math.max(0, Math.min(1, share)) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(t), VIRIDIS.length - 2);
  const mix = (a, b) => Math.round(a + (b - a) * (t - i));
  const rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
  const [a, b] = [rgb(VIRIDIS[i]), rgb(VIRIDIS[i + 1])];
  return `rgb(${mix(a[0], b[0])}, ${mix(a[1], b[1])}, ${mix(a[2], b[2])})`;
}

// -- state in the URL hash -------------------------------------------------------------------
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const range = params.get("range");
  if (range && meta.ranges.some((r) => r.name === range)) state.range = range;
  const province = params.get("province");
  state.province = province && meta.provinces.some((p) => p.code === province) ? province : null;
  const lang = params.get("lang") || localStorage.getItem("govpulse.lang");
  if (lang === "th" || lang === "en") state.lang = lang;
}

function writeHash() {
  const params = new URLSearchParams({ range: state.range, lang: state.lang });
  if (state.province) params.set("province", state.province);
  history.replaceState(null, "", `#${params}`);
  localStorage.setItem("govpulse.lang", state.lang);
}

function setView(changes) {
  Object.assign(state, changes);
  writeHash();
  applyLabels();
  generation += 1;
  subscribe();
  refreshPanels();
}

// -- static parts: labels, controls, map ------------------------------------------------------
function applyLabels() {
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = ui(node.dataset.i18n);
  }
  $("lang").textContent = ui("language");
  const province = meta.provinces.find((p) => p.code === state.province);
  $("view-title").textContent = province
    ? `${ui("province_view")} ${nameOf(province)}`
    : ui("national");
  document.title = `GovPulse · ${$("view-title").textContent}`;
  $("back").hidden = !province;
  for (const panel of document.querySelectorAll(".province-only")) panel.hidden = !province;
  for (const panel of document.querySelectorAll(".national-only")) panel.hidden = Boolean(province);
  for (const button of $("ranges").children) {
    button.textContent = ui(`range_${button.dataset.range}`);
    button.setAttribute("aria-pressed", String(button.dataset.range === state.range));
  }
  const picker = $("province-picker");
  picker.replaceChildren(el("option", { value: "", text: ui("pick_province") }));
  const sorted = [...meta.provinces].sort((a, b) => nameOf(a).localeCompare(nameOf(b), locale()));
  for (const p of sorted) picker.append(el("option", { value: p.code, text: nameOf(p) }));
  picker.value = state.province || "";
  const legend = $("map-legend");
  legend.replaceChildren(
    el("span", { text: ui("legend_low") }), el("span", { class: "ramp" }),
    el("span", { text: ui("legend_high") }));
  $("foot").textContent = `${meta.grid.source}`;
  tickClock(); // now, not at the next second, in the new language
  // uPlot legends hold the series labels: rebuild the charts in the new language.
  if (chartScale && chartLang !== state.lang) buildCharts();
  for (const [name, answer] of Object.entries(last)) RENDER[name](answer);
}

function buildControls() {
  for (const r of meta.ranges) {
    $("ranges").append(el("button", {
      type: "button", "data-range": r.name, onclick: () => setView({ range: r.name }),
    }));
  }
  $("province-picker").addEventListener("change", (event) => {
    setView({ province: event.target.value || null });
  });
  $("back").addEventListener("click", () => setView({ province: null }));
  $("lang").addEventListener("click", () => setView({ lang: state.lang === "th" ? "en" : "th" }));
  window.addEventListener("resize", rebuildChartsIfScaled);
  window.addEventListener("hashchange", () => {
    readHash();
    applyLabels();
    generation += 1;
    subscribe();
    refreshPanels();
  });
}

function buildMap() {
  const { columns, rows } = meta.grid;
  const svg = el("svg:svg", {
    viewBox: `0 0 ${columns} ${rows}`, role: "group", "aria-label": "provinces",
  });
  for (const p of meta.provinces) {
    const tile = el("svg:g", {
      class: "tile", "data-code": p.code, tabindex: "0", role: "button",
      transform: `translate(${p.col} ${p.row})`,
      onclick: () => setView({ province: state.province === p.code ? null : p.code }),
      onkeydown: (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          setView({ province: p.code });
        }
      },
    },
    el("svg:title"),
    el("svg:rect", { x: "0.04", y: "0.04", width: "0.92", height: "0.92", fill: VIRIDIS[0] }),
    el("svg:text", { x: "0.5", y: "0.47", text: p.abbr }),
    el("svg:text", { x: "0.5", y: "0.78", class: "count", text: "" }));
    svg.append(tile);
  }
  $("map").replaceChildren(svg);
}

// -- charts -----------------------------------------------------------------------------------
// uPlot draws on a canvas in pixels, so its fonts and line widths are derived from the page's
// rem (which the CSS scales up on wall screens); the charts are rebuilt when the rem changes.
function rem() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize);
}

function tzDate(ts) {
  return uPlot.tzDate(new Date(ts * 1e3), TZ);
}

function lineChart(target, series, heightRem) {
  const node = $(target);
  const unit = rem();
  const axis = {
    stroke: "#93a0b8",
    font: `${Math.round(0.8 * unit)}px system-ui, sans-serif`,
    grid: { stroke: "#26324a", width: 1 },
    ticks: { stroke: "#26324a" },
  };
  const height = () => Math.round(heightRem * rem());
  const opts = {
    width: node.clientWidth || 600,
    height: height(),
    tzDate,
    legend: { show: series.length > 1, live: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      {
        ...axis, size: Math.round(3.2 * unit), space: Math.round(5 * unit),
        incrs: () => AXIS_STEPS[state.range] || AXIS_STEPS["1h"],
        // uPlot's own labels are American (10:00pm, 12/7/26): ours follow the language.
        values: (u, ticks) => {
          const labels = axisLabels(ticks, state.range, state.lang);
          node.dataset.axisLabels = JSON.stringify(labels); // what the canvas shows, for tests
          return labels;
        },
      },
      {
        ...axis, size: Math.round(3.6 * unit), space: Math.round(2.2 * unit),
        values: (u, ticks) => ticks.map(compact),
      },
    ],
    series: [{}, ...series.map((s) => ({
      label: s.label, stroke: s.colour, width: Math.max(1.5, unit / 7), fill: s.fill,
      points: { show: false },
    }))],
  };
  const chart = new uPlot(opts, [[], ...series.map(() => [])], node);
  chart.observer = new ResizeObserver(() => {
    chart.setSize({ width: node.clientWidth, height: height() });
  });
  chart.observer.observe(node);
  return chart;
}

function buildCharts() {
  for (const chart of Object.values(charts)) {
    chart.observer.disconnect();
    chart.destroy();
  }
  charts.timeseries = lineChart("chart-timeseries", meta.event_types.map((t) => ({
    label: label("event_type", t), colour: TYPE_COLOURS[t],
  })), 19);
  charts.sessions = lineChart("chart-sessions", [{
    label: ui("sessions"), colour: TYPE_COLOURS.net_pracharat_usage, fill: "rgba(0,158,115,0.2)",
  }], 6.5);
  chartScale = rem();
  chartLang = state.lang;
}

function rebuildChartsIfScaled() {
  if (rem() === chartScale) return;
  buildCharts();
  for (const name of ["timeseries", "netPracharat"]) if (last[name]) RENDER[name](last[name]);
}

// -- renderers --------------------------------------------------------------------------------
function bars(target, rows, options = {}) {
  const node = $(target);
  if (!rows.length) {
    node.replaceChildren(el("p", { class: "empty", text: ui("no_data") }));
    return;
  }
  const max = Math.max(1, ...rows.map((r) => r.value));
  node.replaceChildren(...rows.map((r) => {
    const fill = el("span", { class: "bar-fill" });
    fill.style.width = `${(100 * r.value) / max}%`;
    if (r.colour) fill.style.background = r.colour;
    const row = el("div", { class: `bar-row${r.onclick ? " clickable" : ""}`, title: r.title || r.label },
      el("span", { class: "bar-label", text: r.label }),
      el("span", { class: "bar-track" }, fill),
      el("span", { class: "bar-value", text: options.format ? options.format(r.value) : num(r.value) }));
    if (r.onclick) row.addEventListener("click", r.onclick);
    return row;
  }));
}

function figures(target, items) {
  $(target).replaceChildren(...items.map(([key, value]) => el("div", {},
    el("div", { class: "figure-label", text: ui(key) }),
    el("div", { class: "figure-value", text: value }))));
}

function setSeries(chart, xs, ys) {
  chart.setData([xs, ...ys]);
}

function latencyText() {
  const latency = last.freshness && last.freshness.pipeline_latency_ms_p50;
  return latency == null ? "–" : `${num(latency)} ms`;
}

const RENDER = {
  overview(d) {
    const perMinute = d.events_last_minute;
    const items = [
      ["total_events", num(d.events)],
      ["events_per_minute", num(perMinute)],
      ["citizens", num(d.citizens)],
      ["amount_thb", compact(d.amount_thb)],
      ["pipeline_latency", latencyText()],
    ];
    $("kpis").replaceChildren(...items.map(([key, value]) => el("div", { class: "kpi", "data-kpi": key },
      el("div", { class: "kpi-label", text: ui(key) }),
      el("div", { class: "kpi-value", text: value }))));
  },

  timeseries(d) {
    setSeries(charts.timeseries, d.t, meta.event_types.map((t) => d.events_per_minute[t]));
    $("chart-timeseries").dataset.points = String(d.t.length);
  },

  provinces(d) {
    const max = Math.max(1, d.max_events);
    const byCode = Object.fromEntries(d.provinces.map((p) => [p.code, p]));
    for (const tile of document.querySelectorAll("#map .tile")) {
      const code = tile.dataset.code;
      const p = byCode[code] || { events: 0 };
      const share = Math.sqrt(p.events / max); // sqrt: Bangkok does not wash out the rest
      const [title, rect, abbr, count] = tile.children;
      rect.setAttribute("fill", p.events ? ramp(0.15 + 0.85 * share) : VIRIDIS[0]);
      const dark = p.events && share > 0.6;
      abbr.setAttribute("class", dark ? "dark" : "");
      count.setAttribute("class", dark ? "count dark" : "count");
      count.textContent = compact(p.events);
      const info = meta.provinces.find((x) => x.code === code);
      title.textContent = `${nameOf(info)}: ${num(p.events)} ${ui("events")}`;
      tile.dataset.events = String(p.events);
      tile.classList.toggle("selected", code === state.province);
    }
  },

  ministries(d) {
    bars("ministries", d.ministries.slice(0, 12).map((m) => ({ label: nameOf(m), value: m.events })));
    bars("departments", d.departments.map((a) => ({ label: nameOf(a), value: a.events })));
  },

  province(d) {
    const districts = d.districts.filter((x) => x.events > 0);
    bars("districts", districts.slice(0, 20).map((x) => ({ label: nameOf(x), value: x.events })));
    bars("agencies", d.agencies.slice(0, 12).map((a) => ({ label: nameOf(a), value: a.events })));
  },

  serviceRequests(d) {
    figures("service-figures", [
      ["count", num(d.requests)],
      ["median_processing", duration(d.processing_seconds_p50)],
      ["satisfaction", d.satisfaction_avg == null ? "–" : `${num(d.satisfaction_avg, 2)} / 5`],
    ]);
    const total = Math.max(1, d.requests);
    const stack = el("div", { class: "stack" });
    const legend = el("div", { class: "stack-legend" });
    for (const [status, n] of Object.entries(d.by_status)) {
      const part = el("span", { title: `${label("service_status", status)}: ${num(n)}` });
      part.style.width = `${(100 * n) / total}%`;
      part.style.background = STATUS_COLOURS[status] || STATUS_COLOURS.UNKNOWN;
      stack.append(part);
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = STATUS_COLOURS[status] || STATUS_COLOURS.UNKNOWN;
      legend.append(el("span", {}, swatch,
        `${label("service_status", status)} ${num((100 * n) / total, 0)}%`));
    }
    $("service-outcomes").replaceChildren(stack, legend);
    bars("services", d.top_services.map((s) => {
      const done = (s.by_status.COMPLETED || 0) + (s.by_status.APPROVED || 0);
      return {
        label: s.name, value: s.requests,
        title: `${s.name} (${s.code}): ${num((100 * done) / Math.max(1, s.requests))}% ${ui("completed")}`,
      };
    }));
  },

  complaints(d) {
    figures("complaint-figures", [
      ["count", num(d.complaints)],
      ["via_1111", d.complaints ? `${num((100 * d.via_1111) / d.complaints)}%` : "–"],
      ["median_resolution", d.resolution_days_p50 == null ? "–"
        : `${num(d.resolution_days_p50, 1)} ${ui("days")}`],
    ]);
    bars("complaints", Object.entries(d.by_category).map(([code, n]) => ({
      label: label("category", code), value: n, colour: TYPE_COLOURS.complaint,
    })));
  },

  netPracharat(d) {
    figures("net-figures", [
      ["sessions", compact(d.sessions)],
      ["access_points", num(d.access_points)],
      ["devices", compact(d.devices_upper_bound)],
      ["traffic", bytes(d.bytes_down + d.bytes_up)],
      ["latency", d.latency_ms_p50 == null ? "–" : `${num(d.latency_ms_p50)} ms`],
    ]);
    setSeries(charts.sessions, d.t, [d.sessions_series]);
  },

  digitalCenters(d) {
    figures("dcc-figures", [
      ["orders", num(d.orders)],
      ["order_baht", compact(d.sales_thb)],
      ["participants", num(d.participants)],
    ]);
    bars("products", d.by_product.map((p) => ({
      label: label("product_category", p.code), value: p.amount_thb,
      colour: TYPE_COLOURS.digital_center_activity,
    })), { format: compact });
  },

  channels(d) {
    bars("channels", d.rows.map((r) => ({ label: label("channel", r.key), value: r.events })));
  },

  freshness(d) {
    const { freshness_threshold_seconds: limit, dead_letter_threshold: dlLimit } = d;
    const badge = $("freshness-badge");
    const figure = $("freshness");
    // The data's age (now - the newest stored event's produced_at), not the time since the
    // last insert, which stays near zero while a backlog of older events is being stored.
    figure.textContent = d.data_age_seconds == null ? ui("no_data")
      : `${num(d.data_age_seconds, 1)} ${ui("seconds_short")}`;
    figure.dataset.newest = String(d.newest_produced_ms ?? "");
    badge.classList.toggle("bad", !d.fresh);
    const inserted = d.seconds_since_last_insert == null ? ""
      : ` · ${ui("last_insert")} ${num(d.seconds_since_last_insert, 1)} ${ui("seconds_ago")}`;
    const perType = Object.entries(d.data_age_by_type || {}).map(([type, age]) =>
      `\n${label("event_type", type)}: ${num(age, 1)} ${ui("seconds_short")}`).join("");
    badge.title = `> ${limit} s = red${inserted}${perType}`;
    const kpi = document.querySelector("[data-kpi=pipeline_latency] .kpi-value");
    if (kpi) kpi.textContent = latencyText();
    const dl = $("dead-letter-badge");
    $("dead-letter-rate").textContent = `${num(100 * d.dead_letter_rate, 2)}%`;
    dl.classList.toggle("bad", !d.dead_letter_ok);
    dl.title = `> ${num(100 * dlLimit, 1)}% = red`;
    bars("reasons", d.dead_letters_by_reason.slice(0, 8).map((r) => ({
      label: `${label("reason", r.reason)} · ${label("event_type", r.event_type)}`,
      value: r.dead_letters, colour: "#c62828",
    })));
  },
};

// -- rendering answers, pushed or polled --------------------------------------------------
function showPanels(answers) {
  // answers: [name, answer | Error][]; a failed panel keeps its last answer and shows the banner
  let failed = false;
  for (const [name, answer] of answers) {
    if (answer instanceof Error || answer.error) {
      failed = true;
    } else {
      last[name] = answer;
      RENDER[name](answer);
    }
  }
  if (!state.province) delete last.province;
  $("error").hidden = !failed;
  document.body.dataset.refreshed = String(Date.now());
}

function showFreshness(d) {
  if (d.error) {
    $("freshness-badge").classList.add("bad");
    $("freshness").textContent = "?";
    return;
  }
  last.freshness = d;
  RENDER.freshness(d);
}

// -- push: one stream per view; polling below is the fallback -------------------------------
function subscribe() {
  if (source) source.close();
  source = null;
  clearTimeout(streamRetry);
  if (!window.EventSource) return;
  const mine = generation;
  const params = new URLSearchParams({ range: state.range });
  if (state.province) params.set("province", state.province);
  source = new EventSource(`/api/stream?${params}`);
  source.addEventListener("panels", (event) => {
    if (mine !== generation) return;
    lastPanelsPush = Date.now();
    document.body.dataset.transport = "push";
    showPanels(Object.entries(JSON.parse(event.data).panels));
  });
  source.addEventListener("freshness", (event) => {
    lastFreshnessPush = Date.now();
    showFreshness(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    // A dropped stream reconnects by itself; a refused one (503: too many subscribers) is
    // closed for good: poll, and try again later.
    if (source && source.readyState === EventSource.CLOSED && mine === generation) {
      source = null;
      streamRetry = setTimeout(subscribe, STREAM_RETRY_MS);
    }
  });
}

// -- polling: runs whenever the stream has not delivered within a period and a half ----------
const PANELS = [
  ["overview", () => `/api/overview?${query()}`],
  ["timeseries", () => `/api/timeseries?${query()}`],
  ["provinces", () => `/api/provinces?range=${state.range}`],
  ["ministries", () => `/api/ministries?${query()}`],
  ["serviceRequests", () => `/api/service-requests?${query()}`],
  ["complaints", () => `/api/complaints?${query()}`],
  ["netPracharat", () => `/api/net-pracharat?${query()}`],
  ["digitalCenters", () => `/api/digital-centers?${query()}`],
  ["channels", () => `/api/breakdown?${query({ by: "channel" })}`],
];

function pushed(at, periodMs) {
  return Date.now() - at < 1.5 * periodMs;
}

async function refreshPanels() {
  clearTimeout(panelTimer);
  const period = meta.refresh_seconds * 1000;
  if (pushed(lastPanelsPush, period)) {
    panelTimer = setTimeout(refreshPanels, period);
    return;
  }
  const mine = generation;
  const started = performance.now();
  const jobs = [...PANELS];
  if (state.province) {
    jobs.push(["province", () => `/api/province/${state.province}?range=${state.range}`]);
  }
  const results = await Promise.allSettled(jobs.map(([, url]) => getJSON(url())));
  if (mine !== generation) return; // the view changed meanwhile; its own refresh is running
  if (!pushed(lastPanelsPush, period)) {
    document.body.dataset.transport = "poll";
    showPanels(results.map((r, i) => [jobs[i][0], r.status === "fulfilled" ? r.value : r.reason]));
  }
  const wait = Math.max(250, period - (performance.now() - started));
  panelTimer = setTimeout(refreshPanels, wait);
}

async function refreshFreshness() {
  const period = Math.min(1000, meta.refresh_seconds * 1000);
  if (!pushed(lastFreshnessPush, period)) {
    try {
      showFreshness(await getJSON("/api/freshness"));
    } catch (error) {
      showFreshness({ error: error.message });
    }
  }
  freshTimer = setTimeout(refreshFreshness, period);
}

function tickClock() {
  $("clock").textContent = formatDate(Date.now(), "clock", state.lang);
}

async function start() {
  meta = await getJSON("/api/meta");
  readHash();
  buildControls();
  buildMap();
  applyLabels();
  buildCharts();
  writeHash();
  tickClock();
  setInterval(tickClock, 1000);
  subscribe();
  // the first answers come by polling: the stream's first message may be a tick away
  refreshFreshness();
  refreshPanels();
}

start().catch((error) => {
  document.body.prepend(el("p", { class: "error", text: `GovPulse: ${error.message}` }));
});

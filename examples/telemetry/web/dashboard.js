// The telemetry dashboard: live charts over the WebSocket API, device control, and
// history from the REST API. Plain JS and canvas, no build step; text goes into the page
// through textContent only.
//
// Query parameters (all optional; by default both APIs are this page's origin):
//   ws=wss://ID.execute-api.REGION.amazonaws.com/STAGE   the WebSocket API
//   api=https://ID.execute-api.REGION.amazonaws.com/STAGE the REST API
//   device=esp32-01                                        follow one device only
//
// With keys on, the dashboard key is typed into the page and kept for this tab only
// (sessionStorage). It never goes into a URL: the WebSocket gets it as the subprotocols
// "wsgw.bearer", KEY and the REST API as Authorization: Bearer KEY, neither of which
// access logs, proxy logs or browser history record. A ?key= in the page's own address
// (an old link) is dropped from it unread.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const sameOrigin = location.protocol === "https:" || location.protocol === "http:";
  const WS_BASE = params.get("ws") || (sameOrigin ? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/` : "");
  const API_BASE = (params.get("api") || (sameOrigin ? location.origin : "")).replace(/\/+$/, "");
  const FOLLOW = params.get("device");
  const KEY_STORE = "telemetry.key";
  const keyStore = {
    get: () => { try { return sessionStorage.getItem(KEY_STORE) || ""; } catch (_) { return ""; } },
    set: (value) => {
      try {
        if (value) sessionStorage.setItem(KEY_STORE, value); else sessionStorage.removeItem(KEY_STORE);
      } catch (_) { /* private mode */ }
    },
  };
  let key = keyStore.get();
  const droppedFromAddress = ["key", "token"].filter((name) => params.has(name));
  if (droppedFromAddress.length) {
    const address = new URL(location.href);
    for (const name of droppedFromAddress) address.searchParams.delete(name);
    history.replaceState(history.state, "", address);
  }
  const LIVE_POINTS = 300;
  const HISTORY_PAGE = 1000;
  const HISTORY_MAX_PAGES = 50;
  const PALETTE = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a"];

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), keyForm: $("key-form"), key: $("key"), keyState: $("key-state"),
    interval: $("interval"), intervalState: $("interval-state"),
    control: $("control"), controlDevice: $("control-device"), controlMs: $("control-ms"),
    controlState: $("control-state"), error: $("error"), live: $("live"), liveEmpty: $("live-empty"),
    historyForm: $("history-form"), historyDevice: $("history-device"), historyFrom: $("history-from"),
    historyTo: $("history-to"), historyState: $("history-state"), history: $("history"),
    knownDevices: $("known-devices"),
  };

  /** device id → { card, meta, charts: Map(metric → chart), lastSeq, lastTs } */
  const devices = new Map();
  /** metric → chart, for the history view */
  const historyCharts = new Map();
  let socket = null;
  let connected = false;
  let retry = 0;

  // ------------------------------------------------------------------ helpers

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = !message;
  }

  function setStatus(text, ok) {
    ui.status.textContent = text;
    ui.status.className = `pill ${ok ? "pill-on" : "pill-off"}`;
  }

  function formatMs(ms) {
    if (ms < 60_000) return `${ms / 1000} s`;
    return `${Math.round(ms / 6000) / 10} min`;
  }

  function formatValue(v) {
    const abs = Math.abs(v);
    if (abs !== 0 && (abs >= 1e6 || abs < 1e-2)) return v.toExponential(2);
    return String(Math.round(v * 100) / 100);
  }

  function formatTime(ms, withDate) {
    const d = new Date(ms);
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return withDate ? `${d.toLocaleDateString()} ${time}` : time;
  }

  function toLocalInput(ms) {
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
    return d.toISOString().slice(0, 19);
  }

  // ------------------------------------------------------------------ charts

  class Chart {
    constructor(container, metric, colour, capacity) {
      const tile = document.getElementById("chart-tile").content.firstElementChild.cloneNode(true);
      tile.querySelector(".metric").textContent = metric;
      this.latest = tile.querySelector(".latest");
      this.canvas = tile.querySelector("canvas");
      this.canvas.dataset.metric = metric;
      this.canvas.dataset.points = "0";
      this.colour = colour;
      this.capacity = capacity;
      this.points = [];
      this.pending = false;
      container.appendChild(tile);
      this.tile = tile;
    }

    add(t, v, redraw = true) {
      this.points.push({ t, v });
      if (this.points.length > 1 && this.points[this.points.length - 2].t > t) {
        this.points.sort((a, b) => a.t - b.t);
      }
      if (this.capacity && this.points.length > this.capacity) {
        this.points.splice(0, this.points.length - this.capacity);
      }
      if (redraw) this.schedule();
    }

    schedule() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.draw(); });
    }

    draw() {
      const canvas = this.canvas;
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth || 360;
      const height = canvas.clientHeight || 140;
      if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
      if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      canvas.dataset.points = String(this.points.length);
      const pts = this.points;
      if (pts.length === 0) return;
      this.latest.textContent = formatValue(pts[pts.length - 1].v);

      const left = 52, right = 10, top = 8, bottom = 20;
      const plotW = width - left - right, plotH = height - top - bottom;
      let min = Infinity, max = -Infinity;
      for (const p of pts) { if (p.v < min) min = p.v; if (p.v > max) max = p.v; }
      if (min === max) { min -= 1; max += 1; }
      const pad = (max - min) * 0.08;
      min -= pad; max += pad;
      const t0 = pts[0].t, t1 = Math.max(pts[pts.length - 1].t, t0 + 1);
      const x = (t) => left + ((t - t0) / (t1 - t0)) * plotW;
      const y = (v) => top + (1 - (v - min) / (max - min)) * plotH;

      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = "#677384";
      ctx.strokeStyle = "#e6eaef";
      ctx.lineWidth = 1;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (let i = 0; i <= 3; i++) {
        const v = min + ((max - min) * i) / 3;
        const yy = Math.round(y(v)) + 0.5;
        ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(left + plotW, yy); ctx.stroke();
        ctx.fillText(formatValue(v), left - 6, yy);
      }
      ctx.textBaseline = "alphabetic";
      const spansDays = t1 - t0 > 20 * 3600_000;
      ctx.textAlign = "left";
      ctx.fillText(formatTime(t0, spansDays), left, height - 5);
      ctx.textAlign = "right";
      ctx.fillText(formatTime(t1, spansDays), left + plotW, height - 5);

      ctx.strokeStyle = this.colour;
      ctx.lineWidth = 1.6;
      ctx.lineJoin = "round";
      ctx.beginPath();
      pts.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.t), y(p.v)) : ctx.lineTo(x(p.t), y(p.v))));
      ctx.stroke();
      const last = pts[pts.length - 1];
      ctx.fillStyle = this.colour;
      ctx.beginPath(); ctx.arc(x(last.t), y(last.v), 3, 0, Math.PI * 2); ctx.fill();
    }
  }

  function colourFor(metric) {
    let h = 0;
    for (const c of metric) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

  // ------------------------------------------------------------------ devices

  function knowDevice(id) {
    if (![...ui.controlDevice.options].some((o) => o.value === id)) {
      const option = document.createElement("option");
      option.value = id;
      option.textContent = id;
      ui.controlDevice.appendChild(option);
      const listed = document.createElement("option");
      listed.value = id;
      ui.knownDevices.appendChild(listed);
      if (!ui.historyDevice.value) ui.historyDevice.value = id;
    }
  }

  function deviceCard(id) {
    let device = devices.get(id);
    if (device) return device;
    const card = document.getElementById("device-card").content.firstElementChild.cloneNode(true);
    card.dataset.device = id;
    card.querySelector(".device-id").textContent = id;
    device = { card, meta: card.querySelector(".device-meta"), chartsEl: card.querySelector(".charts"), charts: new Map(), lastSeq: null, lastTs: null, restart: null };
    const cards = [...ui.live.children];
    const before = cards.find((c) => c.dataset.device > id);
    ui.live.insertBefore(card, before || null);
    ui.liveEmpty.hidden = true;
    devices.set(id, device);
    knowDevice(id);
    return device;
  }

  function chartFor(device, metric) {
    let chart = device.charts.get(metric);
    if (!chart) {
      chart = new Chart(device.chartsEl, metric, colourFor(metric), LIVE_POINTS);
      device.charts.set(metric, chart);
    }
    return chart;
  }

  function addReading(reading, redraw = true) {
    const device = deviceCard(reading.device_id);
    for (const [metric, value] of Object.entries(reading.readings || {})) {
      if (typeof value === "number" && Number.isFinite(value)) chartFor(device, metric).add(reading.ts_ms, value, redraw);
    }
    // The first reading after a device restarted says why (reset_reason).
    if (typeof reading.reset_reason === "string" && (!device.restart || reading.ts_ms >= device.restart.ts)) {
      device.restart = { reason: reading.reset_reason, ts: reading.ts_ms };
    }
    if (device.lastTs === null || reading.ts_ms >= device.lastTs) {
      device.lastSeq = reading.seq;
      device.lastTs = reading.ts_ms;
    }
    const restarted = device.restart ? ` · restarted ${formatTime(device.restart.ts, false)} (${device.restart.reason})` : "";
    device.meta.textContent = `seq ${device.lastSeq} · ${formatTime(device.lastTs, false)}${restarted}`;
  }

  // ------------------------------------------------------------------ REST

  async function getJson(path, query) {
    const url = new URL(`${API_BASE}${path}`);
    for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
    const headers = { accept: "application/json" };
    if (key) headers.authorization = `Bearer ${key}`;
    const response = await fetch(url, { headers });
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (response.status === 401) throw new Error("a dashboard key is required: enter it above");
    if (!response.ok) throw new Error((body && body.message) || `${path} answered HTTP ${response.status}`);
    return body;
  }

  async function loadDevices() {
    try {
      const body = await getJson("/devices");
      for (const d of body.devices || []) {
        knowDevice(d.device_id);
        if (!FOLLOW || FOLLOW === d.device_id) backfill(d.device_id);
      }
    } catch (error) {
      showError(`Could not list devices: ${error.message}`);
    }
  }

  /** Fills a new device card with the last ten minutes of readings. */
  const backfilled = new Set();
  async function backfill(id) {
    if (backfilled.has(id)) return;
    backfilled.add(id);
    try {
      const body = await getJson("/history", { device_id: id, from_ms: Date.now() - 10 * 60_000, limit: HISTORY_PAGE });
      const device = deviceCard(id);
      for (const item of body.items || []) addReading(item, false);
      for (const chart of device.charts.values()) chart.schedule();
    } catch (error) {
      showError(`Could not load recent readings of ${id}: ${error.message}`);
    }
  }

  async function loadHistory(event) {
    event.preventDefault();
    const id = ui.historyDevice.value.trim();
    const from = ui.historyFrom.value ? new Date(ui.historyFrom.value).getTime() : undefined;
    const to = ui.historyTo.value ? new Date(ui.historyTo.value).getTime() : undefined;
    ui.historyState.textContent = "loading…";
    ui.history.replaceChildren();
    historyCharts.clear();
    let next = null, pages = 0, count = 0;
    try {
      do {
        const body = await getJson("/history", { device_id: id, from_ms: from, to_ms: to, limit: HISTORY_PAGE, next });
        for (const item of body.items || []) {
          for (const [metric, value] of Object.entries(item.readings || {})) {
            let chart = historyCharts.get(metric);
            if (!chart) { chart = new Chart(ui.history, metric, colourFor(metric), 0); historyCharts.set(metric, chart); }
            chart.add(item.ts_ms, value, false);
          }
          count++;
        }
        next = body.next;
        pages++;
      } while (next && pages < HISTORY_MAX_PAGES);
      for (const chart of historyCharts.values()) chart.schedule();
      ui.historyState.textContent = count === 0
        ? `no readings of ${id} in that range`
        : `${count} readings of ${id}${next ? " (first " + count + "; narrow the range for more)" : ""}`;
      ui.history.dataset.readings = String(count);
    } catch (error) {
      ui.historyState.textContent = "";
      showError(`History: ${error.message}`);
    }
  }

  // ------------------------------------------------------------------ WebSocket

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
      return true;
    }
    showError("Not connected; the command was not sent.");
    return false;
  }

  function onMessage(event) {
    let message;
    try { message = JSON.parse(event.data); } catch (_) { return; }
    switch (message.type) {
      case "reading":
        addReading(message);
        backfilled.add(message.device_id);
        break;
      case "interval":
        ui.intervalState.textContent = `server pushes at most every ${formatMs(message.interval_ms)}`;
        ui.interval.value = String(message.interval_ms);
        break;
      case "control_ack":
        knowDevice(message.device_id);
        ui.controlState.textContent = `${message.device_id} samples every ${formatMs(message.sample_interval_ms)}`;
        break;
      case "error":
        showError(`${message.code}: ${message.message}`);
        if (message.code === "device_not_connected" || message.code === "sample_interval_out_of_range") ui.controlState.textContent = "";
        break;
      default:
        break;
    }
  }

  function connect() {
    if (!WS_BASE) {
      setStatus("no WebSocket URL: add ?ws=wss://…", false);
      return;
    }
    const url = new URL(WS_BASE);
    url.searchParams.set("role", "client");
    url.searchParams.delete("token");
    if (FOLLOW) url.searchParams.set("device_id", FOLLOW);
    setStatus("connecting…", false);
    const ws = key ? new WebSocket(url, ["wsgw.bearer", key]) : new WebSocket(url);
    socket = ws;
    ws.addEventListener("open", () => {
      if (socket !== ws) return;
      ws.opened = true;
      connected = true;
      retry = 0;
      setStatus("live", true);
      showError("");
      send({ action: "ControlCmd", interval_ms: Number(ui.interval.value) });
    });
    ws.addEventListener("message", onMessage);
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      connected = false;
      if (!ws.opened && !key) showError("The gateway refused the connection: enter a dashboard key above.");
      const delay = Math.min(30_000, 500 * 2 ** retry) * (0.5 + Math.random() / 2);
      retry++;
      setStatus(`reconnecting in ${Math.ceil(delay / 1000)} s`, false);
      reconnectTimer = setTimeout(connect, delay);
    });
  }

  let reconnectTimer = null;

  /** Starts over with the key just entered: a new WebSocket, the device list again. */
  function useKey(newKey) {
    key = newKey;
    keyStore.set(key);
    ui.keyState.textContent = key ? "key in use for this tab" : "";
    clearTimeout(reconnectTimer);
    const old = socket;
    socket = null;
    connected = false;
    if (old) old.close();
    retry = 0;
    showError("");
    connect();
    loadDevices();
  }

  // ------------------------------------------------------------------ wiring

  ui.interval.addEventListener("change", () => {
    ui.intervalState.textContent = "…";
    send({ action: "ControlCmd", interval_ms: Number(ui.interval.value) });
  });

  ui.control.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = ui.controlDevice.value;
    const ms = Number(ui.controlMs.value);
    if (!id) { showError("No device to control yet."); return; }
    if (send({ action: "ControlCmd", device_id: id, sample_interval_ms: ms })) {
      ui.controlState.textContent = `waiting for ${id} to acknowledge…`;
    }
  });

  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    useKey(ui.key.value.trim());
  });
  ui.key.value = key;

  ui.historyForm.addEventListener("submit", loadHistory);
  ui.historyFrom.value = toLocalInput(Date.now() - 3600_000);
  window.addEventListener("resize", () => {
    for (const d of devices.values()) for (const c of d.charts.values()) c.schedule();
    for (const c of historyCharts.values()) c.schedule();
  });

  // For tests and the curious: what the page holds.
  window.telemetryDashboard = {
    get connected() { return connected; },
    livePoints: (device, metric) => devices.get(device)?.charts.get(metric)?.points.length ?? 0,
    historyPoints: (metric) => historyCharts.get(metric)?.points.length ?? 0,
  };

  if (droppedFromAddress.length) {
    ui.keyState.textContent = "a key in the page's address is not used (addresses are kept in history and logs): enter it here";
  }
  connect();
  loadDevices();
})();

// The telemetry dashboard in real headless Chromium: Debian's /usr/bin/chromium driven
// by playwright-core (never a downloaded browser), against the real `telemetry` binary.
//
// Run with `cargo xtask test`, or by hand:
//   cargo build -p telemetry && npm ci && TELEMETRY_BIN=../../../target/debug/telemetry node --test
// TELEMETRY_BIN names the binary (default: `cargo metadata`'s target directory +
// debug/telemetry), CHROMIUM the browser (default /usr/bin/chromium), SCREENSHOT where
// the screenshot of the dashboard goes (default /tmp/telemetry-dashboard.png).
//
// Devices are played by a second page that speaks the device protocol over the
// browser's own WebSocket, exactly as the firmware does on the wire.
//
// TELEMETRY_THROUGH=wsgw-local runs the same tests against `wsgw local --template
// ../template.yaml --static-dir ../web` instead (WSGW_BIN names the wsgw binary): the
// dashboard and its REST API (/history, /devices) from wsgw local, every event and
// request handled by a `telemetry` process in Lambda mode (and, with keys, its
// authorizer function), the tables on the moto server wsgw local starts (installed into
// WSGW_CACHE_DIR, default ~/.cache/wsgw). The binary's settings flags become the
// template's parameters (--parameter-overrides); `--simulate N`, devices inside the
// binary, becomes `telemetry simulate --devices N --url <the stage's ws:// URL>`, as
// against a deployed stack. By hand:
//   cargo build -p wsgw -p telemetry && TELEMETRY_THROUGH=wsgw-local node --test

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, WAIT, startBinary, startWsgwLocal } from "../../web-support/binary.mjs";

const SCREENSHOT = process.env.SCREENSHOT || "/tmp/telemetry-dashboard.png";

const THROUGH_WSGW_LOCAL = process.env.TELEMETRY_THROUGH === "wsgw-local";

/** The settings' variables: the caller's shell must not hand them to what is tested. */
const SETTINGS_VARIABLES = [
  "TELEMETRY_DEVICE_TOKEN", "TELEMETRY_DEVICE_SECRET", "TELEMETRY_DEVICE_KEYS", "TELEMETRY_DASHBOARD_KEYS",
  "TELEMETRY_CORS_ORIGIN", "TELEMETRY_HISTORY_TTL_DAYS",
];

/** The telemetry binary's settings flags, as the template's parameters. */
const TEMPLATE_PARAMETERS = {
  "--device-keys": "DeviceKeys",
  "--dashboard-keys": "DashboardKeys",
  "--device-secret": "DeviceSecret",
  "--cors-origin": "CorsOrigin",
  "--history-ttl-days": "HistoryTtlDays",
};

/** Starts the telemetry binary on a free port; resolves with its URLs and a stop(). */
async function startTelemetry(args = []) {
  if (THROUGH_WSGW_LOCAL) return startTelemetryThroughWsgwLocal(args);
  const telemetry = await startBinary({
    name: "telemetry",
    variable: "TELEMETRY_BIN",
    prefix: "ws://",
    args,
    unset: SETTINGS_VARIABLES,
  });
  return { ws: telemetry.address, http: telemetry.address.replace(/^ws:/, "http:"), stop: telemetry.stop };
}

/** Readings sent at once by the history test under wsgw local (a divisor of 1200). */
const HISTORY_BATCH = 100;

/** The binary's flags as `--simulate`'s device count and the settings' [flag, value] pairs. */
function telemetryFlags(args) {
  let simulate = 0;
  const settings = [];
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (value === undefined) throw new Error(`${flag}: no value`);
    if (flag === "--simulate") simulate = Number(value);
    else if (TEMPLATE_PARAMETERS[flag]) settings.push([flag, value]);
    else throw new Error(`${flag}: no template parameter sets it under wsgw local`);
  }
  return { simulate, settings };
}

/** The telemetry's template served by `wsgw local` with the dashboard beside it (see the top). */
async function startTelemetryThroughWsgwLocal(args) {
  const { simulate, settings } = telemetryFlags(args);
  const example = fileURLToPath(new URL("..", import.meta.url));
  const overrides = settings.map(([flag, value]) => `${TEMPLATE_PARAMETERS[flag]}=${value}`);
  const wsgw = await startWsgwLocal({ example, overrides, unset: SETTINGS_VARIABLES });
  const http = wsgw.address.replace(/\/+$/, "");
  const server = { ws: http.replace(/^http:/, "ws:"), http, stop: wsgw.stop };
  if (simulate === 0) return server;
  try {
    const stageUrl = wsgw.lines.join("\n").match(/serving WebSocket API .* at (ws:\/\/\S+)/)?.[1];
    if (!stageUrl) throw new Error(`wsgw local named no ws:// URL of its stage: ${wsgw.lines.join("\n")}`);
    const devices = await startBinary({
      name: "telemetry",
      variable: "TELEMETRY_BIN",
      prefix: "ws://",
      command: ["simulate"],
      listen: false,
      // The settings give the devices their keys or tokens, as they do `--simulate`'s.
      args: ["--devices", String(simulate), "--url", stageUrl, ...settings.flat()],
      unset: SETTINGS_VARIABLES,
      readyLine: /^simulating /,
    });
    return { ...server, stop: async () => { await devices.stop(); return wsgw.stop(); } };
  } catch (error) {
    await wsgw.stop();
    throw error;
  }
}

let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
});

async function openDashboard(url, t) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(error.message));
  await page.goto(url);
  await page.waitForFunction(() => window.telemetryDashboard?.connected === true, null, { timeout: WAIT });
  return page;
}

/**
 * A simulated device in its own page: connects with ?role=device, answers control
 * messages with a ControlAck, and sends readings on demand.
 */
async function startDevice(wsUrl, deviceId, t) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  // A page of the server's own origin (about:blank may not open local sockets).
  await page.goto(`${wsUrl.replace(/^ws:/, "http:")}/devices`);
  await page.evaluate(
    ({ wsUrl, deviceId }) =>
      new Promise((resolve, reject) => {
        const url = `${wsUrl}/?role=device&device_id=${encodeURIComponent(deviceId)}`;
        const socket = new WebSocket(url);
        window.device = { socket, seq: 0, controls: [], errors: [] };
        socket.onopen = () => resolve();
        socket.onerror = () => reject(new Error("device could not connect"));
        socket.onmessage = (event) => {
          const message = JSON.parse(event.data);
          if (message.type === "control") {
            window.device.controls.push(message.sample_interval_ms);
            socket.send(JSON.stringify({ action: "ControlAck", device_id: deviceId, sample_interval_ms: message.sample_interval_ms }));
          } else if (message.type === "error") {
            window.device.errors.push(message);
          }
        };
      }),
    { wsUrl, deviceId },
  );
  return {
    /** Sends `count` readings `everyMs` apart; the first carries `resetReason` if given. */
    async send(count, everyMs, resetReason) {
      await page.evaluate(
        async ({ deviceId, count, everyMs, resetReason }) => {
          for (let i = 0; i < count; i++) {
            const seq = window.device.seq++;
            const update = {
              action: "RealTimeDataUpdate", device_id: deviceId, seq, ts_ms: Date.now(),
              readings: {
                temperature_c: 22 + Math.sin(seq / 3) * 1.5,
                humidity_pct: 40 + Math.cos(seq / 5) * 4,
                rssi_dbm: -60 - (seq % 7),
              },
            };
            if (i === 0 && resetReason) update.reset_reason = resetReason;
            window.device.socket.send(JSON.stringify(update));
            await new Promise((r) => setTimeout(r, everyMs));
          }
        },
        { deviceId, count, everyMs, resetReason: resetReason || null },
      );
    },
    controls: () => page.evaluate(() => window.device.controls),
    errors: () => page.evaluate(() => window.device.errors),
  };
}

test("a device's restart and its reason show on its card", async (t) => {
  const server = await startTelemetry();
  t.after(() => server.stop());
  const page = await openDashboard(server.http, t);
  await page.locator("#interval-state", { hasText: "every 1 s" }).waitFor({ timeout: WAIT });
  const device = await startDevice(server.ws, "esp32-reboot", t);
  await device.send(1, 0, "watchdog");
  const meta = page.locator('article.device[data-device="esp32-reboot"] .device-meta');
  await meta.filter({ hasText: "(watchdog)" }).waitFor({ timeout: WAIT });
  assert.match(await meta.textContent(), /^seq 0 · .* · restarted .* \(watchdog\)$/);
  // Later readings (no reason) keep the last restart on show.
  await device.send(3, 1100);
  await meta.filter({ hasText: "seq 3" }).waitFor({ timeout: WAIT });
  assert.match(await meta.textContent(), /restarted .* \(watchdog\)$/);
});

async function livePoints(page, device, metric) {
  return page.evaluate(([d, m]) => window.telemetryDashboard.livePoints(d, m), [device, metric]);
}

test("the live chart receives points from a device at the chosen interval", async (t) => {
  const server = await startTelemetry();
  t.after(() => server.stop());
  const page = await openDashboard(server.http, t);
  await page.locator("#interval-state", { hasText: "every 1 s" }).waitFor({ timeout: WAIT });

  // Push every 0.5 s.
  await page.selectOption("#interval", "500");
  await page.locator("#interval-state", { hasText: "every 0.5 s" }).waitFor({ timeout: WAIT });

  const device = await startDevice(server.ws, "esp32-web", t);
  await device.send(16, 125); // 2 s of readings, 8 per second
  await page.waitForFunction(
    () => window.telemetryDashboard.livePoints("esp32-web", "temperature_c") >= 3,
    null,
    { timeout: WAIT },
  );
  const points = await livePoints(page, "esp32-web", "temperature_c");
  assert.ok(points >= 3 && points <= 6, `about 2 s / 0.5 s pushes, got ${points}`);

  const card = page.locator('article.device[data-device="esp32-web"]');
  assert.equal(await card.locator(".device-id").textContent(), "esp32-web");
  assert.deepEqual(
    (await card.locator("figcaption .metric").allTextContents()).sort(),
    ["humidity_pct", "rssi_dbm", "temperature_c"],
  );
  const drawn = await card.locator('canvas[data-metric="temperature_c"]').getAttribute("data-points");
  assert.ok(Number(drawn) >= 3, `the canvas drew ${drawn} points`);

  // Device control: the device receives the command, and its ack shows on the page.
  await page.selectOption("#control-device", "esp32-web");
  await page.fill("#control-ms", "2000");
  await page.click("#control button");
  await page.locator("#control-state", { hasText: "esp32-web samples every 2 s" }).waitFor({ timeout: WAIT });
  assert.deepEqual(await device.controls(), [2000]);

  // An out-of-range command is refused by the server and the refusal is shown.
  await page.fill("#control-ms", "100");
  await page.evaluate(() => document.getElementById("control-ms").removeAttribute("min"));
  await page.click("#control button");
  await page.locator("#error", { hasText: "sample_interval_out_of_range" }).waitFor({ timeout: WAIT });

  assert.deepEqual(await device.errors(), []);
  assert.deepEqual(page.errors, []);
});

test("history loads a time range from /history and plots it", async (t) => {
  const server = await startTelemetry();
  t.after(() => server.stop());
  const device = await startDevice(server.ws, "esp32-hist", t);
  // More than one page of 1000; every reading is stored before the page asks for them.
  if (THROUGH_WSGW_LOCAL) {
    // Each reading is an invocation of a function process writing to moto (some 30 a
    // second on a busy 2-core machine): sent in batches, each stored within WAIT before
    // the next, as a burst of 1200 would also be throttled by the deployed stage
    // (ThrottlingBurstLimit 500).
    for (let sent = 0; sent < 1200; sent += HISTORY_BATCH) {
      await device.send(HISTORY_BATCH, 0);
      await waitForHistory(server.http, "esp32-hist", sent + HISTORY_BATCH);
    }
  } else {
    await device.send(1200, 0);
    await waitForHistory(server.http, "esp32-hist", 1200);
  }

  const page = await openDashboard(server.http, t);
  // The device is listed by /devices and its recent readings fill the live card.
  await page.waitForFunction(
    () => window.telemetryDashboard.livePoints("esp32-hist", "humidity_pct") > 0,
    null,
    { timeout: WAIT },
  );
  await page.fill("#history-device", "esp32-hist");
  await page.click("#history-form button");
  await page.locator("#history-state", { hasText: "1200 readings of esp32-hist" }).waitFor({ timeout: WAIT });
  assert.equal(await page.evaluate(() => window.telemetryDashboard.historyPoints("temperature_c")), 1200);
  assert.equal(await page.locator("#history canvas").count(), 3);

  // Live data for the screenshot, then a range with nothing in it.
  await page.selectOption("#interval", "500");
  await page.locator("#interval-state", { hasText: "every 0.5 s" }).waitFor({ timeout: WAIT });
  await device.send(12, 250);
  await page.waitForTimeout(300);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  await page.fill("#history-from", "2001-01-01T00:00");
  await page.fill("#history-to", "2001-01-02T00:00");
  await page.click("#history-form button");
  await page.locator("#history-state", { hasText: "no readings of esp32-hist" }).waitFor({ timeout: WAIT });
  assert.deepEqual(page.errors, []);
});

test("with --simulate 2 the dashboard charts both simulated devices live", async (t) => {
  const server = await startTelemetry(["--simulate", "2"]);
  t.after(() => server.stop());
  const page = await openDashboard(server.http, t);
  for (const device of ["sim-01", "sim-02"]) {
    await page.waitForFunction(
      (d) => window.telemetryDashboard.livePoints(d, "temperature_c") >= 2,
      device,
      { timeout: WAIT },
    );
  }
  const metrics = await page
    .locator('article.device[data-device="sim-01"] figcaption .metric')
    .allTextContents();
  assert.ok(metrics.includes("temperature_c") && metrics.includes("rssi_dbm"), metrics.join(", "));

  // The simulated device obeys control and acknowledges it.
  await page.selectOption("#control-device", "sim-02");
  await page.fill("#control-ms", "500");
  await page.click("#control button");
  await page.locator("#control-state", { hasText: "sim-02 samples every 0.5 s" }).waitFor({ timeout: WAIT });
  assert.deepEqual(page.errors, []);
});

/** Every URL the page requests or opens a WebSocket to, and the REST requests' headers. */
function recordRequests(page) {
  const seen = { urls: [], rest: [] };
  page.on("request", (request) => {
    seen.urls.push(request.url());
    const path = new URL(request.url()).pathname;
    if (path === "/devices" || path === "/history") seen.rest.push(request);
  });
  page.on("websocket", (socket) => seen.urls.push(socket.url()));
  return seen;
}

/** Opens the dashboard, types `key` into it, and waits until it is live. */
async function openWithKey(url, key, t) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(error.message));
  page.seen = recordRequests(page);
  await page.goto(url);
  await page.fill("#key", key);
  await page.click("#key-form button");
  await page.waitForFunction(() => window.telemetryDashboard?.connected === true, null, { timeout: WAIT });
  return page;
}

test("with keys the page asks for its key and only an operator controls devices", async (t) => {
  const server = await startTelemetry([
    "--simulate", "1",
    "--device-keys", "sim-01=k-sim-01",
    "--dashboard-keys", "ada=k-ops-ada=operator,bob=k-view-bob",
  ]);
  t.after(() => server.stop());

  // Without a key the handshake and the REST API are refused: the page never goes live
  // and says it needs a key.
  const context = await browser.newContext();
  t.after(() => context.close());
  const anonymous = await context.newPage();
  await anonymous.goto(server.http);
  await anonymous.locator("#error", { hasText: "dashboard key" }).waitFor({ timeout: WAIT });
  assert.equal(await anonymous.evaluate(() => window.telemetryDashboard?.connected === true), false);

  // The operator's key, offered by the browser as the subprotocols "wsgw.bearer", KEY.
  const operator = await openWithKey(server.http, "k-ops-ada", t);
  await operator.waitForFunction(
    () => window.telemetryDashboard.livePoints("sim-01", "temperature_c") >= 2,
    null,
    { timeout: WAIT },
  );
  await operator.selectOption("#control-device", "sim-01");
  await operator.fill("#control-ms", "500");
  await operator.click("#control button");
  await operator.locator("#control-state", { hasText: "sim-01 samples every 0.5 s" }).waitFor({ timeout: WAIT });

  // A viewer's key sees the data but may not change a device's sample interval.
  const viewer = await openWithKey(server.http, "k-view-bob", t);
  await viewer.waitForFunction(
    () => window.telemetryDashboard.livePoints("sim-01", "temperature_c") >= 1,
    null,
    { timeout: WAIT },
  );
  await viewer.selectOption("#control-device", "sim-01");
  await viewer.fill("#control-ms", "2000");
  await viewer.click("#control button");
  await viewer.locator("#error", { hasText: "wrong_role" }).waitFor({ timeout: WAIT });
  assert.deepEqual(operator.errors, []);
  assert.deepEqual(viewer.errors, []);
});

test("with keys the page sends its key in headers, never in a URL, and never reads one from its address", async (t) => {
  const server = await startTelemetry([
    "--device-keys", "sim-01=k-sim-01",
    "--dashboard-keys", "bob=k-view-bob-0123",
  ]);
  t.after(() => server.stop());
  const key = "k-view-bob-0123";

  // An old link with ?key=: not used, and dropped from the address.
  const context = await browser.newContext();
  t.after(() => context.close());
  const old = await context.newPage();
  const oldSeen = recordRequests(old);
  await old.goto(`${server.http}/?key=${key}`);
  await old.locator("#key-state", { hasText: "not used" }).waitFor({ timeout: WAIT });
  assert.ok(!old.url().includes(key), old.url());
  await old.waitForTimeout(1000);
  assert.equal(await old.evaluate(() => window.telemetryDashboard.connected), false, "the address's key was used");
  assert.deepEqual(oldSeen.urls.slice(1).filter((url) => url.includes(key)), []);

  // Typed in: live, the REST API answered, and the key only ever in headers.
  const page = await openWithKey(server.http, key, t);
  await page.waitForFunction(() => document.getElementById("known-devices").options.length >= 0, null, { timeout: WAIT });
  await page.fill("#history-device", "sim-01");
  await page.click("#history-form button");
  await page.locator("#history-state", { hasText: "no readings of sim-01" }).waitFor({ timeout: WAIT });
  await page.reload();
  await page.waitForFunction(() => window.telemetryDashboard?.connected === true, null, { timeout: WAIT });
  assert.deepEqual(page.seen.urls.filter((url) => url.includes(key)), [], "a URL held the key");
  const authorized = page.seen.rest.filter((request) => request.headers().authorization === `Bearer ${key}`);
  assert.ok(authorized.length >= 2, `REST requests with the key: ${authorized.length} of ${page.seen.rest.length}`);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
  assert.ok(!stored.includes(key), stored);
  assert.deepEqual(page.errors, []);
});

async function waitForHistory(http, deviceId, want) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    let count = 0, next = null;
    do {
      const url = new URL(`${http}/history`);
      url.searchParams.set("device_id", deviceId);
      url.searchParams.set("limit", "1000");
      if (next) url.searchParams.set("next", next);
      const response = await fetch(url);
      if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
      const body = await response.json();
      count += body.items.length;
      next = body.next;
    } while (next);
    if (count >= want) return;
    if (Date.now() > deadline) throw new Error(`only ${count} of ${want} readings stored`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

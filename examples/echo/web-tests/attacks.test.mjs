// Web pages attacking the LocalGateway's `@connections` and `/metrics` (issue 20,
// finding 3), in real headless Chromium: Debian's /usr/bin/chromium driven by
// playwright-core (never a downloaded browser), against the real `echo` binary on
// loopback, which lets unsigned `@connections` calls from loopback in (for curl) and so,
// without its Host and Origin checks, any page the user has open too.
//
// - A page on another site (http://attacker.test, resolved to 127.0.0.1 by Chromium's
//   --host-resolver-rules, so Chromium's own Local Network Access checks do not stand in
//   for the gateway's) opens a WebSocket to the gateway, as pages may, learns its
//   connection id, and POSTs to its `@connections` with `mode: "no-cors"`.
// - A page whose domain is rebound to this machine (http://rebind.test): its server
//   serves the page, then forwards every other request to the gateway byte for byte,
//   which is what the gateway sees once the attacker's DNS answers 127.0.0.1 (the same
//   Host, Origin and Sec-Fetch-* headers, from loopback). The page then reads a victim's
//   `@connections` entry and the metrics same-origin, and POSTs to the victim.
//
// Run with `cargo xtask test`, or by hand:
//   cargo build -p echo && npm ci && ECHO_BIN=../../../target/debug/echo node --test
// ECHO_BIN names the binary (default: `cargo metadata`'s target directory + debug/echo),
// CHROMIUM the browser (default /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, WAIT, startBinary } from "../../web-support/binary.mjs";

/** Starts the echo binary on a free loopback port; resolves with its port and a stop(). */
async function startEcho() {
  const echo = await startBinary({ name: "echo", variable: "ECHO_BIN", prefix: "ws://127.0.0.1:" });
  return { port: Number(new URL(echo.address).port), stop: echo.stop };
}

/** Opens a WebSocket to the gateway, learns its id (whoami) and keeps every later text. */
const CONNECT_AND_RECORD = `
window.received = [];
window.connectionId = new Promise((resolve, reject) => {
  const socket = new WebSocket(GATEWAY_WS);
  socket.onopen = () => socket.send(JSON.stringify({ action: "whoami" }));
  socket.onerror = () => reject(new Error("the WebSocket failed"));
  socket.onmessage = (event) => {
    const text = String(event.data);
    try {
      const id = JSON.parse(text).connection_id;
      if (id) { resolve(id); return; }
    } catch {}
    window.received.push(text);
  };
  window.socket = socket;
});
`;

/** The page on another site: connects, then posts to its own connection, no-cors. */
function csrfPage(gatewayPort) {
  const gateway = `http://127.0.0.1:${gatewayPort}`;
  return `<!doctype html><title>win a prize</title><script>
const GATEWAY_WS = "ws://127.0.0.1:${gatewayPort}/local";
${CONNECT_AND_RECORD}
window.attack = (async () => {
  const id = await window.connectionId;
  const target = "${gateway}/local/@connections/" + encodeURIComponent(id);
  // Opaque answers: the page never sees them, but a POST that got through is delivered.
  await fetch(target, { method: "POST", mode: "no-cors", body: "pwned by a no-cors POST" }).catch(() => {});
  await fetch("${gateway}/@connections/" + encodeURIComponent(id), { method: "POST", mode: "no-cors", body: "pwned without the stage" }).catch(() => {});
  return id;
})();
</script>`;
}

/** The rebinding page: same-origin requests that its server forwards to the gateway. */
function rebindPage() {
  return `<!doctype html><title>rebound</title><script>
window.attack = (async () => {
  const id = new URLSearchParams(location.search).get("victim");
  const results = {};
  for (const [name, url, init] of [
    ["describe", "/local/@connections/" + encodeURIComponent(id), {}],
    ["metrics", "/metrics", {}],
    ["post", "/local/@connections/" + encodeURIComponent(id), { method: "POST", body: "pwned by a rebound page" }],
    ["close", "/local/@connections/" + encodeURIComponent(id), { method: "DELETE" }],
  ]) {
    const response = await fetch(url, init);
    results[name] = { status: response.status, body: await response.text() };
  }
  return results;
})();
</script>`;
}

let gateway;
let attacker;
let attackerPort;
let browser;

/** The attacker's server: its pages, and everything else forwarded to the gateway. */
function startAttacker(gatewayPort) {
  const server = http.createServer((request, response) => {
    const url = new URL(request.url, "http://attacker");
    if (url.pathname === "/csrf.html" || url.pathname === "/rebind.html") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end(url.pathname === "/csrf.html" ? csrfPage(gatewayPort) : rebindPage());
      return;
    }
    // The DNS answer flipped to 127.0.0.1: the request reaches the gateway as it is.
    const forwarded = http.request(
      { host: "127.0.0.1", port: gatewayPort, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on("error", (error) => {
      response.writeHead(502);
      response.end(String(error));
    });
    request.pipe(forwarded);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

before(async () => {
  gateway = await startEcho();
  attacker = await startAttacker(gateway.port);
  attackerPort = attacker.address().port;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, "--host-resolver-rules=MAP attacker.test 127.0.0.1, MAP rebind.test 127.0.0.1"],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (attacker ? attacker.close(resolve) : resolve()));
  await gateway?.stop();
});

async function newPage(t) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(error.message));
  return page;
}

/** A plain POST from this test (no browser headers, loopback): it must be delivered. */
async function postMarker(id) {
  const response = await fetch(`http://127.0.0.1:${gateway.port}/local/@connections/${encodeURIComponent(id)}`, {
    method: "POST",
    body: "marker",
  });
  assert.equal(response.status, 200, await response.text());
}

/** The texts `page`'s socket got once "marker" arrived. */
async function receivedUpToMarker(page) {
  await page.waitForFunction(() => window.received.includes("marker"), null, { timeout: WAIT });
  return page.evaluate(() => window.received);
}

test("a page on another site may open a WebSocket but its no-cors POSTs to @connections deliver nothing", async (t) => {
  const page = await newPage(t);
  await page.goto(`http://attacker.test:${attackerPort}/csrf.html`);
  const id = await page.evaluate(() => window.attack);
  assert.match(id, /\S/, "the page connected and learned its connection id");
  await postMarker(id);
  assert.deepEqual(await receivedUpToMarker(page), ["marker"], "the page's POSTs were refused before delivery");
  assert.deepEqual(page.errors, []);
});

test("a page whose domain rebinds to this machine cannot read or post through @connections, nor read the metrics", async (t) => {
  const victim = await newPage(t);
  await victim.goto(`http://attacker.test:${attackerPort}/rebind.html?victim=`);
  await victim.evaluate(`const GATEWAY_WS = "ws://127.0.0.1:${gateway.port}/local";\n${CONNECT_AND_RECORD}`);
  const id = await victim.evaluate(() => window.connectionId);

  const page = await newPage(t);
  await page.goto(`http://rebind.test:${attackerPort}/rebind.html?victim=${encodeURIComponent(id)}`);
  const results = await page.evaluate(() => window.attack);
  for (const [name, { status, body }] of Object.entries(results)) {
    assert.equal(status, 403, `${name}: ${status} ${body}`);
    assert.match(body, /rebind\.test/, `${name} names the refused Host: ${body}`);
    assert.doesNotMatch(body, /connectedAt|sourceIp|wsgw_connections/, `${name} leaks nothing: ${body}`);
  }
  await postMarker(id);
  assert.deepEqual(await receivedUpToMarker(victim), ["marker"], "nothing was posted to the victim, who is still connected");
  assert.deepEqual(page.errors, []);
});

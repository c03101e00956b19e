// The chat page in real headless Chromium: Debian's /usr/bin/chromium driven by
// playwright-core (never a downloaded browser), against the real `chat` binary.
//
// Run with `cargo xtask test`, or by hand:
//   cargo build -p chat && npm ci && CHAT_BIN=../../../target/debug/chat node --test
// CHAT_BIN names the binary (default: `cargo metadata`'s target directory + debug/chat),
// CHROMIUM the browser (default /usr/bin/chromium), SCREENSHOT where the screenshot of
// the page goes (default /tmp/chat-page.png).
//
// CHAT_THROUGH=wsgw-local runs the same tests against `wsgw local --template
// ../template.yaml --static-dir ../web` instead (WSGW_BIN names the wsgw binary): the
// page from wsgw local, every event handled by a `chat` process in Lambda mode, its
// tables on the moto server wsgw local starts (installed into WSGW_CACHE_DIR, default
// ~/.cache/wsgw). By hand: cargo build -p wsgw -p chat && CHAT_THROUGH=wsgw-local node --test

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, WAIT, startBinary, startWsgwLocal } from "../../web-support/binary.mjs";

const SCREENSHOT = process.env.SCREENSHOT || "/tmp/chat-page.png";

const THROUGH_WSGW_LOCAL = process.env.CHAT_THROUGH === "wsgw-local";

/** The chat's settings the tests give the binary's environment, as the template's parameters. */
const TEMPLATE_PARAMETERS = { WSGW_JWT_SECRET: "JwtSecret" };

/** Starts the chat binary on a free port; resolves with its page URL and a stop(). */
async function startChat(env = {}) {
  if (THROUGH_WSGW_LOCAL) return startChatThroughWsgwLocal(env);
  const chat = await startBinary({ name: "chat", variable: "CHAT_BIN", prefix: "http://", unset: ["CHAT_RETENTION_DAYS"], env });
  return { url: chat.address, stop: chat.stop };
}

/** The chat's template served by `wsgw local` with the page beside it (see the top). */
async function startChatThroughWsgwLocal(env) {
  const example = fileURLToPath(new URL("..", import.meta.url));
  const overrides = Object.entries(env).map(([variable, value]) => {
    const parameter = TEMPLATE_PARAMETERS[variable];
    if (!parameter) throw new Error(`${variable}: no template parameter sets it under wsgw local`);
    return `${parameter}=${value}`;
  });
  const wsgw = await startWsgwLocal({ example, overrides });
  return { url: wsgw.address, stop: wsgw.stop };
}

let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
});

/** A page in its own browser context (own localStorage), failing the test on a dialog. */
async function openPage(url, t) {
  const context = await browser.newContext({ viewport: { width: 900, height: 820 } });
  t.after(() => context.close());
  const page = await context.newPage();
  page.dialogs = [];
  page.on("dialog", async (dialog) => {
    page.dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(error.message));
  await page.goto(url);
  return page;
}

async function waitForStatus(page, prefix) {
  await page.waitForFunction(
    (want) => document.getElementById("status").textContent.startsWith(want),
    prefix,
    { timeout: WAIT },
  );
}

async function join(page, name, session) {
  await page.fill("#name", name);
  await page.fill("#session", session);
  await page.click("#connect");
  await waitForStatus(page, "connected");
  // The history answer arrives right after the connection opens.
  await page.waitForTimeout(150);
}

async function say(page, text, toSessions = "") {
  await page.fill("#to", toSessions);
  await page.fill("#message", text);
  await page.click("#send");
}

function message(page, text) {
  return page.locator("#messages li.msg", { hasText: text });
}

async function seen(page, text) {
  await message(page, text).first().waitFor({ timeout: WAIT });
}

async function texts(page) {
  return page.locator("#messages li.msg .text").allTextContents();
}

test("two pages chat with each other; history is shown on join", async (t) => {
  const chat = await startChat();
  t.after(() => chat.stop());
  const ada = await openPage(chat.url, t);

  const host = new URL(chat.url).host;
  assert.equal(await ada.inputValue("#url"), `ws://${host}/`, "the URL field defaults to the page's host");
  await join(ada, "ada", "s-ada");
  assert.match(await ada.textContent("#connected-at"), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await say(ada, "hello from ada");
  await seen(ada, "hello from ada");

  const bob = await openPage(chat.url, t);
  await join(bob, "bob", "s-bob");
  await seen(bob, "hello from ada"); // from history, before anything new was said
  assert.equal(await bob.locator("#messages li.divider", { hasText: "recent messages" }).count(), 1);

  await say(bob, "hi ada, bob here");
  await seen(ada, "hi ada, bob here");
  await seen(bob, "hi ada, bob here");
  const received = message(ada, "hi ada, bob here");
  assert.equal(await received.locator(".who").textContent(), "bob");
  assert.equal(await received.locator(".session").textContent(), "s-bob");
  assert.match(await received.locator("time").textContent(), /^\d\d:\d\d:\d\d$/);
  assert.deepEqual(await texts(ada), ["hello from ada", "hi ada, bob here"]);
  assert.deepEqual(await texts(bob), ["hello from ada", "hi ada, bob here"]);

  // The session duration counts up live.
  await ada.waitForFunction(
    () => /^00:00:0[1-9]$/.test(document.getElementById("duration").textContent),
    null,
    { timeout: WAIT },
  );

  await ada.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.deepEqual([...ada.errors, ...bob.errors], []);
});

/** An HS256 JWT with these claims. */
function jwt(secret, claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

/** Every URL the page requests (pages, scripts, fetches) or opens a WebSocket to. */
function recordUrls(page) {
  const urls = [];
  page.on("request", (request) => urls.push(request.url()));
  page.on("websocket", (socket) => urls.push(socket.url()));
  return urls;
}

test("with WSGW_JWT_SECRET the page offers the token from its Token field and chats under the token's name", async (t) => {
  const secret = "page-test-secret-0123456789abcdef-0123456789";
  const chat = await startChat({ WSGW_JWT_SECRET: secret });
  t.after(() => chat.stop());

  // Without a token the handshake is refused.
  const stranger = await openPage(chat.url, t);
  await stranger.fill("#session", "s-x");
  await stranger.click("#connect");
  await stranger.waitForTimeout(1500);
  assert.ok(
    !(await stranger.textContent("#status")).startsWith("connected"),
    "no token, no connection",
  );

  // The token typed into the page, offered by the browser as the subprotocols
  // "wsgw.bearer", TOKEN; the session is the token's subject.
  const token = jwt(secret, { sub: "u-ada", name: "Ada L", exp: Math.floor(Date.now() / 1000) + 600 });
  const ada = await openPage(chat.url, t);
  await ada.fill("#token", token);
  await join(ada, "mallory", "s-someone-else");
  assert.equal(await ada.inputValue("#session"), "u-ada");
  await say(ada, "signed in");
  await seen(ada, "signed in");
  assert.equal(await message(ada, "signed in").locator(".who").textContent(), "Ada L");
  assert.equal(await message(ada, "signed in").locator(".session").textContent(), "u-ada");
  assert.deepEqual(ada.errors, []);
});

test("the page never puts its token in a URL, nor reads one from its own address", async (t) => {
  const secret = "page-test-secret-0123456789abcdef-0123456789";
  const chat = await startChat({ WSGW_JWT_SECRET: secret });
  t.after(() => chat.stop());
  const token = jwt(secret, { sub: "u-ada", exp: Math.floor(Date.now() / 1000) + 600 });

  // An old link with the token in the page's address: not used, and dropped from it.
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(error.message));
  const urls = recordUrls(page);
  await page.goto(`${chat.url}?token=${token}`);
  await page.locator("#messages li.system.error", { hasText: "not used" }).waitFor({ timeout: WAIT });
  assert.ok(!page.url().includes(token), `the address still holds the token: ${page.url()}`);
  assert.equal(await page.inputValue("#token"), "");
  await page.click("#connect");
  await page.waitForTimeout(1500);
  assert.ok(!(await page.textContent("#status")).startsWith("connected"), "the address's token was used");

  // Typed in: connects, and no URL the page requested ever holds it.
  await page.fill("#token", token);
  await page.click("#connect");
  await waitForStatus(page, "connected");
  await page.reload();
  await waitForStatus(page, "connected"); // kept for the tab: the reload reconnects
  const opened = urls.filter((url) => url.startsWith("ws://"));
  assert.ok(opened.length >= 2, `WebSocket URLs: ${opened}`);
  const leaks = urls.filter((url, index) => index > 0 && url.includes(token));
  assert.deepEqual(leaks, [], "requested with the token in the URL");
  // Kept for this tab only, never in localStorage.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
  assert.ok(!stored.includes(token), stored);
  assert.deepEqual(page.errors, []);
});

test("a message to a session reaches only that session", async (t) => {
  const chat = await startChat();
  t.after(() => chat.stop());
  const ada = await openPage(chat.url, t);
  const bob = await openPage(chat.url, t);
  const cyd = await openPage(chat.url, t);
  await join(ada, "ada", "s-ada");
  await join(bob, "bob", "s-bob");
  await join(cyd, "cyd", "s-cyd");

  await say(ada, "only for bob", "s-bob");
  await seen(bob, "only for bob");
  await ada.locator("#messages li.system", { hasText: "delivered to 1 connection" }).waitFor({ timeout: WAIT });
  assert.match(await message(bob, "only for bob").locator(".to").textContent(), /s-bob/);

  // Bob answers cyd alone by clicking cyd's session on her message.
  await say(cyd, "hello everyone");
  await seen(bob, "hello everyone");
  await message(bob, "hello everyone").locator(".session").click();
  assert.equal(await bob.inputValue("#to"), "s-cyd");
  await bob.fill("#message", "for cyd alone");
  await bob.click("#send");
  await seen(cyd, "for cyd alone");

  // A bad target is refused by the server and shown as an error; the page stays connected.
  await say(ada, "to nowhere", "x".repeat(129));
  await ada.locator("#messages li.system.error", { hasText: "session_ids[0]" }).waitFor({ timeout: WAIT });
  assert.ok((await ada.textContent("#status")).startsWith("connected"));

  await ada.waitForTimeout(300);
  assert.deepEqual(await texts(cyd), ["hello everyone", "for cyd alone"]);
  // Senders see what they sent to others, marked with its addressees.
  assert.deepEqual(await texts(ada), ["only for bob", "hello everyone"]);
  assert.deepEqual(await texts(bob), ["only for bob", "hello everyone", "for cyd alone"]);
  assert.equal(await message(ada, "only for bob").locator(".to").textContent(), "→ s-bob");
});

test("a message with HTML shows as text, live and from history", async (t) => {
  const chat = await startChat();
  t.after(() => chat.stop());
  const ada = await openPage(chat.url, t);
  const bob = await openPage(chat.url, t);
  await join(ada, "<b>ada</b>", "s-ada");
  await join(bob, "bob", "s-bob");
  const attack = "<img src=x onerror=alert(1)> <script>alert(2)</script>";

  await say(ada, attack);
  await seen(bob, "<img src=x");
  const cyd = await openPage(chat.url, t);
  await join(cyd, "cyd", "s-cyd");
  await seen(cyd, "<img src=x");
  await bob.waitForTimeout(500); // give a handler every chance to fire

  for (const page of [ada, bob, cyd]) {
    assert.deepEqual(await texts(page), [attack]);
    assert.equal(await message(page, "<img").locator(".who").textContent(), "<b>ada</b>");
    assert.equal(await page.locator("#messages img").count(), 0, "no img element");
    assert.equal(await page.locator("#messages script, #messages b").count(), 0, "no markup");
    assert.deepEqual(page.dialogs, [], "no dialog");
  }
});

test("a remembered address reconnects on reload, unless the user disconnected", async (t) => {
  const chat = await startChat();
  t.after(() => chat.stop());
  const ada = await openPage(chat.url, t);
  await join(ada, "ada", "s-ada");

  await ada.reload();
  await waitForStatus(ada, "connected");
  assert.equal(await ada.inputValue("#name"), "ada");
  assert.equal(await ada.inputValue("#session"), "s-ada");

  await ada.click("#disconnect");
  await waitForStatus(ada, "disconnected");
  await ada.reload();
  await ada.waitForTimeout(500);
  assert.ok((await ada.textContent("#status")).startsWith("disconnected"));
});

test("auto-disconnect closes the session after the chosen number of seconds", async (t) => {
  const chat = await startChat();
  t.after(() => chat.stop());
  const ada = await openPage(chat.url, t);
  assert.equal(await ada.inputValue("#auto-seconds"), "60", "the default is 60 s");
  await ada.check("#auto-disconnect");
  await ada.fill("#auto-seconds", "2");

  await join(ada, "ada", "s-ada");
  await ada.locator("#auto-left", { hasText: "disconnecting in" }).waitFor({ timeout: WAIT });
  await waitForStatus(ada, "disconnected");

  await ada.locator("#messages li.system", { hasText: "auto-disconnect after 2 s" }).waitFor({ timeout: WAIT });
  assert.equal(await ada.textContent("#auto-left"), "");
});

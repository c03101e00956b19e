// What every page test (examples/*/web-tests) does before it opens a page: start the
// example's binary on a free loopback port, and launch Debian's Chromium headless.
// Imported by relative path; Node's own modules only (each web-tests package brings
// its own playwright-core).

import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

/** How long a page test waits for anything (ms). */
export const WAIT = 15_000;

/** The browser: $CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Chromium's flags for a quiet, headless, reproducible run. */
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** The debug binary of `name`: `$variable` when set, else cargo metadata's target dir. */
function binaryPath(name, variable) {
  if (process.env[variable]) return path.resolve(process.env[variable]);
  const metadata = JSON.parse(
    execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], { encoding: "utf8" }),
  );
  return path.join(metadata.target_directory, "debug", name);
}

/**
 * Starts the example `name` (its binary from `$variable`, or built by `cargo build -p
 * name`) with `command` (a subcommand, before the options), `--listen 127.0.0.1:0` (a
 * server; `listen: false` for a client, such as `telemetry simulate`) and `args`,
 * `RUST_LOG=warn`, without the variables in `unset` nor any `WSGW_*` or
 * `AWS_LAMBDA_RUNTIME_API` (so the caller's shell cannot change what is tested), plus
 * `env`. Resolves once the binary printed its address line (its first line, or the
 * first matching `readyLine` when given), within `wait` ms, with that line, every line
 * printed up to it (`lines`), the first word of it starting with `prefix` (its address,
 * or for a client the one it connects to) and `stop()` (SIGTERM, then its exit).
 */
export function startBinary({
  name, variable, prefix, command = [], args = [], unset = [], env = {}, readyLine = null, wait = WAIT,
  listen = true,
}) {
  const binary = binaryPath(name, variable);
  if (!existsSync(binary)) {
    throw new Error(`no ${name} binary at ${binary}: run \`cargo build -p ${name}\` or set ${variable}`);
  }
  const childEnv = { ...process.env, RUST_LOG: "warn" };
  for (const variableName of Object.keys(childEnv)) {
    if (variableName.startsWith("WSGW_") || variableName === "AWS_LAMBDA_RUNTIME_API" || unset.includes(variableName)) {
      delete childEnv[variableName];
    }
  }
  Object.assign(childEnv, env);
  const listenArgs = listen ? ["--listen", "127.0.0.1:0"] : [];
  const child = spawn(binary, [...command, ...listenArgs, ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr += chunk; });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} printed no address within ${wait} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, wait);
    child.on("error", (error) => { clearTimeout(timer); reject(error); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} ended (${code ?? signal}) before its address; stdout: ${stdout}; stderr: ${stderr}`));
    });
    let ready = false;
    child.stdout.on("data", (chunk) => {
      if (ready) return;
      stdout += chunk;
      const lines = stdout.split("\n").slice(0, -1);
      const index = readyLine ? lines.findIndex((candidate) => readyLine.test(candidate)) : lines.length ? 0 : -1;
      if (index === -1) return;
      const line = lines[index];
      ready = true;
      clearTimeout(timer);
      const address = line.split(/\s+/).find((word) => word.startsWith(prefix));
      if (!address) {
        child.kill("SIGKILL");
        reject(new Error(`no ${prefix} address in ${JSON.stringify(line)}`));
        return;
      }
      resolve({
        line,
        lines: lines.slice(0, index + 1),
        address,
        stop: async () => {
          if (child.exitCode === null) child.kill("SIGTERM");
          return exited;
        },
      });
    });
  });
}

/**
 * Serves an example's template with `wsgw local` (its binary from `$WSGW_BIN`, or built
 * by `cargo build -p wsgw`), its page beside it: `wsgw local --template
 * EXAMPLE/template.yaml --static-dir EXAMPLE/web --parameter-overrides ...overrides`,
 * `example` being the example's directory (ending in `/`), without the variables in
 * `unset`, moto's install cached in `$WSGW_CACHE_DIR` when set. Resolves as
 * `startBinary` once wsgw local printed the page's address (`address`, `http://`).
 */
export function startWsgwLocal({ example, overrides = [], unset = [] }) {
  return startBinary({
    name: "wsgw",
    variable: "WSGW_BIN",
    prefix: "http://",
    command: ["local"],
    args: [
      "--template", `${example}template.yaml`,
      "--static-dir", `${example}web`,
      ...(overrides.length ? ["--parameter-overrides", ...overrides] : []),
    ],
    unset,
    // startBinary passes no WSGW_* variable on: the moto install's cache is given back.
    env: process.env.WSGW_CACHE_DIR ? { WSGW_CACHE_DIR: process.env.WSGW_CACHE_DIR } : {},
    readyLine: /the page of --static-dir at http:/,
    // The example's build (a no-op once built), moto's start and the tables first.
    wait: 120_000,
  });
}

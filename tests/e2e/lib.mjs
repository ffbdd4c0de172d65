// Shared helpers for the browser scenarios: the trial test runs a scenario with node, the
// scenario drives Debian's Chromium through playwright-core and prints one JSON report as its
// last stdout line ({"step": "done", ...} on success, {"step": <failed step>, "error": ...} and
// exit code 1 on failure).

import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.DROCSID_CHROMIUM || "/usr/bin/chromium";

const browsers = new Set();
// Every page opened, so a failing step can leave a screenshot of each.
const pages = [];
let failureShots = null;

// Where a failed step's screenshots go (the scenario's screenshot directory).
export function screenshotFailuresTo(dir) {
  failureShots = dir;
}
let currentStep = "start";
// Errors thrown in any page (uncaught exceptions) and console errors, by user name.
export const pageErrors = [];
export const consoleErrors = [];

export async function launch() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  browsers.add(browser);
  return browser;
}

export async function closeAll() {
  for (const browser of browsers) await browser.close().catch(() => {});
  browsers.clear();
}

// A fresh browser context (its own storage: a separate signed-in user) and a page in it.
export async function newUser(browser, base, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: base });
  const page = await context.newPage();
  pages.push({ page, name });
  page.on("pageerror", (err) => pageErrors.push({ user: name, step: currentStep, error: String(err && err.stack || err) }));
  page.on("response", (response) => {
    if (response.status() >= 400) consoleErrors.push({ user: name, step: currentStep, text: `${response.status()} ${response.request().method()} ${response.url()}` });
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push({ user: name, step: currentStep, text: msg.text() });
  });
  return { context, page, name };
}

// Sign in through the login page; `next` is the client path to land on.
export async function login(page, base, username, password, next = "/channels/@me") {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((url) => url.pathname === next || url.pathname === decodeURIComponent(next), { timeout: 20000 });
}

export async function shot(page, dir, name) {
  if (!dir) return null;
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

export function report(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// Runs one named step; on failure reports which step failed and exits 1.
export async function step(name, fn) {
  currentStep = name;
  try {
    return await fn();
  } catch (err) {
    if (failureShots) {
      for (const { page, name: user } of pages) await shot(page, failureShots, `failed-${user}`).catch(() => {});
    }
    report({ step: name, error: String(err && err.stack || err), pageErrors, consoleErrors: consoleErrors.slice(0, 20) });
    await closeAll();
    process.exit(1);
  }
}

export function currentStepName() {
  return currentStep;
}

// Wait until fn(arg) is truthy in the page (polled on animation frames), returning its value.
export async function waitFor(page, fn, arg, timeout = 15000) {
  const handle = await page.waitForFunction(fn, arg, { timeout });
  const value = await handle.jsonValue();
  await handle.dispose();
  return value;
}

// Wait for `count` animation frames (lets a virtual list render after a scroll).
export async function frames(page, count = 2) {
  await page.evaluate((n) => new Promise((resolve) => {
    const next = (left) => (left <= 0 ? resolve() : requestAnimationFrame(() => next(left - 1)));
    next(n);
  }), count);
}

export async function waitConnected(page, timeout = 20000) {
  await waitFor(page, () => window.drocsid?.gateway?.state === "connected", null, timeout);
}

// Arguments: a single JSON object as argv[2] (or a path to a JSON file).
export function args() {
  const raw = process.argv[2];
  if (!raw) throw new Error("usage: node <scenario>.mjs '<json args>'");
  return JSON.parse(raw.trim().startsWith("{") ? raw : fs.readFileSync(raw, "utf8"));
}

export function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

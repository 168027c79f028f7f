// Shared by the browser tests: starts Debian's chromium through playwright-core (never a
// browser playwright downloads), collects console errors and page errors (any one fails the
// test, except those a step declares it expects), saves screenshots, and small helpers for
// the API and git. Each flow is a script run by tests/integration/test_browser.py, which
// starts the real `projsync serve` and passes what it made in $BROWSER_TEST (JSON).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export const cfg = JSON.parse(process.env.BROWSER_TEST || '{}');
export const BASE = cfg.base_url;
const SHOTS = process.env.SCREENSHOT_DIR || 'build/screenshots';

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage'];

export function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

export async function launch() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
  const errors = [];
  let expected = [];
  const watch = (page, label) => {
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const text = m.text();
      if (expected.some((re) => re.test(text))) return;
      errors.push(`${label}: console error: ${text}`);
    });
    page.on('pageerror', (e) => errors.push(`${label}: page error: ${e.message}`));
  };
  return {
    browser,
    errors,
    // A page of the given size (default: a laptop screen).
    async page(label, viewport = { width: 1280, height: 900 }) {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      page.setDefaultTimeout(15000);
      watch(page, label);
      return page;
    },
    // Console errors matching these are expected while fn runs (e.g. a 422 the step provokes).
    async expecting(patterns, fn) {
      expected = patterns;
      try { return await fn(); } finally { expected = []; }
    },
    async close() {
      await browser.close();
      if (errors.length) throw new Error(`console errors:\n${errors.join('\n')}`);
    },
  };
}

export async function shot(page, name, opts = {}) {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, ...opts });
  console.log(`screenshot: ${file}`);
}

export async function api(method, p, body) {
  const res = await fetch(BASE + '/api/v1' + p, {
    method, headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function waitSync(id, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const { body } = await api('GET', `/syncs/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(body.status)) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sync ${id} did not end`);
}

export function git(repo, ...args) {
  return execFileSync('git', args, { cwd: repo, env: { ...process.env, ...(cfg.git_env || {}) } }).toString();
}

// Runs a flow: prints the result line the pytest wrapper reads, exits non-zero on failure.
export async function run(name, fn) {
  const t0 = Date.now();
  const b = await launch();
  try {
    await fn(b);
    await b.close();
    console.log(`${name}: ok in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    console.error(`${name}: FAILED: ${e.stack || e}`);
    if (b.errors.length) console.error(b.errors.join('\n'));
    await b.browser.close().catch(() => {});
    process.exit(1);
  }
}

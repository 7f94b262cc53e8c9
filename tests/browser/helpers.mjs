// Shared by the browser tests: the node under test (from tests/browser.rs),
// headless Chromium, the admin API, screenshots and waiting.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run these tests with cargo test --test browser`);
  return value;
}

export const BASE = required('VELVET_URL');
export const ADMIN_KEY = required('VELVET_ADMIN_KEY');
export const MERCHANT_KEY = required('VELVET_MERCHANT_KEY');
const SCREENSHOTS = process.env.VELVET_SCREENSHOTS
  || join('..', '..', 'target', 'screenshots');
const CHROMIUM = process.env.VELVET_CHROMIUM || '/usr/bin/chromium';

// The flags a closed-network, root-run machine needs: no sandbox (root),
// and none of Chromium's own calls home, which would only be refused.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/** A fresh id for this run, so test files never share an experience. */
export function uniqueId(prefix) {
  const tail = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  return `${prefix}-${tail}`;
}

async function call(key, method, path, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function admin(method, path, body) {
  const res = await call(ADMIN_KEY, method, path, body);
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export const merchant = (action, token) =>
  call(MERCHANT_KEY, 'POST', `/v1/handoff/${action}`, { token });

/** An experience `id` with one queue `id-q`, checking out at the demo. */
export async function defineQueue(id, queue = {}, experience = {}) {
  await admin('PUT', `/v1/admin/experiences/${id}`, {
    name: `Test drop ${id}`,
    checkoutUrl: '/demo/checkout',
    ...experience,
    sequences: [{ id: `${id}-q`, name: 'General Access', kind: 'queue', ...queue }],
  });
  return `${id}-q`;
}

/** Someone in line without a browser, over plain HTTP. */
export async function enterOverHttp(queueId) {
  const session = await (await fetch(`${BASE}/v1/sessions`, { method: 'POST' })).json();
  const res = await fetch(`${BASE}/v1/queues/${queueId}/enter`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session.sessionToken}` },
  });
  assert.equal(res.status, 200);
  return { session, entry: await res.json() };
}

export async function status(experienceId) {
  const res = await fetch(`${BASE}/v1/experiences/${experienceId}/status`);
  assert.equal(res.status, 200);
  return res.json();
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Polls `check` until it returns something truthy; fails after `ms`. */
export async function eventually(check, { ms = 20000, every = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((done) => setTimeout(done, every));
  }
  assert.fail(`timed out waiting for ${what} (last: ${last})`);
}

/** The number a waiting page shows as its place in line. */
export async function shownPosition(page) {
  await page.waitForSelector('#view-queue:not([hidden])');
  const text = await page.textContent('#position');
  return Number(text.replace(/[^\d]/g, ''));
}

/**
 * Records every place a waiting page shows, with how it was connected at
 * the time; the record outlives the page's move to checkout.
 */
export async function recordPositions(page) {
  const seen = [];
  await page.exposeFunction('velvetTestSaw', (entry) => seen.push(entry));
  await page.addInitScript(() => {
    document.addEventListener('DOMContentLoaded', () => {
      const el = document.getElementById('position');
      if (!el) return;
      const report = () => window.velvetTestSaw({
        position: Number(el.textContent.replace(/[^\d]/g, '')),
        connection: document.body.dataset.connection,
      });
      new MutationObserver(report).observe(el, { childList: true, subtree: true });
    });
  });
  return seen;
}

/** Waits until the page has landed on the demo checkout and redeemed. */
export async function reachesCheckout(page, ms = 30000) {
  await page.waitForURL(/\/demo\/checkout\?token=/, { timeout: ms });
  const heading = page.locator('#checkout-heading');
  return heading.getAttribute('data-outcome');
}

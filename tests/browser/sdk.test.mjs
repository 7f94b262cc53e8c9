// The JS SDK on its own, in the browser: how it is served, its errors, its
// retry rules, its session, and HTTP polling without a WebSocket.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE,
  admin,
  defineQueue,
  enterOverHttp,
  launch,
  uniqueId,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** A blank page on the node's origin, from which the SDK is imported. */
async function blankPage() {
  const page = await (await browser.newContext()).newPage();
  await page.route(`${BASE}/__sdk-test`, (route) => route.fulfill({
    contentType: 'text/html',
    body: '<!doctype html><title>SDK test</title>',
  }));
  await page.goto(`${BASE}/__sdk-test`);
  return page;
}

function requestsTo(page, fragment) {
  const seen = [];
  page.on('request', (r) => {
    if (r.url().includes(fragment)) seen.push(Date.now());
  });
  return seen;
}

test('the SDK and its types are served for long-lived caching', async () => {
  for (const [file, type] of [['velvet.js', /javascript/], ['velvet.d.ts', /typescript/]]) {
    const res = await fetch(`${BASE}/sdk/v1/${file}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), type);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  }
});

test('errors carry the contract code and status, and a 404 is not retried', async () => {
  const page = await blankPage();
  const calls = requestsTo(page, '/v1/queues/no-such-queue/enter');

  const error = await page.evaluate(async () => {
    const { createClient, VelvetError } = await import('/sdk/v1/velvet.js');
    const client = createClient(location.origin, { retryBaseMs: 10 });
    try {
      await client.queues.enter('no-such-queue');
      return null;
    } catch (e) {
      return { isVelvet: e instanceof VelvetError, code: e.code, status: e.status };
    }
  });

  assert.deepEqual(error, { isVelvet: true, code: 'NOT_FOUND', status: 404 });
  assert.equal(calls.length, 1);
});

test('a 503 and a 429 are retried, never sooner than Retry-After', {
  timeout: 30000,
}, async () => {
  const id = uniqueId('retry');
  const queue = await defineQueue(id);
  const page = await blankPage();
  const answers = [[503, 'SERVICE_UNAVAILABLE'], [429, 'RATE_LIMITED']];
  const calls = [];
  await page.route(`**/v1/queues/${queue}/enter`, (route) => {
    calls.push(Date.now());
    const next = answers.shift();
    if (!next) return route.continue();
    return route.fulfill({
      status: next[0],
      headers: { 'retry-after': '1', 'content-type': 'application/json' },
      body: JSON.stringify({ error: { code: next[1], message: 'later' } }),
    });
  });

  const entry = await page.evaluate(async (q) => {
    const { createClient } = await import('/sdk/v1/velvet.js');
    return createClient(location.origin, { retryBaseMs: 10 }).queues.enter(q);
  }, queue);

  assert.equal(entry.state, 'waiting');
  assert.equal(calls.length, 3);
  assert.ok(calls[1] - calls[0] >= 1000, 'waited out the first Retry-After');
  assert.ok(calls[2] - calls[1] >= 1000, 'waited out the second Retry-After');
});

test('a stored session the server refuses is replaced once', async () => {
  const id = uniqueId('stale');
  const queue = await defineQueue(id);
  const page = await blankPage();
  const created = requestsTo(page, '/v1/sessions');

  const entry = await page.evaluate(async (q) => {
    const key = `velvet.session.v1 ${location.origin}`;
    const later = new Date(Date.now() + 86400000).toISOString();
    localStorage.setItem(key, JSON.stringify({ sessionToken: 'forged', expiresAt: later }));
    const { createClient } = await import('/sdk/v1/velvet.js');
    return createClient(location.origin).queues.enter(q);
  }, queue);

  assert.equal(entry.position, 1);
  assert.equal(created.length, 1);
});

test('without WebSockets the SDK polls and emits the same events', {
  timeout: 30000,
}, async () => {
  const id = uniqueId('polling');
  const queue = await defineQueue(id, { admitPerMinute: 600, paused: true });
  await enterOverHttp(queue);
  const page = await blankPage();
  await page.evaluate(async (q) => {
    const { createClient } = await import('/sdk/v1/velvet.js');
    const client = createClient(location.origin, { realtime: false, pollIntervalMs: 200 });
    window.seen = [];
    client.on('queue:position-updated', (e) => window.seen.push(['position', e.position]));
    client.on('queue:access-granted', (e) => window.seen.push(['granted', !!e.handoffToken]));
    await client.queues.enter(q);
  }, queue);
  await page.waitForFunction(() => window.seen.length === 1);

  await admin('POST', `/v1/admin/sequences/${queue}/resume`);
  await page.waitForFunction(() => window.seen.some(([kind]) => kind === 'granted'));

  const seen = await page.evaluate(() => window.seen);
  assert.deepEqual(seen[0], ['position', 2]);
  assert.deepEqual(seen.at(-1), ['granted', true]);
  assert.equal(seen.filter(([kind]) => kind === 'granted').length, 1);
});

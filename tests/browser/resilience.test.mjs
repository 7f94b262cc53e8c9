// The waiting room when the network misbehaves: a WebSocket that is cut
// or never gets through, and an API that answers 503 for a while.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE,
  admin,
  defineQueue,
  enterOverHttp,
  launch,
  reachesCheckout,
  recordPositions,
  shownPosition,
  uniqueId,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/**
 * Routes the page's WebSockets through a switch: while `open`, they reach
 * the node; `cut()` closes those open and refuses new ones.
 */
async function socketSwitch(page) {
  const sw = { open: true, connected: 0, live: [] };
  await page.routeWebSocket(/\/v1\/ws$/, (ws) => {
    if (!sw.open) {
      ws.close({ code: 4000, reason: 'blocked by the test' });
      return;
    }
    ws.connectToServer();
    sw.connected++;
    sw.live.push(ws);
  });
  sw.cut = async () => {
    sw.open = false;
    await Promise.all(sw.live.splice(0).map((ws) => ws.close({ code: 4000 })));
  };
  return sw;
}

function countRequests(page, fragment) {
  const seen = { count: 0 };
  page.on('request', (r) => {
    if (r.url().includes(fragment)) seen.count++;
  });
  return seen;
}

test('with the WebSocket cut, the page polls, keeps moving and is admitted', {
  timeout: 90000,
}, async () => {
  const id = uniqueId('cut');
  // One admission every 2 s, polls every 3 s: several reads on the way.
  const queue = await defineQueue(id, { admitPerMinute: 30, paused: true });
  for (let i = 0; i < 5; i++) await enterOverHttp(queue);
  const page = await (await browser.newContext()).newPage();
  const sockets = await socketSwitch(page);
  const polls = countRequests(page, `/v1/queues/${queue}/position`);
  const shown = await recordPositions(page);
  await page.goto(`${BASE}/e/${id}`);
  assert.equal(await shownPosition(page), 6);
  await page.waitForSelector('body[data-connection="live"]');

  await sockets.cut();
  await page.waitForSelector('body[data-connection="polling"]');
  await admin('POST', `/v1/admin/sequences/${queue}/resume`);

  assert.equal(await reachesCheckout(page), 'redeemed');
  const polled = shown.filter((s) => s.connection === 'polling').map((s) => s.position);
  assert.ok(polled.some((p) => p < 6), `the place moved up while polling: ${polled}`);
  assert.ok(polls.count > 0, 'positions were read over HTTP');
  assert.equal(sockets.connected, 1, 'no socket got through after the cut');
});

test('after a cut the page reconnects its WebSocket and is admitted live', {
  timeout: 90000,
}, async () => {
  const id = uniqueId('reconnect');
  const queue = await defineQueue(id, { admitPerMinute: 120, paused: true });
  await enterOverHttp(queue);
  const page = await (await browser.newContext()).newPage();
  const sockets = await socketSwitch(page);
  await page.goto(`${BASE}/e/${id}`);
  assert.equal(await shownPosition(page), 2);
  await page.waitForSelector('body[data-connection="live"]');

  await sockets.cut();
  await page.waitForSelector('body[data-connection="polling"]');
  sockets.open = true;
  await page.waitForSelector('body[data-connection="live"]', { timeout: 20000 });
  await admin('POST', `/v1/admin/sequences/${queue}/resume`);

  assert.equal(await reachesCheckout(page), 'redeemed');
  assert.ok(sockets.connected >= 2, 'a second socket was opened');
});

test('while the API answers 503 the page says the place is secure, then recovers', {
  timeout: 90000,
}, async () => {
  const id = uniqueId('outage');
  const queue = await defineQueue(id, { admitPerMinute: 120, paused: true });
  await enterOverHttp(queue);
  const page = await (await browser.newContext()).newPage();
  const sockets = await socketSwitch(page);
  await page.goto(`${BASE}/e/${id}`);
  assert.equal(await shownPosition(page), 2);

  // The node "goes away": no socket, and every position read is a 503.
  await page.route(`**/v1/queues/${queue}/position`, (route) => route.fulfill({
    status: 503,
    headers: { 'retry-after': '1', 'content-type': 'application/json' },
    body: JSON.stringify({
      error: { code: 'SERVICE_UNAVAILABLE', message: 'down', retryAfterSeconds: 1 },
    }),
  }));
  await sockets.cut();

  await page.waitForSelector('#notice[data-kind="delay"]', { timeout: 20000 });
  const notice = await page.textContent('#notice');
  assert.match(notice, /your place in line is secure/i);
  assert.equal(await shownPosition(page), 2, 'the last known place stays shown');

  await page.unroute(`**/v1/queues/${queue}/position`);
  await admin('POST', `/v1/admin/sequences/${queue}/resume`);
  assert.equal(await reachesCheckout(page), 'redeemed');
});

// The hosted waiting room with a queue: a crowd arriving at once, refreshes
// and tabs, and one person's whole journey to checkout (with screenshots).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE,
  admin,
  defineQueue,
  enterOverHttp,
  eventually,
  launch,
  merchant,
  reachesCheckout,
  screenshot,
  shownPosition,
  status,
  uniqueId,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

test('twenty people arriving at once get distinct places and all reach checkout', {
  timeout: 120000,
}, async () => {
  const id = uniqueId('crowd');
  // Paused, so every place can be seen before anyone is admitted.
  const queue = await defineQueue(id, { admitPerMinute: 600, paused: true }, {
    inventory: 100,
  });
  const contexts = await Promise.all(range(20).map(() => browser.newContext()));
  const pages = await Promise.all(contexts.map((c) => c.newPage()));

  await Promise.all(pages.map((p) => p.goto(`${BASE}/e/${id}`)));
  const positions = await Promise.all(pages.map(shownPosition));

  assert.deepEqual([...positions].sort((a, b) => a - b), range(20));
  const live = await pages[0].locator('[aria-live="polite"] #position').count();
  assert.equal(live, 1, 'the position is inside a polite live region');
  await eventually(async () => (await status(id)).queueDepth === 20, {
    what: 'a queue depth of 20',
  });

  await admin('POST', `/v1/admin/sequences/${queue}/resume`);
  const outcomes = await Promise.all(pages.map((p) => reachesCheckout(p, 60000)));

  assert.deepEqual(outcomes, pages.map(() => 'redeemed'));
  const tokens = pages.map((p) => new URL(p.url()).searchParams.get('token'));
  assert.equal(new Set(tokens).size, 20, 'each person carried their own token');
  const again = await merchant('redeem', tokens[0]);
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, 'ALREADY_REDEEMED');
  await Promise.all(contexts.map((c) => c.close()));
});

test('a refresh keeps the place in line, and two tabs of one browser hold one place', {
  timeout: 60000,
}, async () => {
  const id = uniqueId('refresh');
  await defineQueue(id, { paused: true });
  const queue = `${id}-q`;
  for (let i = 0; i < 4; i++) await enterOverHttp(queue);
  const context = await browser.newContext();
  const page = await context.newPage();

  await page.goto(`${BASE}/e/${id}`);
  assert.equal(await shownPosition(page), 5);
  await page.reload();
  assert.equal(await shownPosition(page), 5);
  const tab = await context.newPage();
  await tab.goto(`${BASE}/e/${id}`);
  assert.equal(await shownPosition(tab), 5);

  await eventually(async () => (await status(id)).queueDepth === 5, {
    what: 'a queue depth of 5 after the refresh and the second tab',
  });
  await context.close();
});

test('tabs opened at the same moment in a new browser agree on one session', {
  timeout: 60000,
}, async () => {
  const id = uniqueId('tabs');
  await defineQueue(id, { paused: true });
  await enterOverHttp(`${id}-q`);
  const context = await browser.newContext();
  let sessionsCreated = 0;
  context.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/v1/sessions')) sessionsCreated++;
  });
  const [a, b] = await Promise.all([context.newPage(), context.newPage()]);

  await Promise.all([a.goto(`${BASE}/e/${id}`), b.goto(`${BASE}/e/${id}`)]);
  const shown = await Promise.all([shownPosition(a), shownPosition(b)]);

  assert.deepEqual(shown, [2, 2]);
  assert.equal(sessionsCreated, 1);
  await eventually(async () => (await status(id)).queueDepth === 2, {
    what: 'a queue depth of 2',
  });
  await context.close();
});

test('one person waits, is admitted and checks out (screenshots)', {
  timeout: 90000,
}, async () => {
  const id = uniqueId('journey');
  const queue = await defineQueue(id, { admitPerMinute: 240, paused: true }, {
    name: 'Spring Sneaker Drop',
    inventory: 500,
  });
  for (let i = 0; i < 30; i++) await enterOverHttp(queue);
  const context = await browser.newContext({ viewport: { width: 900, height: 820 } });
  const page = await context.newPage();
  await page.goto(`${BASE}/e/${id}`);
  assert.equal(await shownPosition(page), 31);

  await admin('POST', `/v1/admin/sequences/${queue}/resume`);
  // Once the line moves, the wait estimate is known.
  await eventually(async () => {
    const wait = await page.textContent('#wait');
    return (await shownPosition(page)) < 28 && !wait.includes('Calculating');
  }, { what: 'a moving line with a wait estimate' });
  await screenshot(page, 'waiting');

  // Hold the way to checkout, to capture the admitted view before it goes.
  let release;
  const held = new Promise((done) => { release = done; });
  await page.route('**/demo/checkout?**', async (route) => {
    await held;
    await route.continue();
  });
  await page.waitForSelector('#view-admitted:not([hidden])', { timeout: 30000 });
  const link = await page.getAttribute('#checkout-link', 'href');
  assert.match(link, /^http:\/\/[^/]+\/demo\/checkout\?token=ey/);
  await screenshot(page, 'admitted');
  release();

  assert.equal(await reachesCheckout(page), 'redeemed');
  const sub = await page.textContent('[data-claim="sub"]');
  const session = await page.evaluate(() => Object.entries(localStorage)
    .find(([k]) => k.startsWith('velvet.session.v1'))[1]);
  assert.equal(sub, JSON.parse(session).consumerId);
  assert.equal(await page.textContent('[data-claim="sequenceId"]'), queue);
  await screenshot(page, 'checkout');

  // Reloading the checkout cannot spend the token twice.
  const again = await page.reload();
  assert.equal(again.status(), 409);
  assert.equal(await page.getAttribute('#checkout-heading', 'data-outcome'),
    'already-redeemed');

  // Back in the waiting room, the person is told they are done.
  await page.goto(`${BASE}/e/${id}`);
  await page.waitForSelector('body[data-ended="redeemed"] #view-closed:not([hidden])');
  assert.match(await page.textContent('#closed-heading'), /checked out/);
  await context.close();
});

// The public status page, and the waiting room's messages for operators'
// announcements and a sell-out, on a phone-sized screen.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE,
  admin,
  defineQueue,
  enterOverHttp,
  launch,
  screenshot,
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

const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};

test('the status page shows the live numbers and refreshes itself', {
  timeout: 60000,
}, async () => {
  const id = uniqueId('status');
  await defineQueue(id, { paused: true }, { name: 'Console Restock', inventory: 40 });
  for (let i = 0; i < 3; i++) await enterOverHttp(`${id}-q`);
  const page = await (await browser.newContext()).newPage();

  const res = await page.goto(`${BASE}/status/${id}`);
  assert.equal(res.status(), 200);
  assert.equal(await page.textContent('#s-inventory'), '40');
  await page.waitForFunction(() => document.querySelector('#s-depth').textContent === '3');
  await page.waitForFunction(
    () => document.querySelector('#s-state').textContent === 'Paused',
  );

  const message = 'Restock at 18:00. Thank you for waiting!';
  await admin('PUT', `/v1/admin/experiences/${id}/announcement`, { message });
  await page.waitForSelector('#s-announcement:not([hidden])', { timeout: 15000 });
  assert.equal(await page.textContent('#s-announcement-text'), message);
  await screenshot(page, 'status');

  await admin('PUT', `/v1/admin/experiences/${id}/inventory`, { remaining: 0 });
  await page.waitForFunction(
    () => document.querySelector('#s-state').textContent === 'Sold out',
    null,
    { timeout: 15000 },
  );
});

test('an unknown experience gets a page that says so', async () => {
  const page = await (await browser.newContext()).newPage();
  const res = await page.goto(`${BASE}/e/no-such-drop`);
  assert.equal(res.status(), 404);
  assert.match(await page.textContent('h1'), /Nothing here/);
});

test('on a phone, the waiting room shows announcements and the sell-out', {
  timeout: 60000,
}, async () => {
  const id = uniqueId('phone');
  await defineQueue(id, { paused: true }, { inventory: 10 });
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  await page.goto(`${BASE}/e/${id}`);
  assert.equal(await shownPosition(page), 1);
  await page.waitForSelector('#notice[data-kind="paused"]');

  const message = 'Sizes 9 to 11 are gone.';
  await admin('PUT', `/v1/admin/experiences/${id}/announcement`, { message });
  await page.waitForSelector('#announcement:not([hidden])', { timeout: 15000 });
  assert.equal(await page.textContent('#announcement-text'), message);
  await admin('PUT', `/v1/admin/experiences/${id}/inventory`, { remaining: 0 });
  await page.waitForSelector('#notice[data-kind="soldout"]', { timeout: 15000 });

  assert.match(await page.textContent('#notice'), /waitlist/);
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth,
  );
  assert.equal(overflow, false, 'no sideways scrolling on a phone');
  await screenshot(page, 'phone-sold-out');

  const newcomer = await (await browser.newContext(PHONE)).newPage();
  await newcomer.goto(`${BASE}/e/${id}`);
  await newcomer.waitForSelector('#view-soldout:not([hidden])');
  await context.close();
});

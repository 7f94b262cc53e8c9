// The hosted waiting room with a draw: registration, the result, and the
// winner's way to checkout.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE,
  admin,
  eventually,
  launch,
  reachesCheckout,
  screenshot,
  uniqueId,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function defineDraw(id, winners) {
  const draw = `${id}-d`;
  const closesAt = new Date(Date.now() + 3600 * 1000).toISOString();
  await admin('PUT', `/v1/admin/experiences/${id}`, {
    name: 'Members Raffle',
    checkoutUrl: '/demo/checkout',
    sequences: [{ id: draw, name: 'Early Access draw', kind: 'draw', closesAt, winners }],
  });
  return draw;
}

async function register(page, id) {
  await page.goto(`${BASE}/e/${id}`);
  await page.waitForSelector('#view-draw:not([hidden])');
  await page.click('#draw-enter');
  await page.waitForSelector('#view-registered:not([hidden])');
}

test('draw pages register, show the result, and the winner reaches checkout', {
  timeout: 90000,
}, async () => {
  const id = uniqueId('raffle');
  const draw = await defineDraw(id, 1);
  const contexts = await Promise.all([browser.newContext(), browser.newContext()]);
  const pages = await Promise.all(contexts.map((c) => c.newPage()));

  for (const page of pages) await register(page, id);
  await screenshot(pages[0], 'draw-registered');
  // A refresh finds the registration again instead of offering it anew.
  await pages[0].reload();
  await pages[0].waitForSelector('#view-registered:not([hidden])');
  const proof = await (await fetch(`${BASE}/v1/draws/${draw}/proof`)).json();
  assert.equal(proof.entrantCount, 2);

  await admin('POST', `/v1/admin/draws/${draw}/run`);

  const winner = await eventually(
    () => pages.find((p) => p.url().includes('/demo/checkout')),
    { what: 'the winner to be sent to checkout' },
  );
  assert.equal(await reachesCheckout(winner), 'redeemed');
  assert.equal(await winner.textContent('[data-claim="kind"]'), 'draw');
  const loser = pages.find((p) => p !== winner);
  await loser.waitForSelector('#view-result:not([hidden])');
  const result = await loser.getAttribute('body', 'data-result');
  assert.ok(['lost', 'waitlisted'].includes(result), `the other entrant: ${result}`);
  await screenshot(loser, 'draw-result');
  await Promise.all(contexts.map((c) => c.close()));
});

test('a draw result waits for a person who comes back after the draw', {
  timeout: 60000,
}, async () => {
  const id = uniqueId('later');
  const draw = await defineDraw(id, 5);
  const context = await browser.newContext();
  const page = await context.newPage();
  await register(page, id);
  await page.close();

  await admin('POST', `/v1/admin/draws/${draw}/run`);
  const back = await context.newPage();
  await back.goto(`${BASE}/e/${id}`);

  assert.equal(await reachesCheckout(back), 'redeemed');
  await context.close();
});

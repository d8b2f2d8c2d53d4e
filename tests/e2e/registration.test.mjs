// A group's registration (docs/api.md "Group registration"; web/join.js,
// console.js): before a scheduled group starts, a guest's link registers
// them (the page shows the API's text and the scheduled time, and the link
// stays usable); the chair sees the registrations under the session's
// invites and admits them ("Admit", "Admit all"); once the chair's join
// opens the room, the admitted guest's same link and page take them
// straight into the room, without waiting.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  api, closeBrowser, closeSession, createFixtures, env, launchBrowser, skip,
  STEP_MS, TEST_MS, tokenOf,
} from './lib.mjs';

let context;
let people;
let staffToken;
let session;
const pages = {};
const logs = {};
const links = {};

const tail = (who) => (logs[who] ?? []).slice(-25).join('\n');

async function openTab(who, url) {
  const page = await context.newPage();
  logs[who] = [];
  page.on('console', (m) => logs[who].push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs[who].push(`pageerror: ${e.message}`));
  await page.goto(url);
  pages[who] = page;
  return page;
}

async function waitForText(who, selector, check, what) {
  const deadline = Date.now() + STEP_MS;
  let text = '';
  while (Date.now() < deadline) {
    text = await pages[who].locator(selector).innerText().catch(() => '');
    if (check(text)) {
      return text;
    }
    await sleep(200);
  }
  return assert.fail(`${who}'s ${selector} never showed ${what}: ${JSON.stringify(text)}\n${tail(who)}`);
}

async function link(name) {
  const invite = await api('POST', `/sessions/${session.id}/invites`,
    { channel: 'link', invitee: { display_name: name } }, staffToken);
  return new URL(invite.url, env.base).href;
}

const registrations = async () => (await api('GET',
  `/sessions/${session.id}/registrations`, undefined, staffToken)).items;

before(async () => {
  if (skip) {
    return;
  }
  people = await createFixtures();
  staffToken = await tokenOf(people.clinician);
  const at = new Date(Date.now() + 3600_000);
  at.setUTCSeconds(0, 0);
  session = await api('POST', '/sessions', {
    kind: 'group', name: 'E2E registration',
    scheduled_at: at.toISOString().replace(/\.\d+Z$/, 'Z'),
  }, staffToken);
  assert.equal(session.state, 'scheduled');
  links.ann = await link('Guest Ann');
  links.bob = await link('Guest Bob');
  context = await launchBrowser();
});

after(async () => {
  await closeBrowser(context);
  await closeSession(session, staffToken);
});

test('a guest\'s link registers them for the group that has not started', { skip, timeout: TEST_MS }, async () => {
  const page = await openTab('ann', links.ann);
  await page.getByLabel('Your name').fill('Guest Ann');
  await page.getByRole('button', { name: 'Join' }).click();
  const text = await waitForText('ann', '#registered', (t) => /registered/.test(t), 'the registration');
  assert.match(text, /You are registered for this group session\. Use your link again when it starts/);
  const when = new Date(session.scheduled_at).toLocaleString('en-US',
    { dateStyle: 'full', timeStyle: 'short' });
  assert.ok(text.includes(when), `the scheduled time (${when}) in ${JSON.stringify(text)}`);
  assert.equal(await page.locator('#problem').isVisible(), false, 'no error');
  assert.equal(await page.locator('#room-view').isVisible(), false, 'not in a room');
  // the form stays, for when it starts
  assert.equal(await page.getByRole('button', { name: 'Join' }).isEnabled(), true);
  assert.deepEqual((await registrations()).map((r) => [r.display_name, r.state]),
    [['Guest Ann', 'registered']]);
});

test('the chair sees the registrations on the session and admits them', { skip, timeout: TEST_MS }, async () => {
  // a second registrant, straight through the API
  const res = await fetch(`${env.base}/api/v1/invites/redeem`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: new URL(links.bob).hash.replace('#t=', ''),
      display_name: 'Guest Bob' }),
  });
  assert.equal(res.status, 202);

  const tab = await openTab('chair', `${env.base}/`);
  await tab.getByLabel('E-mail').fill(people.clinician.email);
  await tab.getByLabel('Password').fill(env.password);
  await tab.getByRole('button', { name: 'Log in' }).click();
  await tab.locator(`#sessions button.invites[data-session="${session.id}"]`).click();
  await tab.locator('#registrations-view').waitFor({ state: 'visible' });
  const ann = tab.locator('#registrations li', { hasText: 'Guest Ann' });
  await ann.waitFor();
  assert.match(await ann.innerText(), /Guest Ann registered .+ waiting for admission/);
  assert.equal(await tab.locator('#registrations li').count(), 2);

  await tab.getByRole('button', { name: 'Admit Guest Ann' }).click();
  await waitForText('chair', '#registrations li[data-state="admitted"]',
    (t) => /Guest Ann registered .+ admitted/.test(t), 'Ann admitted');
  assert.equal(await tab.locator('#invite-status').innerText(), 'Guest Ann is admitted.');

  await tab.getByRole('button', { name: 'Admit all registered people' }).click();
  await waitForText('chair', '#invite-status', (t) => t === '1 person is admitted.', 'Bob admitted');
  await tab.locator('#registrations li[data-state="registered"]').waitFor({ state: 'detached' });
  assert.equal(await tab.getByRole('button', { name: 'Admit all registered people' }).isDisabled(), true);
  assert.deepEqual((await registrations()).map((r) => [r.display_name, r.state]),
    [['Guest Ann', 'admitted'], ['Guest Bob', 'admitted']]);
});

test('once the group runs, the admitted guest\'s link takes them straight in', { skip, timeout: TEST_MS }, async () => {
  assert.ok(pages.ann, 'Ann registered');
  // the chair's join opens the room (the opener of a group)
  await api('POST', `/sessions/${session.id}/join`, undefined, staffToken);
  await pages.ann.getByRole('button', { name: 'Join' }).click();
  await pages.ann.locator('#room-view').waitFor({ state: 'visible' });
  await waitForText('ann', '#room-status', (t) => t === 'You are in the room.', 'that they are in');
  assert.equal(await pages.ann.locator('#registered').isVisible(), false);
});

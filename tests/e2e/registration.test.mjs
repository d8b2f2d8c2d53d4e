// A group's registration (docs/api.md "Group registration"; web/join.js,
// console.js): before a scheduled group starts, a guest's link registers
// them (the page shows the API's text and the scheduled time, and the link
// stays usable); the chair sees the registrations under the session's
// invites and admits them ("Admit", "Admit all"); once the chair's join
// opens the room, the admitted guest's same link and page take them
// straight into the room, without waiting.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  Tabs, api, closeBrowser, closeSession, createFixtures, env, launchBrowser, skip,
  TEST_MS, tokenOf,
} from './lib.mjs';

let context;
let tabs;
let people;
let staffToken;
let session;
const links = {};


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
  tabs = new Tabs(context);
});

after(async () => {
  await closeBrowser(context);
  await closeSession(session, staffToken);
});

test('a guest\'s link registers them for the group that has not started', { skip, timeout: TEST_MS }, async () => {
  const page = await tabs.open('ann', links.ann);
  await page.getByLabel('Your name').fill('Guest Ann');
  await page.getByRole('button', { name: 'Join' }).click();
  const text = await tabs.waitForText('ann', '#registered', (t) => /registered/.test(t), 'the registration');
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

  const tab = await tabs.open('chair', `${env.base}/`);
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
  await tabs.waitForText('chair', '#registrations li[data-state="admitted"]',
    (t) => /Guest Ann registered .+ admitted/.test(t), 'Ann admitted');
  assert.equal(await tab.locator('#invite-status').innerText(), 'Guest Ann is admitted.');

  await tab.getByRole('button', { name: 'Admit all registered people' }).click();
  await tabs.waitForText('chair', '#invite-status', (t) => t === '1 person is admitted.', 'Bob admitted');
  await tab.locator('#registrations li[data-state="registered"]').waitFor({ state: 'detached' });
  assert.equal(await tab.getByRole('button', { name: 'Admit all registered people' }).isDisabled(), true);
  assert.deepEqual((await registrations()).map((r) => [r.display_name, r.state]),
    [['Guest Ann', 'admitted'], ['Guest Bob', 'admitted']]);
});

test('once the group runs, the admitted guest\'s link takes them straight in', { skip, timeout: TEST_MS }, async () => {
  assert.ok(tabs.pages.ann, 'Ann registered');
  // the chair's join opens the room (the opener of a group)
  await api('POST', `/sessions/${session.id}/join`, undefined, staffToken);
  await tabs.pages.ann.getByRole('button', { name: 'Join' }).click();
  await tabs.pages.ann.locator('#room-view').waitFor({ state: 'visible' });
  await tabs.waitForText('ann', '#room-status', (t) => t === 'You are in the room.', 'that they are in');
  assert.equal(await tabs.pages.ann.locator('#registered').isVisible(), false);
});

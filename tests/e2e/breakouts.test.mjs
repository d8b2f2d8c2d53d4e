// Breakout rooms of a group on the call page (web/breakouts.js, room.js;
// docs/plugin.md "Breakout rooms"): a chair and two guests; the chair
// opens a breakout room and moves one guest into it.  The plugin sends
// each subscriber only the feeds of its own room, so the moved guest sees
// nobody's video (they are alone there) and the chair and the other
// guest, both in the main room, see each other's but no longer the moved
// guest's.  Closing the breakout room brings the guest back and everyone
// sees everyone again.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  Tabs, api, closeBrowser, closeSession, createSessionFixtures, env, launchBrowser,
  skip, TEST_MS,
} from './lib.mjs';

let context;
let tabs;
let people;
let staffToken;
let session;
const ids = {};


const textOf = (selector) => (page) => page.locator(selector).innerText();

/** The participants whose camera video plays on a page, sorted. */
const playing = (page) => page.evaluate(() => [...document.querySelectorAll(
  '#videos video.remote')]
  .filter((v) => v.srcObject && v.srcObject.getVideoTracks().length > 0
    && v.readyState >= 2 && v.videoWidth > 0)
  .map((v) => v.dataset.participant).sort());

async function sees(who, others) {
  const want = others.map((o) => ids[o]).sort();
  await tabs.waitFor(who, `saw the video of exactly ${others.join(', ') || 'nobody'}`,
    playing, (got) => JSON.stringify(got) === JSON.stringify(want));
}

/** The chair's participants list: room headings and names, in order. */
const chairList = (page) => page.evaluate(() => [...document.querySelectorAll(
  '#participants > li')].map((li) => (li.classList.contains('room-heading')
  ? `# ${li.firstChild.textContent}${li.childNodes[1].textContent}`
  : li.firstChild.textContent.trim())));

async function guestJoins(who, name) {
  const invite = await api('POST', `/sessions/${session.id}/invites`,
    { channel: 'link', invitee: { display_name: name } }, staffToken);
  ids[who] = `guest:${invite.id}`;
  const page = await tabs.open(who, new URL(invite.url, env.base).href);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join' }).click();
  await tabs.waitFor(who, 'waited', textOf('#room-status'), (t) => /wait/i.test(t));
}

before(async () => {
  if (skip) {
    return;
  }
  ({ people, staffToken, session } = await createSessionFixtures('group',
    'E2E breakouts'));
  ids.chair = `staff:${people.clinician.id}`;
  context = await launchBrowser();
  tabs = new Tabs(context);
});

after(async () => {
  await closeBrowser(context);
  await closeSession(session, staffToken);
});

test('a chair and two guests in a group see each other', { skip, timeout: TEST_MS }, async () => {
  const staff = await tabs.open('chair', `${env.base}/`);
  await staff.getByLabel('E-mail').fill(people.clinician.email);
  await staff.getByLabel('Password').fill(env.password);
  await staff.getByRole('button', { name: 'Log in' }).click();
  await staff.locator(`#sessions button.join[data-session="${session.id}"]`).click();
  await staff.locator('#room-view').waitFor({ state: 'visible' });
  await tabs.waitFor('chair', 'was in the room', textOf('#participants'), (t) => /chair/.test(t));

  await guestJoins('ann', 'Guest Ann');
  await guestJoins('bob', 'Guest Bob');
  await staff.locator('#waiting li', { hasText: 'Guest Bob' }).waitFor();
  await staff.getByRole('button', { name: 'Admit all' }).click();
  await sees('chair', ['ann', 'bob']);
  await sees('ann', ['chair', 'bob']);
  await sees('bob', ['chair', 'ann']);

  // breakout controls are the chair's only
  assert.equal(await staff.locator('#breakout-bar').isVisible(), true);
  assert.equal(await tabs.pages.ann.locator('#participants select, #participants button').count(), 0);
});

test('the chair opens a breakout room and moves a guest into it', { skip, timeout: TEST_MS }, async () => {
  const staff = tabs.pages.chair;
  assert.ok(tabs.pages.bob, 'everyone is in the room');
  await staff.getByRole('button', { name: 'New breakout room' }).click();
  await tabs.waitFor('chair', 'said the room is open', textOf('#room-status'),
    (t) => t === 'Breakout room 1 is open.');
  await tabs.waitFor('chair', 'listed the empty breakout room', chairList,
    (l) => l.includes('# Breakout room 1 (0)'));

  await staff.getByLabel('Room of Guest Ann').selectOption({ label: 'Breakout room 1' });
  await tabs.waitFor('ann', 'read where they are', textOf('#room-status'),
    (t) => t === 'You are in breakout room 1.');
  assert.equal(await tabs.pages.ann.locator('#room-title').innerText(), 'Video call: Breakout room 1');
  // the chair's list is grouped by room
  await tabs.waitFor('chair', 'grouped the list by room', chairList,
    (l) => JSON.stringify(l) === JSON.stringify([
      '# Main room (2)', `${people.clinician.name} (you)`, 'Guest Bob',
      '# Breakout room 1 (1)', 'Guest Ann']));
  // the others read that Ann is elsewhere
  await tabs.waitFor('bob', 'saw Ann in the breakout room', textOf('#participants'),
    (t) => /Guest Ann broadcaster in breakout room 1/.test(t));
  await tabs.waitFor('ann', 'saw Bob in the main room', textOf('#participants'),
    (t) => /Guest Bob broadcaster in the main room/.test(t));

  // who receives whom: only the people of one's own room
  await sees('ann', []);
  await sees('chair', ['bob']);
  await sees('bob', ['chair']);
});

test('closing the breakout room brings everyone back to the main room', { skip, timeout: TEST_MS }, async () => {
  const staff = tabs.pages.chair;
  assert.ok(tabs.pages.ann, 'Ann is in the breakout room');
  await staff.getByRole('button', { name: 'Close breakout room 1' }).click();
  await tabs.waitFor('ann', 'read that they are back', textOf('#room-status'),
    (t) => t === 'You are back in the main room.');
  assert.equal(await tabs.pages.ann.locator('#room-title').innerText(), 'Video call');
  await tabs.waitFor('chair', 'listed everyone without rooms', chairList,
    (l) => !l.some((x) => x.startsWith('# ')) && l.length === 3);
  await sees('ann', ['chair', 'bob']);
  await sees('chair', ['ann', 'bob']);
  await sees('bob', ['chair', 'ann']);
  assert.doesNotMatch(await tabs.pages.bob.locator('#participants').innerText(), /breakout/);
  for (const who of ['chair', 'ann', 'bob']) {
    assert.equal(await tabs.pages[who].locator('#problem').isVisible(), false,
      `no error on ${who}'s page: ${await tabs.pages[who].locator('#problem').innerText()}`);
  }
});

// A scheduled consultation, opened by its invitee (docs/lifecycle.md,
// "Opening"): the clinician requests a consultation for later, without a
// patient, and makes a guest invite link.  Their own join is refused
// before anyone arrives.  The guest opens the link, gives a name, and the
// session opens with the guest in its waiting room; the clinician's
// console rings and its "Waiting room" view lists the guest; "Start next
// consultation" opens the call, admits the guest, and each tab shows the
// other's video playing.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  Tabs, STEP_MS, api, closeBrowser, closeSession, createFixtures, env, launchBrowser, skip,
  TEST_MS,
} from './lib.mjs';

let context;
let tabs;
let people;
let staffToken;
let session;
let inviteUrl;
const guestName = `Guest ${crypto.randomBytes(3).toString('hex')}`;


before(async () => {
  if (skip) {
    return;
  }
  people = await createFixtures();
  staffToken = (await api('POST', '/auth/login',
    { email: people.clinician.email, password: env.password })).access_token;
  const tomorrow = new Date(Date.now() + 24 * 3600 * 1000).toISOString()
    .replace(/\.\d+Z$/, 'Z');
  session = await api('POST', '/sessions', {
    kind: 'consultation', name: 'E2E second opinion', scheduled_at: tomorrow,
  }, staffToken);
  const invite = await api('POST', `/sessions/${session.id}/invites`,
    { channel: 'link', invitee: { display_name: guestName } }, staffToken);
  const u = new URL(invite.url, env.base);
  inviteUrl = new URL(u.pathname + u.search + u.hash, env.base).href;
  context = await launchBrowser();
  tabs = new Tabs(context);
  // count the tones the console plays
  await context.addInitScript(() => {
    window.thTones = 0;
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (...args) {
      window.thTones++;
      return start.apply(this, args);
    };
  });
});

after(async () => {
  await closeBrowser(context);
  await closeSession(session, staffToken);
});

test('the requester cannot open a scheduled consultation', { skip, timeout: TEST_MS }, async () => {
  assert.equal(session.state, 'scheduled');
  assert.equal(session.patient_id, null, 'a consultation without a patient');

  const res = await fetch(`${env.base}/api/v1/sessions/${session.id}/join`, {
    method: 'POST', headers: { Authorization: `Bearer ${staffToken}` },
  });
  const problem = await res.json();
  assert.equal(res.status, 409);
  assert.equal(problem.detail, 'The session has not started yet.');

  const staff = await tabs.open('clinician', `${env.base}/`);
  const stream = staff.waitForResponse((r) => r.url().includes('/me/events?ticket=')
    && r.status() === 200);
  await staff.getByLabel('E-mail').fill(people.clinician.email);
  await staff.getByLabel('Password').fill(env.password);
  await staff.getByRole('button', { name: 'Log in' }).click();
  const row = staff.locator(`#sessions tr[data-session="${session.id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /scheduled/);
  assert.equal(await row.locator('button.join').count(), 0, 'no Join before the guest is there');
  await stream;

  await staff.getByRole('button', { name: 'Waiting room', exact: true }).click();
  await staff.locator('#waiting-view').waitFor({ state: 'visible' });
  assert.equal(await staff.locator('#nobody-waiting').isVisible(), true);
  assert.equal(await staff.getByRole('button', { name: 'Start next consultation' }).isDisabled(), true);
});

test('the guest opens the link and waits; the requester\'s console rings', { skip, timeout: TEST_MS }, async () => {
  const staff = tabs.pages.clinician;
  assert.ok(staff, 'the console is open');
  const guest = await tabs.open('guest', inviteUrl);
  await guest.getByLabel('Your name').fill(guestName);
  await guest.getByRole('button', { name: 'Join' }).click();
  await tabs.waitForText('guest', '#room-status', (t) => /Please wait/.test(t), 'that the guest waits');

  const row = staff.locator('#waiting-list tr', { hasText: guestName });
  await row.waitFor();
  assert.match(await row.innerText(), /Consultation E2E second opinion/);
  await staff.waitForFunction(() => window.thTones >= 2, null, { timeout: STEP_MS });
  assert.match(await staff.title(), /^\(1 waiting\)/);
  assert.equal(await staff.locator('#waiting-count').innerText(), '1');
  assert.match(await staff.locator('#console-events li.console-waiting').first().innerText(),
    /waiting to be admitted/);
  const now = await api('GET', `/sessions/${session.id}`, undefined, staffToken);
  assert.equal(now.state, 'open', 'the guest opened the session');
});

test('"Start next consultation" opens the call and admits the guest', { skip, timeout: TEST_MS }, async (t) => {
  const staff = tabs.pages.clinician;
  assert.ok(tabs.pages.guest, 'the guest waits');
  await staff.getByRole('button', { name: 'Start next consultation' }).click();
  await staff.locator('#room-view').waitFor({ state: 'visible' });
  await tabs.waitForText('guest', '#room-status', (t) => /let in/.test(t), 'that they were let in');

  const [atStaff, atGuest] = await Promise.all([
    tabs.waitForPlayingVideo('clinician'),
    tabs.waitForPlayingVideo('guest'),
  ]);
  t.diagnostic(`clinician's tab: ${JSON.stringify(atStaff)}`);
  t.diagnostic(`guest's tab: ${JSON.stringify(atGuest)}`);
  assert.match(atStaff.participant, /^guest:/, 'the clinician sees the guest');
  assert.match(atStaff.label, new RegExp(guestName));
  assert.equal(atGuest.participant, `staff:${people.clinician.id}`, 'the guest sees the clinician');
  await staff.locator('#participants li', { hasText: guestName }).waitFor();
  assert.equal(await staff.locator('#waiting-room').isVisible(), false, 'nobody waits in the room');
  for (const who of ['clinician', 'guest']) {
    assert.equal(await tabs.pages[who].locator('#problem').isVisible(), false,
      `no error on the ${who}'s page: ${await tabs.pages[who].locator('#problem').innerText()}`);
  }
  // leaving goes back to the waiting room, empty now
  await staff.getByRole('button', { name: 'Leave' }).click();
  await staff.locator('#waiting-view').waitFor({ state: 'visible' });
  await staff.locator('#nobody-waiting').waitFor({ state: 'visible' });
  assert.match(await staff.locator('#notice').innerText(), /left/i);
  assert.equal(await staff.title(), 'Telehealth');
});

test('"Admit" on a row of the waiting room lets that person in', { skip, timeout: TEST_MS }, async () => {
  const staff = tabs.pages.clinician;
  assert.ok(await staff.locator('#waiting-view').isVisible(), 'the console shows the waiting room');
  const other = `Guest ${crypto.randomBytes(3).toString('hex')}`;
  const invite = await api('POST', `/sessions/${session.id}/invites`,
    { channel: 'link', invitee: { display_name: other } }, staffToken);
  const u = new URL(invite.url, env.base);
  const tones = await staff.evaluate(() => window.thTones);
  const guest2 = await tabs.open('guest2', new URL(u.pathname + u.search + u.hash, env.base).href);
  await guest2.getByLabel('Your name').fill(other);
  await guest2.getByRole('button', { name: 'Join' }).click();
  await tabs.waitForText('guest2', '#room-status', (t) => /Please wait/.test(t), 'that the guest waits');

  const row = staff.locator('#waiting-list tr', { hasText: other });
  await row.waitFor();
  assert.match(await row.innerText(), /guest/);
  await staff.waitForFunction((n) => window.thTones >= n + 2, tones, { timeout: STEP_MS });
  await staff.getByRole('button', { name: `Admit ${other} to Consultation E2E second opinion` }).click();
  await staff.locator('#room-view').waitFor({ state: 'visible' });
  await tabs.waitForText('guest2', '#room-status', (t) => /let in/.test(t), 'that they were let in');
  await tabs.waitForText('clinician', '#participants',
    (t) => t.includes(other) && t.includes(guestName), 'both guests in the room');
  assert.equal(await staff.locator('#problem').isVisible(), false,
    `no error on the clinician's page: ${await staff.locator('#problem').innerText()}`);
});

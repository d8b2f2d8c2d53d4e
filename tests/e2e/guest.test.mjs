// The invite link in a real browser (web/join.html): a clinician opens a
// telehealth session (access "invitation", which admits guests) and joins it
// from the console; an invite link is made through the API; a second tab
// opens the link, gives a name and joins.  Each tab shows the other's video
// playing, the token is gone from the address bar, and the spent
// single-use link, opened again, says so.
//
// Run inside the media namespace by scripts/e2e-tests.sh (the stack's
// environment: TH_BASE, TH_PG, TH_TEST_PASSWORD[_HASH], TH_CHROMIUM).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  Tabs, api, closeBrowser, closeSession, createFixtures, env, launchBrowser, skip,
  TEST_MS,
} from './lib.mjs';

// -------------------------------------------------------------- browser

let context;
let tabs;
let people;
let staffToken;
let session;
let inviteUrl;


/** The invite's URL, made absolute against the stack's base. */
function absolute(url) {
  const u = new URL(url, env.base);
  return new URL(u.pathname + u.search + u.hash, env.base).href;
}

before(async () => {
  if (skip) {
    return;
  }
  people = await createFixtures();
  const login = await api('POST', '/auth/login',
    { email: people.clinician.email, password: env.password });
  staffToken = login.access_token;
  session = await api('POST', '/sessions',
    { kind: 'telehealth', patient_id: people.patient.id, access: 'invitation' }, staffToken);
  context = await launchBrowser();
  tabs = new Tabs(context);
});

after(async () => {
  await closeBrowser(context);
  await closeSession(session, staffToken);
});

test('a guest joins by invite link: each tab sees the other, the token leaves the address bar', { skip, timeout: TEST_MS }, async (t) => {
  const staff = await tabs.open('clinician', `${env.base}/`);
  await staff.getByLabel('E-mail').fill(people.clinician.email);
  await staff.getByLabel('Password').fill(env.password);
  await staff.getByRole('button', { name: 'Log in' }).click();
  const join = staff.locator(`#sessions button.join[data-session="${session.id}"]`);
  await join.waitFor({ state: 'visible' });
  await join.click();
  await staff.locator('#room-view').waitFor({ state: 'visible' });

  const invite = await api('POST', `/sessions/${session.id}/invites`,
    { channel: 'link', single_use: true }, staffToken);
  inviteUrl = absolute(invite.url);
  assert.match(inviteUrl, /\/join#t=/);
  t.diagnostic(`invite url path: ${new URL(inviteUrl).pathname}`);

  const guestName = `Guest ${crypto.randomBytes(3).toString('hex')}`;
  const guest = await tabs.open('guest', inviteUrl);
  assert.ok(!guest.url().includes(invite.token), `the token is gone from the address bar: ${guest.url()}`);
  assert.ok(!guest.url().includes('#t='), `no fragment left: ${guest.url()}`);
  await guest.getByLabel('Your name').fill(guestName);
  await guest.getByRole('button', { name: 'Join' }).click();
  await guest.locator('#room-view').waitFor({ state: 'visible' });

  const [atStaff, atGuest] = await Promise.all([
    tabs.waitForPlayingVideo('clinician'),
    tabs.waitForPlayingVideo('guest'),
  ]);
  t.diagnostic(`clinician's tab: ${JSON.stringify(atStaff)}`);
  t.diagnostic(`guest's tab: ${JSON.stringify(atGuest)}`);
  assert.match(atStaff.participant, /^guest:/, 'the clinician sees the guest');
  assert.match(atStaff.label, new RegExp(guestName));
  assert.equal(atGuest.participant, `staff:${people.clinician.id}`, 'the guest sees the clinician');
  assert.ok(!guest.url().includes(invite.token), 'still no token in the address bar');
  for (const who of ['clinician', 'guest']) {
    assert.equal(await tabs.pages[who].locator('#problem').isVisible(), false,
      `no error on the ${who}'s page: ${await tabs.pages[who].locator('#problem').innerText()}`);
  }
});

test('the spent single-use link, opened again, says it has been used', { skip, timeout: TEST_MS }, async () => {
  assert.ok(inviteUrl, 'the invite was made');
  const again = await tabs.open('guest-again', inviteUrl);
  try {
    await again.getByLabel('Your name').fill('Someone Else');
    await again.getByRole('button', { name: 'Join' }).click();
    const problem = again.getByRole('alert');
    await problem.waitFor({ state: 'visible' });
    assert.equal(await problem.innerText(), 'This link has already been used.');
    assert.equal(await again.locator('#room-view').isVisible(), false, 'no room for a spent link');
  } finally {
    await again.close();
  }
});

test('the guest leaves', { skip, timeout: TEST_MS }, async () => {
  assert.ok(tabs.pages.guest, 'the call is up');
  await tabs.pages.guest.getByRole('button', { name: 'Leave' }).click();
  await tabs.pages.guest.locator('#room-view').waitFor({ state: 'hidden' });
  assert.match(await tabs.pages.guest.locator('#notice').innerText(), /left/i);
  await tabs.pages.clinician.locator('video.remote').waitFor({ state: 'detached' });
});

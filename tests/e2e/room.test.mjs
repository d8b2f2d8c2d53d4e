// A chair's moderation on the call page (web/room.js, docs/plugin.md
// "Room semantics"), in an appointment, whose patients and guests wait to
// be let in: the clinician admits the patient, admits two guests at once,
// turns a third away, then mutes the patient, makes them a viewer and
// removes them.  Each step is asserted on what the other tab shows.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  Tabs, api, closeBrowser, closeSession, createSessionFixtures, env, launchBrowser,
  psql, skip, TEST_MS,
} from './lib.mjs';

let context;
let tabs;
let people;
let staffToken;
let session;


async function loginAndJoin(who, person) {
  const page = await tabs.open(who, `${env.base}/`);
  await page.getByLabel('E-mail').fill(person.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  const join = page.locator(`#sessions button.join[data-session="${session.id}"]`);
  await join.click();
  await page.locator('#room-view').waitFor({ state: 'visible' });
  return page;
}

/** A guest opens a fresh link of the session and asks to join. */
async function guestJoins(who, name) {
  const invite = await api('POST', `/sessions/${session.id}/invites`,
    { channel: 'link', invitee: { display_name: name } }, staffToken);
  const page = await tabs.open(who, new URL(invite.url, env.base).href);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join' }).click();
  await tabs.waitForText(who, '#room-status', (t) => /wait/i.test(t), 'that they wait');
  return page;
}

before(async () => {
  if (skip) {
    return;
  }
  ({ people, staffToken, session } = await createSessionFixtures('appointment',
    'E2E moderated'));
  context = await launchBrowser();
  tabs = new Tabs(context);
});

after(async () => {
  await closeBrowser(context);
  await closeSession(session, staffToken);
});

test('the patient arrives first and waits; the chair sees them in the waiting room and admits them', { skip, timeout: TEST_MS }, async () => {
  // an appointment: the service user starts it and waits, the provider
  // joins and admits (the provider cannot be in the room first)
  await loginAndJoin('patient', people.patient);
  await tabs.waitForText('patient', '#room-status', (t) => /Please wait/.test(t), 'that the patient waits');

  const staff = await loginAndJoin('clinician', people.clinician);
  await tabs.waitForText('clinician', '#participants', (t) => /chair/.test(t), 'the chair');
  const waiting = staff.locator('#waiting li', { hasText: people.patient.name });
  await waiting.waitFor();
  assert.match(await waiting.innerText(), /waiting/);
  assert.equal(await staff.locator('#participants li', { hasText: people.patient.name }).count(), 0,
    'a waiting patient is not in the room yet');

  await staff.getByRole('button', { name: `Admit ${people.patient.name}` }).click();
  await tabs.waitForText('patient', '#room-status', (t) => /let in/.test(t), 'that they were let in');
  await staff.locator('#participants li', { hasText: people.patient.name }).waitFor();
  await staff.locator('#waiting-room').waitFor({ state: 'hidden' });
  await tabs.waitForText('patient', '#participants', (t) => t.includes(people.clinician.name), 'the clinician');
});

test('"Admit all" lets two waiting guests in; "Turn away" refuses a third', { skip, timeout: TEST_MS }, async () => {
  const staff = tabs.pages.clinician;
  assert.ok(staff, 'the chair is in the room');
  await guestJoins('guestA', 'Guest Ann');
  await guestJoins('guestB', 'Guest Bob');
  await staff.locator('#waiting li', { hasText: 'Guest Bob' }).waitFor();
  assert.equal(await staff.locator('#waiting li').count(), 2);
  await staff.getByRole('button', { name: 'Admit all' }).click();
  for (const who of ['guestA', 'guestB']) {
    await tabs.waitForText(who, '#room-status', (t) => /let in/.test(t), 'that they were let in');
  }
  await tabs.waitForText('clinician', '#participants',
    (t) => t.includes('Guest Ann') && t.includes('Guest Bob'), 'both guests in the room');

  await guestJoins('guestC', 'Guest Cy');
  await staff.getByRole('button', { name: 'Turn away Guest Cy' }).click();
  await tabs.waitForText('guestC', '#notice', (t) => t === 'You were not let in.', 'the refusal');
  await staff.locator('#waiting-room').waitFor({ state: 'hidden' });
  assert.doesNotMatch(await staff.locator('#participants').innerText(), /Guest Cy/);
});

test('the chair mutes and unmutes the patient, makes them a viewer and removes them', { skip, timeout: TEST_MS }, async () => {
  const staff = tabs.pages.clinician;
  assert.ok(tabs.pages.patient, 'the patient is in the room');
  const row = staff.locator('#participants li', { hasText: people.patient.name });

  await staff.getByRole('button', { name: `Mute ${people.patient.name}` }).click();
  await tabs.waitForText('patient', '#room-status',
    (t) => t === 'The chair has muted your microphone.', 'the mute');
  await staff.getByRole('button', { name: `Unmute ${people.patient.name}` }).waitFor();
  assert.match(await row.innerText(), /muted/);
  await staff.getByRole('button', { name: `Unmute ${people.patient.name}` }).click();
  await tabs.waitForText('patient', '#room-status', (t) => t === 'The chair has unmuted you.', 'the unmute');
  await staff.getByRole('button', { name: `Mute ${people.patient.name}` }).waitFor();

  await staff.getByRole('button', { name: `Stop video of ${people.patient.name}` }).click();
  await tabs.waitForText('patient', '#room-status',
    (t) => t === 'The chair has muted your camera.', 'the camera stopped');
  await staff.getByRole('button', { name: `Allow video of ${people.patient.name}` }).click();
  await tabs.waitForText('patient', '#room-status', (t) => t === 'The chair has unmuted you.', 'the camera allowed');

  await staff.getByLabel(`Role of ${people.patient.name}`).selectOption('viewer');
  await tabs.waitForText('patient', '#room-status', (t) => t === 'Your role is now viewer.', 'the new role');
  await tabs.waitForText('clinician', `#participants li[data-participant="patient:${people.patient.id}"] .tag`,
    (t) => t === 'viewer', 'the patient as viewer');

  await staff.getByRole('button', { name: `Remove ${people.patient.name}` }).click();
  await tabs.pages.patient.locator('#sessions-view').waitFor({ state: 'visible' });
  assert.equal(await tabs.pages.patient.locator('#notice').innerText(), 'You were removed from the call.');
  await row.waitFor({ state: 'detached' });
  assert.equal(await staff.locator('#problem').isVisible(), false,
    `no error on the chair's page: ${await staff.locator('#problem').innerText()}`);
});

test('a guest\'s page has no moderation controls', { skip, timeout: TEST_MS }, async () => {
  const guest = tabs.pages.guestA;
  assert.ok(guest, 'a guest is in the room');
  await tabs.waitForText('guestA', '#participants', (t) => t.includes(people.clinician.name), 'the clinician');
  assert.equal(await guest.locator('#participants button, #participants select').count(), 0);
});

test('the removed patient is listed on the session for its chair, who lets them back in', { skip, timeout: TEST_MS }, async () => {
  assert.ok(tabs.pages.patient, 'the patient was removed');
  const tab = await tabs.open('clinician2', `${env.base}/`);
  await tab.getByLabel('E-mail').fill(people.clinician.email);
  await tab.getByLabel('Password').fill(env.password);
  await tab.getByRole('button', { name: 'Log in' }).click();
  await tab.locator(`#sessions button.invites[data-session="${session.id}"]`).click();
  await tab.locator('#bans-view').waitFor({ state: 'visible' });
  // The removal bans the patient: nginx records it from the plugin's
  // chair.action event with th_chair_action(); called here as nginx does,
  // so the list does not depend on that event (idempotent).
  await psql(`SELECT th_chair_action(:'session', 'remove', :'chair', :'who', '',
    (extract(epoch FROM now()) * 1000)::bigint)`, {
    session: session.id, chair: `staff:${people.clinician.id}`,
    who: `patient:${people.patient.id}`,
  });
  const bans = (await api('GET', `/sessions/${session.id}/bans`, undefined, staffToken)).items;
  assert.deepEqual(bans.map((b) => b.participant), [`patient:${people.patient.id}`]);
  const patientToken = (await api('POST', '/auth/login',
    { email: people.patient.email, password: env.password })).access_token;
  const refused = await fetch(`${env.base}/api/v1/sessions/${session.id}/join`, {
    method: 'POST', headers: { Authorization: `Bearer ${patientToken}` },
  });
  assert.equal(refused.status, 403, 'a banned patient gets no join credential');
  // the list refreshes by itself
  const letIn = tab.getByRole('button', { name: `Let ${people.patient.name} back in` });
  await letIn.waitFor().catch(async (e) => {
    assert.fail(`${e.message}\n${await tab.locator('#bans-view').innerText()}\n${tabs.tail('clinician2')}`);
  });
  await letIn.click();
  await tab.locator('#no-bans').waitFor({ state: 'visible' });
  assert.match(await tab.locator('#invite-status').innerText(), /can join this session again/);
  const now = await api('GET', `/sessions/${session.id}/bans`, undefined, staffToken);
  assert.deepEqual(now.items, []);
  // and the patient may join again, in the role the chair gave them
  // (docs/lifecycle.md: a demoted participant rejoins demoted)
  const grant = await api('POST', `/sessions/${session.id}/join`, undefined, patientToken);
  assert.equal(grant.role, 'viewer');
});

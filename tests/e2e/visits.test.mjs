// The console's "Visits" (web/visits.js): the caregiver sends the invite,
// is refused the video before clocking in, clocks in and joins; the
// client joins from their own page and hangs up, which the caregiver's
// page says in words; the caregiver hangs up and their page says the
// session is over.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  api, closeBrowser, createFixtures, env, launchBrowser, psql, skip, TEST_MS,
  tokenOf,
} from './lib.mjs';

const CLOCK_IN_FIRST = 'You must clock into the visit before you can join '
  + 'the video session.';
const CLIENT_HUNG_UP = 'The client has hung up. If the session is not '
  + 'supposed to be over, please reach out to the client.';
const CAREGIVER_OVER = 'Your session with the client is over. You can now '
  + 'close the page.';

let context;
let people;
let visit;
const logs = [];

before(async () => {
  if (skip) {
    return;
  }
  people = await createFixtures();
  const code = `VV-${Date.now()}`;
  await psql(`INSERT INTO service_codes (org_id, code, name, virtual_visits_allowed)
              SELECT org_id, :'code', 'Home visit', true FROM staff WHERE id = :'sid'`,
  { code, sid: people.clinician.id });
  visit = await api('POST', '/visits', { patient_id: people.patient.id,
    service_code: code, scheduled_at: new Date().toISOString() },
  await tokenOf(people.clinician));
  context = await launchBrowser();
});

after(async () => {
  await closeBrowser(context);
});

async function logIn(page, person) {
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`${env.base}/`);
  await page.getByLabel('E-mail').fill(person.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'My sessions' }).waitFor();
}

test('a caregiver invites, clocks in, joins; the client hangs up; the caregiver hangs up', { skip, timeout: TEST_MS }, async () => {
  const staff = await context.newPage();
  await logIn(staff, people.clinician);
  await staff.getByRole('button', { name: 'Visits' }).click();
  const row = staff.locator('#visits tr');
  await row.waitFor();
  assert.match(await row.innerText(), /not clocked in/);

  await staff.getByRole('button', { name: 'Send invite to client' }).click();
  await staff.locator('#notice', { hasText: 'The invite was e-mailed to the client.' }).waitFor();
  await staff.getByRole('button', { name: 'Join video' }).click();
  await staff.locator('#problem', { hasText: CLOCK_IN_FIRST }).waitFor();

  await staff.getByRole('button', { name: 'Clock in' }).click();
  await staff.locator('#notice', { hasText: 'You are clocked in.' }).waitFor();
  await staff.getByRole('button', { name: 'Join video' }).click();
  await staff.locator('#room-view').waitFor({ state: 'visible' });
  await staff.locator('#participants', { hasText: people.clinician.name }).waitFor();

  // the client joins from their own page, then hangs up
  const client = await context.newPage();
  await logIn(client, people.patient);
  await client.getByRole('button', { name: /^Join / }).click();
  await client.locator('#room-view').waitFor({ state: 'visible' });
  await staff.locator('#participants', { hasText: people.patient.name }).waitFor();
  await client.getByRole('button', { name: 'Leave' }).click();
  await staff.locator('#room-status', { hasText: CLIENT_HUNG_UP }).waitFor();

  // the caregiver hangs up: over for good
  await staff.getByRole('button', { name: 'Leave' }).click();
  await staff.locator('#visits-view').waitFor({ state: 'visible' });
  await staff.locator('#notice', { hasText: CAREGIVER_OVER }).waitFor();
  await staff.locator('#visits tr', { hasText: 'video over' }).waitFor();
  assert.equal(await staff.getByRole('button', { name: 'Send invite to client' })
    .isDisabled(), true, `no new session for the visit\n${logs.join('\n')}`);
  assert.equal(visit.caregiver_id, people.clinician.id);
});

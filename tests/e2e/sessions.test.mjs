// The console's "My sessions" and "New session" (web/console.js): the
// scheduled, open and recently ended sessions the clinician is on, with
// kind, name, time and state (GET /sessions and its filters); joining an
// open one from the list; creating a session of another kind than a video
// call, with a name, a date and time and an access level.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  api, closeBrowser, closeSession, createFixtures, createPatient, env,
  launchBrowser, psql, skip, TEST_MS, tokenOf,
} from './lib.mjs';

let context;
let people;
let staffToken;
let other;
let page;
const logs = [];
const opened = [];

before(async () => {
  if (skip) {
    return;
  }
  people = await createFixtures();
  staffToken = await tokenOf(people.clinician);
  other = await createPatient(people.clinician, `Other E2E ${Date.now()}`);
  context = await launchBrowser();
  page = await context.newPage();
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
});

after(async () => {
  await closeBrowser(context);
  for (const s of opened) {
    await closeSession(s, staffToken);
  }
});

/** A session the clinician chairs, written as an appointment's would be. */
async function recordSession(kind, state, name, { scheduledAt = null, endedAgo = null } = {}) {
  return psql(`
    WITH s AS (
      INSERT INTO sessions (org_id, kind, state, patient_id, created_by, name,
                            scheduled_at, ended_at)
      SELECT org_id, :'kind', :'state', :'pid', id, :'name',
             NULLIF(:'at', '')::timestamptz,
             now() - NULLIF(:'ago', '')::interval
      FROM staff WHERE id = :'sid' RETURNING id
    ), c AS (
      INSERT INTO session_participants (session_id, staff_id, role)
      SELECT s.id, :'sid', 'chair' FROM s
    )
    SELECT id FROM s`, {
    kind, state, name, sid: people.clinician.id, pid: people.patient.id,
    at: scheduledAt ?? '', ago: endedAgo ?? '',
  });
}

/** The rows of "My sessions" as the user reads them: cells' text. */
async function rows() {
  return page.locator('#sessions tr').evaluateAll((trs) => trs.map((tr) => ({
    id: tr.dataset.session,
    cells: [...tr.cells].map((td) => td.innerText.trim()),
    time: tr.querySelector('time')?.getAttribute('datetime'),
  })));
}

async function waitForRow(name, state) {
  const row = page.locator('#sessions tr', { hasText: name })
    .filter({ hasText: state });
  await row.waitFor({ state: 'visible' });
  return row;
}

test('"My sessions" lists scheduled, open and recently ended sessions with kind, name, time and state, filters them, and joins an open one', { skip, timeout: TEST_MS }, async () => {
  await recordSession('appointment', 'scheduled', 'E2E planned',
    { scheduledAt: '2030-01-02T09:30:00Z' });
  await recordSession('consultation', 'ended', 'E2E done', { endedAgo: '1 hour' });
  await recordSession('consultation', 'ended', 'E2E long ago', { endedAgo: '10 days' });
  const live = await api('POST', '/sessions', { kind: 'telehealth',
    patient_id: people.patient.id, name: 'E2E live' }, staffToken);
  opened.push(live);

  await page.goto(`${env.base}/`);
  await page.getByLabel('E-mail').fill(people.clinician.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'My sessions' }).waitFor();
  await waitForRow('E2E live', 'open');

  const seen = await rows();
  const byName = Object.fromEntries(seen.map((r) => [r.cells[1], r]));
  assert.deepEqual(Object.keys(byName).sort(), ['E2E done', 'E2E live', 'E2E planned'],
    `ended ten days ago is not "recent": ${JSON.stringify(seen)}\n${logs.join('\n')}`);
  assert.deepEqual(byName['E2E planned'].cells.slice(0, 4),
    ['Appointment', 'E2E planned', byName['E2E planned'].cells[2], 'scheduled']);
  assert.equal(byName['E2E planned'].time, '2030-01-02T09:30:00Z', 'the scheduled time');
  assert.match(byName['E2E planned'].cells[2], /2030/);
  assert.deepEqual([byName['E2E done'].cells[0], byName['E2E done'].cells[3]],
    ['Consultation', 'ended']);
  assert.deepEqual([byName['E2E live'].cells[0], byName['E2E live'].cells[3]],
    ['Telehealth', 'open']);
  assert.equal(await page.getByRole('button', { name: /^Join / }).count(), 1,
    'only the open session can be joined');

  // the filters are GET /sessions' own
  const listed = page.waitForResponse((r) => r.url().includes('/sessions?')
    && r.url().includes('state=scheduled'));
  await page.getByLabel('State').selectOption('scheduled');
  await listed;
  await page.locator('#sessions tr', { hasText: 'E2E live' }).waitFor({ state: 'detached' });
  assert.deepEqual((await rows()).map((r) => r.cells[1]), ['E2E planned']);
  await page.getByLabel('State').selectOption('');
  await page.locator('#filter-form').getByRole('combobox', { name: /^Kind/ }).selectOption('consultation');
  await page.locator('#sessions tr', { hasText: 'E2E planned' }).waitFor({ state: 'detached' });
  assert.deepEqual((await rows()).map((r) => r.cells[1]), ['E2E done']);
  await page.locator('#filter-form').getByRole('combobox', { name: /^Kind/ }).selectOption('');

  // join the open one from the list
  await page.getByRole('button', { name: /^Join Telehealth E2E live/ }).click();
  await page.locator('#room-view').waitFor({ state: 'visible' });
  await page.locator('#participants', { hasText: people.clinician.name }).waitFor();
  assert.match(await page.locator('#room-status').innerText(), /chair|room/);
  await page.getByRole('button', { name: 'Leave' }).click();
  await page.locator('#sessions-view').waitFor({ state: 'visible' });
});

test('a session of another kind: kind, name, date and time, access level and patient; it is listed, not joined', { skip, timeout: TEST_MS }, async () => {
  await page.locator('#start-form').getByRole('combobox', { name: /^Kind/ }).selectOption('appointment');
  const create = page.getByRole('button', { name: 'Create session' });
  await create.waitFor();
  await page.getByLabel(/^Name/).fill('E2E follow-up');
  await page.getByLabel('Date and time').fill('2030-03-04T10:15');
  await page.getByLabel('Access').selectOption('invitation');
  await page.locator('#patient-select').selectOption(other.id);
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/sessions')
    && r.request().method() === 'POST');
  await create.click();
  const created = await (await answer).json();
  opened.push(created);

  // a planned kind with a future time waits, without a room, until its
  // chair opens it by joining
  const row = await waitForRow('E2E follow-up', 'scheduled');
  const cells = await row.locator('td').allInnerTexts();
  assert.deepEqual([cells[0], cells[1], cells[3]], ['Appointment', 'E2E follow-up', 'scheduled']);
  const expected = await page.evaluate(() => new Date('2030-03-04T10:15')
    .toISOString().replace(/\.\d+Z$/, 'Z'));
  assert.equal(await row.locator('time').getAttribute('datetime'), expected);
  assert.match(await page.locator('#notice').innerText(), /E2E follow-up.*created/);
  assert.equal(await page.locator('#room-view').isVisible(), false, 'an appointment is not joined at once');

  // what was recorded is what the form said
  const s = await api('GET', `/sessions/${created.id}`, undefined, staffToken);
  assert.deepEqual([s.kind, s.name, s.access, s.patient_id, s.scheduled_at],
    ['appointment', 'E2E follow-up', 'invitation', other.id, expected]);

  // the form is ready for the next one, a video call by default
  await page.getByRole('button', { name: 'Start video call' }).waitFor();
});

test('a refused session shows the API\'s problem detail', { skip, timeout: TEST_MS }, async () => {
  await page.locator('#start-form').getByRole('combobox', { name: /^Kind/ }).selectOption('virtual_visit');
  await page.getByLabel('Service code').fill('');
  await page.locator('#patient-select').selectOption(people.patient.id);
  await page.getByRole('button', { name: 'Create session' }).click();
  const problem = page.getByRole('alert');
  await problem.waitFor({ state: 'visible' });
  assert.match(await problem.innerText(), /service_code|service code/i);
});

test('a consultation needs no patient; an appointment without one shows the API\'s problem detail', { skip, timeout: TEST_MS }, async () => {
  await page.reload();
  await page.locator('#sessions-view').waitFor({ state: 'visible' });
  await page.locator('#start-form').getByRole('combobox', { name: /^Kind/ }).selectOption('consultation');
  assert.equal(await page.locator('#patient-select option:checked').innerText(), 'No patient');
  assert.match(await page.locator('#patient-pick').innerText(), /optional/);
  await page.getByLabel(/^Name/).fill('E2E without patient');
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/sessions')
    && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Create session' }).click();
  const created = await (await answer).json();
  opened.push(created);
  assert.equal(created.patient_id, null, JSON.stringify(created));
  await waitForRow('E2E without patient', 'open');
  // its invites are for guests only
  await page.getByRole('button', { name: /^Invites Consultation E2E without patient/ }).click();
  assert.equal(await page.getByLabel('The session\'s patient').isDisabled(), true);
  assert.equal(await page.getByLabel('A guest').isChecked(), true);
  await page.getByRole('button', { name: 'Close invites' }).click();

  await page.locator('#start-form').getByRole('combobox', { name: /^Kind/ }).selectOption('appointment');
  assert.equal(await page.locator('#patient-select option:checked').innerText(), 'Choose a patient');
  assert.doesNotMatch(await page.locator('#patient-pick').innerText(), /optional/);
  await page.getByRole('button', { name: 'Create session' }).click();
  const problem = page.getByRole('alert');
  await problem.waitFor({ state: 'visible' });
  assert.equal(await problem.innerText(), 'This kind of session needs a "patient_id".');
});

// The console page hears GET /me/events (docs/api.md, "Console events"):
// a clinician added to a session sees it in the notifications list, and
// someone waiting rings (two tones) and stands out in the list.  The page
// opens the stream with a ticket, as an EventSource must.  The events are
// caused in PostgreSQL, the way the API and the event consumer cause them
// (integration/console.test.mjs covers the way there from the plugin).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  closeBrowser, createFixtures, env, launchBrowser, psql, skip, STEP_MS, TEST_MS,
} from './lib.mjs';

let context;
let people;
let page;
const logs = [];

before(async () => {
  if (skip) {
    return;
  }
  people = await createFixtures();
  context = await launchBrowser();
  // count the tones the page plays
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
});

test('the console lists "added" and rings when the patient waits', { skip, timeout: TEST_MS }, async () => {
  page = await context.newPage();
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`${env.base}/`);

  const stream = page.waitForResponse((r) => r.url().includes('/me/events?ticket=')
    && r.status() === 200);
  await page.getByLabel('E-mail').fill(people.clinician.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#sessions-view').waitFor({ state: 'visible' });
  await stream;

  // another staff member puts the clinician on a session
  const session = await psql(`
    WITH a AS (
      INSERT INTO staff (org_id, display_name, email, role)
      SELECT org_id, 'Admin E2E', :'email', 'admin' FROM staff WHERE id = :'sid'
      RETURNING id, org_id
    ), s AS (
      INSERT INTO sessions (org_id, kind, state, patient_id, created_by, name)
      SELECT a.org_id, 'consultation', 'scheduled', :'pid', a.id, 'E2E review'
      FROM a RETURNING id
    ), c AS (
      INSERT INTO session_participants (session_id, staff_id, role)
      SELECT s.id, a.id, 'chair' FROM s, a
    )
    SELECT id FROM s`, { sid: people.clinician.id, pid: people.patient.id,
    email: `admin.e2e.${Date.now()}@e2e.test` });
  await psql(`INSERT INTO session_participants (session_id, staff_id, role)
    VALUES (:'session', :'sid', 'broadcaster')`,
  { session, sid: people.clinician.id });

  const added = page.locator('#console-events li.console-added');
  await added.waitFor({ state: 'visible' });
  assert.equal(await added.innerText(),
    'You have been added to the session "E2E review".', logs.join('\n'));

  // the patient arrives in the waiting room: the event consumer's call
  await psql(`SELECT th_console_room_event('participant.waiting', :'session',
    'patient:' || :'pid', 'broadcaster', '')`,
  { session, pid: people.patient.id });
  const waiting = page.locator('#console-events li.console-waiting');
  await waiting.waitFor({ state: 'visible' });
  assert.match(await waiting.innerText(),
    /^The patient is waiting to be admitted\. \(E2E review\)$/);
  await page.waitForFunction(() => window.thTones >= 2, null,
    { timeout: STEP_MS });
  assert.equal(await page.locator('#console-events li').first().getAttribute('class'),
    'console-waiting', 'the newest first');
});

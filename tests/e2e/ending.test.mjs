// The chair's ways out and the engagement buttons on the call page (web/)
// in a real browser: a clinician in a call with a patient starts a
// follow-up, ends the call keeping the session open, starts a new call in
// the same session from "My sessions", closes the session, and downloads
// its PDF.
//
// Run inside the media namespace by scripts/e2e-tests.sh.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import {
  api, closeBrowser, closeSession, createSessionFixtures, env,
  launchBrowser, skip, STEP_MS, TEST_MS,
} from './lib.mjs';

let context;
let page;
let fx;
const log = [];

before(async () => {
  if (skip) return;
  fx = await createSessionFixtures('telehealth', 'E2E ending');
  context = await launchBrowser();
  page = await context.newPage();
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  await page.goto(`${env.base}/`);
  await page.getByLabel('E-mail').fill(fx.people.clinician.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#sessions-view').waitFor({ state: 'visible', timeout: STEP_MS });
});

after(async () => {
  if (fx) await closeSession(fx.session, fx.staffToken);
  await closeBrowser(context);
});

const row = () => page.locator(`tr[data-session="${fx.session.id}"]`);

async function stateOfRow(state) {
  await page.getByRole('button', { name: 'Refresh' }).click().catch(() => {});
  await row().locator(`.state-${state}`).waitFor({ timeout: STEP_MS });
}

test('a chair starts a follow-up, keeps the session open, calls again, closes it and exports it',
  { skip, timeout: TEST_MS }, async () => {
    try {
      await row().locator('button.join').click();
      await page.locator('#chair-end').waitFor({ state: 'visible', timeout: STEP_MS });
      await page.locator('#engagements').waitFor({ state: 'visible', timeout: STEP_MS });
      assert.match(await page.locator('#end-leave-note').textContent(),
        /keeps the call running/);

      await page.getByLabel('Note').fill('Nächste Woche');
      await page.getByRole('button', { name: 'Follow-up' }).click();
      await page.getByText('Follow-up started.').waitFor({ timeout: STEP_MS });
      const list = await api('GET', `/patients/${fx.people.patient.id}/engagements`,
        undefined, fx.staffToken);
      assert.deepEqual(list.items.map((e) => [e.kind, e.note]),
        [['follow_up', 'Nächste Woche']]);

      await page.getByRole('button', { name: 'End the call, keep the session open' }).click();
      await page.locator('#sessions-view').waitFor({ state: 'visible', timeout: STEP_MS });
      await stateOfRow('idle');

      await row().getByRole('button', { name: /^New call/ }).click();
      await page.locator('#chair-end').waitFor({ state: 'visible', timeout: STEP_MS });
      await page.getByRole('button', { name: 'Close the session' }).click();
      await page.locator('#sessions-view').waitFor({ state: 'visible', timeout: STEP_MS });
      await stateOfRow('ended');

      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: STEP_MS }),
        row().locator('a.export').click(),
      ]);
      const file = await download.path();
      assert.equal(fs.readFileSync(file).subarray(0, 5).toString(), '%PDF-');
      assert.equal(download.suggestedFilename(), `session-${fx.session.id}.pdf`);
    } catch (e) {
      e.message += `\npage log:\n${log.slice(-25).join('\n')}`;
      throw e;
    }
  });

// The chat of a call in a real browser (web/chat.js): a clinician's tab
// and the patient's tab in the same video call; the clinician sends a
// message with a photo, the patient's tab shows both as they arrive (the
// event stream) and answers; the clinician captures a still of the
// patient's video, which is filed to the patient (GET /patients/{id}/files);
// then closes the session and exports it: the chat is in the PDF.
//
// Run inside the media namespace by scripts/e2e-tests.sh.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  api, closeBrowser, closeSession, createFixtures, env, launchBrowser,
  skip, STEP_MS, TEST_MS, tokenOf,
} from './lib.mjs';

let context;
let people;
const pages = {};
const logs = { clinician: [], patient: [] };
const tail = (who) => logs[who].slice(-25).join('\n');

// a 2x2 PNG
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4' +
  'nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');

async function openTab(who, person) {
  const page = await context.newPage();
  page.on('console', (m) => logs[who].push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs[who].push(`pageerror: ${e.message}`));
  await page.goto(`${env.base}/`);
  await page.getByLabel('E-mail').fill(person.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#sessions-view').waitFor({ state: 'visible', timeout: STEP_MS });
  pages[who] = page;
  return page;
}

async function waitForMessage(who, text) {
  const item = pages[who].locator('#room-chat .chat-message', { hasText: text });
  try {
    await item.first().waitFor({ state: 'visible', timeout: STEP_MS });
  } catch (e) {
    assert.fail(`${who} never saw "${text}"\n${tail(who)}`);
  }
  return item.first();
}

before(async () => {
  if (skip) {
    return;
  }
  people = await createFixtures();
  context = await launchBrowser();
});

after(async () => {
  await closeBrowser(context);
});

test('staff and patient chat with an image during a call, a still is filed to the patient, then the chair closes and exports it', { skip, timeout: TEST_MS }, async () => {
  const staff = await openTab('clinician', people.clinician);
  if (await staff.locator('#patient-pick').isVisible()) {
    await staff.locator('#patient-select').selectOption(people.patient.id);
  } else {
    await staff.getByLabel('Patient id').fill(people.patient.id);
  }
  await staff.getByRole('button', { name: 'Start video call' }).click();
  await staff.locator('#room-view').waitFor({ state: 'visible' });

  const patient = await openTab('patient', people.patient);
  const join = patient.locator('#sessions button.join');
  await join.first().waitFor({ state: 'visible' });
  await join.first().click();
  await patient.locator('#room-view').waitFor({ state: 'visible' });

  // the clinician writes, with a photo
  await staff.locator('#room-chat input[name=text]').fill('Here is the photo');
  await staff.locator('#room-chat input[type=file]').setInputFiles({
    name: 'photo.png', mimeType: 'image/png', buffer: PNG,
  });
  await staff.locator('#room-chat button[type=submit]').click();

  const got = await waitForMessage('patient', 'Here is the photo');
  assert.match(await got.innerText(), new RegExp(people.clinician.name));
  const img = got.locator('img.chat-image');
  await img.waitFor({ state: 'attached', timeout: STEP_MS });
  let src = '';
  for (let i = 0; i < 50 && !src.startsWith('data:image/png'); i++) {
    src = (await img.getAttribute('src')) || '';
    await sleep(100);
  }
  assert.ok(src.startsWith('data:image/png'), `the photo shows: ${src.slice(0, 40)}\n${tail('patient')}`);

  // the patient answers
  await patient.locator('#room-chat input[name=text]').fill('Thank you, doctor');
  await patient.locator('#room-chat button[type=submit]').click();
  await waitForMessage('clinician', 'Thank you, doctor');

  // a still of the patient's video, filed to the patient
  const video = staff.locator('video.remote[data-kind="camera"]');
  await video.first().waitFor({ state: 'attached', timeout: STEP_MS });
  for (let i = 0; i < 100; i++) {
    if (await video.first().evaluate((v) => v.videoWidth > 0)) break;
    await sleep(200);
  }
  await staff.getByRole('button', { name: 'Capture still' }).click();
  await waitForMessage('patient', 'filed to the patient');

  const token = await tokenOf(people.clinician);
  const files = await api('GET', `/patients/${people.patient.id}/files`, undefined, token);
  assert.equal(files.items.length, 1, 'one still filed to the patient');
  assert.equal(files.items[0].content_type, 'image/jpeg');

  // the clinician closes the session for everyone, then exports its
  // record from "My sessions": the chat is in the PDF
  const sessions = await api('GET', '/sessions?state=open', undefined, token);
  const session = sessions.items[0];
  try {
    await staff.getByRole('button', { name: 'Close the session' }).click();
    await staff.locator('#sessions-view').waitFor({ state: 'visible', timeout: STEP_MS });
    await patient.locator('#room-view').waitFor({ state: 'hidden', timeout: STEP_MS });
    const row = staff.locator(`tr[data-session="${session.id}"]`);
    await staff.getByRole('button', { name: 'Refresh' }).click().catch(() => {});
    await row.locator('.state-ended').waitFor({ timeout: STEP_MS });
    const [download] = await Promise.all([
      staff.waitForEvent('download', { timeout: STEP_MS }),
      row.locator('a.export').click(),
    ]);
    const file = await download.path();
    const text = execFileSync('pdftotext', ['-q', '-enc', 'UTF-8', file, '-']).toString('utf8');
    for (const said of ['Here is the photo', 'Thank you, doctor']) {
      assert.match(text, new RegExp(said), `"${said}" is in the export`);
    }
    assert.match(text, /Attachment: image\.png \(image\/png\)/, 'the photo is listed');
  } finally {
    await closeSession(session, token);
  }
});

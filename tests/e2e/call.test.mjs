// The call page (web/) in a real browser: Debian's chromium with a fake
// camera and microphone, two tabs of one browser.  A clinician starts a
// video call with an assigned patient, the patient joins from the second
// tab, and each tab shows the other's video playing, with sound.  Then the
// controls: a mute shows on the other side; Janus killed and restarted,
// both tabs rejoin by themselves; the clinician leaving ends the call for
// the patient.
//
// Run inside the media namespace by scripts/e2e-tests.sh (the stack's
// environment: TH_BASE, TH_PG, TH_TEST_PASSWORD[_HASH], TH_CHROMIUM).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import {
  Tabs, closeBrowser, createFixtures, env, launchBrowser, skip, STEP_MS, TEST_MS,
} from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const execFileP = promisify(execFile);

// -------------------------------------------------------------- browser

let context;
let tabs;
let people;


async function login(page, person) {
  await page.getByLabel('E-mail').fill(person.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#sessions-view').waitFor({ state: 'visible', timeout: STEP_MS });
}

async function participantsText(who) {
  return tabs.pages[who].locator('#participants').innerText();
}

async function waitForParticipants(who, check, what) {
  const deadline = Date.now() + STEP_MS;
  let text = '';
  while (Date.now() < deadline) {
    text = await participantsText(who);
    if (check(text)) {
      return text;
    }
    await sleep(200);
  }
  assert.fail(`${who}'s participants list never showed ${what}: ${JSON.stringify(text)}\n${tabs.tail(who)}`);
}

before(async () => {
  if (skip) {
    return;
  }
  people = await createFixtures();
  context = await launchBrowser();
  tabs = new Tabs(context);
});

after(async () => {
  await closeBrowser(context);
});

test('staff starts a video call, the patient joins from a second tab, each sees and hears the other', { skip, timeout: TEST_MS }, async (t) => {
  await tabs.open('clinician', `${env.base}/`);
  await login(tabs.pages.clinician, people.clinician);
  const staff = tabs.pages.clinician;
  if (await staff.locator('#patient-pick').isVisible()) {
    await staff.locator('#patient-select').selectOption(people.patient.id);
    t.diagnostic('the patient was picked from the list (GET /patients)');
  } else {
    await staff.getByLabel('Patient id').fill(people.patient.id);
  }
  await staff.getByRole('button', { name: 'Start video call' }).click();
  await staff.locator('#room-view').waitFor({ state: 'visible' });
  await waitForParticipants('clinician', (t) => t.includes(people.clinician.name), 'the clinician');

  await tabs.open('patient', `${env.base}/`);
  await login(tabs.pages.patient, people.patient);
  const join = tabs.pages.patient.locator('#sessions button.join');
  await join.first().waitFor({ state: 'visible' });
  await join.first().click();
  await tabs.pages.patient.locator('#room-view').waitFor({ state: 'visible' });

  for (const who of ['clinician', 'patient']) {
    await waitForParticipants(who, (t) => t.includes(people.clinician.name) && t.includes(people.patient.name),
      'both people');
  }

  const [atStaff, atPatient] = await Promise.all([
    tabs.waitForPlayingVideo('clinician'),
    tabs.waitForPlayingVideo('patient'),
  ]);
  t.diagnostic(`clinician's tab: ${JSON.stringify(atStaff)}`);
  t.diagnostic(`patient's tab: ${JSON.stringify(atPatient)}`);
  assert.equal(atStaff.participant, `patient:${people.patient.id}`, 'the clinician sees the patient');
  assert.equal(atPatient.participant, `staff:${people.clinician.id}`, 'the patient sees the clinician');
  assert.match(atStaff.label, new RegExp(people.patient.name));
  assert.equal(await tabs.pages.clinician.locator('#problem').isVisible(), false,
    `no error on the clinician's page: ${await tabs.pages.clinician.locator('#problem').innerText()}`);
  assert.equal(await tabs.pages.patient.locator('#problem').isVisible(), false,
    `no error on the patient's page: ${await tabs.pages.patient.locator('#problem').innerText()}`);
});

test('a second call for the patient is refused with the API\'s problem detail on the page', { skip, timeout: TEST_MS }, async () => {
  assert.ok(tabs.pages.clinician, 'the call is up');
  const tab = await tabs.open('clinician-second', `${env.base}/`);
  try {
    await login(tab, people.clinician);
    if (await tab.locator('#patient-pick').isVisible()) {
      await tab.locator('#patient-select').selectOption(people.patient.id);
    } else {
      await tab.getByLabel('Patient id').fill(people.patient.id);
    }
    await tab.getByRole('button', { name: 'Start video call' }).click();
    const problem = tab.getByRole('alert');
    await problem.waitFor({ state: 'visible' });
    assert.equal(await problem.innerText(), 'The participant is already in a video session.');
    assert.equal(await tab.locator('#room-view').isVisible(), false, 'no room for the refused call');
  } finally {
    await tab.close();
  }
});

test('mute and video pause show in the other tab\'s participants list, and clear again', { skip, timeout: TEST_MS }, async () => {
  assert.ok(tabs.pages.patient, 'the call is up');
  const mute = tabs.pages.patient.getByRole('button', { name: 'Mute' });
  await mute.click();
  await tabs.pages.patient.getByRole('button', { name: 'Unmute' }).waitFor();
  assert.equal(await tabs.pages.patient.locator('#mute').getAttribute('aria-pressed'), 'true');
  await waitForParticipants('clinician', (t) => /muted/.test(t), 'the patient muted');
  const micOff = await tabs.pages.patient.evaluate(() => call.micTrack && call.micTrack.enabled);
  assert.equal(micOff, false, 'the microphone track sends nothing while muted');

  await tabs.pages.patient.getByRole('button', { name: 'Unmute' }).click();
  await waitForParticipants('clinician', (t) => !/muted/.test(t), 'the patient unmuted');
  // The picture keeps playing through it.
  await tabs.waitForPlayingVideo('clinician');

  await tabs.pages.patient.getByRole('button', { name: 'Pause video' }).click();
  await waitForParticipants('clinician', (t) => /video paused/.test(t), 'the patient\'s video paused');
  const cameraOff = await tabs.pages.patient.evaluate(() => call.cameraTrack && call.cameraTrack.enabled);
  assert.equal(cameraOff, false, 'the camera track sends nothing while paused');
  await tabs.pages.patient.getByRole('button', { name: 'Resume video' }).click();
  await waitForParticipants('clinician', (t) => !/video paused/.test(t), 'the patient\'s video resumed');
  await tabs.waitForPlayingVideo('clinician');
});

test('the clinician shares the screen: a second video plays in the patient\'s tab, and goes when sharing stops', { skip, timeout: TEST_MS }, async (t) => {
  assert.ok(tabs.pages.clinician, 'the call is up');
  await tabs.pages.clinician.getByRole('button', { name: 'Share screen' }).click();
  await tabs.pages.clinician.getByRole('button', { name: 'Stop sharing' }).waitFor();
  const screen = await tabs.waitForPlayingVideo('patient', { kind: 'screen', audio: 0 });
  t.diagnostic(`patient's tab, screen: ${JSON.stringify(screen)}`);
  assert.equal(screen.participant, `staff:${people.clinician.id}`);
  assert.match(screen.label, /screen/);
  await tabs.waitForPlayingVideo('patient');

  await tabs.pages.clinician.getByRole('button', { name: 'Stop sharing' }).click();
  await tabs.pages.clinician.getByRole('button', { name: 'Share screen' }).waitFor();
  await tabs.pages.patient.locator('video.remote[data-kind="screen"]').waitFor({ state: 'detached' });
  await tabs.waitForPlayingVideo('patient');
});

test('Janus dies and comes back: both tabs show "Reconnecting…", rejoin by themselves and see each other again', { skip, timeout: TEST_MS }, async (t) => {
  assert.ok(tabs.pages.clinician && tabs.pages.patient, 'the call is up');
  const run = process.env.TH_RUN;
  assert.ok(run, 'TH_RUN names the stack (scripts/media-tests.sh)');
  const pid = Number(fs.readFileSync(path.join(run, 'janus', 'janus.pid'), 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  const killedAt = Date.now();

  // The pages notice the lost WebSocket and keep trying.
  for (const who of ['clinician', 'patient']) {
    await tabs.pages[who].locator('#room-status', { hasText: 'Reconnecting…' })
      .waitFor({ state: 'visible', timeout: STEP_MS });
  }
  // The same node_id comes back: its rooms' members are from before.
  await execFileP(path.join(ROOT, 'scripts', 'stack.sh'), ['start-janus'], { timeout: 60_000 });

  const [atStaff, atPatient] = await Promise.all([
    tabs.waitForPlayingVideo('clinician'),
    tabs.waitForPlayingVideo('patient'),
  ]);
  t.diagnostic(`video again in both tabs ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
  assert.equal(atStaff.participant, `patient:${people.patient.id}`, 'the clinician sees the patient again');
  assert.equal(atPatient.participant, `staff:${people.clinician.id}`, 'the patient sees the clinician again');
  for (const who of ['clinician', 'patient']) {
    assert.equal(await tabs.pages[who].locator('#room-view').isVisible(), true, `${who} is still in the call view`);
  }
});

test('the clinician leaving ends the video call in the patient\'s tab', { skip, timeout: TEST_MS }, async () => {
  assert.ok(tabs.pages.clinician, 'the call is up');
  await tabs.pages.clinician.getByRole('button', { name: 'Leave' }).click();
  await tabs.pages.clinician.locator('#sessions-view').waitFor({ state: 'visible' });
  await tabs.pages.patient.locator('#sessions-view').waitFor({ state: 'visible' });
  const notice = await tabs.pages.patient.locator('#notice').innerText();
  assert.match(notice, /call has ended/i);
  assert.equal(await tabs.pages.patient.locator('video.remote').count(), 0, 'no video left');
});

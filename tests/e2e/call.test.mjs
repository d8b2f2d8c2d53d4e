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
  closeBrowser, createFixtures, env, launchBrowser, skip, STEP_MS, TEST_MS,
} from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const execFileP = promisify(execFile);

// -------------------------------------------------------------- browser

let context;
let people;
const pages = {};
const logs = { clinician: [], patient: [] };

/** What a page said, for failure messages. */
const tail = (who) => logs[who].slice(-25).join('\n');

async function openTab(who) {
  const page = await context.newPage();
  page.on('console', (m) => logs[who].push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs[who].push(`pageerror: ${e.message}`));
  await page.goto(`${env.base}/`);
  return page;
}

async function login(page, person) {
  await page.getByLabel('E-mail').fill(person.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#sessions-view').waitFor({ state: 'visible', timeout: STEP_MS });
}

/**
 * Waits until a remote camera video of the page plays: enough data to show
 * a frame (readyState >= 2, HAVE_CURRENT_DATA), a frame size, and a
 * playback position that moves.  Resolves with what it saw.
 */
async function waitForPlayingVideo(who, { kind = 'camera', audio = 1, timeoutMs = STEP_MS } = {}) {
  const page = pages[who];
  const deadline = Date.now() + timeoutMs;
  let seen = null;
  while (Date.now() < deadline) {
    seen = await page.evaluate(async (kind) => {
      const v = document.querySelector(`video.remote[data-kind="${kind}"]`);
      if (!v) {
        return { found: false };
      }
      const t0 = v.currentTime;
      await new Promise((r) => setTimeout(r, 700));
      const stream = v.srcObject;
      return {
        found: true,
        participant: v.dataset.participant,
        readyState: v.readyState,
        videoWidth: v.videoWidth,
        videoHeight: v.videoHeight,
        t0,
        t1: v.currentTime,
        paused: v.paused,
        audioTracks: stream ? stream.getAudioTracks().length : 0,
        videoTracks: stream ? stream.getVideoTracks().length : 0,
        label: v.getAttribute('aria-label'),
      };
    }, kind);
    if (seen.found && seen.readyState >= 2 && seen.videoWidth > 0 && seen.t1 > seen.t0
        && seen.audioTracks === audio) {
      return seen;
    }
    await sleep(300);
  }
  assert.fail(`${who}'s page shows no playing ${kind} video of the other: ${JSON.stringify(seen)}\n${tail(who)}`);
}

async function participantsText(who) {
  return pages[who].locator('#participants').innerText();
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
  assert.fail(`${who}'s participants list never showed ${what}: ${JSON.stringify(text)}\n${tail(who)}`);
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

test('staff starts a video call, the patient joins from a second tab, each sees and hears the other', { skip, timeout: TEST_MS }, async (t) => {
  pages.clinician = await openTab('clinician');
  await login(pages.clinician, people.clinician);
  const staff = pages.clinician;
  if (await staff.locator('#patient-pick').isVisible()) {
    await staff.locator('#patient-select').selectOption(people.patient.id);
    t.diagnostic('the patient was picked from the list (GET /patients)');
  } else {
    await staff.getByLabel('Patient id').fill(people.patient.id);
  }
  await staff.getByRole('button', { name: 'Start video call' }).click();
  await staff.locator('#room-view').waitFor({ state: 'visible' });
  await waitForParticipants('clinician', (t) => t.includes(people.clinician.name), 'the clinician');

  pages.patient = await openTab('patient');
  await login(pages.patient, people.patient);
  const join = pages.patient.locator('#sessions button.join');
  await join.first().waitFor({ state: 'visible' });
  await join.first().click();
  await pages.patient.locator('#room-view').waitFor({ state: 'visible' });

  for (const who of ['clinician', 'patient']) {
    await waitForParticipants(who, (t) => t.includes(people.clinician.name) && t.includes(people.patient.name),
      'both people');
  }

  const [atStaff, atPatient] = await Promise.all([
    waitForPlayingVideo('clinician'),
    waitForPlayingVideo('patient'),
  ]);
  t.diagnostic(`clinician's tab: ${JSON.stringify(atStaff)}`);
  t.diagnostic(`patient's tab: ${JSON.stringify(atPatient)}`);
  assert.equal(atStaff.participant, `patient:${people.patient.id}`, 'the clinician sees the patient');
  assert.equal(atPatient.participant, `staff:${people.clinician.id}`, 'the patient sees the clinician');
  assert.match(atStaff.label, new RegExp(people.patient.name));
  assert.equal(await pages.clinician.locator('#problem').isVisible(), false,
    `no error on the clinician's page: ${await pages.clinician.locator('#problem').innerText()}`);
  assert.equal(await pages.patient.locator('#problem').isVisible(), false,
    `no error on the patient's page: ${await pages.patient.locator('#problem').innerText()}`);
});

test('a second call for the patient is refused with the API\'s problem detail on the page', { skip, timeout: TEST_MS }, async () => {
  assert.ok(pages.clinician, 'the call is up');
  const tab = await openTab('clinician');
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
  assert.ok(pages.patient, 'the call is up');
  const mute = pages.patient.getByRole('button', { name: 'Mute' });
  await mute.click();
  await pages.patient.getByRole('button', { name: 'Unmute' }).waitFor();
  assert.equal(await pages.patient.locator('#mute').getAttribute('aria-pressed'), 'true');
  await waitForParticipants('clinician', (t) => /muted/.test(t), 'the patient muted');
  const micOff = await pages.patient.evaluate(() => call.micTrack && call.micTrack.enabled);
  assert.equal(micOff, false, 'the microphone track sends nothing while muted');

  await pages.patient.getByRole('button', { name: 'Unmute' }).click();
  await waitForParticipants('clinician', (t) => !/muted/.test(t), 'the patient unmuted');
  // The picture keeps playing through it.
  await waitForPlayingVideo('clinician');

  await pages.patient.getByRole('button', { name: 'Pause video' }).click();
  await waitForParticipants('clinician', (t) => /video paused/.test(t), 'the patient\'s video paused');
  const cameraOff = await pages.patient.evaluate(() => call.cameraTrack && call.cameraTrack.enabled);
  assert.equal(cameraOff, false, 'the camera track sends nothing while paused');
  await pages.patient.getByRole('button', { name: 'Resume video' }).click();
  await waitForParticipants('clinician', (t) => !/video paused/.test(t), 'the patient\'s video resumed');
  await waitForPlayingVideo('clinician');
});

test('the clinician shares the screen: a second video plays in the patient\'s tab, and goes when sharing stops', { skip, timeout: TEST_MS }, async (t) => {
  assert.ok(pages.clinician, 'the call is up');
  await pages.clinician.getByRole('button', { name: 'Share screen' }).click();
  await pages.clinician.getByRole('button', { name: 'Stop sharing' }).waitFor();
  const screen = await waitForPlayingVideo('patient', { kind: 'screen', audio: 0 });
  t.diagnostic(`patient's tab, screen: ${JSON.stringify(screen)}`);
  assert.equal(screen.participant, `staff:${people.clinician.id}`);
  assert.match(screen.label, /screen/);
  await waitForPlayingVideo('patient');

  await pages.clinician.getByRole('button', { name: 'Stop sharing' }).click();
  await pages.clinician.getByRole('button', { name: 'Share screen' }).waitFor();
  await pages.patient.locator('video.remote[data-kind="screen"]').waitFor({ state: 'detached' });
  await waitForPlayingVideo('patient');
});

test('Janus dies and comes back: both tabs show "Reconnecting…", rejoin by themselves and see each other again', { skip, timeout: TEST_MS }, async (t) => {
  assert.ok(pages.clinician && pages.patient, 'the call is up');
  const run = process.env.TH_RUN;
  assert.ok(run, 'TH_RUN names the stack (scripts/media-tests.sh)');
  const pid = Number(fs.readFileSync(path.join(run, 'janus', 'janus.pid'), 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  const killedAt = Date.now();

  // The pages notice the lost WebSocket and keep trying.
  for (const who of ['clinician', 'patient']) {
    await pages[who].locator('#room-status', { hasText: 'Reconnecting…' })
      .waitFor({ state: 'visible', timeout: STEP_MS });
  }
  // The same node_id comes back: its rooms' members are from before.
  await execFileP(path.join(ROOT, 'scripts', 'stack.sh'), ['start-janus'], { timeout: 60_000 });

  const [atStaff, atPatient] = await Promise.all([
    waitForPlayingVideo('clinician'),
    waitForPlayingVideo('patient'),
  ]);
  t.diagnostic(`video again in both tabs ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
  assert.equal(atStaff.participant, `patient:${people.patient.id}`, 'the clinician sees the patient again');
  assert.equal(atPatient.participant, `staff:${people.clinician.id}`, 'the patient sees the clinician again');
  for (const who of ['clinician', 'patient']) {
    assert.equal(await pages[who].locator('#room-view').isVisible(), true, `${who} is still in the call view`);
  }
});

test('the clinician leaving ends the video call in the patient\'s tab', { skip, timeout: TEST_MS }, async () => {
  assert.ok(pages.clinician, 'the call is up');
  await pages.clinician.getByRole('button', { name: 'Leave' }).click();
  await pages.clinician.locator('#sessions-view').waitFor({ state: 'visible' });
  await pages.patient.locator('#sessions-view').waitFor({ state: 'visible' });
  const notice = await pages.patient.locator('#notice').innerText();
  assert.match(notice, /call has ended/i);
  assert.equal(await pages.patient.locator('video.remote').count(), 0, 'no video left');
});

// What the browser suites share: the stack's environment, chromium's
// flags, and fixtures (an organisation, a clinician and an assigned
// patient, both with logins) written through psql.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

export const env = {
  base: process.env.TH_BASE ?? 'http://127.0.0.1:58080',
  pg: process.env.TH_PG ?? 'postgres://postgres@127.0.0.1:55432/telehealth',
  password: process.env.TH_TEST_PASSWORD,
  passwordHash: process.env.TH_TEST_PASSWORD_HASH,
  chromium: process.env.TH_CHROMIUM ?? '/usr/bin/chromium',
  redisPort: process.env.TH_REDIS_PORT ?? '56379',
};

export const skip = !process.env.TH_NETNS
  ? 'needs the media namespace: run scripts/e2e-tests.sh'
  : !env.passwordHash ? 'TH_TEST_PASSWORD_HASH is not set: run scripts/e2e-tests.sh' : false;

export const STEP_MS = 30_000;
export const TEST_MS = 120_000;

// The flags tests/e2e/README.md lists: fake devices that need no
// permission prompt, nothing talking to the outside.
export const CHROMIUM_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Waits until the Janus node's heartbeat is in Redis.  The plugin writes
 * its first one a refresh interval after it starts; a room hosted before
 * then has a host that nginx's reconciler counts as gone (no heartbeat,
 * no lease_at yet) and closes as node_lost (docs/lifecycle.md).
 */
export async function janusNodeReady() {
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    let keys = '';
    try {
      keys = execFileSync('redis-cli', ['-p', env.redisPort, '--scan',
        '--pattern', 'th:node:*'], { timeout: 5_000 }).toString().trim();
    } catch {
      keys = '';
    }
    if (keys) {
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail('no Janus node heartbeat in Redis');
}

/**
 * One chromium on a fresh temporary profile; its pages are the tabs of one
 * person's browser, each with its own sessionStorage (its own login).
 */
export async function launchBrowser() {
  await janusNodeReady();
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: env.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: STEP_MS,
  });
  context.setDefaultTimeout(STEP_MS);
  profiles.set(context, userDataDir);
  // The pages run under the stack's CSP (conf/telehealth-headers.conf):
  // anything it blocks is reported on the console and fails the test.
  const blocked = [];
  const watch = (page) => page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) {
      blocked.push(m.text());
    }
  });
  context.pages().forEach(watch);
  context.on('page', watch);
  cspViolations.set(context, blocked);
  return context;
}

const cspViolations = new Map();

const profiles = new Map();

/** Closes the browser and removes its profile. */
export async function closeBrowser(context) {
  if (!context) {
    return;
  }
  await context.close().catch(() => {});
  fs.rmSync(profiles.get(context), { recursive: true, force: true });
  profiles.delete(context);
  const blocked = cspViolations.get(context) || [];
  cspViolations.delete(context);
  if (blocked.length > 0) {
    throw new Error(`the CSP blocked: ${blocked.join(' | ')}`);
  }
}

// ------------------------------------------------------------- fixtures

/** Runs SQL through psql (stdin, so that :'var' interpolation works). */
export async function psql(sql, vars = {}) {
  const args = ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', env.pg];
  for (const [k, v] of Object.entries(vars)) {
    args.push('-v', `${k}=${v}`);
  }
  const child = execFile('psql', args, { timeout: 15_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdin.end(sql);
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (code !== 0) {
    throw new Error(`psql failed (${code}): ${stderr}`);
  }
  return stdout.trim();
}

/** An organisation, a clinician and an assigned patient, both with logins. */
export async function createFixtures() {
  const tag = crypto.randomBytes(4).toString('hex');
  const people = {
    clinician: { name: `Dr E2E ${tag}`, email: `clinician.e2e.${tag}@e2e.test` },
    patient: { name: `Patient E2E ${tag}`, email: `patient.e2e.${tag}@e2e.test` },
  };
  // One statement, so psql runs it in one transaction.
  const ids = await psql(`
    WITH org AS (
      INSERT INTO organisations (name) VALUES (:'org') RETURNING id
    ), s AS (
      INSERT INTO staff (org_id, display_name, email, role)
      SELECT org.id, :'sname', :'semail', 'clinician' FROM org RETURNING id, org_id
    ), p AS (
      INSERT INTO patients (org_id, display_name, email, mobile, sms_capable, language)
      SELECT org.id, :'pname', :'pemail', '+15550109999', false, 'en' FROM org
      RETURNING id
    ), ls AS (
      INSERT INTO logins (email, password_hash, staff_id)
      SELECT :'semail', :'hash', s.id FROM s
    ), lp AS (
      INSERT INTO logins (email, password_hash, patient_id)
      SELECT :'pemail', :'hash', p.id FROM p
    ), a AS (
      INSERT INTO assignments (org_id, staff_id, patient_id)
      SELECT s.org_id, s.id, p.id FROM s, p
    )
    SELECT s.id || ' ' || p.id FROM s, p`, {
    org: `E2E ${tag}`,
    sname: people.clinician.name,
    semail: people.clinician.email,
    pname: people.patient.name,
    pemail: people.patient.email,
    hash: env.passwordHash,
  });
  const [staffId, patientId] = ids.split(' ');
  people.clinician.id = staffId;
  people.patient.id = patientId;
  return people;
}

/** Another patient of the clinician's organisation, assigned to them. */
export async function createPatient(clinician, name) {
  const id = await psql(`
    WITH p AS (
      INSERT INTO patients (org_id, display_name, email, language)
      SELECT org_id, :'name', :'email', 'en' FROM staff WHERE id = :'sid'
      RETURNING id, org_id
    ), a AS (
      INSERT INTO assignments (org_id, staff_id, patient_id)
      SELECT p.org_id, :'sid', p.id FROM p
    )
    SELECT id FROM p`, {
    name, sid: clinician.id,
    email: `${name.toLowerCase().replace(/[^a-z0-9]+/g, '.')}@e2e.test`,
  });
  return { id, name };
}

/** The REST API as a test's own client; a refusal fails the test. */
export async function api(method, p, body, token) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${env.base}/api/v1${p}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  assert.ok(res.ok, `${method} ${p}: ${res.status} ${text}`);
  return data;
}

/** An access token of a person of the fixtures. */
export async function tokenOf(person) {
  return (await api('POST', '/auth/login',
    { email: person.email, password: env.password })).access_token;
}

/** Ends a session a test opened (its room), whatever state it is in. */
export async function closeSession(session, token) {
  if (!session || !token) {
    return;
  }
  await fetch(`${env.base}/api/v1/sessions/${session.id}/close`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}` },
  }).catch(() => {});
}

/**
 * The fixtures, the clinician's access token and a session of `kind` the
 * clinician opened for the patient (its room is open; nobody is in it).
 */
export async function createSessionFixtures(kind, name) {
  const people = await createFixtures();
  const staffToken = await tokenOf(people.clinician);
  const session = await api('POST', '/sessions',
    { kind, patient_id: people.patient.id, name }, staffToken);
  return { people, staffToken, session };
}

/**
 * The tabs of one test file, each named by who uses it ("clinician",
 * "guest", ...): what each page logged is kept for failure messages, and
 * the waits every suite makes poll the page until a check holds or
 * STEP_MS passes.
 */
export class Tabs {
  constructor(context) {
    this.context = context;
    this.pages = {};
    this.logs = {};
  }

  /** The last lines a page logged. */
  tail(who) {
    return (this.logs[who] ?? []).slice(-25).join('\n');
  }

  async open(who, url) {
    const page = await this.context.newPage();
    this.logs[who] = [];
    page.on('console', (m) => this.logs[who].push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => this.logs[who].push(`pageerror: ${e.message}`));
    await page.goto(url);
    this.pages[who] = page;
    return page;
  }

  /** Polls get(page) until check(value) holds; fails saying "never what". */
  async waitFor(who, what, get, check, { timeoutMs = STEP_MS } = {}) {
    const deadline = Date.now() + timeoutMs;
    let value;
    while (Date.now() < deadline) {
      value = await get(this.pages[who]).catch(() => undefined);
      if (value !== undefined && check(value)) {
        return value;
      }
      await sleep(200);
    }
    return assert.fail(`${who}: never ${what}: ${JSON.stringify(value)}\n${this.tail(who)}`);
  }

  /** The text of selector once check(text) holds. */
  waitForText(who, selector, check, what) {
    return this.waitFor(who, `showed ${what} in ${selector}`,
      (page) => page.locator(selector).innerText(), check);
  }

  /**
   * Waits until a remote video of the page (its data-kind: "camera" or
   * "screen") plays: enough data to show a frame (readyState >= 2,
   * HAVE_CURRENT_DATA), a frame size, a playback position that moves, and
   * `audio` audio tracks in its stream.  Resolves with what it saw.
   */
  waitForPlayingVideo(who, { kind = 'camera', audio = 1, timeoutMs = STEP_MS } = {}) {
    const look = (page) => page.evaluate(async (k) => {
      const v = document.querySelector(`video.remote[data-kind="${k}"]`);
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
    return this.waitFor(who, `played a ${kind} video of the other`, look,
      (s) => s.found && s.readyState >= 2 && s.videoWidth > 0 && s.t1 > s.t0
        && s.audioTracks === audio, { timeoutMs });
  }
}

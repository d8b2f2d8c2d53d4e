// A session's invites on the console (web/console.js, docs/api.md
// "Invites"): a link-only invite for a guest, shown once with a copy
// button; an e-mail to the patient; the status per invitee with the API's
// message; the API's problem details for missing contact data; resend
// (a new link, the old one dead) and revoke (the link dead).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  closeBrowser, closeSession, createSessionFixtures, env, launchBrowser, skip,
  TEST_MS,
} from './lib.mjs';

let context;
let people;
let staffToken;
let session;
let page;
let firstLink;
const logs = [];

const NOT_JOINED = /^The client has not joined the session yet\. (The last invite was sent at \d\d:\d\d|The invite has not been sent yet)\.$/;

before(async () => {
  if (skip) {
    return;
  }
  ({ people, staffToken, session } = await createSessionFixtures('appointment',
    'E2E invited'));
  context = await launchBrowser();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'],
    { origin: env.base });
  page = await context.newPage();
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
});

after(async () => {
  await closeBrowser(context);
  await closeSession(session, staffToken);
});

/** What a link's redeem answers: 200, or the problem's detail. */
async function redeem(url) {
  const token = new URL(url).hash.replace(/^#t=/, '');
  const res = await fetch(`${env.base}/api/v1/invites/redeem`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token, display_name: 'Probe' }),
  });
  return res.ok ? res.status : (await res.json()).detail;
}

function invitee(name) {
  return page.locator('#invites li', { hasText: name });
}

async function send(channel, who, name = '', contact = '') {
  await page.getByLabel('Send by').selectOption(channel);
  await page.getByRole('radio', { name: who }).check();
  if (who === 'A guest') {
    await page.getByLabel('Guest\'s name').fill(name);
    await page.getByLabel('Guest\'s address').fill(contact);
  }
  await page.getByRole('button', { name: 'Send invite' }).click();
}

async function alertText() {
  const problem = page.getByRole('alert');
  await problem.waitFor({ state: 'visible' });
  return problem.innerText();
}

test('a link-only invite for a guest is shown once with a copy button, and listed with the API\'s message', { skip, timeout: TEST_MS }, async () => {
  await page.goto(`${env.base}/`);
  await page.getByLabel('E-mail').fill(people.clinician.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: /^Invites Appointment E2E invited/ }).click();
  await page.getByRole('heading', { name: /^Invites: Appointment E2E invited/ }).waitFor();
  assert.equal(await page.locator('#no-invites').isVisible(), true, 'nobody invited yet');

  await send('link', 'A guest', 'Aunt May');
  const link = page.getByLabel('Invite link');
  await link.waitFor({ state: 'visible' });
  firstLink = await link.inputValue();
  assert.match(firstLink, /^http:\/\/.+\/join#t=[A-Za-z0-9_-]{43}$/);
  await page.getByRole('button', { name: 'Copy link' }).click();
  await page.getByText('The link has been copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), firstLink);

  await invitee('Aunt May').waitFor();
  const text = await invitee('Aunt May').locator('.invite-status').innerText();
  assert.match(text, /^ by link /);
  assert.match(text.replace(/^ by link /, ''), NOT_JOINED, logs.join('\n'));

  // the link is shown once: another invite hides it
  await send('email', 'The session\'s patient');
  await link.waitFor({ state: 'hidden' });
});

test('an e-mail to the patient is listed by channel with the API\'s message', { skip, timeout: TEST_MS }, async () => {
  const item = invitee(people.patient.name);
  await item.waitFor();
  const text = await item.locator('.invite-status').innerText();
  assert.ok(text.startsWith(` by e-mail (${people.patient.email}) `), text);
  assert.match(text.slice(` by e-mail (${people.patient.email}) `.length), NOT_JOINED);
  assert.match(await page.locator('#invite-status').innerText(),
    new RegExp(`Invite for ${people.patient.name} sent by e-mail\\.`));
});

test('missing contact data shows the API\'s problem detail', { skip, timeout: TEST_MS }, async () => {
  // the fixture patient's number cannot receive SMS
  await send('sms', 'The session\'s patient');
  assert.equal(await alertText(), 'Client\'s number cannot receive SMS.');
  await send('email', 'A guest', 'Uncle Bob', '');
  assert.equal(await alertText(), 'The guest has no email.');
});

test('resend gives a new link and the old one stops working; revoke stops the new one', { skip, timeout: TEST_MS }, async () => {
  assert.ok(firstLink, 'the first test made a link');
  await page.getByRole('button', { name: 'Resend the invite of Aunt May' }).click();
  const link = page.getByLabel('Invite link');
  await link.waitFor({ state: 'visible' });
  const secondLink = await link.inputValue();
  assert.notEqual(secondLink, firstLink);
  assert.equal(await redeem(firstLink), 'This link is not valid. Please ask for a new one.');

  await page.getByRole('button', { name: 'Revoke the invite of Aunt May' }).click();
  await page.getByText('The link of Aunt May no longer works.').waitFor();
  await link.waitFor({ state: 'hidden' });
  assert.match(await invitee('Aunt May').innerText(), /The link has been revoked\./);
  assert.equal(await redeem(secondLink), 'This link is not valid. Please ask for a new one.');
  assert.equal(await page.getByRole('alert').isVisible(), false, 'no error');
});

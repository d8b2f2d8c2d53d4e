// Virtual visits (docs/features.md 34-37, docs/api.md "Visits"): a visit
// needs a service code that allows virtual visits; "send invite to
// client" creates the visit's virtual_visit session and e-mails the link,
// before or after clock-in; the caregiver joins the video only once
// clocked in; clocking out while the video is active needs a
// confirmation; the caregiver hanging up ends the visit's video for good,
// the client hanging up only tells the caregiver, and a closed browser
// ends nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    UUID_RE, api, assertProblem, assertStatus, closeDb, createWorld,
    eventually, joinAs, joinCredential, leaveRoom, loginAll, notificationsOf,
    sleep,
} from './lib.mjs';

const CLOCK_IN_FIRST = 'You must clock into the visit before you can join '
    + 'the video session.';
const STILL_ACTIVE = 'The video session with your client is still active. '
    + 'Clocking out will not close the video session so make sure you hang '
    + 'up on the video session as well. Would you like to clock out anyway?';
const CLIENT_HUNG_UP = 'The client has hung up. If the session is not '
    + 'supposed to be over, please reach out to the client.';
const CAREGIVER_OVER = 'Your session with the client is over. You can now '
    + 'close the page.';

let w;
let vv;             // a service code that allows virtual visits
let office;         // one that does not

const code = (label) => `${label}-${Math.random().toString(36).slice(2, 8)}`;

function createVisit(token, body) {
    return api('POST', '/visits', { token, body });
}

async function newVisit(extra = {}) {
    const res = await createVisit(w.clinician.token, {
        patient_id: w.patient.id, service_code: vv.code,
        scheduled_at: '2030-05-01T09:00:00Z', ...extra });
    assertStatus(res, 201, 'POST /visits');
    return res.body;
}

const visit = (id, token = w.clinician.token) =>
    api('GET', `/visits/${id}`, { token });
const invite = (id, token = w.clinician.token) =>
    api('POST', `/visits/${id}/invite`, { token });
const clockIn = (id, token = w.clinician.token) =>
    api('POST', `/visits/${id}/clock-in`, { token });
const clockOut = (id, body = {}, token = w.clinician.token) =>
    api('POST', `/visits/${id}/clock-out`, { token, body });

before(async () => {
    w = await createWorld('visit');
    await loginAll([w.admin, w.coordinator, w.clinician, w.unassigned,
        w.patient, w.other.admin]);
    const a = await api('POST', '/service-codes', { token: w.admin.token,
        body: { code: code('VV'), name: 'Home visit',
            virtual_visits_allowed: true } });
    assertStatus(a, 201);
    vv = a.body;
    const b = await api('POST', '/service-codes', { token: w.admin.token,
        body: { code: code('OF'), name: 'Office visit' } });
    assertStatus(b, 201);
    office = b.body;
});

after(closeDb);

describe('scheduling visits', () => {
    test('test_visit_is_created_for_client_caregiver_and_code', async () => {
        const v = await newVisit();
        assert.match(v.id, UUID_RE);
        assert.equal(v.patient_id, w.patient.id);
        assert.equal(v.caregiver_id, w.clinician.id);
        assert.equal(v.service_code, vv.code);
        assert.equal(v.scheduled_at, '2030-05-01T09:00:00Z');
        assert.equal(v.session_id, null);
        assert.equal(v.clocked_in_at, null);
        assert.equal(v.clocked_out_at, null);
        const got = await visit(v.id);
        assertStatus(got, 200);
        assert.equal(got.body.id, v.id);
    });

    test('test_code_without_virtual_visits_is_refused', async () => {
        const res = await createVisit(w.clinician.token, {
            patient_id: w.patient.id, service_code: office.code,
            scheduled_at: '2030-05-01T09:00:00Z' });
        assertProblem(res, 422, 'validation');
        assert.equal(res.body.detail, `The service code "${office.code}" `
            + 'does not allow virtual visits.');
        const none = await createVisit(w.clinician.token, {
            patient_id: w.patient.id, scheduled_at: '2030-05-01T09:00:00Z' });
        assertProblem(none, 422, 'validation');
        assert.equal(none.body.detail, '"service_code" is required.');
    });

    test('test_coordinator_schedules_for_a_caregiver_clinician_only_for_self', async () => {
        const res = await createVisit(w.coordinator.token, {
            patient_id: w.patient.id, caregiver_id: w.clinician.id,
            service_code: vv.code, scheduled_at: '2030-05-02T09:00:00Z' });
        assertStatus(res, 201);
        assert.equal(res.body.caregiver_id, w.clinician.id);
        assert.equal(res.body.created_by, w.coordinator.id);
        const other = await createVisit(w.clinician.token, {
            patient_id: w.patient.id, caregiver_id: w.coordinator.id,
            service_code: vv.code, scheduled_at: '2030-05-02T09:00:00Z' });
        assertProblem(other, 403, 'forbidden');
    });

    test('test_list_is_paginated_and_stays_in_its_organisation', async () => {
        await newVisit({ scheduled_at: '2031-01-01T08:00:00Z' });
        await newVisit({ scheduled_at: '2031-01-01T09:00:00Z' });
        const first = await api('GET', '/visits?limit=1&from=2031-01-01T00:00:00Z',
            { token: w.clinician.token });
        assertStatus(first, 200);
        assert.equal(first.body.items.length, 1);
        assert.equal(first.body.items[0].scheduled_at, '2031-01-01T08:00:00Z');
        assert.ok(first.body.next_cursor);
        const second = await api('GET', '/visits?limit=1&from=2031-01-01T00:00:00Z'
            + `&cursor=${first.body.next_cursor}`, { token: w.clinician.token });
        assert.equal(second.body.items[0].scheduled_at, '2031-01-01T09:00:00Z');
        const theirs = await api('GET', '/visits', { token: w.other.admin.token });
        assertStatus(theirs, 200);
        assert.equal(theirs.body.items.length, 0, 'another organisation sees none');
        assertProblem(await visit(first.body.items[0].id, w.other.admin.token),
            404, 'not-found');
        assertProblem(await visit(first.body.items[0].id, w.unassigned.token),
            404, 'not-found');
    });
});

describe('invite, clock-in, clock-out', () => {
    test('test_invite_before_clock_in_creates_the_session_and_emails_the_link', async () => {
        const v = await newVisit();
        const res = await invite(v.id);
        assertStatus(res, 201, 'POST /visits/{id}/invite');
        assert.match(res.body.url, /\/join#t=/);
        assert.match(res.body.session_id, UUID_RE);
        const s = await api('GET', `/sessions/${res.body.session_id}`,
            { token: w.clinician.token });
        assertStatus(s, 200);
        assert.equal(s.body.kind, 'virtual_visit');
        assert.equal(s.body.patient_id, w.patient.id);
        assert.equal(s.body.service_code, vv.code);
        assert.equal(s.body.created_by, w.clinician.id, 'the caregiver chairs it');
        const mail = await notificationsOf(res.body.session_id);
        assert.equal(mail.length, 1);
        assert.equal(mail[0].channel, 'email');
        assert.equal(mail[0].recipient, w.patient.email);
        // a second invite is one more link into the same session
        const again = await invite(v.id);
        assertStatus(again, 201);
        assert.equal(again.body.session_id, res.body.session_id);
        assert.equal((await visit(v.id)).body.session_id, res.body.session_id);
    });

    test('test_caregiver_must_clock_in_before_joining_the_video', async () => {
        const v = await newVisit();
        const inv = await invite(v.id);
        assertStatus(inv, 201);
        const refused = await joinCredential(w.clinician.token, inv.body.session_id);
        assertProblem(refused, 409, 'clock-in-required');
        assert.equal(refused.body.detail, CLOCK_IN_FIRST);

        const c = await clockIn(v.id);
        assertStatus(c, 200, 'clock-in');
        assert.ok(Date.parse(c.body.clocked_in_at) > Date.now() - 60_000);
        assertProblem(await clockIn(v.id), 409, 'conflict');
        const caregiver = await joinAs(w.clinician.token, inv.body.session_id);
        await caregiver.session.destroy();
    });

    test('test_invite_after_clock_in_and_only_the_caregiver_clocks', async () => {
        const v = await newVisit();
        assertProblem(await clockIn(v.id, w.coordinator.token), 403, 'forbidden');
        assertProblem(await clockOut(v.id), 409, 'conflict');
        assertStatus(await clockIn(v.id), 200);
        const inv = await invite(v.id, w.coordinator.token);
        assertStatus(inv, 201, 'a coordinator sends the invite after clock-in');
        assertStatus(await clockOut(v.id), 200, 'no video yet: no warning');
        assertProblem(await clockIn(v.id), 409, 'conflict');
    });

    test('test_clock_out_during_the_video_needs_a_confirmation', async () => {
        const v = await newVisit();
        const inv = await invite(v.id);
        assertStatus(await clockIn(v.id), 200);
        const caregiver = await joinAs(w.clinician.token, inv.body.session_id);
        try {
            const warned = await clockOut(v.id);
            assertProblem(warned, 409, 'video-session-active');
            assert.equal(warned.body.detail, STILL_ACTIVE);
            assert.equal((await visit(v.id)).body.clocked_out_at, null);

            const done = await clockOut(v.id, { confirm: true });
            assertStatus(done, 200, 'confirmed clock-out');
            assert.ok(done.body.clocked_out_at);
            assert.equal(done.body.session_state, 'open', 'the video stays');
        } finally {
            await caregiver.session.destroy();
        }
    });
});

describe('hanging up a visit', () => {
    test('test_client_hangup_tells_caregiver_browser_close_ends_nothing_caregiver_hangup_ends_for_good', async () => {
        const v = await newVisit();
        const inv = await invite(v.id);
        assertStatus(await clockIn(v.id), 200);
        const caregiver = await joinAs(w.clinician.token, inv.body.session_id);
        const client = await joinAs(w.patient.token, inv.body.session_id);

        // the client closes the browser: nothing ends, nobody is told
        const from = caregiver.session.events.length;
        await client.session.destroy();
        await sleep(500);
        assert.ok(!caregiver.handle.pluginEvents(from)
            .some((d) => d.telehealth === 'hung_up'));
        assert.equal((await visit(v.id)).body.session_state, 'open');

        // the client hangs up: the caregiver hears it, the visit goes on
        const client2 = await joinAs(w.patient.token, inv.body.session_id);
        const mark = caregiver.session.events.length;
        await leaveRoom(client2);
        const hungUp = await caregiver.handle.waitData(
            (d) => d.telehealth === 'hung_up', 5000, mark, 'hung_up');
        assert.equal(hungUp.message, CLIENT_HUNG_UP);
        assert.equal((await visit(v.id)).body.session_state, 'open');
        await client2.session.destroy();

        // the caregiver closes the browser: nothing ends either
        await caregiver.session.destroy();
        await sleep(500);
        assert.equal((await visit(v.id)).body.session_state, 'open');

        // the caregiver hangs up: over for good
        const again = await joinAs(w.clinician.token, inv.body.session_id);
        const left = await leaveRoom(again);
        assert.equal(left.data.telehealth, 'left');
        assert.equal(left.data.over, true);
        assert.equal(left.data.message, CAREGIVER_OVER);
        await again.session.destroy();
        assert.ok(await eventually(async () =>
            (await visit(v.id)).body.video_over === true),
        'the visit knows its video is over');
        const after = (await visit(v.id)).body;
        assert.equal(after.session_state, 'ended');

        const refused = await invite(v.id);
        assertProblem(refused, 409, 'visit-over');
        assertProblem(await joinCredential(w.clinician.token,
            inv.body.session_id), 409, 'room-not-open');
    });
});

// Scheduled sessions (docs/api.md, "Scheduled sessions"): a planned kind
// with a future "scheduled_at" is stored without a room or a patient lock;
// its opener's first join opens the room through the same room script as
// POST /sessions, with the one-room-per-patient rule; everyone else is
// told that it has not started yet.  Rescheduling and cancelling.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    IN_SESSION_DETAIL, joinCredential, loginAll, patientLockKey, redis,
    roomKey, sql, startSession,
} from './lib.mjs';

const LATER = '2030-03-04T09:30:00Z';
const NOT_STARTED = 'The session has not started yet.';

let w;
let n = 0;

async function plan(body, token = w.coordinator.token) {
    const patient = await addPatient(w, `sch${++n}`);
    const res = await api('POST', '/sessions', { token, body: {
        kind: 'telehealth', patient_id: patient.id, scheduled_at: LATER,
        ...body } });
    assertStatus(res, 201, 'POST /sessions');
    res.body.patient = patient;
    return res.body;
}

const stateOf = async (id) => (await sql(
    'SELECT state, room FROM sessions WHERE id = $1', [id]))[0];

async function loginPatient(patient) {
    await loginAll([patient]);
    return patient.token;
}

before(async () => {
    w = await createWorld('sched');
    await loginAll([w.admin, w.coordinator, w.clinician, w.unassigned,
        w.patient]);
});

after(closeDb);

describe('POST /sessions with a future time', () => {
    for (const kind of ['telehealth', 'appointment', 'group',
        'consultation', 'meeting_room']) {
        test(`test_${kind}_is_scheduled_without_a_room_or_lock`, async () => {
            const s = await plan({ kind });
            assert.equal(s.state, 'scheduled');
            assert.equal(s.room, null);
            assert.equal(s.scheduled_at, LATER);
            assert.equal(await redis('EXISTS',
                patientLockKey(s.patient_id)), '0', 'no patient lock');
        });
    }

    test('test_instant_kinds_open_at_once_whatever_the_time', async () => {
        for (const kind of ['video_call', 'consult_now']) {
            const s = await plan({ kind });
            assert.equal(s.state, 'open', kind);
            assert.equal(typeof s.room, 'string', kind);
            await sql('UPDATE sessions SET state = \'ended\' WHERE id = $1',
                [s.id]);
            await redis('DEL', patientLockKey(s.patient_id),
                roomKey(s.room));
        }
    });

    test('test_a_time_already_passed_opens_at_once', async () => {
        const s = await plan({ scheduled_at: '2026-01-01T08:00:00Z' });
        assert.equal(s.state, 'open');
        assert.equal(await redis('HGET', roomKey(s.room), 'state'), 'open');
    });
});

describe('opening on the first join', () => {
    test('test_patient_and_broadcasters_wait_the_chair_opens', async () => {
        const s = await plan({ participants: [{ type: 'staff',
            id: w.unassigned.id, role: 'broadcaster' }] });
        const pt = await loginPatient(s.patient);

        const list = await api('GET', '/sessions', { token: pt });
        assertStatus(list, 200);
        assert.ok(!list.text.includes(s.id), 'no join option for the patient');

        const early = await joinCredential(pt, s.id);
        assertProblem(early, 409, 'room-not-open', 'patient before opening');
        assert.equal(early.body.detail, NOT_STARTED);
        const staff = await joinCredential(w.unassigned.token, s.id);
        assertProblem(staff, 409, 'room-not-open', 'broadcaster');
        assert.equal(staff.body.detail, NOT_STARTED);
        assert.equal((await stateOf(s.id)).state, 'scheduled');

        const chair = await joinCredential(w.coordinator.token, s.id);
        assertStatus(chair, 200, 'the chair opens the room');
        assert.equal(chair.body.role, 'chair');
        const row = await stateOf(s.id);
        assert.equal(row.state, 'open');
        assert.equal(row.room, chair.body.room);
        assert.equal(await redis('GET', patientLockKey(s.patient_id)), '',
            'the patient is locked when they join, not when it opens');
        const h = await redis('HGETALL', roomKey(row.room));
        assert.ok(h.includes(s.id) && h.includes('open'));

        assertStatus(await joinCredential(pt, s.id), 200, 'patient after');
        const now = await api('GET', '/sessions', { token: pt });
        assert.ok(now.text.includes(s.id), 'the patient sees it now');
        const audit = await sql(`SELECT outcome FROM audit_log WHERE
            action = 'session_open' AND target_id = $1`, [s.id]);
        assert.deepEqual(audit, [{ outcome: 'success' }]);
    });

    test('test_a_patient_in_another_room_cannot_join_it_the_chair_can_open_it',
        async () => {
            const s = await plan({});
            const call = await startSession(w.coordinator.token,
                s.patient_id);
            assertStatus(call, 201, 'a video call of the same patient');
            const chair = await joinCredential(w.coordinator.token, s.id);
            assertStatus(chair, 200, 'the chair opens it all the same');
            assert.equal((await stateOf(s.id)).state, 'open');
            const pt = await loginPatient(s.patient);
            const res = await joinCredential(pt, s.id);
            assertProblem(res, 409, 'patient-in-session');
            assert.equal(res.body.detail, IN_SESSION_DETAIL);
            assert.equal(await redis('GET', patientLockKey(s.patient_id)),
                call.body.room, 'the other room keeps the lock');
        });

    test('test_consultation_the_invitee_opens_not_the_requester', async () => {
        const s = await plan({ kind: 'consultation', participants: [
            { type: 'staff', id: w.unassigned.id, role: 'broadcaster' }] });
        const requester = await joinCredential(w.coordinator.token, s.id);
        assertProblem(requester, 409, 'room-not-open', 'requester first');
        assert.equal(requester.body.detail, NOT_STARTED);
        const invitee = await joinCredential(w.unassigned.token, s.id);
        assertStatus(invitee, 200, 'the invitee opens it');
        assert.equal((await stateOf(s.id)).state, 'open');
    });

    test('test_two_chairs_at_once_get_the_same_room', async () => {
        const s = await plan({ participants: [
            { type: 'staff', id: w.admin.id, role: 'chair' }] });
        const [a, b] = await Promise.all([
            joinCredential(w.coordinator.token, s.id),
            joinCredential(w.admin.token, s.id)]);
        assertStatus(a, 200, 'first chair');
        assertStatus(b, 200, 'second chair');
        assert.equal(a.body.room, b.body.room);
        assert.equal((await stateOf(s.id)).room, a.body.room);
        // the loser gave its room back: one room hash names the session
        const rooms = [];
        for (const key of (await redis('KEYS', roomKey('*'))).split('\n')) {
            if (!key.endsWith(':members')
                && await redis('HGET', key, 'session') === s.id) {
                rooms.push(key);
            }
        }
        assert.deepEqual(rooms, [roomKey(a.body.room)]);
    });
});

describe('rescheduling and cancelling', () => {
    test('test_patch_scheduled_at_keeps_it_scheduled', async () => {
        const s = await plan({});
        const res = await api('PATCH', `/sessions/${s.id}`, {
            token: w.coordinator.token,
            body: { scheduled_at: '2030-03-05T14:00:00Z' } });
        assertStatus(res, 200, 'reschedule');
        assert.equal(res.body.scheduled_at, '2030-03-05T14:00:00Z');
        assert.equal(res.body.state, 'scheduled');
        assert.equal(res.body.room, null);
    });

    test('test_close_cancels_a_scheduled_session', async () => {
        const s = await plan({ participants: [{ type: 'staff',
            id: w.unassigned.id, role: 'broadcaster' }] });
        const refused = await api('POST', `/sessions/${s.id}/close`,
            { token: w.unassigned.token });
        assertProblem(refused, 403, 'forbidden', 'a broadcaster');
        const res = await api('POST', `/sessions/${s.id}/close`,
            { token: w.coordinator.token });
        assertStatus(res, 200, 'cancel');
        assert.equal(res.body.state, 'ended');
        assert.equal(res.body.room, null);
        const join = await joinCredential(w.coordinator.token, s.id);
        assertProblem(join, 409, 'room-not-open', 'join after cancelling');
        assert.equal(await redis('EXISTS', patientLockKey(s.patient_id)),
            '0');
    });
});

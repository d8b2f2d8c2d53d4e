// Ending a session (docs/lifecycle.md, "Ending a session"): a chair's
// three ways out.  Close ends the session for good (its content is purged
// later, purge.test.mjs); keep_open closes the room and leaves the session
// idle, from which the next call opens a new room; leaving the room keeps
// it running where the kind's leave rule allows.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, addStaff, api, assertProblem, assertStatus, closeDb,
    createWorld, eventually, joinAs, joinCredential, leaveRoom, loginAll,
    patientLockKey, redis, roomKey, sql,
} from './lib.mjs';

let w;
let patient;
let broadcaster;
const conns = [];

before(async () => {
    w = await createWorld('ending');
    patient = await addPatient(w, 'ending');
    broadcaster = await addStaff(w, 'clinician', 'bc');
    await loginAll([w.clinician, w.admin, w.other.admin, patient,
        broadcaster]);
});

after(async () => {
    for (const c of conns) {
        await c.session.destroy().catch(() => {});
    }
    await closeDb();
});

async function join(token, id) {
    const c = await joinAs(token, id);
    conns.push(c);
    return c;
}

async function getSession(id, token = w.clinician.token) {
    const res = await api('GET', `/sessions/${id}`, { token });
    assertStatus(res, 200, 'GET session');
    return res.body;
}

function closeAs(token, id, body) {
    return api('POST', `/sessions/${id}/close`, { token, body });
}

async function telehealthSession(extra = {}) {
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'telehealth', patient_id: patient.id,
            name: 'Wound check', participants: [{ type: 'staff',
                id: broadcaster.id, role: 'broadcaster' }], ...extra } });
    assertStatus(res, 201, 'POST /sessions telehealth');
    return res.body;
}

describe('close', () => {
    test('test_close_closes_the_room_for_everyone_and_ends_the_session',
        async () => {
            const s = await telehealthSession();
            await join(w.clinician.token, s.id);
            await join(patient.token, s.id);
            const res = await closeAs(w.clinician.token, s.id,
                { mode: 'close' });
            assertStatus(res, 202, 'close');
            assert.equal(res.body.command.reason, 'closed_by_chair');
            const ended = await eventually(async () => {
                const x = await getSession(s.id);
                return x.state === 'ended' ? x : null;
            });
            assert.ok(ended, 'the session ended');
            assert.equal(ended.end_reason, 'closed_by_chair');
            assert.equal(ended.purged_at, null, 'content still there');
            assert.equal(await redis('HGET', roomKey(s.room), 'state'),
                'closed');
            assertProblem(await joinCredential(w.clinician.token, s.id),
                409, 'room-not-open', 'an ended session has no new call');
        });

    test('test_only_chairs_choose_a_way_out', async () => {
        const s = await telehealthSession();
        assertProblem(await closeAs(broadcaster.token, s.id, {}), 403,
            'forbidden', 'a broadcaster');
        assertProblem(await closeAs(patient.token, s.id, {}), 403,
            'forbidden', 'the patient');
        assertProblem(await closeAs(w.other.admin.token, s.id, {}), 404,
            'not-found', 'another organisation');
        assertProblem(await closeAs(w.clinician.token, s.id,
            { mode: 'later' }), 422, 'validation', 'an unknown mode');
        assertStatus(await closeAs(w.clinician.token, s.id, {}), 409,
            'nobody joined yet: no node hosts the room');
    });
});

describe('end but keep open', () => {
    test('test_keep_open_closes_the_room_and_a_new_call_starts_later',
        async () => {
            const res0 = await api('POST', '/sessions', {
                token: w.clinician.token,
                body: { kind: 'video_call', patient_id: patient.id } });
            assertStatus(res0, 201, 'video call');
            const s = res0.body;
            await join(w.clinician.token, s.id);
            const pc = await join(patient.token, s.id);

            const res = await closeAs(w.clinician.token, s.id,
                { mode: 'keep_open' });
            assertStatus(res, 202, 'keep_open');
            assert.equal(res.body.command.reason, 'kept_open');
            const idle = await eventually(async () => {
                const x = await getSession(s.id);
                return x.state === 'idle' ? x : null;
            });
            assert.ok(idle, 'the session is idle');
            assert.equal(idle.room, null, 'no room is live');
            assert.equal(idle.ended_at, null, 'the session did not end');
            assert.ok(await eventually(async () =>
                (await redis('EXISTS', patientLockKey(patient.id))) === '0'),
            'the patient lock is released');
            const calls = await sql('SELECT end_reason, ended_at FROM ' +
                'calls WHERE session_id = $1', [s.id]);
            assert.equal(calls.length, 1);
            assert.equal(calls[0].end_reason, 'kept_open');
            assert.ok(calls[0].ended_at, 'the call ended');
            await pc.session.destroy().catch(() => {});

            // the patient does not open it; the session stays listed
            assertProblem(await joinCredential(patient.token, s.id), 409,
                'room-not-open', 'the patient cannot reopen it');
            const list = await api('GET', '/sessions?state=idle',
                { token: w.clinician.token });
            assertStatus(list, 200);
            assert.ok(list.body.items.some((x) => x.id === s.id),
                'listed as idle');
            const patch = await api('PATCH', `/sessions/${s.id}`, {
                token: w.clinician.token, body: { name: 'Later call' } });
            assertStatus(patch, 200, 'an idle session can still change');

            // the chair starts the next call in the same session
            const again = await joinCredential(w.clinician.token, s.id);
            assertStatus(again, 200, 'the chair reopens');
            assert.notEqual(again.body.room, s.room, 'a new room');
            const reopened = await getSession(s.id);
            assert.equal(reopened.state, 'open');
            assert.equal(reopened.room, again.body.room);
            assert.equal(await redis('GET', patientLockKey(patient.id)),
                again.body.room, 'a video call locks its patient again');
            await join(w.clinician.token, s.id);
            await join(patient.token, s.id);
            assertStatus(await closeAs(w.clinician.token, s.id,
                { mode: 'close' }), 202, 'then closed for good');
            const ended = await eventually(async () => {
                const x = await getSession(s.id);
                return x.state === 'ended' ? x : null;
            });
            assert.ok(ended, 'ended');
            const n = await sql('SELECT count(*)::int AS n FROM calls ' +
                'WHERE session_id = $1', [s.id]);
            assert.equal(n[0].n, 2, 'two calls in one session');
        });

    test('test_an_idle_session_is_closed_later_without_a_room', async () => {
        const s = await telehealthSession();
        await join(w.clinician.token, s.id);
        assertStatus(await closeAs(w.clinician.token, s.id,
            { mode: 'keep_open' }), 202);
        assert.ok(await eventually(async () =>
            (await getSession(s.id)).state === 'idle'), 'idle');
        assertProblem(await closeAs(w.clinician.token, s.id,
            { mode: 'keep_open' }), 409, 'room-not-open',
        'keep_open needs a live room');
        const res = await closeAs(w.clinician.token, s.id, { mode: 'close' });
        assertStatus(res, 200, 'closing an idle session');
        assert.equal(res.body.state, 'ended');
        assert.equal(res.body.end_reason, 'closed_by_chair');
        assert.ok(res.body.ended_at);
    });

    test('test_keep_open_of_a_scheduled_session_is_409', async () => {
        const at = new Date(Date.now() + 86400000).toISOString();
        const s = await telehealthSession({ scheduled_at: at });
        assert.equal(s.state, 'scheduled');
        assertProblem(await closeAs(w.clinician.token, s.id,
            { mode: 'keep_open' }), 409, 'room-not-open');
    });
});

describe('leave the room running', () => {
    test('test_chair_leaves_and_the_room_stays_open_for_the_others',
        async () => {
            const s = await telehealthSession();
            const chair = await join(w.clinician.token, s.id);
            await join(patient.token, s.id);
            await leaveRoom(chair);
            await new Promise((r) => setTimeout(r, 1500));
            const x = await getSession(s.id);
            assert.equal(x.state, 'open', 'the session stays open');
            assert.equal(await redis('HGET', roomKey(s.room), 'state'),
                'open');
            const members = await redis('HKEYS', `th:room:${s.room}:members`);
            assert.match(members, new RegExp(`patient:${patient.id}`),
                'the patient is still in the room');
            assert.doesNotMatch(members, new RegExp(`staff:${w.clinician.id}`),
                'the chair left');
            // and comes back to the same room
            const back = await joinCredential(w.clinician.token, s.id);
            assertStatus(back, 200);
            assert.equal(back.body.room, s.room);
        });
});

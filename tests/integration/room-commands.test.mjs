// Room commands through the REST API (docs/api.md, "Room commands"):
// only a chair of the session may close the room, remove, mute or change
// the role of a participant; the command goes to the node hosting the
// room and the plugin's command.result in the event stream carries the
// command id the API answered with.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    eventually, joinAs, loginAll, redis, roomKey, startSession,
} from './lib.mjs';

let w;
let patient;
let session;
let conns = [];

async function commandResult(id) {
    return eventually(async () => {
        const out = await redis('XREVRANGE', 'th:events', '+', '-',
            'COUNT', '500');
        const lines = out.split('\n');
        const i = lines.indexOf(id);
        if (i < 0) {
            return null;
        }
        // the entry's fields around the id: find "result" after the type
        for (let j = Math.max(0, i - 12); j < Math.min(lines.length, i + 12);
            j++) {
            if (lines[j] === 'result') {
                return lines[j + 1];
            }
        }
        return null;
    }, 5000, 100);
}

before(async () => {
    w = await createWorld('roomcmd');
    patient = await addPatient(w, 'room');
    await loginAll([w.clinician, w.unassigned, w.admin, w.other.admin,
        patient]);
    const res = await startSession(w.clinician.token, patient.id);
    assertStatus(res, 201);
    session = res.body;
    conns.push(await joinAs(w.clinician.token, session.id));
    conns.push(await joinAs(patient.token, session.id));
});

after(async () => {
    for (const c of conns) {
        await c.session.destroy().catch(() => {});
    }
    await closeDb();
});

const route = (tail) => `/sessions/${session.id}${tail}`;

describe('who may give a command', () => {
    test('test_non_chairs_are_refused', async () => {
        const mute = `/participants/patient:${patient.id}/mute`;
        assertProblem(await api('POST', route(mute), { token: patient.token,
            body: { audio: true } }), 403, 'forbidden', 'the patient');
        assertProblem(await api('POST', route(mute), {
            token: w.unassigned.token, body: { audio: true } }),
        404, 'not-found', 'staff not on the session');
        assertProblem(await api('POST', route(mute), {
            token: w.other.admin.token, body: { audio: true } }),
        404, 'not-found', 'another organisation');
        assertProblem(await api('POST', route('/close'), { token: null }),
            401, 'unauthorized');
    });

    test('test_bad_commands_are_422_or_404', async () => {
        const token = w.clinician.token;
        assertProblem(await api('POST',
            route(`/participants/patient:${patient.id}/mute`),
            { token, body: {} }), 422, 'validation', 'mute without audio/video');
        assertProblem(await api('POST',
            route(`/participants/patient:${patient.id}/role`),
            { token, body: { role: 'king' } }), 422, 'validation');
        assertProblem(await api('POST', route('/participants/nobody/remove'),
            { token }), 404, 'not-found', 'malformed participant');
    });
});

describe('commands reach the room', () => {
    test('test_chair_mutes_the_patient_202_and_the_plugin_reports_ok', async () => {
        const res = await api('POST',
            route(`/participants/patient:${patient.id}/mute`),
            { token: w.clinician.token, body: { audio: true } });
        assertStatus(res, 202, 'mute');
        assert.equal(typeof res.body.command_id, 'string');
        assert.deepEqual(res.body.command, { command: 'mute',
            room: session.room, participant: `patient:${patient.id}`,
            audio: true, id: res.body.command_id });
        assert.equal(await commandResult(res.body.command_id), 'ok');
    });

    test('test_chair_changes_a_role', async () => {
        const res = await api('POST',
            route(`/participants/patient:${patient.id}/role`),
            { token: w.clinician.token, body: { role: 'viewer' } });
        assertStatus(res, 202, 'role');
        assert.equal(await commandResult(res.body.command_id), 'ok');
    });

    test('test_removing_someone_not_in_the_room_is_reported_not_found', async () => {
        const res = await api('POST',
            route(`/participants/staff:${w.admin.id}/remove`),
            { token: w.clinician.token });
        assertStatus(res, 202);
        assert.equal(await commandResult(res.body.command_id), 'not_found');
    });

    test('test_chair_closes_the_room_for_everyone', async () => {
        const res = await api('POST', route('/close'),
            { token: w.clinician.token });
        assertStatus(res, 202, 'close');
        assert.equal(await commandResult(res.body.command_id), 'ok');
        const closed = await eventually(async () =>
            (await redis('HGET', roomKey(session.room), 'state')) !== 'open',
        5000);
        assert.ok(closed, 'the room is closed');
        const again = await eventually(async () => {
            const r = await api('POST', route('/close'),
                { token: w.clinician.token });
            return r.status === 409 ? r : null;
        }, 5000, 200);
        assert.ok(again, 'closing a closed room is 409');
        assertProblem(again, 409, 'room-not-open');
    });
});

// POST /sessions/{id}/join for staff of the organisation who are not on
// the participant list (docs/features.md 7-8, docs/api.md): they join an internal
// or invitation session as broadcaster, never a private one nor another
// organisation's; a live change to private removes them from the room, and
// the plugin refuses a credential they got before the change (475).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    decodeJwt, eventually, isPluginError, joinAs, joinCredential, joinRoom,
    loginAll, redis, sql,
} from './lib.mjs';

let w;
let internal;           // chaired by the coordinator, nobody else listed
let restricted;         // the same, private
const conns = {};

const members = async (s) =>
    (await redis('HKEYS', `th:room:${s.room}:members`))
        .split('\n').filter(Boolean).sort();

async function newSession(access, label) {
    const p = await addPatient(w, label);
    const res = await api('POST', '/sessions', { token: w.coordinator.token,
        body: { kind: 'telehealth', patient_id: p.id, name: label, access } });
    assertStatus(res, 201, `a ${access} session`);
    assert.equal(res.body.access, access);
    return res.body;
}

const joinRows = (actor, session) => sql(`SELECT outcome, status
    FROM audit_log WHERE actor_id = $1 AND target_id = $2
    AND action = 'session_join' ORDER BY id`, [actor, session]);

before(async () => {
    w = await createWorld('staffacc');
    await loginAll([w.coordinator, w.unassigned, w.other.admin,
        w.other.clinician]);
    internal = await newSession('internal', 'staffacc-int');
    restricted = await newSession('private', 'staffacc-priv');
    conns.chair = await joinAs(w.coordinator.token, internal.id);
});

after(async () => {
    for (const c of Object.values(conns)) {
        await c.session.destroy().catch(() => {});
    }
    await closeDb();
});

describe('unlisted staff of the organisation', () => {
    test('test_unlisted_staff_joins_an_internal_session_as_broadcaster', async () => {
        const res = await joinCredential(w.unassigned.token, internal.id);
        assertStatus(res, 200, 'join credential');
        assert.equal(res.body.role, 'broadcaster');
        assert.equal(res.body.room, internal.room);
        const claims = decodeJwt(res.body.credential).claims;
        assert.equal(claims.sub, `staff:${w.unassigned.id}`);
        assert.equal(claims.role, 'broadcaster');
        assert.equal(claims.unlisted, true);
        conns.unlisted = await joinRoom(res.body.credential);
        assert.ok(!isPluginError(conns.unlisted.answer.data),
            `join: ${JSON.stringify(conns.unlisted.answer.data)}`);
        assert.ok(await eventually(async () => (await members(internal))
            .includes(`staff:${w.unassigned.id}`)), 'in the room');
        assert.deepEqual(await joinRows(w.unassigned.id, internal.id),
            [{ outcome: 'success', status: 200 }], 'audited');
        // the chair's own credential does not say so
        const chair = decodeJwt(conns.chair.credential.credential).claims;
        assert.equal(chair.unlisted, undefined);
    });

    test('test_unlisted_staff_cannot_join_a_private_session', async () => {
        assertProblem(await joinCredential(w.unassigned.token, restricted.id),
            404, 'not-found', 'private');
        assert.deepEqual(await joinRows(w.unassigned.id, restricted.id),
            [{ outcome: 'not_found', status: 404 }], 'audited');
    });

    test('test_staff_of_another_organisation_cannot_join', async () => {
        for (const s of [internal, restricted]) {
            for (const p of [w.other.admin, w.other.clinician]) {
                assertProblem(await joinCredential(p.token, s.id), 404,
                    'not-found', `${p.role} of another organisation, ` +
                    `${s.access}`);
            }
        }
    });

    test('test_internal_to_private_removes_unlisted_staff', async () => {
        // a credential drawn while the session is internal, used after
        const early = await joinCredential(w.unassigned.token, internal.id);
        assertStatus(early, 200, 'a second credential');
        const res = await api('PATCH', `/sessions/${internal.id}`, {
            token: w.coordinator.token, body: { access: 'private' } });
        assertStatus(res, 200, 'access private');
        assert.deepEqual(res.body.removed, [`staff:${w.unassigned.id}`]);
        await conns.unlisted.handle.waitData((d) => d.telehealth === 'left'
            && d.reason === 'removed', 5000, 0, 'left/removed');
        assert.ok(await eventually(async () => !(await members(internal))
            .includes(`staff:${w.unassigned.id}`)), 'out of the room');
        assert.deepEqual(await members(internal),
            [`staff:${w.coordinator.id}`], 'the chair stays');
        assertProblem(await joinCredential(w.unassigned.token, internal.id),
            404, 'not-found', 'no credential once private');
        conns.late = await joinRoom(early.body.credential);
        assert.equal(conns.late.answer.data.error_code, 475,
            JSON.stringify(conns.late.answer.data));
        assert.match(conns.late.answer.data.error, /only to its participants/);
    });
});

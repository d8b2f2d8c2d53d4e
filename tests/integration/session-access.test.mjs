// PATCH /sessions/{id} and GET /sessions/{id}/participants (docs/api.md):
// settings change with If-Match; changing the access level of a live
// session removes, through the plugin's access_changed command, exactly
// the members who no longer qualify (docs/features.md 8: a listed patient always
// qualifies, a guest only for invitation); the live participants
// and waiting list come from the room's members hash.  Participants join
// over the Janus HTTP API, as in plugin.test.mjs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    eventually, isPluginError, joinAs, joinRoom, loginAll, redis, sql,
} from './lib.mjs';

let w;
let patient;
let session;
const conns = {};

const route = (tail = '') => `/sessions/${session.id}${tail}`;
const members = async () =>
    (await redis('HKEYS', `th:room:${session.room}:members`))
        .split('\n').filter(Boolean).sort();

function removedFromRoom(conn) {
    return conn.handle.waitData((d) => d.telehealth === 'left'
        && d.reason === 'removed', 5000, 0, 'left/removed');
}

before(async () => {
    w = await createWorld('access');
    patient = await addPatient(w, 'access');
    await loginAll([w.coordinator, w.clinician, w.unassigned, w.admin,
        w.supervisor, w.other.admin, patient]);
    // an invitation session chaired by the coordinator, the clinician on
    // the list as broadcaster, the patient it is about
    const res = await api('POST', '/sessions', { token: w.coordinator.token,
        body: { kind: 'telehealth', patient_id: patient.id, name: 'Review',
            participants: [{ type: 'staff', id: w.clinician.id,
                role: 'broadcaster' }] } });
    assertStatus(res, 201, 'POST /sessions');
    session = res.body;
    assert.equal(session.access, 'invitation');
    conns.chair = await joinAs(w.coordinator.token, session.id);
    conns.clinician = await joinAs(w.clinician.token, session.id);
    conns.patient = await joinAs(patient.token, session.id);
    assert.deepEqual(await members(), [`patient:${patient.id}`,
        `staff:${w.clinician.id}`, `staff:${w.coordinator.id}`].sort());
});

after(async () => {
    for (const c of Object.values(conns)) {
        await c.session.destroy().catch(() => {});
    }
    await closeDb();
});

describe('GET /sessions/{id}/participants', () => {
    test('test_live_participants_from_the_members_hash', async () => {
        const res = await api('GET', route('/participants'),
            { token: w.coordinator.token });
        assertStatus(res, 200, 'participants');
        assert.equal(res.body.session_id, session.id);
        assert.equal(res.body.room, session.room);
        const ids = res.body.participants.map((p) => p.participant).sort();
        assert.deepEqual(ids, [`patient:${patient.id}`,
            `staff:${w.clinician.id}`, `staff:${w.coordinator.id}`].sort());
        const chair = res.body.participants
            .find((p) => p.participant === `staff:${w.coordinator.id}`);
        assert.equal(chair.role, 'chair');
        assert.equal(chair.state, 'in');
        assert.deepEqual(res.body.waiting, []);
    });

    test('test_waiting_members_are_listed_apart', async () => {
        const key = `th:room:${session.room}:members`;
        await redis('HSET', key, 'guest:waiting-one', JSON.stringify({
            role: 'broadcaster', display: 'Guest', state: 'waiting' }));
        try {
            const res = await api('GET', route('/participants'),
                { token: w.clinician.token });
            assertStatus(res, 200);
            assert.deepEqual(res.body.waiting.map((p) => p.participant),
                ['guest:waiting-one']);
            assert.equal(res.body.participants.length, 3);
        } finally {
            await redis('HDEL', key, 'guest:waiting-one');
        }
    });

    test('test_who_may_see_the_participants', async () => {
        for (const p of [w.admin, w.supervisor, w.clinician]) {
            assertStatus(await api('GET', route('/participants'),
                { token: p.token }), 200, p.role);
        }
        assertProblem(await api('GET', route('/participants'),
            { token: w.unassigned.token }), 404, 'not-found',
        'clinician not on the session');
        assertProblem(await api('GET', route('/participants'),
            { token: w.other.admin.token }), 404, 'not-found',
        'another organisation');
        assertProblem(await api('GET', route('/participants'),
            { token: patient.token }), 403, 'forbidden', 'the patient');
    });
});

describe('PATCH /sessions/{id}', () => {
    let etag;

    test('test_chair_renames_with_if_match_and_a_stale_etag_is_412', async () => {
        const res = await api('PATCH', route(), { token: w.coordinator.token,
            body: { name: 'Review, week 2',
                scheduled_at: '2026-12-02T09:00:00Z' } });
        assertStatus(res, 200, 'rename');
        assert.equal(res.body.name, 'Review, week 2');
        assert.equal(res.body.scheduled_at, '2026-12-02T09:00:00Z');
        assert.equal(res.body.access, 'invitation');
        assert.equal(res.body.removed, undefined, 'nothing to enforce');
        etag = res.headers.get('etag');
        assert.match(etag, /^"\d+"$/);
        assertProblem(await api('PATCH', route(), { token: w.coordinator.token,
            headers: { 'if-match': '"1"' }, body: { name: 'x' } }),
        412, 'precondition-failed', 'stale If-Match');
    });

    test('test_who_may_change_a_session', async () => {
        assertProblem(await api('PATCH', route(), { token: w.clinician.token,
            body: { name: 'x' } }), 403, 'forbidden', 'broadcaster');
        assertProblem(await api('PATCH', route(), { token: w.unassigned.token,
            body: { name: 'x' } }), 404, 'not-found', 'not on it');
        assertProblem(await api('PATCH', route(), { token: w.other.admin.token,
            body: { name: 'x' } }), 404, 'not-found', 'other organisation');
        assertProblem(await api('PATCH', route(), { token: patient.token,
            body: { name: 'x' } }), 403, 'forbidden', 'the patient');
        assertProblem(await api('PATCH', route(), { token: w.coordinator.token,
            body: { access: 'public' } }), 422, 'validation', 'bad access');
        const admin = await api('PATCH', route(), { token: w.admin.token,
            headers: { 'if-match': etag }, body: { name: 'Review' } });
        assertStatus(admin, 200, 'an admin of the organisation');
        etag = admin.headers.get('etag');
    });

    test('test_internal_on_a_live_session_removes_the_guest_only', async () => {
        // a guest joins by an invite link while the session is invitation
        const inv = await api('POST', route('/invites'), {
            token: w.coordinator.token, body: { channel: 'link' } });
        assertStatus(inv, 201, 'a guest link');
        const red = await api('POST', '/invites/redeem', {
            body: { token: inv.body.token, display_name: 'Guest' } });
        assertStatus(red, 200, 'redeem');
        conns.guest = await joinRoom(red.body.credential);
        assert.ok(!isPluginError(conns.guest.answer.data), 'guest joined');
        const guest = `guest:${inv.body.id}`;
        assert.ok(await eventually(async () =>
            (await members()).includes(guest)), 'the guest is in');

        const res = await api('PATCH', route(), { token: w.coordinator.token,
            headers: { 'if-match': etag }, body: { access: 'internal' } });
        assertStatus(res, 200, 'access internal');
        assert.equal(res.body.access, 'internal');
        assert.deepEqual(res.body.removed, [guest]);
        assert.equal(typeof res.body.command_id, 'string');
        await removedFromRoom(conns.guest);
        assert.ok(await eventually(async () =>
            !(await members()).includes(guest)),
        'the guest left the members hash');
        assert.deepEqual(await members(), [`patient:${patient.id}`,
            `staff:${w.clinician.id}`, `staff:${w.coordinator.id}`].sort(),
        'the staff and the session\'s listed patient stay');
        etag = res.headers.get('etag');
    });

    test('test_private_removes_staff_no_longer_on_the_list', async () => {
        // the clinician is taken off the participant list while in the room
        await sql(`DELETE FROM session_participants
                   WHERE session_id = $1 AND staff_id = $2`,
        [session.id, w.clinician.id]);
        const res = await api('PATCH', route(), { token: w.coordinator.token,
            headers: { 'if-match': etag }, body: { access: 'private' } });
        assertStatus(res, 200, 'access private');
        assert.deepEqual(res.body.removed, [`staff:${w.clinician.id}`],
            'not the listed patient');
        await removedFromRoom(conns.clinician);
        assert.ok(await eventually(async () =>
            (await members()).length === 2), 'two members left');
        assert.deepEqual(await members(), [`patient:${patient.id}`,
            `staff:${w.coordinator.id}`], 'the chair and the patient stay');
        assert.ok(!conns.patient.handle.pluginEvents().some((d) =>
            d.telehealth === 'left'), 'the patient was not removed');
        const chairEvents = conns.chair.handle.pluginEvents();
        assert.ok(!chairEvents.some((d) => d.telehealth === 'left'),
            'the chair was not removed');
    });

    test('test_back_to_invitation_removes_nobody', async () => {
        const res = await api('PATCH', route(), { token: w.coordinator.token,
            body: { access: 'invitation' } });
        assertStatus(res, 200);
        assert.equal(res.body.removed, undefined);
        assert.deepEqual(await members(), [`patient:${patient.id}`,
            `staff:${w.coordinator.id}`]);
    });
});

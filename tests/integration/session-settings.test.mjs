// PATCH /sessions/{id} beyond name, time and access (docs/api.md): the
// policies and the staff on the participant list, by a chair or an admin,
// with If-Match; a live room gets the new values in its room hash and the
// plugin applies them from the next join.  A live change of the access
// level also reaches the room hash: a guest credential issued before a
// change to private is refused at join.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    isPluginError, joinAs, joinCredential, joinRoom, loginAll, redis,
    roomKey, sql,
} from './lib.mjs';

let w;
const conns = [];

async function openSession(label, extra = {}) {
    const patient = await addPatient(w, label);
    const res = await api('POST', '/sessions', { token: w.coordinator.token,
        body: { kind: 'telehealth', patient_id: patient.id,
            participants: [{ type: 'staff', id: w.clinician.id,
                role: 'broadcaster' }], ...extra } });
    assertStatus(res, 201, 'POST /sessions');
    return res.body;
}

const patch = (s, body, token = w.coordinator.token, headers = {}) =>
    api('PATCH', `/sessions/${s.id}`, { token, body, headers });

before(async () => {
    w = await createWorld('settings');
    await loginAll([w.admin, w.supervisor, w.coordinator, w.clinician,
        w.unassigned]);
});

after(async () => {
    for (const c of conns) {
        await c.session.destroy().catch(() => {});
    }
    await closeDb();
});

describe('policies', () => {
    let s;

    before(async () => {
        s = await openSession('pol');
    });

    test('test_chair_changes_policies_in_the_record_and_the_room_hash', async () => {
        const get = await api('GET', `/sessions/${s.id}`,
            { token: w.coordinator.token });
        const res = await patch(s, { policies: { max_participants: 4,
            duration_limit: 600, waiting_room: ['viewer'] } },
        w.coordinator.token, { 'if-match': '"1"' });
        assertStatus(res, 200);
        assert.equal(res.headers.get('etag'), '"2"');
        assert.deepEqual(res.body.policies, { ...get.body.policies,
            max_participants: 4, duration_limit: 600,
            waiting_room: 'viewer' }, 'only the named policies change');
        assert.equal(res.body.room_update, undefined, 'no internal field');
        const hash = await redis('HMGET', roomKey(s.room),
            'max_participants', 'duration_limit', 'waiting_room',
            'leave_policy', 'access');
        assert.deepEqual(hash.split('\n'),
            ['4', '600', 'viewer', 'stay', 'invitation']);
        const rows = await sql('SELECT policies FROM sessions WHERE id = $1',
            [s.id]);
        assert.equal(rows[0].policies.max_participants, 4);
    });

    for (const [policies, what] of [
        [{ max_participants: -1 }, 'max_participants'],
        [{ waiting_room: ['chair'] }, 'waiting_room'],
        [{ leave_policy: 'explode' }, 'leave_policy'],
    ]) {
        test(`test_bad_policy_is_422_and_changes_nothing: ${what}`, async () => {
            const res = await patch(s, { policies, name: 'Changed?' });
            assertProblem(res, 422, 'validation');
            assert.match(res.body.detail, new RegExp(`"${what}"`));
            const rows = await sql('SELECT name, version FROM sessions ' +
                'WHERE id = $1', [s.id]);
            assert.deepEqual(rows[0], { name: null, version: 2 });
        });
    }

    test('test_only_a_chair_or_admin_changes_policies', async () => {
        assertProblem(await patch(s, { policies: { max_participants: 9 } },
            w.clinician.token), 403, 'forbidden');
        assertStatus(await patch(s, { policies: { max_participants: 5 } },
            w.admin.token), 200);
    });

    test('test_the_room_applies_a_lowered_limit_from_the_next_join', async () => {
        const chair = await joinAs(w.coordinator.token, s.id);
        conns.push(chair);
        assertStatus(await patch(s, { policies: { max_participants: 1 } }),
            200);
        const cred = await joinCredential(w.clinician.token, s.id);
        assertStatus(cred, 200);
        const late = await joinRoom(cred.body.credential);
        conns.push(late);
        assert.equal(late.answer.data.error_code, 490,
            JSON.stringify(late.answer.data));
    });
});

describe('participants', () => {
    let s;

    before(async () => {
        s = await openSession('parts', { kind: 'appointment' });
    });

    test('test_chair_sets_the_list_with_more_chairs_and_roles', async () => {
        const res = await patch(s, { participants: [
            { type: 'staff', id: w.coordinator.id, role: 'chair' },
            { type: 'staff', id: w.supervisor.id, role: 'chair' },
            { type: 'staff', id: w.clinician.id, role: 'viewer' },
        ] });
        assertStatus(res, 200);
        const staff = res.body.participants.filter((p) => p.type === 'staff')
            .map((p) => [p.id, p.role]).sort();
        assert.deepEqual(staff, [[w.coordinator.id, 'chair'],
            [w.supervisor.id, 'chair'], [w.clinician.id, 'viewer']].sort());
        assert.ok(res.body.participants.some((p) => p.type === 'patient'
            && p.id === s.patient_id), 'the patient stays');
        const sup = await joinCredential(w.supervisor.token, s.id);
        assertStatus(sup, 200, 'the new chair may join');
        assert.equal(sup.body.role, 'chair');
        const cl = await joinCredential(w.clinician.token, s.id);
        assert.equal(cl.body.role, 'viewer');
        // the new chair may change the session too
        assertStatus(await patch(s, { name: 'By the second chair' },
            w.supervisor.token), 200);
    });

    test('test_removed_staff_lose_the_session', async () => {
        const res = await patch(s, { participants: [
            { type: 'staff', id: w.supervisor.id, role: 'chair' },
        ] });
        assertStatus(res, 200);
        assertProblem(await api('GET', `/sessions/${s.id}`,
            { token: w.clinician.token }), 404, 'not-found');
        // off the list, they join an invitation session as any staff of
        // the organisation (broadcaster, no longer viewer); not a private one
        assert.equal(res.body.access, 'invitation');
        const any = await joinCredential(w.clinician.token, s.id);
        assertStatus(any, 200, 'as staff of the organisation');
        assert.equal(any.body.role, 'broadcaster');
        assertStatus(await patch(s, { access: 'private' }, w.supervisor.token),
            200, 'private');
        assertProblem(await joinCredential(w.clinician.token, s.id), 404,
            'not-found');
    });

    for (const [list, status, what] of [
        [[{ type: 'staff', id: 'WHO' }], 404, /staff member/],
        [[{ type: 'staff', id: 'SUP', role: 'viewer' }], 422, /one chair/],
        [[{ type: 'staff', id: 'SUP', role: 'chair' },
            { type: 'staff', id: 'SUP', role: 'viewer' }], 422, /once/],
        ['many', 422, /More participants/],
    ]) {
        test(`test_bad_participant_list_is_${status}: ${what}`, async () => {
            const ids = { WHO: w.other.admin.id, SUP: w.supervisor.id };
            const participants = list === 'many'
                ? [w.admin, w.supervisor, w.coordinator, w.clinician,
                    w.unassigned].map((p) => ({ type: 'staff', id: p.id,
                    role: 'chair' }))
                : list.map((p) => ({ ...p, id: ids[p.id] }));
            const res = await patch(s, { participants }, w.supervisor.token);
            assertProblem(res, status, status === 404 ? 'not-found'
                : 'validation');
            assert.match(res.body.detail, what);
        });
    }
});

describe('a live access change reaches the room hash', () => {
    test('test_guest_credential_from_before_a_change_to_private_is_refused', async () => {
        const s = await openSession('guest');
        const chair = await joinAs(w.coordinator.token, s.id);
        conns.push(chair);
        const inv = await api('POST', `/sessions/${s.id}/invites`,
            { token: w.coordinator.token, body: { channel: 'link' } });
        assertStatus(inv, 201);
        const red = await api('POST', '/invites/redeem',
            { body: { token: inv.body.token, display_name: 'Late Guest' } });
        assertStatus(red, 200, 'a guest credential under invitation');

        const res = await patch(s, { access: 'private' });
        assertStatus(res, 200);
        assert.equal(await redis('HGET', roomKey(s.room), 'access'),
            'private');

        const guest = await joinRoom(red.body.credential);
        conns.push(guest);
        assert.equal(guest.answer.data.error_code, 475,
            JSON.stringify(guest.answer.data));
        assert.match(guest.answer.data.error, /no longer open to guests/);
        const members = await redis('HKEYS', `th:room:${s.room}:members`);
        assert.ok(!members.includes('guest:'), 'the guest is not a member');

        // staff on the list still join a private session
        const staff = await joinAs(w.clinician.token, s.id);
        conns.push(staff);

        // back to invitation: a new link works again
        assertStatus(await patch(s, { access: 'invitation' }), 200);
        const inv2 = await api('POST', `/sessions/${s.id}/invites`,
            { token: w.coordinator.token, body: { channel: 'link' } });
        const red2 = await api('POST', '/invites/redeem',
            { body: { token: inv2.body.token, display_name: 'Guest' } });
        const again = await joinRoom(red2.body.credential);
        conns.push(again);
        assert.ok(!isPluginError(again.answer.data),
            JSON.stringify(again.answer.data));
    });
});

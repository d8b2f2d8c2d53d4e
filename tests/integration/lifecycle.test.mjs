// The session lifecycle (docs/lifecycle.md): PostgreSQL decides whether a
// session is open, the Redis room is its projection and never expires
// while it is, every end is recorded once with its reason, the reconciler
// repairs what disagrees, patients only where a kind needs one, invitee-
// first kinds opened by the invitee's link, chairs' bans.
//
// The reconciler of the test stack runs every second
// (telehealth_reconcile_interval 1s in conf/nginx.conf.in).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    eventually, isPluginError, joinAs, joinCredential, joinRoom, leaveRoom,
    loginAll,
    patientLockKey, redis, roomKey, sleep, sql,
} from './lib.mjs';

let w;
let n = 0;
const LATER = '2030-01-02T09:00:00Z';

before(async () => {
    w = await createWorld('lifecycle');
    await loginAll([w.admin, w.coordinator, w.clinician, w.unassigned,
        w.patient]);
});

after(closeDb);

async function create(body, token = w.coordinator.token) {
    const res = await api('POST', '/sessions', { token, body });
    assertStatus(res, 201, `POST /sessions ${JSON.stringify(body)}`);
    return res.body;
}

const row = async (id) => (await sql(
    'SELECT state, room, end_reason FROM sessions WHERE id = $1', [id]))[0];

// what the API lists for the session's chair
async function listedState(id, token = w.coordinator.token) {
    const res = await api('GET', `/sessions/${id}`, { token });
    assertStatus(res, 200, 'GET /sessions/{id}');
    return res.body.state;
}

// PostgreSQL, Redis and the API tell the same: ended with this reason
async function assertEnded(s, reason) {
    assert.ok(await eventually(async () =>
        (await row(s.id)).state === 'ended', 8000), `${s.kind} ends`);
    assert.equal((await row(s.id)).end_reason, reason);
    assert.equal(await listedState(s.id), 'ended');
    assert.notEqual(await redis('HGET', roomKey(s.room), 'state'), 'open');
    const join = await joinCredential(w.coordinator.token, s.id);
    assertProblem(join, 409, 'room-not-open', 'no join after the end');
}

describe('patients only where the kind is about one', () => {
    for (const kind of ['meeting_room', 'consult_now', 'group',
        'telehealth', 'consultation']) {
        test(`test_${kind}_needs_no_patient`, async () => {
            const s = await create({ kind, name: `no patient ${kind}` });
            assert.equal(s.patient_id, null);
            assert.equal(s.state, 'open');
            assert.deepEqual(s.participants.map((p) => p.role), ['chair']);
            assert.equal(await redis('HGET', roomKey(s.room), 'patient'), '');
            const join = await joinCredential(w.coordinator.token, s.id);
            assertStatus(join, 200, 'its chair joins');
        });
    }

    for (const kind of ['video_call', 'virtual_visit', 'appointment']) {
        test(`test_${kind}_without_a_patient_is_422`, async () => {
            const res = await api('POST', '/sessions', {
                token: w.coordinator.token,
                body: { kind, service_code: 'none' } });
            assertProblem(res, 422, 'validation');
            assert.match(res.body.detail, /patient_id/);
        });
    }

    test('test_a_clinician_starts_a_session_without_a_patient', async () => {
        const s = await create({ kind: 'meeting_room' }, w.clinician.token);
        assert.equal(s.state, 'open');
    });

    test('test_only_a_video_call_locks_its_patient_at_start', async () => {
        const p = await addPatient(w, `lock${++n}`);
        const t = await create({ kind: 'telehealth', patient_id: p.id });
        assert.equal(await redis('EXISTS', patientLockKey(p.id)), '0',
            'a telehealth session locks the patient when they join');
        const v = await create({ kind: 'video_call', patient_id: p.id });
        assert.equal(await redis('GET', patientLockKey(p.id)), v.room);
        assert.equal(await redis('TTL', patientLockKey(p.id)), '-1');
        assert.equal(await redis('TTL', roomKey(t.room)), '-1');
    });
});

describe('an open session stays joinable', () => {
    test('test_an_empty_telehealth_room_stays_open_and_joinable', async () => {
        const s = await create({ kind: 'telehealth', name: 'stays' });
        // longer than a reconciler round, with nobody in it
        await sleep(2500);
        assert.equal((await row(s.id)).state, 'open');
        assert.equal(await redis('HGET', roomKey(s.room), 'state'), 'open');
        assert.equal(await redis('TTL', roomKey(s.room)), '-1');
        assertStatus(await joinCredential(w.coordinator.token, s.id), 200,
            'the chair still joins');
    });

    test('test_a_lost_room_is_rebuilt_from_postgresql', async () => {
        const s = await create({ kind: 'telehealth', name: 'rebuilt',
            policies: { max_participants: 4 } });
        const before = await redis('HGET', roomKey(s.room),
            'max_participants');
        await redis('DEL', roomKey(s.room));
        assert.ok(await eventually(async () =>
            await redis('HGET', roomKey(s.room), 'state') === 'open', 6000),
        'the reconciler rebuilds the room');
        assert.equal(await redis('HGET', roomKey(s.room), 'session'), s.id);
        assert.equal(await redis('HGET', roomKey(s.room), 'max_participants'),
            before);
        assertStatus(await joinCredential(w.coordinator.token, s.id), 200);
    });

    test('test_a_lost_video_call_gets_its_room_and_lock_back', async () => {
        const p = await addPatient(w, `rebuild${++n}`);
        const s = await create({ kind: 'video_call', patient_id: p.id });
        await redis('DEL', roomKey(s.room), patientLockKey(p.id));
        assert.ok(await eventually(async () =>
            await redis('GET', patientLockKey(p.id)) === s.room, 6000),
        'the lock of the video call is back');
        assert.equal(await redis('HGET', roomKey(s.room), 'kind'),
            'video_call');
    });
});

describe('every end, once, with its reason', () => {
    test('test_an_unjoined_room_past_its_empty_timeout_ends_expired',
        async () => {
            const p = await addPatient(w, `exp${++n}`);
            const s = await create({ kind: 'video_call', patient_id: p.id,
                policies: { empty_timeout: 1 } });
            await assertEnded(s, 'expired');
            assert.equal(await redis('EXISTS', patientLockKey(p.id)), '0',
                'the patient lock is free');
            const calls = await sql('SELECT ended_at IS NOT NULL AS ended, '
                + 'end_reason FROM calls WHERE session_id = $1', [s.id]);
            assert.deepEqual(calls, [{ ended: true, end_reason: 'expired' }]);
        });

    test('test_a_room_whose_node_died_ends_node_lost', async () => {
        const p = await addPatient(w, `lost${++n}`);
        const s = await create({ kind: 'video_call', patient_id: p.id,
            policies: { node_grace: 1 } });
        // as a node that hosted it and died: its heartbeat is gone, its
        // last lease long ago, a member still listed
        const member = `patient:${p.id}`;
        await redis('HSET', roomKey(s.room), 'node', `gone-${n}`,
            'lease_at', String(Date.now() - 60000), 'opened_at',
            String(Date.now() - 60000));
        await redis('HDEL', roomKey(s.room), 'empty_since');
        await redis('HSET', `${roomKey(s.room)}:members`, member,
            JSON.stringify({ role: 'broadcaster', state: 'in' }));
        await assertEnded(s, 'node_lost');
        assert.equal(await redis('EXISTS', patientLockKey(p.id)), '0');
        assert.equal(await redis('EXISTS', `${roomKey(s.room)}:members`),
            '0');
        assert.ok(await eventually(async () => (await sql(
            `SELECT left_reason FROM call_participants cp JOIN calls c
              ON c.id = cp.call_id WHERE c.session_id = $1
              AND cp.participant = $2`, [s.id, member]))
            .some((r) => r.left_reason === 'node_lost')),
        'the member left with node_lost');
    });

    test('test_a_room_within_its_node_grace_stays_open', async () => {
        const s = await create({ kind: 'telehealth', name: 'grace' });
        await redis('HSET', roomKey(s.room), 'node', 'gone-grace',
            'lease_at', String(Date.now()));
        await sleep(2500);
        assert.equal((await row(s.id)).state, 'open',
            'node_grace (120 s) has not passed');
    });

    test('test_a_close_postgresql_missed_is_applied', async () => {
        const s = await create({ kind: 'telehealth', name: 'missed' });
        // closed in Redis long ago, its room.closed never applied
        await redis('HSET', roomKey(s.room), 'state', 'closed',
            'closed_reason', 'closed_by_chair', 'closed_at',
            String(Date.now() - 60000));
        await assertEnded(s, 'closed_by_chair');
    });

    test('test_cancel_ends_a_scheduled_session_with_no_room', async () => {
        const s = await create({ kind: 'telehealth', scheduled_at: LATER });
        const res = await api('POST', `/sessions/${s.id}/close`,
            { token: w.coordinator.token });
        assertStatus(res, 200);
        assert.equal(res.body.state, 'ended');
    });
});

describe('what the reconciler repairs in Redis', () => {
    test('test_a_room_without_an_open_session_is_deleted', async () => {
        const room = `orphan${Date.now()}`;
        await redis('HSET', roomKey(room), 'state', 'open', 'session',
            '00000000-0000-0000-0000-000000000000', 'created_at',
            String(Math.floor(Date.now() / 1000) - 3600));
        assert.ok(await eventually(async () =>
            await redis('EXISTS', roomKey(room)) === '0', 6000));
    });

    test('test_a_fresh_room_not_yet_in_postgresql_is_left_alone',
        async () => {
            const room = `fresh${Date.now()}`;
            await redis('HSET', roomKey(room), 'state', 'open', 'session',
                '00000000-0000-0000-0000-000000000000', 'created_at',
                String(Math.floor(Date.now() / 1000)));
            await sleep(2500);
            assert.equal(await redis('EXISTS', roomKey(room)), '1');
            await redis('DEL', roomKey(room));
        });

    test('test_a_lock_held_by_nobody_in_the_room_is_deleted', async () => {
        const p = await addPatient(w, `stale${++n}`);
        const s = await create({ kind: 'telehealth', patient_id: p.id });
        await redis('SET', patientLockKey(p.id), s.room);
        assert.ok(await eventually(async () =>
            await redis('EXISTS', patientLockKey(p.id)) === '0', 6000));
        assert.equal((await row(s.id)).state, 'open', 'the session stays');
    });

    test('test_a_lock_of_a_member_stays', async () => {
        const p = await addPatient(w, `member${++n}`);
        const s = await create({ kind: 'telehealth', patient_id: p.id });
        await redis('SET', patientLockKey(p.id), s.room);
        await redis('HSET', `${roomKey(s.room)}:members`, `patient:${p.id}`,
            JSON.stringify({ role: 'broadcaster', state: 'in' }));
        await sleep(2500);
        assert.equal(await redis('GET', patientLockKey(p.id)), s.room);
        await redis('DEL', patientLockKey(p.id), `${roomKey(s.room)}:members`);
    });
});

describe('invitee first', () => {
    async function guestLink(s) {
        const res = await api('POST', `/sessions/${s.id}/invites`, {
            token: w.coordinator.token,
            body: { channel: 'link', invitee: { display_name: 'Colleague' } },
        });
        assertStatus(res, 201, 'a guest link');
        return res.body.token;
    }

    const redeem = (token) => api('POST', '/invites/redeem', {
        body: { token, display_name: 'Invited Guest' } });

    test('test_a_guest_link_opens_a_scheduled_consultation', async () => {
        const s = await create({ kind: 'consultation', scheduled_at: LATER });
        const requester = await joinCredential(w.coordinator.token, s.id);
        assertProblem(requester, 409, 'room-not-open', 'requester first');
        const token = await guestLink(s);

        const res = await redeem(token);
        assertStatus(res, 200, 'the invitee opens it');
        const r = await row(s.id);
        assert.equal(r.state, 'open');
        assert.equal(res.body.room, r.room);
        assert.equal(await redis('HGET', roomKey(r.room), 'first_connect'),
            'broadcaster', 'the requester still needs the invitee in');
        const opened = await sql(`SELECT actor_type, outcome FROM audit_log
            WHERE action = 'session_open' AND target_id = $1`, [s.id]);
        assert.deepEqual(opened, [{ actor_type: 'guest',
            outcome: 'success' }]);
        assertStatus(await joinCredential(w.coordinator.token, s.id), 200,
            'then the requester gets a credential');
    });

    test('test_a_patient_opens_a_scheduled_appointment_by_logging_in',
        async () => {
            const s = await create({ kind: 'appointment',
                patient_id: w.patient.id, scheduled_at: LATER });
            const res = await joinCredential(w.patient.token, s.id);
            assertStatus(res, 200, 'the service user opens it');
            assert.equal((await row(s.id)).state, 'open');
            assert.equal(await redis('HGET', roomKey(res.body.room),
                'waiting_room'), 'broadcaster', 'and waits there');
            await api('POST', `/sessions/${s.id}/close`,
                { token: w.coordinator.token });
        });

    test('test_a_guest_link_does_not_open_a_chair_opened_kind', async () => {
        const s = await create({ kind: 'telehealth', scheduled_at: LATER });
        const token = await guestLink(s);
        const res = await redeem(token);
        assertProblem(res, 409, 'room-not-open');
        assert.equal((await row(s.id)).state, 'scheduled');
        // the link is not spent
        assertStatus(await joinCredential(w.coordinator.token, s.id), 200);
        assertStatus(await redeem(token), 200, 'the link works once open');
    });
});

describe('bans', () => {
    // the plugin reports a chair's removal on the event stream
    async function removedByChair(s, participant) {
        await redis('XADD', 'th:events', '*', 'type', 'chair.action',
            'room', s.room, 'session', s.id, 'org', w.org.id,
            'action', 'remove', 'actor', `staff:${w.coordinator.id}`,
            'participant', participant, 'ts', String(Date.now()));
        assert.ok(await eventually(async () => (await sql(
            'SELECT 1 FROM session_bans WHERE session_id = $1', [s.id]))
            .length === 1), 'the ban is recorded');
    }

    test('test_a_removed_staff_member_gets_no_credential_until_lifted',
        async () => {
            const s = await create({ kind: 'telehealth', name: 'bans',
                participants: [{ type: 'staff', id: w.unassigned.id,
                    role: 'broadcaster' }] });
            const who = `staff:${w.unassigned.id}`;
            await removedByChair(s, who);

            const audit = await sql(`SELECT actor_type, actor_id, target_id,
                outcome FROM audit_log WHERE action = 'room_remove'
                AND target_id = $1`, [who]);
            assert.deepEqual(audit, [{ actor_type: 'staff',
                actor_id: w.coordinator.id, target_id: who,
                outcome: 'success' }]);

            const refused = await joinCredential(w.unassigned.token, s.id);
            assertProblem(refused, 403, 'banned');

            const list = await api('GET', `/sessions/${s.id}/bans`,
                { token: w.coordinator.token });
            assertStatus(list, 200);
            assert.deepEqual(list.body.items.map((b) => b.participant),
                [who]);
            assertProblem(await api('DELETE',
                `/sessions/${s.id}/bans/${who}`,
                { token: w.unassigned.token }), 403, 'forbidden',
            'not a chair');

            await redis('SADD', `th:session:${s.id}:banned`, who);
            const lift = await api('DELETE', `/sessions/${s.id}/bans/${who}`,
                { token: w.coordinator.token });
            assertStatus(lift, 200, 'the chair lifts it');
            assert.equal(await redis('SISMEMBER',
                `th:session:${s.id}:banned`, who), '0',
            'out of the room\'s ban set too');
            assertStatus(await joinCredential(w.unassigned.token, s.id), 200,
                'back in');
            assertProblem(await api('DELETE',
                `/sessions/${s.id}/bans/${who}`,
                { token: w.coordinator.token }), 404, 'not-found',
            'lifted already');
        });

    test('test_a_removed_guest_cannot_come_back_by_the_same_link',
        async () => {
            const s = await create({ kind: 'telehealth', name: 'guest ban' });
            const inv = await api('POST', `/sessions/${s.id}/invites`, {
                token: w.coordinator.token,
                body: { channel: 'link', single_use: false },
            });
            assertStatus(inv, 201);
            // the second redemption of a multi-use link was removed
            await removedByChair(s, `guest:${inv.body.id}.2`);
            const res = await api('POST', '/invites/redeem', {
                body: { token: inv.body.token, display_name: 'Back Again' } });
            assertProblem(res, 403, 'banned');
        });

    test('test_a_role_change_is_kept_for_the_list', async () => {
        const s = await create({ kind: 'telehealth', name: 'demoted',
            participants: [{ type: 'staff', id: w.unassigned.id,
                role: 'broadcaster' }] });
        await redis('XADD', 'th:events', '*', 'type', 'chair.action',
            'room', s.room, 'session', s.id, 'org', w.org.id,
            'action', 'role', 'actor', `staff:${w.coordinator.id}`,
            'participant', `staff:${w.unassigned.id}`, 'role', 'viewer',
            'ts', String(Date.now()));
        assert.ok(await eventually(async () => (await sql(
            `SELECT role FROM session_participants WHERE session_id = $1
             AND staff_id = $2`, [s.id, w.unassigned.id]))[0].role
            === 'viewer'));
        const join = await joinCredential(w.unassigned.token, s.id);
        assertStatus(join, 200);
        assert.equal(join.body.role, 'viewer', 'rejoins demoted');
    });
});

describe('group registration', () => {
    test('test_group_participants_register_and_the_moderator_admits',
        async () => {
            const s = await create({ kind: 'group', name: 'therapy group',
                scheduled_at: LATER });
            const link = await api('POST', `/sessions/${s.id}/invites`, {
                token: w.coordinator.token,
                body: { channel: 'link', single_use: false, ttl: 86400 } });
            assertStatus(link, 201, 'the group\'s link');
            const reg = (name) => api('POST', '/invites/redeem', {
                body: { token: link.body.token, display_name: name } });

            const a = await reg('Ann Group');
            assertStatus(a, 202, 'registered before it starts');
            assert.equal(a.body.registered, true);
            assert.equal(a.body.registration.state, 'registered');
            assert.equal(a.body.credential, undefined, 'no credential yet');
            assertStatus(await reg('Ann Group'), 202, 'registering twice');
            assertStatus(await reg('Bob Group'), 202);
            assertStatus(await reg('Cy Group'), 202);

            const list = await api('GET', `/sessions/${s.id}/registrations`,
                { token: w.coordinator.token });
            assertStatus(list, 200);
            assert.deepEqual(list.body.items.map((r) => r.display_name),
                ['Ann Group', 'Bob Group', 'Cy Group'],
                'each person once, in the order they registered');
            assertProblem(await api('GET', `/sessions/${s.id}/registrations`,
                { token: w.unassigned.token }), 404, 'not-found',
            'not the moderator\'s colleague on it');

            const one = await api('POST', `/sessions/${s.id}/registrations/`
                + `${list.body.items[0].id}/admit`,
            { token: w.coordinator.token });
            assertStatus(one, 200, 'admit one');
            assert.equal(one.body.state, 'admitted');
            const all = await api('POST',
                `/sessions/${s.id}/registrations/admit`,
                { token: w.coordinator.token });
            assertStatus(all, 200, 'admit all');
            assert.equal(all.body.admitted, 2);

            // it starts: admitted registrants get a credential that skips
            // the waiting room; someone who never registered waits
            assertStatus(await joinCredential(w.coordinator.token, s.id),
                200, 'the moderator opens it');
            const ann = await reg('Ann Group');
            assertStatus(ann, 200);
            assert.equal(decode(ann.body.credential).admitted, true);
            const late = await reg('Late Comer');
            assertStatus(late, 200);
            assert.equal(decode(late.body.credential).admitted, undefined);
        });
});

function decode(jwt) {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

describe('every end path: PostgreSQL, Redis and the API agree', () => {
    // each path ends a session; afterwards the session is ended with the
    // path's reason everywhere, its call closed, nothing listed open
    const paths = [
        ['a video call whose staff member leaves', 'chair_left', async () => {
            const p = await addPatient(w, `path${++n}`);
            const s = await create({ kind: 'video_call', patient_id: p.id });
            const c = await joinAs(w.coordinator.token, s.id);
            await leaveRoom(c);
            await c.session.destroy();
            return s;
        }],
        ['a chair closes the room', 'closed_by_chair', async () => {
            const s = await create({ kind: 'telehealth', name: 'path close' });
            const c = await joinAs(w.coordinator.token, s.id);
            const res = await c.handle.message({ request: 'close' });
            assert.ok(!isPluginError(res.data), JSON.stringify(res.data));
            await c.session.destroy();
            return s;
        }],
        ['POST /sessions/{id}/close', 'closed_by_chair', async () => {
            const s = await create({ kind: 'telehealth', name: 'path api' });
            const c = await joinAs(w.coordinator.token, s.id);
            assertStatus(await api('POST', `/sessions/${s.id}/close`,
                { token: w.coordinator.token }), 202);
            await eventually(async () => c.handle.pluginEvents()
                .some((d) => d.telehealth === 'closed'), 5000);
            await c.session.destroy();
            return s;
        }],
        ['its duration limit', 'duration_limit', async () => {
            const s = await create({ kind: 'telehealth', name: 'path limit',
                policies: { duration_limit: 2 } });
            const c = await joinAs(w.coordinator.token, s.id);
            await eventually(async () => c.handle.pluginEvents()
                .some((d) => d.telehealth === 'closed'), 8000);
            await c.session.destroy();
            return s;
        }],
        ['empty past its empty_timeout on its node', 'expired', async () => {
            const s = await create({ kind: 'telehealth', name: 'path empty',
                policies: { empty_timeout: 1 } });
            const c = await joinAs(w.coordinator.token, s.id);
            await leaveRoom(c);
            await c.session.destroy();
            return s;
        }],
    ];

    for (const [what, reason, run] of paths) {
        test(`test_${reason}: ${what}`, async () => {
            const s = await run();
            await assertEnded(s, reason);
            const calls = await sql(`SELECT ended_at IS NOT NULL AS ended,
                end_reason FROM calls WHERE session_id = $1`, [s.id]);
            assert.deepEqual(calls, [{ ended: true, end_reason: reason }]);
            const open = await sql(`SELECT count(*)::int AS n FROM
                call_participants cp JOIN calls c ON c.id = cp.call_id
                WHERE c.session_id = $1 AND cp.left_at IS NULL`, [s.id]);
            assert.equal(open[0].n, 0, 'nobody is still in the call');
            const listed = await api('GET', '/sessions?state=open',
                { token: w.coordinator.token });
            assert.ok(!listed.body.items.some((x) => x.id === s.id),
                'not listed open');
            if (s.patient_id) {
                assert.equal(await redis('EXISTS',
                    patientLockKey(s.patient_id)), '0', 'lock free');
            }
        });
    }
});

describe('invitee first, in the room: arrives, waits, rings, admitted', () => {
    const flows = [];
    for (const kind of ['consultation', 'appointment']) {
        for (const invitee of ['patient', 'guest']) {
            flows.push([kind, invitee]);
        }
    }

    for (const [kind, invitee] of flows) {
        test(`test_${kind}_${invitee}_invitee_opens_waits_and_is_admitted`,
            async () => {
                const p = await addPatient(w, `inv${++n}`);
                await loginAll([p]);
                const s = await create({ kind, patient_id: p.id,
                    scheduled_at: LATER });

                // the requester alone cannot open it
                const early = await joinCredential(w.coordinator.token, s.id);
                assertProblem(early, 409, 'room-not-open', 'requester first');
                assert.equal((await row(s.id)).state, 'scheduled');

                // the invitee arrives: opens it and waits
                let cred;
                let who;
                if (invitee === 'patient') {
                    cred = await joinCredential(p.token, s.id);
                    who = `patient:${p.id}`;
                } else {
                    const link = await api('POST',
                        `/sessions/${s.id}/invites`, {
                            token: w.coordinator.token,
                            body: { channel: 'link',
                                invitee: { display_name: 'A Guest' } } });
                    assertStatus(link, 201);
                    cred = await api('POST', '/invites/redeem', { body: {
                        token: link.body.token, display_name: 'A Guest' } });
                    who = `guest:${link.body.id}`;
                }
                assertStatus(cred, 200, `the ${invitee} opens it`);
                assert.equal((await row(s.id)).state, 'open');
                const inv = await joinRoom(cred.body.credential);
                conns.push(inv);
                assert.equal(inv.answer.data.state, 'waiting',
                    JSON.stringify(inv.answer.data));

                // the requester's console rings
                assert.ok(await eventually(async () => (await sql(
                    `SELECT 1 FROM console_events WHERE session_id = $1
                     AND recipient_id = $2 AND type = 'waiting'`,
                    [s.id, w.coordinator.id])).length === 1, 6000),
                'the requester is rung');

                // the requester joins now and admits the invitee
                const chair = await joinAs(w.coordinator.token, s.id);
                conns.push(chair);
                const ok = await chair.handle.message({ request: 'admit',
                    participant: who });
                assert.ok(!isPluginError(ok.data), JSON.stringify(ok.data));
                const admitted = await inv.handle.waitData((d) =>
                    d.telehealth === 'admitted', 6000);
                assert.equal(admitted.telehealth, 'admitted');
                assert.ok(await eventually(async () => (await sql(
                    `SELECT 1 FROM audit_log WHERE action = 'room_admit'
                     AND target_id = $1`, [who])).length === 1, 6000),
                'the admission is audited');
            });
    }
});

const conns = [];
after(async () => {
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
});

// Two Janus nodes and two nginx instances on one Redis and one PostgreSQL
// (docs/lifecycle.md): the one-room rule for a patient holds across all
// of them, a dead node's heartbeat lapses within 10 s, its rooms are
// taken over by the next join on a live node or closed `node_lost` when
// nobody comes back, and chairs' actions in the room are audited and
// bans hold.  The test starts the second Janus and nginx on their own
// ports and stops (or kills) them by their pid.  Figures are printed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    IN_SESSION_DETAIL, addPatient, api, assertProblem, assertStatus,
    closeDb, createWorld, env, eventually, isPluginError, joinCredential,
    joinRoom, loginAll, patientLockKey, redis, roomKey, sql,
    startJanus, startNginx,
} from './lib.mjs';

const JANUS2_PORT = Number(process.env.TH_JANUS2_PORT || 61082);
const JANUS3_PORT = Number(process.env.TH_JANUS3_PORT || 61083);
const NGINX2_PORT = Number(process.env.TH_NGINX2_PORT || 61081);
const ERR_IN_SESSION = 476;
const ERR_BANNED = 477;

let w;
let janus2;
let nginx2;
const conns = [];

before(async () => {
    w = await createWorld('multijanus');
    await loginAll([w.admin, w.coordinator, w.clinician, w.unassigned,
        w.patient]);
    janus2 = await startJanus(JANUS2_PORT, `it-node-2-${process.pid}`);
    nginx2 = await startNginx(NGINX2_PORT);
});

after(async () => {
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
    await janus2?.stop();
    await nginx2?.stop();
    await closeDb();
});

async function join(credential, base) {
    const conn = await joinRoom(credential, base);
    conns.push(conn);
    return conn;
}

async function create(body, token = w.coordinator.token) {
    const res = await api('POST', '/sessions', { token, body });
    assertStatus(res, 201, 'POST /sessions');
    return res.body;
}

describe('one open room per patient, across nodes', () => {
    test('test_20_parallel_joins_of_one_patient_into_20_rooms_one_wins',
        async () => {
            const p = await addPatient(w, 'race');
            await loginAll([p]);
            const sessions = [];
            for (let i = 0; i < 20; i++) {
                sessions.push(await create({ kind: 'telehealth',
                    patient_id: p.id, name: `race ${i}` }));
            }
            // credentials from both nginx instances
            const creds = await Promise.all(sessions.map((s, i) => api('POST',
                `${i % 2 ? nginx2.api : env.api}/sessions/${s.id}/join`,
                { token: p.token })));
            for (const c of creds) {
                assertStatus(c, 200, 'a credential for each room');
            }
            // joins on both Janus nodes at once
            const answers = await Promise.all(creds.map((c, i) =>
                join(c.body.credential, i % 2 ? janus2.base : env.janus)));
            const won = answers.filter((a) => !isPluginError(a.answer.data));
            const lost = answers.filter((a) => isPluginError(a.answer.data));
            assert.equal(won.length, 1, 'exactly one join wins');
            for (const l of lost) {
                assert.equal(l.answer.data.error_code, ERR_IN_SESSION);
                assert.equal(l.answer.data.error, IN_SESSION_DETAIL);
            }
            const winner = creds[answers.indexOf(won[0])].body.room;
            assert.equal(await redis('GET', patientLockKey(p.id)), winner);
            console.log(`# one-room rule: 20 parallel joins over 2 nginx and `
                + `2 Janus: ${won.length} won, ${lost.length} refused 476`);

            // the API answers the same for another room meanwhile
            const other = await api('POST', `/sessions/${sessions.find(
                (s) => s.room !== winner).id}/join`, { token: p.token });
            assertProblem(other, 409, 'patient-in-session');

            // leaving gives the lock back
            await won[0].handle.message({ request: 'leave' });
            assert.ok(await eventually(async () =>
                await redis('EXISTS', patientLockKey(p.id)) === '0'),
            'the lock follows the patient out');
        });
});

describe('a dead Janus node', () => {
    test('test_kill_9_of_the_host_heartbeat_lapses_and_the_room_closes_node_lost',
        async () => {
            const node = await startJanus(JANUS3_PORT,
                `it-node-3-${process.pid}`);
            try {
                const p = await addPatient(w, 'nodelost');
                await loginAll([p]);
                const s = await create({ kind: 'telehealth',
                    patient_id: p.id, policies: { node_grace: 3 } });
                const chair = await joinCredential(w.coordinator.token, s.id);
                const pt = await api('POST', `/sessions/${s.id}/join`,
                    { token: p.token });
                await join(chair.body.credential, node.base);
                const pc = await join(pt.body.credential, node.base);
                assert.ok(!isPluginError(pc.answer.data),
                    JSON.stringify(pc.answer.data));
                assert.equal(await redis('HGET', roomKey(s.room), 'node'),
                    node.nodeId);
                assert.equal(await redis('GET', patientLockKey(p.id)),
                    s.room);

                const killed = Date.now();
                node.kill('SIGKILL');
                assert.ok(await eventually(async () => await redis('EXISTS',
                    `th:node:${node.nodeId}`) === '0', 12000, 100),
                'the heartbeat lapses');
                const detection = Date.now() - killed;
                assert.ok(detection <= 10000,
                    `heartbeat gone ${detection} ms after kill -9`);

                assert.ok(await eventually(async () => (await sql(
                    'SELECT state FROM sessions WHERE id = $1', [s.id]))[0]
                    .state === 'ended', 15000, 100), 'the session ends');
                const closed = Date.now() - killed;
                const row = (await sql(`SELECT end_reason FROM sessions
                    WHERE id = $1`, [s.id]))[0];
                assert.equal(row.end_reason, 'node_lost');
                assert.equal(await redis('EXISTS', patientLockKey(p.id)),
                    '0', 'the patient lock is free');
                const call = await sql(`SELECT ended_at IS NOT NULL AS ended,
                    end_reason FROM calls WHERE session_id = $1`, [s.id]);
                assert.deepEqual(call, [{ ended: true,
                    end_reason: 'node_lost' }]);
                console.log(`# kill -9 of the host: heartbeat gone after `
                    + `${detection} ms, room closed node_lost and lock `
                    + `released after ${closed} ms (node_grace 3 s)`);
            } finally {
                await node.stop();
            }
        });

    test('test_after_kill_9_participants_rejoin_on_another_node',
        async () => {
            const node = await startJanus(JANUS3_PORT,
                `it-node-3b-${process.pid}`);
            try {
                const s = await create({ kind: 'telehealth',
                    name: 'rejoin' });
                const first = await joinCredential(w.coordinator.token, s.id);
                await join(first.body.credential, node.base);
                const killed = Date.now();
                node.kill('SIGKILL');
                // the next join on a live node takes the room over once
                // the dead host's heartbeat is gone
                let conn;
                assert.ok(await eventually(async () => {
                    const again = await joinCredential(w.coordinator.token,
                        s.id);
                    conn = await join(again.body.credential, janus2.base);
                    return !isPluginError(conn.answer.data);
                }, 15000, 500), 'rejoined on the other node');
                const rejoin = Date.now() - killed;
                assert.equal(await redis('HGET', roomKey(s.room), 'node'),
                    janus2.nodeId);
                assert.equal((await sql('SELECT state FROM sessions '
                    + 'WHERE id = $1', [s.id]))[0].state, 'open');
                console.log(`# kill -9 of the host: rejoined on the other `
                    + `node after ${rejoin} ms`);
            } finally {
                await node.stop();
            }
        });
});

describe('chairs\' actions in the room', () => {
    test('test_each_chair_action_is_audited_and_a_removal_bans', async () => {
        const s = await create({ kind: 'telehealth', name: 'audited',
            policies: { waiting_room: ['broadcaster'] },
            participants: [{ type: 'staff', id: w.unassigned.id,
                role: 'broadcaster' }] });
        const chairCred = await joinCredential(w.coordinator.token, s.id);
        const chair = await join(chairCred.body.credential, env.janus);
        const guestCred = await joinCredential(w.unassigned.token, s.id);
        const guest = await join(guestCred.body.credential, env.janus);
        assert.ok(!isPluginError(guest.answer.data));
        const who = `staff:${w.unassigned.id}`;

        const act = (body) => chair.handle.message(body);
        for (const body of [
            { request: 'admit', participant: who },
            { request: 'mute', participant: who, audio: true },
            { request: 'set_role', participant: who, role: 'viewer' },
            { request: 'remove', participant: who },
        ]) {
            const res = await act(body);
            assert.ok(!isPluginError(res.data),
                `${body.request}: ${JSON.stringify(res.data)}`);
        }
        const actions = ['room_admit', 'room_mute', 'room_role',
            'room_remove'];
        assert.ok(await eventually(async () => (await sql(
            `SELECT action FROM audit_log WHERE target_id = $1
             AND action = ANY($2)`, [who, actions])).length === 4, 8000),
        'an audit row for each action');
        // one row each; the order of ids is the order in which the stream's
        // consumers (every nginx of the stack) applied them, not the actions'
        const rows = await sql(`SELECT action, actor_type, actor_id, outcome
            FROM audit_log WHERE target_id = $1 AND action = ANY($2)
            ORDER BY action`, [who, actions]);
        assert.deepEqual(rows.map((r) => r.action), [...actions].sort());
        for (const r of rows) {
            assert.equal(r.actor_id, w.coordinator.id);
            assert.equal(r.outcome, 'success');
        }

        // removed: no way back in until the chair lifts the ban
        const api403 = await joinCredential(w.unassigned.token, s.id);
        assertProblem(api403, 403, 'banned');
        const fresh = await mintedAgain(s, who);
        const back = await join(fresh, env.janus);
        assert.equal(back.answer.data.error_code, ERR_BANNED,
            'a fresh credential is refused by the plugin too');
        const lift = await api('DELETE',
            `/sessions/${s.id}/bans/${encodeURIComponent(who)}`,
            { token: w.coordinator.token });
        assertStatus(lift, 200);
        const again = await joinCredential(w.unassigned.token, s.id);
        assertStatus(again, 200, 'let back in');
        assert.equal(again.body.role, 'viewer', 'with the demoted role');
        const rejoined = await join(again.body.credential, env.janus);
        assert.ok(!isPluginError(rejoined.answer.data),
            JSON.stringify(rejoined.answer.data));

        await chair.handle.message({ request: 'close' });
        assert.ok(await eventually(async () => (await sql(
            `SELECT 1 FROM audit_log WHERE action = 'room_close'
             AND actor_id = $1`, [w.coordinator.id])).length > 0, 8000));
    });
});

// a credential as the API would issue it, bypassing the API's own ban
// check: the plugin must refuse it by itself
async function mintedAgain(s, who) {
    await sql('DELETE FROM session_bans WHERE session_id = $1', [s.id]);
    const res = await joinCredential(w.unassigned.token, s.id);
    assertStatus(res, 200);
    await sql(`INSERT INTO session_bans (session_id, participant, org_id,
        banned_by) VALUES ($1, $2, $3, 'test')`, [s.id, who, w.org.id]);
    return res.body.credential;
}


describe('breakout rooms through the API', () => {
    test('test_a_chair_creates_moves_and_closes_breakout_rooms', async () => {
        const s = await create({ kind: 'group', name: 'breakouts',
            participants: [{ type: 'staff', id: w.unassigned.id,
                role: 'broadcaster' }] });
        const chairCred = await joinCredential(w.coordinator.token, s.id);
        const chair = await join(chairCred.body.credential, env.janus);
        const memberCred = await joinCredential(w.unassigned.token, s.id);
        const member = await join(memberCred.body.credential, env.janus);
        const who = `staff:${w.unassigned.id}`;
        const admitted = await chair.handle.message({ request: 'admit',
            participant: who });
        assert.ok(!isPluginError(admitted.data));

        const made = await api('POST', `/sessions/${s.id}/breakouts`,
            { token: w.coordinator.token });
        assertStatus(made, 202, 'POST /sessions/{id}/breakouts');
        const breakout = made.body.command.breakout;
        assert.match(breakout, /^breakout-[A-Za-z0-9_-]{10}$/);
        assert.ok(await eventually(async () => (await sql(`SELECT 1 FROM
            audit_log WHERE action = 'room_breakout_create'
            AND target_id = $1`, [s.id])).length === 1, 8000),
        'created in the room (its chair.action is audited)');

        const move = await api('POST',
            `/sessions/${s.id}/participants/${who}/breakout`,
            { token: w.coordinator.token, body: { breakout } });
        assertStatus(move, 202, 'move into it');
        const moved = await member.handle.waitData((d) =>
            d.telehealth === 'moved' && d.breakout === breakout, 8000);
        assert.equal(moved.breakout, breakout, 'the member is told');

        const close = await api('DELETE',
            `/sessions/${s.id}/breakouts/${breakout}`,
            { token: w.coordinator.token });
        assertStatus(close, 202, 'close it');
        const back = await member.handle.waitData((d) =>
            d.telehealth === 'moved' && d.breakout === null, 8000);
        assert.equal(back.breakout, null, 'back in the main room');

        assertProblem(await api('POST', `/sessions/${s.id}/breakouts`,
            { token: w.unassigned.token }), 403, 'forbidden',
        'not a chair');
        const notGroup = await create({ kind: 'telehealth', name: 'nb' });
        await joinCredential(w.coordinator.token, notGroup.id);
        assertProblem(await api('POST', `/sessions/${notGroup.id}/breakouts`,
            { token: w.coordinator.token }), 422, 'validation',
        'a telehealth session has none');
        assertProblem(await api('POST',
            `/sessions/${s.id}/participants/${who}/breakout`,
            { token: w.coordinator.token, body: {} }), 422, 'validation');
    });
});

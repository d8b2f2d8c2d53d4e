// Fault injection: a PostgreSQL connection killed in the middle of a
// transaction (pg_terminate_backend), an nginx worker killed with
// SIGKILL while requests and a notification are in flight, and Redis
// killed while a room command waits on it.  Each test asserts that what
// was acknowledged is kept, that nothing is half-written, and that the
// next request is served.  resilience.test.mjs covers stores that stop
// cleanly; this file kills things that are in the middle of work.
//
// Everything killed belongs to the test's own stack (its nginx worker,
// its Redis, its PostgreSQL backends); after() restarts what is missing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    env, eventually, isPluginError, joinCredential, joinRoom, login,
    loginAll, patientLockKey, redis, sleep, sql, stack, startSession,
    uniqueMobile,
} from './lib.mjs';

const masterPid = () => fs.readFileSync(
    path.join(env.run, 'nginx/nginx.pid'), 'utf8').trim();
const redisPid = () => fs.readFileSync(
    path.join(env.run, 'redis/redis.pid'), 'utf8').trim();

function workerPids() {
    const out = execFileSync('ps', ['-o', 'pid=', '--ppid', masterPid()],
        { encoding: 'utf8' });
    return out.split('\n').map((s) => s.trim()).filter(Boolean);
}

let w;
const conns = [];

before(async () => {
    w = await createWorld('faults');
    await loginAll([w.admin, w.coordinator, w.clinician]);
});

after(async () => {
    for (const c of conns) {
        await c.session.destroy().catch(() => {});
    }
    await stack('start-redis').catch(() => {});
    await closeDb();
});

// A request that may die with the worker: its answer, or {failed}.
function attempt(method, route, opts) {
    return api(method, route, opts).catch((e) => ({ failed: e }));
}

// pg_stat_activity is read once per transaction unless the snapshot is
// cleared: the lockers below poll it from inside theirs.
//
// Holds `table` locked in SHARE mode (reads go on, writes wait) in a
// transaction of its own, runs start(), whose write to the table then
// waits in the module's transaction (a statement matching `match`),
// kills that backend, then releases the lock.  Returns what start()
// resolved to.
async function killWaitingBackend(table, match, start) {
    const locker = new pg.Client({ connectionString: env.pg });
    await locker.connect();
    let pending;
    try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE ${table} IN SHARE MODE`);
        pending = start();
        const pid = await eventually(async () => {
            await locker.query('SELECT pg_stat_clear_snapshot()');
            const { rows } = await locker.query(
                `SELECT pid FROM pg_stat_activity
                  WHERE wait_event_type = 'Lock'
                    AND pid <> pg_backend_pid() AND query ILIKE $1`,
                [`%${match}%`]);
            return rows[0]?.pid;
        }, 5000, 25);
        if (!pid) {
            await locker.query('SELECT pg_stat_clear_snapshot()');
            const { rows } = await locker.query(
                `SELECT state, wait_event_type, query FROM pg_stat_activity
                  WHERE pid <> pg_backend_pid() AND state <> 'idle'`);
            const settled = await Promise.race([pending, sleep(10)]);
            assert.fail(`no backend of the module waits on ${table} ` +
                `(${match}), so this test would prove nothing: ` +
                `${JSON.stringify(rows)} ${JSON.stringify(settled)}`);
        }
        const { rows } = await locker.query(
            'SELECT pg_terminate_backend($1) AS done', [pid]);
        assert.equal(rows[0].done, true, 'the backend was terminated');
    } finally {
        await locker.query('ROLLBACK').catch(() => {});
        await locker.end().catch(() => {});
    }
    return pending;
}

describe('a PostgreSQL connection killed mid-transaction', () => {
    test('test_session_start_killed_is_503_leaves_no_session_or_lock_and_the_retry_starts_it', async () => {
        const patient = await addPatient(w, 'pg-kill-start');
        const res = await killWaitingBackend('sessions', 'th_session_insert',
            () => startSession(w.clinician.token, patient.id));
        assertProblem(res, 503, 'service-unavailable',
            'POST /sessions whose connection was killed');

        const open = await sql(`SELECT id FROM sessions
            WHERE patient_id = $1 AND state = 'open'`, [patient.id]);
        assert.deepEqual(open, [], 'no session was left open');
        assert.equal(await redis('GET', patientLockKey(patient.id)), '',
            'no patient lock was left in Redis');

        const again = await startSession(w.clinician.token, patient.id);
        assertStatus(again, 201, 'POST /sessions, next request');
        const rows = await sql(`SELECT id FROM sessions
            WHERE patient_id = $1 AND state = 'open'`, [patient.id]);
        assert.deepEqual(rows.map((r) => r.id), [again.body.id]);
    });

    test('test_redeem_killed_is_503_leaves_the_invite_unspent_and_the_retry_redeems_it', async () => {
        const patient = await addPatient(w, 'pg-kill-redeem');
        const s = await api('POST', '/sessions', { token: w.clinician.token,
            body: { kind: 'video_call', patient_id: patient.id,
                access: 'invitation' } });
        assertStatus(s, 201, 'POST /sessions');
        const inv = await api('POST', `/sessions/${s.body.id}/invites`,
            { token: w.clinician.token, body: { channel: 'link' } });
        assertStatus(inv, 201, 'POST /sessions/{id}/invites');

        const redeem = () => api('POST', '/invites/redeem', {
            body: { token: inv.body.token, display_name: 'Guest Killed' } });
        const res = await killWaitingBackend('invites', 'th_invite_redeem',
            redeem);
        assertProblem(res, 503, 'service-unavailable',
            'POST /invites/redeem whose connection was killed');

        // a single-use link: had the first redeem half-spent it, the
        // retry would be refused as used
        const again = await redeem();
        assertStatus(again, 200, 'POST /invites/redeem, next request');
        assert.equal(again.body.room, s.body.room);
        const conn = await joinRoom(again.body.credential);
        conns.push(conn);
        assert.ok(!isPluginError(conn.answer.data),
            `the credential joins: ${JSON.stringify(conn.answer.data)}`);
    });

    test('test_outbox_claim_killed_the_notification_is_still_sent_once', async () => {
        const sink = await startSmsSink();
        try {
            const to = uniqueMobile();
            const locker = new pg.Client({ connectionString: env.pg });
            await locker.connect();
            let id;
            try {
                // the row is written in the locker's transaction, so that
                // the outbox's claim waits on the lock, then dies
                await locker.query('BEGIN');
                await locker.query(
                    'LOCK TABLE notifications IN EXCLUSIVE MODE');
                const { rows } = await locker.query(
                    `SELECT th_notify($1, 'sms', $2, 'invite', 'en',
                        $3::jsonb) AS id`, [w.org.id, to,
                        JSON.stringify({ link: 'https://t.test/join#t=k' })]);
                id = rows[0].id;
                const pid = await eventually(async () => {
                    await locker.query('SELECT pg_stat_clear_snapshot()');
                    const r = await locker.query(
                        `SELECT pid FROM pg_stat_activity
                          WHERE wait_event_type = 'Lock'
                            AND query ILIKE '%th_notify_claim%'`);
                    return r.rows[0]?.pid;
                }, 5000, 25);
                assert.ok(pid, 'the outbox claim waits on the lock');
                await locker.query('SELECT pg_terminate_backend($1)', [pid]);
                await locker.query('COMMIT');
            } finally {
                await locker.query('ROLLBACK').catch(() => {});
                await locker.end().catch(() => {});
            }

            const row = await eventually(async () => {
                const [r] = await sql(
                    'SELECT status, attempts FROM notifications WHERE id = $1',
                    [id]);
                return r.status !== 'pending' ? r : null;
            }, 15000, 100);
            assert.equal(row?.status, 'sent', 'the notification was sent');
            assert.equal(sink.to(to).length, 1, 'exactly once');
        } finally {
            await sink.close();
        }
    });
});

// The SMS provider on TH_SMS_PORT; `hold` keeps requests unanswered
// until release() (a provider slow to answer), then answers 200.
async function startSmsSink() {
    const sink = { received: [], held: [], hold: false };
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const fields = Object.fromEntries(
                new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
            const answer = () => {
                sink.received.push(fields);
                res.writeHead(200, { 'content-type': 'application/json' });
                res.end('{"ok":true}');
            };
            if (sink.hold) {
                sink.held.push({ fields, answer, res });
            } else {
                answer();
            }
        });
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number(process.env.TH_SMS_PORT || 61990), '127.0.0.1',
            resolve);
    });
    sink.to = (to) => sink.received.filter((f) => f.To === to);
    sink.heldFor = (to) => sink.held.filter((h) => h.fields.To === to);
    sink.close = () => new Promise((r) => {
        for (const h of sink.held) {
            h.res.destroy();
        }
        server.closeAllConnections?.();
        server.close(() => r());
    });
    return sink;
}

describe('an nginx worker killed with requests and a notification in flight', () => {
    test('test_worker_killed_acknowledged_kept_nothing_half_written_next_request_served', async () => {
        const sink = await startSmsSink();
        const locker = new pg.Client({ connectionString: env.pg });
        try {
            // acknowledged before the kill
            const kept = await addPatient(w, 'kill9-kept');
            const ack = await startSession(w.clinician.token, kept.id);
            assertStatus(ack, 201, 'POST /sessions before the kill');

            // a notification the worker is delivering: the provider holds
            // the request, so the kill lands while it is in flight
            sink.hold = true;
            const to = uniqueMobile();
            const [{ id }] = await sql(`SELECT th_notify($1, 'sms', $2,
                'invite', 'en', $3::jsonb) AS id`, [w.org.id, to,
                JSON.stringify({ link: 'https://t.test/join#t=w' })]);
            assert.ok(await eventually(() => sink.heldFor(to).length > 0,
                8000, 50), 'the SMS request reached the provider');

            // a session start waiting on a lock, and reads, in flight
            const pending = await addPatient(w, 'kill9-pending');
            await locker.connect();
            await locker.query('BEGIN');
            await locker.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
            const inFlight = [
                attempt('POST', '/sessions', { token: w.clinician.token,
                    body: { kind: 'video_call', patient_id: pending.id } }),
                ...Array.from({ length: 4 }, () => attempt('GET', '/me',
                    { token: w.coordinator.token, timeoutMs: 8000 })),
            ];
            assert.ok(await eventually(async () => {
                await locker.query('SELECT pg_stat_clear_snapshot()');
                const { rows } = await locker.query(
                    `SELECT count(*)::int AS n FROM pg_stat_activity
                      WHERE wait_event_type = 'Lock'
                        AND pid <> pg_backend_pid()`);
                return rows[0].n > 0;
            }, 5000, 25), 'POST /sessions waits on the lock');

            const before = workerPids();
            assert.ok(before.length >= 1, 'nginx has a worker');
            for (const pid of before) {
                process.kill(Number(pid), 'SIGKILL');
            }
            const answers = await Promise.all(inFlight);
            await locker.query('ROLLBACK');

            // the master starts a new worker, and it serves
            assert.ok(await eventually(() => {
                const now = workerPids();
                return now.length >= 1 && !now.some((p) => before.includes(p));
            }, 8000, 100), 'a new worker replaced the killed one');
            const me = await eventually(async () => {
                const r = await attempt('GET', '/me',
                    { token: w.coordinator.token, timeoutMs: 3000 });
                return r.status === 200 ? r : null;
            }, 8000, 100);
            assert.ok(me, 'GET /me is served after the kill');
            const health = await api('GET', '/health');
            assertStatus(health, 200, 'GET /health after the kill');

            // the acknowledged session is still there, open
            const [s] = await sql('SELECT state FROM sessions WHERE id = $1',
                [ack.body.id]);
            assert.equal(s.state, 'open', 'the acknowledged session kept');

            // the start that was cut off: no answer was a 201, and it
            // is either done whole (one open session, joinable) or not
            // at all (a retry starts it)
            assert.ok(!answers.some((a) => a.status === 201),
                'no start was acknowledged by the killed worker');
            const retry = await startSession(w.clinician.token, pending.id);
            if (retry.status === 201) {
                const open = await sql(`SELECT id FROM sessions
                    WHERE patient_id = $1 AND state = 'open'`, [pending.id]);
                assert.deepEqual(open.map((r) => r.id), [retry.body.id],
                    'one open session: the retry');
            } else {
                assertProblem(retry, 409, 'patient-in-session',
                    'the cut-off start was done whole');
                const open = await sql(`SELECT id FROM sessions
                    WHERE patient_id = $1 AND state = 'open'`, [pending.id]);
                assert.equal(open.length, 1, 'one open session');
                const cred = await joinCredential(w.clinician.token,
                    open[0].id);
                assertStatus(cred, 200, 'and it can be joined');
            }

            // the notification in flight is not lost: once its lease
            // runs out (telehealth_notify's timeout + 30 s), the new
            // worker claims it and sends it again
            sink.hold = false;
            for (const h of sink.held.splice(0)) {
                h.res.destroy();
            }
            const row = await eventually(async () => {
                const [r] = await sql(
                    'SELECT status FROM notifications WHERE id = $1', [id]);
                return r.status !== 'pending' ? r : null;
            }, 75000, 250);
            assert.equal(row?.status, 'sent',
                'the notification in flight was delivered after the kill');
            assert.ok(sink.to(to).length >= 1, 'the provider got it');
        } finally {
            await locker.end().catch(() => {});
            await sink.close();
        }
    });
});

describe('Redis killed while a room command is pending', () => {
    test('test_command_pending_on_a_killed_redis_is_not_acknowledged_and_the_retry_reaches_the_room', async () => {
        const patient = await addPatient(w, 'redis-kill');
        patient.token = await login(patient);
        const res = await startSession(w.clinician.token, patient.id);
        assertStatus(res, 201, 'POST /sessions');
        const session = res.body;
        conns.push(await joinWhenBack(w.clinician.token, session.id));
        conns.push(await joinWhenBack(patient.token, session.id));

        const mute = () => api('POST', `/sessions/${session.id}/participants/`
            + `patient:${patient.id}/mute`,
        { token: w.clinician.token, body: { audio: true }, timeoutMs: 10000 });

        // Redis stops answering (SIGSTOP): the command waits on it; then
        // Redis dies (SIGKILL) with the command unanswered
        const pid = Number(redisPid());
        process.kill(pid, 'SIGSTOP');
        let answer;
        try {
            const pending = mute();
            await sleep(500);
            process.kill(pid, 'SIGKILL');
            answer = await pending;
        } finally {
            try {
                process.kill(pid, 'SIGCONT');
            } catch {
                // gone, as intended
            }
        }
        assertProblem(answer, 503, 'service-unavailable',
            'a command Redis never took is not acknowledged');

        // gone for good (stack.sh would take a dying Redis for alive)
        assert.ok(await eventually(() => {
            try {
                process.kill(pid, 0);
                return false;
            } catch {
                return true;
            }
        }, 10000, 50), 'Redis is gone');
        await stack('start-redis');

        // what PostgreSQL acknowledged is intact: the session is open
        const [s] = await sql('SELECT state FROM sessions WHERE id = $1',
            [session.id]);
        assert.equal(s.state, 'open', 'the session is still open');

        // the next request is served: the people rejoin (the room is
        // rebuilt from PostgreSQL) and the command reaches the room
        conns.push(await joinWhenBack(w.clinician.token, session.id));
        conns.push(await joinWhenBack(patient.token, session.id));
        const again = await eventually(async () => {
            const r = await mute();
            return r.status === 202 ? r : null;
        }, 15000, 500);
        assert.ok(again, 'the command is accepted once Redis is back');
        const result = await eventually(async () => {
            const out = await redis('XREVRANGE', 'th:events', '+', '-',
                'COUNT', '500');
            const lines = out.split('\n');
            const i = lines.indexOf(again.body.command_id);
            if (i < 0) {
                return null;
            }
            for (let j = Math.max(0, i - 12);
                j < Math.min(lines.length, i + 12); j++) {
                if (lines[j] === 'result') {
                    return lines[j + 1];
                }
            }
            return null;
        }, 8000, 100);
        assert.equal(result, 'ok', 'the plugin carried the command out');
    });
});

// Right after a Redis restart the API answers 503 until it reconnects and
// 409 until the reconciler has rebuilt the room, and the plugin 489 until
// it reconnects: a client retries, and so does this, for a bounded time.
async function joinWhenBack(token, sessionId) {
    for (let n = 1; ; n++) {
        const cred = await eventually(async () => {
            const r = await joinCredential(token, sessionId);
            // 409 room-not-open: Redis lost the room, and the reconciler
            // has not rebuilt it from PostgreSQL yet
            return r.status === 503 || r.status === 409 ? null : r;
        }, 30000, 250);
        assert.ok(cred, `a join credential within 30 s (${sessionId})`);
        assertStatus(cred, 200, `join credential for ${sessionId}`);
        const conn = await joinRoom(cred.body.credential);
        if (!isPluginError(conn.answer.data)) {
            return conn;
        }
        await conn.session.destroy();
        assert.ok(conn.answer.data.error_code === 489 && n < 20,
            `join: ${JSON.stringify(conn.answer.data)} (attempt ${n})`);
        await sleep(500);
    }
}

// Resilience: a slow query
// does not block nginx's worker (the local stack runs ONE worker, so a
// blocking call would stall every other request), and losing Redis or
// PostgreSQL is a quick 503, not a hang or a crash, with full service back
// within seconds of the store returning.
//
// This file stops and starts the stack's Redis and PostgreSQL through
// scripts/stack.sh; whatever happens, after() starts them again.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, connect,
    createWorld, env, eventually, isPluginError, joinCredential,
    joinRoom, leaveRoom, login,
    loginAll, sleep, sql, stack, startSession,
} from './lib.mjs';

const nginxPidFile = path.join(env.run, 'nginx/nginx.pid');
const masterPid = () => fs.readFileSync(nginxPidFile, 'utf8').trim();

// The worker processes of the nginx master: a worker that crashed would
// have been replaced by one with a new pid.
function workerPids(master) {
    const out = execFileSync('ps', ['-o', 'pid=', '--ppid', master],
        { encoding: 'utf8' });
    return out.split('\n').map((s) => s.trim()).filter(Boolean).sort();
}

let w;
let master;
let workers;

before(async () => {
    w = await createWorld('resilience');
    await loginAll([w.admin, w.coordinator, w.clinician]);
    master = masterPid();
    workers = workerPids(master);
    assert.ok(workers.length >= 1, 'nginx has a worker');
});

after(async () => {
    // Leave the stack as we found it, whatever failed.
    await stack('start-redis').catch(() => {});
    await stack('start-postgres').catch(() => {});
    await closeDb();
});

describe('a slow PostgreSQL query does not block the worker', () => {
    test('GET /me answers while POST /sessions waits on a locked table', async () => {
        const patient = await addPatient(w, 'slow-pg');
        const locker = new pg.Client({ connectionString: env.pg });
        await locker.connect();
        let pending;
        try {
            await locker.query('BEGIN');
            await locker.query(
                'LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');

            let settled = false;
            pending = startSession(w.admin.token, patient.id)
                .finally(() => { settled = true; });

            const waiting = await eventually(async () => {
                const { rows } = await locker.query(
                    `SELECT count(*)::int AS n FROM pg_stat_activity
                     WHERE wait_event_type = 'Lock'
                       AND pid <> pg_backend_pid()`);
                return rows[0].n > 0;
            }, 3000, 50);
            assert.ok(waiting, "the module's query is waiting on the lock " +
                '(else this test proves nothing)');

            // A blocked worker would answer nothing until the lock goes,
            // which is after these requests: each would time out instead.
            // What proves it is that they are answered at all while the
            // POST is still pending, not how fast (no timing here).
            // (The POST itself gives up after telehealth_timeout, 5 s in
            // the local stack: these few requests fit well within it.)
            for (let i = 0; i < 3; i++) {
                const me = await api('GET', '/me', {
                    token: w.coordinator.token, timeoutMs: 10000,
                });
                assertStatus(me, 200, `GET /me #${i} while a query waits`);
            }
            const tok = await login(w.coordinator);
            assert.ok(tok, 'login (a query and argon2id) works meanwhile');

            assert.equal(settled, false,
                'POST /sessions was still waiting on the lock');
        } finally {
            await locker.query('ROLLBACK').catch(() => {});
            await locker.end().catch(() => {});
        }
        const res = await pending;
        assertStatus(res, 201, 'POST /sessions once the lock is gone');
        assert.equal(res.body.patient_id, patient.id);
    });
});

describe('a PostgreSQL query slower than telehealth_timeout', () => {
    test('is a 503, and leaves neither a session nor a patient lock behind', async () => {
        const patient = await addPatient(w, 'pg-timeout');
        const locker = new pg.Client({ connectionString: env.pg });
        await locker.connect();
        let res;
        try {
            await locker.query('BEGIN');
            await locker.query(
                'LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
            // telehealth_timeout is 5s in the local stack.
            res = await startSession(w.admin.token, patient.id,
                'video_call');
        } finally {
            await locker.query('ROLLBACK').catch(() => {});
            await locker.end().catch(() => {});
        }
        assertProblem(res, 503, 'service-unavailable',
            'POST /sessions stuck behind a table lock');
        assert.ok(res.ms < 8000, `answered after ${res.ms.toFixed(0)} ms`);

        // Whatever the stuck statement did once the lock was gone, the
        // caller was told it failed: a retry must be able to start the call.
        await sleep(1000);
        const again = await startSession(w.coordinator.token, patient.id);
        assertStatus(again, 201, 'POST /sessions after the 503');
        const open = await sql(
            `SELECT id FROM sessions WHERE patient_id = $1
             AND state = 'open'`, [patient.id]);
        assert.deepEqual(open.map((r) => r.id), [again.body.id],
            'only the retried session is open');
    });
});

async function fullService(label) {
    // login needs PostgreSQL, /me the token check (Redis: revocation),
    // starting a session both.
    const ok = await eventually(async () => {
        try {
            const l = await api('POST', '/auth/login', {
                body: { email: w.coordinator.email, password: env.password },
                timeoutMs: 3000,
            });
            if (l.status !== 200) {
                return false;
            }
            const me = await api('GET', '/me',
                { token: l.body.access_token, timeoutMs: 3000 });
            return me.status === 200;
        } catch {
            return false;
        }
    }, 8000, 200);
    assert.ok(ok, `login and GET /me work again within seconds of ${label}`);
    const patient = await addPatient(w, `after-${label}`);
    const res = await startSession(w.coordinator.token, patient.id);
    assertStatus(res, 201, `POST /sessions after ${label}`);
}

// A video_call of the clinician with a fresh patient, both in the room.
async function callWithChairAndPatient(label) {
    const patient = await addPatient(w, label);
    patient.token = await login(patient);
    const res = await startSession(w.clinician.token, patient.id);
    assertStatus(res, 201, `POST /sessions (${label})`);
    const chair = await joinWhenRoomServiceIsBack(w.clinician.token,
        res.body.id);
    const pat = await joinWhenRoomServiceIsBack(patient.token, res.body.id);
    return { session: res.body, chair, patient: pat };
}

// Right after a Redis restart the plugin may still answer 489 ("try
// again": it reconnects on its next attempt, at most once a second); a
// client retries, and so does this, for a bounded time.
async function joinWhenRoomServiceIsBack(token, sessionId) {
    for (let attempt = 1; ; attempt++) {
        const cred = await joinCredential(token, sessionId);
        assertStatus(cred, 200, `join credential for ${sessionId}`);
        const conn = await joinRoom(cred.body.credential);
        const data = conn.answer.data;
        if (!isPluginError(data)) {
            conn.credential = cred.body;
            return conn;
        }
        await conn.session.destroy();
        assert.ok(data.error_code === 489 && attempt < 10,
            `join: ${JSON.stringify(data)} (attempt ${attempt})`);
        await new Promise((r) => setTimeout(r, 500));
    }
}

async function callRecorded(session, timeoutMs) {
    return eventually(async () => {
        try {
            const rows = await sql(
                `SELECT end_reason FROM calls
                 WHERE room = $1 AND ended_at IS NOT NULL`, [session.room]);
            return rows.length === 1 && rows[0].end_reason === 'chair_left';
        } catch {
            return false;
        }
    }, timeoutMs, 250);
}

function assertQuick503(res, what) {
    assertProblem(res, 503, 'service-unavailable', what);
    assert.equal(res.headers.get('retry-after'), '1',
        `${what}: Retry-After header`);
    assert.ok(res.ms < 5000, `${what} answered in ${res.ms.toFixed(0)} ms`);
}

async function health() {
    return api('GET', '/health', { timeoutMs: 5000 });
}

// The stores' part of GET /health (it names the schema and nodes too).
const stores = (b) => ({ status: b.status, postgres: b.postgres,
    redis: b.redis });

describe('losing a store is a quick 503, and service returns with it', () => {
    test('GET /health reports both stores up', async () => {
        const res = await health();
        assertStatus(res, 200, 'GET /health');
        assert.deepEqual(stores(res.body),
            { status: 'ok', postgres: true, redis: true });
    });

    test('Redis down: requests needing Redis get 503 quickly; back within seconds of its return', async () => {
        const patient = await addPatient(w, 'redis-down');
        // A join credential obtained while Redis was still there.
        const open = await startSession(w.clinician.token,
            (await addPatient(w, 'redis-down-room')).id);
        assertStatus(open, 201, 'POST /sessions before Redis stops');
        const cred = await joinCredential(w.clinician.token, open.body.id);
        assertStatus(cred, 200, 'join credential before Redis stops');
        const held = cred.body.credential;
        await stack('stop-redis');
        try {
            for (let i = 0; i < 3; i++) {
                const res = await startSession(w.coordinator.token,
                    patient.id);
                assertQuick503(res, `POST /sessions #${i} without Redis`);
            }
            // The plugin needs Redis to admit anyone: 489, at once.
            const { session, handle } = await connect();
            try {
                const t0 = performance.now();
                const ans = await handle.message(
                    { request: 'join', credential: held }, undefined, 5000);
                const ms = performance.now() - t0;
                assert.equal(ans.data?.error_code, 489,
                    `plugin join without Redis: ${JSON.stringify(ans.data)}`);
                assert.ok(ms < 3000, `plugin join answered in ${ms} ms`);
            } finally {
                await session.destroy();
            }

            const h = await eventually(async () => {
                const r = await health();
                return r.status === 503 ? r : null;
            }, 3000);
            assert.ok(h, 'GET /health turns 503 without Redis');
            assert.deepEqual(stores(h.body),
                { status: 'degraded', postgres: true, redis: false });
            assert.equal(h.body.nodes, null, 'no node list without Redis');

            const me = await api('GET', '/me', { token: w.coordinator.token });
            assert.ok(me.status === 200 || me.status === 503,
                `GET /me without Redis -> ${me.status} ${me.text}`);
            if (me.status === 503) {
                assertQuick503(me, 'GET /me without Redis');
            }
        } finally {
            await stack('start-redis');
        }
        await fullService('Redis');
        assert.equal(masterPid(), master, 'nginx master pid unchanged');
    });

    test('after Redis came back, a call still reaches the call history (event stream re-created)', async () => {
        const room = await callWithChairAndPatient('after-redis');
        await leaveRoom(room.chair);
        await room.chair.session.destroy();
        await room.patient.session.destroy();
        assert.ok(await callRecorded(room.session, 8000),
            'calls row ended chair_left within 8 s of the call ending');
    });

    test('PostgreSQL down: requests needing it get 503 quickly; back within seconds of its return', async () => {
        const patient = await addPatient(w, 'pg-down');
        await closeDb();
        await stack('stop-postgres');
        try {
            for (let i = 0; i < 3; i++) {
                const l = await api('POST', '/auth/login', {
                    body: { email: w.admin.email, password: env.password },
                });
                assertQuick503(l, `login #${i} without PostgreSQL`);
                const s = await startSession(w.coordinator.token,
                    patient.id);
                assertQuick503(s, `POST /sessions #${i} without PostgreSQL`);
            }
            const h = await eventually(async () => {
                const r = await health();
                return r.status === 503 ? r : null;
            }, 3000);
            assert.ok(h, 'GET /health turns 503 without PostgreSQL');
            assert.deepEqual(stores(h.body),
                { status: 'degraded', postgres: false, redis: true });
        } finally {
            await stack('start-postgres');
        }
        await fullService('PostgreSQL');
        assertStatus(await health(), 200, 'GET /health after PostgreSQL');
        assert.equal(masterPid(), master, 'nginx master pid unchanged');
    });

    test('a call that ends while PostgreSQL is down is recorded once it is back', async () => {
        const room = await callWithChairAndPatient('pg-down-call');
        await closeDb();
        await stack('stop-postgres');
        try {
            // The room lives in Redis and Janus: closing it needs no
            // PostgreSQL; its events wait in the stream.
            const from = room.patient.session.events.length;
            await leaveRoom(room.chair);
            const closed = await room.patient.handle.waitData(
                (d) => d.telehealth === 'closed', 5000, from,
                'a closed event while PostgreSQL is down');
            assert.equal(closed.reason, 'chair_left');
            await sleep(1000);
        } finally {
            await stack('start-postgres');
            await room.chair.session.destroy();
            await room.patient.session.destroy();
        }
        assert.ok(await callRecorded(room.session, 15000),
            'calls row ended chair_left within 15 s of PostgreSQL returning');
    });

    test('nginx master and worker survived all of it', () => {
        assert.equal(masterPid(), master, 'nginx master pid unchanged');
        process.kill(Number(master), 0);
        assert.deepEqual(workerPids(master), workers,
            'no worker crashed and was replaced');
    });
});

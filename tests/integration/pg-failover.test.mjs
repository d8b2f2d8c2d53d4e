// PostgreSQL primary switch (docs/operations.md, "PostgreSQL primary and
// standby"): a streaming standby of the stack's database
// (pg_basebackup -R) on its own port, and a second nginx whose
// telehealth_postgres lists both hosts with target_session_attrs=read-write.
// The primary is stopped and the standby promoted; the pool reconnects to
// the new primary by itself: answers are right or 503 while it moves, and
// the sessions created afterwards are written on the promoted standby.
//
// The stack's own PostgreSQL is stopped meanwhile; after() starts it again
// and removes the standby (what was written on it is discarded).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
    addPatient, api, closeDb, createWorld, env, eventually, loginAll, sleep,
    stack, startNginx,
} from './lib.mjs';

const execFileP = promisify(execFile);

const PG_PORT = Number(new URL(env.pg).port);
const STANDBY_PORT = Number(process.env.TH_PG_STANDBY_PORT || 61999);
const NGINX2_PORT = Number(process.env.TH_NGINX2_PORT || 61081);

const PG_BIN = fs.readdirSync('/usr/lib/postgresql')
    .sort((a, b) => Number(a) - Number(b))
    .map((v) => `/usr/lib/postgresql/${v}/bin`).pop();

// PostgreSQL refuses to run as root: as "postgres" then (scripts/stack.sh)
const asPg = (cmd, args) => (process.getuid() === 0
    ? execFileP('runuser', ['-u', 'postgres', '--', cmd, ...args],
        { timeout: 120000 })
    : execFileP(cmd, args, { timeout: 120000 }));

let w;
let dir;
let data;
let nginx2;
let standbyUp = false;

async function standbyQuery(text, params = []) {
    const c = new pg.Client({ host: '127.0.0.1', port: STANDBY_PORT,
        user: 'postgres', database: 'telehealth' });
    await c.connect();
    try {
        return (await c.query(text, params)).rows;
    } finally {
        await c.end();
    }
}

before(async () => {
    w = await createWorld('pg-failover');
    await loginAll([w.admin]);

    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-it-standby-'));
    data = path.join(dir, 'data');
    if (process.getuid() === 0) {
        await execFileP('chown', ['postgres:', dir]);
    }
    await asPg(`${PG_BIN}/pg_basebackup`, ['-h', '127.0.0.1', '-p',
        String(PG_PORT), '-U', 'postgres', '-D', data, '-R', '-X', 'stream',
        '-c', 'fast']);
    // max_connections as the primary's (scripts/stack.sh): a standby may
    // not have fewer
    await asPg(`${PG_BIN}/pg_ctl`, ['-D', data, '-l',
        path.join(dir, 'postgres.log'), '-w', '-t', '60', '-o',
        `-p ${STANDBY_PORT} -k ${dir} -c listen_addresses=127.0.0.1 `
        + '-c max_connections=200', 'start']).catch((err) => {
        const log = path.join(dir, 'postgres.log');
        throw new Error(`the standby did not start: ${err.message}\n${
            fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''}`);
    });
    standbyUp = true;
    const streaming = await eventually(async () => (await standbyQuery(
        'SELECT pg_is_in_recovery() AS r'))[0].r === true, 10000);
    assert.ok(streaming, 'the standby is in recovery, following the primary');

    nginx2 = await startNginx(NGINX2_PORT, (conf) => {
        const out = conf.replace(/telehealth_postgres "[^"]*"/,
            `telehealth_postgres "host=127.0.0.1,127.0.0.1 port=${PG_PORT},${
                STANDBY_PORT} dbname=telehealth user=telehealth `
            + 'sslmode=disable gssencmode=disable connect_timeout=2 '
            + 'target_session_attrs=read-write '
            + 'application_name=nginx-telehealth-failover"');
        assert.notEqual(out, conf, 'the stack conf has telehealth_postgres');
        return out;
    });
});

after(async () => {
    await nginx2?.stop();
    if (standbyUp) {
        await asPg(`${PG_BIN}/pg_ctl`, ['-D', data, '-m', 'immediate', '-w',
            'stop']).catch(() => {});
    }
    if (dir) {
        fs.rmSync(dir, { recursive: true, force: true });
    }
    await stack('start-postgres').catch(() => {});
    // the next file finds the stack serving: the stack's nginx reconnects
    // its pool with back-off
    await eventually(async () => (await api('GET', '/health')).status
        === 200, 30000, 250);
    await closeDb();
});

describe('PostgreSQL through a multi-host connection string', () => {
    test('after the standby is promoted, the pool writes to it', async () => {
        const patients = [];
        for (let i = 0; i < 30; i++) {
            patients.push(await addPatient(w, `pgfo-${i}`));
        }
        const open = (p) => api('POST', `${nginx2.api}/sessions`, {
            token: w.admin.token, timeoutMs: 10000,
            body: { kind: 'video_call', patient_id: p.id } });

        const first = await open(patients[0]);
        assert.equal(first.status, 201, 'a session on the old primary');

        await closeDb();    // the test's own pool to the old primary
        await stack('stop-postgres');
        const statuses = [];
        let i = 1;
        // while nothing is writable: 503, never anything else
        for (; i < 4; i++) {
            const r = await open(patients[i]);
            statuses.push(r.status);
            assert.equal(r.status, 503,
                `no primary: 503 (${JSON.stringify(r.body)})`);
        }

        await asPg(`${PG_BIN}/pg_ctl`, ['-D', data, '-w', 'promote']);
        assert.equal((await standbyQuery(
            'SELECT pg_is_in_recovery() AS r'))[0].r, false,
        'the standby is the primary now');

        let created = null;
        for (; i < patients.length && !created; i++) {
            const r = await open(patients[i]);
            statuses.push(r.status);
            assert.ok(r.status === 201 || r.status === 503,
                `201 or 503 while the pool moves: ${r.status} ${
                    JSON.stringify(r.body)}`);
            if (r.status === 201) {
                created = r.body;
            } else {
                await sleep(300);
            }
        }
        console.log(`# PostgreSQL switch, call by call: ${statuses.join(' ')}`);
        assert.ok(created, `a session is created after the switch: ${
            statuses.join(' ')}\n${fs.readFileSync(path.join(nginx2.dir,
            'logs/error.log'), 'utf8').split('\n').slice(-30).join('\n')}`);
        const rows = await standbyQuery(
            'SELECT patient_id FROM sessions WHERE id = $1', [created.id]);
        assert.equal(rows.length, 1, 'the session is on the new primary');

        // and reads work too: the new primary serves the API
        const me = await api('GET', `${nginx2.api}/me`,
            { token: w.admin.token });
        assert.equal(me.status, 200, 'GET /me after the switch');
    });
});

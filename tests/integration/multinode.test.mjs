// Several nginx instances share one Redis and one PostgreSQL (PRODUCT.md
// 12 and 40): the one-open-room-per-patient rule, tokens and logout hold
// across instances.  The test starts a second nginx with the stack's own
// configuration on another port (its own pid file, logs and temp folders)
// and stops it by its pid afterwards.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    IN_SESSION_DETAIL, addPatient, addStaff, api, assertProblem,
    assertStatus, closeDb, createWorld, env, eventually, login, loginAll,
    sleep, sql,
} from './lib.mjs';

const PORT2 = Number(process.env.TH_NGINX2_PORT || 58081);
const base2 = `http://127.0.0.1:${PORT2}`;
const api2 = (method, route, opts) =>
    api(method, `${base2}/api/v1${route}`, opts);

let w;
let dir;
let pidFile;

function startSecondNginx() {
    const runNginx = path.join(env.run, 'nginx');
    const conf = fs.readFileSync(path.join(runNginx, 'nginx.conf'), 'utf8');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-it-nginx2-'));
    for (const sub of ['logs', 'tmp']) {
        fs.mkdirSync(path.join(dir, sub));
    }
    if (process.getuid() === 0) {
        // The workers run as nobody and write the temp folders.
        execFileSync('chown', ['nobody', path.join(dir, 'tmp')]);
        fs.chmodSync(dir, 0o755);
    }
    const rendered = conf
        .split(`${runNginx}/`).join(`${dir}/`)
        .replace(/listen\s+127\.0\.0\.1:\d+;/, `listen 127.0.0.1:${PORT2};`);
    assert.ok(rendered.includes(`listen 127.0.0.1:${PORT2};`),
        'the second instance listens on its own port');
    fs.writeFileSync(path.join(dir, 'nginx.conf'), rendered);
    pidFile = path.join(dir, 'nginx.pid');
    execFileSync('nginx', ['-p', `${dir}/`, '-c', path.join(dir, 'nginx.conf')],
        { stdio: 'pipe', timeout: 10000 });
}

async function stopSecondNginx() {
    if (!pidFile || !fs.existsSync(pidFile)) {
        return;
    }
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    try {
        process.kill(pid, 'SIGTERM');
    } catch {
        return;
    }
    for (let i = 0; i < 50; i++) {
        try {
            process.kill(pid, 0);
        } catch {
            return;
        }
        await sleep(100);
    }
    process.kill(pid, 'SIGKILL');
}

before(async () => {
    w = await createWorld('multinode');
    await loginAll([w.admin, w.coordinator]);
    startSecondNginx();
    const up = await eventually(async () => {
        try {
            const r = await fetch(`${base2}/bench/return200`,
                { signal: AbortSignal.timeout(1000) });
            return r.status === 200;
        } catch {
            return false;
        }
    }, 5000);
    assert.ok(up, `the second nginx answers on ${base2}`);
});

after(async () => {
    await stopSecondNginx();
    if (dir) {
        fs.rmSync(dir, { recursive: true, force: true });
    }
    await closeDb();
});

describe('two nginx instances, one Redis and one PostgreSQL', () => {
    test('a token issued by one instance works on the other; logout on one is honoured by both', async () => {
        const token = await login(w.coordinator);
        const me = await api2('GET', '/me', { token });
        assertStatus(me, 200, 'GET /me on the second instance');
        assert.equal(me.body.id, w.coordinator.id);

        assertStatus(await api2('POST', '/auth/logout', { token }), 204,
            'logout on the second instance');
        const first = await api('GET', '/me', { token });
        assertProblem(first, 401, 'unauthorized',
            'the revoked token on the first instance');
    });

    test('a patient in a call through one instance cannot be called through the other: 409', async () => {
        const patient = await addPatient(w, 'cross');
        const one = await api('POST', '/sessions', { token: w.admin.token,
            body: { kind: 'video_call', patient_id: patient.id } });
        assertStatus(one, 201, 'POST /sessions on the first instance');
        const two = await api2('POST', '/sessions', {
            token: w.coordinator.token,
            body: { kind: 'video_call', patient_id: patient.id },
        });
        assertProblem(two, 409, 'patient-in-session',
            'POST /sessions on the second instance');
        assert.equal(two.body.detail, IN_SESSION_DETAIL);
    });

    test('20 staff racing on two instances for one patient: exactly one 201', async () => {
        const patient = await addPatient(w, 'cross-race');
        const racers = [];
        for (let i = 0; i < 20; i++) {
            racers.push(await addStaff(w, i % 2 ? 'admin' : 'coordinator',
                `xracer${i}`));
        }
        await loginAll(racers);
        const results = await Promise.all(racers.map((r, i) =>
            (i % 2 ? api2 : api)('POST', '/sessions', {
                token: r.token,
                body: { kind: 'video_call', patient_id: patient.id },
            })));
        const statuses = results.map((r) => r.status);
        assert.equal(statuses.filter((s) => s === 201).length, 1,
            `one 201: ${statuses.join(',')}`);
        assert.equal(statuses.filter((s) => s === 409).length, 19,
            `nineteen 409: ${statuses.join(',')}`);
        const open = await sql(
            `SELECT count(*)::int AS n FROM sessions
             WHERE patient_id = $1 AND state = 'open'`, [patient.id]);
        assert.equal(open[0].n, 1, 'one open session row');
    });
});

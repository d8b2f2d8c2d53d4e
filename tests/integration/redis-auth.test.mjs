// Redis with AUTH and a unix socket, the production setup of docs/redis.md:
// a Redis of the test's own that refuses the default user and knows an
// ACL user "th" with a password.  A second nginx (telehealth_redis_auth)
// and a second Janus (redis_user, redis_password_file) work through it,
// over TCP and over the unix socket; with the wrong password both say so
// once in their logs, nginx answers 503 and a join fails with 489, and
// nothing reaches Redis.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld, eventually,
    isPluginError, joinRoom, loginAll, patientLockKey, startJanus,
    startNginx,
} from './lib.mjs';
import { startRedis } from './redis-servers.mjs';

const REDIS_PORT = Number(process.env.TH_REDIS_AUTH_PORT || 61993);
const NGINX2_PORT = Number(process.env.TH_NGINX2_PORT || 61081);
const JANUS2_PORT = Number(process.env.TH_JANUS2_PORT || 61082);
const ERR_UNAVAILABLE = 489;

const PASSWORD = 'it-redis-' + Math.random().toString(36).slice(2);
const ADMIN = ['it-admin', 'it-admin-' + Math.random().toString(36).slice(2)];

let w;
let server;
let goodFile;
let badFile;
const started = [];
const conns = [];

// nginx's telehealth_redis line rewritten; the rest of the stack's conf kept
const nginxWith = (redisLines) => (conf) => {
    const out = conf.replace(/telehealth_redis [^;]+;/, redisLines);
    assert.notEqual(out, conf, 'the stack conf has a telehealth_redis line');
    return out;
};

const janusWith = (redisLines) => (name, text) => {
    if (name !== 'janus.plugin.telehealth.jcfg') {
        return text;
    }
    const out = text.replace(/redis = "[^"]*"/, redisLines);
    assert.notEqual(out, text, 'the stack jcfg has a redis line');
    return out;
};

async function nginx(lines) {
    const n = await startNginx(NGINX2_PORT, nginxWith(lines));
    started.push(n);
    return n;
}

async function janus(lines, node) {
    const j = await startJanus(JANUS2_PORT, `${node}-${process.pid}`,
        janusWith(lines));
    started.push(j);
    return j;
}

async function stopAll() {
    await Promise.all(conns.splice(0).map((c) =>
        c.session.destroy().catch(() => {})));
    for (const s of started.splice(0).reverse()) {
        await s.stop();
    }
}

// A video call opened through `n`, joined on `j` by its clinician.
async function callThrough(n, j) {
    const patient = await addPatient(w, 'auth');
    await loginAll([patient]);
    const open = await api('POST', `${n.api}/sessions`, {
        token: w.admin.token,
        body: { kind: 'video_call', patient_id: patient.id } });
    assertStatus(open, 201, 'POST /sessions through the AUTH Redis');
    const cred = await api('POST', `${n.api}/sessions/${open.body.id}/join`,
        { token: patient.token });
    assertStatus(cred, 200, 'a join credential');
    const conn = await joinRoom(cred.body.credential, j.base);
    conns.push(conn);
    return { patient, conn };
}

const logOf = (dir, file) => {
    const p = path.join(dir, file);
    return fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '';
};

before(async () => {
    w = await createWorld('redis-auth');
    await loginAll([w.admin]);
    server = await startRedis('auth', REDIS_PORT, [
        'user default off',
        // the product's user as in conf/production/redis.conf
        `user th on >${PASSWORD} ~th:* &th:* +@all -@admin -@dangerous `
            + '+info +role +wait',
        `user ${ADMIN[0]} on >${ADMIN[1]} ~* &* +@all`,
    ], { auth: ADMIN });
    goodFile = path.join(server.dir, 'redis.password');
    badFile = path.join(server.dir, 'wrong.password');
    fs.writeFileSync(goodFile, PASSWORD + '\n', { mode: 0o600 });
    fs.writeFileSync(badFile, 'not-the-password\n', { mode: 0o600 });
});

after(async () => {
    await stopAll();
    await server?.remove();
    await closeDb();
});

describe('Redis with an ACL user and a password', () => {
    test('the server refuses a client without the password', async () => {
        const res = await api('GET', '/me', { token: w.admin.token });
        assertStatus(res, 200, 'the stack itself is fine');
        // the default user is off: a bare PING is refused
        const out = await new Promise((resolve) => execFile('redis-cli',
            ['-h', '127.0.0.1', '-p', String(REDIS_PORT), 'PING'],
            (err, stdout, stderr) => resolve(stdout + stderr)));
        assert.match(out, /NOAUTH|WRONGPASS|Authentication required/,
            'an unauthenticated client is refused');
    });

    for (const [how, where] of [['TCP', () => `127.0.0.1:${REDIS_PORT}`],
        ['the unix socket', () => server.sock]]) {
        test(`nginx and Janus authenticate as "th" over ${how}`, async (t) => {
            t.after(stopAll);
            const addr = where();
            const n = await nginx(`telehealth_redis ${
                addr.startsWith('/') ? 'unix:' + addr : addr};
    telehealth_redis_auth th ${goodFile};`);
            const j = await janus(`redis = "${addr}"
	redis_user = "th"
	redis_password_file = "${goodFile}"`, 'auth-ok');

            const me = await api('GET', `${n.api}/me`,
                { token: w.admin.token });
            assertStatus(me, 200, 'GET /me needs Redis (revocations)');

            const { patient, conn } = await callThrough(n, j);
            assert.ok(!isPluginError(conn.answer.data),
                `the join on the AUTH Janus: ${
                    JSON.stringify(conn.answer.data)}`);
            assert.equal(await server.cli('EXISTS',
                patientLockKey(patient.id)), '1',
                'the room lives in the AUTH Redis');

            const clients = await server.cli('CLIENT', 'LIST');
            const th = clients.split('\n').filter((l) => /\buser=th\b/.test(l));
            assert.ok(th.length >= 2,
                `nginx and Janus connected as th:\n${clients}`);
            // the production ACL lets through every command both use
            assert.doesNotMatch(logOf(n.dir, 'logs/error.log'), /NOPERM/);
            assert.doesNotMatch(logOf(j.dir, 'janus.log'), /NOPERM/);
            if (addr.startsWith('/')) {
                assert.ok(th.every((l) => /\baddr=\/|\baddr=\S*sock/.test(l)),
                    `over the socket:\n${th.join('\n')}`);
            }

        });
    }

    test('with the wrong password: logged, 503 from nginx, 489 from Janus', async (t) => {
        t.after(stopAll);
        await server.cli('FLUSHALL');
        const n = await nginx(`telehealth_redis unix:${server.sock};
    telehealth_redis_auth th ${badFile};`);
        const j = await janus(`redis = "${server.sock}"
	redis_user = "th"
	redis_password_file = "${badFile}"`, 'auth-bad');

        const me = await api('GET', `${n.api}/me`, { token: w.admin.token });
        assertProblem(me, 503, 'service-unavailable',
            'GET /me when Redis refuses AUTH');

        const logged = await eventually(() => /Redis refused AUTH as "th": WRONGPASS/
            .test(logOf(n.dir, 'logs/error.log')), 5000);
        assert.ok(logged, `nginx logs the refusal:\n${
            logOf(n.dir, 'logs/error.log').slice(-2000)}`);

        const patient = await addPatient(w, 'auth-bad');
        await loginAll([patient]);
        const credential = await api('POST', '/sessions', {
            token: w.admin.token,
            body: { kind: 'video_call', patient_id: patient.id } });
        assertStatus(credential, 201, 'a session through the stack');
        const cred = await api('POST',
            `/sessions/${credential.body.id}/join`,
            { token: patient.token });
        assertStatus(cred, 200, 'a credential from the stack');
        const conn = await joinRoom(cred.body.credential, j.base);
        conns.push(conn);
        assert.ok(isPluginError(conn.answer.data), 'the join fails');
        assert.equal(conn.answer.data.error_code, ERR_UNAVAILABLE);
        const janusLog = logOf(j.dir, 'janus.log');
        assert.match(janusLog, /AUTH as "th" refused: WRONGPASS/,
            'Janus logs the refusal');
        assert.equal(await server.cli('DBSIZE'), '0',
            'nothing reached the AUTH Redis');
    });
});

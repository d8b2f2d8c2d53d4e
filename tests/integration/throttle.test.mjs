// Brute-force protection (docs/api.md, "Login throttling"): failed logins,
// redeems and interpreter decisions are throttled per subject (account,
// link) and per client address in Redis, with a back-off after
// telehealth_throttle_account's free failures and a lock after its lock
// count; every login attempt is audited; password checks beyond
// telehealth_password_max_pending are shed with 503 at once.
//
// The local stack (conf/nginx.conf.in): account 5 10, address 100000 0,
// back-off 1s up to 2s, lock 15m, 16 pending checks.  Each test uses
// accounts of its own.  The per-address tests speak from 127.0.0.9 (any
// loopback address reaches nginx on 127.0.0.1), so that 127.0.0.1, which
// every other test uses, is never throttled.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
    addStaff, api, assertProblem, assertStatus, closeDb, createWorld, env,
    redis, sleep, sql,
} from './lib.mjs';

const FREE = 5;      // telehealth_throttle_account 5 10
const LOCK = 10;
const OTHER_ADDR = '127.0.0.9';

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const throttleKey = (scope, value) => `th:throttle:${scope}:${sha256(value)}`;

let w;

before(async () => {
    w = await createWorld('throttle');
});

after(async () => {
    for (const scope of ['login-addr', 'redeem-addr', 'decide-addr']) {
        await redis('DEL', throttleKey(scope, OTHER_ADDR));
    }
    await closeDb();
});

const attempt = (email, password = 'not-the-password') =>
    api('POST', '/auth/login', { body: { email, password } });

// A POST from another loopback address: {status, headers, body}.
function postFrom(localAddress, route, body) {
    const data = JSON.stringify(body);
    const url = new URL(env.api + route);
    return new Promise((resolve, reject) => {
        const req = http.request({
            host: url.hostname, port: url.port, path: url.pathname,
            method: 'POST', localAddress,
            headers: { 'content-type': 'application/json',
                'content-length': Buffer.byteLength(data) },
            timeout: 15000,
        }, (res) => {
            let text = '';
            res.on('data', (c) => { text += c; });
            res.on('end', () => {
                let parsed = null;
                try { parsed = JSON.parse(text); } catch { /* not JSON */ }
                resolve({ status: res.statusCode, headers: res.headers,
                    body: parsed, text });
            });
        });
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end(data);
    });
}

function assertThrottled(res, what) {
    assertProblem(res, 429, 'too-many-attempts', what);
    const after = Number(res.headers.get('retry-after'));
    assert.ok(Number.isInteger(after) && after >= 1,
        `Retry-After "${res.headers.get('retry-after')}" ${what}`);
    return after;
}

// Fails until the account is locked, waiting out each back-off as a
// patient attacker would; returns the statuses seen.
async function failUntilLocked(email) {
    const seen = [];
    for (let n = 1; n <= LOCK; n++) {
        let res = await attempt(email);
        while (res.status === 429) {
            seen.push(429);
            await sleep(Number(res.headers.get('retry-after')) * 1000);
            res = await attempt(email);
        }
        assertProblem(res, 401, 'invalid-credentials', `failure ${n}`);
        seen.push(401);
    }
    return seen;
}

describe('login throttling per account', () => {
    test(`${FREE} failures are free, the next attempt (even right) waits: 429 too-many-attempts with Retry-After`, async () => {
        const p = await addStaff(w, 'clinician', 'backoff');
        for (let n = 1; n <= FREE; n++) {
            assertProblem(await attempt(p.email), 401, 'invalid-credentials',
                `failure ${n}`);
        }
        const t = Date.now();
        const right = await attempt(p.email, env.password);
        assertThrottled(right, 'the right password during the back-off');
        assert.ok(Date.now() - t < 1000, 'refused at once, without hashing');
        assert.equal(right.body.detail,
            'Too many failed attempts. Please wait before trying again.');

        // the back-off ends: the right password is accepted, and clears
        // the account's failures
        await sleep(Number(right.headers.get('retry-after')) * 1000);
        assertStatus(await attempt(p.email, env.password), 200,
            'after the back-off');
        assert.equal(await redis('EXISTS',
            throttleKey('login-account', p.email)), '0',
            'a successful login forgets the failures');
    });

    test(`after ${LOCK} failures the account is locked: the right password is refused for the lock's length`, async () => {
        const p = await addStaff(w, 'clinician', 'locked');
        const seen = await failUntilLocked(p.email);
        assert.equal(seen.filter((s) => s === 401).length, LOCK);
        const res = await attempt(p.email, env.password);
        const after = assertThrottled(res, 'locked account, right password');
        assert.ok(after > 60 && after <= 15 * 60,
            `locked for telehealth_throttle_lock (15m), not a back-off: ${after}`);
        // still locked a moment later
        assertThrottled(await attempt(p.email, env.password), 'still locked');
    });

    test('an unknown account is throttled exactly like a known one', async () => {
        const known = await addStaff(w, 'clinician', 'same-known');
        const unknown = `nobody-${crypto.randomUUID()}@example.invalid`;
        const answers = async (email) => {
            const out = [];
            for (let n = 0; n <= FREE; n++) {
                const res = await attempt(email);
                out.push([res.status, res.body?.type, res.body?.detail,
                    res.headers.get('retry-after')]);
            }
            return out;
        };
        const a = await answers(known.email);
        const b = await answers(unknown);
        assert.deepEqual(b, a, 'the same answers, in the same order');
        assert.equal(a[FREE][0], 429);
    });

    test('the e-mail is matched case-insensitively by the throttle too', async () => {
        const p = await addStaff(w, 'clinician', 'case');
        for (let n = 1; n <= FREE; n++) {
            const email = n % 2 ? p.email.toUpperCase() : p.email;
            assertStatus(await attempt(email), 401, `failure ${n}`);
        }
        assertThrottled(await attempt(p.email.toUpperCase(), env.password),
            'upper case');
    });

    test('Redis holds hashes only: no e-mail address, no client address', async () => {
        const p = await addStaff(w, 'clinician', 'hashes');
        assertStatus(await attempt(p.email), 401, 'a failure');
        const key = throttleKey('login-account', p.email);
        assert.equal(await redis('HGET', key, 'n'), '1');
        const ttl = Number(await redis('PTTL', key));
        assert.ok(ttl > 0 && ttl <= 15 * 60 * 1000, `forgotten after the lock time: ${ttl}`);
        const keys = (await redis('KEYS', 'th:throttle:*')).split('\n');
        for (const k of keys.filter(Boolean)) {
            assert.match(k, /^th:throttle:[a-z-]+:[0-9a-f]{64}$/, k);
        }
    });
});

describe('login audit', () => {
    test('every attempt leaves an audit row with the client address, none holds the e-mail', async () => {
        const p = await addStaff(w, 'clinician', 'audited');
        const unknown = `ghost-${crypto.randomUUID()}@example.invalid`;
        const [{ last }] = await sql('SELECT max(id) AS last FROM audit_log');

        assertStatus(await attempt(p.email), 401, 'wrong password');
        assertStatus(await attempt(p.email, env.password), 200, 'right one');
        assertStatus(await attempt(unknown), 401, 'unknown account');
        for (let n = 0; n < FREE; n++) {
            await attempt(unknown);
        }
        assertStatus(await attempt(unknown), 429, 'throttled');

        const rows = await sql(`SELECT org_id, actor_type, actor_id, action,
                target_type, target_id, client_addr, outcome, status
            FROM audit_log WHERE id > $1 AND action = 'login'
            ORDER BY id`, [last]);
        const mine = rows.filter((r) => r.actor_id === p.id);
        assert.deepEqual(mine.map((r) => [r.outcome, r.status]),
            [['unauthenticated', 401], ['success', 200]]);
        for (const r of mine) {
            assert.equal(r.org_id, w.org.id);
            assert.equal(r.actor_type, 'staff');
            assert.equal(r.client_addr, '127.0.0.1');
        }
        const ghost = rows.filter((r) => r.actor_id === null);
        assert.ok(ghost.length >= FREE + 2, `unknown account rows: ${ghost.length}`);
        assert.deepEqual(ghost.at(-1).outcome, 'throttled');
        assert.equal(ghost.at(-1).status, 429);
        for (const r of ghost) {
            assert.equal(r.org_id, null);
            assert.equal(r.client_addr, '127.0.0.1');
        }
        const leaked = await sql(`SELECT count(*)::int AS n FROM audit_log
            WHERE id > $1 AND (target_id ILIKE $2 OR target_id ILIKE $3
                OR client_addr ILIKE '%@%')`,
            [last, `%${p.email}%`, `%${unknown}%`]);
        assert.equal(leaked[0].n, 0, 'no e-mail address in the audit log');
    });
});

describe('login throttling per client address', () => {
    test('failures from one address throttle every account from it, and only that address', async () => {
        const addrKey = throttleKey('login-addr', OTHER_ADDR);
        // 100000 failures are free per address here: start one short
        await redis('DEL', addrKey);
        await redis('HSET', addrKey, 'n', '99999', 'until', '0');
        await redis('PEXPIRE', addrKey, '60000');

        const a = await addStaff(w, 'clinician', 'addr-a');
        const b = await addStaff(w, 'clinician', 'addr-b');
        const res = await postFrom(OTHER_ADDR, '/auth/login',
            { email: a.email, password: 'not-the-password' });
        assert.equal(res.status, 401, res.text);

        // another account from the same address: throttled
        const other = await postFrom(OTHER_ADDR, '/auth/login',
            { email: b.email, password: env.password });
        assert.equal(other.status, 429, other.text);
        assert.equal(other.body.type,
            'urn:telehealth:problem:too-many-attempts');
        assert.ok(Number(other.headers['retry-after']) >= 1);

        // the same account from 127.0.0.1: not throttled
        assertStatus(await attempt(b.email, env.password), 200,
            'from another address');
        await redis('DEL', addrKey);
    });
});

describe('redeem and decide throttling', () => {
    test(`POST /invites/redeem: ${FREE} unknown tries of one link, then 429`, async () => {
        const link = crypto.randomBytes(24).toString('base64url');
        for (let n = 1; n <= FREE; n++) {
            const res = await api('POST', '/invites/redeem',
                { body: { token: link, display_name: 'Guest' } });
            assertProblem(res, 404, 'invite-not-found', `try ${n}`);
        }
        assertThrottled(await api('POST', '/invites/redeem',
            { body: { token: link, display_name: 'Guest' } }), 'the link throttled');
        assert.equal(await redis('HGET', throttleKey('redeem-link', link),
            'n'), String(FREE));
    });

    test('POST /invites/redeem: an address with too many failures is throttled for any link', async () => {
        const addrKey = throttleKey('redeem-addr', OTHER_ADDR);
        await redis('DEL', addrKey);
        await redis('HSET', addrKey, 'n', '99999', 'until', '0');
        await redis('PEXPIRE', addrKey, '60000');
        const first = await postFrom(OTHER_ADDR, '/invites/redeem',
            { token: crypto.randomBytes(24).toString('base64url'),
                display_name: 'Guest' });
        assert.equal(first.status, 404, first.text);
        const next = await postFrom(OTHER_ADDR, '/invites/redeem',
            { token: crypto.randomBytes(24).toString('base64url'),
                display_name: 'Guest' });
        assert.equal(next.status, 429, next.text);
        await redis('DEL', addrKey);
    });

    test(`POST /interpreter-requests/decide: ${FREE} unknown tries of one link, then 429`, async () => {
        const link = crypto.randomBytes(24).toString('base64url');
        const body = { token: link, decision: 'accept',
            interpreter: { name: 'I', email: 'i@example.invalid' } };
        for (let n = 1; n <= FREE; n++) {
            const res = await api('POST', '/interpreter-requests/decide',
                { body });
            assertStatus(res, 404, `try ${n}`);
        }
        assertThrottled(await api('POST', '/interpreter-requests/decide',
            { body }), 'the link throttled');
    });
});

describe('shedding password checks', () => {
    test('beyond telehealth_password_max_pending, logins are answered 503 at once; a real login works after', async () => {
        const n = 48;
        const started = Date.now();
        const answers = await Promise.all(Array.from({ length: n }, (_, i) =>
            attempt(`flood-${i}-${crypto.randomUUID()}@example.invalid`)));
        const statuses = answers.map((r) => r.status);
        const shed = answers.filter((r) => r.status === 503);
        assert.ok(shed.length > 0, `some shed: ${statuses.join(',')}`);
        assert.ok(statuses.every((s) => s === 401 || s === 503),
            statuses.join(','));
        for (const r of shed) {
            assertProblem(r, 503, 'service-unavailable', 'shed');
            assert.equal(r.headers.get('retry-after'), '1');
            assert.ok(r.ms < Date.now() - started + 1, 'answered');
        }
        // the shed ones did not wait for the hashing of the others
        const fastest = Math.min(...shed.map((r) => r.ms));
        const slowest = Math.max(...answers.map((r) => r.ms));
        assert.ok(fastest < slowest, `shed at once (${fastest} ms < ${slowest} ms)`);

        const p = await addStaff(w, 'clinician', 'after-flood');
        assertStatus(await attempt(p.email, env.password), 200,
            'a real login after the flood');
    });
});

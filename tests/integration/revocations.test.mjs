// Every nginx checks tokens against the revocations it keeps in shared
// memory, fed by Redis pub/sub (docs/redis.md, "Revocations"): a logout or
// a deactivation on one node applies on another within the documented
// bound, a node that starts later learns what was revoked before it from
// the sorted set, and while the feed is down a node refuses to answer
// token-checked requests (503) instead of trusting what it has.  The test
// starts a second nginx (as multinode.test.mjs does) and stops and starts
// the stack's Redis; after() starts it again whatever happens.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addStaff, api, assertProblem, assertStatus, closeDb, createWorld,
    eventually, login, loginAll, stack, startNginx,
} from './lib.mjs';

const PORT2 = Number(process.env.TH_NGINX2_PORT || 61081);
const base2 = `http://127.0.0.1:${PORT2}`;
const api2 = (method, route, opts) =>
    api(method, `${base2}/api/v1${route}`, opts);

// NGX_HTTP_TELEHEALTH_REVOCATIONS_LATE (3 s) and a margin for a loaded
// machine: the bound on how late a revocation applies on another node
const BOUND_MS = 3000;
const WAIT_MS = BOUND_MS + 2000;

let w;
let second;

before(async () => {
    w = await createWorld('revocations');
    await loginAll([w.admin]);
    second = await startNginx(PORT2);
});

after(async () => {
    await stack('start-redis').catch(() => {});
    await second?.stop();
    await closeDb();
});

// the status of GET /me once the node has synced (not 503)
async function settled(call, token) {
    return eventually(async () => {
        const res = await call('GET', '/me', { token });
        return res.status === 503 ? undefined : res;
    }, WAIT_MS);
}

describe('revocations fed by Redis pub/sub', () => {
    test('a logout on one node refuses the token on the other within the bound', async () => {
        const p = await addStaff(w, 'clinician', 'logout-elsewhere');
        const token = await login(p);
        assertStatus(await settled(api2, token), 200, 'before, node 2');

        const t0 = Date.now();
        assertStatus(await api('POST', '/auth/logout', { token }), 204,
            'logout on node 1');
        const refused = await eventually(async () => {
            const res = await api2('GET', '/me', { token });
            return res.status === 401 ? res : undefined;
        }, WAIT_MS, 20);
        assert.ok(refused, 'node 2 refuses the token');
        assertProblem(refused, 401, 'unauthorized', 'node 2 after logout');
        assert.ok(Date.now() - t0 <= WAIT_MS,
            `applied after ${Date.now() - t0} ms`);
    });

    test('a deactivation on one node refuses every token of the person on the other', async () => {
        const p = await addStaff(w, 'clinician', 'deactivated-elsewhere');
        const token = await login(p);
        assertStatus(await settled(api2, token), 200, 'before, node 2');

        assertStatus(await api('PATCH', `/staff/${p.id}`, {
            token: w.admin.token, body: { active: false } }), 200,
        'deactivated on node 1');
        const refused = await eventually(async () => {
            const res = await api2('GET', '/me', { token });
            return res.status === 401 ? res : undefined;
        }, WAIT_MS, 20);
        assert.ok(refused, 'node 2 refuses the token of the deactivated');
        // the others keep theirs
        assertStatus(await api2('GET', '/me', { token: w.admin.token }), 200,
            'another person on node 2');
    });

    test('a node started after a revocation learns it from the sorted set', async () => {
        const p = await addStaff(w, 'clinician', 'revoked-before-start');
        const token = await login(p);
        const other = await login(p);
        await second.stop();
        second = null;

        assertStatus(await api('POST', '/auth/logout', { token }), 204,
            'logout while node 2 is down');
        second = await startNginx(PORT2);

        const res = await settled(api2, token);
        assertProblem(res, 401, 'unauthorized', 'the revoked token, node 2');
        assertStatus(await api2('GET', '/me', { token: other }), 200,
            'the same person\'s other token');
    });

    test('while Redis is down token-checked requests are refused (503); they are answered again once it is back', async () => {
        const p = await addStaff(w, 'clinician', 'feed-down');
        const token = await login(p);
        assertStatus(await settled(api, token), 200, 'before');

        await stack('stop-redis');
        try {
            for (const call of [api, api2]) {
                const res = await eventually(async () => {
                    const r = await call('GET', '/me', { token });
                    return r.status === 503 ? r : undefined;
                }, WAIT_MS);
                assert.ok(res, 'GET /me fails closed while the feed is down');
                assertProblem(res, 503, 'service-unavailable',
                    'GET /me, Redis down');
            }
        } finally {
            await stack('start-redis');
        }

        for (const call of [api, api2]) {
            assertStatus(await settled(call, token), 200,
                'GET /me once Redis is back');
        }
    });
});

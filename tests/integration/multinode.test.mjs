// Several nginx instances share one Redis and one PostgreSQL (docs/features.md
// 12 and 40): the one-open-room-per-patient rule, tokens and logout hold
// across instances.  The test starts a second nginx with the stack's own
// configuration on another port (its own pid file, logs and temp folders)
// and stops it by its pid afterwards.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    IN_SESSION_DETAIL, addPatient, addStaff, api, assertProblem,
    assertStatus, closeDb, createWorld, login, loginAll, sql, startNginx,
} from './lib.mjs';

const PORT2 = Number(process.env.TH_NGINX2_PORT || 61081);
const base2 = `http://127.0.0.1:${PORT2}`;
const api2 = (method, route, opts) =>
    api(method, `${base2}/api/v1${route}`, opts);

let w;
let second;             // the second nginx

before(async () => {
    w = await createWorld('multinode');
    await loginAll([w.admin, w.coordinator]);
    second = await startNginx(PORT2);
});

after(async () => {
    await second?.stop();
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

// Deactivation and a new password cut a staff member off at once
// (docs/api.md, "Authentication"): every access token they hold is
// refused on every endpoint (a per-person "not before" in Redis, checked
// against the token's iat), and they are removed from the live rooms they
// are in (the room command "remove").

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, addStaff, api, assertProblem, assertStatus, assign, closeDb,
    createWorld, env, eventually, joinAs, login, loginAll, redis, sleep,
    startSession,
} from './lib.mjs';

let w;
const conns = [];

before(async () => {
    w = await createWorld('revoke');
    await loginAll([w.admin, w.coordinator]);
});

after(async () => {
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
    await closeDb();
});

// what a clinician may read: every one must refuse a cut-off token
const ENDPOINTS = [
    ['GET', '/me'],
    ['GET', '/sessions'],
    ['GET', '/patients'],
    ['GET', '/staff'],
    ['POST', '/me/events/ticket'],
];

async function assertAllAnswer(token, what) {
    for (const [method, route] of ENDPOINTS) {
        const res = await api(method, route, { token });
        assert.ok(res.status < 300, `${method} ${route} ${what} -> ` +
            `${res.status} ${res.text.slice(0, 200)}`);
    }
}

async function assertAllRefuse(token, what) {
    for (const [method, route] of ENDPOINTS) {
        assertProblem(await api(method, route, { token }), 401,
            'unauthorized', `${method} ${route} ${what}`);
    }
}

describe('cutting a staff member off', () => {
    test('deactivation refuses every token they hold, on every endpoint, at once', async () => {
        const p = await addStaff(w, 'clinician', 'leaver');
        const first = await login(p);
        const second = await login(p);
        await assertAllAnswer(first, 'before');

        assertStatus(await api('DELETE', `/staff/${p.id}`,
            { token: w.admin.token }), 200, 'deactivate');
        await assertAllRefuse(first, 'first token, deactivated');
        await assertAllRefuse(second, 'second token, deactivated');
        assertStatus(await api('POST', '/auth/login', { body: {
            email: p.email, password: env.password } }), 401,
        'no new login either');

        // the others keep theirs
        await assertAllAnswer(w.coordinator.token, 'another staff member');
        assert.match(await redis('GET', `th:person:${p.id}:nbf`), /^\d+$/);
    });

    test('PATCH "active": false does the same; reactivated, a new login works', async () => {
        const p = await addStaff(w, 'clinician', 'paused');
        const token = await login(p);
        assertStatus(await api('PATCH', `/staff/${p.id}`, {
            token: w.admin.token, body: { active: false } }), 200);
        await assertAllRefuse(token, 'after PATCH active false');

        assertStatus(await api('PATCH', `/staff/${p.id}`, {
            token: w.admin.token, body: { active: true } }), 200);
        await assertAllRefuse(token, 'the old token, reactivated');
        await sleep(1100);   // tokens of the second they were cut off: no
        await assertAllAnswer(await login(p), 'a new login');
    });

    test('a new password refuses the old tokens; the new password logs in', async () => {
        const p = await addStaff(w, 'clinician', 'new-password');
        const token = await login(p);
        assertStatus(await api('PATCH', `/staff/${p.id}`, {
            token: w.admin.token, body: { password: 'a-brand-new-password' },
        }), 200, 'new password');
        await assertAllRefuse(token, 'token from the old password');
        await sleep(1100);
        const res = await api('POST', '/auth/login', { body: {
            email: p.email, password: 'a-brand-new-password' } });
        assertStatus(res, 200, 'login with the new password');
        await assertAllAnswer(res.body.access_token, 'the new token');
    });

    test('a change that cuts nobody off leaves the tokens alone', async () => {
        const p = await addStaff(w, 'clinician', 'renamed');
        const token = await login(p);
        assertStatus(await api('PATCH', `/staff/${p.id}`, {
            token: w.admin.token, body: { display_name: 'Renamed' } }), 200);
        await assertAllAnswer(token, 'after a rename');
    });

    test('a deactivated staff member is removed from the live room they are in', async () => {
        const p = await addStaff(w, 'clinician', 'in-room');
        const patient = await addPatient(w, 'revoke-room');
        await assign(p, patient);
        const token = await login(p);
        const patientToken = await login(patient);
        const s = await startSession(token, patient.id);
        assertStatus(s, 201, 'session');
        const staffConn = await joinAs(token, s.body.id);
        const patientConn = await joinAs(patientToken, s.body.id);
        conns.push(staffConn, patientConn);
        const members = async () => (await redis('HKEYS',
            `th:room:${s.body.room}:members`)).split('\n').filter(Boolean);
        assert.ok((await members()).includes(`staff:${p.id}`));

        assertStatus(await api('DELETE', `/staff/${p.id}`,
            { token: w.admin.token }), 200, 'deactivate');
        await staffConn.handle.waitData((d) => d.telehealth === 'left'
            && d.reason === 'removed', 5000, 0, 'left/removed');
        assert.ok(await eventually(async () =>
            !(await members()).includes(`staff:${p.id}`), 5000),
        'out of the room');
    });
});

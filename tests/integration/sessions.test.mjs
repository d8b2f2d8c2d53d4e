// Sessions (docs/api.md, "Sessions"): who may open a video_call room for
// which patient, the one-open-room-per-patient rule under a race, what the
// patient sees, and join credentials.
//
// Rooms left open: the access matrix gives every actor a patient of its
// own (all assigned to the assigned clinician), so no actor waits for
// another's room to close and a broken close cannot hide an access bug.
// Where a test needs a room closed it closes it the way the product does:
// the staff chair joins through the plugin and leaves (closeRoomAsChair);
// plugin.test.mjs proves that path in detail.  Locks left behind lapse by
// their TTL and belong to patients no other file uses.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    IN_SESSION_DETAIL, UUID_RE, addPatient, addStaff, api, assertProblem,
    assertStatus, closeDb, closeRoomAsChair, createWorld, decodeJwt,
    eventually, joinCredential, login, loginAll, patientLockKey, redis,
    roomKey, sql, startSession,
} from './lib.mjs';

let w;

before(async () => {
    w = await createWorld('sessions');
    await loginAll([w.admin, w.supervisor, w.coordinator, w.clinician,
        w.unassigned, w.patient, w.other.admin, w.other.clinician]);
});

after(closeDb);

function assertSessionObject(s, { patient, creator }) {
    assert.match(s.id, UUID_RE, 'id');
    assert.equal(s.kind, 'video_call');
    assert.equal(s.state, 'open');
    assert.equal(s.org_id, w.org.id);
    assert.equal(s.patient_id, patient.id);
    assert.equal(s.created_by, creator.id);
    assert.equal(typeof s.room, 'string');
    assert.ok(s.room.length > 0, 'room');
    assert.ok(!Number.isNaN(Date.parse(s.created_at)), 'created_at');
    assert.equal(s.ended_at, null);
    const parts = [...s.participants].sort((a, b) =>
        a.type.localeCompare(b.type));
    assert.deepEqual(parts, [
        { type: 'patient', id: patient.id, role: 'broadcaster' },
        { type: 'staff', id: creator.id, role: 'chair' },
    ]);
}

async function openSessionsOf(patient) {
    return sql(`SELECT id, state, room FROM sessions
                WHERE patient_id = $1 AND state = 'open'`, [patient.id]);
}

describe('who may open a video_call room', () => {
    for (const role of ['admin', 'supervisor', 'coordinator', 'clinician']) {
        const who = role === 'clinician' ? 'assigned clinician' : role;
        test(`${who} opens a room for a patient in reach: 201, room open, patient locked`, async () => {
            const actor = w[role];
            const patient = await addPatient(w, `matrix-${role}`);
            const res = await startSession(actor.token, patient.id);
            assertStatus(res, 201, `${who} POST /sessions`);
            assertSessionObject(res.body, { patient, creator: actor });
            assert.match(res.headers.get('location') || '',
                new RegExp(`/sessions/${res.body.id}$`), 'Location');

            const rows = await sql(
                `SELECT org_id, kind, state, patient_id, created_by, room
                 FROM sessions WHERE id = $1`, [res.body.id]);
            assert.equal(rows.length, 1, 'the session is committed');
            assert.deepEqual(rows[0], {
                org_id: w.org.id, kind: 'video_call', state: 'open',
                patient_id: patient.id, created_by: actor.id,
                room: res.body.room,
            });
            const parts = await sql(
                `SELECT staff_id, patient_id, role FROM session_participants
                 WHERE session_id = $1 ORDER BY role`, [res.body.id]);
            assert.deepEqual(parts, [
                { staff_id: null, patient_id: patient.id,
                    role: 'broadcaster' },
                { staff_id: actor.id, patient_id: null, role: 'chair' },
            ]);

            assert.match(res.body.room, /^[A-Za-z0-9_-]{22}$/,
                'room id: 22 URL-safe characters');
            assert.equal(await redis('GET', patientLockKey(patient.id)),
                res.body.room, 'the patient lock names the room');
            // no expiry: the room and the lock live as long as the session
            // (docs/lifecycle.md)
            assert.equal(await redis('TTL', patientLockKey(patient.id)), '-1',
                'the lock does not expire');
            assert.equal(await redis('TTL', roomKey(res.body.room)), '-1',
                'the room does not expire');
            assert.equal(await redis('HGET', roomKey(res.body.room), 'state'),
                'open');
            assert.equal(
                await redis('HGET', roomKey(res.body.room), 'session'),
                res.body.id);

            const get = await api('GET', `/sessions/${res.body.id}`,
                { token: actor.token });
            assertStatus(get, 200, 'GET the new session');
            assert.equal(get.body.id, res.body.id);
        });
    }

    test('unassigned clinician cannot open a room for the patient: 403', async () => {
        const patient = await addPatient(w, 'matrix-unassigned');
        const res = await startSession(w.unassigned.token, patient.id);
        assertProblem(res, 403, 'forbidden', 'unassigned clinician');
        assert.equal((await openSessionsOf(patient)).length, 0);
        assert.equal(await redis('EXISTS', patientLockKey(patient.id)), '0',
            'no patient lock taken');
    });

    test('clinician whose assignment has ended cannot open a room: 403', async () => {
        const clinician = await addStaff(w, 'clinician', 'ended');
        const patient = await addPatient(w, 'matrix-ended',
            { assigned: false });
        await sql(`INSERT INTO assignments (org_id, staff_id, patient_id,
                                            starts_at, ends_at)
                   VALUES ($1, $2, $3, now() - interval '30 days',
                           now() - interval '1 day')`,
        [w.org.id, clinician.id, patient.id]);
        const token = await login(clinician);
        const res = await startSession(token, patient.id);
        assertProblem(res, 403, 'forbidden', 'clinician with ended assignment');
    });

    test('patient cannot open a room, not even for themself: 403', async () => {
        const res = await startSession(w.patient.token, w.patient.id);
        assertProblem(res, 403, 'forbidden', 'patient POST /sessions');
        assert.equal((await openSessionsOf(w.patient)).length, 0);
    });

    test("another organisation's admin gets 404 and learns nothing of the patient", async () => {
        const patient = await addPatient(w, 'matrix-foreign');
        const res = await startSession(w.other.admin.token, patient.id);
        assertProblem(res, 404, 'not-found', 'foreign admin POST /sessions');
        for (const secret of [patient.name, patient.email, w.org.id,
            w.org.name, w.clinician.id]) {
            assert.ok(!res.text.includes(secret),
                `the answer does not carry "${secret}"`);
        }
        assert.equal((await openSessionsOf(patient)).length, 0);
        assert.equal(await redis('EXISTS', patientLockKey(patient.id)), '0');
    });

    test("an admin naming another organisation's patient gets 404", async () => {
        const res = await startSession(w.admin.token, w.other.patient.id);
        assertProblem(res, 404, 'not-found', 'admin, foreign patient');
        assert.equal((await openSessionsOf(w.other.patient)).length, 0);
    });

    test('unknown kind, missing or malformed patient_id: 422 validation', async () => {
        const patient = await addPatient(w, 'matrix-422');
        const cases = [
            { kind: 'tea_party', patient_id: patient.id },
            { kind: 'video_call' },
            { kind: 'video_call', patient_id: 'not-a-uuid' },
        ];
        for (const body of cases) {
            const res = await api('POST', '/sessions',
                { token: w.admin.token, body });
            assertProblem(res, 422, 'validation', JSON.stringify(body));
        }
        assert.equal((await openSessionsOf(patient)).length, 0);
    });

    test('no body or a body that is not a JSON object: 400 invalid-request', async () => {
        for (const raw of [undefined, '[1,2]', '{"kind":']) {
            const res = await api('POST', '/sessions', {
                token: w.admin.token, raw,
                headers: { 'content-type': 'application/json' },
            });
            assertProblem(res, 400, 'invalid-request',
                `POST /sessions body ${raw}`);
        }
    });

    test('a session id that is not a UUID is 404', async () => {
        const res = await api('GET', '/sessions/not-a-uuid',
            { token: w.admin.token });
        assertProblem(res, 404, 'not-found', 'GET /sessions/not-a-uuid');
    });
});

describe('one open room per patient', () => {
    test('second staff member cannot open a room for a patient already in a call: 409', async () => {
        const patient = await addPatient(w, 'second-staff');
        const first = await startSession(w.clinician.token, patient.id);
        assertStatus(first, 201, 'first POST /sessions');

        const second = await startSession(w.coordinator.token, patient.id);
        assertProblem(second, 409, 'patient-in-session', 'second staff');
        assert.equal(second.body.detail, IN_SESSION_DETAIL);

        const again = await startSession(w.clinician.token, patient.id);
        assertProblem(again, 409, 'patient-in-session', 'same staff again');

        const open = await openSessionsOf(patient);
        assert.deepEqual(open.map((r) => r.id), [first.body.id]);
        assert.equal(await redis('GET', patientLockKey(patient.id)),
            first.body.room, 'the lock still names the first room');
    });

    test('20 staff racing for one patient: exactly one 201, nineteen 409, one open session row', async () => {
        const patient = await addPatient(w, 'race');
        const racers = [];
        const roles = ['admin', 'supervisor', 'coordinator'];
        for (let i = 0; i < 20; i++) {
            racers.push(await addStaff(w, roles[i % 3], `racer${i}`));
        }
        await loginAll(racers);

        const results = await Promise.all(racers.map((r) =>
            startSession(r.token, patient.id)));
        const byStatus = {};
        for (const r of results) {
            byStatus[r.status] = (byStatus[r.status] || 0) + 1;
        }
        assert.deepEqual(byStatus, { 201: 1, 409: 19 },
            `statuses: ${JSON.stringify(byStatus)}; ` +
            results.filter((r) => r.status !== 201 && r.status !== 409)
                .map((r) => r.text).join(' | ').slice(0, 500));
        for (const r of results.filter((x) => x.status === 409)) {
            assertProblem(r, 409, 'patient-in-session', 'racer');
            assert.equal(r.body.detail, IN_SESSION_DETAIL);
        }

        const winner = results.find((r) => r.status === 201).body;
        const open = await openSessionsOf(patient);
        assert.deepEqual(open.map((r) => r.id), [winner.id],
            'exactly one open session row for the patient');
        const all = await sql('SELECT count(*)::int AS n FROM sessions ' +
            'WHERE patient_id = $1', [patient.id]);
        assert.equal(all[0].n, 1, 'the losers left no session row behind');
        assert.equal(await redis('GET', patientLockKey(patient.id)),
            winner.room);
    });
});

describe('what the patient sees, join credentials', () => {
    let session;

    before(async () => {
        const res = await startSession(w.clinician.token, w.patient.id);
        assertStatus(res, 201, 'POST /sessions for the visibility tests');
        session = res.body;
    });

    function assertCredential(res, { sub, role, name }) {
        assertStatus(res, 200, `join credential for ${sub}`);
        const b = res.body;
        assert.equal(typeof b.credential, 'string');
        assert.equal(b.room, session.room);
        assert.equal(b.role, role);
        assert.equal(b.plugin, 'janus.plugin.telehealth');
        assert.equal(b.janus_path, '/janus');
        assert.ok(Number.isInteger(b.expires_in) && b.expires_in > 0 &&
            b.expires_in <= 60, `expires_in ${b.expires_in}`);
        const { header, claims } = decodeJwt(b.credential);
        // signed with the first join key (ES256), not an access-token key
        assert.equal(header.alg, 'ES256');
        assert.equal(header.kid, 'j1');
        assert.equal(claims.iss, 'telehealth');
        assert.equal(claims.aud, 'janus.plugin.telehealth');
        assert.equal(claims.sub, sub);
        assert.equal(claims.room, session.room);
        assert.equal(claims.session, session.id);
        assert.equal(claims.org, w.org.id);
        assert.equal(claims.kind, 'video_call');
        assert.equal(claims.role, role);
        assert.equal(claims.name, name);
        assert.equal(typeof claims.jti, 'string');
        assert.ok(claims.exp - claims.iat <= 60 && claims.exp > claims.iat,
            `lifetime ${claims.exp - claims.iat} s`);
    }

    test('patient sees the open session in GET /sessions and GET /sessions/{id}', async () => {
        const list = await api('GET', '/sessions', { token: w.patient.token });
        assertStatus(list, 200, 'patient GET /sessions');
        const mine = list.body.items.filter((s) => s.id === session.id);
        assert.equal(mine.length, 1, 'the open session is listed');
        assert.equal(mine[0].state, 'open');
        assert.equal(mine[0].room, session.room);

        const one = await api('GET', `/sessions/${session.id}`,
            { token: w.patient.token });
        assertStatus(one, 200, 'patient GET /sessions/{id}');
        assert.equal(one.body.id, session.id);
    });

    test('staff creator sees the session in GET /sessions', async () => {
        const list = await api('GET', '/sessions',
            { token: w.clinician.token });
        assertStatus(list, 200, 'staff GET /sessions');
        assert.ok(list.body.items.some((s) => s.id === session.id));
    });

    test('patient gets a broadcaster join credential for the open room', async () => {
        const res = await joinCredential(w.patient.token, session.id);
        assertCredential(res, { sub: `patient:${w.patient.id}`,
            role: 'broadcaster', name: w.patient.name });
    });

    test('staff member who opened the room gets a join credential with role chair', async () => {
        const res = await joinCredential(w.clinician.token, session.id);
        assertCredential(res, { sub: `staff:${w.clinician.id}`,
            role: 'chair', name: w.clinician.name });
    });

    test('each join credential is a new one (own jti)', async () => {
        const a = await joinCredential(w.clinician.token, session.id);
        const b = await joinCredential(w.clinician.token, session.id);
        assertStatus(a, 200);
        assertStatus(b, 200);
        assert.notEqual(decodeJwt(a.body.credential).claims.jti,
            decodeJwt(b.body.credential).claims.jti);
    });

    test('unrelated clinician gets 404 on join and on the session', async () => {
        const join = await joinCredential(w.unassigned.token, session.id);
        assertProblem(join, 404, 'not-found', 'unrelated clinician join');
        const get = await api('GET', `/sessions/${session.id}`,
            { token: w.unassigned.token });
        assertProblem(get, 404, 'not-found', 'unrelated clinician GET');
    });

    test("another organisation's admin gets 404 on the session and on join", async () => {
        const get = await api('GET', `/sessions/${session.id}`,
            { token: w.other.admin.token });
        assertProblem(get, 404, 'not-found', 'foreign admin GET');
        assert.ok(!get.text.includes(session.room));
        const join = await joinCredential(w.other.admin.token, session.id);
        assertProblem(join, 404, 'not-found', 'foreign admin join');
        assert.ok(!join.text.includes(session.room));
        const list = await api('GET', '/sessions',
            { token: w.other.admin.token });
        assertStatus(list, 200);
        assert.ok(!list.body.items.some((s) => s.id === session.id));
    });

    test('once the chair has left the room the patient no longer sees the session', async () => {
        const closed = await closeRoomAsChair(w.clinician.token, session);
        assert.ok(closed, 'the patient lock is released when the chair leaves');

        const gone = await eventually(async () => {
            const list = await api('GET', '/sessions',
                { token: w.patient.token });
            return list.status === 200 &&
                !list.body.items.some((s) => s.id === session.id);
        }, 5000);
        assert.ok(gone, 'the closed session is no longer listed ' +
            'for the patient');

        const one = await api('GET', `/sessions/${session.id}`,
            { token: w.patient.token });
        assertProblem(one, 404, 'not-found', 'patient GET closed session');

        const pjoin = await joinCredential(w.patient.token, session.id);
        assert.ok([404, 409].includes(pjoin.status),
            `patient join after close -> ${pjoin.status} ${pjoin.text}`);

        const sjoin = await joinCredential(w.clinician.token, session.id);
        assertProblem(sjoin, 409, 'room-not-open', 'staff join after close');

        // Call history reaches PostgreSQL through the event stream, a
        // moment after the room closed in Redis.
        let mine;
        const ended = await eventually(async () => {
            const list = await api('GET', '/sessions',
                { token: w.clinician.token });
            mine = list.body?.items?.find((s) => s.id === session.id);
            return mine && mine.state === 'ended';
        }, 5000, 200);
        assert.ok(mine, 'staff still see the ended session');
        assert.ok(ended, `the staff list shows it ended (state ${mine.state})`);
        assert.ok(mine.ended_at, 'ended_at is set');
    });
});

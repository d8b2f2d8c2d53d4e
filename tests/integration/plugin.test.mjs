// The Janus plugin (docs/plugin.md) over Janus' HTTP transport: join with
// a credential from the API, every way a credential can be bad, the live
// participants list, leave, and "the room closes for everyone when the
// staff member leaves a video_call" with what that does in Redis and, via
// the event stream the nginx module consumes, in PostgreSQL.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, assertStatus, closeDb, createWorld, decodeJwt, env, eventually,
    joinCredential, joinRoom, leaveRoom, login, loginAll, mintJoin, mintToken,
    newJti, verifyJoinSignature,
    now, patientLockKey, redis, roomKey, sql, startSession,
} from './lib.mjs';

// Error codes of the plugin protocol (docs/plugin.md).
const ERR = {
    INVALID_CREDENTIAL: 480,
    CREDENTIAL_EXPIRED: 481,
    WRONG_AUDIENCE: 482,
    UNKNOWN_KEY: 483,
    CREDENTIAL_REVOKED: 484,
    NO_SUCH_ROOM: 485,
    ROOM_CLOSED: 486,
};

// The name of a plugin answer or event ("joined", "participants", "left",
// "closed", "event" ...).
const eventOf = (d) => d?.telehealth;

let w;
const conns = [];

before(async () => {
    w = await createWorld('plugin');
    await loginAll([w.clinician, w.coordinator]);
});

after(async () => {
    await Promise.all(conns.map((c) => c.session.destroy()));
    await closeDb();
});

async function join(credential) {
    const c = await joinRoom(credential);
    conns.push(c);
    return c;
}

// Opens a video_call by the clinician for a fresh patient with a login.
async function openCall(label) {
    const patient = await addPatient(w, label);
    patient.token = await login(patient);
    const res = await startSession(w.clinician.token, patient.id);
    assertStatus(res, 201, `POST /sessions (${label})`);
    return { patient, session: res.body };
}

async function credentialFor(token, session) {
    const res = await joinCredential(token, session.id);
    assertStatus(res, 200, 'POST /sessions/{id}/join');
    return res.body.credential;
}

function assertJoined(answer, what) {
    assert.notEqual(answer.janus, 'error',
        `${what}: Janus error ${JSON.stringify(answer.error)}`);
    const d = answer.data;
    assert.ok(d && d.error_code === undefined,
        `${what}: ${JSON.stringify(d)}`);
    assert.equal(eventOf(d), 'joined', `${what}: ${JSON.stringify(d)}`);
    assert.ok(Array.isArray(d.participants),
        `${what}: participants list in ${JSON.stringify(d)}`);
    return d;
}

function assertPluginError(answer, code, what) {
    const d = answer.data;
    assert.ok(d, `${what}: no plugin data (${JSON.stringify(answer.raw)})`);
    assert.equal(d.error_code, code,
        `${what}: expected error ${code}, got ${JSON.stringify(d)}`);
    assert.equal(eventOf(d), 'event');
    assert.equal(typeof d.error, 'string', `${what}: error text`);
    assert.ok(d.error.length > 0);
}

const idsOf = (participants) => participants.map((p) => p.id).sort();
const hasId = (id) => (d) => Array.isArray(d.participants) &&
    d.participants.some((p) => p.id === id);

describe('joining and leaving a room', () => {
    let call;
    let staff;
    let patient;
    let staffId;
    let patientId;

    before(async () => {
        call = await openCall('join');
        staffId = `staff:${w.clinician.id}`;
        patientId = `patient:${call.patient.id}`;
    });

    test('staff member joins with a good credential and gets the participants list', async () => {
        staff = await join(await credentialFor(w.clinician.token,
            call.session));
        const d = assertJoined(staff.answer, 'staff join');
        assert.equal(d.room, call.session.room);
        assert.equal(d.id, staffId);
        assert.equal(d.role, 'chair');
        const me = d.participants.find((p) => p.id === staffId);
        assert.ok(me, `the list names the joiner: ${JSON.stringify(d)}`);
        assert.equal(me.role, 'chair');
        assert.equal(me.display, w.clinician.name);

        const members = await redis('HKEYS',
            `${roomKey(call.session.room)}:members`);
        assert.ok(members.split('\n').includes(staffId),
            `the member is in Redis (${members})`);
    });

    test('staff member is told when the patient joins; both are in the list', async () => {
        assert.ok(staff, 'needs the staff member in the room');
        const from = staff.session.events.length;
        patient = await join(await credentialFor(call.patient.token,
            call.session));
        const d = assertJoined(patient.answer, 'patient join');
        assert.equal(d.id, patientId);
        assert.equal(d.role, 'broadcaster');
        assert.deepEqual(d.participants.map((p) => p.id),
            [staffId, patientId], 'the list is in join order');
        const me = d.participants.find((p) => p.id === patientId);
        assert.equal(me.role, 'broadcaster');
        assert.equal(me.display, call.patient.name);

        const pushed = await staff.handle.waitData(hasId(patientId), 5000,
            from, 'a participants list naming the patient');
        assert.deepEqual(idsOf(pushed.participants),
            [patientId, staffId].sort());
    });

    test('patient leaves: the staff member sees them gone, the video_call stays open', async () => {
        assert.ok(staff && patient, 'needs both in the room');
        const from = staff.session.events.length;
        const left = await leaveRoom(patient);
        assert.ok(left.data && left.data.error_code === undefined,
            `leave: ${JSON.stringify(left.data)}`);
        assert.equal(eventOf(left.data), 'left');
        assert.equal(left.data.reason, 'leave');

        const pushed = await staff.handle.waitData(
            (d) => Array.isArray(d.participants) && !hasId(patientId)(d),
            5000, from, 'a participants list without the patient');
        assert.deepEqual(idsOf(pushed.participants), [staffId]);

        assert.equal(await redis('HGET', roomKey(call.session.room), 'state'),
            'open', 'a patient leaving does not close a video_call');
        assert.equal(await redis('GET', patientLockKey(call.patient.id)),
            call.session.room, 'the patient lock stays');
    });

    test('a participant who left can join again with a new credential', async () => {
        const again = await join(await credentialFor(call.patient.token,
            call.session));
        const d = assertJoined(again.answer, 'patient rejoin');
        assert.deepEqual(idsOf(d.participants), [patientId, staffId].sort());
    });
});

describe('the keys Janus holds', () => {
    test('the plugin config names public join keys only, no access-token key', () => {
        const conf = fs.readFileSync(path.join(env.run,
            'janus/etc/janus.plugin.telehealth.jcfg'), 'utf8');
        const block = conf.match(/^keys: \{([^}]*)\}/m);
        assert.ok(block, 'a keys category');
        const files = [...block[1].matchAll(/^\s*(\w+)\s*=\s*"([^"]+)"/gm)]
            .map((m) => m[2]);
        assert.ok(files.length >= 1, 'at least one key');
        const secrets = ['k1', 'k2'].map((k) => fs.readFileSync(
            path.join(env.keys, `${k}.key`), 'utf8').trim());
        for (const file of files) {
            const text = fs.readFileSync(file, 'utf8');
            assert.match(text, /^-----BEGIN PUBLIC KEY-----/, file);
            assert.doesNotMatch(text, /PRIVATE/, file);
            for (const secret of secrets) {
                assert.ok(!text.includes(secret), `${file} holds no secret`);
            }
        }
        assert.doesNotMatch(conf, /k[12]\.key/);
    });
});

describe('credentials the plugin refuses', () => {
    let call;
    let good; // a real credential from the API, decoded

    before(async () => {
        call = await openCall('refused');
        const credential = await credentialFor(w.clinician.token,
            call.session);
        good = { credential, ...decodeJwt(credential) };
    });

    const fresh = (changes = {}) => {
        const t = now();
        return { ...good.claims, jti: newJti(), iat: t, exp: t + 60,
            ...changes };
    };

    test('a credential minted by the test like the API does is accepted (control)', async () => {
        // As the patient: a patient leaving does not close the room.
        const c = await join(mintJoin(fresh({
            sub: `patient:${call.patient.id}`, role: 'broadcaster',
            name: call.patient.name,
        })));
        assertJoined(c.answer, 'minted credential');
        await leaveRoom(c);
    });

    test('tampered payload: 480 invalid credential', async () => {
        const [h, , s] = good.credential.split('.');
        const forged = Buffer.from(JSON.stringify({ ...good.claims,
            role: 'chair', sub: `staff:${w.coordinator.id}` }))
            .toString('base64url');
        const c = await join(`${h}.${forged}.${s}`);
        assertPluginError(c.answer, ERR.INVALID_CREDENTIAL, 'tampered');
    });

    test('garbage and unsigned (alg none) credentials: 480 invalid credential', async () => {
        for (const [what, cred] of [
            ['garbage', 'not.a.jwt'],
            ['alg none', mintToken(fresh(), { alg: 'none' })],
            ['wrong issuer', mintJoin(fresh({ iss: 'evil' }))],
        ]) {
            const c = await join(cred);
            assertPluginError(c.answer, ERR.INVALID_CREDENTIAL, what);
        }
    });

    test('expired credential: 481', async () => {
        const t = now();
        const c = await join(mintJoin(fresh({ iat: t - 600, exp: t - 300 })));
        assertPluginError(c.answer, ERR.CREDENTIAL_EXPIRED, 'expired');
    });

    test('an API access token instead of a join credential: refused (480, HS256 is not a join key)', async () => {
        const c = await join(w.clinician.token);
        assertPluginError(c.answer, ERR.INVALID_CREDENTIAL, 'access token');
    });

    test('a join credential signed with an access-token key (HS256) is refused, whatever its kid', async () => {
        for (const kid of ['k1', 'j1']) {
            const c = await join(mintToken(fresh(),
                { alg: 'HS256', kid, key: 'k1' }));
            assertPluginError(c.answer, ERR.INVALID_CREDENTIAL,
                `HS256 with kid ${kid}`);
        }
    });

    test('a join key credential for the API audience: 482 wrong audience', async () => {
        const c = await join(mintJoin(fresh({ aud: 'telehealth-api' })));
        assertPluginError(c.answer, ERR.WRONG_AUDIENCE, 'API audience');
    });

    test('the API signs join credentials with the first join key (ES256, JOSE r||s)', () => {
        const { header } = decodeJwt(good.credential);
        assert.equal(header.alg, 'ES256');
        assert.equal(header.kid, 'j1');
        assert.ok(verifyJoinSignature(good.credential, 'j1'),
            'the signature verifies with j1.pub');
    });

    test('a credential signed with the second join key is accepted (rotation)', async () => {
        const c = await join(mintJoin(fresh({
            sub: `patient:${call.patient.id}`, role: 'broadcaster',
            name: call.patient.name,
        }), { kid: 'j2' }));
        assertJoined(c.answer, 'j2 credential');
        await leaveRoom(c);
    });

    test('credential naming an unknown kid: 483', async () => {
        const c = await join(mintJoin(fresh(), { kid: 'j9', key: 'j1' }));
        assertPluginError(c.answer, ERR.UNKNOWN_KEY, 'unknown kid');
    });

    test('revoked credential (th:revoked:<jti> present): 484', async () => {
        const credential = await credentialFor(w.clinician.token,
            call.session);
        const { jti } = decodeJwt(credential).claims;
        await redis('SET', `th:revoked:${jti}`, '1', 'EX', '120');
        const c = await join(credential);
        assertPluginError(c.answer, ERR.CREDENTIAL_REVOKED, 'revoked');
    });

    test('credential for a room that does not exist: 485 no such room', async () => {
        const c = await join(mintJoin(fresh({
            room: `no-such-room-${newJti()}`.replace(/[^A-Za-z0-9-]/g, ''),
        })));
        assertPluginError(c.answer, ERR.NO_SUCH_ROOM, 'no such room');
    });

    test('credential for a room that has closed: 486 room closed', async () => {
        // Held by the patient from before the room closed; still in date.
        const held = await credentialFor(call.patient.token, call.session);
        const chair = await join(await credentialFor(w.clinician.token,
            call.session));
        assertJoined(chair.answer, 'chair join');
        await leaveRoom(chair);
        const closed = await eventually(async () =>
            (await redis('HGET', roomKey(call.session.room), 'state')) !==
                'open', 3000);
        assert.ok(closed, 'the room is no longer open');
        const c = await join(held);
        assertPluginError(c.answer, ERR.ROOM_CLOSED, 'closed room');
    });
});

describe('closing the browser is a hangup, not a leave', () => {
    test('the chair hanging up leaves the video_call open; the patient is told; the chair can rejoin', async () => {
        const call = await openCall('hangup');
        const staffId = `staff:${w.clinician.id}`;
        const patientId = `patient:${call.patient.id}`;
        const staff = await join(await credentialFor(w.clinician.token,
            call.session));
        assertJoined(staff.answer, 'staff join');
        const patient = await join(await credentialFor(call.patient.token,
            call.session));
        assertJoined(patient.answer, 'patient join');

        // The browser goes away: its Janus session is destroyed.
        const from = patient.session.events.length;
        await staff.session.destroy();
        const pushed = await patient.handle.waitData(
            (d) => Array.isArray(d.participants) && !hasId(staffId)(d),
            5000, from, 'a participants list without the staff member');
        assert.deepEqual(idsOf(pushed.participants), [patientId]);
        assert.ok(!patient.handle.pluginEvents(from)
            .some((d) => eventOf(d) === 'closed'),
        'the patient was not told the room closed');
        assert.equal(await redis('HGET', roomKey(call.session.room), 'state'),
            'open', 'the room stays open');
        assert.equal(await redis('GET', patientLockKey(call.patient.id)),
            call.session.room, 'the patient lock stays');

        const back = await join(await credentialFor(w.clinician.token,
            call.session));
        const d = assertJoined(back.answer, 'staff rejoin');
        assert.deepEqual(idsOf(d.participants), [patientId, staffId].sort());
    });
});

describe('the staff chair leaving ends a video_call', () => {
    let call;
    let staff;
    let patient;

    before(async () => {
        call = await openCall('chair-left');
        staff = await join(await credentialFor(w.clinician.token,
            call.session));
        assertJoined(staff.answer, 'staff join');
        patient = await join(await credentialFor(call.patient.token,
            call.session));
        assertJoined(patient.answer, 'patient join');
    });

    test('the patient is told the room closed, the lock is gone, a new session can start', async () => {
        const from = patient.session.events.length;
        await leaveRoom(staff);

        const closed = await patient.handle.waitData(
            (d) => eventOf(d) === 'closed', 5000, from, 'a closed event');
        assert.equal(closed.room, call.session.room);
        assert.equal(closed.reason, 'chair_left');

        const lockGone = await eventually(async () =>
            (await redis('EXISTS', patientLockKey(call.patient.id))) === '0',
        3000);
        assert.ok(lockGone, 'th:patient:<id>:room is deleted');
        assert.notEqual(
            await redis('HGET', roomKey(call.session.room), 'state'), 'open',
            'the room hash is no longer open');

        const again = await startSession(w.coordinator.token,
            call.patient.id);
        assertStatus(again, 201, 'a new session for the patient');
        assert.notEqual(again.body.room, call.session.room);
    });

    test('the call record reaches PostgreSQL: calls row ended chair_left, both participants', async () => {
        const row = await eventually(async () => {
            const rows = await sql(
                `SELECT id, org_id, session_id, started_at, ended_at,
                        end_reason
                 FROM calls WHERE room = $1`, [call.session.room]);
            return rows.length === 1 && rows[0].ended_at ? rows[0] : null;
        }, 5000, 200);
        assert.ok(row, 'a calls row with ended_at within 5 s');
        assert.equal(row.session_id, call.session.id);
        assert.equal(row.org_id, w.org.id);
        assert.equal(row.end_reason, 'chair_left');
        assert.ok(row.started_at <= row.ended_at, 'started before it ended');

        const parts = await sql(
            `SELECT participant, role, joined_at, left_at, left_reason
             FROM call_participants WHERE call_id = $1
             ORDER BY participant`, [row.id]);
        assert.deepEqual(parts.map((p) => [p.participant, p.role]), [
            [`patient:${call.patient.id}`, 'broadcaster'],
            [`staff:${w.clinician.id}`, 'chair'],
        ]);
        for (const p of parts) {
            assert.ok(p.left_at, `${p.participant} has left_at`);
            assert.ok(p.joined_at >= row.started_at,
                `${p.participant} joined after the call started`);
            assert.ok(p.left_at >= p.joined_at);
        }
        const byId = Object.fromEntries(parts.map((p) =>
            [p.participant, p.left_reason]));
        assert.equal(byId[`staff:${w.clinician.id}`], 'leave');
        assert.equal(byId[`patient:${call.patient.id}`], 'room_closed');
    });

    test('the session is ended in PostgreSQL once its room closed', async () => {
        const ended = await eventually(async () => {
            const rows = await sql(
                'SELECT state, ended_at FROM sessions WHERE id = $1',
                [call.session.id]);
            return rows[0].state === 'ended' && rows[0].ended_at;
        }, 5000, 200);
        assert.ok(ended, 'sessions.state = ended with ended_at within 5 s');
    });
});

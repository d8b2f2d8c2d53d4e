// The plugin's side of the session lifecycle (docs/lifecycle.md,
// docs/plugin.md): an open room never expires and its host holds a lease;
// the per-room empty timeout; the patient lock taken at join and given
// back when the patient's place ends; bans and demotions that outlive a
// rejoin; chair.action entries on the event stream; the takeover of a
// room whose host died.  Rooms come from the API where it can make them;
// a second room for the same patient, or one left behind by a dead node,
// is written into Redis the way nginx writes it, with credentials minted
// like the API mints them.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
    IN_SESSION_DETAIL, addPatient, api, assertStatus, closeDb, createWorld,
    eventually, joinCredential, joinRoom, leaveRoom, login, loginAll,
    mintToken, newJti, now, patientLockKey, redis, roomKey, sleep,
} from './lib.mjs';

const ERR = { IN_SESSION: 476, BANNED: 477 };

let w;
const conns = [];

before(async () => {
    w = await createWorld('lifecycle');
    await loginAll([w.clinician]);
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

// A telehealth session of the clinician with a fresh patient (a login).
async function openTelehealth(label) {
    const patient = await addPatient(w, label);
    patient.token = await login(patient);
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'telehealth', patient_id: patient.id } });
    assertStatus(res, 201, `POST /sessions telehealth (${label})`);
    return { patient, session: res.body, room: res.body.room };
}

async function credentialFor(token, session) {
    const res = await joinCredential(token, session.id);
    assertStatus(res, 200, 'POST /sessions/{id}/join');
    return res.body.credential;
}

function joined(c, what) {
    const d = c.answer.data;
    assert.ok(d && d.error_code === undefined && d.telehealth === 'joined',
        `${what}: ${JSON.stringify(d)}`);
    return d;
}

function refused(c, code, what) {
    const d = c.answer.data;
    assert.equal(d?.error_code, code, `${what}: ${JSON.stringify(d)}`);
    return d;
}

async function chairRequest(conn, body) {
    const r = await conn.handle.message(body);
    assert.ok(r.data && r.data.error_code === undefined,
        `${body.request}: ${JSON.stringify(r.data)}`);
    assert.equal(r.data.telehealth, 'ok');
    return r.data;
}

async function hash(key) {
    const flat = (await redis('HGETALL', key)).split('\n');
    const h = {};
    for (let i = 0; i + 1 < flat.length; i += 2) {
        h[flat[i]] = flat[i + 1];
    }
    return h;
}

// A room hash as nginx writes it, for a session the API does not know.
async function writeRoom(fields) {
    const room = {
        id: `lc-${crypto.randomBytes(8).toString('hex')}`,
        session: crypto.randomUUID(),
        org: w.org.id,
        kind: fields.kind ?? 'telehealth',
    };
    await redis('HSET', roomKey(room.id), 'session', room.session,
        'org', room.org, 'kind', room.kind, 'state', 'open',
        'created_by', `staff:${w.clinician.id}`,
        'created_at', String(now()),
        ...Object.entries(fields).flat());
    return room;
}

// A join credential for room, signed as the API signs them.
function mint(room, sub, role, name = 'Test person') {
    const t = now();
    return mintToken({
        iss: 'telehealth', aud: 'janus.plugin.telehealth', sub, role, name,
        room: room.id, session: room.session, org: room.org,
        kind: room.kind, jti: newJti(), iat: t, exp: t + 120,
    });
}

// The event stream's entries about one room, oldest first, as objects.
async function streamOf(room) {
    const json = await redis('EVAL', `
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  if f.room == ARGV[1] then out[#out + 1] = f end
end
if #out == 0 then return '[]' end
return cjson.encode(out)`, '1', 'th:events', room);
    return JSON.parse(json);
}

describe('an open room never expires; its host holds a lease', () => {
    test('room and members have no TTL, lease_at advances, the heartbeat lapses within 10 s', async () => {
        const t = await openTelehealth('lease');
        joined(await join(await credentialFor(w.clinician.token,
            t.session)), 'chair join');
        joined(await join(await credentialFor(t.patient.token, t.session)),
            'patient join');

        assert.equal(await redis('TTL', roomKey(t.room)), '-1',
            'the room hash has no expiry');
        assert.equal(await redis('TTL', `${roomKey(t.room)}:members`), '-1',
            'the members hash has no expiry');
        assert.equal(await redis('TTL', patientLockKey(t.patient.id)), '-1',
            'the patient lock has no expiry');

        const first = await hash(roomKey(t.room));
        assert.ok(first.node, 'the room names its host');
        const lease = Number(first.lease_at);
        assert.ok(lease > Date.now() - 60000 && lease <= Date.now() + 1000,
            `lease_at is a recent Unix ms time (${first.lease_at})`);
        assert.equal(first.empty_since, undefined,
            'no empty_since while people are in');

        const renewed = await eventually(async () =>
            Number(await redis('HGET', roomKey(t.room), 'lease_at')) > lease,
        15000, 250);
        assert.ok(renewed, 'lease_at is renewed by the host');

        const ttl = Number(await redis('TTL', `th:node:${first.node}`));
        assert.ok(ttl > 0 && ttl <= 10,
            `the host's heartbeat lapses within 10 s unless renewed (${ttl})`);
    });
});

describe('the room\'s empty_timeout', () => {
    test('empty_timeout 2 closes the room "expired" once left empty; 0 keeps it open', async () => {
        const a = await openTelehealth('empty-2');
        const b = await openTelehealth('empty-0');
        await redis('HSET', roomKey(a.room), 'empty_timeout', '2');
        await redis('HSET', roomKey(b.room), 'empty_timeout', '0');
        const ca = await join(await credentialFor(w.clinician.token,
            a.session));
        joined(ca, 'chair joins the 2 s room');
        const cb = await join(await credentialFor(w.clinician.token,
            b.session));
        joined(cb, 'chair joins the never-expiring room');
        assert.equal(await redis('HEXISTS', roomKey(a.room), 'empty_since'),
            '0', 'empty_since is absent while someone is in');

        await leaveRoom(ca);
        await leaveRoom(cb);
        for (const r of [a.room, b.room]) {
            const since = Number(await redis('HGET', roomKey(r),
                'empty_since'));
            assert.ok(since > Date.now() - 60000,
                `empty_since is set when the last one leaves (${since})`);
        }

        const closed = await eventually(async () =>
            (await redis('HGET', roomKey(a.room), 'state')) === 'closed',
        15000, 250);
        assert.ok(closed, 'the room with empty_timeout 2 closed');
        assert.equal(await redis('HGET', roomKey(a.room), 'closed_reason'),
            'expired');
        assert.equal(await redis('HEXISTS', roomKey(a.room), 'empty_since'),
            '0', 'a closed room is not "empty since"');

        await sleep(3000);
        assert.equal(await redis('HGET', roomKey(b.room), 'state'), 'open',
            'the room with empty_timeout 0 stays open while empty');

        joined(await join(await credentialFor(w.clinician.token,
            b.session)), 'chair comes back');
        assert.equal(await redis('HEXISTS', roomKey(b.room), 'empty_since'),
            '0', 'a join clears empty_since');
    });
});

describe('a room closed elsewhere', () => {
    test('the people in it are told the closed_reason of the room hash', async () => {
        const room = await writeRoom({ kind: 'telehealth' });
        const c = await join(mint(room, `staff:${w.clinician.id}`, 'chair'));
        joined(c, 'chair join');
        const from = c.session.events.length;
        // What nginx's reconciler does to a room it ends.
        await redis('HSET', roomKey(room.id), 'state', 'closed',
            'closed_reason', 'node_lost', 'closed_at', String(Date.now()));
        const closed = await c.handle.waitData((d) => d.telehealth === 'closed',
            15000, from, 'a closed event');
        assert.equal(closed.reason, 'node_lost');
        await redis('DEL', roomKey(room.id), `${roomKey(room.id)}:members`);
    });
});

describe('the patient lock is taken at join', () => {
    test('a patient in a telehealth room joining a second room gets 476; leaving frees the lock', async () => {
        const t = await openTelehealth('lock');
        const pid = `patient:${t.patient.id}`;
        const inA = await join(await credentialFor(t.patient.token,
            t.session));
        joined(inA, 'patient joins room A');
        assert.equal(await redis('GET', patientLockKey(t.patient.id)),
            t.room, 'the lock names room A');

        const b = await writeRoom({ kind: 'telehealth' });
        const second = await join(mint(b, pid, 'broadcaster'));
        const d = refused(second, ERR.IN_SESSION, 'joining room B');
        assert.equal(d.error, IN_SESSION_DETAIL);
        assert.equal(await redis('HEXISTS', `${roomKey(b.id)}:members`, pid),
            '0', 'the refused join wrote no member');
        assert.equal(await redis('GET', patientLockKey(t.patient.id)),
            t.room, 'the lock still names room A');

        await leaveRoom(inA);
        assert.equal(await redis('EXISTS', patientLockKey(t.patient.id)), '0',
            'leaving gives the lock back');

        const inB = await join(mint(b, pid, 'broadcaster'));
        joined(inB, 'the patient joins room B now');
        assert.equal(await redis('GET', patientLockKey(t.patient.id)), b.id,
            'the lock names room B');
        await inB.session.destroy();
        const freed = await eventually(async () =>
            (await redis('EXISTS', patientLockKey(t.patient.id))) === '0',
        5000);
        assert.ok(freed, 'a hangup (connection lost) gives the lock back');
        await redis('DEL', roomKey(b.id), `${roomKey(b.id)}:members`);
    });

    test('a video_call patient keeps nginx\'s lock when they leave', async () => {
        const patient = await addPatient(w, 'vc-lock');
        patient.token = await login(patient);
        const res = await api('POST', '/sessions', { token: w.clinician.token,
            body: { kind: 'video_call', patient_id: patient.id } });
        assertStatus(res, 201, 'POST /sessions video_call');
        const c = await join(await credentialFor(patient.token, res.body));
        joined(c, 'patient joins the video_call');
        await leaveRoom(c);
        assert.equal(await redis('GET', patientLockKey(patient.id)),
            res.body.room, 'the lock stays for the session');
        assert.equal(await redis('TTL', patientLockKey(patient.id)), '-1',
            'and never expires while the room is open');
    });
});

describe('bans and demotions', () => {
    test('a removed participant\'s fresh credential is refused with 477 until the ban is lifted', async () => {
        const t = await openTelehealth('ban');
        const pid = `patient:${t.patient.id}`;
        const chair = await join(await credentialFor(w.clinician.token,
            t.session));
        joined(chair, 'chair join');
        const patient = await join(await credentialFor(t.patient.token,
            t.session));
        joined(patient, 'patient join');

        // a credential issued before the removal, never used: only the
        // plugin's ban set can refuse it (the API refuses new ones, 403)
        const fresh = await credentialFor(t.patient.token, t.session);
        await chairRequest(chair, { request: 'remove', participant: pid });
        // written behind the answer, in the room's order (docs/plugin.md,
        // "Threads and failures"): a join here waits for it, see below
        assert.ok(await eventually(async () => await redis('SISMEMBER',
            `th:session:${t.session.id}:banned`, pid) === '1', 5000),
        'the participant id is in the session\'s banned set');
        assert.equal(await redis('TTL', `th:session:${t.session.id}:banned`),
            '-1', 'a ban does not expire');
        assert.ok(await eventually(async () => await redis('EXISTS',
            patientLockKey(t.patient.id)) === '0', 5000),
        'removal gives the patient lock back');

        const again = await join(fresh);
        const d = refused(again, ERR.BANNED, 'a fresh credential');
        assert.equal(d.error, 'A chair removed you from this session.');

        // the chair lifts the ban (PostgreSQL and the ban set in Redis)
        assert.ok(await eventually(async () => (await api('DELETE',
            `/sessions/${t.session.id}/bans/${encodeURIComponent(pid)}`,
            { token: w.clinician.token })).status === 200),
        'the chair lifts the ban');
        assert.equal(await redis('SISMEMBER',
            `th:session:${t.session.id}:banned`, pid), '0');
        joined(await join(await credentialFor(t.patient.token, t.session)),
            'rejoin after the ban is lifted');
    });

    test('a demoted participant rejoins as viewer', async () => {
        const t = await openTelehealth('demote');
        const pid = `patient:${t.patient.id}`;
        const chair = await join(await credentialFor(w.clinician.token,
            t.session));
        joined(chair, 'chair join');
        const patient = await join(await credentialFor(t.patient.token,
            t.session));
        assert.equal(joined(patient, 'patient join').role, 'broadcaster');

        await chairRequest(chair, { request: 'set_role', participant: pid,
            role: 'viewer' });
        assert.equal(await redis('HGET', `th:session:${t.session.id}:roles`,
            pid), 'viewer', 'the role is kept for the session');

        await leaveRoom(patient);
        const back = await join(await credentialFor(t.patient.token,
            t.session));
        const d = joined(back, 'patient rejoins');
        assert.equal(d.role, 'viewer', 'the stored role wins over the '
            + 'credential\'s');
        const member = JSON.parse(await redis('HGET',
            `${roomKey(t.room)}:members`, pid));
        assert.equal(member.role, 'viewer', 'the member in Redis is a viewer');
        const pub = await back.handle.message({ request: 'publish' });
        assert.equal(pub.data?.error_code, 492, 'a viewer cannot publish');
    });
});

describe('admitted before the room ran', () => {
    test('a credential with admitted true skips the waiting room; one without waits', async () => {
        const room = await writeRoom({ kind: 'group',
            waiting_room: 'broadcaster,viewer' });
        const t = now();
        const claims = (sub, extra = {}) => ({
            iss: 'telehealth', aud: 'janus.plugin.telehealth', sub,
            role: 'broadcaster', name: 'Registrant', room: room.id,
            session: room.session, org: room.org, kind: room.kind,
            jti: newJti(), iat: t, exp: t + 120, ...extra });
        const admitted = await join(mintToken(claims(
            `guest:${crypto.randomUUID()}`, { admitted: true })));
        assert.equal(joined(admitted, 'admitted registrant').state, 'in');
        const other = await join(mintToken(claims(
            `guest:${crypto.randomUUID()}`)));
        assert.equal(joined(other, 'a link holder').state, 'waiting');
        await redis('DEL', roomKey(room.id), `${roomKey(room.id)}:members`);
    });
});

describe('chair actions on the event stream', () => {
    test('admit, turn_away, mute, role, remove and close each append chair.action with actor and target', async () => {
        const t = await openTelehealth('actions');
        const chairId = `staff:${w.clinician.id}`;
        const pid = `patient:${t.patient.id}`;
        await redis('HSET', roomKey(t.room), 'waiting_room', 'broadcaster');
        const chair = await join(await credentialFor(w.clinician.token,
            t.session));
        joined(chair, 'chair join');
        const patient = await join(await credentialFor(t.patient.token,
            t.session));
        assert.equal(joined(patient, 'patient join').state, 'waiting');
        const room = { id: t.room, session: t.session.id, org: w.org.id,
            kind: 'telehealth' };
        const guestId = `guest:${crypto.randomUUID()}`;
        const guest = await join(mint(room, guestId, 'broadcaster'));
        assert.equal(joined(guest, 'guest join').state, 'waiting');

        await chairRequest(chair, { request: 'admit', participant: pid });
        await chairRequest(chair, { request: 'turn_away',
            participant: guestId });
        await chairRequest(chair, { request: 'mute', participant: pid,
            audio: true });
        await chairRequest(chair, { request: 'set_role', participant: pid,
            role: 'viewer' });

        // The same action asked by nginx: actor "command".
        const node = await redis('HGET', roomKey(t.room), 'node');
        await redis('PUBLISH', `th:cmd:${node}`, JSON.stringify({
            command: 'mute', room: t.room, id: 'lc-mute',
            participant: pid, video: true }));
        const done = await eventually(async () => (await streamOf(t.room))
            .some((e) => e.type === 'command.result' && e.id === 'lc-mute'),
        5000);
        assert.ok(done, 'the mute command ran');

        await chairRequest(chair, { request: 'remove', participant: pid });
        await chairRequest(chair, { request: 'close' });

        const actions = await eventually(async () => {
            const a = (await streamOf(t.room))
                .filter((e) => e.type === 'chair.action');
            return a.some((e) => e.action === 'close') ? a : null;
        }, 5000);
        assert.ok(actions, 'a chair.action close reached the stream');
        const seen = actions.map((e) =>
            [e.action, e.actor, e.participant ?? null, e.role ?? null]);
        assert.deepEqual(seen, [
            ['admit', chairId, pid, null],
            ['turn_away', chairId, guestId, null],
            ['mute', chairId, pid, null],
            ['role', chairId, pid, 'viewer'],
            ['mute', 'command', pid, null],
            ['remove', chairId, pid, null],
            ['close', chairId, null, null],
        ]);
        for (const e of actions) {
            assert.equal(e.session, t.session.id, 'session of each entry');
            assert.equal(e.org, w.org.id, 'org of each entry');
            assert.ok(Number(e.ts) > 0, 'ts of each entry');
        }
        assert.equal(await redis('SISMEMBER',
            `th:session:${t.session.id}:banned`, guestId), '0',
        'turning away is not a ban');
    });
});

describe('taking over a room whose host died', () => {
    // A room hosted by a node without a heartbeat, with members it left.
    async function deadNodeRoom(kind, stalePatient) {
        const room = await writeRoom({ kind, node: `dead-${newJti()}`
            .replace(/[^A-Za-z0-9-]/g, ''), lease_at: String(Date.now()) });
        const member = JSON.stringify({ role: 'broadcaster', display: 'x',
            state: 'in' });
        await redis('HSET', `${roomKey(room.id)}:members`,
            `patient:${stalePatient}`, member,
            `staff:${w.clinician.id}`, JSON.stringify({ role: 'chair',
                display: 'y', state: 'in' }));
        await redis('SET', patientLockKey(stalePatient), room.id);
        return room;
    }

    test('stale members are reported node_lost and a stale patient\'s lock is given back', async () => {
        const stale = crypto.randomUUID();
        const room = await deadNodeRoom('telehealth', stale);
        const c = await join(mint(room, `staff:${w.clinician.id}`, 'chair'));
        const d = joined(c, 'join on a live node');
        assert.deepEqual(d.participants.map((p) => p.id),
            [`staff:${w.clinician.id}`], 'the stale members are gone');

        const left = await eventually(async () => {
            const l = (await streamOf(room.id))
                .filter((e) => e.type === 'participant.left');
            return l.length === 2 ? l : null;
        }, 5000);
        assert.ok(left, 'both stale members are reported as left');
        assert.deepEqual(left.map((e) => e.reason), ['node_lost',
            'node_lost']);
        assert.equal(await redis('EXISTS', patientLockKey(stale)), '0',
            'the stale patient\'s lock is given back');
        assert.notEqual(await redis('HGET', roomKey(room.id), 'node'),
            '', 'the room has a live host');
        await leaveRoom(c);
        await redis('DEL', roomKey(room.id), `${roomKey(room.id)}:members`);
    });

    test('members a node left before a restart with the same node_id are stale too', async () => {
        const nodes = (await redis('KEYS', 'th:node:*')).split('\n');
        assert.equal(nodes.length, 1, `one Janus in the stack (${nodes})`);
        const ours = nodes[0].slice('th:node:'.length);
        const stale = crypto.randomUUID();
        const room = await deadNodeRoom('telehealth', stale);
        await redis('HSET', roomKey(room.id), 'node', ours);
        const c = await join(mint(room, `staff:${w.clinician.id}`, 'chair'));
        const d = joined(c, 'join on the restarted node');
        assert.deepEqual(d.participants.map((p) => p.id),
            [`staff:${w.clinician.id}`], 'the members from before are gone');
        const left = await eventually(async () => (await streamOf(room.id))
            .filter((e) => e.type === 'participant.left'
                && e.reason === 'node_lost').length === 2, 5000);
        assert.ok(left, 'both are reported node_lost');
        assert.equal(await redis('EXISTS', patientLockKey(stale)), '0',
            'the stale patient\'s lock is given back');
        await leaveRoom(c);
        await redis('DEL', roomKey(room.id), `${roomKey(room.id)}:members`);
    });

    test('the stale patient who rejoins keeps the lock; a video_call\'s lock always stays', async () => {
        const back = crypto.randomUUID();
        const room = await deadNodeRoom('telehealth', back);
        joined(await join(mint(room, `patient:${back}`, 'broadcaster')),
            'the stale patient rejoins first');
        assert.equal(await redis('GET', patientLockKey(back)), room.id,
            'their lock still names the room');

        const vcPatient = crypto.randomUUID();
        const vc = await deadNodeRoom('video_call', vcPatient);
        joined(await join(mint(vc, `staff:${w.clinician.id}`, 'chair')),
            'the chair takes the video_call over');
        assert.equal(await redis('GET', patientLockKey(vcPatient)), vc.id,
            'the video_call\'s lock stays (nginx holds it)');
        await redis('DEL', patientLockKey(back), patientLockKey(vcPatient));
    });
});

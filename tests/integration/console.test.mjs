// The staff console's event stream (docs/api.md, "Console events"):
// GET /me/events as server-sent events.  Someone waiting rings the chair,
// joined, left, hung up and closed reach the staff on the session, people
// added to a session are told, nobody else hears anything, Last-Event-ID
// replays exactly what was missed, browsers use a single-use ticket, and
// streams end on logout, token expiry and a graceful nginx reload.
//
// "Receives nothing" is asserted without sleeping: after the events under
// test, the stream's owner is added to a fresh session, and the first
// event that arrives must be that `added`.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, addStaff, api, assertProblem, assertStatus, closeDb,
    createWorld,
    decodeJwt, env, eventually, joinAs, leaveRoom, login, loginAll,
    mintToken, newJti, nginxAnswers, now, sql, startNginx,
} from './lib.mjs';

const EVENTS_URL = `${env.api}/me/events`;

let w;
const streams = [];
const conns = [];

// One server-sent events response, parsed as it arrives.
class EventStream {
    static open(url, headers = {}) {
        return new Promise((resolve, reject) => {
            const req = http.get(url, { headers }, (res) => {
                const s = new EventStream(req, res);
                streams.push(s);
                resolve(s);
            });
            req.on('error', reject);
            req.setTimeout(20000, () => req.destroy(new Error('timeout')));
        });
    }

    constructor(req, res) {
        this.req = req;
        this.res = res;
        this.status = res.statusCode;
        this.headers = res.headers;
        this.localPort = res.socket.localPort;
        this.events = [];
        this.comments = 0;
        this.text = '';
        this.ended = false;
        this.error = null;
        this.waiters = [];
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
            this.text += chunk;
            buf += chunk;
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
                this.block(buf.slice(0, i));
                buf = buf.slice(i + 2);
            }
            this.wake();
        });
        res.on('end', () => {
            this.ended = true;
            this.wake();
        });
        res.on('error', (e) => {
            this.error = e;
            this.wake();
        });
        res.on('aborted', () => {
            this.error = new Error('aborted');
            this.wake();
        });
    }

    block(text) {
        const ev = { id: null, event: 'message', data: '' };
        let isEvent = false;
        for (const line of text.split('\n')) {
            if (line.startsWith(':')) {
                this.comments++;
                continue;
            }
            const k = line.indexOf(':');
            const field = k < 0 ? line : line.slice(0, k);
            const value = k < 0 ? '' : line.slice(k + 1).replace(/^ /, '');
            if (field === 'id') {
                ev.id = value;
                isEvent = true;
            } else if (field === 'event') {
                ev.event = value;
                isEvent = true;
            } else if (field === 'data') {
                ev.data += value;
                isEvent = true;
            }
        }
        if (isEvent && ev.data !== '') {
            ev.json = JSON.parse(ev.data);
            this.events.push(ev);
        }
    }

    wake() {
        const ws = this.waiters;
        this.waiters = [];
        ws.forEach((f) => f());
    }

    // The first event from index `from` on that matches; fails after
    // timeoutMs or when the stream ends without one.
    async next(match, from = 0, timeoutMs = 10000) {
        const end = Date.now() + timeoutMs;
        for (;;) {
            const i = this.events.findIndex((e, k) => k >= from && match(e));
            if (i >= 0) {
                return { ev: this.events[i], index: i };
            }
            if (this.ended || this.error || Date.now() > end) {
                assert.fail(`no matching event; got ${JSON.stringify(
                    this.events.map((e) => [e.id, e.event, e.json.kind]))}` +
                    ` ended=${this.ended} error=${this.error}`);
            }
            await new Promise((r) => {
                this.waiters.push(r);
                setTimeout(r, 200);
            });
        }
    }

    async until(cond, timeoutMs = 10000) {
        const end = Date.now() + timeoutMs;
        while (!cond(this) && Date.now() < end) {
            await new Promise((r) => {
                this.waiters.push(r);
                setTimeout(r, 200);
            });
        }
        return cond(this);
    }

    close() {
        this.req.destroy();
    }
}

// The state (/proc/net/tcp, hex) of the server side of a connection from
// clientPort to serverPort on 127.0.0.1, or null when there is none.
function serverSide(serverPort, clientPort) {
    const hex = (n) => n.toString(16).toUpperCase().padStart(4, '0');
    const line = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n')
        .find((l) => l.includes(`0100007F:${hex(serverPort)} ` +
            `0100007F:${hex(clientPort)} `));
    return line ? line.trim().split(/\s+/) : null;
}

const bearer = (token) => ({ authorization: `Bearer ${token}` });
const openAs = (person, extra = {}) =>
    EventStream.open(EVENTS_URL, { ...bearer(person.token), ...extra });
const kindIs = (kind, sessionId) => (e) =>
    e.event === kind && (!sessionId || e.json.session_id === sessionId);

// A session the admin creates with `staff` on it (POST /sessions): each of
// them gets `added`.
let marks = 0;
async function sessionWith(creator, staff, kind = 'meeting_room',
    extra = {}) {
    let patientId = extra.patient_id;
    if (!patientId) {
        const world = creator.orgId === w.other.org.id ? w.other : w;
        patientId = (await addPatient(world, `mark-${++marks}`)).id;
    }
    const res = await api('POST', '/sessions', { token: creator.token, body: {
        kind, ...extra, patient_id: patientId,
        participants: staff.map((s) => ({ type: 'staff', id: s.id,
            role: s.as ?? 'broadcaster' })),
    } });
    assertStatus(res, 201, `POST /sessions (${kind})`);
    return res.body;
}

// Asserts that nothing reached `stream` before a fresh `added` for its
// owner: the marker is the first event after index `from`.
async function assertNothingBefore(stream, owner, creator, from = 0) {
    const marker = await sessionWith(creator, [owner]);
    const { index } = await stream.next(kindIs('added', marker.id), from);
    assert.deepEqual(stream.events.slice(from, index), [],
        'no event before the marker');
}

async function join(token, sessionId) {
    const c = await joinAs(token, sessionId);
    conns.push(c);
    return c;
}

before(async () => {
    w = await createWorld('console');
    w.patient2 = await addPatient(w, 'console-2');
    w.patient3 = await addPatient(w, 'console-3');
    await loginAll([w.admin, w.coordinator, w.clinician, w.unassigned,
        w.patient, w.patient2, w.patient3, w.other.admin, w.other.clinician]);
    // a virtual_visit needs a service code that allows virtual visits
    const code = await api('POST', '/service-codes', { token: w.admin.token,
        body: { code: `VV-${w.tag.slice(-6)}`, name: 'Virtual visit',
            virtual_visits_allowed: true } });
    assertStatus(code, 201, 'the virtual visit service code');
    w.visitCode = code.body.code;
});

after(async () => {
    streams.forEach((s) => s.close());
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
    await closeDb();
});

describe('GET /me/events', () => {
    test('test_stream_is_server_sent_events_without_buffering', async () => {
        const s = await openAs(w.coordinator);
        assert.equal(s.status, 200);
        assert.match(s.headers['content-type'], /^text\/event-stream/);
        assert.equal(s.headers['x-accel-buffering'], 'no');
        assert.equal(s.headers['cache-control'], 'no-store');
        assert.ok(await s.until((x) => x.comments >= 2),
            'heartbeat comments arrive (1 s in the test stack)');
        s.close();
    });

    test('test_a_client_that_goes_away_is_closed_by_nginx', async () => {
        const s = await openAs(w.coordinator);
        const port = Number(new URL(env.base).port);
        assert.ok(serverSide(port, s.localPort), 'nginx holds the stream');
        s.close();
        // nginx closes its side too, instead of leaving it in CLOSE_WAIT
        assert.ok(await eventually(() => serverSide(port, s.localPort) === null,
            5000), `the server side is gone: ${serverSide(port, s.localPort)}`);
    });

    // a patient's stream carries the chat messages of their sessions
    // (tests/integration/chat.test.mjs); no token, no stream
    test('test_patient_token_gets_a_stream_and_no_token_401', async () => {
        const s = await openAs(w.patient);
        assert.equal(s.status, 200, 'patient GET /me/events');
        s.close();
        assertProblem(await api('GET', '/me/events'), 401, 'unauthorized',
            'no token');
        assertStatus(await api('POST', '/me/events/ticket',
            { token: w.patient.token }), 200,
        'patient POST /me/events/ticket');
    });

    test('test_staff_added_to_a_session_receives_added', async () => {
        const s = await openAs(w.clinician);
        const admin = await openAs(w.admin);
        const session = await sessionWith(w.admin,
            [{ id: w.clinician.id, as: 'viewer' }], 'meeting_room',
            { name: 'Case review' });
        const { ev } = await s.next(kindIs('added', session.id));
        assert.match(ev.id, /^\d+$/);
        assert.equal(ev.json.kind, 'added');
        assert.equal(ev.json.role, 'viewer');
        assert.equal(ev.json.message,
            'You have been added to the session "Case review".');
        assert.equal(ev.json.who.participant, `staff:${w.admin.id}`);
        // the creator is not told about the session they made
        await assertNothingBefore(admin, w.admin, w.coordinator);
        s.close();
        admin.close();
    });

    test('test_ring_joined_left_closed_reach_the_staff_on_the_session_only',
        async () => {
            const chair = await openAs(w.clinician);
            const member = await openAs(w.coordinator);
            const outsider = await openAs(w.unassigned);
            const foreign = await openAs(w.other.clinician);

            // consultation: the patient connects first and waits
            const session = await sessionWith(w.clinician,
                [{ id: w.coordinator.id }], 'consultation',
                { patient_id: w.patient2.id });
            await member.next(kindIs('added', session.id));

            const patient = await join(w.patient2.token, session.id);
            const patientId = `patient:${w.patient2.id}`;
            for (const s of [chair, member]) {
                const { ev } = await s.next(kindIs('waiting', session.id));
                assert.equal(ev.json.who.participant, patientId);
                assert.equal(ev.json.message,
                    'The patient is waiting to be admitted.');
            }

            const chairConn = await join(w.clinician.token, session.id);
            const { ev: joinedChair } = await member.next((e) =>
                e.event === 'joined'
                && e.json.who.participant === `staff:${w.clinician.id}`);
            assert.equal(joinedChair.json.who.name,
                `Clinician ${w.tag}`);

            await chairConn.handle.message({ request: 'admit',
                participant: patientId });
            for (const s of [chair, member]) {
                const { ev } = await s.next((e) => e.event === 'joined'
                    && e.json.who.participant === patientId);
                assert.equal(ev.json.message, 'The patient has joined.');
            }

            await leaveRoom(patient);
            for (const s of [chair, member]) {
                const { ev } = await s.next(kindIs('left', session.id));
                assert.equal(ev.json.who.participant, patientId);
                assert.equal(ev.json.message, 'The patient has left.');
            }

            assertStatus(await api('POST', `/sessions/${session.id}/close`,
                { token: w.clinician.token }), 202, 'close');
            for (const s of [chair, member]) {
                const { ev } = await s.next(kindIs('closed', session.id));
                assert.equal(ev.json.reason, 'closed_by_chair');
                assert.equal(ev.json.message,
                    'The session was closed by its chair.');
            }

            // the chair is not told that they joined themselves
            assert.ok(!chair.events.some((e) => e.event === 'joined'
                && e.json.who.participant === `staff:${w.clinician.id}`));

            // ids only grow on each stream
            const ids = chair.events.map((e) => Number(e.id));
            assert.deepEqual(ids, [...ids].sort((a, b) => a - b));

            await assertNothingBefore(outsider, w.unassigned, w.admin);
            await assertNothingBefore(foreign, w.other.clinician,
                w.other.admin);
        });

    test('test_staff_on_an_appointment_are_added_when_its_session_starts',
        async () => {
            const s = await openAs(w.coordinator);
            const patient = await addPatient(w, 'appointment');
            const appt = await api('POST', '/appointments', {
                token: w.clinician.token, body: { patient_id: patient.id,
                    scheduled_at: '2030-01-01T10:00:00Z', name: 'Follow-up',
                    participants: [{ type: 'staff', id: w.coordinator.id,
                        role: 'broadcaster' }] } });
            assertStatus(appt, 201, 'POST /appointments');
            const res = await api('POST',
                `/appointments/${appt.body.id}/session`,
                { token: w.clinician.token });
            assertStatus(res, 201, 'POST /appointments/{id}/session');
            const { ev } = await s.next(kindIs('added', res.body.id));
            assert.equal(ev.json.who.participant, `staff:${w.clinician.id}`);
            s.close();
        });

    test('test_virtual_visit_client_leaving_is_hung_up', async () => {
        const s = await openAs(w.clinician);
        const session = await sessionWith(w.clinician, [], 'virtual_visit',
            { patient_id: w.patient3.id, service_code: w.visitCode });
        await join(w.clinician.token, session.id);
        const patient = await join(w.patient3.token, session.id);
        await s.next((e) => e.event === 'joined'
            && e.json.who.participant === `patient:${w.patient3.id}`);
        await leaveRoom(patient);
        const { ev } = await s.next(kindIs('hung_up', session.id));
        assert.equal(ev.json.message, 'The client has hung up. If the session '
            + 'is not supposed to be over, please reach out to the client.');
        assert.equal(ev.json.who.participant, `patient:${w.patient3.id}`);
        assert.ok(!s.events.some((e) => e.event === 'left'
            && e.json.session_id === session.id),
        'a hang-up is not also a "left"');
        s.close();
    });

    test('test_last_event_id_replays_exactly_the_missed_events', async () => {
        const first = await openAs(w.coordinator);
        const a = await sessionWith(w.admin, [w.coordinator]);
        const { ev: seen } = await first.next(kindIs('added', a.id));
        first.close();

        const b = await sessionWith(w.admin, [w.coordinator]);
        const c = await sessionWith(w.admin, [w.coordinator]);

        const again = await openAs(w.coordinator,
            { 'last-event-id': seen.id });
        await again.next(kindIs('added', c.id));
        const d = await sessionWith(w.admin, [w.coordinator]);
        await again.next(kindIs('added', d.id));
        assert.deepEqual(again.events.map((e) => e.json.session_id),
            [b.id, c.id, d.id], 'the two missed events, then the live one');

        // the same with the query parameter a new EventSource can send
        const q = await EventStream.open(
            `${EVENTS_URL}?last_event_id=${seen.id}`, bearer(w.coordinator.token));
        await q.next(kindIs('added', d.id));
        assert.deepEqual(q.events.map((e) => e.json.session_id),
            [b.id, c.id, d.id]);
        again.close();
        q.close();

        const bad = await api('GET', '/me/events', { token: w.coordinator.token,
            headers: { 'last-event-id': 'abc' } });
        assertProblem(bad, 400, 'invalid-request', 'Last-Event-ID abc');
    });

    test('test_events_committed_while_the_listen_connection_is_down_arrive_after',
        async () => {
            const s = await openAs(w.clinician);
            const before = await sessionWith(w.admin, [w.clinician]);
            await s.next(kindIs('added', before.id));
            const listeners = `SELECT pid FROM pg_stat_activity
                WHERE query = 'LISTEN th_console'
                AND application_name = 'nginx-telehealth'`;
            const role = 'telehealth';
            // the worker cannot LISTEN again until the role may log in
            await sql(`ALTER ROLE ${role} NOLOGIN`);
            try {
                await sql(`SELECT pg_terminate_backend(pid) FROM (${listeners})
                    l`);
                assert.ok(await eventually(async () =>
                    (await sql(listeners)).length === 0),
                'the LISTEN connection is gone');
                // added by SQL, as any other path may: the trigger's event
                const session = await sessionWith(w.admin, []);
                await sql(`INSERT INTO session_participants
                    (session_id, staff_id, role)
                    VALUES ($1, $2, 'broadcaster')`,
                [session.id, w.clinician.id]);
                await sql(`ALTER ROLE ${role} LOGIN`);
                await s.next(kindIs('added', session.id), 1);
                assert.deepEqual(s.events.map((e) => e.json.session_id),
                    [before.id, session.id], 'once, after the reconnect');
            } finally {
                await sql(`ALTER ROLE ${role} LOGIN`);
            }
            s.close();
        });

    test('test_postgresql_unreachable_at_open_is_503_not_a_silent_stream',
        async () => {
            const role = 'telehealth';
            await sql(`ALTER ROLE ${role} NOLOGIN`);
            try {
                await sql(`SELECT pg_terminate_backend(pid)
                    FROM pg_stat_activity
                    WHERE application_name = 'nginx-telehealth'`);
                // (a stream that still opens never ends: give up on it)
                const res = await eventually(async () => {
                    const r = await api('GET', '/me/events',
                        { token: w.coordinator.token, timeoutMs: 2000 })
                        .catch(() => null);
                    return r?.status === 503 ? r : null;
                }, 10000);
                assert.ok(res, 'GET /me/events answers 503');
                assertProblem(res, 503, 'service-unavailable',
                    'PostgreSQL down');
            } finally {
                await sql(`ALTER ROLE ${role} LOGIN`);
            }
            // a connection the server ended may still take one query (503)
            const s = await eventually(async () => {
                const t = await openAs(w.coordinator);
                if (t.status === 200) {
                    return t;
                }
                t.close();
                return null;
            }, 10000);
            assert.ok(s, 'streams open again once PostgreSQL is back');
            s.close();
        });

    test('test_ticket_opens_one_stream_once', async () => {
        const res = await api('POST', '/me/events/ticket',
            { token: w.clinician.token });
        assertStatus(res, 200, 'POST /me/events/ticket');
        assert.match(res.body.ticket, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(res.body.expires_in, 30);

        const url = `${EVENTS_URL}?ticket=${res.body.ticket}`;
        const s = await EventStream.open(url);
        assert.equal(s.status, 200);
        const session = await sessionWith(w.admin, [w.clinician]);
        await s.next(kindIs('added', session.id));
        s.close();

        assertProblem(await api('GET', url), 401, 'unauthorized',
            'the same ticket a second time');
        assertProblem(await api('GET', `/me/events?ticket=${'A'.repeat(43)}`),
            401, 'unauthorized', 'an unknown ticket');
    });

    test('test_logout_ends_the_stream', async () => {
        const token = await login(w.supervisor);
        const s = await EventStream.open(EVENTS_URL, bearer(token));
        assert.equal(s.status, 200);
        assertStatus(await api('POST', '/auth/logout', { token }), 204);
        assert.ok(await s.until((x) => x.ended), 'the stream ends');
        assert.equal(s.error, null, 'cleanly');
        assert.deepEqual(s.events.at(-1).json, { reason: 'revoked' });
    });

    test('test_deactivation_ends_the_stream', async () => {
        const p = await addStaff(w, 'clinician', 'console-leaver');
        const token = await login(p);
        const s = await EventStream.open(EVENTS_URL, bearer(token));
        assert.equal(s.status, 200);
        assertStatus(await api('DELETE', `/staff/${p.id}`,
            { token: w.admin.token }), 200, 'deactivate');
        assert.ok(await s.until((x) => x.ended), 'the stream ends');
        assert.equal(s.error, null, 'cleanly');
        assert.deepEqual(s.events.at(-1).json, { reason: 'revoked' });
    });

    test('test_token_expiry_ends_the_stream', async () => {
        const { claims } = decodeJwt(w.supervisor.token
            ?? await login(w.supervisor));
        const token = mintToken({ ...claims, jti: newJti(), iat: now(),
            exp: now() + 2 });
        const s = await EventStream.open(EVENTS_URL, bearer(token));
        assert.equal(s.status, 200);
        assert.ok(await s.until((x) => x.ended), 'the stream ends');
        assert.equal(s.error, null, 'cleanly');
        assert.equal(s.events.at(-1).event, 'end');
        assert.deepEqual(s.events.at(-1).json, { reason: 'expired' });
    });
});

// A second nginx with two workers and SO_REUSEPORT, so that streams land
// on both workers; the events are produced through the first nginx.
describe('two workers', () => {
    let nginx;
    const port = Number(process.env.TH_NGINX2_PORT || 61081);

    const aged = {};

    before(async () => {
        // rows for the retention test: the first worker of a starting
        // nginx deletes what is older than telehealth_console_retention
        const session = await sessionWith(w.admin, []);
        for (const [name, age] of [['old', '25 hours'], ['recent', '1 hour']]) {
            const [row] = await sql(`INSERT INTO console_events
                (org_id, recipient_id, session_id, type, data, created_at)
                VALUES ($1, $2, $3, 'closed', '{}', now() - $4::interval)
                RETURNING id`, [w.org.id, w.unassigned.id, session.id, age]);
            aged[name] = row.id;
        }
        nginx = await startNginx(port, (conf) => conf
            .replace(/worker_processes\s+\d+;/, 'worker_processes 2;')
            .replace(/telehealth_events\s+on;/, 'telehealth_events off;')
            .replace(`listen 127.0.0.1:${port};`,
                `listen 127.0.0.1:${port} reuseport;`));
    });

    after(() => nginx?.stop());

    const alive = (pid) => {
        try {
            process.kill(pid, 0);
            return true;
        } catch {
            return false;
        }
    };

    const workers = (master) => fs.readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
            try {
                const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
                return Number(stat.slice(stat.lastIndexOf(')') + 2)
                    .split(' ')[1]) === master;
            } catch {
                return false;
            }
        }).map(Number);

    // the worker whose socket is the server side of a client port
    function workerOf(clientPort, pids) {
        const inode = serverSide(port, clientPort)?.[9];
        if (!inode) {
            return null;
        }
        return pids.find((pid) => {
            try {
                return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
                    try {
                        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) ===
                            `socket:[${inode}]`;
                    } catch {
                        return false;
                    }
                });
            } catch {
                return false;
            }
        }) ?? null;
    }

    test('test_events_older_than_the_retention_are_deleted', async () => {
        const left = async () => (await sql(
            'SELECT id FROM console_events WHERE id = ANY($1) ORDER BY id',
            [[aged.old, aged.recent]])).map((r) => r.id);
        assert.ok(await eventually(async () => (await left()).length === 1,
            10000), 'the old event is deleted');
        assert.deepEqual(await left(), [aged.recent], 'the recent one stays');
    });

    test('test_an_event_reaches_streams_on_every_worker_and_reload_ends_them',
        async () => {
            const url = `http://127.0.0.1:${port}/api/v1/me/events`;
            assert.ok(await nginxAnswers(`http://127.0.0.1:${port}`),
                'the two-worker nginx answers');
            const master = nginx.pid;
            const pids = workers(master);
            assert.equal(pids.length, 2, 'two workers');

            const held = new Map();
            const mine = [];
            for (let i = 0; i < 40 && held.size < 2; i++) {
                const s = await EventStream.open(url,
                    bearer(w.coordinator.token));
                assert.equal(s.status, 200);
                mine.push(s);
                const pid = await eventually(
                    () => workerOf(s.localPort, pids), 2000);
                if (pid) {
                    held.set(pid, true);
                }
            }
            assert.equal(held.size, 2, 'streams are held by both workers');

            const session = await sessionWith(w.admin, [w.coordinator]);
            for (const s of mine) {
                await s.next(kindIs('added', session.id));
            }

            // a graceful reload: old workers end their streams and exit
            process.kill(master, 'SIGHUP');
            for (const s of mine) {
                assert.ok(await s.until((x) => x.ended), 'the stream ends');
                assert.equal(s.error, null, 'cleanly');
                assert.deepEqual(s.events.at(-1).json,
                    { reason: 'shutdown' });
            }
            assert.ok(await eventually(() => pids.every((p) => !alive(p)),
                10000), 'the old workers exit');
            const log = fs.readFileSync(
                path.join(nginx.dir, 'logs', 'error.log'), 'utf8');
            assert.doesNotMatch(log, /\[(alert|crit|emerg)\]/,
                'no open socket left behind, no crash');
        });
});

// Every heartbeat checks the stream's token in Redis.  Nothing of that
// check may stay in the stream's memory until it ends, or a console open
// all day grows with every heartbeat (the command's pool cleanup, 24 bytes
// a heartbeat, stayed in the request's pool).  A second nginx beats every
// 5 ms, so that thousands of heartbeats are seen within seconds.
describe('heartbeats', () => {
    let nginx;
    const port = Number(process.env.TH_NGINX2_PORT || 61081);

    before(async () => {
        nginx = await startNginx(port, (conf) => conf
            .replace(/telehealth_events\s+on;/, 'telehealth_events off;')
            .replace(/telehealth_console_heartbeat\s+\S+;/,
                'telehealth_console_heartbeat 5ms;'));
    });

    after(() => nginx?.stop());

    const rss = (pid) => Number(fs.readFileSync(`/proc/${pid}/smaps_rollup`,
        'utf8').match(/^Rss:\s+(\d+) kB/m)[1]) * 1024;

    // AddressSanitizer (make asan) keeps freed memory in quarantine: there
    // the worker grows with every malloc() and free() whatever the module
    // keeps, so the figure says nothing
    const sanitized = process.env.TH_SANITIZE
        ? 'on purpose: AddressSanitizer\'s quarantine grows the worker'
        : false;

    test('test_heartbeats_leave_nothing_in_the_streams_memory',
        { skip: sanitized }, async () => {
        const [worker] = fs.readFileSync(
            `/proc/${nginx.pid}/task/${nginx.pid}/children`, 'utf8')
            .trim().split(/\s+/).map(Number);
        assert.ok(worker > 0, 'the worker of the second nginx');

        // the per-person cap of the test stack: 8 streams on a worker; the
        // first once the new worker has its PostgreSQL connections (503
        // until then)
        const open = () => EventStream.open(
            `http://127.0.0.1:${port}/api/v1/me/events`,
            bearer(w.coordinator.token));
        const first = await eventually(async () => {
            const s = await open();
            if (s.status !== 200) {
                s.close();
                return null;
            }
            return s;
        }, 10000, 200);
        assert.ok(first, 'the second nginx opens a stream');
        const mine = [first];
        for (let i = 1; i < 8; i++) {
            const s = await open();
            assert.equal(s.status, 200);
            mine.push(s);
        }
        const beats = () => mine.reduce((n, s) => n + s.comments, 0);

        // warm: the streams' buffers and the Redis connection settle
        assert.ok(await eventually(() => beats() >= 1600, 20000),
            'heartbeats arrive');
        const start = { rss: rss(worker), beats: beats() };
        assert.ok(await eventually(() => beats() >= start.beats + 8000,
            60000), `8000 more heartbeats (${beats() - start.beats})`);
        const grown = rss(worker) - start.rss;
        const n = beats() - start.beats;

        assert.ok(mine.every((s) => !s.ended && s.error === null),
            'every stream is still open');
        assert.ok(grown < n * 8,
            `the worker grew by ${grown} bytes over ${n} heartbeats ` +
            `(${(grown / n).toFixed(1)} a heartbeat)`);
        mine.forEach((s) => s.close());
    });
});

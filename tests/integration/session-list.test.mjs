// "My sessions" (docs/api.md, GET /sessions): what each staff member and
// patient sees, the filters a console needs, cursor pagination in a
// stable order, and the audit rows of refused POST /sessions.
//
// Sessions are made through the API; their times and states are then set
// in PostgreSQL (a session of last month, one that ended yesterday) so
// the filters have something to tell apart without waiting.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    loginAll, redis, roomKey, sql, startSession,
} from './lib.mjs';

let w;
const mine = {};        // the clinician's sessions by label

async function start(token, patient, body = {}) {
    const res = await api('POST', '/sessions', { token,
        body: { kind: 'telehealth', patient_id: patient.id, ...body } });
    assertStatus(res, 201, 'POST /sessions');
    return res.body;
}

const ids = (res) => res.body.items.map((s) => s.id);

before(async () => {
    w = await createWorld('slist');
    await loginAll([w.admin, w.supervisor, w.coordinator, w.clinician,
        w.unassigned, w.patient, w.other.admin]);
    // the clinician is on four sessions: two open, one ended yesterday,
    // one that ended a month ago; the admin has one the clinician is not on
    const p = [];
    for (let i = 0; i < 4; i++) {
        p.push(await addPatient(w, `sl${i}`));
    }
    mine.open1 = await start(w.clinician.token, p[0]);
    mine.open2 = await start(w.clinician.token, p[1],
        { kind: 'meeting_room', scheduled_at: '2030-01-02T10:00:00Z' });
    mine.ended = await start(w.clinician.token, p[2]);
    mine.old = await start(w.clinician.token, p[3]);
    mine.admins = await start(w.admin.token, await addPatient(w, 'sla'));
    // created_at has second precision: spread them out
    for (const [s, h] of [[mine.open1, 3], [mine.open2, 2], [mine.ended, 1]]) {
        await sql(`UPDATE sessions SET created_at = now() - $2 * interval
                   '1 hour' WHERE id = $1`, [s.id, h]);
    }
    await sql(`UPDATE sessions SET state = 'ended',
                  ended_at = now() - interval '1 day' WHERE id = $1`,
    [mine.ended.id]);
    await sql(`UPDATE sessions SET state = 'ended',
                  created_at = now() - interval '40 days',
                  ended_at = now() - interval '30 days' WHERE id = $1`,
    [mine.old.id]);
});

after(closeDb);

describe('GET /sessions: whose sessions', () => {
    test('test_staff_sees_sessions_they_are_on_newest_first', async () => {
        const res = await api('GET', '/sessions', { token: w.clinician.token });
        assertStatus(res, 200);
        assert.deepEqual(ids(res),
            [mine.ended.id, mine.open2.id, mine.open1.id],
            'open and recently ended, newest first; not the admin\'s');
        assert.equal(res.body.next_cursor, null);
    });

    test('test_session_ended_before_the_window_is_left_out_unless_asked', async () => {
        const res = await api('GET', '/sessions?state=ended&ended_since=' +
            encodeURIComponent(new Date(Date.now() - 60 * 86400e3)
                .toISOString()), { token: w.clinician.token });
        assertStatus(res, 200);
        assert.deepEqual(ids(res), [mine.ended.id, mine.old.id]);
    });

    test('test_mine_false_lists_the_organisation_for_org_wide_roles', async () => {
        const res = await api('GET', '/sessions?mine=false&limit=200',
            { token: w.supervisor.token });
        assertStatus(res, 200);
        for (const s of [mine.open1, mine.open2, mine.admins]) {
            assert.ok(ids(res).includes(s.id), s.id);
        }
        const none = await api('GET', '/sessions',
            { token: w.supervisor.token });
        assert.deepEqual(ids(none), [], 'by default only their own');
    });

    test('test_mine_false_is_refused_to_a_clinician: 403', async () => {
        assertProblem(await api('GET', '/sessions?mine=false',
            { token: w.clinician.token }), 403, 'forbidden');
    });

    test('test_other_organisation_sees_none_of_them', async () => {
        const res = await api('GET', '/sessions?mine=false&limit=200',
            { token: w.other.admin.token });
        assertStatus(res, 200);
        for (const s of Object.values(mine)) {
            assert.ok(!res.text.includes(s.id));
        }
    });
});

describe('GET /sessions: filters', () => {
    test('test_state_filter_takes_a_list', async () => {
        const open = await api('GET', '/sessions?state=open',
            { token: w.clinician.token });
        assert.deepEqual(ids(open), [mine.open2.id, mine.open1.id]);
        const both = await api('GET', '/sessions?state=scheduled,ended',
            { token: w.clinician.token });
        assert.deepEqual(ids(both), [mine.ended.id]);
    });

    test('test_patient_and_kind_filters', async () => {
        const byPatient = await api('GET',
            `/sessions?patient_id=${mine.open1.patient_id}`,
            { token: w.clinician.token });
        assert.deepEqual(ids(byPatient), [mine.open1.id]);
        const byKind = await api('GET', '/sessions?kind=meeting_room',
            { token: w.clinician.token });
        assert.deepEqual(ids(byKind), [mine.open2.id]);
    });

    test('test_time_window_uses_the_scheduled_time_else_creation', async () => {
        const later = await api('GET',
            '/sessions?from=2030-01-01T00:00:00Z&to=2030-01-03T00:00:00Z',
            { token: w.clinician.token });
        assertStatus(later, 200);
        assert.deepEqual(ids(later), [mine.open2.id]);
        const today = await api('GET', '/sessions?from=' +
            encodeURIComponent(new Date(Date.now() - 4 * 3600e3).toISOString()) +
            '&to=2029-01-01T00:00:00Z', { token: w.clinician.token });
        assert.deepEqual(ids(today), [mine.ended.id, mine.open1.id]);
    });

    for (const [query, what] of [
        ['state=closed', 'state'], ['state=', 'state'],
        ['patient_id=nope', 'patient_id'], ['kind=party', 'kind'],
        ['mine=maybe', 'mine'], ['from=yesterday', 'from'],
        ['to=2026-13-45T00:00:00Z', 'to'],
        ['from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z', 'to'],
        ['limit=0', 'limit'], ['cursor=xyz', 'cursor'],
    ]) {
        test(`test_bad_${what}_is_422: ?${query}`, async () => {
            const res = await api('GET', `/sessions?${query}`,
                { token: w.clinician.token });
            assertProblem(res, 422, 'validation', query);
            assert.match(res.body.detail, new RegExp(`"${what}"`));
        });
    }
});

describe('GET /sessions: pagination', () => {
    test('test_pages_follow_the_cursor_without_gaps_or_repeats', async () => {
        const seen = [];
        let cursor = null;
        let pages = 0;
        do {
            const res = await api('GET', '/sessions?limit=1' +
                (cursor ? `&cursor=${cursor}` : ''),
            { token: w.clinician.token });
            assertStatus(res, 200);
            assert.ok(res.body.items.length <= 1);
            seen.push(...ids(res));
            cursor = res.body.next_cursor;
            pages++;
        } while (cursor && pages < 10);
        assert.deepEqual(seen, [mine.ended.id, mine.open2.id, mine.open1.id]);
    });

    test('test_patient_sees_only_their_open_session', async () => {
        const s = await start(w.clinician.token, w.patient);
        const res = await api('GET', '/sessions', { token: w.patient.token });
        assertStatus(res, 200);
        assert.deepEqual(ids(res), [s.id]);
        assert.equal(res.body.next_cursor, null);
        assert.equal(res.body.open_only, undefined, 'no internal field');
        // a room that is gone from Redis is not shown
        await redis('DEL', roomKey(s.room));
        const gone = await api('GET', '/sessions', { token: w.patient.token });
        assertStatus(gone, 200);
        assert.deepEqual(ids(gone), []);
        assertProblem(await api('GET', '/sessions?mine=false',
            { token: w.patient.token }), 403, 'forbidden');
    });
});

describe('refused POST /sessions leaves an audit row', () => {
    const cases = [
        ['patient', () => w.patient, () => ({ kind: 'video_call',
            patient_id: w.patient.id }), 403, 'denied'],
        ['unassigned clinician', () => w.unassigned, () => ({
            kind: 'video_call', patient_id: w.patient.id }), 403, 'denied'],
        ['unknown patient', () => w.clinician, () => ({ kind: 'video_call',
            patient_id: w.other.patient.id }), 404, 'not_found'],
        ['bad kind', () => w.clinician, () => ({ kind: 'party',
            patient_id: w.patient.id }), 422, 'invalid'],
        ['missing patient', () => w.clinician, () => ({
            kind: 'video_call' }), 422, 'invalid'],
    ];
    for (const [what, who, body, status, outcome] of cases) {
        test(`test_refused_start_is_audited: ${what} ${status}`, async () => {
            const actor = who();
            const b = body();
            const res = await api('POST', '/sessions',
                { token: actor.token, body: b });
            assert.equal(res.status, status, res.text);
            const rows = await sql(`SELECT actor_type, target_type,
                    target_id, outcome, status, client_addr
                FROM audit_log WHERE actor_id = $1
                  AND action = 'session_create' ORDER BY id DESC LIMIT 1`,
            [actor.id]);
            assert.equal(rows.length, 1, 'an audit row');
            assert.deepEqual(rows[0], {
                actor_type: actor.type, target_type: 'patient',
                target_id: b.patient_id ?? null, outcome, status,
                client_addr: '127.0.0.1',
            });
        });
    }

    test('test_patient_in_session_409_is_audited', async () => {
        const patient = await addPatient(w, 'sl409');
        assertStatus(await startSession(w.clinician.token, patient.id), 201);
        const res = await startSession(w.admin.token, patient.id);
        assertProblem(res, 409, 'patient-in-session');
        const rows = await sql(`SELECT outcome, status FROM audit_log
            WHERE actor_id = $1 AND action = 'session_create'
              AND target_id = $2`, [w.admin.id, patient.id]);
        assert.deepEqual(rows, [{ outcome: 'conflict', status: 409 }]);
    });
});

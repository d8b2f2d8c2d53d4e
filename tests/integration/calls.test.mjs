// Call history (docs/features.md 32, docs/api.md "Call history"): each staff member
// sees only the calls they took part in with the patient; a clinician who
// is unassigned loses sight of them and regains it on reassignment; the
// org-wide roles are not affected by assignment.  Most calls here are
// fixtures written the way the event consumer writes them; one is a real
// call through the plugin.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    eventually, joinAs, leaveRoom, loginAll, sql, startSession,
} from './lib.mjs';

let w;
let p;          // the patient whose history is read
const calls = {};

// A session about patient with a closed call in which `who` took part.
async function fixtureCall(patient, creator, who, minutesAgo) {
    const room = crypto.randomBytes(16).toString('base64url');
    const [s] = await sql(`INSERT INTO sessions (org_id, kind, state,
        patient_id, created_by, room, ended_at)
        VALUES ($1, 'video_call', 'ended', $2, $3, $4, now())
        RETURNING id`, [w.org.id, patient.id, creator.id, room]);
    const [c] = await sql(`INSERT INTO calls (org_id, session_id, room,
        started_at, ended_at, end_reason)
        VALUES ($1, $2, $3, now() - make_interval(mins => $4),
                now() - make_interval(mins => $4) + interval '10 minutes',
                'chair_left') RETURNING id`,
    [w.org.id, s.id, room, minutesAgo]);
    for (const person of [...who, patient]) {
        await sql(`INSERT INTO call_participants (call_id, participant, role,
            joined_at, left_at, left_reason)
            VALUES ($1, $2, $3, now() - make_interval(mins => $4),
                    now() - make_interval(mins => $4) + interval '9 minutes',
                    'leave')`,
        [c.id, `${person.type}:${person.id}`,
            person.type === 'staff' ? 'chair' : 'broadcaster', minutesAgo]);
    }
    return c.id;
}

async function history(person, patient = p) {
    return api('GET', `/patients/${patient.id}/calls`, { token: person.token });
}

const idsOf = (res) => res.body.items.map((c) => c.id);

before(async () => {
    w = await createWorld('calls');
    await loginAll([w.admin, w.supervisor, w.coordinator, w.clinician,
        w.unassigned, w.patient, w.other.admin]);
    p = await addPatient(w, 'history');            // assigned to clinician
    const q = await addPatient(w, 'elsewhere');
    calls.clinician = await fixtureCall(p, w.clinician, [w.clinician], 60);
    calls.clinicianOld = await fixtureCall(p, w.clinician, [w.clinician], 600);
    calls.admin = await fixtureCall(p, w.admin, [w.admin], 30);
    calls.coordinator = await fixtureCall(p, w.coordinator, [w.coordinator],
        20);
    calls.both = await fixtureCall(p, w.admin, [w.admin, w.clinician], 10);
    calls.otherPatient = await fixtureCall(q, w.clinician, [w.clinician], 5);
});

after(closeDb);

describe('who sees which calls of a patient', () => {
    test('test_clinician_sees_only_calls_they_took_part_in', async () => {
        const res = await history(w.clinician);
        assertStatus(res, 200);
        assert.deepEqual(idsOf(res),
            [calls.both, calls.clinician, calls.clinicianOld],
            'own calls with this patient, newest first');
        const c = res.body.items[0];
        assert.equal(c.kind, 'video_call');
        assert.equal(c.end_reason, 'chair_left');
        assert.equal(c.duration_seconds, 600);
        assert.match(c.started_at, /Z$/);
        assert.deepEqual(c.participants.map((x) => x.participant).sort(), [
            `patient:${p.id}`, `staff:${w.admin.id}`,
            `staff:${w.clinician.id}`].sort());
    });

    test('test_org_wide_roles_see_only_their_own_calls_too', async () => {
        assert.deepEqual(idsOf(await history(w.admin)),
            [calls.both, calls.admin]);
        assert.deepEqual(idsOf(await history(w.coordinator)),
            [calls.coordinator], 'coordinator, never assigned');
        assert.deepEqual(idsOf(await history(w.supervisor)), [],
            'supervisor took part in none');
    });

    test('test_history_paginates', async () => {
        const first = await api('GET', `/patients/${p.id}/calls?limit=2`,
            { token: w.clinician.token });
        assert.deepEqual(idsOf(first), [calls.both, calls.clinician]);
        assert.ok(first.body.next_cursor);
        const second = await api('GET', `/patients/${p.id}/calls?limit=2` +
            `&cursor=${first.body.next_cursor}`, { token: w.clinician.token });
        assert.deepEqual(idsOf(second), [calls.clinicianOld]);
        assert.equal(second.body.next_cursor, null);
    });

    test('test_unassigned_clinician_loses_sight_and_regains_it_on_reassignment', async () => {
        const route = `/patients/${p.id}/assignments`;
        const end = await api('DELETE', `${route}/${w.clinician.id}`,
            { token: w.coordinator.token });
        assertStatus(end, 200, 'unassign');
        assertProblem(await history(w.clinician), 403, 'forbidden',
            'history after unassignment');
        assert.deepEqual(idsOf(await history(w.admin)),
            [calls.both, calls.admin], 'admin is not affected');

        assertStatus(await api('POST', route, { token: w.coordinator.token,
            body: { staff_id: w.clinician.id } }), 201, 'reassign');
        assert.deepEqual(idsOf(await history(w.clinician)),
            [calls.both, calls.clinician, calls.clinicianOld],
            'the same calls again');
    });

    test('test_never_assigned_clinician_and_patient_and_other_org_see_nothing', async () => {
        assertProblem(await history(w.unassigned), 403, 'forbidden');
        assertProblem(await history(w.patient), 403, 'forbidden');
        const other = await history(w.other.admin);
        assertProblem(other, 404, 'not-found');
        assert.ok(!other.text.includes(calls.both));
    });
});

describe('a real call through the plugin', () => {
    test('test_call_written_from_the_event_stream_shows_in_history', async () => {
        const patient = await addPatient(w, 'real-call');
        await loginAll([patient]);
        const s = await startSession(w.clinician.token, patient.id);
        assertStatus(s, 201);
        const staff = await joinAs(w.clinician.token, s.body.id);
        const pat = await joinAs(patient.token, s.body.id);
        try {
            await leaveRoom(staff);
        } finally {
            await staff.session.destroy();
            await pat.session.destroy();
        }
        const seen = await eventually(async () => {
            const res = await history(w.clinician, patient);
            return res.status === 200 && res.body.items.length === 1 &&
                res.body.items[0].ended_at ? res.body.items[0] : null;
        }, 8000, 200);
        assert.ok(seen, 'the ended call appears in the clinician\'s history');
        assert.equal(seen.session_id, s.body.id);
        assert.deepEqual(seen.participants.map((x) => x.participant).sort(),
            [`patient:${patient.id}`, `staff:${w.clinician.id}`].sort());
        assert.deepEqual(idsOf(await history(w.admin, patient)), [],
            'the admin was not in it');
    });
});

// Engagement records (docs/features.md 28, docs/api.md "Engagements"):
// staff start them during a call for the session's patient; they are
// listed per patient by the call history's rules; patients and guests
// never see or start them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, addStaff, api, assertProblem, assertStatus, assign, closeDb,
    createWorld, eventually, joinAs, loginAll, sql,
} from './lib.mjs';

let w;
let patient;
let colleague;
let session;
let guestToken;
const conns = [];

before(async () => {
    w = await createWorld('engage');
    patient = await addPatient(w, 'engage');
    colleague = await addStaff(w, 'clinician', 'colleague');
    await assign(colleague, patient);
    await loginAll([w.clinician, w.unassigned, w.supervisor, w.other.admin,
        patient, colleague]);
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'telehealth', patient_id: patient.id } });
    assertStatus(res, 201);
    session = res.body;
    conns.push(await joinAs(w.clinician.token, session.id));
    conns.push(await joinAs(patient.token, session.id));
    const inv = await api('POST', `/sessions/${session.id}/invites`, {
        token: w.clinician.token,
        body: { invitee: { display_name: 'Cousin' } } });
    assertStatus(inv, 201);
    const red = await api('POST', '/invites/redeem', {
        body: { token: inv.body.token, display_name: 'Cousin' } });
    assertStatus(red, 200);
    guestToken = red.body.credential;
});

after(async () => {
    for (const c of conns) {
        await c.session.destroy().catch(() => {});
    }
    await closeDb();
});

const start = (token, body, id = session.id) =>
    api('POST', `/sessions/${id}/engagements`, { token, body });
const list = (token, query = '') =>
    api('GET', `/patients/${patient.id}/engagements${query}`, { token });

describe('starting an engagement', () => {
    test('test_staff_in_the_call_start_each_kind', async () => {
        const kinds = ['brief_check_in', 'follow_up', 'care_coordination',
            'discharge'];
        for (const kind of kinds) {
            const res = await start(w.clinician.token,
                { kind, note: kind === 'discharge' ? 'Überweisung ✓' : null });
            assertStatus(res, 201, kind);
            assert.equal(res.body.kind, kind);
            assert.equal(res.body.patient_id, patient.id);
            assert.equal(res.body.session_id, session.id);
            assert.equal(res.body.staff_id, w.clinician.id);
            assert.ok(res.body.created_at);
        }
        const audit = await sql("SELECT count(*)::int AS n FROM audit_log " +
            "WHERE action = 'engagement_create' AND target_id = $1 AND " +
            'status = 201', [session.id]);
        assert.equal(audit[0].n, 4, 'each start is audited');
    });

    test('test_bad_kinds_and_notes_are_422', async () => {
        assertProblem(await start(w.clinician.token, { kind: 'lunch' }),
            422, 'validation');
        assertProblem(await start(w.clinician.token, {}), 422, 'validation');
        assertProblem(await start(w.clinician.token,
            { kind: 'follow_up', note: 'x'.repeat(2001) }), 422,
        'validation');
    });

    test('test_patients_and_guests_cannot_start_one', async () => {
        assertProblem(await start(patient.token, { kind: 'follow_up' }), 403,
            'forbidden', 'the patient');
        assertProblem(await start(guestToken, { kind: 'follow_up' }), 401,
            'unauthorized', 'a guest has no API token');
        assertProblem(await start(w.unassigned.token, { kind: 'follow_up' }),
            404, 'not-found', 'staff not on the session');
        assertProblem(await start(w.other.admin.token, { kind: 'follow_up' }),
            404, 'not-found', 'another organisation');
    });

    test('test_only_during_a_call_of_a_session_about_a_patient', async () => {
        const meeting = await api('POST', '/sessions', {
            token: w.clinician.token, body: { kind: 'telehealth' } });
        assertStatus(meeting, 201);
        assertProblem(await start(w.clinician.token, { kind: 'follow_up' },
            meeting.body.id), 422, 'validation', 'no patient');
        const at = new Date(Date.now() + 86400000).toISOString();
        const later = await api('POST', '/sessions', {
            token: w.clinician.token, body: { kind: 'telehealth',
                patient_id: patient.id, scheduled_at: at } });
        assertStatus(later, 201);
        assertProblem(await start(w.clinician.token, { kind: 'follow_up' },
            later.body.id), 409, 'room-not-open', 'no call');
    });
});

describe('listing a patient\'s engagements', () => {
    test('test_listed_newest_first_and_paginated', async () => {
        const res = await list(w.clinician.token, '?limit=3');
        assertStatus(res, 200);
        assert.equal(res.body.items.length, 3);
        assert.equal(res.body.items[0].kind, 'discharge');
        assert.equal(res.body.items[0].note, 'Überweisung ✓');
        assert.ok(res.body.next_cursor);
        const next = await list(w.clinician.token,
            `?limit=3&cursor=${res.body.next_cursor}`);
        assertStatus(next, 200);
        assert.deepEqual(next.body.items.map((e) => e.kind),
            ['brief_check_in']);
        assert.equal(next.body.next_cursor, null);
    });

    test('test_patients_never_see_them', async () => {
        assertProblem(await list(patient.token), 403, 'forbidden');
        assertProblem(await api('GET',
            `/patients/${patient.id}/engagements`, { token: guestToken }),
        401, 'unauthorized');
    });

    test('test_call_history_rules_decide_who_sees_them', async () => {
        // assigned, but never in a call of the session
        const res = await list(colleague.token);
        assertStatus(res, 200);
        assert.deepEqual(res.body.items, [], 'not in the call: none');
        // org-wide roles see the patient, but not others' calls
        const sup = await list(w.supervisor.token);
        assertStatus(sup, 200);
        assert.deepEqual(sup.body.items, []);
        // unassigned clinicians do not see the patient at all
        assertProblem(await list(w.unassigned.token), 403, 'forbidden');
        assertProblem(await api('GET',
            `/patients/${patient.id}/engagements`,
            { token: w.other.admin.token }), 404, 'not-found');

        // the colleague joins the call: the session's engagements appear
        await api('PATCH', `/sessions/${session.id}`, {
            token: w.clinician.token, body: { participants: [
                { type: 'staff', id: colleague.id, role: 'broadcaster' }] } });
        conns.push(await joinAs(colleague.token, session.id));
        const seen = await eventually(async () => {
            const r = await list(colleague.token);
            return r.body.items.length === 4 ? r : null;
        });
        assert.ok(seen, 'in the call: sees them');

        // the clinician unassigned loses sight, reassigned regains it
        await sql('UPDATE assignments SET ends_at = now() WHERE ' +
            'staff_id = $1 AND patient_id = $2', [w.clinician.id, patient.id]);
        assertProblem(await list(w.clinician.token), 403, 'forbidden');
        await assign(w.clinician, patient);
        assertStatus(await list(w.clinician.token), 200);
    });
});

// Appointments (docs/features.md 10, docs/api.md "Appointments"): a scheduled
// appointment with staff and their roles, readable like its patient, and
// POST /appointments/{id}/session: the session with everyone on it in one
// step, the room open in Redis, linked both ways, and only once.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    UUID_RE, addPatient, api, assertProblem, assertStatus, closeDb,
    createWorld, loginAll, redis, roomKey, sql,
} from './lib.mjs';

let w;
let visitCode;          // allows virtual visits
let officeCode;         // does not

const AT = '2030-03-04T09:30:00Z';

function createAppointment(token, body) {
    return api('POST', '/appointments', { token, body });
}

async function appointmentFor(patient, extra = {}) {
    const res = await createAppointment(w.clinician.token, {
        patient_id: patient.id, scheduled_at: AT, ...extra });
    assertStatus(res, 201, 'POST /appointments');
    return res.body;
}

before(async () => {
    w = await createWorld('appt');
    await loginAll([w.admin, w.supervisor, w.coordinator, w.clinician,
        w.unassigned, w.patient, w.other.admin]);
    const mk = async (code, vv) => {
        const res = await api('POST', '/service-codes', {
            token: w.admin.token, body: { code: `${code}-${w.tag.slice(-6)}`,
                name: code, virtual_visits_allowed: vv } });
        assertStatus(res, 201);
        return res.body.code;
    };
    visitCode = await mk('VV', true);
    officeCode = await mk('OF', false);
});

after(closeDb);

describe('appointments', () => {
    test('test_clinician_creates_an_appointment_for_an_assigned_patient', async () => {
        const patient = await addPatient(w, 'a1');
        const res = await createAppointment(w.clinician.token, {
            patient_id: patient.id, scheduled_at: '2030-03-04T10:30:00+01:00',
            name: 'Follow-up', service_code: officeCode,
            participants: [
                { type: 'staff', id: w.supervisor.id, role: 'chair' },
                { type: 'staff', id: w.coordinator.id, role: 'viewer' },
            ] });
        assertStatus(res, 201);
        assert.match(res.body.id, UUID_RE);
        assert.equal(res.body.patient_id, patient.id);
        assert.equal(res.body.scheduled_at, AT, 'stored and shown in UTC');
        assert.equal(res.body.service_code, officeCode);
        assert.equal(res.body.session_id, null);
        assert.equal(res.body.created_by, w.clinician.id);
        assert.deepEqual(res.body.participants, [
            { type: 'staff', id: w.supervisor.id, role: 'chair' },
            { type: 'staff', id: w.coordinator.id, role: 'viewer' },
        ]);
        assert.match(res.headers.get('location'),
            new RegExp(`/appointments/${res.body.id}$`));
        assert.equal(res.headers.get('etag'), '"1"');
    });

    test('test_access_is_like_the_patient: unassigned 403, patient 403, other org 404', async () => {
        const patient = await addPatient(w, 'a2');
        const body = { patient_id: patient.id, scheduled_at: AT };
        assertProblem(await createAppointment(w.unassigned.token, body),
            403, 'forbidden');
        assertProblem(await createAppointment(w.patient.token, body),
            403, 'forbidden');
        assertProblem(await createAppointment(w.other.admin.token, body),
            404, 'not-found');
        const a = await appointmentFor(patient);
        assertProblem(await api('GET', `/appointments/${a.id}`,
            { token: w.unassigned.token }), 403, 'forbidden');
        assertProblem(await api('GET', `/appointments/${a.id}`,
            { token: w.other.admin.token }), 404, 'not-found');
        assertStatus(await api('GET', `/appointments/${a.id}`,
            { token: w.coordinator.token }), 200);
    });

    for (const [extra, status, what] of [
        [{ scheduled_at: undefined }, 422, /"scheduled_at"/],
        [{ scheduled_at: 'tomorrow' }, 422, /"scheduled_at"/],
        [{ participants: [{ type: 'staff', id: 'x' }] }, 404, /staff member/],
        [{ participants: [{ type: 'guest', id: 'x' }] }, 422, /"type" staff/],
        [{ service_code: 'NOPE' }, 422, /no active service code/],
    ]) {
        test(`test_invalid_appointment_is_${status}: ${what}`, async () => {
            const res = await createAppointment(w.clinician.token, {
                patient_id: w.patient.id, scheduled_at: AT, ...extra });
            assertProblem(res, status, status === 404 ? 'not-found'
                : 'validation');
            assert.match(res.body.detail, what);
        });
    }

    test('test_list_shows_a_clinician_only_assigned_patients_in_time_order', async () => {
        const mine = await addPatient(w, 'a3');
        const theirs = await addPatient(w, 'a4', { assigned: false });
        const later = await appointmentFor(mine,
            { scheduled_at: '2031-01-02T08:00:00Z' });
        const sooner = await appointmentFor(mine,
            { scheduled_at: '2031-01-01T08:00:00Z' });
        const hidden = (await createAppointment(w.admin.token, {
            patient_id: theirs.id, scheduled_at: '2031-01-01T09:00:00Z' }))
            .body;
        const window = '&from=2031-01-01T00:00:00Z&to=2031-02-01T00:00:00Z';
        const cl = await api('GET', `/appointments?limit=200${window}`,
            { token: w.clinician.token });
        assertStatus(cl, 200);
        assert.deepEqual(cl.body.items.map((a) => a.id),
            [sooner.id, later.id]);
        const all = await api('GET', `/appointments?limit=200${window}`,
            { token: w.supervisor.token });
        assert.deepEqual(all.body.items.map((a) => a.id),
            [sooner.id, hidden.id, later.id]);
        const page = await api('GET', `/appointments?limit=1${window}`,
            { token: w.supervisor.token });
        assert.equal(page.body.next_cursor, sooner.id);
        const next = await api('GET', `/appointments?limit=1${window}` +
            `&cursor=${page.body.next_cursor}`, { token: w.supervisor.token });
        assert.deepEqual(next.body.items.map((a) => a.id), [hidden.id]);
        const one = await api('GET', `/appointments?patient_id=${theirs.id}`,
            { token: w.admin.token });
        assert.deepEqual(one.body.items.map((a) => a.id), [hidden.id]);
        assertProblem(await api('GET', '/appointments?patient_id=x',
            { token: w.admin.token }), 422, 'validation');
    });

    test('test_update_honours_if_match', async () => {
        const a = await appointmentFor(await addPatient(w, 'a5'));
        assertProblem(await api('PATCH', `/appointments/${a.id}`, {
            token: w.clinician.token, body: { name: 'x' },
            headers: { 'if-match': '"9"' } }), 412, 'precondition-failed');
        const res = await api('PATCH', `/appointments/${a.id}`, {
            token: w.clinician.token, headers: { 'if-match': '"1"' },
            body: { scheduled_at: '2030-05-05T05:05:00Z', name: 'Moved',
                participants: [{ type: 'staff', id: w.admin.id }] } });
        assertStatus(res, 200);
        assert.equal(res.body.scheduled_at, '2030-05-05T05:05:00Z');
        assert.equal(res.body.name, 'Moved');
        assert.deepEqual(res.body.participants,
            [{ type: 'staff', id: w.admin.id, role: 'broadcaster' }]);
        assert.equal(res.headers.get('etag'), '"2"');
    });
});

describe('POST /appointments/{id}/session', () => {
    test('test_session_from_appointment_has_everyone_with_their_roles', async () => {
        const patient = await addPatient(w, 's1');
        const a = await appointmentFor(patient, { name: 'Review',
            service_code: officeCode, participants: [
                { type: 'staff', id: w.supervisor.id, role: 'chair' },
                { type: 'staff', id: w.coordinator.id, role: 'viewer' },
            ] });
        const res = await api('POST', `/appointments/${a.id}/session`,
            { token: w.clinician.token });
        assertStatus(res, 201);
        const s = res.body;
        assert.equal(s.kind, 'appointment', 'the default kind');
        assert.equal(s.state, 'scheduled', 'a planned kind, for later');
        assert.equal(s.room, null);
        assert.equal(s.patient_id, patient.id);
        assert.equal(s.appointment_id, a.id);
        assert.equal(s.scheduled_at, AT);
        assert.equal(s.name, 'Review');
        assert.equal(s.service_code, officeCode);
        assert.deepEqual(
            [...s.participants].sort((x, y) => x.id.localeCompare(y.id)),
            [
                { type: 'staff', id: w.clinician.id, role: 'chair' },
                { type: 'staff', id: w.supervisor.id, role: 'chair' },
                { type: 'staff', id: w.coordinator.id, role: 'viewer' },
                { type: 'patient', id: patient.id, role: 'broadcaster' },
            ].sort((x, y) => x.id.localeCompare(y.id)));
        assert.match(res.headers.get('location'),
            new RegExp(`/sessions/${s.id}$`));
        // an appointment is the service user's to open (docs/lifecycle.md):
        // a chair first is told it has not started; the patient's first
        // join opens the room as POST /sessions does
        const first = await api('POST', `/sessions/${s.id}/join`,
            { token: w.supervisor.token });
        assertProblem(first, 409, 'room-not-open', 'a chair first');
        await loginAll([patient]);
        const join = await api('POST', `/sessions/${s.id}/join`,
            { token: patient.token });
        assertStatus(join, 200, 'the patient opens the scheduled session');
        assert.equal(await redis('HGET', roomKey(join.body.room), 'session'),
            s.id, 'the room is open in Redis as for POST /sessions');
        assert.equal(await redis('HGET', roomKey(join.body.room), 'kind'),
            'appointment');

        const get = await api('GET', `/appointments/${a.id}`,
            { token: w.clinician.token });
        assert.equal(get.body.session_id, s.id, 'linked');
        const rows = await sql(`SELECT action, outcome FROM audit_log
            WHERE actor_id = $1 AND (target_id = $2 OR target_id = $3)
              AND action IN ('appointment_session', 'session_create')
            ORDER BY id`, [w.clinician.id, a.id, s.id]);
        assert.deepEqual(rows, [
            { action: 'appointment_session', outcome: 'success' },
            { action: 'session_create', outcome: 'success' },
        ]);

        // the supervisor, a chair of it, can join
        assertStatus(await api('POST', `/sessions/${s.id}/join`,
            { token: w.supervisor.token }), 200);

        const again = await api('POST', `/appointments/${a.id}/session`,
            { token: w.clinician.token });
        assertProblem(again, 409, 'conflict', 'a second call');
        assert.match(again.body.detail, /already been created/);
        assertProblem(await api('PATCH', `/appointments/${a.id}`, {
            token: w.clinician.token, body: { name: 'Late' } }),
        409, 'conflict');
    });

    test('test_kind_from_body_and_the_virtual_visit_rule', async () => {
        const office = await appointmentFor(await addPatient(w, 's2'),
            { service_code: officeCode });
        const refused = await api('POST',
            `/appointments/${office.id}/session`,
            { token: w.clinician.token, body: { kind: 'virtual_visit' } });
        assertProblem(refused, 422, 'validation');
        assert.match(refused.body.detail, /does not allow virtual visits/);

        const visit = await appointmentFor(await addPatient(w, 's3'),
            { service_code: visitCode });
        const res = await api('POST', `/appointments/${visit.id}/session`,
            { token: w.clinician.token, body: { kind: 'virtual_visit' } });
        assertStatus(res, 201);
        assert.equal(res.body.kind, 'virtual_visit');
        assert.equal(res.body.service_code, visitCode);
    });

    test('test_who_may_start_it: unassigned 403, other org 404', async () => {
        const a = await appointmentFor(await addPatient(w, 's4'));
        assertProblem(await api('POST', `/appointments/${a.id}/session`,
            { token: w.unassigned.token }), 403, 'forbidden');
        assertProblem(await api('POST', `/appointments/${a.id}/session`,
            { token: w.other.admin.token }), 404, 'not-found');
        assertProblem(await api('POST', `/appointments/${a.id}/session`,
            { token: w.patient.token }), 403, 'forbidden');
    });

    test('test_appointment_id_in_post_sessions_is_ignored', async () => {
        const a = await appointmentFor(await addPatient(w, 's5'));
        const res = await api('POST', '/sessions', { token: w.clinician.token,
            body: { kind: 'telehealth', patient_id: w.patient.id,
                appointment_id: a.id } });
        assertStatus(res, 201);
        assert.equal(res.body.appointment_id, null);
    });
});

describe('people on an appointment who are not staff', () => {
    const guests = [
        { display_name: 'Sam Support', role: 'support_person',
            channel: 'sms', contact: '+4930123456' },
        { display_name: 'Ina Interpreter', role: 'interpreter',
            channel: 'email', contact: 'ina.interpreter@it.test',
            language: 'de' },
    ];

    test('test_appointment_lists_its_guests_and_checks_their_contact',
        async () => {
            const patient = await addPatient(w, 'g1');
            const a = await appointmentFor(patient, { guests });
            assert.deepEqual(a.guests, [
                { ...guests[0], language: 'en' }, guests[1]]);
            const bad = await createAppointment(w.clinician.token, {
                patient_id: patient.id, scheduled_at: AT,
                guests: [{ display_name: 'No Mail', channel: 'email',
                    contact: 'not-an-address' }] });
            assertProblem(bad, 422, 'validation');
            const link = await createAppointment(w.clinician.token, {
                patient_id: patient.id, scheduled_at: AT,
                guests: [{ display_name: 'Link Only', channel: 'link' }] });
            assertProblem(link, 422, 'validation');
        });

    test('test_the_session_invites_the_patient_and_every_guest_in_one_step',
        async () => {
            const patient = await addPatient(w, 'g2');
            const a = await appointmentFor(patient, { guests });
            const res = await api('POST', `/appointments/${a.id}/session`,
                { token: w.clinician.token, body: {} });
            assertStatus(res, 201, 'POST /appointments/{id}/session');
            const sent = res.body.invites;
            assert.deepEqual(sent.map((i) => [i.invitee.type, i.channel,
                i.status]), [['patient', 'email', 'sent'],
                ['guest', 'sms', 'sent'], ['guest', 'email', 'sent']]);
            assert.equal(sent[0].invitee.id, patient.id);
            assert.equal(sent[2].invitee.display_name, 'Ina Interpreter');

            const rows = await sql(`SELECT channel, contact, language,
                patient_id, invitee_name FROM invites WHERE session_id = $1
                ORDER BY created_at, channel`, [res.body.id]);
            assert.equal(rows.length, 3);
            assert.ok(rows.some((r) => r.patient_id === patient.id
                && r.contact === patient.email), 'the patient by e-mail');
            assert.ok(rows.some((r) => r.channel === 'sms'
                && r.contact === '+4930123456'), 'the support person by SMS');
            assert.ok(rows.some((r) => r.language === 'de'
                && r.invitee_name === 'Ina Interpreter'));
            const queued = await sql(`SELECT channel, template FROM
                notifications WHERE session_id = $1 ORDER BY channel`,
            [res.body.id]);
            assert.deepEqual(queued.map((n) => n.channel),
                ['email', 'email', 'sms'], 'each invite is in the outbox');
            for (const n of queued) {
                assert.match(n.template, /invite/);
            }
        });

    test('test_a_patient_without_contact_data_is_skipped_not_an_error',
        async () => {
            const patient = await addPatient(w, 'g3');
            await sql(`UPDATE patients SET email = NULL, mobile = NULL,
                whatsapp = NULL WHERE id = $1`, [patient.id]);
            const a = await appointmentFor(patient, { guests: [guests[0]] });
            const res = await api('POST', `/appointments/${a.id}/session`,
                { token: w.clinician.token, body: {} });
            assertStatus(res, 201);
            assert.deepEqual(res.body.invites.map((i) => i.status),
                ['skipped', 'sent']);
            assert.match(res.body.invites[0].detail, /no email/);
        });
});

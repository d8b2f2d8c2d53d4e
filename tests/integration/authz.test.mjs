// The authorization table (docs/api.md, per endpoint): every endpoint against
// every actor -- admin, supervisor, coordinator, assigned clinician,
// unassigned clinician, patient, guest (no token), and the admin,
// clinician and patient of another organisation.  Each cell asserts the
// documented answer (allowed, 401, 403 or 404 as docs/api.md says) and
// that the answer holds no id of an organisation the actor is not in.
//
// Writes get a fresh target per cell, so cells never depend on each
// other's order.  POST /auth/logout is left out on purpose: it revokes
// the token the other cells use (auth.test.mjs covers it).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, addStaff, api, assertStatus, closeDb, createWorld, env,
    eventually, login, loginAll, sql, startSmtpSink,
} from './lib.mjs';

let w;
let session;            // a video_call of w.patient started by w.admin,
                        // access invitation
let serviceCode;        // a service code of organisation A
let appointment;        // an appointment of w.patient

// a fresh appointment of a fresh patient (assigned to the clinician)
async function newAppointment(label) {
    const res = await api('POST', '/appointments', { token: w.admin.token,
        body: { patient_id: (await addPatient(w, label)).id,
            scheduled_at: '2030-01-01T10:00:00Z' } });
    assertStatus(res, 201, 'an appointment of the table');
    return res.body;
}
const ids = { A: [], B: [] };

const ACTORS = ['admin', 'supervisor', 'coordinator', 'clinician',
    'unassigned', 'patient', 'guest', 'other.admin', 'other.clinician',
    'other.patient'];

const actor = (name) => (name === 'guest' ? null
    : name.startsWith('other.') ? w.other[name.slice(6)] : w[name]);
const orgOf = (name) => (name.startsWith('other.') ? 'B' : 'A');

before(async () => {
    smtp = await startSmtpSink();
    w = await createWorld('authz');
    await loginAll([w.admin, w.supervisor, w.coordinator, w.clinician,
        w.unassigned, w.patient, w.other.admin, w.other.clinician,
        w.other.patient]);
    // open to guests, so that the invite rows can create guest links
    const res = await api('POST', '/sessions', { token: w.admin.token,
        body: { kind: 'video_call', patient_id: w.patient.id,
            access: 'invitation' } });
    assertStatus(res, 201, 'the table\'s session');
    session = res.body;
    const sc = await api('POST', '/service-codes', { token: w.admin.token,
        body: { code: `AZ-${w.tag.slice(-6)}`, name: 'Authz visit' } });
    assertStatus(sc, 201, 'the table\'s service code');
    serviceCode = sc.body;
    const ap = await api('POST', '/appointments', { token: w.admin.token,
        body: { patient_id: w.patient.id,
            scheduled_at: '2030-01-01T10:00:00Z' } });
    assertStatus(ap, 201, 'the table\'s appointment');
    appointment = ap.body;
    await interpOrg('zz');
    ids.A = [w.org.id, w.admin.id, w.supervisor.id, w.coordinator.id,
        w.clinician.id, w.unassigned.id, w.patient.id, session.id,
        serviceCode.id, appointment.id];
    ids.B = [w.other.org.id, w.other.admin.id, w.other.clinician.id,
        w.other.patient.id];
});

// the interpreter requests of the table e-mail their managers and, once
// they time out, the requester: delivered here, before the next file
let smtp;

after(async () => {
    await eventually(async () => (await sql(`SELECT 1 FROM notifications
        WHERE org_id = $1 AND status = 'pending'
          AND template LIKE 'interpreter%'`, [w.org.id])).length === 0
        && (await sql(`SELECT 1 FROM interpreter_requests
            WHERE org_id = $1 AND status = 'pending'`, [w.org.id]))
            .length === 0, 15000);
    await smtp?.close();
    await closeDb();
});

const ORG_WIDE = { admin: 1, supervisor: 1, coordinator: 1 };
const STAFF_A = { ...ORG_WIDE, clinician: 1, unassigned: 1 };

// expected status per actor; "guest" is always 401 for routes that need a
// token and is filled in below.
function row(spec, fallback) {
    const out = {};
    for (const a of ACTORS) {
        out[a] = spec[a] ?? fallback(a);
    }
    out.guest = spec.guest ?? 401;
    return out;
}

// reading a patient of organisation A
const patientRead = (ok) => row({ unassigned: 403, patient: 403,
    'other.patient': 403, 'other.admin': 404, 'other.clinician': 404 },
(a) => (ORG_WIDE[a] || a === 'clinician' ? ok : 403));

// managing the invites of the table's session: org-wide staff of A; it is
// not the other staff's session (404), patients are not staff (403)
const inviteRow = (ok) => row({ patient: 403, 'other.patient': 403 },
    (a) => (ORG_WIDE[a] ? ok : 404));

async function freshInvite() {
    const res = await api('POST', `/sessions/${session.id}/invites`,
        { token: w.admin.token, body: { channel: 'link' } });
    assertStatus(res, 201, 'an invite for the cell');
    return res.body.id;
}

// an interpreting organisation of A covering `language` ("zz": the one
// the table's interpreter requests ask)
async function interpOrg(language = 'zy') {
    const res = await api('POST', '/interpreting-organisations', {
        token: w.admin.token, body: { name: 'Authz Interpreters',
            languages: [language], manager_email: 'manager@authz.test' } });
    assertStatus(res, 201, 'an interpreting organisation for the cell');
    return res.body.id;
}

const ENDPOINTS = [
    {
        name: 'GET /me', method: 'GET', path: () => '/me',
        expect: row({}, () => 200),
    },
    {
        // everyone's own stream: patients get their sessions' messages
        name: 'GET /me/events', method: 'GET', path: () => '/me/events',
        stream: true,
        expect: row({}, () => 200),
    },
    {
        name: 'POST /me/events/ticket', method: 'POST',
        path: () => '/me/events/ticket',
        expect: row({}, () => 200),
    },
    {
        name: 'GET /health', method: 'GET', path: () => '/health',
        expect: row({ guest: 200 }, () => 200),
    },
    {
        name: 'GET /staff', method: 'GET', path: () => '/staff',
        expect: row({ patient: 403, 'other.patient': 403 }, () => 200),
    },
    {
        name: 'POST /staff', method: 'POST', path: () => '/staff',
        body: () => ({ display_name: 'Authz New', role: 'clinician',
            email: `authz.${Math.random().toString(36).slice(2)}@it.test` }),
        expect: row({ admin: 201, 'other.admin': 201 }, () => 403),
    },
    {
        name: 'GET /staff/{id}', method: 'GET',
        path: () => `/staff/${w.clinician.id}`,
        expect: row({ patient: 403, 'other.patient': 403,
            'other.admin': 404, 'other.clinician': 404 }, () => 200),
    },
    {
        name: 'PATCH /staff/{id}', method: 'PATCH',
        path: () => `/staff/${w.unassigned.id}`,
        body: () => ({ display_name: `Unassigned Clinician ${w.tag}` }),
        expect: row({ admin: 200, 'other.admin': 404 }, () => 403),
    },
    {
        name: 'DELETE /staff/{id}', method: 'DELETE',
        path: async () => `/staff/${(await addStaff(w, 'clinician',
            `gone${Math.random().toString(36).slice(2, 6)}`)).id}`,
        expect: row({ admin: 200, 'other.admin': 404 }, () => 403),
    },
    {
        name: 'GET /patients', method: 'GET', path: () => '/patients',
        expect: row({ patient: 403, 'other.patient': 403 }, () => 200),
    },
    {
        name: 'POST /patients', method: 'POST', path: () => '/patients',
        body: () => ({ display_name: 'Authz Patient' }),
        expect: row({ patient: 403, 'other.patient': 403 }, () => 201),
    },
    {
        name: 'GET /patients/{id}', method: 'GET',
        path: () => `/patients/${w.patient.id}`, expect: patientRead(200),
    },
    {
        name: 'PATCH /patients/{id}', method: 'PATCH',
        path: () => `/patients/${w.patient.id}`,
        body: () => ({ language: 'en' }), expect: patientRead(200),
    },
    {
        name: 'GET /patients/{id}/assignments', method: 'GET',
        path: () => `/patients/${w.patient.id}/assignments`,
        expect: patientRead(200),
    },
    {
        name: 'POST /patients/{id}/assignments', method: 'POST',
        path: async () => `/patients/${(await addPatient(w, 'as')).id}` +
            '/assignments',
        body: () => ({ staff_id: w.unassigned.id }),
        expect: row({ unassigned: 403, clinician: 403, patient: 403,
            'other.patient': 403, 'other.admin': 404,
            'other.clinician': 404 }, () => 201),
    },
    {
        name: 'DELETE /patients/{id}/assignments/{staff_id}',
        method: 'DELETE',
        path: async () => `/patients/${(await addPatient(w, 'un')).id}` +
            `/assignments/${w.clinician.id}`,
        expect: row({ unassigned: 403, clinician: 403, patient: 403,
            'other.patient': 403, 'other.admin': 404,
            'other.clinician': 404 }, () => 200),
    },
    {
        name: 'GET /patients/{id}/calls', method: 'GET',
        path: () => `/patients/${w.patient.id}/calls`,
        expect: patientRead(200),
    },
    {
        name: 'GET /audit', method: 'GET', path: () => '/audit',
        expect: row({ admin: 200, 'other.admin': 200 }, () => 403),
    },
    {
        name: 'GET /sessions', method: 'GET', path: () => '/sessions',
        expect: row({}, () => 200),
    },
    {
        name: 'POST /sessions', method: 'POST', path: () => '/sessions',
        body: async (a) => ({ kind: 'video_call',
            patient_id: (await addPatient(w, `ps${a.replace('.', '')}`)).id }),
        expect: row({ unassigned: 403, patient: 403, 'other.patient': 403,
            'other.admin': 404, 'other.clinician': 404 },
        (a) => (STAFF_A[a] ? 201 : 403)),
    },
    {
        name: 'GET /sessions/{id}', method: 'GET',
        path: () => `/sessions/${session.id}`,
        expect: row({ admin: 200, patient: 200 }, () => 404),
    },
    {
        name: 'PATCH /sessions/{id}', method: 'PATCH',
        path: () => `/sessions/${session.id}`,
        body: () => ({ name: 'Authz session' }),
        expect: row({ admin: 200, supervisor: 403, coordinator: 403,
            patient: 403, 'other.patient': 403 }, () => 404),
    },
    {
        name: 'GET /sessions/{id}/participants', method: 'GET',
        path: () => `/sessions/${session.id}/participants`,
        expect: row({ patient: 403, 'other.patient': 403 },
            (a) => (ORG_WIDE[a] ? 200 : 404)),
    },
    {
        name: 'POST /sessions/{id}/join', method: 'POST',
        path: () => `/sessions/${session.id}/join`,
        // the session is invitation: any staff of A joins, unlisted ones
        // as broadcaster
        expect: row({ patient: 200 }, (a) => (STAFF_A[a] ? 200 : 404)),
    },
    {
        name: 'GET /service-codes', method: 'GET', path: () => '/service-codes',
        expect: row({ patient: 403, 'other.patient': 403 }, () => 200),
    },
    {
        name: 'POST /service-codes', method: 'POST',
        path: () => '/service-codes',
        body: () => ({ name: 'Authz code',
            code: `az-${Math.random().toString(36).slice(2, 10)}` }),
        expect: row({ admin: 201, 'other.admin': 201 }, () => 403),
    },
    {
        name: 'GET /service-codes/{id}', method: 'GET',
        path: () => `/service-codes/${serviceCode.id}`,
        expect: row({ patient: 403, 'other.patient': 403,
            'other.admin': 404, 'other.clinician': 404 }, () => 200),
    },
    {
        name: 'PATCH /service-codes/{id}', method: 'PATCH',
        path: () => `/service-codes/${serviceCode.id}`,
        body: () => ({ name: 'Authz visit' }),
        expect: row({ admin: 200, 'other.admin': 404 }, () => 403),
    },
    {
        name: 'GET /appointments', method: 'GET', path: () => '/appointments',
        expect: row({ patient: 403, 'other.patient': 403 }, () => 200),
    },
    {
        name: 'POST /appointments', method: 'POST', path: () => '/appointments',
        body: () => ({ patient_id: w.patient.id,
            scheduled_at: '2030-02-01T10:00:00Z' }),
        expect: patientRead(201),
    },
    {
        name: 'GET /appointments/{id}', method: 'GET',
        path: () => `/appointments/${appointment.id}`,
        expect: patientRead(200),
    },
    {
        name: 'PATCH /appointments/{id}', method: 'PATCH',
        path: () => `/appointments/${appointment.id}`,
        body: () => ({ name: 'Authz appointment' }),
        expect: patientRead(200),
    },
    {
        name: 'POST /appointments/{id}/session', method: 'POST',
        path: async (a) => `/appointments/${(await newAppointment(
            `ap${a.replace('.', '')}`)).id}/session`,
        expect: row({ unassigned: 403, patient: 403, 'other.patient': 403,
            'other.admin': 404, 'other.clinician': 404 },
        (a) => (STAFF_A[a] ? 201 : 403)),
    },
    {
        name: 'GET /sessions/{id}/invites', method: 'GET',
        path: () => `/sessions/${session.id}/invites`,
        expect: inviteRow(200),
    },
    {
        name: 'POST /sessions/{id}/invites', method: 'POST',
        path: () => `/sessions/${session.id}/invites`,
        body: () => ({ channel: 'link' }),
        expect: inviteRow(201),
    },
    {
        name: 'DELETE /sessions/{id}/invites/{invite_id}', method: 'DELETE',
        path: async () => `/sessions/${session.id}/invites/` +
            `${await freshInvite()}`,
        expect: inviteRow(204),
    },
    {
        name: 'POST /sessions/{id}/invites/{invite_id}/resend',
        method: 'POST',
        path: async () => `/sessions/${session.id}/invites/` +
            `${await freshInvite()}/resend`,
        expect: inviteRow(201),
    },
    {
        name: 'POST /sessions/{id}/invites/{invite_id}/extend',
        method: 'POST',
        path: async () => `/sessions/${session.id}/invites/` +
            `${await freshInvite()}/extend`,
        expect: inviteRow(200),
    },
    {
        name: 'GET /organisation', method: 'GET', path: () => '/organisation',
        expect: row({ patient: 403, 'other.patient': 403 }, () => 200),
    },
    {
        name: 'PATCH /organisation', method: 'PATCH',
        path: () => '/organisation', body: () => ({ time_zone: 'UTC' }),
        expect: row({ admin: 200, 'other.admin': 200 }, () => 403),
    },
    {
        name: 'GET /interpreting-organisations', method: 'GET',
        path: () => '/interpreting-organisations',
        expect: row({ patient: 403, 'other.patient': 403 }, () => 200),
    },
    {
        name: 'POST /interpreting-organisations', method: 'POST',
        path: () => '/interpreting-organisations',
        body: () => ({ name: 'Authz Interpreters', languages: ['zy'],
            manager_email: 'manager@authz.test' }),
        expect: row({ admin: 201, 'other.admin': 201 }, () => 403),
    },
    {
        name: 'GET /interpreting-organisations/{id}', method: 'GET',
        path: async () => `/interpreting-organisations/${await interpOrg()}`,
        expect: row({ patient: 403, 'other.patient': 403,
            'other.admin': 404, 'other.clinician': 404 }, () => 200),
    },
    {
        name: 'PATCH /interpreting-organisations/{id}', method: 'PATCH',
        path: async () => `/interpreting-organisations/${await interpOrg()}`,
        body: () => ({ languages: ['zy', 'zx'] }),
        expect: row({ admin: 200, 'other.admin': 404 }, () => 403),
    },
    {
        name: 'DELETE /interpreting-organisations/{id}', method: 'DELETE',
        path: async () => `/interpreting-organisations/${await interpOrg()}`,
        expect: row({ admin: 200, 'other.admin': 404 }, () => 403),
    },
    {
        name: 'GET /sessions/{id}/interpreter-requests', method: 'GET',
        path: () => `/sessions/${session.id}/interpreter-requests`,
        expect: inviteRow(200),
    },
    {
        name: 'POST /sessions/{id}/interpreter-requests', method: 'POST',
        path: () => `/sessions/${session.id}/interpreter-requests`,
        body: () => ({ language: 'zz' }),
        expect: inviteRow(201),
    },
    {
        // the link is the credential: no access token needed, any caller
        name: 'POST /interpreter-requests/decide', method: 'POST',
        path: () => '/interpreter-requests/decide',
        // a link of its own per caller: tries of one unknown link are
        // throttled (docs/api.md, "Login throttling")
        body: (a) => ({ token: `unknown-link-${a}-${Date.now()}` }),
        expect: row({ guest: 404 }, () => 404),
    },
];

// GET /me/events answers a stream that does not end: its status, headers
// and first chunk, then the client goes away.
async function openStream(path, token) {
    const ac = new AbortController();
    const res = await fetch(env.api + path, { signal: ac.signal,
        headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (res.status !== 200) {
        const text = await res.text();
        return { status: res.status, headers: res.headers, text,
            body: JSON.parse(text) };
    }
    const reader = res.body.getReader();
    const { value } = await reader.read();
    ac.abort();
    return { status: res.status, headers: res.headers, body: null,
        text: new TextDecoder().decode(value) };
}

// An audit row of a refused request records the id the actor sent as it
// was sent (docs/api.md, "Audit"): that is the actor's own input, not the
// other organisation's data, so those target_ids are not searched.
function withoutOwnProbes(res) {
    if (!res.body || !Array.isArray(res.body.items)) {
        return res.text;
    }
    return JSON.stringify(res.body.items.map((it) =>
        (it.outcome && it.outcome !== 'success'
            ? { ...it, target_id: null } : it)));
}

describe('authorization table', () => {
    for (const ep of ENDPOINTS) {
        for (const a of ACTORS) {
            const want = ep.expect[a];
            const verdict = want < 300 || want === 409 ? `allowed ${want}`
                : `denied ${want}`;
            test(`${ep.name} as ${a}: ${verdict}`, async () => {
                const person = actor(a);
                const path = await ep.path(a);
                const body = ep.body ? await ep.body(a) : undefined;
                const res = ep.stream
                    ? await openStream(path, person?.token)
                    : await api(ep.method, path, { token: person?.token,
                        body });
                assert.equal(res.status, want,
                    `${ep.method} ${path} as ${a} -> ${res.status} ` +
                    res.text.slice(0, 300));
                if (want >= 400) {
                    assert.match(res.headers.get('content-type'),
                        /^application\/problem\+json/);
                }
                const foreign = orgOf(a) === 'A' ? ids.B : ids.A;
                const text = withoutOwnProbes(res);
                for (const id of foreign) {
                    assert.ok(!text.includes(id),
                        `${a} got an id of another organisation: ${id}`);
                }
            });
        }
    }
});

describe('the audit log is the organisation\'s own', () => {
    test('test_other_org_admin_audit_has_no_rows_of_this_org', async () => {
        const mine = await api('GET', '/audit?limit=200',
            { token: w.admin.token });
        assertStatus(mine, 200);
        assert.ok(mine.body.items.length > 0);
        const theirs = await api('GET', '/audit?limit=200',
            { token: w.other.admin.token });
        assertStatus(theirs, 200);
        const text = withoutOwnProbes(theirs);
        for (const id of ids.A) {
            assert.ok(!text.includes(id));
        }
    });

    test('test_a_fresh_login_still_works_after_the_table', async () => {
        assert.equal(typeof await login(w.admin), 'string');
    });
});

// People (docs/api.md, "Staff", "Patients", "Assignments"): what each
// role may do with staff and patient records, assignments with their
// history, cursor pagination, ETag / If-Match, and that nothing crosses
// organisations.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    UUID_RE, addPatient, api, assertProblem, assertStatus, closeDb,
    createWorld, env, loginAll, sql,
} from './lib.mjs';

let w;

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

before(async () => {
    w = await createWorld('people');
    await loginAll([w.admin, w.supervisor, w.coordinator, w.clinician,
        w.unassigned, w.patient, w.other.admin, w.other.clinician,
        w.other.patient]);
});

after(closeDb);

const uniq = () => Math.random().toString(36).slice(2, 10);

async function allPages(token, route, limit = 2) {
    const items = [];
    let cursor = null;
    for (let i = 0; i < 100; i++) {
        const sep = route.includes('?') ? '&' : '?';
        const res = await api('GET', `${route}${sep}limit=${limit}` +
            (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''),
        { token });
        assertStatus(res, 200, `GET ${route}`);
        assert.ok(res.body.items.length <= limit, 'page size');
        items.push(...res.body.items);
        cursor = res.body.next_cursor;
        if (cursor === null) {
            return items;
        }
    }
    throw new Error('pagination does not end');
}

describe('staff', () => {
    test('test_admin_creates_staff_with_password_who_can_log_in', async () => {
        const email = `New.Clinician.${uniq()}@it.test`;
        const res = await api('POST', '/staff', {
            token: w.admin.token,
            body: { display_name: 'New Clinician', email, role: 'clinician',
                password: 'a-long-password' },
        });
        assertStatus(res, 201, 'POST /staff');
        assert.match(res.body.id, UUID_RE);
        assert.equal(res.body.email, email.toLowerCase());
        assert.equal(res.body.role, 'clinician');
        assert.equal(res.body.active, true);
        assert.equal(res.body.has_login, true);
        assert.equal(res.body.org_id, w.org.id);
        assert.match(res.body.created_at, RFC3339);
        assert.equal(res.headers.get('etag'), '"1"');
        assert.match(res.headers.get('location'),
            new RegExp(`/api/v1/staff/${res.body.id}$`));

        const rows = await sql('SELECT password_hash FROM logins WHERE ' +
            'staff_id = $1', [res.body.id]);
        assert.match(rows[0].password_hash, /^\$argon2id\$/,
            'only the argon2id hash is stored');

        const login = await api('POST', '/auth/login', {
            body: { email, password: 'a-long-password' } });
        assertStatus(login, 200, 'login of the new staff member');
        assert.equal(login.body.user.role, 'clinician');
    });

    test('test_only_admins_create_update_or_deactivate_staff', async () => {
        for (const who of ['supervisor', 'coordinator', 'clinician']) {
            const token = w[who].token;
            assertProblem(await api('POST', '/staff', { token, body: {
                display_name: 'X', email: `x.${uniq()}@it.test`,
                role: 'clinician' } }), 403, 'forbidden', `${who} POST`);
            assertProblem(await api('PATCH', `/staff/${w.unassigned.id}`,
                { token, body: { display_name: 'Y' } }), 403, 'forbidden',
            `${who} PATCH`);
            assertProblem(await api('DELETE', `/staff/${w.unassigned.id}`,
                { token }), 403, 'forbidden', `${who} DELETE`);
        }
        assertProblem(await api('GET', '/staff', { token: w.patient.token }),
            403, 'forbidden', 'patient GET /staff');
    });

    test('test_staff_validation_and_duplicate_email', async () => {
        const token = w.admin.token;
        assertProblem(await api('POST', '/staff', { token, body: {
            display_name: 'X', email: 'not-an-email', role: 'clinician' } }),
        422, 'validation', 'bad e-mail');
        assertProblem(await api('POST', '/staff', { token, body: {
            display_name: 'X', email: `x.${uniq()}@it.test`, role: 'boss' } }),
        422, 'validation', 'bad role');
        assertProblem(await api('POST', '/staff', { token, body: {
            display_name: 'X', email: `x.${uniq()}@it.test`,
            role: 'clinician', password: 'short' } }),
        422, 'validation', 'short password');
        assertProblem(await api('POST', '/staff', { token, body: {
            display_name: 'X', email: w.clinician.email, role: 'clinician' } }),
        409, 'conflict', 'e-mail in use');
    });

    test('test_staff_update_needs_matching_if_match_and_bumps_etag', async () => {
        const s = await api('POST', '/staff', { token: w.admin.token, body: {
            display_name: 'Etag Person', email: `etag.${uniq()}@it.test`,
            role: 'clinician' } });
        assertStatus(s, 201);
        const id = s.body.id;
        const get = await api('GET', `/staff/${id}`, { token: w.admin.token });
        assertStatus(get, 200);
        const etag = get.headers.get('etag');
        assert.equal(etag, '"1"');

        const ok = await api('PATCH', `/staff/${id}`, {
            token: w.admin.token, headers: { 'if-match': etag },
            body: { display_name: 'Etag Renamed', role: 'coordinator' } });
        assertStatus(ok, 200, 'PATCH with the current ETag');
        assert.equal(ok.body.display_name, 'Etag Renamed');
        assert.equal(ok.body.role, 'coordinator');
        assert.equal(ok.headers.get('etag'), '"2"');

        const stale = await api('PATCH', `/staff/${id}`, {
            token: w.admin.token, headers: { 'if-match': etag },
            body: { display_name: 'Lost Update' } });
        assertProblem(stale, 412, 'precondition-failed', 'stale If-Match');
        const again = await api('GET', `/staff/${id}`,
            { token: w.admin.token });
        assert.equal(again.body.display_name, 'Etag Renamed',
            'a refused update changed nothing');
    });

    test('test_deactivated_staff_cannot_log_in_and_token_stops_working', async () => {
        const email = `leaver.${uniq()}@it.test`;
        const s = await api('POST', '/staff', { token: w.admin.token, body: {
            display_name: 'Leaver', email, role: 'clinician',
            password: 'leaver-password' } });
        assertStatus(s, 201);
        const login = await api('POST', '/auth/login',
            { body: { email, password: 'leaver-password' } });
        assertStatus(login, 200);
        const token = login.body.access_token;
        assertStatus(await api('GET', '/patients', { token }), 200);

        const del = await api('DELETE', `/staff/${s.body.id}`,
            { token: w.admin.token });
        assertStatus(del, 200, 'DELETE /staff/{id}');
        assert.equal(del.body.active, false);
        assert.match(del.body.deactivated_at, RFC3339);

        assertProblem(await api('GET', '/patients', { token }), 401,
            'unauthorized', 'token of a deactivated account');
        assertProblem(await api('POST', '/auth/login',
            { body: { email, password: 'leaver-password' } }), 401,
        'invalid-credentials', 'login of a deactivated account');

        const inactive = await allPages(w.admin.token, '/staff?active=false');
        assert.ok(inactive.some((x) => x.id === s.body.id));
        assert.ok(inactive.every((x) => x.active === false));
    });

    test('test_admin_cannot_deactivate_or_demote_themselves', async () => {
        assertProblem(await api('DELETE', `/staff/${w.admin.id}`,
            { token: w.admin.token }), 422, 'validation');
        assertProblem(await api('PATCH', `/staff/${w.admin.id}`,
            { token: w.admin.token, body: { role: 'clinician' } }),
        422, 'validation');
    });

    test('test_staff_list_paginates_and_stays_in_the_organisation', async () => {
        const items = await allPages(w.supervisor.token, '/staff');
        const ids = new Set(items.map((x) => x.id));
        assert.equal(ids.size, items.length, 'no item twice');
        for (const p of [w.admin, w.supervisor, w.coordinator, w.clinician,
            w.unassigned]) {
            assert.ok(ids.has(p.id), `${p.role} listed`);
        }
        assert.ok(items.every((x) => x.org_id === w.org.id), 'own org only');
        assert.ok(!ids.has(w.other.admin.id));

        const clin = await allPages(w.admin.token, '/staff?role=clinician');
        assert.ok(clin.length >= 2 && clin.every((x) => x.role === 'clinician'));

        assertProblem(await api('GET', '/staff?limit=0',
            { token: w.admin.token }), 422, 'validation');
        assertProblem(await api('GET', '/staff?cursor=garbage',
            { token: w.admin.token }), 422, 'validation');
    });

    test('test_other_organisation_staff_ids_are_not_found', async () => {
        assertProblem(await api('GET', `/staff/${w.other.admin.id}`,
            { token: w.admin.token }), 404, 'not-found');
        assertProblem(await api('PATCH', `/staff/${w.other.clinician.id}`,
            { token: w.admin.token, body: { display_name: 'Hijack' } }),
        404, 'not-found');
        assertProblem(await api('DELETE', `/staff/${w.other.clinician.id}`,
            { token: w.admin.token }), 404, 'not-found');
        const rows = await sql('SELECT display_name, active FROM staff ' +
            'WHERE id = $1', [w.other.clinician.id]);
        assert.equal(rows[0].active, true);
        assert.notEqual(rows[0].display_name, 'Hijack');
    });
});

describe('patients', () => {
    test('test_staff_create_patient_with_contact_data', async () => {
        const res = await api('POST', '/patients', {
            token: w.coordinator.token,
            body: { display_name: 'Contact Patient', email: 'Cp@It.Test',
                mobile: '+4915112345678', sms_capable: true,
                whatsapp: '+4915112345679', language: 'pt-BR' },
        });
        assertStatus(res, 201);
        assert.deepEqual({ ...res.body, id: undefined, created_at: undefined,
            updated_at: undefined }, {
            id: undefined, org_id: w.org.id, display_name: 'Contact Patient',
            email: 'cp@it.test', mobile: '+4915112345678', sms_capable: true,
            whatsapp: '+4915112345679', language: 'pt-BR', has_login: false,
            video_consent: null,
            created_at: undefined, updated_at: undefined,
        });
        assert.equal(res.headers.get('etag'), '"1"');
    });

    test('test_patient_validation', async () => {
        const token = w.admin.token;
        assertProblem(await api('POST', '/patients', { token,
            body: { display_name: 'X', sms_capable: true } }), 422,
        'validation', 'SMS capable without a mobile');
        assertProblem(await api('POST', '/patients', { token,
            body: { display_name: 'X', mobile: '0800 123' } }), 422,
        'validation', 'mobile not E.164');
        assertProblem(await api('POST', '/patients', { token,
            body: { display_name: 'X', language: 'English!' } }), 422,
        'validation', 'language');
        assertProblem(await api('POST', '/patients', { token,
            body: { email: 'x@it.test' } }), 422, 'validation', 'no name');
        assertProblem(await api('POST', '/patients', { token,
            body: { display_name: 7 } }), 422, 'validation', 'name type');
        assertProblem(await api('POST', '/patients', { token, raw: '[1]',
            headers: { 'content-type': 'application/json' } }), 400,
        'invalid-request', 'array body');
    });

    test('test_clinician_creating_a_patient_is_assigned_to_it', async () => {
        const res = await api('POST', '/patients', { token: w.clinician.token,
            body: { display_name: 'Registered By Clinician' } });
        assertStatus(res, 201);
        assertStatus(await api('GET', `/patients/${res.body.id}`,
            { token: w.clinician.token }), 200);
        assertProblem(await api('GET', `/patients/${res.body.id}`,
            { token: w.unassigned.token }), 403, 'forbidden');
    });

    test('test_clinician_lists_only_assigned_patients', async () => {
        const unassignedPatient = await addPatient(w, 'not-mine',
            { assigned: false });
        const mine = await allPages(w.clinician.token, '/patients', 3);
        const ids = mine.map((p) => p.id);
        assert.ok(ids.includes(w.patient.id));
        assert.ok(!ids.includes(unassignedPatient.id));
        const all = await allPages(w.coordinator.token, '/patients', 3);
        assert.ok(all.some((p) => p.id === unassignedPatient.id),
            'org-wide roles see every patient of their organisation');
        assert.ok(all.every((p) => p.org_id === w.org.id));
        const none = await allPages(w.unassigned.token, '/patients');
        assert.ok(!none.some((p) => p.id === w.patient.id));
    });

    test('test_patient_update_with_etag_and_clearing_fields', async () => {
        const p = await addPatient(w, 'update');
        const get = await api('GET', `/patients/${p.id}`,
            { token: w.clinician.token });
        assertStatus(get, 200);
        const res = await api('PATCH', `/patients/${p.id}`, {
            token: w.clinician.token,
            headers: { 'if-match': get.headers.get('etag') },
            body: { mobile: null, sms_capable: false, language: 'de' } });
        assertStatus(res, 200);
        assert.equal(res.body.mobile, null);
        assert.equal(res.body.language, 'de');
        assert.equal(res.headers.get('etag'), '"2"');
        assertProblem(await api('PATCH', `/patients/${p.id}`, {
            token: w.clinician.token, headers: { 'if-match': '"1"' },
            body: { language: 'fr' } }), 412, 'precondition-failed');
        assertProblem(await api('PATCH', `/patients/${p.id}`, {
            token: w.unassigned.token, body: { language: 'fr' } }),
        403, 'forbidden');
        assertProblem(await api('PATCH', `/patients/${p.id}`, {
            token: w.other.admin.token, body: { language: 'fr' } }),
        404, 'not-found');
    });

    test('test_patient_cannot_use_staff_endpoints', async () => {
        assertProblem(await api('GET', `/patients/${w.patient.id}`,
            { token: w.patient.token }), 403, 'forbidden');
        assertProblem(await api('GET', '/patients',
            { token: w.patient.token }), 403, 'forbidden');
    });

    test('test_other_organisation_patient_is_not_found_for_every_role', async () => {
        for (const who of ['admin', 'supervisor', 'coordinator', 'clinician']) {
            const res = await api('GET', `/patients/${w.other.patient.id}`,
                { token: w[who].token });
            assertProblem(res, 404, 'not-found', who);
            assert.ok(!res.text.includes(w.other.patient.name));
        }
        assertProblem(await api('GET', '/patients/not-a-uuid',
            { token: w.admin.token }), 404, 'not-found');
    });
});

describe('assignments', () => {
    test('test_assign_unassign_reassign_keeps_dated_history', async () => {
        const p = await addPatient(w, 'history', { assigned: false });
        const token = w.supervisor.token;
        const route = `/patients/${p.id}/assignments`;

        const a1 = await api('POST', route, { token,
            body: { staff_id: w.unassigned.id } });
        assertStatus(a1, 201, 'assign');
        assert.equal(a1.body.current, true);
        assert.equal(a1.body.ends_at, null);
        assertStatus(await api('GET', `/patients/${p.id}`,
            { token: w.unassigned.token }), 200, 'assigned clinician reads');

        assertProblem(await api('POST', route, { token,
            body: { staff_id: w.unassigned.id } }), 409, 'conflict',
        'assigned twice');

        const end = await api('DELETE', `${route}/${w.unassigned.id}`,
            { token });
        assertStatus(end, 200, 'unassign');
        assert.equal(end.body.current, false);
        assert.match(end.body.ends_at, RFC3339);
        assertProblem(await api('GET', `/patients/${p.id}`,
            { token: w.unassigned.token }), 403, 'forbidden',
        'unassigned clinician');
        assertProblem(await api('DELETE', `${route}/${w.unassigned.id}`,
            { token }), 404, 'not-found', 'nothing current to end');

        const a2 = await api('POST', route, { token,
            body: { staff_id: w.unassigned.id } });
        assertStatus(a2, 201, 'reassign');
        assert.notEqual(a2.body.id, a1.body.id, 'a new dated row');

        const hist = await allPages(token, route, 1);
        assert.deepEqual(hist.map((a) => a.id), [a2.body.id, a1.body.id],
            'newest first');
        const current = await api('GET', `${route}?current=true`, { token });
        assert.deepEqual(current.body.items.map((a) => a.id), [a2.body.id]);
        assertStatus(await api('GET', `/patients/${p.id}`,
            { token: w.unassigned.token }), 200, 'access again');
    });

    test('test_only_org_wide_roles_assign', async () => {
        const p = await addPatient(w, 'assign-perm');
        for (const who of ['clinician', 'unassigned']) {
            assertProblem(await api('POST', `/patients/${p.id}/assignments`,
                { token: w[who].token, body: { staff_id: w.unassigned.id } }),
            403, 'forbidden', who);
        }
        assertProblem(await api('POST', `/patients/${p.id}/assignments`,
            { token: w.admin.token, body: { staff_id: w.other.clinician.id } }),
        404, 'not-found', 'staff of another organisation');
        assertProblem(await api('POST', `/patients/${p.id}/assignments`,
            { token: w.admin.token, body: {} }), 422, 'validation');
    });
});

describe('conventions', () => {
    test('test_unknown_method_is_405_with_allow', async () => {
        const res = await api('PUT', `/patients/${w.patient.id}`,
            { token: w.admin.token, body: {} });
        assertProblem(res, 405, 'method-not-allowed');
        assert.equal(res.headers.get('allow'), 'GET, HEAD, PATCH');
    });

    test('test_query_string_is_decoded', async () => {
        const name = `Query Person ${uniq()}`;
        await api('POST', '/patients', { token: w.admin.token,
            body: { display_name: name } });
        const res = await api('GET', `/patients?q=${encodeURIComponent(name)
            .replace(/%20/g, '+')}`, { token: w.admin.token });
        assertStatus(res, 200);
        assert.deepEqual(res.body.items.map((p) => p.display_name), [name]);
    });

    test('test_search_by_body_keeps_names_out_of_the_url', async () => {
        const name = `Searched Person ${uniq()}`;
        await api('POST', '/patients', { token: w.admin.token,
            body: { display_name: name } });
        const res = await api('POST', '/patients/search',
            { token: w.admin.token, body: { q: name, limit: 10 } });
        assertStatus(res, 200);
        assert.deepEqual(res.body.items.map((p) => p.display_name), [name]);

        const staff = await api('POST', '/staff/search',
            { token: w.admin.token, body: { q: w.admin.email, active: true } });
        assertStatus(staff, 200);
        assert.deepEqual(staff.body.items.map((s) => s.id), [w.admin.id]);

        const bad = await api('POST', '/staff/search',
            { token: w.admin.token, body: { q: ['not', 'a', 'string'] } });
        assertProblem(bad, 422, 'validation');
        const forbidden = await api('POST', '/patients/search',
            { token: w.patient.token, body: {} });
        assertProblem(forbidden, 403, 'forbidden');
    });

    test('test_env_is_loopback', () => {
        assert.match(env.base, /^http:\/\/127\./);
    });
});

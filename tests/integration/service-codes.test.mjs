// Service codes (docs/features.md 34, docs/api.md "Service codes"): admins write,
// all staff of the organisation read, codes are unique per organisation,
// and a virtual_visit session needs a code that allows virtual visits.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    UUID_RE, addPatient, api, assertProblem, assertStatus, closeDb,
    createWorld, loginAll, sql,
} from './lib.mjs';

let w;
let virtual;            // a code that allows virtual visits
let office;             // one that does not

const code = (label) => `${label}-${Math.random().toString(36).slice(2, 8)}`;

function createCode(token, body) {
    return api('POST', '/service-codes', { token, body });
}

before(async () => {
    w = await createWorld('svc');
    await loginAll([w.admin, w.supervisor, w.clinician, w.patient,
        w.other.admin]);
    const a = await createCode(w.admin.token, { code: code('VV'),
        name: 'Home visit', virtual_visits_allowed: true });
    assertStatus(a, 201);
    virtual = a.body;
    const b = await createCode(w.admin.token, { code: code('OF'),
        name: 'Office visit' });
    assertStatus(b, 201);
    office = b.body;
});

after(closeDb);

describe('service codes', () => {
    test('test_admin_creates_a_code: 201 with Location and ETag', async () => {
        const c = code('NEW');
        const res = await createCode(w.admin.token,
            { code: c, name: 'Night visit' });
        assertStatus(res, 201);
        assert.match(res.body.id, UUID_RE);
        assert.equal(res.body.code, c);
        assert.equal(res.body.org_id, w.org.id);
        assert.equal(res.body.virtual_visits_allowed, false);
        assert.equal(res.body.active, true);
        assert.match(res.headers.get('location'),
            new RegExp(`/service-codes/${res.body.id}$`));
        assert.equal(res.headers.get('etag'), '"1"');
        const audit = await sql(`SELECT target_type, outcome FROM audit_log
            WHERE action = 'service_code_create' AND target_id = $1`,
        [res.body.id]);
        assert.deepEqual(audit, [{ target_type: 'service_code',
            outcome: 'success' }]);
    });

    test('test_code_is_unique_per_organisation: 409, other org may reuse it', async () => {
        assertProblem(await createCode(w.admin.token,
            { code: virtual.code, name: 'Again' }), 409, 'conflict');
        assertStatus(await createCode(w.other.admin.token,
            { code: virtual.code, name: 'Theirs' }), 201);
    });

    for (const [body, what] of [
        [{ name: 'No code' }, 'code'], [{ code: 'bad code!', name: 'x' }, 'code'],
        [{ code: 'OK1' }, 'name'],
        [{ code: 'OK2', name: 'x', virtual_visits_allowed: 'yes' },
            'virtual_visits_allowed'],
    ]) {
        test(`test_invalid_code_is_422: ${what}`, async () => {
            const res = await createCode(w.admin.token, body);
            assertProblem(res, 422, 'validation');
            assert.match(res.body.detail, new RegExp(`"${what}"`));
        });
    }

    test('test_only_admins_write: supervisor and clinician 403', async () => {
        for (const p of [w.supervisor, w.clinician]) {
            assertProblem(await createCode(p.token,
                { code: code('X'), name: 'x' }), 403, 'forbidden');
            assertProblem(await api('PATCH', `/service-codes/${office.id}`,
                { token: p.token, body: { name: 'y' } }), 403, 'forbidden');
        }
    });

    test('test_staff_read_the_list_and_one_code', async () => {
        const list = await api('GET',
            '/service-codes?virtual_visits_allowed=true',
            { token: w.clinician.token });
        assertStatus(list, 200);
        assert.deepEqual(list.body.items.map((c) => c.id), [virtual.id]);
        assert.equal(list.body.next_cursor, null);
        const one = await api('GET', `/service-codes/${office.id}`,
            { token: w.clinician.token });
        assertStatus(one, 200);
        assert.equal(one.body.name, 'Office visit');
        assertProblem(await api('GET', `/service-codes/${office.id}`,
            { token: w.other.admin.token }), 404, 'not-found');
        assertProblem(await api('GET', '/service-codes',
            { token: w.patient.token }), 403, 'forbidden');
    });

    test('test_list_pages_with_the_cursor', async () => {
        const first = await api('GET', '/service-codes?limit=1',
            { token: w.admin.token });
        assertStatus(first, 200);
        assert.equal(first.body.items.length, 1);
        assert.ok(first.body.next_cursor);
        const second = await api('GET', '/service-codes?limit=1&cursor=' +
            first.body.next_cursor, { token: w.admin.token });
        assert.notEqual(second.body.items[0].id, first.body.items[0].id);
    });

    test('test_update_honours_if_match', async () => {
        const c = (await createCode(w.admin.token,
            { code: code('UP'), name: 'Before' })).body;
        assertProblem(await api('PATCH', `/service-codes/${c.id}`, {
            token: w.admin.token, body: { name: 'After' },
            headers: { 'if-match': '"7"' } }), 412, 'precondition-failed');
        const ok = await api('PATCH', `/service-codes/${c.id}`, {
            token: w.admin.token,
            body: { name: 'After', virtual_visits_allowed: true },
            headers: { 'if-match': '"1"' } });
        assertStatus(ok, 200);
        assert.equal(ok.body.name, 'After');
        assert.equal(ok.body.virtual_visits_allowed, true);
        assert.equal(ok.headers.get('etag'), '"2"');
        assertProblem(await api('PATCH', `/service-codes/${c.id}`, {
            token: w.admin.token, body: { code: virtual.code } }),
        409, 'conflict');
    });
});

describe('a virtual_visit needs a service code that allows it', () => {
    const visit = (patient, extra) => api('POST', '/sessions', {
        token: w.admin.token,
        body: { kind: 'virtual_visit', patient_id: patient.id, ...extra } });

    test('test_virtual_visit_without_service_code_is_422', async () => {
        const res = await visit(await addPatient(w, 'vv0'), {});
        assertProblem(res, 422, 'validation');
        assert.match(res.body.detail, /"service_code"/);
    });

    test('test_virtual_visit_with_code_not_allowing_it_is_422', async () => {
        const res = await visit(await addPatient(w, 'vv1'),
            { service_code: office.code });
        assertProblem(res, 422, 'validation');
        assert.equal(res.body.detail, `The service code "${office.code}" ` +
            'does not allow virtual visits.');
    });

    test('test_unknown_or_inactive_code_is_422', async () => {
        const c = (await createCode(w.admin.token, { code: code('IN'),
            name: 'Inactive', virtual_visits_allowed: true,
            active: false })).body;
        for (const sc of ['NOPE', c.code]) {
            const res = await visit(await addPatient(w, 'vv2'),
                { service_code: sc });
            assertProblem(res, 422, 'validation');
            assert.match(res.body.detail, /no active service code/);
        }
    });

    test('test_virtual_visit_with_allowed_code_is_stored_on_the_session', async () => {
        const res = await visit(await addPatient(w, 'vv3'),
            { service_code: virtual.code });
        assertStatus(res, 201);
        assert.equal(res.body.service_code, virtual.code);
        const rows = await sql(
            'SELECT service_code_id FROM sessions WHERE id = $1',
            [res.body.id]);
        assert.equal(rows[0].service_code_id, virtual.id);
        const get = await api('GET', `/sessions/${res.body.id}`,
            { token: w.admin.token });
        assert.equal(get.body.service_code, virtual.code);
    });

    test('test_other_kinds_may_name_a_code_and_need_none', async () => {
        const res = await api('POST', '/sessions', { token: w.admin.token,
            body: { kind: 'telehealth', patient_id:
                (await addPatient(w, 'vv4')).id, service_code: office.code } });
        assertStatus(res, 201);
        assert.equal(res.body.service_code, office.code);
        const none = await api('POST', '/sessions', { token: w.admin.token,
            body: { kind: 'telehealth', patient_id:
                (await addPatient(w, 'vv5')).id } });
        assertStatus(none, 201);
        assert.equal(none.body.service_code, null);
    });
});

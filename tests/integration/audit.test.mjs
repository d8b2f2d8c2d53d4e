// The audit log (docs/api.md, "Audit"): a row for every read and write of
// patient data and every session action, allowed or refused; GET /audit
// for admins only and only their organisation's rows; and the module's
// database role cannot change or remove a row.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld, env,
    joinCredential, loginAll, sql, startSession,
} from './lib.mjs';

let w;

before(async () => {
    w = await createWorld('audit');
    await loginAll([w.admin, w.supervisor, w.coordinator, w.clinician,
        w.unassigned, w.patient, w.other.admin]);
});

after(closeDb);

async function rowsFor(target, action) {
    return sql(`SELECT actor_type, actor_id, action, target_type, target_id,
        client_addr, outcome, status FROM audit_log
        WHERE target_id = $1 AND action = $2 ORDER BY id`, [target, action]);
}

describe('what is written', () => {
    test('test_patient_read_and_update_leave_rows_with_actor_address_outcome', async () => {
        const p = await addPatient(w, 'audited');
        assertStatus(await api('GET', `/patients/${p.id}`,
            { token: w.clinician.token }), 200);
        assertProblem(await api('GET', `/patients/${p.id}`,
            { token: w.unassigned.token }), 403, 'forbidden');
        assertStatus(await api('PATCH', `/patients/${p.id}`,
            { token: w.clinician.token, body: { language: 'nl' } }), 200);
        assertProblem(await api('PATCH', `/patients/${p.id}`,
            { token: w.clinician.token, headers: { 'if-match': '"1"' },
                body: { language: 'fr' } }), 412, 'precondition-failed');

        assert.deepEqual(await rowsFor(p.id, 'patient_get'), [
            { actor_type: 'staff', actor_id: w.clinician.id,
                action: 'patient_get', target_type: 'patient',
                target_id: p.id, client_addr: '127.0.0.1',
                outcome: 'success', status: 200 },
            { actor_type: 'staff', actor_id: w.unassigned.id,
                action: 'patient_get', target_type: 'patient',
                target_id: p.id, client_addr: '127.0.0.1',
                outcome: 'denied', status: 403 },
        ]);
        assert.deepEqual((await rowsFor(p.id, 'patient_update'))
            .map((r) => [r.outcome, r.status]),
        [['success', 200], ['conflict', 412]]);
        const [row] = await sql(`SELECT language FROM patients
            WHERE id = $1`, [p.id]);
        assert.equal(row.language, 'nl', 'the refused update changed nothing');
    });

    test('test_patient_create_and_list_and_calls_are_audited', async () => {
        const res = await api('POST', '/patients', { token: w.admin.token,
            body: { display_name: 'Audit Created' } });
        assertStatus(res, 201);
        assert.equal((await rowsFor(res.body.id, 'patient_create')).length, 1,
            'create row names the new patient');
        assertStatus(await api('GET', `/patients/${res.body.id}/calls`,
            { token: w.admin.token }), 200);
        assert.equal((await rowsFor(res.body.id, 'patient_calls')).length, 1);
        const before = await sql(`SELECT count(*)::int AS n FROM audit_log
            WHERE action = 'patient_list' AND actor_id = $1`,
        [w.coordinator.id]);
        assertStatus(await api('GET', '/patients',
            { token: w.coordinator.token }), 200);
        const after = await sql(`SELECT count(*)::int AS n FROM audit_log
            WHERE action = 'patient_list' AND actor_id = $1`,
        [w.coordinator.id]);
        assert.equal(after[0].n, before[0].n + 1);
    });

    test('test_session_start_read_and_join_are_audited', async () => {
        const p = await addPatient(w, 'session');
        const s = await startSession(w.clinician.token, p.id);
        assertStatus(s, 201);
        assertStatus(await api('GET', `/sessions/${s.body.id}`,
            { token: w.clinician.token }), 200);
        assertProblem(await api('GET', `/sessions/${s.body.id}`,
            { token: w.supervisor.token }), 404, 'not-found');
        assertStatus(await joinCredential(w.clinician.token, s.body.id), 200);

        const rows = await sql(`SELECT action, actor_id, outcome, status,
            client_addr FROM audit_log WHERE target_id = $1 ORDER BY id`,
        [s.body.id]);
        assert.deepEqual(rows.map((r) => [r.action, r.actor_id, r.outcome]), [
            ['session_create', w.clinician.id, 'success'],
            ['session_get', w.clinician.id, 'success'],
            ['session_get', w.supervisor.id, 'not_found'],
            ['session_join', w.clinician.id, 'success'],
        ]);
        assert.ok(rows.every((r) => r.client_addr === '127.0.0.1'));
    });
});

describe('GET /audit', () => {
    test('test_only_admins_read_the_audit_log', async () => {
        for (const who of ['supervisor', 'coordinator', 'clinician',
            'patient']) {
            assertProblem(await api('GET', '/audit', { token: w[who].token }),
                403, 'forbidden', who);
        }
    });

    test('test_audit_list_filters_paginates_and_stays_in_the_organisation', async () => {
        const p = await addPatient(w, 'filter');
        for (let i = 0; i < 3; i++) {
            assertStatus(await api('GET', `/patients/${p.id}`,
                { token: w.admin.token }), 200);
        }
        const first = await api('GET',
            `/audit?target_id=${p.id}&action=patient_get&limit=2`,
            { token: w.admin.token });
        assertStatus(first, 200);
        assert.equal(first.body.items.length, 2);
        assert.ok(first.body.next_cursor);
        const second = await api('GET', `/audit?target_id=${p.id}` +
            `&action=patient_get&limit=2&cursor=${first.body.next_cursor}`,
        { token: w.admin.token });
        assert.equal(second.body.items.length, 1);
        assert.equal(second.body.next_cursor, null);
        const all = [...first.body.items, ...second.body.items];
        assert.ok(Number(all[0].id) > Number(all[2].id), 'newest first');
        for (const it of all) {
            assert.equal(it.actor_id, w.admin.id);
            assert.match(it.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        }
        const theirs = await api('GET', `/audit?target_id=${p.id}`,
            { token: w.other.admin.token });
        assertStatus(theirs, 200);
        assert.deepEqual(theirs.body.items, [], 'another organisation\'s ' +
            'admin sees none of these rows');
    });
});

describe('append-only', () => {
    test('test_module_role_cannot_update_delete_or_truncate_audit_rows', async () => {
        const url = new URL(env.pg);
        url.username = 'telehealth';            // the role nginx connects as
        const app = new pg.Client({ connectionString: url.toString() });
        await app.connect();
        try {
            const [{ id }] = (await app.query(
                'SELECT id FROM audit_log ORDER BY id DESC LIMIT 1')).rows;
            for (const stmt of [
                `UPDATE audit_log SET outcome = 'success' WHERE id = ${id}`,
                `DELETE FROM audit_log WHERE id = ${id}`,
                'TRUNCATE audit_log',
            ]) {
                await assert.rejects(app.query(stmt),
                    (e) => e.code === '42501', stmt);
            }
            const ins = await app.query(`INSERT INTO audit_log (action,
                outcome, status) VALUES ('probe', 'success', 200)
                RETURNING id`);
            assert.ok(ins.rows[0].id, 'the role may append');
        } finally {
            await app.end();
        }
    });

    test('test_even_the_owner_cannot_change_rows', async () => {
        await assert.rejects(sql(`UPDATE audit_log SET outcome = 'x'
            WHERE id = (SELECT max(id) FROM audit_log)`), /append-only/);
        await assert.rejects(sql(`DELETE FROM audit_log
            WHERE id = (SELECT max(id) FROM audit_log)`), /append-only/);
    });
});

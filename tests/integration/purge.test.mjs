// The purge (docs/lifecycle.md, "The purge"): telehealth_purge_after a
// session ended, every piece of its content is deleted by the module's
// job, and only ids stay (the session row, its call history, the audit
// log).  The test dates one ended session's end back past the stack's
// telehealth_purge_after (24h) and lets the job (telehealth_purge_interval
// 1s) find it; another ended session, not due, keeps everything.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertStatus, closeDb, createWorld, env, eventually,
    joinAs, joinRoom, loginAll, redis, sql,
} from './lib.mjs';

// the stack's telehealth_chat_files: attachments stored under their id
const FILES = path.join(env.run, 'chat-files');

const png = () => Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'),
    crypto.randomBytes(2048)]);

function upload(token, sessionId, query = '') {
    return api('POST', `/sessions/${sessionId}/files${query}`, {
        token, raw: png(), headers: { 'content-type': 'image/png' },
        timeoutMs: 60000,
    });
}

let w;
let patient;
const conns = [];

// tables that keep a purged session's ids on purpose
const KEPT = new Set(['calls', 'session_participants', 'engagements',
    'chat_files']);

before(async () => {
    w = await createWorld('purge');
    patient = await addPatient(w, 'purge');
    await loginAll([w.clinician, patient]);
});

after(async () => {
    for (const c of conns) {
        await c.session.destroy().catch(() => {});
    }
    await closeDb();
});

// An ended session with content: a name, a guest's e-mail invite (name,
// address, a third party), its notifications, a call with the guest in
// it, console events, a ban in Redis.  Returns {session, marks}: strings
// that only this session's content holds.
async function sessionWithContent(label) {
    const mark = `${label}${crypto.randomBytes(4).toString('hex')}`;
    const marks = {
        name: `Visit ${mark}`,
        guest: `Guest ${mark}`,
        contact: `guest.${mark}@example.org`,
        third: `Third ${mark}`,
        chat: `Chat ${mark}`,
    };
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'telehealth', patient_id: patient.id,
            name: marks.name } });
    assertStatus(res, 201);
    const s = res.body;
    const inv = await api('POST', `/sessions/${s.id}/invites`, {
        token: w.clinician.token,
        body: { channel: 'email', contact: marks.contact,
            invitee: { display_name: marks.guest },
            third_parties: [{ display_name: marks.third,
                relation: 'friend', channel: 'email',
                contact: `third.${mark}@example.org` }] } });
    assertStatus(inv, 201, 'invite');
    conns.push(await joinAs(w.clinician.token, s.id));
    const red = await api('POST', '/invites/redeem', {
        body: { token: inv.body.token, display_name: marks.guest } });
    assertStatus(red, 200, 'redeem');
    conns.push(await joinRoom(red.body.credential));
    // chat: a message with an attachment, and an image filed to the
    // patient (which is the patient's, and stays)
    const att = await upload(w.clinician.token, s.id);
    assertStatus(att, 201, 'attachment');
    assertStatus(await api('POST', `/sessions/${s.id}/messages`, {
        token: w.clinician.token,
        body: { text: marks.chat, file_id: att.body.id } }), 201, 'message');
    const filed = await upload(w.clinician.token, s.id,
        '?file_to_patient=true');
    assertStatus(filed, 201, 'image filed to the patient');
    await redis('SADD', `th:session:${s.id}:banned`, 'guest:someone');
    await redis('HSET', `th:session:${s.id}:roles`, 'guest:someone',
        'viewer');
    assertStatus(await api('POST', `/sessions/${s.id}/close`, {
        token: w.clinician.token, body: { mode: 'close' } }), 202);
    assert.ok(await eventually(async () => (await sql(
        'SELECT 1 FROM sessions WHERE id = $1 AND state = $2',
        [s.id, 'ended'])).length === 1), 'ended');
    // the consumer records the call and the console's events
    assert.ok(await eventually(async () => (await sql(
        'SELECT 1 FROM console_events WHERE session_id = $1',
        [s.id])).length > 0), 'console events');
    return { session: s, marks, invite: inv.body,
        attachment: att.body.id, filed: filed.body.id };
}

// rows of every table of the schema whose text holds s
async function tablesHolding(s) {
    const tables = await sql("SELECT table_name FROM information_schema." +
        "tables WHERE table_schema = 'public' AND table_type = " +
        "'BASE TABLE' AND table_name <> 'schema_migrations'");
    const found = [];
    for (const { table_name: t } of tables) {
        const rows = await sql(`SELECT count(*)::int AS n FROM "${t}" x ` +
            'WHERE x::text LIKE $1', [`%${s}%`]);
        if (rows[0].n > 0) {
            found.push(t);
        }
    }
    return found;
}

// tables with a session_id column that have rows of the session
async function tablesWithSession(id) {
    const tables = await sql("SELECT table_name FROM information_schema." +
        "columns WHERE table_schema = 'public' AND column_name = " +
        "'session_id'");
    const found = [];
    for (const { table_name: t } of tables) {
        const rows = await sql(`SELECT count(*)::int AS n FROM "${t}" ` +
            'WHERE session_id = $1', [id]);
        if (rows[0].n > 0) {
            found.push(t);
        }
    }
    return found.sort();
}

describe('the purge', () => {
    let a;
    let b;

    before(async () => {
        a = await sessionWithContent('a');
        b = await sessionWithContent('b');
        for (const c of conns.splice(0)) {
            await c.session.destroy().catch(() => {});
        }
    });

    test('test_an_ended_session_keeps_its_content_until_due', async () => {
        for (const x of [a, b]) {
            for (const m of Object.values(x.marks)) {
                assert.ok((await tablesHolding(m)).length > 0,
                    `"${m}" is stored before the purge`);
            }
        }
        await new Promise((r) => setTimeout(r, 2500));
        const rows = await sql('SELECT purged_at FROM sessions WHERE ' +
            'id = ANY($1)', [[a.session.id, b.session.id]]);
        assert.deepEqual(rows.map((r) => r.purged_at), [null, null],
            'not purged before telehealth_purge_after');
    });

    test('test_purge_deletes_every_trace_but_the_ids', async () => {
        const before_b = await tablesWithSession(b.session.id);
        const calls_a = await sql('SELECT c.id, c.started_at, c.ended_at, ' +
            'cp.participant FROM calls c JOIN call_participants cp ON ' +
            'cp.call_id = c.id WHERE c.session_id = $1 ORDER BY 4',
        [a.session.id]);
        const audit_a = await sql('SELECT count(*)::int AS n FROM ' +
            'audit_log WHERE target_id = $1', [a.session.id]);

        await sql("UPDATE sessions SET ended_at = now() - interval " +
            "'25 hours' WHERE id = $1", [a.session.id]);
        const purged = await eventually(async () => {
            const r = await sql('SELECT * FROM sessions WHERE id = $1',
                [a.session.id]);
            return r[0].purged_at ? r[0] : null;
        }, 10000, 200);
        assert.ok(purged, 'the job purged the due session');

        // no table holds any of its content
        for (const m of Object.values(a.marks)) {
            assert.deepEqual(await tablesHolding(m), [],
                `"${m}" is gone from every table`);
        }
        assert.deepEqual(await tablesWithSession(a.session.id),
            [...new Set(calls_a.length
                ? ['calls', 'chat_files', 'session_participants']
                : ['chat_files', 'session_participants'])].sort(),
            'only the kept tables name the session');
        // the attachment's file is unlinked; the image filed to the
        // patient stays, row and file
        assert.ok(await eventually(async () =>
            !fs.existsSync(path.join(FILES, a.attachment)), 10000, 200),
        'the attachment is unlinked');
        assert.deepEqual((await sql('SELECT id, patient_id FROM chat_files ' +
            'WHERE session_id = $1', [a.session.id])).map((r) => r.id),
        [a.filed], 'only the filed image\'s row stays');
        assert.ok(fs.existsSync(path.join(FILES, a.filed)),
            'the filed image\'s file stays');
        assert.ok(fs.existsSync(path.join(FILES, b.attachment)),
            'the other session\'s attachment stays');
        for (const t of await tablesWithSession(a.session.id)) {
            assert.ok(KEPT.has(t), `${t} is kept on purpose`);
        }
        assert.equal(purged.name, null, 'the name is gone');
        assert.equal(purged.state, 'ended');
        assert.ok(purged.ended_at, 'when it ended stays');

        // who, when, how long stays; so does the audit log
        const calls_after = await sql('SELECT c.id, c.started_at, ' +
            'c.ended_at, cp.participant FROM calls c JOIN ' +
            'call_participants cp ON cp.call_id = c.id WHERE ' +
            'c.session_id = $1 ORDER BY 4', [a.session.id]);
        assert.deepEqual(calls_after, calls_a, 'the call history stays');
        assert.ok(calls_a.some((c) =>
            c.participant === `guest:${a.invite.id}`), 'the guest by id');
        const audit_after = await sql('SELECT count(*)::int AS n FROM ' +
            'audit_log WHERE target_id = $1', [a.session.id]);
        assert.ok(audit_after[0].n >= audit_a[0].n, 'the audit log stays');

        // Redis: its bans and roles are gone
        assert.equal(await redis('EXISTS',
            `th:session:${a.session.id}:banned`,
            `th:session:${a.session.id}:roles`), '0');

        // the API shows what is left
        const got = await api('GET', `/sessions/${a.session.id}`,
            { token: w.clinician.token });
        assertStatus(got, 200);
        assert.ok(got.body.purged_at, 'purged_at in the session');
        assert.equal(got.body.name, null);
        const inv = await api('GET', `/sessions/${a.session.id}/invites`,
            { token: w.clinician.token });
        assertStatus(inv, 200);
        assert.deepEqual(inv.body.items, [], 'no invites left');

        // the other session is untouched
        assert.deepEqual(await tablesWithSession(b.session.id), before_b);
        for (const m of Object.values(b.marks)) {
            assert.ok((await tablesHolding(m)).length > 0,
                `"${m}" of the other session stays`);
        }
        assert.equal(await redis('EXISTS',
            `th:session:${b.session.id}:banned`), '1');
        const rb = await sql('SELECT purged_at, name FROM sessions ' +
            'WHERE id = $1', [b.session.id]);
        assert.equal(rb[0].purged_at, null);
        assert.equal(rb[0].name, b.marks.name);
    });

    test('test_queued_files_are_unlinked_and_leave_the_queue', async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-purge-'));
        const file = path.join(dir, 'attachment.pdf');
        fs.writeFileSync(file, '%PDF-1.4 test');
        fs.chmodSync(dir, 0o777);
        fs.chmodSync(file, 0o666);
        const gone = path.join(dir, 'already-gone.png');
        const rows = await sql('INSERT INTO purge_files (session_id, path) ' +
            'VALUES ($1, $2), ($1, $3) RETURNING id',
        [a.session.id, file, gone]);
        const done = await eventually(async () => (await sql(
            'SELECT 1 FROM purge_files WHERE id = ANY($1)',
            [rows.map((r) => r.id)])).length === 0, 10000, 200);
        assert.ok(done, 'both left the queue (a missing file counts)');
        assert.equal(fs.existsSync(file), false, 'the file is unlinked');
        fs.rmSync(dir, { recursive: true, force: true });
    });
});

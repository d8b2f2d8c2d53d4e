// Chat inside a session (docs/api.md, "Chat"): staff, the patient and a
// guest holding a redeemed link post messages that everyone in the session
// receives live on GET /me/events and finds in the paginated history;
// attachments are typed by their bytes (415), limited in size (413),
// scanned by clamd (the stack's database holds the EICAR signature), sent
// by nginx itself from its internal location, and never to anyone outside
// the session; images a chair files to the patient follow the rules of
// call history (GET /patients/{id}/files).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld, env,
    eventually, loginAll, sql,
} from './lib.mjs';

const FILES = path.join(env.run, 'chat-files');
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-' +
    'FILE!$H+H*';

let w;
const streams = [];

// A server-sent events stream (GET /me/events), parsed as it arrives.
function openStream(token) {
    return new Promise((resolve, reject) => {
        const req = http.get(`${env.api}/me/events`,
            { headers: { authorization: `Bearer ${token}` } }, (res) => {
                const s = { req, res, status: res.statusCode, events: [],
                    waiters: [] };
                let buf = '';
                res.setEncoding('utf8');
                res.on('data', (chunk) => {
                    buf += chunk;
                    let i;
                    while ((i = buf.indexOf('\n\n')) >= 0) {
                        const block = buf.slice(0, i);
                        buf = buf.slice(i + 2);
                        const ev = {};
                        for (const line of block.split('\n')) {
                            const k = line.indexOf(':');
                            if (k > 0) {
                                ev[line.slice(0, k)] =
                                    line.slice(k + 1).replace(/^ /, '');
                            }
                        }
                        if (ev.data) {
                            ev.json = JSON.parse(ev.data);
                            s.events.push(ev);
                        }
                    }
                    s.waiters.splice(0).forEach((f) => f());
                });
                streams.push(s);
                resolve(s);
            });
        req.on('error', reject);
    });
}

// the message event with this text, within a second and a half
async function messageArrives(s, text) {
    const end = Date.now() + 1500;
    for (;;) {
        const ev = s.events.find((e) => e.event === 'message'
            && e.json.message && e.json.message.text === text);
        if (ev) {
            return ev;
        }
        if (Date.now() > end) {
            assert.fail(`no message "${text}"; got ${JSON.stringify(
                s.events.map((e) => [e.event, e.json.message?.text]))}`);
        }
        await new Promise((r) => {
            s.waiters.push(r);
            setTimeout(r, 100);
        });
    }
}

function upload(token, sessionId, bytes, type, query = '') {
    return api('POST', `/sessions/${sessionId}/files${query}`, {
        token, raw: bytes, headers: { 'content-type': type },
        timeoutMs: 60000,
    });
}

function post(token, sessionId, body) {
    return api('POST', `/sessions/${sessionId}/messages`, { token, body });
}

const pdf = (n = 4096) => Buffer.concat([Buffer.from('%PDF-1.4\n'),
    crypto.randomBytes(n)]);
const png = () => Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'),
    crypto.randomBytes(2048)]);

const storedFiles = () => fs.readdirSync(FILES).sort();

// A video call of the clinician with a patient of its own, and a guest
// whose link was redeemed (its answer carries the guest's access token).
async function callWithGuest(label, guestName = 'Aunt May') {
    const patient = await addPatient(w, label);
    await loginAll([patient]);
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'video_call', patient_id: patient.id,
            access: 'invitation' } });
    assertStatus(res, 201, 'POST /sessions');
    const session = res.body;
    const inv = await api('POST', `/sessions/${session.id}/invites`,
        { token: w.clinician.token, body: { channel: 'link' } });
    assertStatus(inv, 201, 'POST /sessions/{id}/invites');
    const red = await api('POST', '/invites/redeem',
        { body: { token: inv.body.token, display_name: guestName } });
    assertStatus(red, 200, 'POST /invites/redeem');
    assert.equal(typeof red.body.access_token, 'string',
        'the redeem answers the guest\'s access token');
    return { session, patient, guest: { token: red.body.access_token,
        invite: inv.body.id } };
}

before(async () => {
    w = await createWorld('chat');
    await loginAll([w.clinician, w.patient, w.admin, w.coordinator,
        w.unassigned, w.other.admin]);
});

after(async () => {
    for (const s of streams) {
        s.req.destroy();
    }
    await closeDb();
});

describe('chat messages', () => {
    let call;

    before(async () => {
        call = await callWithGuest('msgs');
    });

    test('test_chat_between_staff_patient_and_guest_is_live_and_in_history',
        async () => {
            const { session, patient, guest } = call;
            const who = [
                { name: 'clinician', token: w.clinician.token },
                { name: 'patient', token: patient.token },
                { name: 'guest', token: guest.token },
            ];
            for (const p of who) {
                p.stream = await openStream(p.token);
                assert.equal(p.stream.status, 200, `${p.name} has a stream`);
            }
            const texts = ['Hello from the clinician',
                'Grüße vom Patienten ✓', 'Hello, the guest here'];
            for (let i = 0; i < 3; i++) {
                const res = await post(who[i].token, session.id,
                    { text: texts[i] });
                assertStatus(res, 201, `${who[i].name} posts`);
                assert.equal(res.body.text, texts[i]);
                assert.equal(res.body.author.participant.split(':')[0],
                    ['staff', 'patient', 'guest'][i]);
                for (const p of who) {
                    const ev = await messageArrives(p.stream, texts[i]);
                    assert.equal(ev.json.session_id, session.id);
                }
            }
            const names = (await post(w.clinician.token, session.id,
                { text: 'names?' })).body;
            assert.equal(names.author.name, `Clinician ${w.tag}`);

            for (const p of who) {
                const page = await api('GET',
                    `/sessions/${session.id}/messages?limit=2`,
                    { token: p.token });
                assertStatus(page, 200, `${p.name} reads the history`);
                assert.deepEqual(page.body.items.map((m) => m.text),
                    ['names?', texts[2]], 'newest first');
                assert.ok(page.body.next_cursor);
                const rest = await api('GET', `/sessions/${session.id}` +
                    `/messages?limit=2&cursor=${page.body.next_cursor}`,
                { token: p.token });
                assert.deepEqual(rest.body.items.map((m) => m.text),
                    [texts[1], texts[0]]);
            }
            const guestMsg = (await api('GET',
                `/sessions/${session.id}/messages`,
                { token: w.clinician.token })).body.items
                .find((m) => m.text === texts[2]);
            assert.equal(guestMsg.author.name, 'Aunt May');
        });

    test('test_nobody_outside_the_session_reads_or_posts', async () => {
        const { session } = call;
        const other = await callWithGuest('msgs-other', 'Other Guest');
        for (const [who, token] of [['other organisation', w.other.admin.token],
            ['clinician not on it', w.unassigned.token],
            ['patient of another session', other.patient.token],
            ['guest of another session', other.guest.token]]) {
            assertProblem(await api('GET', `/sessions/${session.id}/messages`,
                { token }), 404, 'not-found', who);
            assertProblem(await post(token, session.id, { text: 'x' }), 404,
                'not-found', who);
        }
        // a guest's token reaches the chat and nothing else
        for (const route of ['/me', '/patients', '/sessions']) {
            assertProblem(await api('GET', route,
                { token: call.guest.token }), 403, 'forbidden', route);
        }
        // revoked link: the token stops working
        await api('DELETE',
            `/sessions/${other.session.id}/invites/${other.guest.invite}`,
            { token: w.clinician.token });
        assertProblem(await api('GET',
            `/sessions/${other.session.id}/messages`,
        { token: other.guest.token }), 401, 'unauthorized', 'revoked link');
    });

    test('test_empty_and_too_long_messages_are_refused', async () => {
        const { session } = call;
        assertProblem(await post(w.clinician.token, session.id, {}), 422,
            'validation', 'empty');
        assertProblem(await post(w.clinician.token, session.id,
            { text: 'x'.repeat(2001) }), 422, 'validation', 'too long');
    });
});

describe('chat attachments', () => {
    let call;

    before(async () => {
        call = await callWithGuest('files');
    });

    test('test_upload_over_the_size_limit_is_413', async () => {
        const before = storedFiles();
        const big = Buffer.concat([Buffer.from('%PDF-1.4\n'),
            Buffer.alloc(6 * 1024 * 1024 + 1)]);
        assertProblem(await upload(w.clinician.token, call.session.id, big,
            'application/pdf'), 413, 'payload-too-large', '6 MB + 10 bytes');
        await eventually(async () => JSON.stringify(storedFiles())
            === JSON.stringify(before), 5000, 50);
        assert.deepEqual(storedFiles(), before, 'nothing stored');
    });

    test('test_wrong_type_is_415', async () => {
        const before = storedFiles();
        assertProblem(await upload(w.clinician.token, call.session.id,
            Buffer.from('this is not a PDF at all'), 'application/pdf'),
        415, 'unsupported-media-type', 'a .pdf that is text');
        assertProblem(await upload(w.clinician.token, call.session.id,
            png(), 'application/pdf'), 415, 'unsupported-media-type',
        'a PNG declared as PDF');
        assertProblem(await upload(w.clinician.token, call.session.id,
            Buffer.from('GIF89a......'), 'image/gif'), 415,
        'unsupported-media-type', 'a GIF');
        await eventually(async () => JSON.stringify(storedFiles())
            === JSON.stringify(before), 5000, 50);
        assert.deepEqual(storedFiles(), before, 'nothing stored');
    });

    test('test_download_is_served_by_nginx_to_everyone_in_the_session',
        async () => {
            const bytes = pdf(300 * 1024);
            const up = await upload(call.guest.token, call.session.id, bytes,
                'application/octet-stream');
            assertStatus(up, 201, 'the guest uploads a PDF');
            assert.equal(up.body.content_type, 'application/pdf');
            assert.equal(up.body.size, bytes.length);
            assert.ok(fs.existsSync(path.join(FILES, up.body.id)),
                'stored under its id');

            const msg = await post(call.guest.token, call.session.id,
                { text: 'my report', file_id: up.body.id });
            assertStatus(msg, 201, 'message with the attachment');
            assert.equal(msg.body.attachment.id, up.body.id);
            assertProblem(await post(w.clinician.token, call.session.id,
                { file_id: up.body.id }), 422, 'validation',
            'someone else\'s upload');

            for (const token of [w.clinician.token, call.patient.token,
                call.guest.token]) {
                const res = await fetch(
                    `${env.api}/sessions/${call.session.id}/files/` +
                    up.body.id, { headers: { authorization:
                        `Bearer ${token}` } });
                assert.equal(res.status, 200);
                const got = Buffer.from(await res.arrayBuffer());
                assert.ok(got.equals(bytes), 'the same bytes');
                assert.equal(res.headers.get('content-type'),
                    'application/pdf');
                assert.equal(res.headers.get('content-disposition'),
                    `attachment; filename="${up.body.id}.pdf"`);
                assert.equal(res.headers.get('x-content-type-options'),
                    'nosniff');
                assert.equal(res.headers.get('content-length'),
                    String(bytes.length));
                // nginx's static answer: it serves ranges too
                assert.equal(res.headers.get('accept-ranges'), 'bytes');
            }

            const other = await callWithGuest('files-other', 'Other');
            for (const [who, token, sid] of [
                ['other organisation', w.other.admin.token, call.session.id],
                ['clinician not on it', w.unassigned.token, call.session.id],
                ['guest of another session', other.guest.token,
                    call.session.id],
                ['the file under another session', w.clinician.token,
                    other.session.id]]) {
                assertProblem(await api('GET',
                    `/sessions/${sid}/files/${up.body.id}`, { token }),
                404, 'not-found', who);
            }
            assertProblem(await api('GET',
                `/sessions/${call.session.id}/files/${up.body.id}`),
            401, 'unauthorized', 'no token');
            const direct = await fetch(`${env.base}/_telehealth_files/` +
                up.body.id);
            assert.equal(direct.status, 404, 'the store is internal');
        });

    test('test_clamd_refuses_a_file_with_the_eicar_signature', async () => {
        const before = storedFiles();
        const bad = Buffer.concat([Buffer.from('%PDF-1.4\n'),
            Buffer.from(EICAR), Buffer.from('\n%%EOF\n')]);
        const res = await upload(w.clinician.token, call.session.id, bad,
            'application/pdf');
        assertProblem(res, 422, 'malware-detected', 'EICAR');
        assert.match(res.body.detail, /malware/);
        // unlinked when the request's pool goes, which may be just after
        // the answer left
        await eventually(async () => JSON.stringify(storedFiles())
            === JSON.stringify(before), 5000, 50);
        assert.deepEqual(storedFiles(), before, 'the file is gone');
        const rows = await sql('SELECT count(*)::int AS n FROM chat_files ' +
            "WHERE session_id = $1 AND state <> 'clean'", [call.session.id]);
        assert.equal(rows[0].n, 0, 'no row left');
    });
});

describe('images filed to the patient', () => {
    test('test_chair_files_an_image_visible_by_call_history_rules',
        async () => {
            const call = await callWithGuest('filed');
            const p = call.patient;
            assertProblem(await upload(p.token, call.session.id, png(),
                'image/png', '?file_to_patient=true'), 403, 'forbidden',
            'the patient is no chair');
            assertProblem(await upload(w.clinician.token, call.session.id,
                pdf(), 'application/pdf', '?file_to_patient=true'), 422,
            'validation', 'a PDF is no image');

            const up = await upload(w.clinician.token, call.session.id,
                png(), 'image/png', '?file_to_patient=true');
            assertStatus(up, 201, 'the chair files a still');
            assert.equal(up.body.patient_id, p.id);

            const list = (token) => api('GET', `/patients/${p.id}/files`,
                { token });
            const ids = (res) => res.body.items.map((f) => f.id);

            let res = await list(w.clinician.token);
            assertStatus(res, 200, 'the chair lists the patient\'s files');
            assert.deepEqual(ids(res), [up.body.id]);
            const one = await fetch(`${env.api}${res.body.items[0].url}`,
                { headers: { authorization: `Bearer ${w.clinician.token}` } });
            assert.equal(one.status, 200);
            assert.equal(one.headers.get('content-type'), 'image/png');

            // an org-wide role that took no part sees none of it
            res = await list(w.admin.token);
            assertStatus(res, 200);
            assert.deepEqual(ids(res), []);
            assertProblem(await list(p.token), 403, 'forbidden', 'patient');
            assertProblem(await list(w.other.admin.token), 404, 'not-found',
                'other organisation');

            // unassigned: out of sight; reassigned: back
            await sql('UPDATE assignments SET ends_at = now() ' +
                'WHERE staff_id = $1 AND patient_id = $2 AND ends_at IS NULL',
            [w.clinician.id, p.id]);
            assertProblem(await list(w.clinician.token), 403, 'forbidden',
                'unassigned');
            assertProblem(await api('GET',
                `/patients/${p.id}/files/${up.body.id}`,
                { token: w.clinician.token }), 403, 'forbidden',
            'unassigned download');
            await sql('INSERT INTO assignments (org_id, staff_id, patient_id) ' +
                'VALUES ($1, $2, $3)', [w.org.id, w.clinician.id, p.id]);
            assert.deepEqual(ids(await list(w.clinician.token)), [up.body.id]);

            const audit = await sql('SELECT count(*)::int AS n FROM audit_log ' +
                "WHERE action IN ('patient_files', 'patient_file_get') " +
                'AND target_id = $1 AND actor_id = $2', [p.id, w.clinician.id]);
            assert.ok(audit[0].n >= 5, `every read is audited (${audit[0].n})`);
        });
});

describe('the purge of a session\'s chat', () => {
    test('test_purge_removes_one_sessions_messages_and_files_only',
        async () => {
            const a = await callWithGuest('purge-a');
            const b = await callWithGuest('purge-b');
            const files = {};
            for (const c of [a, b]) {
                const up = await upload(w.clinician.token, c.session.id,
                    png(), 'image/png');
                assertStatus(up, 201);
                files[c.session.id] = up.body.id;
                assertStatus(await post(w.clinician.token, c.session.id,
                    { text: 'to purge', file_id: up.body.id }), 201);
            }
            const exported = await sql(
                'SELECT * FROM th_chat_export($1)', [a.session.id]);
            assert.equal(exported.length, 1);
            assert.equal(exported[0].author_name, `Clinician ${w.tag}`);
            assert.equal(exported[0].file_id, files[a.session.id]);

            const purged = await sql(
                'SELECT file_id FROM th_chat_purge_session($1)',
                [a.session.id]);
            assert.deepEqual(purged.map((r) => r.file_id),
                [files[a.session.id]]);
            // the purge's caller unlinks what it answered
            for (const r of purged) {
                fs.unlinkSync(path.join(FILES, r.file_id));
            }
            assert.ok(fs.existsSync(path.join(FILES, files[b.session.id])),
                'the other session\'s file stays');
            for (const t of ['chat_messages', 'chat_files']) {
                const [x] = await sql(`SELECT count(*)::int AS n FROM ${t} ` +
                    'WHERE session_id = $1', [a.session.id]);
                assert.equal(x.n, 0, `${t} of the purged session`);
                const [y] = await sql(`SELECT count(*)::int AS n FROM ${t} ` +
                    'WHERE session_id = $1', [b.session.id]);
                assert.equal(y.n, 1, `${t} of the other session`);
            }
        });
});

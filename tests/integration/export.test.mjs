// GET /sessions/{id}/export.pdf (docs/api.md, "Export"): the record of a
// session for its chairs while its content exists, read back with
// pdftotext (poppler-utils): times, participants with non-ASCII names,
// chat messages with their time and author, attachments (images shown).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import {
    addStaff, api, assertProblem, assertStatus, closeDb, createWorld, env,
    eventually, joinAs, loginAll, sql,
} from './lib.mjs';

let w;
let patient;
let broadcaster;
let session;
let dir;
const conns = [];

const PATIENT_NAME = 'Zoë Ångström Дмитриева';
const SESSION_NAME = 'Visite à domicile — Ürümqi';

async function fetchPdf(token, id = session.id) {
    const res = await fetch(`${env.api}/sessions/${id}/export.pdf`,
        { headers: { authorization: `Bearer ${token}` } });
    const buf = Buffer.from(await res.arrayBuffer());
    let body = null;
    try {
        body = JSON.parse(buf.toString('utf8'));
    } catch {
        body = null;
    }
    return { status: res.status, headers: res.headers, buf,
        text: buf.toString('latin1'), body };
}

function pdfText(buf) {
    const file = path.join(dir, `${crypto.randomBytes(4).toString('hex')}.pdf`);
    fs.writeFileSync(file, buf);
    return execFileSync('pdftotext', ['-q', '-enc', 'UTF-8', file, '-'])
        .toString('utf8');
}

// a w x h PNG of one colour
function png(width, height) {
    const crcTable = Array.from({ length: 256 }, (_, n) => {
        let c = n;
        for (let k = 0; k < 8; k++) {
            c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        }
        return c >>> 0;
    });
    const crc = (b) => {
        let c = 0xffffffff;
        for (const x of b) {
            c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
        }
        return (c ^ 0xffffffff) >>> 0;
    };
    const chunk = (type, data) => {
        const len = Buffer.alloc(4);
        len.writeUInt32BE(data.length);
        const td = Buffer.concat([Buffer.from(type), data]);
        const c = Buffer.alloc(4);
        c.writeUInt32BE(crc(td));
        return Buffer.concat([len, td, c]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8;
    ihdr[9] = 2;
    const row = Buffer.concat([Buffer.from([0]),
        Buffer.alloc(width * 3, 0x66)]);
    const raw = Buffer.concat(Array.from({ length: height }, () => row));
    return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
        chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)),
        chunk('IEND', Buffer.alloc(0))]);
}

before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-export-'));
    fs.chmodSync(dir, 0o755);
    w = await createWorld('export');
    const rows = await sql('INSERT INTO patients (org_id, display_name, ' +
        "email, language) VALUES ($1, $2, $3, 'de') RETURNING id",
    [w.org.id, PATIENT_NAME, `zoe.${w.tag}@it.test`.toLowerCase()]);
    patient = { id: rows[0].id };
    await sql('INSERT INTO assignments (org_id, staff_id, patient_id) ' +
        'VALUES ($1, $2, $3)', [w.org.id, w.clinician.id, patient.id]);
    broadcaster = await addStaff(w, 'clinician', 'exp');
    await loginAll([w.clinician, w.patient, w.other.admin, broadcaster]);
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'telehealth', patient_id: patient.id,
            name: SESSION_NAME, participants: [{ type: 'staff',
                id: broadcaster.id, role: 'broadcaster' }] } });
    assertStatus(res, 201);
    session = res.body;
    conns.push(await joinAs(w.clinician.token, session.id));
});

after(async () => {
    for (const c of conns) {
        await c.session.destroy().catch(() => {});
    }
    await closeDb();
    fs.rmSync(dir, { recursive: true, force: true });
});

describe('the export', () => {
    test('test_chair_exports_the_session_with_non_ascii_names', async () => {
        const res = await fetchPdf(w.clinician.token);
        assert.equal(res.status, 200, res.text.slice(0, 300));
        assert.equal(res.headers.get('content-type'), 'application/pdf');
        assert.match(res.headers.get('content-disposition'),
            new RegExp(`^attachment; filename="session-${session.id}\\.pdf"`));
        assert.equal(res.headers.get('cache-control'), 'no-store');
        assert.ok(res.buf.subarray(0, 5).equals(Buffer.from('%PDF-')),
            'a PDF');
        const text = pdfText(res.buf);
        assert.match(text, new RegExp(SESSION_NAME), 'the session\'s name');
        assert.match(text, new RegExp(PATIENT_NAME), 'the patient, by name');
        assert.match(text, new RegExp(w.clinician.name), 'the chair');
        assert.match(text, /Started: \d{4}-\d\d-\d\d \d\d:\d\d \(UTC\)/);
        assert.match(text, /Ended: not yet/);
        assert.match(text, /No messages\./);
        const audit = await sql("SELECT status FROM audit_log WHERE " +
            "action = 'session_export' AND target_id = $1", [session.id]);
        assert.deepEqual(audit.map((a) => a.status), [200], 'audited');
    });

    test('test_messages_with_time_author_and_attachments', async () => {
        // the session's chat, posted through the API: an image shown in
        // the PDF, a PDF listed, a long message that wraps
        const upload = async (raw, type) => {
            const up = await api('POST', `/sessions/${session.id}/files`, {
                token: w.clinician.token, raw,
                headers: { 'content-type': type }, timeoutMs: 60000 });
            assertStatus(up, 201, `upload of ${type}`);
            return up.body.id;
        };
        const post = async (text, fileId) => assertStatus(await api('POST',
            `/sessions/${session.id}/messages`, { token: w.clinician.token,
                body: { text, file_id: fileId } }), 201, 'message');
        const long = 'Verband täglich wechseln. '.repeat(20);
        await post('Здравствуйте, the wound looks better. 谢谢',
            await upload(png(64, 48), 'image/png'));
        await post(long, await upload(Buffer.concat([
            Buffer.from('%PDF-1.4\n'), crypto.randomBytes(512)]),
        'application/pdf'));

        const res = await fetchPdf(w.clinician.token);
        assert.equal(res.status, 200, res.text.slice(0, 300));
        const text = pdfText(res.buf);
        assert.match(text, new RegExp(
            `\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+${w.clinician.name}`),
        'time and author');
        assert.match(text, /Здравствуйте, the wound looks better\./);
        assert.match(text, /Attachment: image\.png \(image\/png\)/);
        assert.match(text, /Attachment: document\.pdf \(application\/pdf\)/);
        assert.doesNotMatch(text, /No messages\./);
        const words = text.replace(/\s+/g, ' ')
            .match(/Verband täglich wechseln\./g) || [];
        assert.equal(words.length, 20, 'a long message wraps, all of it');
        const file = path.join(dir, 'images.pdf');
        fs.writeFileSync(file, res.buf);
        const images = execFileSync('pdfimages', ['-list', file])
            .toString().trim().split('\n').slice(2);
        assert.equal(images.length, 1, 'the image is shown');
        assert.match(images[0], /\s64\s+48\s/);
    });

    test('test_only_its_chairs_export_it', async () => {
        assertProblem(await fetchPdf(broadcaster.token), 403, 'forbidden',
            'a broadcaster');
        assertProblem(await fetchPdf(w.patient.token), 403, 'forbidden',
            'a patient');
        assertProblem(await fetchPdf(w.other.admin.token), 404, 'not-found',
            'another organisation');
        assertProblem(await fetchPdf('not-a-token'), 401,
            'unauthorized', 'no valid token');
        assertProblem(await fetchPdf(w.clinician.token, 'not-an-id'), 404,
            'not-found');
    });

    test('test_no_export_once_purged', async () => {
        assertStatus(await api('POST', `/sessions/${session.id}/close`, {
            token: w.clinician.token, body: { mode: 'close' } }), 202);
        assert.ok(await eventually(async () => (await sql(
            "SELECT 1 FROM sessions WHERE id = $1 AND state = 'ended'",
            [session.id])).length === 1), 'ended');
        const ended = await fetchPdf(w.clinician.token);
        assert.equal(ended.status, 200, 'reachable after the close');
        assert.match(pdfText(ended.buf), /Ended: \d{4}-\d\d-\d\d \d\d:\d\d/);
        await sql("UPDATE sessions SET ended_at = now() - interval " +
            "'25 hours' WHERE id = $1", [session.id]);
        assert.ok(await eventually(async () => (await sql(
            'SELECT 1 FROM sessions WHERE id = $1 AND purged_at IS NOT NULL',
            [session.id])).length === 1, 10000, 200), 'purged');
        const res = await fetchPdf(w.clinician.token);
        assertProblem(res, 404, 'not-found');
        assert.equal(res.body.detail,
            'The content of this session has been deleted.');
    });
});

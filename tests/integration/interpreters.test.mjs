// Interpreting organisations and interpreter requests (docs/features.md 6 and 20;
// docs/api.md, "Interpreters"): the register, the managers' accept and
// refuse links, the first accept winning, the interpreter's link into a
// call in progress, the held invite sent only after an accept, and the
// refuse and timeout paths that e-mail the requester.  The stack runs
// with telehealth_interpreter_timeout 3s; e-mails arrive at the SMTP sink
// the test starts.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    eventually, joinRoom, leaveRoom, loginAll, sql, startSmtpSink,
} from './lib.mjs';

let w;
let n = 0;
let smtp;

before(async () => {
    smtp = await startSmtpSink();
    w = await createWorld('interp');
    await loginAll([w.admin, w.clinician, w.coordinator, w.other.admin]);
});

after(async () => {
    await smtp?.close();
    await closeDb();
});

// the e-mails that arrived for an address, once n have
const mailsTo = async (to, k = 1) => (await eventually(
    () => smtp.to(to).length >= k, 8000)) && smtp.to(to);

const IO = '/interpreting-organisations';

async function interpOrg(languages, active = true) {
    n += 1;
    const res = await api('POST', IO, { token: w.admin.token, body: {
        name: `Interpreters ${n} ${w.tag}`, languages, active,
        manager_email: `manager${n}.${w.tag}@interp.test` } });
    assertStatus(res, 201, 'POST /interpreting-organisations');
    return res.body;
}

async function newSession(body = {}) {
    const p = await addPatient(w, `s${++n}`);
    await sql('UPDATE patients SET email = $2, language = $3 WHERE id = $1',
        [p.id, `patient${n}.${w.tag}@interp.test`, 'ar']);
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'telehealth', patient_id: p.id, ...body } });
    assertStatus(res, 201, 'POST /sessions');
    return { session: res.body, patient: { ...p,
        email: `patient${n}.${w.tag}@interp.test` } };
}

const decide = (token, body = {}) => api('POST',
    '/interpreter-requests/decide', { body: { token, ...body } });

// what the session's outbox holds, by template
const outbox = (sessionId) => sql(`SELECT recipient, template, language,
        params FROM notifications WHERE session_id = $1
        ORDER BY created_at, recipient`, [sessionId]);

const sha256 = (t) => crypto.createHash('sha256').update(t).digest('hex');

// The token of a `kind` link (t, accept, refuse) in an e-mail that
// arrived for `to` whose SHA-256 is one of `hashes` (the rows keep only
// hashes; the outbox masks tokens once sent).  {token, mail} or null.
async function tokenIn(to, kind, hashes) {
    let found = null;
    await eventually(() => {
        for (const mail of smtp.to(to)) {
            const re = new RegExp(`#${kind}=([A-Za-z0-9_-]{43})`, 'g');
            for (const [, token] of mail.text.matchAll(re)) {
                if (hashes.includes(sha256(token))) {
                    found = { token, mail };
                    return true;
                }
            }
        }
        return false;
    }, 8000);
    return found;
}

// the managers' links of the session's requests, as they arrived, by
// e-mail address: {accept, refuse, mail}
async function managerLinks(sessionId) {
    const offers = await sql(`SELECT f.manager_email, f.accept_hash,
            f.refuse_hash FROM interpreter_offers f
            JOIN interpreter_requests r ON r.id = f.request_id
           WHERE r.session_id = $1`, [sessionId]);
    const out = {};
    for (const o of offers) {
        const a = await tokenIn(o.manager_email, 'accept', [o.accept_hash]);
        const r = await tokenIn(o.manager_email, 'refuse', [o.refuse_hash]);
        assert.ok(a && r, `the links to ${o.manager_email} arrived`);
        out[o.manager_email] = { accept: a.token, refuse: r.token,
            mail: a.mail };
    }
    return out;
}

// the link of an invite of the session that arrived for `to`
async function inviteToken(sessionId, to) {
    const rows = await sql(`SELECT token_hash FROM invites
        WHERE session_id = $1 AND contact = $2`, [sessionId, to]);
    return tokenIn(to, 't', rows.map((x) => x.token_hash));
}

const accept = (token, name = 'Samira Haddad') => decide(token,
    { interpreter: { name, email: 'samira@interp.test' } });

describe('interpreting organisations', () => {
    test('test_admin_registers_and_staff_read', async () => {
        const o = await interpOrg(['AM', 'am', 'ti-ER']);
        assert.deepEqual([...o.languages].sort(), ['am', 'ti-er']);
        assert.equal(o.active, true);
        const get = await api('GET', `${IO}/${o.id}`,
            { token: w.clinician.token });
        assertStatus(get, 200);
        assert.equal(get.body.manager_email, o.manager_email);
        const list = await api('GET', `${IO}?language=am-ET&limit=200`,
            { token: w.clinician.token });
        assertStatus(list, 200);
        assert.ok(list.body.items.some((x) => x.id === o.id),
            'am covers am-ET');
        const none = await api('GET', `${IO}?language=fr&limit=200`,
            { token: w.clinician.token });
        assert.ok(!none.body.items.some((x) => x.id === o.id));
        assertProblem(await api('GET', `${IO}/${o.id}`,
            { token: w.other.admin.token }), 404, 'not-found');
        assertProblem(await api('POST', IO, { token: w.coordinator.token,
            body: { name: 'X', languages: ['fr'],
                manager_email: 'x@interp.test' } }), 403, 'forbidden');
    });

    test('test_update_with_if_match_and_deactivate', async () => {
        const o = await interpOrg(['fa']);
        const up = await api('PATCH', `${IO}/${o.id}`, { token: w.admin.token,
            headers: { 'if-match': `"${o.version}"` },
            body: { languages: ['fa', 'ps'], name: 'Dari and Pashto' } });
        assertStatus(up, 200);
        assert.deepEqual([...up.body.languages].sort(), ['fa', 'ps']);
        assertProblem(await api('PATCH', `${IO}/${o.id}`, {
            token: w.admin.token, headers: { 'if-match': `"${o.version}"` },
            body: { name: 'stale' } }), 412, 'precondition-failed');
        const del = await api('DELETE', `${IO}/${o.id}`,
            { token: w.admin.token });
        assertStatus(del, 200);
        assert.equal(del.body.active, false);
        const active = await api('GET', `${IO}?active=true&limit=200`,
            { token: w.admin.token });
        assert.ok(!active.body.items.some((x) => x.id === o.id));
    });

    test('test_bad_bodies_are_422', async () => {
        for (const body of [
            { name: 'A', languages: [], manager_email: 'a@interp.test' },
            { name: 'A', languages: ['not a tag'],
                manager_email: 'a@interp.test' },
            { name: 'A', languages: ['nl'], manager_email: 'nope' },
            { languages: ['nl'], manager_email: 'a@interp.test' }]) {
            assertProblem(await api('POST', IO, { token: w.admin.token,
                body }), 422, 'validation', JSON.stringify(body));
        }
    });
});

describe('interpreter requests', () => {
    let arA;
    let arB;
    let inactive;
    let turkish;

    before(async () => {
        arA = await interpOrg(['ar']);
        arB = await interpOrg(['ar', 'ku']);
        inactive = await interpOrg(['ar'], false);
        turkish = await interpOrg(['tr']);
    });

    test('test_accept_path_interpreter_link_and_held_invite_released',
        async () => {
            const { session, patient } = await newSession({
                scheduled_at: '2026-12-01T10:30:00Z' });
            const inv = await api('POST', `/sessions/${session.id}/invites`, {
                token: w.clinician.token,
                body: { channel: 'email', patient_id: patient.id,
                    interpreter_language: 'ar' } });
            assertStatus(inv, 201, 'invite with an interpreter');
            assert.equal(inv.body.held, true);
            assert.equal(inv.body.token, undefined, 'no link while held');
            assert.equal(inv.body.url, undefined);

            const links = await managerLinks(session.id);
            assert.deepEqual(Object.keys(links).sort(),
                [arA.manager_email, arB.manager_email].sort(),
                'the active organisations covering ar, and no other');
            assert.ok(!(inactive.manager_email in links));
            assert.ok(!(turkish.manager_email in links));
            const first = links[arA.manager_email];
            assert.match(first.mail.subject,
                /Interpreter needed: ar on 2026-12-01 at 10:30/);
            assert.match(first.mail.text, /\/interpreter#accept=/);
            assert.match(first.mail.text, /\/interpreter#refuse=/);
            assert.equal(smtp.to(inactive.manager_email).length, 0);
            assert.equal(smtp.to(turkish.manager_email).length, 0);
            const [row] = (await outbox(session.id)).filter((m) =>
                m.recipient === arA.manager_email);
            assert.equal(row.params.language, 'ar');
            assert.equal(row.params.date, '2026-12-01');
            const rows = await sql(`SELECT accept_hash, refuse_hash
                FROM interpreter_offers f JOIN interpreter_requests r
                  ON r.id = f.request_id WHERE r.session_id = $1`,
            [session.id]);
            assert.ok(!JSON.stringify(rows).includes(first.accept),
                'tokens hashed at rest');
            let msgs = await outbox(session.id);
            assert.ok(!msgs.some((m) => m.recipient === patient.email),
                'the patient\'s invite is held back');
            const listed = await api('GET',
                `/sessions/${session.id}/invites`,
                { token: w.clinician.token });
            assert.equal(listed.body.items[0].delivery.status, 'held');

            assertProblem(await decide(first.accept), 422, 'validation');
            const ok = await accept(first.accept);
            assertStatus(ok, 200, 'accept');
            assert.equal(ok.body.decision, 'accepted');

            msgs = await outbox(session.id);
            const toInterpreter = msgs.filter((m) =>
                m.recipient === 'samira@interp.test');
            assert.equal(toInterpreter.length, 1);
            assert.equal(toInterpreter[0].template, 'invite_scheduled');
            const toPatient = msgs.filter((m) =>
                m.recipient === patient.email);
            assert.equal(toPatient.length, 1, 'sent after the accept');
            assert.equal(toPatient[0].language, 'ar');
            const patientLink = await inviteToken(session.id, patient.email);
            assert.ok(patientLink, 'the released invite arrived');
            assert.equal(smtp.to(patient.email).length, 1, 'sent once');
            // the session is scheduled: its chair's join opens the room
            assertStatus(await api('POST', `/sessions/${session.id}/join`,
                { token: w.clinician.token }), 200, 'the chair opens it');
            assertStatus(await api('POST', '/invites/redeem', { body: {
                token: patientLink.token, display_name: 'Patient' } }), 200,
            'the released link works');
            const interpreterLink = await inviteToken(session.id,
                'samira@interp.test');
            assert.ok(interpreterLink, 'the interpreter\'s link arrived');
            assert.match(interpreterLink.mail.text,
                /You are invited to a video session on 2026-12-01/);

            // the other manager's links stop working, and so does a second
            // use of the winner's
            const second = links[arB.manager_email];
            assertProblem(await accept(second.accept), 410,
                'request-answered');
            assertProblem(await decide(second.refuse), 410,
                'request-answered');
            assertProblem(await accept(first.accept), 410,
                'request-answered');

            const reqs = await api('GET',
                `/sessions/${session.id}/interpreter-requests`,
                { token: w.clinician.token });
            assertStatus(reqs, 200);
            assert.equal(reqs.body.items[0].status, 'accepted');
            assert.equal(reqs.body.items[0].accepted_by, arA.id);
            assert.equal(reqs.body.items[0].interpreter.name,
                'Samira Haddad');
        });

    test('test_interpreter_joins_a_call_in_progress', async () => {
        const { session } = await newSession();
        const guest = await api('POST', `/sessions/${session.id}/invites`,
            { token: w.clinician.token, body: { channel: 'link' } });
        const g = await api('POST', '/invites/redeem',
            { body: { token: guest.body.token, display_name: 'Patient' } });
        const conn = await joinRoom(g.body.credential);
        try {
            await eventually(async () => (await sql(
                `SELECT 1 FROM calls WHERE session_id = $1
                   AND ended_at IS NULL`, [session.id])).length === 1, 8000);
            const req = await api('POST',
                `/sessions/${session.id}/interpreter-requests`,
                { token: w.clinician.token, body: { language: 'ku' } });
            assertStatus(req, 201);
            assert.deepEqual(req.body.interpreting_organisations.map(
                (o) => o.id), [arB.id]);
            const links = await managerLinks(session.id);
            assertStatus(await accept(links[arB.manager_email].accept,
                'Rojin'), 200);
            const { token } = await inviteToken(session.id,
                'samira@interp.test');
            const r = await api('POST', '/invites/redeem',
                { body: { token, display_name: 'Rojin (interpreter)' } });
            assertStatus(r, 200, 'the interpreter\'s link in a live call');
            const ic = await joinRoom(r.body.credential);
            assert.equal(ic.answer.data.error_code, undefined,
                JSON.stringify(ic.answer.data));
            await leaveRoom(ic);
            await ic.session.destroy();
        } finally {
            await leaveRoom(conn);
            await conn.session.destroy();
        }
    });

    test('test_parallel_accepts_exactly_one_wins', async () => {
        const { session } = await newSession();
        await api('POST', `/sessions/${session.id}/interpreter-requests`,
            { token: w.clinician.token, body: { language: 'ar' } });
        const links = Object.values(await managerLinks(session.id));
        assert.equal(links.length, 2);
        const all = await Promise.all([...links, ...links].map((l, i) =>
            accept(l.accept, `Racer ${i}`)));
        assert.equal(all.filter((r) => r.status === 200).length, 1,
            all.map((r) => r.status).join(','));
        for (const r of all.filter((x) => x.status !== 200)) {
            assertProblem(r, 410, 'request-answered');
        }
        const inv = await sql(`SELECT count(*)::int AS n FROM invites
            WHERE session_id = $1 AND invitee_key LIKE 'interpreter:%'`,
        [session.id]);
        assert.equal(inv[0].n, 1, 'one interpreter invited');
    });

    test('test_refused_by_all_emails_the_requester_and_keeps_invite_held',
        async () => {
            const { session, patient } = await newSession();
            const inv = await api('POST', `/sessions/${session.id}/invites`, {
                token: w.clinician.token,
                body: { channel: 'email', patient_id: patient.id,
                    interpreter_language: 'ar-MA' } });
            assertStatus(inv, 201);
            const links = Object.values(await managerLinks(session.id));
            assert.equal(links.length, 2, 'ar covers ar-MA');
            const r1 = await decide(links[0].refuse);
            assertStatus(r1, 200);
            assert.equal(r1.body.decision, 'refused');
            let msgs = await outbox(session.id);
            assert.ok(!msgs.some((m) => m.template ===
                'interpreter_unavailable'), 'one manager is still asked');
            assertStatus(await decide(links[1].refuse), 200);
            msgs = await outbox(session.id);
            const told = msgs.filter((m) =>
                m.template === 'interpreter_unavailable');
            assert.equal(told.length, 1);
            assert.equal(told[0].recipient, w.clinician.email);
            assert.equal(told[0].params.language, 'ar-MA');
            const [mail] = await mailsTo(w.clinician.email);
            assert.ok(mail, 'the requester was e-mailed');
            assert.match(mail.subject, /No interpreter available: ar-MA/);
            assert.match(mail.text, /No interpreter is available/);
            assert.equal(smtp.to(patient.email).length, 0,
                'nothing was sent to the patient');
            assert.ok(!msgs.some((m) => m.recipient === patient.email),
                'the patient\'s invite stays held');
            assertProblem(await accept(links[0].accept), 410,
                'request-answered');
            const [req] = await sql(`SELECT status, reason
                FROM interpreter_requests WHERE session_id = $1`,
            [session.id]);
            assert.deepEqual(req, { status: 'unavailable',
                reason: 'refused' });
        });

    test('test_no_answer_within_the_timeout_emails_the_requester',
        async () => {
            const { session } = await newSession();
            const req = await api('POST',
                `/sessions/${session.id}/interpreter-requests`,
                { token: w.clinician.token, body: { language: 'tr' } });
            assertStatus(req, 201);
            assert.equal(req.body.status, 'pending');
            await eventually(async () => (await outbox(session.id)).some(
                (m) => m.template === 'interpreter_unavailable'
                    && m.recipient === w.clinician.email), 10000);
            assert.ok(await eventually(() => smtp.to(w.clinician.email).some(
                (m) => /No interpreter available: tr/.test(m.subject)), 8000),
            'the requester was e-mailed');
            const [row] = await sql(`SELECT status, reason
                FROM interpreter_requests WHERE id = $1`, [req.body.id]);
            assert.deepEqual(row, { status: 'unavailable',
                reason: 'timeout' });
            const links = await managerLinks(session.id);
            assertProblem(await accept(links[turkish.manager_email].accept),
                410, 'request-answered');
        });

    test('test_no_covering_organisation_and_unknown_links', async () => {
        const { session, patient } = await newSession();
        const res = await api('POST', `/sessions/${session.id}/invites`, {
            token: w.clinician.token,
            body: { channel: 'email', patient_id: patient.id,
                interpreter_language: 'sw' } });
        assertProblem(res, 422, 'no-interpreter');
        const none = await sql(`SELECT count(*)::int AS n FROM invites
            WHERE session_id = $1`, [session.id]);
        assert.equal(none[0].n, 0, 'no invite without an interpreter');
        assertProblem(await decide('x'.repeat(43)), 404,
            'invite-not-found');
        assertProblem(await decide(undefined), 404, 'invite-not-found');
        const audit = await sql(`SELECT count(*)::int AS n FROM audit_log
            WHERE action = 'interpreter_decide' AND status = 404
              AND at > now() - interval '1 minute'`);
        assert.ok(audit[0].n >= 2, 'refused decisions are audited');
    });
});

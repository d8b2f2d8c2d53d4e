// Invite links (docs/features.md 14-19; docs/api.md, "Invites"): create,
// redeem (atomic, single use), expiry, revoke, and what a guest sees.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    decodeJwt, isPluginError, joinRoom, leaveRoom, loginAll, sleep, sql,
} from './lib.mjs';

let w;
const conns = [];

before(async () => {
    w = await createWorld('invites');
    await loginAll([w.clinician, w.coordinator, w.unassigned, w.other.admin]);
});

after(async () => {
    await Promise.all(conns.map((c) => c.session.destroy()));
    await closeDb();
});

// a video call open to guests: a video_call is private by default, and
// guest links are only for invitation sessions
async function openCall(label, access = 'invitation') {
    const patient = await addPatient(w, label);
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'video_call', patient_id: patient.id, access } });
    assertStatus(res, 201, `POST /sessions (${label})`);
    return res.body;
}

function invite(token, sessionId, body = { channel: 'link' }) {
    return api('POST', `/sessions/${sessionId}/invites`, { token, body });
}

function redeem(token, displayName = 'Guest Visitor') {
    return api('POST', '/invites/redeem', {
        body: { token, display_name: displayName },
    });
}

describe('invite links', () => {
    let session;

    before(async () => {
        session = await openCall('inv');
    });

    test('create answers the token once, a /join#t= url and hashes it',
        async () => {
            const res = await invite(w.clinician.token, session.id,
                { channel: 'link', invitee: { display_name: 'Aunt May' } });
            assertStatus(res, 201, 'POST /sessions/{id}/invites');
            const b = res.body;
            assert.match(b.id, /^[0-9a-f-]{36}$/);
            assert.match(b.token, /^[A-Za-z0-9_-]{43}$/);
            assert.ok(b.url.endsWith(`/join#t=${b.token}`), b.url);
            assert.equal(b.single_use, true);
            assert.equal(typeof b.expires_at, 'string');
            assert.equal(b.invitee.display_name, 'Aunt May');

            const hash = crypto.createHash('sha256').update(b.token)
                .digest('hex');
            const rows = await sql(
                'SELECT token_hash, row_to_json(i)::text AS j ' +
                'FROM invites i WHERE id = $1', [b.id]);
            assert.equal(rows.length, 1);
            assert.equal(rows[0].token_hash, hash);
            assert.ok(!rows[0].j.includes(b.token), 'raw token stored');
            const anywhere = await sql(
                'SELECT count(*)::int AS n FROM invites i ' +
                'WHERE row_to_json(i)::text LIKE $1',
                [`%${b.token}%`]);
            assert.equal(anywhere[0].n, 0);
            const audit = await sql(
                "SELECT count(*)::int AS n FROM audit_log WHERE action = " +
                "'invite_create' AND target_id = $1 AND status = 201",
                [session.id]);
            assert.ok(audit[0].n >= 1, 'audit row of invite_create');
        });

    test('redeem gives a guest credential the plugin accepts', async () => {
        const inv = await invite(w.clinician.token, session.id);
        assertStatus(inv, 201);
        const res = await redeem(inv.body.token, 'Uncle Ben');
        assertStatus(res, 200, 'POST /invites/redeem');
        assert.equal(res.body.role, 'broadcaster');
        assert.equal(res.body.room, session.room);
        const claims = decodeJwt(res.body.credential).claims;
        assert.equal(claims.sub, `guest:${inv.body.id}`);
        assert.equal(claims.name, 'Uncle Ben');
        assert.equal(claims.session, session.id);
        assert.equal(claims.role, 'broadcaster');

        const conn = await joinRoom(res.body.credential);
        conns.push(conn);
        assert.ok(!isPluginError(conn.answer.data),
            `join: ${JSON.stringify(conn.answer.data)}`);
        await leaveRoom(conn);

        const audit = await sql(
            "SELECT outcome, status FROM audit_log WHERE action = " +
            "'invite_redeem' AND target_id = $1", [inv.body.id]);
        assert.deepEqual(audit.map((a) => a.status), [200]);
    });

    test('20 parallel redeems of a single-use link: exactly one wins',
        async () => {
            const inv = await invite(w.clinician.token, session.id);
            assertStatus(inv, 201);
            const all = await Promise.all(Array.from({ length: 20 },
                (_, i) => redeem(inv.body.token, `Racer ${i}`)));
            const ok = all.filter((r) => r.status === 200);
            assert.equal(ok.length, 1,
                all.map((r) => r.status).join(','));
            for (const r of all.filter((x) => x.status !== 200)) {
                assertProblem(r, 410, 'invite-used');
            }
        });

    test('a used link gets invite-used', async () => {
        const inv = await invite(w.clinician.token, session.id);
        assertStatus(await redeem(inv.body.token), 200);
        const res = await redeem(inv.body.token);
        assertProblem(res, 410, 'invite-used');
        assert.equal(res.body.detail, 'This link has already been used.');
    });

    test('a multi-use link can be redeemed again', async () => {
        const inv = await invite(w.clinician.token, session.id,
            { channel: 'link', single_use: false });
        assertStatus(inv, 201);
        assert.equal(inv.body.single_use, false);
        assertStatus(await redeem(inv.body.token), 200);
        assertStatus(await redeem(inv.body.token), 200);
    });

    test('an expired link gets invite-expired', async () => {
        const inv = await invite(w.clinician.token, session.id,
            { channel: 'link', ttl: 1 });
        assertStatus(inv, 201);
        await sleep(2100);
        assertProblem(await redeem(inv.body.token), 410, 'invite-expired');
    });

    test('a revoked link gets invite-not-found', async () => {
        const inv = await invite(w.clinician.token, session.id);
        const del = await api('DELETE',
            `/sessions/${session.id}/invites/${inv.body.id}`,
            { token: w.clinician.token });
        assertStatus(del, 204, 'DELETE /sessions/{id}/invites/{id}');
        assertProblem(await redeem(inv.body.token), 404, 'invite-not-found');
    });

    test('an unknown token gets invite-not-found', async () => {
        const token = crypto.randomBytes(32).toString('base64url');
        assertProblem(await redeem(token), 404, 'invite-not-found');
    });

    test('a display name is required', async () => {
        const inv = await invite(w.clinician.token, session.id);
        for (const body of [{ token: inv.body.token },
            { token: inv.body.token, display_name: '' },
            { token: inv.body.token, display_name: '   ' },
            { token: inv.body.token, display_name: 'x'.repeat(101) },
            { token: inv.body.token, display_name: 7 }]) {
            const res = await api('POST', '/invites/redeem', { body });
            assertProblem(res, 422, 'validation', JSON.stringify(body));
        }
        // the link was not spent by the refusals
        assertStatus(await redeem(inv.body.token, 'x'.repeat(100)), 200);
        const res = await api('POST', '/invites/redeem', { raw: 'nope',
            headers: { 'content-type': 'application/json' } });
        assertProblem(res, 400, 'invalid-request');
    });

    test('bad create bodies are refused', async () => {
        for (const body of [{ channel: 'fax' }, { ttl: 0 },
            { ttl: 10 ** 8 }, { ttl: 'x' }, { single_use: 'yes' }]) {
            assertProblem(await invite(w.clinician.token, session.id, body),
                422, 'validation', JSON.stringify(body));
        }
    });

    test('org-wide roles may invite; others cannot', async () => {
        assertStatus(await invite(w.coordinator.token, session.id), 201);
        assertProblem(await invite(w.unassigned.token, session.id), 404,
            'not-found');
        assertProblem(await invite(w.other.admin.token, session.id), 404,
            'not-found');
        assertProblem(await api('POST', `/sessions/${session.id}/invites`,
            { body: { channel: 'link' } }), 401, 'unauthorized');
    });

    test('another org cannot revoke', async () => {
        const inv = await invite(w.clinician.token, session.id);
        assertProblem(await api('DELETE',
            `/sessions/${session.id}/invites/${inv.body.id}`,
            { token: w.other.admin.token }), 404, 'not-found');
        assertStatus(await redeem(inv.body.token), 200);
    });

    test('a link to a session that ended gets room-not-open', async () => {
        const s2 = await openCall('inv-closed');
        const inv = await invite(w.clinician.token, s2.id);
        assertStatus(inv, 201);
        await sql("UPDATE sessions SET state = 'ended', ended_at = now() " +
            'WHERE id = $1', [s2.id]);
        assertProblem(await redeem(inv.body.token), 409, 'room-not-open');
    });
});

describe('access levels and guest links (docs/features.md 8)', () => {
    test('a guest link to a private or internal session is 422', async () => {
        for (const access of ['private', 'internal']) {
            const s = await openCall(`inv-${access}`, access);
            const res = await invite(w.clinician.token, s.id,
                { channel: 'link', invitee: { display_name: 'Aunt May' } });
            assertProblem(res, 422, 'validation', access);
            assert.match(res.body.detail, new RegExp(`this session is ${
                access}.*"invitation"`));
            const parties = await invite(w.clinician.token, s.id, {
                channel: 'link', patient_id: s.patient_id,
                third_parties: [{ display_name: 'Son' }] });
            assertProblem(parties, 422, 'validation',
                `third parties of a ${access} session`);
        }
    });

    test('the listed patient\'s own link to a private session is allowed',
        async () => {
            const s = await openCall('inv-own', 'private');
            const res = await invite(w.clinician.token, s.id,
                { channel: 'link', patient_id: s.patient_id });
            assertStatus(res, 201, 'the patient of the session');
            assertStatus(await redeem(res.body.token, 'Patient'), 200,
                'redeemed');
        });

    test('a guest link is refused once the session is no longer invitation',
        async () => {
            const s = await openCall('inv-later');
            const inv = await invite(w.clinician.token, s.id);
            assertStatus(inv, 201);
            const ch = await api('PATCH', `/sessions/${s.id}`, {
                token: w.clinician.token, body: { access: 'private' } });
            assertStatus(ch, 200, 'to private');
            const res = await redeem(inv.body.token);
            assertProblem(res, 403, 'forbidden', 'a guest of a private one');
            assert.equal(res.body.detail, 'This session is not open to ' +
                'guests. Please ask the person who invited you.');
            const back = await api('PATCH', `/sessions/${s.id}`, {
                token: w.clinician.token, body: { access: 'invitation' } });
            assertStatus(back, 200, 'back to invitation');
            assertStatus(await redeem(inv.body.token), 200,
                'the link was not spent');
        });
});

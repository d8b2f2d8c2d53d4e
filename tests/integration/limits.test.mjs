// Abuse and growth limits (docs/directives.md): invites and resends per
// staff member and per organisation an hour, open consoles per person and
// per worker, the retention of notifications, processed events and spent
// invites, the participant cap of kinds open to links.  The limits are
// reached on a second nginx with the stack's configuration and small
// limits, on a port of its own, stopped by its pid afterwards.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, addStaff, api, assertProblem, assertStatus, assign, env,
    closeDb, createWorld, eventually, login, loginAll, redis, roomKey, sql,
    startNginx,
} from './lib.mjs';

const PORT = Number(process.env.TH_NGINX_LIMITS_PORT || 62066);

let w;
let nginx;
let api2;

before(async () => {
    w = await createWorld('limits');
    await loginAll([w.clinician, w.admin]);
    nginx = await startNginx(PORT, (conf) => conf.replace(
        /telehealth_throttle_lock [^;]+;/,
        (d) => `${d}
    telehealth_invite_limit 2 3;
    telehealth_console_streams 2 3;
    telehealth_retention_notifications 1d;
    telehealth_retention_processed_events 1d;
    telehealth_retention_invites 1d;`));
    api2 = (method, route, opts) => api(method, `${nginx.api}${route}`, opts);
});

after(async () => {
    await nginx?.stop();
    await closeDb();
});

async function openCall(staff, label) {
    const patient = await addPatient(w, label,
        { assigned: staff === w.clinician });
    if (staff !== w.clinician) {
        await assign(staff, patient);
    }
    const res = await api2('POST', '/sessions', { token: staff.token,
        body: { kind: 'video_call', patient_id: patient.id,
                access: 'invitation' } });
    assertStatus(res, 201, `POST /sessions (${label})`);
    return res.body;
}

const invite = (staff, session) => api2('POST',
    `/sessions/${session.id}/invites`, { token: staff.token,
        body: { channel: 'link' } });

function assertRateLimited(res, what) {
    assertProblem(res, 429, 'rate-limited', what);
    const after = Number(res.headers.get('retry-after'));
    assert.ok(after >= 1 && after <= 3600, `Retry-After ${after}`);
}

describe('invites per staff member and per organisation an hour', () => {
    test('test_invites_over_the_staff_limit_are_answered_429_with_retry_after', async () => {
        const session = await openCall(w.clinician, 'quota1');
        const first = await invite(w.clinician, session);
        assertStatus(first, 201, 'first invite');
        assertStatus(await invite(w.clinician, session), 201, 'second');
        assertRateLimited(await invite(w.clinician, session),
            'third invite of the hour');
        assertRateLimited(await api2('POST',
            `/sessions/${session.id}/invites/${first.body.id}/resend`,
            { token: w.clinician.token, body: {} }), 'a resend counts too');
        assert.equal(Number(await redis('GET',
            `th:quota:invites:staff:${w.clinician.id}`)), 2);
    });

    test('test_invites_over_the_organisation_limit_are_answered_429', async () => {
        const other = await addStaff(w, 'clinician', 'quota2');
        other.token = await login(other);
        const session = await openCall(other, 'quota2');
        // the organisation has 2 of its 3 from the test before
        assertStatus(await invite(other, session), 201, 'the third of the organisation');
        assertRateLimited(await invite(other, session),
            'the organisation\'s fourth, the staff member\'s second');
    });
});

describe('open consoles per person and per worker', () => {
    const streams = [];
    after(() => streams.forEach((c) => c.abort()));

    async function open(token) {
        const c = new AbortController();
        streams.push(c);
        const res = await fetch(`${nginx.api}/me/events`, {
            headers: { authorization: `Bearer ${token}`,
                       accept: 'text/event-stream' },
            signal: c.signal,
        });
        if (res.status !== 200) {
            const text = await res.text();
            return { status: res.status, headers: res.headers, text,
                     body: JSON.parse(text) };
        }
        return { status: 200, headers: res.headers };
    }

    test('test_consoles_over_the_person_cap_are_429_and_over_the_worker_cap_503', async () => {
        assert.equal((await open(w.clinician.token)).status, 200);
        assert.equal((await open(w.clinician.token)).status, 200);
        const third = await open(w.clinician.token);
        assertProblem(third, 429, 'rate-limited', 'a third console');
        assert.ok(Number(third.headers.get('retry-after')) > 0);

        assert.equal((await open(w.admin.token)).status, 200,
            'another person still gets one');
        const full = await open(w.admin.token);
        assertProblem(full, 503, 'service-unavailable',
            'the worker\'s fourth console');
        assert.ok(Number(full.headers.get('retry-after')) > 0);
    });
});

describe('retention', () => {
    test('test_old_notifications_processed_events_and_spent_invites_lose_their_data', async () => {
        // invites are over their limits by now: rows are made here
        const session = await openCall(w.clinician, 'retention');
        const [old] = await sql(
            `INSERT INTO notifications (org_id, channel, recipient, template,
                 language, body, status, idempotency_key, created_at)
             VALUES ($1, 'sms', '+15550001111', 'invite', 'en', 'old body',
                 'sent', $2, now() - interval '2 days') RETURNING id`,
            [w.org.id, `retention-old-${w.tag}`]);
        const [fresh] = await sql(
            `INSERT INTO notifications (org_id, channel, recipient, template,
                 language, body, status, idempotency_key)
             VALUES ($1, 'sms', '+15550002222', 'invite', 'en', 'new body',
                 'sent', $2) RETURNING id`,
            [w.org.id, `retention-new-${w.tag}`]);
        const streamId = `0-${Date.now()}-${w.tag}`;
        await sql(`INSERT INTO processed_events (stream_id, processed_at)
                   VALUES ($1, now() - interval '2 days')`, [streamId]);
        const invites = [];
        for (const revoked of [true, false]) {
            const [row] = await sql(
                `INSERT INTO invites (org_id, session_id, token_hash,
                     created_by, created_at, expires_at, revoked_at,
                     invitee_key, invitee_name, contact)
                 VALUES ($1, $2, encode(gen_random_bytes(32), 'hex'), $3,
                     now() - interval '2 days', now() + interval '1 day',
                     CASE WHEN $4 THEN now() - interval '2 days' END,
                     'invite:retention', 'Old Guest', 'guest@example.test')
                 RETURNING id`,
                [w.org.id, session.id, w.clinician.id, revoked]);
            invites.push(row.id);
        }

        // the first worker applies the retention a second after it starts
        await nginx.stop();
        nginx = await startNginx(PORT, (conf) => conf.replace(
            /telehealth_throttle_lock [^;]+;/,
            (d) => `${d}
    telehealth_retention_notifications 1d;
    telehealth_retention_processed_events 1d;
    telehealth_retention_invites 1d;`));

        await eventually(async () => {
            const [n] = await sql(`SELECT recipient, body, scrubbed_at
                                   FROM notifications WHERE id = $1`, [old.id]);
            return n.recipient === 'removed' && n.body === null
                && n.scrubbed_at !== null;
        }, 15000);
        const [n] = await sql('SELECT recipient, body FROM notifications WHERE id = $1', [old.id]);
        assert.equal(n.recipient, 'removed', 'an old notification keeps no contact data');
        assert.equal(n.body, null);
        const [f] = await sql('SELECT recipient, body FROM notifications WHERE id = $1', [fresh.id]);
        assert.equal(f.recipient, '+15550002222', 'a recent notification keeps its data');
        assert.deepEqual(await sql('SELECT 1 FROM processed_events WHERE stream_id = $1', [streamId]), []);
        const [spent] = await sql('SELECT invitee_name, contact, scrubbed_at FROM invites WHERE id = $1', [invites[0]]);
        assert.equal(spent.invitee_name, null, 'a spent invite loses its name');
        assert.equal(spent.contact, null);
        assert.ok(spent.scrubbed_at);
        const [live] = await sql('SELECT invitee_name, contact FROM invites WHERE id = $1', [invites[1]]);
        assert.equal(live.invitee_name, 'Old Guest', 'a live invite keeps its data');
    });
});

describe('participant cap of kinds open to links', () => {
    test('test_kinds_open_to_links_without_a_cap_get_a_default_one', async () => {
        const patient = await addPatient(w, 'cap');
        const res = await api('POST', '/sessions', { token: w.clinician.token,
            body: { kind: 'telehealth', patient_id: patient.id } });
        assertStatus(res, 201, 'POST /sessions telehealth');
        assert.equal(res.body.policies.max_participants, 20);
        assert.equal(await redis('HGET', roomKey(res.body.room), 'max_participants'), '20');
        const kinds = await sql(`SELECT kind FROM session_kinds
                                 WHERE access = 'invitation' AND max_participants = 0`);
        assert.deepEqual(kinds, []);
    });
});

describe('e-mail addresses of other organisations', () => {
    test('test_staff_with_an_address_that_has_a_login_elsewhere_is_created_and_both_log_in', async () => {
        await loginAll([w.other.admin]);
        const email = w.clinician.email;
        const res = await api('POST', '/staff', { token: w.other.admin.token,
            body: { display_name: 'Namesake', email, role: 'clinician',
                    password: 'another-long-password' } });
        assertStatus(res, 201, 'the address has a login in another organisation: nothing tells it');
        assert.equal(res.body.email, email);

        // within one organisation an address is still unique
        assertProblem(await api('POST', '/staff', { token: w.other.admin.token,
            body: { display_name: 'Twice', email, role: 'clinician' } }),
            409, 'conflict', 'the same address twice in one organisation');

        // each password opens its own organisation's account
        const mine = await api('POST', '/auth/login',
            { body: { email, password: 'another-long-password' } });
        assertStatus(mine, 200, 'the new account');
        assert.equal(mine.body.user.id, res.body.id);
        assert.equal(mine.body.user.org_id, w.other.org.id);
        const theirs = await api('POST', '/auth/login',
            { body: { email: email.toUpperCase(), password: env.password } });
        assertStatus(theirs, 200, 'the first account');
        assert.equal(theirs.body.user.id, w.clinician.id);

        // "organisation" picks one; a wrong password there is refused
        assertProblem(await api('POST', '/auth/login', { body: { email,
            password: 'another-long-password', organisation: w.org.id } }),
            401, 'invalid-credentials', 'the other organisation\'s password');
        assertStatus(await api('POST', '/auth/login', { body: { email,
            password: 'another-long-password', organisation: w.other.org.id } }),
            200, 'its own organisation');
        assertProblem(await api('POST', '/auth/login', { body: { email,
            password: 'x', organisation: 'not-a-uuid' } }),
            400, 'invalid-request', 'a malformed organisation');
    });
});

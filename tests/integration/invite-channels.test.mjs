// Invites by channel (docs/features.md 14-18; docs/api.md, "Invites"): the
// invitee's language and contact data, the 422 texts of missing contact
// data, scheduled sessions' date, time and device-test link in the
// organisation's time zone, resend and a new scheduled time invalidating
// earlier links, the status per invitee, third parties and consult-now
// links.  What arrives is asserted at the SMTP sink and the fake SMS and
// WhatsApp providers the test starts: to whom, in which language, what
// text, and what was not sent.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    decodeJwt, eventually, joinRoom, leaveRoom, loginAll, sleep, sql,
    startFakeSms, startFakeWhatsapp, startSmtpSink,
    uniqueMobile,
} from './lib.mjs';

let w;
let smtp;
let sms;
let whatsapp;

before(async () => {
    smtp = await startSmtpSink();
    sms = await startFakeSms();
    whatsapp = await startFakeWhatsapp();
    w = await createWorld('invch');
    await loginAll([w.admin, w.clinician, w.coordinator, w.supervisor]);
});

after(async () => {
    await smtp?.close();
    await sms?.close();
    await whatsapp?.close();
    await closeDb();
});

// the messages that arrived for an address or number, once n have
const mailsTo = async (to, n = 1) => (await eventually(
    () => smtp.to(to).length >= n, 8000)) && smtp.to(to);
const smsTo = async (to, n = 1) => (await eventually(
    () => sms.delivered(to).length >= n, 8000)) && sms.delivered(to);

const invite = (sessionId, body, token = w.clinician.token) =>
    api('POST', `/sessions/${sessionId}/invites`, { token, body });

const redeem = (token, name = 'Guest Visitor') =>
    api('POST', '/invites/redeem', { body: { token, display_name: name } });

const resend = (sessionId, inviteId, body) =>
    api('POST', `/sessions/${sessionId}/invites/${inviteId}/resend`,
        { token: w.clinician.token, body });

// a link as the outbox row keeps it: whole while the message waits, its
// token masked once the message was decided
const sameLink = (kept, url) => {
    assert.ok(kept === url
        || kept === url.replace(/#t=[A-Za-z0-9_-]{43}$/, '#t=(removed)'),
    `${kept} is not ${url}`);
};

const messageOf = async (id) => (await sql(
    `SELECT n.channel, n.recipient, n.template, n.language, n.params
       FROM invites i JOIN notifications n ON n.id = i.notification_id
      WHERE i.id = $1`, [id]))[0];

async function patientWith(label, contact) {
    const p = await addPatient(w, label);
    await sql(`UPDATE patients SET email = $2, mobile = $3, sms_capable = $4,
                      whatsapp = $5, language = $6 WHERE id = $1`,
    [p.id, contact.email ?? null, contact.mobile ?? null,
        contact.sms_capable ?? false, contact.whatsapp ?? null,
        contact.language ?? 'en']);
    return p;
}

let sessions = 0;

// A session about a fresh patient (one open room per patient).
async function newSession(body) {
    const p = await addPatient(w, `s${++sessions}`);
    const res = await api('POST', '/sessions', { token: w.clinician.token,
        body: { kind: 'telehealth', patient_id: p.id, ...body } });
    assertStatus(res, 201, 'POST /sessions');
    return res.body;
}

describe('invites by channel', () => {
    let session;

    before(async () => {
        session = await newSession({ name: 'Channels' });
    });

    test('test_patient_email_invite_goes_to_their_address_in_their_language',
        async () => {
            const p = await patientWith('nl', { email: 'anna@invch.test',
                language: 'nl' });
            const res = await invite(session.id,
                { channel: 'email', patient_id: p.id });
            assertStatus(res, 201, 'e-mail invite');
            assert.equal(res.body.channel, 'email');
            assert.equal(res.body.invitee.patient_id, p.id);
            assert.equal(res.body.invitee.language, 'nl');
            assert.ok(res.body.url.endsWith(`/join#t=${res.body.token}`));
            const m = await messageOf(res.body.id);
            assert.equal(m.channel, 'email');
            assert.equal(m.recipient, 'anna@invch.test');
            assert.equal(m.template, 'invite');
            assert.equal(m.language, 'nl');
            sameLink(m.params.link, res.body.url);
            assert.equal(m.params.date, undefined, 'not scheduled');
            const [mail] = await mailsTo('anna@invch.test');
            assert.ok(mail, 'the e-mail arrived');
            assert.match(mail.text, /U bent uitgenodigd voor een videosessie/);
            assert.doesNotMatch(mail.text, /You are invited/);
            assert.ok(mail.text.includes(res.body.url), 'the link, whole');
            // the link works
            assertStatus(await redeem(res.body.token), 200);
        });

    test('test_a_sent_message_keeps_no_token_at_rest', async () => {
        const p = await patientWith('rest', { email: 'rest@invch.test' });
        const res = await invite(session.id,
            { channel: 'email', patient_id: p.id });
        assertStatus(res, 201);
        assert.ok(await mailsTo('rest@invch.test'), 'sent');
        const row = await eventually(async () => (await sql(
            `SELECT n.status, n.params::text AS params, n.body, n.subject
               FROM invites i JOIN notifications n ON n.id = i.notification_id
              WHERE i.id = $1 AND n.status = 'sent'`, [res.body.id]))[0]);
        assert.ok(row, 'recorded as sent');
        for (const v of [row.params, row.body, row.subject]) {
            assert.ok(!String(v).includes(res.body.token), 'token at rest');
        }
        assert.match(row.body, /\/join#t=\(removed\)/);
        assertStatus(await redeem(res.body.token), 200, 'the link works');
    });

    test('test_missing_contact_data_is_422_with_the_clients_text',
        async () => {
            const bare = await patientWith('bare', {});
            const mob = uniqueMobile();
            const mobileOnly = await patientWith('mob',
                { mobile: mob, sms_capable: false });
            const cases = [
                [bare, 'email', 'no-email', 'Client has no email.'],
                [bare, 'sms', 'no-mobile', 'Client has no mobile number.'],
                [mobileOnly, 'sms', 'not-sms-capable',
                    'Client\'s number cannot receive SMS.'],
                [bare, 'whatsapp', 'no-whatsapp',
                    'Client has no WhatsApp number.'],
            ];
            for (const [p, channel, type, detail] of cases) {
                const res = await invite(session.id,
                    { channel, patient_id: p.id });
                assertProblem(res, 422, type, channel);
                assert.equal(res.body.detail, detail);
            }
            const n = await sql(`SELECT count(*)::int AS n FROM invites
                                  WHERE patient_id IN ($1, $2)`,
            [bare.id, mobileOnly.id]);
            assert.equal(n[0].n, 0, 'nothing created');
            assert.equal(sms.tried(mob).length, 0,
                'nothing sent to a number that cannot receive SMS');
            // a guest without an address
            assertProblem(await invite(session.id, { channel: 'email' }),
                422, 'no-email');
        });

    test('test_guest_sms_invite_uses_the_given_number_and_language',
        async () => {
            const mobile = uniqueMobile();
            const res = await invite(session.id, { channel: 'sms',
                contact: mobile, language: 'nl',
                invitee: { display_name: 'Buurvrouw' } });
            assertStatus(res, 201);
            const m = await messageOf(res.body.id);
            assert.deepEqual([m.channel, m.recipient, m.language],
                ['sms', mobile, 'nl']);
            const [got] = await smsTo(mobile);
            assert.ok(got, 'the SMS arrived');
            assert.equal(got.fields.Body, 'U bent uitgenodigd voor een ' +
                `videosessie. Doe hier mee: ${res.body.url}`);
            assertProblem(await invite(session.id, { channel: 'sms',
                contact: '0612' }), 422, 'validation');
        });

    test('test_patient_whatsapp_invite_arrives_at_their_whatsapp_number',
        async () => {
            const number = uniqueMobile();
            const mobile = uniqueMobile();
            const p = await patientWith('wa', { whatsapp: number, mobile,
                sms_capable: true });
            const res = await invite(session.id,
                { channel: 'whatsapp', patient_id: p.id });
            assertStatus(res, 201);
            assert.ok(await eventually(
                () => whatsapp.delivered(number).length > 0, 8000));
            const [got] = whatsapp.delivered(number);
            assert.equal(got.fields.body, 'You are invited to a video ' +
                `session. Join here: ${res.body.url}`);
            assert.equal(sms.tried(mobile).length, 0,
                'not by SMS as well');
        });

    test('test_a_clinician_cannot_invite_a_patient_not_theirs', async () => {
        const p = await addPatient(w, 'notmine', { assigned: false });
        await sql('UPDATE patients SET email = $2 WHERE id = $1',
            [p.id, 'x@invch.test']);
        const s = await newSession({ name: 'Not mine' });
        const res = await invite(s.id, { channel: 'email', patient_id: p.id });
        assert.ok([403, 404].includes(res.status), res.text);
    });
});

describe('scheduled sessions and the organisation time zone', () => {
    test('test_admin_sets_the_time_zone_and_others_cannot', async () => {
        const get = await api('GET', '/organisation',
            { token: w.clinician.token });
        assertStatus(get, 200);
        assert.equal(get.body.time_zone, 'UTC');
        assertProblem(await api('PATCH', '/organisation', {
            token: w.coordinator.token, body: { time_zone: 'UTC' } }),
        403, 'forbidden');
        assertProblem(await api('PATCH', '/organisation', {
            token: w.admin.token, body: { time_zone: 'Mars/Olympus' } }),
        422, 'validation');
        const res = await api('PATCH', '/organisation', {
            token: w.admin.token, body: { time_zone: 'Europe/Amsterdam' } });
        assertStatus(res, 200);
        assert.equal(res.body.time_zone, 'Europe/Amsterdam');
        assertProblem(await api('PATCH', '/organisation', {
            token: w.admin.token, headers: { 'if-match': '"1"' },
            body: { time_zone: 'UTC' } }), 412, 'precondition-failed');
    });

    test('test_scheduled_invite_has_local_date_time_and_device_test_link',
        async () => {
            await sql(`UPDATE organisations SET time_zone = 'Europe/Amsterdam'
                        WHERE id = $1`, [w.org.id]);
            const s = await newSession({ name: 'Planned',
                scheduled_at: '2026-12-01T10:30:00Z' });
            const p = await patientWith('sched', { email: 'bo@invch.test' });
            const res = await invite(s.id,
                { channel: 'email', patient_id: p.id });
            assertStatus(res, 201);
            const m = await messageOf(res.body.id);
            assert.equal(m.template, 'invite_scheduled');
            assert.equal(m.params.date, '2026-12-01');
            assert.equal(m.params.time, '11:30', 'CET is UTC+1');
            sameLink(m.params.link, res.body.url);
            assert.match(m.params.device_test_link, /^http.*\/device-test$/);
            assert.ok(!m.params.device_test_link.includes(res.body.token));
            const [mail] = await mailsTo('bo@invch.test');
            assert.ok(mail, 'the e-mail arrived');
            assert.match(mail.subject, /on 2026-12-01 at 11:30/);
            assert.ok(mail.text.includes(m.params.device_test_link));
            assert.ok(mail.text.includes(res.body.url));
        });

    test('test_new_scheduled_time_stops_earlier_links', async () => {
        const s = await newSession({ name: 'Moved',
            scheduled_at: '2026-12-01T10:30:00Z' });
        const a = await invite(s.id, { channel: 'link' });
        const b = await invite(s.id, { channel: 'link', single_use: false });
        const patch = await api('PATCH', `/sessions/${s.id}`, {
            token: w.clinician.token,
            body: { scheduled_at: '2026-12-02T10:30:00Z' } });
        assertStatus(patch, 200);
        for (const inv of [a, b]) {
            const res = await redeem(inv.body.token);
            assertProblem(res, 404, 'invite-not-found');
            assert.equal(res.body.detail,
                'This link is not valid. Please ask for a new one.');
        }
        const renamed = await invite(s.id, { channel: 'link' });
        await api('PATCH', `/sessions/${s.id}`, {
            token: w.clinician.token, body: { name: 'Moved, renamed' } });
        // the session is scheduled: its chair's join opens the room
        assertStatus(await api('POST', `/sessions/${s.id}/join`,
            { token: w.clinician.token }), 200, 'the chair opens it');
        assertStatus(await redeem(renamed.body.token), 200,
            'a change that keeps the time keeps the links');
    });
});

describe('resend', () => {
    test('test_resend_sends_a_new_link_and_every_earlier_one_stops',
        async () => {
            const s = await newSession({ name: 'Resend' });
            const p = await patientWith('rs', { email: 'cy@invch.test',
                language: 'nl' });
            const first = await invite(s.id,
                { channel: 'email', patient_id: p.id });
            const second = await invite(s.id,
                { channel: 'link', patient_id: p.id });
            const other = await invite(s.id, { channel: 'link',
                invitee: { display_name: 'Someone else' } });
            const res = await resend(s.id, first.body.id);
            assertStatus(res, 201, 'resend');
            assert.notEqual(res.body.id, first.body.id);
            assert.notEqual(res.body.token, first.body.token);
            for (const old of [first, second]) {
                assertProblem(await redeem(old.body.token), 404,
                    'invite-not-found');
            }
            const m = await messageOf(res.body.id);
            assert.deepEqual([m.channel, m.recipient, m.language],
                ['email', 'cy@invch.test', 'nl']);
            sameLink(m.params.link, res.body.url);
            const mails = await mailsTo('cy@invch.test', 2);
            assert.ok(mails, 'two e-mails arrived');
            assert.equal(mails.length, 2, 'the link-only invite sent nothing');
            const [firstMail, newMail] = mails.sort((a, b) =>
                a.text.includes(first.body.url) ? -1 : 1);
            assert.ok(firstMail.text.includes(first.body.url));
            assert.ok(newMail.text.includes(res.body.url));
            assert.ok(!newMail.text.includes(first.body.token));
            assertStatus(await redeem(res.body.token), 200, 'new link');
            assertStatus(await redeem(other.body.token), 200,
                'another invitee keeps theirs');
            const old = await sql(`SELECT revoked_reason FROM invites
                                    WHERE id = $1`, [first.body.id]);
            assert.equal(old[0].revoked_reason, 'resent');
        });

    test('test_resend_of_a_guest_link_and_of_an_unknown_invite', async () => {
        const s = await newSession({ name: 'Resend guest' });
        const g = await invite(s.id, { channel: 'link',
            invitee: { display_name: 'Guest' } });
        const res = await resend(s.id, g.body.id);
        assertStatus(res, 201);
        assertProblem(await redeem(g.body.token), 404, 'invite-not-found');
        assertStatus(await redeem(res.body.token), 200);
        assertProblem(await resend(s.id,
            '00000000-0000-4000-8000-000000000000'), 404, 'not-found');
    });
});

describe('status per invitee', () => {
    test('test_list_shows_channel_last_sent_delivery_and_message',
        async () => {
            const s = await newSession({ name: 'Status' });
            const p = await patientWith('st', { email: 'di@invch.test' });
            const inv = await invite(s.id,
                { channel: 'email', patient_id: p.id });
            await sql(`UPDATE organisations SET time_zone = 'Europe/Amsterdam'
                        WHERE id = $1`, [w.org.id]);
            await sql(`UPDATE notifications SET status = 'sent',
                              sent_at = '2026-11-20T08:05:00Z'
                        WHERE id = (SELECT notification_id FROM invites
                                     WHERE id = $1)`, [inv.body.id]);
            const res = await api('GET', `/sessions/${s.id}/invites`,
                { token: w.clinician.token });
            assertStatus(res, 200);
            assert.equal(res.body.items.length, 1);
            const it = res.body.items[0];
            assert.equal(it.invite_id, inv.body.id);
            assert.equal(it.channel, 'email');
            assert.equal(it.invitee.patient_id, p.id);
            assert.equal(it.last_sent_at, '2026-11-20T08:05:00Z');
            assert.equal(it.delivery.status, 'sent');
            assert.equal(it.joined, false);
            assert.equal(it.message, 'The client has not joined the ' +
                'session yet. The last invite was sent at 09:05.');

            await sql(`UPDATE notifications SET status = 'failed',
                              reason = 'provider refused'
                        WHERE id = (SELECT notification_id FROM invites
                                     WHERE id = $1)`, [inv.body.id]);
            const failed = await api('GET', `/sessions/${s.id}/invites`,
                { token: w.clinician.token });
            assert.deepEqual(failed.body.items[0].delivery.status, 'failed');
            assert.equal(failed.body.items[0].delivery.reason,
                'provider refused');
        });

    test('test_one_row_per_invitee_paginated_with_a_cursor', async () => {
        const s = await newSession({ name: 'Pages' });
        const names = ['A', 'B', 'C'];
        const made = [];
        for (const n of names) {
            made.push(await invite(s.id, { channel: 'sms',
                contact: uniqueMobile(), invitee: { display_name: n } }));
        }
        const again = await resend(s.id, made[0].body.id);
        assertStatus(again, 201);
        const p1 = await api('GET', `/sessions/${s.id}/invites?limit=2`,
            { token: w.clinician.token });
        assertStatus(p1, 200);
        assert.equal(p1.body.items.length, 2);
        assert.equal(p1.body.items[0].invite_id, again.body.id,
            'the invitee\'s latest invite, in the place of their first');
        assert.ok(p1.body.next_cursor);
        const p2 = await api('GET', `/sessions/${s.id}/invites?limit=2` +
            `&cursor=${p1.body.next_cursor}`, { token: w.clinician.token });
        assertStatus(p2, 200);
        assert.deepEqual(p2.body.items.map((i) => i.invitee.display_name),
            ['C']);
        assert.equal(p2.body.next_cursor, null);
    });

    test('test_list_tells_which_links_were_revoked_and_why', async () => {
        const s = await newSession({ name: 'Revoked',
            scheduled_at: '2030-01-01T10:30:00Z' });
        const made = {};
        for (const n of ['Deleted', 'Resent', 'Moved']) {
            made[n] = await invite(s.id, { channel: 'link',
                invitee: { display_name: n } });
            assertStatus(made[n], 201, n);
        }
        const byName = async () => Object.fromEntries((await api('GET',
            `/sessions/${s.id}/invites`, { token: w.clinician.token }))
            .body.items.map((i) => [i.invitee.display_name, i]));

        let items = await byName();
        for (const it of Object.values(items)) {
            assert.equal(it.revoked_at, null);
            assert.equal(it.revoked_reason, null);
        }
        const del = () => api('DELETE',
            `/sessions/${s.id}/invites/${made.Deleted.body.id}`,
            { token: w.clinician.token });
        assertStatus(await del(), 204, 'revoke');
        const again = await resend(s.id, made.Resent.body.id);
        assertStatus(again, 201, 'resend');
        items = await byName();
        assert.equal(items.Deleted.revoked_reason, 'revoked');
        assert.match(items.Deleted.revoked_at, /^\d{4}-\d\d-\d\dT.*Z$/);
        const revokedAt = items.Deleted.revoked_at;
        assert.equal(items.Resent.invite_id, again.body.id);
        assert.equal(items.Resent.revoked_reason, null, 'the new link');
        const [old] = await sql(`SELECT revoked_reason FROM invites
            WHERE id = $1`, [made.Resent.body.id]);
        assert.equal(old.revoked_reason, 'resent', 'the link it replaced');
        assert.equal(items.Moved.revoked_reason, null);

        assertStatus(await api('PATCH', `/sessions/${s.id}`, {
            token: w.clinician.token,
            body: { scheduled_at: '2030-01-02T10:30:00Z' } }), 200, 'moved');
        assertStatus(await del(), 204, 'revoking again');
        items = await byName();
        assert.equal(items.Moved.revoked_reason, 'rescheduled');
        assert.equal(items.Resent.revoked_reason, 'rescheduled');
        assert.equal(items.Deleted.revoked_reason, 'revoked',
            'the first reason stays');
        assert.equal(items.Deleted.revoked_at, revokedAt);
    });

    test('test_joined_after_the_guest_entered_the_room', async () => {
        const patient = await addPatient(w, 'joinst');
        // a video call open to guests (private by default)
        const started = await api('POST', '/sessions', {
            token: w.clinician.token, body: { kind: 'video_call',
                patient_id: patient.id, access: 'invitation' } });
        assertStatus(started, 201);
        const inv = await invite(started.body.id, { channel: 'link',
            invitee: { display_name: 'Joiner' } });
        const r = await redeem(inv.body.token, 'Joiner');
        assertStatus(r, 200);
        const conn = await joinRoom(r.body.credential);
        try {
            await eventually(async () => {
                const res = await api('GET',
                    `/sessions/${started.body.id}/invites`,
                    { token: w.clinician.token });
                const it = res.body.items[0];
                return it.joined === true && it.message === null
                    && typeof it.joined_at === 'string';
            }, 8000);
        } finally {
            await leaveRoom(conn);
            await conn.session.destroy();
        }
    });
});

describe('third parties', () => {
    test('test_third_parties_get_the_same_link_one_redemption_each',
        async () => {
            const s = await newSession({ name: 'Family' });
            const p = await patientWith('tp', { email: 'ed@invch.test',
                language: 'nl' });
            const mobile = uniqueMobile();
            const res = await invite(s.id, { channel: 'email',
                patient_id: p.id, third_parties: [
                    { display_name: 'Daughter', relation: 'daughter',
                        channel: 'sms', contact: mobile },
                    { display_name: 'Carer', relation: 'caregiver',
                        channel: 'email', contact: 'carer@invch.test',
                        language: 'en' }] });
            assertStatus(res, 201);
            assert.equal(res.body.third_parties.length, 2);
            const msgs = await sql(`SELECT recipient, language, params
                                      FROM notifications
                                     WHERE session_id = $1
                                     ORDER BY recipient`, [s.id]);
            assert.deepEqual(msgs.map((m) => [m.recipient, m.language]),
                [[mobile, 'nl'], ['carer@invch.test', 'en'],
                    ['ed@invch.test', 'nl']].sort());
            for (const m of msgs) {
                sameLink(m.params.link, res.body.url);
            }
            const [toPatient] = await mailsTo('ed@invch.test');
            const [toCarer] = await mailsTo('carer@invch.test');
            const [toDaughter] = await smsTo(mobile);
            assert.match(toPatient.text, /U bent uitgenodigd/);
            assert.match(toCarer.text, /You are invited/);
            assert.match(toDaughter.fields.Body, /U bent uitgenodigd/);
            for (const text of [toPatient.text, toCarer.text,
                toDaughter.fields.Body]) {
                assert.ok(text.includes(res.body.url), 'the same link');
            }
            const subs = [];
            const creds = [];
            for (const n of ['Ed', 'Daughter', 'Carer']) {
                const r = await redeem(res.body.token, n);
                assertStatus(r, 200, n);
                subs.push(decodeJwt(r.body.credential).claims.sub);
                creds.push(r.body.credential);
            }
            assert.equal(new Set(subs).size, 3, 'each its own guest');
            assert.equal(subs[1], `guest:${res.body.id}.2`);
            assertProblem(await redeem(res.body.token), 410, 'invite-used');

            // the daughter joining counts for the invitee's status
            const conn = await joinRoom(creds[1]);
            try {
                assert.ok(await eventually(async () => (await api('GET',
                    `/sessions/${s.id}/invites`,
                    { token: w.clinician.token })).body.items[0].joined,
                8000), 'joined');
            } finally {
                await leaveRoom(conn);
                await conn.session.destroy();
            }
        });

    test('test_third_parties_are_refused_in_progress_and_on_resend',
        async () => {
            const s = await newSession({ name: 'Live' });
            const inv = await invite(s.id, { channel: 'link' });
            const bad = await resend(s.id, inv.body.id, { third_parties: [
                { display_name: 'Late', channel: 'link' }] });
            assertProblem(bad, 422, 'third-parties-at-creation');
            assertProblem(await invite(s.id, { channel: 'link',
                third_parties: [{ channel: 'link' }] }), 422, 'validation');

            const r = await redeem(inv.body.token, 'First in');
            const conn = await joinRoom(r.body.credential);
            try {
                await eventually(async () => (await sql(
                    `SELECT 1 FROM calls WHERE session_id = $1
                       AND ended_at IS NULL`, [s.id])).length === 1, 8000);
                const res = await invite(s.id, { channel: 'link',
                    third_parties: [{ display_name: 'Too late',
                        channel: 'link' }] });
                assertProblem(res, 409, 'session-in-progress');
                assertStatus(await invite(s.id, { channel: 'link' }), 201,
                    'a plain invite is still fine');
            } finally {
                await leaveRoom(conn);
                await conn.session.destroy();
            }
        });
});

describe('consult-now links', () => {
    let s;

    before(async () => {
        s = await newSession({ kind: 'consult_now' });
    });

    test('test_consult_now_link_is_single_use_and_valid_5_minutes',
        async () => {
            const res = await invite(s.id, { channel: 'link' });
            assertStatus(res, 201);
            assert.equal(res.body.single_use, true);
            const ttl = Date.parse(res.body.expires_at) - Date.now();
            assert.ok(ttl > 280_000 && ttl <= 300_000, `ttl ${ttl}`);
            assertProblem(await invite(s.id, { channel: 'link',
                single_use: false }), 422, 'validation');
            assertProblem(await invite(s.id, { channel: 'link', ttl: 301 }),
                422, 'validation');
            assertStatus(await redeem(res.body.token), 200);
            assertProblem(await redeem(res.body.token), 410, 'invite-used');
        });

    test('test_provider_extends_an_expired_unused_link_by_5_minutes',
        async () => {
            const res = await invite(s.id, { channel: 'link', ttl: 1 });
            await sleep(1100);
            assertProblem(await redeem(res.body.token), 410,
                'invite-expired');
            const ext = await api('POST',
                `/sessions/${s.id}/invites/${res.body.id}/extend`,
                { token: w.clinician.token });
            assertStatus(ext, 200, 'extend');
            const left = Date.parse(ext.body.expires_at) - Date.now();
            assert.ok(left > 280_000 && left <= 300_000, `left ${left}`);
            assert.equal(ext.body.extensions, 1);
            assertStatus(await redeem(res.body.token), 200);
            assertProblem(await api('POST',
                `/sessions/${s.id}/invites/${res.body.id}/extend`,
                { token: w.clinician.token }), 409, 'conflict');
        });

    test('test_extensions_are_limited_and_revoked_links_stay_dead',
        async () => {
            const res = await invite(s.id, { channel: 'link' });
            const url = `/sessions/${s.id}/invites/${res.body.id}/extend`;
            for (let i = 0; i < 6; i++) {
                assertStatus(await api('POST', url,
                    { token: w.clinician.token }), 200, `extension ${i}`);
            }
            assertProblem(await api('POST', url,
                { token: w.clinician.token }), 409, 'conflict');
            const other = await invite(s.id, { channel: 'link' });
            await api('DELETE', `/sessions/${s.id}/invites/${other.body.id}`,
                { token: w.clinician.token });
            assertProblem(await api('POST',
                `/sessions/${s.id}/invites/${other.body.id}/extend`,
                { token: w.clinician.token }), 409, 'conflict');
        });
});

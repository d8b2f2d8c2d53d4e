// Notifications (docs/api.md "Notifications"; the video_call SMS of
// docs/features.md, section 2): the
// outbox in PostgreSQL delivered by the module through the SMS provider of
// conf/nginx.conf.in, which is the fake one this file starts.
//
// The video_call SMS: "Staff has initiated a video session with you.
// Please login to your profile to join the room." to the patient's
// SMS-capable mobile when they have not joined 8 s after the room opened;
// never when they joined, never to a number that is not SMS-capable, and
// never any other text.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, assertStatus, closeDb, closeRoomAsChair, createWorld,
    eventually, joinAs, leaveRoom, login, loginAll, notificationsOf,
    setMobile, sleep, sql, startFakeSms, startSession, uniqueMobile,
} from './lib.mjs';

const VIDEO_CALL_SMS = 'Staff has initiated a video session with you. ' +
    'Please login to your profile to join the room.';
const DELAY_MS = 8000;          // telehealth_video_call_sms_delay

let w;
let sms;

before(async () => {
    sms = await startFakeSms();
    w = await createWorld('notify');
    await loginAll([w.clinician]);
});

after(async () => {
    await sms?.close();
    await closeDb();
});

// A patient of the world's clinician with this mobile number.
async function patientWith(label, smsCapable) {
    const p = await addPatient(w, label);
    await setMobile(p, uniqueMobile(), smsCapable);
    return p;
}

async function startVideoCall(patient) {
    const t0 = Date.now();
    const res = await startSession(w.clinician.token, patient.id);
    assertStatus(res, 201, 'start video_call');
    return { session: res.body, t0 };
}

describe('the video_call SMS, 8 s after the room opened',
    { concurrency: true }, () => {
        test('test_video_call_sms_sent_once_when_patient_stays_away',
            async () => {
                const p = await patientWith('away', true);
                const { session, t0 } = await startVideoCall(p);

                const [row] = await notificationsOf(session.id);
                assert.equal(row.channel, 'sms');
                assert.equal(row.recipient, p.mobile);
                assert.equal(row.status, 'pending');
                assert.equal(row.template, 'video_call_started');
                assert.equal(row.body, null, 'rendered at delivery');

                const got = await eventually(
                    () => sms.delivered(p.mobile).length > 0, 14000, 100);
                const at = Date.now();
                assert.ok(got, 'the SMS arrived');
                assert.ok(at - t0 >= DELAY_MS - 500,
                    `not before 8 s (after ${at - t0} ms)`);

                const [m] = sms.delivered(p.mobile);
                assert.equal(m.method, 'POST');
                assert.equal(m.url, '/sms');
                assert.match(m.headers['content-type'],
                    /^application\/x-www-form-urlencoded/);
                assert.equal(m.headers.authorization,
                    'Bearer local-test-sms-key');
                assert.equal(m.headers['idempotency-key'],
                    `video_call_started:${session.id}`);
                // exactly the text, and nothing about the patient
                assert.deepEqual(m.fields, {
                    To: p.mobile, Body: VIDEO_CALL_SMS, From: 'Telehealth',
                });

                await sleep(1500);
                assert.equal(sms.tried(p.mobile).length, 1, 'sent once');
                const [sent] = await notificationsOf(session.id);
                assert.equal(sent.status, 'sent');
                assert.equal(sent.attempts, 1);
                assert.equal(sent.body, VIDEO_CALL_SMS, 'what was sent');

                assert.ok(await closeRoomAsChair(w.clinician.token, session));
            });

        test('test_video_call_sms_is_product_text_in_any_language',
            async () => {
                const p = await patientWith('dutch', true);
                await sql('UPDATE patients SET language = $2 WHERE id = $1',
                    [p.id, 'nl']);
                const { session } = await startVideoCall(p);
                const [row] = await notificationsOf(session.id);
                assert.equal(row.language, 'nl');

                assert.ok(await eventually(
                    () => sms.delivered(p.mobile).length > 0, 14000, 100),
                'the SMS arrived');
                const [m] = sms.delivered(p.mobile);
                assert.equal(m.fields.Body, VIDEO_CALL_SMS,
                    'exactly the text of docs/features.md, section 2');
                assert.ok(await closeRoomAsChair(w.clinician.token, session));
            });

        test('test_video_call_sms_skipped_when_patient_joins_within_3s',
            async () => {
                const p = await patientWith('joins', true);
                p.token = await login(p);
                const { session, t0 } = await startVideoCall(p);

                const conn = await joinAs(p.token, session.id);
                assert.ok(Date.now() - t0 < 3000, 'joined within 3 s');

                const done = await eventually(async () => {
                    const [row] = await notificationsOf(session.id);
                    return row.status !== 'pending' ? row : null;
                }, 14000, 200);
                assert.ok(done, 'the outbox row was decided');
                assert.equal(done.status, 'skipped');
                assert.equal(done.reason, 'joined');
                assert.equal(sms.tried(p.mobile).length, 0, 'no SMS');

                await leaveRoom(conn);
                await conn.session.destroy();
                await closeRoomAsChair(w.clinician.token, session);
            });

        test('test_video_call_sms_not_sent_to_number_not_sms_capable',
            async () => {
                const p = await patientWith('landline', false);
                const { session } = await startVideoCall(p);

                assert.deepEqual(await notificationsOf(session.id), [],
                    'nothing queued');
                await sleep(DELAY_MS + 2000);
                assert.equal(sms.tried(p.mobile).length, 0, 'no SMS');

                await closeRoomAsChair(w.clinician.token, session);
            });

        test('test_only_video_call_sends_the_sms', async () => {
            const p = await patientWith('telehealth', true);
            const res = await startSession(w.clinician.token, p.id,
                'telehealth');
            assertStatus(res, 201, 'start telehealth');
            assert.deepEqual(await notificationsOf(res.body.id), []);
            await sleep(DELAY_MS + 2000);
            assert.equal(sms.tried(p.mobile).length, 0, 'no SMS');
        });
    });

// A message into the outbox through th_notify(), due now.
async function enqueue(mobile, key = crypto.randomUUID()) {
    const [row] = await sql(`SELECT th_notify($1, 'sms', $2,
        'video_call_started', 'en', '{}', p_key => $3) AS id`,
        [w.org.id, mobile, key]);
    return row.id;
}

const rowOf = async (id) => (await sql(
    'SELECT * FROM notifications WHERE id = $1', [id]))[0];

test('test_provider_down_then_up_delivers_exactly_once', async () => {
    const mobile = uniqueMobile();
    sms.status = 500;
    try {
        const id = await enqueue(mobile);

        assert.ok(await eventually(() => sms.tried(mobile).length >= 2,
            8000, 100), 'retried while the provider is down');
        const pending = await rowOf(id);
        assert.equal(pending.status, 'pending');
        assert.equal(pending.reason, 'provider answered HTTP 500');
        assert.ok(pending.attempts >= 2);

        sms.status = 200;
        assert.ok(await eventually(() => sms.delivered(mobile).length > 0,
            8000, 100), 'delivered once the provider is back');
        await sleep(3000);

        assert.equal(sms.delivered(mobile).length, 1, 'exactly once');
        const keys = new Set(sms.tried(mobile)
            .map((m) => m.headers['idempotency-key']));
        assert.equal(keys.size, 1, 'every attempt with the same key');
        const sent = await rowOf(id);
        assert.equal(sent.status, 'sent');
        assert.equal(sent.reason, null);
        assert.ok(sent.sent_at);
    } finally {
        sms.status = 200;
    }
});

test('test_provider_refusal_fails_without_retry', async () => {
    const mobile = uniqueMobile();
    sms.status = 400;
    try {
        const id = await enqueue(mobile);
        const failed = await eventually(async () => {
            const r = await rowOf(id);
            return r.status === 'failed' ? r : null;
        }, 5000, 100);
        assert.ok(failed, 'failed');
        assert.equal(failed.reason, 'provider answered HTTP 400');
        assert.equal(failed.attempts, 1);
        await sleep(2500);
        assert.equal(sms.tried(mobile).length, 1, 'not retried');
    } finally {
        sms.status = 200;
    }
});

test('test_idempotency_key_is_unique_in_the_outbox', async () => {
    const key = crypto.randomUUID();
    const id = await enqueue(uniqueMobile(), key);
    // th_notify() with a key already queued returns that message
    assert.equal(await enqueue(uniqueMobile(), key), id);
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM notifications
        WHERE idempotency_key = $1`, [key]);
    assert.equal(n, 1);
    await assert.rejects(sql(`INSERT INTO notifications (org_id, channel,
        recipient, template, language, idempotency_key)
        VALUES ($1, 'sms', '+15550000000', 'video_call_started', 'en', $2)`,
    [w.org.id, key]), /duplicate key/);
});

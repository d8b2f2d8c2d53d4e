// The smaller settings of docs/features.md ("Consent to video", "SMS
// sender", "Voice calls"): a patient's consent to video is recorded with
// who and when, and a video_call with a patient without it is refused
// where the organisation asks for it; an organisation's SMS go out from
// its own sender, the directive's sender being the default; a session
// started as a voice call says so.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, closeRoomAsChair,
    connect, createWorld, eventually, joinCredential, loginAll, sql,
    startFakeSms, uniqueMobile,
} from './lib.mjs';

const NO_CONSENT = 'The client has not consented to video. Record their '
    + 'consent before starting a video call.';

let w;
let sms;

before(async () => {
    sms = await startFakeSms();
    w = await createWorld('consent');
    await loginAll([w.admin, w.clinician, w.unassigned, w.patient,
        w.other.admin]);
});

after(async () => {
    await sms?.close();
    await closeDb();
});

const org = () => api('GET', '/organisation', { token: w.admin.token });
const setOrg = (body, token = w.admin.token) =>
    api('PATCH', '/organisation', { token, body });
const give = (p, token = w.clinician.token) =>
    api('POST', `/patients/${p.id}/video-consent`, { token });
const withdraw = (p, token = w.clinician.token) =>
    api('DELETE', `/patients/${p.id}/video-consent`, { token });
const videoCall = (p, extra = {}) => api('POST', '/sessions', {
    token: w.clinician.token,
    body: { kind: 'video_call', patient_id: p.id, ...extra } });

// a patient assigned to the world's clinician
const assignedPatient = (label) => addPatient(w, label);

describe('consent to video', () => {
    test('test_existing_organisations_do_not_require_consent', async () => {
        const res = await org();
        assertStatus(res, 200);
        assert.equal(res.body.video_consent_required, false);
        assert.equal(res.body.sms_sender, null);
    });

    test('test_consent_is_recorded_with_who_and_when_and_withdrawn', async () => {
        const p = await assignedPatient('rec');
        const before = await api('GET', `/patients/${p.id}`,
            { token: w.clinician.token });
        assert.equal(before.body.video_consent, null);
        const res = await give(p);
        assertStatus(res, 200, 'record consent');
        assert.equal(res.body.video_consent.given_by, w.clinician.id);
        assert.ok(Date.parse(res.body.video_consent.given_at)
            > Date.now() - 60_000);
        const shown = await api('GET', `/patients/${p.id}`,
            { token: w.clinician.token });
        assert.deepEqual(shown.body.video_consent, res.body.video_consent);
        const gone = await withdraw(p);
        assertStatus(gone, 200, 'withdraw consent');
        assert.equal(gone.body.video_consent, null);
        const audit = await sql(`SELECT action, actor_id FROM audit_log
            WHERE target_id = $1 AND action LIKE 'patient_consent_%'
            ORDER BY id`, [p.id]);
        assert.deepEqual(audit.map((a) => a.action),
            ['patient_consent_give', 'patient_consent_withdraw']);
        // other organisations and unassigned clinicians cannot
        assertProblem(await give(p, w.other.admin.token), 404, 'not-found');
        assertProblem(await give(p, w.unassigned.token), 403, 'forbidden');
        assertProblem(await give(p, w.patient.token), 403, 'forbidden');
    });

    test('test_video_call_without_consent_is_refused_when_the_rule_is_on', async () => {
        const cur = await org();
        const on = await setOrg({ video_consent_required: true });
        assertStatus(on, 200);
        assert.equal(on.body.video_consent_required, true);
        assert.notEqual(on.headers.get('etag'), cur.headers.get('etag'));
        try {
            const p = await assignedPatient('rule');
            const refused = await videoCall(p);
            assertProblem(refused, 409, 'no-video-consent');
            assert.equal(refused.body.detail, NO_CONSENT);

            // a voice call needs no consent to video
            const voice = await videoCall(p, { audio_only: true });
            assertStatus(voice, 201, 'voice call');
            assert.equal(voice.body.audio_only, true);
            assert.ok(await closeRoomAsChair(w.clinician.token, voice.body));

            assertStatus(await give(p), 200);
            const ok = await videoCall(p);
            assertStatus(ok, 201, 'with consent');
            assert.equal(ok.body.audio_only, false);
            assert.ok(await closeRoomAsChair(w.clinician.token, ok.body));
        } finally {
            assertStatus(await setOrg({ video_consent_required: false }), 200);
        }
        // the rule off: no consent needed
        const p2 = await assignedPatient('off');
        const free = await videoCall(p2);
        assertStatus(free, 201);
        assert.ok(await closeRoomAsChair(w.clinician.token, free.body));
    });

    test('test_only_admins_change_the_rule', async () => {
        assertProblem(await setOrg({ video_consent_required: true },
            w.clinician.token), 403, 'forbidden');
        assertProblem(await setOrg({ video_consent_required: 'yes' }),
            422, 'validation');
        assertProblem(await videoCall(w.patient, { audio_only: 'yes' }),
            422, 'validation');
    });
});

describe('the organisation\'s SMS sender', () => {
    const smsInvite = async (mobile) => {
        const p = await addPatient(w, 'sms');
        const s = await api('POST', '/sessions', { token: w.clinician.token,
            body: { kind: 'telehealth', patient_id: p.id } });
        assertStatus(s, 201);
        const res = await api('POST', `/sessions/${s.body.id}/invites`, {
            token: w.clinician.token,
            body: { channel: 'sms', contact: mobile } });
        assertStatus(res, 201, 'SMS invite');
        assert.ok(await eventually(() => sms.delivered(mobile).length >= 1,
            8000), 'the SMS reached the provider');
        return sms.delivered(mobile)[0];
    };

    test('test_directive_sender_by_default_then_the_organisations_own', async () => {
        const first = await smsInvite(uniqueMobile());
        assert.equal(first.fields.From, 'Telehealth',
            'telehealth_sms_param From is the default');

        const set = await setOrg({ sms_sender: '+15550142000' });
        assertStatus(set, 200);
        assert.equal(set.body.sms_sender, '+15550142000');
        try {
            const own = await smsInvite(uniqueMobile());
            assert.equal(own.fields.From, '+15550142000');
            assert.equal(own.body.match(/From=/g).length, 1, 'one sender');
        } finally {
            assertStatus(await setOrg({ sms_sender: null }), 200);
        }
        const back = await smsInvite(uniqueMobile());
        assert.equal(back.fields.From, 'Telehealth');
    });

    test('test_a_bad_sender_is_422', async () => {
        for (const bad of ['+1', 'Twelve chars', 'a-b', 5]) {
            assertProblem(await setOrg({ sms_sender: bad }), 422, 'validation');
        }
    });
});

describe('voice calls', () => {
    test('test_voice_call_session_and_an_audio_only_participant_listed', async () => {
        const p = await addPatient(w, 'voice');
        const s = await api('POST', '/sessions', { token: w.clinician.token,
            body: { kind: 'telehealth', patient_id: p.id, audio_only: true } });
        assertStatus(s, 201);
        assert.equal(s.body.audio_only, true);
        const got = await api('GET', `/sessions/${s.body.id}`,
            { token: w.clinician.token });
        assert.equal(got.body.audio_only, true);

        const cred = await joinCredential(w.clinician.token, s.body.id);
        assertStatus(cred, 200);
        const conn = await connect();
        try {
            const joined = await conn.handle.message({ request: 'join',
                credential: cred.body.credential, audio_only: true });
            assert.equal(joined.data.telehealth, 'joined',
                JSON.stringify(joined.data));
            const list = await conn.handle.message({ request: 'list' });
            const me = list.data.participants.find(
                (x) => x.id === `staff:${w.clinician.id}`);
            assert.equal(me.audio_only, true, 'the plugin lists it');
            const api2 = await api('GET',
                `/sessions/${s.body.id}/participants`,
                { token: w.clinician.token });
            assertStatus(api2, 200);
            const listed = api2.body.participants.find(
                (x) => x.participant === `staff:${w.clinician.id}`);
            assert.equal(listed.audio_only, true, 'the API lists it');
        } finally {
            await conn.session.destroy();
        }
    });
});

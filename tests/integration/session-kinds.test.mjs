// Session kinds (docs/api.md, POST /sessions): every kind of
// docs/features.md, section 2, with its preset policies, overrides, name, scheduled time,
// access level and a participant list with more chairs; the policies land
// in the room hash for the plugin (docs/redis.md, "Room policy fields").

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertProblem, assertStatus, closeDb, createWorld,
    joinCredential, loginAll, redis, roomKey,
} from './lib.mjs';

let w;

let visitCode;           // a service code that allows virtual visits

before(async () => {
    w = await createWorld('kinds');
    await loginAll([w.admin, w.coordinator, w.clinician, w.unassigned,
        w.other.admin]);
    const res = await api('POST', '/service-codes', { token: w.admin.token,
        body: { code: `VV-${w.tag.slice(-6)}`, name: 'Virtual visit',
            virtual_visits_allowed: true } });
    assertStatus(res, 201, 'the virtual visit service code');
    visitCode = res.body.code;
});

after(closeDb);

async function create(body, token = w.coordinator.token) {
    const patient = await addPatient(w, `k${Math.random().toString(36)
        .slice(2, 8)}`);
    const code = body.kind === 'virtual_visit'
        ? { service_code: visitCode } : {};
    const res = await api('POST', '/sessions', { token,
        body: { patient_id: patient.id, ...code, ...body } });
    return { res, patient };
}

async function roomHash(room) {
    const flat = (await redis('HGETALL', roomKey(room))).split('\n');
    const h = {};
    for (let i = 0; i + 1 < flat.length; i += 2) {
        h[flat[i]] = flat[i + 1];
    }
    return h;
}

const PRESETS = {
    video_call: [0, 0, '', 'close_on_staff_leave', '', 'private'],
    virtual_visit: [20, 0, '', 'caregiver_hangup_ends', '', 'invitation'],
    appointment: [5, 0, 'broadcaster', 'stay', 'broadcaster', 'invitation'],
    group: [61, 14400, 'broadcaster,viewer', 'stay', '', 'invitation'],
    consult_now: [20, 0, '', 'stay', '', 'invitation'],
    meeting_room: [6, 0, '', 'stay', '', 'invitation'],
    telehealth: [20, 0, '', 'stay', '', 'invitation'],
    consultation: [20, 0, 'broadcaster', 'stay', 'broadcaster', 'invitation'],
};

describe('presets per kind', () => {
    for (const [kind, [max, dur, wait, leave, first, access]] of
        Object.entries(PRESETS)) {
        test(`test_${kind}_gets_its_preset_policies_in_the_record_and_the_room`, async () => {
            const { res } = await create({ kind });
            assertStatus(res, 201, `POST /sessions ${kind}`);
            assert.equal(res.body.kind, kind);
            assert.equal(res.body.access, access);
            assert.equal(res.body.policies.max_participants, max);
            assert.equal(res.body.policies.duration_limit, dur);
            assert.equal(res.body.policies.waiting_room, wait);
            assert.equal(res.body.policies.leave_policy, leave);
            assert.equal(res.body.policies.first_connect, first);
            assert.equal(res.body.policies.clinical_use,
                kind !== 'meeting_room');
            const h = await roomHash(res.body.room);
            assert.equal(h.kind, kind);
            assert.equal(h.state, 'open');
            assert.equal(h.max_participants, String(max));
            assert.equal(h.duration_limit, String(dur));
            assert.equal(h.waiting_room, wait);
            assert.equal(h.leave_policy, leave);
            assert.equal(h.first_connect, first);
            assert.equal(h.access, access);
        });
    }
});

describe('options', () => {
    test('test_overrides_name_time_and_access_are_kept', async () => {
        const { res } = await create({ kind: 'telehealth', name: 'Wound check',
            scheduled_at: '2026-01-01T11:30:00+01:00', access: 'internal',
            policies: { max_participants: 3, duration_limit: 1800,
                waiting_room: ['viewer', 'broadcaster'], link_ttl: 600 } });
        assertStatus(res, 201);
        assert.equal(res.body.name, 'Wound check');
        assert.equal(res.body.scheduled_at, '2026-01-01T10:30:00Z');
        assert.equal(res.body.access, 'internal');
        assert.equal(res.body.policies.max_participants, 3);
        assert.equal(res.body.policies.link_ttl, 600);
        assert.equal(res.body.policies.waiting_room, 'broadcaster,viewer');
        const again = await api('GET', `/sessions/${res.body.id}`,
            { token: w.coordinator.token });
        assertStatus(again, 200);
        assert.deepEqual(again.body.policies, res.body.policies);
        const h = await roomHash(res.body.room);
        assert.equal(h.max_participants, '3');
        assert.equal(h.duration_limit, '1800');
        assert.equal(h.access, 'internal');
    });

    test('test_more_chairs_and_viewers_from_the_participant_list', async () => {
        const { res } = await create({ kind: 'group', participants: [
            { type: 'staff', id: w.unassigned.id, role: 'chair' },
            { type: 'staff', id: w.admin.id, role: 'viewer' },
            { type: 'staff', id: w.coordinator.id, role: 'viewer' },
        ] });
        assertStatus(res, 201);
        const roles = Object.fromEntries(res.body.participants
            .map((p) => [p.id, p.role]));
        assert.equal(roles[w.coordinator.id], 'chair',
            'the creator stays chair');
        assert.equal(roles[w.unassigned.id], 'chair');
        assert.equal(roles[w.admin.id], 'viewer');
        const cred = await joinCredential(w.unassigned.token, res.body.id);
        assertStatus(cred, 200, 'a co-chair gets a join credential');
        assert.equal(cred.body.role, 'chair');
        const viewer = await joinCredential(w.admin.token, res.body.id);
        assert.equal(viewer.body.role, 'viewer');
    });

    test('test_invalid_options_are_422_and_other_org_staff_404', async () => {
        const cases = [
            [{ kind: 'party' }, 422],
            [{ kind: 'group', access: 'public' }, 422],
            [{ kind: 'group', scheduled_at: 'tomorrow' }, 422],
            [{ kind: 'group', policies: { max_participants: -1 } }, 422],
            [{ kind: 'group', policies: { waiting_room: ['chair'] } }, 422],
            [{ kind: 'group', policies: { leave_policy: 'explode' } }, 422],
            [{ kind: 'group', policies: [] }, 422],
            [{ kind: 'appointment', policies: { max_participants: 2 },
                participants: [{ type: 'staff', id: w.admin.id }] }, 422],
            [{ kind: 'group', participants: [{ type: 'staff',
                id: w.other.admin.id }] }, 404],
            [{ kind: 'group', participants: [{ type: 'patient',
                id: w.patient.id }] }, 422],
        ];
        for (const [body, status] of cases) {
            const { res, patient } = await create(body);
            assertProblem(res, status,
                status === 404 ? 'not-found' : 'validation',
                JSON.stringify(body));
            assert.equal(await redis('EXISTS',
                `th:patient:${patient.id}:room`), '0',
            'a refused start takes no lock');
        }
    });
});

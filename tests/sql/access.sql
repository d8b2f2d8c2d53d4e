-- Who sees whom: the org-wide roles (admin, supervisor, coordinator) see
-- every patient of their organisation; a clinician only the patients
-- currently assigned to them; a patient's call history shows a staff
-- member the calls they took part in themselves, and only while they may
-- see the patient.
BEGIN;
SELECT plan(25);

INSERT INTO organisations (id, name) VALUES
    ('0a000000-0000-4000-8000-000000000001', 'Org A'),
    ('0b000000-0000-4000-8000-000000000001', 'Org B');
INSERT INTO staff (id, org_id, display_name, email, role) VALUES
    ('5a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001', 'Admin', 'admin@a.test', 'admin'),
    ('5a000000-0000-4000-8000-000000000002', '0a000000-0000-4000-8000-000000000001', 'Supervisor', 'sup@a.test', 'supervisor'),
    ('5a000000-0000-4000-8000-000000000003', '0a000000-0000-4000-8000-000000000001', 'Coordinator', 'coord@a.test', 'coordinator'),
    ('5a000000-0000-4000-8000-000000000004', '0a000000-0000-4000-8000-000000000001', 'Clinician One', 'c1@a.test', 'clinician'),
    ('5a000000-0000-4000-8000-000000000005', '0a000000-0000-4000-8000-000000000001', 'Clinician Two', 'c2@a.test', 'clinician'),
    ('5b000000-0000-4000-8000-000000000001', '0b000000-0000-4000-8000-000000000001', 'Admin B', 'admin@b.test', 'admin');
INSERT INTO patients (id, org_id, display_name) VALUES
    ('9a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001', 'Patient One'),
    ('9a000000-0000-4000-8000-000000000002', '0a000000-0000-4000-8000-000000000001', 'Patient Two');
-- clinician one: patient one now; clinician two: patient one formerly
INSERT INTO assignments (org_id, staff_id, patient_id, starts_at, ends_at) VALUES
    ('0a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000004',
     '9a000000-0000-4000-8000-000000000001', now() - interval '1 day', NULL),
    ('0a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000005',
     '9a000000-0000-4000-8000-000000000001', now() - interval '2 days',
     now() - interval '1 day');
-- two calls of patient one: clinician one took part in the first, the
-- admin in the second
INSERT INTO sessions (id, org_id, kind, patient_id, created_by, state) VALUES
    ('ea000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001',
     'video_call', '9a000000-0000-4000-8000-000000000001',
     '5a000000-0000-4000-8000-000000000004', 'ended');
INSERT INTO calls (id, org_id, session_id, room, started_at, ended_at) VALUES
    ('ca000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001',
     'ea000000-0000-4000-8000-000000000001', 'room-access-1',
     now() - interval '2 hours', now() - interval '1 hour'),
    ('ca000000-0000-4000-8000-000000000002', '0a000000-0000-4000-8000-000000000001',
     'ea000000-0000-4000-8000-000000000001', 'room-access-2',
     now() - interval '30 minutes', NULL);
INSERT INTO call_participants (call_id, participant, role, joined_at) VALUES
    ('ca000000-0000-4000-8000-000000000001', 'staff:5a000000-0000-4000-8000-000000000004', 'chair', now() - interval '2 hours'),
    ('ca000000-0000-4000-8000-000000000001', 'patient:9a000000-0000-4000-8000-000000000001', 'broadcaster', now() - interval '2 hours'),
    ('ca000000-0000-4000-8000-000000000002', 'staff:5a000000-0000-4000-8000-000000000001', 'chair', now() - interval '30 minutes');

CREATE FUNCTION pg_temp.me(v_id text, v_type text DEFAULT 'staff')
RETURNS th_caller LANGUAGE sql AS $$
    SELECT ROW(x.id, x.org_id, v_type, x.role)::th_caller
      FROM (SELECT s.id, s.org_id, s.role FROM staff s WHERE s.id = v_id::uuid
            UNION ALL
            SELECT p.id, p.org_id, NULL FROM patients p WHERE p.id = v_id::uuid) x
$$;
-- the ids of a list answer's items, in order
CREATE FUNCTION pg_temp.ids(a th_answer) RETURNS text[] LANGUAGE sql AS $$
    SELECT COALESCE(array_agg(e ->> 'id' ORDER BY n), '{}')
      FROM jsonb_array_elements(a.body -> 'items') WITH ORDINALITY x(e, n)
$$;

-- th_org_wide()
SELECT ok(th_org_wide(pg_temp.me('5a000000-0000-4000-8000-000000000001')), 'an admin is org-wide');
SELECT ok(th_org_wide(pg_temp.me('5a000000-0000-4000-8000-000000000002')), 'a supervisor is org-wide');
SELECT ok(th_org_wide(pg_temp.me('5a000000-0000-4000-8000-000000000003')), 'a coordinator is org-wide');
SELECT ok(NOT th_org_wide(pg_temp.me('5a000000-0000-4000-8000-000000000004')), 'a clinician is not');
SELECT ok(NOT th_org_wide(pg_temp.me('9a000000-0000-4000-8000-000000000001', 'patient')), 'a patient is not');
SELECT ok(NOT th_org_wide(ROW(NULL, NULL, 'patient', 'admin')::th_caller), 'a patient with a role is not either');

-- th_patient_for(): one patient
SELECT is((th_patient_for(pg_temp.me('5a000000-0000-4000-8000-000000000004'),
          '9a000000-0000-4000-8000-000000000001')).display_name, 'Patient One',
    'a clinician sees a patient assigned to them');
SELECT throws_ok($$SELECT th_patient_for(pg_temp.me('5a000000-0000-4000-8000-000000000004'),
          '9a000000-0000-4000-8000-000000000002')$$, 'TH403', NULL,
    'a clinician does not see a patient not assigned to them');
SELECT throws_ok($$SELECT th_patient_for(pg_temp.me('5a000000-0000-4000-8000-000000000005'),
          '9a000000-0000-4000-8000-000000000001')$$, 'TH403', NULL,
    'nor one whose assignment ended');
SELECT is((th_patient_for(pg_temp.me('5a000000-0000-4000-8000-000000000003'),
          '9a000000-0000-4000-8000-000000000002')).display_name, 'Patient Two',
    'an org-wide role sees any patient of the organisation');
SELECT throws_ok($$SELECT th_patient_for(pg_temp.me('5b000000-0000-4000-8000-000000000001'),
          '9a000000-0000-4000-8000-000000000001')$$, 'TH404', NULL,
    'another organisation''s admin gets 404');
SELECT throws_ok($$SELECT th_patient_for(pg_temp.me('9a000000-0000-4000-8000-000000000001', 'patient'),
          '9a000000-0000-4000-8000-000000000001')$$, 'TH403', NULL,
    'patients cannot use staff routes');

-- GET /patients
SELECT is(pg_temp.ids(th_op_patient_list('{}', pg_temp.me('5a000000-0000-4000-8000-000000000004'))),
    ARRAY['9a000000-0000-4000-8000-000000000001'],
    'a clinician lists their assigned patients only');
SELECT is(pg_temp.ids(th_op_patient_list('{}', pg_temp.me('5a000000-0000-4000-8000-000000000005'))),
    '{}'::text[], 'a clinician with no current assignment lists none');
SELECT is(pg_temp.ids(th_op_patient_list('{}', pg_temp.me('5a000000-0000-4000-8000-000000000002'))),
    ARRAY['9a000000-0000-4000-8000-000000000001', '9a000000-0000-4000-8000-000000000002'],
    'an org-wide role lists every patient of the organisation');
SELECT is(pg_temp.ids(th_op_patient_list('{}', pg_temp.me('5b000000-0000-4000-8000-000000000001'))),
    '{}'::text[], 'another organisation''s admin lists none of them');

-- GET /patients/{id}/calls
SELECT is(pg_temp.ids(th_op_patient_calls('{"id": "9a000000-0000-4000-8000-000000000001"}',
                                          pg_temp.me('5a000000-0000-4000-8000-000000000004'))),
    ARRAY['ca000000-0000-4000-8000-000000000001'],
    'a clinician sees the calls they took part in');
SELECT is(pg_temp.ids(th_op_patient_calls('{"id": "9a000000-0000-4000-8000-000000000001"}',
                                          pg_temp.me('5a000000-0000-4000-8000-000000000001'))),
    ARRAY['ca000000-0000-4000-8000-000000000002'],
    'an admin sees the calls they took part in, not the others');
SELECT is(pg_temp.ids(th_op_patient_calls('{"id": "9a000000-0000-4000-8000-000000000001"}',
                                          pg_temp.me('5a000000-0000-4000-8000-000000000003'))),
    '{}'::text[], 'an org-wide role that took part in none sees none');
SELECT throws_ok($$SELECT th_op_patient_calls('{"id": "9a000000-0000-4000-8000-000000000001"}',
                                          pg_temp.me('5a000000-0000-4000-8000-000000000005'))$$,
    'TH403', NULL, 'a clinician no longer assigned sees no call history');

-- th_in_org(): a record of the caller's organisation, by id
SELECT is((th_in_org(NULL::staff, pg_temp.me('5a000000-0000-4000-8000-000000000001'),
          '5a000000-0000-4000-8000-000000000004', 'staff member')).display_name,
    'Clinician One', 'th_in_org() finds a record of the caller''s organisation');
SELECT is((th_in_org(NULL::patients, pg_temp.me('5a000000-0000-4000-8000-000000000004'),
          '9A000000-0000-4000-8000-000000000002', 'patient')).display_name,
    'Patient Two', 'th_in_org() reads an id in capitals too (it checks no access)');
SELECT throws_ok($$SELECT th_in_org(NULL::staff, pg_temp.me('5b000000-0000-4000-8000-000000000001'),
          '5a000000-0000-4000-8000-000000000004', 'staff member')$$,
    'TH404', 'No such staff member.', 'another organisation''s record: 404');
SELECT throws_ok($$SELECT th_in_org(NULL::staff, pg_temp.me('5a000000-0000-4000-8000-000000000001'),
          'nope', 'staff member')$$,
    'TH404', 'No such staff member.', 'a value that is no id: 404');

-- through th_api(), as the module calls it: the refusal is a 403 answer
SELECT is((th_api('patient_calls', jsonb_build_object(
        'id', '9a000000-0000-4000-8000-000000000001',
        'caller', jsonb_build_object('id', '5a000000-0000-4000-8000-000000000005',
            'org', '0a000000-0000-4000-8000-000000000001', 'type', 'staff')))).status,
    403, 'th_api() answers 403 for a patient not assigned');

SELECT * FROM finish();
ROLLBACK;

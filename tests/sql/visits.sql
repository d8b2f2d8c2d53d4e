-- Virtual visits (docs/features.md 34-37) where the rules live in SQL:
-- the caregiver joins the visit's video only once clocked in
-- (th_visit_join_refusal), clocking out while the video is open needs a
-- confirmation, only the caregiver clocks, and a visit whose caregiver
-- hung up gets no new session.
BEGIN;
SELECT plan(12);

INSERT INTO organisations (id, name) VALUES
    ('0c000000-0000-4000-8000-000000000001', 'Org V');
INSERT INTO staff (id, org_id, display_name, email, role) VALUES
    ('5c000000-0000-4000-8000-000000000001', '0c000000-0000-4000-8000-000000000001', 'Caregiver', 'cg@v.test', 'clinician'),
    ('5c000000-0000-4000-8000-000000000002', '0c000000-0000-4000-8000-000000000001', 'Coordinator', 'co@v.test', 'coordinator');
INSERT INTO patients (id, org_id, display_name, email) VALUES
    ('9c000000-0000-4000-8000-000000000001', '0c000000-0000-4000-8000-000000000001', 'Client', 'client@v.test');
INSERT INTO service_codes (id, org_id, code, name, virtual_visits_allowed) VALUES
    ('dc000000-0000-4000-8000-000000000001', '0c000000-0000-4000-8000-000000000001', 'VV', 'Home visit', true);
INSERT INTO sessions (id, org_id, kind, patient_id, created_by, state, room) VALUES
    ('ec000000-0000-4000-8000-000000000001', '0c000000-0000-4000-8000-000000000001',
     'virtual_visit', '9c000000-0000-4000-8000-000000000001',
     '5c000000-0000-4000-8000-000000000001', 'open', 'room-visit-1');
INSERT INTO visits (id, org_id, patient_id, caregiver_id, service_code_id,
                    scheduled_at, session_id, created_by) VALUES
    ('fc000000-0000-4000-8000-000000000001', '0c000000-0000-4000-8000-000000000001',
     '9c000000-0000-4000-8000-000000000001', '5c000000-0000-4000-8000-000000000001',
     'dc000000-0000-4000-8000-000000000001', now(),
     'ec000000-0000-4000-8000-000000000001', '5c000000-0000-4000-8000-000000000002');

CREATE FUNCTION pg_temp.me(v_id text) RETURNS th_caller LANGUAGE sql AS $$
    SELECT ROW(s.id, s.org_id, 'staff', s.role)::th_caller
      FROM staff s WHERE s.id = v_id::uuid
$$;
CREATE FUNCTION pg_temp.visit(body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', 'fc000000-0000-4000-8000-000000000001',
                              'body', body)
$$;

SELECT is(th_visit_join_refusal('5c000000-0000-4000-8000-000000000001', 'staff',
          'ec000000-0000-4000-8000-000000000001'),
    'You must clock into the visit before you can join the video session.',
    'the caregiver may not join before clocking in');
SELECT is(th_visit_join_refusal('9c000000-0000-4000-8000-000000000001', 'patient',
          'ec000000-0000-4000-8000-000000000001'), NULL,
    'the client may join any time');
SELECT is(th_visit_join_refusal('5c000000-0000-4000-8000-000000000002', 'staff',
          'ec000000-0000-4000-8000-000000000001'), NULL,
    'other staff are not held back by the caregiver''s clock');

SELECT throws_ok($$SELECT th_op_visit_clock_in(pg_temp.visit(),
          pg_temp.me('5c000000-0000-4000-8000-000000000002'))$$, 'TH403', NULL,
    'only the caregiver clocks in');
SELECT throws_ok($$SELECT th_op_visit_clock_out(pg_temp.visit(),
          pg_temp.me('5c000000-0000-4000-8000-000000000001'))$$, 'TH409',
    'You have not clocked into this visit.', 'no clock-out before clock-in');
SELECT is((th_op_visit_clock_in(pg_temp.visit(),
          pg_temp.me('5c000000-0000-4000-8000-000000000001'))).status, 200,
    'the caregiver clocks in');
SELECT is(th_visit_join_refusal('5c000000-0000-4000-8000-000000000001', 'staff',
          'ec000000-0000-4000-8000-000000000001'), NULL,
    'clocked in, the caregiver may join');
SELECT throws_ok($$SELECT th_op_visit_clock_out(pg_temp.visit(),
          pg_temp.me('5c000000-0000-4000-8000-000000000001'))$$, 'TH409',
    'The video session with your client is still active. Clocking out will '
    'not close the video session so make sure you hang up on the video '
    'session as well. Would you like to clock out anyway?',
    'clocking out while the video is open needs a confirmation');
SELECT is((th_op_visit_clock_out(pg_temp.visit('{"confirm": true}'),
          pg_temp.me('5c000000-0000-4000-8000-000000000001'))).body ->> 'session_state',
    'open', 'confirmed, the caregiver is clocked out and the session stays');
SELECT ok((SELECT clocked_out_at IS NOT NULL FROM visits
            WHERE id = 'fc000000-0000-4000-8000-000000000001'),
    'the clock-out time is recorded');

UPDATE sessions SET state = 'ended', end_reason = 'caregiver_hung_up',
                    ended_at = now()
 WHERE id = 'ec000000-0000-4000-8000-000000000001';
SELECT ok(th_visit_video_over((SELECT v FROM visits v
            WHERE id = 'fc000000-0000-4000-8000-000000000001')),
    'the caregiver hung up: the visit''s video is over');
SELECT throws_ok($$SELECT th_op_visit_invite(pg_temp.visit(),
          pg_temp.me('5c000000-0000-4000-8000-000000000002'))$$, 'TH409',
    'The caregiver ended the video session of this visit: it cannot be '
    'started again.', 'and no new session is created for it');

SELECT * FROM finish();
ROLLBACK;

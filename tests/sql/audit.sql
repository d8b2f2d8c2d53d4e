-- The audit log is append-only (docs/api.md, "Audit"): the module's role
-- may insert and read it only (sql/grants.sql), and triggers refuse any
-- change even to the owner (sql/002_people.sql).  th_audit() writes the
-- row of each operation.
BEGIN;
SELECT plan(12);

INSERT INTO organisations (id, name)
    VALUES ('0a000000-0000-4000-8000-000000000001', 'Audit test');
INSERT INTO staff (id, org_id, display_name, email, role)
    VALUES ('5a000000-0000-4000-8000-000000000001',
            '0a000000-0000-4000-8000-000000000001', 'Ada Admin',
            'ada@audit.test', 'admin');
INSERT INTO audit_log (org_id, action, outcome, status)
    VALUES ('0a000000-0000-4000-8000-000000000001', 'seed', 'success', 200);

-- runs sql as the module's role (the role migrate.sh granted to)
CREATE FUNCTION pg_temp.as_app(sql text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL ROLE telehealth;
    BEGIN
        EXECUTE sql;
    EXCEPTION WHEN OTHERS THEN
        RESET ROLE;
        RAISE;
    END;
    RESET ROLE;
END
$$;

SELECT table_privs_are('audit_log', 'telehealth', ARRAY['INSERT', 'SELECT'],
    'the module''s role may only insert into and read the audit log');

SELECT lives_ok($$SELECT pg_temp.as_app('INSERT INTO audit_log (org_id,
        action, outcome, status) VALUES (''0a000000-0000-4000-8000-000000000001'',
        ''test'', ''success'', 200)')$$,
    'the module''s role appends');
SELECT throws_ok($$SELECT pg_temp.as_app('UPDATE audit_log SET outcome = ''x''')$$,
    '42501', 'permission denied for table audit_log',
    'the module''s role cannot UPDATE');
SELECT throws_ok($$SELECT pg_temp.as_app('DELETE FROM audit_log')$$,
    '42501', 'permission denied for table audit_log',
    'the module''s role cannot DELETE');
SELECT throws_ok($$SELECT pg_temp.as_app('TRUNCATE audit_log')$$,
    '42501', 'permission denied for table audit_log',
    'the module''s role cannot TRUNCATE');

SELECT throws_ok($$UPDATE audit_log SET outcome = 'x'$$,
    '42501', 'audit_log is append-only', 'the owner cannot UPDATE (trigger)');
SELECT throws_ok($$DELETE FROM audit_log$$,
    '42501', 'audit_log is append-only', 'the owner cannot DELETE (trigger)');
SELECT throws_ok($$TRUNCATE audit_log$$,
    '42501', 'audit_log is append-only', 'the owner cannot TRUNCATE (trigger)');
SELECT is((SELECT count(*) FROM audit_log
           WHERE org_id = '0a000000-0000-4000-8000-000000000001')::int, 2,
    'both rows are still there');

-- th_audit(): outcome from the status, target type from the operation
DO $$ BEGIN PERFORM th_audit('{"addr": "192.0.2.7"}',
    ROW('5a000000-0000-4000-8000-000000000001',
        '0a000000-0000-4000-8000-000000000001', 'staff', 'admin')::th_caller,
    'patient_update', 'patient', 'p-1', 412);
PERFORM th_audit('{}',
    ROW('5a000000-0000-4000-8000-000000000001',
        '0a000000-0000-4000-8000-000000000001', 'staff', 'admin')::th_caller,
    'service_code_create', 'service', repeat('x', 100), 201);
END $$;

SELECT results_eq(
    $$SELECT actor_type, actor_id::text, target_type, target_id, client_addr,
             outcome, status
        FROM audit_log WHERE action = 'patient_update'$$,
    $$VALUES ('staff', '5a000000-0000-4000-8000-000000000001', 'patient',
              'p-1', '192.0.2.7', 'conflict', 412)$$,
    'th_audit() writes who, what, from where and the outcome');
SELECT results_eq(
    $$SELECT target_type, length(target_id), outcome FROM audit_log
       WHERE action = 'service_code_create'$$,
    $$VALUES ('service_code', 64, 'success')$$,
    'service code operations name their target type in full; ids are cut');
DO $$
BEGIN
    PERFORM th_audit('{}', ROW(NULL, '0a000000-0000-4000-8000-000000000001',
                     'staff', 'admin')::th_caller, 'outcome_' || s, 'x', NULL, s)
      FROM (VALUES (200), (201), (401), (403), (404), (409), (412), (422),
                   (400), (500)) v(s);
END
$$;
SELECT results_eq(
    $$SELECT status, outcome FROM audit_log WHERE action LIKE 'outcome\_%'
       ORDER BY status$$,
    $$VALUES (200, 'success'), (201, 'success'), (400, 'invalid'),
             (401, 'unauthenticated'), (403, 'denied'), (404, 'not_found'),
             (409, 'conflict'), (412, 'conflict'), (422, 'invalid'),
             (500, 'error')$$,
    'the outcome of each status');

SELECT * FROM finish();
ROLLBACK;

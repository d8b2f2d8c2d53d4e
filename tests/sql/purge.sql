-- The purge (docs/lifecycle.md, "The purge"): th_purge_run() purges only
-- ended sessions past the delay, each once; th_session_purge() deletes
-- the content and keeps the ids; an idle session is never purged; the
-- kept_open close makes a session idle, not ended.
BEGIN;
SELECT plan(14);

INSERT INTO organisations (id, name) VALUES
    ('0c000000-0000-4000-8000-000000000001', 'Org P');
INSERT INTO staff (id, org_id, display_name, email, role) VALUES
    ('5c000000-0000-4000-8000-000000000001', '0c000000-0000-4000-8000-000000000001',
     'Chair', 'chair@p.test', 'clinician');
-- due: ended 2 days ago; fresh: ended now; idle: kept open
INSERT INTO sessions (id, org_id, kind, created_by, state, name, ended_at, room) VALUES
    ('ec000000-0000-4000-8000-000000000001', '0c000000-0000-4000-8000-000000000001',
     'telehealth', '5c000000-0000-4000-8000-000000000001', 'ended',
     'Due session', now() - interval '2 days', 'room-purge-1'),
    ('ec000000-0000-4000-8000-000000000002', '0c000000-0000-4000-8000-000000000001',
     'telehealth', '5c000000-0000-4000-8000-000000000001', 'ended',
     'Fresh session', now(), 'room-purge-2'),
    ('ec000000-0000-4000-8000-000000000003', '0c000000-0000-4000-8000-000000000001',
     'telehealth', '5c000000-0000-4000-8000-000000000001', 'idle',
     'Idle session', NULL, NULL),
    ('ec000000-0000-4000-8000-000000000004', '0c000000-0000-4000-8000-000000000001',
     'telehealth', '5c000000-0000-4000-8000-000000000001', 'open',
     'Open session', NULL, 'room-purge-4');
INSERT INTO invites (org_id, session_id, token_hash, invitee_name, contact,
                     created_by, expires_at, invitee_key)
SELECT '0c000000-0000-4000-8000-000000000001', s, encode(sha256(s::text::bytea), 'hex'),
       'Guest Name', 'guest@example.org', '5c000000-0000-4000-8000-000000000001',
       now() + interval '1 day', 'guest:x'
  FROM unnest(ARRAY['ec000000-0000-4000-8000-000000000001',
                    'ec000000-0000-4000-8000-000000000002']::uuid[]) s;
INSERT INTO notifications (org_id, channel, recipient, template, language,
                           session_id, idempotency_key)
SELECT '0c000000-0000-4000-8000-000000000001', 'email', 'guest@example.org',
       'invite', 'en', s, 'purge-test:' || s
  FROM unnest(ARRAY['ec000000-0000-4000-8000-000000000001',
                    'ec000000-0000-4000-8000-000000000002']::uuid[]) s;
INSERT INTO calls (org_id, session_id, room, started_at, ended_at) VALUES
    ('0c000000-0000-4000-8000-000000000001', 'ec000000-0000-4000-8000-000000000001',
     'room-purge-1', now() - interval '2 days 1 hour', now() - interval '2 days');

SELECT results_eq(
    $$SELECT * FROM th_purge_run(86400, 50)$$,
    $$VALUES ('ec000000-0000-4000-8000-000000000001'::uuid)$$,
    'only the ended session past the delay is purged');
SELECT is_empty($$SELECT * FROM th_purge_run(86400, 50)$$,
    'a purged session is not purged again');
SELECT is((SELECT count(*)::int FROM invites
           WHERE session_id = 'ec000000-0000-4000-8000-000000000001'), 0,
    'its invites are gone');
SELECT is((SELECT count(*)::int FROM notifications
           WHERE session_id = 'ec000000-0000-4000-8000-000000000001'), 0,
    'its notifications are gone');
SELECT is((SELECT name FROM sessions
           WHERE id = 'ec000000-0000-4000-8000-000000000001'), NULL,
    'its name is gone');
SELECT isnt((SELECT purged_at FROM sessions
             WHERE id = 'ec000000-0000-4000-8000-000000000001'), NULL,
    'purged_at is set');
SELECT is((SELECT count(*)::int FROM calls
           WHERE session_id = 'ec000000-0000-4000-8000-000000000001'), 1,
    'its call history stays');
SELECT is((SELECT count(*)::int FROM invites
           WHERE session_id = 'ec000000-0000-4000-8000-000000000002'), 1,
    'the fresh session keeps its invites');
SELECT is((SELECT count(*)::int FROM notifications
           WHERE session_id = 'ec000000-0000-4000-8000-000000000002'), 1,
    'the fresh session keeps its notifications');
SELECT is_empty($$SELECT * FROM th_session_purge(
    'ec000000-0000-4000-8000-000000000002')$$,
    'no files until chat keeps some');

SELECT is(th_session_ended('ec000000-0000-4000-8000-000000000004',
    'room-purge-4', 'kept_open', 0), 1, 'a kept_open close applies');
SELECT results_eq(
    $$SELECT state, room, ended_at FROM sessions
      WHERE id = 'ec000000-0000-4000-8000-000000000004'$$,
    $$VALUES ('idle'::text, NULL::text, NULL::timestamptz)$$,
    'kept_open leaves the session idle, without a room, not ended');
UPDATE sessions SET updated_at = now() - interval '3 days'
 WHERE state = 'idle' AND org_id = '0c000000-0000-4000-8000-000000000001';
SELECT is_empty($$SELECT * FROM th_purge_run(0, 50)
    WHERE th_purge_run = ANY (ARRAY['ec000000-0000-4000-8000-000000000003',
        'ec000000-0000-4000-8000-000000000004']::uuid[])$$,
    'idle sessions are never purged');
SELECT is(th_session_ended('ec000000-0000-4000-8000-000000000004',
    'room-purge-4', 'closed_by_chair', 0), 0,
    'a late close of the old room does not end the idle session');

SELECT * FROM finish();
ROLLBACK;

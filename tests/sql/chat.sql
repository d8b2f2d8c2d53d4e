-- A session's chat (sql/functions/chat.sql): who is in it (its staff, its
-- patient, guests of a redeemed link that is not revoked, nobody of
-- another organisation), a message reaches everyone in it as a console
-- event, and the purge removes exactly one session's messages, files and
-- message events, answering the files to unlink; the export lists the
-- messages in order with their authors' names.
BEGIN;
SELECT plan(14);

INSERT INTO organisations (id, name) VALUES
    ('0a000000-0000-4000-8000-0000000000c1', 'Chat A'),
    ('0b000000-0000-4000-8000-0000000000c1', 'Chat B');
INSERT INTO staff (id, org_id, display_name, email, role) VALUES
    ('5a000000-0000-4000-8000-0000000000c1', '0a000000-0000-4000-8000-0000000000c1', 'Dr Chat', 'c1@chat.test', 'clinician'),
    ('5a000000-0000-4000-8000-0000000000c2', '0a000000-0000-4000-8000-0000000000c1', 'Dr Other', 'c2@chat.test', 'clinician'),
    ('5b000000-0000-4000-8000-0000000000c1', '0b000000-0000-4000-8000-0000000000c1', 'Admin B', 'admin@chatb.test', 'admin');
INSERT INTO patients (id, org_id, display_name) VALUES
    ('9a000000-0000-4000-8000-0000000000c1', '0a000000-0000-4000-8000-0000000000c1', 'Pat Chat');
INSERT INTO sessions (id, org_id, kind, patient_id, created_by) VALUES
    ('ea000000-0000-4000-8000-0000000000c1', '0a000000-0000-4000-8000-0000000000c1',
     'video_call', '9a000000-0000-4000-8000-0000000000c1', '5a000000-0000-4000-8000-0000000000c1'),
    ('ea000000-0000-4000-8000-0000000000c2', '0a000000-0000-4000-8000-0000000000c1',
     'meeting_room', NULL, '5a000000-0000-4000-8000-0000000000c1');
INSERT INTO session_participants (session_id, staff_id, role) VALUES
    ('ea000000-0000-4000-8000-0000000000c1', '5a000000-0000-4000-8000-0000000000c1', 'chair'),
    ('ea000000-0000-4000-8000-0000000000c2', '5a000000-0000-4000-8000-0000000000c1', 'chair');
INSERT INTO invites (id, org_id, session_id, token_hash, invitee_name, created_by,
                     expires_at, invitee_key, redeem_count) VALUES
    ('1a000000-0000-4000-8000-0000000000c1', '0a000000-0000-4000-8000-0000000000c1',
     'ea000000-0000-4000-8000-0000000000c1', repeat('c1', 32), 'Aunt May',
     '5a000000-0000-4000-8000-0000000000c1', now() + interval '1 hour', 'invite:c1', 1),
    ('1a000000-0000-4000-8000-0000000000c2', '0a000000-0000-4000-8000-0000000000c1',
     'ea000000-0000-4000-8000-0000000000c1', repeat('c2', 32), 'Not Yet',
     '5a000000-0000-4000-8000-0000000000c1', now() + interval '1 hour', 'invite:c2', 0);

CREATE FUNCTION pg_temp.me(v_id text, v_type text)
RETURNS th_caller LANGUAGE sql AS $$
    SELECT ROW(v_id::uuid, '0a000000-0000-4000-8000-0000000000c1'::uuid,
               v_type, CASE WHEN v_type = 'staff' THEN 'clinician' END)::th_caller
$$;
CREATE FUNCTION pg_temp.req(v_session text, v_id text, v_type text, b jsonb)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', v_session, 'body', b,
        'caller', jsonb_build_object('id', v_id,
            'org', CASE WHEN v_id LIKE '5b%' THEN '0b000000-0000-4000-8000-0000000000c1'
                        ELSE '0a000000-0000-4000-8000-0000000000c1' END,
            'type', v_type))
$$;

-- who is in the chat
SELECT is((th_chat_session(pg_temp.me('5a000000-0000-4000-8000-0000000000c1', 'staff'),
          'ea000000-0000-4000-8000-0000000000c1')).id,
    'ea000000-0000-4000-8000-0000000000c1'::uuid, 'staff on the list');
SELECT is((th_chat_session(pg_temp.me('9a000000-0000-4000-8000-0000000000c1', 'patient'),
          'ea000000-0000-4000-8000-0000000000c1')).id,
    'ea000000-0000-4000-8000-0000000000c1'::uuid, 'the session''s patient');
SELECT is((th_chat_session(pg_temp.me('1a000000-0000-4000-8000-0000000000c1', 'guest'),
          'ea000000-0000-4000-8000-0000000000c1')).id,
    'ea000000-0000-4000-8000-0000000000c1'::uuid, 'a guest of a redeemed link');
SELECT throws_ok($$SELECT th_chat_session(pg_temp.me('1a000000-0000-4000-8000-0000000000c2', 'guest'),
          'ea000000-0000-4000-8000-0000000000c1')$$, 'TH404', 'No such session.',
    'a link never redeemed');
SELECT throws_ok($$SELECT th_chat_session(pg_temp.me('1a000000-0000-4000-8000-0000000000c1', 'guest'),
          'ea000000-0000-4000-8000-0000000000c2')$$, 'TH404', 'No such session.',
    'a guest in another session');
SELECT throws_ok($$SELECT th_chat_session(pg_temp.me('5a000000-0000-4000-8000-0000000000c2', 'staff'),
          'ea000000-0000-4000-8000-0000000000c1')$$, 'TH404', 'No such session.',
    'a clinician not on the list');
SELECT is((th_api('chat_list', pg_temp.req('ea000000-0000-4000-8000-0000000000c1',
          '5b000000-0000-4000-8000-0000000000c1', 'staff', NULL))).status,
    404, 'another organisation: 404');
SELECT is((th_api('patient_list', pg_temp.req(NULL,
          '1a000000-0000-4000-8000-0000000000c1', 'guest', NULL))).status,
    401, 'a guest''s token reaches nothing but the chat');

-- a message reaches everyone in the session
SELECT is((th_api('chat_post', pg_temp.req('ea000000-0000-4000-8000-0000000000c1',
          '1a000000-0000-4000-8000-0000000000c1', 'guest',
          '{"text": "Hello from the guest"}'))).status, 201, 'a guest posts');
SELECT is((SELECT array_agg(recipient_id::text ORDER BY recipient_id::text)
             FROM console_events
            WHERE session_id = 'ea000000-0000-4000-8000-0000000000c1' AND type = 'message'),
    ARRAY['1a000000-0000-4000-8000-0000000000c1', '5a000000-0000-4000-8000-0000000000c1',
          '9a000000-0000-4000-8000-0000000000c1'],
    'its event goes to the staff, the patient and the redeemed guest');
SELECT is((SELECT author_name FROM chat_messages
            WHERE session_id = 'ea000000-0000-4000-8000-0000000000c1'),
    'Aunt May', 'a guest is named by the link''s name');

-- purge and export
INSERT INTO chat_files (id, org_id, session_id, uploaded_by, content_type, size) VALUES
    ('fa000000-0000-4000-8000-0000000000c1', '0a000000-0000-4000-8000-0000000000c1',
     'ea000000-0000-4000-8000-0000000000c1', 'staff:5a000000-0000-4000-8000-0000000000c1', 'image/png', 10),
    ('fa000000-0000-4000-8000-0000000000c2', '0a000000-0000-4000-8000-0000000000c1',
     'ea000000-0000-4000-8000-0000000000c2', 'staff:5a000000-0000-4000-8000-0000000000c1', 'image/png', 10);
SELECT is((th_api('chat_post', pg_temp.req('ea000000-0000-4000-8000-0000000000c1',
          '5a000000-0000-4000-8000-0000000000c1', 'staff',
          '{"text": "a photo", "file_id": "fa000000-0000-4000-8000-0000000000c1"}'))).status,
    201, 'staff post a photo');
SELECT results_eq($$SELECT author_name, body, file_id::text
                      FROM th_chat_export('ea000000-0000-4000-8000-0000000000c1')$$,
    $$VALUES ('Aunt May', 'Hello from the guest', NULL::text),
             ('Dr Chat', 'a photo', 'fa000000-0000-4000-8000-0000000000c1')$$,
    'the export lists the messages in order with their authors');
SELECT results_eq($$SELECT file_id::text FROM th_chat_purge_session('ea000000-0000-4000-8000-0000000000c1')$$,
    $$VALUES ('fa000000-0000-4000-8000-0000000000c1')$$,
    'the purge answers the session''s files to unlink, and no other');

SELECT * FROM finish();
ROLLBACK;

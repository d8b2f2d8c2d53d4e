-- Chat inside a session: messages, their attachments, the images filed to
-- the session's patient (docs/api.md, "Chat"), and what the purge and the
-- export of a session need.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- The caller's name on a message or a file: staff and patients by their
-- record, a guest by the name given when the link was redeemed (carried
-- in the access token the redeem answered).
CREATE OR REPLACE FUNCTION th_chat_who(me th_caller) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT me.type || ':' || me.id
$$;

CREATE OR REPLACE FUNCTION th_chat_name(req jsonb, me th_caller) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        CASE me.type
        WHEN 'staff' THEN (SELECT s.display_name FROM staff s
                            WHERE s.id = me.id AND s.org_id = me.org)
        WHEN 'patient' THEN (SELECT p.display_name FROM patients p
                              WHERE p.id = me.id AND p.org_id = me.org)
        END,
        NULLIF(left(req #>> '{caller,name}', 100), ''),
        (SELECT i.invitee_name FROM invites i WHERE i.id = me.id),
        'A guest')
$$;

-- The session {id} whose chat the caller is in: staff on its participant
-- list or of an org-wide role, its patient, a guest whose link to it was
-- redeemed and not revoked.  404 otherwise, whatever the organisation.
CREATE OR REPLACE FUNCTION th_chat_session(me th_caller, s_id text)
RETURNS sessions
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s  sessions;
BEGIN
    SELECT * INTO s FROM sessions
        WHERE id = th_uuid(s_id, 'session') AND org_id = me.org;
    IF FOUND AND (
        (me.type = 'staff' AND (th_org_wide(me) OR EXISTS (
            SELECT 1 FROM session_participants sp
             WHERE sp.session_id = s.id AND sp.staff_id = me.id)))
        OR (me.type = 'patient' AND (s.patient_id = me.id OR EXISTS (
            SELECT 1 FROM session_participants sp
             WHERE sp.session_id = s.id AND sp.patient_id = me.id)))
        OR (me.type = 'guest' AND EXISTS (
            SELECT 1 FROM invites i
             WHERE i.id = me.id AND i.session_id = s.id
               AND i.revoked_at IS NULL AND i.redeem_count > 0)))
    THEN
        RETURN s;
    END IF;
    PERFORM th_raise('404', 'No such session.');
END
$$;

-- Who gets a session's messages live: everyone th_chat_session() lets in
-- by name (org-wide staff not on the list read the history instead).
CREATE OR REPLACE FUNCTION th_chat_recipients(s sessions)
RETURNS TABLE (recipient uuid)
LANGUAGE sql STABLE AS $$
    SELECT sp.staff_id FROM session_participants sp
      JOIN staff st ON st.id = sp.staff_id AND st.org_id = s.org_id
     WHERE sp.session_id = s.id AND st.active
    UNION
    SELECT sp.patient_id FROM session_participants sp
     WHERE sp.session_id = s.id AND sp.patient_id IS NOT NULL
    UNION
    SELECT s.patient_id WHERE s.patient_id IS NOT NULL
    UNION
    SELECT i.id FROM invites i
     WHERE i.session_id = s.id AND i.revoked_at IS NULL
       AND i.redeem_count > 0
$$;

CREATE OR REPLACE FUNCTION th_chat_file_json(f chat_files) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'id', f.id, 'session_id', f.session_id,
        'content_type', f.content_type, 'size', f.size,
        'filename', f.id || CASE f.content_type
            WHEN 'image/jpeg' THEN '.jpg' WHEN 'image/png' THEN '.png'
            ELSE '.pdf' END,
        'patient_id', f.patient_id,
        'url', '/sessions/' || f.session_id || '/files/' || f.id,
        'created_at', th_ts(f.created_at)))
$$;

CREATE OR REPLACE FUNCTION th_chat_message_json(m chat_messages) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', m.id, 'session_id', m.session_id,
        'author', jsonb_build_object('participant', m.author,
                                     'name', m.author_name),
        'text', m.body,
        'attachment', (SELECT th_chat_file_json(f) FROM chat_files f
                        WHERE f.id = m.file_id AND f.state = 'clean'),
        'created_at', th_ts(m.created_at))
$$;

-- GET /sessions/{id}/messages: newest first, ?limit and ?cursor (the id of
-- the last message of the page before).
CREATE OR REPLACE FUNCTION th_op_chat_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions := th_chat_session(me, req ->> 'id');
    lim     integer := th_limit(req);
    cur     uuid := th_cursor(req);
    v_rows  jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(th_chat_message_json(m) ORDER BY m.seq DESC),
                    '[]')
      INTO v_rows
      FROM (SELECT * FROM chat_messages m
             WHERE m.session_id = s.id
               AND (cur IS NULL OR m.seq < (SELECT x.seq FROM chat_messages x
                                            WHERE x.id = cur
                                              AND x.session_id = s.id))
             ORDER BY m.seq DESC LIMIT lim + 1) m;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

-- POST /sessions/{id}/messages {text, file_id}: a message with text, an
-- attachment uploaded by the caller to this session, or both.  Everyone
-- in the session gets it on their event stream at commit.
CREATE OR REPLACE FUNCTION th_op_chat_post(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions := th_chat_session(me, req ->> 'id');
    b       jsonb := COALESCE(req -> 'body', '{}');
    v_text  text := COALESCE(th_text(b, 'text', 2000), '');
    v_file  uuid;
    m       chat_messages;
    v_json  jsonb;
BEGIN
    IF b ? 'file_id' AND jsonb_typeof(b -> 'file_id') <> 'null' THEN
        v_file := th_uuid(b ->> 'file_id', 'file');
        PERFORM 1 FROM chat_files f
         WHERE f.id = v_file AND f.session_id = s.id AND f.state = 'clean'
           AND f.uploaded_by = th_chat_who(me)
           AND NOT EXISTS (SELECT 1 FROM chat_messages x
                            WHERE x.file_id = f.id);
        IF NOT FOUND THEN
            PERFORM th_raise('422', '"file_id" is not a file you uploaded '
                             || 'to this session, or it is attached already.');
        END IF;
    END IF;
    IF btrim(v_text) = '' AND v_file IS NULL THEN
        PERFORM th_raise('422', 'A message needs "text" or "file_id".');
    END IF;

    INSERT INTO chat_messages (org_id, session_id, author, author_name, body,
                               file_id)
    VALUES (s.org_id, s.id, th_chat_who(me), th_chat_name(req, me), v_text,
            v_file)
    RETURNING * INTO m;

    v_json := th_chat_message_json(m);

    INSERT INTO console_events (org_id, recipient_id, session_id, type, data)
    SELECT s.org_id, r.recipient, s.id, 'message',
           jsonb_build_object('session_id', s.id, 'kind', 'message',
                              'message', v_json)
      FROM th_chat_recipients(s) r
     ORDER BY r.recipient;

    RETURN th_ok(201, v_json, NULL,
                 '/sessions/' || s.id || '/messages/' || m.id);
END
$$;

-- POST /sessions/{id}/files (the module, once nginx has the body on disk
-- and its type from its first bytes): the file's row, under the id the
-- module chose for its path.  body {file_id, content_type, size, scan,
-- file_to_patient}.  With scan the row stays pending (invisible) until
-- th_chat_file_scanned().  Filing to the patient is for a chair of a
-- session that names one, and for images.
CREATE OR REPLACE FUNCTION th_op_chat_file_add(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s        sessions := th_chat_session(me, req ->> 'id');
    b        jsonb := req -> 'body';
    v_type   text := b ->> 'content_type';
    v_patient uuid;
    f        chat_files;
BEGIN
    IF th_bool(b, 'file_to_patient') THEN
        IF me.type <> 'staff' OR NOT EXISTS (
            SELECT 1 FROM session_participants sp
             WHERE sp.session_id = s.id AND sp.staff_id = me.id
               AND sp.role = 'chair')
        THEN
            PERFORM th_raise('403', 'Only a chair of the session can file '
                             || 'images to the patient.');
        END IF;
        IF s.patient_id IS NULL THEN
            PERFORM th_raise('422', 'This session names no patient.');
        END IF;
        IF v_type NOT IN ('image/jpeg', 'image/png') THEN
            PERFORM th_raise('422', 'Only images can be filed to the '
                             || 'patient.');
        END IF;
        v_patient := s.patient_id;
    END IF;

    INSERT INTO chat_files (id, org_id, session_id, uploaded_by, content_type,
                            size, state, patient_id)
    VALUES (th_uuid(b ->> 'file_id', 'file'), s.org_id, s.id,
            th_chat_who(me), v_type, (b ->> 'size')::bigint,
            CASE WHEN th_bool(b, 'scan') THEN 'pending' ELSE 'clean' END,
            v_patient)
    RETURNING * INTO f;

    RETURN th_ok(201, th_chat_file_json(f), NULL,
                 '/sessions/' || s.id || '/files/' || f.id);
END
$$;

-- The malware scan's verdict on a pending file: clean makes it visible,
-- anything else deletes its row (the module unlinks the file).
CREATE OR REPLACE FUNCTION th_chat_file_scanned(v_file uuid, v_clean boolean)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF v_clean THEN
        UPDATE chat_files SET state = 'clean'
         WHERE id = v_file AND state = 'pending';
    ELSE
        DELETE FROM chat_files WHERE id = v_file AND state = 'pending';
    END IF;
    RETURN FOUND;
END
$$;

-- GET /sessions/{id}/files/{file}: for everyone in the session's chat;
-- the module then has nginx send the file (docs/api.md, "Chat").
CREATE OR REPLACE FUNCTION th_op_chat_file_get(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_chat_session(me, req ->> 'id');
    f  chat_files;
BEGIN
    SELECT * INTO f FROM chat_files
     WHERE id = th_uuid(req ->> 'id2', 'file') AND session_id = s.id
       AND state = 'clean';
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such file.');
    END IF;
    RETURN th_ok(200, th_chat_file_json(f));
END
$$;

-- Files filed to a patient that the caller may see: the rule of call
-- history (docs/features.md 32): a clinician only while assigned
-- (th_patient_for), and only files of sessions the caller was on.
CREATE OR REPLACE FUNCTION th_patient_file_visible(me th_caller, f chat_files)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM session_participants sp
                    WHERE sp.session_id = f.session_id
                      AND sp.staff_id = me.id)
        OR EXISTS (SELECT 1 FROM calls c
                     JOIN call_participants cp ON cp.call_id = c.id
                    WHERE c.session_id = f.session_id
                      AND cp.participant = 'staff:' || me.id)
$$;

-- GET /patients/{id}/files
CREATE OR REPLACE FUNCTION th_op_patient_files(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p       patients := th_patient_for(me, req ->> 'id');
    lim     integer := th_limit(req);
    cur     uuid := th_cursor(req);
    v_rows  jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(th_chat_file_json(f)
                              || jsonb_build_object('url', '/patients/'
                                  || p.id || '/files/' || f.id)
                              ORDER BY f.created_at DESC, f.id DESC), '[]')
      INTO v_rows
      FROM (SELECT * FROM chat_files f
             WHERE f.patient_id = p.id AND f.org_id = me.org
               AND f.state = 'clean' AND th_patient_file_visible(me, f)
               AND (cur IS NULL OR (f.created_at, f.id) <
                    (SELECT x.created_at, x.id FROM chat_files x
                      WHERE x.id = cur AND x.org_id = me.org))
             ORDER BY f.created_at DESC, f.id DESC LIMIT lim + 1) f;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

-- GET /patients/{id}/files/{file}: the same rule, then nginx sends it.
CREATE OR REPLACE FUNCTION th_op_patient_file_get(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p  patients := th_patient_for(me, req ->> 'id');
    f  chat_files;
BEGIN
    SELECT * INTO f FROM chat_files
     WHERE id = th_uuid(req ->> 'id2', 'file') AND patient_id = p.id
       AND org_id = me.org AND state = 'clean';
    IF NOT FOUND OR NOT th_patient_file_visible(me, f) THEN
        PERFORM th_raise('404', 'No such file.');
    END IF;
    RETURN th_ok(200, th_chat_file_json(f));
END
$$;

-- A session's chat in order, for its export: each message with its
-- author's name and its attachment.
CREATE OR REPLACE FUNCTION th_chat_export(v_session uuid)
RETURNS TABLE (seq bigint, created_at timestamptz, author text,
               author_name text, body text, file_id uuid,
               content_type text, size bigint)
LANGUAGE sql STABLE AS $$
    SELECT m.seq, m.created_at, m.author, m.author_name, m.body, f.id,
           f.content_type, f.size
      FROM chat_messages m
      LEFT JOIN chat_files f ON f.id = m.file_id AND f.state = 'clean'
     WHERE m.session_id = v_session
     ORDER BY m.seq
$$;

-- Deletes a session's messages, files and message events for good;
-- answers the ids of the files, which the caller unlinks from
-- telehealth_chat_files (each is stored under its id).  Images a chair
-- filed to the patient stay: they are part of the patient's record, as
-- the call history is (docs/lifecycle.md, "The purge").
CREATE OR REPLACE FUNCTION th_chat_purge_session(v_session uuid)
RETURNS TABLE (file_id uuid)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM console_events e
     WHERE e.session_id = v_session AND e.type = 'message';
    DELETE FROM chat_messages m WHERE m.session_id = v_session;
    RETURN QUERY DELETE FROM chat_files f
                  WHERE f.session_id = v_session AND f.patient_id IS NULL
                 RETURNING f.id;
END
$$;

-- PATCH /sessions/{id} (settings, access level) and
-- GET /sessions/{id}/participants (live members from Redis).
--
-- Both are th_api() operations.  When the access level of an open session
-- changes, the answer carries "access_check": the room, the new level and
-- the staff on the participant list; the module compares that with the
-- room's members hash in Redis and publishes access_changed to the node
-- hosting the room (docs/api.md).  "members_of" asks the module to add the
-- room's live members to the answer.

ALTER TABLE sessions
    ADD COLUMN version     integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION th_session_update_json(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', s.id, 'kind', s.kind, 'state', s.state,
        'org_id', s.org_id, 'patient_id', s.patient_id, 'room', s.room,
        'name', s.name, 'access', s.access,
        'scheduled_at', th_ts(s.scheduled_at), 'policies', s.policies,
        'version', s.version, 'updated_at', th_ts(s.updated_at))
$$;

-- The session {id} of the caller's organisation that the caller may
-- manage: a chair of it or an admin.  404 for those who cannot see it.
CREATE FUNCTION th_session_managed(me th_caller, s_id text) RETURNS sessions
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s       sessions;
    v_role  text;
BEGIN
    PERFORM th_staff_only(me);
    SELECT * INTO s FROM sessions
        WHERE id = th_uuid(s_id, 'session') AND org_id = me.org;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such session.');
    END IF;
    IF me.role = 'admin' THEN
        RETURN s;
    END IF;
    SELECT sp.role INTO v_role FROM session_participants sp
        WHERE sp.session_id = s.id AND sp.staff_id = me.id;
    IF NOT FOUND AND me.role = 'clinician' THEN
        PERFORM th_raise('404', 'No such session.');
    END IF;
    IF v_role IS DISTINCT FROM 'chair' THEN
        PERFORM th_raise('403', 'Only a chair of the session or an '
                         'administrator can change it.');
    END IF;
    RETURN s;
END
$$;

CREATE FUNCTION th_op_session_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b         jsonb := COALESCE(req -> 'body', '{}');
    s         sessions := th_session_managed(me, req ->> 'id');
    v_name    text := th_text(b, 'name', 200);
    v_access  text := th_text(b, 'access', 20);
    v_sched   timestamptz;
    v_before  text;
    body      jsonb;
BEGIN
    PERFORM th_if_match(req, s.version);
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    IF v_access IS NOT NULL
       AND v_access NOT IN ('private', 'internal', 'invitation')
    THEN
        PERFORM th_raise('422', '"access" must be private, internal or '
                         'invitation.');
    END IF;
    IF b ? 'scheduled_at' AND jsonb_typeof(b -> 'scheduled_at') <> 'null' THEN
        BEGIN
            v_sched := (b ->> 'scheduled_at')::timestamptz;
        EXCEPTION WHEN others THEN
            PERFORM th_raise('422', '"scheduled_at" must be an RFC 3339 '
                             'date and time.');
        END;
    END IF;
    IF s.state = 'ended' THEN
        RAISE EXCEPTION USING ERRCODE = 'TH409', HINT = 'conflict',
            MESSAGE = 'This session has ended.';
    END IF;
    v_before := s.access;
    UPDATE sessions x SET
        name = CASE WHEN b ? 'name' THEN v_name ELSE x.name END,
        access = COALESCE(v_access, x.access),
        scheduled_at = CASE WHEN b ? 'scheduled_at' THEN v_sched
                            ELSE x.scheduled_at END,
        version = x.version + 1,
        updated_at = now()
      WHERE x.id = s.id
      RETURNING * INTO s;
    body := th_session_update_json(s);
    -- a live room: those who no longer qualify are removed (the module
    -- reads who is in the room; nobody loses access to an invitation)
    IF s.access <> v_before AND s.state = 'open' AND s.room IS NOT NULL
       AND s.access <> 'invitation'
    THEN
        body := body || jsonb_build_object('access_check',
            jsonb_build_object('room', s.room, 'access', s.access,
                'staff', COALESCE((SELECT jsonb_agg(sp.staff_id::text)
                    FROM session_participants sp
                    WHERE sp.session_id = s.id
                      AND sp.staff_id IS NOT NULL), '[]'::jsonb)));
    END IF;
    RETURN th_ok(200, body, th_etag(s.version), NULL);
END
$$;

-- Staff on the session, or of an org-wide role (admin, supervisor,
-- coordinator); others get 404 as for GET /sessions/{id}.
CREATE FUNCTION th_op_session_participants(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions;
BEGIN
    PERFORM th_staff_only(me);
    SELECT * INTO s FROM sessions
        WHERE id = th_uuid(req ->> 'id', 'session') AND org_id = me.org;
    IF NOT FOUND
       OR (me.role = 'clinician'
           AND NOT EXISTS (SELECT 1 FROM session_participants sp
                           WHERE sp.session_id = s.id
                             AND sp.staff_id = me.id))
    THEN
        PERFORM th_raise('404', 'No such session.');
    END IF;
    RETURN th_ok(200, jsonb_build_object('session_id', s.id,
        'state', s.state, 'room', s.room,
        'members_of', CASE WHEN s.state = 'open' THEN s.room END));
END
$$;

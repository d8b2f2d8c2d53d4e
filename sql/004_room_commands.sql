-- Room commands from the REST API (chairs only): POST /sessions/{id}/close,
-- .../participants/{pid}/remove, /mute, /role.  th_api() checks the chair
-- and the body and writes the audit row; the module then publishes the
-- command to the node that hosts the room.

-- The open session {id} the caller chairs: 404 when not on it or another
-- organisation's, 403 when on it but not chair, 409 when not open.
CREATE FUNCTION th_session_chaired(me th_caller, s_id text) RETURNS sessions
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
    SELECT sp.role INTO v_role FROM session_participants sp
        WHERE sp.session_id = s.id AND sp.staff_id = me.id;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such session.');
    END IF;
    IF v_role <> 'chair' THEN
        PERFORM th_raise('403', 'Only a chair of the session can do this.');
    END IF;
    IF s.state <> 'open' OR s.room IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'TH409', HINT = 'room-not-open',
            MESSAGE = 'The video room of this session is not open.';
    END IF;
    RETURN s;
END
$$;

-- "staff:<uuid>", "patient:<uuid>" or "guest:<id>"
CREATE FUNCTION th_participant(v text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NULL OR v !~ '^(staff|patient):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
       AND v !~ '^guest:[A-Za-z0-9_-]{1,64}$'
    THEN
        PERFORM th_raise('404', 'No such participant.');
    END IF;
    RETURN v;
END
$$;

-- Each answers 202 with {"room", "command"}: the module publishes the
-- command to the node hosting the room (docs/plugin.md, "Commands").
CREATE FUNCTION th_op_session_close(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_chaired(me, req ->> 'id');
BEGIN
    RETURN th_ok(202, jsonb_build_object('room', s.room, 'command',
        jsonb_build_object('command', 'close', 'room', s.room,
                           'reason', 'closed_by_chair')));
END
$$;

CREATE FUNCTION th_op_session_remove(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_chaired(me, req ->> 'id');
    p  text := th_participant(req ->> 'id2');
BEGIN
    RETURN th_ok(202, jsonb_build_object('room', s.room, 'command',
        jsonb_build_object('command', 'remove', 'room', s.room,
                           'participant', p)));
END
$$;

CREATE FUNCTION th_op_session_mute(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_chaired(me, req ->> 'id');
    p  text := th_participant(req ->> 'id2');
    b  jsonb := COALESCE(req -> 'body', '{}');
    c  jsonb;
BEGIN
    c := jsonb_build_object('command', 'mute', 'room', s.room,
                            'participant', p);
    IF th_bool(b, 'audio') IS NOT NULL THEN
        c := c || jsonb_build_object('audio', th_bool(b, 'audio'));
    END IF;
    IF th_bool(b, 'video') IS NOT NULL THEN
        c := c || jsonb_build_object('video', th_bool(b, 'video'));
    END IF;
    IF NOT (c ? 'audio' OR c ? 'video') THEN
        PERFORM th_raise('422', '"audio" or "video" (true or false) is '
                         'required.');
    END IF;
    RETURN th_ok(202, jsonb_build_object('room', s.room, 'command', c));
END
$$;

CREATE FUNCTION th_op_session_role(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_chaired(me, req ->> 'id');
    p  text := th_participant(req ->> 'id2');
    r  text := th_text(COALESCE(req -> 'body', '{}'), 'role', 20);
BEGIN
    IF r IS NULL OR r NOT IN ('chair', 'broadcaster', 'viewer') THEN
        PERFORM th_raise('422', '"role" must be chair, broadcaster or '
                         'viewer.');
    END IF;
    RETURN th_ok(202, jsonb_build_object('room', s.room, 'command',
        jsonb_build_object('command', 'set_role', 'room', s.room,
                           'participant', p, 'role', r)));
END
$$;


-- th_api() of 002, now also taking the problem name from the HINT of a
-- th_* refusal (e.g. room-not-open for a 409).
CREATE OR REPLACE FUNCTION th_api(op text, req jsonb) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    me      th_caller;
    a       th_answer;
    state   text;
    msg     text;
    target  text;
    hint    text;
BEGIN
    IF op !~ '^[a-z_]+$' THEN
        RAISE EXCEPTION 'bad operation';
    END IF;

    me.id := (req #>> '{caller,id}')::uuid;
    me.org := (req #>> '{caller,org}')::uuid;
    me.type := req #>> '{caller,type}';

    -- the token may outlive the account: deactivated or removed -> 401
    IF me.type = 'staff' THEN
        SELECT s.role INTO me.role FROM staff s
            WHERE s.id = me.id AND s.org_id = me.org AND s.active;
    ELSE
        PERFORM 1 FROM patients p WHERE p.id = me.id AND p.org_id = me.org;
    END IF;
    IF NOT FOUND THEN
        RETURN th_ok(401, jsonb_build_object('problem', 'unauthorized',
                'detail', 'Please log in again.'));
    END IF;

    BEGIN
        EXECUTE format('SELECT * FROM %I($1, $2)', 'th_op_' || op)
            INTO a USING req, me;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
                                msg = MESSAGE_TEXT,
                                hint = PG_EXCEPTION_HINT;
        IF state LIKE 'TH%' THEN
            a := th_ok(substr(state, 3)::integer, NULL);
        ELSIF state = '23505' THEN
            a := th_ok(409, NULL);
            msg := 'This record already exists.';
        ELSIF state IN ('22P02', '22007', '22008', '22001', '22003',
                        '23502', '23514', '23503') THEN
            a := th_ok(422, NULL);
            msg := 'Some values are not valid.';
        ELSE
            RAISE;
        END IF;
        a.body := jsonb_build_object('problem',
            CASE WHEN state LIKE 'TH%' AND hint <> '' THEN hint ELSE
            CASE a.status
                WHEN 403 THEN 'forbidden' WHEN 404 THEN 'not-found'
                WHEN 409 THEN 'conflict' WHEN 412 THEN 'precondition-failed'
                WHEN 422 THEN 'validation' WHEN 400 THEN 'invalid-request'
                ELSE 'internal' END END,
            'detail', msg);
    END;

    target := COALESCE(req ->> 'id',
                       CASE WHEN a.status = 201 THEN a.body ->> 'id' END);
    PERFORM th_audit(req, me, op, split_part(op, '_', 1), target, a.status);

    RETURN a;
END
$$;

-- Session settings and staff identity (issue 4, "Sessions"; 011 did the
-- lists, service codes and appointments):
--
--   PATCH /sessions/{id}        also policies and the staff participant
--                               list; a live room gets the new values in
--                               its room hash ("room_update")
--   POST/PATCH /staff           also idp_subject, unique per organisation
--
-- See docs/api.md for each.


-- ------------------------------------------------------------ session update

-- PATCH /sessions/{id} of 006 changes name, time and access; it stays the
-- first step.  The new one also changes the policies (validated against
-- the kind like POST /sessions, starting from the session's current
-- values) and the staff on the participant list.  A live room gets the
-- new values through "room_update" (the module writes them into the room
-- hash, where the plugin reads them on every join); "access_check" asks
-- the module to remove who no longer qualifies (006).
ALTER FUNCTION th_op_session_update(jsonb, th_caller)
    RENAME TO th_session_update_settings;

-- The overrides of th_session_plan_kind() that reproduce a session's
-- policies (waiting_room is a list there, a comma-separated string here).
CREATE FUNCTION th_policy_overrides(pol jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT (pol - 'clinical_use') || jsonb_build_object('waiting_room',
        COALESCE(to_jsonb(string_to_array(
            NULLIF(pol ->> 'waiting_room', ''), ',')), '[]'))
$$;

CREATE FUNCTION th_op_session_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b       jsonb := COALESCE(req -> 'body', '{}');
    s       sessions := th_session_managed(me, req ->> 'id');
    a       th_answer;
    v_plan  jsonb;
    v_over  jsonb;
    parts   jsonb;
    n       integer;
    v_before   text := s.access;
    v_fields   jsonb;
    v_recheck  boolean;
BEGIN
    PERFORM th_if_match(req, s.version);
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    v_over := th_policy_overrides(s.policies);
    IF b ? 'policies' THEN
        IF jsonb_typeof(b -> 'policies') <> 'object' THEN
            PERFORM th_raise('422', '"policies" must be an object.');
        END IF;
        v_over := v_over || (b -> 'policies');
    END IF;
    v_plan := th_session_plan_kind(s.kind, jsonb_build_object(
        'policies', v_over,
        'access', COALESCE(b -> 'access', to_jsonb(s.access))),
        me.org, s.created_by);
    IF v_plan ? 'error' THEN
        PERFORM th_raise((v_plan ->> 'status'), v_plan ->> 'error');
    END IF;
    IF b ? 'participants' THEN
        parts := th_staff_participants(b -> 'participants', me.org);
        IF NOT parts @> '[{"role": "chair"}]' THEN
            PERFORM th_raise('422', 'The session needs at least one '
                             'chair.');
        END IF;
        n := jsonb_array_length(parts) + (SELECT count(*)
            FROM session_participants sp
            WHERE sp.session_id = s.id AND sp.patient_id IS NOT NULL);
        IF (v_plan #>> '{policies,max_participants}')::int > 0
           AND n > (v_plan #>> '{policies,max_participants}')::int
        THEN
            PERFORM th_raise('422', 'More participants than this session '
                             'allows.');
        END IF;
    END IF;

    -- name, time, access, the version and the ended check (006)
    a := th_session_update_settings(req, me);
    IF a.status <> 200 THEN
        RETURN a;
    END IF;
    -- who may stay: the new level, or the new list of a private one
    v_recheck := a.body ? 'access_check';

    UPDATE sessions x SET policies = v_plan -> 'policies'
      WHERE x.id = s.id
      RETURNING * INTO s;
    IF parts IS NOT NULL THEN
        DELETE FROM session_participants sp
          WHERE sp.session_id = s.id AND sp.staff_id IS NOT NULL
            AND NOT parts @> jsonb_build_array(
                jsonb_build_object('id', sp.staff_id));
        INSERT INTO session_participants (session_id, staff_id, role)
            SELECT s.id, (p ->> 'id')::uuid, p ->> 'role'
              FROM jsonb_array_elements(parts) p
            ON CONFLICT (session_id, staff_id) WHERE staff_id IS NOT NULL
            DO UPDATE SET role = EXCLUDED.role;
    END IF;

    a.body := th_session_json(s) || th_session_update_json(s);
    IF s.state = 'open' AND s.room IS NOT NULL THEN
        -- guests admitted by a link before a change of level are refused
        -- from then on (docs/redis.md, "Room policy fields")
        v_fields := v_plan -> 'room_fields';
        IF s.access <> v_before THEN
            v_fields := v_fields || jsonb_build_array('access_changed_at',
                (floor(extract(epoch FROM now()) * 1000))::bigint::text);
        END IF;
        a.body := a.body || jsonb_build_object('room_update',
            jsonb_build_object('room', s.room, 'session', s.id,
                               'fields', v_fields));
        IF (v_recheck OR (parts IS NOT NULL AND s.access = 'private'))
           AND s.access <> 'invitation'
        THEN
            a.body := a.body || jsonb_build_object('access_check',
                jsonb_build_object('room', s.room, 'access', s.access,
                    'staff', COALESCE((SELECT jsonb_agg(sp.staff_id::text)
                        FROM session_participants sp
                        WHERE sp.session_id = s.id
                          AND sp.staff_id IS NOT NULL), '[]'::jsonb)));
        END IF;
    END IF;
    RETURN a;
END
$$;


-- ------------------------------------------------------------ staff identity

-- idp_subject (005) is set by admins through POST and PATCH /staff and is
-- unique per organisation.  A value that names accounts in two
-- organisations names none at login (the module reads at most two).
ALTER TABLE staff DROP CONSTRAINT staff_idp_subject_key;
CREATE UNIQUE INDEX staff_org_idp_subject_idx ON staff (org_id, idp_subject);
CREATE INDEX staff_idp_subject_idx ON staff (idp_subject);

CREATE OR REPLACE FUNCTION th_staff_json(s staff) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', s.id, 'org_id', s.org_id, 'display_name', s.display_name,
        'email', s.email, 'role', s.role, 'active', s.active,
        'has_login', EXISTS (SELECT 1 FROM logins l WHERE l.staff_id = s.id),
        'idp_subject', s.idp_subject,
        'created_at', th_ts(s.created_at), 'updated_at', th_ts(s.updated_at),
        'deactivated_at', th_ts(s.deactivated_at))
$$;

ALTER FUNCTION th_op_staff_create(jsonb, th_caller)
    RENAME TO th_staff_create_record;
ALTER FUNCTION th_op_staff_update(jsonb, th_caller)
    RENAME TO th_staff_update_record;

-- Sets the idp_subject of the body on the staff record a answers with.
CREATE FUNCTION th_staff_idp_subject(a th_answer, b jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    v  text := th_text(b, 'idp_subject', 320);
    s  staff;
BEGIN
    IF NOT b ? 'idp_subject' OR a.status >= 300 THEN
        RETURN a;
    END IF;
    IF v IS NOT NULL AND (length(btrim(v)) = 0 OR v <> btrim(v)) THEN
        PERFORM th_raise('422', '"idp_subject" must not be empty or start '
                         'or end with a space.');
    END IF;
    IF EXISTS (SELECT 1 FROM staff x WHERE x.org_id = me.org
               AND x.idp_subject = v AND x.id <> (a.body ->> 'id')::uuid)
    THEN
        PERFORM th_raise('409', 'This identity-provider subject is already '
                         'used by another staff member.');
    END IF;
    UPDATE staff x SET idp_subject = v
      WHERE x.id = (a.body ->> 'id')::uuid
      RETURNING * INTO s;
    a.body := th_staff_json(s);
    RETURN a;
END
$$;

CREATE FUNCTION th_op_staff_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
BEGIN
    RETURN th_staff_idp_subject(th_staff_create_record(req, me),
                                COALESCE(req -> 'body', '{}'), me);
END
$$;

CREATE FUNCTION th_op_staff_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
BEGIN
    RETURN th_staff_idp_subject(th_staff_update_record(req, me),
                                COALESCE(req -> 'body', '{}'), me);
END
$$;


-- ------------------------------------------------------------ audit

-- th_api() names the target type after the first word of the operation;
-- the operations of service codes name theirs in full.
ALTER FUNCTION th_audit(jsonb, th_caller, text, text, text, integer)
    RENAME TO th_audit_row;

CREATE FUNCTION th_audit(req jsonb, me th_caller, action text,
    target_type text, target_id text, status integer) RETURNS void
LANGUAGE sql AS $$
    SELECT th_audit_row(req, me, action,
        CASE WHEN action LIKE 'service\_code\_%' THEN 'service_code'
             ELSE target_type END,
        target_id, status)
$$;

-- Sessions: their plan (kind, policies, access, participants), the room
-- commands of chairs, PATCH, close, lists and the session object.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- The kind's part of a session's plan: the kind's defaults, the policies,
-- access, time and participant list of the body checked against them.
-- th_session_plan() adds what only POST /sessions checks (service code,
-- appointment); PATCH /sessions/{id} and th_session_room_fields() use
-- this part alone.
--
-- {"error", "status"} or {"name", "access", "scheduled_at", "policies",
-- "participants": [{"staff_id", "role"}], "room_fields": [f, v, ...]}.
-- org: the caller's organisation; creator: the caller (chair anyway).
CREATE OR REPLACE FUNCTION th_session_plan_kind(v_kind text, body jsonb,
    org uuid, creator uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k       session_kinds;
    o       jsonb := COALESCE(body -> 'policies', '{}');
    pol     jsonb;
    wr      text;
    v_name  text;
    v_acc   text;
    v_at    timestamptz;
    parts   jsonb := '[]';
    p       jsonb;
    n       integer;
BEGIN
    SELECT * INTO k FROM session_kinds WHERE kind = v_kind;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 422, 'error',
            'This kind of session is not supported.');
    END IF;
    IF jsonb_typeof(o) <> 'object' THEN
        RETURN jsonb_build_object('status', 422, 'error',
            '"policies" must be an object.');
    END IF;

    BEGIN
        v_name := th_text(body, 'name', 200);
        v_acc := COALESCE(th_text(body, 'access', 20), k.access);
        IF v_acc NOT IN ('private', 'internal', 'invitation') THEN
            PERFORM th_raise('422', '"access" must be private, internal '
                             'or invitation.');
        END IF;
        IF th_text(body, 'scheduled_at', 40) IS NOT NULL THEN
            IF (body ->> 'scheduled_at') !~
                '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$'
            THEN
                PERFORM th_raise('422', '"scheduled_at" must be an RFC 3339 '
                                 'time.');
            END IF;
            v_at := (body ->> 'scheduled_at')::timestamptz;
        END IF;

        wr := k.waiting_room;
        IF o ? 'waiting_room' THEN
            IF jsonb_typeof(o -> 'waiting_room') <> 'array'
               OR EXISTS (SELECT 1 FROM jsonb_array_elements(o -> 'waiting_room') r
                          WHERE r #>> '{}' NOT IN ('broadcaster', 'viewer')
                             OR jsonb_typeof(r) <> 'string')
            THEN
                PERFORM th_raise('422', '"waiting_room" must list roles '
                                 'among broadcaster and viewer.');
            END IF;
            SELECT COALESCE(string_agg(DISTINCT r #>> '{}', ','), '')
              INTO wr FROM jsonb_array_elements(o -> 'waiting_room') r;
        END IF;

        pol := jsonb_build_object(
            'max_participants', th_policy_int(o, 'max_participants',
                                              k.max_participants, 1000),
            'duration_limit', th_policy_int(o, 'duration_limit',
                                            k.duration_limit, 86400),
            'waiting_room', wr,
            'leave_policy', COALESCE(th_text(o, 'leave_policy', 30),
                                     k.leave_policy),
            'first_connect', COALESCE(th_text(o, 'first_connect', 20),
                                      k.first_connect),
            'link_ttl', th_policy_int(o, 'link_ttl', k.link_ttl, 2592000),
            'empty_timeout', th_policy_int(o, 'empty_timeout',
                                           k.empty_timeout, 604800),
            'node_grace', th_policy_int(o, 'node_grace', k.node_grace,
                                        86400),
            'clinical_use', k.clinical);
        IF pol ->> 'leave_policy' NOT IN ('close_on_staff_leave',
                                           'caregiver_hangup_ends', 'stay')
        THEN
            PERFORM th_raise('422', '"leave_policy" must be '
                'close_on_staff_leave, caregiver_hangup_ends or stay.');
        END IF;
        IF pol ->> 'first_connect' NOT IN ('', 'broadcaster', 'viewer') THEN
            PERFORM th_raise('422', '"first_connect" must be broadcaster, '
                             'viewer or empty.');
        END IF;

        IF body ? 'participants' THEN
            IF jsonb_typeof(body -> 'participants') <> 'array' THEN
                PERFORM th_raise('422', '"participants" must be a list.');
            END IF;
            FOR p IN SELECT * FROM jsonb_array_elements(body -> 'participants')
            LOOP
                IF jsonb_typeof(p) <> 'object'
                   OR p ->> 'type' IS DISTINCT FROM 'staff'
                   OR COALESCE(p ->> 'role', 'broadcaster')
                      NOT IN ('chair', 'broadcaster', 'viewer')
                THEN
                    PERFORM th_raise('422', 'Each participant needs "type" '
                        'staff, an "id" and a "role" (chair, broadcaster '
                        'or viewer).');
                END IF;
                IF NOT EXISTS (SELECT 1 FROM staff s
                    WHERE s.id = th_uuid(p ->> 'id', 'staff member')
                      AND s.org_id = org AND s.active)
                THEN
                    PERFORM th_raise('404', 'No such staff member.');
                END IF;
                IF (p ->> 'id')::uuid <> creator
                   AND NOT parts @> jsonb_build_array(jsonb_build_object(
                       'staff_id', (p ->> 'id')::uuid))
                THEN
                    parts := parts || jsonb_build_array(jsonb_build_object(
                        'staff_id', (p ->> 'id')::uuid,
                        'role', COALESCE(p ->> 'role', 'broadcaster')));
                END IF;
            END LOOP;
            n := jsonb_array_length(parts) + 2;
            IF (pol ->> 'max_participants')::int > 0
               AND n > (pol ->> 'max_participants')::int
            THEN
                PERFORM th_raise('422', 'More participants than this kind '
                                 'of session allows.');
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE LIKE 'TH%' THEN
            RETURN jsonb_build_object('status', substr(SQLSTATE, 3)::int,
                                      'error', SQLERRM);
        END IF;
        RETURN jsonb_build_object('status', 422,
                                  'error', 'Some values are not valid.');
    END;

    RETURN jsonb_build_object(
        'name', v_name, 'access', v_acc, 'scheduled_at', v_at,
        'policies', pol, 'participants', parts,
        'room_fields', jsonb_build_array(
            'max_participants', pol ->> 'max_participants',
            'duration_limit', pol ->> 'duration_limit',
            'waiting_room', pol ->> 'waiting_room',
            'leave_policy', pol ->> 'leave_policy',
            'first_connect', pol ->> 'first_connect',
            'empty_timeout', pol ->> 'empty_timeout',
            'node_grace', pol ->> 'node_grace',
            'access', v_acc));
END
$$;

CREATE OR REPLACE FUNCTION th_policy_int(o jsonb, field text, dflt integer, max integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  jsonb := o -> field;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN dflt;
    END IF;
    IF jsonb_typeof(v) <> 'number' OR (v #>> '{}') !~ '^\d+$'
       OR (v #>> '{}')::numeric > max
    THEN
        PERFORM th_raise('422', '"' || field || '" must be a whole number '
                         'from 0 to ' || max || '.');
    END IF;
    RETURN (v #>> '{}')::integer;
END
$$;

-- The open session {id} the caller chairs: 404 when not on it or another
-- organisation's, 403 when on it but not chair, 409 when not open.
CREATE OR REPLACE FUNCTION th_session_chaired(me th_caller, s_id text) RETURNS sessions
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
CREATE OR REPLACE FUNCTION th_participant(v text) RETURNS text
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

-- Room commands of a chair (close: th_op_session_close()).  Each answers
-- 202 with {"room", "command"}: the module publishes the command to the
-- node hosting the room (docs/plugin.md, "Commands").
CREATE OR REPLACE FUNCTION th_op_session_remove(req jsonb, me th_caller)
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

CREATE OR REPLACE FUNCTION th_op_session_mute(req jsonb, me th_caller)
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

CREATE OR REPLACE FUNCTION th_op_session_role(req jsonb, me th_caller)
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

CREATE OR REPLACE FUNCTION th_session_update_json(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', s.id, 'kind', s.kind, 'state', s.state,
        'org_id', s.org_id, 'patient_id', s.patient_id, 'room', s.room,
        'name', s.name, 'access', s.access,
        'scheduled_at', th_ts(s.scheduled_at), 'policies', s.policies,
        'version', s.version, 'updated_at', th_ts(s.updated_at))
$$;

-- The session {id} of the caller's organisation that the caller may
-- manage: a chair of it or an admin.  404 for those who cannot see it.
CREATE OR REPLACE FUNCTION th_session_managed(me th_caller, s_id text) RETURNS sessions
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

-- Staff on the session, or of an org-wide role (admin, supervisor,
-- coordinator); others get 404 as for GET /sessions/{id}.
CREATE OR REPLACE FUNCTION th_op_session_participants(req jsonb, me th_caller)
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

CREATE OR REPLACE FUNCTION th_session_participant_json(sp session_participants)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'type', CASE WHEN sp.staff_id IS NOT NULL THEN 'staff'
                ELSE 'patient' END,
        'id', COALESCE(sp.staff_id, sp.patient_id), 'role', sp.role)
$$;

-- The order of a session's participant list: chairs first, staff before
-- the patient.
CREATE OR REPLACE FUNCTION th_session_participant_key(sp session_participants)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (sp.role <> 'chair')::int::text
        || (sp.staff_id IS NULL)::int::text
        || COALESCE(sp.staff_id, sp.patient_id)::text
$$;

-- How long an ended session stays in GET /sessions unless ?ended_since=
-- says otherwise ("recently ended", docs/features.md 11).
CREATE OR REPLACE FUNCTION th_recently_ended() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '7 days' $$;

-- GET /sessions: newest first.  mine (default true): sessions the caller
-- is on; mine=false: every session of the organisation, for the org-wide
-- roles.  A patient sees only sessions whose room may be open: the answer
-- carries "open_only" and the module keeps those whose room hash in
-- Redis is open.
CREATE OR REPLACE FUNCTION th_op_session_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    q          jsonb := COALESCE(req -> 'query', '{}');
    lim        integer := th_limit(req);
    cur        uuid := th_cursor(req);
    f_from     timestamptz := th_query_time(req, 'from');
    f_to       timestamptz := th_query_time(req, 'to');
    f_ended    timestamptz := COALESCE(th_query_time(req, 'ended_since'),
                                       now() - th_recently_ended());
    f_state    text[] := ARRAY['scheduled', 'open', 'idle', 'ended'];
    f_kind     text := q ->> 'kind';
    f_patient  uuid;
    f_mine     boolean := true;
    v_rows     jsonb;
    body       jsonb;
BEGIN
    IF q ? 'state' THEN
        f_state := string_to_array(q ->> 'state', ',');
        IF COALESCE(cardinality(f_state), 0) = 0 OR EXISTS (SELECT 1
                FROM unnest(f_state) x
                WHERE x NOT IN ('scheduled', 'open', 'idle', 'ended'))
        THEN
            PERFORM th_raise('422', '"state" must list states among '
                             'scheduled, open, idle and ended, e.g. '
                             'scheduled,open.');
        END IF;
    END IF;
    f_patient := th_query_uuid(req, 'patient_id');
    IF f_kind IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM session_kinds k WHERE k.kind = f_kind)
    THEN
        PERFORM th_raise('422', '"kind" is not a kind of session.');
    END IF;
    IF q ? 'mine' THEN
        IF (q ->> 'mine') NOT IN ('true', 'false') THEN
            PERFORM th_raise('422', '"mine" must be true or false.');
        END IF;
        f_mine := (q ->> 'mine')::boolean;
    END IF;
    IF NOT f_mine AND NOT th_org_wide(me) THEN
        PERFORM th_raise('403', 'Only administrators, supervisors and '
                         'coordinators can list sessions they are not on.');
    END IF;
    IF f_from IS NOT NULL AND f_to IS NOT NULL AND f_to <= f_from THEN
        PERFORM th_raise('422', '"to" must be later than "from".');
    END IF;

    SELECT COALESCE(jsonb_agg(th_session_json(s)
                              ORDER BY s.created_at DESC, s.id DESC), '[]')
      INTO v_rows
      FROM (SELECT * FROM sessions s
            WHERE s.org_id = me.org
              AND (NOT f_mine OR EXISTS (SELECT 1
                   FROM session_participants sp
                   WHERE sp.session_id = s.id
                     AND CASE WHEN me.type = 'staff'
                         THEN sp.staff_id = me.id
                         ELSE sp.patient_id = me.id END))
              AND (me.type = 'staff'
                   OR (s.state = 'open' AND s.room IS NOT NULL))
              AND s.state = ANY (f_state)
              AND (s.state <> 'ended' OR s.ended_at >= f_ended)
              AND (f_patient IS NULL OR s.patient_id = f_patient)
              AND (f_kind IS NULL OR s.kind = f_kind)
              AND (f_from IS NULL
                   OR COALESCE(s.scheduled_at, s.created_at) >= f_from)
              AND (f_to IS NULL
                   OR COALESCE(s.scheduled_at, s.created_at) < f_to)
              AND (cur IS NULL OR (s.created_at, s.id) <
                   (SELECT c.created_at, c.id FROM sessions c
                    WHERE c.id = cur AND c.org_id = me.org))
            ORDER BY s.created_at DESC, s.id DESC
            LIMIT lim + 1) s;

    body := th_page(v_rows, lim);
    IF me.type = 'patient' THEN
        body := body || jsonb_build_object('open_only', true);
    END IF;
    RETURN th_ok(200, body);
END
$$;

-- A participant list of staff as bodies give it: each of the caller's
-- organisation and active (404 otherwise), a role among chair,
-- broadcaster (the default) and viewer, each person once.
CREATE OR REPLACE FUNCTION th_staff_participants(v jsonb, org uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p      jsonb;
    parts  jsonb := '[]';
    v_id   uuid;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN parts;
    END IF;
    IF jsonb_typeof(v) <> 'array' THEN
        PERFORM th_raise('422', '"participants" must be a list.');
    END IF;
    FOR p IN SELECT * FROM jsonb_array_elements(v) LOOP
        IF jsonb_typeof(p) <> 'object'
           OR p ->> 'type' IS DISTINCT FROM 'staff'
           OR COALESCE(p ->> 'role', 'broadcaster')
              NOT IN ('chair', 'broadcaster', 'viewer')
        THEN
            PERFORM th_raise('422', 'Each participant needs "type" staff, '
                'an "id" and a "role" (chair, broadcaster or viewer).');
        END IF;
        v_id := th_uuid(p ->> 'id', 'staff member');
        IF NOT EXISTS (SELECT 1 FROM staff s
                       WHERE s.id = v_id AND s.org_id = org AND s.active)
        THEN
            PERFORM th_raise('404', 'No such staff member.');
        END IF;
        IF parts @> jsonb_build_array(jsonb_build_object('id', v_id)) THEN
            PERFORM th_raise('422', 'Each staff member can be on the list '
                             'once.');
        END IF;
        parts := parts || jsonb_build_array(jsonb_build_object(
            'type', 'staff', 'id', v_id,
            'role', COALESCE(p ->> 'role', 'broadcaster')));
    END LOOP;
    RETURN parts;
END
$$;

-- The session object of docs/api.md, "Session object".  The module builds
-- every answer that carries a session with it.
CREATE OR REPLACE FUNCTION th_session_json(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', s.id, 'kind', s.kind, 'state', s.state,
        'org_id', s.org_id, 'patient_id', s.patient_id,
        'created_by', s.created_by, 'room', s.room, 'name', s.name,
        'access', s.access, 'scheduled_at', th_ts(s.scheduled_at),
        'policies', s.policies, 'created_at', th_ts(s.created_at),
        'ended_at', th_ts(s.ended_at), 'end_reason', s.end_reason,
        'purged_at', th_ts(s.purged_at),
        'service_code', (SELECT c.code FROM service_codes c
                         WHERE c.id = s.service_code_id),
        'appointment_id', s.appointment_id, 'audio_only', s.audio_only,
        'participants', COALESCE((SELECT jsonb_agg(
                th_session_participant_json(sp)
                ORDER BY th_session_participant_key(sp))
            FROM session_participants sp WHERE sp.session_id = s.id),
            '[]'))
$$;

-- The plan of POST /sessions: the kind's part (th_session_plan_kind()),
-- then the service code (a virtual_visit needs one that allows virtual
-- visits) and the appointment a session is started from.
CREATE OR REPLACE FUNCTION th_session_plan(v_kind text, body jsonb, org uuid,
    creator uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    plan    jsonb := th_session_plan_kind(v_kind, body, org, creator);
    c       service_codes;
    v_code  text;
    v_audio boolean;
BEGIN
    IF plan ? 'error' THEN
        RETURN plan;
    END IF;
    BEGIN
        v_audio := COALESCE(th_bool(body, 'audio_only'), false);
        -- a video call needs the patient's consent to video where the
        -- organisation asks for it; a voice call does not
        IF v_kind = 'video_call' AND NOT v_audio AND EXISTS (
            SELECT 1 FROM organisations o, patients p
             WHERE o.id = org AND o.video_consent_required
               AND p.org_id = org AND p.video_consent_at IS NULL
               AND p.id::text = lower(body ->> 'patient_id'))
        THEN
            RETURN jsonb_build_object('status', 409,
                'problem', 'no-video-consent',
                'error', 'The client has not consented to video. Record '
                    'their consent before starting a video call.');
        END IF;
        v_code := th_text(body, 'service_code', 40);
        IF v_code IS NOT NULL THEN
            c := th_service_code_named(org, v_code);
        END IF;
        IF v_kind = 'virtual_visit' AND c.id IS NULL THEN
            PERFORM th_raise('422', 'A virtual visit needs a '
                '"service_code" that allows virtual visits.');
        END IF;
        IF v_kind = 'virtual_visit' AND NOT c.virtual_visits_allowed THEN
            PERFORM th_raise('422', 'The service code "' || c.code
                || '" does not allow virtual visits.');
        END IF;
        IF body ? 'appointment_id' AND EXISTS (SELECT 1 FROM sessions s
            WHERE s.appointment_id = th_uuid(body ->> 'appointment_id',
                                             'appointment'))
        THEN
            PERFORM th_raise('409', 'A session has already been created '
                             'from this appointment.');
        END IF;
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE LIKE 'TH%' THEN
            RETURN jsonb_build_object('status', substr(SQLSTATE, 3)::int,
                                      'error', SQLERRM);
        END IF;
        RAISE;
    END;
    RETURN plan || jsonb_build_object('service_code_id', c.id,
        'appointment_id', body -> 'appointment_id', 'audio_only', v_audio);
END
$$;

-- True while a call of the session is under way.
CREATE OR REPLACE FUNCTION th_session_in_progress(s sessions) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT s.state = 'open' AND EXISTS (SELECT 1 FROM calls c
        WHERE c.session_id = s.id AND c.ended_at IS NULL)
$$;

CREATE OR REPLACE FUNCTION th_session_not_ended(s sessions) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF s.state = 'ended' THEN
        RAISE EXCEPTION USING ERRCODE = 'TH409', HINT = 'conflict',
            MESSAGE = 'This session has ended.';
    END IF;
END
$$;

-- The date and time of a scheduled session for a message, or nothing.
CREATE OR REPLACE FUNCTION th_session_when(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN s.scheduled_at IS NULL THEN '{}'::jsonb ELSE
        jsonb_build_object(
            'date', to_char(s.scheduled_at AT TIME ZONE o.time_zone,
                            'YYYY-MM-DD'),
            'time', to_char(s.scheduled_at AT TIME ZONE o.time_zone,
                            'HH24:MI'),
            'time_zone', o.time_zone) END
      FROM organisations o WHERE o.id = s.org_id
$$;

-- The overrides of th_session_plan_kind() that reproduce a session's
-- policies (waiting_room is a list there, a comma-separated string here).
CREATE OR REPLACE FUNCTION th_policy_overrides(pol jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT (pol - 'clinical_use') || jsonb_build_object('waiting_room',
        COALESCE(to_jsonb(string_to_array(
            NULLIF(pol ->> 'waiting_room', ''), ',')), '[]'))
$$;

-- Whether POST /sessions stores the session of this plan (of
-- th_session_plan()) as scheduled rather than opening its room.
CREATE OR REPLACE FUNCTION th_session_deferred(v_kind text, plan jsonb)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT plan ? 'error'
       AND COALESCE((SELECT k.planned FROM session_kinds k
                     WHERE k.kind = v_kind), false)
       AND (plan ->> 'scheduled_at') IS NOT NULL
       AND (plan ->> 'scheduled_at')::timestamptz > now()
$$;

-- Whether sp is the invitee of a session: its patient, or the staff
-- member with the kind's first_connect role (a consultation's colleague).
CREATE OR REPLACE FUNCTION th_session_invitee(s sessions,
    sp session_participants) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT sp.patient_id IS NOT NULL
        OR (sp.staff_id IS NOT NULL AND sp.role <> 'chair'
            AND sp.role = NULLIF(s.policies ->> 'first_connect', ''))
$$;

-- The first join of whom opens a scheduled or idle session's room (the
-- kind's opener): a chair; the invitee (a patient on the list, or staff with
-- the kind's first_connect role, a colleague asked for a consultation);
-- either; or any staff member on the list (a meeting room).  Guests
-- open by their link: th_invite_redeem().
CREATE OR REPLACE FUNCTION th_session_opener(s sessions,
    sp session_participants) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT s.state IN ('scheduled', 'idle') AND sp.session_id IS NOT NULL
       AND CASE (SELECT k.opener FROM session_kinds k WHERE k.kind = s.kind)
           WHEN 'member' THEN sp.staff_id IS NOT NULL
           WHEN 'invitee' THEN th_session_invitee(s, sp)
           WHEN 'chair_or_invitee' THEN th_session_invitee(s, sp)
                                        OR sp.role = 'chair'
           ELSE sp.staff_id IS NOT NULL AND sp.role = 'chair' END
$$;

-- The room hash's policy fields of a stored session, as POST /sessions
-- writes them (th_session_plan() "room_fields").
CREATE OR REPLACE FUNCTION th_session_room_fields(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT th_session_plan_kind(s.kind, jsonb_build_object(
        'policies', th_policy_overrides(s.policies), 'access', s.access),
        s.org_id, s.created_by) -> 'room_fields'
$$;

-- POST /sessions/{id}/close, a chair's way out (docs/lifecycle.md,
-- "Ending a session"): "mode" close (the default) or keep_open.  An open
-- session: the room closes for everyone (202 with {"room", "command"},
-- like the other room commands), and the session ends (close) or becomes
-- idle (keep_open: the room's close reason kept_open tells the event
-- consumer).  A scheduled session is cancelled, an idle one closed: it
-- ends without a room (200 with the session); a chair of it or an admin
-- may.  keep_open needs a live room (409 otherwise).
CREATE OR REPLACE FUNCTION th_op_session_close(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions;
    v_mode  text := COALESCE(th_text(COALESCE(req -> 'body', '{}'), 'mode',
                                     20), 'close');
BEGIN
    PERFORM th_staff_only(me);
    IF v_mode NOT IN ('close', 'keep_open') THEN
        PERFORM th_raise('422', '"mode" must be close or keep_open.');
    END IF;
    IF v_mode = 'close' AND EXISTS (SELECT 1 FROM sessions x
               WHERE x.id = th_uuid(req ->> 'id', 'session')
                 AND x.org_id = me.org AND x.state IN ('scheduled', 'idle'))
    THEN
        s := th_session_managed(me, req ->> 'id');
        UPDATE sessions x SET state = 'ended', ended_at = now(),
            end_reason = CASE WHEN x.state = 'idle' THEN 'closed_by_chair'
                              ELSE x.end_reason END,
            version = x.version + 1, updated_at = now()
          WHERE x.id = s.id AND x.state IN ('scheduled', 'idle')
          RETURNING * INTO s;
        IF FOUND THEN
            DELETE FROM session_bans b WHERE b.session_id = s.id;
            RETURN th_ok(200, th_session_json(s), th_etag(s.version), NULL);
        END IF;
        -- opened meanwhile: close the room instead
    END IF;
    s := th_session_chaired(me, req ->> 'id');
    RETURN th_ok(202, jsonb_build_object('room', s.room, 'command',
        jsonb_build_object('command', 'close', 'room', s.room,
                           'reason', CASE v_mode WHEN 'keep_open'
                                     THEN 'kept_open'
                                     ELSE 'closed_by_chair' END)));
END
$$;

-- Who qualifies for a live session's level by name: the participant ids
-- of the list as the room knows them, and the invite links of its listed
-- patients ("guest:<invite id>", a redeemed link's participant).  The
-- module keeps in the room those members, plus any staff when internal.
CREATE OR REPLACE FUNCTION th_session_access_check(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('room', s.room, 'access', s.access,
        'participants', COALESCE((
            SELECT jsonb_agg(x.id ORDER BY x.id) FROM (
                SELECT CASE WHEN sp.staff_id IS NOT NULL
                            THEN 'staff:' || sp.staff_id
                            ELSE 'patient:' || sp.patient_id END AS id
                  FROM session_participants sp
                 WHERE sp.session_id = s.id
                UNION ALL
                SELECT 'guest:' || i.id
                  FROM invites i
                  JOIN session_participants sp
                    ON sp.session_id = s.id AND sp.patient_id = i.patient_id
                 WHERE i.session_id = s.id) x), '[]'::jsonb))
$$;

-- PATCH /sessions/{id} (a chair of the session or an admin): name, time,
-- access level, policies and the staff on the participant list.  The
-- policies are validated against the kind like POST /sessions, starting
-- from the session's current values.  An ended session cannot change
-- (409).
--
-- A live room gets the new values through "room_update" (the module
-- writes them into the room hash, where the plugin reads them on every
-- join).  When the level changes, or the list of a private session does,
-- "access_check" (th_session_access_check()) asks the module to remove
-- who no longer qualifies; nobody loses access to an invitation session.
CREATE OR REPLACE FUNCTION th_op_session_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b          jsonb := COALESCE(req -> 'body', '{}');
    s          sessions := th_session_managed(me, req ->> 'id');
    v_before   text := s.access;
    v_plan     jsonb;
    v_over     jsonb;
    parts      jsonb;
    n          integer;
    v_name     text;
    v_access   text;
    v_sched    timestamptz;
    v_fields   jsonb;
    body       jsonb;
BEGIN
    PERFORM th_if_match(req, s.version);
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;

    -- policies (and access) against the kind
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

    -- the staff on the participant list (listed patients stay)
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

    -- name, time, access
    v_name := th_text(b, 'name', 200);
    v_access := th_text(b, 'access', 20);
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

    UPDATE sessions x SET
        name = CASE WHEN b ? 'name' THEN v_name ELSE x.name END,
        access = COALESCE(v_access, x.access),
        scheduled_at = CASE WHEN b ? 'scheduled_at' THEN v_sched
                            ELSE x.scheduled_at END,
        policies = v_plan -> 'policies',
        version = x.version + 1,
        updated_at = now()
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

    body := th_session_json(s) || th_session_update_json(s);
    IF s.state = 'open' AND s.room IS NOT NULL THEN
        -- guests admitted by a link before a change of level are refused
        -- from then on (docs/redis.md, "Room policy fields")
        v_fields := v_plan -> 'room_fields';
        IF s.access <> v_before THEN
            v_fields := v_fields || jsonb_build_array('access_changed_at',
                (floor(extract(epoch FROM now()) * 1000))::bigint::text);
        END IF;
        body := body || jsonb_build_object('room_update',
            jsonb_build_object('room', s.room, 'session', s.id,
                               'fields', v_fields));
        IF (s.access <> v_before OR (parts IS NOT NULL AND s.access = 'private'))
           AND s.access <> 'invitation'
        THEN
            body := body || jsonb_build_object('access_check',
                th_session_access_check(s));
        END IF;
    END IF;
    RETURN th_ok(200, body, th_etag(s.version), NULL);
END
$$;

-- Breakout rooms of a group (docs/features.md 27), for its chairs through
-- the API: each answers 202 with a command for the node that hosts the
-- room (docs/plugin.md, "Commands").  POST /sessions/{id}/breakouts names
-- the new breakout room here, so the answer can say which it is.
CREATE OR REPLACE FUNCTION th_session_grouped(me th_caller, s_id text)
RETURNS sessions
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s  sessions := th_session_chaired(me, s_id);
BEGIN
    IF s.kind <> 'group' THEN
        PERFORM th_raise('422', 'Breakout rooms are for group sessions '
                         'only.');
    END IF;
    RETURN s;
END
$$;

CREATE OR REPLACE FUNCTION th_breakout_id(v text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NULL OR v !~ '^[A-Za-z0-9_-]{1,64}$' THEN
        PERFORM th_raise('404', 'No such breakout room.');
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION th_op_session_breakout_create(req jsonb,
    me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_grouped(me, req ->> 'id');
BEGIN
    RETURN th_ok(202, jsonb_build_object('room', s.room, 'command',
        jsonb_build_object('command', 'breakout_create', 'room', s.room,
            'breakout', 'breakout-' || left(th_random_token(), 10))));
END
$$;

-- POST /sessions/{id}/participants/{pid}/breakout {"breakout": name}:
-- into that breakout room; {"breakout": null}: back into the main room.
CREATE OR REPLACE FUNCTION th_op_session_breakout_move(req jsonb,
    me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_grouped(me, req ->> 'id');
    b  jsonb := COALESCE(req -> 'body', '{}');
BEGIN
    IF jsonb_typeof(b) <> 'object' OR NOT b ? 'breakout'
       OR jsonb_typeof(b -> 'breakout') NOT IN ('string', 'null')
    THEN
        PERFORM th_raise('422', '"breakout" must name a breakout room, or '
                         'be null for the main room.');
    END IF;
    RETURN th_ok(202, jsonb_build_object('room', s.room, 'command',
        jsonb_build_object('command', 'breakout_move', 'room', s.room,
            'breakout', CASE WHEN b ->> 'breakout' IS NOT NULL
                             THEN th_breakout_id(b ->> 'breakout') END,
            'participant', th_participant(req ->> 'id2'))));
END
$$;

-- DELETE /sessions/{id}/breakouts/{breakout}: closes it, everyone in it
-- back into the main room.
CREATE OR REPLACE FUNCTION th_op_session_breakout_close(req jsonb,
    me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_grouped(me, req ->> 'id');
BEGIN
    RETURN th_ok(202, jsonb_build_object('room', s.room, 'command',
        jsonb_build_object('command', 'breakout_close', 'room', s.room,
            'breakout', th_breakout_id(req ->> 'id2'))));
END
$$;

-- The module's own session statements (nginx-module/
-- ngx_http_telehealth_session.c, _session_read.c, _join.c): each reads or
-- writes what one step of a start, a read or a join needs, with its audit
-- row in the same transaction (docs/api.md, "Audit").

-- Whether a staff member may start a session of v_kind: the caller's role
-- and whether active, whether the patient (NULL: none) is of the
-- organisation, whether assigned to the caller, the plan of
-- th_session_plan(), whether it starts scheduled, and whether the kind
-- needs a patient.
CREATE OR REPLACE FUNCTION th_session_start_check(v_staff uuid,
    v_patient uuid, v_org uuid, v_kind text, v_body jsonb)
RETURNS TABLE (role text, active boolean, patient_found boolean,
               assigned boolean, plan text, deferred boolean,
               needs_patient boolean)
LANGUAGE sql STABLE AS $$
    SELECT s.role, s.active, p.id IS NOT NULL,
        EXISTS (SELECT 1 FROM assignments a
                 WHERE a.staff_id = s.id AND a.patient_id = p.id
                   AND a.ends_at IS NULL),
        pl.plan::text, th_session_deferred(v_kind, pl.plan),
        COALESCE((SELECT k.patient = 'required' FROM session_kinds k
                   WHERE k.kind = v_kind), false)
      FROM staff s
      LEFT JOIN patients p ON p.id = v_patient AND p.org_id = s.org_id
      CROSS JOIN LATERAL (SELECT th_session_plan(v_kind, v_body, v_org,
                                                 v_staff) AS plan) pl
     WHERE s.id = v_staff AND s.org_id = v_org
$$;

-- Writes a started session: open in v_room, or scheduled without one
-- (v_room NULL); its participants, its audit row, and the video_call SMS
-- to the patient in the outbox, due after v_sms_delay ms, so that the
-- SMS exists exactly when the session does.  v_plan is th_session_plan()'s.
-- Answers the session with its participants.
CREATE OR REPLACE FUNCTION th_session_insert(v_session uuid, v_org uuid,
    v_kind text, v_patient uuid, v_staff uuid, v_room text, v_created bigint,
    v_addr text, v_plan jsonb, v_sms_delay bigint) RETURNS text
LANGUAGE sql AS $$
    WITH s AS (
        INSERT INTO sessions
            (id, org_id, kind, state, patient_id, created_by, room,
             created_at, name, access, scheduled_at, policies,
             service_code_id, appointment_id, audio_only)
        VALUES (v_session, v_org, v_kind,
            CASE WHEN v_room IS NULL THEN 'scheduled' ELSE 'open' END,
            v_patient, v_staff, v_room, to_timestamp(v_created),
            v_plan ->> 'name', v_plan ->> 'access',
            (v_plan ->> 'scheduled_at')::timestamptz, v_plan -> 'policies',
            (v_plan ->> 'service_code_id')::uuid,
            (v_plan ->> 'appointment_id')::uuid,
            COALESCE((v_plan ->> 'audio_only')::boolean, false))
        RETURNING *
    ), p AS (
        INSERT INTO session_participants
            (session_id, staff_id, patient_id, role)
        SELECT v_session, v_staff, NULL, 'chair'
        UNION ALL SELECT v_session, NULL, v_patient, 'broadcaster'
         WHERE v_patient IS NOT NULL
        UNION ALL SELECT v_session, x.staff_id, NULL, x.role
          FROM jsonb_to_recordset(v_plan -> 'participants')
            AS x(staff_id uuid, role text)
        RETURNING *
    ), a AS (
        INSERT INTO audit_log (org_id, actor_type, actor_id, action,
            target_type, target_id, client_addr, outcome, status)
        VALUES (v_org, 'staff', v_staff, 'session_create', 'session',
            v_session::text, left(v_addr, 64), 'success', 201)
    ), n AS (
        INSERT INTO notifications (org_id, channel, recipient, template,
            language, session_id, room, participant, not_before,
            idempotency_key)
        SELECT pt.org_id, 'sms', pt.mobile, 'video_call_started',
            pt.language, v_session, v_room, 'patient:' || pt.id,
            now() + v_sms_delay * interval '1 millisecond',
            'video_call_started:' || v_session
          FROM patients pt
         WHERE v_kind = 'video_call' AND v_room IS NOT NULL
           AND pt.id = v_patient AND pt.org_id = v_org AND pt.sms_capable
           AND COALESCE(pt.mobile, '') <> ''
    )
    SELECT (th_session_json(ROW(s.*)::sessions)
        || jsonb_build_object('participants', (SELECT jsonb_agg(
               th_session_participant_json(ROW(p.*)::session_participants)
               ORDER BY th_session_participant_key(
                   ROW(p.*)::session_participants)) FROM p)))::text
      FROM s
$$;

-- The audit row of the module's session statements: th_audit()'s, with
-- the outcome its status says.
CREATE OR REPLACE FUNCTION th_session_audit(v_caller uuid, v_org uuid,
    v_type text, v_session uuid, v_addr text, v_action text,
    v_status integer) RETURNS void
LANGUAGE sql AS $$
    SELECT th_audit(jsonb_build_object('addr', v_addr),
                    ROW(v_caller, v_org, v_type, NULL)::th_caller, v_action,
                    'session', v_session::text, v_status)
$$;

-- GET /sessions/{id}: the session for a participant (patients only while
-- its room may be open; Redis decides the rest), its read audited.
CREATE OR REPLACE FUNCTION th_session_get(v_caller uuid, v_org uuid,
    v_type text, v_session uuid, v_addr text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
        SELECT th_session_json(s)::text
          FROM sessions s
         WHERE s.org_id = v_org AND s.id = v_session
           AND (v_type = 'staff' OR (s.state = 'open' AND s.room IS NOT NULL))
           AND EXISTS (SELECT 1 FROM session_participants sp
                        WHERE sp.session_id = s.id
                          AND CASE WHEN v_type = 'staff'
                                   THEN sp.staff_id = v_caller
                                   ELSE sp.patient_id = v_caller END);
    PERFORM th_session_audit(v_caller, v_org, v_type, v_session, v_addr,
                             'session_get', CASE WHEN FOUND THEN 200
                                                 ELSE 404 END);
END
$$;

-- POST /sessions/{id}/join: the caller's place in the session.  Staff of
-- the session's organisation who are not on the list join an internal or
-- invitation session as broadcaster (docs/features.md 7-8); "unlisted"
-- tells the credential so, for the plugin to refuse it once the level is
-- private; "banned", that a chair removed the caller from the session
-- (docs/lifecycle.md, "Bans"); "refusal", why the caller may not join
-- now (the caregiver of a visit before clocking in).  The join is audited.
CREATE OR REPLACE FUNCTION th_session_join(v_caller uuid, v_org uuid,
    v_type text, v_session uuid, v_addr text)
RETURNS TABLE (room text, kind text, state text, role text, name text,
               active boolean, patient_id uuid, created_by uuid,
               opener boolean, room_fields text, unlisted boolean,
               banned boolean, refusal text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
        SELECT s.room, s.kind, s.state, COALESCE(sp.role, 'broadcaster'),
            COALESCE(st.display_name, pt.display_name),
            COALESCE(st.active, true), s.patient_id, s.created_by,
            th_session_opener(s, sp),
            CASE WHEN s.state IN ('scheduled', 'idle')
                 THEN th_session_room_fields(s)::text END,
            sp.session_id IS NULL,
            EXISTS (SELECT 1 FROM session_bans b
                     WHERE b.session_id = s.id
                       AND b.participant = v_type || ':' || v_caller),
            th_visit_join_refusal(v_caller, v_type, s.id)
          FROM sessions s
          LEFT JOIN session_participants sp ON sp.session_id = s.id
               AND CASE WHEN v_type = 'staff' THEN sp.staff_id = v_caller
                        ELSE sp.patient_id = v_caller END
          LEFT JOIN staff st ON st.org_id = s.org_id
               AND st.id = COALESCE(sp.staff_id,
                   CASE WHEN v_type = 'staff'
                         AND s.access IN ('internal', 'invitation')
                        THEN v_caller END)
          LEFT JOIN patients pt ON pt.id = sp.patient_id
         WHERE s.id = v_session AND s.org_id = v_org
           AND (sp.session_id IS NOT NULL OR st.id IS NOT NULL);
    PERFORM th_session_audit(v_caller, v_org, v_type, v_session, v_addr,
                             'session_join', CASE WHEN FOUND THEN 200
                                                  ELSE 404 END);
END
$$;

-- The first join of its opener opened a scheduled session's room: no row
-- when it was cancelled or opened by someone else meanwhile.  Audited.
CREATE OR REPLACE FUNCTION th_session_opened(v_caller uuid, v_org uuid,
    v_type text, v_session uuid, v_addr text, v_room text)
RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id  uuid;
BEGIN
    UPDATE sessions x SET state = 'open', room = v_room,
        version = x.version + 1, updated_at = now()
     WHERE x.id = v_session AND x.org_id = v_org
       AND x.state IN ('scheduled', 'idle')
    RETURNING x.id INTO v_id;
    PERFORM th_session_audit(v_caller, v_org, v_type, v_session, v_addr,
                             'session_open', CASE WHEN v_id IS NOT NULL
                                                  THEN 200 ELSE 409 END);
    IF v_id IS NOT NULL THEN
        RETURN NEXT v_id;
    END IF;
END
$$;

-- Sessions for a staff console (issue 4, "Sessions"):
--
--   GET  /sessions                      th_api('session_list'): "my
--                                       sessions", filtered, paginated
--   /service-codes[/{id}]               service codes (PRODUCT 34)
--   /appointments[/{id}]                a minimal appointment resource
--   POST /appointments/{id}/session     th_api('appointment_session')
--                                       prepares the body of POST
--                                       /sessions; the module then starts
--                                       the session the way POST /sessions
--                                       does (PRODUCT 10)
--   PATCH /sessions/{id}                also policies and participants
--   POST/PATCH /staff                   also idp_subject
--
-- See docs/api.md for each.


-- ------------------------------------------------------------ sessions

CREATE INDEX sessions_org_list_idx ON sessions (org_id, created_at DESC, id DESC);

CREATE FUNCTION th_session_participant_json(sp session_participants)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'type', CASE WHEN sp.staff_id IS NOT NULL THEN 'staff'
                ELSE 'patient' END,
        'id', COALESCE(sp.staff_id, sp.patient_id), 'role', sp.role)
$$;

-- The order of a session's participant list: chairs first, staff before
-- the patient.
CREATE FUNCTION th_session_participant_key(sp session_participants)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (sp.role <> 'chair')::int::text
        || (sp.staff_id IS NULL)::int::text
        || COALESCE(sp.staff_id, sp.patient_id)::text
$$;

-- The session object of docs/api.md, "Session object".  The module builds
-- every answer that carries a session with it.
CREATE FUNCTION th_session_json(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', s.id, 'kind', s.kind, 'state', s.state,
        'org_id', s.org_id, 'patient_id', s.patient_id,
        'created_by', s.created_by, 'room', s.room, 'name', s.name,
        'access', s.access, 'scheduled_at', th_ts(s.scheduled_at),
        'policies', s.policies, 'created_at', th_ts(s.created_at),
        'ended_at', th_ts(s.ended_at),
        'participants', COALESCE((SELECT jsonb_agg(
                th_session_participant_json(sp)
                ORDER BY th_session_participant_key(sp))
            FROM session_participants sp WHERE sp.session_id = s.id),
            '[]'))
$$;

-- A time of the query string: RFC 3339, or NULL when absent.
CREATE FUNCTION th_query_time(req jsonb, field text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  text := req #>> ARRAY['query', field];
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$'
    THEN
        PERFORM th_raise('422', '"' || field || '" must be an RFC 3339 '
                         'time, e.g. 2026-12-01T10:00:00Z.');
    END IF;
    RETURN v::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    PERFORM th_raise('422', '"' || field || '" must be an RFC 3339 time, '
                     'e.g. 2026-12-01T10:00:00Z.');
    RETURN NULL;
END
$$;

-- How long an ended session stays in GET /sessions unless ?ended_since=
-- says otherwise ("recently ended", PRODUCT 11).
CREATE FUNCTION th_recently_ended() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '7 days' $$;

-- GET /sessions: newest first.  mine (default true): sessions the caller
-- is on; mine=false: every session of the organisation, for the org-wide
-- roles.  A patient sees only sessions whose room may be open: the answer
-- carries "open_only" and the module keeps those whose room hash in
-- Redis is open.
CREATE FUNCTION th_op_session_list(req jsonb, me th_caller)
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
    f_state    text[] := ARRAY['scheduled', 'open', 'ended'];
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
                WHERE x NOT IN ('scheduled', 'open', 'ended'))
        THEN
            PERFORM th_raise('422', '"state" must list states among '
                             'scheduled, open and ended, e.g. '
                             'scheduled,open.');
        END IF;
    END IF;
    IF q ? 'patient_id' THEN
        IF (q ->> 'patient_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN
            PERFORM th_raise('422', '"patient_id" is not a valid id.');
        END IF;
        f_patient := (q ->> 'patient_id')::uuid;
    END IF;
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

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


-- ------------------------------------------------------------ service codes

-- PRODUCT 34: a visit is scheduled for a service code; only codes that
-- allow virtual visits can have a virtual_visit session.
CREATE TABLE service_codes (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                  uuid NOT NULL REFERENCES organisations (id),
    code                    text NOT NULL
                            CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$'),
    name                    text NOT NULL
                            CHECK (length(name) BETWEEN 1 AND 200),
    virtual_visits_allowed  boolean NOT NULL DEFAULT false,
    active                  boolean NOT NULL DEFAULT true,
    version                 integer NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, code)
);

CREATE INDEX service_codes_org_created_idx
    ON service_codes (org_id, created_at, id);

ALTER TABLE sessions
    ADD COLUMN service_code_id  uuid REFERENCES service_codes (id);

CREATE FUNCTION th_service_code_json(c service_codes) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', c.id, 'org_id', c.org_id,
        'code', c.code, 'name', c.name,
        'virtual_visits_allowed', c.virtual_visits_allowed,
        'active', c.active, 'created_at', th_ts(c.created_at),
        'updated_at', th_ts(c.updated_at))
$$;

CREATE FUNCTION th_service_code_in_org(me th_caller, c_id text)
RETURNS service_codes
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c  service_codes;
BEGIN
    PERFORM th_staff_only(me);
    SELECT * INTO c FROM service_codes
        WHERE id = th_uuid(c_id, 'service code') AND org_id = me.org;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such service code.');
    END IF;
    RETURN c;
END
$$;

-- The active service code of the organisation named in a body: 422 when
-- there is none by that code.
CREATE FUNCTION th_service_code_named(org uuid, v_code text)
RETURNS service_codes
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c  service_codes;
BEGIN
    SELECT * INTO c FROM service_codes x
        WHERE x.org_id = org AND x.code = v_code AND x.active;
    IF NOT FOUND THEN
        PERFORM th_raise('422', 'There is no active service code "'
                         || left(v_code, 40) || '".');
    END IF;
    RETURN c;
END
$$;

CREATE FUNCTION th_service_code_check(c service_codes) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF c.code IS NULL OR c.code !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$' THEN
        PERFORM th_raise('422', '"code" is required: up to 40 letters, '
                         'digits, dots, dashes or underscores.');
    END IF;
    IF c.name IS NULL OR length(btrim(c.name)) = 0 THEN
        PERFORM th_raise('422', '"name" is required.');
    END IF;
END
$$;

CREATE FUNCTION th_op_service_code_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim       integer := th_limit(req);
    cur       uuid := th_cursor(req);
    f_active  text := req #>> '{query,active}';
    f_vv      text := req #>> '{query,virtual_visits_allowed}';
    v_rows    jsonb;
BEGIN
    PERFORM th_staff_only(me);
    IF f_active IS NOT NULL AND f_active NOT IN ('true', 'false') THEN
        PERFORM th_raise('422', '"active" must be true or false.');
    END IF;
    IF f_vv IS NOT NULL AND f_vv NOT IN ('true', 'false') THEN
        PERFORM th_raise('422', '"virtual_visits_allowed" must be true or '
                         'false.');
    END IF;
    SELECT COALESCE(jsonb_agg(th_service_code_json(c)
                              ORDER BY c.created_at, c.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM service_codes c
            WHERE c.org_id = me.org
              AND (f_active IS NULL OR c.active = f_active::boolean)
              AND (f_vv IS NULL
                   OR c.virtual_visits_allowed = f_vv::boolean)
              AND (cur IS NULL OR (c.created_at, c.id) >
                   (SELECT x.created_at, x.id FROM service_codes x
                    WHERE x.id = cur AND x.org_id = me.org))
            ORDER BY c.created_at, c.id
            LIMIT lim + 1) c;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

CREATE FUNCTION th_op_service_code_get(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    c  service_codes := th_service_code_in_org(me, req ->> 'id');
BEGIN
    RETURN th_ok(200, th_service_code_json(c), th_etag(c.version));
END
$$;

CREATE FUNCTION th_op_service_code_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    c  service_codes;
BEGIN
    PERFORM th_admin_only(me);
    c.code := th_text(b, 'code', 40);
    c.name := btrim(th_text(b, 'name', 200));
    c.virtual_visits_allowed := COALESCE(
        th_bool(b, 'virtual_visits_allowed'), false);
    c.active := COALESCE(th_bool(b, 'active'), true);
    PERFORM th_service_code_check(c);
    IF EXISTS (SELECT 1 FROM service_codes x
               WHERE x.org_id = me.org AND x.code = c.code)
    THEN
        PERFORM th_raise('409', 'This service code already exists.');
    END IF;
    INSERT INTO service_codes (org_id, code, name, virtual_visits_allowed,
                               active)
        VALUES (me.org, c.code, c.name, c.virtual_visits_allowed, c.active)
        RETURNING * INTO c;
    RETURN th_ok(201, th_service_code_json(c), th_etag(c.version),
                 '/service-codes/' || c.id);
END
$$;

CREATE FUNCTION th_op_service_code_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    c  service_codes;
BEGIN
    PERFORM th_admin_only(me);
    c := th_service_code_in_org(me, req ->> 'id');
    PERFORM th_if_match(req, c.version);
    IF b ? 'code' THEN
        c.code := th_text(b, 'code', 40);
    END IF;
    IF b ? 'name' THEN
        c.name := btrim(th_text(b, 'name', 200));
    END IF;
    IF b ? 'virtual_visits_allowed' THEN
        c.virtual_visits_allowed := COALESCE(
            th_bool(b, 'virtual_visits_allowed'), false);
    END IF;
    IF b ? 'active' THEN
        c.active := COALESCE(th_bool(b, 'active'), true);
    END IF;
    PERFORM th_service_code_check(c);
    IF EXISTS (SELECT 1 FROM service_codes x WHERE x.org_id = me.org
               AND x.code = c.code AND x.id <> c.id)
    THEN
        PERFORM th_raise('409', 'This service code already exists.');
    END IF;
    UPDATE service_codes x SET code = c.code, name = c.name,
        virtual_visits_allowed = c.virtual_visits_allowed,
        active = c.active, version = x.version + 1, updated_at = now()
      WHERE x.id = c.id
      RETURNING * INTO c;
    RETURN th_ok(200, th_service_code_json(c), th_etag(c.version));
END
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
        'service_code', (SELECT c.code FROM service_codes c
                         WHERE c.id = s.service_code_id),
        'participants', COALESCE((SELECT jsonb_agg(
                th_session_participant_json(sp)
                ORDER BY th_session_participant_key(sp))
            FROM session_participants sp WHERE sp.session_id = s.id),
            '[]'))
$$;


-- ------------------------------------------------------------ session plan

-- th_session_plan() of 003 becomes the kind's part; the plan now also
-- checks the service code (a virtual_visit needs one that allows virtual
-- visits) and the appointment a session is started from.
ALTER FUNCTION th_session_plan(text, jsonb, uuid, uuid)
    RENAME TO th_session_plan_kind;

CREATE FUNCTION th_session_plan(v_kind text, body jsonb, org uuid,
    creator uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    plan    jsonb := th_session_plan_kind(v_kind, body, org, creator);
    c       service_codes;
    v_code  text;
BEGIN
    IF plan ? 'error' THEN
        RETURN plan;
    END IF;
    BEGIN
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
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE LIKE 'TH%' THEN
            RETURN jsonb_build_object('status', substr(SQLSTATE, 3)::int,
                                      'error', SQLERRM);
        END IF;
        RAISE;
    END;
    RETURN plan || jsonb_build_object('service_code_id', c.id);
END
$$;

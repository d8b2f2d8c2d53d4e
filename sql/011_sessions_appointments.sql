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


-- ------------------------------------------------------------ appointments

-- PRODUCT 10: a scheduled appointment with the staff on it and their
-- roles; POST /appointments/{id}/session starts its session in one step.
CREATE TABLE appointments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES organisations (id),
    patient_id       uuid NOT NULL REFERENCES patients (id),
    scheduled_at     timestamptz NOT NULL,
    name             text CHECK (length(name) BETWEEN 1 AND 200),
    service_code_id  uuid REFERENCES service_codes (id),
    -- [{"type": "staff", "id": uuid, "role": "chair"|"broadcaster"|"viewer"}]
    participants     jsonb NOT NULL DEFAULT '[]',
    created_by       uuid NOT NULL REFERENCES staff (id),
    version          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX appointments_org_time_idx
    ON appointments (org_id, scheduled_at, id);
CREATE INDEX appointments_patient_idx ON appointments (patient_id);

-- At most one session per appointment.
ALTER TABLE sessions
    ADD COLUMN appointment_id  uuid UNIQUE REFERENCES appointments (id);

-- A participant list of staff as bodies give it: each of the caller's
-- organisation and active (404 otherwise), a role among chair,
-- broadcaster (the default) and viewer, each person once.
CREATE FUNCTION th_staff_participants(v jsonb, org uuid) RETURNS jsonb
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

CREATE FUNCTION th_appointment_json(a appointments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', a.id, 'org_id', a.org_id,
        'patient_id', a.patient_id, 'scheduled_at', th_ts(a.scheduled_at),
        'name', a.name,
        'service_code', (SELECT c.code FROM service_codes c
                         WHERE c.id = a.service_code_id),
        'participants', a.participants,
        'session_id', (SELECT s.id FROM sessions s
                       WHERE s.appointment_id = a.id),
        'created_by', a.created_by, 'created_at', th_ts(a.created_at),
        'updated_at', th_ts(a.updated_at))
$$;

-- The appointment {id} as the caller may see it: like its patient (404
-- outside the organisation, 403 for patients and unassigned clinicians).
CREATE FUNCTION th_appointment_for(me th_caller, a_id text)
RETURNS appointments
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a  appointments;
BEGIN
    PERFORM th_staff_only(me);
    SELECT * INTO a FROM appointments
        WHERE id = th_uuid(a_id, 'appointment') AND org_id = me.org;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such appointment.');
    END IF;
    PERFORM th_patient_for(me, a.patient_id::text);
    RETURN a;
END
$$;

-- The fields of a body that an appointment takes (create and update).
CREATE FUNCTION th_appointment_apply(a appointments, b jsonb, me th_caller)
RETURNS appointments
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_code  text;
BEGIN
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    IF b ? 'scheduled_at' THEN
        IF th_text(b, 'scheduled_at', 40) IS NULL
           OR (b ->> 'scheduled_at') !~
              '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$'
        THEN
            PERFORM th_raise('422', '"scheduled_at" must be an RFC 3339 '
                             'time.');
        END IF;
        a.scheduled_at := (b ->> 'scheduled_at')::timestamptz;
    END IF;
    IF b ? 'name' THEN
        a.name := NULLIF(btrim(th_text(b, 'name', 200)), '');
    END IF;
    IF b ? 'service_code' THEN
        v_code := th_text(b, 'service_code', 40);
        a.service_code_id := CASE WHEN v_code IS NOT NULL
            THEN (th_service_code_named(me.org, v_code)).id END;
    END IF;
    IF b ? 'participants' THEN
        a.participants := th_staff_participants(b -> 'participants', me.org);
    END IF;
    IF a.scheduled_at IS NULL THEN
        PERFORM th_raise('422', '"scheduled_at" is required.');
    END IF;
    RETURN a;
END
$$;

CREATE FUNCTION th_op_appointment_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    q          jsonb := COALESCE(req -> 'query', '{}');
    lim        integer := th_limit(req);
    cur        uuid := th_cursor(req);
    f_from     timestamptz := th_query_time(req, 'from');
    f_to       timestamptz := th_query_time(req, 'to');
    f_patient  uuid;
    v_rows     jsonb;
BEGIN
    PERFORM th_staff_only(me);
    IF q ? 'patient_id' THEN
        IF (q ->> 'patient_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN
            PERFORM th_raise('422', '"patient_id" is not a valid id.');
        END IF;
        f_patient := (q ->> 'patient_id')::uuid;
    END IF;
    SELECT COALESCE(jsonb_agg(th_appointment_json(a)
                              ORDER BY a.scheduled_at, a.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM appointments a
            WHERE a.org_id = me.org
              AND (th_org_wide(me) OR EXISTS (
                   SELECT 1 FROM assignments x
                   WHERE x.staff_id = me.id AND x.patient_id = a.patient_id
                     AND x.ends_at IS NULL))
              AND (f_patient IS NULL OR a.patient_id = f_patient)
              AND (f_from IS NULL OR a.scheduled_at >= f_from)
              AND (f_to IS NULL OR a.scheduled_at < f_to)
              AND (cur IS NULL OR (a.scheduled_at, a.id) >
                   (SELECT c.scheduled_at, c.id FROM appointments c
                    WHERE c.id = cur AND c.org_id = me.org))
            ORDER BY a.scheduled_at, a.id
            LIMIT lim + 1) a;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

CREATE FUNCTION th_op_appointment_get(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    a  appointments := th_appointment_for(me, req ->> 'id');
BEGIN
    RETURN th_ok(200, th_appointment_json(a), th_etag(a.version));
END
$$;

CREATE FUNCTION th_op_appointment_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    p  patients;
    a  appointments;
BEGIN
    PERFORM th_staff_only(me);
    IF th_text(b, 'patient_id', 36) IS NULL THEN
        PERFORM th_raise('422', '"patient_id" is required.');
    END IF;
    p := th_patient_for(me, b ->> 'patient_id');
    a.participants := '[]';
    a := th_appointment_apply(a, b, me);
    INSERT INTO appointments (org_id, patient_id, scheduled_at, name,
                              service_code_id, participants, created_by)
        VALUES (me.org, p.id, a.scheduled_at, a.name, a.service_code_id,
                a.participants, me.id)
        RETURNING * INTO a;
    RETURN th_ok(201, th_appointment_json(a), th_etag(a.version),
                 '/appointments/' || a.id);
END
$$;

CREATE FUNCTION th_op_appointment_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    a  appointments := th_appointment_for(me, req ->> 'id');
BEGIN
    PERFORM th_if_match(req, a.version);
    IF b ? 'patient_id' THEN
        PERFORM th_raise('422', 'The patient of an appointment cannot be '
                         'changed.');
    END IF;
    a := th_appointment_apply(a, b, me);
    IF EXISTS (SELECT 1 FROM sessions s WHERE s.appointment_id = a.id) THEN
        PERFORM th_raise('409', 'The session of this appointment has '
                         'already been created; change the session.');
    END IF;
    UPDATE appointments x SET scheduled_at = a.scheduled_at, name = a.name,
        service_code_id = a.service_code_id,
        participants = a.participants,
        version = x.version + 1, updated_at = now()
      WHERE x.id = a.id
      RETURNING * INTO a;
    RETURN th_ok(200, th_appointment_json(a), th_etag(a.version));
END
$$;

-- POST /appointments/{id}/session: answers the body of POST /sessions
-- that starts the appointment's session ("session_request"); the module
-- starts it the way POST /sessions does.  A second call is 409.
CREATE FUNCTION th_op_appointment_session(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    a  appointments := th_appointment_for(me, req ->> 'id');
    r  jsonb;
BEGIN
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    IF EXISTS (SELECT 1 FROM sessions s WHERE s.appointment_id = a.id) THEN
        PERFORM th_raise('409', 'A session has already been created from '
                         'this appointment.');
    END IF;
    r := jsonb_build_object('kind',
            COALESCE(th_text(b, 'kind', 32), 'appointment'),
        'patient_id', a.patient_id, 'appointment_id', a.id,
        'scheduled_at', th_ts(a.scheduled_at),
        'participants', a.participants);
    IF a.name IS NOT NULL OR b ? 'name' THEN
        r := r || jsonb_build_object('name', COALESCE(b -> 'name',
                                                      to_jsonb(a.name)));
    END IF;
    IF a.service_code_id IS NOT NULL THEN
        r := r || jsonb_build_object('service_code',
            (SELECT c.code FROM service_codes c
             WHERE c.id = a.service_code_id));
    END IF;
    IF b ? 'access' THEN
        r := r || jsonb_build_object('access', b -> 'access');
    END IF;
    IF b ? 'policies' THEN
        r := r || jsonb_build_object('policies', b -> 'policies');
    END IF;
    RETURN th_ok(200, jsonb_build_object('session_request', r));
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
        'appointment_id', s.appointment_id,
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
        'appointment_id', body -> 'appointment_id');
END
$$;

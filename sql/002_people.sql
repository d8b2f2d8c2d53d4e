-- People and access through the REST API: staff, patients, assignments,
-- call history and the audit log.
--
-- The module answers these routes with one statement each:
--     SELECT * FROM th_api(<operation>, <request as jsonb>)
-- th_api() resolves the caller, runs th_op_<operation>() and writes the
-- audit row of the request, all in the statement's own transaction: a
-- change and its audit row commit together, and a refused request still
-- leaves its audit row.  See docs/api.md, "How the API runs in PostgreSQL".

ALTER TABLE staff
    ADD COLUMN version         integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN deactivated_at  timestamptz;

ALTER TABLE patients
    ADD COLUMN version     integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();

CREATE INDEX staff_org_created_idx ON staff (org_id, created_at, id);
CREATE INDEX patients_org_created_idx ON patients (org_id, created_at, id);
CREATE INDEX call_participants_participant_idx
    ON call_participants (participant);

-- Append-only: the module's role may only INSERT and SELECT (grants.sql),
-- and the triggers below refuse changes even to the owner.
CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    org_id        uuid,
    actor_type    text,
    actor_id      uuid,
    action        text NOT NULL,
    target_type   text,
    target_id     text,
    client_addr   text,
    outcome       text NOT NULL,
    status        integer NOT NULL
);

CREATE INDEX audit_log_org_idx ON audit_log (org_id, id DESC);

CREATE FUNCTION th_audit_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION th_audit_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION th_audit_immutable();


-- ------------------------------------------------------------ plumbing

CREATE TYPE th_answer AS (
    status    integer,
    body      jsonb,
    etag      text,
    location  text
);

-- Who calls: from the verified access token, checked against the tables.
CREATE TYPE th_caller AS (
    id    uuid,
    org   uuid,
    type  text,          -- 'staff' or 'patient'
    role  text           -- staff role, NULL for patients
);

CREATE FUNCTION th_ok(status integer, body jsonb, etag text DEFAULT NULL,
    location text DEFAULT NULL) RETURNS th_answer
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(status, body, etag, location)::th_answer
$$;

-- RFC 3339 in UTC, as every answer prints time.
CREATE FUNCTION th_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- Refuses the request: code is the HTTP status (problem type in th_api).
CREATE FUNCTION th_raise(code text, detail text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TH' || code, MESSAGE = detail;
END
$$;

CREATE FUNCTION th_uuid(v text, what text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NULL OR v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        PERFORM th_raise('404', 'No such ' || what || '.');
    END IF;
    RETURN v::uuid;
END
$$;

CREATE FUNCTION th_staff_only(me th_caller) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF me.type <> 'staff' THEN
        PERFORM th_raise('403', 'Only staff can do this.');
    END IF;
END
$$;

CREATE FUNCTION th_admin_only(me th_caller) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF me.type <> 'staff' OR me.role <> 'admin' THEN
        PERFORM th_raise('403', 'Only administrators can do this.');
    END IF;
END
$$;

CREATE FUNCTION th_org_wide(me th_caller) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT me.type = 'staff'
        AND me.role IN ('admin', 'supervisor', 'coordinator')
$$;

-- The page size of a list: ?limit=, 50 by default, at most 200.
CREATE FUNCTION th_limit(req jsonb) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  text := req #>> '{query,limit}';
BEGIN
    IF v IS NULL THEN
        RETURN 50;
    END IF;
    IF v !~ '^[0-9]{1,4}$' OR v::integer NOT BETWEEN 1 AND 200 THEN
        PERFORM th_raise('422', '"limit" must be a number from 1 to 200.');
    END IF;
    RETURN v::integer;
END
$$;

-- ?cursor= of lists keyed by uuid: the id of the last item of the page.
CREATE FUNCTION th_cursor(req jsonb) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  text := req #>> '{query,cursor}';
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        PERFORM th_raise('422', '"cursor" is not valid.');
    END IF;
    RETURN v::uuid;
END
$$;

-- {"items": [...], "next_cursor": ...} from limit + 1 rows fetched.
CREATE FUNCTION th_page(v_rows jsonb, lim integer, key text DEFAULT 'id')
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_array_length(v_rows) > lim THEN
        jsonb_build_object(
            'items', (SELECT COALESCE(jsonb_agg(e ORDER BY n), '[]')
                      FROM jsonb_array_elements(v_rows) WITH ORDINALITY x(e, n)
                      WHERE n <= lim),
            'next_cursor', v_rows -> (lim - 1) ->> key)
    ELSE
        jsonb_build_object('items', v_rows, 'next_cursor', NULL)
    END
$$;

-- If-Match: absent, "*", or one of the listed tags equals the current one.
CREATE FUNCTION th_if_match(req jsonb, version integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    h    text := req ->> 'if_match';
    tag  text;
BEGIN
    IF h IS NULL THEN
        RETURN;
    END IF;
    FOREACH tag IN ARRAY regexp_split_to_array(h, '\s*,\s*') LOOP
        tag := regexp_replace(btrim(tag), '^W/', '');
        IF tag = '*' OR tag = '"' || version || '"' THEN
            RETURN;
        END IF;
    END LOOP;
    PERFORM th_raise('412', 'Someone else changed this record meanwhile. '
                     'Reload it and try again.');
END
$$;

CREATE FUNCTION th_etag(version integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '"' || version || '"'
$$;

-- Body helpers: a string field, absent -> NULL; wrong type -> 422.
CREATE FUNCTION th_text(body jsonb, field text, max integer DEFAULT 200)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  jsonb := body -> field;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'string' THEN
        PERFORM th_raise('422', '"' || field || '" must be a string.');
    END IF;
    IF length(v #>> '{}') > max THEN
        PERFORM th_raise('422', '"' || field || '" is too long.');
    END IF;
    RETURN v #>> '{}';
END
$$;

CREATE FUNCTION th_bool(body jsonb, field text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  jsonb := body -> field;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'boolean' THEN
        PERFORM th_raise('422', '"' || field || '" must be true or false.');
    END IF;
    RETURN v::boolean;
END
$$;

CREATE FUNCTION th_email(v text, field text DEFAULT 'email') RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(v) > 254 THEN
        PERFORM th_raise('422', '"' || field
                         || '" is not a valid e-mail address.');
    END IF;
    RETURN lower(v);
END
$$;

CREATE FUNCTION th_phone(v text, field text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NOT NULL AND v !~ '^\+[1-9][0-9]{6,14}$' THEN
        PERFORM th_raise('422', '"' || field || '" must be a phone number '
                         'in international format, e.g. +4930123456.');
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION th_name(v text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NOT NULL AND length(btrim(v)) = 0 THEN
        PERFORM th_raise('422', '"display_name" must not be empty.');
    END IF;
    RETURN btrim(v);
END
$$;


-- --------------------------------------------------------- representations

CREATE FUNCTION th_staff_json(s staff) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', s.id, 'org_id', s.org_id, 'display_name', s.display_name,
        'email', s.email, 'role', s.role, 'active', s.active,
        'has_login', EXISTS (SELECT 1 FROM logins l WHERE l.staff_id = s.id),
        'created_at', th_ts(s.created_at), 'updated_at', th_ts(s.updated_at),
        'deactivated_at', th_ts(s.deactivated_at))
$$;

CREATE FUNCTION th_patient_json(p patients) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', p.id, 'org_id', p.org_id, 'display_name', p.display_name,
        'email', p.email, 'mobile', p.mobile, 'sms_capable', p.sms_capable,
        'whatsapp', p.whatsapp, 'language', p.language,
        'has_login',
            EXISTS (SELECT 1 FROM logins l WHERE l.patient_id = p.id),
        'created_at', th_ts(p.created_at), 'updated_at', th_ts(p.updated_at))
$$;

CREATE FUNCTION th_assignment_json(a assignments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', a.id, 'patient_id', a.patient_id, 'staff_id', a.staff_id,
        'starts_at', th_ts(a.starts_at), 'ends_at', th_ts(a.ends_at),
        'current', a.ends_at IS NULL)
$$;


-- ------------------------------------------------------------ access

-- The patient {id} as the caller may see it: 404 outside the caller's
-- organisation, 403 for patients and for clinicians it is not assigned to.
CREATE FUNCTION th_patient_for(me th_caller, p_id text) RETURNS patients
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p  patients;
BEGIN
    PERFORM th_staff_only(me);
    SELECT * INTO p FROM patients
        WHERE patients.id = th_uuid(p_id, 'patient') AND org_id = me.org;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such patient.');
    END IF;
    IF NOT th_org_wide(me) AND NOT EXISTS (
        SELECT 1 FROM assignments a
        WHERE a.staff_id = me.id AND a.patient_id = p.id
          AND a.ends_at IS NULL)
    THEN
        PERFORM th_raise('403', 'This patient is not assigned to you.');
    END IF;
    RETURN p;
END
$$;

CREATE FUNCTION th_staff_in_org(me th_caller, s_id text) RETURNS staff
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s  staff;
BEGIN
    SELECT * INTO s FROM staff
        WHERE staff.id = th_uuid(s_id, 'staff member') AND org_id = me.org;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such staff member.');
    END IF;
    RETURN s;
END
$$;


-- ------------------------------------------------------------ staff

CREATE FUNCTION th_op_staff_list(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim     integer := th_limit(req);
    cur     uuid := th_cursor(req);
    f_role    text := req #>> '{query,role}';
    f_active  text := req #>> '{query,active}';
    q         text := req #>> '{query,q}';
    v_rows    jsonb;
BEGIN
    PERFORM th_staff_only(me);
    IF f_active IS NOT NULL AND f_active NOT IN ('true', 'false') THEN
        PERFORM th_raise('422', '"active" must be true or false.');
    END IF;
    SELECT COALESCE(jsonb_agg(th_staff_json(s) ORDER BY s.created_at, s.id),
                    '[]')
      INTO v_rows
      FROM (SELECT * FROM staff s
            WHERE s.org_id = me.org
              AND (f_role IS NULL OR s.role = f_role)
              AND (f_active IS NULL OR s.active = f_active::boolean)
              AND (q IS NULL OR s.display_name ILIKE '%' || q || '%'
                   OR s.email ILIKE '%' || q || '%')
              AND (cur IS NULL OR (s.created_at, s.id) >
                   (SELECT c.created_at, c.id FROM staff c
                    WHERE c.id = cur AND c.org_id = me.org))
            ORDER BY s.created_at, s.id
            LIMIT lim + 1) s;
    RETURN th_ok(200, th_page(v_rows, lim), NULL, NULL);
END
$$;

CREATE FUNCTION th_op_staff_get(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  staff;
BEGIN
    PERFORM th_staff_only(me);
    s := th_staff_in_org(me, req ->> 'id');
    RETURN th_ok(200, th_staff_json(s), th_etag(s.version), NULL);
END
$$;

CREATE FUNCTION th_op_staff_create(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b      jsonb := COALESCE(req -> 'body', '{}');
    v_name   text := th_name(th_text(b, 'display_name'));
    v_email  text := th_email(th_text(b, 'email', 254));
    v_role   text := th_text(b, 'role', 20);
    s      staff;
BEGIN
    PERFORM th_admin_only(me);
    IF v_name IS NULL OR v_email IS NULL OR v_role IS NULL THEN
        PERFORM th_raise('422',
            '"display_name", "email" and "role" are required.');
    END IF;
    IF v_role NOT IN ('admin', 'supervisor', 'coordinator', 'clinician') THEN
        PERFORM th_raise('422', '"role" must be admin, supervisor, '
                         'coordinator or clinician.');
    END IF;
    IF EXISTS (SELECT 1 FROM staff x WHERE x.org_id = me.org
               AND x.email = v_email)
       OR EXISTS (SELECT 1 FROM logins l WHERE l.email = v_email)
    THEN
        PERFORM th_raise('409', 'This e-mail address is already in use.');
    END IF;
    INSERT INTO staff (org_id, display_name, email, role)
        VALUES (me.org, v_name, v_email, v_role) RETURNING * INTO s;
    IF req ? 'password_hash' THEN
        INSERT INTO logins (email, password_hash, staff_id)
            VALUES (v_email, req ->> 'password_hash', s.id);
    END IF;
    RETURN th_ok(201, th_staff_json(s), th_etag(s.version), '/staff/' || s.id);
END
$$;

CREATE FUNCTION th_op_staff_update(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b         jsonb := COALESCE(req -> 'body', '{}');
    v_name    text := th_name(th_text(b, 'display_name'));
    v_email   text := th_email(th_text(b, 'email', 254));
    v_role    text := th_text(b, 'role', 20);
    v_active  boolean := th_bool(b, 'active');
    s         staff;
BEGIN
    PERFORM th_admin_only(me);
    s := th_staff_in_org(me, req ->> 'id');
    PERFORM th_if_match(req, s.version);
    IF v_role IS NOT NULL
       AND v_role NOT IN ('admin', 'supervisor', 'coordinator', 'clinician')
    THEN
        PERFORM th_raise('422', '"role" must be admin, supervisor, '
                         'coordinator or clinician.');
    END IF;
    IF s.id = me.id AND ((v_role IS NOT NULL AND v_role <> 'admin')
                         OR v_active IS FALSE)
    THEN
        PERFORM th_raise('422', 'You cannot demote or deactivate yourself.');
    END IF;
    IF v_email IS NOT NULL AND v_email <> s.email THEN
        IF EXISTS (SELECT 1 FROM staff x WHERE x.org_id = me.org
                   AND x.email = v_email AND x.id <> s.id)
           OR EXISTS (SELECT 1 FROM logins l WHERE l.email = v_email)
        THEN
            PERFORM th_raise('409', 'This e-mail address is already in use.');
        END IF;
        UPDATE logins SET email = v_email WHERE staff_id = s.id;
    END IF;
    IF req ? 'password_hash' THEN
        IF NOT EXISTS (SELECT 1 FROM logins l WHERE l.staff_id = s.id)
           AND EXISTS (SELECT 1 FROM logins l
                       WHERE l.email = COALESCE(v_email, s.email))
        THEN
            PERFORM th_raise('409', 'This e-mail address is already in use.');
        END IF;
        INSERT INTO logins (email, password_hash, staff_id)
            VALUES (COALESCE(v_email, s.email), req ->> 'password_hash', s.id)
            ON CONFLICT (staff_id) DO UPDATE
            SET password_hash = EXCLUDED.password_hash;
    END IF;
    UPDATE staff x SET
        display_name = COALESCE(v_name, x.display_name),
        email = COALESCE(v_email, x.email),
        role = COALESCE(v_role, x.role),
        active = COALESCE(v_active, x.active),
        deactivated_at = CASE
            WHEN v_active IS FALSE THEN COALESCE(x.deactivated_at, now())
            WHEN v_active IS TRUE THEN NULL
            ELSE x.deactivated_at END,
        version = x.version + 1,
        updated_at = now()
      WHERE x.id = s.id
      RETURNING * INTO s;
    RETURN th_ok(200, th_staff_json(s), th_etag(s.version), NULL);
END
$$;

-- DELETE /staff/{id}: deactivation; the record and its history stay.
CREATE FUNCTION th_op_staff_deactivate(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  staff;
BEGIN
    PERFORM th_admin_only(me);
    s := th_staff_in_org(me, req ->> 'id');
    PERFORM th_if_match(req, s.version);
    IF s.id = me.id THEN
        PERFORM th_raise('422', 'You cannot demote or deactivate yourself.');
    END IF;
    UPDATE staff SET active = false,
        deactivated_at = COALESCE(deactivated_at, now()),
        version = version + 1, updated_at = now()
      WHERE id = s.id
      RETURNING * INTO s;
    RETURN th_ok(200, th_staff_json(s), th_etag(s.version), NULL);
END
$$;


-- ------------------------------------------------------------ patients

CREATE FUNCTION th_op_patient_list(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim   integer := th_limit(req);
    cur   uuid := th_cursor(req);
    q     text := req #>> '{query,q}';
    v_rows  jsonb;
BEGIN
    PERFORM th_staff_only(me);
    SELECT COALESCE(jsonb_agg(th_patient_json(p)
                              ORDER BY p.created_at, p.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM patients p
            WHERE p.org_id = me.org
              AND (th_org_wide(me) OR EXISTS (
                   SELECT 1 FROM assignments a
                   WHERE a.staff_id = me.id AND a.patient_id = p.id
                     AND a.ends_at IS NULL))
              AND (q IS NULL OR p.display_name ILIKE '%' || q || '%')
              AND (cur IS NULL OR (p.created_at, p.id) >
                   (SELECT c.created_at, c.id FROM patients c
                    WHERE c.id = cur AND c.org_id = me.org))
            ORDER BY p.created_at, p.id
            LIMIT lim + 1) p;
    RETURN th_ok(200, th_page(v_rows, lim), NULL, NULL);
END
$$;

CREATE FUNCTION th_op_patient_get(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p  patients := th_patient_for(me, req ->> 'id');
BEGIN
    RETURN th_ok(200, th_patient_json(p), th_etag(p.version), NULL);
END
$$;

CREATE FUNCTION th_patient_check(p patients) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p.sms_capable AND p.mobile IS NULL THEN
        PERFORM th_raise('422',
            'A patient without a mobile number cannot be SMS capable.');
    END IF;
    IF p.language !~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$' THEN
        PERFORM th_raise('422',
            '"language" must be a language tag such as en or pt-BR.');
    END IF;
END
$$;

CREATE FUNCTION th_op_patient_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    p  patients;
BEGIN
    PERFORM th_staff_only(me);
    p.id := gen_random_uuid();
    p.org_id := me.org;
    p.display_name := th_name(th_text(b, 'display_name'));
    p.email := th_email(th_text(b, 'email', 254));
    p.mobile := th_phone(th_text(b, 'mobile', 20), 'mobile');
    p.sms_capable := COALESCE(th_bool(b, 'sms_capable'), false);
    p.whatsapp := th_phone(th_text(b, 'whatsapp', 20), 'whatsapp');
    p.language := COALESCE(th_text(b, 'language', 35), 'en');
    IF p.display_name IS NULL THEN
        PERFORM th_raise('422', '"display_name" is required.');
    END IF;
    PERFORM th_patient_check(p);
    IF req ? 'password_hash' THEN
        IF p.email IS NULL THEN
            PERFORM th_raise('422', 'A patient with a password needs an '
                             'e-mail address to log in with.');
        END IF;
        IF EXISTS (SELECT 1 FROM logins l WHERE l.email = p.email) THEN
            PERFORM th_raise('409', 'This e-mail address is already in use.');
        END IF;
    END IF;
    INSERT INTO patients (id, org_id, display_name, email, mobile,
                          sms_capable, whatsapp, language)
        VALUES (p.id, p.org_id, p.display_name, p.email, p.mobile,
                p.sms_capable, p.whatsapp, p.language)
        RETURNING * INTO p;
    IF req ? 'password_hash' THEN
        INSERT INTO logins (email, password_hash, patient_id)
            VALUES (p.email, req ->> 'password_hash', p.id);
    END IF;
    -- a clinician keeps access to the patient they registered
    IF NOT th_org_wide(me) THEN
        INSERT INTO assignments (org_id, staff_id, patient_id)
            VALUES (me.org, me.id, p.id);
    END IF;
    RETURN th_ok(201, th_patient_json(p), th_etag(p.version),
            '/patients/' || p.id);
END
$$;

CREATE FUNCTION th_op_patient_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b    jsonb := COALESCE(req -> 'body', '{}');
    p    patients := th_patient_for(me, req ->> 'id');
    old  text := p.email;
BEGIN
    PERFORM th_if_match(req, p.version);
    IF b ? 'display_name' THEN
        p.display_name := th_name(th_text(b, 'display_name'));
        IF p.display_name IS NULL THEN
            PERFORM th_raise('422', '"display_name" must not be empty.');
        END IF;
    END IF;
    IF b ? 'email' THEN
        p.email := th_email(th_text(b, 'email', 254));
    END IF;
    IF b ? 'mobile' THEN
        p.mobile := th_phone(th_text(b, 'mobile', 20), 'mobile');
    END IF;
    IF b ? 'whatsapp' THEN
        p.whatsapp := th_phone(th_text(b, 'whatsapp', 20), 'whatsapp');
    END IF;
    IF b ? 'sms_capable' THEN
        p.sms_capable := COALESCE(th_bool(b, 'sms_capable'), false);
    END IF;
    IF b ? 'language' THEN
        p.language := COALESCE(th_text(b, 'language', 35), 'en');
    END IF;
    PERFORM th_patient_check(p);
    IF p.email IS DISTINCT FROM old
       AND EXISTS (SELECT 1 FROM logins l WHERE l.patient_id = p.id)
    THEN
        IF p.email IS NULL THEN
            PERFORM th_raise('422', 'A patient with a login needs an '
                             'e-mail address.');
        END IF;
        IF EXISTS (SELECT 1 FROM logins l WHERE l.email = p.email) THEN
            PERFORM th_raise('409', 'This e-mail address is already in use.');
        END IF;
        UPDATE logins SET email = p.email WHERE patient_id = p.id;
    END IF;
    UPDATE patients SET display_name = p.display_name, email = p.email,
        mobile = p.mobile, whatsapp = p.whatsapp,
        sms_capable = p.sms_capable, language = p.language,
        version = version + 1, updated_at = now()
      WHERE id = p.id
      RETURNING * INTO p;
    RETURN th_ok(200, th_patient_json(p), th_etag(p.version), NULL);
END
$$;


-- ------------------------------------------------------------ assignments

CREATE FUNCTION th_op_patient_assignments(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p        patients := th_patient_for(me, req ->> 'id');
    lim      integer := th_limit(req);
    cur      uuid := th_cursor(req);
    f_current  text := req #>> '{query,current}';
    v_rows     jsonb;
BEGIN
    IF f_current IS NOT NULL AND f_current NOT IN ('true', 'false') THEN
        PERFORM th_raise('422', '"current" must be true or false.');
    END IF;
    SELECT COALESCE(jsonb_agg(th_assignment_json(a)
                              ORDER BY a.starts_at DESC, a.id DESC), '[]')
      INTO v_rows
      FROM (SELECT * FROM assignments a
            WHERE a.patient_id = p.id AND a.org_id = me.org
              AND (f_current IS NULL
                   OR (a.ends_at IS NULL) = f_current::boolean)
              AND (cur IS NULL OR (a.starts_at, a.id) <
                   (SELECT c.starts_at, c.id FROM assignments c
                    WHERE c.id = cur AND c.patient_id = p.id))
            ORDER BY a.starts_at DESC, a.id DESC
            LIMIT lim + 1) a;
    RETURN th_ok(200, th_page(v_rows, lim), NULL, NULL);
END
$$;

-- Assigning again after an unassignment starts a new dated row.
CREATE FUNCTION th_op_patient_assign(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p  patients := th_patient_for(me, req ->> 'id');
    s  staff;
    a  assignments;
BEGIN
    IF NOT th_org_wide(me) THEN
        PERFORM th_raise('403', 'Only administrators, supervisors and '
                         'coordinators assign patients.');
    END IF;
    IF th_text(COALESCE(req -> 'body', '{}'), 'staff_id', 36) IS NULL THEN
        PERFORM th_raise('422', '"staff_id" is required.');
    END IF;
    s := th_staff_in_org(me, req #>> '{body,staff_id}');
    IF NOT s.active THEN
        PERFORM th_raise('422', 'This staff member is deactivated.');
    END IF;
    IF EXISTS (SELECT 1 FROM assignments x WHERE x.staff_id = s.id
               AND x.patient_id = p.id AND x.ends_at IS NULL)
    THEN
        PERFORM th_raise('409',
            'The patient is already assigned to this staff member.');
    END IF;
    INSERT INTO assignments (org_id, staff_id, patient_id)
        VALUES (me.org, s.id, p.id) RETURNING * INTO a;
    RETURN th_ok(201, th_assignment_json(a), NULL,
            '/patients/' || p.id || '/assignments');
END
$$;

CREATE FUNCTION th_op_patient_unassign(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p  patients := th_patient_for(me, req ->> 'id');
    a  assignments;
BEGIN
    IF NOT th_org_wide(me) THEN
        PERFORM th_raise('403', 'Only administrators, supervisors and '
                         'coordinators assign patients.');
    END IF;
    UPDATE assignments x SET ends_at = greatest(now(), x.starts_at)
      WHERE x.patient_id = p.id AND x.org_id = me.org
        AND x.staff_id = th_uuid(req ->> 'id2', 'assignment')
        AND x.ends_at IS NULL
      RETURNING * INTO a;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such assignment.');
    END IF;
    RETURN th_ok(200, th_assignment_json(a), NULL, NULL);
END
$$;


-- ------------------------------------------------------------ call history

-- PRODUCT 32: a staff member sees the calls of this patient they took part
-- in themselves (org-wide roles included); a clinician sees them only while
-- assigned (th_patient_for answers 403 otherwise).
CREATE FUNCTION th_op_patient_calls(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p     patients := th_patient_for(me, req ->> 'id');
    lim   integer := th_limit(req);
    cur   uuid := th_cursor(req);
    v_rows  jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(c.j ORDER BY c.started_at DESC, c.id DESC),
                    '[]')
      INTO v_rows
      FROM (SELECT c.id, c.started_at, jsonb_build_object(
                'id', c.id, 'session_id', c.session_id, 'kind', s.kind,
                'started_at', th_ts(c.started_at),
                'ended_at', th_ts(c.ended_at), 'end_reason', c.end_reason,
                'duration_seconds', CASE WHEN c.ended_at IS NOT NULL THEN
                    floor(extract(epoch FROM c.ended_at - c.started_at))::int
                    END,
                'participants', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                        'participant', cp.participant, 'role', cp.role,
                        'joined_at', th_ts(cp.joined_at),
                        'left_at', th_ts(cp.left_at),
                        'left_reason', cp.left_reason)
                        ORDER BY cp.joined_at), '[]')
                    FROM call_participants cp WHERE cp.call_id = c.id)) j
            FROM calls c
            JOIN sessions s ON s.id = c.session_id
            WHERE c.org_id = me.org
              AND (s.patient_id = p.id OR EXISTS (
                   SELECT 1 FROM call_participants pp
                   WHERE pp.call_id = c.id
                     AND pp.participant = 'patient:' || p.id))
              AND EXISTS (SELECT 1 FROM call_participants sp
                   WHERE sp.call_id = c.id
                     AND sp.participant = 'staff:' || me.id)
              AND (cur IS NULL OR (c.started_at, c.id) <
                   (SELECT x.started_at, x.id FROM calls x
                    WHERE x.id = cur AND x.org_id = me.org))
            ORDER BY c.started_at DESC, c.id DESC
            LIMIT lim + 1) c;
    RETURN th_ok(200, th_page(v_rows, lim), NULL, NULL);
END
$$;


-- ------------------------------------------------------------ audit

CREATE FUNCTION th_op_audit_list(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim     integer := th_limit(req);
    cur     text := req #>> '{query,cursor}';
    f_actor   text := req #>> '{query,actor_id}';
    f_target  text := req #>> '{query,target_id}';
    f_action  text := req #>> '{query,action}';
    f_since   text := req #>> '{query,since}';
    v_rows    jsonb;
BEGIN
    PERFORM th_admin_only(me);
    IF cur IS NOT NULL AND cur !~ '^[0-9]{1,18}$' THEN
        PERFORM th_raise('422', '"cursor" is not valid.');
    END IF;
    IF f_actor IS NOT NULL AND f_actor !~* '^[0-9a-f-]{36}$' THEN
        PERFORM th_raise('422', '"actor_id" is not a valid id.');
    END IF;
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
            'id', a.id::text, 'at', th_ts(a.at),
            'actor_type', a.actor_type, 'actor_id', a.actor_id,
            'action', a.action, 'target_type', a.target_type,
            'target_id', a.target_id, 'client_address', a.client_addr,
            'outcome', a.outcome, 'status', a.status) ORDER BY a.id DESC),
            '[]')
      INTO v_rows
      FROM (SELECT * FROM audit_log a
            WHERE a.org_id = me.org
              AND (cur IS NULL OR a.id < cur::bigint)
              AND (f_actor IS NULL OR a.actor_id = f_actor::uuid)
              AND (f_target IS NULL OR a.target_id = f_target)
              AND (f_action IS NULL OR a.action = f_action)
              AND (f_since IS NULL OR a.at >= f_since::timestamptz)
            ORDER BY a.id DESC
            LIMIT lim + 1) a;
    RETURN th_ok(200, th_page(v_rows, lim), NULL, NULL);
END
$$;


-- ------------------------------------------------------------ dispatch

CREATE FUNCTION th_audit(req jsonb, me th_caller, action text,
    target_type text, target_id text, status integer) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO audit_log (org_id, actor_type, actor_id, action, target_type,
                           target_id, client_addr, outcome, status)
    VALUES (me.org, me.type, me.id, action, target_type,
            left(target_id, 64), left(req ->> 'addr', 64),
            CASE WHEN status < 400 THEN 'success'
                 WHEN status = 401 THEN 'unauthenticated'
                 WHEN status = 403 THEN 'denied'
                 WHEN status = 404 THEN 'not_found'
                 WHEN status IN (409, 412) THEN 'conflict'
                 WHEN status IN (400, 422) THEN 'invalid'
                 ELSE 'error' END,
            status)
$$;

-- The one entry point of the module.  op names a th_op_* function (from
-- the module's route table, never from the client).
CREATE FUNCTION th_api(op text, req jsonb) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    me      th_caller;
    a       th_answer;
    state   text;
    msg     text;
    target  text;
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
                                msg = MESSAGE_TEXT;
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
        a.body := jsonb_build_object('problem', CASE a.status
                WHEN 403 THEN 'forbidden' WHEN 404 THEN 'not-found'
                WHEN 409 THEN 'conflict' WHEN 412 THEN 'precondition-failed'
                WHEN 422 THEN 'validation' WHEN 400 THEN 'invalid-request'
                ELSE 'internal' END,
            'detail', msg);
    END;

    target := COALESCE(req ->> 'id',
                       CASE WHEN a.status = 201 THEN a.body ->> 'id' END);
    PERFORM th_audit(req, me, op, split_part(op, '_', 1), target, a.status);

    RETURN a;
END
$$;

-- Staff, patients, their assignments (who may see whom), and the
-- organisation's own settings.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

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

CREATE OR REPLACE FUNCTION th_patient_json(p patients) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', p.id, 'org_id', p.org_id, 'display_name', p.display_name,
        'email', p.email, 'mobile', p.mobile, 'sms_capable', p.sms_capable,
        'whatsapp', p.whatsapp, 'language', p.language,
        'has_login',
            EXISTS (SELECT 1 FROM logins l WHERE l.patient_id = p.id),
        'video_consent', CASE WHEN p.video_consent_at IS NOT NULL THEN
            jsonb_build_object('given_at', th_ts(p.video_consent_at),
                               'given_by', p.video_consent_by) END,
        'created_at', th_ts(p.created_at), 'updated_at', th_ts(p.updated_at))
$$;

CREATE OR REPLACE FUNCTION th_assignment_json(a assignments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', a.id, 'patient_id', a.patient_id, 'staff_id', a.staff_id,
        'starts_at', th_ts(a.starts_at), 'ends_at', th_ts(a.ends_at),
        'current', a.ends_at IS NULL)
$$;

-- The patient {id} as the caller may see it: 404 outside the caller's
-- organisation, 403 for patients and for clinicians it is not assigned to.
CREATE OR REPLACE FUNCTION th_patient_for(me th_caller, p_id text) RETURNS patients
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

CREATE OR REPLACE FUNCTION th_staff_in_org(me th_caller, s_id text) RETURNS staff
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN th_in_org(NULL::staff, me, s_id, 'staff member');
END
$$;

CREATE OR REPLACE FUNCTION th_op_staff_list(req jsonb, me th_caller) RETURNS th_answer
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

-- A search with its filters in the JSON body (POST /staff/search, POST
-- /patients/search) instead of the query string, so that a name or an
-- e-mail never reaches a URL or an access log: the body's members become
-- the request's query, as GET would have them.  Members are strings,
-- numbers or booleans.
CREATE OR REPLACE FUNCTION th_search_query(req jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    body  jsonb := COALESCE(req -> 'body', '{}');
BEGIN
    IF jsonb_typeof(body) <> 'object' OR EXISTS (
        SELECT 1 FROM jsonb_each(body) e
        WHERE jsonb_typeof(e.value) NOT IN ('string', 'number', 'boolean'))
    THEN
        PERFORM th_raise('422', 'Search fields must be strings, numbers '
                         'or booleans.');
    END IF;
    RETURN jsonb_set(req, '{query}', COALESCE((
        SELECT jsonb_object_agg(e.key, e.value #>> '{}')
        FROM jsonb_each(body) e), '{}'));
END
$$;

CREATE OR REPLACE FUNCTION th_op_staff_search(req jsonb, me th_caller)
    RETURNS th_answer
LANGUAGE sql AS $$
    SELECT * FROM th_op_staff_list(th_search_query(req), me)
$$;

CREATE OR REPLACE FUNCTION th_op_staff_get(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  staff;
BEGIN
    PERFORM th_staff_only(me);
    s := th_staff_in_org(me, req ->> 'id');
    RETURN th_ok(200, th_staff_json(s), th_etag(s.version), NULL);
END
$$;

-- DELETE /staff/{id}: deactivation; the record and its history stay.
CREATE OR REPLACE FUNCTION th_op_staff_deactivate(req jsonb, me th_caller)
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

CREATE OR REPLACE FUNCTION th_op_patient_list(req jsonb, me th_caller) RETURNS th_answer
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

CREATE OR REPLACE FUNCTION th_op_patient_search(req jsonb, me th_caller)
    RETURNS th_answer
LANGUAGE sql AS $$
    SELECT * FROM th_op_patient_list(th_search_query(req), me)
$$;

CREATE OR REPLACE FUNCTION th_op_patient_get(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p  patients := th_patient_for(me, req ->> 'id');
BEGIN
    RETURN th_ok(200, th_patient_json(p), th_etag(p.version), NULL);
END
$$;

-- POST /patients/{id}/video-consent: the patient's consent to video,
-- recorded with who and when (docs/features.md, "Consent to video").
CREATE OR REPLACE FUNCTION th_op_patient_consent_give(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p  patients := th_patient_for(me, req ->> 'id');
BEGIN
    UPDATE patients x SET video_consent_at = now(), video_consent_by = me.id,
                          version = x.version + 1, updated_at = now()
        WHERE x.id = p.id RETURNING * INTO p;
    RETURN th_ok(200, th_patient_json(p), th_etag(p.version), NULL);
END
$$;

-- DELETE /patients/{id}/video-consent: withdrawn (the audit log keeps
-- who recorded and who withdrew it, and when).
CREATE OR REPLACE FUNCTION th_op_patient_consent_withdraw(req jsonb,
    me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p  patients := th_patient_for(me, req ->> 'id');
BEGIN
    UPDATE patients x SET video_consent_at = NULL, video_consent_by = NULL,
                          version = x.version + 1, updated_at = now()
        WHERE x.id = p.id RETURNING * INTO p;
    RETURN th_ok(200, th_patient_json(p), th_etag(p.version), NULL);
END
$$;

CREATE OR REPLACE FUNCTION th_patient_check(p patients) RETURNS void
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

CREATE OR REPLACE FUNCTION th_op_patient_create(req jsonb, me th_caller)
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
        IF EXISTS (SELECT 1 FROM logins l WHERE l.email = p.email
                          AND l.org_id = p.org_id) THEN
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

CREATE OR REPLACE FUNCTION th_op_patient_update(req jsonb, me th_caller)
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
        IF EXISTS (SELECT 1 FROM logins l WHERE l.email = p.email
                          AND l.org_id = p.org_id) THEN
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

CREATE OR REPLACE FUNCTION th_op_patient_assignments(req jsonb, me th_caller)
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
CREATE OR REPLACE FUNCTION th_op_patient_assign(req jsonb, me th_caller)
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

CREATE OR REPLACE FUNCTION th_op_patient_unassign(req jsonb, me th_caller)
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

-- docs/features.md 32: a staff member sees the calls of this patient they
-- took part in themselves (org-wide roles included); a clinician sees them
-- only while assigned (th_patient_for answers 403 otherwise).
CREATE OR REPLACE FUNCTION th_op_patient_calls(req jsonb, me th_caller)
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

CREATE OR REPLACE FUNCTION th_org_json(o organisations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', o.id, 'name', o.name,
        'time_zone', o.time_zone,
        'video_consent_required', o.video_consent_required,
        'sms_sender', o.sms_sender, 'version', o.version,
        'created_at', th_ts(o.created_at))
$$;

CREATE OR REPLACE FUNCTION th_op_org_get(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    o  organisations;
BEGIN
    PERFORM th_staff_only(me);
    SELECT * INTO o FROM organisations WHERE id = me.org;
    RETURN th_ok(200, th_org_json(o), th_etag(o.version), NULL);
END
$$;

CREATE OR REPLACE FUNCTION th_op_org_update(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b     jsonb := COALESCE(req -> 'body', '{}');
    o     organisations;
    v_tz  text;
BEGIN
    PERFORM th_admin_only(me);
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    SELECT * INTO o FROM organisations WHERE id = me.org FOR UPDATE;
    PERFORM th_if_match(req, o.version);
    IF b ? 'time_zone' THEN
        v_tz := th_time_zone(th_text(b, 'time_zone', 64));
    END IF;
    IF b ? 'video_consent_required' THEN
        o.video_consent_required := th_bool(b, 'video_consent_required');
        IF o.video_consent_required IS NULL THEN
            PERFORM th_raise('422', '"video_consent_required" must be true '
                             'or false.');
        END IF;
    END IF;
    -- the sender of the organisation's SMS: a number in international
    -- format or an alphanumeric sender id; null: telehealth_sms_param's
    IF b ? 'sms_sender' THEN
        o.sms_sender := NULLIF(btrim(th_text(b, 'sms_sender', 16)), '');
        IF o.sms_sender !~ '^(\+[0-9]{6,15}|[A-Za-z0-9 ]{1,11})$' THEN
            PERFORM th_raise('422', '"sms_sender" must be a number in '
                'international format (+4930123456) or at most 11 letters '
                'and digits.');
        END IF;
    END IF;
    UPDATE organisations x SET time_zone = COALESCE(v_tz, x.time_zone),
        video_consent_required = o.video_consent_required,
        sms_sender = o.sms_sender, version = x.version + 1
        WHERE x.id = o.id RETURNING * INTO o;
    RETURN th_ok(200, th_org_json(o), th_etag(o.version), NULL);
END
$$;

-- Sets the idp_subject of the body on the staff record a answers with.
CREATE OR REPLACE FUNCTION th_staff_idp_subject(a th_answer, b jsonb, me th_caller)
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

-- POST /staff (admins): a staff member, with a login when the module
-- passes a password_hash.
CREATE OR REPLACE FUNCTION th_op_staff_create(req jsonb, me th_caller) RETURNS th_answer
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
       OR EXISTS (SELECT 1 FROM logins l WHERE l.email = v_email
                  AND l.org_id = me.org)
    THEN
        PERFORM th_raise('409', 'This e-mail address is already in use.');
    END IF;
    INSERT INTO staff (org_id, display_name, email, role)
        VALUES (me.org, v_name, v_email, v_role) RETURNING * INTO s;
    IF req ? 'password_hash' THEN
        INSERT INTO logins (email, password_hash, staff_id)
            VALUES (v_email, req ->> 'password_hash', s.id);
    END IF;
    -- idp_subject, unique per organisation, checked and set last
    RETURN th_staff_idp_subject(
        th_ok(201, th_staff_json(s), th_etag(s.version), '/staff/' || s.id),
        b, me);
END
$$;

-- PATCH /staff/{id} (admins).
CREATE OR REPLACE FUNCTION th_op_staff_update(req jsonb, me th_caller) RETURNS th_answer
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
           OR EXISTS (SELECT 1 FROM logins l WHERE l.email = v_email
                  AND l.org_id = me.org)
        THEN
            PERFORM th_raise('409', 'This e-mail address is already in use.');
        END IF;
        UPDATE logins SET email = v_email WHERE staff_id = s.id;
    END IF;
    IF req ? 'password_hash' THEN
        IF NOT EXISTS (SELECT 1 FROM logins l WHERE l.staff_id = s.id)
           AND EXISTS (SELECT 1 FROM logins l
                       WHERE l.email = COALESCE(v_email, s.email)
                         AND l.org_id = me.org)
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
    -- idp_subject, unique per organisation, checked and set last
    RETURN th_staff_idp_subject(
        th_ok(200, th_staff_json(s), th_etag(s.version), NULL), b, me);
END
$$;

-- The staff member an identity provider token names (nginx, telehealth_idp_
-- claim): within the organisation of its issuer, by lower-cased e-mail
-- (by_email; nginx has checked "email_verified") or by idp_subject.  At
-- most two rows: nginx accepts exactly one.
CREATE OR REPLACE FUNCTION th_idp_staff(iss text, by_email boolean, val text)
RETURNS TABLE (id text, org_id text, role text, display_name text,
               active boolean)
LANGUAGE sql STABLE AS $$
    SELECT s.id::text, s.org_id::text, s.role, s.display_name, s.active
      FROM idp_issuers i
      JOIN staff s ON s.org_id = i.org_id
     WHERE i.issuer = iss
       AND CASE WHEN by_email THEN lower(s.email) = val
                ELSE s.idp_subject = val END
     LIMIT 2
$$;

-- Logins (nginx-module/ngx_http_telehealth_auth.c): the accounts of an
-- e-mail address, staff or patient, with their password hashes; one per
-- organisation that has a login with it (logins are per organisation,
-- docs/api.md "Log in"), only v_org's when given.  At most 4, oldest
-- organisation first: nginx checks the password against each in turn.
CREATE OR REPLACE FUNCTION th_login_account(v_email text, v_org uuid)
RETURNS TABLE (password_hash text, id text, type text, org_id text,
               role text, display_name text, email text, active boolean)
LANGUAGE sql STABLE AS $$
    SELECT l.password_hash, COALESCE(s.id, p.id)::text,
        CASE WHEN s.id IS NOT NULL THEN 'staff' ELSE 'patient' END,
        COALESCE(s.org_id, p.org_id)::text, s.role,
        COALESCE(s.display_name, p.display_name),
        COALESCE(s.email, p.email, l.email), COALESCE(s.active, true)
      FROM logins l
      JOIN organisations o ON o.id = l.org_id
      LEFT JOIN staff s ON s.id = l.staff_id
      LEFT JOIN patients p ON p.id = l.patient_id
     WHERE l.email = v_email
       AND (v_org IS NULL OR l.org_id = v_org)
     ORDER BY o.created_at, o.id
     LIMIT 4
$$;

-- Sets logins.org_id from the staff member or patient (trigger logins_org,
-- sql/026_abuse_limits.sql).
CREATE OR REPLACE FUNCTION th_login_org() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.org_id := COALESCE(
        (SELECT s.org_id FROM staff s WHERE s.id = NEW.staff_id),
        (SELECT p.org_id FROM patients p WHERE p.id = NEW.patient_id));
    RETURN NEW;
END
$$;

-- GET /me: the caller's account in th_login_account()'s shape, without a
-- password hash; v_type "staff" or "patient".
CREATE OR REPLACE FUNCTION th_me(v_id uuid, v_org uuid, v_type text)
RETURNS TABLE (password_hash text, id text, type text, org_id text,
               role text, display_name text, email text, active boolean)
LANGUAGE sql STABLE AS $$
    SELECT NULL::text, s.id::text, 'staff', s.org_id::text, s.role,
        s.display_name, s.email, s.active
      FROM staff s
     WHERE v_type = 'staff' AND s.id = v_id AND s.org_id = v_org
    UNION ALL
    SELECT NULL::text, p.id::text, 'patient', p.org_id::text, NULL,
        p.display_name, p.email, true
      FROM patients p
     WHERE v_type = 'patient' AND p.id = v_id AND p.org_id = v_org
$$;

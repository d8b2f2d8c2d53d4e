-- Virtual visits (docs/features.md 34-37): a caregiver's visit to a
-- client under a service code that allows virtual visits, the invite
-- that creates its virtual_visit session, and the caregiver's clock-in
-- and clock-out.  The caregiver joins the video only once clocked in
-- (th_visit_join_refusal(), asked by th_session_join()).
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- The caregiver hung up: the visit's video is over for good.
CREATE OR REPLACE FUNCTION th_visit_video_over(v visits) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM sessions s
                    WHERE s.id = v.session_id AND s.state = 'ended'
                      AND s.end_reason = 'caregiver_hung_up')
$$;

CREATE OR REPLACE FUNCTION th_visit_json(v visits) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', v.id, 'org_id', v.org_id,
        'patient_id', v.patient_id, 'caregiver_id', v.caregiver_id,
        'service_code', (SELECT c.code FROM service_codes c
                         WHERE c.id = v.service_code_id),
        'scheduled_at', th_ts(v.scheduled_at),
        'session_id', v.session_id,
        'session_state', (SELECT s.state FROM sessions s
                          WHERE s.id = v.session_id),
        'video_over', th_visit_video_over(v),
        'clocked_in_at', th_ts(v.clocked_in_at),
        'clocked_out_at', th_ts(v.clocked_out_at),
        'created_by', v.created_by, 'version', v.version,
        'created_at', th_ts(v.created_at))
$$;

-- A visit the caller may see: staff with an organisation-wide role see
-- every visit of the organisation, others the visits they are the
-- caregiver of.  404 otherwise.
CREATE OR REPLACE FUNCTION th_visit_for(me th_caller, v_id text)
RETURNS visits
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  visits;
BEGIN
    PERFORM th_staff_only(me);
    v := th_in_org(NULL::visits, me, v_id, 'visit');
    IF NOT th_org_wide(me) AND v.caregiver_id <> me.id THEN
        PERFORM th_raise('404', 'No such visit.');
    END IF;
    RETURN v;
END
$$;

-- Clock-in and clock-out are the caregiver's own.
CREATE OR REPLACE FUNCTION th_visit_of_caregiver(me th_caller, v_id text)
RETURNS visits
LANGUAGE plpgsql AS $$
DECLARE
    v  visits := th_visit_for(me, v_id);
BEGIN
    IF v.caregiver_id <> me.id THEN
        PERFORM th_raise('403', 'Only the caregiver of the visit can clock '
                         'in and out.');
    END IF;
    SELECT * INTO v FROM visits x WHERE x.id = v.id FOR UPDATE;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION th_op_visit_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b       jsonb := COALESCE(req -> 'body', '{}');
    p       patients;
    cg      staff;
    c       service_codes;
    v       visits;
    v_code  text;
BEGIN
    PERFORM th_staff_only(me);
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    IF th_text(b, 'patient_id', 36) IS NULL THEN
        PERFORM th_raise('422', '"patient_id" is required.');
    END IF;
    p := th_patient_for(me, b ->> 'patient_id');

    -- staff schedule their own visits; organisation-wide roles anyone's
    IF th_text(b, 'caregiver_id', 36) IS NULL
       OR (b ->> 'caregiver_id') = me.id::text
    THEN
        SELECT * INTO cg FROM staff WHERE id = me.id;
    ELSIF th_org_wide(me) THEN
        cg := th_staff_in_org(me, b ->> 'caregiver_id');
    ELSE
        PERFORM th_raise('403', 'Only coordinators, supervisors and '
            'administrators schedule visits for other caregivers.');
    END IF;
    IF NOT cg.active THEN
        PERFORM th_raise('422', 'The caregiver''s account is deactivated.');
    END IF;
    IF cg.role = 'clinician' AND NOT EXISTS (SELECT 1 FROM assignments a
        WHERE a.staff_id = cg.id AND a.patient_id = p.id
          AND a.ends_at IS NULL)
    THEN
        PERFORM th_raise('422', 'The client is not assigned to this '
                         'caregiver.');
    END IF;

    v_code := th_text(b, 'service_code', 40);
    IF v_code IS NULL THEN
        PERFORM th_raise('422', '"service_code" is required.');
    END IF;
    c := th_service_code_named(me.org, v_code);
    IF NOT c.virtual_visits_allowed THEN
        PERFORM th_raise('422', 'The service code "' || c.code
            || '" does not allow virtual visits.');
    END IF;

    IF th_text(b, 'scheduled_at', 40) IS NULL
       OR (b ->> 'scheduled_at') !~
          '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$'
    THEN
        PERFORM th_raise('422', '"scheduled_at" must be an RFC 3339 time.');
    END IF;

    INSERT INTO visits (org_id, patient_id, caregiver_id, service_code_id,
                        scheduled_at, created_by)
        VALUES (me.org, p.id, cg.id, c.id,
                (b ->> 'scheduled_at')::timestamptz, me.id)
        RETURNING * INTO v;
    RETURN th_ok(201, th_visit_json(v), th_etag(v.version),
                 '/visits/' || v.id);
END
$$;

CREATE OR REPLACE FUNCTION th_op_visit_get(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    v  visits := th_visit_for(me, req ->> 'id');
BEGIN
    RETURN th_ok(200, th_visit_json(v), th_etag(v.version));
END
$$;

-- GET /visits: by time, ?patient_id=, ?caregiver_id=, ?from=, ?to=.
CREATE OR REPLACE FUNCTION th_op_visit_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim    integer := th_limit(req);
    cur    uuid := th_cursor(req);
    f_from timestamptz := th_query_time(req, 'from');
    f_to   timestamptz := th_query_time(req, 'to');
    f_pat  uuid;
    f_cg   uuid;
    v_rows jsonb;
BEGIN
    PERFORM th_staff_only(me);
    f_pat := th_query_uuid(req, 'patient_id');
    f_cg := th_query_uuid(req, 'caregiver_id');
    SELECT COALESCE(jsonb_agg(th_visit_json(v)
                              ORDER BY v.scheduled_at, v.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM visits v
            WHERE v.org_id = me.org
              AND (th_org_wide(me) OR v.caregiver_id = me.id)
              AND (f_pat IS NULL OR v.patient_id = f_pat)
              AND (f_cg IS NULL OR v.caregiver_id = f_cg)
              AND (f_from IS NULL OR v.scheduled_at >= f_from)
              AND (f_to IS NULL OR v.scheduled_at < f_to)
              AND (cur IS NULL OR (v.scheduled_at, v.id) >
                   (SELECT c.scheduled_at, c.id FROM visits c
                    WHERE c.id = cur AND c.org_id = me.org))
            ORDER BY v.scheduled_at, v.id
            LIMIT lim + 1) v;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

-- POST /visits/{id}/invite ("Send invite to client"): the visit's
-- virtual_visit session (created at the first invite, the caregiver its
-- chair, scheduled at the visit's time so that it opens at the
-- caregiver's first join) and an e-mail with the link to the client.
-- Before or after clock-in; never once the caregiver hung up.
CREATE OR REPLACE FUNCTION th_op_visit_invite(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    v          visits := th_visit_for(me, req ->> 'id');
    s          sessions;
    plan       jsonb;
    a          th_answer;
    v_session  uuid;
BEGIN
    SELECT * INTO v FROM visits x WHERE x.id = v.id FOR UPDATE;
    IF th_visit_video_over(v) THEN
        PERFORM th_refuse('409', 'visit-over', 'The caregiver ended the '
            'video session of this visit: it cannot be started again.');
    END IF;
    SELECT * INTO s FROM sessions x WHERE x.id = v.session_id;
    IF NOT FOUND OR s.state = 'ended' THEN
        plan := th_session_plan('virtual_visit', jsonb_build_object(
            'service_code', (SELECT c.code FROM service_codes c
                             WHERE c.id = v.service_code_id),
            'scheduled_at', th_ts(v.scheduled_at)), v.org_id,
            v.caregiver_id);
        IF plan ? 'error' THEN
            PERFORM th_raise((plan ->> 'status'), plan ->> 'error');
        END IF;
        v_session := gen_random_uuid();
        PERFORM th_session_insert(v_session, v.org_id, 'virtual_visit',
            v.patient_id, v.caregiver_id, NULL,
            extract(epoch FROM now())::bigint, req ->> 'addr', plan, 0);
        UPDATE visits x SET session_id = v_session, version = x.version + 1
            WHERE x.id = v.id RETURNING * INTO v;
    END IF;
    a := th_op_invite_create(req || jsonb_build_object('id', v.session_id,
        'body', jsonb_build_object('channel', 'email',
                                   'patient_id', v.patient_id)), me);
    a.body := a.body || jsonb_build_object('visit_id', v.id,
                                           'session_id', v.session_id);
    RETURN a;
END
$$;

CREATE OR REPLACE FUNCTION th_op_visit_clock_in(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    v  visits := th_visit_of_caregiver(me, req ->> 'id');
BEGIN
    IF v.clocked_out_at IS NOT NULL THEN
        PERFORM th_raise('409', 'You have already clocked out of this '
                         'visit.');
    END IF;
    IF v.clocked_in_at IS NOT NULL THEN
        PERFORM th_raise('409', 'You have already clocked into this visit.');
    END IF;
    UPDATE visits x SET clocked_in_at = now(), version = x.version + 1
        WHERE x.id = v.id RETURNING * INTO v;
    RETURN th_ok(200, th_visit_json(v), th_etag(v.version));
END
$$;

-- Clocking out does not close the video session: while it is open, the
-- caregiver is warned and must confirm ({"confirm": true}).
CREATE OR REPLACE FUNCTION th_op_visit_clock_out(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    v  visits := th_visit_of_caregiver(me, req ->> 'id');
BEGIN
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    IF b ? 'confirm' AND th_bool(b, 'confirm') IS NULL THEN
        PERFORM th_raise('422', '"confirm" must be true or false.');
    END IF;
    IF v.clocked_in_at IS NULL THEN
        PERFORM th_raise('409', 'You have not clocked into this visit.');
    END IF;
    IF v.clocked_out_at IS NOT NULL THEN
        PERFORM th_raise('409', 'You have already clocked out of this '
                         'visit.');
    END IF;
    IF NOT COALESCE(th_bool(b, 'confirm'), false)
       AND EXISTS (SELECT 1 FROM sessions s
                    WHERE s.id = v.session_id AND s.state = 'open')
    THEN
        PERFORM th_refuse('409', 'video-session-active', 'The video '
            'session with your client is still active. Clocking out will '
            'not close the video session so make sure you hang up on the '
            'video session as well. Would you like to clock out anyway?');
    END IF;
    UPDATE visits x SET clocked_out_at = now(), version = x.version + 1
        WHERE x.id = v.id RETURNING * INTO v;
    RETURN th_ok(200, th_visit_json(v), th_etag(v.version));
END
$$;

-- Why the caller may not join session v_session now, or NULL: the
-- caregiver of a visit joins its video only once clocked in.
CREATE OR REPLACE FUNCTION th_visit_join_refusal(v_caller uuid,
    v_type text, v_session uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'You must clock into the visit before you can join the video '
           'session.'
      FROM visits v
     WHERE v.session_id = v_session AND v_type = 'staff'
       AND v.caregiver_id = v_caller AND v.clocked_in_at IS NULL
$$;

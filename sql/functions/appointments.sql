-- Appointments: CRUD, and starting a session from one.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

CREATE OR REPLACE FUNCTION th_appointment_json(a appointments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', a.id, 'org_id', a.org_id,
        'patient_id', a.patient_id, 'scheduled_at', th_ts(a.scheduled_at),
        'name', a.name,
        'service_code', (SELECT c.code FROM service_codes c
                         WHERE c.id = a.service_code_id),
        'participants', a.participants, 'guests', a.guests,
        'session_id', (SELECT s.id FROM sessions s
                       WHERE s.appointment_id = a.id),
        'created_by', a.created_by, 'created_at', th_ts(a.created_at),
        'updated_at', th_ts(a.updated_at))
$$;

-- The appointment {id} as the caller may see it: like its patient (404
-- outside the organisation, 403 for patients and unassigned clinicians).
CREATE OR REPLACE FUNCTION th_appointment_for(me th_caller, a_id text)
RETURNS appointments
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a  appointments;
BEGIN
    PERFORM th_staff_only(me);
    a := th_in_org(NULL::appointments, me, a_id, 'appointment');
    PERFORM th_patient_for(me, a.patient_id::text);
    RETURN a;
END
$$;

-- The fields of a body that an appointment takes (create and update).
CREATE OR REPLACE FUNCTION th_appointment_apply(a appointments, b jsonb, me th_caller)
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
    IF b ? 'guests' THEN
        a.guests := th_appointment_guests(b -> 'guests');
    END IF;
    IF a.scheduled_at IS NULL THEN
        PERFORM th_raise('422', '"scheduled_at" is required.');
    END IF;
    RETURN a;
END
$$;

CREATE OR REPLACE FUNCTION th_op_appointment_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim        integer := th_limit(req);
    cur        uuid := th_cursor(req);
    f_from     timestamptz := th_query_time(req, 'from');
    f_to       timestamptz := th_query_time(req, 'to');
    f_patient  uuid;
    v_rows     jsonb;
BEGIN
    PERFORM th_staff_only(me);
    f_patient := th_query_uuid(req, 'patient_id');
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

CREATE OR REPLACE FUNCTION th_op_appointment_get(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    a  appointments := th_appointment_for(me, req ->> 'id');
BEGIN
    RETURN th_ok(200, th_appointment_json(a), th_etag(a.version));
END
$$;

CREATE OR REPLACE FUNCTION th_op_appointment_create(req jsonb, me th_caller)
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
    a.guests := '[]';
    a := th_appointment_apply(a, b, me);
    INSERT INTO appointments (org_id, patient_id, scheduled_at, name,
                              service_code_id, participants, guests,
                              created_by)
        VALUES (me.org, p.id, a.scheduled_at, a.name, a.service_code_id,
                a.participants, a.guests, me.id)
        RETURNING * INTO a;
    RETURN th_ok(201, th_appointment_json(a), th_etag(a.version),
                 '/appointments/' || a.id);
END
$$;

CREATE OR REPLACE FUNCTION th_op_appointment_update(req jsonb, me th_caller)
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
        participants = a.participants, guests = a.guests,
        version = x.version + 1, updated_at = now()
      WHERE x.id = a.id
      RETURNING * INTO a;
    RETURN th_ok(200, th_appointment_json(a), th_etag(a.version));
END
$$;

-- POST /appointments/{id}/session: answers the body of POST /sessions
-- that starts the appointment's session ("session_request"); the module
-- starts it the way POST /sessions does.  A second call is 409.
CREATE OR REPLACE FUNCTION th_op_appointment_session(req jsonb, me th_caller)
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


-- The people on an appointment who are not staff, as bodies give them:
-- each with a name, a role, the channel their invite goes by and its
-- contact (th_guest_contact()), and a language.
CREATE OR REPLACE FUNCTION th_appointment_guests(v jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    g        jsonb;
    v_name   text;
    v_role   text;
    v_chan   text;
    guests   jsonb := '[]';
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN guests;
    END IF;
    IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) > 10 THEN
        PERFORM th_raise('422', '"guests" must be a list of at most 10.');
    END IF;
    FOR g IN SELECT * FROM jsonb_array_elements(v) LOOP
        IF jsonb_typeof(g) <> 'object' THEN
            PERFORM th_raise('422', 'Each guest needs a "display_name", a '
                '"role", a "channel" and its "contact".');
        END IF;
        v_name := NULLIF(btrim(th_text(g, 'display_name', 100)), '');
        v_role := COALESCE(th_text(g, 'role', 30), 'support_person');
        IF v_name IS NULL THEN
            PERFORM th_raise('422', 'Each guest needs a "display_name".');
        END IF;
        IF v_role NOT IN ('support_person', 'interpreter', 'family',
                          'colleague')
        THEN
            PERFORM th_raise('422', '"role" of a guest must be '
                'support_person, interpreter, family or colleague.');
        END IF;
        v_chan := th_channel(g -> 'channel', 'channel');
        IF v_chan = 'link' THEN
            PERFORM th_raise('422', 'A guest of an appointment is invited '
                'by email, sms or whatsapp.');
        END IF;
        guests := guests || jsonb_build_array(jsonb_build_object(
            'display_name', v_name, 'role', v_role, 'channel', v_chan,
            'contact', th_guest_contact(v_chan, th_text(g, 'contact', 254),
                                        v_name),
            'language', COALESCE(th_language(th_text(g, 'language', 35)),
                                 'en')));
    END LOOP;
    RETURN guests;
END
$$;

-- After POST /appointments/{id}/session created the session: everyone on
-- the appointment who is not staff gets their invite in the same step,
-- the patient by the first channel their record has (e-mail, then SMS,
-- then WhatsApp), each guest by theirs.  One refused invite does not
-- stop the others; the answer says per person what happened.
CREATE OR REPLACE FUNCTION th_appointment_invite(v_session uuid,
    v_caller uuid, v_public_url text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    s        sessions;
    a        appointments;
    p        patients;
    me       th_caller;
    g        jsonb;
    v_chan   text;
    v_out    jsonb := '[]';
BEGIN
    SELECT * INTO s FROM sessions WHERE id = v_session;
    SELECT * INTO a FROM appointments WHERE id = s.appointment_id;
    IF NOT FOUND THEN
        RETURN v_out;
    END IF;
    SELECT st.id, st.org_id, 'staff', st.role INTO me
      FROM staff st WHERE st.id = v_caller AND st.org_id = s.org_id;
    SELECT * INTO p FROM patients WHERE id = a.patient_id;

    v_chan := CASE WHEN COALESCE(p.email, '') <> '' THEN 'email'
                   WHEN COALESCE(p.mobile, '') <> '' AND p.sms_capable
                        THEN 'sms'
                   WHEN COALESCE(p.whatsapp, '') <> '' THEN 'whatsapp' END;
    v_out := v_out || jsonb_build_array(
        CASE WHEN v_chan IS NULL THEN
            jsonb_build_object('invitee', jsonb_build_object(
                'type', 'patient', 'id', p.id), 'status', 'skipped',
                'detail', 'Client has no email, mobile number or WhatsApp.')
        ELSE th_appointment_invite_one(s, me, v_public_url,
            jsonb_build_object('type', 'patient', 'id', p.id),
            jsonb_build_object('channel', v_chan, 'patient_id', p.id)) END);

    FOR g IN SELECT * FROM jsonb_array_elements(a.guests) LOOP
        v_out := v_out || jsonb_build_array(th_appointment_invite_one(s, me,
            v_public_url, jsonb_build_object('type', 'guest',
                'display_name', g ->> 'display_name', 'role', g ->> 'role'),
            jsonb_build_object('channel', g ->> 'channel',
                'contact', g ->> 'contact', 'language', g ->> 'language',
                'invitee', jsonb_build_object('display_name',
                                              g ->> 'display_name'))));
    END LOOP;
    RETURN v_out;
END
$$;

-- One invite of th_appointment_invite(), as POST /sessions/{id}/invites
-- makes it, with a link made here (it only goes out by its channel).
CREATE OR REPLACE FUNCTION th_appointment_invite_one(s sessions,
    me th_caller, v_public_url text, v_who jsonb, v_body jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_token  text := th_random_token();
    r        th_answer;
BEGIN
    r := th_op_invite_create(jsonb_build_object('id', s.id,
        'body', v_body, 'token_hash', th_token_hash(v_token),
        'public_url', v_public_url,
        'link', th_public_link(jsonb_build_object('public_url',
                                                  v_public_url),
                               '/join#t=' || v_token)), me);
    RETURN jsonb_build_object('invitee', v_who,
        'channel', v_body ->> 'channel', 'invite_id', r.body ->> 'id',
        'status', 'sent');
EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE NOT LIKE 'TH%' THEN
        RAISE;
    END IF;
    RETURN jsonb_build_object('invitee', v_who,
        'channel', v_body ->> 'channel', 'status', 'failed',
        'detail', SQLERRM);
END
$$;

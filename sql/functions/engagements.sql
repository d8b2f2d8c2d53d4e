-- Engagement records (docs/features.md 28): during a call, a staff member
-- starts a brief check-in, a follow-up, a care coordination or a
-- discharge for the session's patient.  Staff only: patients never see or
-- start them.  They belong to the patient's record (the purge keeps them).
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

CREATE OR REPLACE FUNCTION th_engagement_json(e engagements) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', e.id, 'patient_id', e.patient_id,
        'session_id', e.session_id, 'staff_id', e.staff_id,
        'kind', e.kind, 'note', e.note, 'created_at', th_ts(e.created_at))
$$;

-- POST /sessions/{id}/engagements: staff on the session's list, or in its
-- call, while its room is open; the session must name a patient.
CREATE OR REPLACE FUNCTION th_op_engagement_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b       jsonb := COALESCE(req -> 'body', '{}');
    s       sessions;
    e       engagements;
    v_kind  text;
    v_note  text;
BEGIN
    PERFORM th_staff_only(me);
    SELECT * INTO s FROM sessions x
     WHERE x.id = th_uuid(req ->> 'id', 'session') AND x.org_id = me.org
       AND (EXISTS (SELECT 1 FROM session_participants sp
                     WHERE sp.session_id = x.id AND sp.staff_id = me.id)
            OR EXISTS (SELECT 1 FROM calls c
                         JOIN call_participants cp ON cp.call_id = c.id
                        WHERE c.session_id = x.id AND c.room = x.room
                          AND cp.participant = 'staff:' || me.id));
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such session.');
    END IF;
    v_kind := th_text(b, 'kind', 40);
    IF v_kind IS NULL OR v_kind NOT IN ('brief_check_in', 'follow_up',
                                        'care_coordination', 'discharge')
    THEN
        PERFORM th_raise('422', '"kind" must be brief_check_in, follow_up, '
                         'care_coordination or discharge.');
    END IF;
    v_note := NULLIF(btrim(th_text(b, 'note', 2000)), '');
    IF s.patient_id IS NULL THEN
        PERFORM th_raise('422', 'This session is about no patient.');
    END IF;
    IF s.state <> 'open' OR s.room IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'TH409', HINT = 'room-not-open',
            MESSAGE = 'Engagements are started during a call.';
    END IF;
    INSERT INTO engagements (org_id, patient_id, session_id, staff_id, kind,
                             note)
        VALUES (s.org_id, s.patient_id, s.id, me.id, v_kind, v_note)
        RETURNING * INTO e;
    RETURN th_ok(201, th_engagement_json(e));
END
$$;

-- GET /patients/{id}/engagements, newest first: by the rules of the call
-- history (docs/features.md 32), a staff member sees the engagements they
-- started and those of sessions whose calls they took part in; a
-- clinician only while assigned (th_patient_for answers 403 otherwise).
CREATE OR REPLACE FUNCTION th_op_patient_engagements(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    p       patients := th_patient_for(me, req ->> 'id');
    lim     integer := th_limit(req);
    cur     uuid := th_cursor(req);
    v_rows  jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(th_engagement_json(e)
                              ORDER BY e.created_at DESC, e.id DESC), '[]')
      INTO v_rows
      FROM (SELECT * FROM engagements e
            WHERE e.org_id = me.org AND e.patient_id = p.id
              AND (e.staff_id = me.id OR EXISTS (
                   SELECT 1 FROM calls c
                     JOIN call_participants cp ON cp.call_id = c.id
                    WHERE c.session_id = e.session_id
                      AND cp.participant = 'staff:' || me.id))
              AND (cur IS NULL OR (e.created_at, e.id) <
                   (SELECT x.created_at, x.id FROM engagements x
                    WHERE x.id = cur AND x.org_id = me.org))
            ORDER BY e.created_at DESC, e.id DESC
            LIMIT lim + 1) e;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

-- Scheduled sessions (PRODUCT 2, "optional date and time"; 11, "My
-- sessions: scheduled, open, recently ended").
--
-- A session of a planned kind created with a "scheduled_at" in the future
-- is stored in state "scheduled": no room, no patient lock.  Its room
-- opens on the first join of a staff member the session lets open it
-- (th_session_opener()), through the same room script as POST /sessions;
-- the one-open-room-per-patient rule holds at that moment.  Until then
-- everyone else is told "The session has not started yet."  Closing a
-- scheduled session cancels it (state "ended", no room ever).


-- Planned kinds wait for their time; instant ones (video_call,
-- consult_now) always open their room at once.
ALTER TABLE session_kinds
    ADD COLUMN planned boolean NOT NULL DEFAULT false;

UPDATE session_kinds SET planned = true
    WHERE kind IN ('telehealth', 'appointment', 'virtual_visit', 'group',
                   'consultation', 'meeting_room');


-- Whether POST /sessions stores the session of this plan (of
-- th_session_plan()) as scheduled rather than opening its room.
CREATE FUNCTION th_session_deferred(v_kind text, plan jsonb)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT plan ? 'error'
       AND COALESCE((SELECT k.planned FROM session_kinds k
                     WHERE k.kind = v_kind), false)
       AND (plan ->> 'scheduled_at') IS NOT NULL
       AND (plan ->> 'scheduled_at')::timestamptz > now()
$$;


-- The role whose first join opens a scheduled session's room: the kind's
-- "who must connect first" when set (a consultation: the invitee, a
-- broadcaster, so the requester still cannot open it before them), else
-- a chair.  Only staff on the participant list open rooms; patients and
-- guests wait for them.
CREATE FUNCTION th_session_opener(s sessions, sp session_participants)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT s.state = 'scheduled' AND sp.staff_id IS NOT NULL
       AND sp.role = COALESCE(NULLIF(s.policies ->> 'first_connect', ''),
                              'chair')
$$;


-- The room hash's policy fields of a stored session, as POST /sessions
-- writes them (th_session_plan() "room_fields").
CREATE FUNCTION th_session_room_fields(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT th_session_plan_kind(s.kind, jsonb_build_object(
        'policies', th_policy_overrides(s.policies), 'access', s.access),
        s.org_id, s.created_by) -> 'room_fields'
$$;


-- POST /sessions/{id}/close of a scheduled session cancels it: it ends
-- without a room ever opening (200 with the session).  A chair of it or
-- an admin may; an open session is closed as before (004).
ALTER FUNCTION th_op_session_close(jsonb, th_caller)
    RENAME TO th_session_close_room;

CREATE FUNCTION th_op_session_close(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions;
BEGIN
    PERFORM th_staff_only(me);
    IF NOT EXISTS (SELECT 1 FROM sessions x
                   WHERE x.id = th_uuid(req ->> 'id', 'session')
                     AND x.org_id = me.org AND x.state = 'scheduled')
    THEN
        RETURN th_session_close_room(req, me);
    END IF;
    s := th_session_managed(me, req ->> 'id');
    UPDATE sessions x SET state = 'ended', ended_at = now(),
        version = x.version + 1, updated_at = now()
      WHERE x.id = s.id AND x.state = 'scheduled'
      RETURNING * INTO s;
    IF NOT FOUND THEN
        -- opened meanwhile: close the room instead
        RETURN th_session_close_room(req, me);
    END IF;
    RETURN th_ok(200, th_session_json(s), th_etag(s.version), NULL);
END
$$;


-- ------------------------------------------------------------ access levels

-- PRODUCT 7-8: private = the people on the participant list (listed staff
-- and listed patients), internal = also any staff of the organisation,
-- invitation = also anyone with a link (guests).

-- Who qualifies for a live session's level by name: the participant ids
-- of the list as the room knows them, and the invite links of its listed
-- patients ("guest:<invite id>", a redeemed link's participant).  The
-- module keeps in the room those members, plus any staff when internal.
CREATE FUNCTION th_session_access_check(s sessions) RETURNS jsonb
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

-- PATCH /sessions/{id} (014) asks the module to remove who no longer
-- qualifies; its "access_check" named listed staff only, so a change to
-- private removed the session's own patient.
ALTER FUNCTION th_op_session_update(jsonb, th_caller)
    RENAME TO th_session_update_live;

CREATE FUNCTION th_op_session_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    a  th_answer := th_session_update_live(req, me);
    s  sessions;
BEGIN
    IF a.status = 200 AND a.body ? 'access_check' THEN
        SELECT * INTO s FROM sessions WHERE id = (a.body ->> 'id')::uuid;
        a.body := jsonb_set(a.body, '{access_check}',
                            th_session_access_check(s));
    END IF;
    RETURN a;
END
$$;

-- Whether invite i brings in someone the session's level admits: anyone
-- on an invitation session; else only a listed patient's own link, or the
-- interpreter that staff asked for (013), never a guest or third parties.
CREATE FUNCTION th_invite_admitted(s sessions, v_patient text,
    v_parties jsonb, v_interpreter boolean) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT s.access = 'invitation' OR v_interpreter
        OR (COALESCE(jsonb_array_length(v_parties), 0) = 0
            AND EXISTS (SELECT 1 FROM session_participants sp
                        WHERE sp.session_id = s.id
                          AND sp.patient_id::text = lower(v_patient)))
$$;

-- POST /sessions/{id}/invites: guest links (no listed "patient_id", or
-- with third parties) only for invitation sessions: 422.
ALTER FUNCTION th_op_invite_create(jsonb, th_caller)
    RENAME TO th_invite_create_admitted;

CREATE FUNCTION th_op_invite_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    s  sessions := th_invite_session(me, req ->> 'id');
BEGIN
    IF jsonb_typeof(b) = 'object'
       AND NOT th_invite_admitted(s, b ->> 'patient_id',
           CASE WHEN jsonb_typeof(b -> 'third_parties') = 'array'
                THEN b -> 'third_parties' END, false)
    THEN
        PERFORM th_raise('422', 'Guests cannot be invited: this session '
            'is ' || s.access || ', only for the people on its '
            'participant list' || CASE WHEN s.access = 'internal'
            THEN ' and staff of the organisation' ELSE '' END
            || '. Change its access to "invitation" to invite guests.');
    END IF;
    RETURN th_invite_create_admitted(req, me);
END
$$;

-- POST /invites/redeem: a guest's link to a session that is no longer an
-- invitation one is refused (403, the link is not spent).
ALTER FUNCTION th_invite_redeem(text, text)
    RENAME TO th_invite_redeem_admitted;

CREATE FUNCTION th_invite_redeem(p_hash text, p_addr text)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    i  invites;
    s  sessions;
BEGIN
    SELECT * INTO i FROM invites WHERE token_hash = p_hash;
    SELECT * INTO s FROM sessions WHERE id = i.session_id;
    IF NOT FOUND OR i.revoked_at IS NOT NULL OR i.held
       OR th_invite_admitted(s, i.patient_id::text, i.third_parties,
                             i.interpreter_request_id IS NOT NULL
                             AND i.invitee_key LIKE 'interpreter:%')
    THEN
        RETURN th_invite_redeem_admitted(p_hash, p_addr);
    END IF;
    INSERT INTO audit_log (org_id, actor_type, actor_id, action, target_type,
                           target_id, client_addr, outcome, status)
        VALUES (i.org_id, 'guest', NULL, 'invite_redeem', 'invite',
                i.id::text, left(p_addr, 64), 'denied', 403);
    RETURN th_ok(403, jsonb_build_object('problem', 'forbidden',
        'detail', 'This session is not open to guests. Please ask the '
                  'person who invited you.'));
END
$$;

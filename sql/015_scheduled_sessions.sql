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

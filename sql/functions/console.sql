-- The live console: event ids and NOTIFY (trigger functions), and the
-- events written for room and participant changes.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

CREATE OR REPLACE FUNCTION th_console_event_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('th_console_events'));
    NEW.id := nextval(pg_get_serial_sequence('console_events', 'id'));
    RETURN NEW;
END
$$;

-- The payload carries the whole event (well under NOTIFY's 8000 bytes),
-- so a worker needs no query to pass it on.
CREATE OR REPLACE FUNCTION th_console_event_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('th_console', json_build_object(
        'id', NEW.id, 'org', NEW.org_id, 'staff', NEW.recipient_id,
        'event', NEW.type, 'data', NEW.data)::text);
    RETURN NULL;
END
$$;

-- How a participant is named on a console: staff by name; patients and
-- guests by what they are (names of patients stay out of the stream).
CREATE OR REPLACE FUNCTION th_console_who(v_who text, org uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN v_who LIKE 'staff:%' THEN COALESCE(
            (SELECT st.display_name FROM staff st
              WHERE st.id::text = substr(v_who, 7) AND st.org_id = org),
            'A staff member')
        WHEN v_who LIKE 'patient:%' THEN 'The patient'
        ELSE 'A guest'
    END
$$;

CREATE OR REPLACE FUNCTION th_console_data(s sessions, v_type text, v_who text,
    v_role text, v_reason text, v_message text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'session_id', s.id, 'session_name', s.name, 'kind', v_type,
        'who', CASE WHEN v_who IS NULL THEN NULL ELSE jsonb_build_object(
            'participant', v_who, 'role', NULLIF(v_role, 'unknown'),
            'name', CASE WHEN v_who LIKE 'staff:%'
                         THEN th_console_who(v_who, s.org_id) END) END,
        'reason', NULLIF(v_reason, ''),
        'message', v_message,
        'at', to_char(now() AT TIME ZONE 'UTC',
                      'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
$$;

-- Called by the event stream consumer in the transaction that applies a
-- plugin event.  Recipients: the staff members on the session's
-- participant list in its organisation, except the participant the event
-- is about (a staff member is not told that they joined).
CREATE OR REPLACE FUNCTION th_console_room_event(v_event text, v_session text,
    v_who text, v_role text, v_reason text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions;
    v_type  text;
    v_msg   text;
    v_name  text;
    n       integer;
BEGIN
    SELECT * INTO s FROM sessions WHERE id = v_session::uuid;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    v_who := NULLIF(v_who, '');
    v_name := th_console_who(v_who, s.org_id);

    CASE v_event
    WHEN 'participant.waiting' THEN
        v_type := 'waiting';
        v_msg := v_name || ' is waiting to be admitted.';
    WHEN 'participant.joined' THEN
        v_type := 'joined';
        v_msg := v_name || ' has joined.';
    WHEN 'participant.left' THEN
        IF v_reason = 'leave' AND v_who NOT LIKE 'staff:%'
           AND s.policies ->> 'leave_policy' = 'caregiver_hangup_ends'
        THEN
            v_type := 'hung_up';
            v_msg := 'The client has hung up. If the session is not '
                'supposed to be over, please reach out to the client.';
        ELSIF v_reason = 'room_closed' THEN
            RETURN 0;       -- the "closed" event says it for everyone
        ELSE
            v_type := 'left';
            v_msg := v_name || CASE v_reason
                WHEN 'removed' THEN ' was removed.'
                WHEN 'turned_away' THEN ' was turned away.'
                ELSE ' has left.' END;
        END IF;
    WHEN 'room.closed' THEN
        v_type := 'closed';
        v_who := NULL;
        v_msg := CASE v_reason
            WHEN 'chair_left' THEN 'The session ended: the chair left.'
            WHEN 'caregiver_hung_up'
                THEN 'The session ended: the caregiver left the visit.'
            WHEN 'closed_by_chair' THEN 'The session was closed by its chair.'
            WHEN 'kept_open'
                THEN 'The call ended; the session stays open for later.'
            WHEN 'duration_limit'
                THEN 'The session ended: its time limit was reached.'
            WHEN 'expired' THEN 'The session ended: the room stayed empty.'
            ELSE 'The session has ended.' END;
    ELSE
        RETURN 0;
    END CASE;

    INSERT INTO console_events (org_id, recipient_id, session_id, type, data)
    SELECT s.org_id, sp.staff_id, s.id, v_type,
           th_console_data(s, v_type, v_who, v_role, v_reason, v_msg)
      FROM session_participants sp
      JOIN staff st ON st.id = sp.staff_id AND st.org_id = s.org_id
     WHERE sp.session_id = s.id AND st.active
       AND v_who IS DISTINCT FROM 'staff:' || sp.staff_id
     ORDER BY sp.staff_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- "You were added": any insert of a staff participant other than the
-- session's creator (POST /sessions, appointments, later additions).
CREATE OR REPLACE FUNCTION th_console_added() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions;
BEGIN
    IF NEW.staff_id IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO s FROM sessions WHERE id = NEW.session_id;
    IF NOT FOUND OR s.created_by = NEW.staff_id OR NOT EXISTS (
        SELECT 1 FROM staff st
         WHERE st.id = NEW.staff_id AND st.org_id = s.org_id AND st.active)
    THEN
        RETURN NULL;
    END IF;
    INSERT INTO console_events (org_id, recipient_id, session_id, type, data)
    VALUES (s.org_id, NEW.staff_id, s.id, 'added',
            th_console_data(s, 'added', 'staff:' || s.created_by, NULL, NULL,
                CASE WHEN s.name IS NULL
                     THEN 'You have been added to a session.'
                     ELSE 'You have been added to the session "'
                          || s.name || '".' END)
            || jsonb_build_object('role', NEW.role));
    RETURN NULL;
END
$$;

-- What a console stream missed (nginx-module/
-- ngx_http_telehealth_console.c): the staff member's events after v_after,
-- at most 200 at a time.
CREATE OR REPLACE FUNCTION th_console_replay(v_staff uuid, v_org uuid,
    v_after bigint) RETURNS TABLE (id bigint, type text, data text)
LANGUAGE sql STABLE AS $$
    SELECT e.id, e.type, e.data::text FROM console_events e
     WHERE e.recipient_id = v_staff AND e.org_id = v_org AND e.id > v_after
     ORDER BY e.id LIMIT 200
$$;

-- The newest event id: where a stream without Last-Event-ID starts.
CREATE OR REPLACE FUNCTION th_console_position() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(max(id), 0) FROM console_events
$$;

-- Forgets events older than v_seconds; answers how many.
CREATE OR REPLACE FUNCTION th_console_expire(v_seconds bigint)
RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (
        DELETE FROM console_events
         WHERE created_at < now() - v_seconds * interval '1 second'
        RETURNING 1
    )
    SELECT count(*) FROM d
$$;

-- The session lifecycle (docs/lifecycle.md): the room events of the
-- stream that need more than one statement (nginx-module/
-- ngx_http_telehealth_events.c applies each entry in one transaction), the
-- reconciler's view of the open sessions, chairs' bans, and the
-- registrations of group sessions.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- room.closed: the session ends once, with the room's reason; a room a
-- chair closed "keeping the session open" (kept_open) leaves it idle
-- instead, without a room, its bans kept for the next call
-- (docs/lifecycle.md, "Ending a session").
CREATE OR REPLACE FUNCTION th_session_ended(v_session text, v_room text,
    v_reason text, v_ts bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n  integer;
BEGIN
    IF v_reason = 'kept_open' THEN
        UPDATE sessions SET state = 'idle', room = NULL,
            version = version + 1, updated_at = now()
          WHERE id = v_session::uuid AND room = v_room AND state = 'open';
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END IF;
    UPDATE sessions SET state = 'ended',
        ended_at = COALESCE(ended_at, to_timestamp(v_ts / 1000.0)),
        end_reason = COALESCE(end_reason, NULLIF(v_reason, '')),
        version = version + 1, updated_at = now()
      WHERE id = v_session::uuid AND room = v_room AND state <> 'ended';
    GET DIAGNOSTICS n = ROW_COUNT;
    -- the session is over: its bans go with it
    DELETE FROM session_bans WHERE session_id = v_session::uuid AND n > 0;
    RETURN n;
END
$$;

-- chair.action: an audit row for every action a chair took in the room
-- (actor "command": done for the API, which audited the request); a
-- removal bans the participant from the session; a role change of
-- someone on the list is kept for the next room.
CREATE OR REPLACE FUNCTION th_chair_action(v_session text, v_action text,
    v_actor text, v_target text, v_role text, v_ts bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s        sessions;
    v_type   text := split_part(v_actor, ':', 1);
    v_id     text := split_part(v_actor, ':', 2);
BEGIN
    SELECT * INTO s FROM sessions WHERE id = v_session::uuid;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO audit_log (org_id, actor_type, actor_id, action,
                           target_type, target_id, outcome, status, at)
        VALUES (s.org_id,
                CASE WHEN v_type IN ('staff', 'patient', 'guest')
                     THEN v_type ELSE 'system' END,
                CASE WHEN v_type IN ('staff', 'patient', 'guest')
                          AND v_id ~ '^[0-9a-f-]{36}$'
                     THEN v_id::uuid END,
                'room_' || v_action,
                CASE WHEN NULLIF(v_target, '') IS NULL THEN 'session'
                     ELSE 'participant' END,
                COALESCE(NULLIF(v_target, ''), s.id::text),
                'success', 200, to_timestamp(v_ts / 1000.0));
    IF v_action = 'remove' AND NULLIF(v_target, '') IS NOT NULL
       AND s.state <> 'ended'
    THEN
        INSERT INTO session_bans (session_id, participant, org_id,
                                  banned_by)
            VALUES (s.id, v_target, s.org_id, v_actor)
            ON CONFLICT DO NOTHING;
    END IF;
    IF v_action = 'role' AND v_role IN ('chair', 'broadcaster', 'viewer') THEN
        UPDATE session_participants sp SET role = v_role
          WHERE sp.session_id = s.id
            AND (v_target = 'staff:' || sp.staff_id
                 OR v_target = 'patient:' || sp.patient_id);
    END IF;
    RETURN 1;
END
$$;

-- The reconciler (docs/lifecycle.md): every open session with its room,
-- what its room hash holds, its bans and, for a video call, the patient
-- whose lock it holds from the start.
CREATE OR REPLACE FUNCTION th_reconcile_open() RETURNS TABLE (
    session_id text, room text, org_id text, kind text, patient_id text,
    created_by text, created_at bigint, room_fields text, bans text)
LANGUAGE sql STABLE AS $$
    SELECT s.id::text, s.room, s.org_id::text, s.kind, s.patient_id::text,
           s.created_by::text,
           (extract(epoch FROM s.created_at) * 1000)::bigint,
           th_session_room_fields(s)::text,
           COALESCE((SELECT jsonb_agg(b.participant ORDER BY b.participant)
                     FROM session_bans b WHERE b.session_id = s.id),
                    '[]')::text
      FROM sessions s
     WHERE s.state = 'open' AND s.room IS NOT NULL
     ORDER BY s.created_at
$$;

-- A chair lifts a ban: DELETE /sessions/{id}/bans/{participant}; the
-- module then takes the participant out of the room's ban set in Redis.
CREATE OR REPLACE FUNCTION th_op_session_ban_lift(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_managed(me, req ->> 'id');
    p  text := th_participant(req ->> 'id2');
BEGIN
    DELETE FROM session_bans b WHERE b.session_id = s.id
       AND b.participant = p;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'This participant is not banned from '
                         'this session.');
    END IF;
    RETURN th_ok(200, jsonb_build_object('session_id', s.id,
        'participant', p, 'lifted', true));
END
$$;

-- GET /sessions/{id}/bans: who a chair removed, newest first; the cursor
-- is the last ban's id.
CREATE OR REPLACE FUNCTION th_op_session_bans(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions := th_session_managed(me, req ->> 'id');
    lim     integer := th_limit(req);
    cur     uuid := th_cursor(req);
    v_rows  jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(jsonb_build_object('id', b.id,
               'participant', b.participant, 'banned_by', b.banned_by,
               'banned_at', th_ts(b.banned_at))
               ORDER BY b.banned_at DESC, b.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM session_bans b
            WHERE b.session_id = s.id
              AND (cur IS NULL OR (b.banned_at, b.id) <
                   (SELECT c.banned_at, c.id FROM session_bans c
                    WHERE c.id = cur AND c.session_id = s.id))
            ORDER BY b.banned_at DESC, b.id
            LIMIT lim + 1) b;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

-- ------------------------------------------------------------ group registration

-- A group's participants register with their link before it starts
-- (th_invite_redeem_named()); the moderator lists them and admits them,
-- one or all.

-- A registration as the moderator's list shows it.
CREATE OR REPLACE FUNCTION th_registration_json(g group_registrations)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', g.id, 'session_id', g.session_id,
        'invite_id', g.invite_id, 'display_name', g.display_name,
        'state', g.state, 'registered_at', th_ts(g.registered_at),
        'admitted_at', th_ts(g.admitted_at))
$$;

-- GET /sessions/{id}/registrations: a group's registrations, oldest
-- first (the moderator's list); the cursor is the last one's id.
CREATE OR REPLACE FUNCTION th_op_session_registrations(req jsonb,
    me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions := th_session_managed(me, req ->> 'id');
    lim     integer := th_limit(req);
    cur     uuid := th_cursor(req);
    v_rows  jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(th_registration_json(g)
                              ORDER BY g.registered_at, g.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM group_registrations g
            WHERE g.session_id = s.id
              AND (cur IS NULL OR (g.registered_at, g.id) >
                   (SELECT c.registered_at, c.id FROM group_registrations c
                    WHERE c.id = cur AND c.session_id = s.id))
            ORDER BY g.registered_at, g.id
            LIMIT lim + 1) g;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

-- POST /sessions/{id}/registrations/{rid}/admit: one; POST
-- /sessions/{id}/registrations/admit: everyone registered.  Admitted
-- people go straight into the room when it starts.
CREATE OR REPLACE FUNCTION th_op_registration_admit(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_managed(me, req ->> 'id');
    g  group_registrations;
BEGIN
    UPDATE group_registrations x SET state = 'admitted',
        admitted_at = COALESCE(x.admitted_at, now()),
        admitted_by = COALESCE(x.admitted_by, me.id)
      WHERE x.id = th_uuid(req ->> 'id2', 'registration')
        AND x.session_id = s.id
      RETURNING * INTO g;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such registration.');
    END IF;
    RETURN th_ok(200, th_registration_json(g));
END
$$;


CREATE OR REPLACE FUNCTION th_op_registration_admit_all(req jsonb,
    me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_session_managed(me, req ->> 'id');
    n  integer;
BEGIN
    UPDATE group_registrations x SET state = 'admitted',
        admitted_at = now(), admitted_by = me.id
      WHERE x.session_id = s.id AND x.state = 'registered';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN th_ok(200, jsonb_build_object('admitted', n));
END
$$;

-- The open rooms of a person's organisation (nginx, when the person is
-- deactivated or gets a new password): Redis knows which of them the
-- person is in, and nginx sends each of those "remove".
CREATE OR REPLACE FUNCTION th_person_open_rooms(person uuid)
RETURNS TABLE (room text)
LANGUAGE sql STABLE AS $$
    SELECT s.room
      FROM sessions s
     WHERE s.state = 'open' AND s.room IS NOT NULL
       AND s.org_id = (SELECT org_id FROM staff WHERE id = person
                       UNION ALL
                       SELECT org_id FROM patients WHERE id = person
                       LIMIT 1)
$$;

-- The event stream consumer's statements (nginx-module/
-- ngx_http_telehealth_events.c), each run in the entry's transaction.
-- v_ts is the entry's "ts" (Unix milliseconds).

-- Marks a stream entry applied: false when it was before (its
-- acknowledgement was lost), and the transaction applies nothing again.
CREATE OR REPLACE FUNCTION th_event_processed(v_stream_id text)
RETURNS boolean
LANGUAGE sql AS $$
    WITH i AS (
        INSERT INTO processed_events (stream_id) VALUES (v_stream_id)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM i)
$$;

-- One row when the entry's session exists in its organisation.
CREATE OR REPLACE FUNCTION th_event_session(v_session uuid, v_org uuid)
RETURNS SETOF integer
LANGUAGE sql STABLE AS $$
    SELECT 1 FROM sessions WHERE id = v_session AND org_id = v_org
$$;

-- The call of a room, made by whichever of its events comes first.
CREATE OR REPLACE FUNCTION th_call_ensure(v_session uuid, v_org uuid,
    v_room text, v_ts bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO calls (org_id, session_id, room, started_at)
    SELECT s.org_id, s.id, v_room, to_timestamp(v_ts / 1000.0)
      FROM sessions s WHERE s.id = v_session AND s.org_id = v_org
    ON CONFLICT (room) DO UPDATE
       SET started_at = LEAST(calls.started_at, EXCLUDED.started_at)
$$;

-- participant.joined: a join that arrives after its leave (see
-- th_call_left()) completes the row the leave made instead of opening a
-- new one.
CREATE OR REPLACE FUNCTION th_call_joined(v_room text, v_participant text,
    v_role text, v_ts bigint) RETURNS void
LANGUAGE sql AS $$
    WITH c AS (SELECT id FROM calls WHERE room = v_room),
    early AS (
        UPDATE call_participants cp
           SET joined_at = to_timestamp(v_ts / 1000.0), role = v_role
          FROM c WHERE cp.call_id = c.id AND cp.participant = v_participant
           AND cp.joined_at = cp.left_at
           AND cp.left_at >= to_timestamp(v_ts / 1000.0)
        RETURNING 1
    )
    INSERT INTO call_participants (call_id, participant, role, joined_at)
    SELECT c.id, v_participant, v_role, to_timestamp(v_ts / 1000.0) FROM c
     WHERE NOT EXISTS (SELECT 1 FROM early)
    ON CONFLICT DO NOTHING
$$;

-- participant.left: closes the open row; a leave without one (its join
-- not yet applied) records a row that joined and left at the same moment,
-- which the join completes later.
CREATE OR REPLACE FUNCTION th_call_left(v_room text, v_participant text,
    v_reason text, v_ts bigint) RETURNS void
LANGUAGE sql AS $$
    WITH c AS (SELECT id FROM calls WHERE room = v_room),
    closed AS (
        UPDATE call_participants cp
           SET left_at = to_timestamp(v_ts / 1000.0),
               left_reason = NULLIF(v_reason, '')
          FROM c WHERE cp.call_id = c.id AND cp.participant = v_participant
           AND cp.left_at IS NULL
           AND cp.joined_at <= to_timestamp(v_ts / 1000.0)
        RETURNING 1
    )
    INSERT INTO call_participants
        (call_id, participant, role, joined_at, left_at, left_reason)
    SELECT c.id, v_participant, 'unknown', to_timestamp(v_ts / 1000.0),
        to_timestamp(v_ts / 1000.0), NULLIF(v_reason, '') FROM c
     WHERE NOT EXISTS (SELECT 1 FROM closed)
       AND NOT EXISTS (SELECT 1 FROM call_participants x
                        WHERE x.call_id = c.id
                          AND x.participant = v_participant
                          AND x.joined_at <= to_timestamp(v_ts / 1000.0)
                          AND x.left_at >= to_timestamp(v_ts / 1000.0))
    ON CONFLICT DO NOTHING
$$;

-- room.closed: the call ends (the earliest report wins), and whoever the
-- plugin did not report as gone left with the room ('room_closed',
-- TH_LEFT_ROOM_CLOSED of common/th_names.h).
CREATE OR REPLACE FUNCTION th_call_closed(v_room text, v_reason text,
    v_session uuid, v_ts bigint) RETURNS void
LANGUAGE sql AS $$
    UPDATE calls
       SET ended_at = LEAST(COALESCE(ended_at, to_timestamp(v_ts / 1000.0)),
                            to_timestamp(v_ts / 1000.0)),
           end_reason = COALESCE(end_reason, NULLIF(v_reason, ''))
     WHERE room = v_room AND session_id = v_session;
    UPDATE call_participants
       SET left_at = to_timestamp(v_ts / 1000.0), left_reason = 'room_closed'
     WHERE call_id = (SELECT id FROM calls WHERE room = v_room)
       AND left_at IS NULL
       AND joined_at <= to_timestamp(v_ts / 1000.0);
$$;

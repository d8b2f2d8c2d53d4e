-- The session lifecycle (docs/lifecycle.md): PostgreSQL decides whether a
-- session is open; its Redis room never expires while it is; every end
-- is recorded with its reason.  Patients only where the kind is about
-- one; invitee-first kinds open on the invitee's arrival; chairs' bans.


-- Per kind: whether a patient is required, who opens a scheduled session,
-- how long an empty room waits (0: until a chair ends it) and how long a
-- room whose Janus node died waits for someone to rejoin elsewhere.
ALTER TABLE session_kinds
    ADD COLUMN patient        text NOT NULL DEFAULT 'optional'
                              CHECK (patient IN ('required', 'optional')),
    ADD COLUMN opener         text NOT NULL DEFAULT 'chair'
                              CHECK (opener IN ('chair', 'invitee',
                                     'chair_or_invitee', 'member')),
    ADD COLUMN empty_timeout  integer NOT NULL DEFAULT 0
                              CHECK (empty_timeout >= 0),
    ADD COLUMN node_grace     integer NOT NULL DEFAULT 120
                              CHECK (node_grace >= 0);

UPDATE session_kinds SET patient = 'required'
    WHERE kind IN ('video_call', 'virtual_visit', 'appointment');
UPDATE session_kinds SET opener = 'invitee' WHERE kind = 'consultation';
UPDATE session_kinds SET opener = 'chair_or_invitee'
    WHERE kind = 'appointment';
UPDATE session_kinds SET opener = 'member' WHERE kind = 'meeting_room';
UPDATE session_kinds SET empty_timeout = 300, node_grace = 60
    WHERE kind = 'video_call';
UPDATE session_kinds SET empty_timeout = 600, node_grace = 60
    WHERE kind = 'consult_now';
-- A meeting room lets guests in by its link (it is flagged not for
-- clinical use for that reason); its staff join from the console.
UPDATE session_kinds SET access = 'invitation' WHERE kind = 'meeting_room';

-- Why a session ended: the room's close reason (docs/lifecycle.md).
ALTER TABLE sessions ADD COLUMN end_reason text;

-- Participants a chair removed: they cannot come back into the session
-- (new join credentials and invite redemptions refused) until a chair
-- lifts the ban.  participant is "staff:<id>", "patient:<id>" or
-- "guest:<invite id>", as the room knows them.
CREATE TABLE session_bans (
    id           uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    session_id   uuid NOT NULL REFERENCES sessions (id),
    participant  text NOT NULL,
    org_id       uuid NOT NULL REFERENCES organisations (id),
    banned_by    text NOT NULL,
    banned_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, participant)
);

CREATE INDEX sessions_open_room_idx ON sessions (room) WHERE state = 'open';

-- Group registration (a group's participants register with their link
-- before it starts; the moderator admits them, one or all): a person is
-- their link and the name they gave.
CREATE TABLE group_registrations (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         uuid NOT NULL REFERENCES organisations (id),
    session_id     uuid NOT NULL REFERENCES sessions (id),
    invite_id      uuid NOT NULL REFERENCES invites (id),
    display_name   text NOT NULL,
    state          text NOT NULL DEFAULT 'registered'
                   CHECK (state IN ('registered', 'admitted')),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    admitted_at    timestamptz,
    admitted_by    uuid REFERENCES staff (id),
    UNIQUE (invite_id, display_name)
);

CREATE INDEX group_registrations_session_idx
    ON group_registrations (session_id, registered_at);



-- Functions (move to sql/functions/ with the layout of 018)

CREATE OR REPLACE FUNCTION th_session_plan_kind(v_kind text, body jsonb,
    org uuid, creator uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k       session_kinds;
    o       jsonb := COALESCE(body -> 'policies', '{}');
    pol     jsonb;
    wr      text;
    v_name  text;
    v_acc   text;
    v_at    timestamptz;
    parts   jsonb := '[]';
    p       jsonb;
    n       integer;
BEGIN
    SELECT * INTO k FROM session_kinds WHERE kind = v_kind;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 422, 'error',
            'This kind of session is not supported.');
    END IF;
    IF jsonb_typeof(o) <> 'object' THEN
        RETURN jsonb_build_object('status', 422, 'error',
            '"policies" must be an object.');
    END IF;

    BEGIN
        v_name := th_text(body, 'name', 200);
        v_acc := COALESCE(th_text(body, 'access', 20), k.access);
        IF v_acc NOT IN ('private', 'internal', 'invitation') THEN
            PERFORM th_raise('422', '"access" must be private, internal '
                             'or invitation.');
        END IF;
        IF th_text(body, 'scheduled_at', 40) IS NOT NULL THEN
            IF (body ->> 'scheduled_at') !~
                '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$'
            THEN
                PERFORM th_raise('422', '"scheduled_at" must be an RFC 3339 '
                                 'time.');
            END IF;
            v_at := (body ->> 'scheduled_at')::timestamptz;
        END IF;

        wr := k.waiting_room;
        IF o ? 'waiting_room' THEN
            IF jsonb_typeof(o -> 'waiting_room') <> 'array'
               OR EXISTS (SELECT 1 FROM jsonb_array_elements(o -> 'waiting_room') r
                          WHERE r #>> '{}' NOT IN ('broadcaster', 'viewer')
                             OR jsonb_typeof(r) <> 'string')
            THEN
                PERFORM th_raise('422', '"waiting_room" must list roles '
                                 'among broadcaster and viewer.');
            END IF;
            SELECT COALESCE(string_agg(DISTINCT r #>> '{}', ','), '')
              INTO wr FROM jsonb_array_elements(o -> 'waiting_room') r;
        END IF;

        pol := jsonb_build_object(
            'max_participants', th_policy_int(o, 'max_participants',
                                              k.max_participants, 1000),
            'duration_limit', th_policy_int(o, 'duration_limit',
                                            k.duration_limit, 86400),
            'waiting_room', wr,
            'leave_policy', COALESCE(th_text(o, 'leave_policy', 30),
                                     k.leave_policy),
            'first_connect', COALESCE(th_text(o, 'first_connect', 20),
                                      k.first_connect),
            'link_ttl', th_policy_int(o, 'link_ttl', k.link_ttl, 2592000),
            'empty_timeout', th_policy_int(o, 'empty_timeout',
                                           k.empty_timeout, 604800),
            'node_grace', th_policy_int(o, 'node_grace', k.node_grace,
                                        86400),
            'clinical_use', k.clinical);
        IF pol ->> 'leave_policy' NOT IN ('close_on_staff_leave',
                                           'caregiver_hangup_ends', 'stay')
        THEN
            PERFORM th_raise('422', '"leave_policy" must be '
                'close_on_staff_leave, caregiver_hangup_ends or stay.');
        END IF;
        IF pol ->> 'first_connect' NOT IN ('', 'broadcaster', 'viewer') THEN
            PERFORM th_raise('422', '"first_connect" must be broadcaster, '
                             'viewer or empty.');
        END IF;

        IF body ? 'participants' THEN
            IF jsonb_typeof(body -> 'participants') <> 'array' THEN
                PERFORM th_raise('422', '"participants" must be a list.');
            END IF;
            FOR p IN SELECT * FROM jsonb_array_elements(body -> 'participants')
            LOOP
                IF jsonb_typeof(p) <> 'object'
                   OR p ->> 'type' IS DISTINCT FROM 'staff'
                   OR COALESCE(p ->> 'role', 'broadcaster')
                      NOT IN ('chair', 'broadcaster', 'viewer')
                THEN
                    PERFORM th_raise('422', 'Each participant needs "type" '
                        'staff, an "id" and a "role" (chair, broadcaster '
                        'or viewer).');
                END IF;
                IF NOT EXISTS (SELECT 1 FROM staff s
                    WHERE s.id = th_uuid(p ->> 'id', 'staff member')
                      AND s.org_id = org AND s.active)
                THEN
                    PERFORM th_raise('404', 'No such staff member.');
                END IF;
                IF (p ->> 'id')::uuid <> creator
                   AND NOT parts @> jsonb_build_array(jsonb_build_object(
                       'staff_id', (p ->> 'id')::uuid))
                THEN
                    parts := parts || jsonb_build_array(jsonb_build_object(
                        'staff_id', (p ->> 'id')::uuid,
                        'role', COALESCE(p ->> 'role', 'broadcaster')));
                END IF;
            END LOOP;
            n := jsonb_array_length(parts) + 2;
            IF (pol ->> 'max_participants')::int > 0
               AND n > (pol ->> 'max_participants')::int
            THEN
                PERFORM th_raise('422', 'More participants than this kind '
                                 'of session allows.');
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE LIKE 'TH%' THEN
            RETURN jsonb_build_object('status', substr(SQLSTATE, 3)::int,
                                      'error', SQLERRM);
        END IF;
        RETURN jsonb_build_object('status', 422,
                                  'error', 'Some values are not valid.');
    END;

    RETURN jsonb_build_object(
        'name', v_name, 'access', v_acc, 'scheduled_at', v_at,
        'policies', pol, 'participants', parts,
        'room_fields', jsonb_build_array(
            'max_participants', pol ->> 'max_participants',
            'duration_limit', pol ->> 'duration_limit',
            'waiting_room', pol ->> 'waiting_room',
            'leave_policy', pol ->> 'leave_policy',
            'first_connect', pol ->> 'first_connect',
            'empty_timeout', pol ->> 'empty_timeout',
            'node_grace', pol ->> 'node_grace',
            'access', v_acc));
END
$$;


-- Whether sp is the invitee of a session: its patient, or the staff
-- member with the kind's first_connect role (a consultation's colleague).
CREATE OR REPLACE FUNCTION th_session_invitee(s sessions,
    sp session_participants) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT sp.patient_id IS NOT NULL
        OR (sp.staff_id IS NOT NULL AND sp.role <> 'chair'
            AND sp.role = NULLIF(s.policies ->> 'first_connect', ''))
$$;

-- The first join of whom opens a scheduled session's room (the kind's
-- opener): a chair; the invitee (a patient on the list, or staff with
-- the kind's first_connect role, a colleague asked for a consultation);
-- either; or any staff member on the list (a meeting room).  Guests
-- open by their link: th_invite_redeem().
CREATE OR REPLACE FUNCTION th_session_opener(s sessions,
    sp session_participants) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT s.state = 'scheduled' AND sp.session_id IS NOT NULL
       AND CASE (SELECT k.opener FROM session_kinds k WHERE k.kind = s.kind)
           WHEN 'member' THEN sp.staff_id IS NOT NULL
           WHEN 'invitee' THEN th_session_invitee(s, sp)
           WHEN 'chair_or_invitee' THEN th_session_invitee(s, sp)
                                        OR sp.role = 'chair'
           ELSE sp.staff_id IS NOT NULL AND sp.role = 'chair' END
$$;


-- Whether an invite link's holder opens its scheduled session: kinds the
-- invitee opens, never an interpreter's link.
CREATE OR REPLACE FUNCTION th_invite_opens(s sessions, i invites)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT s.state = 'scheduled'
       AND COALESCE(i.invitee_key NOT LIKE 'interpreter:%', true)
       AND (SELECT k.opener FROM session_kinds k WHERE k.kind = s.kind)
           IN ('invitee', 'chair_or_invitee')
$$;


-- POST /invites/redeem: a chair's ban of a guest holds for their link,
-- whichever redemption of it the chair removed (403 banned, the link is
-- not spent); a valid link to a
-- scheduled session its invitee opens answers 409 with "open": what the
-- module needs to open the room, after which it redeems again.
CREATE OR REPLACE FUNCTION th_invite_redeem(p_hash text, p_addr text)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    i  invites;
    s  sessions;
BEGIN
    SELECT * INTO i FROM invites WHERE token_hash = p_hash;
    SELECT * INTO s FROM sessions WHERE id = i.session_id;
    IF FOUND AND i.revoked_at IS NULL AND NOT i.held
       AND EXISTS (SELECT 1 FROM session_bans b WHERE b.session_id = s.id
                   AND (b.participant = 'guest:' || i.id
                        OR b.participant LIKE 'guest:' || i.id || '.%'))
    THEN
        INSERT INTO audit_log (org_id, actor_type, actor_id, action,
                               target_type, target_id, client_addr, outcome,
                               status)
            VALUES (i.org_id, 'guest', NULL, 'invite_redeem', 'invite',
                    i.id::text, left(p_addr, 64), 'denied', 403);
        RETURN th_ok(403, jsonb_build_object('problem', 'banned',
            'detail', 'You were removed from this session. Please ask '
                      'the person who invited you.'));
    END IF;
    IF FOUND AND i.revoked_at IS NULL AND NOT i.held AND i.used_at IS NULL
       AND i.expires_at > now() AND th_invite_opens(s, i)
       AND th_invite_admitted(s, i.patient_id::text, i.third_parties, false)
    THEN
        RETURN th_ok(409, jsonb_build_object('problem', 'room-not-open',
            'detail', 'The session has not started yet.',
            'open', jsonb_build_object('session_id', s.id,
                'org_id', s.org_id, 'kind', s.kind, 'invite_id', i.id,
                'patient_id', s.patient_id, 'created_by', s.created_by,
                'room_fields', th_session_room_fields(s))));
    END IF;
    -- a guest's link to a session that is no longer an invitation one
    -- is refused (403, the link is not spent)
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


-- The stream's room events that need more than one statement
-- (nginx-module/ngx_http_telehealth_events.c applies each entry in one
-- transaction).

-- room.closed: the session ends once, with the room's reason.
CREATE OR REPLACE FUNCTION th_session_ended(v_session text, v_room text,
    v_reason text, v_ts bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n  integer;
BEGIN
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

-- The session object of docs/api.md: with why it ended.
CREATE OR REPLACE FUNCTION th_session_json(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', s.id, 'kind', s.kind, 'state', s.state,
        'org_id', s.org_id, 'patient_id', s.patient_id,
        'created_by', s.created_by, 'room', s.room, 'name', s.name,
        'access', s.access, 'scheduled_at', th_ts(s.scheduled_at),
        'policies', s.policies, 'created_at', th_ts(s.created_at),
        'ended_at', th_ts(s.ended_at), 'end_reason', s.end_reason,
        'service_code', (SELECT c.code FROM service_codes c
                         WHERE c.id = s.service_code_id),
        'appointment_id', s.appointment_id,
        'participants', COALESCE((SELECT jsonb_agg(
                th_session_participant_json(sp)
                ORDER BY th_session_participant_key(sp))
            FROM session_participants sp WHERE sp.session_id = s.id),
            '[]'))
$$;


-- POST /invites/redeem with the guest's name (the module's one call):
-- th_invite_redeem(), and for a group a registration.  A valid link to a
-- scheduled group registers its holder (202, the link is not spent); a
-- link redeemed into an open group carries "preadmitted" when the
-- moderator admitted that registration, and the credential then skips the
-- waiting room.
CREATE OR REPLACE FUNCTION th_invite_redeem_named(p_hash text, p_addr text,
    p_name text) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    i  invites;
    s  sessions;
    g  group_registrations;
    a  th_answer;
BEGIN
    SELECT * INTO i FROM invites WHERE token_hash = p_hash;
    SELECT * INTO s FROM sessions WHERE id = i.session_id;
    IF FOUND AND s.kind = 'group' AND s.state = 'scheduled'
       AND i.revoked_at IS NULL AND NOT i.held AND i.used_at IS NULL
       AND i.expires_at > now()
       AND COALESCE(i.invitee_key NOT LIKE 'interpreter:%', true)
       AND NOT EXISTS (SELECT 1 FROM session_bans b
                       WHERE b.session_id = s.id
                         AND (b.participant = 'guest:' || i.id
                              OR b.participant LIKE 'guest:' || i.id || '.%'))
    THEN
        INSERT INTO group_registrations (org_id, session_id, invite_id,
                                         display_name)
            VALUES (s.org_id, s.id, i.id, p_name)
            ON CONFLICT (invite_id, display_name)
            DO UPDATE SET registered_at = group_registrations.registered_at
            RETURNING * INTO g;
        INSERT INTO audit_log (org_id, actor_type, actor_id, action,
                               target_type, target_id, client_addr, outcome,
                               status)
            VALUES (i.org_id, 'guest', NULL, 'group_register', 'invite',
                    i.id::text, left(p_addr, 64), 'success', 202);
        RETURN th_ok(202, jsonb_build_object('registered', true,
            'registration', th_registration_json(g),
            'scheduled_at', th_ts(s.scheduled_at),
            'detail', 'You are registered for this group session. Use '
                      'your link again when it starts: the moderator '
                      'admits you.'));
    END IF;

    a := th_invite_redeem(p_hash, p_addr);
    IF a.status = 200 AND s.kind = 'group' AND EXISTS (
        SELECT 1 FROM group_registrations r
         WHERE r.invite_id = i.id AND r.display_name = p_name
           AND r.state = 'admitted')
    THEN
        a.body := a.body || jsonb_build_object('preadmitted', true);
    END IF;
    RETURN a;
END
$$;

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

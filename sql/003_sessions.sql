-- Session kinds (PRODUCT section 2): preset policies with overrides, name,
-- optional scheduled time, access level and a participant list with
-- roles.  th_session_plan() turns a POST /sessions body into what the
-- module writes: the row's columns, the extra participants and the room
-- hash's policy fields (docs/redis.md, "Room policy fields").

ALTER TABLE sessions
    ADD COLUMN access        text NOT NULL DEFAULT 'invitation'
                             CHECK (access IN ('private', 'internal',
                                               'invitation')),
    ADD COLUMN scheduled_at  timestamptz,
    ADD COLUMN policies      jsonb NOT NULL DEFAULT '{}';

CREATE INDEX session_participants_staff_sessions_idx
    ON session_participants (staff_id, session_id);

-- The presets, one row per kind.  waiting_room lists the roles that wait
-- to be admitted; 0 means no limit.
CREATE TABLE session_kinds (
    kind              text PRIMARY KEY,
    max_participants  integer NOT NULL,
    duration_limit    integer NOT NULL,
    waiting_room      text NOT NULL,
    leave_policy      text NOT NULL,
    first_connect     text NOT NULL,
    link_ttl          integer NOT NULL,
    access            text NOT NULL,
    clinical          boolean NOT NULL
);

INSERT INTO session_kinds VALUES
    ('video_call',    0,     0, '',                     'close_on_staff_leave',  '',            0,     'private',    true),
    ('virtual_visit', 0,     0, '',                     'caregiver_hangup_ends', '',            86400, 'invitation', true),
    ('appointment',   5,     0, 'broadcaster',          'stay',                  '',            86400, 'invitation', true),
    ('group',         61,    14400, 'broadcaster,viewer', 'stay',                '',            86400, 'invitation', true),
    ('consult_now',   0,     0, '',                     'stay',                  '',            300,   'invitation', true),
    ('meeting_room',  6,     0, '',                     'stay',                  '',            86400, 'internal',   false),
    ('telehealth',    0,     0, '',                     'stay',                  '',            86400, 'invitation', true),
    ('consultation',  0,     0, 'broadcaster',          'stay',                  'broadcaster', 86400, 'invitation', true);

-- {"error", "status"} or {"name", "access", "scheduled_at", "policies",
-- "participants": [{"staff_id", "role"}], "room_fields": [f, v, ...]}.
-- org: the caller's organisation; creator: the caller (chair anyway).
CREATE FUNCTION th_session_plan(v_kind text, body jsonb, org uuid,
    creator uuid) RETURNS jsonb
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
            'access', v_acc));
END
$$;

CREATE FUNCTION th_policy_int(o jsonb, field text, dflt integer, max integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  jsonb := o -> field;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN dflt;
    END IF;
    IF jsonb_typeof(v) <> 'number' OR (v #>> '{}') !~ '^\d+$'
       OR (v #>> '{}')::numeric > max
    THEN
        PERFORM th_raise('422', '"' || field || '" must be a whole number '
                         'from 0 to ' || max || '.');
    END IF;
    RETURN (v #>> '{}')::integer;
END
$$;

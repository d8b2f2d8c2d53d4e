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
-- The invitee-first kinds: the service user starts the call with their
-- link (or login) and waits; the requester admits them, and cannot be in
-- the room before them (first_connect).
UPDATE session_kinds SET opener = 'invitee'
    WHERE kind IN ('consultation', 'appointment');
UPDATE session_kinds SET first_connect = 'broadcaster'
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

-- The behaviour that goes with it is in sql/functions/lifecycle.sql,
-- sessions.sql and invites.sql.

-- Ending a session and what it leaves (docs/features.md 28, 30, 31;
-- docs/lifecycle.md, "Ending a session" and "The purge").
--
-- idle: a chair ended the call but kept the session ("end but keep
-- open"): no room is live, the next call opens a new one.  purged_at:
-- when the purge deleted the session's content (docs/lifecycle.md).
ALTER TABLE sessions DROP CONSTRAINT sessions_state_check;
ALTER TABLE sessions
    ADD CONSTRAINT sessions_state_check
        CHECK (state IN ('scheduled', 'open', 'idle', 'ended')),
    ADD COLUMN purged_at timestamptz;

-- the purge's look for due sessions
CREATE INDEX sessions_purge_due_idx ON sessions (ended_at)
    WHERE state = 'ended' AND purged_at IS NULL;

-- what the purge deletes by session, and the foreign keys its deletes
-- check (otherwise a scan of the whole table per row)
CREATE INDEX console_events_session_idx ON console_events (session_id);
CREATE INDEX invites_notification_idx ON invites (notification_id)
    WHERE notification_id IS NOT NULL;
CREATE INDEX interpreter_requests_invite_idx
    ON interpreter_requests (interpreter_invite)
    WHERE interpreter_invite IS NOT NULL;

-- Files of purged sessions that the module has still to unlink: written
-- in the purge's transaction, deleted once unlinked, so a purge that
-- stops halfway finishes on the next round.
CREATE TABLE purge_files (
    id          bigserial PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id),
    path        text NOT NULL CHECK (length(path) BETWEEN 1 AND 4096),
    queued_at   timestamptz NOT NULL DEFAULT now()
);

-- Engagement records (docs/features.md 28): what a staff member started
-- for the patient during a call.  They belong to the patient's record and
-- stay when the session's content is purged.
CREATE TABLE engagements (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES organisations (id),
    patient_id  uuid NOT NULL REFERENCES patients (id),
    session_id  uuid NOT NULL REFERENCES sessions (id),
    staff_id    uuid NOT NULL REFERENCES staff (id),
    kind        text NOT NULL CHECK (kind IN ('brief_check_in', 'follow_up',
                                              'care_coordination',
                                              'discharge')),
    note        text CHECK (length(note) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX engagements_patient_idx
    ON engagements (patient_id, created_at DESC, id DESC);
CREATE INDEX engagements_session_idx ON engagements (session_id);

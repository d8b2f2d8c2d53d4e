-- Abuse and growth limits (docs/operations.md, "Retention"; docs/api.md,
-- "Session kinds").
--
-- Retention: notifications and invites keep contact data; once they are
-- settled and old, th_retention() (sql/functions/retention.sql) scrubs it
-- and marks the row, so that each row is scrubbed once.  processed_events
-- rows are deleted by age.
ALTER TABLE notifications ADD COLUMN scrubbed_at timestamptz;
ALTER TABLE invites ADD COLUMN scrubbed_at timestamptz;

CREATE INDEX notifications_retention_idx ON notifications (created_at)
    WHERE scrubbed_at IS NULL AND status <> 'pending';
CREATE INDEX invites_retention_idx ON invites (created_at)
    WHERE scrubbed_at IS NULL;
CREATE INDEX processed_events_processed_at_idx
    ON processed_events (processed_at);

-- Kinds whose sessions anyone with a link may join (access "invitation",
-- where multi-use links exist) had no participant cap: they get one.  A
-- session may still ask for another (policies.max_participants, 0-1000).
UPDATE session_kinds SET max_participants = 20
 WHERE max_participants = 0 AND access = 'invitation';

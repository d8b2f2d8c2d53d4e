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

-- Logins per organisation (docs/api.md, "Log in"): the same e-mail address
-- may have a login in several organisations, so that creating a person
-- with an address that has a login elsewhere succeeds like any other and
-- tells nothing about other organisations.  An address is unique within
-- its organisation.  org_id is set from the staff member or patient
-- (th_login_org(), sql/functions/people.sql).
ALTER TABLE logins ADD COLUMN org_id uuid REFERENCES organisations (id);
UPDATE logins l SET org_id = COALESCE(
    (SELECT s.org_id FROM staff s WHERE s.id = l.staff_id),
    (SELECT p.org_id FROM patients p WHERE p.id = l.patient_id));
ALTER TABLE logins ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE logins DROP CONSTRAINT logins_pkey;
ALTER TABLE logins ADD PRIMARY KEY (org_id, email);
CREATE INDEX logins_email_idx ON logins (email);

-- Its current definition is in sql/functions/people.sql.
CREATE OR REPLACE FUNCTION th_login_org() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.org_id := COALESCE(
        (SELECT s.org_id FROM staff s WHERE s.id = NEW.staff_id),
        (SELECT p.org_id FROM patients p WHERE p.id = NEW.patient_id));
    RETURN NEW;
END
$$;
CREATE TRIGGER logins_org BEFORE INSERT OR UPDATE OF staff_id, patient_id
    ON logins FOR EACH ROW EXECUTE FUNCTION th_login_org();

-- th_login_account() takes the organisation too (NULL: every one).
DROP FUNCTION IF EXISTS th_login_account(text);

-- People on an appointment who are not staff (a support person, an
-- interpreter, family): invited with the patient when its session is
-- created (docs/features.md 10: the session
-- starts and its invites are sent in one step).  [{"display_name", "role", "channel", "contact", "language"}]
ALTER TABLE appointments ADD COLUMN guests jsonb NOT NULL DEFAULT '[]';

-- People on an appointment who are not staff (a support person, an
-- interpreter, family): invited with the patient when its session is
-- created (PRODUCT 10, "Select OK to start the session and send
-- invites").  [{"display_name", "role", "channel", "contact", "language"}]
ALTER TABLE appointments ADD COLUMN guests jsonb NOT NULL DEFAULT '[]';

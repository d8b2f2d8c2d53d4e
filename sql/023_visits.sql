-- Virtual visits (docs/features.md 34-37): a visit of a caregiver to a
-- client under a service code, the caregiver's clock-in and clock-out,
-- and the visit's virtual_visit session.  Also the smaller settings the
-- same features need: the patient's consent to video, the organisation's
-- rule that a video_call needs it and its own SMS sender, and sessions
-- started as voice calls.

CREATE TABLE visits (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES organisations (id),
    patient_id       uuid NOT NULL REFERENCES patients (id),
    caregiver_id     uuid NOT NULL REFERENCES staff (id),
    service_code_id  uuid NOT NULL REFERENCES service_codes (id),
    scheduled_at     timestamptz NOT NULL,
    -- the visit's virtual_visit session, once an invite was sent
    session_id       uuid UNIQUE REFERENCES sessions (id),
    clocked_in_at    timestamptz,
    clocked_out_at   timestamptz,
    created_by       uuid NOT NULL REFERENCES staff (id),
    version          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (clocked_out_at IS NULL OR clocked_in_at IS NOT NULL)
);

CREATE INDEX visits_org_time_idx ON visits (org_id, scheduled_at, id);
CREATE INDEX visits_caregiver_idx ON visits (caregiver_id);
CREATE INDEX visits_patient_idx ON visits (patient_id);

-- Consent to video: who recorded it and when; NULL when not given (or
-- withdrawn: the audit log keeps both actions).
ALTER TABLE patients
    ADD COLUMN video_consent_at  timestamptz,
    ADD COLUMN video_consent_by  uuid REFERENCES staff (id);

-- Existing organisations keep starting video calls as before (the rule
-- off); telehealth-admin turns it on for the organisations it creates.
ALTER TABLE organisations
    ADD COLUMN video_consent_required  boolean NOT NULL DEFAULT false,
    ADD COLUMN sms_sender              text
        CHECK (sms_sender ~ '^(\+[0-9]{6,15}|[A-Za-z0-9 ]{1,11})$');

-- A voice call: the call page asks for no camera.
ALTER TABLE sessions ADD COLUMN audio_only boolean NOT NULL DEFAULT false;

-- th_session_join() answers one column more ("refusal"), th_notify_claim()
-- one more ("sender"): their current definitions (sql/functions/) are
-- created after the migrations.
DROP FUNCTION IF EXISTS th_session_join(uuid, uuid, text, uuid, text);
DROP FUNCTION IF EXISTS th_notify_claim(integer, bigint);

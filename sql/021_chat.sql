-- Chat inside a session, with photos and PDFs attached (docs/api.md,
-- "Chat"), and the images a chair files to the session's patient.
--
-- A message belongs to one session; its author is "staff:<id>",
-- "patient:<id>" or "guest:<invite id>" with the name shown at the time.
-- A file is uploaded first (nginx writes it to telehealth_chat_files under
-- its id, never a name from the client), then attached to one message.
-- Rows of one session go together: th_chat_purge_session() deletes them
-- and answers the ids of the files to unlink.
--
-- New messages reach everyone in the session through the console stream
-- (GET /me/events): its events now have patients and guests (invite ids)
-- as recipients too, and a "message" type.

CREATE TABLE chat_files (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organisations (id),
    session_id    uuid NOT NULL REFERENCES sessions (id),
    uploaded_by   text NOT NULL,
    content_type  text NOT NULL
                  CHECK (content_type IN ('image/jpeg', 'image/png',
                                          'application/pdf')),
    size          bigint NOT NULL CHECK (size > 0),
    -- pending: waits for its malware scan; clean: visible
    state         text NOT NULL DEFAULT 'clean'
                  CHECK (state IN ('pending', 'clean')),
    -- a still or image a chair filed to the session's patient
    patient_id    uuid REFERENCES patients (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX chat_files_session_idx ON chat_files (session_id);
CREATE INDEX chat_files_patient_idx ON chat_files (patient_id, created_at)
    WHERE patient_id IS NOT NULL;

CREATE TABLE chat_messages (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL REFERENCES organisations (id),
    session_id    uuid NOT NULL REFERENCES sessions (id),
    seq           bigserial NOT NULL UNIQUE,
    author        text NOT NULL,
    author_name   text NOT NULL,
    body          text NOT NULL DEFAULT '',
    file_id       uuid UNIQUE REFERENCES chat_files (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (body <> '' OR file_id IS NOT NULL)
);

CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, seq);

ALTER TABLE console_events
    DROP CONSTRAINT console_events_recipient_id_fkey;
ALTER TABLE console_events DROP CONSTRAINT console_events_type_check;
ALTER TABLE console_events
    ADD CONSTRAINT console_events_type_check
        CHECK (type IN ('added', 'waiting', 'joined', 'left', 'hung_up',
                        'closed', 'message'));

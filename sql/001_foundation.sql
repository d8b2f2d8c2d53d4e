-- Foundation: organisations, people, logins, assignments, sessions, calls.
-- Applied once by scripts/migrate.sh, which records it in schema_migrations.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE organisations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE staff (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL REFERENCES organisations (id),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    email         text NOT NULL,
    role          text NOT NULL
                  CHECK (role IN ('admin', 'supervisor', 'coordinator',
                                  'clinician')),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX staff_org_idx ON staff (org_id);

CREATE TABLE patients (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL REFERENCES organisations (id),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    email         text,
    mobile        text,
    sms_capable   boolean NOT NULL DEFAULT false,
    whatsapp      text,
    language      text NOT NULL DEFAULT 'en',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX patients_org_idx ON patients (org_id);

-- One login namespace for staff and patients with an account.
CREATE TABLE logins (
    email          text PRIMARY KEY CHECK (email = lower(email)),
    password_hash  text NOT NULL,
    staff_id       uuid UNIQUE REFERENCES staff (id),
    patient_id     uuid UNIQUE REFERENCES patients (id),
    CHECK ((staff_id IS NULL) <> (patient_id IS NULL))
);

-- A dated relation: ended by setting ends_at, started again by a new row.
CREATE TABLE assignments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES organisations (id),
    staff_id    uuid NOT NULL REFERENCES staff (id),
    patient_id  uuid NOT NULL REFERENCES patients (id),
    starts_at   timestamptz NOT NULL DEFAULT now(),
    ends_at     timestamptz,
    CHECK (ends_at IS NULL OR ends_at >= starts_at)
);

CREATE UNIQUE INDEX assignments_current_idx
    ON assignments (staff_id, patient_id) WHERE ends_at IS NULL;
CREATE INDEX assignments_patient_idx ON assignments (patient_id);

CREATE TABLE sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES organisations (id),
    kind        text NOT NULL,
    name        text,
    state       text NOT NULL DEFAULT 'open'
                CHECK (state IN ('scheduled', 'open', 'ended')),
    patient_id  uuid REFERENCES patients (id),
    created_by  uuid NOT NULL REFERENCES staff (id),
    room        text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz
);

CREATE INDEX sessions_org_idx ON sessions (org_id, created_at DESC);
CREATE INDEX sessions_patient_idx ON sessions (patient_id, state);

-- Who is on a session and with which role; exactly one person per row.
CREATE TABLE session_participants (
    session_id  uuid NOT NULL REFERENCES sessions (id),
    staff_id    uuid REFERENCES staff (id),
    patient_id  uuid REFERENCES patients (id),
    role        text NOT NULL CHECK (role IN ('chair', 'broadcaster', 'viewer')),
    CHECK ((staff_id IS NULL) <> (patient_id IS NULL))
);

CREATE UNIQUE INDEX session_participants_staff_idx
    ON session_participants (session_id, staff_id) WHERE staff_id IS NOT NULL;
CREATE UNIQUE INDEX session_participants_patient_idx
    ON session_participants (session_id, patient_id)
    WHERE patient_id IS NOT NULL;

-- One row per opened room, written from the plugin's event stream.
CREATE TABLE calls (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES organisations (id),
    session_id  uuid NOT NULL REFERENCES sessions (id),
    room        text NOT NULL UNIQUE,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    end_reason  text
);

CREATE INDEX calls_session_idx ON calls (session_id);

-- participant is "staff:<uuid>" or "patient:<uuid>" (or "guest:<id>").
CREATE TABLE call_participants (
    call_id      uuid NOT NULL REFERENCES calls (id),
    participant  text NOT NULL,
    role         text NOT NULL,
    joined_at    timestamptz NOT NULL,
    left_at      timestamptz,
    left_reason  text,
    PRIMARY KEY (call_id, participant, joined_at)
);

-- Stream entries already applied: makes event processing idempotent.
CREATE TABLE processed_events (
    stream_id     text PRIMARY KEY,
    processed_at  timestamptz NOT NULL DEFAULT now()
);

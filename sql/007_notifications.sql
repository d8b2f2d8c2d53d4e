-- The notification outbox (docs/api.md, "Notifications").  A message is
-- written in the same transaction as what caused it and delivered later by
-- whichever nginx worker claims it (FOR UPDATE SKIP LOCKED, then a lease
-- in locked_until so a slow provider does not hold a row lock).  A failed
-- attempt is retried with back-off; the idempotency key goes to the
-- provider with every attempt, so a retry never sends something else.

CREATE TABLE notifications (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES organisations (id),
    channel          text NOT NULL
                     CHECK (channel IN ('sms', 'email', 'whatsapp')),
    recipient        text NOT NULL CHECK (length(recipient) BETWEEN 1 AND 320),
    template         text NOT NULL,
    language         text NOT NULL,
    body             text NOT NULL,
    session_id       uuid REFERENCES sessions (id),
    -- set together: skipped ("joined") if participant is or was in room
    -- by the time it is delivered
    room             text,
    participant      text,
    not_before       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed',
                                       'skipped')),
    reason           text,
    idempotency_key  text NOT NULL UNIQUE,
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    CHECK ((room IS NULL) = (participant IS NULL))
);

CREATE INDEX notifications_due_idx ON notifications (not_before)
    WHERE status = 'pending';
CREATE INDEX notifications_session_idx ON notifications (session_id);

-- Texts by template, channel and language; 'en' is the fallback.  The
-- video_call text is fixed by PRODUCT section 2 and carries nothing else.
CREATE TABLE notification_templates (
    template  text NOT NULL,
    channel   text NOT NULL,
    language  text NOT NULL,
    body      text NOT NULL,
    PRIMARY KEY (template, channel, language)
);

INSERT INTO notification_templates VALUES
    ('video_call_started', 'sms', 'en',
     'Staff has initiated a video session with you. Please login to your '
     'profile to join the room.');

CREATE FUNCTION th_notification_text(v_template text, v_channel text,
    v_language text) RETURNS TABLE (language text, body text)
LANGUAGE sql STABLE AS $$
    SELECT t.language, t.body FROM notification_templates t
     WHERE t.template = v_template AND t.channel = v_channel
       AND t.language IN (v_language, 'en')
     ORDER BY t.language = v_language DESC
     LIMIT 1
$$;

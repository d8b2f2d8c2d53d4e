-- Outgoing messages: queuing from templates, and masking links in
-- decided notifications.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- Queues a message and returns its id.  p_language is the recipient's
-- language; when the templates have no text in it the module uses
-- telehealth_default_language.  p_params is a JSON object whose strings,
-- numbers and booleans fill the {{name}} placeholders.  p_key makes the
-- call idempotent: a second call with the same key queues nothing and
-- returns the first message's id; NULL draws a fresh key.
CREATE OR REPLACE FUNCTION th_notify(p_org uuid, p_channel text, p_recipient text,
    p_template text, p_language text, p_params jsonb,
    p_session uuid DEFAULT NULL, p_not_before timestamptz DEFAULT now(),
    p_key text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id   uuid;
    v_key  text := COALESCE(p_key, 'notify:' || gen_random_uuid());
BEGIN
    IF p_channel IS NULL OR p_channel NOT IN ('sms', 'email', 'whatsapp') THEN
        RAISE EXCEPTION 'th_notify: unknown channel %', p_channel
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF COALESCE(p_recipient, '') = '' THEN
        RAISE EXCEPTION 'th_notify: no recipient'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF p_params IS NOT NULL AND jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'th_notify: params must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO notifications (org_id, channel, recipient, template,
                               language, params, session_id, not_before,
                               idempotency_key)
    VALUES (p_org, p_channel, p_recipient, p_template,
            COALESCE(NULLIF(p_language, ''), 'en'),
            COALESCE(p_params, '{}'), p_session,
            COALESCE(p_not_before, now()), v_key)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO v_id;

    IF v_id IS NULL THEN
        SELECT id INTO v_id FROM notifications WHERE idempotency_key = v_key;
    END IF;

    RETURN v_id;
END
$$;

-- A link's token rests in the outbox only while its message waits: once
-- the message is decided (sent, failed, skipped) the tokens of join and
-- interpreter links are masked in what the row keeps (params, body,
-- subject).  The links keep working; PostgreSQL keeps only their hashes.
CREATE OR REPLACE FUNCTION th_mask_links(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(v, '#(t|accept|refuse)=[A-Za-z0-9_-]{43}',
                          '#\1=(removed)', 'g')
$$;

CREATE OR REPLACE FUNCTION th_notification_decided() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.params := th_mask_links(NEW.params::text)::jsonb;
    NEW.body := th_mask_links(NEW.body);
    NEW.subject := th_mask_links(NEW.subject);
    RETURN NEW;
END
$$;

-- Notifications by template (docs/api.md, "Notifications"; issue 5,
-- "Delivery").  A message names a template, a language and the values of
-- its placeholders; the module renders it when it delivers it, from the
-- template files of telehealth_templates, and stores the rendered text
-- (body, and subject for e-mail) with the outcome, so the row shows what
-- was sent.  Texts are no longer kept in the database.
--
--   th_notify(org, channel, recipient, template, language, params,
--             session, not_before, idempotency_key) -> id
--
-- is how anything in SQL queues a message, in the transaction of what
-- caused it.

ALTER TABLE notifications
    ADD COLUMN params jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(params) = 'object'),
    ADD COLUMN subject text,
    ALTER COLUMN body DROP NOT NULL,
    ADD CONSTRAINT notifications_template_check
        CHECK (template ~ '^[a-z0-9][a-z0-9_]{0,62}$'),
    ADD CONSTRAINT notifications_language_check
        CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$');

-- The texts moved to files (templates/<language>/<template>.<channel>).
DROP FUNCTION th_notification_text(text, text, text);
DROP TABLE notification_templates;

-- Queues a message and returns its id.  p_language is the recipient's
-- language; when the templates have no text in it the module uses
-- telehealth_default_language.  p_params is a JSON object whose strings,
-- numbers and booleans fill the {{name}} placeholders.  p_key makes the
-- call idempotent: a second call with the same key queues nothing and
-- returns the first message's id; NULL draws a fresh key.
CREATE FUNCTION th_notify(p_org uuid, p_channel text, p_recipient text,
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

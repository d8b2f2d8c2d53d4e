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

-- The outbox courier (nginx-module/ngx_http_telehealth_notify.c) claims
-- up to v_batch due messages for v_lease ms: FOR UPDATE SKIP LOCKED, so
-- workers and nginx instances never claim the same one; each claim counts
-- as an attempt.  The last two columns: whether the recipient is in the
-- message's room now, and whether its session has ended.
CREATE OR REPLACE FUNCTION th_notify_claim(v_batch integer, v_lease bigint)
RETURNS TABLE (id uuid, channel text, recipient text, template text,
               language text, params jsonb, idempotency_key text,
               attempts integer, room text, participant text,
               present boolean, ended boolean, sender text)
LANGUAGE sql AS $$
    WITH due AS (
        SELECT x.id FROM notifications x
         WHERE x.status = 'pending' AND x.not_before <= now()
           AND (x.locked_until IS NULL OR x.locked_until <= now())
         ORDER BY x.not_before
         LIMIT v_batch
           FOR UPDATE SKIP LOCKED
    )
    UPDATE notifications n
       SET locked_until = now() + v_lease * interval '1 millisecond',
           attempts = n.attempts + 1, updated_at = now()
      FROM due WHERE n.id = due.id
    RETURNING n.id, n.channel, n.recipient, n.template, n.language,
        n.params, n.idempotency_key, n.attempts, n.room, n.participant,
        n.room IS NOT NULL AND EXISTS (SELECT 1 FROM call_participants cp
            JOIN calls c ON c.id = cp.call_id
            WHERE c.room = n.room AND cp.participant = n.participant),
        n.room IS NOT NULL AND EXISTS (SELECT 1 FROM sessions s
            WHERE s.id = n.session_id AND s.state = 'ended'),
        (SELECT o.sms_sender FROM organisations o
          WHERE o.id = n.org_id AND n.channel = 'sms')
$$;

-- Records an attempt's outcome; only the holder of attempt v_attempts
-- does.  v_delay: ms until the next attempt (status "pending"); v_body
-- and v_subject: what was sent, or NULL.
CREATE OR REPLACE FUNCTION th_notify_record(v_id uuid, v_attempts integer,
    v_status text, v_reason text, v_delay bigint, v_body text,
    v_subject text) RETURNS void
LANGUAGE sql AS $$
    UPDATE notifications SET status = v_status,
        reason = NULLIF(v_reason, ''),
        body = COALESCE(v_body, body), subject = COALESCE(v_subject, subject),
        locked_until = NULL, updated_at = now(),
        sent_at = CASE WHEN v_status = 'sent' THEN now() END,
        not_before = CASE WHEN v_status = 'pending'
                          THEN now() + v_delay * interval '1 millisecond'
                          ELSE not_before END
     WHERE id = v_id AND attempts = v_attempts AND status = 'pending'
$$;

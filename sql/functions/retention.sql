-- Retention of what keeps contact data or only grows (docs/operations.md,
-- "Retention").  Run every minute by the first nginx worker with the
-- console's expiry (telehealth_retention_*); each argument is seconds, 0
-- keeps for ever.  Returns the rows scrubbed or deleted.
--
--   notifications  settled (not pending) and older: recipient, subject,
--                  body and params go; the row stays (invites point at it,
--                  delivery counts stay true)
--   processed_events  older: deleted (the event consumer only needs the
--                  ids the stream may still deliver again)
--   invites        spent (used, revoked or expired) and older: contact,
--                  invitee name and third parties go; the row stays
--                  (registrations, interpreter requests, history)
CREATE OR REPLACE FUNCTION th_retention(v_notifications bigint,
    v_events bigint, v_invites bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n  bigint := 0;
    c  bigint;
BEGIN
    IF v_notifications > 0 THEN
        UPDATE notifications
           SET recipient = 'removed', subject = NULL, body = NULL,
               params = '{}', scrubbed_at = now()
         WHERE scrubbed_at IS NULL AND status <> 'pending'
           AND created_at < now() - v_notifications * interval '1 second';
        GET DIAGNOSTICS c = ROW_COUNT;
        n := n + c;
    END IF;

    IF v_events > 0 THEN
        DELETE FROM processed_events
         WHERE processed_at < now() - v_events * interval '1 second';
        GET DIAGNOSTICS c = ROW_COUNT;
        n := n + c;
    END IF;

    IF v_invites > 0 THEN
        UPDATE invites
           SET contact = NULL, invitee_name = NULL, third_parties = '[]',
               scrubbed_at = now()
         WHERE scrubbed_at IS NULL
           AND created_at < now() - v_invites * interval '1 second'
           AND (used_at IS NOT NULL OR revoked_at IS NOT NULL
                OR expires_at <= now());
        GET DIAGNOSTICS c = ROW_COUNT;
        n := n + c;
    END IF;

    RETURN n;
END
$$;

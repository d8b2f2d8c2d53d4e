-- What ops watch: the figures /metrics reads from PostgreSQL
-- (docs/operations.md, "Monitoring").
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- The notification outbox: messages waiting to be sent, those given up
-- after telehealth_notify_attempts, and the age (s) of the oldest message
-- that is due and still waiting (0 when none): a growing age means
-- delivery is stuck.
CREATE OR REPLACE FUNCTION th_outbox_figures(
    OUT pending bigint, OUT failed bigint, OUT oldest_pending_seconds bigint)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT count(*) FROM notifications WHERE status = 'pending'),
           (SELECT count(*) FROM notifications WHERE status = 'failed'),
           COALESCE((SELECT extract(epoch FROM now() - min(not_before))::bigint
                     FROM notifications
                     WHERE status = 'pending' AND not_before <= now()), 0)
$$;

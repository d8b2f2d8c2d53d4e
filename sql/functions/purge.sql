-- The purge (docs/lifecycle.md, "The purge"): telehealth_purge_after an
-- ended session ended, its content is deleted for good.  One function per
-- kind of content, called by th_session_purge(); what stays is the
-- session's row (ids, kind, times, end reason), its participant list
-- (ids and roles), its call history (calls, call_participants: who, when,
-- how long), its engagement records (the patient's record) and the audit
-- log, all of them ids only.
--
-- The module's purge job (nginx-module/ngx_http_telehealth_purge.c) calls
-- th_purge_run() in one worker, a batch of sessions per transaction, then
-- unlinks the files that th_purge_files() lists and reports them with
-- th_purge_unlinked().
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- Chat messages and their files: the paths of the files to unlink
-- (relative to the files directory).  Chat's tables are deleted here.
CREATE OR REPLACE FUNCTION th_purge_chat(v_session uuid) RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT f.file_id::text FROM th_chat_purge_session(v_session) f
$$;

-- Invite links with the guests' names and contact data, their third
-- parties, group registrations (guests' names), interpreter requests and
-- offers (interpreters' names and addresses).
CREATE OR REPLACE FUNCTION th_purge_invites(v_session uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE interpreter_requests SET interpreter_invite = NULL
     WHERE session_id = v_session AND interpreter_invite IS NOT NULL;
    DELETE FROM group_registrations WHERE session_id = v_session;
    DELETE FROM invites WHERE session_id = v_session;
    DELETE FROM interpreter_offers o USING interpreter_requests r
     WHERE o.request_id = r.id AND r.session_id = v_session;
    DELETE FROM interpreter_requests WHERE session_id = v_session;
$$;

-- Notifications (recipients' numbers and addresses, texts) and the
-- consoles' events of the session (display names).
CREATE OR REPLACE FUNCTION th_purge_notifications(v_session uuid)
RETURNS void
LANGUAGE sql AS $$
    DELETE FROM notifications WHERE session_id = v_session;
    DELETE FROM console_events WHERE session_id = v_session;
$$;

-- The session's own content: its name and its bans; purged_at marks it
-- done.
CREATE OR REPLACE FUNCTION th_purge_session_row(v_session uuid)
RETURNS void
LANGUAGE sql AS $$
    DELETE FROM session_bans WHERE session_id = v_session;
    UPDATE sessions SET name = NULL, purged_at = now(),
        version = version + 1, updated_at = now()
     WHERE id = v_session;
$$;

-- Deletes every piece of the session's content; answers the files to
-- unlink.  Chat first: its rows may name invites' guests.
CREATE OR REPLACE FUNCTION th_session_purge(v_session uuid)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT * FROM th_purge_chat(v_session);
    PERFORM th_purge_invites(v_session);
    PERFORM th_purge_notifications(v_session);
    PERFORM th_purge_session_row(v_session);
END
$$;

-- One round of the job: up to v_batch sessions ended more than v_after
-- seconds ago are purged, their files queued in purge_files; answers the
-- sessions purged.  SKIP LOCKED: several nginx instances may run it.  The
-- purge gives way: rather than wait for a lock (and hold one of the
-- worker's connections meanwhile) it fails and the next round tries again.
CREATE OR REPLACE FUNCTION th_purge_run(v_after integer, v_batch integer)
RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id  uuid;
BEGIN
    PERFORM set_config('lock_timeout', '200ms', true);
    FOR v_id IN
        SELECT s.id FROM sessions s
         WHERE s.state = 'ended' AND s.purged_at IS NULL
           AND s.ended_at <= now() - v_after * interval '1 second'
         ORDER BY s.ended_at
         LIMIT v_batch
         FOR UPDATE SKIP LOCKED
    LOOP
        INSERT INTO purge_files (session_id, path)
            SELECT v_id, f FROM th_session_purge(v_id) f;
        RETURN NEXT v_id;
    END LOOP;
END
$$;

-- Files still to unlink, oldest first.
CREATE OR REPLACE FUNCTION th_purge_files(v_limit integer)
RETURNS TABLE (id bigint, path text)
LANGUAGE sql STABLE AS $$
    SELECT f.id, f.path FROM purge_files f ORDER BY f.id LIMIT v_limit
$$;

-- The files the job unlinked (or found gone): "{1,2,3}".
CREATE OR REPLACE FUNCTION th_purge_unlinked(v_ids text) RETURNS integer
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM purge_files WHERE id = ANY (v_ids::bigint[])
               RETURNING 1)
    SELECT count(*)::integer FROM d
$$;

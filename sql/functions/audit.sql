-- The audit log: its append-only trigger function (the triggers are in
-- 002_people.sql), the row each operation of th_api() writes, and
-- GET /audit.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

CREATE OR REPLACE FUNCTION th_audit_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION th_op_audit_list(req jsonb, me th_caller) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim     integer := th_limit(req);
    cur     text := req #>> '{query,cursor}';
    f_actor   text := req #>> '{query,actor_id}';
    f_target  text := req #>> '{query,target_id}';
    f_action  text := req #>> '{query,action}';
    f_since   text := req #>> '{query,since}';
    v_rows    jsonb;
BEGIN
    PERFORM th_admin_only(me);
    IF cur IS NOT NULL AND cur !~ '^[0-9]{1,18}$' THEN
        PERFORM th_raise('422', '"cursor" is not valid.');
    END IF;
    IF f_actor IS NOT NULL AND f_actor !~* '^[0-9a-f-]{36}$' THEN
        PERFORM th_raise('422', '"actor_id" is not a valid id.');
    END IF;
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
            'id', a.id::text, 'at', th_ts(a.at),
            'actor_type', a.actor_type, 'actor_id', a.actor_id,
            'action', a.action, 'target_type', a.target_type,
            'target_id', a.target_id, 'client_address', a.client_addr,
            'outcome', a.outcome, 'status', a.status) ORDER BY a.id DESC),
            '[]')
      INTO v_rows
      FROM (SELECT * FROM audit_log a
            WHERE a.org_id = me.org
              AND (cur IS NULL OR a.id < cur::bigint)
              AND (f_actor IS NULL OR a.actor_id = f_actor::uuid)
              AND (f_target IS NULL OR a.target_id = f_target)
              AND (f_action IS NULL OR a.action = f_action)
              AND (f_since IS NULL OR a.at >= f_since::timestamptz)
            ORDER BY a.id DESC
            LIMIT lim + 1) a;
    RETURN th_ok(200, th_page(v_rows, lim), NULL, NULL);
END
$$;

-- One row of the audit log for an operation of th_api().  The target type
-- is the first word of the operation (th_api()); the operations of service
-- codes name theirs in full.
CREATE OR REPLACE FUNCTION th_audit(req jsonb, me th_caller, action text,
    target_type text, target_id text, status integer) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO audit_log (org_id, actor_type, actor_id, action, target_type,
                           target_id, client_addr, outcome, status)
    VALUES (me.org, me.type, me.id, action,
            CASE WHEN action LIKE 'service\_code\_%' THEN 'service_code'
                 ELSE target_type END,
            left(target_id, 64), left(req ->> 'addr', 64),
            CASE WHEN status < 400 THEN 'success'
                 WHEN status = 401 THEN 'unauthenticated'
                 WHEN status = 403 THEN 'denied'
                 WHEN status = 404 THEN 'not_found'
                 WHEN status IN (409, 412) THEN 'conflict'
                 WHEN status IN (400, 422) THEN 'invalid'
                 ELSE 'error' END,
            status)
$$;

-- One login attempt, accepted or refused (nginx, POST /auth/login): the
-- account's organisation, type and id when the account exists (all NULL
-- otherwise), the client address and the answer's status.  Neither the
-- e-mail address nor the password is kept.
CREATE OR REPLACE FUNCTION th_audit_login(org uuid, actor_type text,
    actor uuid, addr text, status integer) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO audit_log (org_id, actor_type, actor_id, action, target_type,
                           target_id, client_addr, outcome, status)
    VALUES (org, actor_type, actor, 'login', NULL, NULL, left(addr, 64),
            CASE WHEN status < 400 THEN 'success'
                 WHEN status = 401 THEN 'unauthenticated'
                 WHEN status = 429 THEN 'throttled'
                 ELSE 'error' END,
            status)
$$;

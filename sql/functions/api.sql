-- The entry points of the module: th_api() (authenticated operations,
-- th_op_*) and th_public() (public pages, th_pub_*).  Applied last.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- The one entry point of the module.  op names a th_op_* function (from
-- the module's route table, never from the client).  A th_* refusal
-- becomes a problem (its HINT names the problem when set, e.g.
-- room-not-open for a 409); every call is audited (th_audit()).
CREATE OR REPLACE FUNCTION th_api(op text, req jsonb) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    me      th_caller;
    a       th_answer;
    state   text;
    msg     text;
    target  text;
    hint    text;
BEGIN
    IF op !~ '^[a-z_]+$' THEN
        RAISE EXCEPTION 'bad operation';
    END IF;

    me.id := (req #>> '{caller,id}')::uuid;
    me.org := (req #>> '{caller,org}')::uuid;
    me.type := req #>> '{caller,type}';

    -- the token may outlive the account: deactivated or removed -> 401
    IF me.type = 'staff' THEN
        SELECT s.role INTO me.role FROM staff s
            WHERE s.id = me.id AND s.org_id = me.org AND s.active;
    ELSIF me.type = 'guest' THEN
        -- a redeemed link's holder: its session's chat only (docs/api.md)
        PERFORM 1 FROM invites i
         WHERE i.id = me.id AND i.org_id = me.org AND i.revoked_at IS NULL
           AND op LIKE 'chat\_%';
    ELSE
        PERFORM 1 FROM patients p WHERE p.id = me.id AND p.org_id = me.org;
    END IF;
    IF NOT FOUND THEN
        RETURN th_ok(401, jsonb_build_object('problem', 'unauthorized',
                'detail', 'Please log in again.'));
    END IF;

    BEGIN
        EXECUTE format('SELECT * FROM %I($1, $2)', 'th_op_' || op)
            INTO a USING req, me;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
                                msg = MESSAGE_TEXT,
                                hint = PG_EXCEPTION_HINT;
        IF state LIKE 'TH%' THEN
            a := th_ok(substr(state, 3)::integer, NULL);
        ELSIF state = '23505' THEN
            a := th_ok(409, NULL);
            msg := 'This record already exists.';
        ELSIF state IN ('22P02', '22007', '22008', '22001', '22003',
                        '23502', '23514', '23503') THEN
            a := th_ok(422, NULL);
            msg := 'Some values are not valid.';
        ELSE
            RAISE;
        END IF;
        a.body := jsonb_build_object('problem',
            CASE WHEN state LIKE 'TH%' AND hint <> '' THEN hint ELSE
            CASE a.status
                WHEN 403 THEN 'forbidden' WHEN 404 THEN 'not-found'
                WHEN 409 THEN 'conflict' WHEN 412 THEN 'precondition-failed'
                WHEN 422 THEN 'validation' WHEN 400 THEN 'invalid-request'
                ELSE 'internal' END END,
            'detail', msg);
    END;

    target := COALESCE(req ->> 'id',
                       CASE WHEN a.status = 201 THEN a.body ->> 'id' END);
    PERFORM th_audit(req, me, op, split_part(op, '_', 1), target, a.status);

    RETURN a;
END
$$;

-- The entry point of the module's routes without an access token (the
-- link's token is the credential): op names a th_pub_* function (from
-- the module's route table, never from the client), which checks, acts
-- and writes its audit row.
CREATE OR REPLACE FUNCTION th_public(op text, req jsonb) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    a  th_answer;
BEGIN
    IF op !~ '^[a-z_]+$' THEN
        RAISE EXCEPTION 'bad operation';
    END IF;
    EXECUTE format('SELECT * FROM %I($1)', 'th_pub_' || op) INTO a USING req;
    RETURN a;
END
$$;

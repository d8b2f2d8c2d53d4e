-- Interpreting organisations and interpreter requests (PRODUCT 6 and 20;
-- issue 5, "Interpreter request"; docs/api.md, "Interpreters").
--
--   /interpreting-organisations[/{id}]      th_api('interp_org_*')
--   POST /sessions/{id}/interpreter-requests th_api('interpreter_request_...')
--   GET  /sessions/{id}/interpreter-requests th_api('interpreter_request_list')
--   POST /invites with "interpreter_language" (th_invite_hold)
--   POST /interpreter-requests/decide        th_public('interpreter_decide')
--   th_interpreter_sweep(timeout)            the module's notify timer
--
-- A request e-mails the manager of every active interpreting organisation
-- of the organisation covering the language an accept and a refuse link
-- (random tokens drawn here, SHA-256 at rest, the token only in the
-- link's fragment and the message).  Deciding locks the request row: the
-- first accept wins and every other link then answers request-answered.
-- Accepting names the interpreter, who is sent an invite link that
-- admits them into the call even when it is under way; the invites held
-- back for the request are released and sent.  When every manager
-- refused, or nobody accepted within telehealth_interpreter_timeout, the
-- requester is e-mailed that no interpreter is available; held invites
-- stay held (a resend sends them without an interpreter).

CREATE TABLE interpreting_organisations (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         uuid NOT NULL REFERENCES organisations (id),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    languages      text[] NOT NULL,
    manager_email  text NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX interpreting_organisations_org_idx
    ON interpreting_organisations (org_id, created_at, id);

CREATE TABLE interpreter_requests (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id               uuid NOT NULL REFERENCES organisations (id),
    session_id           uuid NOT NULL REFERENCES sessions (id),
    language             text NOT NULL,
    requested_by         uuid NOT NULL REFERENCES staff (id),
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'accepted',
                                           'unavailable')),
    reason               text CHECK (reason IN ('refused', 'timeout')),
    accepted_by          uuid REFERENCES interpreting_organisations (id),
    interpreter_name     text,
    interpreter_email    text,
    interpreter_invite   uuid REFERENCES invites (id),
    created_at           timestamptz NOT NULL DEFAULT now(),
    answered_at          timestamptz
);

CREATE INDEX interpreter_requests_pending_idx ON interpreter_requests
    (created_at) WHERE status = 'pending';
CREATE INDEX interpreter_requests_session_idx
    ON interpreter_requests (session_id, created_at, id);

-- One per interpreting organisation asked.
CREATE TABLE interpreter_offers (
    request_id       uuid NOT NULL REFERENCES interpreter_requests (id),
    interpreting_id  uuid NOT NULL
                     REFERENCES interpreting_organisations (id),
    manager_email    text NOT NULL,
    accept_hash      text NOT NULL UNIQUE
                     CHECK (accept_hash ~ '^[0-9a-f]{64}$'),
    refuse_hash      text NOT NULL UNIQUE
                     CHECK (refuse_hash ~ '^[0-9a-f]{64}$'),
    refused_at       timestamptz,
    PRIMARY KEY (request_id, interpreting_id)
);

ALTER TABLE invites
    ADD CONSTRAINT invites_interpreter_request_fkey
        FOREIGN KEY (interpreter_request_id)
        REFERENCES interpreter_requests (id);


-- 32 random bytes (two version-4 UUIDs: 244 random bits from the
-- server's strong random source), base64url like the module's links.
CREATE FUNCTION th_random_token() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT rtrim(translate(encode(decode(replace(gen_random_uuid()::text
        || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'),
        '+/', '-_'), '=')
$$;

CREATE FUNCTION th_token_hash(token text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(token, 'UTF8')), 'hex')
$$;

CREATE FUNCTION th_public_link(req jsonb, page text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT rtrim(COALESCE(req ->> 'public_url', ''), '/') || page
$$;


-- ------------------------------------------------ interpreting organisations

CREATE FUNCTION th_interp_org_json(o interpreting_organisations)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', o.id, 'name', o.name,
        'languages', to_jsonb(o.languages), 'manager_email', o.manager_email,
        'active', o.active, 'version', o.version,
        'created_at', th_ts(o.created_at), 'updated_at', th_ts(o.updated_at))
$$;

CREATE FUNCTION th_interp_org_in_org(me th_caller, v text)
RETURNS interpreting_organisations
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o  interpreting_organisations;
BEGIN
    SELECT * INTO o FROM interpreting_organisations x
        WHERE x.id = th_uuid(v, 'interpreting organisation')
          AND x.org_id = me.org;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such interpreting organisation.');
    END IF;
    RETURN o;
END
$$;

-- "languages": 1 to 100 BCP 47 tags, kept in lower case, no repeats.
CREATE FUNCTION th_languages(v jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out  text[];
BEGIN
    IF jsonb_typeof(v) IS DISTINCT FROM 'array'
       OR jsonb_array_length(v) NOT BETWEEN 1 AND 100
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e
                  WHERE jsonb_typeof(e) <> 'string'
                     OR lower(e #>> '{}') !~ '^[a-z]{2,3}(-[a-z0-9]{2,8})*$')
    THEN
        PERFORM th_raise('422', '"languages" must list 1 to 100 language '
                         'tags such as ar or pt-BR.');
    END IF;
    SELECT array_agg(DISTINCT lower(e #>> '{}')) INTO out
        FROM jsonb_array_elements(v) e;
    RETURN out;
END
$$;

CREATE FUNCTION th_op_interp_org_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim       integer := th_limit(req);
    cur       uuid := th_cursor(req);
    f_active  text := req #>> '{query,active}';
    f_lang    text := lower(req #>> '{query,language}');
    v_rows    jsonb;
BEGIN
    PERFORM th_staff_only(me);
    IF f_active IS NOT NULL AND f_active NOT IN ('true', 'false') THEN
        PERFORM th_raise('422', '"active" must be true or false.');
    END IF;
    SELECT COALESCE(jsonb_agg(th_interp_org_json(o)
                              ORDER BY o.created_at, o.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM interpreting_organisations o
            WHERE o.org_id = me.org
              AND (f_active IS NULL OR o.active = f_active::boolean)
              AND (f_lang IS NULL OR th_covers(o.languages, f_lang))
              AND (cur IS NULL OR (o.created_at, o.id) >
                   (SELECT c.created_at, c.id FROM interpreting_organisations c
                    WHERE c.id = cur AND c.org_id = me.org))
            ORDER BY o.created_at, o.id
            LIMIT lim + 1) o;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

CREATE FUNCTION th_op_interp_org_get(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    o  interpreting_organisations;
BEGIN
    PERFORM th_staff_only(me);
    o := th_interp_org_in_org(me, req ->> 'id');
    RETURN th_ok(200, th_interp_org_json(o), th_etag(o.version));
END
$$;

CREATE FUNCTION th_op_interp_org_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    o  interpreting_organisations;
BEGIN
    PERFORM th_admin_only(me);
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    o.name := th_name(th_text(b, 'name'));
    o.manager_email := th_email(th_text(b, 'manager_email', 254),
                                'manager_email');
    IF o.name IS NULL OR o.manager_email IS NULL THEN
        PERFORM th_raise('422', '"name", "languages" and "manager_email" '
                         'are required.');
    END IF;
    INSERT INTO interpreting_organisations (org_id, name, languages,
                                            manager_email, active)
        VALUES (me.org, o.name, th_languages(b -> 'languages'),
                o.manager_email, COALESCE(th_bool(b, 'active'), true))
        RETURNING * INTO o;
    RETURN th_ok(201, th_interp_org_json(o), th_etag(o.version),
                 '/interpreting-organisations/' || o.id);
END
$$;

CREATE FUNCTION th_op_interp_org_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    o  interpreting_organisations;
BEGIN
    PERFORM th_admin_only(me);
    o := th_interp_org_in_org(me, req ->> 'id');
    PERFORM th_if_match(req, o.version);
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    IF b ? 'name' THEN
        o.name := th_name(th_text(b, 'name'));
        IF o.name IS NULL THEN
            PERFORM th_raise('422', '"name" may not be empty.');
        END IF;
    END IF;
    IF b ? 'languages' THEN
        o.languages := th_languages(b -> 'languages');
    END IF;
    IF b ? 'manager_email' THEN
        o.manager_email := th_email(th_text(b, 'manager_email', 254),
                                    'manager_email');
        IF o.manager_email IS NULL THEN
            PERFORM th_raise('422', '"manager_email" may not be empty.');
        END IF;
    END IF;
    IF b ? 'active' THEN
        o.active := COALESCE(th_bool(b, 'active'), o.active);
    END IF;
    UPDATE interpreting_organisations x SET name = o.name,
        languages = o.languages, manager_email = o.manager_email,
        active = o.active, version = x.version + 1, updated_at = now()
      WHERE x.id = o.id RETURNING * INTO o;
    RETURN th_ok(200, th_interp_org_json(o), th_etag(o.version));
END
$$;

CREATE FUNCTION th_op_interp_org_deactivate(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    o  interpreting_organisations;
BEGIN
    PERFORM th_admin_only(me);
    o := th_interp_org_in_org(me, req ->> 'id');
    PERFORM th_if_match(req, o.version);
    UPDATE interpreting_organisations x SET active = false,
        version = x.version + 1, updated_at = now()
      WHERE x.id = o.id RETURNING * INTO o;
    RETURN th_ok(200, th_interp_org_json(o), th_etag(o.version));
END
$$;

-- Whether a list of tags covers a language: the tag itself or its
-- primary language ("ar" covers "ar-ma").
CREATE FUNCTION th_covers(languages text[], v text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT lower(v) = ANY (languages)
        OR split_part(lower(v), '-', 1) = ANY (languages)
$$;


-- ------------------------------------------------------------ requests

CREATE FUNCTION th_interpreter_request_json(r interpreter_requests)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', r.id, 'session_id', r.session_id,
        'language', r.language, 'status', r.status, 'reason', r.reason,
        'requested_by', r.requested_by,
        'interpreting_organisations', (SELECT COALESCE(jsonb_agg(
                jsonb_build_object('id', o.id, 'name', o.name,
                    'refused', f.refused_at IS NOT NULL)
                ORDER BY o.name, o.id), '[]')
            FROM interpreter_offers f
            JOIN interpreting_organisations o ON o.id = f.interpreting_id
            WHERE f.request_id = r.id),
        'accepted_by', r.accepted_by,
        'interpreter', CASE WHEN r.interpreter_name IS NOT NULL THEN
            jsonb_build_object('name', r.interpreter_name,
                               'email', r.interpreter_email,
                               'invite_id', r.interpreter_invite) END,
        'created_at', th_ts(r.created_at),
        'answered_at', th_ts(r.answered_at))
$$;

-- The date and time of a scheduled session for a message, or nothing.
CREATE FUNCTION th_session_when(s sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN s.scheduled_at IS NULL THEN '{}'::jsonb ELSE
        jsonb_build_object(
            'date', to_char(s.scheduled_at AT TIME ZONE o.time_zone,
                            'YYYY-MM-DD'),
            'time', to_char(s.scheduled_at AT TIME ZONE o.time_zone,
                            'HH24:MI'),
            'time_zone', o.time_zone) END
      FROM organisations o WHERE o.id = s.org_id
$$;

-- Asks every active interpreting organisation covering v_lang.
CREATE FUNCTION th_interpreter_request(s sessions, me th_caller,
    v_lang text, req jsonb) RETURNS interpreter_requests
LANGUAGE plpgsql AS $$
DECLARE
    r         interpreter_requests;
    o         interpreting_organisations;
    v_accept  text;
    v_refuse  text;
BEGIN
    IF th_language(v_lang) IS NULL THEN
        PERFORM th_raise('422', '"interpreter_language" is required.');
    END IF;
    PERFORM th_session_not_ended(s);
    INSERT INTO interpreter_requests (org_id, session_id, language,
                                      requested_by)
        VALUES (s.org_id, s.id, v_lang, me.id) RETURNING * INTO r;
    FOR o IN SELECT * FROM interpreting_organisations x
              WHERE x.org_id = s.org_id AND x.active
                AND th_covers(x.languages, v_lang)
              ORDER BY x.created_at, x.id
    LOOP
        v_accept := th_random_token();
        v_refuse := th_random_token();
        INSERT INTO interpreter_offers (request_id, interpreting_id,
                                        manager_email, accept_hash,
                                        refuse_hash)
            VALUES (r.id, o.id, o.manager_email, th_token_hash(v_accept),
                    th_token_hash(v_refuse));
        PERFORM th_notify(s.org_id, 'email', o.manager_email,
            CASE WHEN s.scheduled_at IS NULL THEN 'interpreter_request'
                 ELSE 'interpreter_request_scheduled' END,
            'en',
            th_session_when(s) || jsonb_build_object(
                'language', v_lang, 'organisation', o.name,
                'accept_link', th_public_link(req,
                    '/interpreter#accept=' || v_accept),
                'refuse_link', th_public_link(req,
                    '/interpreter#refuse=' || v_refuse)),
            s.id, now(), 'interpreter_request:' || r.id || ':' || o.id);
    END LOOP;
    IF NOT FOUND THEN
        PERFORM th_refuse('422', 'no-interpreter', 'No interpreting '
            'organisation covers the language "' || v_lang || '".');
    END IF;
    RETURN r;
END
$$;

-- The hook of th_op_invite_create (012): an invite with an
-- "interpreter_language" is held back for a new interpreter request.
CREATE OR REPLACE FUNCTION th_invite_hold(s sessions, me th_caller, b jsonb,
    req jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
    IF th_text(b, 'interpreter_language', 35) IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN (th_interpreter_request(s, me, b ->> 'interpreter_language',
                                   req)).id;
END
$$;

CREATE FUNCTION th_op_interpreter_request_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    s  sessions := th_invite_session(me, req ->> 'id');
    r  interpreter_requests;
BEGIN
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    r := th_interpreter_request(s, me, th_text(b, 'language', 35), req);
    RETURN th_ok(201, th_interpreter_request_json(r), NULL,
        '/sessions/' || s.id || '/interpreter-requests/' || r.id);
END
$$;

CREATE FUNCTION th_op_interpreter_request_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions := th_invite_session(me, req ->> 'id');
    lim     integer := th_limit(req);
    cur     uuid := th_cursor(req);
    v_rows  jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(th_interpreter_request_json(r)
                              ORDER BY r.created_at, r.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM interpreter_requests r
            WHERE r.session_id = s.id
              AND (cur IS NULL OR (r.created_at, r.id) >
                   (SELECT c.created_at, c.id FROM interpreter_requests c
                    WHERE c.id = cur AND c.session_id = s.id))
            ORDER BY r.created_at, r.id
            LIMIT lim + 1) r;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

-- No interpreter: the request is closed and the requester told.
CREATE FUNCTION th_interpreter_unavailable(r interpreter_requests,
    v_reason text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions;
    v_email  text;
BEGIN
    UPDATE interpreter_requests x SET status = 'unavailable',
        reason = v_reason, answered_at = now()
      WHERE x.id = r.id;
    SELECT * INTO s FROM sessions WHERE id = r.session_id;
    SELECT st.email INTO v_email FROM staff st WHERE st.id = r.requested_by;
    PERFORM th_notify(r.org_id, 'email', v_email, 'interpreter_unavailable',
        'en', th_session_when(s) || jsonb_build_object(
            'language', r.language,
            'session', COALESCE(s.name, 'a video session')),
        s.id, now(), 'interpreter_unavailable:' || r.id);
END
$$;

-- The periodic sweep (the notify timer of the first worker, every
-- second): requests nobody accepted within p_timeout seconds.
CREATE FUNCTION th_interpreter_sweep(p_timeout integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r  interpreter_requests;
    n  integer := 0;
BEGIN
    FOR r IN SELECT * FROM interpreter_requests x
              WHERE x.status = 'pending'
                AND x.created_at <= now() - p_timeout * interval '1 second'
              ORDER BY x.created_at
              LIMIT 100
              FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM th_interpreter_unavailable(r, 'timeout');
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Accepting: the interpreter's invite (e-mail, multi-use until it
-- expires, so they can come back), and the held invites sent, each with
-- a link drawn now: theirs was never handed out.
CREATE FUNCTION th_interpreter_accepted(r interpreter_requests,
    v_name text, v_email text, req jsonb) RETURNS interpreter_requests
LANGUAGE plpgsql AS $$
DECLARE
    s        sessions;
    i        invites;
    v_token  text;
BEGIN
    SELECT * INTO s FROM sessions WHERE id = r.session_id;
    v_token := th_random_token();
    INSERT INTO invites (org_id, session_id, channel, token_hash, single_use,
                         invitee_name, created_by, expires_at, contact,
                         language, invitee_key, interpreter_request_id)
        VALUES (s.org_id, s.id, 'email', th_token_hash(v_token), false,
                v_name, r.requested_by,
                GREATEST(now(), COALESCE(s.scheduled_at, now()))
                    + th_invite_ttl(s, '{}') * interval '1 second',
                v_email, 'en', 'interpreter:' || r.id, r.id)
        RETURNING * INTO i;
    i := th_invite_send(i, s, req || jsonb_build_object('link',
        th_public_link(req, '/join#t=' || v_token)));
    UPDATE interpreter_requests x SET interpreter_invite = i.id
        WHERE x.id = r.id RETURNING * INTO r;

    FOR i IN SELECT * FROM invites x
              WHERE x.interpreter_request_id = r.id AND x.held
                AND x.revoked_at IS NULL
              FOR UPDATE
    LOOP
        v_token := th_random_token();
        UPDATE invites x SET held = false,
                             token_hash = th_token_hash(v_token),
            expires_at = GREATEST(x.expires_at, now()
                + th_invite_ttl(s, '{}') * interval '1 second')
            WHERE x.id = i.id RETURNING * INTO i;
        PERFORM th_invite_send(i, s, req || jsonb_build_object('link',
            th_public_link(req, '/join#t=' || v_token)));
    END LOOP;
    RETURN r;
END
$$;

-- POST /interpreter-requests/decide {token, interpreter: {name, email}}:
-- the token (hashed by the module into presented_hash) is a manager's
-- accept or refuse link.
CREATE FUNCTION th_interpreter_decide(req jsonb, f interpreter_offers)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b        jsonb := COALESCE(req -> 'body', '{}');
    v_hash   text := req ->> 'presented_hash';
    r        interpreter_requests;
    v_name   text;
    v_email  text;
BEGIN
    -- the first decision wins: every other waits here, then sees it
    SELECT * INTO r FROM interpreter_requests x WHERE x.id = f.request_id
        FOR UPDATE;
    SELECT * INTO f FROM interpreter_offers x
        WHERE x.request_id = f.request_id
          AND x.interpreting_id = f.interpreting_id;
    IF r.status <> 'pending' OR f.refused_at IS NOT NULL THEN
        PERFORM th_refuse('410', 'request-answered',
                          'This request has already been answered.');
    END IF;

    IF v_hash = f.refuse_hash THEN
        UPDATE interpreter_offers x SET refused_at = now()
            WHERE x.request_id = f.request_id
              AND x.interpreting_id = f.interpreting_id;
        IF NOT EXISTS (SELECT 1 FROM interpreter_offers x
                       WHERE x.request_id = r.id AND x.refused_at IS NULL)
        THEN
            PERFORM th_interpreter_unavailable(r, 'refused');
        END IF;
        RETURN th_ok(200, jsonb_build_object('decision', 'refused'));
    END IF;

    IF jsonb_typeof(b -> 'interpreter') IS DISTINCT FROM 'object' THEN
        PERFORM th_raise('422', 'Please give the interpreter''s name and '
                         'e-mail address.');
    END IF;
    v_name := th_name(th_text(b -> 'interpreter', 'name', 100));
    v_email := th_email(th_text(b -> 'interpreter', 'email', 254),
                        'interpreter.email');
    IF v_name IS NULL OR v_email IS NULL THEN
        PERFORM th_raise('422', 'Please give the interpreter''s name and '
                         'e-mail address.');
    END IF;
    UPDATE interpreter_requests x SET status = 'accepted',
        accepted_by = f.interpreting_id, interpreter_name = v_name,
        interpreter_email = v_email, answered_at = now()
      WHERE x.id = r.id RETURNING * INTO r;
    r := th_interpreter_accepted(r, v_name, v_email, req);
    RETURN th_ok(200, jsonb_build_object('decision', 'accepted',
        'interpreter', jsonb_build_object('name', v_name,
                                          'email', v_email)));
END
$$;

-- The decision and its audit row (actor type "guest", target the
-- request) in one transaction; a refusal becomes a problem.
CREATE FUNCTION th_pub_interpreter_decide(req jsonb) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    f      interpreter_offers;
    r      interpreter_requests;
    a      th_answer;
    state  text;
    msg    text;
    hint   text;
BEGIN
    SELECT * INTO f FROM interpreter_offers x
        WHERE req ->> 'presented_hash' IN (x.accept_hash, x.refuse_hash);
    IF NOT FOUND THEN
        a := th_ok(404, jsonb_build_object('problem', 'invite-not-found',
            'detail', 'This link is not valid.'));
    ELSE
        BEGIN
            a := th_interpreter_decide(req, f);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
                                    msg = MESSAGE_TEXT,
                                    hint = PG_EXCEPTION_HINT;
            IF state NOT LIKE 'TH%' THEN
                RAISE;
            END IF;
            a := th_ok(substr(state, 3)::integer, jsonb_build_object(
                'problem', CASE WHEN hint <> '' THEN hint
                                ELSE 'validation' END,
                'detail', msg));
        END;
        SELECT * INTO r FROM interpreter_requests WHERE id = f.request_id;
    END IF;
    INSERT INTO audit_log (org_id, actor_type, actor_id, action, target_type,
                           target_id, client_addr, outcome, status)
        VALUES (r.org_id, 'guest', NULL, 'interpreter_decide',
                'interpreter_request', r.id::text, left(req ->> 'addr', 64),
                CASE WHEN a.status < 400 THEN 'success'
                     WHEN a.status IN (404, 410) THEN 'not_found'
                     ELSE 'invalid' END,
                a.status);
    RETURN a;
END
$$;

-- The entry point of the module's routes without an access token (the
-- link's token is the credential): op names a th_pub_* function (from
-- the module's route table, never from the client), which checks, acts
-- and writes its audit row.
CREATE FUNCTION th_public(op text, req jsonb) RETURNS th_answer
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

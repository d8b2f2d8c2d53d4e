-- Helpers every concern uses: answers (th_ok), refusals (th_raise,
-- th_refuse), the checks of request values (th_uuid, th_text, th_bool,
-- th_email, ...), the caller's role (th_staff_only, th_admin_only,
-- th_org_wide), a record of the caller's organisation (th_in_org),
-- pagination (th_limit, th_cursor, th_page), versions
-- (th_if_match, th_etag), tokens and links.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

CREATE OR REPLACE FUNCTION th_ok(status integer, body jsonb, etag text DEFAULT NULL,
    location text DEFAULT NULL) RETURNS th_answer
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(status, body, etag, location)::th_answer
$$;

-- RFC 3339 in UTC, as every answer prints time.
CREATE OR REPLACE FUNCTION th_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- Refuses the request: code is the HTTP status (problem type in th_api).
CREATE OR REPLACE FUNCTION th_raise(code text, detail text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TH' || code, MESSAGE = detail;
END
$$;

CREATE OR REPLACE FUNCTION th_uuid(v text, what text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NULL OR v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        PERFORM th_raise('404', 'No such ' || what || '.');
    END IF;
    RETURN v::uuid;
END
$$;

-- The record {id} of a table that has "id" and "org_id" columns, when it
-- belongs to the caller's organisation; 404 "No such <what>." otherwise
-- (also for a value that is no id).  The table is named by its row type:
-- th_in_org(NULL::service_codes, me, req ->> 'id', 'service code').
CREATE OR REPLACE FUNCTION th_in_org(t anyelement, me th_caller, v text,
    what text) RETURNS anyelement
LANGUAGE plpgsql STABLE AS $$
DECLARE
    n  integer;
BEGIN
    EXECUTE format('SELECT * FROM %s x WHERE x.id = $1 AND x.org_id = $2',
                   pg_typeof(t))
        INTO t USING th_uuid(v, what), me.org;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        PERFORM th_raise('404', 'No such ' || what || '.');
    END IF;
    RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION th_staff_only(me th_caller) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF me.type <> 'staff' THEN
        PERFORM th_raise('403', 'Only staff can do this.');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION th_admin_only(me th_caller) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF me.type <> 'staff' OR me.role <> 'admin' THEN
        PERFORM th_raise('403', 'Only administrators can do this.');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION th_org_wide(me th_caller) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT me.type = 'staff'
        AND me.role IN ('admin', 'supervisor', 'coordinator')
$$;

-- The page size of a list: ?limit=, 50 by default, at most 200.
CREATE OR REPLACE FUNCTION th_limit(req jsonb) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  text := req #>> '{query,limit}';
BEGIN
    IF v IS NULL THEN
        RETURN 50;
    END IF;
    IF v !~ '^[0-9]{1,4}$' OR v::integer NOT BETWEEN 1 AND 200 THEN
        PERFORM th_raise('422', '"limit" must be a number from 1 to 200.');
    END IF;
    RETURN v::integer;
END
$$;

-- ?cursor= of lists keyed by uuid: the id of the last item of the page.
CREATE OR REPLACE FUNCTION th_cursor(req jsonb) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  text := req #>> '{query,cursor}';
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        PERFORM th_raise('422', '"cursor" is not valid.');
    END IF;
    RETURN v::uuid;
END
$$;

-- {"items": [...], "next_cursor": ...} from limit + 1 rows fetched.
CREATE OR REPLACE FUNCTION th_page(v_rows jsonb, lim integer, key text DEFAULT 'id')
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_array_length(v_rows) > lim THEN
        jsonb_build_object(
            'items', (SELECT COALESCE(jsonb_agg(e ORDER BY n), '[]')
                      FROM jsonb_array_elements(v_rows) WITH ORDINALITY x(e, n)
                      WHERE n <= lim),
            'next_cursor', v_rows -> (lim - 1) ->> key)
    ELSE
        jsonb_build_object('items', v_rows, 'next_cursor', NULL)
    END
$$;

-- If-Match: absent, "*", or one of the listed tags equals the current one.
CREATE OR REPLACE FUNCTION th_if_match(req jsonb, version integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    h    text := req ->> 'if_match';
    tag  text;
BEGIN
    IF h IS NULL THEN
        RETURN;
    END IF;
    FOREACH tag IN ARRAY regexp_split_to_array(h, '\s*,\s*') LOOP
        tag := regexp_replace(btrim(tag), '^W/', '');
        IF tag = '*' OR tag = '"' || version || '"' THEN
            RETURN;
        END IF;
    END LOOP;
    PERFORM th_raise('412', 'Someone else changed this record meanwhile. '
                     'Reload it and try again.');
END
$$;

CREATE OR REPLACE FUNCTION th_etag(version integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '"' || version || '"'
$$;

-- Body helpers: a string field, absent -> NULL; wrong type -> 422.
CREATE OR REPLACE FUNCTION th_text(body jsonb, field text, max integer DEFAULT 200)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  jsonb := body -> field;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'string' THEN
        PERFORM th_raise('422', '"' || field || '" must be a string.');
    END IF;
    IF length(v #>> '{}') > max THEN
        PERFORM th_raise('422', '"' || field || '" is too long.');
    END IF;
    RETURN v #>> '{}';
END
$$;

CREATE OR REPLACE FUNCTION th_bool(body jsonb, field text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  jsonb := body -> field;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'boolean' THEN
        PERFORM th_raise('422', '"' || field || '" must be true or false.');
    END IF;
    RETURN v::boolean;
END
$$;

CREATE OR REPLACE FUNCTION th_email(v text, field text DEFAULT 'email') RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(v) > 254 THEN
        PERFORM th_raise('422', '"' || field
                         || '" is not a valid e-mail address.');
    END IF;
    RETURN lower(v);
END
$$;

CREATE OR REPLACE FUNCTION th_phone(v text, field text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NOT NULL AND v !~ '^\+[1-9][0-9]{6,14}$' THEN
        PERFORM th_raise('422', '"' || field || '" must be a phone number '
                         'in international format, e.g. +4930123456.');
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION th_name(v text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NOT NULL AND length(btrim(v)) = 0 THEN
        PERFORM th_raise('422', '"display_name" must not be empty.');
    END IF;
    RETURN btrim(v);
END
$$;

-- A time of the query string: RFC 3339, or NULL when absent.
-- A query-string id (?patient_id=...): NULL when absent, 422 naming the
-- parameter when it is not a uuid.
CREATE OR REPLACE FUNCTION th_query_uuid(req jsonb, field text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  text := req #>> ARRAY['query', field];
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        PERFORM th_raise('422', '"' || field || '" is not a valid id.');
    END IF;
    RETURN v::uuid;
END
$$;

CREATE OR REPLACE FUNCTION th_query_time(req jsonb, field text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  text := req #>> ARRAY['query', field];
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$'
    THEN
        PERFORM th_raise('422', '"' || field || '" must be an RFC 3339 '
                         'time, e.g. 2026-12-01T10:00:00Z.');
    END IF;
    RETURN v::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    PERFORM th_raise('422', '"' || field || '" must be an RFC 3339 time, '
                     'e.g. 2026-12-01T10:00:00Z.');
    RETURN NULL;
END
$$;

-- A refusal with its own problem type (th_api takes it from the HINT).
CREATE OR REPLACE FUNCTION th_refuse(code text, problem text, detail text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TH' || code, HINT = problem,
        MESSAGE = detail;
END
$$;

CREATE OR REPLACE FUNCTION th_time_zone(v text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF v IS NULL OR NOT EXISTS (SELECT 1 FROM pg_timezone_names z
                                WHERE z.name = v)
    THEN
        PERFORM th_raise('422', '"time_zone" must be a time zone name such '
                         'as Europe/Amsterdam or UTC.');
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION th_language(v text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NOT NULL AND v !~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$' THEN
        PERFORM th_raise('422', '"language" must be a language tag such as '
                         'en or pt-BR.');
    END IF;
    RETURN v;
END
$$;

-- 32 random bytes (two version-4 UUIDs: 244 random bits from the
-- server's strong random source), base64url like the module's links.
CREATE OR REPLACE FUNCTION th_random_token() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT rtrim(translate(encode(decode(replace(gen_random_uuid()::text
        || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'),
        '+/', '-_'), '=')
$$;

CREATE OR REPLACE FUNCTION th_token_hash(token text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(token, 'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION th_public_link(req jsonb, page text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT rtrim(COALESCE(req ->> 'public_url', ''), '/') || page
$$;

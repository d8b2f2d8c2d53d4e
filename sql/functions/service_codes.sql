-- Service codes: CRUD of the organisation's codes and the lookup of
-- POST /sessions.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

CREATE OR REPLACE FUNCTION th_service_code_json(c service_codes) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', c.id, 'org_id', c.org_id,
        'code', c.code, 'name', c.name,
        'virtual_visits_allowed', c.virtual_visits_allowed,
        'active', c.active, 'created_at', th_ts(c.created_at),
        'updated_at', th_ts(c.updated_at))
$$;

CREATE OR REPLACE FUNCTION th_service_code_in_org(me th_caller, c_id text)
RETURNS service_codes
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM th_staff_only(me);
    RETURN th_in_org(NULL::service_codes, me, c_id, 'service code');
END
$$;

-- The active service code of the organisation named in a body: 422 when
-- there is none by that code.
CREATE OR REPLACE FUNCTION th_service_code_named(org uuid, v_code text)
RETURNS service_codes
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c  service_codes;
BEGIN
    SELECT * INTO c FROM service_codes x
        WHERE x.org_id = org AND x.code = v_code AND x.active;
    IF NOT FOUND THEN
        PERFORM th_raise('422', 'There is no active service code "'
                         || left(v_code, 40) || '".');
    END IF;
    RETURN c;
END
$$;

CREATE OR REPLACE FUNCTION th_service_code_check(c service_codes) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF c.code IS NULL OR c.code !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$' THEN
        PERFORM th_raise('422', '"code" is required: up to 40 letters, '
                         'digits, dots, dashes or underscores.');
    END IF;
    IF c.name IS NULL OR length(btrim(c.name)) = 0 THEN
        PERFORM th_raise('422', '"name" is required.');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION th_op_service_code_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    lim       integer := th_limit(req);
    cur       uuid := th_cursor(req);
    f_active  text := req #>> '{query,active}';
    f_vv      text := req #>> '{query,virtual_visits_allowed}';
    v_rows    jsonb;
BEGIN
    PERFORM th_staff_only(me);
    IF f_active IS NOT NULL AND f_active NOT IN ('true', 'false') THEN
        PERFORM th_raise('422', '"active" must be true or false.');
    END IF;
    IF f_vv IS NOT NULL AND f_vv NOT IN ('true', 'false') THEN
        PERFORM th_raise('422', '"virtual_visits_allowed" must be true or '
                         'false.');
    END IF;
    SELECT COALESCE(jsonb_agg(th_service_code_json(c)
                              ORDER BY c.created_at, c.id), '[]')
      INTO v_rows
      FROM (SELECT * FROM service_codes c
            WHERE c.org_id = me.org
              AND (f_active IS NULL OR c.active = f_active::boolean)
              AND (f_vv IS NULL
                   OR c.virtual_visits_allowed = f_vv::boolean)
              AND (cur IS NULL OR (c.created_at, c.id) >
                   (SELECT x.created_at, x.id FROM service_codes x
                    WHERE x.id = cur AND x.org_id = me.org))
            ORDER BY c.created_at, c.id
            LIMIT lim + 1) c;
    RETURN th_ok(200, th_page(v_rows, lim));
END
$$;

CREATE OR REPLACE FUNCTION th_op_service_code_get(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    c  service_codes := th_service_code_in_org(me, req ->> 'id');
BEGIN
    RETURN th_ok(200, th_service_code_json(c), th_etag(c.version));
END
$$;

CREATE OR REPLACE FUNCTION th_op_service_code_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    c  service_codes;
BEGIN
    PERFORM th_admin_only(me);
    c.code := th_text(b, 'code', 40);
    c.name := btrim(th_text(b, 'name', 200));
    c.virtual_visits_allowed := COALESCE(
        th_bool(b, 'virtual_visits_allowed'), false);
    c.active := COALESCE(th_bool(b, 'active'), true);
    PERFORM th_service_code_check(c);
    IF EXISTS (SELECT 1 FROM service_codes x
               WHERE x.org_id = me.org AND x.code = c.code)
    THEN
        PERFORM th_raise('409', 'This service code already exists.');
    END IF;
    INSERT INTO service_codes (org_id, code, name, virtual_visits_allowed,
                               active)
        VALUES (me.org, c.code, c.name, c.virtual_visits_allowed, c.active)
        RETURNING * INTO c;
    RETURN th_ok(201, th_service_code_json(c), th_etag(c.version),
                 '/service-codes/' || c.id);
END
$$;

CREATE OR REPLACE FUNCTION th_op_service_code_update(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b  jsonb := COALESCE(req -> 'body', '{}');
    c  service_codes;
BEGIN
    PERFORM th_admin_only(me);
    c := th_service_code_in_org(me, req ->> 'id');
    PERFORM th_if_match(req, c.version);
    IF b ? 'code' THEN
        c.code := th_text(b, 'code', 40);
    END IF;
    IF b ? 'name' THEN
        c.name := btrim(th_text(b, 'name', 200));
    END IF;
    IF b ? 'virtual_visits_allowed' THEN
        c.virtual_visits_allowed := COALESCE(
            th_bool(b, 'virtual_visits_allowed'), false);
    END IF;
    IF b ? 'active' THEN
        c.active := COALESCE(th_bool(b, 'active'), true);
    END IF;
    PERFORM th_service_code_check(c);
    IF EXISTS (SELECT 1 FROM service_codes x WHERE x.org_id = me.org
               AND x.code = c.code AND x.id <> c.id)
    THEN
        PERFORM th_raise('409', 'This service code already exists.');
    END IF;
    UPDATE service_codes x SET code = c.code, name = c.name,
        virtual_visits_allowed = c.virtual_visits_allowed,
        active = c.active, version = x.version + 1, updated_at = now()
      WHERE x.id = c.id
      RETURNING * INTO c;
    RETURN th_ok(200, th_service_code_json(c), th_etag(c.version));
END
$$;

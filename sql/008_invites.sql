-- Invite links (issue 5, "Invites"; ARCHITECTURE, "Credentials").
--
--   POST   /sessions/{id}/invites             th_api('invite_create')
--   DELETE /sessions/{id}/invites/{invite}    th_api('invite_revoke')
--   POST   /invites/redeem                    th_invite_redeem() (no caller)
--
-- The module draws the 32 random bytes of a link and sends only their
-- SHA-256 (hex) here; the raw token is answered once and never stored.
-- Redeeming is one UPDATE ... WHERE used_at IS NULL AND revoked_at IS NULL
-- AND expires_at > now(): of any number of parallel redeems of a
-- single-use link exactly one updates the row.

CREATE TABLE invites (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid NOT NULL REFERENCES organisations (id),
    session_id        uuid NOT NULL REFERENCES sessions (id),
    channel           text NOT NULL DEFAULT 'link'
                      CHECK (channel IN ('link')),
    token_hash        text NOT NULL UNIQUE
                      CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    single_use        boolean NOT NULL DEFAULT true,
    invitee_name      text,
    created_by        uuid NOT NULL REFERENCES staff (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    used_at           timestamptz,          -- single-use links only
    redeem_count      integer NOT NULL DEFAULT 0,
    last_redeemed_at  timestamptz,
    revoked_at        timestamptz
);

CREATE INDEX invites_session_idx ON invites (session_id);

-- The longest lifetime a caller may ask for, and the default when the
-- session's kind has no link_ttl of its own.
CREATE FUNCTION th_invite_max_ttl() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 604800 $$;

CREATE FUNCTION th_invite_json(i invites) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', i.id, 'session_id', i.session_id,
        'channel', i.channel, 'single_use', i.single_use,
        'invitee', CASE WHEN i.invitee_name IS NOT NULL THEN
            jsonb_build_object('display_name', i.invitee_name) END,
        'created_at', th_ts(i.created_at),
        'expires_at', th_ts(i.expires_at),
        'used_at', th_ts(i.used_at),
        'revoked_at', th_ts(i.revoked_at))
$$;

-- The session {id} of the caller's organisation for which the caller may
-- manage invites: staff of an org-wide role, or a chair of the session.
-- 404 for staff who cannot see it, 403 for other participants.
CREATE FUNCTION th_invite_session(me th_caller, s_id text) RETURNS sessions
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s       sessions;
    v_role  text;
BEGIN
    PERFORM th_staff_only(me);
    SELECT * INTO s FROM sessions
        WHERE id = th_uuid(s_id, 'session') AND org_id = me.org;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such session.');
    END IF;
    IF th_org_wide(me) THEN
        RETURN s;
    END IF;
    SELECT sp.role INTO v_role FROM session_participants sp
        WHERE sp.session_id = s.id AND sp.staff_id = me.id;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such session.');
    END IF;
    IF v_role IS DISTINCT FROM 'chair' THEN
        PERFORM th_raise('403', 'Only a chair of the session can invite.');
    END IF;
    RETURN s;
END
$$;

CREATE FUNCTION th_op_invite_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b         jsonb := COALESCE(req -> 'body', '{}');
    s         sessions := th_invite_session(me, req ->> 'id');
    v_ttl     integer;
    v_single  boolean := true;
    v_name    text;
    i         invites;
BEGIN
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    IF COALESCE(b ->> 'channel', 'link') <> 'link'
       OR (b ? 'channel' AND jsonb_typeof(b -> 'channel') <> 'string')
    THEN
        PERFORM th_raise('422', '"channel" must be "link".');
    END IF;
    IF b ? 'ttl' THEN
        IF jsonb_typeof(b -> 'ttl') <> 'number'
           OR (b ->> 'ttl') !~ '^[0-9]{1,9}$'
           OR (b ->> 'ttl')::integer NOT BETWEEN 1 AND th_invite_max_ttl()
        THEN
            PERFORM th_raise('422', '"ttl" must be a number of seconds '
                             'from 1 to ' || th_invite_max_ttl() || '.');
        END IF;
        v_ttl := (b ->> 'ttl')::integer;
    ELSE
        SELECT NULLIF(k.link_ttl, 0) INTO v_ttl FROM session_kinds k
            WHERE k.kind = s.kind;
        v_ttl := LEAST(COALESCE(v_ttl, 86400), th_invite_max_ttl());
    END IF;
    IF b ? 'single_use' THEN
        IF jsonb_typeof(b -> 'single_use') <> 'boolean' THEN
            PERFORM th_raise('422', '"single_use" must be true or false.');
        END IF;
        v_single := (b -> 'single_use')::boolean;
    END IF;
    IF b ? 'invitee' AND jsonb_typeof(b -> 'invitee') <> 'null' THEN
        IF jsonb_typeof(b -> 'invitee') <> 'object'
           OR (b -> 'invitee' ? 'display_name'
               AND jsonb_typeof(b #> '{invitee,display_name}')
                   NOT IN ('string', 'null'))
        THEN
            PERFORM th_raise('422', '"invitee" must be an object with a '
                             '"display_name".');
        END IF;
        v_name := NULLIF(btrim(b #>> '{invitee,display_name}'), '');
        IF length(v_name) > 100 THEN
            PERFORM th_raise('422', '"invitee.display_name" may have at '
                             'most 100 characters.');
        END IF;
    END IF;
    IF s.state <> 'open' THEN
        RAISE EXCEPTION USING ERRCODE = 'TH409', HINT = 'conflict',
            MESSAGE = 'This session has ended.';
    END IF;
    IF COALESCE(req ->> 'token_hash', '') !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'invite_create without a token hash';
    END IF;
    INSERT INTO invites (org_id, session_id, channel, token_hash, single_use,
                         invitee_name, created_by, expires_at)
        VALUES (s.org_id, s.id, 'link', req ->> 'token_hash', v_single,
                v_name, me.id, now() + v_ttl * interval '1 second')
        RETURNING * INTO i;
    RETURN th_ok(201, th_invite_json(i), NULL,
                 '/sessions/' || s.id || '/invites/' || i.id);
END
$$;

CREATE FUNCTION th_op_invite_revoke(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_invite_session(me, req ->> 'id');
BEGIN
    UPDATE invites x SET revoked_at = COALESCE(x.revoked_at, now())
        WHERE x.id = th_uuid(req ->> 'id2', 'invite')
          AND x.session_id = s.id;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such invite.');
    END IF;
    RETURN th_ok(204, NULL);
END
$$;

-- POST /invites/redeem: p_hash is the SHA-256 (hex) of the token.  Answers
-- 200 with what the module needs for the join credential, or a problem
-- fit to show a guest.  Writes its audit row (actor_type 'guest') in the
-- same transaction as the redeem.
CREATE FUNCTION th_invite_redeem(p_hash text, p_addr text)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    i         invites;
    s         sessions;
    a         th_answer;
    v_status  integer;
BEGIN
    UPDATE invites x SET
        used_at = CASE WHEN x.single_use THEN now() END,
        redeem_count = x.redeem_count + 1,
        last_redeemed_at = now()
      FROM sessions se
      WHERE x.token_hash = p_hash
        AND x.used_at IS NULL AND x.revoked_at IS NULL
        AND x.expires_at > now()
        AND se.id = x.session_id AND se.state = 'open'
        AND se.room IS NOT NULL
      RETURNING x.* INTO i;

    IF FOUND THEN
        SELECT * INTO s FROM sessions WHERE id = i.session_id;
        a := th_ok(200, jsonb_build_object('invite_id', i.id,
            'session_id', s.id, 'org_id', s.org_id, 'room', s.room,
            'kind', s.kind, 'role', 'broadcaster'));
    ELSE
        SELECT * INTO i FROM invites WHERE token_hash = p_hash;
        IF NOT FOUND OR i.revoked_at IS NOT NULL THEN
            a := th_ok(404, jsonb_build_object('problem', 'invite-not-found',
                'detail', 'This link is not valid. Please ask for a new '
                          'one.'));
        ELSIF i.used_at IS NOT NULL THEN
            a := th_ok(410, jsonb_build_object('problem', 'invite-used',
                'detail', 'This link has already been used.'));
        ELSIF i.expires_at <= now() THEN
            a := th_ok(410, jsonb_build_object('problem', 'invite-expired',
                'detail', 'This link has expired. Please ask for a new '
                          'one.'));
        ELSE
            a := th_ok(409, jsonb_build_object('problem', 'room-not-open',
                'detail', 'The video session has not started yet or has '
                          'ended.'));
        END IF;
    END IF;

    v_status := a.status;
    INSERT INTO audit_log (org_id, actor_type, actor_id, action, target_type,
                           target_id, client_addr, outcome, status)
        VALUES (i.org_id, 'guest', NULL, 'invite_redeem', 'invite',
                i.id::text, left(p_addr, 64),
                CASE WHEN v_status < 400 THEN 'success'
                     WHEN v_status IN (404, 410) THEN 'not_found'
                     ELSE 'conflict' END,
                v_status);
    RETURN a;
END
$$;

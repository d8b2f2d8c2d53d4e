-- Invite links: create, resend, extend, revoke, list, redeem, and the
-- messages that carry them.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- The longest lifetime a caller may ask for, and the default when the
-- session's kind has no link_ttl of its own.
CREATE OR REPLACE FUNCTION th_invite_max_ttl() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 604800 $$;

CREATE OR REPLACE FUNCTION th_invite_json(i invites) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', i.id, 'session_id', i.session_id,
        'channel', i.channel, 'single_use', i.single_use,
        'invitee', jsonb_strip_nulls(jsonb_build_object(
            'display_name', i.invitee_name, 'patient_id', i.patient_id,
            'contact', i.contact, 'language', i.language)),
        'third_parties', (SELECT COALESCE(jsonb_agg(t - 'contact'
                                          - 'notification_id'), '[]')
                          FROM jsonb_array_elements(i.third_parties) t),
        'held', i.held,
        'created_at', th_ts(i.created_at),
        'expires_at', th_ts(i.expires_at),
        'used_at', th_ts(i.used_at),
        'revoked_at', th_ts(i.revoked_at),
        'revoked_reason', i.revoked_reason)
$$;

-- The session {id} of the caller's organisation for which the caller may
-- manage invites: staff of an org-wide role, or a chair of the session.
-- 404 for staff who cannot see it, 403 for other participants.
CREATE OR REPLACE FUNCTION th_invite_session(me th_caller, s_id text) RETURNS sessions
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

-- DELETE /sessions/{id}/invites/{invite}: the link stops working; revoking
-- a revoked link again keeps its first time and reason.
CREATE OR REPLACE FUNCTION th_op_invite_revoke(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_invite_session(me, req ->> 'id');
BEGIN
    UPDATE invites x SET revoked_at = COALESCE(x.revoked_at, now()),
                         revoked_reason = CASE WHEN x.revoked_at IS NULL
                                               THEN 'revoked'
                                               ELSE x.revoked_reason END
        WHERE x.id = th_uuid(req ->> 'id2', 'invite')
          AND x.session_id = s.id;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such invite.');
    END IF;
    RETURN th_ok(204, NULL);
END
$$;

-- The address of a patient for a channel, or a refusal fit to show the
-- requester (docs/features.md 18).
CREATE OR REPLACE FUNCTION th_patient_contact(p patients, v_channel text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF v_channel = 'email' AND COALESCE(p.email, '') = '' THEN
        PERFORM th_refuse('422', 'no-email', 'Client has no email.');
    ELSIF v_channel = 'sms' AND COALESCE(p.mobile, '') = '' THEN
        PERFORM th_refuse('422', 'no-mobile',
                          'Client has no mobile number.');
    ELSIF v_channel = 'sms' AND NOT p.sms_capable THEN
        PERFORM th_refuse('422', 'not-sms-capable',
                          'Client''s number cannot receive SMS.');
    ELSIF v_channel = 'whatsapp' AND COALESCE(p.whatsapp, '') = '' THEN
        PERFORM th_refuse('422', 'no-whatsapp',
                          'Client has no WhatsApp number.');
    END IF;
    RETURN CASE v_channel WHEN 'email' THEN p.email WHEN 'sms' THEN p.mobile
                          WHEN 'whatsapp' THEN p.whatsapp END;
END
$$;

-- The address a guest (or third party) gave for a channel.  who: how the
-- refusal names them, e.g. "The guest".
CREATE OR REPLACE FUNCTION th_guest_contact(v_channel text, v text, who text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF v_channel = 'link' THEN
        RETURN NULL;
    END IF;
    IF COALESCE(btrim(v), '') = '' THEN
        IF v_channel = 'email' THEN
            PERFORM th_refuse('422', 'no-email', who || ' has no email.');
        ELSIF v_channel = 'sms' THEN
            PERFORM th_refuse('422', 'no-mobile',
                              who || ' has no mobile number.');
        ELSE
            PERFORM th_refuse('422', 'no-whatsapp',
                              who || ' has no WhatsApp number.');
        END IF;
    END IF;
    IF v_channel = 'email' THEN
        RETURN th_email(btrim(v), 'contact');
    END IF;
    RETURN th_phone(btrim(v), 'contact');
END
$$;

CREATE OR REPLACE FUNCTION th_channel(v jsonb, field text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN 'link';
    END IF;
    IF jsonb_typeof(v) <> 'string'
       OR v #>> '{}' NOT IN ('link', 'email', 'sms', 'whatsapp')
    THEN
        PERFORM th_raise('422', '"' || field || '" must be email, sms, '
                         'whatsapp or link.');
    END IF;
    RETURN v #>> '{}';
END
$$;

-- The placeholders of an invite message: the link, and for a scheduled
-- session its date and time in the organisation's time zone and the
-- device-test page (docs/api.md, "Invite messages").
CREATE OR REPLACE FUNCTION th_invite_params(s sessions, req jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('link', req ->> 'link')
        || CASE WHEN s.scheduled_at IS NULL THEN '{}'::jsonb ELSE
           jsonb_build_object(
               'date', to_char(s.scheduled_at AT TIME ZONE o.time_zone,
                               'YYYY-MM-DD'),
               'time', to_char(s.scheduled_at AT TIME ZONE o.time_zone,
                               'HH24:MI'),
               'time_zone', o.time_zone,
               'device_test_link',
                   rtrim(COALESCE(req ->> 'public_url', ''), '/')
                   || '/device-test') END
      FROM organisations o WHERE o.id = s.org_id
$$;

CREATE OR REPLACE FUNCTION th_invite_template(s sessions) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN s.scheduled_at IS NULL THEN 'invite'
                ELSE 'invite_scheduled' END
$$;

-- Queues the messages of invite i (the invitee's and its third parties')
-- unless it is held for an interpreter.
CREATE OR REPLACE FUNCTION th_invite_send(i invites, s sessions, req jsonb)
RETURNS invites
LANGUAGE plpgsql AS $$
DECLARE
    v_params  jsonb := th_invite_params(s, req);
    t         jsonb;
    n         integer := 0;
    parties   jsonb := '[]';
BEGIN
    IF i.held THEN
        RETURN i;
    END IF;
    IF i.channel <> 'link' THEN
        i.notification_id := th_notify(s.org_id, i.channel, i.contact,
            th_invite_template(s), i.language, v_params, s.id, now(),
            'invite:' || i.id);
    END IF;
    FOR t IN SELECT * FROM jsonb_array_elements(i.third_parties) LOOP
        n := n + 1;
        IF t ->> 'channel' <> 'link' THEN
            t := t || jsonb_build_object('notification_id',
                th_notify(s.org_id, t ->> 'channel', t ->> 'contact',
                    th_invite_template(s), t ->> 'language', v_params, s.id,
                    now(), 'invite:' || i.id || ':' || n));
        END IF;
        parties := parties || jsonb_build_array(t);
    END LOOP;
    UPDATE invites x SET notification_id = i.notification_id,
                         third_parties = parties
        WHERE x.id = i.id RETURNING * INTO i;
    RETURN i;
END
$$;

-- third_parties of a create body, checked: [{display_name, relation,
-- channel, contact, language}].
CREATE OR REPLACE FUNCTION th_third_parties(v jsonb, v_language text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t    jsonb;
    out  jsonb := '[]';
    ch   text;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN out;
    END IF;
    IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) > 10 THEN
        PERFORM th_raise('422', '"third_parties" must be a list of at most '
                         '10 people.');
    END IF;
    FOR t IN SELECT * FROM jsonb_array_elements(v) LOOP
        IF jsonb_typeof(t) <> 'object' THEN
            PERFORM th_raise('422', 'Each third party must be an object.');
        END IF;
        ch := th_channel(t -> 'channel', 'third_parties.channel');
        IF th_name(th_text(t, 'display_name', 100)) IS NULL THEN
            PERFORM th_raise('422', 'Each third party needs a '
                             '"display_name".');
        END IF;
        out := out || jsonb_build_array(jsonb_build_object(
            'display_name', th_name(th_text(t, 'display_name', 100)),
            'relation', th_text(t, 'relation', 50),
            'channel', ch,
            'contact', th_guest_contact(ch, th_text(t, 'contact', 254),
                                        'A third party'),
            'language', COALESCE(th_language(th_text(t, 'language', 35)),
                                 v_language)));
    END LOOP;
    RETURN out;
END
$$;

-- The lifetime of a new link: ttl of the body, or the kind's link_ttl.
-- consult_now links live 5 minutes at most (docs/features.md 2).
CREATE OR REPLACE FUNCTION th_invite_ttl(s sessions, b jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_ttl  integer;
    v_max  integer := CASE WHEN s.kind = 'consult_now' THEN 300
                           ELSE th_invite_max_ttl() END;
BEGIN
    IF b ? 'ttl' THEN
        IF jsonb_typeof(b -> 'ttl') <> 'number'
           OR (b ->> 'ttl') !~ '^[0-9]{1,9}$'
           OR (b ->> 'ttl')::integer NOT BETWEEN 1 AND v_max
        THEN
            PERFORM th_raise('422', '"ttl" must be a number of seconds '
                             'from 1 to ' || v_max || '.');
        END IF;
        RETURN (b ->> 'ttl')::integer;
    END IF;
    SELECT NULLIF(COALESCE((s.policies ->> 'link_ttl')::integer,
                           k.link_ttl), 0)
      INTO v_ttl FROM session_kinds k WHERE k.kind = s.kind;
    RETURN LEAST(COALESCE(v_ttl, 86400), v_max);
END
$$;

CREATE OR REPLACE FUNCTION th_invite_token(req jsonb) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF COALESCE(req ->> 'token_hash', '') !~ '^[0-9a-f]{64}$'
       OR req ->> 'link' IS NULL
    THEN
        RAISE EXCEPTION 'invite without a token hash and link';
    END IF;
    RETURN req ->> 'token_hash';
END
$$;

-- The answer to create and resend: the invite, and "url": null that the
-- module fills with the new link (absent while the invite is held).
CREATE OR REPLACE FUNCTION th_invite_created(i invites) RETURNS th_answer
LANGUAGE sql STABLE AS $$
    SELECT th_ok(201, th_invite_json(i)
                      || CASE WHEN i.held THEN '{}'::jsonb
                              ELSE '{"url": null}'::jsonb END,
                 NULL, '/sessions/' || i.session_id || '/invites/' || i.id)
$$;

-- Whether a new invite is held back, and for which interpreter request:
-- an invite with an "interpreter_language" waits for a new interpreter
-- request (interpreters.sql).
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

-- A new link for the invitee of invite {invite}: every earlier link of
-- theirs in the session stops working; the third parties of the invite
-- get the new link too (they share it).  Nobody can be added here.
CREATE OR REPLACE FUNCTION th_op_invite_resend(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b      jsonb := COALESCE(req -> 'body', '{}');
    s      sessions := th_invite_session(me, req ->> 'id');
    old    invites;
    i      invites;
    p      patients;
BEGIN
    SELECT * INTO old FROM invites x
        WHERE x.id = th_uuid(req ->> 'id2', 'invite') AND x.session_id = s.id;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such invite.');
    END IF;
    IF jsonb_typeof(b) = 'object' AND b ? 'third_parties' THEN
        PERFORM th_refuse('422', 'third-parties-at-creation', 'Third '
            'parties can only be invited when the invite is created.');
    END IF;
    PERFORM th_session_not_ended(s);
    IF old.patient_id IS NOT NULL THEN
        -- the patient's contact data of today
        SELECT * INTO p FROM patients WHERE id = old.patient_id;
        old.contact := th_patient_contact(p, old.channel);
        old.language := p.language;
    END IF;
    UPDATE invites x SET revoked_at = now(), revoked_reason = 'resent'
        WHERE x.session_id = s.id AND x.invitee_key = old.invitee_key
          AND x.revoked_at IS NULL;
    INSERT INTO invites (org_id, session_id, channel, token_hash, single_use,
                         invitee_name, created_by, expires_at, patient_id,
                         contact, language, invitee_key, max_redeems,
                         third_parties, held)
        VALUES (s.org_id, s.id, old.channel, th_invite_token(req),
                old.single_use, old.invitee_name, me.id,
                now() + th_invite_ttl(s, '{}') * interval '1 second',
                old.patient_id, old.contact, old.language, old.invitee_key,
                old.max_redeems,
                (SELECT COALESCE(jsonb_agg(t - 'notification_id'), '[]')
                   FROM jsonb_array_elements(old.third_parties) t),
                false)
        RETURNING * INTO i;
    i := th_invite_send(i, s, req);
    RETURN th_invite_created(i);
END
$$;

-- Five more minutes for a link nobody used yet; at most
-- th_invite_max_extensions() times per link.
CREATE OR REPLACE FUNCTION th_invite_max_extensions() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 6 $$;

CREATE OR REPLACE FUNCTION th_op_invite_extend(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_invite_session(me, req ->> 'id');
    i  invites;
BEGIN
    SELECT * INTO i FROM invites x
        WHERE x.id = th_uuid(req ->> 'id2', 'invite') AND x.session_id = s.id
        FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such invite.');
    END IF;
    PERFORM th_session_not_ended(s);
    IF i.revoked_at IS NOT NULL OR i.used_at IS NOT NULL
       OR i.redeem_count > 0
    THEN
        PERFORM th_raise('409', 'Only a link that has not been used or '
                         'revoked can be extended.');
    END IF;
    IF i.extensions >= th_invite_max_extensions() THEN
        PERFORM th_raise('409', 'This link cannot be extended again. '
                         'Please send a new one.');
    END IF;
    UPDATE invites x SET
        expires_at = GREATEST(x.expires_at, now()) + interval '5 minutes',
        extensions = x.extensions + 1
      WHERE x.id = i.id RETURNING * INTO i;
    RETURN th_ok(200, th_invite_json(i)
                      || jsonb_build_object('extensions', i.extensions));
END
$$;

-- Whether the invitee of invite i joined a call of the session: the
-- patient (with their account or a link), or a guest of one of their
-- links (docs/api.md, "Invite status").
CREATE OR REPLACE FUNCTION th_invitee_joined(i invites) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min(cp.joined_at) FROM call_participants cp
      JOIN calls c ON c.id = cp.call_id
     WHERE c.session_id = i.session_id
       AND (cp.participant = 'patient:' || i.patient_id
            OR EXISTS (SELECT 1 FROM invites x
                       WHERE x.session_id = i.session_id
                         AND x.invitee_key = i.invitee_key
                         AND (cp.participant = 'guest:' || x.id
                              OR cp.participant LIKE 'guest:' || x.id
                                                     || '.%')))
$$;

CREATE OR REPLACE FUNCTION th_delivery_json(n_id uuid, v_held boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN v_held THEN jsonb_build_object('status', 'held',
                    'reason', 'Waiting for an interpreter.')
                WHEN n_id IS NULL THEN NULL
                ELSE (SELECT jsonb_build_object('status',
                          CASE n.status WHEN 'skipped' THEN 'failed'
                                        ELSE n.status END,
                          'reason', n.reason, 'sent_at', th_ts(n.sent_at))
                      FROM notifications n WHERE n.id = n_id) END
$$;

-- An item of GET /sessions/{id}/invites: the invitee's latest invite, with
-- its delivery, whether they joined, and revoked_at and revoked_reason.
CREATE OR REPLACE FUNCTION th_invitee_json(i invites) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tz      text;
    v_joined  timestamptz := th_invitee_joined(i);
    v_sent    timestamptz;
BEGIN
    SELECT o.time_zone INTO v_tz FROM organisations o WHERE o.id = i.org_id;
    v_sent := CASE WHEN i.held THEN NULL
                   WHEN i.channel = 'link' THEN i.created_at
                   ELSE (SELECT n.sent_at FROM notifications n
                         WHERE n.id = i.notification_id) END;
    RETURN jsonb_build_object(
        'invite_id', i.id,
        'invitee', jsonb_strip_nulls(jsonb_build_object(
            'display_name', i.invitee_name, 'patient_id', i.patient_id,
            'contact', i.contact, 'language', i.language)),
        'channel', i.channel,
        'last_sent_at', th_ts(v_sent),
        'delivery', th_delivery_json(i.notification_id, i.held),
        'expires_at', th_ts(i.expires_at),
        'joined', v_joined IS NOT NULL,
        'joined_at', th_ts(v_joined),
        'revoked_at', th_ts(i.revoked_at),
        'revoked_reason', i.revoked_reason,
        'third_parties', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                'display_name', t ->> 'display_name',
                'relation', t ->> 'relation', 'channel', t ->> 'channel',
                'delivery', th_delivery_json(
                    (t ->> 'notification_id')::uuid, i.held))), '[]')
            FROM jsonb_array_elements(i.third_parties) t),
        'message', CASE
            WHEN v_joined IS NOT NULL THEN NULL
            WHEN v_sent IS NULL THEN
                'The client has not joined the session yet. The invite has '
                'not been sent yet.'
            ELSE 'The client has not joined the session yet. The last '
                 'invite was sent at '
                 || to_char(v_sent AT TIME ZONE v_tz, 'HH24:MI') || '.'
            END);
END
$$;

-- One item per invitee: their latest invite, oldest invitee first.
CREATE OR REPLACE FUNCTION th_op_invite_list(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions := th_invite_session(me, req ->> 'id');
    lim     integer := th_limit(req);
    cur     uuid := th_cursor(req);
    v_rows  jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(th_invitee_json(l.i) ORDER BY l.first_at,
                              l.key), '[]')
      INTO v_rows
      FROM (SELECT d.i, d.key, d.first_at
              FROM (SELECT DISTINCT ON (x.invitee_key) x AS i,
                           x.invitee_key AS key,
                           min(x.created_at) OVER (PARTITION BY
                                                   x.invitee_key) AS first_at
                      FROM invites x WHERE x.session_id = s.id
                     ORDER BY x.invitee_key, x.created_at DESC) d
             WHERE cur IS NULL OR (d.first_at, d.key) >
                   (SELECT min(c.created_at), c.invitee_key FROM invites c
                     WHERE c.session_id = s.id
                       AND c.invitee_key = (SELECT y.invitee_key
                                              FROM invites y
                                             WHERE y.id = cur
                                               AND y.session_id = s.id)
                     GROUP BY c.invitee_key)
             ORDER BY d.first_at, d.key
             LIMIT lim + 1) l;
    RETURN th_ok(200, th_page(v_rows, lim, 'invite_id'));
END
$$;

-- A new scheduled time: the links sent for the old one stop working
-- (docs/features.md 16); the requester sends new ones with resend.
CREATE OR REPLACE FUNCTION th_session_rescheduled() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE invites x SET revoked_at = now(), revoked_reason = 'rescheduled'
        WHERE x.session_id = NEW.id AND x.revoked_at IS NULL;
    RETURN NULL;
END
$$;

-- Whether invite i brings in someone the session's level admits: anyone
-- on an invitation session; else only a listed patient's own link, or the
-- interpreter that staff asked for (013), never a guest or third parties.
CREATE OR REPLACE FUNCTION th_invite_admitted(s sessions, v_patient text,
    v_parties jsonb, v_interpreter boolean) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT s.access = 'invitation' OR v_interpreter
        OR (COALESCE(jsonb_array_length(v_parties), 0) = 0
            AND EXISTS (SELECT 1 FROM session_participants sp
                        WHERE sp.session_id = s.id
                          AND sp.patient_id::text = lower(v_patient)))
$$;

-- POST /sessions/{id}/invites: a link for a listed patient or a guest
-- (guest links, or links with third parties, only for invitation
-- sessions: 422), sent through its channel unless held for an interpreter.
CREATE OR REPLACE FUNCTION th_op_invite_create(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    b          jsonb := COALESCE(req -> 'body', '{}');
    s          sessions := th_invite_session(me, req ->> 'id');
    p          patients;
    i          invites;
    v_id       uuid := gen_random_uuid();
    v_channel  text;
    v_single   boolean := true;
    v_name     text;
    v_contact  text;
    v_lang     text;
    v_key      text;
    v_parties  jsonb;
    v_request  uuid;
BEGIN
    -- guests only for invitation sessions
    IF jsonb_typeof(b) = 'object'
       AND NOT th_invite_admitted(s, b ->> 'patient_id',
           CASE WHEN jsonb_typeof(b -> 'third_parties') = 'array'
                THEN b -> 'third_parties' END, false)
    THEN
        PERFORM th_raise('422', 'Guests cannot be invited: this session '
            'is ' || s.access || ', only for the people on its '
            'participant list' || CASE WHEN s.access = 'internal'
            THEN ' and staff of the organisation' ELSE '' END
            || '. Change its access to "invitation" to invite guests.');
    END IF;
    IF jsonb_typeof(b) <> 'object' THEN
        PERFORM th_raise('422', 'The body must be a JSON object.');
    END IF;
    v_channel := th_channel(b -> 'channel', 'channel');
    IF b ? 'single_use' THEN
        v_single := th_bool(b, 'single_use');
        IF v_single IS NULL THEN
            PERFORM th_raise('422', '"single_use" must be true or false.');
        END IF;
        IF s.kind = 'consult_now' AND NOT v_single THEN
            PERFORM th_raise('422', 'A consult-now link is single use.');
        END IF;
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

    IF th_text(b, 'patient_id', 40) IS NOT NULL THEN
        -- the session's own patient, or one the caller may see
        p := th_patient_for(me, b ->> 'patient_id');
        v_contact := th_patient_contact(p, v_channel);
        v_lang := p.language;
        v_name := COALESCE(v_name, p.display_name);
        v_key := 'patient:' || p.id;
    ELSE
        v_contact := th_guest_contact(v_channel,
            COALESCE(th_text(b, 'contact', 254),
                     th_text(b -> 'invitee', 'contact', 254)),
            'The guest');
        v_lang := COALESCE(th_language(COALESCE(th_text(b, 'language', 35),
                           th_text(b -> 'invitee', 'language', 35))), 'en');
        v_key := CASE WHEN v_contact IS NULL THEN 'invite:' || v_id
                      ELSE v_channel || ':' || v_contact END;
    END IF;
    v_parties := th_third_parties(b -> 'third_parties', v_lang);

    PERFORM th_session_not_ended(s);
    IF jsonb_array_length(v_parties) > 0 AND th_session_in_progress(s) THEN
        PERFORM th_refuse('409', 'session-in-progress', 'Third parties can '
            'only be invited before the session starts.');
    END IF;
    v_request := th_invite_hold(s, me, b, req);

    INSERT INTO invites (id, org_id, session_id, channel, token_hash,
                         single_use, invitee_name, created_by, expires_at,
                         patient_id, contact, language, invitee_key,
                         max_redeems, third_parties, held,
                         interpreter_request_id)
        VALUES (v_id, s.org_id, s.id, v_channel, th_invite_token(req),
                v_single, v_name, me.id,
                now() + th_invite_ttl(s, b) * interval '1 second',
                p.id, v_contact, v_lang, v_key,
                CASE WHEN v_single THEN 1 + jsonb_array_length(v_parties)
                END,
                v_parties, v_request IS NOT NULL, v_request)
        RETURNING * INTO i;
    i := th_invite_send(i, s, req);
    RETURN th_invite_created(i);
END
$$;

-- Whether an invite link's holder opens its scheduled (or idle) session:
-- kinds the invitee opens, never an interpreter's link.
CREATE OR REPLACE FUNCTION th_invite_opens(s sessions, i invites)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT s.state IN ('scheduled', 'idle')
       AND COALESCE(i.invitee_key NOT LIKE 'interpreter:%', true)
       AND (SELECT k.opener FROM session_kinds k WHERE k.kind = s.kind)
           IN ('invitee', 'chair_or_invitee')
$$;

-- POST /invites/redeem (the module, for a link's token): the session and
-- room a valid link admits to, counting redemptions against max_redeems
-- (an invitee and their third parties share one link) and answering a
-- guest id of its own for each redemption after the first.  A held invite
-- (waiting for an interpreter) cannot be redeemed.  Refused without
-- spending the link: a guest a chair removed (403 banned), and a guest's
-- link to a session that is no longer an invitation one (403).  A valid
-- link to a scheduled session its invitee opens answers 409 with "open":
-- what the module needs to open the room, after which it redeems again.
-- Every attempt but that one is audited.
-- Whether a chair removed a guest of this link, whichever redemption
-- of it ("guest:<invite>" or "guest:<invite>.<n>").
CREATE OR REPLACE FUNCTION th_invite_banned(i invites) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM session_bans b
                   WHERE b.session_id = i.session_id
                     AND (b.participant = 'guest:' || i.id
                          OR b.participant LIKE 'guest:' || i.id || '.%'))
$$;

-- Whether a link may still be redeemed: not revoked, held, spent or
-- expired.
CREATE OR REPLACE FUNCTION th_invite_unspent(i invites) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT i.revoked_at IS NULL AND NOT i.held AND i.used_at IS NULL
       AND i.expires_at > now()
$$;

CREATE OR REPLACE FUNCTION th_invite_redeem(p_hash text, p_addr text)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    i         invites;
    s         sessions;
    a         th_answer;
    v_status  integer;
BEGIN
    SELECT * INTO i FROM invites WHERE token_hash = p_hash;
    SELECT * INTO s FROM sessions WHERE id = i.session_id;
    -- a guest a chair removed: their link is refused, whichever
    -- redemption of it the chair removed (the link is not spent)
    IF FOUND AND i.revoked_at IS NULL AND NOT i.held
       AND th_invite_banned(i)
    THEN
        INSERT INTO audit_log (org_id, actor_type, actor_id, action,
                               target_type, target_id, client_addr, outcome,
                               status)
            VALUES (i.org_id, 'guest', NULL, 'invite_redeem', 'invite',
                    i.id::text, left(p_addr, 64), 'denied', 403);
        RETURN th_ok(403, jsonb_build_object('problem', 'banned',
            'detail', 'You were removed from this session. Please ask '
                      'the person who invited you.'));
    END IF;
    -- a valid link to a scheduled session its invitee opens: what the
    -- module needs to open the room, after which it redeems again
    IF FOUND AND th_invite_unspent(i) AND th_invite_opens(s, i)
       AND th_invite_admitted(s, i.patient_id::text, i.third_parties, false)
    THEN
        RETURN th_ok(409, jsonb_build_object('problem', 'room-not-open',
            'detail', 'The session has not started yet.',
            'open', jsonb_build_object('session_id', s.id,
                'org_id', s.org_id, 'kind', s.kind, 'invite_id', i.id,
                'patient_id', s.patient_id, 'created_by', s.created_by,
                'room_fields', th_session_room_fields(s))));
    END IF;
    -- a guest's link to a session that is no longer an invitation one:
    -- refused, the link is not spent
    IF FOUND AND i.revoked_at IS NULL AND NOT i.held
       AND th_invite_admitted(s, i.patient_id::text, i.third_parties,
                              i.interpreter_request_id IS NOT NULL
                              AND i.invitee_key LIKE 'interpreter:%')
           IS NOT TRUE
    THEN
        INSERT INTO audit_log (org_id, actor_type, actor_id, action,
                               target_type, target_id, client_addr, outcome,
                               status)
            VALUES (i.org_id, 'guest', NULL, 'invite_redeem', 'invite',
                    i.id::text, left(p_addr, 64), 'denied', 403);
        RETURN th_ok(403, jsonb_build_object('problem', 'forbidden',
            'detail', 'This session is not open to guests. Please ask the '
                      'person who invited you.'));
    END IF;

    UPDATE invites x SET
        used_at = CASE WHEN x.single_use
                        AND x.redeem_count + 1 >= COALESCE(x.max_redeems, 1)
                       THEN now() END,
        redeem_count = x.redeem_count + 1,
        last_redeemed_at = now()
      FROM sessions se
      WHERE x.token_hash = p_hash
        AND x.used_at IS NULL AND x.revoked_at IS NULL AND NOT x.held
        AND x.expires_at > now()
        AND se.id = x.session_id AND se.state = 'open'
        AND se.room IS NOT NULL
      RETURNING x.* INTO i;

    IF FOUND THEN
        SELECT * INTO s FROM sessions WHERE id = i.session_id;
        a := th_ok(200, jsonb_build_object('invite_id',
                i.id || CASE WHEN i.redeem_count > 1
                             THEN '.' || i.redeem_count ELSE '' END,
            'session_id', s.id, 'org_id', s.org_id, 'room', s.room,
            'kind', s.kind, 'role', 'broadcaster'));
    ELSE
        SELECT * INTO i FROM invites WHERE token_hash = p_hash;
        IF NOT FOUND OR i.revoked_at IS NOT NULL OR i.held THEN
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

-- POST /invites/redeem with the guest's name (the module's one call):
-- th_invite_redeem(), and for a group a registration.  A valid link to a
-- scheduled group registers its holder (202, the link is not spent); a
-- link redeemed into an open group carries "preadmitted" when the
-- moderator admitted that registration, and the credential then skips the
-- waiting room.
CREATE OR REPLACE FUNCTION th_invite_redeem_named(p_hash text, p_addr text,
    p_name text) RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    i  invites;
    s  sessions;
    g  group_registrations;
    a  th_answer;
BEGIN
    SELECT * INTO i FROM invites WHERE token_hash = p_hash;
    SELECT * INTO s FROM sessions WHERE id = i.session_id;
    IF FOUND AND s.kind = 'group' AND s.state = 'scheduled'
       AND th_invite_unspent(i)
       AND COALESCE(i.invitee_key NOT LIKE 'interpreter:%', true)
       AND NOT th_invite_banned(i)
    THEN
        INSERT INTO group_registrations (org_id, session_id, invite_id,
                                         display_name)
            VALUES (s.org_id, s.id, i.id, p_name)
            ON CONFLICT (invite_id, display_name)
            DO UPDATE SET registered_at = group_registrations.registered_at
            RETURNING * INTO g;
        INSERT INTO audit_log (org_id, actor_type, actor_id, action,
                               target_type, target_id, client_addr, outcome,
                               status)
            VALUES (i.org_id, 'guest', NULL, 'group_register', 'invite',
                    i.id::text, left(p_addr, 64), 'success', 202);
        RETURN th_ok(202, jsonb_build_object('registered', true,
            'registration', th_registration_json(g),
            'scheduled_at', th_ts(s.scheduled_at),
            'detail', 'You are registered for this group session. Use '
                      'your link again when it starts: the moderator '
                      'admits you.'));
    END IF;

    a := th_invite_redeem(p_hash, p_addr);
    IF a.status = 200 AND s.kind = 'group' AND EXISTS (
        SELECT 1 FROM group_registrations r
         WHERE r.invite_id = i.id AND r.display_name = p_name
           AND r.state = 'admitted')
    THEN
        a.body := a.body || jsonb_build_object('preadmitted', true);
    END IF;
    RETURN a;
END
$$;

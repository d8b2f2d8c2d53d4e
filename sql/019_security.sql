-- Security hardening: the audit of every login attempt, and identity
-- provider logins bound to an organisation (docs/api.md, "Login
-- throttling" and "Identity provider").

-- ------------------------------------------------------------ schema

-- The organisation each identity provider (its "iss") signs in for.  A
-- token is matched to staff of that organisation only, so staff rows of
-- another organisation with the same e-mail address or subject never
-- name it (nor make it ambiguous).  An issuer without a row signs in
-- nobody.  idp_subject is already unique per organisation (014), hence
-- per issuer.
CREATE TABLE idp_issuers (
    issuer      text PRIMARY KEY CHECK (length(issuer) BETWEEN 1 AND 1024),
    org_id      uuid NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idp_issuers_org_idx ON idp_issuers (org_id);

-- Functions (move to sql/functions/ at merge)

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

-- The staff member an identity provider token names (nginx, telehealth_idp_
-- claim): within the organisation of its issuer, by lower-cased e-mail
-- (by_email; nginx has checked "email_verified") or by idp_subject.  At
-- most two rows: nginx accepts exactly one.
CREATE OR REPLACE FUNCTION th_idp_staff(iss text, by_email boolean, val text)
RETURNS TABLE (id text, org_id text, role text, display_name text,
               active boolean)
LANGUAGE sql STABLE AS $$
    SELECT s.id::text, s.org_id::text, s.role, s.display_name, s.active
      FROM idp_issuers i
      JOIN staff s ON s.org_id = i.org_id
     WHERE i.issuer = iss
       AND CASE WHEN by_email THEN lower(s.email) = val
                ELSE s.idp_subject = val END
     LIMIT 2
$$;

-- The open rooms of a person's organisation (nginx, when the person is
-- deactivated or gets a new password): Redis knows which of them the
-- person is in, and nginx sends each of those "remove".
CREATE OR REPLACE FUNCTION th_person_open_rooms(person uuid)
RETURNS TABLE (room text)
LANGUAGE sql STABLE AS $$
    SELECT s.room
      FROM sessions s
     WHERE s.state = 'open' AND s.room IS NOT NULL
       AND s.org_id = (SELECT org_id FROM staff WHERE id = person
                       UNION ALL
                       SELECT org_id FROM patients WHERE id = person
                       LIMIT 1)
$$;

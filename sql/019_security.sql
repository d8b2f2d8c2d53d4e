-- Security hardening: the audit of every login attempt, and identity
-- provider logins bound to an organisation (docs/api.md, "Login
-- throttling" and "Identity provider").

-- ------------------------------------------------------------ schema

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

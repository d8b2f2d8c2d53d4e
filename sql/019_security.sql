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

-- The functions that go with it: th_audit_login() in
-- sql/functions/audit.sql, th_idp_staff() in people.sql,
-- th_person_open_rooms() in lifecycle.sql.

-- Identity-provider tokens (telehealth_idp_claim): when the claim that
-- names the staff member is not "email" (e.g. "sub" or "oid"), its value
-- is matched against this column.  NULL: the account has no IdP identity.
ALTER TABLE staff ADD COLUMN idp_subject text UNIQUE
    CHECK (length(idp_subject) BETWEEN 1 AND 320);

-- the "email" mapping looks staff up by lower(email)
CREATE INDEX staff_email_lower_idx ON staff (lower(email));

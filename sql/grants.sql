-- Run by scripts/migrate.sh after it granted the module's role
-- SELECT, INSERT, UPDATE, DELETE on every table: what must not be allowed.
--
--   psql -v app_role=telehealth -f grants.sql

-- The audit log is append-only for the module (docs/api.md, "Audit").
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM :"app_role";

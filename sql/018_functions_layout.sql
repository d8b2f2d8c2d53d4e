-- Each function's current definition now lives once in sql/functions/
-- (docs/sql.md), applied by scripts/migrate.sh after the migrations on
-- every run.  The versions that earlier migrations renamed so that a new
-- definition could wrap them are merged into that definition there; this
-- drops them.  Their callers are replaced in the same run, right after the
-- migrations (PL/pgSQL and SQL bodies are not dependencies of a function,
-- so nothing else holds on to them).

-- th_op_session_update of 006 and 014
DROP FUNCTION th_session_update_settings(jsonb, th_caller);
DROP FUNCTION th_session_update_live(jsonb, th_caller);
-- th_op_session_close of 004
DROP FUNCTION th_session_close_room(jsonb, th_caller);
-- th_op_staff_create and th_op_staff_update of 002
DROP FUNCTION th_staff_create_record(jsonb, th_caller);
DROP FUNCTION th_staff_update_record(jsonb, th_caller);
-- th_audit of 002
DROP FUNCTION th_audit_row(jsonb, th_caller, text, text, text, integer);
-- th_op_invite_create and th_invite_redeem of 012 (015 and 017 wrapped
-- the latter)
DROP FUNCTION th_invite_create_admitted(jsonb, th_caller);
DROP FUNCTION th_invite_redeem_admitted(text, text);

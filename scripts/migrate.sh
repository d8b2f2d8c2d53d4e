#!/bin/sh
# Applies sql/NNN_*.sql in order, each once, each in one transaction, and
# records it in schema_migrations; then applies every file of
# sql/functions/, in the order of $functions below, all in one transaction,
# on every run (each function's current definition, CREATE OR REPLACE).
# Safe to run again.  docs/sql.md describes the layout.
#
#   migrate.sh "CONNINFO" [APP_ROLE]
#
# CONNINFO connects as the database owner.  APP_ROLE, when given, is the
# role nginx connects as; it gets the privileges the module needs.

set -eu

conninfo=$1
app_role=${2:-}
# sql/ of the source tree, or next to the installed script
# (/usr/share/telehealth/sql)
here=$(cd "$(dirname "$0")" && pwd)
if [ -d "$here/sql" ]; then
    dir=${TH_SQL_DIR:-$here/sql}
else
    dir=${TH_SQL_DIR:-$(dirname "$here")/sql}
fi

psql_run() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$conninfo" "$@"
}

psql_run -c "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now())"

for file in "$dir"/[0-9][0-9][0-9]_*.sql; do
    [ -f "$file" ] || continue
    version=$(basename "$file" .sql)
    applied=$(psql_run -tA -c \
        "SELECT 1 FROM schema_migrations WHERE version = '$version'")
    [ "$applied" = 1 ] && continue

    echo "migrate: applying $version"
    { cat "$file"
      echo "INSERT INTO schema_migrations (version) VALUES ('$version');"
    } | psql_run -1 -f -
done

# The functions, by concern.  Helpers first, th_api() and th_public() last:
# a LANGUAGE sql body is checked when created, so what it calls comes
# before it.  Every file of sql/functions/ is listed here exactly once.
functions="common audit people notifications sessions lifecycle console
    service_codes appointments invites visits interpreters retention chat
    purge engagements export operations api"

for name in $functions; do
    [ -f "$dir/functions/$name.sql" ] || {
        echo "migrate: $dir/functions/$name.sql is missing" >&2; exit 1; }
done
for file in "$dir"/functions/*.sql; do
    [ -f "$file" ] || continue
    case " $(echo $functions) " in
    *" $(basename "$file" .sql) "*) ;;
    *) echo "migrate: $file is not in the list of scripts/migrate.sh" >&2
       exit 1 ;;
    esac
done
echo "migrate: applying the functions"
for name in $functions; do
    cat "$dir/functions/$name.sql"
done | psql_run -1 -f -

if [ -n "$app_role" ]; then
    # Migrations may revoke what a table must not allow (append-only
    # tables); they do so after these grants, in sql/grants.sql.
    psql_run -c "GRANT USAGE ON SCHEMA public TO $app_role;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public
            TO $app_role;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO $app_role;"
    if [ -f "$dir/grants.sql" ]; then
        psql_run -v app_role="$app_role" -f "$dir/grants.sql"
    fi
fi

#!/bin/sh
# Applies sql/NNN_*.sql in order, each once, each in one transaction, and
# records it in schema_migrations.  Safe to run again.
#
#   migrate.sh "CONNINFO" [APP_ROLE]
#
# CONNINFO connects as the database owner.  APP_ROLE, when given, is the
# role nginx connects as; it gets the privileges the module needs.

set -eu

conninfo=$1
app_role=${2:-}
dir=${TH_SQL_DIR:-$(cd "$(dirname "$0")/.." && pwd)/sql}

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

#!/bin/bash
# Throughput of a database-backed list endpoint against PostgreSQL alone.
#
# In the same run, for the same duration:
#   wrk      GET /api/v1/patients?limit=50 with the benchmark user's token
#            (token check, th_api('patient_list') with its audit row, JSON)
#   pgbench  the statement that endpoint sends, with the same request
#            document, over the extended protocol as libpq's
#            PQsendQueryParams does, as the module's database role
# and prints requests/s, transactions/s and the ratio API/pgbench.
# bench/run.sh calls it after the API figures; it can also run alone with
# TH_BENCH_TOKEN set to the benchmark user's access token.
#
#   BENCH_THREADS, BENCH_CONNECTIONS, BENCH_DURATION   as bench/run.sh
#   BENCH_LIST_PG_CONNECTIONS  pgbench clients (default BENCH_CONNECTIONS)

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
BASE=http://127.0.0.1:${TH_NGINX_PORT:-58080}
PG_PORT=${TH_PG_PORT:-55432}
PG_CONN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=telehealth"
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
PG_CONNECTIONS=${BENCH_LIST_PG_CONNECTIONS:-$CONNECTIONS}
DURATION=${BENCH_DURATION:-10s}
EMAIL=${TH_BENCH_EMAIL:-bench@bench.test}
PATIENTS=200
LIMIT=50

die() { printf 'bench/list: error: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk not installed (make deps)"
command -v pgbench >/dev/null || die "pgbench not installed"
[ -n "${TH_BENCH_TOKEN:-}" ] || die "TH_BENCH_TOKEN is not set (bench/run.sh)"

case $DURATION in
    *m) seconds=$(( ${DURATION%m} * 60 )) ;;
    *s) seconds=${DURATION%s} ;;
    *)  seconds=$DURATION ;;
esac

# the benchmark organisation gets enough patients for full pages
psql -X -q -v ON_ERROR_STOP=1 -d "$PG_CONN" -v email="$EMAIL" \
    -v n="$PATIENTS" >/dev/null <<'SQL'
INSERT INTO patients (org_id, display_name, email, language)
SELECT s.org_id, 'Bench Patient ' || g, 'bench.patient.' || g || '@bench.test',
       'en'
FROM staff s, generate_series(1 + (SELECT count(*) FROM patients p
                                   JOIN staff x ON x.org_id = p.org_id
                                   WHERE x.email = :'email'), :n) g
WHERE s.email = :'email';
SQL

caller=$(psql -X -tA -d "$PG_CONN" -v email="$EMAIL" <<<"
    SELECT json_build_object('id', id, 'org', org_id, 'type', 'staff')
    FROM staff WHERE email = :'email'") || die "no benchmark user"
[ -n "$caller" ] || die "no benchmark user $EMAIL (bench/run.sh creates it)"

url="$BASE/api/v1/patients?limit=$LIMIT"
status=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$url" \
    -H "Authorization: Bearer $TH_BENCH_TOKEN")
[ "$status" = 200 ] || die "GET /api/v1/patients answered $status"

# the request document records.c builds for this call
req="{\"caller\": $caller, \"query\": {\"limit\": \"$LIMIT\"},"
req="$req \"addr\": \"127.0.0.1\", \"id\": null, \"id2\": null}"
script=$(mktemp)
trap 'rm -f "$script"' EXIT
printf "SELECT status, body::text, etag, location FROM th_api('patient_list', '%s'::jsonb);\n" \
    "$req" > "$script"

psql -X -tA -d "$PG_CONN" -f "$script" | grep -q '^200|' \
    || die "the pgbench statement does not answer 200"

mkdir -p "$BENCH/results"

out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -H "Authorization: Bearer $TH_BENCH_TOKEN" "$url")
printf '%s\n' "$out" > "$BENCH/results/list.wrk.txt"
if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
    die "list: $(grep 'Non-2xx' <<<"$out")"
fi
api=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")

# the module's own role, over TCP, as nginx connects
pg=$(pgbench -n -M extended -c "$PG_CONNECTIONS" -j "$THREADS" \
    -T "$seconds" -f "$script" \
    -h 127.0.0.1 -p "$PG_PORT" -U telehealth telehealth 2>&1) \
    || die "pgbench failed: $pg"
printf '%s\n' "$pg" > "$BENCH/results/list.pgbench.txt"
tps=$(awk '/^tps = / { print $3; exit }' <<<"$pg")
ratio=$(awk -v a="$api" -v b="$tps" 'BEGIN { printf "%.3f", a / b }')
pool=$(awk '/telehealth_postgres_pool_size/ { gsub(";", ""); print $2 }' \
    "${TH_RUN:-$ROOT/run}/nginx/nginx.conf" 2>/dev/null || true)

{
    echo "date:             $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:           $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "wrk:              -t$THREADS -c$CONNECTIONS -d$DURATION GET /patients?limit=$LIMIT"
    echo "pgbench:          -c$PG_CONNECTIONS -j$THREADS -T$seconds -M extended th_api('patient_list')"
    echo "nginx pg pool:    ${pool:-?} connections per worker"
    echo "api list:         $api requests/s"
    echo "pgbench:          $tps transactions/s"
    echo "api/pgbench:      $ratio"
} | tee "$BENCH/results/list.txt"

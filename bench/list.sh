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
RESULTS=${BENCH_RESULTS:-$BENCH/results}
BASE=http://127.0.0.1:${TH_NGINX_PORT:-58080}
PG_PORT=${TH_PG_PORT:-55432}
PG_CONN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=telehealth"
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
PG_CONNECTIONS=${BENCH_LIST_PG_CONNECTIONS:-$CONNECTIONS}
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-2}
EMAIL=${TH_BENCH_EMAIL:-bench@bench.test}
PATIENTS=${BENCH_LIST_PATIENTS:-200}
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

# the benchmark organisation gets enough patients for full pages, through
# the API (POST /api/v1/patients), as a console adds them
have=$(psql -X -tA -d "$PG_CONN" -v email="$EMAIL" <<'SQL'
SELECT count(*) FROM patients p JOIN staff s ON s.org_id = p.org_id
WHERE s.email = :'email';
SQL
) || die "cannot count the benchmark patients"
for ((i = have + 1; i <= PATIENTS; i++)); do
    curl -fsS -m 10 -o /dev/null "$BASE/api/v1/patients" \
        -H "Authorization: Bearer $TH_BENCH_TOKEN" \
        -H 'Content-Type: application/json' \
        -d "{\"display_name\":\"Bench Patient $i\",\"email\":\"bench.patient.$i@bench.test\",\"language\":\"en\"}" \
        || die "POST /api/v1/patients failed"
done

# the caller as the module hands it to th_api(), from GET /api/v1/me
caller=$(curl -fsS -m 10 "$BASE/api/v1/me" \
    -H "Authorization: Bearer $TH_BENCH_TOKEN" \
    | jq -c '{id: .id, org: .org_id, type: .type}') \
    || die "GET /api/v1/me failed"
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

mkdir -p "$RESULTS"

pool=$(awk '/telehealth_postgres_pool_size/ { gsub(";", ""); print $2 }' \
    "${TH_RUN:-$ROOT/run}/nginx/nginx.conf" 2>/dev/null || true)
workers=$(awk '/^worker_processes/ { gsub(";", ""); print $2 }' \
    "${TH_RUN:-$ROOT/run}/nginx/nginx.conf" 2>/dev/null || true)
[[ "$pool" =~ ^[0-9]+$ ]] || pool=4
[[ "$workers" =~ ^[0-9]+$ ]] || workers=1
pool_clients=$((pool * workers))

api_run() {
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -H "Authorization: Bearer $TH_BENCH_TOKEN" "$url")
    printf '%s\n' "$out" >> "$RESULTS/list.wrk.txt"
    if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
        die "list: $(grep 'Non-2xx' <<<"$out")"
    fi
    awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}

# the module's own role, over TCP, as nginx connects
pg_run() {
    local pg
    pg=$(pgbench -n -M extended -c "$1" -j "$THREADS" -T "$seconds" \
        -f "$script" -h 127.0.0.1 -p "$PG_PORT" -U telehealth telehealth \
        2>&1) || die "pgbench failed: $pg"
    printf '%s\n' "$pg" >> "$RESULTS/list.pgbench.txt"
    awk '/^tps = / { print $3; exit }' <<<"$pg"
}

# In turns, ROUNDS times (the order swapped every round): the machine is
# shared, and a neighbour's load in one window moves one figure alone.
: > "$RESULTS/list.wrk.txt"
: > "$RESULTS/list.pgbench.txt"
apis=() tpss=() pools=()
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then
        apis+=("$(api_run)")
        tpss+=("$(pg_run "$PG_CONNECTIONS")")
        pools+=("$(pg_run "$pool_clients")")
    else
        pools+=("$(pg_run "$pool_clients")")
        tpss+=("$(pg_run "$PG_CONNECTIONS")")
        apis+=("$(api_run)")
    fi
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
api=$(mean "${apis[@]}")
tps=$(mean "${tpss[@]}")
tps_pool=$(mean "${pools[@]}")
ratio=$(awk -v a="$api" -v b="$tps" 'BEGIN { printf "%.3f", a / b }')
ratio_pool=$(awk -v a="$api" -v b="$tps_pool" 'BEGIN { printf "%.3f", a / b }')

{
    echo "date:             $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:           $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "wrk:              -t$THREADS -c$CONNECTIONS -d$DURATION GET /patients?limit=$LIMIT, $ROUNDS rounds"
    echo "pgbench:          -c$PG_CONNECTIONS (and -c$pool_clients) -j$THREADS -T$seconds -M extended th_api('patient_list')"
    echo "nginx pg pool:    $pool connections per worker, $workers worker(s)"
    echo "api list:         $api requests/s (rounds: ${apis[*]})"
    echo "pgbench:          $tps transactions/s (rounds: ${tpss[*]})"
    echo "pgbench -c$pool_clients:      $tps_pool transactions/s (rounds: ${pools[*]}), nginx's connections"
    echo "api/pgbench:      $ratio"
    echo "api/pgbench at nginx's connections: $ratio_pool"
} | tee "$RESULTS/list.txt"

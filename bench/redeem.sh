#!/bin/bash
# Invite redeem throughput, a fresh link per request, against nginx's floor.
#
# In the same run, with the same threads, connections and duration:
#   wrk  GET /bench/return200        a location that only returns 200
#   wrk  POST /api/v1/invites/redeem  each request a link never used before
#        (bench/redeem.lua): SHA-256 of the token, th_invite_redeem()'s
#        UPDATE and audit row, the room check in Redis, a join credential
# and prints requests/s of each and the ratio redeem/return200.  Then
#   pgbench  th_invite_redeem() on fresh links alone, as the module's role
# for what PostgreSQL itself allows.  The links (BENCH_REDEEM_LINKS,
# default 20000 per second of the run, more than a run can use) are made
# beforehand by th_api('invite_create'), the function POST
# /sessions/{id}/invites calls, for a session of the benchmark user opened
# through the API.  bench/run.sh calls it; it
# can also run alone with TH_BENCH_TOKEN set to the benchmark user's token.
#
#   BENCH_THREADS, BENCH_CONNECTIONS, BENCH_DURATION   as bench/run.sh

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
RESULTS=${BENCH_RESULTS:-$BENCH/results}
BASE=http://127.0.0.1:${TH_NGINX_PORT:-58080}
PG_CONN="host=127.0.0.1 port=${TH_PG_PORT:-55432} user=postgres dbname=telehealth"
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-10s}
EMAIL=${TH_BENCH_EMAIL:-bench@bench.test}
LINKS=${BENCH_REDEEM_LINKS:-}

case $DURATION in
    *m) seconds=$(( ${DURATION%m} * 60 )) ;;
    *s) seconds=${DURATION%s} ;;
    *)  seconds=$DURATION ;;
esac
# wrk and pgbench take half each: 10000 a second each is more than either
# spends (pgbench alone redeemed about 2,500 a second on an idle 2-core
# machine)
LINKS=${LINKS:-$(( seconds * 20000 > 20000 ? seconds * 20000 : 20000 ))}

die() { printf 'bench/redeem: error: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk not installed (make deps)"
command -v pgbench >/dev/null || die "pgbench not installed"
[ -n "${TH_BENCH_TOKEN:-}" ] || die "TH_BENCH_TOKEN is not set (bench/run.sh)"

run_id=$(date -u +%Y%m%d%H%M%S)-$$
prefix="bench-redeem-$run_id-"

# a patient of its own per run (a patient has one live session at a
# time), through the API as a console adds one
patient=$(curl -fsS -m 10 "$BASE/api/v1/patients" \
    -H "Authorization: Bearer $TH_BENCH_TOKEN" \
    -H 'Content-Type: application/json' \
    -d "{\"display_name\":\"Bench Redeem $run_id\",\"language\":\"en\"}" \
    | jq -r .id) || die "POST /api/v1/patients failed"
[ -n "$patient" ] && [ "$patient" != null ] || die "no benchmark patient"

session=$(curl -fsS -m 10 "$BASE/api/v1/sessions" \
    -H "Authorization: Bearer $TH_BENCH_TOKEN" \
    -H 'Content-Type: application/json' \
    -d "{\"kind\":\"telehealth\",\"patient_id\":\"$patient\"}" \
    | jq -r .id) || die "POST /api/v1/sessions failed"
[ -n "$session" ] && [ "$session" != null ] || die "no session"

# The links: POST /sessions/{id}/invites does this per link (the module
# draws the token, th_api('invite_create') stores its SHA-256 and audits);
# here th_api() itself is called once per link, with tokens the wrk
# script can name, as the module's caller document for this user.
caller=$(curl -fsS -m 10 "$BASE/api/v1/me" \
    -H "Authorization: Bearer $TH_BENCH_TOKEN" \
    | jq -c '{id: .id, org: .org_id, type: .type}') \
    || die "GET /api/v1/me failed"
made=$(psql -X -q -tA -v ON_ERROR_STOP=1 -d "$PG_CONN" -v session="$session" \
    -v prefix="$prefix" -v n="$LINKS" -v caller="$caller" <<'SQL'
SELECT count(*) FILTER (WHERE (a).status = 201)
FROM (SELECT th_api('invite_create', jsonb_build_object(
          'caller', :'caller'::jsonb, 'id', :'session', 'id2', NULL,
          'addr', '127.0.0.1', 'query', '{}'::jsonb,
          'body', '{"channel": "link"}'::jsonb,
          'token_hash', th_token_hash(:'prefix' || g),
          'link', 'bench')) AS a
      FROM generate_series(1, :n) g) x;
SQL
) || die "th_api('invite_create') failed"
[ "$made" = "$LINKS" ] || die "$made of $LINKS links made"

status=$(curl -s -m 5 -o /dev/null -w '%{http_code}' \
    "$BASE/api/v1/invites/redeem" -H 'Content-Type: application/json' \
    -d "{\"token\":\"${prefix}0\",\"display_name\":\"Bench Guest\"}")
[ "$status" = 404 ] || die "an unknown link answered $status, not 404"

mkdir -p "$RESULTS"

# wrk's summary counts non-2xx answers: a spent or missing link shows there
run() {
    local name=$1 url=$2 out
    shift 2
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" \
        "$url")
    printf '%s\n' "$out" > "$RESULTS/$name.wrk.txt"
    if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
        die "$name: $(grep 'Non-2xx' <<<"$out")"
    fi
    awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}

floor=$(run redeem-return200 "$BASE/bench/return200")
export TH_BENCH_REDEEM_PREFIX=$prefix TH_BENCH_REDEEM_THREADS=$THREADS
redeem=$(run redeem "$BASE/api/v1/invites/redeem" -s "$BENCH/redeem.lua")
requests=$(awk '/requests in/ { print $1 }' "$RESULTS/redeem.wrk.txt")
ratio=$(awk -v a="$redeem" -v b="$floor" 'BEGIN { printf "%.3f", a / b }')

# every answered request spent one link, and no link twice
used=$(psql -X -tA -d "$PG_CONN" -v session="$session" <<'SQL'
SELECT count(*) FILTER (WHERE used_at IS NOT NULL) || ' '
       || count(*) FILTER (WHERE redeem_count > 1)
FROM invites WHERE session_id = :'session';
SQL
)
read -r spent twice <<<"$used"
[ "$twice" = 0 ] || die "$twice links were redeemed more than once"
[ "$spent" -ge "$requests" ] \
    || die "$requests answers but only $spent links spent"
[ "$spent" -lt $((LINKS / 2)) ] \
    || die "$spent of $LINKS links spent: raise BENCH_REDEEM_LINKS"

# pgbench takes the second half of the links, one each, from a sequence
seq=bench_redeem_seq
psql -X -q -v ON_ERROR_STOP=1 -d "$PG_CONN" -v n=$((LINKS / 2 + 1)) \
    >/dev/null <<SQL
SET client_min_messages = warning;
DROP SEQUENCE IF EXISTS $seq;
CREATE SEQUENCE $seq START :n;
GRANT USAGE ON SEQUENCE $seq TO telehealth;
SQL
script=$(mktemp)
trap 'rm -f "$script"' EXIT
printf "SELECT status FROM th_invite_redeem(encode(sha256(convert_to('%s' || nextval('%s'), 'UTF8')), 'hex'), '127.0.0.1');\n" \
    "$prefix" "$seq" > "$script"
pg=$(pgbench -n -M extended -c "$CONNECTIONS" -j "$THREADS" -T "$seconds" \
    -f "$script" -h 127.0.0.1 -p "${TH_PG_PORT:-55432}" -U telehealth \
    telehealth 2>&1) || die "pgbench failed: $pg"
printf '%s\n' "$pg" > "$RESULTS/redeem.pgbench.txt"
tps=$(awk '/^tps = / { print $3; exit }' <<<"$pg")
last=$(psql -X -tA -d "$PG_CONN" -c "SELECT last_value FROM $seq; DROP SEQUENCE $seq")
[ "$(head -n 1 <<<"$last")" -lt "$LINKS" ] \
    || die "pgbench ran out of links: raise BENCH_REDEEM_LINKS"
pgratio=$(awk -v a="$redeem" -v b="$tps" 'BEGIN { printf "%.3f", a / b }')

{
    echo "date:             $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:           $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "wrk:              -t$THREADS -c$CONNECTIONS -d$DURATION"
    echo "return200:        $floor requests/s"
    echo "redeem:           $redeem requests/s (a fresh link each, $spent spent)"
    echo "redeem/return200: $ratio"
    echo "pgbench:          $tps transactions/s (th_invite_redeem() alone, -c$CONNECTIONS)"
    echo "redeem/pgbench:   $pgratio"
} | tee "$RESULTS/redeem.txt"

#!/bin/bash
# Throughput of an authenticated API call against nginx's own floor.
#
# Runs wrk with the same threads, connections and duration against
#   GET /bench/return200   a location that only returns 200 (the floor)
#   GET /api/v1/me         token check + the caller's record
# and prints requests/s of each and the ratio me/return200.  Results also
# go to bench/results/latest.txt.  Expects the local stack to run
# ("make bench" starts it).  Only 127.0.0.1 is ever a target.
#
#   bench/run.sh
#   BENCH_THREADS=2 BENCH_CONNECTIONS=32 BENCH_DURATION=10s bench/run.sh

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
RESULTS=${BENCH_RESULTS:-$BENCH/results}
BASE=http://127.0.0.1:${TH_NGINX_PORT:-58080}
PG_CONN="host=127.0.0.1 port=${TH_PG_PORT:-55432} user=postgres dbname=telehealth"
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-2}
EMAIL=bench@bench.test
PASSWORD=${TH_BENCH_PASSWORD:-bench-password-not-secret}

die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk not installed (make deps)"
curl -fsS -m 5 "$BASE/bench/return200" >/dev/null \
    || die "nginx does not answer on $BASE (scripts/stack.sh start)"

# The benchmark user: the first admin of an organisation of its own,
# independent of the demo data, made as operators make one
# (scripts/telehealth-admin).  Created once; its password is set again on
# every run so the password above always works.
admin() {
    printf '%s\n' "$PASSWORD" \
        | "$ROOT/scripts/telehealth-admin" -d "$PG_CONN" --password-stdin "$@"
}
if ! out=$(admin create-org Benchmark "$EMAIL" 'Bench Mark' 2>&1); then
    grep -q 'already in use' <<<"$out" || die "telehealth-admin: $out"
    admin set-password "$EMAIL" >/dev/null \
        || die "telehealth-admin set-password failed"
fi

token=$(curl -fsS -m 10 "$BASE/api/v1/auth/login" \
    -H 'Content-Type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" \
    | jq -r .access_token) || die "login of the benchmark user failed"
[ -n "$token" ] && [ "$token" != null ] || die "no access token"

status=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$BASE/api/v1/me" \
    -H "Authorization: Bearer $token")
[ "$status" = 200 ] || die "GET /api/v1/me answered $status"

# wrk's own summary counts non-2xx answers; a run with any is not a result.
run() {
    local name=$1 url=$2 out
    shift 2
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" \
        "$url")
    printf '%s\n' "$out" >> "$RESULTS/$name.wrk.txt"
    if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
        die "$name: $(grep 'Non-2xx' <<<"$out")"
    fi
    awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}

mkdir -p "$RESULTS"
export TH_BENCH_TOKEN=$token
# in turns, ROUNDS times, the order swapped every round (a shared machine)
: > "$RESULTS/return200.wrk.txt"
: > "$RESULTS/me.wrk.txt"
floors=() mes=()
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then
        floors+=("$(run return200 "$BASE/bench/return200")")
        mes+=("$(run me "$BASE/api/v1/me" -s "$BENCH/me.lua")")
    else
        mes+=("$(run me "$BASE/api/v1/me" -s "$BENCH/me.lua")")
        floors+=("$(run return200 "$BASE/bench/return200")")
    fi
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
floor=$(mean "${floors[@]}")
me=$(mean "${mes[@]}")
ratio=$(awk -v a="$me" -v b="$floor" 'BEGIN { printf "%.3f", a / b }')

{
    echo "date:          $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:        $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "machine:       $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wrk:           -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds"
    echo "return200:     $floor requests/s (rounds: ${floors[*]})"
    echo "me:            $me requests/s (rounds: ${mes[*]})"
    echo "me/return200:  $ratio"
} | tee "$RESULTS/latest.txt"

# A database-backed list endpoint against pgbench running its statement
# (bench/list.sh).  BENCH_LIST=0 skips.
if [ "${BENCH_LIST:-1}" != 0 ]; then
    echo
    "$BENCH/list.sh"
fi

# Invite redeem, a fresh link per request, against return 200
# (bench/redeem.sh).  BENCH_REDEEM=0 skips.
if [ "${BENCH_REDEEM:-1}" != 0 ]; then
    echo
    "$BENCH/redeem.sh"
fi

# Chat attachments: upload and download of a 5 MB file against a static
# file of the same size (bench/files.sh).  BENCH_FILES=0 skips.
if [ "${BENCH_FILES:-1}" != 0 ]; then
    echo
    "$BENCH/files.sh"
fi

# Console event streams: nginx's memory and CPU with 1,000 open and one
# event fanned out to all of them (bench/sse.sh).  BENCH_SSE=0 skips.
if [ "${BENCH_SSE:-1}" != 0 ]; then
    echo
    "$BENCH/sse.sh"
fi

# Media: our plugin against the stock VideoRoom in one Janus, in the media
# namespace with a stack of its own (bench/media.sh).  BENCH_MEDIA=0 skips.
if [ "${BENCH_MEDIA:-1}" != 0 ]; then
    echo
    "$BENCH/media.sh"
fi

# A group of 60 (1 moderator and 8 participants publishing camera-rate
# media, 51 receiving every stream), ours against VideoRoom, in the media
# namespace with a stack of its own (bench/group.sh).  BENCH_GROUP=0 skips.
if [ "${BENCH_GROUP:-1}" != 0 ]; then
    echo
    "$BENCH/group.sh"
fi

# Every ratio of this run in one place ($RESULTS/summary.txt; bench/RESULTS.md
# keeps the last full run's)
{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    ran=latest
    [ "${BENCH_LIST:-1}" = 0 ] || ran="$ran list"
    [ "${BENCH_REDEEM:-1}" = 0 ] || ran="$ran redeem"
    [ "${BENCH_SSE:-1}" = 0 ] || ran="$ran sse"
    [ "${BENCH_MEDIA:-1}" = 0 ] || ran="$ran media"
    [ "${BENCH_GROUP:-1}" = 0 ] || ran="$ran group"
    for f in $ran; do
        [ -f "$RESULTS/$f.txt" ] || continue
        grep -E '/|ratio|^group ' "$RESULTS/$f.txt" \
            | grep -vE '^(wrk|pgbench|date|commit|machine|group):|^  (plugin|telehealth|videoroom) ' \
            | sed "s/^ */$f: /"
    done
} > "$RESULTS/summary.txt"
echo
cat "$RESULTS/summary.txt"

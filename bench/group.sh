#!/bin/bash
# Group benchmark: a `group` room of 1 moderator and 8 participants
# publishing camera-rate video and audio and 51 receivers of every stream,
# in janus.plugin.telehealth and the same topology in the stock VideoRoom
# (bench/group.mjs says what is measured and how).  Runs in the media
# namespace with a stack of its own (scripts/media-tests.sh run; folder
# run/bench-group, TH_BENCH_GROUP_RUN), prints the figures and keeps them
# in bench/results/group.txt and group.json.
#
#   bench/group.sh
#   BENCH_GROUP_PUBLISHERS=9 BENCH_GROUP_RECEIVERS=51 \
#       BENCH_GROUP_WINDOW_MS=10000 BENCH_GROUP_ROUNDS=1 bench/group.sh
#
# Bounded: fixed warm-up and window, and the whole run is stopped after
# BENCH_GROUP_TIMEOUT seconds (1800).

set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

[ -f build/libjanus_telehealth.so ] && [ -f build/ngx_http_telehealth_module.so ] \
    || die "the plugin and the module are not built (make)"

results=${BENCH_RESULTS:-$ROOT/bench/results}
mkdir -p "$results"
out=$results/group.txt
json=$results/group.json
rm -f "$json"

TH_MEDIA_STACK=full TH_MEDIA_RUN=${TH_BENCH_GROUP_RUN:-$ROOT/run/bench-group} \
    timeout --kill-after=15 "${BENCH_GROUP_TIMEOUT:-1800}" \
    scripts/media-tests.sh run node bench/group.mjs \
    --publishers "${BENCH_GROUP_PUBLISHERS:-9}" \
    --receivers "${BENCH_GROUP_RECEIVERS:-51}" \
    --per-process "${BENCH_GROUP_PER_PROCESS:-10}" \
    --warmup-ms "${BENCH_GROUP_WARMUP_MS:-5000}" \
    --window-ms "${BENCH_GROUP_WINDOW_MS:-10000}" \
    --rounds "${BENCH_GROUP_ROUNDS:-1}" \
    --json "$json" > "$out.tmp"
status=$?
[ "$status" -eq 0 ] && [ -s "$json" ] || { rm -f "$out.tmp"; die "the group benchmark failed ($status)"; }
{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    sed -n '/^group:/,$p' "$out.tmp"
} > "$out"
rm -f "$out.tmp"
cat "$out"

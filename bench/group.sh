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

. bench/namespace.sh

bench_in_namespace group "${TH_BENCH_GROUP_RUN:-$ROOT/run/bench-group}" \
    "${BENCH_GROUP_TIMEOUT:-1800}" '^group:' bench/group.mjs \
    --publishers "${BENCH_GROUP_PUBLISHERS:-9}" \
    --receivers "${BENCH_GROUP_RECEIVERS:-51}" \
    --per-process "${BENCH_GROUP_PER_PROCESS:-10}" \
    --warmup-ms "${BENCH_GROUP_WARMUP_MS:-5000}" \
    --window-ms "${BENCH_GROUP_WINDOW_MS:-10000}" \
    --rounds "${BENCH_GROUP_ROUNDS:-1}"

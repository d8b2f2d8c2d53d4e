#!/bin/bash
# Media benchmark: janus.plugin.telehealth against the stock VideoRoom in one
# Janus process (bench/media.mjs says what is measured and how).  Runs in
# the media namespace with a stack of its own (scripts/media-tests.sh run;
# folder run/bench-media, TH_BENCH_MEDIA_RUN), prints the figures and the
# ratios, and keeps them in bench/results/media.txt and media.json.
#
#   bench/media.sh
#   BENCH_MEDIA_SUBSCRIBERS=50 BENCH_MEDIA_WINDOW_MS=10000 \
#       BENCH_MEDIA_ROUNDS=2 BENCH_MEDIA_JOINS=500 bench/media.sh
#
# Bounded: each fan-out is measured over a fixed window after a fixed
# warm-up, the joins are a fixed number, and the whole run is stopped after
# BENCH_MEDIA_TIMEOUT seconds (900).

set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

. bench/namespace.sh

bench_in_namespace media "${TH_BENCH_MEDIA_RUN:-$ROOT/run/bench-media}" \
    "${BENCH_MEDIA_TIMEOUT:-900}" '^fan-out:' bench/media.mjs \
    --subscribers "${BENCH_MEDIA_SUBSCRIBERS:-50}" \
    --warmup-ms "${BENCH_MEDIA_WARMUP_MS:-3000}" \
    --window-ms "${BENCH_MEDIA_WINDOW_MS:-10000}" \
    --rounds "${BENCH_MEDIA_ROUNDS:-2}" \
    --joins "${BENCH_MEDIA_JOINS:-500}" \
    --video-packets "${BENCH_MEDIA_VIDEO_PACKETS:-5}" \
    --per-process "${BENCH_MEDIA_PER_PROCESS:-25}"

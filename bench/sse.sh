#!/bin/bash
# nginx with many open console event streams and one event fanned out to
# all of them (bench/sse.mjs says what is measured and how).  Against the
# local stack; bench/run.sh calls it, it can also run alone with
# TH_BENCH_TOKEN set (the benchmark user's access token).  Prints the
# figures and keeps them in bench/results/sse.txt.
#
#   BENCH_SSE_STREAMS      streams (1000)
#   BENCH_SSE_PER_PERSON   streams of one person (8, the default cap of
#                          telehealth_console_streams): the people are
#                          BENCH_SSE_STREAMS / BENCH_SSE_PER_PERSON
#   BENCH_SSE_WINDOW_MS    the idle window (10000)
#   BENCH_SSE_EVENTS       events fanned out, one after another (3)
#
# The nginx workers are replaced (SIGHUP to the master) before each phase.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}

die() { printf 'bench/sse: error: %s\n' "$*" >&2; exit 1; }

[ -n "${TH_BENCH_TOKEN:-}" ] || die "TH_BENCH_TOKEN is not set (bench/run.sh)"
streams=${BENCH_SSE_STREAMS:-1000}

# one process holds every stream and the keep-alive baseline
want=$((streams + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
    ulimit -n "$want" 2>/dev/null \
        || die "ulimit -n $(ulimit -n) is below $want and cannot be raised"
fi

mkdir -p "$RESULTS"
node "$ROOT/bench/sse.mjs" > "$RESULTS/sse.txt.tmp" \
    || { cat "$RESULTS/sse.txt.tmp"; rm -f "$RESULTS/sse.txt.tmp"; die "the benchmark failed"; }
{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    cat "$RESULTS/sse.txt.tmp"
} > "$RESULTS/sse.txt"
rm -f "$RESULTS/sse.txt.tmp"
sed -n '3,$p' "$RESULTS/sse.txt"

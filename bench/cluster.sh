#!/bin/bash
# Benchmarks of several Janus nodes against the local stack (its nginx,
# PostgreSQL and Redis; the extra Janus nodes are started by the script on
# TH_JANUS2_PORT, TH_JANUS3_PORT ...):
#
#   bench/cluster.sh placement     20 rooms of 4 over two Janus nodes: the
#                                  rooms per node and the spread
#   bench/cluster.sh slow-redis    Redis delayed 200 ms per command for one
#                                  node: a join that needs Redis and, in
#                                  another room at the same time, a mute, a
#                                  chair's mute and a leave
#
# Figures are printed (and kept in bench/results/<name>.txt); nothing is
# asserted on time.  Uses the integration tests' helpers.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

name=${1:-}
case "$name" in
placement|slow-redis) ;;
*) echo "usage: bench/cluster.sh placement|slow-redis" >&2; exit 2 ;;
esac

scripts/stack.sh start >/dev/null

export TH_ROOT=$ROOT
export TH_BASE=http://127.0.0.1:${TH_NGINX_PORT:-58080}
export TH_JANUS_HTTP=http://127.0.0.1:${TH_JANUS_HTTP_PORT:-58088}/janus
export TH_PG=postgres://postgres@127.0.0.1:${TH_PG_PORT:-55432}/telehealth
export TH_REDIS_PORT=${TH_REDIS_PORT:-56379}
export TH_RUN=${TH_RUN:-$ROOT/run}
export TH_KEYS=$TH_RUN/keys
export TH_STACK=$ROOT/scripts/stack.sh
export TH_TEST_PASSWORD=${TH_TEST_PASSWORD:-correct-horse-battery}
TH_TEST_PASSWORD_HASH=$(printf '%s' "$TH_TEST_PASSWORD" \
    | argon2 "$(openssl rand -hex 16)" -id -t 2 -m 16 -p 1 -e)
export TH_TEST_PASSWORD_HASH

mkdir -p bench/results
timeout --kill-after=10 "${BENCH_CLUSTER_TIMEOUT:-600}" \
    node "bench/$name.mjs" | tee "bench/results/$name.txt"

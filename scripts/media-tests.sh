#!/bin/bash
# Runs the media tests against a stack of their own inside a private network
# namespace (scripts/netns.sh), prints their TAP, the tests that skipped
# ("skipped: name # SKIP reason") and one summary line last:
# "N passed, N failed, N skipped (harness: N passed)".  The harness
# self-checks (harness.test.mjs, rtp.test.mjs: Janus' stock plugins and the
# suite's own packet generator) run first and apart; "N passed" counts the
# product's tests, "harness: N passed" the self-checks, and "N failed" and
# "N skipped" both (so a failing self-check fails the run).
#
#   media-tests.sh                  every tests/media/*.test.mjs
#   media-tests.sh FILES...         those test files
#   media-tests.sh run CMD [ARGS]   CMD (a benchmark, a shell) with the media
#                                   stack up and its environment exported
#
# The stack lives in run/media (TH_RUN), never the developer's ./run; it may
# use the same ports, the namespace has a loopback of its own.  TH_MEDIA_RUN
# names another folder, so that two runs at once do not share pid files.  Which stack,
# by TH_MEDIA_STACK:
#   full    scripts/stack.sh start: PostgreSQL, Redis, Janus with our plugin
#           and the stock VideoRoom and EchoTest, nginx
#   janus   Janus alone with the stock VideoRoom and EchoTest: enough for the
#           harness self-tests while our plugin and module are not built
#   auto    (default) full when both are built, janus otherwise
#
# TH_VALGRIND=1 runs Janus under valgrind's memcheck (logs in
# $TH_RUN/valgrind) and adds scripts/valgrind-report.sh's verdict on our
# plugin's code to the failures.
#
# The tests see TH_JANUS_HTTP, TH_JANUS_WS, TH_BASE, TH_PG, TH_REDIS_PORT,
# TH_KEYS (as in scripts/test.sh), TH_MEDIA_STACK (full or janus) and
# TH_NETNS.  The TAP is also kept in build/test-logs/media.tap (the
# self-checks' in media-harness.tap).  Each node run is bounded by
# TH_MEDIA_TIMEOUT seconds (900).

set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

log() { printf 'media: %s\n' "$*" >&2; }

# Outside the namespace (where the registry is reachable): install the test
# tools if needed, then run again inside.
if [ -z "${TH_NETNS:-}" ]; then
    if [ ! -d tests/media/node_modules ] \
        || [ tests/media/package.json -nt tests/media/node_modules ] \
        || [ tests/media/package-lock.json -nt tests/media/node_modules ]
    then
        log "installing the media test tools (npm)"
        (cd tests/media && npm ci --no-audit --no-fund --loglevel=error \
            && touch node_modules) || exit 1
    fi
    TH_MEDIA_T0=$(date +%s%N)
    export TH_MEDIA_T0
    exec "$ROOT/scripts/netns.sh" "$ROOT/scripts/media-tests.sh" "$@"
fi

t_inside=$(date +%s%N)
export TH_RUN=${TH_MEDIA_RUN:-$ROOT/run/media}

# Two runs on one folder would share pid files and a PostgreSQL cluster, and
# one's "stop" would end the other's stack: the second waits (bounded) for
# the first.  The stack's processes do not inherit the lock (9>&-).
mkdir -p "$(dirname "$TH_RUN")"
exec 9>"$TH_RUN.lock"
if ! flock -n 9; then
    log "waiting for another run on $TH_RUN (TH_MEDIA_RUN names another folder)"
    if ! flock -w "${TH_MEDIA_LOCK_WAIT:-900}" 9; then
        log "gave up waiting for $TH_RUN.lock"
        echo
        echo "0 passed, 1 failed, 0 skipped (harness: 0 passed)"
        exit 1
    fi
fi
t_locked=$(date +%s%N)

JANUS_HTTP_PORT=${TH_JANUS_HTTP_PORT:-58088}
JANUS_WS_PORT=${TH_JANUS_WS_PORT:-58188}
JANUS_LIB=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null \
    || echo x86_64-linux-gnu)/janus

mode=${TH_MEDIA_STACK:-auto}
if [ "$mode" = auto ]; then
    if [ -f build/libjanus_telehealth.so ] \
        && [ -f build/ngx_http_telehealth_module.so ]
    then
        mode=full
    else
        mode=janus
        log "our plugin or module is not built: Janus alone with the stock plugins"
    fi
fi
export TH_MEDIA_STACK=$mode

if [ -n "${TH_VALGRIND:-}" ]; then
    VG_DIR=$TH_RUN/valgrind
    mkdir -p "$VG_DIR" && rm -f "$VG_DIR"/janus.*.log
    export TH_JANUS_WRAPPER="valgrind --tool=memcheck --leak-check=full \
--show-leak-kinds=definite,indirect,possible --num-callers=40 \
--log-file=$VG_DIR/janus.%p.log"
fi

# Janus alone, configured from the stack's templates, with the stock
# EchoTest and VideoRoom.  Started and stopped by pid, like stack.sh does.
start_janus_alone() {
    local dir=$TH_RUN/janus t i
    mkdir -p "$dir/etc" "$dir/plugins" "$dir/transports" "$dir/empty"
    rm -f "$dir/plugins/"*.so
    ln -sf "$JANUS_LIB/plugins/libjanus_echotest.so" "$dir/plugins/"
    ln -sf "$JANUS_LIB/plugins/libjanus_videoroom.so" "$dir/plugins/"
    ln -sf "$JANUS_LIB/transports/libjanus_http.so" "$dir/transports/"
    ln -sf "$JANUS_LIB/transports/libjanus_websockets.so" "$dir/transports/"
    for t in janus.jcfg janus.transport.http.jcfg \
        janus.transport.websockets.jcfg
    do
        sed -e "s|@RUN@|$TH_RUN|g" \
            -e "s|@JANUS_HTTP_PORT@|$JANUS_HTTP_PORT|g" \
            -e "s|@JANUS_WS_PORT@|$JANUS_WS_PORT|g" \
            -e "s|@ICE_ENFORCE@|${TH_ICE_ENFORCE:-}|g" \
            "conf/$t.in" > "$dir/etc/$t"
    done
    ${TH_JANUS_WRAPPER:-} janus -F "$dir/etc" -o -N -L "$dir/janus.log" \
        >"$dir/janus.out" 2>&1 9>&- &
    echo $! > "$dir/janus.pid"
    for i in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$JANUS_HTTP_PORT/janus/info" \
            >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "Janus did not come up (see $dir)"
    return 1
}

stop_janus_alone() {
    local pidfile=$TH_RUN/janus/janus.pid pid i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

start_stack() {
    mkdir -p "$TH_RUN"
    if [ "$mode" = full ]; then
        TH_WITH_VIDEOROOM=1 TH_WITH_ECHOTEST=1 scripts/stack.sh start 9>&- \
            && redis-cli -p "${TH_REDIS_PORT:-56379}" FLUSHALL >/dev/null
    else
        start_janus_alone
    fi
}

stop_stack() {
    if [ "$mode" = full ]; then
        scripts/stack.sh stop >&2
    else
        stop_janus_alone
    fi
}

trap stop_stack EXIT

if ! start_stack; then
    log "the media stack did not start"
    echo
    echo "0 passed, 1 failed, 0 skipped (harness: 0 passed)"
    exit 1
fi
t1=$(date +%s%N)
log "namespace ready in $(( (t_inside - ${TH_MEDIA_T0:-$t_inside}) / 1000000 )) ms, $mode stack in $(( (t1 - t_locked) / 1000000 )) ms"

export TH_ROOT=$ROOT
export TH_BASE=http://127.0.0.1:${TH_NGINX_PORT:-58080}
export TH_JANUS_HTTP=http://127.0.0.1:$JANUS_HTTP_PORT/janus
export TH_JANUS_WS=ws://127.0.0.1:$JANUS_WS_PORT
export TH_PG=postgres://postgres@127.0.0.1:${TH_PG_PORT:-55432}/telehealth
export TH_REDIS_PORT=${TH_REDIS_PORT:-56379}
export TH_KEYS=$TH_RUN/keys
export TH_STACK=$ROOT/scripts/stack.sh

if [ "${1:-}" = run ]; then
    shift
    "$@"
    exit $?
fi

if [ $# -gt 0 ]; then
    files=("$@")
else
    files=(tests/media/*.test.mjs)
fi

# The harness self-checks exercise Janus' stock plugins and the suite's own
# packet generator, not the product: they run first, on their own, and are
# counted apart (a failure of theirs still fails the run).
harness=()
product=()
for f in "${files[@]}"; do
    case "$(basename "$f")" in
    harness.test.mjs|rtp.test.mjs) harness+=("$f") ;;
    *) product+=("$f") ;;
    esac
done

. scripts/tap.sh
mkdir -p build/test-logs
passed=0 failed=0 skipped=0 harness_passed=0

# run_node TAP FILES...: one run of node's test runner, its TAP shown and
# kept in TAP, its counts in tap_passed, tap_failed and tap_skipped.  Each
# test has its own timeout; this bounds the whole run as well (a process
# that does not exit after its tests, say).
run_node() {
    local tap=$1
    shift
    timeout --kill-after=10 "${TH_MEDIA_TIMEOUT:-900}" \
        node --test --test-reporter=tap --test-concurrency=1 "$@" \
        2>&1 | tee "$tap"
    tap_count "$tap" || log "the test runner printed no result (timed out?)"
}

rm -f build/test-logs/media-harness.tap build/test-logs/media.tap
if [ ${#harness[@]} -gt 0 ]; then
    run_node build/test-logs/media-harness.tap "${harness[@]}"
    harness_passed=$tap_passed
    failed=$((failed + tap_failed))
    skipped=$((skipped + tap_skipped))
fi
if [ ${#product[@]} -gt 0 ]; then
    run_node build/test-logs/media.tap "${product[@]}"
    passed=$tap_passed
    failed=$((failed + tap_failed))
    skipped=$((skipped + tap_skipped))
fi
# Stop now, so that the summary is the last line.
stop_stack
trap - EXIT
if [ -n "${TH_VALGRIND:-}" ]; then
    scripts/valgrind-report.sh "$VG_DIR"/janus.*.log || failed=$((failed + 1))
fi
echo
for f in build/test-logs/media-harness.tap build/test-logs/media.tap; do
    [ -f "$f" ] && tap_skips "$f" | sed 's/^/skipped: /'
done
echo "$passed passed, $failed failed, $skipped skipped (harness: $harness_passed passed)"
[ "$failed" -eq 0 ]

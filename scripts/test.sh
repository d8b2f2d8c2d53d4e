#!/bin/bash
# Runs every suite and prints one summary line last:
# "N passed, N failed, N skipped", with " (harness: N passed)" when the media
# suite ran (its self-checks of the harness, counted apart from the
# product's tests).  Skipped tests are counted and listed; a suite whose
# tests skipped for any other reason than one marked "on purpose:" did not
# run in full, which fails the run (docs/operations.md, "Tests").
#
#   test.sh            unit tests, the OpenAPI lint, SQL tests, the fuzz
#                      targets, then the stack and the integration, media
#                      and browser tests
#   test.sh unit       unit tests only
#   test.sh lint       redocly lint of docs/openapi.yaml and the C format
#                      check only
#   test.sh sql [files...]   SQL tests only (tests/sql, pgTAP)
#   test.sh integration [files...]   integration tests only (TH_VALGRIND=1:
#                                    Janus under valgrind)
#   test.sh media [files...]         media tests only (network namespace)
#   test.sh e2e [files...]           browser tests only (network namespace)
#   test.sh asan [files...]          unit and API suites, sanitized module
#   test.sh deb                      make deb, lintian, and the packages
#                                    installed (dpkg -i, as root or through
#                                    sudo) into the stock nginx and Janus
#   test.sh bench                    every benchmark once, tiny (bench/)
#   test.sh fuzz [targets...]        libFuzzer targets, FUZZ_TIME (30) s each

set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

what=${1:-all}
[ $# -gt 0 ] && shift

passed=0
failed=0
skipped=0
harness=
log=$ROOT/build/test-logs
mkdir -p "$log"
. scripts/tap.sh

# check_skips SUITE FILE [listed]: lists the tests the TAP in FILE reports
# as skipped (unless the suite listed them itself: "listed"); unless each
# one's reason starts with "on purpose:", the suite did not run in full
# (the media suite without our plugin, the browser suite outside its
# namespace, ...): one more failure.
check_skips() {
    local suite=$1 file=$2 listed=${3:-} list n other
    list=$(tap_skips "$file")
    [ -n "$list" ] || return 0
    n=$(printf '%s\n' "$list" | grep -c .)
    other=$(printf '%s\n' "$list" | grep -viE '# (SKIP|TODO) on purpose:' | grep -c .)
    if [ -z "$listed" ]; then
        echo "test: $suite: $n skipped:"
        printf '%s\n' "$list" | sed 's/^/  /'
    fi
    if [ "$other" -gt 0 ]; then
        echo "not ok - $suite: $other tests skipped without being marked \"on purpose:\"; the suite did not run in full"
        failed=$((failed + 1))
    fi
}

run_unit() {
    local t out p f s
    for t in "${TH_BUILD:-build}"/tests/*; do
        [ -x "$t" ] || continue
        out=$log/$(basename "$t").log
        "$t" >"$out" 2>&1
        cat "$out"
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
        s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
        passed=$((passed + ${p:-0}))
        failed=$((failed + ${f:-0}))
        skipped=$((skipped + ${s:-0}))
        # cmocka's skip() gives no reason: it is never on purpose
        if [ "${s:-0}" -gt 0 ]; then
            echo "not ok - $t: ${s} tests skipped"
            failed=$((failed + 1))
        fi
        if [ -z "$p" ] && [ -z "$f" ]; then
            echo "test: $t crashed or printed no result"
            failed=$((failed + 1))
        fi
    done
}

# docs/openapi.yaml through `redocly lint` (npm @redocly/cli, a test tool of
# tests/; its rules in redocly.yaml), one check that passes or fails.  It
# runs offline: no telemetry, no update check.
run_lint() {
    local out=$log/redocly.log
    local redocly=tests/node_modules/.bin/redocly
    if [ ! -x "$redocly" ]; then
        echo "not ok - redocly lint: $redocly is missing (scripts/deps.sh installs it)"
        failed=$((failed + 1))
        return
    fi
    if REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
        timeout 300 "$redocly" lint --format=stylish docs/openapi.yaml \
        >"$out" 2>&1
    then
        echo "ok - redocly lint docs/openapi.yaml"
        passed=$((passed + 1))
    else
        # the problems, without the banner about Node.js versions
        grep -v '[║╔╚]' "$out"
        echo "not ok - redocly lint docs/openapi.yaml"
        failed=$((failed + 1))
    fi
}

# Every C file of the tree against its .clang-format (the root's: nginx's
# style; janus-plugin/'s: Janus'), one check: `make format` fixes what it
# lists.  clang-format 22 exactly, since each version formats a little
# differently.
run_format() {
    local fmt=clang-format-22 bad=
    local f
    if ! command -v $fmt >/dev/null 2>&1; then
        echo "not ok - C format: $fmt is missing (scripts/deps.sh installs it)"
        failed=$((failed + 1))
        return
    fi
    while IFS= read -r f; do
        $fmt --dry-run --Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
    done < <(git ls-files -- '*.c' '*.h')
    if [ -z "$bad" ]; then
        echo "ok - C format (clang-format-22)"
        passed=$((passed + 1))
    else
        echo "not ok - C format: run make format; not formatted:$bad"
        failed=$((failed + 1))
    fi
}

# The SQL tests (tests/sql/*.sql, pgTAP) against a scratch database of the
# stack's PostgreSQL that scripts/migrate.sh builds from nothing, twice
# (the second run must change nothing).  Each file prints TAP; its "ok" and
# "not ok" lines count, and a file that stops on an error or runs another
# number of tests than it planned fails once more.
run_sql() {
    local db=telehealth_sql_test out p f s t rc names files
    local pg="psql -X -q -h 127.0.0.1 -p ${TH_PG_PORT:-55432} -U postgres"
    local conn="host=127.0.0.1 port=${TH_PG_PORT:-55432} user=postgres dbname=$db"
    if ! scripts/stack.sh start-postgres >"$log/sql-postgres.log" 2>&1; then
        cat "$log/sql-postgres.log"
        echo "test: PostgreSQL did not start"
        failed=$((failed + 1))
        return
    fi
    PGOPTIONS="-c client_min_messages=warning" $pg -d postgres \
        -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    for t in 1 2; do
        if scripts/migrate.sh "$conn" telehealth >"$log/sql-migrate.log" 2>&1
        then
            echo "ok - migrate.sh run $t on a new database"
            passed=$((passed + 1))
        else
            cat "$log/sql-migrate.log"
            echo "not ok - migrate.sh run $t on a new database"
            failed=$((failed + 1))
            return
        fi
    done
    $pg -d "$db" -c "CREATE EXTENSION pgtap"
    # the functions sql/functions/ defines, one name per definition
    names=$(sed -n 's/^CREATE OR REPLACE FUNCTION \([A-Za-z0-9_]*\).*/\1/p' \
        sql/functions/*.sql | paste -s -d, -)

    if [ $# -gt 0 ]; then
        files=("$@")
    else
        files=(tests/sql/*.sql)
    fi
    for t in "${files[@]}"; do
        out=$log/sql-$(basename "$t" .sql).tap
        echo "# $t"
        $pg -d "$db" -tA -v ON_ERROR_STOP=1 -v functions="$names" -f "$t" \
            >"$out" 2>&1
        rc=$?
        grep -v '^$' "$out"
        s=$(tap_skips "$out" | grep -c .)
        p=$(( $(grep -c '^ok ' "$out") - s ))
        f=$(grep -c '^not ok ' "$out")
        if [ "$rc" -ne 0 ] || grep -q '^# Looks like you planned' "$out"; then
            echo "not ok - $t did not run to its end as planned"
            f=$((f + 1))
        fi
        passed=$((passed + p))
        failed=$((failed + f))
        skipped=$((skipped + s))
        check_skips "$t" "$out"
    done
    $pg -d postgres -c "DROP DATABASE $db"
}

run_integration() {
    local out files vg=
    # TH_VALGRIND=1: Janus runs under memcheck for the suite, and any error
    # or leak record in our code fails the run (scripts/valgrind-report.sh).
    if [ -n "${TH_VALGRIND:-}" ]; then
        vg=${TH_RUN:-$ROOT/run}/valgrind
        mkdir -p "$vg" && rm -f "$vg"/janus.*.log
        export TH_JANUS_WRAPPER="valgrind --tool=memcheck --leak-check=full \
--show-leak-kinds=definite,indirect,possible --num-callers=40 \
--log-file=$vg/janus.%p.log"
    fi
    if ! scripts/stack.sh start; then
        echo "test: the stack did not start"
        failed=$((failed + 1))
        return
    fi
    redis-cli -p "${TH_REDIS_PORT:-56379}" FLUSHALL >/dev/null

    export TH_ROOT=$ROOT
    export TH_BASE=http://127.0.0.1:${TH_NGINX_PORT:-58080}
    export TH_JANUS_HTTP=http://127.0.0.1:${TH_JANUS_HTTP_PORT:-58088}/janus
    export TH_PG=postgres://postgres@127.0.0.1:${TH_PG_PORT:-55432}/telehealth
    export TH_REDIS_PORT=${TH_REDIS_PORT:-56379}
    # Ports that tests bind while the suite runs lie above the ephemeral
    # range (32768-60999), where no outgoing connection can hold them.
    export TH_SMS_PORT=${TH_SMS_PORT:-61990}
    export TH_SMTP_PORT=${TH_SMTP_PORT:-61991}
    export TH_WHATSAPP_PORT=${TH_WHATSAPP_PORT:-61992}
    export TH_RUN=${TH_RUN:-$ROOT/run}
    # One log per stack, so that runs on other stacks do not mix into it.
    out=$log/integration-$(basename "$TH_RUN").tap
    export TH_KEYS=$TH_RUN/keys
    export TH_STACK=$ROOT/scripts/stack.sh
    export TH_TEST_PASSWORD=${TH_TEST_PASSWORD:-correct-horse-battery}
    TH_TEST_PASSWORD_HASH=$(printf '%s' "$TH_TEST_PASSWORD" \
        | argon2 "$(openssl rand -hex 16)" -id -t 2 -m 16 -p 1 -e)
    export TH_TEST_PASSWORD_HASH

    if [ $# -gt 0 ]; then
        files=("$@")
    else
        files=(tests/integration/*.test.mjs)
    fi

    # Each test is bounded, and so is the whole run.
    timeout --kill-after=10 "${TH_INTEGRATION_TIMEOUT:-2400}" \
        node --test --test-reporter=tap --test-concurrency=1 \
        --test-timeout="${TH_TEST_TIMEOUT:-180000}" "${files[@]}" \
        2>&1 | tee "$out"
    tap_count "$out" \
        || echo "test: the integration runner printed no result (timed out?)"
    passed=$((passed + tap_passed))
    failed=$((failed + tap_failed))
    skipped=$((skipped + tap_skipped))
    check_skips integration "$out"
    if [ -n "$vg" ]; then
        scripts/stack.sh stop-janus
        scripts/valgrind-report.sh "$vg"/janus.*.log || failed=$((failed + 1))
    fi
}

# The media suite runs in a network namespace with a stack of its own and
# prints its own summary line; its counts join ours.
run_media() {
    suite_line media scripts/media-tests.sh "$@"
}

# suite_line NAME SCRIPT ARGS...: runs a suite that prints its own summary
# line, "N passed, N failed, N skipped" (and the media suite's
# "(harness: N passed)"); its counts join ours.  No such line is a failure.
suite_line() {
    local name=$1 out=$log/$1.out line p f s h
    shift
    "$@" 2>&1 | tee "$out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$out" \
        | tail -n 1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    h=$(echo "$line" | sed -n 's/.*(harness: \([0-9]*\) passed).*/\1/p')
    if [ -z "$line" ]; then
        echo "not ok - $name: the suite printed no summary line"
        f=1
    fi
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    skipped=$((skipped + ${s:-0}))
    [ -n "$h" ] && harness=$(( ${harness:-0} + h ))
    check_skips "$name" "$out" listed
}

# The unit and API suites against a module built with AddressSanitizer and
# UBSan (make asan): any report of theirs is a failure.
run_asan() {
    local reports
    rm -rf "${TH_RUN:?}/asan"
    run_unit
    run_integration "$@"
    scripts/stack.sh stop >/dev/null
    reports=$(ls "$TH_RUN"/asan/nginx* 2>/dev/null)
    if [ -n "$reports" ]; then
        echo "test: sanitizer reports:"
        cat $reports
        failed=$((failed + 1))
    else
        echo "test: no AddressSanitizer or UBSan report"
    fi
}

# The Debian packages: built (make deb), lintian with no error, installed
# into this machine's nginx and Janus with dpkg -i (root, or sudo as
# scripts/deps.sh does), the stock nginx configuration still valid with the
# module enabled, then tests/deb against an nginx and a Janus that use the
# packaged files (docs/operations.md, "Debian packages").
run_deb() {
    local sudo= debs out=$log/lintian.log
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    if make --no-print-directory deb >"$log/deb.log" 2>&1; then
        echo "ok - make deb"
        passed=$((passed + 1))
    else
        cat "$log/deb.log"
        echo "not ok - make deb"
        failed=$((failed + 1))
        return
    fi
    lintian --tag-display-limit 0 build/deb/*.changes >"$out" 2>&1
    if grep -q '^E:' "$out"; then
        cat "$out"
        echo "not ok - lintian: errors in the packages"
        failed=$((failed + 1))
    else
        grep '^W:' "$out"
        echo "ok - lintian: no error in the packages"
        passed=$((passed + 1))
    fi
    debs=$(ls build/deb/*.deb | grep -v -- -dbgsym_)
    # shellcheck disable=SC2086
    if $sudo dpkg -i $debs >"$log/dpkg.log" 2>&1; then
        echo "ok - dpkg -i the packages"
        passed=$((passed + 1))
    else
        cat "$log/dpkg.log"
        echo "not ok - dpkg -i the packages"
        failed=$((failed + 1))
        return
    fi
    if [ ! -f /etc/nginx/nginx.conf ] || $sudo nginx -t -q; then
        echo "ok - the stock nginx configuration loads the enabled module"
        passed=$((passed + 1))
    else
        echo "not ok - nginx -t with the module enabled"
        failed=$((failed + 1))
    fi
    run_integration tests/deb/*.test.mjs
}


# The libFuzzer targets (make fuzz-build), each for FUZZ_TIME seconds:
# a crash or sanitizer report fails its target.
run_fuzz() {
    FUZZ_TIME=${FUZZ_TIME:-30} suite_line fuzz scripts/fuzz.sh "$@"
}

# The browser suite: two chromium tabs against a stack in a namespace.
run_e2e() {
    suite_line e2e scripts/e2e-tests.sh "$@"
}

# Every benchmark once, with a tiny duration and a handful of peers, so
# that a schema or API change that breaks one fails here: each script must
# run to its end and print its figures (no timing is asserted).  The
# figures go to build/test-logs/bench, not bench/results.
run_bench() {
    local out=$log/bench.out line
    if ! scripts/stack.sh start >"$log/bench-stack.log" 2>&1; then
        cat "$log/bench-stack.log"
        echo "not ok - bench: the stack did not start"
        failed=$((failed + 1))
        return
    fi
    BENCH_RESULTS=$log/bench BENCH_DURATION=1s BENCH_THREADS=1 \
        BENCH_CONNECTIONS=4 BENCH_MEDIA_SUBSCRIBERS=3 \
        BENCH_MEDIA_WARMUP_MS=500 BENCH_MEDIA_WINDOW_MS=1000 \
        BENCH_MEDIA_ROUNDS=1 BENCH_MEDIA_JOINS=10 BENCH_MEDIA_TIMEOUT=300 \
        BENCH_GROUP_PUBLISHERS=3 BENCH_GROUP_RECEIVERS=3 \
        BENCH_GROUP_PER_PROCESS=2 BENCH_GROUP_WARMUP_MS=500 \
        BENCH_GROUP_WINDOW_MS=1000 BENCH_GROUP_TIMEOUT=300 \
        BENCH_SSE_STREAMS=20 BENCH_SSE_WINDOW_MS=1000 BENCH_SSE_EVENTS=1 \
        timeout --kill-after=10 "${TH_BENCH_TIMEOUT:-900}" bench/run.sh \
        2>&1 | tee "$out"
    for line in 'me/return200:' 'api/pgbench:' 'redeem/return200:' \
                'redeem/pgbench:' \
                'CPU per forwarded packet, telehealth / videoroom:' \
                'join latency, telehealth / videoroom:' \
                'group delivery min:' 'group CPU, telehealth / videoroom:' \
                'group memory per participant:' \
                'sse memory per stream:' 'sse fan-out:'
    do
        if grep -qF "$line" "$out"; then
            echo "ok - bench prints \"$line\""
            passed=$((passed + 1))
        else
            echo "not ok - bench prints \"$line\""
            failed=$((failed + 1))
        fi
    done
}

case "$what" in
unit)        run_unit ;;
lint)        run_lint; run_format ;;
sql)         run_sql "$@" ;;
integration) run_integration "$@" ;;
media)       run_media "$@" ;;
e2e)         run_e2e "$@" ;;
asan)        run_asan "$@" ;;
deb)         run_deb ;;
fuzz)        run_fuzz "$@" ;;
bench)       run_bench ;;
all)         run_unit; run_lint; run_format; run_sql; run_deb; run_fuzz
             run_integration; run_media; run_e2e; run_bench ;;
*)           echo "usage: test.sh [unit|lint|sql|integration|media|e2e|fuzz [files...]|deb|bench]"; exit 2 ;;
esac

echo
echo "$passed passed, $failed failed, $skipped skipped${harness:+ (harness: $harness passed)}"
[ "$failed" -eq 0 ]

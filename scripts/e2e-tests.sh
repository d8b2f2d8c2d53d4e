#!/bin/bash
# Browser tests of the call page (web/): Debian's chromium driven by
# playwright-core with fake camera and microphone, against the media stack
# in its private network namespace (scripts/media-tests.sh run), because
# Janus gathers no ICE candidates on loopback.  Prints the TAP of
# node --test, the tests that skipped ("skipped: name # SKIP reason") and
# one summary line last: "N passed, N failed, N skipped".
#
#   e2e-tests.sh                every tests/e2e/*.test.mjs
#   e2e-tests.sh FILES...       those test files
#
# The stack lives in run/e2e (TH_E2E_RUN), so a browser run and a media run
# do not wait for each other.  The TAP is kept in build/test-logs/e2e.tap.
# TH_CHROMIUM names another chromium binary (default /usr/bin/chromium).
# The whole run is bounded by TH_E2E_TIMEOUT seconds (600).

set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

log() { printf 'e2e: %s\n' "$*" >&2; }
summary() { echo "$1 passed, $2 failed, ${3:-0} skipped"; }

export TH_CHROMIUM=${TH_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$TH_CHROMIUM" ]; then
    log "$TH_CHROMIUM not found (apt-get install chromium, or make deps)"
    echo
    summary 0 1
    exit 1
fi

if [ ! -d tests/e2e/node_modules ] \
    || [ tests/e2e/package.json -nt tests/e2e/node_modules ] \
    || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]
then
    log "installing the browser test tools (npm)"
    if ! (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error \
        && touch node_modules)
    then
        echo
        summary 0 1
        exit 1
    fi
fi

if [ $# -gt 0 ]; then
    files=("$@")
else
    files=(tests/e2e/*.test.mjs)
fi

# The fixtures' password, hashed as the stack's logins are.
export TH_TEST_PASSWORD=${TH_TEST_PASSWORD:-correct-horse-battery}
TH_TEST_PASSWORD_HASH=$(printf '%s' "$TH_TEST_PASSWORD" \
    | argon2 "$(openssl rand -hex 16)" -id -t 2 -m 16 -p 1 -e)
export TH_TEST_PASSWORD_HASH

mkdir -p build/test-logs
out=build/test-logs/e2e.tap
TH_MEDIA_STACK=full TH_MEDIA_RUN=${TH_E2E_RUN:-$ROOT/run/e2e} \
    timeout --kill-after=15 "${TH_E2E_TIMEOUT:-600}" \
    scripts/media-tests.sh run \
    node --test --test-reporter=tap --test-concurrency=1 "${files[@]}" \
    2>&1 | tee "$out"
. scripts/tap.sh
tap_count "$out" || log "the test runner printed no result (see $out)"
echo
tap_skips "$out" | sed 's/^/skipped: /'
summary "$tap_passed" "$tap_failed" "$tap_skipped"
[ "$tap_failed" -eq 0 ]

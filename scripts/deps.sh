#!/bin/sh
# Installs the Debian packages and the npm test tools the project needs,
# only what is missing.  Uses sudo when not run as root.

set -eu

cd "$(dirname "$0")/.."

packages="gcc make pkg-config ca-certificates curl openssl iproute2
    nginx nginx-dev janus janus-dev
    libjansson-dev libpq-dev libhiredis-dev libcurl4-openssl-dev libssl-dev
    libglib2.0-dev libcjose-dev libargon2-dev libcmocka-dev
    libhpdf-dev fonts-dejavu-core poppler-utils
    clang libclang-rt-14-dev libfuzzer-14-dev
    postgresql postgresql-contrib postgresql-15-pgtap redis-server argon2 wrk valgrind jq
    clamav-daemon clang-format-22
    libjs-janus-gateway libjs-webrtc-adapter chromium
    debhelper dpkg-dev lintian
    prometheus"
# prometheus: only for promtool, which checks /metrics in the tests (the
# package is 19 MB, 96 MB installed; its service is not used)

# Node.js may come from elsewhere than Debian (its npm then ships with it and
# Debian's npm would conflict): only install Debian's when there is none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages="$packages nodejs npm"
fi

missing=
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
        | grep -q 'install ok installed'
    then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=
    else
        sudo=sudo
    fi

    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends $missing
fi

# The test tools of each suite (npm, test-only): tests/, tests/media/,
# tests/e2e/.  Installed here, where the registry is reachable; the media
# and browser suites run in a network namespace that has no route out.
for dir in tests tests/*/; do
    dir=${dir%/}
    [ -f "$dir/package.json" ] || continue
    if [ ! -d "$dir/node_modules" ] \
        || [ "$dir/package.json" -nt "$dir/node_modules" ] \
        || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]
    then
        echo "deps: installing the test tools of $dir (npm)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error \
            && touch node_modules)
    fi
done

[ -f config.mk ] || ./configure

#!/bin/sh
# Installs the Debian packages and the npm test tools the project needs,
# only what is missing.  Uses sudo when not run as root.

set -eu

cd "$(dirname "$0")/.."

packages="gcc make pkg-config ca-certificates curl openssl iproute2
    nginx nginx-dev janus janus-dev
    libjansson-dev libpq-dev libhiredis-dev libcurl4-openssl-dev libssl-dev
    libglib2.0-dev libjwt-dev libargon2-dev libcmocka-dev
    postgresql postgresql-contrib redis-server argon2 wrk valgrind jq
    libjs-janus-gateway libjs-webrtc-adapter chromium
    nodejs npm"

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
    # Debian's packaging would start the system-wide services; the project
    # runs its own instances under ./run, so keep the packaged ones stopped.
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends $missing
fi

if [ -f tests/package.json ]; then
    if [ ! -d tests/node_modules ] \
        || [ tests/package.json -nt tests/node_modules ] \
        || [ tests/package-lock.json -nt tests/node_modules ]
    then
        echo "deps: installing the test tools (npm)"
        (cd tests && npm ci --no-audit --no-fund --loglevel=error \
            && touch node_modules)
    fi
fi

[ -f config.mk ] || ./configure

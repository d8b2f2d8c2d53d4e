#!/bin/bash
# The local stack under ./run: PostgreSQL, Redis, nginx with the module and
# Janus with the plugin, all on loopback, all started and stopped by pid.
#
#   stack.sh start     start what is not running; nginx and Janus restart
#   stack.sh stop      stop everything this script started
#   stack.sh demo      load the demo organisation and print how to log in
#   stack.sh status    what runs
#   stack.sh start-postgres | stop-postgres | start-redis | stop-redis
#   stack.sh start-clamd | stop-clamd
#   stack.sh start-nginx | stop-nginx | start-janus | stop-janus
#   stack.sh psql [args]   a psql shell as the database owner

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${TH_RUN:-$ROOT/run}

PG_PORT=${TH_PG_PORT:-55432}
REDIS_PORT=${TH_REDIS_PORT:-56379}
NGINX_PORT=${TH_NGINX_PORT:-58080}
JANUS_HTTP_PORT=${TH_JANUS_HTTP_PORT:-58088}
JANUS_WS_PORT=${TH_JANUS_WS_PORT:-58188}
# the fake SMS and WhatsApp providers and the SMTP sink of the tests
# (nothing listens there otherwise)
SMS_PORT=${TH_SMS_PORT:-61990}
SMTP_PORT=${TH_SMTP_PORT:-61991}
WHATSAPP_PORT=${TH_WHATSAPP_PORT:-61992}

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PG_DATA=$RUN/postgres/data
PG_DB=telehealth
PG_APP_ROLE=telehealth

BUILD=${TH_BUILD:-$ROOT/build}
MODULE=$BUILD/ngx_http_telehealth_module.so
PLUGIN=$BUILD/libjanus_telehealth.so
[ -f "$PLUGIN" ] || PLUGIN=$ROOT/build/libjanus_telehealth.so
JANUS_LIB=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null \
    || echo x86_64-linux-gnu)/janus

log() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# PostgreSQL refuses to run as root: when root, run it as "postgres".
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

alive() {
    local pidfile=$1
    [ -f "$pidfile" ] && kill -0 "$(head -n 1 "$pidfile")" 2>/dev/null
}

stop_pidfile() {
    local name=$1 pidfile=$2 pid i
    alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(head -n 1 "$pidfile")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    log "$name stopped"
}

wait_for() {
    local what=$1 tries=$2
    shift 2
    for i in $(seq 1 "$tries"); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    die "$what did not come up (see $RUN)"
}

render() {
    local template=$1 out=$2 user_line
    if [ "$(id -u)" -eq 0 ]; then
        user_line="nobody nogroup"
    else
        user_line="$(id -un) $(id -gn)"
    fi
    sed -e "s|@RUN@|$RUN|g" -e "s|@ROOT@|$ROOT|g" \
        -e "s|@MODULE@|$MODULE|g" -e "s|@WEB@|$ROOT/web|g" \
        -e "s|@KEYS@|$RUN/keys|g" -e "s|@USER@|$user_line|g" \
        -e "s|@NGINX_PORT@|$NGINX_PORT|g" -e "s|@PG_PORT@|$PG_PORT|g" \
        -e "s|@REDIS_PORT@|$REDIS_PORT|g" \
        -e "s|@JANUS_HTTP_PORT@|$JANUS_HTTP_PORT|g" \
        -e "s|@JANUS_WS_PORT@|$JANUS_WS_PORT|g" \
        -e "s|@SMS_PORT@|$SMS_PORT|g" \
        -e "s|@SMTP_PORT@|$SMTP_PORT|g" \
        -e "s|@WHATSAPP_PORT@|$WHATSAPP_PORT|g" \
        -e "s|@NODE_ID@|${TH_NODE_ID:-local-1}|g" \
        -e "s|@ICE_ENFORCE@|${TH_ICE_ENFORCE:-}|g" \
        -e '/ice_enforce_list = ""/d' \
        "$template" > "$out"
}

keys() {
    mkdir -p "$RUN/keys"
    chmod 700 "$RUN/keys"
    for kid in k1 k2; do
        if [ ! -s "$RUN/keys/$kid.key" ]; then
            (umask 077; openssl rand -base64 48 > "$RUN/keys/$kid.key")
        fi
    done
    # join credentials (ES256): nginx signs with the private keys, Janus
    # holds the public ones
    for kid in j1 j2; do
        if [ ! -s "$RUN/keys/$kid.pem" ]; then
            (umask 077; openssl genpkey -algorithm EC \
                -pkeyopt ec_paramgen_curve:P-256 -out "$RUN/keys/$kid.pem")
        fi
        if [ ! -s "$RUN/keys/$kid.pub" ] \
            || [ "$RUN/keys/$kid.pem" -nt "$RUN/keys/$kid.pub" ]; then
            openssl pkey -in "$RUN/keys/$kid.pem" -pubout \
                -out "$RUN/keys/$kid.pub"
        fi
    done
    # the SMTP sink of the tests: its certificate (for STARTTLS, trusted by
    # nginx) and the login it accepts
    if [ ! -s "$RUN/keys/smtp.crt" ]; then
        (umask 077; openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
            -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
            -keyout "$RUN/keys/smtp.key" -out "$RUN/keys/smtp.crt" \
            2>/dev/null)
    fi
    if [ ! -s "$RUN/keys/smtp.credentials" ]; then
        (umask 077; echo "telehealth:local-test-smtp-password" \
            > "$RUN/keys/smtp.credentials")
    fi
}

start_postgres() {
    [ -n "$PG_BIN" ] || die "PostgreSQL not installed (make deps)"
    mkdir -p "$RUN/postgres"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$RUN/postgres"
    fi

    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        log "creating the PostgreSQL cluster"
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8 >"$RUN/postgres/initdb.log"
    fi

    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$RUN/postgres/postgres.log" \
            -w -t 30 -o "-p $PG_PORT -k $RUN/postgres \
            -c listen_addresses=127.0.0.1 -c max_connections=200" start \
            >/dev/null
        log "PostgreSQL on 127.0.0.1:$PG_PORT"
    fi

    local psql="psql -X -q -h 127.0.0.1 -p $PG_PORT -U postgres"
    if ! $psql -d postgres -tAc \
        "SELECT 1 FROM pg_roles WHERE rolname = '$PG_APP_ROLE'" | grep -q 1
    then
        $psql -d postgres -c "CREATE ROLE $PG_APP_ROLE LOGIN"
    fi
    if ! $psql -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1
    then
        $psql -d postgres -c "CREATE DATABASE $PG_DB"
    fi

    "$ROOT/scripts/migrate.sh" \
        "host=127.0.0.1 port=$PG_PORT user=postgres dbname=$PG_DB" \
        "$PG_APP_ROLE"
}

stop_postgres() {
    if [ -n "$PG_BIN" ] && [ -f "$PG_DATA/PG_VERSION" ] \
        && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
    then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
        log "PostgreSQL stopped"
    fi
}

start_redis() {
    mkdir -p "$RUN/redis"
    alive "$RUN/redis/redis.pid" && return 0
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
        --pidfile "$RUN/redis/redis.pid" --logfile "$RUN/redis/redis.log" \
        --dir "$RUN/redis" --save '' --appendonly no
    wait_for Redis 50 redis-cli -p "$REDIS_PORT" ping
    log "Redis on 127.0.0.1:$REDIS_PORT"
}

stop_redis() {
    stop_pidfile Redis "$RUN/redis/redis.pid"
}

# clamd for the chat's malware scan (telehealth_clamd), on a unix socket.
# Its database is one signature written here, that of the EICAR test file,
# so it starts in a second and needs no network (no freshclam).
EICAR_HEX=58354f2150254041505b345c505a58353428505e2937434329377d2445494341
EICAR_HEX=${EICAR_HEX}522d5354414e444152442d414e544956495255532d544553542d46494c452124
EICAR_HEX=${EICAR_HEX}482b482a

start_clamd() {
    command -v clamd >/dev/null || die "clamd is not installed (scripts/deps.sh)"
    mkdir -p "$RUN/clamd/db"
    alive "$RUN/clamd/clamd.pid" && return 0
    printf 'Telehealth.Test.EICAR:0:*:%s\n' "$EICAR_HEX" \
        > "$RUN/clamd/db/eicar.ndb"
    printf '%s\n' "DatabaseDirectory $RUN/clamd/db" \
        "LocalSocket $RUN/clamd/clamd.sock" "LocalSocketMode 666" \
        "PidFile $RUN/clamd/clamd.pid" "LogFile $RUN/clamd/clamd.log" \
        "Foreground no" > "$RUN/clamd/clamd.conf"
    rm -f "$RUN/clamd/clamd.sock"
    clamd -c "$RUN/clamd/clamd.conf" >/dev/null
    wait_for clamd 100 test -S "$RUN/clamd/clamd.sock"
    log "clamd on $RUN/clamd/clamd.sock"
}

stop_clamd() {
    stop_pidfile clamd "$RUN/clamd/clamd.pid"
}

# A dynamic module is not reloaded by "nginx -s reload" (dlopen returns the
# loaded copy), so nginx always restarts to pick up a rebuilt module.
start_nginx() {
    [ -f "$MODULE" ] || die "$MODULE not built (make)"
    stop_nginx
    mkdir -p "$RUN/nginx/logs" "$RUN/nginx/tmp" "$RUN/chat-files"
    chmod 700 "$RUN/chat-files"
    if [ "$(id -u)" -eq 0 ]; then
        chown nobody "$RUN/nginx/tmp" "$RUN/chat-files"
    fi
    keys
    # telehealth_idp_jwks must name a file: an empty key set until a test
    # (tests/integration/idp.test.mjs) writes its own
    mkdir -p "$RUN/idp"
    [ -s "$RUN/idp/jwks.json" ] || echo '{"keys": []}' > "$RUN/idp/jwks.json"
    # The console uses Debian's janus.js and adapter.js as they are.
    mkdir -p "$ROOT/web/vendor"
    ln -sf /usr/share/javascript/janus-gateway/janus.js "$ROOT/web/vendor/"
    ln -sf /usr/share/javascript/webrtc-adapter/adapter.js "$ROOT/web/vendor/"
    render "$ROOT/conf/nginx.conf.in" "$RUN/nginx/nginx.conf"
    # A module built with sanitizers (make asan) needs their runtime loaded
    # first into the stock nginx, and only there; reports go to run/asan.
    local preload=()
    if [ -n "${TH_SANITIZE:-}" ]; then
        mkdir -p "$RUN/asan"
        chmod 777 "$RUN/asan"
        preload=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so)"
            "ASAN_OPTIONS=detect_leaks=0:log_path=$RUN/asan/nginx"
            "UBSAN_OPTIONS=print_stacktrace=1:log_path=$RUN/asan/nginx-ubsan")
    fi
    "${preload[@]}" nginx -p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" -t -q \
        || die "nginx configuration test failed"
    "${preload[@]}" nginx -p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf"
    wait_for nginx 50 curl -fsS "http://127.0.0.1:$NGINX_PORT/bench/return200"
    log "nginx on http://127.0.0.1:$NGINX_PORT"
}

stop_nginx() {
    stop_pidfile nginx "$RUN/nginx/nginx.pid"
}

start_janus() {
    [ -f "$PLUGIN" ] || die "$PLUGIN not built (make)"
    stop_janus
    local dir=$RUN/janus
    mkdir -p "$dir/etc" "$dir/plugins" "$dir/transports" "$dir/empty"
    keys
    ln -sf "$PLUGIN" "$dir/plugins/libjanus_telehealth.so"
    if [ -n "${TH_WITH_VIDEOROOM:-}" ]; then
        ln -sf "$JANUS_LIB/plugins/libjanus_videoroom.so" "$dir/plugins/"
    else
        rm -f "$dir/plugins/libjanus_videoroom.so"
    fi
    # The stock EchoTest: the media harness' self-test (tests/media).
    if [ -n "${TH_WITH_ECHOTEST:-}" ]; then
        ln -sf "$JANUS_LIB/plugins/libjanus_echotest.so" "$dir/plugins/"
    else
        rm -f "$dir/plugins/libjanus_echotest.so"
    fi
    ln -sf "$JANUS_LIB/transports/libjanus_http.so" "$dir/transports/"
    ln -sf "$JANUS_LIB/transports/libjanus_websockets.so" "$dir/transports/"
    for t in janus.jcfg janus.transport.http.jcfg \
        janus.transport.websockets.jcfg janus.plugin.telehealth.jcfg
    do
        render "$ROOT/conf/$t.in" "$dir/etc/$t"
    done
    ${TH_JANUS_WRAPPER:-} janus -F "$dir/etc" -o -N -L "$dir/janus.log" \
        >"$dir/janus.out" 2>&1 &
    echo $! > "$dir/janus.pid"
    wait_for Janus 100 curl -fsS "http://127.0.0.1:$JANUS_HTTP_PORT/janus/info"
    log "Janus on 127.0.0.1:$JANUS_HTTP_PORT (HTTP), :$JANUS_WS_PORT (WebSocket)"
}

stop_janus() {
    stop_pidfile Janus "$RUN/janus/janus.pid"
}

start() {
    mkdir -p "$RUN"
    start_postgres
    start_redis
    start_clamd
    start_janus
    start_nginx
}

stop() {
    stop_nginx
    stop_janus
    stop_clamd
    stop_redis
    stop_postgres
}

status() {
    alive "$RUN/nginx/nginx.pid" && log "nginx running" || log "nginx stopped"
    alive "$RUN/janus/janus.pid" && log "Janus running" || log "Janus stopped"
    alive "$RUN/redis/redis.pid" && log "Redis running" || log "Redis stopped"
    alive "$RUN/clamd/clamd.pid" && log "clamd running" || log "clamd stopped"
    if [ -f "$PG_DATA/PG_VERSION" ] \
        && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
    then
        log "PostgreSQL running"
    else
        log "PostgreSQL stopped"
    fi
}

case "${1:-}" in
start)          start ;;
stop)           stop ;;
status)         status ;;
demo)           "$ROOT/scripts/demo.sh" "http://127.0.0.1:$NGINX_PORT" \
                    "host=127.0.0.1 port=$PG_PORT user=postgres dbname=$PG_DB" ;;
start-postgres) start_postgres ;;
stop-postgres)  stop_postgres ;;
start-redis)    start_redis ;;
stop-redis)     stop_redis ;;
start-clamd)    start_clamd ;;
stop-clamd)     stop_clamd ;;
start-nginx)    start_nginx ;;
stop-nginx)     stop_nginx ;;
start-janus)    start_janus ;;
stop-janus)     stop_janus ;;
psql)           shift
                exec psql -X -h 127.0.0.1 -p "$PG_PORT" -U postgres \
                    -d "$PG_DB" "$@" ;;
*)              sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 1 ;;
esac

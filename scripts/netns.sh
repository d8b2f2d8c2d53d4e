#!/bin/bash
# Runs a command inside a private network namespace prepared for Janus media.
#
#   netns.sh COMMAND [ARGS...]
#
# Janus does not gather ICE candidates on loopback, so media tests on one
# machine run in a namespace of their own with a veth pair: jv0 carries
# 127.0.0.2 and is the only interface Janus gathers on (the command runs with
# TH_ICE_ENFORCE=jv0 exported, which scripts/stack.sh renders into
# janus.jcfg's ice_enforce_list).  Test peers reach Janus' candidate
# 127.0.0.2 through the namespace's own loopback routing; nothing leaves the
# namespace, and ports may be the same as the developer's stack outside.
#
# How the namespace is made:
#   root (CI)   unshare -n
#   otherwise   unshare -c -n --keep-caps: a user namespace that maps you to
#               yourself, so files stay yours and PostgreSQL runs as you;
#               --keep-caps keeps CAP_NET_ADMIN (in that namespace only) for
#               the ip commands.  Needs unprivileged user namespaces
#               (sysctl user.max_user_namespaces > 0); if yours are off, run
#               this script with sudo.
#
# Whatever the command leaves running in the namespace is ended on exit,
# by pid: processes are found by their /proc/PID/ns/net link, TERM first,
# KILL after TH_NETNS_GRACE seconds (default 5).  The command should still
# stop what it started (scripts/stack.sh stop): that is the clean way.
#
# The exit status is the command's.

set -euo pipefail

SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

log() { printf 'netns: %s\n' "$*" >&2; }
die() { printf 'netns: error: %s\n' "$*" >&2; exit 1; }

# Pids of the processes in this network namespace, other than this shell and
# the subshell that lists them.  "-ef" compares the namespace inodes without
# forking, which matters: /proc may list hundreds of processes.
namespace_pids() {
    local link pid
    for link in /proc/[0-9]*/ns/net; do
        pid=${link#/proc/}
        pid=${pid%%/*}
        [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
        [ "$link" -ef /proc/$$/ns/net ] 2>/dev/null && echo "$pid"
    done
    return 0
}

# TERM, then KILL, every leftover of this namespace; bounded in time.
reap_namespace() {
    local grace=${TH_NETNS_GRACE:-5} pids i
    pids=$(namespace_pids)
    [ -n "$pids" ] || return 0
    log "ending leftovers: $(for p in $pids; do
        printf '%s(%s) ' "$p" "$(cat /proc/$p/comm 2>/dev/null)"; done)"
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        pids=$(namespace_pids)
        [ -n "$pids" ] || return 0
        sleep 0.1
    done
    log "killing leftovers: $(echo $pids)"
    kill -KILL $pids 2>/dev/null || true
}

inside() {
    local status=0 child

    ip link set lo up
    ip link add jv0 type veth peer name jv1
    ip link set jv0 up
    ip link set jv1 up
    ip addr add 127.0.0.2/32 dev jv0

    # The stack listens on fixed ports (55432, 56379, 58080, 58088, 58188
    # and 61xxx) that lie in the default ephemeral range: an outgoing
    # connection made before nginx starts (Janus to Redis, say) could hold
    # one of them.  The namespace's own range stays below them all.
    echo "32768 55000" > /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null \
        || log "cannot narrow the ephemeral port range (not root here)"

    export TH_ICE_ENFORCE=jv0
    TH_NETNS=$(readlink /proc/self/ns/net)
    export TH_NETNS

    # The command runs as a child, not exec'd, so this shell outlives it and
    # can reap what it leaves behind.  Signals to us are passed on to it.
    # Its stdin is ours (a background job would get /dev/null), so that
    # "netns.sh bash" is a usable shell.
    "$@" 0<&0 &
    child=$!
    trap 'kill -TERM $child 2>/dev/null || true' TERM INT HUP
    while :; do
        wait "$child" && status=0 || status=$?
        # wait returns >128 when a trapped signal interrupted it; the child
        # may still be running.
        kill -0 "$child" 2>/dev/null || break
    done
    trap - TERM INT HUP
    reap_namespace
    exit "$status"
}

if [ "${1:-}" = "--inside" ]; then
    shift
    inside "$@"
fi

[ $# -gt 0 ] || { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
command -v unshare >/dev/null || die "unshare not found (util-linux)"
command -v ip >/dev/null || die "ip not found (iproute2)"

if [ "$(id -u)" -eq 0 ]; then
    exec unshare -n -- "$SELF" --inside "$@"
else
    exec unshare -c -n --keep-caps -- "$SELF" --inside "$@"
fi

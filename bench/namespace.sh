# Sourced by the media benchmarks (bench/media.sh, bench/group.sh): runs one
# node script in the media namespace with a stack of its own and keeps its
# figures.
#
#   bench_in_namespace NAME RUN_DIR TIMEOUT FIRST SCRIPT [ARGS...]
#
# NAME names the results ($BENCH_RESULTS or bench/results: NAME.txt, and
# NAME.json, which SCRIPT writes with --json); RUN_DIR is the stack's
# folder; the run is stopped after TIMEOUT seconds; the kept text starts at
# the first line matching FIRST, after the date, commit and machine.

bench_in_namespace() {
    local name=$1 run=$2 limit=$3 first=$4 script=$5 results out json status
    shift 5

    [ -f build/libjanus_telehealth.so ] \
        && [ -f build/ngx_http_telehealth_module.so ] \
        || { printf 'bench: error: %s\n' \
                 "the plugin and the module are not built (make)" >&2
             return 1; }

    results=${BENCH_RESULTS:-$ROOT/bench/results}
    mkdir -p "$results"
    out=$results/$name.txt
    json=$results/$name.json
    rm -f "$json"

    TH_MEDIA_STACK=full TH_MEDIA_RUN=$run \
        timeout --kill-after=15 "$limit" \
        scripts/media-tests.sh run node "$script" "$@" --json "$json" \
        > "$out.tmp"
    status=$?
    if [ "$status" -ne 0 ] || [ ! -s "$json" ]; then
        rm -f "$out.tmp"
        printf 'bench: error: the %s benchmark failed (%s)\n' "$name" \
            "$status" >&2
        return 1
    fi

    {
        echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
        sed -n "/$first/,\$p" "$out.tmp"
    } > "$out"
    rm -f "$out.tmp"
    cat "$out"
}

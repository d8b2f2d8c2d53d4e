#!/bin/bash
# Runs the libFuzzer targets (fuzz/*.c, built by `make fuzz-build` in
# build-fuzz/) for FUZZ_TIME seconds each, from their seed corpora in
# fuzz/corpus/<target>/, and prints one line per target and the summary
# "N passed, N failed, N skipped".  A crash, a leak, a sanitizer report or
# a unit slower than FUZZ_UNIT_TIMEOUT seconds fails the target; the input
# is kept in build-fuzz/artifacts/.  New inputs go to build-fuzz/corpus/,
# never into the tree (docs/operations.md, "Fuzzing").
#
#   fuzz.sh [targets...]     every target, or the ones named

set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

time=${FUZZ_TIME:-60}
out=build-fuzz
passed=0
failed=0
skipped=0

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for c in fuzz/*.c; do
        t=$(basename "$c" .c)
        case $t in fuzz_*) continue ;; esac
        targets+=("$t")
    done
fi

mkdir -p "$out/artifacts" "$out/logs"

for t in "${targets[@]}"; do
    bin=$out/fuzz-$t
    log=$out/logs/$t.log
    if [ ! -x "$bin" ]; then
        echo "not ok - fuzz $t: $bin is missing (make fuzz-build)"
        failed=$((failed + 1))
        continue
    fi
    mkdir -p "$out/corpus/$t"
    # -timeout: a unit that takes longer is a hang; the whole run is
    # bounded too, so a wedged target cannot hold up the suite
    timeout --kill-after=10 $((time + 120)) \
        "$bin" -max_total_time="$time" -timeout="${FUZZ_UNIT_TIMEOUT:-25}" \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$t-" \
        "$out/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
        echo "ok - fuzz $t: $runs runs in ${time}s, ${cov:-cov: ?}"
        passed=$((passed + 1))
    else
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" \
            | head -n 20 | sed 's/^/  /'
        echo "not ok - fuzz $t: exit $rc (log $log)"
        failed=$((failed + 1))
    fi
done

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

# Counting node --test's TAP; sourced by test.sh, media-tests.sh and
# e2e-tests.sh so that the three count alike.
#
# tap_count FILE sets tap_passed, tap_failed and tap_skipped from the
# footer node's runner prints last: a test cancelled (by a failed hook or a
# timeout) counts as failed, a "todo" one as skipped.  Without a footer (the
# runner was killed, by the run's timeout say) it counts the result lines
# that were printed, and the run itself as one more failure; it then
# returns 1.
#
# tap_skips FILE prints the tests FILE reports as skipped or todo, one a
# line: "name # SKIP reason".

tap_count() {
    local file=$1 p f c s t
    p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$file" | tail -n 1)
    f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$file" | tail -n 1)
    c=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$file" | tail -n 1)
    s=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$file" | tail -n 1)
    t=$(sed -n 's/^# todo \([0-9]*\)$/\1/p' "$file" | tail -n 1)
    if [ -n "$p" ]; then
        tap_passed=$p
        tap_failed=$(( ${f:-0} + ${c:-0} ))
        tap_skipped=$(( ${s:-0} + ${t:-0} ))
        return 0
    fi
    tap_skipped=$(tap_skips "$file" | grep -c .)
    tap_passed=$(( $(grep -cE '^ *ok ' "$file") - tap_skipped ))
    tap_failed=$(( $(grep -cE '^ *not ok ' "$file") + 1 ))
    return 1
}

tap_skips() {
    grep -iE '^ *ok [0-9]+.* # (SKIP|TODO)' "$1" | sed -E 's/^ *ok [0-9]+ (- )?//'
}

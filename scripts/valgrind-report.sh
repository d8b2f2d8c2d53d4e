#!/bin/bash
# Reads memcheck logs of Janus (scripts/media-tests.sh with TH_VALGRIND=1)
# and reports what concerns our plugin: every error or leak record whose
# stack passes through janus-plugin/ or common/ code (janus_telehealth_*,
# th_*).  Prints each log's summary lines and our records; exits 1 if there
# is any record of ours, or if a log has no leak summary (Janus did not
# exit cleanly, so leaks went unchecked).
#
#   valgrind-report.sh LOG...

set -uo pipefail

status=0
for log in "$@"; do
    [ -f "$log" ] || continue
    printf 'valgrind: %s\n' "$log"
    grep -E 'ERROR SUMMARY|definitely lost:|indirectly lost:|possibly lost:' "$log" \
        | sed 's/^==[0-9]*== /valgrind:   /'
    if ! grep -q 'LEAK SUMMARY\|All heap blocks were freed' "$log"; then
        printf 'valgrind:   no leak summary: Janus did not exit cleanly\n'
        status=1
    fi
    # Records are separated by "==pid== " blank lines.
    ours=$(awk '
        /^==[0-9]+== $/ { if (rec ~ /janus_telehealth|[^a-z_]th_[a-z]/) print rec "\n"; rec = ""; next }
        { rec = rec $0 "\n" }
        END { if (rec ~ /janus_telehealth|[^a-z_]th_[a-z]/) print rec }
    ' "$log")
    if [ -n "$ours" ]; then
        printf 'valgrind:   records in our code:\n%s\n' "$ours"
        status=1
    else
        printf 'valgrind:   no error or leak record in our code\n'
    fi
done
exit $status

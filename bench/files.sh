#!/bin/bash
# Chat attachments: upload and download of a 5 MB file through the API
# against nginx serving a static file of the same size.
#
# In the same run, with the same threads and duration:
#   wrk  GET /bench/static/5m.bin       nginx alone (the floor)
#   wrk  GET /api/v1/sessions/{id}/files/{file}   the access check in
#        PostgreSQL, then nginx sends the file from the internal location
#   wrk  POST /api/v1/sessions/{id}/files  (bench/upload.lua) the body to a
#        temporary file, its type, the rename into the store, the row and,
#        where telehealth_clamd is set, the scan
# and prints MB/s of each and the ratios download/static and
# upload/static.  The session is a meeting room of the benchmark user;
# its files are purged (th_chat_purge_session()) and unlinked at the end.
# bench/run.sh calls it; it can also run alone with TH_BENCH_TOKEN set.
#
#   BENCH_THREADS, BENCH_DURATION   as bench/run.sh
#   BENCH_FILES_CONNECTIONS         connections of each wrk (default 8)
#   BENCH_UPLOAD_DURATION           the upload run (default 5s: 5 MB each)

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
RESULTS=${BENCH_RESULTS:-$BENCH/results}
RUN=${TH_RUN:-$ROOT/run}
BASE=http://127.0.0.1:${TH_NGINX_PORT:-58080}
PG_CONN="host=127.0.0.1 port=${TH_PG_PORT:-55432} user=postgres dbname=telehealth"
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_FILES_CONNECTIONS:-8}
DURATION=${BENCH_DURATION:-10s}
UPLOAD_DURATION=${BENCH_UPLOAD_DURATION:-5s}
SIZE=$((5 * 1024 * 1024))

die() { printf 'bench/files: error: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk not installed (make deps)"
[ -n "${TH_BENCH_TOKEN:-}" ] || die "TH_BENCH_TOKEN is not set (bench/run.sh)"

# the same bytes for all three: a PDF header, then random data
mkdir -p "$RUN/bench-static" "$RESULTS"
file=$RUN/bench-static/5m.bin
{ printf '%%PDF-1.4\n'; head -c $((SIZE - 9)) /dev/urandom; } > "$file"
chmod 644 "$file"
chmod 755 "$RUN/bench-static"
curl -fsS -m 10 -o /dev/null "$BASE/bench/static/5m.bin" \
    || die "nginx does not serve $BASE/bench/static/5m.bin"

session=$(curl -fsS -m 10 "$BASE/api/v1/sessions" \
    -H "Authorization: Bearer $TH_BENCH_TOKEN" \
    -H 'Content-Type: application/json' \
    -d '{"kind":"meeting_room","name":"Bench files"}' | jq -r .id) \
    || die "POST /api/v1/sessions failed"
[ -n "$session" ] && [ "$session" != null ] || die "no session"

# uploads wrk cut off at the end may still be in flight: let them end
# (psql expands :'s' in what it reads, not in -c)
cleanup() {
    sleep 2
    printf "SELECT file_id FROM th_chat_purge_session(:'s');\n" \
        | psql -X -q -tA -d "$PG_CONN" -v s="$session" \
        | while read -r id; do
            if [ -n "$id" ]; then rm -f "$RUN/chat-files/$id"; fi
        done
}
trap cleanup EXIT

fid=$(curl -fsS -m 60 "$BASE/api/v1/sessions/$session/files" \
    -H "Authorization: Bearer $TH_BENCH_TOKEN" \
    -H 'Content-Type: application/pdf' --data-binary "@$file" \
    | jq -r .id) || die "the first upload failed"
[ -n "$fid" ] && [ "$fid" != null ] || die "no file id"

# wrk's own summary counts non-2xx answers; a run with any is not a result.
run() {
    local name=$1 duration=$2 url=$3 out
    shift 3
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" "$@" "$url")
    printf '%s\n' "$out" > "$RESULTS/$name.wrk.txt"
    if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
        die "$name: $(grep 'Non-2xx' <<<"$out")"
    fi
    awk -v size="$SIZE" '/^Requests\/sec:/ { printf "%.1f", $2 * size / 1048576 }' <<<"$out"
}

static=$(run files-static "$DURATION" "$BASE/bench/static/5m.bin")
download=$(run files-download "$DURATION" \
    "$BASE/api/v1/sessions/$session/files/$fid" \
    -H "Authorization: Bearer $TH_BENCH_TOKEN")
export TH_BENCH_UPLOAD_FILE=$file
upload=$(run files-upload "$UPLOAD_DURATION" \
    "$BASE/api/v1/sessions/$session/files" -s "$BENCH/upload.lua")

{
    echo "files:         5 MB, wrk -t$THREADS -c$CONNECTIONS (upload -d$UPLOAD_DURATION, others -d$DURATION)"
    echo "static:        $static MB/s"
    echo "download:      $download MB/s"
    echo "upload:        $upload MB/s"
    awk -v d="$download" -v u="$upload" -v s="$static" 'BEGIN {
        printf "download/static: %.3f\nupload/static:   %.3f\n", d / s, u / s }'
} | tee "$RESULTS/files.txt"

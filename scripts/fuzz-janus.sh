#!/bin/sh
# Makes a copy of the janus binary that a program can link against as a
# library: the plugin's fuzz targets then run against the Janus core's own
# SDP parser, config reader and JSON checks (janus-dev ships only headers).
# Janus exports these for its plugins already; all that keeps the loader
# from mapping it beside another program is the PIE bit of DT_FLAGS_1,
# which the copy clears.
#
#   fuzz-janus.sh /usr/bin/janus build-fuzz/libjanus-core.so

set -eu

src=$1
dst=$2

# PT_DYNAMIC: its offset and size in the file
set -- $(readelf -lW "$src" | awk '$1 == "DYNAMIC" { print $2, $5 }')
off=$(($1))
size=$(($2))

# each entry: tag (8 bytes), value (8 bytes); DT_FLAGS_1 = 0x6ffffffb
pos=$(od -A d -t x8 -v -w16 -j "$off" -N "$size" "$src" \
    | awk '$2 == "000000006ffffffb" { print $1 + 8; exit }')
[ -n "$pos" ] || { echo "fuzz-janus.sh: no DT_FLAGS_1 in $src" >&2; exit 1; }

flags=$(od -A n -t x8 -j "$pos" -N 8 "$src" | tr -d ' ')
flags=$(( 0x$flags & ~0x08000000 ))    # DF_1_PIE

cp "$src" "$dst.tmp"
i=0
while [ $i -lt 8 ]; do
    printf "\\$(printf %03o $(( (flags >> (8 * i)) & 0xff )))"
    i=$((i + 1))
done | dd of="$dst.tmp" bs=1 seek="$pos" conv=notrunc status=none
mv "$dst.tmp" "$dst"

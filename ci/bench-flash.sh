#!/usr/bin/env bash
# Prints flashing and compression figures for a built output folder: `baseimg flash` of the
# compressed and of the raw image against `dd` of the whole raw image, all onto the same loop
# device; the compression the build logged, and the image compressed again with 1 and with 2
# threads to show the bytes do not depend on the thread count. Figures only; nothing passes
# or fails.
# Needs root (losetup) and free space for one image-sized backing file.
# Usage: ci/bench-flash.sh [--out DIR] [--no-recompress]
#   --out DIR         a built output folder (default: build qemu-arm64 into a scratch folder)
#   --no-recompress   skip compressing again with 1 and 2 threads (minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."

out=
recompress=1
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift ;;
        --no-recompress) recompress=0 ;;
        *) echo "bench-flash.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

cargo build --release --locked --bin baseimg --example compress_image >/dev/null 2>&1
bin=$PWD/target/release/baseimg
scratch=$(mktemp -d /var/tmp/baseimg-bench-flash.XXXXXX)
loop=
cleanup() {
    if [ -n "$loop" ]; then losetup -d "$loop" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT

if [ -z "$out" ]; then
    out="$scratch/out"
    "$bin" build --profile qemu-arm64 --out "$out" 2>"$scratch/build.log" >/dev/null \
        || { tail -n 30 "$scratch/build.log" >&2; exit 1; }
    grep -E '\.img\.zst is|\.img\.bmap maps' "$scratch/build.log" | sed 's/^ */build: /'
fi
name=$(sed -n 's/^  "image": "\(.*\)",$/\1/p' "$out/manifest.json")
img="$out/$name.img"
size=$(stat -c %s "$img")
zsize=$(stat -c %s "$img.zst")
echo "image: $size bytes raw, $(du -B1 "$img" | cut -f1) bytes allocated"
echo "compressed: $zsize bytes ($(echo "scale=2; 100 * $zsize / $size" | bc)% of raw)"

if [ "$recompress" = 1 ]; then
    for threads in 1 2; do
        echo "compress again: $(target/release/examples/compress_image "$img" \
            "$scratch/t$threads.zst" "$threads"), sha256 $(sha256sum < "$scratch/t$threads.zst" \
            | cut -c1-16)..."
    done
    cmp -s "$scratch/t1.zst" "$scratch/t2.zst" && cmp -s "$scratch/t1.zst" "$img.zst" \
        && echo "1 thread, 2 threads and the build's .zst are identical" \
        || echo "the .zst differs between thread counts"
    rm -f "$scratch"/t?.zst
fi

start=$(date +%s.%N)
zstd -q -d -c "$img.zst" >/dev/null
echo "zstd -d of the .zst: $(echo "$(date +%s.%N) - $start" | bc)s"

truncate -s "$size" "$scratch/target"
loop=$(losetup --find --show "$scratch/target")

wipe() { # gives every run the same starting point: an empty backing file
    losetup -d "$loop"
    rm -f "$scratch/target"
    truncate -s "$size" "$scratch/target"
    loop=$(losetup --find --show "$scratch/target")
    sync
}

timed() { # prints wall seconds of a command, its stdout to $scratch/last
    local start
    start=$(date +%s.%N)
    "$@" >"$scratch/last" 2>"$scratch/err" || { cat "$scratch/err" >&2; exit 1; }
    echo "$(date +%s.%N) - $start" | bc
}

t_zst=$(timed "$bin" flash "$img.zst" "$loop" --yes)
echo "baseimg flash $name.img.zst -> $loop: $(cat "$scratch/last") (wall ${t_zst}s)"
bytes_flash=$(sed -n 's/^wrote \([0-9]*\) bytes.*/\1/p' "$scratch/last")
wipe
t_raw=$(timed "$bin" flash "$img" "$loop" --yes)
echo "baseimg flash $name.img -> $loop: $(cat "$scratch/last") (wall ${t_raw}s)"
wipe
t_dd=$(timed dd if="$img" of="$loop" bs=4M conv=fsync status=none)
echo "dd bs=4M conv=fsync of $name.img -> $loop: $size bytes, ${t_dd}s (no read-back)"
cmp -n "$size" "$img" "$loop" >/dev/null && echo "dd result equals the image"

echo "bytes written: flash $bytes_flash vs dd $size (ratio $(echo "scale=3; $bytes_flash / $size" | bc))"
echo "time: flash .zst ${t_zst}s, flash .img ${t_raw}s (both with read-back), dd ${t_dd}s" \
    "(ratio flash .img / dd $(echo "scale=3; $t_raw / $t_dd" | bc))"

#!/usr/bin/env bash
# Prints build figures: the warm rebuild time (base cached), and the image's raw, allocated
# and compressed sizes. With --cold, first times a build with an empty base cache (slow:
# Debian is installed under emulation). Figures only; nothing here passes or fails.
# Usage: ci/bench.sh [--cold] [--profile NAME]
set -euo pipefail
cd "$(dirname "$0")/.."

cold=0
profile=rockpro64
while [ $# -gt 0 ]; do
    case "$1" in
        --cold) cold=1 ;;
        --profile) profile="$2"; shift ;;
        *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

cargo build --release --locked --bin baseimg >/dev/null 2>&1
bin=./target/release/baseimg
out=$(mktemp -d /var/tmp/baseimg-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT

seconds() { # runs a command, prints its wall time in seconds
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>"$out/log" || { cat "$out/log" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

if [ "$cold" = 1 ]; then
    cache=$(mktemp -d /var/tmp/baseimg-bench-cache.XXXXXX)
    t=$(BASEIMG_CACHE_DIR="$cache" seconds "$bin" build --profile "$profile" --out "$out/cold")
    rm -rf "$cache"
    echo "cold build ($profile, empty base cache): ${t}s"
fi

"$bin" build --profile "$profile" --out "$out/warm" >/dev/null 2>&1  # make sure the base is cached
t=$(seconds "$bin" build --profile "$profile" --out "$out/warm")
echo "warm rebuild ($profile, base cached): ${t}s"

img="$out/warm/$profile.img"
echo "image size: $(stat -c %s "$img") bytes, allocated $(du -k "$img" | cut -f1) KiB"
echo "rootfs tarball: $(stat -c %s "$out/warm/$profile.rootfs.tar") bytes"
start=$(date +%s.%N)
zstd -q -T0 -19 --long=27 -c "$img" > "$out/img.zst"
end=$(date +%s.%N)
echo "zstd -19 -T0: $(stat -c %s "$out/img.zst") bytes in $(echo "$end - $start" | bc)s"

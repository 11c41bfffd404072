#!/bin/sh
# Benchmark figures for base-middleware (a script, not a test). Prints name=value lines:
# idle resident memory of the daemon, time from connect to paired and requests per second
# on loopback, and the stripped binary sizes (aarch64 when its linker and target exist).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
target=${CARGO_TARGET_DIR:-target}
export CARGO_TARGET_DIR=$target

cargo build --quiet --release -p base-middleware --bins --example bench_pairing
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

idle_rss() {
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$target/release/base-middleware" serve "$@" --listen "127.0.0.1:$port" \
        --state-dir "$work/state" --control-socket "$work/control.sock" \
        --helper-socket "$work/helper.sock" 2>/dev/null &
    pid=$!
    sleep 2
    awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
echo "idle_rss_kib_no_mdns=$(idle_rss --no-mdns)"
echo "idle_rss_kib_with_mdns=$(idle_rss --public-port 443)"

"$target/release/examples/bench_pairing"

size_of() { strip -o "$work/stripped" "$1" && stat -c %s "$work/stripped"; }
echo "x86_64_stripped_bytes_daemon=$(size_of "$target/release/base-middleware")"
echo "x86_64_stripped_bytes_helper=$(size_of "$target/release/base-middleware-helper")"

if command -v aarch64-linux-gnu-gcc >/dev/null \
    && rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    cargo build --quiet --release -p base-middleware --bins --target aarch64-unknown-linux-gnu
    for bin in base-middleware base-middleware-helper; do
        aarch64-linux-gnu-strip -o "$work/$bin" "$target/aarch64-unknown-linux-gnu/release/$bin"
        echo "aarch64_stripped_bytes_$bin=$(stat -c %s "$work/$bin")"
    done
else
    echo "aarch64: no aarch64-linux-gnu-gcc or rust target; sizes above are x86_64"
fi

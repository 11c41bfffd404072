#!/bin/sh
# Builds the decoder fuzz target with libFuzzer on the stable toolchain (no sanitizer) and
# runs it for RUNS executions (default 1000000) from the seed corpus. `cargo fuzz run
# decode_messages` works too where cargo-fuzz and a nightly toolchain are installed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
runs=${1:-1000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
# An explicit --target keeps RUSTFLAGS away from build scripts, as cargo-fuzz does.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --manifest-path "$here/Cargo.toml" --release --target "$host" --bin decode_messages
work=$(mktemp -d)
cp "$here"/corpus/* "$work"/
"$CARGO_TARGET_DIR/$host/release/decode_messages" -runs="$runs" -max_len=4096 "$work"
rm -rf "$work"

#!/bin/sh
# Builds one fuzz target of baseimg (profile, ssh_keys, audit_sshd, audit_iptables) with
# libFuzzer on the stable toolchain (no sanitizer) and runs it for RUNS executions (default
# 1000000), seeded from the project's own test inputs. `cargo fuzz run <target>` works too where
# cargo-fuzz and a nightly toolchain are installed. A crash leaves its input in the current
# folder (crash-*); add it to the corpus and as a regression test.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
target=${1:?usage: run-fuzz.sh TARGET [RUNS]}
runs=${2:-1000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
# An explicit --target keeps RUSTFLAGS away from build scripts, as cargo-fuzz does.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --manifest-path "$here/Cargo.toml" --release --target "$host" --bin "$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$here/..
case $target in
    profile) seeds="$root/image-profiles/*.toml $root/tests/profiles/bad/*.toml" ;;
    ssh_keys) seeds="$root/tests/keys/good/*.pub $root/tests/keys/bad/*.pub" ;;
    audit_sshd) seeds="$root/templates/rootfs/etc/ssh/sshd_config.tera \
        $root/tests/fixtures/audit-good/rootfs/etc/ssh/sshd_config" ;;
    audit_iptables) seeds="$root/templates/rootfs/etc/iptables/rules.v*.tera \
        $root/tests/fixtures/audit-good/rootfs/etc/iptables/rules.v*" ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
esac
i=0
for seed in $seeds; do i=$((i + 1)); cp "$seed" "$work/seed-$i"; done
"$CARGO_TARGET_DIR/$host/release/$target" -runs="$runs" -max_len=8192 "$work"

#!/usr/bin/env bash
# All tests on a fresh machine. The fast tier (formatting, lints, unit, golden and loopback
# tests) runs while the real tier's image build installs Debian under emulation; then the
# built image is checked from outside. `ci/test.sh --fast` runs the fast tier only.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/install-host-packages.sh
cargo fmt --all -- --check
cargo build --release --locked --bin baseimg

build_pid=
if [ "${1:-}" != "--fast" ]; then
    out="$PWD/target/ci-out/rockpro64"
    log="$PWD/target/ci-out/build.log"
    mkdir -p "$(dirname "$log")"
    echo "real tier: building rockpro64 in the background, log in $log"
    # Its own process group, so a failing fast tier can stop it with mmdebstrap and all.
    setsid ./target/release/baseimg build --profile rockpro64 --out "$out" \
        --ssh-key tests/fixtures/keys/id_ed25519.pub >"$log" 2>&1 &
    build_pid=$!
    trap '[ -n "$build_pid" ] && kill -- "-$build_pid" 2>/dev/null; true' EXIT
fi

cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace

if [ -n "$build_pid" ]; then
    status=0
    wait "$build_pid" || status=$?
    build_pid=
    tail -n 25 "$log"
    if [ "$status" != 0 ]; then
        echo "real tier: the image build failed (exit $status; full log: $log)" >&2
        exit 1
    fi
    BASEIMG_IMAGE_DIR="$out" cargo test --release --locked --test real_image -- --ignored
    # Faults during a build (kills at every step, a damaged cache copy, a full disk): the
    # base is cached now. One at a time: each one builds images.
    cargo test --release --locked --test build_faults -- --ignored --test-threads=1
    # The same image again from another folder, umask, time zone and locale: same bytes.
    ci/repro-check.sh rockpro64 "$out"

    # Boot tier: the qemu-arm64 image (same base, so a warm build) booted under
    # qemu-system-aarch64 and probed from its LAN; each check prints an `ok:` line.
    qemu_out="$PWD/target/ci-out/qemu-arm64"
    ./target/release/baseimg build --profile qemu-arm64 --out "$qemu_out" \
        --ssh-key tests/fixtures/boot-key/id_ed25519.pub
    BASEIMG_IMAGE_DIR="$qemu_out" cargo test --release --locked --test boot -- \
        --ignored --test-threads=1 --nocapture
fi

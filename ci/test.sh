#!/usr/bin/env bash
# All tests on a fresh machine. The fast tier (unit, golden and loopback tests) runs first;
# then the real tier: one full image build from the default profile, checked from outside.
# `ci/test.sh --fast` runs the fast tier only.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/install-host-packages.sh
cargo fmt --all -- --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace

if [ "${1:-}" = "--fast" ]; then
    exit 0
fi

out="$PWD/target/ci-out/rockpro64"
./target/release/baseimg build --profile rockpro64 --out "$out" \
    --ssh-key tests/fixtures/keys/id_ed25519.pub
BASEIMG_IMAGE_DIR="$out" cargo test --release --locked --test real_image -- --ignored

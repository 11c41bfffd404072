#!/usr/bin/env bash
# The main job on a fresh machine: host packages, the baseimg binary, and a real image
# build of the default profile (rockpro64). Usage: ci/build.sh [extra `baseimg build` flags]
# Example: ci/build.sh --ssh-key ~/.ssh/id_ed25519.pub
set -euo pipefail
cd "$(dirname "$0")/.."

ci/install-host-packages.sh
cargo build --release --locked --bin baseimg
./target/release/baseimg build --profile rockpro64 "$@"

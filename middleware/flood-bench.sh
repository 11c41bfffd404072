#!/bin/sh
# Flood figures for base-middleware (a script, not a test): runs the flood test with IDLE idle
# connections (default 5000; the daemon is limited to 1024 file descriptors) and prints its
# name=value line: idle connections, garbage sent, time for the paired client to get through,
# and the daemon's resident memory before, at the peak and after.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
export BASE_MW_FLOOD_IDLE=${1:-5000}
cargo test --quiet --release -p base-middleware --test flood -- --nocapture 2>&1 \
    | grep -o 'flood_idle_connections=.*' | tr ' ' '\n'

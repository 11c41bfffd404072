#!/usr/bin/env bash
# Reproducibility check: a profile built twice under different conditions must give the same
# bytes in every output. The second build runs from a copy of this checkout in another
# folder, with another umask, time zone and locale, later in time, through
# `baseimg verify --rebuild`, which names any output (and any root filesystem entry) that
# differs. Prints both checksum lists.
#
#   ci/repro-check.sh PROFILE [OUTPUT_DIR]
#
# OUTPUT_DIR is a finished build of PROFILE to check; without it the first build is made
# here. Needs root and the host packages of ci/install-host-packages.sh. Work goes to
# $REPRO_WORK (default target/repro/PROFILE).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:?usage: ci/repro-check.sh PROFILE [OUTPUT_DIR]}
first=${2:-}
work=${REPRO_WORK:-$PWD/target/repro/$profile}
baseimg=$PWD/target/release/baseimg
key=tests/fixtures/keys/id_ed25519.pub

cargo build --release --locked --bin baseimg
rm -rf "$work"
mkdir -p "$work"

if [ -z "$first" ]; then
    first=$work/first
    echo "repro: first build of $profile into $first"
    "$baseimg" build --profile "$profile" --out "$first" --ssh-key "$key"
fi
first=$(realpath "$first")

# The second checkout: the files git knows of, as they are in this working tree.
checkout=$work/checkout
mkdir -p "$checkout"
git ls-files -z --cached --others --exclude-standard |
    tar --null --files-from=- --create --file=- | tar --extract --file=- --directory="$checkout"

echo "repro: second build from $checkout (umask 027, TZ=Pacific/Kiritimati, LC_ALL=fr_FR.UTF-8)"
status=0
(
    cd "$checkout"
    umask 027
    TZ=Pacific/Kiritimati LC_ALL=fr_FR.UTF-8 LANG=fr_FR.UTF-8 \
        "$baseimg" verify --rebuild --project . --scratch "$work/second" "$first"
) || status=$?

echo "repro: first build ($first)"
(cd "$first" && cat SHA256SUMS && sha256sum SHA256SUMS)
if [ -d "$work/second/out" ]; then
    echo "repro: second build ($work/second/out)"
    (cd "$work/second/out" && cat SHA256SUMS && sha256sum SHA256SUMS)
fi
if [ "$status" != 0 ]; then
    echo "repro: $profile is NOT reproducible (see the differences above)" >&2
    exit 1
fi
echo "repro: $profile reproduced bit for bit"

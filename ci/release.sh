#!/usr/bin/env bash
# One profile's release: build, audit, reproducibility check, sign, verify, and gather the
# files to publish into a folder. The release workflow runs it once per profile; it runs the
# same on a developer's machine (as root, after ci/install-host-packages.sh).
# Usage: ci/release.sh --profile NAME [--key FILE] [--out DIR] [--publish DIR]
#   --key FILE     OpenSSH private key that signs SHA256SUMS (default: $BASEIMG_SIGNING_KEY,
#                  a path; without either, the release is left unsigned and says so)
#   --out DIR      build output folder (default: out/NAME)
#   --publish DIR  where the files to upload are gathered (default: release/NAME)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=
key="${BASEIMG_SIGNING_KEY:-}"
out=
publish=
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift ;;
        --key) key="$2"; shift ;;
        --out) out="$2"; shift ;;
        --publish) publish="$2"; shift ;;
        *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$profile" ] || { echo "release.sh: --profile NAME is required" >&2; exit 2; }
out="${out:-$PWD/out/$profile}"
publish="${publish:-$PWD/release/$profile}"

cargo build --release --locked --bin baseimg
bin=./target/release/baseimg

echo "== build $profile"
"$bin" build --profile "$profile" --out "$out"

echo "== audit"
"$bin" audit "$out/$profile.img" --profile "$profile"

echo "== reproducibility"
ci/repro-check.sh "$profile"

verify_args=()
if [ -n "$key" ]; then
    echo "== sign"
    "$bin" sign --key "$key" "$out"
    signers=$(mktemp)
    trap 'rm -f "$signers"' EXIT
    echo "release@baseimg $(ssh-keygen -y -f "$key")" > "$signers"
    verify_args=(--signer "$signers")
else
    echo "== sign: no key given (--key or BASEIMG_SIGNING_KEY): the release is UNSIGNED"
fi

echo "== verify"
"$bin" verify "$out" "${verify_args[@]}"

echo "== gather into $publish"
rm -rf "$publish"
mkdir -p "$publish"
# The raw image and the rootfs tarball stay out: the .zst holds the image, and a user checks
# a download with `sha256sum -c --ignore-missing SHA256SUMS`.
for f in "$profile.img.zst" "$profile.img.bmap" "$profile.spdx.json" manifest.json SHA256SUMS \
    SHA256SUMS.sig; do
    if [ -e "$out/$f" ]; then cp "$out/$f" "$publish/"; fi
done
(cd "$publish" && sha256sum -c --ignore-missing SHA256SUMS)
ls -l "$publish"

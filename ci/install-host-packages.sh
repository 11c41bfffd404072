#!/usr/bin/env bash
# Installs every host package `baseimg build` and its tests need, on Debian 12 (bookworm),
# adds the Rust arm64 target, and makes arm64 programs runnable through qemu-user.
# Idempotent; run as root. nginx and openssl serve the middleware's loopback tests;
# iptables checks the image's firewall rules in a private network namespace.
# qemu-system-arm (from backports, to match qemu-utils), u-boot-qemu, dnsmasq-base, nmap,
# openssh-client and iputils-ping boot the qemu-arm64 image and probe it (tests/boot.rs).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-host-packages.sh: run as root" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive

# e2fsprogs >= 1.47.1 reads tarballs with `mke2fs -d`; Debian 12 has it in backports.
backports=/etc/apt/sources.list.d/baseimg-bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > "$backports" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi

# arm64 package indices let tests fetch the board's original .deb files for comparison.
dpkg --add-architecture arm64
apt-get update -qq

apt-get install -y -qq --no-install-recommends \
    mmdebstrap qemu-user-static binfmt-support arch-test \
    fdisk util-linux tar zstd xz-utils bc debian-archive-keyring \
    iptables gcc-aarch64-linux-gnu libc6-dev-arm64-cross nginx-light openssl \
    >/dev/null
# Release checks: bmaptool accepts our block maps, ssh-keygen our signatures.
apt-get install -y -qq --no-install-recommends bmap-tools openssh-client >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports \
    e2fsprogs libarchive13 >/dev/null
apt-get install -y -qq --no-install-recommends \
    u-boot-qemu dnsmasq-base nmap openssh-client iputils-ping iproute2 >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm >/dev/null

# base-middleware is cross-built for the image.
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 \
    || { echo "install-host-packages.sh: rustup target add failed" >&2; exit 1; }

if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
if ! arch-test arm64 >/dev/null; then
    echo "install-host-packages.sh: arm64 programs still cannot run (binfmt)" >&2
    exit 1
fi
echo "host packages ready: $(mke2fs -V 2>&1 | head -n1), $(mmdebstrap --version)"

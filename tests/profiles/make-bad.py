#!/usr/bin/env python3
"""Writes the generated part of tests/profiles/bad/: each case is the shipped qemu-arm64
profile with one fault. Run from the project root, then bless the golden files with
`BASEIMG_BLESS=1 cargo test --release --test profile_errors` and review every `.err` diff.
Hand-written cases in the same folder are left alone."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOOD = (ROOT / "image-profiles/qemu-arm64.toml").read_text()
OUT = ROOT / "tests/profiles/bad"
ED25519 = (ROOT / "tests/fixtures/keys/id_ed25519.pub").read_text().split()[:2]
KEY = " ".join(ED25519)
RSA2048 = " ".join((ROOT / "tests/keys/bad/rsa-2048.pub").read_text().split()[:2])


def sub(old, new, count=1):
    assert old in GOOD, old
    return GOOD.replace(old, new, count)


def key(value):
    """The profile with SSH on and one `authorized_keys` entry, written as given."""
    return sub("enabled = false\nport = 22\nauthorized_keys = []",
               f"enabled = true\nport = 22\nauthorized_keys = [{value}]")


CASES = {
    # The file as a whole.
    "empty": "",
    "only-comments": "# a profile\n\n# nothing here yet\n",
    "bom-then-typo": "\ufeff" + sub('hostname = "base"', 'hostnam = "base"'),
    "crlf-then-typo": sub('hostname = "base"', 'host_name = "base"').replace("\n", "\r\n"),
    "utf16le": GOOD.encode("utf-16"),
    "invalid-utf8": sub("# 2025-12-01T00:00:00Z", "# 2025-12-01 caf\xe9").encode("latin-1"),
    "nul-byte": sub('hostname = "base"', 'hostname = "ba\x00se"'),
    "raw-escape-char": sub('hostname = "base"', 'hostname = "ba\x1b[2Jse"'),
    "unclosed-string": sub('hostname = "base"', 'hostname = "base'),
    "trailing-garbage": sub("port = 22", "port = 22 22"),
    "duplicate-table": sub("[network]", "[image]\nhostname = \"x\"\n\n[network]"),
    "array-of-tables": sub("[image]", "[[image]]"),
    "section-as-value": sub("format = 1\n", "format = 1\nimage = \"qemu-arm64\"\n"),
    "unknown-section": GOOD + "\n[wifi]\nssid = \"home\"\n",
    "typo-in-fail2ban": sub("max_retry = 3", "max_retries = 3"),
    # The format version.
    "format-string": sub("format = 1", 'format = "1"'),
    "format-zero": sub("format = 1", "format = 0"),
    "format-float": sub("format = 1", "format = 1.0"),
    # [image]
    "name-injection": sub('name = "qemu-arm64"', 'name = "qemu\\n[ssh]\\nenabled = true"'),
    "name-path-traversal": sub('name = "qemu-arm64"', 'name = "../../etc"'),
    "board-path-traversal": sub('board = "qemu-arm64"', 'board = "../qemu-arm64"'),
    "hostname-too-long": sub('hostname = "base"', f'hostname = "{"b" * 64}"'),
    "hostname-empty": sub('hostname = "base"', 'hostname = ""'),
    "hostname-trailing-hyphen": sub('hostname = "base"', 'hostname = "base-"'),
    "hostname-lookalike": sub('hostname = "base"', 'hostname = "b\u0430se"'),
    "hostname-integer": sub('hostname = "base"', "hostname = 5"),
    "epoch-too-big": sub("source_date_epoch = 1764547200", "source_date_epoch = 4294967296"),
    "epoch-float": sub("source_date_epoch = 1764547200", "source_date_epoch = 1.7645472e9"),
    "epoch-date-string": sub("source_date_epoch = 1764547200", 'source_date_epoch = "2025-12-01"'),
    # [base]
    "suite-injection": sub('suite = "bookworm"', 'suite = "bookworm main\\ndeb http://x/ y"'),
    "mirror-newline": sub('# mirror = "http://snapshot.debian.org/archive/debian/20251201T000000Z"',
                          'mirror = "http://deb.debian.org/debian\\ndeb [trusted=yes] http://x/ y main"'),
    "mirror-space": sub('# mirror = "http://snapshot.debian.org/archive/debian/20251201T000000Z"',
                        'mirror = "http://deb.debian.org/debian bookworm"'),
    "mirror-file-scheme": sub('# mirror = "http://snapshot.debian.org/archive/debian/20251201T000000Z"',
                              'mirror = "file:///srv/mirror"'),
    "mirror-too-long": sub('# mirror = "http://snapshot.debian.org/archive/debian/20251201T000000Z"',
                           f'mirror = "http://deb.debian.org/{"d" * 600}"'),
    "packages-not-list": re.sub(r"packages = \[[^]]*\]", 'packages = "systemd"', GOOD),
    "packages-empty": re.sub(r"packages = \[[^]]*\]", "packages = []", GOOD),
    "package-option": sub('    "e2fsprogs",', '    "--allow-unauthenticated",'),
    "package-shell": sub('    "e2fsprogs",', '    "e2fsprogs;rm",'),
    "package-newline": sub('    "e2fsprogs",', '    "e2fsprogs\\nevil",'),
    "package-integer": sub('    "e2fsprogs",', "    7,"),
    # [disk]
    "disk-size-string": sub("size_mib = 3072", 'size_mib = "3G"'),
    "data-too-small": sub("data_size_mib = 256", "data_size_mib = 8"),
    # [ssh], [network], [middleware]
    "port-negative": sub("port = 22", "port = -22"),
    "port-float": sub("port = 22", "port = 22.5"),
    "ssh-port-is-https-port": sub("port = 22", "port = 443"),
    "middleware-port-is-https-port": sub("port = 8845", "port = 443"),
    "ssh-key-line-break": key(f'"{KEY}\\ncommand=\\"/bin/sh\\" {KEY}"'),
    "ssh-key-control-char": key(f'"{KEY} me\\u001b[2J"'),
    "ssh-key-rsa-2048": key(f'"{RSA2048} old"'),
    "ssh-key-private": key('"-----BEGIN OPENSSH PRIVATE KEY-----"'),
    "ssh-key-truncated": key(f'"{KEY[:-12]}"'),
    "ssh-keys-not-list": sub("authorized_keys = []", f'authorized_keys = "{KEY}"'),
    # [kernel]
    "kernel-arg-init": sub("extra_args = []", 'extra_args = ["init=/bin/sh"]'),
    "kernel-arg-single": sub("extra_args = []", 'extra_args = ["quiet", "single"]'),
    "kernel-arg-newline": sub("extra_args = []", 'extra_args = ["quiet\\nroot=/dev/sda1"]'),
    "kernel-arg-quote": sub("extra_args = []", 'extra_args = ["a=\\"b c\\""]'),
    "kernel-args-not-list": sub("extra_args = []", 'extra_args = "quiet"'),
    "panic-zero": sub("panic_seconds = 10", "panic_seconds = 0"),
    "panic-too-long": sub("panic_seconds = 10", "panic_seconds = 100000"),
    # [fail2ban]
    "max-retry-zero": sub("max_retry = 3", "max_retry = 0"),
    "find-time-string": sub("find_time_seconds = 600", 'find_time_seconds = "10m"'),
    "ban-time-too-big": sub("ban_time_seconds = 3600", "ban_time_seconds = 4294967295"),
    # [audit]
    "waive-unknown": sub("waive = []", 'waive = ["no-such-control"]'),
    "waive-not-list": sub("waive = []", 'waive = "ssh-root-login"'),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, body in CASES.items():
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        (OUT / f"{name}.toml").write_bytes(data)
    print(f"{len(CASES)} generated cases in {OUT}")


if __name__ == "__main__":
    main()

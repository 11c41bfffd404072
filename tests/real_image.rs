//! Checks of a finished image from the outside, with the standard tools a user has:
//! `sha256sum`, `sfdisk`, `debugfs`, `zstd`, `bmaptool`, `ssh-keygen`, and the board's
//! original Debian package.
//!
//! These need a built output folder, so they are ignored by default. Run them with
//! `BASEIMG_IMAGE_DIR=out/rockpro64 cargo test --test real_image -- --ignored`
//! after `baseimg build --ssh-key tests/fixtures/keys/id_ed25519.pub`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn out_dir() -> PathBuf {
    let dir =
        std::env::var_os("BASEIMG_IMAGE_DIR").expect("set BASEIMG_IMAGE_DIR to an output folder");
    // Absolute, so links made to its files from elsewhere resolve.
    std::fs::canonicalize(&dir).expect("BASEIMG_IMAGE_DIR exists")
}

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(out_dir().join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest parses")
}

fn image() -> PathBuf {
    let name = manifest()["image"].as_str().expect("image name").to_string();
    out_dir().join(format!("{name}.img"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command starts");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Reads a file of the root partition with debugfs, through an offset into the image.
fn root_file(path: &str) -> String {
    let start = manifest()["layout"]["root_start"].as_u64().expect("root_start") * 512;
    let device = format!("{}?offset={start}", image().display());
    run(Command::new("debugfs").args(["-R", &format!("cat {path}"), &device]))
}

fn root_ls(dir: &str) -> String {
    let start = manifest()["layout"]["root_start"].as_u64().expect("root_start") * 512;
    let device = format!("{}?offset={start}", image().display());
    run(Command::new("debugfs").args(["-R", &format!("ls -l {dir}"), &device]))
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn checksums_verify_with_sha256sum() {
    let out = run(Command::new("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(out_dir()));
    assert_eq!(out.lines().filter(|l| l.ends_with(": OK")).count(), 6, "{out}");
}

/// The sha256 `SHA256SUMS` lists for `name`.
fn listed_sha256(name: &str) -> String {
    let sums = std::fs::read_to_string(out_dir().join("SHA256SUMS")).expect("SHA256SUMS");
    let line = sums.lines().find(|l| l.ends_with(&format!("  {name}"))).expect("listed");
    line.split_whitespace().next().expect("hash").to_string()
}

fn image_name() -> String {
    manifest()["image"].as_str().expect("image name").to_string()
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn compressed_image_decompresses_to_the_image() {
    let name = image_name();
    let zst = out_dir().join(format!("{name}.img.zst"));
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -q -d -c '{}' | sha256sum", zst.display())));
    assert_eq!(out.split_whitespace().next(), Some(listed_sha256(&format!("{name}.img")).as_str()));
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn bmaptool_copy_of_the_compressed_image_reproduces_the_image() {
    let name = image_name();
    let tmp = tempfile::tempdir_in(out_dir().parent().expect("parent")).expect("tempdir");
    let copy = tmp.path().join("copy.img");
    run(Command::new("bmaptool")
        .arg("copy")
        .arg("--bmap")
        .arg(out_dir().join(format!("{name}.img.bmap")))
        .arg(out_dir().join(format!("{name}.img.zst")))
        .arg(&copy));
    // Unmapped blocks are zeros in the image and holes in the copy: the whole file matches.
    let copied = baseimg::fsutil::sha256_file(&copy).expect("hash the copy");
    assert_eq!(copied, listed_sha256(&format!("{name}.img")));
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn signed_outputs_verify_with_ssh_keygen_and_baseimg() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let release = tmp.path().join("release");
    std::fs::create_dir(&release).expect("release dir");
    for entry in std::fs::read_dir(out_dir()).expect("list outputs").flatten() {
        if entry.path().is_file() && entry.file_name() != "SHA256SUMS.sig" {
            std::os::unix::fs::symlink(entry.path(), release.join(entry.file_name()))
                .expect("link");
        }
    }
    std::fs::remove_file(release.join("SHA256SUMS")).expect("unlink");
    std::fs::copy(out_dir().join("SHA256SUMS"), release.join("SHA256SUMS")).expect("copy sums");
    let key = tmp.path().join("id_ed25519");
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key));
    let bin = env!("CARGO_BIN_EXE_baseimg");
    run(Command::new(bin).arg("sign").arg("--key").arg(&key).arg(&release));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let signers = tmp.path().join("allowed_signers");
    std::fs::write(&signers, format!("ci@baseimg {public}")).expect("signers");
    let sums = std::fs::File::open(release.join("SHA256SUMS")).expect("sums");
    let mut verify = Command::new("ssh-keygen");
    verify.args(["-Y", "verify", "-I", "ci@baseimg", "-n", "file", "-f"]).arg(&signers);
    run(verify.arg("-s").arg(release.join("SHA256SUMS.sig")).stdin(sums));
    let report = run(Command::new(bin).arg("verify").arg(&release).arg("--signer").arg(&signers));
    println!("{report}");
    assert!(report.contains("OK      SHA256SUMS.sig: good signature by ci@baseimg"), "{report}");
    assert!(report.contains(".img.bmap ranges: "), "{report}");
    assert_eq!(report.lines().filter(|l| l.starts_with("OK ")).count(), 8, "{report}");
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn sbom_lists_every_installed_package_with_licenses() {
    let name = image_name();
    let text = std::fs::read_to_string(out_dir().join(format!("{name}.spdx.json"))).expect("sbom");
    let sbom: serde_json::Value = serde_json::from_str(&text).expect("sbom parses");
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let m = manifest();
    let epoch = m["source_date_epoch"].as_u64().expect("epoch");
    assert_eq!(sbom["creationInfo"]["created"], baseimg::release::sbom::rfc3339(epoch));
    let packages = sbom["packages"].as_array().expect("packages");
    let listed = m["packages"].as_array().expect("manifest packages");
    assert_eq!(packages.len(), listed.len() + 1, "every package plus the image");
    for p in listed {
        let found = packages.iter().find(|e| e["name"] == p["name"]).expect("package in SBOM");
        assert_eq!(found["versionInfo"], p["version"]);
    }
    let bash = packages.iter().find(|e| e["name"] == "bash").expect("bash");
    assert!(bash["licenseDeclared"].as_str().expect("license").contains("GPL-3.0-or-later"));
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn partition_table_has_root_then_data_after_16_mib() {
    let dump = run(Command::new("sfdisk").arg("-d").arg(image()));
    println!("{dump}");
    assert!(dump.contains("label: gpt"), "{dump}");
    let parts: Vec<&str> = dump.lines().filter(|l| l.contains(" : start=")).collect();
    assert_eq!(parts.len(), 2, "{dump}");
    assert!(parts[0].contains("start=       32768") || parts[0].contains("start=32768"), "{dump}");
    assert!(parts[0].contains("name=\"root\"") && parts[1].contains("name=\"data\""), "{dump}");
    assert!(parts[0].contains("LegacyBIOSBootable"), "{dump}");
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn bootloader_blobs_equal_the_debian_package_files() {
    let m = manifest();
    assert_eq!(m["board"], "rockpro64", "this check knows the RockPro64 blobs only");
    let firmware = &m["firmware"];
    assert_eq!(firmware["package"], "u-boot-rockchip");
    let spec = format!("u-boot-rockchip:arm64={}", firmware["version"].as_str().expect("version"));
    let tmp = tempfile::tempdir().expect("tempdir");
    run(Command::new("apt-get").args(["download", &spec]).current_dir(tmp.path()));
    let deb = std::fs::read_dir(tmp.path()).expect("list").flatten().next().expect("deb").path();
    let deb_sha256 = run(Command::new("sha256sum").arg(&deb));
    assert!(
        deb_sha256.starts_with(firmware["deb_sha256"].as_str().expect("sha256")),
        "{deb_sha256}"
    );
    let tree = tmp.path().join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    let disk = std::fs::read(image()).expect("image");
    for (file, sector) in [("idbloader.img", 64usize), ("u-boot.itb", 16384)] {
        let want =
            std::fs::read(tree.join("usr/lib/u-boot/rockpro64-rk3399").join(file)).expect("blob");
        let at = sector * 512;
        assert_eq!(&disk[at..at + want.len()], want.as_slice(), "{file} at sector {sector}");
    }
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn root_filesystem_carries_the_hardened_configs() {
    let sshd = root_file("/etc/ssh/sshd_config");
    for line in
        ["PasswordAuthentication no", "PermitRootLogin no", "KbdInteractiveAuthentication no"]
    {
        assert!(sshd.lines().any(|l| l == line), "sshd_config lacks `{line}`");
    }
    for rules in ["/etc/iptables/rules.v4", "/etc/iptables/rules.v6"] {
        let text = root_file(rules);
        assert!(
            text.contains(":INPUT DROP [0:0]") && text.contains(":FORWARD DROP [0:0]"),
            "{rules}"
        );
    }
    let shadow = root_file("/etc/shadow");
    for user in ["root", "base"] {
        let line = shadow.lines().find(|l| l.starts_with(&format!("{user}:"))).expect("user");
        assert!(line.split(':').nth(1).expect("hash").starts_with('!'), "{user} is not locked");
    }
    let udev = root_file("/etc/udev/rules.d/60-baseimg-usb-hid.rules");
    assert!(udev.contains("ATTR{bInterfaceClass}==\"03\", ATTR{authorized}=\"0\""), "{udev}");
    let keys = root_file("/home/base/.ssh/authorized_keys");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/id_ed25519.pub");
    let fixture = std::fs::read_to_string(fixture).expect("fixture key");
    assert!(keys.contains(fixture.trim()), "the given key is not in authorized_keys");
}

#[test]
#[ignore = "needs a built image: set BASEIMG_IMAGE_DIR"]
fn image_holds_no_per_device_secrets() {
    let ssh = root_ls("/etc/ssh");
    assert!(!ssh.contains("ssh_host_"), "host keys in the image:\n{ssh}");
    assert_eq!(root_file("/etc/machine-id"), "", "machine-id must be empty");
    let boot = root_ls("/boot");
    assert!(boot.contains("vmlinuz-") && boot.contains("initrd.img-"), "{boot}");
}

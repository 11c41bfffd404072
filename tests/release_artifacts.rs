//! Release artifacts and flashing on a small synthetic image: `bmaptool` accepts our block
//! map, `ssh-keygen -Y verify` accepts our signature, `baseimg verify` catches a changed
//! file, and `baseimg flash` onto a real loop device writes only the mapped ranges, catches
//! a damaged compressed image and refuses a mounted device.
//!
//! Needs root (losetup, mount) and the host tools ci/install-host-packages.sh installs.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use baseimg::release::{bmap, compress};

const MIB: u64 = 1 << 20;
const IMAGE_SIZE: u64 = 48 * MIB;

fn baseimg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_baseimg"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A sparse image with data at its start (like a partition table), in its middle (some
/// text, some noise) and at its end, plus a written block of zeros.
fn make_image(dir: &Path) -> PathBuf {
    let path = dir.join("t.img");
    let file = std::fs::File::create(&path).expect("create image");
    file.set_len(IMAGE_SIZE).expect("size image");
    let mut noise = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..(3 * MIB) {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        noise.push((x >> 16) as u8);
    }
    let text: Vec<u8> = (0..200_000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    file.write_all_at(b"\x55\xaa partition table stand-in", 0).expect("head");
    file.write_all_at(&text, 5 * MIB).expect("text");
    file.write_all_at(&vec![0u8; 64 * 1024], 12 * MIB).expect("zeros");
    file.write_all_at(&noise, 20 * MIB).expect("noise");
    file.write_all_at(b"backup table stand-in", IMAGE_SIZE - 4096).expect("tail");
    path
}

/// The image with its `.zst`, `.bmap` and a `SHA256SUMS`, as a build publishes them.
fn make_outputs(dir: &Path) -> (PathBuf, bmap::Bmap) {
    let img = make_image(dir);
    compress::compress(&img, &dir.join("t.img.zst")).expect("compress");
    let map = bmap::create(&img).expect("bmap");
    std::fs::write(dir.join("t.img.bmap"), map.to_xml()).expect("write bmap");
    let mut sums = String::new();
    for name in ["t.img", "t.img.zst", "t.img.bmap"] {
        let hash = baseimg::fsutil::sha256_file(&dir.join(name)).expect("hash");
        sums.push_str(&format!("{hash}  {name}\n"));
    }
    std::fs::write(dir.join("SHA256SUMS"), sums).expect("sums");
    (img, map)
}

/// A loop device over a file filled with 0xEE, detached when dropped.
struct Loop {
    device: String,
    backing: PathBuf,
}

impl Loop {
    fn new(dir: &Path, name: &str) -> Self {
        let backing = dir.join(name);
        std::fs::write(&backing, vec![0xeeu8; IMAGE_SIZE as usize]).expect("backing file");
        let out = run_ok(Command::new("losetup").args(["--find", "--show"]).arg(&backing));
        Loop { device: out.trim().to_string(), backing }
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.device).expect("read loop device")
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.device).output();
        let _ = Command::new("losetup").arg("-d").arg(&self.device).output();
        let _ = std::fs::remove_file(&self.backing);
    }
}

fn assert_ranges_equal(map: &bmap::Bmap, image: &[u8], target: &[u8]) {
    for r in &map.ranges {
        let (start, end) = r.bytes(map.block_size, map.image_size);
        let (start, end) = (start as usize, end as usize);
        assert!(image[start..end] == target[start..end], "range {} differs", r.label());
    }
}

#[test]
fn bmaptool_copy_reproduces_the_mapped_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (img, map) = make_outputs(dir.path());
    assert_eq!(map.ranges.len(), 4, "head, text, noise, tail; the zeros are unmapped");
    let copy = dir.path().join("copy.img");
    run_ok(
        Command::new("bmaptool")
            .arg("copy")
            .arg("--bmap")
            .arg(dir.path().join("t.img.bmap"))
            .arg(&img)
            .arg(&copy),
    );
    let image = std::fs::read(&img).expect("image");
    assert_ranges_equal(&map, &image, &std::fs::read(&copy).expect("copy"));
    run_ok(Command::new("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(dir.path()));
}

#[test]
fn signature_is_accepted_by_ssh_keygen_and_by_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_outputs(dir.path());
    let keys = tempfile::tempdir().expect("key dir");
    let key = keys.path().join("id_ed25519");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "t", "-f"])
            .arg(&key),
    );
    run_ok(baseimg().arg("sign").arg("--key").arg(&key).arg(dir.path()));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(&signers, format!("release@example.org {public}")).expect("signers");

    let sums = std::fs::File::open(dir.path().join("SHA256SUMS")).expect("sums");
    let out = run_ok(
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-I", "release@example.org", "-n", "file", "-f"])
            .arg(&signers)
            .arg("-s")
            .arg(dir.path().join("SHA256SUMS.sig"))
            .stdin(sums),
    );
    assert!(out.contains("Good \"file\" signature"), "{out}");

    let report = run_ok(baseimg().arg("verify").arg(dir.path()).arg("--signer").arg(&signers));
    assert!(
        report.contains("OK      SHA256SUMS.sig: good signature by release@example.org"),
        "{report}"
    );
    assert!(report.contains("OK      t.img.bmap ranges: 4 ranges"), "{report}");
    assert!(!report.contains("FAILED"), "{report}");
}

#[test]
fn verify_names_each_damaged_file_and_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_outputs(dir.path());
    let img = std::fs::OpenOptions::new().write(true).open(dir.path().join("t.img")).expect("open");
    img.write_all_at(b"X", 20 * MIB + 10).expect("damage");
    let out = run(baseimg().arg("verify").arg(dir.path()));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("FAILED  t.img: sha256 is"), "{report}");
    assert!(report.contains("OK      t.img.zst: sha256 matches"), "{report}");
    assert!(
        report.contains("FAILED  t.img.bmap ranges: 1 of 4 ranges differ in t.img: blocks 5120-"),
        "{report}"
    );

    let empty = tempfile::tempdir().expect("tempdir");
    let out = run(baseimg().arg("verify").arg(empty.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SHA256SUMS"));
}

#[test]
fn flash_writes_only_mapped_ranges_onto_a_loop_device_and_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (img, map) = make_outputs(dir.path());
    let target = Loop::new(dir.path(), "target");
    let out = run_ok(
        baseimg().arg("flash").arg(dir.path().join("t.img.zst")).arg(&target.device).arg("--yes"),
    );
    assert!(out.starts_with(&format!("wrote {} bytes in 4 ranges", map.mapped_bytes())), "{out}");
    assert!(out.contains("read back and verified"), "{out}");
    let written = target.bytes();
    let image = std::fs::read(&img).expect("image");
    assert_ranges_equal(&map, &image, &written);
    assert_eq!(written[12 * MIB as usize], 0xee, "an unmapped block was written");
}

#[test]
fn damaged_compressed_image_stops_the_flash_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_outputs(dir.path());
    let zst = dir.path().join("t.img.zst");
    let len = std::fs::metadata(&zst).expect("zst").len();
    let file = std::fs::OpenOptions::new().write(true).open(&zst).expect("open");
    file.write_all_at(&[0x00, 0xff, 0x13, 0x37], len / 2).expect("damage");
    let target = Loop::new(dir.path(), "target");
    let out = run(baseimg().arg("flash").arg(&zst).arg(&target.device).arg("--yes"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the target is incomplete"), "{err}");
    assert!(err.contains("writing blocks "), "the failing range is named: {err}");
    assert_eq!(&target.bytes()[..512], &[0u8; 512][..], "the partition table is left cleared");
}

#[test]
fn mounted_device_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_outputs(dir.path());
    let target = Loop::new(dir.path(), "target");
    run_ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&target.device));
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mount point");
    run_ok(Command::new("mount").arg(&target.device).arg(&mnt));
    let out =
        run(baseimg().arg("flash").arg(dir.path().join("t.img")).arg(&target.device).arg("--yes"));
    let err = String::from_utf8_lossy(&out.stderr);
    run_ok(Command::new("umount").arg(&mnt));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is mounted") && err.contains("nothing was written"), "{err}");
    // The file system is whole (its first block was not cleared, its check passes) and none
    // of the image's data reached the device.
    run_ok(Command::new("e2fsck").args(["-n", "-f"]).arg(&target.device));
    let text_at = 5 * MIB as usize;
    assert!(!target.bytes()[text_at..].starts_with(b"line 0\n"), "image data was written");
}

#[test]
fn flash_without_a_terminal_or_yes_asks_for_yes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (img, _) = make_outputs(dir.path());
    let existing = dir.path().join("existing.img");
    std::fs::write(&existing, b"keep me").expect("existing file");
    let out =
        run(baseimg().arg("flash").arg(&img).arg(&existing).stdin(std::process::Stdio::null()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pass --yes"), "{err}");
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");
}

#[test]
fn image_is_not_flashed_onto_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (img, _) = make_outputs(dir.path());
    let before = baseimg::fsutil::sha256_file(&img).expect("hash");
    let out = run(baseimg().arg("flash").arg(&img).arg(&img).arg("--yes"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is the image itself"), "{err}");
    assert_eq!(baseimg::fsutil::sha256_file(&img).expect("hash"), before);
}

#[test]
fn flash_into_a_new_file_without_a_bmap_writes_the_whole_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (img, _) = make_outputs(dir.path());
    std::fs::remove_file(dir.path().join("t.img.bmap")).expect("drop the bmap");
    let copy = dir.path().join("copy.img");
    let out = run(baseimg().arg("flash").arg(dir.path().join("t.img.zst")).arg(&copy));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("no bmap at"), "the whole-image write is stated: {err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with(&format!("wrote {IMAGE_SIZE} bytes in 1 ranges")), "{stdout}");
    assert!(std::fs::read(&copy).expect("copy") == std::fs::read(&img).expect("image"));
}

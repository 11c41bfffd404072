//! The rendered overlay of each shipped profile, compared byte for byte with tests/golden/.
//! Symlinks are compared through OVERLAY.txt, which lists their targets.
//! Set BASEIMG_BLESS=1 to rewrite the golden files after a deliberate template change.

use std::path::{Path, PathBuf};

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("list").flatten() {
            let path = entry.path();
            let kind = entry.file_type().expect("type");
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(path.strip_prefix(dir).expect("under").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn check_profile(name: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("overlay");
    let opts = baseimg::render_cmd::RenderOptions {
        project: project(),
        profile: name.to_string(),
        out: out.clone(),
        ssh_keys: vec![project().join("tests/fixtures/keys/id_ed25519.pub")],
        base_tree: Some(project().join("tests/fixtures/base-tree")),
        cache_dir: None,
    };
    baseimg::render_cmd::render(&opts).expect("profile renders");
    let golden = project().join("tests/golden").join(name);
    if std::env::var_os("BASEIMG_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        std::fs::create_dir_all(&golden).expect("golden dir");
        for rel in files_under(&out) {
            let dest = golden.join(&rel);
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::copy(out.join(&rel), dest).expect("copy");
        }
        return;
    }
    let rendered = files_under(&out);
    assert_eq!(rendered, files_under(&golden), "the set of rendered files changed");
    for rel in rendered {
        let got = std::fs::read_to_string(out.join(&rel)).unwrap_or_default();
        let want = std::fs::read_to_string(golden.join(&rel)).unwrap_or_default();
        pretty_assertions::assert_eq!(got, want, "{} differs from its golden file", rel.display());
    }
}

#[test]
fn rockpro64_overlay_matches_golden_files() {
    check_profile("rockpro64");
}

#[test]
fn qemu_arm64_overlay_matches_golden_files() {
    check_profile("qemu-arm64");
}

#[test]
fn rendered_sshd_config_refuses_passwords_and_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("o");
    let opts = baseimg::render_cmd::RenderOptions {
        project: project(),
        profile: "rockpro64".into(),
        out: out.clone(),
        ssh_keys: vec![],
        base_tree: Some(project().join("tests/fixtures/base-tree")),
        cache_dir: None,
    };
    baseimg::render_cmd::render(&opts).expect("renders");
    let sshd = std::fs::read_to_string(out.join("rootfs/etc/ssh/sshd_config")).expect("sshd");
    for line in ["PasswordAuthentication no", "PermitRootLogin no", "AllowUsers base"] {
        assert!(sshd.lines().any(|l| l == line), "missing `{line}`");
    }
    let shadow = std::fs::read_to_string(out.join("rootfs/etc/shadow")).expect("shadow");
    assert!(shadow.lines().any(|l| l.starts_with("root:!*:")), "{shadow}");
    assert!(shadow.lines().any(|l| l.starts_with("base:!*:")), "{shadow}");
    let listing = std::fs::read_to_string(out.join("OVERLAY.txt")).expect("listing");
    assert!(listing.contains("remove /etc/ssh/ssh_host_*"), "{listing}");
    assert!(listing.contains("remove /etc/systemd/system/multi-user.target.wants/ssh.service"));
}

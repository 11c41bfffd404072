use super::*;

fn base_fixture(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("base.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).expect("create"));
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(4_000_000_000);
        h.set_size(data.len() as u64);
        match link {
            Some(t) => b.append_link(&mut h, path, t).expect("link"),
            None => b.append_data(&mut h, path, data).expect("data"),
        }
    };
    add("./etc/", tar::EntryType::Directory, b"", None);
    add("./etc/zz-target", tar::EntryType::Regular, b"shared", None);
    add("./etc/aa-link", tar::EntryType::Link, b"", Some("./etc/zz-target"));
    add("./etc/ssh/", tar::EntryType::Directory, b"", None);
    add("./etc/ssh/ssh_host_ed25519_key", tar::EntryType::Regular, b"secret", None);
    add("./etc/motd", tar::EntryType::Regular, b"hello", None);
    b.finish().expect("finish");
    path
}

fn read_entries(path: &Path) -> Vec<(String, tar::EntryType, Vec<u8>, u64)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).expect("open"));
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            (name, e.header().entry_type(), data, e.header().mtime().expect("mtime"))
        })
        .collect()
}

#[test]
fn overlay_replaces_adds_and_removes_in_sorted_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_fixture(dir.path());
    let mut overlay = Overlay::default();
    overlay.file("etc/motd", "hardened", 0o644);
    overlay.file("etc/new", "n", 0o600);
    overlay.remove_prefix("etc/ssh/ssh_host_");
    let out = dir.path().join("rootfs.tar");
    let hash = assemble(&base, &overlay, &out, 1_000).expect("assemble");
    assert_eq!(hash, crate::fsutil::sha256_file(&base).expect("hash"));

    let entries = read_entries(&out);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["etc", "etc/aa-link", "etc/motd", "etc/new", "etc/ssh", "etc/zz-target"]);
    assert_eq!(entries[2].2, b"hardened");
    assert!(entries.iter().all(|e| e.3 <= 1_000), "timestamps are clamped");
}

#[test]
fn hard_link_sorted_before_its_target_carries_the_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_fixture(dir.path());
    let out = dir.path().join("rootfs.tar");
    assemble(&base, &Overlay::default(), &out, 1_000).expect("assemble");
    let entries = read_entries(&out);
    let link = entries.iter().find(|e| e.0 == "etc/aa-link").expect("link");
    let target = entries.iter().find(|e| e.0 == "etc/zz-target").expect("target");
    assert_eq!((link.1, link.2.as_slice()), (tar::EntryType::Regular, &b"shared"[..]));
    assert_eq!(target.1, tar::EntryType::Link);
}

#[test]
fn same_inputs_give_identical_tarballs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_fixture(dir.path());
    let mut overlay = Overlay::default();
    overlay.file("etc/x", "x", 0o644);
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    assemble(&base, &overlay, &a, 7).expect("a");
    assemble(&base, &overlay, &b, 7).expect("b");
    assert_eq!(std::fs::read(a).expect("a"), std::fs::read(b).expect("b"));
}

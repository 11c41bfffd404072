//! Fixture trees for the audit tests: the good baseline, mutated in memory, audited as a tarball.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baseimg::audit::context::Expect;
use baseimg::audit::report::{Report, Status};

/// One node of a fixture tree.
#[derive(Debug, Clone)]
pub enum Body {
    File(Vec<u8>),
    Dir,
    Link(String),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub body: Body,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A root filesystem held in memory, paths absolute.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub nodes: BTreeMap<String, Node>,
    pub expect: Expect,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit-good")
}

impl Fixture {
    /// The good baseline: the rendered qemu-arm64 overlay plus the base files the controls read.
    pub fn good() -> Self {
        let mut fixture = Self { nodes: BTreeMap::new(), expect: Expect::default() };
        let root = fixture_dir().join("rootfs");
        fixture.load(&root, &root);
        for list in ["OVERLAY.txt", "base-modes.txt"] {
            let text = std::fs::read_to_string(fixture_dir().join(list)).expect("mode list");
            fixture.apply_modes(&text);
        }
        fixture
    }

    fn load(&mut self, root: &Path, dir: &Path) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).expect("fixture folder").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let host = entry.path();
            let path = format!("/{}", host.strip_prefix(root).expect("inside").display());
            let meta = std::fs::symlink_metadata(&host).expect("fixture entry");
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&host).expect("link").display().to_string();
                self.put(&path, Body::Link(target), 0o777);
            } else if meta.is_dir() {
                self.put(&path, Body::Dir, 0o755);
                self.load(root, &host);
            } else if entry.file_name() != ".keep" {
                let exec =
                    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
                self.put(
                    &path,
                    Body::File(std::fs::read(&host).expect("file")),
                    if exec { 0o755 } else { 0o644 },
                );
            }
        }
    }

    fn put(&mut self, path: &str, body: Body, mode: u32) {
        self.nodes.insert(path.to_string(), Node { body, mode, uid: 0, gid: 0 });
    }

    /// Applies `kind mode uid:gid path` lines (the render's OVERLAY.txt format).
    fn apply_modes(&mut self, text: &str) {
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [kind, mode, owner, path, ..] = words.as_slice() else { continue };
            if !matches!(*kind, "file" | "dir" | "link") {
                continue;
            }
            let (uid, gid) = owner.split_once(':').expect("uid:gid");
            let node = self.nodes.entry(path.to_string()).or_insert(Node {
                body: Body::Dir,
                mode: 0,
                uid: 0,
                gid: 0,
            });
            node.mode = u32::from_str_radix(mode, 8).expect("octal mode");
            node.uid = uid.parse().expect("uid");
            node.gid = gid.parse().expect("gid");
        }
    }

    /// The text of a file.
    pub fn text(&self, path: &str) -> String {
        match &self.nodes.get(path).unwrap_or_else(|| panic!("{path} missing")).body {
            Body::File(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            other => panic!("{path} is {other:?}"),
        }
    }

    /// Writes a file (root-owned 0644 when new, metadata kept otherwise).
    pub fn write(&mut self, path: &str, text: &str) -> &mut Self {
        self.write_bytes(path, text.as_bytes().to_vec())
    }

    pub fn write_bytes(&mut self, path: &str, bytes: Vec<u8>) -> &mut Self {
        self.ensure_parents(path);
        let node = self.nodes.entry(path.to_string()).or_insert(Node {
            body: Body::Dir,
            mode: 0o644,
            uid: 0,
            gid: 0,
        });
        node.body = Body::File(bytes);
        self
    }

    fn ensure_parents(&mut self, path: &str) {
        let mut dir = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            dir = format!("{dir}/{part}");
            self.nodes.entry(dir.clone()).or_insert(Node {
                body: Body::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
        }
    }

    /// Replaces text in a file; the text must be there.
    pub fn replace(&mut self, path: &str, from: &str, to: &str) -> &mut Self {
        let text = self.text(path);
        assert!(text.contains(from), "{path} has no `{from}`");
        self.write(path, &text.replacen(from, to, 1))
    }

    pub fn append(&mut self, path: &str, more: &str) -> &mut Self {
        let text = self.text(path);
        self.write(path, &format!("{text}{more}"))
    }

    pub fn prepend(&mut self, path: &str, first: &str) -> &mut Self {
        let text = self.text(path);
        self.write(path, &format!("{first}{text}"))
    }

    /// Removes a path and everything below it.
    pub fn remove(&mut self, path: &str) -> &mut Self {
        let below = format!("{path}/");
        self.nodes.retain(|p, _| p != path && !p.starts_with(&below));
        self
    }

    pub fn chmod(&mut self, path: &str, mode: u32) -> &mut Self {
        self.nodes.get_mut(path).unwrap_or_else(|| panic!("{path} missing")).mode = mode;
        self
    }

    pub fn chown(&mut self, path: &str, uid: u64, gid: u64) -> &mut Self {
        let node = self.nodes.get_mut(path).unwrap_or_else(|| panic!("{path} missing"));
        node.uid = uid;
        node.gid = gid;
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.ensure_parents(path);
        self.put(path, Body::Link(target.to_string()), 0o777);
        self
    }

    /// Writes the tree as a plain tar with numeric owners, like the build's rootfs tarball.
    pub fn write_tar(&self, file: &Path) {
        let out = std::fs::File::create(file).expect("tar file");
        let mut builder = tar::Builder::new(out);
        for (path, node) in &self.nodes {
            let mut header = tar::Header::new_gnu();
            header.set_mode(node.mode);
            header.set_uid(node.uid);
            header.set_gid(node.gid);
            header.set_mtime(0);
            let name = path.trim_start_matches('/');
            match &node.body {
                Body::File(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    builder.append_data(&mut header, name, bytes.as_slice()).expect("file entry");
                }
                Body::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder.append_data(&mut header, name, std::io::empty()).expect("dir entry");
                }
                Body::Link(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, name, target).expect("link entry");
                }
            }
        }
        builder.finish().expect("tar end");
    }

    /// Audits the tree (as a tarball) with the fixture's expectations.
    pub fn audit(&self) -> Report {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("test.rootfs.tar");
        self.write_tar(&file);
        let tree = baseimg::audit::open(&file).expect("tarball opens");
        baseimg::audit::audit(tree.as_ref(), self.expect.clone(), &[], "fixture")
    }
}

/// The status of one control, with the whole finding in the panic message when absent.
pub fn status(report: &Report, control: &str) -> Status {
    report.get(control).unwrap_or_else(|| panic!("no control {control}")).status
}

/// Asserts that `control` fails and returns what it found (for message checks).
pub fn assert_fails(report: &Report, control: &str) -> String {
    let finding = report.get(control).unwrap_or_else(|| panic!("no control {control}"));
    assert_eq!(finding.status, Status::Fail, "{control} should fail: {finding:?}");
    format!(
        "{} @ {}",
        finding.found,
        finding.at.as_ref().map(ToString::to_string).unwrap_or_default()
    )
}

/// Asserts that `control` passes.
pub fn assert_passes(report: &Report, control: &str) {
    let finding = report.get(control).unwrap_or_else(|| panic!("no control {control}"));
    assert_eq!(finding.status, Status::Pass, "{control} should pass: {finding:?}");
}

/// Every failing control of a report, for messages.
pub fn failures(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.status == Status::Fail)
        .map(|f| format!("{}: {} @ {:?}", f.control, f.found, f.at))
        .collect()
}

//! A plain rootfs tarball read once into an index of nodes; file data is read on demand.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::tree::{normalize, Kind, Meta, Tree};

/// Where the bytes of one node are.
#[derive(Debug, Clone)]
enum Data {
    None,
    /// Offset and length of a regular file's data in the tarball.
    Span(u64, u64),
    /// A symlink's target.
    Link(String),
    /// A hard link to another path of the tarball.
    HardLink(String),
}

#[derive(Debug, Clone)]
struct Node {
    meta: Meta,
    data: Data,
}

/// The index of a tarball: every path's metadata, children per folder, data offsets.
pub struct TarTree {
    file: PathBuf,
    nodes: BTreeMap<String, Node>,
    children: BTreeMap<String, BTreeSet<String>>,
}

impl TarTree {
    /// Reads every header of the plain tar at `file`.
    pub fn open(file: &Path) -> anyhow::Result<Self> {
        let handle = std::fs::File::open(file)
            .with_context(|| format!("opening tarball `{}`", file.display()))?;
        let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, handle));
        let mut tree =
            Self { file: file.to_path_buf(), nodes: BTreeMap::new(), children: BTreeMap::new() };
        tree.add_dir("/", Meta { kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0 });
        let entries =
            archive.entries().with_context(|| format!("reading tarball `{}`", file.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading tarball `{}`", file.display()))?;
            tree.add_entry(&entry)
                .with_context(|| format!("reading an entry of `{}`", file.display()))?;
        }
        Ok(tree)
    }

    fn add_entry<R: Read>(&mut self, entry: &tar::Entry<R>) -> anyhow::Result<()> {
        let header = entry.header();
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let mode = header.mode()? & 0o7777;
        let uid = u32::try_from(header.uid()?).context("uid out of range")?;
        let gid = u32::try_from(header.gid()?).context("gid out of range")?;
        let link = || entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned());
        let (kind, data) = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                (Kind::File, Data::Span(entry.raw_file_position(), header.size()?))
            }
            tar::EntryType::Directory => (Kind::Dir, Data::None),
            tar::EntryType::Symlink => (Kind::Symlink, Data::Link(link().unwrap_or_default())),
            tar::EntryType::Link => {
                (Kind::File, Data::HardLink(normalize(&link().unwrap_or_default())))
            }
            _ => (Kind::Other, Data::None),
        };
        let meta = Meta { kind, mode, uid, gid };
        if kind == Kind::Dir {
            self.add_dir(&path, meta);
        } else {
            self.insert(&path, Node { meta, data });
        }
        Ok(())
    }

    fn add_dir(&mut self, path: &str, meta: Meta) {
        self.insert(path, Node { meta, data: Data::None });
        self.children.entry(path.to_string()).or_default();
    }

    fn insert(&mut self, path: &str, node: Node) {
        if path != "/" {
            let (parent, name) = split_parent(path);
            if !self.nodes.contains_key(parent) {
                self.add_dir(parent, Meta { kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0 });
            }
            self.children.entry(parent.to_string()).or_default().insert(name.to_string());
        }
        self.nodes.insert(path.to_string(), node);
    }

    fn node(&self, path: &str) -> anyhow::Result<&Node> {
        self.nodes.get(path).with_context(|| format!("`{path}` is not in the tarball"))
    }
}

/// `/a/b/c` as (`/a/b`, `c`).
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

impl Tree for TarTree {
    fn lstat(&self, path: &str) -> anyhow::Result<Option<Meta>> {
        Ok(self.nodes.get(path).map(|n| n.meta))
    }

    fn read_raw(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let (offset, len) = match &self.node(path)?.data {
            Data::Span(offset, len) => (*offset, *len),
            Data::HardLink(target) => match &self.node(target)?.data {
                Data::Span(offset, len) => (*offset, *len),
                _ => anyhow::bail!("hard link `{path}` points at `{target}`, not a file"),
            },
            _ => anyhow::bail!("`{path}` is not a regular file"),
        };
        let mut file = std::fs::File::open(&self.file)
            .with_context(|| format!("opening tarball `{}`", self.file.display()))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn list_raw(&self, path: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.children.get(path).map(|c| c.iter().cloned().collect()).unwrap_or_default())
    }

    fn read_link(&self, path: &str) -> anyhow::Result<String> {
        match &self.node(path)?.data {
            Data::Link(target) => Ok(target.clone()),
            _ => anyhow::bail!("`{path}` is not a symlink"),
        }
    }

    fn walk(&self, visit: &mut dyn FnMut(&str, &Meta)) -> anyhow::Result<()> {
        for (path, node) in &self.nodes {
            if path != "/" {
                visit(path, &node.meta);
            }
        }
        Ok(())
    }
}

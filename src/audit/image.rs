//! A disk image's root partition (GPT, named `root`, ext4) read through `debugfs`, never mounted.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::tree::{join, Kind, Meta, Tree};
use crate::runner::Cmd;

const SECTOR: u64 = 512;
/// Files below these folders are copied out in one `debugfs` run the first time one is read.
const PREFETCH: &[&str] = &["/etc", "/boot/extlinux", "/home", "/root", "/usr/lib", "/lib"];
/// Files larger than this are copied out only when asked for (kernels, initramfs).
const PREFETCH_MAX: u64 = 256 * 1024;

#[derive(Debug, Clone)]
struct Node {
    inode: u64,
    meta: Meta,
    size: u64,
}

/// The ext4 root filesystem of a disk image (or a bare ext4 file), indexed once.
pub struct ImageTree {
    device: String,
    nodes: BTreeMap<String, Node>,
    children: BTreeMap<String, Vec<String>>,
    scratch: tempfile::TempDir,
    dumped: RefCell<HashMap<u64, PathBuf>>,
    prefetched: RefCell<bool>,
}

/// Byte offset of the filesystem to read: the GPT partition named `root`, or 0 for bare ext4.
pub fn root_offset(file: &Path) -> anyhow::Result<u64> {
    let mut f =
        std::fs::File::open(file).with_context(|| format!("opening image `{}`", file.display()))?;
    let mut head = vec![0u8; 2048];
    f.read_exact(&mut head).with_context(|| format!("reading image `{}`", file.display()))?;
    if head[1080..1082] == [0x53, 0xEF] {
        return Ok(0);
    }
    anyhow::ensure!(&head[512..520] == b"EFI PART", "`{}` has no GPT", file.display());
    let entries_lba = u64_at(&head, 512 + 72);
    let count = u32_at(&head, 512 + 80);
    let size = u32_at(&head, 512 + 84);
    let mut table = vec![0u8; count as usize * size as usize];
    f.seek(SeekFrom::Start(entries_lba * SECTOR))?;
    f.read_exact(&mut table).context("reading the GPT partition entries")?;
    for entry in table.chunks(size as usize) {
        if partition_name(entry) == "root" {
            return Ok(u64_at(entry, 32) * SECTOR);
        }
    }
    anyhow::bail!("`{}` has no GPT partition named `root`", file.display())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default())
}

fn partition_name(entry: &[u8]) -> String {
    let units: Vec<u16> = entry[56..128.min(entry.len())]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

impl ImageTree {
    /// Indexes every folder of the root filesystem, one `debugfs` run per tree level.
    pub fn open(file: &Path) -> anyhow::Result<Self> {
        let offset = root_offset(file)?;
        let device = format!("{}?offset={offset}", file.display());
        let scratch = tempfile::tempdir().context("creating a scratch folder")?;
        let mut tree = Self {
            device,
            nodes: BTreeMap::new(),
            children: BTreeMap::new(),
            scratch,
            dumped: RefCell::new(HashMap::new()),
            prefetched: RefCell::new(false),
        };
        let root = Meta { kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0 };
        tree.nodes.insert("/".into(), Node { inode: 2, meta: root, size: 0 });
        tree.index()?;
        Ok(tree)
    }

    fn index(&mut self) -> anyhow::Result<()> {
        let mut level = vec!["/".to_string()];
        while !level.is_empty() {
            let script: String = level.iter().map(|d| format!("ls -p \"{d}\"\n")).collect();
            let out = self.debugfs_script(&script)?;
            level = self.add_listing(&out);
        }
        Ok(())
    }

    /// Reads `ls -p` output of several folders; returns the subfolders found.
    fn add_listing(&mut self, out: &str) -> Vec<String> {
        let mut dirs = Vec::new();
        let mut current = String::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("debugfs: ls -p ") {
                current = rest.trim_matches('"').to_string();
                self.children.entry(current.clone()).or_default();
                continue;
            }
            let Some((name, node)) = parse_ls_line(line) else { continue };
            if name == "." || name == ".." || current.is_empty() {
                continue;
            }
            let path = join(&current, &name);
            if node.meta.kind == Kind::Dir {
                dirs.push(path.clone());
            }
            self.children.entry(current.clone()).or_default().push(name);
            self.nodes.insert(path, node);
        }
        dirs
    }

    fn debugfs_script(&self, script: &str) -> anyhow::Result<String> {
        let file = self.scratch.path().join("script");
        std::fs::write(&file, script).context("writing the debugfs script")?;
        let out = Cmd::new("debugfs")
            .quiet()
            .from_package("e2fsprogs")
            .arg("-f")
            .arg(&file)
            .arg(&self.device)
            .run()?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn node(&self, path: &str) -> anyhow::Result<&Node> {
        self.nodes.get(path).with_context(|| format!("`{path}` is not in the image"))
    }

    /// Copies out every small file below [`PREFETCH`] in one `debugfs` run.
    fn prefetch(&self) -> anyhow::Result<()> {
        if self.prefetched.replace(true) {
            return Ok(());
        }
        let wanted: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(p, n)| {
                n.meta.kind == Kind::File
                    && n.size <= PREFETCH_MAX
                    && PREFETCH.iter().any(|d| p.starts_with(&format!("{d}/")))
            })
            .map(|(_, n)| n.inode)
            .collect();
        self.dump(&wanted)
    }

    fn dump(&self, inodes: &[u64]) -> anyhow::Result<()> {
        let dir = self.scratch.path();
        let mut script = String::new();
        for ino in inodes {
            script.push_str(&format!("dump <{ino}> \"{}/{ino}\"\n", dir.display()));
        }
        self.debugfs_script(&script)?;
        let mut dumped = self.dumped.borrow_mut();
        for ino in inodes {
            dumped.insert(*ino, dir.join(ino.to_string()));
        }
        Ok(())
    }
}

/// One line of `ls -p`: `/inode/mode/uid/gid/name/size/`.
fn parse_ls_line(line: &str) -> Option<(String, Node)> {
    let inner = line.strip_prefix('/')?.strip_suffix('/')?;
    let mut parts = inner.splitn(5, '/');
    let inode = parts.next()?.parse().ok()?;
    let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
    let uid = parts.next()?.parse().ok()?;
    let gid = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let (name, size) = rest.rsplit_once('/')?;
    let kind = match mode & 0o170000 {
        0o040000 => Kind::Dir,
        0o100000 => Kind::File,
        0o120000 => Kind::Symlink,
        _ => Kind::Other,
    };
    let meta = Meta { kind, mode: mode & 0o7777, uid, gid };
    Some((name.to_string(), Node { inode, meta, size: size.parse().unwrap_or(0) }))
}

impl Tree for ImageTree {
    fn lstat(&self, path: &str) -> anyhow::Result<Option<Meta>> {
        Ok(self.nodes.get(path).map(|n| n.meta))
    }

    fn read_raw(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        self.prefetch()?;
        let inode = self.node(path)?.inode;
        if !self.dumped.borrow().contains_key(&inode) {
            self.dump(&[inode])?;
        }
        let host = self.dumped.borrow()[&inode].clone();
        std::fs::read(&host).with_context(|| format!("reading `{path}` copied from the image"))
    }

    fn list_raw(&self, path: &str) -> anyhow::Result<Vec<String>> {
        let mut names = self.children.get(path).cloned().unwrap_or_default();
        names.sort();
        Ok(names)
    }

    fn read_link(&self, path: &str) -> anyhow::Result<String> {
        let inode = self.node(path)?.inode;
        let stat = self.debugfs_script(&format!("stat <{inode}>\n"))?;
        if let Some(rest) = stat.split("Fast link dest: \"").nth(1) {
            return Ok(rest.rsplit_once('"').map(|(t, _)| t).unwrap_or(rest).to_string());
        }
        let out = self.debugfs_script(&format!("cat <{inode}>\n"))?;
        Ok(out.lines().skip(1).collect::<Vec<_>>().join("\n"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_line_gives_mode_owner_and_name() {
        let (name, node) = parse_ls_line("/16/040755/1000/42/ssh dir//").expect("parses");
        assert_eq!(name, "ssh dir");
        assert_eq!(node.meta, Meta { kind: Kind::Dir, mode: 0o755, uid: 1000, gid: 42 });
    }
}

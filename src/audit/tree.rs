//! The root filesystem as the audit sees it: a read-only tree behind one trait, whatever the input.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// What kind of node a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// Metadata of one node, as stored in the image (numeric owners, permission and set-id bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Permission bits including set-uid, set-gid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Raw access to a root filesystem; paths are absolute inside the image and already resolved.
pub trait Tree {
    /// The node at `path` without following a final symlink; `None` when absent.
    fn lstat(&self, path: &str) -> anyhow::Result<Option<Meta>>;
    /// The bytes of the regular file at `path`.
    fn read_raw(&self, path: &str) -> anyhow::Result<Vec<u8>>;
    /// The names inside the folder at `path`, sorted.
    fn list_raw(&self, path: &str) -> anyhow::Result<Vec<String>>;
    /// The target of the symlink at `path`.
    fn read_link(&self, path: &str) -> anyhow::Result<String>;
    /// The host folder holding this tree, when it is one (for cross-checks that chroot).
    fn host_root(&self) -> Option<&Path> {
        None
    }
    /// Every node below `/`, for whole-tree checks; the default walks with `list_raw`.
    fn walk(&self, visit: &mut dyn FnMut(&str, &Meta)) -> anyhow::Result<()> {
        walk_from(self, "/", visit)
    }
}

fn walk_from<T: Tree + ?Sized>(
    tree: &T,
    dir: &str,
    visit: &mut dyn FnMut(&str, &Meta),
) -> anyhow::Result<()> {
    for name in tree.list_raw(dir)? {
        let path = join(dir, &name);
        let Some(meta) = tree.lstat(&path)? else { continue };
        visit(&path, &meta);
        if meta.kind == Kind::Dir {
            walk_from(tree, &path, visit)?;
        }
    }
    Ok(())
}

/// `dir/name` for image paths.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// `/a/b/../c/./d` as `/a/c/d`, never above `/`.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Symlinks followed inside the image (absolute targets stay in it); at most 40 hops.
pub fn resolve(tree: &dyn Tree, path: &str) -> anyhow::Result<String> {
    let mut hops = 0;
    let mut done = String::from("/");
    let mut rest: Vec<String> = normalize(path).split('/').skip(1).map(String::from).collect();
    rest.reverse();
    while let Some(part) = rest.pop() {
        if part.is_empty() {
            continue;
        }
        let candidate = join(&done, &part);
        match tree.lstat(&candidate)? {
            Some(meta) if meta.kind == Kind::Symlink => {
                hops += 1;
                anyhow::ensure!(hops <= 40, "too many symlinks resolving `{path}`");
                let target = tree.read_link(&candidate)?;
                let base = if target.starts_with('/') { "/".to_string() } else { done.clone() };
                let joined = normalize(&join(&base, &target));
                for p in joined.split('/').skip(1).collect::<Vec<_>>().into_iter().rev() {
                    rest.push(p.to_string());
                }
                done = String::from("/");
            }
            _ => done = candidate,
        }
    }
    Ok(done)
}

/// The node at `path`, symlinks followed.
pub fn stat(tree: &dyn Tree, path: &str) -> anyhow::Result<Option<Meta>> {
    tree.lstat(&resolve(tree, path)?)
}

/// The text of the file at `path`, symlinks followed; `None` when it does not exist.
pub fn read_text(tree: &dyn Tree, path: &str) -> anyhow::Result<Option<String>> {
    let real = resolve(tree, path)?;
    match tree.lstat(&real)? {
        Some(meta) if meta.kind == Kind::File => {
            let bytes = tree.read_raw(&real).with_context(|| format!("reading `{path}`"))?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        _ => Ok(None),
    }
}

/// The bytes of the file at `path`, symlinks followed; `None` when it does not exist.
pub fn read_bytes(tree: &dyn Tree, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let real = resolve(tree, path)?;
    match tree.lstat(&real)? {
        Some(meta) if meta.kind == Kind::File => {
            Ok(Some(tree.read_raw(&real).with_context(|| format!("reading `{path}`"))?))
        }
        _ => Ok(None),
    }
}

/// The names in the folder at `path`, symlinks followed; empty when it does not exist.
pub fn list(tree: &dyn Tree, path: &str) -> anyhow::Result<Vec<String>> {
    let real = resolve(tree, path)?;
    match tree.lstat(&real)? {
        Some(meta) if meta.kind == Kind::Dir => tree.list_raw(&real),
        _ => Ok(Vec::new()),
    }
}

/// A tree with nothing in it, for text parsed without a filesystem around it.
pub struct EmptyTree;

impl Tree for EmptyTree {
    fn lstat(&self, _path: &str) -> anyhow::Result<Option<Meta>> {
        Ok(None)
    }

    fn read_raw(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        anyhow::bail!("`{path}` does not exist")
    }

    fn list_raw(&self, _path: &str) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn read_link(&self, path: &str) -> anyhow::Result<String> {
        anyhow::bail!("`{path}` does not exist")
    }
}

/// A root filesystem unpacked in a host folder.
pub struct DirTree {
    root: PathBuf,
}

impl DirTree {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("reading folder `{}`", root.display()))?;
        anyhow::ensure!(meta.is_dir(), "`{}` is not a folder", root.display());
        Ok(Self { root: root.to_path_buf() })
    }

    fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

impl Tree for DirTree {
    fn lstat(&self, path: &str) -> anyhow::Result<Option<Meta>> {
        let host = self.host(path);
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(20) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading `{}`", host.display())),
        };
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        Ok(Some(Meta { kind, mode: meta.mode() & 0o7777, uid: meta.uid(), gid: meta.gid() }))
    }

    fn read_raw(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let host = self.host(path);
        std::fs::read(&host).with_context(|| format!("reading `{}`", host.display()))
    }

    fn list_raw(&self, path: &str) -> anyhow::Result<Vec<String>> {
        let host = self.host(path);
        let entries =
            std::fs::read_dir(&host).with_context(|| format!("listing `{}`", host.display()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing `{}`", host.display()))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn read_link(&self, path: &str) -> anyhow::Result<String> {
        let host = self.host(path);
        let target = std::fs::read_link(&host)
            .with_context(|| format!("reading link `{}`", host.display()))?;
        Ok(target.to_string_lossy().into_owned())
    }

    fn host_root(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_stays_inside_the_root() {
        assert_eq!(normalize("/a/../../etc/./ssh/"), "/etc/ssh");
        assert_eq!(normalize(""), "/");
    }
}

//! The overlay: files the build adds, replaces or removes on top of the base, with owners and modes.

use std::collections::BTreeMap;

/// What one overlay path becomes in the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

/// One path of the overlay with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub node: Node,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Paths to add or replace, and base paths to drop, keyed by path without a leading `/`.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    pub entries: BTreeMap<String, Entry>,
    /// Exact paths removed from the base (a directory takes its contents with it).
    pub removals: Vec<String>,
    /// Path prefixes removed from the base (for file families such as SSH host keys).
    pub removal_prefixes: Vec<String>,
}

impl Overlay {
    pub fn file(&mut self, path: &str, bytes: impl Into<Vec<u8>>, mode: u32) {
        self.put(path, Node::File(bytes.into()), mode, 0, 0);
    }

    pub fn dir(&mut self, path: &str, mode: u32) {
        self.put(path, Node::Dir, mode, 0, 0);
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.put(path, Node::Symlink(target.to_string()), 0o777, 0, 0);
    }

    pub fn put(&mut self, path: &str, node: Node, mode: u32, uid: u32, gid: u32) {
        let path = path.trim_start_matches('/').to_string();
        self.entries.insert(path, Entry { node, mode, uid, gid });
    }

    pub fn remove(&mut self, path: &str) {
        self.removals.push(path.trim_start_matches('/').to_string());
    }

    pub fn remove_prefix(&mut self, prefix: &str) {
        self.removal_prefixes.push(prefix.trim_start_matches('/').to_string());
    }

    /// Whether a base path is dropped (itself, below a removed directory, or by prefix).
    pub fn is_removed(&self, path: &str) -> bool {
        let path = path.trim_start_matches("./").trim_end_matches('/');
        self.removals.iter().any(|r| path == r || path.starts_with(&format!("{r}/")))
            || self.removal_prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }

    /// Sets owner and group of an existing entry.
    pub fn chown(&mut self, path: &str, uid: u32, gid: u32) -> anyhow::Result<()> {
        let entry = self
            .entries
            .get_mut(path.trim_start_matches('/'))
            .ok_or_else(|| anyhow::anyhow!("overlay has no `{path}` to change owner of"))?;
        entry.uid = uid;
        entry.gid = gid;
        Ok(())
    }

    /// Sets the mode of an existing entry.
    pub fn chmod(&mut self, path: &str, mode: u32) -> anyhow::Result<()> {
        let entry = self
            .entries
            .get_mut(path.trim_start_matches('/'))
            .ok_or_else(|| anyhow::anyhow!("overlay has no `{path}` to change mode of"))?;
        entry.mode = mode;
        Ok(())
    }

    /// Adds the parent directories of every entry that neither the overlay nor the base has.
    pub fn add_missing_parents(&mut self, exists_in_base: impl Fn(&str) -> bool) {
        let mut missing = std::collections::BTreeSet::new();
        for path in self.entries.keys() {
            let mut parent = std::path::Path::new(path).parent();
            while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
                let dir_str = dir.to_string_lossy().into_owned();
                if !self.entries.contains_key(&dir_str) && !exists_in_base(&dir_str) {
                    missing.insert(dir_str);
                }
                parent = dir.parent();
            }
        }
        for dir in missing {
            self.dir(&dir, 0o755);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_covers_directory_contents_and_prefixes() {
        let mut o = Overlay::default();
        o.remove("var/log/apt");
        o.remove_prefix("etc/ssh/ssh_host_");
        assert!(o.is_removed("./var/log/apt/"));
        assert!(o.is_removed("var/log/apt/history.log"));
        assert!(!o.is_removed("var/log/apt2"));
        assert!(o.is_removed("etc/ssh/ssh_host_ed25519_key.pub"));
        assert!(!o.is_removed("etc/ssh/sshd_config"));
    }

    #[test]
    fn missing_parents_are_created_once() {
        let mut o = Overlay::default();
        o.file("home/base/.ssh/authorized_keys", "k", 0o600);
        o.add_missing_parents(|p| p == "home");
        assert!(o.entries.contains_key("home/base"));
        assert!(o.entries.contains_key("home/base/.ssh"));
        assert!(!o.entries.contains_key("home"));
    }
}

//! Writes an overlay out as a directory tree (for review, and as the upper layer of checks).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

use super::overlay::{Node, Overlay};

/// Writes every overlay entry under `dir`; owners are applied when `chown` is set (root only).
pub fn write_tree(overlay: &Overlay, dir: &Path, chown: bool) -> anyhow::Result<()> {
    for (path, entry) in &overlay.entries {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating `{}`", parent.display()))?;
        }
        match &entry.node {
            Node::File(bytes) => std::fs::write(&target, bytes)
                .with_context(|| format!("writing `{}`", target.display()))?,
            Node::Dir => std::fs::create_dir_all(&target)
                .with_context(|| format!("creating `{}`", target.display()))?,
            Node::Symlink(link) => std::os::unix::fs::symlink(link, &target)
                .with_context(|| format!("linking `{}`", target.display()))?,
        }
        if chown {
            std::os::unix::fs::lchown(&target, Some(entry.uid), Some(entry.gid))
                .with_context(|| format!("changing owner of `{}`", target.display()))?;
        }
        if !matches!(entry.node, Node::Symlink(_)) {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(entry.mode))
                .with_context(|| format!("changing mode of `{}`", target.display()))?;
        }
    }
    Ok(())
}

/// A listing of the overlay: one line per entry with mode and owner, then the removals.
pub fn listing(overlay: &Overlay) -> String {
    let mut out = String::new();
    for (path, entry) in &overlay.entries {
        let (kind, target) = match &entry.node {
            Node::File(_) => ("file", String::new()),
            Node::Dir => ("dir", String::new()),
            Node::Symlink(t) => ("link", format!(" -> {t}")),
        };
        let (mode, uid, gid) = (entry.mode, entry.uid, entry.gid);
        out.push_str(&format!("{kind} {mode:04o} {uid}:{gid} /{path}{target}\n"));
    }
    for path in &overlay.removals {
        out.push_str(&format!("remove /{path}\n"));
    }
    for prefix in &overlay.removal_prefixes {
        out.push_str(&format!("remove /{prefix}*\n"));
    }
    out
}

//! Drop-in folders merged the systemd way: files by name across folders, earlier folders mask.

use std::collections::BTreeMap;

use super::tree::{self, Tree};

/// The files matching `suffix` in `dirs` (highest priority first), keyed and sorted by name;
/// a name in an earlier folder hides the same name in later ones.
pub fn merged(
    tree: &dyn Tree,
    dirs: &[&str],
    suffix: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for dir in dirs {
        for name in tree::list(tree, dir)? {
            if name.ends_with(suffix) && !files.contains_key(&name) {
                files.insert(name.clone(), tree::join(dir, &name));
            }
        }
    }
    Ok(files)
}

/// Reads each merged file as text, in name order, skipping masks (links to `/dev/null`).
pub fn read_merged(
    tree: &dyn Tree,
    dirs: &[&str],
    suffix: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for path in merged(tree, dirs, suffix)?.into_values() {
        if tree::resolve(tree, &path)? == "/dev/null" {
            continue;
        }
        if let Some(text) = tree::read_text(tree, &path)? {
            out.push((path, text));
        }
    }
    Ok(out)
}

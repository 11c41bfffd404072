//! `baseimg render`: writes the overlay a profile produces, for review, without a disk image.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::build::{self, base, render};

/// What `baseimg render` was asked to do.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub project: PathBuf,
    pub profile: String,
    pub out: PathBuf,
    pub ssh_keys: Vec<PathBuf>,
    /// An unpacked base tree; default: the cached base of this profile.
    pub base_tree: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
}

/// Renders the overlay into `out` (replacing it) with a listing of modes and owners.
pub fn render(opts: &RenderOptions) -> anyhow::Result<()> {
    let (profile, board) = build::load_inputs(&opts.project, &opts.profile, &opts.ssh_keys)?;
    let tree = match &opts.base_tree {
        Some(tree) => tree.clone(),
        None => cached_base_tree(opts, &profile, &board)?,
    };
    let facts = render::BaseFacts::read(&tree)?;
    let p = &profile.profile;
    let ids = build::disk_ids(p.image.name.as_str(), p.image.source_date_epoch);
    let overlay = render::render_overlay(&opts.project, p, &board, &facts, &ids)?;
    write_out(&overlay, &opts.out)
}

fn write_out(overlay: &build::overlay::Overlay, out: &Path) -> anyhow::Result<()> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating `{}`", parent.display()))?;
    let tmp = tempfile::tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in `{}`", parent.display()))?;
    let tree = tmp.path().join("rootfs");
    build::materialize::write_tree(overlay, &tree, false)?;
    let listing = build::materialize::listing(overlay);
    std::fs::write(tmp.path().join("OVERLAY.txt"), listing).context("writing OVERLAY.txt")?;
    crate::fsutil::remove_dir_all_if_exists(out)?;
    let kept = tmp.keep();
    std::fs::rename(&kept, out)
        .with_context(|| format!("moving the rendered overlay to `{}`", out.display()))?;
    crate::progress::note(&format!("overlay written to `{}`", out.display()));
    Ok(())
}

fn cached_base_tree(
    opts: &RenderOptions,
    profile: &crate::profile::LoadedProfile,
    board: &crate::board::LoadedBoard,
) -> anyhow::Result<PathBuf> {
    let cache_dir = opts.cache_dir.clone().unwrap_or_else(build::default_cache_dir);
    let key = base::key_for(&opts.project, &profile.profile, &board.board)?;
    let tree = cache_dir.join("base").join(&key).join("root");
    anyhow::ensure!(
        tree.join("etc/os-release").exists(),
        "the base for this profile is not cached yet (key {}); run `baseimg build` once, \
         or pass `--base-tree DIR`",
        key
    );
    Ok(tree)
}

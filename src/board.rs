//! Board support: what a board adds to an image, read from `board-support/<board>/board.toml`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::profile::types::{FreeText, ImagePath, KernelArg, PackageName};

/// The board description format this version of baseimg reads.
pub const FORMAT: u32 = 1;

/// Sector size of every disk image, in bytes.
pub const SECTOR: u64 = 512;

/// A board: packages it needs, its boot firmware blobs and kernel details.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub format: u32,
    pub description: FreeText,
    /// Packages installed into the root filesystem for this board. Every board with the same
    /// list shares one cached base, so boot firmware belongs in `firmware_package` instead.
    #[serde(default)]
    pub packages: Vec<PackageName>,
    /// The Debian package (for arm64) that carries the boot blobs. It is unpacked beside the
    /// base, not installed into the image; its version and `.deb` hash go into the manifest.
    #[serde(default)]
    pub firmware_package: Option<PackageName>,
    /// Device tree, relative to `/usr/lib/linux-image-<version>/`; none for firmware-provided.
    #[serde(default)]
    pub device_tree: Option<ImagePath>,
    /// Kernel console arguments such as `console=ttyS2,1500000n8`.
    pub console: Vec<KernelArg>,
    /// First sector of the first partition; blobs must end before it.
    pub first_partition_sector: u64,
    /// Firmware blobs written raw to the disk, taken from the firmware package.
    #[serde(default)]
    pub blobs: Vec<Blob>,
}

/// A raw blob at a fixed sector, such as a bootloader stage.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    /// Path of the blob inside the firmware package, such as `usr/lib/u-boot/x/u-boot.itb`.
    pub path: ImagePath,
    pub sector: u64,
}

/// A board together with its folder.
#[derive(Debug, Clone)]
pub struct LoadedBoard {
    pub name: String,
    pub dir: PathBuf,
    pub board: Board,
}

/// Reads `board-support/<name>/board.toml` under `project`.
pub fn load(project: &Path, name: &str) -> anyhow::Result<LoadedBoard> {
    let dir = project.join("board-support").join(name);
    let path = dir.join("board.toml");
    if !path.is_file() {
        let known = known_boards(project).join(", ");
        anyhow::bail!(
            "unknown board `{name}`: `{}` does not exist (known: {known})",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let board: Board = toml::from_str(&text).map_err(|e| {
        let err = crate::profile::ProfileError {
            message: e.message().to_string(),
            span: e.span(),
            hint: None,
        };
        anyhow::anyhow!("{}", err.render(&path, &text))
    })?;
    if board.format != FORMAT {
        anyhow::bail!("`{}`: unsupported board format {}", path.display(), board.format);
    }
    check_blob_paths(&board).with_context(|| format!("checking `{}`", path.display()))?;
    Ok(LoadedBoard { name: name.to_string(), dir, board })
}

/// Blob paths are checked as they are read (`ImagePath`); blobs need a package to come from.
fn check_blob_paths(board: &Board) -> anyhow::Result<()> {
    anyhow::ensure!(
        board.blobs.is_empty() || board.firmware_package.is_some(),
        "blobs need a `firmware_package` to take them from"
    );
    Ok(())
}

fn known_boards(project: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project.join("board-support"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("board.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

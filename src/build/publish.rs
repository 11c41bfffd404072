//! Publishing: the manifest and the release artifacts (compressed image, block map, SBOM),
//! then every output renamed into place, `SHA256SUMS` last.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::base::{Base, InstalledPackage};
use super::firmware::FirmwareMeta;
use super::middleware::Binaries;
use super::render::{BaseFacts, DiskIds};
use super::{disk, BuildContext};
use crate::release::{bmap, compress, sbom};

/// Version of the manifest's layout.
pub const MANIFEST_FORMAT: u32 = 1;
/// Name of the checksum file, written after every other output.
pub const SUMS: &str = "SHA256SUMS";

/// Everything that went into an image, and what came out.
#[derive(Debug, Serialize)]
pub struct Manifest<'a> {
    pub format: u32,
    pub baseimg_version: &'static str,
    pub image: &'a str,
    pub board: &'a str,
    pub source_date_epoch: u64,
    pub profile: FileHash,
    pub inputs: Vec<FileHash>,
    pub base: BaseRecord<'a>,
    pub firmware: Option<&'a FirmwareMeta>,
    pub kernel_version: &'a str,
    pub disk: &'a DiskIds,
    pub layout: &'a disk::Layout,
    pub ssh_key_fingerprints: Vec<&'a str>,
    /// The public keys baked into `base`'s authorized_keys, so a rebuild can use the same.
    pub ssh_authorized_keys: Vec<String>,
    pub tools: Vec<(String, String)>,
    pub packages: &'a [InstalledPackage],
}

#[derive(Debug, Serialize)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct BaseRecord<'a> {
    pub cache_key: &'a str,
    pub tarball_sha256: &'a str,
    pub suite: &'a str,
    pub mirror: Option<&'a str>,
    pub mmdebstrap: &'a str,
}

/// Hashes of every project file that shapes the image: templates, overlays, board support.
fn project_inputs(ctx: &BuildContext) -> anyhow::Result<Vec<FileHash>> {
    let mut out = Vec::new();
    let board = format!("board-support/{}", ctx.board.name);
    // The middleware's sources and the lock file decide its binaries, recorded below too.
    let dirs = ["templates", "overlays", "middleware/dist", "middleware/src", &board];
    for dir in dirs {
        for (path, sha256) in super::base::hash_tree(&ctx.project.join(dir))? {
            out.push(FileHash { path: format!("{dir}/{path}"), sha256 });
        }
    }
    for file in ["Cargo.lock", "middleware/Cargo.toml"] {
        let sha256 = crate::fsutil::sha256_file(&ctx.project.join(file))?;
        out.push(FileHash { path: file.to_string(), sha256 });
    }
    Ok(out)
}

/// What the image was made from, besides the profile and the project's files.
pub struct Sources<'a> {
    pub base: &'a Base,
    pub firmware: Option<&'a FirmwareMeta>,
    pub facts: &'a BaseFacts,
    pub bins: &'a Binaries,
}

fn manifest_json(
    ctx: &BuildContext,
    sources: &Sources,
    layout: &disk::Layout,
) -> anyhow::Result<Vec<u8>> {
    let Sources { base, firmware, facts, bins } = sources;
    let p = &ctx.profile.profile;
    let mut inputs = project_inputs(ctx)?;
    for (path, sha256) in super::middleware::input_hashes(bins)? {
        inputs.push(FileHash { path, sha256 });
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        baseimg_version: env!("CARGO_PKG_VERSION"),
        image: ctx.name(),
        board: &ctx.board.name,
        source_date_epoch: ctx.epoch(),
        profile: FileHash {
            path: relative_to(&ctx.project, &ctx.profile.path),
            sha256: crate::fsutil::sha256_bytes(ctx.profile.text.as_bytes()),
        },
        inputs,
        base: BaseRecord {
            cache_key: &base.key,
            tarball_sha256: &base.meta.tarball_sha256,
            suite: p.base.suite.as_str(),
            mirror: p.base.mirror.as_ref().map(|m| m.as_str()),
            mmdebstrap: &base.meta.mmdebstrap_version,
        },
        firmware: *firmware,
        kernel_version: &facts.kernel_version,
        disk: &ctx.ids,
        layout,
        ssh_key_fingerprints: p.ssh.authorized_keys.iter().map(|k| k.fingerprint()).collect(),
        ssh_authorized_keys: p.ssh.authorized_keys.iter().map(|k| k.line().to_string()).collect(),
        tools: super::tools::versions(),
        packages: &base.meta.packages,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).context("encoding the manifest")?;
    json.push(b'\n');
    Ok(json)
}

/// Moves the outputs from the work folder into the output folder. The old `SHA256SUMS` goes
/// first and the new one comes last, so a complete-looking set is always a complete set.
pub fn publish(ctx: &BuildContext, sources: &Sources, layout: &disk::Layout) -> anyhow::Result<()> {
    let manifest = ctx.work_dir.join("manifest.json");
    std::fs::write(&manifest, manifest_json(ctx, sources, layout)?)
        .with_context(|| format!("writing `{}`", manifest.display()))?;
    let image_sha256 = crate::fsutil::sha256_file(&ctx.image_path())?;
    let mut outputs = vec![ctx.image_path(), ctx.rootfs_path(), manifest];
    outputs.extend(release_artifacts(ctx, sources.base, &image_sha256)?);
    let mut sums = format!("{image_sha256}  {}\n", file_name(&ctx.image_path()));
    for path in &outputs[1..] {
        let name = file_name(path);
        sums.push_str(&format!("{}  {name}\n", crate::fsutil::sha256_file(path)?));
    }
    remove_if_exists(&ctx.out_dir.join(SUMS))?;
    for path in &outputs {
        let dest = ctx.out_dir.join(file_name(path));
        std::fs::rename(path, &dest)
            .with_context(|| format!("moving `{}` to `{}`", path.display(), dest.display()))?;
    }
    crate::fsutil::write_atomic(&ctx.out_dir.join(SUMS), sums.as_bytes())?;
    crate::progress::note(&format!("outputs in `{}`", ctx.out_dir.display()));
    Ok(())
}

/// Writes the compressed image, its block map and the SBOM into the work folder.
fn release_artifacts(
    ctx: &BuildContext,
    base: &Base,
    image_sha256: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let image = ctx.image_path();
    let image_file = file_name(&image);
    let zst = ctx.work_dir.join(format!("{image_file}.zst"));
    let start = Instant::now();
    let size = compress::compress(&image, &zst)?;
    let raw = std::fs::metadata(&image).map(|m| m.len()).unwrap_or(0);
    crate::progress::note(&format!(
        "{} is {size} bytes ({:.1}% of {raw}), zstd level {} in {:.1}s",
        file_name(&zst),
        size as f64 * 100.0 / raw.max(1) as f64,
        compress::LEVEL,
        start.elapsed().as_secs_f64()
    ));

    let map = bmap::create(&image)?;
    let bmap_path = ctx.work_dir.join(format!("{image_file}.bmap"));
    std::fs::write(&bmap_path, map.to_xml())
        .with_context(|| format!("writing `{}`", bmap_path.display()))?;
    crate::progress::note(&format!(
        "{} maps {} of {} bytes in {} ranges",
        file_name(&bmap_path),
        map.mapped_bytes(),
        map.image_size,
        map.ranges.len()
    ));

    let input = sbom::SbomInput {
        image_name: ctx.name(),
        image_file: &image_file,
        image_sha256,
        epoch: ctx.epoch(),
        packages: &base.meta.packages,
    };
    let spdx = ctx.work_dir.join(format!("{}.spdx.json", ctx.name()));
    std::fs::write(&spdx, sbom::write(&ctx.rootfs_path(), &input)?)
        .with_context(|| format!("writing `{}`", spdx.display()))?;
    Ok(vec![zst, bmap_path, spdx])
}

/// The path relative to the project when it is inside it, so the manifest does not depend on
/// where the project is checked out.
fn relative_to(project: &Path, path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let root = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    absolute.strip_prefix(&root).unwrap_or(&absolute).display().to_string()
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

//! `baseimg flash`: writes an image (raw or zstd) onto a disk or file, only the ranges its
//! block map lists, then reads every range back and checks its sha256.
//!
//! The first block (protective MBR and GPT header) is cleared before anything else is
//! written and written last, so a flash that stops half way leaves a disk without a
//! partition table rather than one that looks whole.

mod progress;
pub mod target;

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::release::{bmap, compress};
use target::Target;

/// Bytes held back from the first write and written last.
const HEAD: u64 = 4096;
/// What every error after the first write says about the target.
const INCOMPLETE: &str = "the target is incomplete (its partition table is cleared); \
                          flash it again before use";

/// What `baseimg flash` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct FlashOptions {
    /// A raw image or a zstd-compressed one.
    pub image: PathBuf,
    /// A block device, or a file to write the image into.
    pub target: PathBuf,
    /// The block map [default: `<image>.bmap` beside the image, the `.zst` name stripped].
    pub bmap: Option<PathBuf>,
    /// Do not ask before writing.
    pub yes: bool,
    /// Write a target that is neither a block device nor a regular file.
    pub force: bool,
}

/// What a flash did.
#[derive(Debug, Clone, PartialEq)]
pub struct FlashSummary {
    pub bytes_written: u64,
    pub ranges: usize,
    pub write_seconds: f64,
    pub verify_seconds: f64,
}

/// The ranges to write, each with its expected sha256 when a bmap gives one.
struct Plan {
    image_size: u64,
    ranges: Vec<PlannedRange>,
    source_note: String,
}

#[derive(Debug, Clone)]
struct PlannedRange {
    label: String,
    start: u64,
    end: u64,
    sha256: Option<String>,
}

/// Flashes the image; see the module documentation.
pub fn flash(opts: &FlashOptions) -> anyhow::Result<FlashSummary> {
    let mut image = compress::open_image(&opts.image)?;
    let plan = plan(opts, image.compressed)?;
    let target = target::inspect(&opts.target, opts.force)?;
    refuse_same_file(&opts.image, &opts.target)?;
    check_size(&target, &opts.target, plan.image_size)?;
    confirm(opts, &target, &plan)?;
    let file = open_target(&opts.target, &target, plan.image_size)?;
    crate::progress::note(&plan.source_note);

    let start = Instant::now();
    let hashes = write_ranges(&plan, &mut image, &file, &opts.target)?;
    let write_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    read_back(&plan, &hashes, &file, &opts.target)?;
    let verify_seconds = start.elapsed().as_secs_f64();
    let bytes_written = plan.ranges.iter().map(|r| r.end - r.start).sum();
    Ok(FlashSummary { bytes_written, ranges: plan.ranges.len(), write_seconds, verify_seconds })
}

/// The bmap beside the image, or the whole image as one range.
fn plan(opts: &FlashOptions, compressed: bool) -> anyhow::Result<Plan> {
    let bmap_path = opts.bmap.clone().unwrap_or_else(|| default_bmap(&opts.image));
    if bmap_path.exists() {
        let map = bmap::read(&bmap_path)?;
        let ranges = map
            .ranges
            .iter()
            .map(|r| {
                let (start, end) = r.bytes(map.block_size, map.image_size);
                PlannedRange {
                    label: format!("blocks {}", r.label()),
                    start,
                    end,
                    sha256: Some(r.sha256.clone()),
                }
            })
            .collect();
        let source_note = format!(
            "writing the {} of {} bytes that `{}` maps",
            map.mapped_bytes(),
            map.image_size,
            bmap_path.display()
        );
        return Ok(Plan { image_size: map.image_size, ranges, source_note });
    }
    anyhow::ensure!(opts.bmap.is_none(), "bmap `{}` does not exist", bmap_path.display());
    let image_size = image_size(&opts.image, compressed)?;
    let whole =
        PlannedRange { label: "the whole image".into(), start: 0, end: image_size, sha256: None };
    let source_note = format!(
        "no bmap at `{}`: writing the whole image ({image_size} bytes)",
        bmap_path.display()
    );
    Ok(Plan { image_size, ranges: vec![whole], source_note })
}

/// `x.img.bmap` for `x.img` and for `x.img.zst`.
fn default_bmap(image: &Path) -> PathBuf {
    let name = image.file_name().unwrap_or_default().to_string_lossy();
    let raw = name.strip_suffix(".zst").unwrap_or(&name);
    image.with_file_name(format!("{raw}.bmap"))
}

/// The raw size: the file's, or the one a zstd frame header records.
fn image_size(path: &Path, compressed: bool) -> anyhow::Result<u64> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading `{}`", path.display()))?;
    if !compressed {
        return Ok(meta.len());
    }
    let mut header = [0u8; 18];
    let file =
        std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let n =
        file.read_at(&mut header, 0).with_context(|| format!("reading `{}`", path.display()))?;
    match zstd::zstd_safe::get_frame_content_size(&header[..n]) {
        Ok(Some(size)) => Ok(size),
        _ => anyhow::bail!(
            "`{}` does not record its decompressed size; give its bmap with --bmap",
            path.display()
        ),
    }
}

/// Writing an image onto itself would destroy it while it is read.
fn refuse_same_file(image: &Path, target: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(a), Ok(b)) = (std::fs::metadata(image), std::fs::metadata(target)) else {
        return Ok(());
    };
    anyhow::ensure!(
        (a.dev(), a.ino()) != (b.dev(), b.ino()),
        "`{}` is the image itself; nothing was written",
        target.display()
    );
    Ok(())
}

fn check_size(target: &Target, path: &Path, image_size: u64) -> anyhow::Result<()> {
    if let Target::BlockDevice { size, .. } = target {
        anyhow::ensure!(
            *size >= image_size,
            "`{}` holds {size} bytes, the image needs {image_size}; nothing was written",
            path.display()
        );
    }
    Ok(())
}

/// Asks on the terminal unless `--yes`; a new file needs no question.
fn confirm(opts: &FlashOptions, target: &Target, plan: &Plan) -> anyhow::Result<()> {
    if opts.yes || *target == Target::NewFile {
        return Ok(());
    }
    let what = match target {
        Target::BlockDevice { description, .. } => format!("the disk {description}"),
        Target::File { size } => format!("the file ({size} bytes)"),
        _ => "it".to_string(),
    };
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "not asking on a non-terminal: pass --yes to overwrite `{}`; nothing was written",
        opts.target.display()
    );
    eprint!(
        "Overwrite `{}`, {what}, with `{}` ({} ranges)? Everything on it is lost. Type yes: ",
        opts.target.display(),
        opts.image.display(),
        plan.ranges.len()
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("reading the answer")?;
    anyhow::ensure!(answer.trim() == "yes", "not confirmed; nothing was written");
    Ok(())
}

fn open_target(path: &Path, target: &Target, image_size: u64) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true);
    match target {
        // O_EXCL on a block device: the kernel refuses it while anything has it mounted.
        Target::BlockDevice { .. } => options.custom_flags(rustix::fs::OFlags::EXCL.bits() as i32),
        Target::NewFile => options.create(true),
        _ => &mut options,
    };
    let file = options.open(path).with_context(|| {
        format!("opening `{}` for writing (busy or mounted?); nothing was written", path.display())
    })?;
    if matches!(target, Target::File { .. } | Target::NewFile) {
        file.set_len(image_size).with_context(|| format!("sizing `{}`", path.display()))?;
    }
    Ok(file)
}

/// Writes every range in order from the image stream, the first block last, and returns
/// the sha256 of what was written per range.
fn write_ranges(
    plan: &Plan,
    reader: &mut compress::ImageReader,
    file: &std::fs::File,
    path: &Path,
) -> anyhow::Result<Vec<String>> {
    let writes_head = plan.ranges.first().is_some_and(|r| r.start == 0);
    if writes_head {
        let head = (HEAD.min(plan.image_size)) as usize;
        file.write_all_at(&vec![0u8; head], 0).and_then(|()| file.sync_data()).with_context(
            || {
                format!(
                    "clearing the first block of `{}`; nothing else was written",
                    path.display()
                )
            },
        )?;
    }
    let mut held = Vec::new();
    let mut hashes = Vec::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut pos = 0;
    let total = plan.ranges.iter().map(|r| r.end - r.start).sum();
    let mut progress = progress::Progress::new("writing", total);
    for r in &plan.ranges {
        let written = write_range(r, pos, reader, file, &mut buf, &mut held, &mut progress)
            .with_context(|| {
                format!(
                    "writing {} (bytes {}..{}) of `{}`; {INCOMPLETE}",
                    r.label,
                    r.start,
                    r.end,
                    path.display()
                )
            })?;
        hashes.push(written);
        pos = r.end;
    }
    if writes_head {
        file.write_all_at(&held, 0).with_context(|| {
            format!("writing the first block of `{}`; {INCOMPLETE}", path.display())
        })?;
    }
    file.sync_all().with_context(|| format!("flushing `{}`; {INCOMPLETE}", path.display()))?;
    progress.finish();
    Ok(hashes)
}

fn write_range(
    r: &PlannedRange,
    pos: u64,
    reader: &mut compress::ImageReader,
    file: &std::fs::File,
    buf: &mut [u8],
    held: &mut Vec<u8>,
    progress: &mut progress::Progress,
) -> anyhow::Result<String> {
    reader.skip(r.start - pos, buf).context("reading the image (damaged or cut short?)")?;
    let mut hasher = Sha256::new();
    let mut at = r.start;
    while at < r.end {
        let want = (r.end - at).min(buf.len() as u64) as usize;
        reader.read_exact(&mut buf[..want]).context("reading the image (damaged or cut short?)")?;
        hasher.update(&buf[..want]);
        let chunk = &buf[..want];
        let skip_head = if at < HEAD { (HEAD - at).min(want as u64) as usize } else { 0 };
        held.extend_from_slice(&chunk[..skip_head]);
        file.write_all_at(&chunk[skip_head..], at + skip_head as u64)
            .context("writing the target")?;
        at += want as u64;
        progress.advance(want as u64);
    }
    let hash = hex::encode(hasher.finalize());
    if let Some(expected) = &r.sha256 {
        anyhow::ensure!(
            &hash == expected,
            "the image's bytes do not match the bmap's checksum: the image is damaged \
             (sha256 {hash}, bmap says {expected})"
        );
    }
    Ok(hash)
}

/// Drops the target's cached pages and reads every range back from the device.
fn read_back(
    plan: &Plan,
    hashes: &[String],
    file: &std::fs::File,
    path: &Path,
) -> anyhow::Result<()> {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
    let mut buf = vec![0u8; 4 << 20];
    let total = plan.ranges.iter().map(|r| r.end - r.start).sum();
    let mut progress = progress::Progress::new("verifying", total);
    for (r, expected) in plan.ranges.iter().zip(hashes) {
        let mut hasher = Sha256::new();
        let mut at = r.start;
        while at < r.end {
            let want = (r.end - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..want], at).with_context(|| {
                format!("reading back {} of `{}`; {INCOMPLETE}", r.label, path.display())
            })?;
            hasher.update(&buf[..want]);
            at += want as u64;
            progress.advance(want as u64);
        }
        let hash = hex::encode(hasher.finalize());
        anyhow::ensure!(
            &hash == expected,
            "{} (bytes {}..{}) of `{}` reads back differently from what was written \
             (a failing card?); the target cannot be trusted",
            r.label,
            r.start,
            r.end,
            path.display()
        );
    }
    progress.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmap_is_found_beside_raw_and_compressed_images() {
        assert_eq!(default_bmap(Path::new("/o/x.img")), Path::new("/o/x.img.bmap"));
        assert_eq!(default_bmap(Path::new("/o/x.img.zst")), Path::new("/o/x.img.bmap"));
    }
}

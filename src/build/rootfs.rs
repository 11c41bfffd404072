//! The root filesystem tarball: base entries and overlay entries merged, sorted, with
//! numeric owners and every timestamp clamped.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::overlay::{Node, Overlay};

/// Where one output entry comes from.
enum Source {
    /// A base entry: its header and the offset of its data in the base tarball.
    Base {
        header: Box<tar::Header>,
        data_offset: u64,
        link_name: Option<Vec<u8>>,
    },
    Overlay(super::overlay::Entry),
}

/// Writes base + overlay into `out` and returns the base tarball's sha256, computed on the way.
pub fn assemble(
    base_tar: &Path,
    overlay: &Overlay,
    out: &Path,
    mtime: u64,
) -> anyhow::Result<String> {
    let (mut sources, base_hash) = index_base(base_tar, overlay)?;
    for (path, entry) in &overlay.entries {
        sources.insert(path.clone(), Source::Overlay(entry.clone()));
    }
    let resolved = resolve_hardlinks(&mut sources);
    let mut base = std::fs::File::open(base_tar)
        .with_context(|| format!("opening `{}`", base_tar.display()))?;
    let file =
        std::fs::File::create(out).with_context(|| format!("creating `{}`", out.display()))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    for (path, source) in &sources {
        write_entry(&mut builder, &mut base, path, source, &resolved, mtime)
            .with_context(|| format!("writing `{path}` into `{}`", out.display()))?;
    }
    let mut writer =
        builder.into_inner().with_context(|| format!("finishing `{}`", out.display()))?;
    writer.flush().with_context(|| format!("writing `{}`", out.display()))?;
    Ok(base_hash)
}

/// Reads every base entry's header once (hashing the whole file as it goes).
fn index_base(
    base_tar: &Path,
    overlay: &Overlay,
) -> anyhow::Result<(BTreeMap<String, Source>, String)> {
    let file = std::fs::File::open(base_tar)
        .with_context(|| format!("opening `{}`", base_tar.display()))?;
    let mut hashing = HashingReader {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    let mut sources = BTreeMap::new();
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in
            archive.entries().with_context(|| format!("reading `{}`", base_tar.display()))?
        {
            let entry =
                entry.with_context(|| format!("reading an entry of `{}`", base_tar.display()))?;
            let path = normalize(&entry.path_bytes());
            if path.is_empty() || overlay.is_removed(&path) {
                continue;
            }
            let link_name = entry.link_name_bytes().map(|l| l.into_owned());
            let source = Source::Base {
                header: Box::new(entry.header().clone()),
                data_offset: entry.raw_file_position(),
                link_name,
            };
            sources.insert(path, source);
        }
    }
    std::io::copy(&mut hashing, &mut std::io::sink()).context("reading the base tarball's tail")?;
    Ok((sources, hex::encode(hashing.hasher.finalize())))
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn normalize(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    s.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/').to_string()
}

/// Hard links must follow their target in the stream. After sorting by path, a link may come
/// first; then the first path of the group carries the data and the others link to it.
/// Returns, per hard-link path, the path it links to in the output.
fn resolve_hardlinks(sources: &mut BTreeMap<String, Source>) -> BTreeMap<String, String> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, source) in sources.iter() {
        if let Source::Base { header, link_name: Some(target), .. } = source {
            if header.entry_type() == tar::EntryType::Link {
                groups.entry(normalize(target)).or_default().push(path.clone());
            }
        }
    }
    let mut resolved = BTreeMap::new();
    for (target, mut links) in groups {
        let target_is_base_file = matches!(sources.get(&target), Some(Source::Base { .. }));
        if !target_is_base_file {
            // The target was replaced or removed by the overlay: the links go with it.
            for link in links {
                sources.remove(&link);
            }
            continue;
        }
        links.push(target.clone());
        links.sort();
        let first = links[0].clone();
        if first != target {
            // Swap: the first path takes the data, the old target becomes a link.
            let data = sources.remove(&target).expect("target present");
            let link = sources.insert(first.clone(), data).expect("first link present");
            sources.insert(target.clone(), link);
        }
        for link in links.into_iter().skip(1) {
            resolved.insert(link, first.clone());
        }
    }
    resolved
}

fn write_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    base: &mut std::fs::File,
    path: &str,
    source: &Source,
    hardlinks: &BTreeMap<String, String>,
    mtime: u64,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    if let Some(target) = hardlinks.get(path) {
        header.set_entry_type(tar::EntryType::Link);
        copy_meta_from(&mut header, source);
        header.set_size(0);
        header.set_mtime(mtime);
        builder.append_link(&mut header, path, target)?;
        return Ok(());
    }
    match source {
        Source::Base { header: h, data_offset, link_name } => {
            header.set_entry_type(h.entry_type());
            copy_meta_from(&mut header, source);
            header.set_mtime(h.mtime()?.min(mtime));
            if let (Ok(Some(maj)), Ok(Some(min))) = (h.device_major(), h.device_minor()) {
                header.set_device_major(maj)?;
                header.set_device_minor(min)?;
            }
            match h.entry_type() {
                tar::EntryType::Symlink => {
                    let target = link_name.as_deref().unwrap_or_default();
                    header.set_size(0);
                    builder.append_link(
                        &mut header,
                        path,
                        String::from_utf8_lossy(target).as_ref(),
                    )?;
                }
                tar::EntryType::Regular | tar::EntryType::Link => {
                    let size = h.size()?;
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(size);
                    base.seek(SeekFrom::Start(*data_offset))?;
                    builder.append_data(&mut header, path, base.take(size))?;
                }
                _ => {
                    header.set_size(0);
                    builder.append_data(&mut header, path, std::io::empty())?;
                }
            }
        }
        Source::Overlay(entry) => {
            copy_meta_from(&mut header, source);
            header.set_mtime(mtime);
            match &entry.node {
                Node::File(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    builder.append_data(&mut header, path, bytes.as_slice())?;
                }
                Node::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder.append_data(&mut header, path, std::io::empty())?;
                }
                Node::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)?;
                }
            }
        }
    }
    Ok(())
}

fn copy_meta_from(header: &mut tar::Header, source: &Source) {
    let (mode, uid, gid) = match source {
        Source::Base { header: h, .. } => {
            (h.mode().unwrap_or(0o644), h.uid().unwrap_or(0), h.gid().unwrap_or(0))
        }
        Source::Overlay(e) => (e.mode, u64::from(e.uid), u64::from(e.gid)),
    };
    header.set_mode(mode);
    header.set_uid(uid);
    header.set_gid(gid);
    // Numeric owners only: names would let the build host's databases leak in.
    let _ = header.set_username("");
    let _ = header.set_groupname("");
}

#[cfg(test)]
mod tests;

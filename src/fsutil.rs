//! File helpers: atomic writes, hashing, walking trees, cleaning up after killed runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Writes `bytes` to `path` through a temporary file in the same folder, then renames it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in `{}`", dir.display()))?;
    tmp.write_all(bytes).with_context(|| format!("writing `{}`", path.display()))?;
    let readable = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    tmp.as_file()
        .set_permissions(readable)
        .with_context(|| format!("setting the mode of `{}`", path.display()))?;
    tmp.as_file().sync_all().with_context(|| format!("flushing `{}`", path.display()))?;
    tmp.persist(path).with_context(|| format!("renaming into `{}`", path.display()))?;
    Ok(())
}

/// The sha256 of a file, as lowercase hex. Holes of a sparse file (most of a disk image)
/// are hashed as the zeros they read as, without reading them.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let len = file.metadata().with_context(|| format!("reading `{}`", path.display()))?.len();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0;
    while pos < len {
        let data = next_data(&file, pos, len);
        hash_zeros(&mut hasher, data - pos);
        let hole = match next_hole(&file, data) {
            Some(hole) if hole > data => hole.min(len),
            _ => len,
        };
        hash_range(&file, data, hole, &mut hasher, &mut buf)
            .with_context(|| format!("reading `{}`", path.display()))?;
        pos = hole;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The byte ranges of a file that may hold data, in order: everything outside them is a
/// hole and reads as zeros. On a file system that cannot tell, the whole file is one range.
pub fn data_segments(file: &std::fs::File, len: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < len {
        let data = next_data(file, pos, len);
        if data >= len {
            break;
        }
        let hole = match next_hole(file, data) {
            Some(hole) if hole > data => hole.min(len),
            _ => len,
        };
        out.push((data, hole));
        pos = hole;
    }
    out
}

/// The next offset holding data: `len` when only a hole follows, `from` itself when the file
/// system cannot tell (then everything is read).
fn next_data(file: &std::fs::File, from: u64, len: u64) -> u64 {
    match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(from)) {
        Ok(offset) => offset.min(len),
        Err(rustix::io::Errno::NXIO) => len,
        Err(_) => from,
    }
}

fn next_hole(file: &std::fs::File, from: u64) -> Option<u64> {
    rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(from)).ok()
}

fn hash_zeros(hasher: &mut Sha256, mut count: u64) {
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    while count > 0 {
        let n = count.min(ZEROS.len() as u64) as usize;
        hasher.update(&ZEROS[..n]);
        count -= n as u64;
    }
}

fn hash_range(
    file: &std::fs::File,
    start: u64,
    end: u64,
    hasher: &mut Sha256,
    buf: &mut [u8],
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut pos = start;
    while pos < end {
        let want = (end - pos).min(buf.len() as u64) as usize;
        let n = file.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(())
}

/// The sha256 of bytes, as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// All regular files and symlinks under `dir`, sorted by path; empty when `dir` is missing.
pub fn walk_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if dir.exists() {
        walk_into(dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk_into(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing `{}`", dir.display()))?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk_into(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Removes a directory tree if it exists.
pub fn remove_dir_all_if_exists(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing `{}`", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Removes `*.tmp-<pid>` entries in `dir` left by runs whose process no longer exists.
pub fn remove_stale_temps(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name.rsplit_once(".tmp-") else { continue };
        let alive = Path::new("/proc").join(pid).exists();
        if !alive && pid.bytes().all(|b| b.is_ascii_digit()) {
            crate::progress::note(&format!("removing `{}` left by an interrupted run", name));
            let path = entry.path();
            if path.is_dir() {
                remove_dir_all_if_exists(&path)?;
            } else {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing `{}`", path.display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = dir.path().join("x.tmp-999999999");
        let live = dir.path().join(format!("y.tmp-{}", std::process::id()));
        let other = dir.path().join("z.img");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"").expect("write");
        }
        remove_stale_temps(dir.path()).expect("cleanup");
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn sparse_file_hash_equals_plain_hash() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sparse");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(5 << 20).expect("size");
        file.write_all_at(b"data in the middle", 3 << 20).expect("write");
        let plain = sha256_bytes(&std::fs::read(&path).expect("read"));
        assert_eq!(sha256_file(&path).expect("hash"), plain);
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        write_atomic(&path, b"one").expect("first");
        write_atomic(&path, b"two").expect("second");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}

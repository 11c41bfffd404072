//! Private files: atomic writes with mode 0600 and refusal of unsafe permissions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use zeroize::Zeroizing;

/// Writes `contents` to `path` atomically: temp file (0600) in the same directory, fsync,
/// rename over the target, fsync of the directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_atomic_owned(path, contents, None)
}

/// Like [`write_atomic`], and hands the file to `owner` (uid, gid) before it appears.
pub fn write_atomic_owned(
    path: &Path,
    contents: &[u8],
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let dir = path.parent().context("a state file path has a parent directory")?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in `{}`", dir.display()))?;
    temp.write_all(contents).with_context(|| format!("writing `{}`", temp.path().display()))?;
    if let Some((uid, gid)) = owner {
        let ids = owner_ids(uid, gid);
        rustix::fs::fchown(temp.as_file(), Some(ids.0), Some(ids.1))
            .with_context(|| format!("changing the owner of `{}`", temp.path().display()))?;
    }
    temp.as_file().sync_all().with_context(|| format!("syncing `{}`", temp.path().display()))?;
    temp.persist(path).with_context(|| format!("replacing `{}`", path.display()))?;
    sync_dir(dir)
}

fn owner_ids(uid: u32, gid: u32) -> (rustix::fs::Uid, rustix::fs::Gid) {
    (rustix::fs::Uid::from_raw(uid), rustix::fs::Gid::from_raw(gid))
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .with_context(|| format!("syncing directory `{}`", dir.display()))
}

/// Creates `path` with mode 0700 if missing; refuses a directory others can write to.
pub fn ensure_private_dir(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_context(|| format!("creating directory `{}`", path.display()))?;
    }
    let meta = fs::metadata(path).with_context(|| format!("reading `{}`", path.display()))?;
    if !meta.is_dir() {
        bail!("`{}` is not a directory", path.display());
    }
    check_owner_and_mode(path, &meta, 0o022, "go-w")
}

/// Reads a private file; `None` if it does not exist. Refuses files that are readable by
/// group or others, or owned by another user, naming the fix.
pub fn read_private_file(path: &Path) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("reading `{}`", path.display())),
    };
    if !meta.is_file() {
        bail!("`{}` is not a regular file", path.display());
    }
    check_owner_and_mode(path, &meta, 0o077, "go-rwx")?;
    let bytes = fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
    Ok(Some(Zeroizing::new(bytes)))
}

fn check_owner_and_mode(
    path: &Path,
    meta: &fs::Metadata,
    forbidden: u32,
    fix: &str,
) -> anyhow::Result<()> {
    let mode = meta.mode() & 0o777;
    if mode & forbidden != 0 {
        bail!(
            "`{}` has mode {mode:04o}, which lets other users read or change it; \
             refusing to use it (fix with `chmod {fix}`)",
            path.display()
        );
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        bail!(
            "`{}` belongs to uid {} but this process runs as uid {euid}; refusing to use it",
            path.display(),
            meta.uid()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_a_file_only_the_owner_can_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        write_atomic(&path, b"{}").expect("written");
        let mode = fs::metadata(&path).expect("exists").mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read = read_private_file(&path).expect("readable").map(|bytes| bytes.to_vec());
        assert_eq!(read, Some(b"{}".to_vec()));
    }

    #[test]
    fn world_readable_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        fs::write(&path, b"{}").expect("written");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_private_file(&path).expect_err("refused").to_string();
        assert!(err.contains("mode 0644") && err.contains("chmod go-rwx"), "{err}");
    }

    #[test]
    fn missing_file_reads_as_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(read_private_file(&dir.path().join("absent")).expect("ok").is_none());
    }
}

//! `base`'s `~/.ssh/authorized_keys`: validated keys only, written atomically, no symlinks.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ssh_key::{HashAlg, PublicKey};

use crate::fsutil::write_atomic_owned;
use crate::messages::SshKeyInfo;

/// The account whose keys the API manages.
pub const KEY_ACCOUNT: &str = "base";

const MAX_KEY_LINE: usize = 16 * 1024;

/// Where the key file lives and who must own it.
#[derive(Debug)]
struct KeyFile {
    ssh_dir: PathBuf,
    path: PathBuf,
    uid: u32,
    gid: u32,
}

/// Parses one OpenSSH public key line; options, several lines or garbage are refused.
pub fn parse_key(line: &str) -> anyhow::Result<PublicKey> {
    if line.len() > MAX_KEY_LINE || line.contains(['\n', '\r', '\0']) {
        bail!("an SSH public key is one line of at most 16 KiB");
    }
    PublicKey::from_openssh(line.trim())
        .context("not an OpenSSH public key (expected `ssh-ed25519 AAAA... comment`)")
}

/// Lists the parseable keys; other lines are kept but not shown.
pub fn list(root: &Path) -> anyhow::Result<Vec<SshKeyInfo>> {
    let file = locate(root)?;
    Ok(read_lines(&file)?.iter().filter_map(|line| parse_key(line).ok()).map(info).collect())
}

/// Appends `line` unless the same key is already there.
pub fn add(root: &Path, line: &str) -> anyhow::Result<()> {
    let key = parse_key(line)?;
    let file = locate(root)?;
    let mut lines = read_lines(&file)?;
    let present =
        lines.iter().filter_map(|l| parse_key(l).ok()).any(|k| k.key_data() == key.key_data());
    if !present {
        lines.push(key.to_openssh().context("formatting the key")?);
        write_lines(&file, &lines)?;
    }
    Ok(())
}

/// Removes the key with `fingerprint` (`SHA256:...`); returns whether one was removed.
pub fn remove(root: &Path, fingerprint: &str) -> anyhow::Result<bool> {
    let file = locate(root)?;
    let lines = read_lines(&file)?;
    let kept: Vec<String> = lines
        .iter()
        .filter(|line| parse_key(line).map_or(true, |k| fingerprint_of(&k) != fingerprint))
        .cloned()
        .collect();
    if kept.len() == lines.len() {
        return Ok(false);
    }
    write_lines(&file, &kept)?;
    Ok(true)
}

fn info(key: PublicKey) -> SshKeyInfo {
    SshKeyInfo {
        fingerprint: fingerprint_of(&key),
        algorithm: key.algorithm().to_string(),
        comment: key.comment().to_string(),
    }
}

fn fingerprint_of(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn locate(root: &Path) -> anyhow::Result<KeyFile> {
    let passwd_path = root.join("etc/passwd");
    let passwd = fs::read_to_string(&passwd_path)
        .with_context(|| format!("reading `{}`", passwd_path.display()))?;
    let entry = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 7 && fields[0] == KEY_ACCOUNT)
        .with_context(|| format!("no `{KEY_ACCOUNT}` account in `{}`", passwd_path.display()))?;
    let uid = entry[2].parse().context("reading the uid of `base`")?;
    let gid = entry[3].parse().context("reading the gid of `base`")?;
    let ssh_dir = root.join(entry[5].trim_start_matches('/')).join(".ssh");
    let path = ssh_dir.join("authorized_keys");
    Ok(KeyFile { ssh_dir, path, uid, gid })
}

fn read_lines(file: &KeyFile) -> anyhow::Result<Vec<String>> {
    refuse_symlink(&file.ssh_dir)?;
    refuse_symlink(&file.path)?;
    match fs::read_to_string(&file.path) {
        Ok(text) => Ok(text.lines().map(str::to_string).collect()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(err).with_context(|| format!("reading `{}`", file.path.display())),
    }
}

fn write_lines(file: &KeyFile, lines: &[String]) -> anyhow::Result<()> {
    ensure_ssh_dir(file)?;
    let mut text = lines.join("\n");
    text.push('\n');
    write_atomic_owned(&file.path, text.as_bytes(), owner_if_root(file))
}

fn ensure_ssh_dir(file: &KeyFile) -> anyhow::Result<()> {
    refuse_symlink(&file.ssh_dir)?;
    if file.ssh_dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&file.ssh_dir)
        .with_context(|| format!("creating `{}`", file.ssh_dir.display()))?;
    if let Some((uid, gid)) = owner_if_root(file) {
        let ids = (Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)));
        rustix::fs::chown(&file.ssh_dir, ids.0, ids.1)
            .with_context(|| format!("changing the owner of `{}`", file.ssh_dir.display()))?;
    }
    Ok(())
}

fn owner_if_root(file: &KeyFile) -> Option<(u32, u32)> {
    rustix::process::geteuid().is_root().then_some((file.uid, file.gid))
}

fn refuse_symlink(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            bail!("`{}` is a symbolic link; refusing to follow it", path.display())
        }
        Ok(meta) if meta.nlink() > 1 && meta.is_file() => {
            bail!("`{}` has several hard links; refusing to write it", path.display())
        }
        _ => Ok(()),
    }
}

//! Board firmware: the Debian package that carries a board's boot blobs, downloaded for arm64
//! and unpacked beside the base (not into it), cached by the hash of its inputs.
//!
//! Keeping boot firmware out of the root filesystem lets every board share one base, and the
//! blobs written to the disk come from a `.deb` whose hash the manifest records.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::build::BuildContext;
use crate::progress;
use crate::runner::Cmd;

/// Bumped whenever the way firmware is fetched changes.
const RECIPE_VERSION: u32 = 1;

/// An unpacked firmware package.
#[derive(Debug, Clone)]
pub struct Firmware {
    pub dir: PathBuf,
    pub meta: FirmwareMeta,
}

impl Firmware {
    /// The package's files, unpacked; blob paths are relative to this folder.
    pub fn tree(&self) -> PathBuf {
        self.dir.join("tree")
    }
}

/// What the cache records about a firmware entry; written last.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FirmwareMeta {
    pub key: String,
    pub package: String,
    pub version: String,
    pub deb_sha256: String,
}

#[derive(Debug, Serialize)]
struct FirmwareInputs<'a> {
    recipe: u32,
    suite: &'a str,
    mirror: Option<&'a str>,
    package: &'a str,
}

/// Returns the board's unpacked firmware package, or `None` for a board without one.
pub fn fetch(ctx: &BuildContext) -> anyhow::Result<Option<Firmware>> {
    let Some(package) = &ctx.board.board.firmware_package else {
        return Ok(None);
    };
    let base = &ctx.profile.profile.base;
    let mirror = base.mirror.as_ref().map(|m| m.to_string());
    let inputs = FirmwareInputs {
        recipe: RECIPE_VERSION,
        suite: base.suite.as_str(),
        mirror: mirror.as_deref(),
        package: package.as_str(),
    };
    let key = hex::encode(Sha256::digest(serde_json::to_vec(&inputs)?));
    let root = ctx.cache_dir.join("firmware");
    std::fs::create_dir_all(&root)
        .with_context(|| format!("creating cache directory `{}`", root.display()))?;
    crate::fsutil::remove_stale_temps(&root)?;
    let dir = root.join(&key);
    if ctx.rebuild_base {
        crate::fsutil::remove_dir_all_if_exists(&dir)?;
    }
    match open_entry(&dir, &key) {
        Ok(firmware) => {
            progress::note(&format!("using cached firmware {} {}", package, firmware.meta.version));
            return Ok(Some(firmware));
        }
        Err(reason) if dir.exists() => {
            progress::note(&format!("cached firmware is unusable ({reason:#}); fetching it"));
            crate::fsutil::remove_dir_all_if_exists(&dir)?;
        }
        Err(_) => {}
    }
    download(&inputs, &root, &key).map(Some)
}

fn open_entry(dir: &Path, key: &str) -> anyhow::Result<Firmware> {
    let path = dir.join("meta.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let meta: FirmwareMeta =
        serde_json::from_str(&text).with_context(|| format!("parsing `{}`", path.display()))?;
    anyhow::ensure!(meta.key == key, "its key does not match its folder");
    let deb = dir.join("package.deb");
    let actual = crate::fsutil::sha256_file(&deb)?;
    anyhow::ensure!(
        actual == meta.deb_sha256,
        "`{}` has sha256 {actual}, expected {}",
        deb.display(),
        meta.deb_sha256
    );
    Ok(Firmware { dir: dir.to_path_buf(), meta })
}

fn download(inputs: &FirmwareInputs, root: &Path, key: &str) -> anyhow::Result<Firmware> {
    let tmp = root.join(format!("{key}.tmp-{}", std::process::id()));
    crate::fsutil::remove_dir_all_if_exists(&tmp)?;
    let apt = PrivateApt::create(&tmp.join("apt"), inputs.suite, inputs.mirror)?;
    apt.run(&["update"])?;
    let show = apt.run(&["show", &format!("{}:arm64", inputs.package)])?;
    let (version, expected) = candidate(&String::from_utf8_lossy(&show)).with_context(|| {
        format!("reading `apt-cache show {}` for its version and sha256", inputs.package)
    })?;
    let spec = format!("{}:arm64={version}", inputs.package);
    apt.download(&spec, &tmp)?;
    let deb = find_deb(&tmp, inputs.package)?;
    let deb_sha256 = crate::fsutil::sha256_file(&deb)?;
    anyhow::ensure!(
        deb_sha256 == expected,
        "downloaded `{}` has sha256 {deb_sha256}, but the archive lists {expected}",
        deb.display()
    );
    std::fs::rename(&deb, tmp.join("package.deb")).context("naming the firmware package")?;
    Cmd::new("dpkg-deb")
        .from_package("dpkg")
        .arg("--extract")
        .arg(tmp.join("package.deb"))
        .arg(tmp.join("tree"))
        .run()?;
    crate::fsutil::remove_dir_all_if_exists(&tmp.join("apt"))?;
    let meta = FirmwareMeta {
        key: key.to_string(),
        package: inputs.package.to_string(),
        version,
        deb_sha256,
    };
    crate::fsutil::write_atomic(&tmp.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
    let dir = root.join(key);
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("moving `{}` to `{}`", tmp.display(), dir.display()))?;
    Ok(Firmware { dir, meta })
}

/// The first (newest) stanza's version and `.deb` sha256 from `apt-cache show`.
fn candidate(show: &str) -> anyhow::Result<(String, String)> {
    let stanza = show.split("\n\n").next().unwrap_or_default();
    let field = |name: &str| {
        stanza.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    match (field("Version:"), field("SHA256:")) {
        (Some(v), Some(h)) => Ok((v, h)),
        _ => anyhow::bail!("no Version and SHA256 fields in the first stanza"),
    }
}

fn find_deb(dir: &Path, package: &str) -> anyhow::Result<PathBuf> {
    let prefix = format!("{package}_");
    std::fs::read_dir(dir)
        .with_context(|| format!("listing `{}`", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".deb")
        })
        .with_context(|| format!("apt-get download left no `{prefix}*.deb` in `{}`", dir.display()))
}

/// apt with its own state, lists and architecture (arm64), so nothing on the host changes.
struct PrivateApt {
    options: Vec<String>,
}

impl PrivateApt {
    fn create(dir: &Path, suite: &str, mirror: Option<&str>) -> anyhow::Result<Self> {
        for sub in ["state/lists/partial", "cache/archives/partial", "etc/sources.list.d"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating `{}`", path.display()))?;
        }
        let status = dir.join("state/status");
        crate::fsutil::write_atomic(&status, b"")?;
        let d = |sub: &str| dir.join(sub).display().to_string();
        let mut options = vec![
            format!("Dir::State={}", d("state")),
            format!("Dir::State::status={}", status.display()),
            format!("Dir::Cache={}", d("cache")),
            "APT::Architecture=arm64".to_string(),
            "APT::Architectures=arm64".to_string(),
            "APT::Sandbox::User=root".to_string(),
            "Debug::NoLocking=true".to_string(),
        ];
        // Without a mirror, the host's sources (as for the base); with one, only the mirror.
        if let Some(mirror) = mirror {
            let list = format!("deb [arch=arm64] {mirror} {suite} main\n");
            crate::fsutil::write_atomic(&dir.join("etc/sources.list"), list.as_bytes())?;
            options.push(format!("Dir::Etc::SourceList={}", d("etc/sources.list")));
            options.push(format!("Dir::Etc::SourceParts={}", d("etc/sources.list.d")));
        }
        Ok(Self { options })
    }

    fn command(&self, program: &str) -> Cmd {
        let mut cmd = Cmd::new(program).from_package("apt");
        for option in &self.options {
            cmd = cmd.arg("-o").arg(option);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let program = if args[0] == "show" { "apt-cache" } else { "apt-get" };
        self.command(program).args(args.iter().copied()).run()
    }

    fn download(&self, spec: &str, into: &Path) -> anyhow::Result<()> {
        // `apt-get download` saves into its working folder.
        self.command("apt-get").arg("download").arg(spec).dir(into).run().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_takes_the_first_stanza() {
        let show = "Package: u\nVersion: 2\nSHA256: bb\n\nPackage: u\nVersion: 1\nSHA256: aa\n";
        assert_eq!(candidate(show).unwrap(), ("2".to_string(), "bb".to_string()));
        assert!(candidate("Package: u\n").is_err());
    }
}

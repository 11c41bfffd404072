//! The base root filesystem: Debian for arm64 from mmdebstrap, cached by the hash of its inputs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::board::Board;
use crate::build::BuildContext;
use crate::profile::Profile;
use crate::progress;
use crate::runner::{shell_quote, Cmd};

/// Bumped whenever the way a base is made changes, so old cache entries are not reused.
const RECIPE_VERSION: u32 = 2;

/// A finished, checked cache entry.
#[derive(Debug, Clone)]
pub struct Base {
    pub dir: PathBuf,
    pub key: String,
    pub meta: BaseMeta,
}

impl Base {
    pub fn tarball(&self) -> PathBuf {
        self.dir.join("base.tar")
    }

    /// The base unpacked, used read-only as the lower layer when checking configs.
    pub fn tree(&self) -> PathBuf {
        self.dir.join("root")
    }
}

/// What the cache records about an entry; written last, so its presence means complete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseMeta {
    pub key: String,
    pub tarball_sha256: String,
    pub tarball_size: u64,
    pub mmdebstrap_version: String,
    pub packages: Vec<InstalledPackage>,
}

/// One installed Debian package and the hash of the `.deb` it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub deb_sha256: Option<String>,
}

/// The inputs that decide a base's contents; their hash is the cache key. Without a
/// mirror, mmdebstrap uses the host's apt sources, and the base holds what they served when
/// it was made, until `--rebuild-base`; the manifest records every package's exact version.
#[derive(Debug, Serialize)]
pub struct BaseInputs {
    pub recipe: u32,
    pub suite: String,
    pub mirror: Option<String>,
    pub packages: Vec<String>,
    pub source_date_epoch: u64,
    pub files: Vec<(String, String)>,
}

impl BaseInputs {
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("base inputs serialize");
        hex::encode(Sha256::digest(json))
    }
}

/// Collects the base's inputs from the profile, the board and `overlays/initramfs/`.
pub fn inputs(ctx: &BuildContext) -> anyhow::Result<BaseInputs> {
    inputs_for(&ctx.project, &ctx.profile.profile, &ctx.board.board)
}

/// The cache key of the base a profile and board need.
pub fn key_for(project: &Path, profile: &Profile, board: &Board) -> anyhow::Result<String> {
    Ok(inputs_for(project, profile, board)?.key())
}

fn inputs_for(project: &Path, profile: &Profile, board: &Board) -> anyhow::Result<BaseInputs> {
    let mut packages: Vec<String> = profile.base.packages.iter().map(|p| p.to_string()).collect();
    packages.extend(board.packages.iter().map(|p| p.to_string()));
    packages.sort();
    packages.dedup();
    Ok(BaseInputs {
        recipe: RECIPE_VERSION,
        suite: profile.base.suite.to_string(),
        mirror: profile.base.mirror.as_ref().map(|m| m.to_string()),
        packages,
        source_date_epoch: profile.image.source_date_epoch,
        files: hash_tree(&project.join("overlays/initramfs"))?,
    })
}

/// Every file under `dir` with its sha256, by relative path, sorted.
pub fn hash_tree(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for path in crate::fsutil::walk_files(dir)? {
        let rel = path.strip_prefix(dir).expect("walk stays under dir").to_string_lossy();
        out.push((rel.into_owned(), crate::fsutil::sha256_file(&path)?));
    }
    Ok(out)
}

/// Returns the cached base for these inputs, building it when missing or damaged.
pub fn fetch(ctx: &BuildContext) -> anyhow::Result<Base> {
    let inputs = inputs(ctx)?;
    let key = inputs.key();
    let root = ctx.cache_dir.join("base");
    std::fs::create_dir_all(&root)
        .with_context(|| format!("creating cache directory `{}`", root.display()))?;
    crate::fsutil::remove_stale_temps(&root)?;
    let dir = root.join(&key);
    if ctx.rebuild_base && dir.exists() {
        progress::note(&format!("--rebuild-base: removing cached base {}", &key[..16]));
        crate::fsutil::remove_dir_all_if_exists(&dir)?;
    }
    match open_entry(&dir, &key) {
        Ok(base) => {
            progress::note(&format!("using cached base {}", &key[..16]));
            return Ok(base);
        }
        Err(reason) if dir.exists() => {
            progress::note(&format!(
                "cached base {} is unusable ({reason:#}); rebuilding",
                &key[..16]
            ));
            crate::fsutil::remove_dir_all_if_exists(&dir)?;
        }
        Err(_) => progress::note(&format!("no cached base {}; building it", &key[..16])),
    }
    build_entry(ctx, &inputs, &root, &key)
}

fn open_entry(dir: &Path, key: &str) -> anyhow::Result<Base> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path)
        .with_context(|| format!("reading `{}`", meta_path.display()))?;
    let meta: BaseMeta = serde_json::from_str(&text)
        .with_context(|| format!("parsing `{}`", meta_path.display()))?;
    anyhow::ensure!(meta.key == key, "its key does not match its folder");
    let size = std::fs::metadata(dir.join("base.tar")).map(|m| m.len()).unwrap_or(0);
    anyhow::ensure!(
        size == meta.tarball_size,
        "base.tar has {size} bytes, expected {}",
        meta.tarball_size
    );
    anyhow::ensure!(dir.join("root/etc/os-release").exists(), "its unpacked tree is incomplete");
    Ok(Base { dir: dir.to_path_buf(), key: key.to_string(), meta })
}

fn build_entry(
    ctx: &BuildContext,
    inputs: &BaseInputs,
    root: &Path,
    key: &str,
) -> anyhow::Result<Base> {
    let tmp = root.join(format!("{key}.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
    let tarball = tmp.join("base.tar");
    run_mmdebstrap(ctx, inputs, &tmp, &tarball)?;
    crate::fsutil::remove_dir_all_if_exists(&tmp.join("initramfs-files"))?;
    unpack(&tarball, &tmp.join("root"))?;
    let meta = BaseMeta {
        key: key.to_string(),
        tarball_sha256: crate::fsutil::sha256_file(&tarball)?,
        tarball_size: std::fs::metadata(&tarball)?.len(),
        mmdebstrap_version: tool_version("mmdebstrap")?,
        packages: read_package_lists(&tmp)?,
    };
    crate::fsutil::write_atomic(&tmp.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
    let dir = root.join(key);
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("moving `{}` to `{}`", tmp.display(), dir.display()))?;
    Ok(Base { dir, key: key.to_string(), meta })
}

/// Shell steps, run in the new root last, that drop or empty what differs from one build of
/// the same packages to the next: logs, backup copies, byte-code caches, the linker's
/// auxiliary cache, per-device identity. mmdebstrap itself removes apt's lists and caches.
const PER_BUILD_FILES: &[&str] = &[
    "find var/log -type f -exec truncate --size=0 {} +",
    "rm -f etc/passwd- etc/group- etc/shadow- etc/gshadow- etc/subuid- etc/subgid-",
    "rm -f var/lib/dpkg/*-old var/cache/debconf/*-old var/cache/ldconfig/aux-cache",
    "rm -rf var/cache/man var/lib/systemd/random-seed var/lib/dbus/machine-id",
    "find . -xdev -type d -name __pycache__ -prune -exec rm -rf {} +",
    "rm -f etc/ssh/ssh_host_*",
    ": > etc/machine-id",
];

fn run_mmdebstrap(
    ctx: &BuildContext,
    inputs: &BaseInputs,
    tmp: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let initramfs_files = tmp.join("initramfs-files");
    stage_with_fixed_modes(&ctx.project.join("overlays/initramfs"), &initramfs_files)?;
    let q = |p: &Path| shell_quote(&p.to_string_lossy());
    let divert = "dpkg-divert --quiet --local --rename";
    let hooks_essential = format!(
        "chroot \"$1\" {divert} --add /usr/sbin/update-initramfs && \
         ln -s /bin/true \"$1/usr/sbin/update-initramfs\""
    );
    let hooks_customize = [
        format!("cp -R --preserve=mode {}/. \"$1/\"", q(&initramfs_files)),
        format!("rm \"$1/usr/sbin/update-initramfs\" && chroot \"$1\" {divert} --remove /usr/sbin/update-initramfs"),
        "chroot \"$1\" update-initramfs -c -k all".to_string(),
        format!(
            "chroot \"$1\" dpkg-query -W -f='${{Package}}\\t${{Version}}\\t${{Architecture}}\\n' > {}",
            q(&tmp.join("packages.tsv"))
        ),
        format!(
            "chroot \"$1\" dpkg-query -W -f='${{Package}}=${{Version}}\\n' | chroot \"$1\" xargs apt-cache show > {}",
            q(&tmp.join("apt-show.txt"))
        ),
        format!("cd \"$1\" && {}", PER_BUILD_FILES.join(" && ")),
    ];
    let mut cmd = Cmd::new("mmdebstrap")
        .from_package("mmdebstrap")
        .args(["--arch=arm64", "--variant=minbase", "--mode=root", "--format=tar"])
        .arg(format!("--include={}", inputs.packages.join(",")))
        .arg(format!("--essential-hook={hooks_essential}"))
        .env("SOURCE_DATE_EPOCH", inputs.source_date_epoch.to_string());
    for hook in hooks_customize {
        cmd = cmd.arg(format!("--customize-hook={hook}"));
    }
    cmd = cmd.arg(&inputs.suite).arg(out);
    if let Some(mirror) = &inputs.mirror {
        cmd = cmd.arg(mirror);
    }
    progress::note("this step installs Debian under emulation and can take 20 to 35 minutes");
    cmd.run_logged(&tmp.join("mmdebstrap.log"))
}

/// Copies `src` to `dest` with modes that do not depend on the checkout's umask: folders
/// 0755, files 0755 when executable in the checkout and 0644 otherwise. `cp --preserve=mode`
/// then applies exactly these modes, to the new root's existing folders too.
fn stage_with_fixed_modes(src: &Path, dest: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir_mode = |dir: &Path| -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting the mode of `{}`", dir.display()))
    };
    dir_mode(dest)?;
    for file in crate::fsutil::walk_files(src)? {
        let rel = file.strip_prefix(src).expect("walk stays under src");
        let to = dest.join(rel);
        for ancestor in rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            dir_mode(&dest.join(ancestor))?;
        }
        std::fs::copy(&file, &to)
            .with_context(|| format!("copying `{}` to `{}`", file.display(), to.display()))?;
        let executable = std::fs::metadata(&file)?.permissions().mode() & 0o111 != 0;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of `{}`", to.display()))?;
    }
    Ok(())
}

fn unpack(tarball: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    Cmd::new("tar")
        .from_package("tar")
        .args(["--extract", "--same-permissions", "--numeric-owner", "--file"])
        .arg(tarball)
        .arg("--directory")
        .arg(dir)
        .run()
        .map(drop)
}

/// `tool --version`'s first line, for the manifest.
pub fn tool_version(tool: &str) -> anyhow::Result<String> {
    let out = Cmd::new(tool).arg("--version").read()?;
    Ok(out.lines().next().unwrap_or("").trim().to_string())
}

fn read_package_lists(tmp: &Path) -> anyhow::Result<Vec<InstalledPackage>> {
    let tsv = std::fs::read_to_string(tmp.join("packages.tsv")).context("reading packages.tsv")?;
    let show = std::fs::read_to_string(tmp.join("apt-show.txt")).context("reading apt-show.txt")?;
    let hashes = deb_hashes(&show);
    let mut out: Vec<InstalledPackage> = tsv
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let (name, version, arch) = (f.next()?, f.next()?, f.next()?);
            let key = (name.to_string(), version.to_string());
            Some(InstalledPackage {
                name: name.into(),
                version: version.into(),
                architecture: arch.into(),
                deb_sha256: hashes.get(&key).cloned(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Maps (package, version) to the `.deb`'s SHA256 from `apt-cache show` stanzas.
pub fn deb_hashes(text: &str) -> std::collections::BTreeMap<(String, String), String> {
    let mut out = std::collections::BTreeMap::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if let (Some(p), Some(v), Some(h)) =
            (field("Package:"), field("Version:"), field("SHA256:"))
        {
            out.entry((p, v)).or_insert(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_changes_with_every_input() {
        let base = || BaseInputs {
            recipe: 1,
            suite: "bookworm".into(),
            mirror: None,
            packages: vec!["a".into()],
            source_date_epoch: 1,
            files: vec![("f".into(), "00".into())],
        };
        let key = base().key();
        assert_eq!(key, base().key());
        type Change = Box<dyn Fn(&mut BaseInputs)>;
        let changes: Vec<Change> = vec![
            Box::new(|i| i.suite = "trixie".into()),
            Box::new(|i| i.mirror = Some("http://m".into())),
            Box::new(|i| i.packages.push("b".into())),
            Box::new(|i| i.source_date_epoch = 2),
            Box::new(|i| i.files[0].1 = "01".into()),
        ];
        for change in changes {
            let mut i = base();
            change(&mut i);
            assert_ne!(i.key(), key);
        }
    }

    #[test]
    fn staged_files_get_fixed_modes_whatever_the_checkout_had() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        std::fs::create_dir_all(src.path().join("etc/hooks")).unwrap();
        std::fs::write(src.path().join("etc/conf"), "x").unwrap();
        std::fs::write(src.path().join("etc/hooks/run"), "#!/bin/sh\n").unwrap();
        let set = |p: &str, m: u32| {
            std::fs::set_permissions(src.path().join(p), std::fs::Permissions::from_mode(m))
        };
        set("etc/conf", 0o640).unwrap();
        set("etc/hooks/run", 0o750).unwrap();
        set("etc/hooks", 0o750).unwrap();
        set("etc", 0o700).unwrap();
        let out = dest.path().join("stage");
        stage_with_fixed_modes(src.path(), &out).expect("staged");
        assert_eq!(mode(&out), 0o755);
        assert_eq!(mode(&out.join("etc")), 0o755);
        assert_eq!(mode(&out.join("etc/hooks")), 0o755);
        assert_eq!(mode(&out.join("etc/conf")), 0o644);
        assert_eq!(mode(&out.join("etc/hooks/run")), 0o755);
    }

    #[test]
    fn deb_hashes_come_from_matching_stanzas() {
        let text = "Package: a\nVersion: 1\nSHA256: aa\n\nPackage: a\nVersion: 1\nSHA256: bb\n\n\
                    Package: b\nVersion: 2\nSHA256: cc\n";
        let map = deb_hashes(text);
        assert_eq!(map[&("a".into(), "1".into())], "aa");
        assert_eq!(map[&("b".into(), "2".into())], "cc");
    }
}

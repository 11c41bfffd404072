//! `baseimg build`: the steps from a profile to published image outputs, on one context.

pub mod accounts;
pub mod base;
pub mod disk;
pub mod firmware;
pub mod materialize;
pub mod middleware;
pub mod overlay;
pub mod publish;
pub mod render;
pub mod rootfs;
pub mod tools;
pub mod validate;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::board::LoadedBoard;
use crate::profile::LoadedProfile;
use crate::progress;

/// What `baseimg build` was asked to do.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub project: PathBuf,
    pub profile: String,
    pub out: Option<PathBuf>,
    pub ssh_keys: Vec<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    /// Make the Debian base anew even when a cached one matches.
    pub rebuild_base: bool,
}

/// State shared by the build steps.
pub struct BuildContext {
    pub project: PathBuf,
    pub profile: LoadedProfile,
    pub board: LoadedBoard,
    pub cache_dir: PathBuf,
    pub out_dir: PathBuf,
    /// Scratch folder inside the output folder, so outputs publish by rename.
    pub work_dir: PathBuf,
    pub ids: render::DiskIds,
    pub rebuild_base: bool,
}

/// Loads the profile (adding `--ssh-key` files) and its board.
pub fn load_inputs(
    project: &Path,
    profile: &str,
    ssh_keys: &[PathBuf],
) -> anyhow::Result<(LoadedProfile, LoadedBoard)> {
    let path = crate::profile::resolve(project, profile);
    let mut loaded = crate::profile::load(&path)?;
    for key_file in ssh_keys {
        let keys = crate::sshkey::read_key_file(key_file)?;
        loaded.profile.ssh.authorized_keys.extend(keys);
    }
    let board = crate::board::load(project, loaded.profile.image.board.as_str())
        .with_context(|| format!("loading the board named in `{}`", path.display()))?;
    Ok((loaded, board))
}

/// The default cache folder: `$BASEIMG_CACHE_DIR`, else the user's cache directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BASEIMG_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir().unwrap_or_else(|| PathBuf::from("/var/cache")).join("baseimg")
}

/// Disk and file system identifiers, derived from the image name and its epoch.
pub fn disk_ids(name: &str, epoch: u64) -> render::DiskIds {
    let id = |role: &str| {
        let seed = format!("baseimg:{name}:{epoch}:{role}");
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string()
    };
    render::DiskIds {
        disk_guid: id("disk"),
        root_partuuid: id("root-partition"),
        data_partuuid: id("data-partition"),
        root_fs_uuid: id("root-fs"),
        data_fs_uuid: id("data-fs"),
    }
}

/// Runs the whole build and returns the output folder.
pub fn build(opts: &BuildOptions) -> anyhow::Result<PathBuf> {
    let ctx = BuildContext::new(opts)?;
    match build_with(&ctx) {
        Err(err) if is_disk_full(&err) => {
            let work = ctx.work_dir.display().to_string();
            drop(ctx);
            Err(err.context(format!(
                "no space left on the disk that holds `{work}`: free some space or choose an \
                 output folder on a bigger disk (--out); the partial files were removed"
            )))
        }
        other => other,
    }
}

/// Whether an error comes from a full file system, from an I/O call or a tool's stderr.
fn is_disk_full(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io_full =
            cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.raw_os_error() == Some(28));
        io_full || cause.to_string().contains("No space left on device")
    })
}

fn build_with(ctx: &BuildContext) -> anyhow::Result<PathBuf> {
    let base = ctx.fetch_base()?;
    let firmware = ctx.fetch_firmware()?;
    let facts = render::BaseFacts::read(&base.tree())?;
    let bins = ctx.build_middleware()?;
    let mut overlay = ctx.render_overlay(&facts)?;
    middleware::install(&mut overlay, &ctx.project, &bins)?;
    let base_hash = ctx.assemble_rootfs(&base, &overlay)?;
    anyhow::ensure!(
        base_hash == base.meta.tarball_sha256,
        "the cached base `{}` is damaged (sha256 {base_hash}, expected {}); nothing was \
         published; build again with --rebuild-base to replace it",
        base.tarball().display(),
        base.meta.tarball_sha256
    );
    ctx.validate_configs(&base, &overlay)?;
    ctx.audit_rootfs()?;
    let layout = ctx.write_disk_image(firmware.as_ref())?;
    ctx.publish_outputs(&base, firmware.as_ref(), &facts, &layout, &bins)?;
    Ok(ctx.out_dir.clone())
}

impl BuildContext {
    pub fn new(opts: &BuildOptions) -> anyhow::Result<Self> {
        let _step = progress::step("load_profile");
        let (profile, board) = load_inputs(&opts.project, &opts.profile, &opts.ssh_keys)?;
        tools::check_host()?;
        let name = profile.profile.image.name.to_string();
        let out_dir = opts.out.clone().unwrap_or_else(|| opts.project.join("out").join(&name));
        std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("creating output folder `{}`", out_dir.display()))?;
        crate::fsutil::remove_stale_temps(&out_dir)?;
        let work_dir = out_dir.join(format!(".build.tmp-{}", std::process::id()));
        std::fs::create_dir_all(&work_dir)
            .with_context(|| format!("creating `{}`", work_dir.display()))?;
        let ids = disk_ids(&name, profile.profile.image.source_date_epoch);
        progress::note(&format!("profile `{}`, board `{}`", profile.path.display(), board.name));
        let cache_dir = opts.cache_dir.clone().unwrap_or_else(default_cache_dir);
        Ok(Self {
            project: opts.project.clone(),
            profile,
            board,
            cache_dir,
            out_dir,
            work_dir,
            ids,
            rebuild_base: opts.rebuild_base,
        })
    }

    pub fn name(&self) -> &str {
        self.profile.profile.image.name.as_str()
    }

    pub fn epoch(&self) -> u64 {
        self.profile.profile.image.source_date_epoch
    }

    pub fn fetch_base(&self) -> anyhow::Result<base::Base> {
        let _step = progress::step("fetch_base");
        base::fetch(self)
    }

    /// The board's boot firmware package, unpacked (none for a board without blobs).
    pub fn fetch_firmware(&self) -> anyhow::Result<Option<firmware::Firmware>> {
        let _step = progress::step("fetch_firmware");
        firmware::fetch(self)
    }

    pub fn build_middleware(&self) -> anyhow::Result<middleware::Binaries> {
        let _step = progress::step("build_middleware");
        middleware::cross_build(&self.project, &self.work_dir.join("cargo.log"))
    }

    pub fn render_overlay(&self, facts: &render::BaseFacts) -> anyhow::Result<overlay::Overlay> {
        let _step = progress::step("render_overlay");
        let p = &self.profile.profile;
        render::render_overlay(&self.project, p, &self.board, facts, &self.ids)
    }

    pub fn rootfs_path(&self) -> PathBuf {
        self.work_dir.join(format!("{}.rootfs.tar", self.name()))
    }

    pub fn image_path(&self) -> PathBuf {
        self.work_dir.join(format!("{}.img", self.name()))
    }

    pub fn assemble_rootfs(
        &self,
        base: &base::Base,
        overlay: &overlay::Overlay,
    ) -> anyhow::Result<String> {
        let _step = progress::step("assemble_rootfs");
        rootfs::assemble(&base.tarball(), overlay, &self.rootfs_path(), self.epoch())
    }

    pub fn validate_configs(
        &self,
        base: &base::Base,
        overlay: &overlay::Overlay,
    ) -> anyhow::Result<()> {
        let _step = progress::step("validate_configs");
        validate::validate(&base.tree(), overlay, &self.work_dir.join("check"))
    }

    /// Runs every hardening control on the assembled root filesystem; a failure stops the
    /// build, a control the profile waives is reported as waived.
    pub fn audit_rootfs(&self) -> anyhow::Result<()> {
        let _step = progress::step("audit_rootfs");
        let p = &self.profile.profile;
        let tree = crate::audit::open(&self.rootfs_path())?;
        let expect = crate::audit::context::Expect::from_profile(p);
        let input = self.rootfs_path().display().to_string();
        let report = crate::audit::audit(tree.as_ref(), expect, &p.audit.waive, &input);
        progress::note(&format!(
            "{} controls passed, {} failed, {} waived",
            report.passed, report.failed, report.waived
        ));
        if report.failed > 0 {
            anyhow::bail!("the root filesystem fails hardening controls:\n{}", report.table());
        }
        Ok(())
    }

    pub fn write_disk_image(
        &self,
        firmware: Option<&firmware::Firmware>,
    ) -> anyhow::Result<disk::Layout> {
        let _step = progress::step("write_disk_image");
        let p = &self.profile.profile;
        let layout = disk::layout(&self.board.board, p.disk.size_mib, p.disk.data_size_mib)?;
        let mut blobs = Vec::new();
        for blob in &self.board.board.blobs {
            let firmware = firmware.context("the board has blobs but no firmware package")?;
            let path = firmware.tree().join(blob.path.as_str());
            let bytes = std::fs::read(&path).with_context(|| {
                format!("reading boot blob `{}` from {}", blob.path, firmware.meta.package)
            })?;
            blobs.push((blob.path.to_string(), blob.sector, bytes));
        }
        let sizes: Vec<(String, u64, u64)> =
            blobs.iter().map(|(p, s, b)| (p.clone(), *s, b.len() as u64)).collect();
        disk::check_blobs(&layout, &sizes)?;
        disk::write_image(
            &self.image_path(),
            &layout,
            &self.ids,
            &self.rootfs_path(),
            &blobs,
            self.epoch(),
        )?;
        Ok(layout)
    }

    pub fn publish_outputs(
        &self,
        base: &base::Base,
        firmware: Option<&firmware::Firmware>,
        facts: &render::BaseFacts,
        layout: &disk::Layout,
        bins: &middleware::Binaries,
    ) -> anyhow::Result<()> {
        let _step = progress::step("publish_outputs");
        let sources = publish::Sources { base, firmware: firmware.map(|f| &f.meta), facts, bins };
        publish::publish(self, &sources, layout)
    }
}

impl Drop for BuildContext {
    fn drop(&mut self) {
        let _ = crate::fsutil::remove_dir_all_if_exists(&self.work_dir);
    }
}

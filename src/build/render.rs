//! The overlay from templates (tera, no autoescape), static files and the account databases.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::accounts::{self, Accounts, ServiceUser, ADMIN_ID};
use super::overlay::{Node, Overlay};
use crate::board::LoadedBoard;
use crate::profile::Profile;

/// Services that get a system user of their own, with the user's description.
pub const SERVICE_USERS: &[(&str, &str)] = &[("base-middleware", "baseimg middleware")];

/// Units enabled by the build: (unit, the target whose `.wants` links it).
const ENABLED_UNITS: &[(&str, &str)] = &[
    ("baseimg-firewall.service", "sysinit.target"),
    ("baseimg-firstboot.service", "multi-user.target"),
    ("systemd-networkd.service", "multi-user.target"),
    ("systemd-networkd.socket", "sockets.target"),
];

/// Base paths dropped from every image: per-device secrets and per-build logs and caches.
const REMOVED: &[&str] = &[
    "etc/nginx/sites-enabled/default",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
    "var/cache/ldconfig/aux-cache",
    "var/log/apt",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/bootstrap.log",
    // SSH is a systemd unit only. With its SysV script present, `systemctl enable ssh`
    // (the middleware's switch) also runs update-rc.d and reloads systemd three times.
    "etc/init.d/ssh",
    "etc/rc2.d/S01ssh",
    "etc/rc3.d/S01ssh",
    "etc/rc4.d/S01ssh",
    "etc/rc5.d/S01ssh",
];
const REMOVED_PREFIXES: &[&str] = &["etc/ssh/ssh_host_"];

/// What rendering needs to know about the base root filesystem.
#[derive(Debug, Clone)]
pub struct BaseFacts {
    pub kernel_version: String,
    pub accounts: Accounts,
    tree: PathBuf,
}

impl BaseFacts {
    /// Reads the facts from an unpacked base tree.
    pub fn read(tree: &Path) -> anyhow::Result<Self> {
        let read = |p: &str| {
            std::fs::read_to_string(tree.join(p))
                .with_context(|| format!("reading `{}` of the base", p))
        };
        let accounts = Accounts::parse(
            &read("etc/passwd")?,
            &read("etc/shadow")?,
            &read("etc/group")?,
            &read("etc/gshadow")?,
        )?;
        Ok(Self { kernel_version: kernel_version(tree)?, accounts, tree: tree.to_path_buf() })
    }

    pub fn exists(&self, path: &str) -> bool {
        self.tree.join(path).symlink_metadata().is_ok()
    }
}

/// The one kernel version whose image is in `/boot`.
fn kernel_version(tree: &Path) -> anyhow::Result<String> {
    let boot = tree.join("boot");
    let mut versions: Vec<String> = std::fs::read_dir(&boot)
        .with_context(|| format!("listing `{}`", boot.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("vmlinuz-").map(String::from))
        .collect();
    versions.sort();
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("the base has no kernel in /boot (is linux-image-arm64 listed?)"),
        many => anyhow::bail!("the base has several kernels in /boot: {}", many.join(", ")),
    }
}

/// Identifiers of the disk that templates refer to (fstab, kernel command line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskIds {
    pub disk_guid: String,
    pub root_partuuid: String,
    pub data_partuuid: String,
    pub root_fs_uuid: String,
    pub data_fs_uuid: String,
}

/// Everything templates can read.
#[derive(Debug, Serialize)]
struct TemplateContext<'a> {
    profile: &'a Profile,
    board: &'a crate::board::Board,
    kernel_version: &'a str,
    kernel_cmdline: String,
    disk: &'a DiskIds,
    authorized_keys: Vec<&'a str>,
    service_users: &'a [ServiceUser],
}

/// Renders the whole overlay for a profile on top of a base.
pub fn render_overlay(
    project: &Path,
    profile: &Profile,
    board: &LoadedBoard,
    facts: &BaseFacts,
    ids: &DiskIds,
) -> anyhow::Result<Overlay> {
    let mut overlay = Overlay::default();
    copy_static(&mut overlay, &project.join("overlays/common"))?;
    copy_static(&mut overlay, &board.dir.join("overlay"))?;

    let mut accounts = facts.accounts.clone();
    let days = profile.image.source_date_epoch / 86_400;
    let service_users = accounts::apply(&mut accounts, SERVICE_USERS, days)?;
    for (path, text, mode) in accounts.render() {
        overlay.file(path, text, mode);
    }
    let shadow_gid = accounts.gid("shadow").context("the base has no `shadow` group")?;
    overlay.chown("etc/shadow", 0, shadow_gid)?;
    overlay.chown("etc/gshadow", 0, shadow_gid)?;

    let context = TemplateContext {
        profile,
        board: &board.board,
        kernel_version: &facts.kernel_version,
        kernel_cmdline: kernel_cmdline(profile, board, ids),
        disk: ids,
        authorized_keys: profile.ssh.authorized_keys.iter().map(|k| k.line()).collect(),
        service_users: &service_users,
    };
    render_templates(&mut overlay, &project.join("templates"), &context)?;
    apply_file_table(&mut overlay, &project.join("templates/files.toml"), &accounts)?;
    enable_units(&mut overlay, profile);
    for path in REMOVED {
        overlay.remove(path);
    }
    for prefix in REMOVED_PREFIXES {
        overlay.remove_prefix(prefix);
    }
    overlay.file("etc/machine-id", "", 0o444);
    overlay.add_missing_parents(|p| facts.exists(p));
    Ok(overlay)
}

/// The kernel command line: root by partition UUID, panic reboot, board console, extras.
pub fn kernel_cmdline(profile: &Profile, board: &LoadedBoard, ids: &DiskIds) -> String {
    let mut words = vec![
        format!("root=PARTUUID={}", ids.root_partuuid),
        "rootfstype=ext4".to_string(),
        "rootwait".to_string(),
        "ro".to_string(),
        format!("panic={}", profile.kernel.panic_seconds),
    ];
    words.extend(board.board.console.iter().map(|c| c.to_string()));
    words.extend(profile.kernel.extra_args.iter().map(|a| a.to_string()));
    words.join(" ")
}

fn enable_units(overlay: &mut Overlay, profile: &Profile) {
    for (unit, target) in ENABLED_UNITS {
        let link = format!("etc/systemd/system/{target}.wants/{unit}");
        let target_path = if unit.starts_with("baseimg-") {
            format!("/etc/systemd/system/{unit}")
        } else {
            format!("/lib/systemd/system/{unit}")
        };
        overlay.symlink(&link, &target_path);
    }
    let ssh_link = "etc/systemd/system/multi-user.target.wants/ssh.service";
    if profile.ssh.enabled {
        overlay.symlink(ssh_link, "/lib/systemd/system/ssh.service");
    } else {
        overlay.remove(ssh_link);
    }
}

/// Copies a static tree; executables keep mode 0755, everything else is 0644.
fn copy_static(overlay: &mut Overlay, dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for path in crate::fsutil::walk_files(dir)? {
        let rel = path.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            overlay.symlink(&rel, &target.to_string_lossy());
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
        let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
        overlay.file(&rel, bytes, mode);
    }
    Ok(())
}

/// Renders every `templates/rootfs/**.tera` to the same path without `.tera`.
fn render_templates(
    overlay: &mut Overlay,
    dir: &Path,
    context: &TemplateContext,
) -> anyhow::Result<()> {
    let root = dir.join("rootfs");
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    let mut names = Vec::new();
    for path in crate::fsutil::walk_files(&root)? {
        let rel = path.strip_prefix(&root).expect("under root").to_string_lossy().into_owned();
        let Some(target) = rel.strip_suffix(".tera") else {
            anyhow::bail!("`{}` is not a template (templates end in .tera)", path.display());
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading template `{}`", path.display()))?;
        tera.add_raw_template(&rel, &text).map_err(|e| {
            anyhow::anyhow!("parsing template `{}`: {}", path.display(), tera_chain(&e))
        })?;
        names.push((rel.clone(), target.to_string()));
    }
    let ctx = tera::Context::from_serialize(context).context("preparing the template context")?;
    for (name, target) in names {
        let text = tera
            .render(&name, &ctx)
            .map_err(|e| anyhow::anyhow!("rendering template `{name}`: {}", tera_chain(&e)))?;
        overlay.file(&target, text, 0o644);
    }
    Ok(())
}

fn tera_chain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// Modes and owners that differ from the defaults, from `templates/files.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTable {
    #[serde(default)]
    file: Vec<FileRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    path: String,
    mode: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    directory: bool,
}

fn apply_file_table(
    overlay: &mut Overlay,
    table: &Path,
    accounts: &Accounts,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(table).with_context(|| format!("reading `{}`", table.display()))?;
    let rules: FileTable = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", table.display(), e.message()))?;
    for rule in rules.file {
        let mode = u32::from_str_radix(&rule.mode, 8).with_context(|| {
            format!("{}: mode `{}` of `{}` is not octal", table.display(), rule.mode, rule.path)
        })?;
        if rule.directory && !overlay.entries.contains_key(&rule.path) {
            overlay.put(&rule.path, Node::Dir, mode, 0, 0);
        }
        overlay
            .chmod(&rule.path, mode)
            .with_context(|| format!("applying `{}`", table.display()))?;
        if let Some(owner) = &rule.owner {
            let uid = accounts.uid(owner).with_context(|| format!("unknown owner `{owner}`"))?;
            let gid = accounts.gid(owner).unwrap_or(ADMIN_ID);
            overlay.chown(&rule.path, uid, gid)?;
        }
    }
    Ok(())
}

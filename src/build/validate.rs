//! Config checks by the image's own programs (sshd, nginx, iptables) under qemu-user, in a
//! private mount and network namespace over base + overlay.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::overlay::Overlay;
use crate::progress;
use crate::runner::Cmd;

/// A check: what it proves and the command run inside the image.
struct Check {
    what: &'static str,
    argv: &'static [&'static str],
}

/// The first boot's script runs first: it makes the keys and certificate the others need.
const CHECKS: &[Check] = &[
    Check { what: "first-boot secrets", argv: &["/usr/local/lib/baseimg/firstboot"] },
    Check { what: "sshd configuration", argv: &["/usr/sbin/sshd", "-t"] },
    Check { what: "nginx configuration", argv: &["/usr/sbin/nginx", "-t", "-q"] },
    Check {
        what: "IPv4 firewall rules",
        argv: &["/usr/sbin/iptables-restore", "--test", "/etc/iptables/rules.v4"],
    },
    Check {
        what: "IPv6 firewall rules",
        argv: &["/usr/sbin/ip6tables-restore", "--test", "/etc/iptables/rules.v6"],
    },
];

/// Checks the configs of base + overlay with the image's binaries; `scratch` is emptied.
pub fn validate(base_tree: &Path, overlay: &Overlay, scratch: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        super::tools::is_root(),
        "checking configs with the image's own programs needs root (chroot and mounts); \
         run `baseimg build` as root"
    );
    crate::fsutil::remove_dir_all_if_exists(scratch)?;
    let (upper, work, merged) =
        (scratch.join("upper"), scratch.join("work"), scratch.join("merged"));
    for dir in [&upper, &work, &merged] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    }
    super::materialize::write_tree(overlay, &upper, true)?;
    write_whiteouts(overlay, base_tree, &upper)?;
    let exe = std::env::current_exe().context("finding the baseimg executable")?;
    let result = Cmd::new("unshare")
        .from_package("util-linux")
        .args(["--mount", "--net", "--fork", "--"])
        .arg(exe)
        .arg("internal-check-configs")
        .args([base_tree, &upper, &work, &merged].map(|p| p.as_os_str().to_owned()))
        .run();
    crate::fsutil::remove_dir_all_if_exists(scratch)?;
    result.map(drop)
}

/// Runs inside the private namespaces: mounts the layers and runs every check.
pub fn check_in_namespace(
    lower: &Path,
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> anyhow::Result<()> {
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    Cmd::new("mount").args(["-t", "overlay", "overlay", "-o"]).arg(options).arg(merged).run()?;
    Cmd::new("mount").args(["-t", "proc", "proc"]).arg(merged.join("proc")).run()?;
    Cmd::new("mount").args(["--rbind", "/dev"]).arg(merged.join("dev")).run()?;
    for dir in ["run", "tmp"] {
        Cmd::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(merged.join(dir)).run()?;
    }
    let mut failures = Vec::new();
    for check in CHECKS {
        progress::note(&format!("checking {}", check.what));
        let result = Cmd::new("chroot").arg(merged).args(check.argv).run();
        if let Err(e) = result {
            failures.push(format!("{}: {e:#}", check.what));
        }
    }
    anyhow::ensure!(failures.is_empty(), "the image rejects its configs:\n{}", failures.join("\n"));
    Ok(())
}

/// Hides removed base paths in the overlay's upper layer with whiteouts (char device 0:0).
fn write_whiteouts(overlay: &Overlay, lower: &Path, upper: &Path) -> anyhow::Result<()> {
    let mut paths: Vec<PathBuf> = overlay.removals.iter().map(PathBuf::from).collect();
    for prefix in &overlay.removal_prefixes {
        let (dir, stem) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let Ok(entries) = std::fs::read_dir(lower.join(dir)) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(stem) {
                paths.push(Path::new(dir).join(entry.file_name()));
            }
        }
    }
    for rel in paths {
        if lower.join(&rel).symlink_metadata().is_err()
            || upper.join(&rel).symlink_metadata().is_ok()
        {
            continue;
        }
        let target = upper.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Cmd::new("mknod").arg(&target).args(["c", "0", "0"]).run()?;
    }
    Ok(())
}

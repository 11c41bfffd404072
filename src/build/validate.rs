//! Config checks by the image's own programs (sshd, nginx, iptables) under qemu-user, in a
//! private mount and network namespace over base + overlay.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::overlay::Overlay;
use crate::progress;
use crate::runner::Cmd;

/// Where a check's program comes from.
#[derive(Debug, Clone, Copy)]
enum Program {
    /// The image's own binary, run in a chroot through qemu-user.
    Image,
    /// The build host's binary, given the image's file. Used for iptables: qemu-user cannot
    /// pass nf_tables netlink through, so the image's iptables cannot reach a kernel there.
    /// The host is Debian 12 too, with the same iptables release as the image.
    Host,
}

/// A check: what it proves and the command run; paths of `Host` checks are inside the image.
struct Check {
    what: &'static str,
    program: Program,
    argv: &'static [&'static str],
}

/// The first boot's script runs first: it makes the keys and certificate the others need.
const CHECKS: &[Check] = &[
    Check {
        what: "first-boot secrets",
        program: Program::Image,
        argv: &["/usr/local/lib/baseimg/firstboot"],
    },
    Check { what: "sshd configuration", program: Program::Image, argv: &["/usr/sbin/sshd", "-t"] },
    Check {
        what: "nginx configuration",
        program: Program::Image,
        argv: &["/usr/sbin/nginx", "-t", "-q"],
    },
    Check {
        what: "base-middleware runs on the image",
        program: Program::Image,
        argv: &["/usr/bin/base-middleware", "--version"],
    },
    Check {
        what: "IPv4 firewall rules",
        program: Program::Host,
        argv: &["iptables-nft-restore", "--test", "/etc/iptables/rules.v4"],
    },
    Check {
        what: "IPv6 firewall rules",
        program: Program::Host,
        argv: &["ip6tables-nft-restore", "--test", "/etc/iptables/rules.v6"],
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
    // This very executable, even if a rebuild replaced the file since it started.
    let exe = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
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
    // systemd makes sshd's privilege separation folder at boot (RuntimeDirectory).
    std::fs::create_dir_all(merged.join("run/sshd")).context("creating /run/sshd")?;
    let mut failures = Vec::new();
    for check in CHECKS {
        progress::note(&format!("checking {}", check.what));
        if let Err(e) = run_check(check, merged) {
            failures.push(format!("{}: {e:#}", check.what));
        }
    }
    anyhow::ensure!(failures.is_empty(), "the image rejects its configs:\n{}", failures.join("\n"));
    Ok(())
}

fn run_check(check: &Check, merged: &Path) -> anyhow::Result<()> {
    let cmd = match check.program {
        Program::Image => Cmd::new("chroot").arg(merged).args(check.argv),
        Program::Host => {
            let (program, args) = check.argv.split_first().expect("a check has a program");
            let args = args.iter().map(|a| match a.strip_prefix('/') {
                Some(inside) => merged.join(inside).into_os_string(),
                None => a.into(),
            });
            Cmd::new(program).from_package("iptables").args(args)
        }
    };
    cmd.run().map(drop)
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

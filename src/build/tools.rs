//! Host tools the build needs: presence, versions and the emulation it relies on.

use crate::runner::Cmd;

/// Programs the build runs, with the Debian package that provides each.
pub const HOST_TOOLS: &[(&str, &str)] = &[
    ("mmdebstrap", "mmdebstrap"),
    ("mke2fs", "e2fsprogs"),
    ("sfdisk", "fdisk"),
    ("unshare", "util-linux"),
    ("chroot", "coreutils"),
    ("tar", "tar"),
];

/// Whether this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Fails with the package to install when a tool is missing or unfit.
pub fn check_host() -> anyhow::Result<()> {
    anyhow::ensure!(
        is_root(),
        "`baseimg build` needs root: mmdebstrap installs packages as root, and the configs are \
         checked in a chroot; run it with sudo"
    );
    for (tool, package) in HOST_TOOLS {
        if which(tool).is_none() {
            anyhow::bail!(
                "`{tool}` was not found on PATH; install it with `apt-get install {package}`"
            );
        }
    }
    check_mke2fs()?;
    let binfmt = std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    let enabled = std::fs::read_to_string(binfmt).is_ok_and(|s| s.starts_with("enabled"));
    anyhow::ensure!(
        enabled,
        "arm64 programs cannot run on this host: `{}` is missing or disabled; install \
         qemu-user-static and binfmt-support (see ci/install-host-packages.sh)",
        binfmt.display()
    );
    Ok(())
}

/// mke2fs reads tarballs (`-d file.tar`) from e2fsprogs 1.47.1 on.
fn check_mke2fs() -> anyhow::Result<()> {
    let out = Cmd::new("mke2fs").arg("-V").run_merged()?;
    let version = out.split_whitespace().nth(1).unwrap_or("").to_string();
    let parts: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    anyhow::ensure!(
        parts.as_slice() >= [1, 47, 1].as_slice(),
        "mke2fs {version} cannot read tarballs; e2fsprogs 1.47.1 or newer is needed \
         (Debian 12: `apt-get install -t bookworm-backports e2fsprogs libarchive13`)"
    );
    Ok(())
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

/// What rustup's proxies (`cargo`, `rustc`) need from the caller's environment.
pub const RUST_ENV: &[&str] = &["HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"];

/// Versions of the tools that shape the outputs, for the manifest.
pub fn versions() -> Vec<(String, String)> {
    let probes: &[(&str, &[&str])] = &[
        ("mmdebstrap", &["--version"]),
        ("mke2fs", &["-V"]),
        ("sfdisk", &["--version"]),
        ("qemu-aarch64-static", &["--version"]),
        ("tar", &["--version"]),
        ("rustc", &["--version"]),
        ("cargo", &["--version"]),
    ];
    probes
        .iter()
        .map(|(tool, args)| {
            let out = Cmd::new(*tool)
                .args(*args)
                .inherit_env(RUST_ENV)
                .run_merged()
                .unwrap_or_else(|e| format!("unavailable: {e}"));
            (tool.to_string(), out.lines().next().unwrap_or("").trim().to_string())
        })
        .collect()
}

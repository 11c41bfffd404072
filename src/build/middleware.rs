//! base-middleware for the image: cross-built from this workspace for arm64, with its units.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::overlay::Overlay;
use crate::runner::Cmd;

/// Rust target of every image (all boards are arm64).
pub const TARGET: &str = "aarch64-unknown-linux-gnu";

/// Binaries and where they go in the image.
const BINARIES: &[(&str, &str)] = &[
    ("base-middleware", "usr/bin/base-middleware"),
    ("base-middleware-helper", "usr/libexec/base-middleware-helper"),
];

/// Unit files shipped in `middleware/dist/` and where they go.
const UNITS: &[(&str, &str)] = &[
    ("base-middleware.service", "usr/lib/systemd/system/base-middleware.service"),
    ("base-middleware-helper.socket", "usr/lib/systemd/system/base-middleware-helper.socket"),
    ("base-middleware-helper@.service", "usr/lib/systemd/system/base-middleware-helper@.service"),
    ("base-middleware.sysusers", "usr/lib/sysusers.d/base-middleware.conf"),
];

/// Units enabled in the image: (unit, the target whose `.wants` links it).
pub const ENABLED: &[(&str, &str)] = &[
    ("base-middleware.service", "multi-user.target"),
    ("base-middleware-helper.socket", "sockets.target"),
];

/// The cross-built binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
}

/// Flags that replace the checkout's and cargo's own folders in the binaries' embedded paths
/// (panic locations, debug info), so the binaries do not depend on where things live.
/// Returned as a TOML array, for `cargo --config`.
fn remap_flags(project: &Path) -> String {
    let project = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| {
        dirs::home_dir().unwrap_or_else(|| PathBuf::from("/root")).join(".cargo")
    });
    let flags = [
        format!("--remap-path-prefix={}=/build/baseimg", project.display()),
        format!("--remap-path-prefix={}=/build/cargo", cargo_home.display()),
    ];
    // A JSON array of strings is also a TOML array of basic strings.
    serde_json::to_string(&flags).expect("strings serialize")
}

/// Builds the middleware for arm64 with cargo (`--locked`, release profile), its output in
/// `log` with a heartbeat on the terminal, since a first build takes minutes.
pub fn cross_build(project: &Path, log: &Path) -> anyhow::Result<Binaries> {
    let target_env = format!("CARGO_TARGET_{}", TARGET.to_uppercase().replace('-', "_"));
    let cmd = Cmd::new("cargo")
        .args(["build", "--release", "--locked", "-p", "base-middleware", "--target", TARGET])
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"))
        .env(&format!("{target_env}_LINKER"), "aarch64-linux-gnu-gcc")
        .arg("--config")
        .arg(format!("target.{TARGET}.rustflags = {}", remap_flags(project)))
        .inherit_env(super::tools::RUST_ENV)
        .inherit_env(&["CARGO_TARGET_DIR"]);
    if which_missing("aarch64-linux-gnu-gcc") {
        anyhow::bail!(
            "`aarch64-linux-gnu-gcc` was not found; install it with \
             `apt-get install gcc-aarch64-linux-gnu` and run `rustup target add {TARGET}`"
        );
    }
    cmd.run_logged(log).context("cross-building base-middleware for arm64")?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project.join("target"));
    Ok(Binaries { dir: target_dir.join(TARGET).join("release") })
}

fn which_missing(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    !std::env::split_paths(&path).any(|d| d.join(tool).is_file())
}

/// Adds the binaries, unit files and enablement links to the overlay.
pub fn install(overlay: &mut Overlay, project: &Path, bins: &Binaries) -> anyhow::Result<()> {
    for (name, dest) in BINARIES {
        let path = bins.dir.join(name);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading the arm64 binary `{}`", path.display()))?;
        overlay.file(dest, bytes, 0o755);
    }
    let dist = project.join("middleware/dist");
    for (name, dest) in UNITS {
        let path = dist.join(name);
        let bytes =
            std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
        overlay.file(dest, bytes, 0o644);
    }
    for (unit, target) in ENABLED {
        let link = format!("etc/systemd/system/{target}.wants/{unit}");
        overlay.symlink(&link, &format!("/usr/lib/systemd/system/{unit}"));
    }
    Ok(())
}

/// The files `install` puts into the image with their sha256, for the manifest.
pub fn input_hashes(bins: &Binaries) -> anyhow::Result<Vec<(String, String)>> {
    BINARIES
        .iter()
        .map(|(name, _)| {
            let path = bins.dir.join(name);
            Ok((format!("{TARGET}/{name}"), crate::fsutil::sha256_file(&path)?))
        })
        .collect()
}

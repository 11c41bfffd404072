//! baseimg builds hardened, flashable OS images for small ARM network appliances.
//!
//! Where things live:
//! - [`profile`]: the strict, versioned image profile and its checked value types.
//! - [`board`]: board support (`board-support/<board>/board.toml`): packages, blobs, console.
//! - [`sshkey`]: SSH public keys as users paste them.
//! - [`build`]: the build steps, from the Debian base to the published outputs.
//! - [`runner`]: the one way external commands are run.
//! - [`progress`]: status lines on stderr.
//! - [`fsutil`]: atomic writes, hashing, tree walks.
//! - [`audit`]: hardening controls checked on an image, a rootfs tarball or a folder.
//! - [`device`]: the owner's client for a running appliance.
//! - [`release`]: release artifacts: compressed image, block map, SBOM.
//! - [`sign`]: `baseimg sign`, an SSH signature over `SHA256SUMS`.
//! - [`verify`]: `baseimg verify`, the signature, checksums and block map of an output folder.
//! - [`flash`]: `baseimg flash`, an image onto a disk, mapped blocks only, read back.
//! - [`render_cmd`]: `baseimg render`, the overlay alone for review.
//! - [`rebuild`]: `baseimg verify --rebuild`, an output folder built again and compared.
//! - [`run`]: `baseimg run`, a built `qemu-arm64` image booted on a private LAN.

pub mod audit;
pub mod board;
pub mod build;
pub mod device;
pub mod flash;
pub mod fsutil;
pub mod profile;
pub mod progress;
pub mod rebuild;
pub mod release;
pub mod render_cmd;
pub mod run;
pub mod runner;
pub mod sign;
pub mod sshkey;
pub mod verify;

use std::path::{Path, PathBuf};

/// Exit code for a failed check (a config the image rejects, for instance).
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code for bad usage or unreadable input.
pub const EXIT_USAGE: u8 = 2;

/// The project folder (the one holding `image-profiles/`): `start` or its nearest ancestor
/// that has one, else the folder this program was built from.
pub fn find_project(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|dir| dir.join("image-profiles").is_dir() && dir.join("templates").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

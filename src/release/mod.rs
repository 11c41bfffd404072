//! Release artifacts beside the raw image: the compressed image, the block map and the SBOM.

pub mod bmap;
pub mod compress;
pub mod deb822;
pub mod license;
pub mod sbom;

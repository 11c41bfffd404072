//! The disk image: GPT layout, firmware blobs at the board's sectors, ext4 file systems.

use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;

use super::render::DiskIds;
use crate::board::{Board, SECTOR};
use crate::runner::Cmd;

/// Partitions start on 1 MiB boundaries.
const ALIGN: u64 = 2048;
/// Sectors GPT keeps at the end of the disk (backup entries and header).
const GPT_TAIL: u64 = 33;
/// Sectors GPT uses at the start (protective MBR, header, 128 entries).
const GPT_HEAD: u64 = 34;
/// GPT type of a Linux root partition for arm64.
const ROOT_TYPE: &str = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE";
/// GPT type of a Linux data partition.
const DATA_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// Start and size of each partition, in sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    pub total_sectors: u64,
    pub root_start: u64,
    pub root_sectors: u64,
    pub data_start: u64,
    pub data_sectors: u64,
}

/// Computes the layout for a disk of `size_mib` with a data partition of `data_mib` last.
pub fn layout(board: &Board, size_mib: u32, data_mib: u32) -> anyhow::Result<Layout> {
    let mib = 1024 * 1024 / SECTOR;
    let total_sectors = u64::from(size_mib) * mib;
    let last_usable = total_sectors - GPT_TAIL - 1;
    let root_start = board.first_partition_sector.div_ceil(ALIGN) * ALIGN;
    let data_start = (last_usable + 1 - u64::from(data_mib) * mib) / ALIGN * ALIGN;
    anyhow::ensure!(
        data_start > root_start + 256 * mib,
        "disk of {size_mib} MiB leaves under 256 MiB for the root partition"
    );
    Ok(Layout {
        total_sectors,
        root_start,
        root_sectors: data_start - root_start,
        data_start,
        data_sectors: last_usable + 1 - data_start,
    })
}

/// Checks that blobs of these sizes stay clear of the partition table, partitions and each
/// other. `blobs` holds (path, first sector, size in bytes).
pub fn check_blobs(layout: &Layout, blobs: &[(String, u64, u64)]) -> anyhow::Result<()> {
    let mut ranges: Vec<(u64, u64, &str)> = Vec::new();
    for (path, sector, bytes) in blobs {
        let end = sector + bytes.div_ceil(SECTOR);
        anyhow::ensure!(
            *sector >= GPT_HEAD,
            "blob `{path}` at sector {sector} would overwrite the partition table (sectors 0 to {})",
            GPT_HEAD - 1
        );
        anyhow::ensure!(
            end <= layout.root_start,
            "blob `{path}` spans sectors {sector} to {} and would overlap the first partition \
             at sector {}",
            end - 1,
            layout.root_start
        );
        if let Some(other) = ranges.iter().find(|(s, e, _)| *sector < *e && *s < end) {
            anyhow::bail!("blob `{path}` overlaps blob `{}`", other.2);
        }
        ranges.push((*sector, end, path));
    }
    Ok(())
}

/// The `sfdisk` script for this layout.
pub fn sfdisk_script(layout: &Layout, ids: &DiskIds) -> String {
    format!(
        "label: gpt\nlabel-id: {}\nunit: sectors\nfirst-lba: {GPT_HEAD}\nsector-size: {SECTOR}\n\
         start={}, size={}, type={ROOT_TYPE}, uuid={}, name=\"root\", attrs=\"LegacyBIOSBootable\"\n\
         start={}, size={}, type={DATA_TYPE}, uuid={}, name=\"data\"\n",
        ids.disk_guid.to_uppercase(),
        layout.root_start,
        layout.root_sectors,
        ids.root_partuuid.to_uppercase(),
        layout.data_start,
        layout.data_sectors,
        ids.data_partuuid.to_uppercase(),
    )
}

/// Writes the whole disk image to `image`.
pub fn write_image(
    image: &Path,
    layout: &Layout,
    ids: &DiskIds,
    rootfs_tar: &Path,
    blobs: &[(String, u64, Vec<u8>)],
    epoch: u64,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(image).with_context(|| format!("creating `{}`", image.display()))?;
    file.set_len(layout.total_sectors * SECTOR)
        .with_context(|| format!("sizing `{}`", image.display()))?;
    let script = sfdisk_script(layout, ids);
    Cmd::new("sfdisk")
        .from_package("fdisk")
        .args(["--no-reread", "--no-tell-kernel", "--quiet"])
        .arg(image)
        .stdin_bytes(script.into_bytes())
        .run()?;
    make_ext4(
        image,
        layout.root_start,
        layout.root_sectors,
        "root",
        &ids.root_fs_uuid,
        Some(rootfs_tar),
        epoch,
    )?;
    make_ext4(
        image,
        layout.data_start,
        layout.data_sectors,
        "data",
        &ids.data_fs_uuid,
        None,
        epoch,
    )?;
    for (path, sector, bytes) in blobs {
        file.write_all_at(bytes, sector * SECTOR)
            .with_context(|| format!("writing blob `{path}` into `{}`", image.display()))?;
    }
    file.sync_all().with_context(|| format!("flushing `{}`", image.display()))
}

/// Makes an ext4 file system inside the image at `start`, filled from a tarball if given.
fn make_ext4(
    image: &Path,
    start: u64,
    sectors: u64,
    label: &str,
    uuid: &str,
    content: Option<&Path>,
    epoch: u64,
) -> anyhow::Result<()> {
    let blocks = sectors * SECTOR / 4096;
    let mut cmd = Cmd::new("mke2fs")
        .from_package("e2fsprogs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-L", label, "-U", uuid, "-m", "1"])
        .arg("-E")
        .arg(format!(
            "offset={},hash_seed={uuid},root_owner=0:0,lazy_itable_init=0",
            start * SECTOR
        ))
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .env("SOURCE_DATE_EPOCH", epoch.to_string());
    if let Some(tar) = content {
        cmd = cmd.arg("-d").arg(tar);
    }
    cmd.arg(image).arg(blocks.to_string()).run().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(first: u64) -> Board {
        toml::from_str(&format!(
            "format = 1\ndescription = \"t\"\nconsole = []\nfirst_partition_sector = {first}\n"
        ))
        .expect("board")
    }

    #[test]
    fn partitions_are_aligned_and_fill_the_disk() {
        let l = layout(&board(32768), 3072, 256).expect("layout");
        assert_eq!(l.root_start, 32768);
        assert_eq!(l.root_start % ALIGN, 0);
        assert_eq!(l.data_start % ALIGN, 0);
        assert_eq!(l.root_start + l.root_sectors, l.data_start);
        assert_eq!(l.data_start + l.data_sectors, l.total_sectors - GPT_TAIL);
        assert!(l.data_sectors * SECTOR >= 255 * 1024 * 1024);
    }

    #[test]
    fn rockpro64_blobs_fit_and_oversized_ones_fail() {
        let l = layout(&board(32768), 3072, 256).expect("layout");
        let ok =
            [("idbloader".to_string(), 64, 200_000), ("u-boot.itb".to_string(), 16384, 1_500_000)];
        check_blobs(&l, &ok).expect("blobs fit");
        let too_big = [("u-boot.itb".to_string(), 16384, 8 * 1024 * 1024 + 1)];
        let err = check_blobs(&l, &too_big).unwrap_err().to_string();
        assert!(err.contains("overlap the first partition at sector 32768"), "{err}");
        let on_table = [("x".to_string(), 1, 10)];
        assert!(check_blobs(&l, &on_table).unwrap_err().to_string().contains("partition table"));
        let crossing = [("a".to_string(), 64, 8 * 1024 * 1024), ("b".to_string(), 16384, 10)];
        assert!(check_blobs(&l, &crossing).unwrap_err().to_string().contains("overlaps blob `a`"));
    }

    #[test]
    fn too_small_disk_is_refused() {
        assert!(layout(&board(32768), 200, 16).is_err());
    }
}

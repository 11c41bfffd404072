//! What a flash target is, and whether it is safe to overwrite: not mounted (itself or any
//! of its partitions), not swap, not held by device-mapper or RAID, not the disk holding `/`.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A checked target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A whole block device (or a partition) and its size in bytes.
    BlockDevice { size: u64, description: String },
    /// An existing regular file, overwritten in place.
    File { size: u64 },
    /// A file to create.
    NewFile,
    /// Something else, accepted because of `--force`.
    Other,
}

/// Looks at `path` and refuses what must not be written. `force` admits a target that is
/// neither a block device nor a regular file; nothing admits a mounted or system disk.
pub fn inspect(path: &Path, force: bool) -> anyhow::Result<Target> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::ensure!(
                !path.starts_with("/dev"),
                "`{}` does not exist (a device name mistyped?); nothing was written",
                path.display()
            );
            return Ok(Target::NewFile);
        }
        Err(e) => return Err(e).with_context(|| format!("looking at `{}`", path.display())),
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(Target::File { size: meta.len() });
    }
    if !kind.is_block_device() {
        anyhow::ensure!(
            force,
            "`{}` is neither a block device nor a regular file; pass --force to write it anyway",
            path.display()
        );
        return Ok(Target::Other);
    }
    let dev = (rustix::fs::major(meta.rdev()), rustix::fs::minor(meta.rdev()));
    let disk = Disk::of(dev).with_context(|| format!("looking up `{}` in /sys", path.display()))?;
    check_unused(path, &disk)?;
    let size = device_size(path)?;
    Ok(Target::BlockDevice { size, description: disk.describe(size) })
}

/// A block device and its partitions, as sysfs shows them.
#[derive(Debug)]
struct Disk {
    name: String,
    sys: PathBuf,
    /// `major:minor` of the device and of each partition.
    devs: BTreeSet<String>,
    partitions: Vec<PathBuf>,
}

impl Disk {
    fn of((major, minor): (u32, u32)) -> anyhow::Result<Self> {
        let link = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
        let sys = std::fs::canonicalize(&link)
            .with_context(|| format!("resolving `{}`", link.display()))?;
        let name = sys.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let mut devs = BTreeSet::from([format!("{major}:{minor}")]);
        let mut partitions = Vec::new();
        for entry in std::fs::read_dir(&sys).into_iter().flatten().flatten() {
            if entry.path().join("partition").exists() {
                if let Ok(dev) = std::fs::read_to_string(entry.path().join("dev")) {
                    devs.insert(dev.trim().to_string());
                }
                partitions.push(entry.path());
            }
        }
        Ok(Self { name, sys, devs, partitions })
    }

    fn describe(&self, size: u64) -> String {
        let model = std::fs::read_to_string(self.sys.join("device/model")).unwrap_or_default();
        let model = model.trim();
        let gib = size as f64 / f64::from(1u32 << 30);
        if model.is_empty() {
            format!("{} ({gib:.1} GiB)", self.name)
        } else {
            format!("{} ({model}, {gib:.1} GiB)", self.name)
        }
    }

    /// Device-mapper, RAID or other devices built on this disk or its partitions.
    fn holders(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dir in std::iter::once(&self.sys).chain(&self.partitions) {
            for entry in std::fs::read_dir(dir.join("holders")).into_iter().flatten().flatten() {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        out
    }
}

fn check_unused(path: &Path, disk: &Disk) -> anyhow::Result<()> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    for mount in mounts(&mountinfo) {
        if disk.devs.contains(&mount.dev) {
            anyhow::bail!(
                "`{}` is mounted ({} on {}); unmount it first; nothing was written",
                path.display(),
                mount.source,
                mount.point
            );
        }
    }
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    for swap in swaps.lines().skip(1).filter_map(|l| l.split_whitespace().next()) {
        if let Ok(meta) = std::fs::metadata(swap) {
            let dev =
                format!("{}:{}", rustix::fs::major(meta.rdev()), rustix::fs::minor(meta.rdev()));
            if meta.file_type().is_block_device() && disk.devs.contains(&dev) {
                anyhow::bail!(
                    "`{}` is in use as swap ({swap}); nothing was written",
                    path.display()
                );
            }
        }
    }
    let holders = disk.holders();
    anyhow::ensure!(
        holders.is_empty(),
        "`{}` is in use by {} (device-mapper, LVM or RAID); nothing was written",
        path.display(),
        holders.join(", ")
    );
    if system_disks(&mountinfo).contains(&disk.name) {
        anyhow::bail!("`{}` is the system disk (it holds /); nothing was written", path.display());
    }
    Ok(())
}

/// One line of mountinfo: the device number, the source and the mount point.
#[derive(Debug, PartialEq, Eq)]
pub struct Mount {
    pub dev: String,
    pub source: String,
    pub point: String,
}

/// Parses `/proc/self/mountinfo`.
pub fn mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some(Mount {
                dev: fields.get(2)?.to_string(),
                point: fields.get(4)?.to_string(),
                source: fields.get(dash + 2)?.to_string(),
            })
        })
        .collect()
}

/// Names of the whole disks under `/`: the root's device, through device-mapper and
/// partitions down to disks.
fn system_disks(mountinfo: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for mount in mounts(mountinfo).iter().filter(|m| m.point == "/") {
        if let Ok(sys) = std::fs::canonicalize(format!("/sys/dev/block/{}", mount.dev)) {
            collect_disks(&sys, &mut out, 0);
        }
    }
    out
}

fn collect_disks(sys: &Path, out: &mut BTreeSet<String>, depth: u32) {
    let disk = if sys.join("partition").exists() { sys.parent().unwrap_or(sys) } else { sys };
    out.insert(disk.file_name().unwrap_or_default().to_string_lossy().into_owned());
    let slaves = std::fs::read_dir(sys.join("slaves")).into_iter().flatten().flatten();
    for slave in slaves.filter(|_| depth < 8) {
        if let Ok(path) = std::fs::canonicalize(slave.path()) {
            collect_disks(&path, out, depth + 1);
        }
    }
}

/// The size of a block device: the end it seeks to.
fn device_size(path: &Path) -> anyhow::Result<u64> {
    use std::io::Seek;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    file.seek(std::io::SeekFrom::End(0)).with_context(|| format!("sizing `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_device_source_and_point() {
        let text = "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    40 36 7:1 / /mnt/x rw shared:2 - ext4 /dev/loop0p1 rw\n";
        let all = mounts(text);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1],
            Mount { dev: "7:1".into(), source: "/dev/loop0p1".into(), point: "/mnt/x".into() }
        );
    }

    #[test]
    fn missing_device_path_is_not_created() {
        let err = inspect(Path::new("/dev/baseimg-no-such-disk"), false).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(
            inspect(Path::new("/tmp/baseimg-new-target-x.img"), false).ok(),
            Some(Target::NewFile)
        );
    }

    #[test]
    fn character_device_needs_force() {
        let err = inspect(Path::new("/dev/null"), false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(inspect(Path::new("/dev/null"), true).ok(), Some(Target::Other));
    }
}

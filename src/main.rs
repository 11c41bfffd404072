//! The `baseimg` command line: each subcommand fills an options struct and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build reproducible, hardened, flashable OS images for ARM network appliances.
///
/// Exit codes: 0 success, 1 a check failed, 2 bad usage or unreadable input.
#[derive(Debug, Parser)]
#[command(name = "baseimg", version, propagate_version = true)]
struct Cli {
    /// Project folder holding image-profiles/, templates/, overlays/ and board-support/
    /// [default: the current folder or its nearest ancestor that has them]
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a flashable disk image from a profile.
    ///
    /// Steps: load the profile, fetch the Debian base (cached), render the overlay, assemble
    /// the root filesystem, check configs with the image's own sshd/nginx/iptables under
    /// qemu-user, write the disk image, publish outputs with SHA256SUMS last. Needs root.
    Build(BuildArgs),
    /// Render the config overlay a profile produces into a folder, for review.
    ///
    /// Writes OUT/rootfs/ (the files as they go into the image) and OUT/OVERLAY.txt (every
    /// path with its mode and owner, and the base paths removed).
    Render(RenderArgs),
    /// Check every hardening control on an image, a rootfs tarball or a folder.
    Audit(baseimg::audit::AuditArgs),
    /// Sign an output folder's SHA256SUMS with an SSH key (writes SHA256SUMS.sig).
    ///
    /// The signature is OpenSSH's (namespace `file`); check it with `baseimg verify --signer`
    /// or `ssh-keygen -Y verify -f allowed_signers -I <id> -n file -s SHA256SUMS.sig <
    /// SHA256SUMS`.
    Sign(SignArgs),
    /// Check an output folder: the signature, every checksum, and each bmap's ranges; with
    /// --rebuild, build the image again from its manifest and compare every output.
    ///
    /// Prints one line per check (per output with --rebuild). Exit codes: 0 all passed, 1 a
    /// check failed or an output differs, 2 the folder or the signers file could not be read.
    Verify(VerifyArgs),
    /// Write an image (raw or .zst) onto a disk, only the blocks its bmap maps, then read
    /// them back and check them.
    ///
    /// Refuses a mounted disk, the system disk, or a target that is neither a block device
    /// nor a regular file (unless --force). Asks before writing unless --yes.
    Flash(FlashArgs),
    /// Talk to a running appliance: discover, pair, manage.
    Device(baseimg::device::DeviceArgs),
    /// Boot a built qemu-arm64 image under qemu-system-aarch64 on a private LAN.
    ///
    /// The LAN is a network namespace (NETNS) with a tap device, 192.168.77.1/24 and a DHCP
    /// server leasing 192.168.77.10 to the machine, plus IPv6 link-local. Reach the machine
    /// with `ip netns exec NETNS COMMAND`. The serial console goes to LOG_DIR/console.log.
    /// Writes go to a throw-away overlay unless --write, so each run is a first boot.
    /// Stops on Ctrl-C or when the machine powers off. Needs root.
    Run(RunArgs),
    /// Internal: run the config checks inside a private mount and network namespace.
    #[command(hide = true)]
    InternalCheckConfigs { lower: PathBuf, upper: PathBuf, work: PathBuf, merged: PathBuf },
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// Profile name (image-profiles/NAME.toml) or path to a profile file.
    #[arg(long, default_value = "rockpro64", value_name = "NAME|PATH")]
    profile: String,
    /// Output folder [default: out/<image name> under the project]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Public key file for the user `base` (OpenSSH format; several keys per file allowed).
    /// Repeatable; adds to the profile's ssh.authorized_keys.
    #[arg(long = "ssh-key", value_name = "FILE")]
    ssh_keys: Vec<PathBuf>,
    /// Cache folder for Debian bases [default: $BASEIMG_CACHE_DIR or ~/.cache/baseimg]
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Install the Debian base anew even if a cached one matches the profile (to pick up
    /// the mirror's newer packages when the profile names no snapshot).
    #[arg(long)]
    rebuild_base: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Profile name (image-profiles/NAME.toml) or path; its board must be qemu-arm64.
    #[arg(long, default_value = "qemu-arm64", value_name = "NAME|PATH")]
    profile: String,
    /// Disk image to boot [default: out/<image name>/<image name>.img under the project]
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Folder for console.log, qemu.log and dnsmasq.log [default: /tmp/baseimg-run-NETNS]
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Name of the network namespace to create for the machine's LAN.
    #[arg(long, default_value = "baseimg-run")]
    netns: String,
    /// Attach a USB keyboard (usb-kbd on an xHCI controller).
    #[arg(long)]
    usb_keyboard: bool,
    /// Write to the image instead of a throw-away overlay.
    #[arg(long)]
    write: bool,
}

#[derive(Debug, clap::Args)]
struct SignArgs {
    /// OpenSSH private key file (unencrypted).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Output folder holding SHA256SUMS.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// Output folder (or downloaded release) holding SHA256SUMS.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// OpenSSH allowed signers file; the signature must be by one of its keys.
    #[arg(long, value_name = "FILE")]
    signer: Option<PathBuf>,
    /// Skip files SHA256SUMS lists that are not in the folder, instead of failing.
    #[arg(long)]
    ignore_missing: bool,
    /// Instead: build again from the manifest (same profile, project files and keys) in a
    /// scratch folder and compare every output; for the root filesystem, name the entries
    /// that differ. Run it from a checkout of the revision that made the image. Needs root.
    #[arg(long, conflicts_with_all = ["signer", "ignore_missing"])]
    rebuild: bool,
    /// With --rebuild: install the Debian base anew in an empty cache instead of using the
    /// cached one (slow: the whole base is made again).
    #[arg(long, requires = "rebuild")]
    cold: bool,
    /// With --rebuild: keep the rebuild in this folder [default: a temporary folder]
    #[arg(long, value_name = "DIR", requires = "rebuild")]
    scratch: Option<PathBuf>,
    /// With --rebuild: cache folder for Debian bases [default: $BASEIMG_CACHE_DIR or
    /// ~/.cache/baseimg]
    #[arg(long, value_name = "DIR", requires = "rebuild")]
    cache_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct FlashArgs {
    /// The image: raw (.img) or zstd-compressed (.img.zst).
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// The disk to write (/dev/sdX, /dev/mmcblkN, /dev/loopN) or a file.
    #[arg(value_name = "DEVICE")]
    target: PathBuf,
    /// Block map [default: <image>.bmap beside the image; without one the whole image is
    /// written]
    #[arg(long, value_name = "FILE")]
    bmap: Option<PathBuf>,
    /// Do not ask before overwriting.
    #[arg(long)]
    yes: bool,
    /// Write a target that is neither a block device nor a regular file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// Profile name (image-profiles/NAME.toml) or path to a profile file.
    #[arg(long, default_value = "rockpro64", value_name = "NAME|PATH")]
    profile: String,
    /// Folder to write the overlay into (replaced if it exists).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Public key file for the user `base`; repeatable.
    #[arg(long = "ssh-key", value_name = "FILE")]
    ssh_keys: Vec<PathBuf>,
    /// Unpacked base tree to render against [default: the cached base of the profile]
    #[arg(long, value_name = "DIR")]
    base_tree: Option<PathBuf>,
    /// Cache folder for Debian bases [default: $BASEIMG_CACHE_DIR or ~/.cache/baseimg]
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baseimg: error: {e:#}");
            ExitCode::from(baseimg::EXIT_USAGE)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let project = match cli.project {
        Some(dir) => dir,
        None => baseimg::find_project(&std::env::current_dir()?),
    };
    match cli.command {
        Command::Build(a) => {
            let opts = baseimg::build::BuildOptions {
                project,
                profile: a.profile,
                out: a.out,
                ssh_keys: a.ssh_keys,
                cache_dir: a.cache_dir,
                rebuild_base: a.rebuild_base,
            };
            let out = baseimg::build::build(&opts)?;
            println!("{}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Render(a) => {
            let opts = baseimg::render_cmd::RenderOptions {
                project,
                profile: a.profile,
                out: a.out,
                ssh_keys: a.ssh_keys,
                base_tree: a.base_tree,
                cache_dir: a.cache_dir,
            };
            baseimg::render_cmd::render(&opts)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign(a) => {
            let opts = baseimg::sign::SignOptions { dir: a.dir, key: a.key };
            let fingerprint = baseimg::sign::sign(&opts)?;
            eprintln!(
                "baseimg: signed {} with {fingerprint}",
                opts.dir.join("SHA256SUMS").display()
            );
            println!("{}", opts.dir.join(baseimg::sign::SIG).display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(a) if a.rebuild => {
            let opts = baseimg::rebuild::RebuildOptions {
                project,
                out_dir: a.dir,
                scratch: a.scratch,
                cache_dir: a.cache_dir,
                cold: a.cold,
            };
            let report = baseimg::rebuild::rebuild(&opts)?;
            print!("{}", report.render());
            Ok(if report.all_same() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(baseimg::EXIT_CHECK_FAILED)
            })
        }
        Command::Verify(a) => {
            let opts = baseimg::verify::VerifyOptions {
                dir: a.dir,
                signer: a.signer,
                ignore_missing: a.ignore_missing,
            };
            baseimg::verify::run(&opts)
        }
        Command::Flash(a) => {
            let opts = baseimg::flash::FlashOptions {
                image: a.image,
                target: a.target,
                bmap: a.bmap,
                yes: a.yes,
                force: a.force,
            };
            let done = baseimg::flash::flash(&opts)?;
            println!(
                "wrote {} bytes in {} ranges to {} in {:.1}s, read back and verified in {:.1}s",
                done.bytes_written,
                done.ranges,
                opts.target.display(),
                done.write_seconds,
                done.verify_seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(args) => baseimg::audit::run(args),
        Command::Device(args) => baseimg::device::run(args),
        Command::Run(a) => {
            let loaded = baseimg::profile::load(&baseimg::profile::resolve(&project, &a.profile))?;
            let name = loaded.profile.image.name.to_string();
            let image = a
                .image
                .unwrap_or_else(|| project.join("out").join(&name).join(format!("{name}.img")));
            let log_dir = a
                .log_dir
                .unwrap_or_else(|| std::env::temp_dir().join(format!("baseimg-run-{}", a.netns)));
            let mut opts = baseimg::run::RunOptions::new(image, log_dir);
            opts.usb_keyboard = a.usb_keyboard;
            opts.write_image = a.write;
            baseimg::run::run_until_stopped(&loaded.profile, &opts, &a.netns)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::InternalCheckConfigs { lower, upper, work, merged } => {
            match baseimg::build::validate::check_in_namespace(&lower, &upper, &work, &merged) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("{e:#}");
                    Ok(ExitCode::from(baseimg::EXIT_CHECK_FAILED))
                }
            }
        }
    }
}

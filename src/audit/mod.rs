//! `baseimg audit`: hardening controls checked on the effective configuration of an image.
//!
//! Map of the module:
//! - [`tree`], [`tarball`], [`image`]: the root filesystem behind one trait, from a folder, a
//!   plain tarball or a disk image's `root` partition (read with `debugfs`).
//! - [`sshd`], [`sshd_algos`], [`sysctl`], [`iptables`], [`accounts`], [`systemd`], [`udev`],
//!   [`initramfs`], [`confdirs`], [`glob`]: readers that see configs as their programs do.
//! - [`controls`]: every control of HARDENING.md, grouped by area.
//! - [`crosscheck`]: `sshd -T` and `systemd-analyze security` where they can run here.
//! - [`context`]: the tree, the profile's expectations, configs parsed once.
//! - [`report`]: findings, the table and the JSON.

pub mod accounts;
pub mod confdirs;
pub mod context;
pub mod controls;
pub mod crosscheck;
pub mod glob;
pub mod image;
pub mod initramfs;
pub mod iptables;
pub mod report;
pub mod sshd;
pub mod sshd_algos;
pub mod sysctl;
pub mod systemd;
pub mod tarball;
pub mod tree;
pub mod udev;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use context::{Ctx, Expect};
use controls::Verdict;
use report::{Finding, Report, Status};

/// Options of `baseimg audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// A disk image, a rootfs tarball (`<name>.rootfs.tar`) or a root filesystem folder.
    pub input: PathBuf,
    /// The image profile whose declarations (ports, SSH on/off, waivers) the audit checks.
    #[arg(long)]
    pub profile: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `baseimg audit`: exit 0 all pass, 1 a control fails, 2 the input cannot be read.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let (expect, waivers) = match &args.profile {
        Some(name) => match read_profile(name) {
            Ok(found) => found,
            Err(e) => return Ok(unreadable(&e)),
        },
        None => (Expect::default(), Vec::new()),
    };
    let tree = match open(&args.input) {
        Ok(tree) => tree,
        Err(e) => return Ok(unreadable(&e)),
    };
    let report = audit(tree.as_ref(), expect, &waivers, &args.input.display().to_string());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("writing the JSON report")?);
    } else {
        print!("{}", report.table());
    }
    Ok(if report.failed > 0 { ExitCode::from(crate::EXIT_CHECK_FAILED) } else { ExitCode::SUCCESS })
}

fn unreadable(e: &anyhow::Error) -> ExitCode {
    eprintln!("baseimg audit: {e:#}");
    ExitCode::from(crate::EXIT_USAGE)
}

/// The profile's expectations and waivers.
fn read_profile(name: &str) -> anyhow::Result<(Expect, Vec<String>)> {
    let project =
        crate::find_project(&std::env::current_dir().context("reading the current folder")?);
    let path = crate::profile::resolve(&project, name);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading profile `{}`", path.display()))?;
    let profile =
        crate::profile::parse(&text).map_err(|e| anyhow::anyhow!("{}", e.render(&path, &text)))?;
    let waivers = profile.audit.waive.clone();
    Ok((Expect::from_profile(&profile), waivers))
}

/// The control ids a profile waives on purpose: `[audit] waive = ["control-id", ...]`.
/// Unknown ids are an error, so a typo cannot silently waive nothing.
pub fn waivers_from_profile(text: &str) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct AuditOnly {
        #[serde(default)]
        audit: crate::profile::AuditSection,
    }
    let only: AuditOnly = toml::from_str(text).context("parsing the profile's `[audit]`")?;
    if let Some(id) = unknown_waiver(&only.audit.waive) {
        anyhow::bail!("`audit.waive` names unknown control `{id}`");
    }
    Ok(only.audit.waive)
}

/// The first waived id that names no control, if any.
pub fn unknown_waiver(ids: &[String]) -> Option<&String> {
    let known: Vec<&str> = controls::all().iter().map(|c| c.id).collect();
    ids.iter().find(|id| !known.contains(&id.as_str()))
}

/// Opens a folder, a tarball or a disk image as a tree.
pub fn open(input: &Path) -> anyhow::Result<Box<dyn tree::Tree>> {
    let meta =
        std::fs::metadata(input).with_context(|| format!("reading `{}`", input.display()))?;
    if meta.is_dir() {
        return Ok(Box::new(tree::DirTree::open(input)?));
    }
    let mut head = vec![0u8; 2048];
    let mut file =
        std::fs::File::open(input).with_context(|| format!("opening `{}`", input.display()))?;
    let read = file.read(&mut head).with_context(|| format!("reading `{}`", input.display()))?;
    head.truncate(read);
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return Ok(Box::new(tarball::TarTree::open(input)?));
    }
    let gpt = head.len() >= 520 && &head[512..520] == b"EFI PART";
    let ext4 = head.len() >= 1082 && head[1080..1082] == [0x53, 0xEF];
    if gpt || ext4 {
        return Ok(Box::new(image::ImageTree::open(input)?));
    }
    anyhow::bail!("`{}` is not a folder, a tar file or a GPT/ext4 image", input.display())
}

/// Evaluates every control on `tree`; waived failures become `Waived`.
pub fn audit(tree: &dyn tree::Tree, expect: Expect, waivers: &[String], input: &str) -> Report {
    let ctx = Ctx::new(tree, expect);
    let findings = controls::all()
        .into_iter()
        .map(|control| {
            let verdict = (control.check)(&ctx)
                .unwrap_or_else(|e| controls::fail(format!("cannot read: {e:#}"), None));
            let (mut status, found, at) = match verdict {
                Verdict::Pass { found, at } => (Status::Pass, found, at),
                Verdict::Fail { found, at } => (Status::Fail, found, at),
                Verdict::Info { found, at } => (Status::Info, found, at),
            };
            if status == Status::Fail && waivers.iter().any(|w| w == control.id) {
                status = Status::Waived;
            }
            Finding {
                control: control.id,
                baseline: control.baseline,
                status,
                expected: control.expected.to_string(),
                found,
                at,
            }
        })
        .collect();
    Report::new(input.to_string(), findings)
}

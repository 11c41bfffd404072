//! `baseimg verify`: checks an output folder (or a downloaded release) the way a user would
//! trust it: the signature over `SHA256SUMS`, every checksum in it, and every range of each
//! block map against its image.
//!
//! Each check adds one line to a [`Report`]; a new kind of check is one more function that
//! pushes its lines.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::build::publish::SUMS;
use crate::release::{bmap, compress};
use crate::sign;

/// What `baseimg verify` was asked to check.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The folder holding `SHA256SUMS` and the files it lists.
    pub dir: PathBuf,
    /// An OpenSSH allowed signers file; without it the signature is not checked.
    pub signer: Option<PathBuf>,
    /// Files listed in `SHA256SUMS` but absent are skipped instead of failing (for a download
    /// that left out the raw image, say).
    pub ignore_missing: bool,
}

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    Failed(String),
    Skipped(String),
}

/// One line of the report: what was checked and how it came out.
#[derive(Debug, Clone)]
pub struct Check {
    pub subject: String,
    pub outcome: Outcome,
}

/// Every check made, in order.
#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn push(&mut self, subject: impl Into<String>, outcome: Outcome) {
        self.checks.push(Check { subject: subject.into(), outcome });
    }

    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| matches!(c.outcome, Outcome::Failed(_))).count()
    }

    /// The report as lines: `OK      subject: detail`.
    pub fn lines(&self) -> Vec<String> {
        self.checks
            .iter()
            .map(|c| {
                let (word, detail) = match &c.outcome {
                    Outcome::Ok(d) => ("OK", d),
                    Outcome::Failed(d) => ("FAILED", d),
                    Outcome::Skipped(d) => ("SKIPPED", d),
                };
                format!("{word:<8}{}: {detail}", c.subject)
            })
            .collect()
    }
}

/// Runs every check; an error means the folder could not be checked at all (no or
/// malformed `SHA256SUMS`, unreadable signers file).
pub fn verify(opts: &VerifyOptions) -> anyhow::Result<Report> {
    let sums_path = opts.dir.join(SUMS);
    let sums =
        std::fs::read(&sums_path).with_context(|| format!("reading `{}`", sums_path.display()))?;
    let entries = parse_sums(&String::from_utf8_lossy(&sums))
        .with_context(|| format!("reading `{}`", sums_path.display()))?;
    let mut report = Report::default();
    check_signature(opts, &sums, &mut report)?;
    for entry in &entries {
        check_file(opts, entry, &mut report);
    }
    for entry in entries.iter().filter(|e| e.name.ends_with(".bmap")) {
        check_bmap(&opts.dir, &entry.name, &mut report);
    }
    Ok(report)
}

/// `baseimg verify` as a command: the report on stdout, exit 0, 1 (a check failed) or 2.
pub fn run(opts: &VerifyOptions) -> anyhow::Result<ExitCode> {
    let report = verify(opts)?;
    for line in report.lines() {
        println!("{line}");
    }
    let failed = report.failed();
    if failed > 0 {
        eprintln!("baseimg: {failed} check(s) failed in `{}`", opts.dir.display());
        return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `SHA256SUMS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumEntry {
    pub sha256: String,
    pub name: String,
}

/// Parses coreutils' format (`<hex>  <name>`, or `<hex> *<name>` for binary mode). Names must
/// be plain file names in the same folder.
pub fn parse_sums(text: &str) -> anyhow::Result<Vec<SumEntry>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("line {}: expected `<sha256>  <file name>`, got `{line}`", i + 1);
        let (hash, rest) = line.split_once(' ').with_context(bad)?;
        let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*')).with_context(bad)?;
        anyhow::ensure!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()), bad());
        anyhow::ensure!(
            !name.is_empty() && !name.contains('/') && name != "." && name != "..",
            "line {}: `{name}` is not a plain file name in this folder",
            i + 1
        );
        out.push(SumEntry { sha256: hash.to_ascii_lowercase(), name: name.to_string() });
    }
    anyhow::ensure!(!out.is_empty(), "no checksums listed");
    Ok(out)
}

fn check_signature(opts: &VerifyOptions, sums: &[u8], report: &mut Report) -> anyhow::Result<()> {
    let sig_path = opts.dir.join(sign::SIG);
    let Some(signer_file) = &opts.signer else {
        let why = if sig_path.exists() {
            "present but not checked: pass --signer <allowed signers file>"
        } else {
            "no signature and no --signer"
        };
        report.push(sign::SIG, Outcome::Skipped(why.into()));
        return Ok(());
    };
    let signers = sign::read_allowed_signers(signer_file)?;
    let outcome = match std::fs::read_to_string(&sig_path) {
        Err(e) => Outcome::Failed(format!("cannot read it: {e}")),
        Ok(pem) => match sign::check_signature(&signers, &pem, sums) {
            Ok((who, fingerprint)) => {
                Outcome::Ok(format!("good signature by {who} ({fingerprint}) over {SUMS}"))
            }
            Err(e) => Outcome::Failed(format!("{e:#}")),
        },
    };
    report.push(sign::SIG, outcome);
    Ok(())
}

fn check_file(opts: &VerifyOptions, entry: &SumEntry, report: &mut Report) {
    let path = opts.dir.join(&entry.name);
    if !path.exists() {
        let outcome = if opts.ignore_missing {
            Outcome::Skipped("missing, skipped (--ignore-missing)".into())
        } else {
            Outcome::Failed("missing (pass --ignore-missing to skip absent files)".into())
        };
        report.push(&entry.name, outcome);
        return;
    }
    crate::progress::note(&format!("hashing `{}`", entry.name));
    let outcome = match crate::fsutil::sha256_file(&path) {
        Ok(hash) if hash == entry.sha256 => Outcome::Ok("sha256 matches".into()),
        Ok(hash) => Outcome::Failed(format!("sha256 is {hash}, {SUMS} says {}", entry.sha256)),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    };
    report.push(&entry.name, outcome);
}

/// Checks every range of `<image>.bmap` against `<image>`, or else against `<image>.zst`
/// decompressed.
fn check_bmap(dir: &Path, name: &str, report: &mut Report) {
    let image_name = name.trim_end_matches(".bmap");
    let raw = dir.join(image_name);
    let zst = dir.join(format!("{image_name}.zst"));
    let source = [raw, zst].into_iter().find(|p| p.exists());
    let subject = format!("{name} ranges");
    let Some(source) = source else {
        report
            .push(subject, Outcome::Skipped(format!("neither {image_name} nor its .zst is here")));
        return;
    };
    crate::progress::note(&format!(
        "checking the ranges of `{name}` against `{}`",
        source.display()
    ));
    let outcome = match bmap_ranges(&dir.join(name), &source) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Failed(format!("{e:#}")),
    };
    report.push(subject, outcome);
}

fn bmap_ranges(bmap_path: &Path, source: &Path) -> anyhow::Result<Outcome> {
    let map = bmap::read(bmap_path)?;
    let mut image = compress::open_image(source)?;
    if !image.compressed {
        let len = std::fs::metadata(source)?.len();
        anyhow::ensure!(
            len == map.image_size,
            "`{}` is {len} bytes, the bmap says {}",
            source.display(),
            map.image_size
        );
    }
    let bad = bmap::check_stream(&map, &mut image)
        .with_context(|| format!("reading `{}`", source.display()))?;
    let file = source.file_name().unwrap_or_default().to_string_lossy();
    if bad.is_empty() {
        return Ok(Outcome::Ok(format!(
            "{} ranges ({} bytes) match {file}",
            map.ranges.len(),
            map.mapped_bytes()
        )));
    }
    let labels: Vec<String> = bad.iter().take(5).map(|r| format!("blocks {}", r.label())).collect();
    Ok(Outcome::Failed(format!(
        "{} of {} ranges differ in {file}: {}{}",
        bad.len(),
        map.ranges.len(),
        labels.join(", "),
        if bad.len() > 5 { ", ..." } else { "" }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coreutils_lines_parse_and_paths_are_refused() {
        let hash = "a".repeat(64);
        let text = format!("{hash}  x.img\n{hash} *y.tar\n");
        let entries = parse_sums(&text).expect("parse");
        assert_eq!(entries[1].name, "y.tar");
        let err = parse_sums(&format!("{hash}  ../etc/passwd\n")).unwrap_err().to_string();
        assert!(err.contains("not a plain file name"), "{err}");
        let err = parse_sums("abc  x\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}

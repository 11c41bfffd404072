//! `baseimg verify --rebuild`: builds an output folder's image again from its manifest, in a
//! scratch folder, and compares every output byte for byte, naming what differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::progress;

/// What `verify --rebuild` was asked to do.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    pub project: PathBuf,
    /// The output folder to check: `SHA256SUMS`, `manifest.json` and the files they list.
    pub out_dir: PathBuf,
    /// Where the rebuild goes [default: a temporary folder, removed afterwards].
    pub scratch: Option<PathBuf>,
    /// Base cache [default: the build's default]; ignored with `cold`.
    pub cache_dir: Option<PathBuf>,
    /// Build the Debian base anew in an empty cache inside the scratch folder.
    pub cold: bool,
}

/// How one published file of the rebuild compares with the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Same,
    /// The sha256 the original (or `SHA256SUMS`) has, and the one found.
    Differs {
        expected: String,
        found: String,
    },
    Missing,
}

/// The comparison of a whole output folder.
#[derive(Debug, Default)]
pub struct Report {
    /// What "expected" and "found" are: the original and the rebuild, or the checksum file
    /// and the file on disk.
    pub labels: (&'static str, &'static str),
    pub files: Vec<(String, Outcome)>,
    /// For a differing root filesystem tarball: the entries that differ.
    pub details: Vec<String>,
}

impl Report {
    pub fn all_same(&self) -> bool {
        self.files.iter().all(|(_, o)| *o == Outcome::Same)
    }

    /// One line per file, then the details, for the terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, outcome) in &self.files {
            let line = match outcome {
                Outcome::Same => format!("same     {name}\n"),
                Outcome::Differs { expected, found } => {
                    let (a, b) = self.labels;
                    format!("DIFFERS  {name}\n         {a:<9}{expected}\n         {b:<9}{found}\n")
                }
                Outcome::Missing => format!("MISSING  {name}\n"),
            };
            out.push_str(&line);
        }
        for line in &self.details {
            out.push_str(&format!("  {line}\n"));
        }
        out
    }
}

/// Rebuilds the image described by `opts.out_dir`'s manifest and compares the outputs.
pub fn rebuild(opts: &RebuildOptions) -> anyhow::Result<Report> {
    let sums = read_sums(&opts.out_dir.join(crate::build::publish::SUMS))?;
    let manifest = read_manifest(&opts.out_dir.join("manifest.json"))?;
    let profile = check_inputs(&opts.project, &manifest)?;
    let scratch = match &opts.scratch {
        Some(dir) => Scratch::Kept(dir.clone()),
        None => Scratch::Temp(tempfile::Builder::new().prefix("baseimg-rebuild-").tempdir()?),
    };
    std::fs::create_dir_all(scratch.path())
        .with_context(|| format!("creating `{}`", scratch.path().display()))?;
    let keys = scratch.path().join("authorized_keys");
    write_added_keys(&manifest, &profile, &keys)?;
    let cache_dir =
        if opts.cold { Some(scratch.path().join("cache")) } else { opts.cache_dir.clone() };
    let build = crate::build::BuildOptions {
        project: opts.project.clone(),
        profile: profile.display().to_string(),
        out: Some(scratch.path().join("out")),
        ssh_keys: vec![keys],
        cache_dir,
        rebuild_base: false,
    };
    progress::note(&format!(
        "rebuilding `{}` in `{}`",
        profile.display(),
        scratch.path().display()
    ));
    let rebuilt = crate::build::build(&build)?;
    compare(&opts.out_dir, &rebuilt, &sums)
}

enum Scratch {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl Scratch {
    fn path(&self) -> &Path {
        match self {
            Scratch::Kept(p) => p,
            Scratch::Temp(t) => t.path(),
        }
    }
}

/// (file name, sha256) from a coreutils checksum file.
fn read_sums(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("reading `{}` (is this a complete output folder?)", path.display())
    })?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let (hash, name) = line.split_once("  ").with_context(|| {
                format!("{}:{}: not a `sha256  name` line", path.display(), i + 1)
            })?;
            Ok((name.to_string(), hash.to_string()))
        })
        .collect()
}

fn read_manifest(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing `{}`", path.display()))
}

/// Checks that the project holds the profile and input files the manifest names, with the
/// same hashes; returns the profile's path. A rebuild from other inputs would prove nothing.
fn check_inputs(project: &Path, manifest: &serde_json::Value) -> anyhow::Result<PathBuf> {
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_string);
    let profile_rel =
        field(&manifest["profile"], "path").context("the manifest names no profile")?;
    let mut differing = Vec::new();
    let mut entries = vec![(profile_rel.clone(), field(&manifest["profile"], "sha256"))];
    for input in manifest["inputs"].as_array().into_iter().flatten() {
        if let Some(path) = field(input, "path") {
            // Built binaries are recorded too; only files of the project are inputs here.
            if project.join(&path).exists() {
                entries.push((path, field(input, "sha256")));
            }
        }
    }
    for (path, expected) in entries {
        let actual = crate::fsutil::sha256_file(&project.join(&path)).ok();
        if actual.is_none() || actual != expected {
            differing.push(path);
        }
    }
    anyhow::ensure!(
        differing.is_empty(),
        "this checkout of the project differs from the one that built the image, in: {}\n\
         check out the revision that built it (its files' hashes are in manifest.json)",
        differing.join(", ")
    );
    Ok(project.join(profile_rel))
}

/// Writes the keys that were added with `--ssh-key` (those the profile itself lacks).
fn write_added_keys(
    manifest: &serde_json::Value,
    profile: &Path,
    dest: &Path,
) -> anyhow::Result<()> {
    let loaded = crate::profile::load(profile)?;
    let own: Vec<&str> = loaded.profile.ssh.authorized_keys.iter().map(|k| k.line()).collect();
    let mut text = String::new();
    for key in manifest["ssh_authorized_keys"].as_array().into_iter().flatten() {
        let line = key.as_str().context("a manifest ssh key is not text")?;
        if !own.contains(&line) {
            text.push_str(line);
            text.push('\n');
        }
    }
    std::fs::write(dest, text).with_context(|| format!("writing `{}`", dest.display()))
}

fn compare(original: &Path, rebuilt: &Path, sums: &[(String, String)]) -> anyhow::Result<Report> {
    let mut report = Report { labels: ("original", "rebuilt"), ..Report::default() };
    let mut names: Vec<String> = sums.iter().map(|(n, _)| n.clone()).collect();
    names.push(crate::build::publish::SUMS.to_string());
    for name in names {
        let there = rebuilt.join(&name);
        let outcome = if !there.exists() {
            Outcome::Missing
        } else {
            let expected = crate::fsutil::sha256_file(&original.join(&name))?;
            let found = crate::fsutil::sha256_file(&there)?;
            if expected == found {
                Outcome::Same
            } else {
                Outcome::Differs { expected, found }
            }
        };
        if matches!(outcome, Outcome::Differs { .. }) {
            report.details.extend(explain(&original.join(&name), &there)?);
        }
        report.files.push((name, outcome));
    }
    Ok(report)
}

/// Says what differs inside two files of the same name, where the format allows.
fn explain(original: &Path, rebuilt: &Path) -> anyhow::Result<Vec<String>> {
    let name = original.file_name().unwrap_or_default().to_string_lossy().into_owned();
    if name.ends_with(".rootfs.tar") {
        let lines = diff_tars(original, rebuilt)?;
        return Ok(prefixed(&name, lines));
    }
    if name == "manifest.json" {
        let lines = diff_json(&read_manifest(original)?, &read_manifest(rebuilt)?);
        return Ok(prefixed(&name, lines));
    }
    Ok(Vec::new())
}

fn prefixed(name: &str, lines: Vec<String>) -> Vec<String> {
    const SHOWN: usize = 50;
    let total = lines.len();
    let mut out: Vec<String> =
        lines.into_iter().take(SHOWN).map(|l| format!("{name}: {l}")).collect();
    if total > SHOWN {
        out.push(format!("{name}: ... and {} more", total - SHOWN));
    }
    out
}

/// Every entry of a tarball, summarised as its header fields and content hash.
pub fn tar_index(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    use sha2::{Digest, Sha256};
    let file =
        std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut out = BTreeMap::new();
    for entry in archive.entries().with_context(|| format!("reading `{}`", path.display()))? {
        let mut entry = entry.with_context(|| format!("reading `{}`", path.display()))?;
        let h = entry.header();
        let summary_head = format!(
            "type {:?} mode {:o} owner {}:{} mtime {} link {:?}",
            h.entry_type(),
            h.mode().unwrap_or(0),
            h.uid().unwrap_or(0),
            h.gid().unwrap_or(0),
            h.mtime().unwrap_or(0),
            entry.link_name().ok().flatten().map(|l| l.display().to_string()),
        );
        let name = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
        let mut hasher = Sha256::new();
        std::io::copy(&mut entry, &mut hasher)
            .with_context(|| format!("reading `{name}` in `{}`", path.display()))?;
        out.insert(name, format!("{summary_head} sha256 {}", hex::encode(hasher.finalize())));
    }
    Ok(out)
}

/// The entries two tarballs disagree on, one line each.
pub fn diff_tars(original: &Path, rebuilt: &Path) -> anyhow::Result<Vec<String>> {
    let a = tar_index(original)?;
    let b = tar_index(rebuilt)?;
    let mut out = Vec::new();
    for (path, summary) in &a {
        match b.get(path) {
            None => out.push(format!("only in the original: {path}")),
            Some(other) if other != summary => out
                .push(format!("differs: {path}\n      original {summary}\n      rebuilt  {other}")),
            Some(_) => {}
        }
    }
    out.extend(
        b.keys().filter(|p| !a.contains_key(*p)).map(|p| format!("only in the rebuild: {p}")),
    );
    if out.is_empty() {
        out.push("same entries and contents; the order or tar headers differ".to_string());
    }
    Ok(out)
}

/// The top-level keys (and packages, by name) whose values differ.
fn diff_json(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> =
        a.as_object().into_iter().chain(b.as_object()).flat_map(|o| o.keys()).collect();
    for key in keys {
        if a.get(key) == b.get(key) {
            continue;
        }
        if key == "packages" {
            out.extend(diff_packages(&a[key], &b[key]));
        } else {
            out.push(format!(
                "`{key}` differs: original {} rebuilt {}",
                short(&a[key]),
                short(&b[key])
            ));
        }
    }
    out
}

fn diff_packages(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let index = |v: &serde_json::Value| -> BTreeMap<String, String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["name"].as_str().unwrap_or("").to_string(), p["version"].to_string()))
            .collect()
    };
    let (a, b) = (index(a), index(b));
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(absent)".into());
            format!("package {n}: original {} rebuilt {}", show(a.get(n)), show(b.get(n)))
        })
        .collect();
    if !out.is_empty() {
        out.push(
            "the mirror served other packages; name a snapshot mirror in [base] mirror to pin them"
                .to_string(),
        );
    }
    out
}

fn short(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 120 {
        format!("{}...", text.chars().take(117).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(dir: &Path, name: &str, files: &[(&str, &[u8], u32)]) -> PathBuf {
        let path = dir.join(name);
        let mut builder = tar::Builder::new(std::fs::File::create(&path).expect("create"));
        for (file, bytes, mode) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(*mode);
            header.set_cksum();
            builder.append_data(&mut header, file, *bytes).expect("append");
        }
        builder.finish().expect("finish");
        path
    }

    #[test]
    fn tar_diff_names_changed_added_and_removed_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = tarball(dir.path(), "a.tar", &[("etc/a", b"1", 0o644), ("etc/b", b"2", 0o644)]);
        let b = tarball(dir.path(), "b.tar", &[("etc/a", b"1", 0o600), ("etc/c", b"3", 0o644)]);
        let lines = diff_tars(&a, &b).expect("diff");
        assert!(
            lines[0].starts_with("differs: etc/a") && lines[0].contains("mode 600"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "only in the original: etc/b");
        assert_eq!(lines[2], "only in the rebuild: etc/c");
        assert_eq!(lines.len(), 3);
    }

    /// An output folder with a rootfs tarball whose `etc/hostname` holds `hostname`.
    fn output_dir(dir: &Path, hostname: &[u8]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        tarball(dir, "x.rootfs.tar", &[("etc/hostname", hostname, 0o644), ("etc/os", b"d", 0o644)]);
        std::fs::write(dir.join("manifest.json"), "{\"image\": \"x\"}").expect("write");
        let mut sums = String::new();
        for name in ["x.rootfs.tar", "manifest.json"] {
            let hash = crate::fsutil::sha256_file(&dir.join(name)).expect("hash");
            sums.push_str(&format!("{hash}  {name}\n"));
        }
        std::fs::write(dir.join("SHA256SUMS"), sums).expect("write");
    }

    #[test]
    fn one_changed_byte_names_the_output_and_the_file_inside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (original, rebuilt) = (dir.path().join("a"), dir.path().join("b"));
        output_dir(&original, b"base\n");
        output_dir(&rebuilt, b"base\n");
        let sums = read_sums(&original.join("SHA256SUMS")).expect("sums");
        assert!(compare(&original, &rebuilt, &sums).expect("compare").all_same());

        output_dir(&rebuilt, b"base\r");
        let report = compare(&original, &rebuilt, &sums).expect("compare");
        assert!(!report.all_same());
        assert!(matches!(report.files[0], (ref n, Outcome::Differs { .. }) if n == "x.rootfs.tar"));
        assert_eq!(report.files[1], ("manifest.json".to_string(), Outcome::Same));
        assert!(report.details[0].starts_with("x.rootfs.tar: differs: etc/hostname"), "{report:?}");
        assert_eq!(report.details.len(), 1, "{report:?}");
    }

    #[test]
    fn manifest_diff_names_keys_and_package_versions() {
        let a =
            serde_json::json!({"kernel_version": "1", "packages": [{"name": "x", "version": "1"}]});
        let b =
            serde_json::json!({"kernel_version": "2", "packages": [{"name": "x", "version": "2"}]});
        let lines = diff_json(&a, &b);
        assert!(lines[0].starts_with("`kernel_version` differs"), "{lines:?}");
        assert_eq!(lines[1], "package x: original \"1\" rebuilt \"2\"");
        assert!(lines[2].contains("snapshot mirror"));
    }

    #[test]
    fn sums_lines_parse_and_bad_ones_name_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("SHA256SUMS");
        std::fs::write(&path, "ab  x.img\ncd  manifest.json\n").expect("write");
        assert_eq!(read_sums(&path).expect("sums")[1], ("manifest.json".into(), "cd".into()));
        std::fs::write(&path, "ab x.img\n").expect("write");
        assert!(read_sums(&path).unwrap_err().to_string().contains("SHA256SUMS:1"));
    }
}

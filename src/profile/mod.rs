//! Image profiles: the strict, versioned TOML that says what an image contains.

pub mod types;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::sshkey::AuthorizedKey;
use types::{Hostname, KernelArg, MirrorUrl, PackageName, Port, Suite};

/// The profile format this version of baseimg reads.
pub const FORMAT: u32 = 1;

/// Packages every image needs; a profile's list must contain each of them.
pub const REQUIRED_PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "udev",
    "linux-image-arm64",
    "initramfs-tools",
    "openssh-server",
    "iptables",
    "fail2ban",
    "python3-systemd",
    "nginx-light",
    "openssl",
    "sudo",
];

/// A parsed and checked image profile.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Version of the profile format; only [`FORMAT`] is read.
    pub format: u32,
    pub image: ImageSection,
    pub base: BaseSection,
    #[serde(default)]
    pub disk: DiskSection,
    #[serde(default)]
    pub ssh: SshSection,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub middleware: MiddlewareSection,
    #[serde(default)]
    pub kernel: KernelSection,
    #[serde(default)]
    pub fail2ban: Fail2banSection,
    #[serde(default)]
    pub audit: AuditSection,
}

/// Controls of `baseimg audit` that this profile loosens on purpose: reported as waived.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Control ids (see docs/audit.md); an unknown id is an error.
    #[serde(default)]
    pub waive: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// Name of the image; output files are named after it.
    pub name: Hostname,
    /// Folder name under `board-support/`.
    pub board: Hostname,
    pub hostname: Hostname,
    /// Clamp for every timestamp in the image (seconds since 1970).
    pub source_date_epoch: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaseSection {
    pub suite: Suite,
    /// A Debian mirror or snapshot URL; absent means the build host's apt sources.
    #[serde(default)]
    pub mirror: Option<MirrorUrl>,
    pub packages: Vec<PackageName>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskSection {
    /// Size of the whole disk image in MiB.
    pub size_mib: u32,
    /// Size of the persistent data partition (the last one) in MiB.
    pub data_size_mib: u32,
}

impl Default for DiskSection {
    fn default() -> Self {
        Self { size_mib: 3072, data_size_mib: 256 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSection {
    /// Whether sshd starts at boot. The owner can switch it later through the middleware.
    pub enabled: bool,
    pub port: Port,
    /// Public keys for the user `base`.
    pub authorized_keys: Vec<AuthorizedKey>,
}

impl Default for SshSection {
    fn default() -> Self {
        Self { enabled: false, port: Port::new(22), authorized_keys: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// The one public port: nginx with TLS.
    pub https_port: Port,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self { https_port: Port::new(443) }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiddlewareSection {
    /// Loopback port of base-middleware, reached only through nginx.
    pub port: Port,
}

impl Default for MiddlewareSection {
    fn default() -> Self {
        Self { port: Port::new(8845) }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelSection {
    /// Seconds before the kernel reboots after a panic (instead of a rescue shell).
    pub panic_seconds: u32,
    /// Extra words appended to the kernel command line.
    pub extra_args: Vec<KernelArg>,
}

impl Default for KernelSection {
    fn default() -> Self {
        Self { panic_seconds: 10, extra_args: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fail2banSection {
    pub max_retry: u32,
    pub find_time_seconds: u32,
    pub ban_time_seconds: u32,
}

impl Default for Fail2banSection {
    fn default() -> Self {
        Self { max_retry: 3, find_time_seconds: 600, ban_time_seconds: 3600 }
    }
}

/// A profile together with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub path: PathBuf,
    pub text: String,
    pub profile: Profile,
}

/// Finds a profile by name (`image-profiles/<name>.toml` under `project`) or by path.
pub fn resolve(project: &Path, name_or_path: &str) -> PathBuf {
    let looks_like_path = name_or_path.contains('/') || name_or_path.ends_with(".toml");
    if looks_like_path {
        PathBuf::from(name_or_path)
    } else {
        project.join("image-profiles").join(format!("{name_or_path}.toml"))
    }
}

/// Reads, parses and checks a profile file.
pub fn load(path: &Path) -> anyhow::Result<LoadedProfile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading profile `{}`", path.display()))?;
    let profile = parse(&text).map_err(|e| anyhow::anyhow!("{}", e.render(path, &text)))?;
    Ok(LoadedProfile { path: path.to_path_buf(), text, profile })
}

/// A profile error with the byte range it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub message: String,
    pub span: Option<std::ops::Range<usize>>,
    pub hint: Option<String>,
}

impl ProfileError {
    fn plain(message: String) -> Self {
        Self { message, span: None, hint: None }
    }

    /// `file:line:column: message`, the offending line, and a hint when there is one.
    pub fn render(&self, path: &Path, text: &str) -> String {
        let mut out = match &self.span {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                let source = text.lines().nth(line - 1).unwrap_or("");
                format!("{}:{line}:{column}: {}\n  | {source}", path.display(), self.message)
            }
            None => format!("{}: {}", path.display(), self.message),
        };
        if let Some(hint) = &self.hint {
            out.push_str(&format!("\n  hint: {hint}"));
        }
        out
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses profile text: the format version first, then the strict schema, then the checks
/// that span several keys.
pub fn parse(text: &str) -> Result<Profile, ProfileError> {
    check_format(text)?;
    let profile: Profile = toml::from_str(text).map_err(|e| from_toml(&e))?;
    check_packages(&profile)?;
    check_disk(&profile.disk)?;
    check_waivers(&profile.audit)?;
    Ok(profile)
}

fn check_format(text: &str) -> Result<(), ProfileError> {
    #[derive(Deserialize)]
    struct Version {
        format: Option<toml::Value>,
    }
    let version: Version = toml::from_str(text).map_err(|e| from_toml(&e))?;
    match version.format {
        Some(toml::Value::Integer(n)) if n == i64::from(FORMAT) => Ok(()),
        Some(other) => Err(ProfileError {
            message: format!(
                "unsupported profile format {other}; this baseimg reads format {FORMAT}"
            ),
            span: None,
            hint: Some(format!("set `format = {FORMAT}` and check the profile reference")),
        }),
        None => Err(ProfileError {
            message: "missing `format` key".into(),
            span: Some(0..0),
            hint: Some(format!("start the profile with `format = {FORMAT}`")),
        }),
    }
}

fn from_toml(e: &toml::de::Error) -> ProfileError {
    let message = e.message().trim().to_string();
    let hint = unknown_field_hint(&message);
    ProfileError { message, span: e.span(), hint }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`", suggests the closest key.
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (strsim::damerau_levenshtein(unknown, known), known))
        .min()?;
    (best.0 <= 3).then(|| format!("did you mean `{}`?", best.1))
}

fn check_packages(profile: &Profile) -> Result<(), ProfileError> {
    let listed = |name: &str| profile.base.packages.iter().any(|p| p.as_str() == name);
    let missing: Vec<&str> = REQUIRED_PACKAGES.iter().copied().filter(|p| !listed(p)).collect();
    if !missing.is_empty() {
        return Err(ProfileError {
            message: format!("base.packages lacks required packages: {}", missing.join(", ")),
            span: None,
            hint: Some("every image needs these for its hardening controls".into()),
        });
    }
    Ok(())
}

fn check_waivers(audit: &AuditSection) -> Result<(), ProfileError> {
    match crate::audit::unknown_waiver(&audit.waive) {
        Some(id) => Err(ProfileError {
            message: format!("audit.waive names unknown control `{id}`"),
            span: None,
            hint: Some("control ids are listed in docs/audit.md".into()),
        }),
        None => Ok(()),
    }
}

fn check_disk(disk: &DiskSection) -> Result<(), ProfileError> {
    if disk.size_mib < 1024 || disk.size_mib > 64 * 1024 {
        return Err(ProfileError::plain(format!(
            "disk.size_mib = {} is out of range (1024 to 65536)",
            disk.size_mib
        )));
    }
    if disk.data_size_mib < 16 || disk.data_size_mib > disk.size_mib / 2 {
        return Err(ProfileError::plain(format!(
            "disk.data_size_mib = {} is out of range (16 to half of disk.size_mib)",
            disk.data_size_mib
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

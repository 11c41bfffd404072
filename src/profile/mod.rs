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
    #[serde(deserialize_with = "types::source_date_epoch")]
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
    #[serde(deserialize_with = "types::disk_size_mib")]
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
    #[serde(deserialize_with = "types::panic_seconds")]
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
    #[serde(deserialize_with = "types::max_retry")]
    pub max_retry: u32,
    #[serde(deserialize_with = "types::find_time_seconds")]
    pub find_time_seconds: u32,
    #[serde(deserialize_with = "types::ban_time_seconds")]
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
    let bytes =
        std::fs::read(path).with_context(|| format!("reading profile `{}`", path.display()))?;
    let text = decode(&bytes).map_err(|e| anyhow::anyhow!("{}", e.render(path, "")))?;
    let profile = parse(&text).map_err(|e| anyhow::anyhow!("{}", e.render(path, &text)))?;
    Ok(LoadedProfile { path: path.to_path_buf(), text, profile })
}

/// The profile's bytes as text: UTF-8 only, without a byte-order mark; an error names the
/// line and column of the first byte that is not UTF-8.
pub fn decode(bytes: &[u8]) -> Result<String, ProfileError> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(ProfileError::plain("the profile is UTF-16 text; save it as UTF-8".into()));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let (line, column) = line_column(good, good.len());
            let bad = bytes[e.valid_up_to()];
            Err(ProfileError::plain(format!(
                "line {line}, column {column}: byte 0x{bad:02x} is not UTF-8; profiles are UTF-8 text"
            )))
        }
    }
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

    /// The same error pointing at `span` when it has no position of its own.
    fn at(mut self, span: Option<std::ops::Range<usize>>) -> Self {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }

    /// `file:line:column: message`, the offending line, and a hint when there is one.
    pub fn render(&self, path: &Path, text: &str) -> String {
        let mut out = match &self.span {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                let source = shown_line(text.lines().nth(line - 1).unwrap_or(""));
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

/// A source line as the error shows it: control characters escaped so that they cannot act
/// on the terminal, and at most 200 characters.
fn shown_line(line: &str) -> String {
    let mut out = String::new();
    for (i, c) in line.chars().enumerate() {
        if i == 200 {
            out.push_str(" …");
            break;
        }
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
    if text.trim().is_empty() {
        return Err(ProfileError {
            message: "the profile is empty".into(),
            span: None,
            hint: Some(format!("start the profile with `format = {FORMAT}`")),
        });
    }
    check_format(text)?;
    let profile: Profile = toml::from_str(text).map_err(|e| from_toml(&e))?;
    let at = |section: &str, key: &str| span_of_key(text, section, key);
    check_packages(&profile).map_err(|e| e.at(at("base", "packages")))?;
    check_disk(&profile.disk).map_err(|e| e.at(at("disk", "data_size_mib")))?;
    check_ports(&profile, text)?;
    check_waivers(&profile.audit).map_err(|e| e.at(at("audit", "waive")))?;
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
            span: span_of_key(text, "", "format"),
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
    let message = e.message().trim().replace("expected i64", "expected an integer");
    let hint = unknown_field_hint(&message).or_else(|| {
        (message.starts_with("invalid basic string")
            || message.starts_with("invalid literal string"))
        .then(|| "a string must end on its line and hold no raw control characters".into())
    });
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
    let close = best.0 <= 3 && best.0 * 2 < unknown.chars().count();
    close.then(|| format!("did you mean `{}`?", best.1))
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

/// The byte range of `key = ...` in `[section]`, for errors found after parsing. Plain
/// `[section]` headers and bare keys are enough: the text has already parsed as a profile.
fn span_of_key(text: &str, section: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let header = trimmed.trim_start_matches('[');
            current = header.split(']').next().unwrap_or("").trim().to_string();
        } else if current == section {
            let start = line.len() - line.trim_start().len();
            let is_key =
                trimmed.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='));
            if is_key {
                return Some(offset + start..offset + start + key.len());
            }
        }
        offset += line.len();
    }
    None
}

/// The three listening ports must differ: two services cannot share one.
fn check_ports(profile: &Profile, text: &str) -> Result<(), ProfileError> {
    let ports = [
        ("ssh", "port", profile.ssh.port),
        ("network", "https_port", profile.network.https_port),
        ("middleware", "port", profile.middleware.port),
    ];
    for (i, (sa, ka, pa)) in ports.iter().enumerate() {
        for (sb, kb, pb) in &ports[i + 1..] {
            if pa == pb {
                let span = span_of_key(text, sb, kb).or_else(|| span_of_key(text, sa, ka));
                return Err(ProfileError {
                    message: format!(
                        "{sa}.{ka} and {sb}.{kb} are both {pa}; each service needs its own port"
                    ),
                    span,
                    hint: None,
                });
            }
        }
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

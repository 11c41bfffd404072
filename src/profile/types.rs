//! Checked value types: every scalar of a profile that reaches a template is one of these.

use std::fmt;

use serde::Deserialize;

/// Implements `Deserialize` through `TryFrom<String>`, so a bad value fails while the
/// profile is parsed and the error carries the value's line and column.
macro_rules! checked_string {
    ($name:ident, $check:path) => {
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                $check(&value)?;
                Ok(Self(value))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = String::deserialize(d)?;
                Self::try_from(value).map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A value as error messages quote it: debug-escaped and cut after 80 characters.
pub fn quoted(s: &str) -> String {
    let count = s.chars().count();
    if count <= 80 {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(80).collect();
    format!("{head:?}… ({count} characters)")
}

/// A host name: one DNS label, lowercase letters, digits and inner hyphens, 1 to 63 bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hostname(String);
checked_string!(Hostname, check_hostname);

fn check_hostname(s: &str) -> Result<(), String> {
    let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if s.is_empty() || s.len() > 63 || !ok_chars || s.starts_with('-') || s.ends_with('-') {
        return Err(format!(
            "invalid hostname {}: use 1 to 63 lowercase letters, digits or inner hyphens",
            quoted(s)
        ));
    }
    Ok(())
}

/// A Debian package name as Debian policy defines it, optionally with `:arch`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PackageName(String);
checked_string!(PackageName, check_package_name);

fn check_package_name(s: &str) -> Result<(), String> {
    let name = s.split_once(':').map_or(s, |(name, _)| name);
    let first_ok =
        name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok =
        name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if name.len() < 2 || !first_ok || !rest_ok {
        return Err(format!("invalid Debian package name {}", quoted(s)));
    }
    Ok(())
}

/// A Debian suite or codename, such as `bookworm`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suite(String);
checked_string!(Suite, check_suite);

fn check_suite(s: &str) -> Result<(), String> {
    let ok =
        !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    if !ok {
        return Err(format!(
            "invalid Debian suite {}: expected a codename such as \"bookworm\"",
            quoted(s)
        ));
    }
    Ok(())
}

/// An http(s) URL of a Debian mirror, without spaces or control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MirrorUrl(String);
checked_string!(MirrorUrl, check_mirror);

fn check_mirror(s: &str) -> Result<(), String> {
    let scheme_ok = s.starts_with("http://") || s.starts_with("https://");
    let chars_ok = s.bytes().all(|b| b.is_ascii_graphic()) && s.len() <= 512;
    if !scheme_ok || !chars_ok {
        return Err(format!(
            "invalid mirror URL {}: expected http:// or https:// and no spaces, at most 512 bytes",
            quoted(s)
        ));
    }
    Ok(())
}

/// A kernel command-line word such as `quiet` or `loglevel=4`: printable, no spaces, no quotes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KernelArg(String);
checked_string!(KernelArg, check_kernel_arg);

fn check_kernel_arg(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
    if !ok {
        return Err(format!(
            "invalid kernel argument {}: one word of printable characters, no quotes",
            quoted(s)
        ));
    }
    if let Some(key) = forbidden_kernel_arg(s) {
        return Err(format!(
            "kernel argument {} is not allowed: `{key}` would override the image's boot \
             or security settings",
            quoted(s)
        ));
    }
    Ok(())
}

/// Kernel parameters a profile or board may not set: they would replace the root, the init
/// or the panic behaviour baseimg sets, or open a shell or switch off a security module.
const FORBIDDEN_KERNEL_ARGS: &[&str] = &[
    "init",
    "rdinit",
    "root",
    "rootflags",
    "panic",
    "single",
    "emergency",
    "rescue",
    "s",
    "1",
    "break",
    "systemd.unit",
    "systemd.debug_shell",
    "systemd.debug-shell",
    "systemd.mask",
    "apparmor",
    "selinux",
    "security",
    "lsm",
    "module.sig_enforce",
];

fn forbidden_kernel_arg(s: &str) -> Option<&'static str> {
    let key = s.split_once('=').map_or(s, |(key, _)| key).to_ascii_lowercase();
    FORBIDDEN_KERNEL_ARGS.iter().copied().find(|f| *f == key)
}

/// A path inside the image, relative to its root: `/`-separated words of letters, digits and
/// `._+-`, no empty, `.` or `..` component, at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImagePath(String);
checked_string!(ImagePath, check_image_path);

fn check_image_path(s: &str) -> Result<(), String> {
    let chars_ok = s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-/".contains(&b));
    let parts_ok = s.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if s.is_empty() || s.len() > 255 || !chars_ok || !parts_ok {
        return Err(format!(
            "invalid path inside the image {}: relative, without `..`, letters, digits and \
             `._+-/` only, at most 255 bytes",
            quoted(s)
        ));
    }
    Ok(())
}

/// Human-readable text such as a description: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FreeText(String);
checked_string!(FreeText, check_free_text);

/// Longest free text accepted, in characters.
pub const MAX_FREE_TEXT: usize = 200;

fn check_free_text(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("empty text".into());
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!("text {} contains the control character {c:?}", quoted(s)));
    }
    let count = s.chars().count();
    if count > MAX_FREE_TEXT {
        return Err(format!("text of {count} characters; at most {MAX_FREE_TEXT} are allowed"));
    }
    Ok(())
}

/// Reads an integer and checks it lies in `min..=max`; the error names the accepted range.
fn bounded<'de, D: serde::Deserializer<'de>>(
    d: D,
    min: u64,
    max: u64,
    what: &str,
) -> Result<u64, D::Error> {
    let value = i64::deserialize(d)?;
    match u64::try_from(value) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(serde::de::Error::custom(format!(
            "{what} = {value} is out of range ({min} to {max})"
        ))),
    }
}

/// Defines a `deserialize_with` function for an integer key with a fixed range.
macro_rules! bounded_int {
    ($fn:ident, $ty:ty, $min:expr, $max:expr, $what:expr) => {
        pub fn $fn<'de, D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            let v = bounded(d, $min, $max, $what)?;
            <$ty>::try_from(v).map_err(serde::de::Error::custom)
        }
    };
}

// The latest epoch is 2106-02-07, the end of unsigned 32-bit time in tar and file systems.
bounded_int!(source_date_epoch, u64, 0, u64::from(u32::MAX), "image.source_date_epoch");
bounded_int!(disk_size_mib, u32, 1024, 65536, "disk.size_mib");
bounded_int!(panic_seconds, u32, 1, 3600, "kernel.panic_seconds");
bounded_int!(max_retry, u32, 1, 100, "fail2ban.max_retry");
bounded_int!(find_time_seconds, u32, 10, 7 * 86_400, "fail2ban.find_time_seconds");
bounded_int!(ban_time_seconds, u32, 10, 365 * 86_400, "fail2ban.ban_time_seconds");

/// A TCP or UDP port number, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Port(u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(d)?;
        match u16::try_from(value) {
            Ok(port) if port != 0 => Ok(Port(port)),
            _ => {
                Err(serde::de::Error::custom(format!("invalid port {value}: expected 1 to 65535")))
            }
        }
    }
}

impl Port {
    pub const fn new(port: u16) -> Self {
        Self(port)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_rejects_injection_and_bad_labels() {
        assert!(Hostname::try_from("base".to_string()).is_ok());
        assert!(Hostname::try_from("node-1".to_string()).is_ok());
        for bad in ["", "-a", "a-", "Base", "a.b", "a\nPermitRootLogin yes", &"a".repeat(64)] {
            assert!(Hostname::try_from(bad.to_string()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn package_names_follow_debian_policy() {
        for good in ["nginx-light", "libc6", "g++", "python3-systemd", "u-boot-rockchip:arm64"] {
            assert!(PackageName::try_from(good.to_string()).is_ok(), "{good:?} refused");
        }
        for bad in ["", "a", "Nginx", "nginx light", "-x", "foo;rm"] {
            assert!(PackageName::try_from(bad.to_string()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn kernel_args_are_single_words() {
        assert!(KernelArg::try_from("loglevel=4".to_string()).is_ok());
        for bad in ["", "a b", "x\"y", "a\nb", "init=/bin/sh", "Single", "systemd.unit=x"] {
            assert!(KernelArg::try_from(bad.to_string()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn image_paths_stay_inside_the_image() {
        assert!(ImagePath::try_from("rockchip/rk3399-rockpro64.dtb".to_string()).is_ok());
        for bad in ["", "/etc/x", "a/../b", "a//b", "a/./b", "a b", "a\nb", "a$(x)"] {
            assert!(ImagePath::try_from(bad.to_string()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn free_text_is_bounded_and_printable() {
        assert!(FreeText::try_from("Pine64 RockPro64 (Rockchip RK3399)".to_string()).is_ok());
        for bad in [String::new(), " ".into(), "a\nb".into(), "a\u{1b}[2J".into(), "x".repeat(201)]
        {
            assert!(FreeText::try_from(bad.clone()).is_err(), "{bad:?} accepted");
        }
    }
}

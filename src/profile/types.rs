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

/// A host name: one DNS label, lowercase letters, digits and inner hyphens, 1 to 63 bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hostname(String);
checked_string!(Hostname, check_hostname);

fn check_hostname(s: &str) -> Result<(), String> {
    let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if s.is_empty() || s.len() > 63 || !ok_chars || s.starts_with('-') || s.ends_with('-') {
        return Err(format!(
            "invalid hostname {s:?}: use 1 to 63 lowercase letters, digits or inner hyphens"
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
        return Err(format!("invalid Debian package name {s:?}"));
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
            "invalid Debian suite {s:?}: expected a codename such as \"bookworm\""
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
            "invalid mirror URL {s:?}: expected http:// or https:// and no spaces"
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
            "invalid kernel argument {s:?}: one word of printable characters, no quotes"
        ));
    }
    Ok(())
}

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
        for bad in ["", "a b", "x\"y", "a\nb"] {
            assert!(KernelArg::try_from(bad.to_string()).is_err(), "{bad:?} accepted");
        }
    }
}

//! sha512-crypt password hashes: made by the daemon, checked again by the helper.

use std::fmt;

use anyhow::Context;
use serde::{Deserialize, Deserializer, Serialize};
use sha_crypt::{Params, PasswordHasher, ShaCrypt};

use crate::messages::Password;

/// sha512-crypt rounds; glibc's default is 5000, more slows offline guessing.
pub const ROUNDS: u32 = 65_536;

/// Salt bytes; 12 bytes encode to the 16 salt characters sha512-crypt uses.
const SALT_LEN: usize = 12;

const MAX_HASH_LEN: usize = 256;

/// A `$6$...` hash as `/etc/shadow` stores it; never printed.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub fn from_password(password: &Password) -> anyhow::Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt)
            .map_err(|err| anyhow::anyhow!("reading the system random source: {err}"))?;
        Self::with_salt(password, &salt)
    }

    /// Hashes with a given salt (tests compare against other implementations).
    pub fn with_salt(password: &Password, salt: &[u8]) -> anyhow::Result<Self> {
        let params = Params::new(ROUNDS).map_err(|err| anyhow::anyhow!("{err}"))?;
        let hasher = ShaCrypt::from(params);
        let hash = hasher
            .hash_password_with_salt(password.expose().as_bytes(), salt)
            .map_err(|err| anyhow::anyhow!("{err}"))
            .context("hashing the password")?;
        Self::parse(hash.as_str()).map_err(|err| anyhow::anyhow!(err))
    }

    /// Accepts only the shape of a sha512-crypt hash: no `:` or newline can reach
    /// `chpasswd`'s input.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let valid_chars = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'$' | b'='));
        if !text.starts_with("$6$") || text.len() > MAX_HASH_LEN || !valid_chars {
            return Err("not a sha512-crypt ($6$) hash");
        }
        Ok(Self(text.to_string()))
    }

    /// The hash text, for `chpasswd -e`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `password` matches this hash.
    pub fn verify(&self, password: &str) -> bool {
        use sha_crypt::{PasswordHashRef, PasswordVerifier};
        let Ok(parsed) = PasswordHashRef::new(&self.0) else { return false };
        ShaCrypt::default().verify_password(password.as_bytes(), parsed).is_ok()
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for PasswordHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PasswordHash::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Password::new(text.to_string()).expect("valid password")
    }

    #[test]
    fn hash_verifies_the_exact_password_with_shell_metacharacters() {
        let tricky = r#"it's "$(rm -rf /)" `id` ; \n"#;
        let hash = PasswordHash::from_password(&password(tricky)).expect("hashed");
        assert!(hash.as_str().starts_with("$6$rounds=65536$"));
        assert!(hash.verify(tricky));
        assert!(!hash.verify("it's"));
    }

    #[test]
    fn hash_matches_glibc_for_a_known_salt_when_python_crypt_is_available() {
        let hash = PasswordHash::with_salt(&password("p'a$(x)"), b"0123456789ab").expect("ok");
        let script = "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))";
        let out = std::process::Command::new("python3")
            .args(["-W", "ignore", "-c", script, "p'a$(x)", hash.as_str()])
            .output();
        match out {
            Ok(out) if out.status.success() => {
                assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hash.as_str());
            }
            _ => eprintln!("python3 crypt not available; cross-check skipped"),
        }
    }

    #[test]
    fn hash_with_colon_or_newline_is_refused() {
        assert!(PasswordHash::parse("$6$abc$def:0:").is_err());
        assert!(PasswordHash::parse("$6$abc$def\nroot:x").is_err());
        assert!(PasswordHash::parse("$1$md5$hash").is_err());
    }

    #[test]
    fn debug_output_hides_the_hash() {
        let hash = PasswordHash::parse("$6$salt$abcdef").expect("valid");
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
    }
}

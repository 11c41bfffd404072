//! Curve25519 static keys: the device's and a client's identity on the Noise channel.

use std::fmt;

use curve25519_dalek::MontgomeryPoint;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// Length of a Curve25519 key in bytes.
pub const KEY_LEN: usize = 32;

/// A static public key, shown and stored as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads a key from a byte slice of exactly [`KEY_LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; KEY_LEN]>::try_from(bytes).ok().map(Self)
    }

    /// Parses the hex form written by [`PublicKey::to_hex`].
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Self::from_slice(&bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The full key as lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A short identifier for lists and revocation: the first 8 bytes as hex.
    pub fn short_id(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits for a public key"))
    }
}

/// A static key pair; the private half is wiped on drop and never printed.
#[derive(Clone)]
pub struct StaticKeypair {
    private: Zeroizing<[u8; KEY_LEN]>,
    public: PublicKey,
}

impl StaticKeypair {
    /// Generates a fresh key pair from the operating system's random source.
    pub fn generate() -> anyhow::Result<Self> {
        let mut private = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(private.as_mut())
            .map_err(|err| anyhow::anyhow!("reading the system random source: {err}"))?;
        Ok(Self::from_private(private))
    }

    /// Rebuilds a key pair from its private half (the public half is derived).
    pub fn from_private(private: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(*private).to_bytes();
        Self { private, public: PublicKey(public) }
    }

    /// Parses a private key stored as hex.
    pub fn from_private_hex(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).ok()?);
        let private = Zeroizing::new(<[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok()?);
        Some(Self::from_private(private))
    }

    /// The private half as hex, for the key file only.
    pub fn private_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.private.as_ref()))
    }

    /// The private key bytes, for the Noise handshake.
    pub fn private_bytes(&self) -> &[u8; KEY_LEN] {
        &self.private
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_round_trips_through_hex_and_keeps_public_half() {
        let pair = StaticKeypair::generate().expect("random source");
        let again = StaticKeypair::from_private_hex(&pair.private_hex()).expect("valid hex");
        assert_eq!(pair.public(), again.public());
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let pair = StaticKeypair::generate().expect("random source");
        let shown = format!("{pair:?}");
        assert!(!shown.contains(pair.private_hex().as_str()));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn public_key_hex_rejects_wrong_length() {
        assert!(PublicKey::from_hex("abcd").is_none());
        assert!(PublicKey::from_hex(&"zz".repeat(32)).is_none());
    }
}

//! The client's own key and the devices it paired with, kept in a private directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::fsutil::{ensure_private_dir, read_private_file, write_atomic};
use crate::keys::{PublicKey, StaticKeypair};

const IDENTITY_FILE: &str = "client-key.json";
const DEVICES_FILE: &str = "devices.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    version: u32,
    private_key: Zeroizing<String>,
}

/// A device this client paired with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairedDevice {
    pub name: String,
    pub address: String,
    pub public_key: PublicKey,
    pub client_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicesFile {
    version: u32,
    devices: Vec<PairedDevice>,
}

/// The client's private directory.
pub struct ClientStore {
    dir: PathBuf,
}

impl ClientStore {
    /// Opens (creating with mode 0700) the store in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        ensure_private_dir(dir)?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// The client's static key, created on first use.
    pub fn identity(&self) -> anyhow::Result<StaticKeypair> {
        let path = self.dir.join(IDENTITY_FILE);
        if let Some(bytes) = read_private_file(&path)? {
            let file: IdentityFile = serde_json::from_slice(&bytes)
                .with_context(|| format!("`{}` is corrupt", path.display()))?;
            return StaticKeypair::from_private_hex(&file.private_key)
                .with_context(|| format!("`{}` holds no valid key", path.display()));
        }
        let keys = StaticKeypair::generate()?;
        let file = IdentityFile { version: FORMAT_VERSION, private_key: keys.private_hex() };
        let bytes = Zeroizing::new(serde_json::to_vec_pretty(&file).context("serializing")?);
        write_atomic(&path, &bytes)?;
        Ok(keys)
    }

    /// The paired devices.
    pub fn devices(&self) -> anyhow::Result<Vec<PairedDevice>> {
        let path = self.dir.join(DEVICES_FILE);
        let Some(bytes) = read_private_file(&path)? else { return Ok(Vec::new()) };
        let file: DevicesFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("`{}` is corrupt", path.display()))?;
        if file.version != FORMAT_VERSION {
            bail!("`{}` has format version {}", path.display(), file.version);
        }
        Ok(file.devices)
    }

    /// Records a paired device, replacing an entry with the same key or address.
    pub fn add_device(&self, device: PairedDevice) -> anyhow::Result<()> {
        let mut devices = self.devices()?;
        devices.retain(|d| d.public_key != device.public_key && d.address != device.address);
        devices.push(device);
        self.save(devices)
    }

    /// Forgets the device with this name or address.
    pub fn remove_device(&self, name_or_address: &str) -> anyhow::Result<bool> {
        let mut devices = self.devices()?;
        let before = devices.len();
        devices.retain(|d| d.name != name_or_address && d.address != name_or_address);
        let removed = devices.len() != before;
        self.save(devices)?;
        Ok(removed)
    }

    fn save(&self, devices: Vec<PairedDevice>) -> anyhow::Result<()> {
        let file = DevicesFile { version: FORMAT_VERSION, devices };
        let bytes = serde_json::to_vec_pretty(&file).context("serializing devices")?;
        write_atomic(&self.dir.join(DEVICES_FILE), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ClientStore::open(&dir.path().join("client")).expect("opens");
        let first = store.identity().expect("created").public();
        assert_eq!(store.identity().expect("loaded").public(), first);
    }

    #[test]
    fn device_with_same_address_replaces_the_old_entry() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ClientStore::open(dir.path()).expect("opens");
        let device = |byte| PairedDevice {
            name: "base".into(),
            address: "ws://127.0.0.1:1/api/ws".into(),
            public_key: PublicKey::from_bytes([byte; 32]),
            client_id: "x".into(),
        };
        store.add_device(device(1)).expect("saved");
        store.add_device(device(2)).expect("saved");
        assert_eq!(store.devices().expect("read"), vec![device(2)]);
    }
}

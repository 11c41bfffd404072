//! The daemon's persistent state: its static key and the paired clients, in one directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::fsutil::{ensure_private_dir, read_private_file, write_atomic};
use crate::keys::{PublicKey, StaticKeypair};

/// Default state directory (systemd's `StateDirectory=base-middleware`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/base-middleware";

/// The device's static key file inside the state directory.
pub const KEY_FILE: &str = "device-key.json";

/// The paired clients file inside the state directory.
pub const CLIENTS_FILE: &str = "clients.json";

const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    private_key: Zeroizing<String>,
}

/// A client that completed pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairedClient {
    pub public_key: PublicKey,
    pub name: String,
    pub paired_at_unix: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    version: u32,
    clients: Vec<PairedClient>,
}

/// Loaded state; every change is written to disk before it takes effect in memory.
#[derive(Debug)]
pub struct DeviceState {
    dir: PathBuf,
    keys: StaticKeypair,
    clients: Vec<PairedClient>,
}

impl DeviceState {
    /// Opens (or initialises) the state in `dir`; refuses corrupt or exposed files.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        ensure_private_dir(dir)?;
        let keys = load_or_create_key(&dir.join(KEY_FILE))?;
        let clients = load_clients(&dir.join(CLIENTS_FILE))?;
        Ok(Self { dir: dir.to_path_buf(), keys, clients })
    }

    /// The device's static key pair.
    pub fn keys(&self) -> &StaticKeypair {
        &self.keys
    }

    /// The paired clients, in pairing order.
    pub fn clients(&self) -> &[PairedClient] {
        &self.clients
    }

    /// Whether `key` belongs to a paired (not revoked) client.
    pub fn is_paired(&self, key: &PublicKey) -> bool {
        self.clients.iter().any(|client| client.public_key == *key)
    }

    /// Records a newly paired client (replacing an older record of the same key).
    pub fn add_client(&mut self, client: PairedClient) -> anyhow::Result<()> {
        let mut clients = self.clients.clone();
        clients.retain(|known| known.public_key != client.public_key);
        clients.push(client);
        self.save_clients(clients)
    }

    /// Removes the client whose short id or full key is `id`; returns it if found.
    pub fn revoke(&mut self, id: &str) -> anyhow::Result<Option<PairedClient>> {
        let found = self
            .clients
            .iter()
            .find(|c| c.public_key.short_id() == id || c.public_key.to_hex() == id)
            .cloned();
        let Some(found) = found else { return Ok(None) };
        let clients = self.clients.iter().filter(|c| **c != found).cloned().collect();
        self.save_clients(clients)?;
        Ok(Some(found))
    }

    fn save_clients(&mut self, clients: Vec<PairedClient>) -> anyhow::Result<()> {
        let file = ClientsFile { version: FORMAT_VERSION, clients };
        let bytes = serde_json::to_vec_pretty(&file).context("serializing paired clients")?;
        write_atomic(&self.dir.join(CLIENTS_FILE), &bytes)?;
        self.clients = file.clients;
        Ok(())
    }
}

fn load_or_create_key(path: &Path) -> anyhow::Result<StaticKeypair> {
    if let Some(bytes) = read_private_file(path)? {
        let file: KeyFile = serde_json::from_slice(&bytes).map_err(|err| corrupt(path, err))?;
        check_version(path, file.version)?;
        return StaticKeypair::from_private_hex(&file.private_key)
            .ok_or_else(|| corrupt(path, "the private key is not 64 hex digits"));
    }
    let keys = StaticKeypair::generate()?;
    let file = KeyFile { version: FORMAT_VERSION, private_key: keys.private_hex() };
    let bytes = Zeroizing::new(serde_json::to_vec_pretty(&file).context("serializing the key")?);
    write_atomic(path, &bytes)?;
    log::info!("created device key {} in `{}`", keys.public(), path.display());
    Ok(keys)
}

fn load_clients(path: &Path) -> anyhow::Result<Vec<PairedClient>> {
    let Some(bytes) = read_private_file(path)? else { return Ok(Vec::new()) };
    let file: ClientsFile = serde_json::from_slice(&bytes).map_err(|err| corrupt(path, err))?;
    check_version(path, file.version)?;
    Ok(file.clients)
}

fn check_version(path: &Path, version: u32) -> anyhow::Result<()> {
    if version != FORMAT_VERSION {
        bail!("`{}` has format version {version}; this build reads version 1", path.display());
    }
    Ok(())
}

fn corrupt(path: &Path, cause: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "state file `{}` is corrupt ({cause}); refusing to start. Move it away to start \
         over: a lost key file means every client must pair again",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn client(byte: u8) -> PairedClient {
        let key = PublicKey::from_bytes([byte; 32]);
        PairedClient { public_key: key, name: format!("c{byte}"), paired_at_unix: 1 }
    }

    #[test]
    fn key_and_clients_survive_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut state = DeviceState::open(dir.path()).expect("opens");
        state.add_client(client(7)).expect("saved");
        let again = DeviceState::open(dir.path()).expect("reopens");
        assert_eq!(again.keys().public(), state.keys().public());
        assert!(again.is_paired(&PublicKey::from_bytes([7; 32])));
    }

    #[test]
    fn revoked_client_is_no_longer_paired_after_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut state = DeviceState::open(dir.path()).expect("opens");
        state.add_client(client(7)).expect("saved");
        let id = PublicKey::from_bytes([7; 32]).short_id();
        assert!(state.revoke(&id).expect("saved").is_some());
        assert!(state.revoke(&id).expect("saved").is_none());
        assert!(!DeviceState::open(dir.path()).expect("reopens").is_paired(&client(7).public_key));
    }

    #[test]
    fn corrupt_clients_file_refuses_start_with_a_clear_message() {
        let dir = tempfile::tempdir().expect("temp dir");
        DeviceState::open(dir.path()).expect("opens");
        let path = dir.path().join(CLIENTS_FILE);
        fs::write(&path, b"{not json").expect("written");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = DeviceState::open(dir.path()).expect_err("refused").to_string();
        assert!(err.contains("is corrupt") && err.contains(CLIENTS_FILE), "{err}");
    }

    #[test]
    fn world_readable_key_file_refuses_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        DeviceState::open(dir.path()).expect("opens");
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = format!("{:#}", DeviceState::open(dir.path()).expect_err("refused"));
        assert!(err.contains("mode 0644"), "{err}");
    }
}

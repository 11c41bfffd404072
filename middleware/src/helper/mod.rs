//! The privileged helper: a fixed set of operations, its wire format, and how to reach it.
//!
//! The daemon never runs as root. It sends one [`HelperRequest`] per connection to a unix
//! socket that only its group may open; systemd starts `base-middleware-helper` as root for
//! each connection, which validates the request, performs it and answers one [`HelperReply`].

pub mod authorized_keys;
pub mod ops;
pub mod password;
pub mod runner;
pub mod socket;

use serde::{Deserialize, Serialize};

use crate::messages::{Account, SshKeyInfo, SystemStatus};
use password::PasswordHash;

/// Default path of the helper's socket (see `dist/base-middleware-helper.socket`).
pub const DEFAULT_HELPER_SOCKET: &str = "/run/base-middleware-helper.sock";

/// Largest request the helper reads, in bytes.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// The operations the helper performs; nothing else is possible through it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HelperRequest {
    /// SSH enablement, locked accounts and service states.
    SystemStatus,
    /// Store a sha512-crypt hash for `base` or `root` and unlock the account.
    SetPasswordHash { account: Account, hash: PasswordHash },
    /// Enable and start, or disable and stop, `ssh.service`.
    SetSsh { enabled: bool },
    /// Append one OpenSSH public key to `base`'s `authorized_keys`.
    AddAuthorizedKey { key: String },
    /// List `base`'s authorized keys.
    ListAuthorizedKeys,
    /// Remove `base`'s key with this SHA256 fingerprint.
    RemoveAuthorizedKey { fingerprint: String },
    /// Reboot the device.
    Reboot,
}

impl HelperRequest {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            HelperRequest::SystemStatus => "system_status",
            HelperRequest::SetPasswordHash { .. } => "set_password_hash",
            HelperRequest::SetSsh { .. } => "set_ssh",
            HelperRequest::AddAuthorizedKey { .. } => "add_authorized_key",
            HelperRequest::ListAuthorizedKeys => "list_authorized_keys",
            HelperRequest::RemoveAuthorizedKey { .. } => "remove_authorized_key",
            HelperRequest::Reboot => "reboot",
        }
    }
}

/// The helper's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HelperReply {
    Done,
    Status(SystemStatus),
    Keys {
        keys: Vec<SshKeyInfo>,
    },
    /// The key to remove was not there.
    NotFound,
    Failed {
        message: String,
    },
}

/// Something that performs helper requests: the socket in production, the operations
/// themselves in tests.
pub trait Privileged: Send + Sync {
    /// Performs one request and returns the helper's reply.
    fn call(&self, request: &HelperRequest) -> anyhow::Result<HelperReply>;
}

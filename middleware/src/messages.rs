//! Typed, versioned messages carried inside the encrypted channel, and their codec.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

/// The protocol version every envelope carries; anything else closes the connection.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest accepted password, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Longest accepted client name, in characters.
pub const MAX_CLIENT_NAME_LEN: usize = 64;

/// Every message on the wire: `{"v": 1, "body": ...}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    pub v: u32,
    pub body: T,
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

/// Why a received message was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {found} (this end speaks {PROTOCOL_VERSION})")]
    Version { found: u32 },
    /// The bytes are not a well-formed message of the expected type.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Serializes `body` in a versioned envelope.
pub fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    let envelope = Envelope { v: PROTOCOL_VERSION, body };
    serde_json::to_vec(&envelope).expect("message types serialize without failure")
}

/// Checks the version, then parses the envelope strictly (unknown fields are errors).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let probe: VersionProbe = serde_json::from_slice(bytes).map_err(malformed)?;
    if probe.v != PROTOCOL_VERSION {
        return Err(DecodeError::Version { found: probe.v });
    }
    let envelope: Envelope<T> = serde_json::from_slice(bytes).map_err(malformed)?;
    Ok(envelope.body)
}

/// Describes a parse error without quoting values, which could be secrets.
fn malformed(err: serde_json::Error) -> DecodeError {
    let text = err.to_string();
    let safe = match text.split_once(", expected") {
        Some((head, tail)) if head.starts_with("invalid") => {
            let kind = head.split(':').next().unwrap_or(head);
            format!("{kind} (value withheld), expected{tail}")
        }
        _ => text,
    };
    DecodeError::Malformed(safe)
}

/// An account whose password the API may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Account {
    Base,
    Root,
}

impl Account {
    /// The login name in `/etc/passwd`.
    pub fn login(self) -> &'static str {
        match self {
            Account::Base => "base",
            Account::Root => "root",
        }
    }
}

/// A password in transit; wiped on drop, never printed.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks length and content: 1 to [`MAX_PASSWORD_LEN`] bytes, no NUL.
    pub fn new(text: String) -> Result<Self, &'static str> {
        let text = Zeroizing::new(text);
        if text.is_empty() {
            return Err("the password is empty");
        }
        if text.len() > MAX_PASSWORD_LEN {
            return Err("the password is longer than 1024 bytes");
        }
        if text.contains('\0') {
            return Err("the password contains a NUL character");
        }
        Ok(Self(text))
    }

    /// The password bytes, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Password::new(text).map_err(serde::de::Error::custom)
    }
}

/// A client's self-chosen label: 1 to 64 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClientName(String);

impl ClientName {
    /// Validates a label.
    pub fn new(text: &str) -> Result<Self, &'static str> {
        let count = text.chars().count();
        if count == 0 || count > MAX_CLIENT_NAME_LEN {
            return Err("a client name has 1 to 64 characters");
        }
        if text.chars().any(char::is_control) {
            return Err("a client name has no control characters");
        }
        Ok(Self(text.to_string()))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ClientName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ClientName::new(&text).map_err(serde::de::Error::custom)
    }
}

/// A request from a client; each gets exactly one [`Reply`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The user compared the codes and confirms pairing under this name.
    ConfirmPairing {
        client_name: ClientName,
    },
    Status,
    SetPassword {
        account: Account,
        password: Password,
    },
    SetSsh {
        enabled: bool,
    },
    AddSshKey {
        key: String,
    },
    ListSshKeys,
    RemoveSshKey {
        fingerprint: String,
    },
    OpenPairingWindow {
        seconds: u32,
    },
    ListClients,
    RevokeClient {
        id: String,
    },
    Reboot,
}

/// The device's first message after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub device_name: String,
    pub version: String,
    pub session: SessionState,
}

/// What the device makes of this client's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// A known client: the API is open.
    Paired,
    /// Unknown client, pairing window open: confirm the code to pair.
    ConfirmationRequired,
    /// Unknown or revoked client and no window: the connection closes.
    NotPaired,
}

/// The device's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    Done,
    Paired {
        client_id: String,
    },
    Status(DeviceStatus),
    SshKeys {
        keys: Vec<SshKeyInfo>,
    },
    Clients {
        clients: Vec<ClientInfo>,
    },
    WindowOpened {
        seconds: u32,
    },
    /// Pairing was refused (window closed meanwhile); the connection closes.
    Refused {
        reason: String,
    },
    /// The request was valid but could not be carried out.
    Failed {
        message: String,
    },
}

/// Device status as shown by `baseimg device status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceStatus {
    pub version: String,
    pub hostname: String,
    pub uptime_seconds: u64,
    #[serde(flatten)]
    pub system: SystemStatus,
}

/// The part of the status only the privileged helper can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    pub ssh_enabled: bool,
    pub locked_accounts: Vec<Account>,
    pub services: Vec<ServiceState>,
}

/// One systemd unit and its `systemctl is-active` word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceState {
    pub unit: String,
    pub state: String,
}

/// One authorized SSH key of `base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshKeyInfo {
    pub fingerprint: String,
    pub algorithm: String,
    pub comment: String,
}

/// One paired client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInfo {
    pub id: String,
    pub name: String,
    pub paired_at_unix: u64,
    pub is_caller: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_through_the_envelope() {
        let bytes = encode(&Request::SetSsh { enabled: true });
        let back: Request = decode(&bytes).expect("decodes");
        assert!(matches!(back, Request::SetSsh { enabled: true }));
    }

    #[test]
    fn other_protocol_version_is_refused() {
        let err = decode::<Request>(br#"{"v":2,"body":"status"}"#).expect_err("refused");
        assert!(matches!(err, DecodeError::Version { found: 2 }));
    }

    #[test]
    fn unknown_request_and_unknown_field_are_malformed() {
        assert!(decode::<Request>(br#"{"v":1,"body":"format_disk"}"#).is_err());
        let extra = br#"{"v":1,"body":{"set_ssh":{"enabled":true,"port":22}}}"#;
        assert!(decode::<Request>(extra).is_err());
        assert!(decode::<Request>(br#"{"v":1,"body":"status","x":1}"#).is_err());
    }

    #[test]
    fn password_never_shows_in_debug_or_decode_errors() {
        let request = Request::SetPassword {
            account: Account::Base,
            password: Password::new("hunter2".into()).expect("valid"),
        };
        assert!(!format!("{request:?}").contains("hunter2"));
        let wrong = br#"{"v":1,"body":{"set_password":{"account":"base","password":7}}}"#;
        let bad_account = br#"{"v":1,"body":{"set_ssh":{"enabled":"hunter2"}}}"#;
        for bytes in [&wrong[..], &bad_account[..]] {
            let err = decode::<Request>(bytes).expect_err("malformed").to_string();
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn empty_password_and_control_characters_in_names_are_refused() {
        let empty = br#"{"v":1,"body":{"set_password":{"account":"root","password":""}}}"#;
        assert!(decode::<Request>(empty).is_err());
        assert!(ClientName::new("laptop\nroot").is_err());
        assert!(ClientName::new("").is_err());
    }
}

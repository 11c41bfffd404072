//! The local control socket: root on the device opens a pairing window, lists and revokes
//! clients through it (the way back when the wrong client paired first).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::messages::{decode, encode, ClientInfo};
use crate::server::Device;
use crate::window::WindowReason;

/// Default path (systemd's `RuntimeDirectory=base-middleware`).
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/base-middleware/control.sock";

const MAX_LINE: u64 = 4096;

/// A request on the control socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    OpenPairingWindow { seconds: u32 },
    ListClients,
    RevokeClient { id: String },
}

/// The answer on the control socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlReply {
    WindowOpened { seconds: u32 },
    Clients { clients: Vec<ClientInfo> },
    Revoked,
    Refused { reason: String },
}

/// Binds the control socket (mode 0600) at `path`, replacing a stale one.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        fs::remove_file(path).with_context(|| format!("removing stale `{}`", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding `{}`", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting `{}`", path.display()))?;
    Ok(listener)
}

/// Serves the control socket: only root, or the daemon's own user, may open a window.
pub async fn serve(listener: UnixListener, device: Arc<Device>) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await.context("accepting a control connection")?;
        let device = Arc::clone(&device);
        tokio::spawn(async move {
            if let Err(err) = handle(stream, &device).await {
                log::warn!("control socket: {err:#}");
            }
        });
    }
}

async fn handle(stream: UnixStream, device: &Device) -> anyhow::Result<()> {
    let uid = stream.peer_cred().context("reading the caller's credentials")?.uid();
    let own = rustix::process::geteuid().as_raw();
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    tokio::io::BufReader::new(read.take(MAX_LINE)).read_until(b'\n', &mut line).await?;
    let reply = if uid != 0 && uid != own {
        log::warn!("control socket: refused uid {uid}");
        ControlReply::Refused { reason: "only root may use the control socket".into() }
    } else {
        match decode::<ControlRequest>(&line) {
            Ok(request) => perform(device, request),
            Err(err) => ControlReply::Refused { reason: err.to_string() },
        }
    };
    let mut out = encode(&reply);
    out.push(b'\n');
    write.write_all(&out).await.context("answering on the control socket")
}

fn perform(device: &Device, request: ControlRequest) -> ControlReply {
    match request {
        ControlRequest::OpenPairingWindow { seconds } => {
            let length = Duration::from_secs(seconds.max(1).into());
            let granted = device.open_window(length, WindowReason::OpenedLocally);
            ControlReply::WindowOpened { seconds: granted.as_secs() as u32 }
        }
        ControlRequest::ListClients => ControlReply::Clients { clients: device.clients(None) },
        ControlRequest::RevokeClient { id } => match device.revoke(&id) {
            Ok(true) => ControlReply::Revoked,
            Ok(false) => {
                ControlReply::Refused { reason: format!("no paired client has id `{id}`") }
            }
            Err(err) => ControlReply::Refused { reason: format!("{err:#}") },
        },
    }
}

/// Sends one request to the daemon's control socket at `path` and returns its answer;
/// a refusal becomes an error.
pub fn call(path: &Path, request: &ControlRequest) -> anyhow::Result<ControlReply> {
    let mut stream = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connecting to the daemon at `{}`", path.display()))?;
    let mut line = encode(request);
    line.push(b'\n');
    stream.write_all(&line).context("sending the request")?;
    let mut reply = Vec::new();
    BufReader::new((&stream).take(MAX_LINE * 64)).read_until(b'\n', &mut reply)?;
    match decode::<ControlReply>(&reply).context("reading the daemon's answer")? {
        ControlReply::Refused { reason } => bail!("the daemon refused: {reason}"),
        reply => Ok(reply),
    }
}

/// Asks the daemon at `path` to open a window; returns the seconds granted.
pub fn request_window(path: &Path, seconds: u32) -> anyhow::Result<u32> {
    match call(path, &ControlRequest::OpenPairingWindow { seconds })? {
        ControlReply::WindowOpened { seconds } => Ok(seconds),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

//! The daemon's connection handling: websocket accept, handshake, admission, pairing, API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::display::{CodeDisplay, PairingPrompt};
use crate::helper::Privileged;
use crate::keys::{PublicKey, StaticKeypair};
use crate::messages::{self, ClientInfo, ClientName, Hello, Reply, SessionState};
use crate::noise;
use crate::session::{Session, SessionError};
use crate::state::{DeviceState, PairedClient};
use crate::transport::{websocket_config, FrameStream, WS_PATH};
use crate::window::{PairingWindow, WindowReason};

/// How long a peer has to finish the Noise handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the device says about itself in `Hello` and in status.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub version: String,
}

/// Everything a connection needs: state, window, helper and code display.
pub struct Device {
    state: Mutex<DeviceState>,
    window: Mutex<PairingWindow>,
    keys: StaticKeypair,
    info: DeviceInfo,
    privileged: Arc<dyn Privileged>,
    display: Arc<dyn CodeDisplay>,
    confirm_timeout: Duration,
    paired: watch::Sender<bool>,
}

impl Device {
    /// Builds the device from loaded state and its collaborators.
    pub fn new(
        state: DeviceState,
        info: DeviceInfo,
        privileged: Arc<dyn Privileged>,
        display: Arc<dyn CodeDisplay>,
        confirm_timeout: Duration,
    ) -> Arc<Self> {
        let keys = state.keys().clone();
        let (paired, _) = watch::channel(!state.clients().is_empty());
        let window = Mutex::new(PairingWindow::default());
        let state = Mutex::new(state);
        Arc::new(Self { state, window, keys, info, privileged, display, confirm_timeout, paired })
    }

    /// The device's static public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public()
    }

    /// Name and version.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The privileged helper.
    pub fn privileged(&self) -> Arc<dyn Privileged> {
        Arc::clone(&self.privileged)
    }

    /// Follows whether any client is paired (for the mDNS announcement).
    pub fn watch_paired(&self) -> watch::Receiver<bool> {
        self.paired.subscribe()
    }

    fn state(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn window(&self) -> MutexGuard<'_, PairingWindow> {
        self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `client` is paired now (checked before every request).
    pub fn is_paired(&self, client: &PublicKey) -> bool {
        self.state().is_paired(client)
    }

    /// What a client with this key may do on connecting.
    pub fn admission(&self, client: &PublicKey) -> SessionState {
        let state = self.state();
        if state.is_paired(client) {
            return SessionState::Paired;
        }
        match self.window().reason_open(state.clients().len(), Instant::now()) {
            Some(_) => SessionState::ConfirmationRequired,
            None => SessionState::NotPaired,
        }
    }

    /// Pairs `client` if the window is still open; returns why not otherwise.
    pub fn approve(&self, client: PublicKey, name: &ClientName) -> anyhow::Result<WindowReason> {
        let mut state = self.state();
        let mut window = self.window();
        let Some(reason) = window.reason_open(state.clients().len(), Instant::now()) else {
            bail!("the pairing window closed before the pairing was confirmed");
        };
        let paired_at_unix =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let record =
            PairedClient { public_key: client, name: name.as_str().into(), paired_at_unix };
        state.add_client(record)?;
        window.close();
        self.paired.send_replace(true);
        Ok(reason)
    }

    /// Opens a pairing window for up to `length`; returns the length granted.
    pub fn open_window(&self, length: Duration, reason: WindowReason) -> Duration {
        log::info!("pairing window opened for {}s ({reason:?})", length.as_secs());
        self.window().open(length, reason, Instant::now())
    }

    /// The paired clients, marking `caller` (none when asked locally).
    pub fn clients(&self, caller: Option<&PublicKey>) -> Vec<ClientInfo> {
        let state = self.state();
        let info = |c: &PairedClient| ClientInfo {
            id: c.public_key.short_id(),
            name: c.name.clone(),
            paired_at_unix: c.paired_at_unix,
            is_caller: Some(&c.public_key) == caller,
        };
        state.clients().iter().map(info).collect()
    }

    /// Revokes the client with this id; returns whether one was found.
    pub fn revoke(&self, id: &str) -> anyhow::Result<bool> {
        let mut state = self.state();
        let revoked = state.revoke(id)?;
        if let Some(client) = &revoked {
            log::info!("revoked client {} ({})", client.public_key.short_id(), client.name);
        }
        self.paired.send_replace(!state.clients().is_empty());
        Ok(revoked.is_some())
    }
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, device: Arc<Device>) -> anyhow::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await.context("accepting a connection")?;
        let device = Arc::clone(&device);
        tokio::spawn(async move {
            match handle_connection(stream, peer, device).await {
                Ok(()) => log::info!("{peer}: connection ended"),
                Err(err) => log::warn!("{peer}: connection closed: {err:#}"),
            }
        });
    }
}

/// Only the websocket path nginx proxies is served. The signature is tungstenite's callback.
#[allow(clippy::result_large_err)]
fn check_path(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == WS_PATH {
        return Ok(response);
    }
    let mut refusal = ErrorResponse::new(Some("not found".into()));
    *refusal.status_mut() = StatusCode::NOT_FOUND;
    Err(refusal)
}

async fn handle_connection(
    stream: TcpStream,
    peer: SocketAddr,
    device: Arc<Device>,
) -> anyhow::Result<()> {
    let config = Some(websocket_config());
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, config)
        .await
        .context("websocket handshake")?;
    let mut frames = FrameStream::new(ws);
    let handshake = timeout(HANDSHAKE_TIMEOUT, noise::respond(&mut frames, &device.keys)).await;
    let established = match handshake {
        Ok(Ok(established)) => established,
        Ok(Err(err)) => {
            let err = anyhow::Error::new(err);
            frames.close(&close_reason(&err)).await;
            return Err(err);
        }
        Err(_) => {
            frames.close("noise handshake timed out").await;
            bail!("noise handshake timed out");
        }
    };
    let code = established.code;
    let mut session = Session::new(frames, established);
    let result = admit_and_serve(&mut session, peer, &device, code).await;
    if let Err(err) = &result {
        session.close(&close_reason(err)).await;
    }
    result
}

async fn admit_and_serve(
    session: &mut Session<TcpStream>,
    peer: SocketAddr,
    device: &Arc<Device>,
    code: crate::confirm::ConfirmationCode,
) -> anyhow::Result<()> {
    let client = session.remote();
    let admission = device.admission(&client);
    let hello = Hello {
        device_name: device.info.name.clone(),
        version: device.info.version.clone(),
        session: admission,
    };
    session.send(&hello).await.context("sending hello")?;
    match admission {
        SessionState::Paired => log::info!("{peer}: paired client {} connected", client.short_id()),
        SessionState::ConfirmationRequired => {
            let prompt = PairingPrompt { peer: peer.to_string(), client, code };
            device.display.show(&prompt);
            pair(session, device).await?;
        }
        SessionState::NotPaired => {
            bail!("client {} is not paired and no window is open", client.short_id())
        }
    }
    serve_api(session, device).await
}

async fn pair(session: &mut Session<TcpStream>, device: &Arc<Device>) -> anyhow::Result<()> {
    let client = session.remote();
    let request = match timeout(device.confirm_timeout, session.recv::<messages::Request>()).await {
        Ok(request) => request.map_err(describe)?,
        Err(_) => bail!("client {} did not confirm pairing in time", client.short_id()),
    };
    let messages::Request::ConfirmPairing { client_name } = request else {
        bail!("client {} sent an API request before confirming pairing", client.short_id());
    };
    match device.approve(client, &client_name) {
        Ok(reason) => {
            log::info!(
                "paired client {} ({}) via {reason:?}",
                client.short_id(),
                client_name.as_str()
            );
            let reply = Reply::Paired { client_id: client.short_id() };
            session.send(&reply).await.context("sending pairing result")?;
            Ok(())
        }
        Err(err) => {
            let reply = Reply::Refused { reason: err.to_string() };
            let _ = session.send(&reply).await;
            Err(err.context(format!("refused pairing of client {}", client.short_id())))
        }
    }
}

async fn serve_api(session: &mut Session<TcpStream>, device: &Arc<Device>) -> anyhow::Result<()> {
    let client = session.remote();
    loop {
        let request = match session.recv::<messages::Request>().await {
            Err(SessionError::Channel(noise::ChannelError::Transport(
                crate::transport::TransportError::Closed(_),
            ))) => return Ok(()),
            other => other.map_err(describe)?,
        };
        if !device.is_paired(&client) {
            bail!("client {} is no longer paired (revoked)", client.short_id());
        }
        let reply = crate::api::handle(device, client, request).await;
        session.send(&reply).await.context("sending reply")?;
    }
}

fn describe(err: SessionError) -> anyhow::Error {
    anyhow::Error::new(err).context("receiving a request")
}

fn close_reason(err: &anyhow::Error) -> String {
    let text = err.root_cause().to_string();
    text.chars().filter(char::is_ascii).take(100).collect()
}

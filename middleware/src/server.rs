//! The daemon's connection handling: websocket accept, handshake, admission, pairing, API.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::AbortHandle;
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

/// How long a peer has, from its TCP connect, to finish the websocket upgrade and the Noise
/// handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections still in their handshake at once. A new one beyond this pushes out the oldest,
/// so a flood of idle or slow connections cannot keep a real client out.
pub const MAX_PENDING: usize = 256;

/// Sessions past the handshake at once; a connection beyond this is closed.
pub const MAX_SESSIONS: usize = 64;

/// How long a session may wait for the client's next request.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Pause after a failed `accept` (out of file descriptors, for instance) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

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

/// Connections in their handshake, oldest first, so the oldest can be pushed out.
#[derive(Default)]
struct Pending {
    next_id: u64,
    queue: VecDeque<(u64, SocketAddr, AbortHandle)>,
}

/// Removes its connection from [`Pending`] when the handshake ends, however it ends.
struct PendingSlot {
    pending: Arc<Mutex<Pending>>,
    id: u64,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.queue.retain(|(id, _, _)| *id != self.id);
    }
}

/// A warning that would repeat for every connection of a flood is logged at most once a
/// second, with the number of times it happened since.
struct Throttled {
    what: &'static str,
    last: Option<Instant>,
    count: u64,
}

impl Throttled {
    const fn new(what: &'static str) -> Self {
        Self { what, last: None, count: 0 }
    }

    fn warn(&mut self, detail: &str) {
        self.count += 1;
        let now = Instant::now();
        if self.last.is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1)) {
            log::warn!("{} ({} since the last report): {detail}", self.what, self.count);
            self.last = Some(now);
            self.count = 0;
        }
    }
}

/// Accepts connections on `listener` until the task is dropped. Every connection has
/// [`HANDSHAKE_TIMEOUT`] to authenticate; at most [`MAX_PENDING`] may be trying at once and at
/// most [`MAX_SESSIONS`] may be past it.
pub async fn serve(listener: TcpListener, device: Arc<Device>) -> anyhow::Result<()> {
    let pending = Arc::new(Mutex::new(Pending::default()));
    let sessions = Arc::new(Semaphore::new(MAX_SESSIONS));
    let mut accept_failures = Throttled::new("accepting a connection failed");
    let mut pushed_out = Throttled::new("too many connections in their handshake");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                accept_failures.warn(&format!("{err}; retrying"));
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let mut queue = pending.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = if queue.queue.len() >= MAX_PENDING { queue.queue.pop_front() } else { None };
        let id = queue.next_id;
        queue.next_id += 1;
        let slot = PendingSlot { pending: Arc::clone(&pending), id };
        let (device, sessions) = (Arc::clone(&device), Arc::clone(&sessions));
        let task = tokio::spawn(async move {
            match handle_connection(stream, peer, device, slot, sessions).await {
                Ok(()) => log::info!("{peer}: connection ended"),
                Err(err) => log::warn!("{peer}: connection closed: {err:#}"),
            }
        });
        queue.queue.push_back((id, peer, task.abort_handle()));
        drop(queue);
        if let Some((_, oldest, task)) = oldest {
            task.abort();
            pushed_out.warn(&format!("closed the oldest, from {oldest}"));
        }
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
    slot: PendingSlot,
    sessions: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let config = Some(websocket_config());
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, config);
    let ws = match tokio::time::timeout_at(deadline, upgrade).await {
        Ok(ws) => ws.context("websocket handshake")?,
        Err(_) => bail!("websocket handshake timed out"),
    };
    let mut frames = FrameStream::new(ws);
    let handshake =
        tokio::time::timeout_at(deadline, noise::respond(&mut frames, &device.keys)).await;
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
    drop(slot);
    let Ok(_permit) = sessions.try_acquire_owned() else {
        frames.close("too many sessions").await;
        bail!("too many sessions ({MAX_SESSIONS}) are open");
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
        let Ok(received) = timeout(SESSION_IDLE_TIMEOUT, session.recv::<messages::Request>()).await
        else {
            bail!(
                "client {} sent nothing for {}s",
                client.short_id(),
                SESSION_IDLE_TIMEOUT.as_secs()
            );
        };
        let request = match received {
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

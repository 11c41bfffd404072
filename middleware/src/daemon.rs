//! Starting the daemon: load state, bind sockets, announce, serve until SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;

use crate::display::ConsoleDisplay;
use crate::helper::socket::HelperSocket;
use crate::mdns::{Announcement, Announcer};
use crate::server::{self, Device, DeviceInfo};
use crate::state::DeviceState;

/// How long a new client has to confirm the code.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything `base-middleware serve` is configured with.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub helper_socket: PathBuf,
    pub control_socket: Option<PathBuf>,
    pub public_port: u16,
    pub mdns: bool,
    pub console: PathBuf,
}

/// Runs the daemon on a single-threaded runtime until SIGTERM or SIGINT.
pub fn run(options: DaemonOptions) -> anyhow::Result<()> {
    if !options.listen.ip().is_loopback() {
        bail!("refusing to listen on {}: the daemon listens on loopback only", options.listen);
    }
    let state = DeviceState::open(&options.state_dir)
        .with_context(|| format!("loading state from `{}`", options.state_dir.display()))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(options, state))
}

async fn serve(options: DaemonOptions, state: DeviceState) -> anyhow::Result<()> {
    let info = DeviceInfo { name: hostname(), version: env!("CARGO_PKG_VERSION").to_string() };
    let helper = Arc::new(HelperSocket::new(&options.helper_socket));
    let display = Arc::new(ConsoleDisplay::new(options.console.clone()));
    let device = Device::new(state, info.clone(), helper, display, CONFIRM_TIMEOUT);
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    log::info!("device key {}; listening on ws://{}", device.public_key(), options.listen);
    if let Some(path) = &options.control_socket {
        let control = crate::control::bind(path)?;
        tokio::spawn(crate::control::serve(control, Arc::clone(&device)));
    }
    if options.mdns {
        tokio::spawn(announce(Arc::clone(&device), info, options.public_port));
    }
    tokio::select! {
        result = server::serve(listener, device) => result,
        signal = shutdown_signal() => signal,
    }
}

async fn announce(device: Arc<Device>, info: DeviceInfo, port: u16) {
    let mut paired = device.watch_paired();
    let announcement =
        Announcement { instance: info.name, port, version: info.version, paired: *paired.borrow() };
    let mut announcer = match Announcer::start(announcement) {
        Ok(announcer) => announcer,
        Err(err) => return log::warn!("mDNS announcement disabled: {err:#}"),
    };
    while paired.changed().await.is_ok() {
        let now = *paired.borrow();
        if let Err(err) = announcer.set_paired(now) {
            log::warn!("updating the mDNS announcement: {err:#}");
        }
    }
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => log::info!("SIGINT: stopping"),
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "baseimg".to_string())
}

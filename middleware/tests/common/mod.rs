//! Test harness: a daemon on a loopback port with a fixture system root and recorded commands.

#![allow(dead_code)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base_middleware::client::{self, Connection};
use base_middleware::display::{ChannelDisplay, PairingPrompt};
use base_middleware::helper::ops::SystemOps;
use base_middleware::helper::runner::{CommandOutput, CommandRunner, CommandSpec};
use base_middleware::keys::{PublicKey, StaticKeypair};
use base_middleware::messages::{ClientName, Reply, Request, SessionState};
use base_middleware::server::{self, Device, DeviceInfo};
use base_middleware::state::DeviceState;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;

/// One command the helper would have run.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: Option<Vec<u8>>,
}

/// Records commands instead of running them; answers `systemctl is-*` plausibly.
#[derive(Clone, Default)]
pub struct RecordingRunner(pub Arc<Mutex<Vec<Recorded>>>);

impl RecordingRunner {
    pub fn commands(&self) -> Vec<Recorded> {
        self.0.lock().expect("lock").clone()
    }
}

impl CommandRunner for RecordingRunner {
    fn run(&self, spec: &CommandSpec) -> anyhow::Result<CommandOutput> {
        let recorded = Recorded {
            program: spec.program.to_string(),
            args: spec.args.clone(),
            stdin: spec.stdin.as_ref().map(|input| input.to_vec()),
        };
        self.0.lock().expect("lock").push(recorded);
        let stdout = if spec.args.iter().any(|a| a == "is-enabled") { "disabled\n" } else { "" };
        Ok(CommandOutput { code: Some(0), stdout: stdout.into(), stderr: String::new() })
    }
}

/// Writes a minimal system tree: `base` and `root` locked, `base`'s home present.
pub fn fixture_root(dir: &Path) {
    fs::create_dir_all(dir.join("etc")).expect("etc");
    fs::create_dir_all(dir.join("home/base")).expect("home");
    let passwd = "root:x:0:0:root:/root:/bin/bash\nbase:x:1000:1000::/home/base:/bin/bash\n";
    fs::write(dir.join("etc/passwd"), passwd).expect("passwd");
    fs::write(dir.join("etc/shadow"), "root:!:19000:0:99999:7:::\nbase:!*:19000:0:99999:7:::\n")
        .expect("shadow");
}

/// A running daemon on 127.0.0.1 with its state and fixture root in temp dirs.
pub struct TestDevice {
    pub addr: SocketAddr,
    pub device: Arc<Device>,
    pub prompts: UnboundedReceiver<PairingPrompt>,
    pub runner: RecordingRunner,
    pub state_dir: PathBuf,
    pub root: PathBuf,
    task: JoinHandle<anyhow::Result<()>>,
    _dirs: Arc<TempDir>,
}

impl TestDevice {
    /// Starts a fresh device (factory state).
    pub async fn start() -> Self {
        Self::start_with(Arc::new(tempfile::tempdir().expect("temp dir")), Duration::from_secs(5))
            .await
    }

    /// Starts a device on existing dirs with a given confirmation timeout.
    pub async fn start_with(dirs: Arc<TempDir>, confirm_timeout: Duration) -> Self {
        let state_dir = dirs.path().join("state");
        let root = dirs.path().join("root");
        if !root.exists() {
            fixture_root(&root);
        }
        let state = DeviceState::open(&state_dir).expect("state opens");
        let runner = RecordingRunner::default();
        let ops = Arc::new(SystemOps::new(&root, Box::new(runner.clone())));
        let (sender, prompts) = unbounded_channel();
        let info = DeviceInfo { name: "testbase".into(), version: "0.0.test".into() };
        let display = Arc::new(ChannelDisplay(sender));
        let device = Device::new(state, info, ops, display, confirm_timeout);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(server::serve(listener, Arc::clone(&device)));
        Self { addr, device, prompts, runner, state_dir, root, task, _dirs: dirs }
    }

    /// Stops the daemon, keeping its directories for a restart.
    pub fn stop(self) -> Arc<TempDir> {
        self.task.abort();
        self._dirs
    }

    pub fn url(&self) -> String {
        format!("ws://{}/api/ws", self.addr)
    }

    /// Opens a connection as `identity`.
    pub async fn connect(
        &self,
        identity: &StaticKeypair,
        pinned: Option<PublicKey>,
    ) -> anyhow::Result<Connection<TcpStream>> {
        let stream = TcpStream::connect(self.addr).await?;
        let frames = client::websocket(stream, &self.url()).await?;
        Connection::open(frames, identity, pinned).await
    }

    /// Pairs `identity` with the code check a user would do; returns the open connection.
    pub async fn pair(&mut self, identity: &StaticKeypair, name: &str) -> Connection<TcpStream> {
        let mut conn = self.connect(identity, None).await.expect("connects");
        assert_eq!(conn.hello().session, SessionState::ConfirmationRequired);
        let prompt = self.next_prompt().await;
        assert_eq!(prompt.client, identity.public());
        assert_eq!(prompt.code, conn.code(), "device and client codes differ");
        let name = ClientName::new(name).expect("valid name");
        conn.confirm_pairing(name).await.expect("pairing confirmed");
        conn
    }

    pub async fn next_prompt(&mut self) -> PairingPrompt {
        tokio::time::timeout(Duration::from_secs(5), self.prompts.recv())
            .await
            .expect("a prompt in time")
            .expect("display channel open")
    }
}

pub fn identity() -> StaticKeypair {
    StaticKeypair::generate().expect("random source")
}

/// Sends a request and expects the connection to be closed; returns the error text.
pub async fn expect_closed(conn: &mut Connection<TcpStream>, request: Request) -> String {
    match conn.request(request).await {
        Ok(reply) => panic!("expected the connection to close, got {reply:?}"),
        Err(err) => format!("{err:#}"),
    }
}

/// Sends a request and expects a successful reply other than `Failed`.
pub async fn expect_reply(conn: &mut Connection<TcpStream>, request: Request) -> Reply {
    let reply = conn.request(request).await.expect("a reply");
    if let Reply::Failed { message } = &reply {
        panic!("request failed: {message}");
    }
    reply
}

/// Arguments of `base-middleware serve` on loopback `port`, with its state, sockets and
/// console under `dir` (the console path does not exist, so codes go to the log only).
pub fn serve_args(dir: &Path, port: u16) -> Vec<std::ffi::OsString> {
    let listen = format!("127.0.0.1:{port}");
    let mut args: Vec<std::ffi::OsString> =
        ["serve", "--no-mdns", "--listen", &listen].iter().map(Into::into).collect();
    for (flag, name) in [
        ("--state-dir", "state"),
        ("--helper-socket", "helper.sock"),
        ("--control-socket", "control.sock"),
        ("--console", "no-console/console"),
    ] {
        args.push(flag.into());
        args.push(dir.join(name).into());
    }
    args
}

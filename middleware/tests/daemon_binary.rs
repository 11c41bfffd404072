//! The real `base-middleware` binary, reached over loopback, with the real helper binary
//! behind a unix socket that is served the way systemd's `Accept=yes` does.

mod common;

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base_middleware::client::{self, Connection};
use base_middleware::messages::{ClientName, Reply, Request, SessionState};
use common::identity;
use tokio::net::TcpStream;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0TN8xJmSVyQoC3eZlsVxQhQCnY6rZtKxm6hp+4jGfK bin";

/// Serves `socket` like `base-middleware-helper.socket`: one helper process per connection.
fn serve_helper_socket(socket: &Path, root: PathBuf) {
    let listener = UnixListener::bind(socket).expect("helper socket binds");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.expect("accepted");
            let input = OwnedFd::from(stream.try_clone().expect("cloned"));
            Command::new(env!("CARGO_BIN_EXE_base-middleware-helper"))
                .arg("--root")
                .arg(&root)
                .stdin(Stdio::from(input))
                .stdout(Stdio::from(OwnedFd::from(stream)))
                .status()
                .expect("helper runs");
        }
    });
}

struct Daemon {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn start_daemon(dir: &Path) -> Daemon {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_base-middleware"))
        .args(common::serve_args(dir, port))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon starts");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    Daemon { child, port, lines }
}

async fn connect(port: u16, me: &base_middleware::keys::StaticKeypair) -> Connection<TcpStream> {
    for _ in 0..100 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            let url = format!("ws://127.0.0.1:{port}/api/ws");
            let frames = client::websocket(stream, &url).await.expect("websocket");
            return Connection::open(frames, me, None).await.expect("handshake");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the daemon did not listen on port {port}");
}

#[tokio::test]
async fn daemon_binary_shows_the_code_pairs_and_reaches_the_helper_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    common::fixture_root(&root);
    serve_helper_socket(&dir.path().join("helper.sock"), root.clone());
    let daemon = start_daemon(dir.path());

    let me = identity();
    let mut conn = connect(daemon.port, &me).await;
    assert_eq!(conn.hello().session, SessionState::ConfirmationRequired);
    // Blocking here is fine: the daemon is another process and this runtime has no tasks.
    let line = daemon.lines.recv_timeout(Duration::from_secs(5)).expect("the code is shown");
    assert!(line.ends_with(&format!("confirmation code {}", conn.code())), "{line}");

    conn.confirm_pairing(ClientName::new("bin").expect("valid")).await.expect("paired");
    let add = Request::AddSshKey { key: KEY.into() };
    assert_eq!(conn.request(add).await.expect("reply"), Reply::Done);
    let written = std::fs::read_to_string(root.join("home/base/.ssh/authorized_keys"));
    assert!(written.expect("key file").contains("AAAAC3NzaC1lZDI1NTE5"));
}

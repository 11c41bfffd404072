//! The real daemon binary under a connection flood on loopback, with the file-descriptor limit
//! of a systemd service (1024): thousands of idle connections, garbage senders, stalled
//! websocket upgrades and oversized frames. Its memory stays bounded, it keeps running, it
//! logs what it cut off, and a paired client still gets through while the flood is open.
//! Every loop is bounded in count and time. `BASE_MW_FLOOD_IDLE` changes the number of idle
//! connections (flood-bench.sh uses it for bigger figures).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base_middleware::client::{self, Connection};
use base_middleware::keys::StaticKeypair;
use base_middleware::messages::{ClientName, Reply, Request, SessionState};
use base_middleware::server::HANDSHAKE_TIMEOUT;
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The daemon may grow by at most this much under the flood.
const RSS_BOUND_KIB: u64 = 64 * 1024;

struct Daemon {
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon(dir: &Path) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let log = std::fs::File::create(dir.join("daemon.log")).expect("log file");
    let child = Command::new("prlimit")
        .arg("--nofile=1024:1024")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_base-middleware"))
        .args(common::serve_args(dir, port))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("daemon starts");
    Daemon { child, port }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon alive");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number")
}

async fn open(port: u16, me: &StaticKeypair) -> anyhow::Result<Connection<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let frames = client::websocket(stream, &format!("ws://127.0.0.1:{port}/api/ws")).await?;
    Connection::open(frames, me, None).await
}

async fn pair(port: u16, me: &StaticKeypair) {
    for _ in 0..100 {
        if let Ok(mut conn) = open(port, me).await {
            assert_eq!(conn.hello().session, SessionState::ConfirmationRequired);
            conn.confirm_pairing(ClientName::new("flood").expect("name")).await.expect("paired");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the daemon did not answer on port {port}");
}

/// Connects and sends junk until `stop`, reconnecting whenever the daemon closes.
async fn garbage_sender(port: u16, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let junk: Vec<u8> = (0..16384u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else { continue };
        for _ in 0..8 {
            if stream.write_all(&junk).await.is_err() {
                break;
            }
            sent.fetch_add(junk.len() as u64, Ordering::Relaxed);
        }
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut sink)).await;
    }
}

/// Upgrades to a websocket and sends one frame far over the limit.
async fn oversized_frame(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else { return false };
    let url = format!("ws://127.0.0.1:{port}/api/ws");
    let Ok((mut ws, _)) = tokio_tungstenite::client_async(url, stream).await else { return false };
    let _ = ws.send(Message::Binary(vec![0x41; 1 << 20].into())).await;
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_keeps_memory_bounded_and_a_paired_client_gets_through() {
    let idle_count: usize =
        std::env::var("BASE_MW_FLOOD_IDLE").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = start_daemon(dir.path());
    let (port, pid) = (daemon.port, daemon.child.id());
    let me = StaticKeypair::generate().expect("random");
    pair(port, &me).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid);

    let started = Instant::now();
    let mut idle = Vec::with_capacity(idle_count);
    for _ in 0..idle_count {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => idle.push(stream),
            Err(err) => panic!("connection {} failed: {err}", idle.len()),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..32)
        .map(|_| tokio::spawn(garbage_sender(port, Arc::clone(&stop), Arc::clone(&sent))))
        .collect();
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let url = format!("ws://127.0.0.1:{port}/api/ws");
        if let Ok((ws, _)) = tokio_tungstenite::client_async(url, stream).await {
            stalled.push(ws);
        }
    }
    let mut oversized = 0;
    for _ in 0..20 {
        oversized += usize::from(oversized_frame(port).await);
    }

    // The paired client, while every flood connection is still open.
    let mut rss_peak = rss_kib(pid);
    let reached = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(mut conn) = open(port, &me).await {
                assert_eq!(conn.hello().session, SessionState::Paired);
                return conn.request(Request::ListClients).await.expect("reply");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the paired client got no answer within 20 s of the flood");
    let through_ms = reached.elapsed().as_millis();
    assert!(matches!(reply, Reply::Clients { .. }), "{reply:?}");
    for _ in 0..10 {
        rss_peak = rss_peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        let _ = tokio::time::timeout(Duration::from_secs(5), sender).await;
    }
    let flood_secs = started.elapsed().as_secs_f64();
    drop((idle, stalled));

    // A stalled handshake on a quiet daemon is closed by the timeout.
    let mut late = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut buf = [0u8; 16];
    let waited = Instant::now();
    let closed =
        tokio::time::timeout(HANDSHAKE_TIMEOUT + Duration::from_secs(3), late.read(&mut buf))
            .await
            .expect("a stalled connection outlived the handshake timeout");
    assert!(matches!(closed, Ok(0) | Err(_)), "the daemon sent data to a silent peer");
    let stall_closed_secs = waited.elapsed().as_secs_f64();
    let rss_after = rss_kib(pid);

    let mut daemon = daemon;
    assert!(daemon.child.try_wait().expect("wait").is_none(), "the daemon died in the flood");
    // The daemon logs a closed connection just after closing it: give it a moment.
    let wanted =
        ["too many connections in their handshake", "websocket handshake", "handshake timed out"];
    let mut log = String::new();
    for _ in 0..50 {
        log = std::fs::read_to_string(dir.path().join("daemon.log")).expect("log");
        if wanted.iter().all(|w| log.contains(w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "flood_idle_connections={idle_count} flood_garbage_mib={:.1} flood_stalled={} \
         flood_oversized={oversized} flood_seconds={flood_secs:.1} \
         paired_client_through_ms={through_ms} rss_kib_before={rss_before} \
         rss_kib_peak={rss_peak} rss_kib_after={rss_after} stall_closed_s={stall_closed_secs:.1}",
        sent.load(Ordering::Relaxed) as f64 / 1048576.0,
        100,
    );
    assert!(
        rss_peak < rss_before + RSS_BOUND_KIB,
        "memory grew from {rss_before} KiB to {rss_peak} KiB"
    );
    for logged in wanted {
        assert!(log.contains(logged), "the log does not mention `{logged}`:\n{}", tail(&log));
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

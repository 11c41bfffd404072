//! Measures, on loopback with an in-process daemon: time from TCP connect to paired, and
//! requests per second on one paired channel. Run by `bench.sh`; prints `name=value` lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base_middleware::client::{self, Connection};
use base_middleware::display::{CodeDisplay, PairingPrompt};
use base_middleware::helper::ops::SystemOps;
use base_middleware::helper::runner::{CommandOutput, CommandRunner, CommandSpec};
use base_middleware::keys::StaticKeypair;
use base_middleware::messages::{ClientName, Request};
use base_middleware::server::{self, Device, DeviceInfo};
use base_middleware::state::DeviceState;
use tokio::net::{TcpListener, TcpStream};

const PAIRINGS: usize = 50;
const REQUEST_SECONDS: u64 = 3;

struct Silent;

impl CodeDisplay for Silent {
    fn show(&self, _prompt: &PairingPrompt) {}
}

struct NoCommands;

impl CommandRunner for NoCommands {
    fn run(&self, _spec: &CommandSpec) -> anyhow::Result<CommandOutput> {
        Ok(CommandOutput { code: Some(0), ..CommandOutput::default() })
    }
}

async fn fresh_device(dir: &std::path::Path) -> anyhow::Result<std::net::SocketAddr> {
    let state = DeviceState::open(&dir.join("state"))?;
    let ops = Arc::new(SystemOps::new(dir, Box::new(NoCommands)));
    let info = DeviceInfo { name: "bench".into(), version: "bench".into() };
    let device = Device::new(state, info, ops, Arc::new(Silent), Duration::from_secs(10));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(server::serve(listener, device));
    Ok(addr)
}

async fn pair(addr: std::net::SocketAddr) -> anyhow::Result<(Duration, Connection<TcpStream>)> {
    let identity = StaticKeypair::generate()?;
    let start = Instant::now();
    let stream = TcpStream::connect(addr).await?;
    let frames = client::websocket(stream, &format!("ws://{addr}/api/ws")).await?;
    let mut conn = Connection::open(frames, &identity, None).await?;
    conn.confirm_pairing(ClientName::new("bench").map_err(anyhow::Error::msg)?).await?;
    Ok((start.elapsed(), conn))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..PAIRINGS {
        let dir = tempfile::tempdir()?;
        let addr = fresh_device(dir.path()).await?;
        let (elapsed, conn) = pair(addr).await?;
        times.push(elapsed);
        last = Some((conn, dir));
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("pairings={PAIRINGS}");
    println!("pair_ms_median={:.2}", ms(times[PAIRINGS / 2]));
    println!("pair_ms_p90={:.2}", ms(times[PAIRINGS * 9 / 10]));

    let (mut conn, _dir) = last.expect("at least one pairing");
    let deadline = Instant::now() + Duration::from_secs(REQUEST_SECONDS);
    let mut count = 0u64;
    while Instant::now() < deadline {
        conn.request(Request::ListClients).await?;
        count += 1;
    }
    println!("requests_per_second={}", count / REQUEST_SECONDS);
    Ok(())
}

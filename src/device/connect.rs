//! Device addresses and how to reach them: TLS through nginx, or plain websocket for tests.

use std::sync::Arc;

use anyhow::{bail, Context};
use base_middleware::client::{self, Connection};
use base_middleware::keys::{PublicKey, StaticKeypair};
use base_middleware::transport::WS_PATH;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream to a device, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open connection, whatever the transport.
pub type DeviceConnection = Connection<Box<dyn Io>>;

/// A parsed device address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// Parses `host`, `host:port`, `[v6]:port`, or a `ws://` / `wss://` URL.
    pub fn parse(addr: &str) -> anyhow::Result<Self> {
        let (tls, rest) = match addr.split_once("://") {
            Some(("wss", rest)) => (true, rest),
            Some(("ws", rest)) => (false, rest),
            Some((scheme, _)) => bail!("unsupported scheme `{scheme}` (use wss:// or ws://)"),
            None => (true, addr),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].to_string()),
            None => (rest, WS_PATH.to_string()),
        };
        let (host, port) = split_port(authority, if tls { 443 } else { 80 })?;
        if host.is_empty() {
            bail!("no host in address `{addr}`");
        }
        Ok(Self { tls, host, port, path })
    }

    /// The websocket URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

fn split_port(authority: &str, default: u16) -> anyhow::Result<(String, u16)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').context("unclosed `[` in address")?;
        let port = match rest.strip_prefix(':') {
            Some(port) => port.parse().with_context(|| format!("bad port `{port}`"))?,
            None => default,
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse().with_context(|| format!("bad port `{port}`"))?;
            Ok((host.to_string(), port))
        }
        None => Ok((authority.to_string(), default)),
    }
}

/// Connects, opens the websocket and runs the Noise handshake (pinned if `pinned`).
pub async fn open(
    endpoint: &Endpoint,
    identity: &StaticKeypair,
    pinned: Option<PublicKey>,
) -> anyhow::Result<DeviceConnection> {
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .with_context(|| format!("connecting to {}:{}", endpoint.host, endpoint.port))?;
    let stream: Box<dyn Io> =
        if endpoint.tls { Box::new(tls_connect(endpoint, tcp).await?) } else { Box::new(tcp) };
    let frames = client::websocket(stream, &endpoint.url()).await?;
    Connection::open(frames, identity, pinned).await
}

async fn tls_connect(
    endpoint: &Endpoint,
    tcp: TcpStream,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(super::tls::client_config()?));
    let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
        .with_context(|| format!("`{}` is not a valid TLS server name", endpoint.host))?;
    connector
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {}", endpoint.host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_means_tls_on_port_443_and_the_api_path() {
        let endpoint = Endpoint::parse("base.local").expect("parses");
        assert_eq!(endpoint.url(), "wss://base.local:443/api/ws");
    }

    #[test]
    fn plain_websocket_url_keeps_its_port_and_path() {
        let endpoint = Endpoint::parse("ws://127.0.0.1:8845/api/ws").expect("parses");
        assert!(!endpoint.tls);
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("127.0.0.1", 8845));
    }

    #[test]
    fn ipv6_address_with_port_round_trips() {
        let endpoint = Endpoint::parse("[fe80::1]:8443").expect("parses");
        assert_eq!(endpoint.url(), "wss://[fe80::1]:8443/api/ws");
    }

    #[test]
    fn unknown_scheme_is_refused() {
        assert!(Endpoint::parse("http://base.local").is_err());
    }
}

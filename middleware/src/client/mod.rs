//! The owner's side: open a channel to a device, pair with a confirmed code, send requests.

pub mod store;

use anyhow::{bail, Context};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::confirm::ConfirmationCode;
use crate::keys::{PublicKey, StaticKeypair};
use crate::messages::{ClientName, Hello, Reply, Request, SessionState};
use crate::noise;
use crate::session::Session;
use crate::transport::{websocket_config, FrameStream};

/// Performs the websocket client handshake for `url` (`ws://host:port/api/ws`) on `stream`.
pub async fn websocket<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &str,
) -> anyhow::Result<FrameStream<S>> {
    let config = Some(websocket_config());
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, config)
        .await
        .with_context(|| format!("opening the websocket `{url}`"))?;
    Ok(FrameStream::new(ws))
}

/// An open, encrypted connection to a device.
pub struct Connection<S> {
    session: Session<S>,
    hello: Hello,
    code: ConfirmationCode,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Runs the handshake as `identity`; with `pinned`, refuses any other device key
    /// before revealing ours. Reads the device's `Hello`.
    pub async fn open(
        mut frames: FrameStream<S>,
        identity: &StaticKeypair,
        pinned: Option<PublicKey>,
    ) -> anyhow::Result<Self> {
        let established = noise::initiate(&mut frames, identity, pinned).await?;
        let code = established.code;
        let mut session = Session::new(frames, established);
        let hello: Hello = session.recv().await.context("reading the device's hello")?;
        Ok(Self { session, hello, code })
    }

    /// The device's greeting, including what it makes of this client.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The code to compare with the device's console.
    pub fn code(&self) -> ConfirmationCode {
        self.code
    }

    /// The device's static key, to pin after pairing.
    pub fn device_key(&self) -> PublicKey {
        self.session.remote()
    }

    /// Tells the device the user confirmed the code; returns this client's id on success.
    pub async fn confirm_pairing(&mut self, name: ClientName) -> anyhow::Result<String> {
        if self.hello.session != SessionState::ConfirmationRequired {
            bail!("the device does not offer pairing on this connection");
        }
        match self.request(Request::ConfirmPairing { client_name: name }).await? {
            Reply::Paired { client_id } => {
                self.hello.session = SessionState::Paired;
                Ok(client_id)
            }
            Reply::Refused { reason } => bail!("the device refused pairing: {reason}"),
            other => bail!("unexpected answer to pairing: {other:?}"),
        }
    }

    /// Sends one request and waits for its reply.
    pub async fn request(&mut self, request: Request) -> anyhow::Result<Reply> {
        self.session.send(&request).await.context("sending the request")?;
        self.session.recv().await.context("reading the device's reply")
    }

    /// The underlying session, for tests that misbehave on purpose.
    pub fn session_mut(&mut self) -> &mut Session<S> {
        &mut self.session
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        self.session.close("done").await;
    }
}

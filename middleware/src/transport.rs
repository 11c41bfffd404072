//! Websocket framing: one binary websocket message carries one Noise message.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// The largest Noise message; bigger websocket messages are refused by the codec.
pub const MAX_FRAME_LEN: usize = 65535;

/// The websocket path that nginx proxies to the daemon.
pub const WS_PATH: &str = "/api/ws";

/// Why a frame could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer closed the connection, with the reason it gave.
    #[error("the peer closed the connection ({0})")]
    Closed(String),
    /// A text message arrived where only binary Noise frames are allowed.
    #[error("unexpected text message on the websocket")]
    TextMessage,
    /// The websocket layer failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
}

/// Websocket settings shared by both ends: small messages, no fragmentation surprises.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_LEN))
        .max_frame_size(Some(MAX_FRAME_LEN))
}

fn closed(frame: Option<CloseFrame>) -> TransportError {
    let reason = frame.map(|f| f.reason.to_string()).filter(|reason| !reason.is_empty());
    TransportError::Closed(reason.unwrap_or_else(|| "no reason given".into()))
}

/// A websocket seen as a stream of binary frames.
pub struct FrameStream<S> {
    ws: WebSocketStream<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> FrameStream<S> {
    /// Wraps an established websocket.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self { ws }
    }

    /// Sends one frame as one binary message.
    pub async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.ws.send(Message::Binary(frame.into())).await?;
        Ok(())
    }

    /// Receives the next binary frame; pings and pongs are handled underneath.
    pub async fn recv(&mut self) -> Result<Vec<u8>, TransportError> {
        loop {
            match self.ws.next().await {
                None => return Err(TransportError::Closed("no close message".into())),
                Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                Some(Ok(Message::Binary(bytes))) => return Ok(bytes.to_vec()),
                Some(Ok(Message::Text(_))) => return Err(TransportError::TextMessage),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Err(err)) => return Err(err.into()),
            }
        }
    }

    /// Closes the websocket with a policy-violation code; errors are ignored on purpose
    /// because the peer may already be gone.
    pub async fn close(&mut self, reason: &str) {
        let frame = CloseFrame { code: CloseCode::Policy, reason: reason.to_string().into() };
        let _ = self.ws.close(Some(frame)).await;
    }
}

//! An established encrypted session: typed messages over sealed frames.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::keys::PublicKey;
use crate::messages::{self, DecodeError};
use crate::noise::{ChannelError, Established, SecureChannel};
use crate::transport::FrameStream;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Frames plus the Noise channel and the identity of the other end.
pub struct Session<S> {
    frames: FrameStream<S>,
    channel: SecureChannel,
    remote: PublicKey,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Joins the frame stream with the channel a handshake produced on it.
    pub fn new(frames: FrameStream<S>, established: Established) -> Self {
        Self { frames, channel: established.channel, remote: established.remote }
    }

    /// The other end's static key.
    pub fn remote(&self) -> PublicKey {
        self.remote
    }

    /// Encrypts and sends one message.
    pub async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), SessionError> {
        let frame = self.channel.seal(&messages::encode(message))?;
        self.frames.send(frame).await.map_err(ChannelError::from)?;
        Ok(())
    }

    /// Receives, authenticates and decodes one message.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, SessionError> {
        let frame = self.frames.recv().await.map_err(ChannelError::from)?;
        let plaintext = self.channel.open(&frame)?;
        Ok(messages::decode(&plaintext)?)
    }

    /// Sends a raw, already sealed frame; used by tests that tamper with frames.
    pub async fn send_raw_frame(&mut self, frame: Vec<u8>) -> Result<(), SessionError> {
        self.frames.send(frame).await.map_err(ChannelError::from)?;
        Ok(())
    }

    /// Seals a message without sending it; used by tests that replay or alter frames.
    pub fn seal_message<T: Serialize>(&mut self, message: &T) -> Result<Vec<u8>, SessionError> {
        Ok(self.channel.seal(&messages::encode(message))?)
    }

    /// Seals arbitrary plaintext bytes; used by tests that send malformed messages.
    pub fn seal_bytes(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        Ok(self.channel.seal(plaintext)?)
    }

    /// Closes the websocket, telling the peer a short reason.
    pub async fn close(&mut self, reason: &str) {
        self.frames.close(reason).await;
    }
}

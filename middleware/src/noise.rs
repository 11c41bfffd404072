//! The Noise XX handshake and the encrypted channel that follows it, one state per connection.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::confirm::ConfirmationCode;
use crate::keys::{PublicKey, StaticKeypair};
use crate::transport::{FrameStream, TransportError, MAX_FRAME_LEN};

/// The Noise protocol name; both ends must use exactly this.
pub const NOISE_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_SHA256";

/// Prologue mixed into the handshake hash: binds it to this protocol and version.
pub const PROLOGUE: &[u8] = b"baseimg-middleware/1";

const TAG_LEN: usize = 16;

/// The largest plaintext one encrypted frame can carry.
pub const MAX_PLAINTEXT_LEN: usize = MAX_FRAME_LEN - TAG_LEN;

/// Why the handshake or the channel failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The Noise state machine refused a message (bad key, bad tag, wrong order).
    #[error("noise handshake failed: {0}")]
    Handshake(snow::Error),
    /// A transport frame did not authenticate: tampered, replayed or reordered.
    #[error("frame failed authentication (tampered, replayed or reordered)")]
    Authentication,
    /// A plaintext was larger than one frame can carry.
    #[error("message of {0} bytes exceeds the frame limit")]
    TooLarge(usize),
    /// The remote static key was not the one expected.
    #[error("the device's key {found} differs from the paired key {expected}")]
    UnexpectedRemoteKey { expected: PublicKey, found: PublicKey },
    /// The frame layer failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A finished handshake: the channel, who is on the other side and the code to compare.
pub struct Established {
    pub channel: SecureChannel,
    pub remote: PublicKey,
    pub code: ConfirmationCode,
}

/// Runs the responder (device) side of Noise XX on `frames`.
pub async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    frames: &mut FrameStream<S>,
    keys: &StaticKeypair,
) -> Result<Established, ChannelError> {
    let mut state = builder(keys)?.build_responder().map_err(ChannelError::Handshake)?;
    read_handshake(&mut state, &frames.recv().await?)?;
    frames.send(write_handshake(&mut state)?).await?;
    read_handshake(&mut state, &frames.recv().await?)?;
    finish(state)
}

/// Runs the initiator (client) side; `expected` pins the device key before ours is sent.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    frames: &mut FrameStream<S>,
    keys: &StaticKeypair,
    expected: Option<PublicKey>,
) -> Result<Established, ChannelError> {
    let mut state = builder(keys)?.build_initiator().map_err(ChannelError::Handshake)?;
    frames.send(write_handshake(&mut state)?).await?;
    read_handshake(&mut state, &frames.recv().await?)?;
    if let Some(expected) = expected {
        let found = remote_key(state.get_remote_static())?;
        if found != expected {
            return Err(ChannelError::UnexpectedRemoteKey { expected, found });
        }
    }
    frames.send(write_handshake(&mut state)?).await?;
    finish(state)
}

fn builder(keys: &StaticKeypair) -> Result<snow::Builder<'_>, ChannelError> {
    let params = NOISE_PATTERN.parse().map_err(ChannelError::Handshake)?;
    snow::Builder::new(params)
        .local_private_key(keys.private_bytes())
        .and_then(|builder| builder.prologue(PROLOGUE))
        .map_err(ChannelError::Handshake)
}

fn write_handshake(state: &mut snow::HandshakeState) -> Result<Vec<u8>, ChannelError> {
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let len = state.write_message(&[], &mut buf).map_err(ChannelError::Handshake)?;
    buf.truncate(len);
    Ok(buf)
}

fn read_handshake(state: &mut snow::HandshakeState, frame: &[u8]) -> Result<(), ChannelError> {
    let mut payload = vec![0u8; MAX_FRAME_LEN];
    let len = state.read_message(frame, &mut payload).map_err(ChannelError::Handshake)?;
    if len != 0 {
        return Err(ChannelError::Handshake(snow::Error::Input));
    }
    Ok(())
}

fn remote_key(bytes: Option<&[u8]>) -> Result<PublicKey, ChannelError> {
    bytes.and_then(PublicKey::from_slice).ok_or(ChannelError::Handshake(snow::Error::Input))
}

fn finish(state: snow::HandshakeState) -> Result<Established, ChannelError> {
    let code = ConfirmationCode::from_handshake_hash(state.get_handshake_hash());
    let remote = remote_key(state.get_remote_static())?;
    let transport = state.into_transport_mode().map_err(ChannelError::Handshake)?;
    Ok(Established { channel: SecureChannel { transport }, remote, code })
}

/// Encrypts and authenticates frames after the handshake; nonces make replays fail.
pub struct SecureChannel {
    transport: snow::TransportState,
}

impl SecureChannel {
    /// Encrypts one plaintext into one frame.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(ChannelError::TooLarge(plaintext.len()));
        }
        let mut frame = vec![0u8; plaintext.len() + TAG_LEN];
        let len = self
            .transport
            .write_message(plaintext, &mut frame)
            .map_err(|_| ChannelError::TooLarge(plaintext.len()))?;
        frame.truncate(len);
        Ok(frame)
    }

    /// Decrypts one frame; any tampering, replay or reordering fails authentication.
    pub fn open(&mut self, frame: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut plaintext = vec![0u8; frame.len()];
        let len = self
            .transport
            .read_message(frame, &mut plaintext)
            .map_err(|_| ChannelError::Authentication)?;
        plaintext.truncate(len);
        Ok(plaintext)
    }
}

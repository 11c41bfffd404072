//! Runtime service of a baseimg appliance: discovery, pairing and the management API.
//!
//! Where things live:
//! - [`keys`]: Curve25519 static keys of the device and of clients.
//! - [`transport`]: websocket framing (one binary message per Noise message).
//! - [`noise`]: the Noise XX handshake and the encrypted channel.
//! - [`confirm`]: the six-digit confirmation code derived from the handshake hash.
//! - [`messages`]: typed, versioned requests and replies, and their strict codec.
//! - [`session`]: typed messages over an established channel.
//! - [`fsutil`]: private files, atomic writes, permission checks.
//! - [`state`]: the daemon's state directory (device key, paired clients).
//! - [`window`]: pairing window rules.
//! - [`display`]: showing the confirmation code on the device (console and journal).
//! - [`server`]: the daemon: accepting connections, pairing, serving the API.
//! - [`api`]: what each API request does on the device.
//! - [`control`]: the local root-only control socket (open a pairing window).
//! - [`daemon`]: starting the daemon (state, sockets, mDNS, signals).
//! - [`mdns`]: announcing and discovering devices.
//! - [`helper`]: the privileged helper's fixed operations and how the daemon reaches it.
//! - [`client`]: the owner's side: connect, pair, request; and its key store.

pub mod api;
pub mod client;
pub mod confirm;
pub mod control;
pub mod daemon;
pub mod display;
pub mod fsutil;
pub mod helper;
pub mod keys;
pub mod mdns;
pub mod messages;
pub mod noise;
pub mod server;
pub mod session;
pub mod state;
pub mod transport;
pub mod window;

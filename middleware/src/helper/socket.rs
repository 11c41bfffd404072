//! One request, one reply: the daemon's side of the helper socket and the helper's stdio side.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use super::ops::SystemOps;
use super::{HelperReply, HelperRequest, Privileged, MAX_REQUEST_LEN};
use crate::messages::{decode, encode};

const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// The daemon's handle on the helper socket.
pub struct HelperSocket {
    path: PathBuf,
}

impl HelperSocket {
    /// A handle on the socket at `path`; nothing is opened until a call.
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf() }
    }
}

impl Privileged for HelperSocket {
    fn call(&self, request: &HelperRequest) -> anyhow::Result<HelperReply> {
        let shown = self.path.display();
        let mut stream = UnixStream::connect(&self.path)
            .with_context(|| format!("connecting to the helper at `{shown}`"))?;
        stream.set_read_timeout(Some(HELPER_TIMEOUT)).context("setting a helper timeout")?;
        let mut line = encode(request);
        line.push(b'\n');
        stream.write_all(&line).with_context(|| format!("writing to `{shown}`"))?;
        stream.shutdown(std::net::Shutdown::Write).context("finishing the helper request")?;
        let mut reply = Vec::new();
        stream
            .take(MAX_REQUEST_LEN as u64 * 16)
            .read_to_end(&mut reply)
            .with_context(|| format!("reading the helper's reply from `{shown}`"))?;
        decode(&reply).context("decoding the helper's reply")
    }
}

/// Serves one request read from `input` and writes the reply to `output` (the helper
/// binary passes the socket systemd handed it as stdin and stdout).
pub fn serve_one(ops: &SystemOps, input: impl Read, mut output: impl Write) -> anyhow::Result<()> {
    let request = read_request(input)?;
    log::info!("helper request: {}", request.name());
    let reply = ops.handle(&request);
    if let HelperReply::Failed { message } = &reply {
        log::warn!("helper request {} failed: {message}", request.name());
    }
    let mut line = encode(&reply);
    line.push(b'\n');
    output.write_all(&line).context("writing the reply")?;
    output.flush().context("writing the reply")
}

fn read_request(input: impl Read) -> anyhow::Result<HelperRequest> {
    let mut line = Vec::new();
    let limit = MAX_REQUEST_LEN as u64 + 1;
    BufReader::new(input.take(limit))
        .read_until(b'\n', &mut line)
        .context("reading the request")?;
    if line.len() > MAX_REQUEST_LEN {
        bail!("request longer than {MAX_REQUEST_LEN} bytes refused");
    }
    decode(&line).context("refusing the request")
}

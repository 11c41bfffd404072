//! Showing a pairing request's confirmation code on the device: console and journal.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use tokio::sync::mpsc::UnboundedSender;

use crate::confirm::ConfirmationCode;
use crate::keys::PublicKey;

/// A pending pairing the device owner must compare with the client's screen.
#[derive(Debug, Clone)]
pub struct PairingPrompt {
    pub peer: String,
    pub client: PublicKey,
    pub code: ConfirmationCode,
}

impl PairingPrompt {
    /// The line shown to the person at the device.
    pub fn line(&self) -> String {
        format!(
            "base-middleware: pairing request from {} (client {}): confirmation code {}",
            self.peer,
            self.client.short_id(),
            self.code
        )
    }
}

/// Where the device shows confirmation codes.
pub trait CodeDisplay: Send + Sync {
    /// Shows one prompt.
    fn show(&self, prompt: &PairingPrompt);
}

/// Writes to the console device if it can be opened, else to stdout (which the systemd
/// unit sends to journal and console); always logs to stderr, which the journal keeps.
pub struct ConsoleDisplay {
    console: PathBuf,
}

impl ConsoleDisplay {
    /// Shows codes on `console` (normally `/dev/console`).
    pub fn new(console: PathBuf) -> Self {
        Self { console }
    }
}

impl CodeDisplay for ConsoleDisplay {
    fn show(&self, prompt: &PairingPrompt) {
        let line = prompt.line();
        log::info!("{line}");
        let on_console = OpenOptions::new()
            .write(true)
            .open(&self.console)
            .and_then(|mut console| writeln!(console, "\r\n{line}\r"));
        if on_console.is_err() {
            println!("{line}");
        }
    }
}

/// Sends prompts to a channel; tests read the device-side code from it.
pub struct ChannelDisplay(pub UnboundedSender<PairingPrompt>);

impl CodeDisplay for ChannelDisplay {
    fn show(&self, prompt: &PairingPrompt) {
        log::info!("{}", prompt.line());
        let _ = self.0.send(prompt.clone());
    }
}

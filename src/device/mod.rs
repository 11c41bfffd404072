//! `baseimg device`: the owner's client for a running appliance (discover, pair, manage).

mod commands;
mod connect;
mod prompt;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use base_middleware::messages::Account;

/// Options of `baseimg device`.
///
/// A device answers strangers only with pairing. Pair once with `baseimg device pair ADDR`:
/// both ends show the same six-digit code and you type the code the device shows (console
/// or `journalctl -u base-middleware`). After that every command runs over an end-to-end
/// encrypted channel bound to the device's key, which this client remembers.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// Folder with this client's key and paired devices
    /// [default: the user's config folder, e.g. ~/.config/baseimg/device]
    #[arg(long, global = true, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Paired device to talk to, by name or address [default: the only paired device]
    #[arg(long, short = 'd', global = true, value_name = "NAME|ADDR")]
    device: Option<String>,
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DeviceCommand {
    /// List devices announcing themselves on the local network (mDNS).
    Discover {
        /// How long to listen for announcements.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Pair with a device: compare and type the confirmation code it shows.
    ///
    /// ADDR is `host`, `host:port` (TLS through the device's nginx, port 443 by default) or a
    /// full `wss://` or `ws://` URL. The device accepts a new client only while its pairing
    /// window is open: before its first pairing, after `baseimg device open-window` from a
    /// paired client, or after `base-middleware open-window` run as root on the device.
    /// The code is read from stdin, so scripts can pipe it in; nothing is approved without it.
    Pair {
        /// Device address.
        addr: String,
        /// Name the device lists this client under [default: this machine's hostname]
        #[arg(long)]
        name: Option<String>,
    },
    /// List the devices this client is paired with (local, no network).
    Devices,
    /// Show version, hostname, uptime, SSH state, locked accounts and service states.
    Status {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Set a new password for `base` or `root` and unlock the account.
    ///
    /// The password is read from the terminal without echo (twice), or as one line from
    /// stdin when stdin is not a terminal. It travels only inside the encrypted channel;
    /// the device stores a sha512-crypt hash.
    SetPassword {
        /// Account to change.
        #[arg(long, value_enum, default_value = "base")]
        account: AccountArg,
    },
    /// Enable or disable SSH and manage `base`'s authorized keys.
    #[command(subcommand)]
    Ssh(SshCommand),
    /// List or revoke the clients paired with the device.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Let one new client pair during the next SECONDS (at most 600).
    OpenWindow {
        #[arg(long, default_value_t = 120)]
        seconds: u32,
    },
    /// Reboot the device.
    Reboot,
}

#[derive(Debug, clap::Subcommand)]
enum SshCommand {
    /// Enable and start the SSH server (key login only).
    Enable,
    /// Stop and disable the SSH server.
    Disable,
    /// Manage `base`'s authorized keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Add a public key: a `.pub` file path, or the key line itself.
    Add { key: String },
    /// List keys with their SHA256 fingerprints.
    List,
    /// Remove the key with this fingerprint (`SHA256:...`, as `list` prints it).
    Remove { fingerprint: String },
}

#[derive(Debug, clap::Subcommand)]
enum ClientsCommand {
    /// List paired clients; `*` marks this one.
    List,
    /// Revoke a client by the id `list` prints; it loses access at once.
    Revoke { id: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AccountArg {
    Base,
    Root,
}

impl From<AccountArg> for Account {
    fn from(arg: AccountArg) -> Self {
        match arg {
            AccountArg::Base => Account::Base,
            AccountArg::Root => Account::Root,
        }
    }
}

/// Runs a `baseimg device` subcommand.
pub fn run(args: DeviceArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| anyhow::anyhow!("starting the async runtime: {err}"))?;
    let context = commands::Context::new(args.config_dir, args.device)?;
    runtime.block_on(commands::dispatch(&context, args.command))
}

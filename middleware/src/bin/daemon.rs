//! `base-middleware`: the device daemon (`serve`) and local root commands (`open-window`,
//! `clients`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use base_middleware::control::{self, ControlReply, ControlRequest, DEFAULT_CONTROL_SOCKET};
use base_middleware::daemon::{self, DaemonOptions};
use base_middleware::helper::DEFAULT_HELPER_SOCKET;
use base_middleware::state::DEFAULT_STATE_DIR;
use clap::{Parser, Subcommand};

/// Discovery, pairing and the management API of a baseimg device.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: websocket on loopback (nginx proxies /api/ws to it), mDNS, pairing.
    Serve(ServeArgs),
    /// Open a pairing window so a new client can pair (run as root on the device).
    OpenWindow {
        /// How long the window stays open, in seconds (at most 600).
        #[arg(long, default_value_t = 120)]
        seconds: u32,
        /// The daemon's control socket.
        #[arg(long, default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
    },
    /// List or revoke paired clients (run as root on the device).
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
        /// The daemon's control socket.
        #[arg(long, global = true, default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
    },
}

#[derive(Subcommand)]
enum ClientsAction {
    /// Print each paired client's id, name and pairing time.
    List,
    /// Revoke the client with this id; it loses access at once.
    Revoke { id: String },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Loopback address and port to listen on; other addresses are refused.
    #[arg(long, default_value = "127.0.0.1:8845")]
    listen: SocketAddr,
    /// Directory of the device key and paired clients (mode 0700, files 0600).
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Unix socket of the privileged helper.
    #[arg(long, default_value = DEFAULT_HELPER_SOCKET)]
    helper_socket: PathBuf,
    /// Unix socket for local commands such as `open-window`.
    #[arg(long, default_value = DEFAULT_CONTROL_SOCKET)]
    control_socket: PathBuf,
    /// Public port announced over mDNS (nginx's TLS port).
    #[arg(long, default_value_t = 443)]
    public_port: u16,
    /// Do not announce the device over mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// Where to show confirmation codes besides the journal.
    #[arg(long, default_value = "/dev/console")]
    console: PathBuf,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => daemon::run(serve_options(args)),
        Command::OpenWindow { seconds, control_socket } => {
            control::request_window(&control_socket, seconds).map(|granted| {
                println!("pairing window open for {granted} seconds");
            })
        }
        Command::Clients { action, control_socket } => clients(action, &control_socket),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn clients(action: ClientsAction, socket: &std::path::Path) -> anyhow::Result<()> {
    let request = match &action {
        ClientsAction::List => ControlRequest::ListClients,
        ClientsAction::Revoke { id } => ControlRequest::RevokeClient { id: id.clone() },
    };
    match control::call(socket, &request)? {
        ControlReply::Clients { clients } => {
            for client in clients {
                println!("{}\t{}\tpaired at {}", client.id, client.name, client.paired_at_unix);
            }
        }
        ControlReply::Revoked => println!("revoked"),
        other => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
    }
    Ok(())
}

fn serve_options(args: ServeArgs) -> DaemonOptions {
    DaemonOptions {
        listen: args.listen,
        state_dir: args.state_dir,
        helper_socket: args.helper_socket,
        control_socket: Some(args.control_socket),
        public_port: args.public_port,
        mdns: !args.no_mdns,
        console: args.console,
    }
}

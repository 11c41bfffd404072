//! `base-middleware-helper`: performs one privileged request read from stdin (the socket
//! systemd accepted) and writes the reply to stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use base_middleware::helper::ops::SystemOps;
use base_middleware::helper::runner::SystemRunner;
use base_middleware::helper::socket::serve_one;
use clap::Parser;

/// Performs one privileged operation for base-middleware. Started by systemd for each
/// connection on the helper socket; reads one request on stdin, answers on stdout.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// System root the operations act on; anything but `/` is an offline tree (tests,
    /// image builds): commands get `--root` and live-only actions are refused.
    #[arg(long, default_value = "/")]
    root: PathBuf,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .init();
    let args = Args::parse();
    let ops = SystemOps::new(&args.root, Box::new(SystemRunner));
    match serve_one(&ops, std::io::stdin().lock(), std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

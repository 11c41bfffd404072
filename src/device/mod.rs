//! `baseimg device`: the owner's client for a running appliance (discover, pair, manage).

use std::process::ExitCode;

/// Options of `baseimg device`.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {}

/// Runs a `baseimg device` subcommand.
pub fn run(_args: DeviceArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`baseimg device` is not available in this build yet")
}

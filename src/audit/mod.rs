//! `baseimg audit`: hardening controls checked on the effective configuration of an image.

use std::process::ExitCode;

/// Options of `baseimg audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {}

/// Runs `baseimg audit`.
pub fn run(_args: AuditArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`baseimg audit` is not available in this build yet")
}

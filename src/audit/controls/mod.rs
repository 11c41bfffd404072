//! The controls of HARDENING.md: each an id, its baseline ids, what it expects, one check.

mod accounts;
mod firewall;
mod kernel;
mod nginx;
mod services;
mod ssh;
mod usb;

use super::context::Ctx;
use super::report::Where;

/// The outcome of one check before waivers apply.
#[derive(Debug, Clone)]
pub enum Verdict {
    Pass { found: String, at: Option<Where> },
    Fail { found: String, at: Option<Where> },
    Info { found: String, at: Option<Where> },
}

/// A pass with what was found and where.
pub fn pass(found: impl Into<String>, at: Option<Where>) -> Verdict {
    Verdict::Pass { found: found.into(), at }
}

/// A failure with what was found and where.
pub fn fail(found: impl Into<String>, at: Option<Where>) -> Verdict {
    Verdict::Fail { found: found.into(), at }
}

/// A result reported for information only.
pub fn info(found: impl Into<String>, at: Option<Where>) -> Verdict {
    Verdict::Info { found: found.into(), at }
}

/// One control: its id, the public baselines' ids, the expectation and the check.
pub struct Control {
    pub id: &'static str,
    pub baseline: &'static str,
    pub expected: &'static str,
    pub check: fn(&Ctx) -> anyhow::Result<Verdict>,
}

/// Every control, in the order of HARDENING.md.
pub fn all() -> Vec<Control> {
    let mut controls = Vec::new();
    controls.extend(ssh::controls());
    controls.extend(accounts::controls());
    controls.extend(kernel::controls());
    controls.extend(firewall::controls());
    controls.extend(services::fail2ban_controls());
    controls.extend(usb::controls());
    controls.extend(services::controls());
    controls
}

/// Shorthand for a control table entry.
const fn control(
    id: &'static str,
    baseline: &'static str,
    expected: &'static str,
    check: fn(&Ctx) -> anyhow::Result<Verdict>,
) -> Control {
    Control { id, baseline, expected, check }
}

//! What the controls read from: the tree, the profile's expectations, configs parsed once.

use std::cell::OnceCell;

use anyhow::Context;

use super::accounts::{self, Entry};
use super::sshd::SshdConfig;
use super::sysctl::Sysctl;
use super::tree::{self, Tree};

/// What the profile declares (defaults match the shipped profiles when none is given).
#[derive(Debug, Clone)]
pub struct Expect {
    /// The one login user.
    pub admin: String,
    /// Whether SSH must be enabled (`None`: whatever the image says).
    pub ssh_enabled: Option<bool>,
    pub ssh_port: Option<u16>,
    pub https_port: u16,
    pub middleware_port: u16,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            admin: "base".into(),
            ssh_enabled: None,
            ssh_port: None,
            https_port: 443,
            middleware_port: 8845,
        }
    }
}

impl Expect {
    /// The expectations of a parsed profile.
    pub fn from_profile(profile: &crate::profile::Profile) -> Self {
        Self {
            admin: "base".into(),
            ssh_enabled: Some(profile.ssh.enabled),
            ssh_port: Some(profile.ssh.port.get()),
            https_port: profile.network.https_port.get(),
            middleware_port: profile.middleware.port.get(),
        }
    }
}

/// The audit's view of one root filesystem.
pub struct Ctx<'a> {
    pub tree: &'a dyn Tree,
    pub expect: Expect,
    sshd: OnceCell<Result<SshdConfig, String>>,
    sysctl: OnceCell<Result<Sysctl, String>>,
}

impl<'a> Ctx<'a> {
    pub fn new(tree: &'a dyn Tree, expect: Expect) -> Self {
        Self { tree, expect, sshd: OnceCell::new(), sysctl: OnceCell::new() }
    }

    /// The effective sshd configuration, read once.
    pub fn sshd(&self) -> anyhow::Result<&SshdConfig> {
        let read = || SshdConfig::read(self.tree).map_err(|e| format!("{e:#}"));
        self.sshd.get_or_init(read).as_ref().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The merged sysctl settings, read once.
    pub fn sysctl(&self) -> anyhow::Result<&Sysctl> {
        let read = || Sysctl::read(self.tree).map_err(|e| format!("{e:#}"));
        self.sysctl.get_or_init(read).as_ref().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// A text file that must exist.
    pub fn text(&self, path: &str) -> anyhow::Result<String> {
        tree::read_text(self.tree, path)?.with_context(|| format!("`{path}` is missing"))
    }

    /// An account file (`/etc/passwd`, `/etc/shadow`, `/etc/group`) as entries.
    pub fn accounts(&self, path: &str) -> anyhow::Result<Vec<Entry>> {
        Ok(accounts::parse(&self.text(path)?, path))
    }

    /// Whether SSH starts at boot in this image.
    pub fn ssh_enabled(&self) -> anyhow::Result<bool> {
        for name in ["ssh.service", "sshd.service", "ssh.socket"] {
            if super::systemd::enabled_by(self.tree, name)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The uid of a user in `/etc/passwd`.
    pub fn uid_of(&self, user: &str) -> anyhow::Result<u32> {
        let passwd = self.accounts("/etc/passwd")?;
        let entry = accounts::find(&passwd, user)
            .with_context(|| format!("user `{user}` is not in /etc/passwd"))?;
        entry.field(2).parse().with_context(|| format!("uid of `{user}` is not a number"))
    }
}

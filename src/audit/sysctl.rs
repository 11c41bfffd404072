//! Kernel parameters as systemd-sysctl applies them: every folder, by file name, later wins.

use super::confdirs;
use super::glob::fnmatch;
use super::report::Where;
use super::tree::{self, Tree};

const DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// One `key = value` line; the key may be a glob (`net.ipv4.conf.*.rp_filter`).
#[derive(Debug, Clone)]
pub struct Assignment {
    pub key: String,
    pub value: String,
    pub at: Where,
}

/// Every assignment in the order systemd-sysctl applies them.
#[derive(Debug, Default)]
pub struct Sysctl {
    pub assignments: Vec<Assignment>,
}

impl Sysctl {
    /// Reads every sysctl file of the image; `/etc/sysctl.conf` counts as Debian's
    /// `99-sysctl.conf` link when that link is missing.
    pub fn read(tree: &dyn Tree) -> anyhow::Result<Self> {
        let mut files = confdirs::merged(tree, DIRS, ".conf")?;
        if !files.contains_key("99-sysctl.conf") && tree::stat(tree, "/etc/sysctl.conf")?.is_some()
        {
            files.insert("99-sysctl.conf".into(), "/etc/sysctl.conf".into());
        }
        let mut sysctl = Self::default();
        for path in files.values() {
            if tree::resolve(tree, path)? == "/dev/null" {
                continue;
            }
            if let Some(text) = tree::read_text(tree, path)? {
                sysctl.add_text(path, &text);
            }
        }
        Ok(sysctl)
    }

    fn add_text(&mut self, path: &str, text: &str) {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            let key = key.trim().trim_start_matches('-').replace('/', ".");
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            self.assignments.push(Assignment { key, value, at: Where::line(path, index + 1) });
        }
    }

    /// The assignment that sets `key` last (a matching glob counts).
    pub fn effective(&self, key: &str) -> Option<&Assignment> {
        self.assignments.iter().rev().find(|a| a.key == key || fnmatch(&a.key, key))
    }

    /// The value an interface present at boot gets for `net.<family>.conf.IFACE.<name>`:
    /// its own or a glob assignment, else the `default` one.
    pub fn per_interface(&self, family: &str, name: &str) -> Option<&Assignment> {
        let probe = format!("net.{family}.conf.eth0.{name}");
        self.effective(&probe)
            .or_else(|| self.effective(&format!("net.{family}.conf.default.{name}")))
    }
}

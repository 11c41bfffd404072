//! Cross-checks with the image's own programs and systemd-analyze, where they can run here.

use super::context::Ctx;
use super::controls::{info, Verdict};
use super::report::Where;
use super::sshd::SshdConfig;
use crate::runner::Cmd;

/// Keywords whose value `sshd -T` and the audit must agree on.
const COMPARED: &[&str] = &[
    "permitrootlogin",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "authenticationmethods",
    "allowusers",
    "maxauthtries",
    "loglevel",
    "usepam",
];

fn running_as_root() -> bool {
    Cmd::new("id").arg("-u").read().is_ok_and(|s| s.trim() == "0")
}

/// Runs the image's `sshd -T` in a chroot (root, directory input) and compares keywords.
pub fn sshd_t(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let Some(root) = ctx.tree.host_root() else {
        return Ok(info("not run: needs a directory input", None));
    };
    if !root.join("usr/sbin/sshd").exists() || !running_as_root() {
        return Ok(info("not run: needs root and the image's /usr/sbin/sshd", None));
    }
    let spec = format!("user={},host=x,addr=1.2.3.4", ctx.expect.admin);
    let out = Cmd::new("chroot").arg(root).args(["/usr/sbin/sshd", "-T", "-C", &spec]).read();
    let out = match out {
        Ok(out) => out,
        Err(e) => return Ok(info(format!("sshd -T did not run: {}", first_line(&e)), None)),
    };
    let theirs = SshdConfig::parse_text(&out, "sshd -T");
    let ours = ctx.sshd()?;
    let mut differ = Vec::new();
    for key in COMPARED {
        let a = theirs.get(key, None).value.to_ascii_lowercase();
        let b = ours.get(key, None).value.to_ascii_lowercase();
        if a != b {
            differ.push(format!("{key}: sshd {a}, audit {b}"));
        }
    }
    Ok(match differ.is_empty() {
        true => info(
            format!("sshd -T agrees on {} keywords", COMPARED.len()),
            Some(Where::file(super::sshd::MAIN)),
        ),
        false => info(
            format!("sshd -T disagrees: {}", differ.join("; ")),
            Some(Where::file(super::sshd::MAIN)),
        ),
    })
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or("").to_string()
}

/// `systemd-analyze security --offline=true` exposure of each service of ours.
pub fn analyze_security(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let Some(root) = ctx.tree.host_root() else {
        return Ok(info("not run: needs a directory input", None));
    };
    let mut figures = Vec::new();
    for name in super::systemd::own_units(ctx.tree)? {
        if !name.ends_with(".service") || name.contains("@.") {
            continue;
        }
        let out = Cmd::new("systemd-analyze")
            .from_package("systemd")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(format!("--root={}", root.display()))
            .arg(&name)
            .read();
        match out {
            Ok(text) => figures.push(format!("{name} {}", exposure(&text))),
            Err(e) => {
                return Ok(info(format!("systemd-analyze did not run: {}", first_line(&e)), None))
            }
        }
    }
    Ok(info(figures.join("; "), None))
}

/// The "Overall exposure level" figure of systemd-analyze's report.
fn exposure(text: &str) -> String {
    text.lines()
        .find_map(|l| l.split("Overall exposure level for ").nth(1))
        .and_then(|l| l.split(": ").nth(1))
        .unwrap_or("?")
        .trim()
        .to_string()
}

//! fail2ban, the project's own units and the nginx front, checked as their programs read them.

use std::collections::BTreeMap;

use super::{control, fail, info, pass, Control, Verdict};
use crate::audit::accounts::{find, hash_is_locked};
use crate::audit::context::Ctx;
use crate::audit::report::Where;
use crate::audit::systemd::{self, Unit};
use crate::audit::tree;

/// Where python3-systemd puts the journal reader fail2ban's systemd backend imports.
const PY_SYSTEMD: &[&str] = &[
    "/usr/lib/python3/dist-packages/systemd/journal.py",
    "/usr/lib/python3/dist-packages/systemd/__init__.py",
];

pub fn fail2ban_controls() -> Vec<Control> {
    vec![control(
        "fail2ban-sshd-jail",
        "C10, Lynis DEB-0880",
        "[sshd] enabled, backend = systemd, python3-systemd installed",
        sshd_jail,
    )]
}

pub fn controls() -> Vec<Control> {
    vec![
        control("svc-sandbox", "systemd-analyze security", "our daemons: own User=, NoNewPrivileges, ProtectSystem=strict, ProtectHome, PrivateTmp, PrivateDevices, RestrictAddressFamilies, no capabilities", sandbox),
        control("svc-users", "CIS 5.4.2.x", "each daemon's user: uid < 1000, nologin shell, locked, not shared", service_users),
        control("svc-loopback-listen", "-", "the middleware listens on loopback only", loopback_listen),
        control("nginx-hardening", "Lynis HTTP-6710, CIS nginx 2.x", "workers not root, server_tokens off, no default site, TLS 1.2+ only, upstreams on loopback", nginx_hardening),
        control("nginx-websocket", "C12", "websocket proxy: HTTP/1.1, Upgrade and Connection headers, read timeout > 60s", nginx_websocket),
        control("svc-analyze-security", "systemd-analyze security", "exposure figures of our units (information)", crate::audit::crosscheck::analyze_security),
        control("ssh-crosscheck", "sshd -T", "sshd's own reading agrees with the audit's (information)", crate::audit::crosscheck::sshd_t),
    ]
}

/// fail2ban's merged jail settings: section -> key -> (value, where).
#[derive(Debug, Default)]
pub struct Jails {
    sections: BTreeMap<String, BTreeMap<String, (String, Where)>>,
}

impl Jails {
    /// A jail's value, falling back to `[DEFAULT]`.
    pub fn value(&self, jail: &str, key: &str) -> Option<&(String, Where)> {
        self.sections
            .get(jail)
            .and_then(|s| s.get(key))
            .or_else(|| self.sections.get("DEFAULT")?.get(key))
    }

    fn add(&mut self, text: &str, file: &str) {
        let mut section = String::new();
        let mut last_key: Option<String> = None;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.trim_start().starts_with(['#', ';']) {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(key) = &last_key {
                    if let Some(entry) =
                        self.sections.entry(section.clone()).or_default().get_mut(key)
                    {
                        entry.0.push('\n');
                        entry.0.push_str(line.trim());
                    }
                }
                continue;
            }
            let line = line.trim();
            if line.starts_with('[') && line.ends_with(']') {
                section = line[1..line.len() - 1].trim().to_string();
                continue;
            }
            let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
                continue;
            };
            let key = key.trim().to_string();
            let entry = (value.trim().to_string(), Where::line(file, index + 1));
            self.sections.entry(section.clone()).or_default().insert(key.clone(), entry);
            last_key = Some(key);
        }
    }
}

/// Reads fail2ban's jail files in its order: jail.conf, jail.d/*.conf, jail.local, jail.d/*.local.
pub fn fail2ban_jails(ctx: &Ctx) -> anyhow::Result<Jails> {
    let mut jails = Jails::default();
    let dir = "/etc/fail2ban";
    let dropins = tree::list(ctx.tree, "/etc/fail2ban/jail.d")?;
    let mut files = vec![format!("{dir}/jail.conf")];
    files.extend(
        dropins.iter().filter(|n| n.ends_with(".conf")).map(|n| format!("{dir}/jail.d/{n}")),
    );
    files.push(format!("{dir}/jail.local"));
    files.extend(
        dropins.iter().filter(|n| n.ends_with(".local")).map(|n| format!("{dir}/jail.d/{n}")),
    );
    for file in files {
        if let Some(text) = tree::read_text(ctx.tree, &file)? {
            jails.add(&text, &file);
        }
    }
    Ok(jails)
}

fn sshd_jail(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let jails = fail2ban_jails(ctx)?;
    let Some((enabled, at)) = jails.value("sshd", "enabled") else {
        return Ok(fail("no [sshd] jail enabled", Some(Where::file("/etc/fail2ban/jail.d"))));
    };
    if !matches!(enabled.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on") {
        return Ok(fail(format!("enabled = {enabled}"), Some(at.clone())));
    }
    let backend = jails
        .value("sshd", "backend")
        .cloned()
        .unwrap_or(("auto".into(), Where::file("/etc/fail2ban/jail.conf")));
    if !backend.0.starts_with("systemd") {
        return Ok(fail(
            format!("backend = {}: Debian 12 has no auth.log, the jail dies", backend.0),
            Some(backend.1),
        ));
    }
    for path in PY_SYSTEMD {
        if tree::stat(ctx.tree, path)?.is_none() {
            return Ok(fail(
                "python3-systemd missing: the systemd backend cannot start",
                Some(Where::file(path)),
            ));
        }
    }
    Ok(pass("enabled, backend = systemd", Some(backend.1)))
}

/// The project's long-running services: oneshot boot tasks and socket-activated helper
/// templates are judged separately.
fn daemons(ctx: &Ctx) -> anyhow::Result<Vec<Unit>> {
    let mut out = Vec::new();
    for name in systemd::own_units(ctx.tree)? {
        if !name.ends_with(".service") || name.contains('@') {
            continue;
        }
        let Some(unit) = systemd::load_unit(ctx.tree, &name)? else { continue };
        let oneshot = unit.get("Service", "Type").is_some_and(|t| t.value == "oneshot");
        if !oneshot {
            out.push(unit);
        }
    }
    Ok(out)
}

/// Settings every daemon of ours must carry, and the value each must have.
const SANDBOX: &[(&str, &str)] = &[
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("CapabilityBoundingSet", ""),
];

/// Settings a root helper behind an `Accept=yes` socket must carry.
const HELPER: &[(&str, &str)] =
    &[("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"), ("PrivateDevices", "yes")];

fn missing(unit: &Unit, wanted: &[(&str, &str)]) -> Option<String> {
    for (key, want) in wanted {
        let value = unit.get("Service", key).map(|l| l.value.as_str());
        let ok = match (*want, value) {
            ("", Some(v)) => v.is_empty(),
            ("yes", Some(v)) => matches!(v, "yes" | "true" | "1" | "on"),
            (w, Some(v)) => v == w,
            (_, None) => false,
        };
        if !ok {
            return Some(format!(
                "{}: {key}={} (want {key}={want})",
                unit.name,
                value.unwrap_or("unset")
            ));
        }
    }
    if unit.get("Service", "RestrictAddressFamilies").is_none() {
        return Some(format!("{}: RestrictAddressFamilies unset", unit.name));
    }
    None
}

fn sandbox(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let units = daemons(ctx)?;
    for unit in &units {
        let user = unit.get("Service", "User").map(|l| l.value.clone()).unwrap_or_default();
        let dynamic = unit.get("Service", "DynamicUser").is_some_and(|l| l.value == "yes");
        if (user.is_empty() || user == "root" || user == "0") && !dynamic {
            return Ok(fail(format!("{} runs as root", unit.name), Some(Where::file(&unit.path))));
        }
        if let Some(problem) = missing(unit, SANDBOX) {
            return Ok(fail(problem, Some(Where::file(&unit.path))));
        }
    }
    for name in systemd::own_units(ctx.tree)?.iter().filter(|n| n.contains("@.service")) {
        let Some(unit) = systemd::load_unit(ctx.tree, name)? else { continue };
        if let Some(problem) = missing(&unit, HELPER) {
            return Ok(fail(problem, Some(Where::file(&unit.path))));
        }
    }
    Ok(pass(format!("{} daemon(s) sandboxed", units.len()), None))
}

fn service_users(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let passwd = ctx.accounts("/etc/passwd")?;
    let shadow = ctx.accounts("/etc/shadow")?;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for unit in daemons(ctx)? {
        let Some(user) = unit.get("Service", "User").map(|l| l.value.clone()) else { continue };
        if let Some(other) = seen.insert(user.clone(), unit.name.clone()) {
            return Ok(fail(
                format!("{user} shared by {other} and {}", unit.name),
                Some(Where::file(&unit.path)),
            ));
        }
        let Some(entry) = find(&passwd, &user) else {
            let sysusers = tree::list(ctx.tree, "/usr/lib/sysusers.d")?;
            if sysusers.iter().any(|f| f.contains(&user)) {
                continue;
            }
            return Ok(fail(
                format!("{user} of {} does not exist", unit.name),
                Some(Where::file("/etc/passwd")),
            ));
        };
        let uid = entry.number(2).unwrap_or(-1);
        let shell = entry.field(6);
        let locked = find(&shadow, &user).map_or(true, |s| hash_is_locked(s.field(1)));
        if !(0..1000).contains(&uid)
            || !(shell.ends_with("nologin") || shell.ends_with("false"))
            || !locked
        {
            return Ok(fail(
                format!("{user}: uid {uid}, shell {shell}, locked {locked}"),
                Some(entry.at.clone()),
            ));
        }
    }
    Ok(pass(format!("{} service user(s)", seen.len()), Some(Where::file("/etc/passwd"))))
}

fn loopback_listen(ctx: &Ctx) -> anyhow::Result<Verdict> {
    for unit in daemons(ctx)? {
        for line in unit.values("Service", "ExecStart") {
            let words: Vec<&str> = line.value.split_whitespace().collect();
            let Some(i) = words.iter().position(|w| *w == "--listen") else { continue };
            let addr = words.get(i + 1).copied().unwrap_or("");
            let loopback = addr.starts_with("127.")
                || addr.starts_with("[::1]")
                || addr.starts_with("localhost:");
            if !loopback {
                return Ok(fail(format!("{} listens on {addr}", unit.name), Some(line.at.clone())));
            }
            return Ok(pass(addr, Some(line.at.clone())));
        }
    }
    Ok(info("no daemon of ours with --listen in the image", None))
}

fn nginx_hardening(ctx: &Ctx) -> anyhow::Result<Verdict> {
    super::nginx::hardening(ctx)
}

fn nginx_websocket(ctx: &Ctx) -> anyhow::Result<Verdict> {
    super::nginx::websocket(ctx)
}

//! Account and file controls: account databases, locks, sudo, trust files, set-uid, identity.

use super::{control, fail, pass, Control, Verdict};
use crate::audit::accounts::{find, hash_is_locked};
use crate::audit::context::Ctx;
use crate::audit::report::Where;
use crate::audit::tree::{self, Kind};

/// Set-uid programs a Debian 12 appliance may carry.
const SETUID_ALLOWED: &[&str] = &[
    "/usr/bin/su",
    "/usr/bin/sudo",
    "/usr/bin/passwd",
    "/usr/bin/chsh",
    "/usr/bin/chfn",
    "/usr/bin/gpasswd",
    "/usr/bin/newgrp",
    "/usr/bin/mount",
    "/usr/bin/umount",
    "/usr/lib/openssh/ssh-keysign",
    "/usr/lib/dbus-1.0/dbus-daemon-launch-helper",
];

/// Files that make a host trust others' logins.
const TRUST_FILES: &[&str] = &[".rhosts", ".shosts", "hosts.equiv", "shosts.equiv", ".netrc"];

pub fn controls() -> Vec<Control> {
    vec![
        control(
            "acct-file-perms",
            "os-02, CIS 7.1.1..8",
            "shadow/gshadow root:shadow <= 0640; passwd/group root 0644",
            file_perms,
        ),
        control(
            "acct-shadowed",
            "CIS 7.2.1, 7.2.2, 5.4.2.1",
            "every passwd entry `x`, no empty hash, only root uid 0",
            shadowed,
        ),
        control("acct-root-locked", "CIS 5.4.2.x", "root's hash locked", |c| locked(c, "root")),
        control(
            "acct-admin-locked",
            "-",
            "admin's hash locked with `*`, or `!` only with UsePAM yes; not expired",
            admin_locked,
        ),
        control(
            "acct-sudo-password",
            "CIS 5.2.4",
            "no NOPASSWD or !authenticate in sudoers",
            sudo_password,
        ),
        control(
            "acct-trust-files",
            "CIS 7.2.x, sshd IgnoreRhosts",
            "no .rhosts, .shosts, hosts.equiv, .netrc",
            trust_files,
        ),
        control(
            "acct-setuid-allowlist",
            "CIS 7.1.13",
            "set-uid files only from the allow-list",
            setuid_allowlist,
        ),
        control(
            "acct-machine-id-empty",
            "-",
            "/etc/machine-id empty; no D-Bus machine id",
            machine_id,
        ),
        control(
            "acct-no-random-seed",
            "-",
            "no systemd random seed or credential secret",
            no_random_seed,
        ),
    ]
}

fn file_perms(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let group = ctx.accounts("/etc/group")?;
    let shadow_gid = find(&group, "shadow").and_then(|e| e.number(2)).map(|n| n as u32);
    for (path, max_mode) in [
        ("/etc/shadow", 0o640),
        ("/etc/gshadow", 0o640),
        ("/etc/passwd", 0o644),
        ("/etc/group", 0o644),
    ] {
        let Some(meta) = tree::stat(ctx.tree, path)? else {
            return Ok(fail("missing", Some(Where::file(path))));
        };
        let gid_ok = meta.gid == 0 || (max_mode == 0o640 && Some(meta.gid) == shadow_gid);
        if meta.uid != 0 || !gid_ok || meta.mode & !max_mode != 0 {
            let found = format!("{}:{} mode {:04o}", meta.uid, meta.gid, meta.mode);
            return Ok(fail(found, Some(Where::file(path))));
        }
    }
    Ok(pass("root-owned, modes within limits", Some(Where::file("/etc/shadow"))))
}

fn shadowed(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let passwd = ctx.accounts("/etc/passwd")?;
    let shadow = ctx.accounts("/etc/shadow")?;
    for entry in &passwd {
        if entry.field(1) != "x" {
            return Ok(fail(
                format!("{} has password field `{}`", entry.name(), entry.field(1)),
                Some(entry.at.clone()),
            ));
        }
        if entry.number(2) == Some(0) && entry.name() != "root" {
            return Ok(fail(format!("{} has uid 0", entry.name()), Some(entry.at.clone())));
        }
    }
    if let Some(entry) = shadow.iter().find(|e| e.field(1).is_empty()) {
        return Ok(fail(
            format!("{} has an empty password hash", entry.name()),
            Some(entry.at.clone()),
        ));
    }
    Ok(pass(format!("{} accounts shadowed", passwd.len()), Some(Where::file("/etc/passwd"))))
}

fn locked(ctx: &Ctx, user: &str) -> anyhow::Result<Verdict> {
    let shadow = ctx.accounts("/etc/shadow")?;
    let Some(entry) = find(&shadow, user) else {
        return Ok(fail(
            format!("{user} missing from /etc/shadow"),
            Some(Where::file("/etc/shadow")),
        ));
    };
    let hash = entry.field(1);
    if hash_is_locked(hash) {
        Ok(pass(
            format!("{user}:{}", hash.chars().take(2).collect::<String>()),
            Some(entry.at.clone()),
        ))
    } else {
        Ok(fail(format!("{user} has a usable password hash"), Some(entry.at.clone())))
    }
}

/// Days since 1970-01-01, today.
fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs / 86400) as i64
}

fn admin_locked(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let admin = ctx.expect.admin.clone();
    let verdict = locked(ctx, &admin)?;
    if matches!(verdict, Verdict::Fail { .. }) {
        return Ok(verdict);
    }
    let shadow = ctx.accounts("/etc/shadow")?;
    let Some(entry) = find(&shadow, &admin) else { return Ok(verdict) };
    if entry.number(7).is_some_and(|day| day <= today()) {
        let found = format!("{admin} expired on day {}: sshd refuses its key too", entry.field(7));
        return Ok(fail(found, Some(entry.at.clone())));
    }
    let use_pam = ctx.sshd()?.get("UsePAM", None);
    let pam_on = use_pam.value.eq_ignore_ascii_case("yes");
    if entry.field(1).starts_with('!') && !pam_on {
        let found = format!(
            "{admin} hash starts with `!` and UsePAM {}: sshd refuses its key",
            use_pam.value
        );
        return Ok(fail(found, Some(entry.at.clone())));
    }
    Ok(verdict)
}

fn sudo_password(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let mut files = vec!["/etc/sudoers".to_string()];
    files.extend(
        tree::list(ctx.tree, "/etc/sudoers.d")?.iter().map(|n| tree::join("/etc/sudoers.d", n)),
    );
    for file in &files {
        let Some(text) = tree::read_text(ctx.tree, file)? else { continue };
        for (index, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("");
            let code = if line.trim_start().starts_with("#include") { "" } else { code };
            if code.contains("NOPASSWD") || code.replace(' ', "").contains("!authenticate") {
                return Ok(fail(line.trim(), Some(Where::line(file, index + 1))));
            }
        }
    }
    Ok(pass("password required", Some(Where::file("/etc/sudoers"))))
}

fn trust_files(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let mut found = None;
    ctx.tree.walk(&mut |path, meta| {
        let name = path.rsplit('/').next().unwrap_or("");
        if found.is_none() && meta.kind != Kind::Dir && TRUST_FILES.contains(&name) {
            found = Some(path.to_string());
        }
    })?;
    Ok(match found {
        Some(path) => fail(path.clone(), Some(Where::file(&path))),
        None => pass("none", None),
    })
}

fn setuid_allowlist(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let mut found = Vec::new();
    ctx.tree.walk(&mut |path, meta| {
        if meta.kind == Kind::File && meta.mode & 0o4000 != 0 {
            found.push(path.to_string());
        }
    })?;
    let mut unexpected = Vec::new();
    for path in &found {
        let canonical = path.strip_prefix("/usr").unwrap_or(path);
        let allowed =
            SETUID_ALLOWED.iter().any(|a| *a == path || a.strip_prefix("/usr") == Some(canonical));
        if !allowed {
            unexpected.push(path.clone());
        }
    }
    Ok(match unexpected.first() {
        Some(path) => fail(format!("set-uid {}", unexpected.join(" ")), Some(Where::file(path))),
        None => pass(format!("{} allowed set-uid file(s)", found.len()), None),
    })
}

fn machine_id(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let text = tree::read_text(ctx.tree, "/etc/machine-id")?;
    if let Some(text) = &text {
        if !text.trim().is_empty() && text.trim() != "uninitialized" {
            return Ok(fail("a machine id is baked in", Some(Where::file("/etc/machine-id"))));
        }
    }
    let dbus = "/var/lib/dbus/machine-id";
    if let Some(meta) = ctx.tree.lstat(dbus)? {
        let linked =
            meta.kind == Kind::Symlink && tree::resolve(ctx.tree, dbus)? == "/etc/machine-id";
        if !linked {
            return Ok(fail("a D-Bus machine id is baked in", Some(Where::file(dbus))));
        }
    }
    Ok(match text {
        Some(_) => pass("empty", Some(Where::file("/etc/machine-id"))),
        None => fail(
            "missing (systemd cannot write it on a read-only root)",
            Some(Where::file("/etc/machine-id")),
        ),
    })
}

fn no_random_seed(ctx: &Ctx) -> anyhow::Result<Verdict> {
    for path in ["/var/lib/systemd/random-seed", "/var/lib/systemd/credential.secret"] {
        if ctx.tree.lstat(path)?.is_some() {
            return Ok(fail("present", Some(Where::file(path))));
        }
    }
    Ok(pass("none", None))
}

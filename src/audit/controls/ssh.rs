//! SSH daemon controls, checked on the effective sshd configuration.

use super::{control, fail, pass, Control, Verdict};
use crate::audit::context::Ctx;
use crate::audit::report::Where;
use crate::audit::sshd::{self, SshdConfig};
use crate::audit::sshd_algos::AlgoList;
use crate::audit::tree::{self, Kind};

pub fn controls() -> Vec<Control> {
    vec![
        control(
            "ssh-config-perms",
            "sshd-04, sshd-05, CIS 5.1.1",
            "config files root-owned, not group/other writable",
            config_perms,
        ),
        control(
            "ssh-config-valid",
            "sshd -t",
            "only keywords allowed inside Match blocks",
            config_valid,
        ),
        control("ssh-root-login", "sshd-06, CIS 5.1.20", "PermitRootLogin no", |c| {
            all_equal(c, "PermitRootLogin", "no")
        }),
        control("ssh-password-auth", "sshd-27, CIS 5.1.19", "PasswordAuthentication no", |c| {
            all_equal(c, "PasswordAuthentication", "no")
        }),
        control("ssh-kbd-interactive", "sshd-28", "KbdInteractiveAuthentication no", |c| {
            all_equal(c, "KbdInteractiveAuthentication", "no")
        }),
        control("ssh-empty-passwords", "sshd-29, CIS 5.1.19", "PermitEmptyPasswords no", |c| {
            all_equal(c, "PermitEmptyPasswords", "no")
        }),
        control("ssh-auth-methods", "sshd-29", "AuthenticationMethods publickey", |c| {
            all_equal(c, "AuthenticationMethods", "publickey")
        }),
        control("ssh-allow-users", "CIS 5.1.4", "AllowUsers <admin> only", allow_users),
        control("ssh-strict-modes", "sshd-11", "StrictModes yes", |c| {
            all_equal(c, "StrictModes", "yes")
        }),
        control("ssh-hostbased", "CIS 5.1.x", "HostbasedAuthentication no", |c| {
            all_equal(c, "HostbasedAuthentication", "no")
        }),
        control("ssh-ignore-rhosts", "CIS 5.1.x", "IgnoreRhosts yes", |c| {
            all_equal(c, "IgnoreRhosts", "yes")
        }),
        control("ssh-gssapi", "CIS 5.1.x", "GSSAPIAuthentication no", |c| {
            all_equal(c, "GSSAPIAuthentication", "no")
        }),
        control("ssh-disable-forwarding", "CIS 5.1.8", "DisableForwarding yes", |c| {
            all_equal(c, "DisableForwarding", "yes")
        }),
        control("ssh-permit-tunnel", "CIS 5.1.21", "PermitTunnel no", |c| {
            all_equal(c, "PermitTunnel", "no")
        }),
        control("ssh-user-environment", "CIS 5.1.21", "PermitUserEnvironment no", |c| {
            all_equal(c, "PermitUserEnvironment", "no")
        }),
        control("ssh-max-auth-tries", "sshd-18, CIS 5.1.16", "MaxAuthTries <= 3", |c| {
            all_at_most(c, "MaxAuthTries", 3)
        }),
        control(
            "ssh-login-grace",
            "sshd-19, CIS 5.1.15",
            "LoginGraceTime <= 60s (not 0)",
            login_grace,
        ),
        control(
            "ssh-max-startups",
            "CIS 5.1.17",
            "MaxStartups start<=10, rate>=30, full<=60",
            max_startups,
        ),
        control(
            "ssh-client-alive",
            "sshd-20, sshd-21, CIS 5.1.7",
            "ClientAliveInterval 1..300, ClientAliveCountMax 1..3",
            client_alive,
        ),
        control("ssh-log-level", "sshd-13", "LogLevel VERBOSE", |c| {
            all_equal(c, "LogLevel", "verbose")
        }),
        control("ssh-debian-banner", "-", "DebianBanner no", |c| {
            all_equal(c, "DebianBanner", "no")
        }),
        control("ssh-kex", "sshd-01, CIS 5.1.12", "known key exchange only, no SHA-1", |c| {
            algos(c, "KexAlgorithms", AlgoList::Kex, weak_kex)
        }),
        control("ssh-ciphers", "sshd-02, CIS 5.1.6", "known ciphers only, no CBC", |c| {
            algos(c, "Ciphers", AlgoList::Ciphers, weak_cipher)
        }),
        control("ssh-macs", "sshd-03, CIS 5.1.15", "known ETM MACs only, no SHA-1/MD5", |c| {
            algos(c, "MACs", AlgoList::Macs, weak_mac)
        }),
        control("ssh-host-key-type", "ssh-audit Debian 12", "HostKey ed25519 only", host_key_type),
        control(
            "ssh-user-key-algorithms",
            "ssh-audit Debian 12",
            "no ssh-rsa/ssh-dss; RequiredRSASize >= 3072",
            user_key_algorithms,
        ),
        control(
            "ssh-embedded-key-accepted",
            "-",
            "every embedded key's type accepted by sshd",
            embedded_key_accepted,
        ),
        control(
            "ssh-authorized-keys-path",
            "sshd StrictModes",
            "each path component owned by root or the admin, not group/other writable",
            authorized_keys_path,
        ),
        control("ssh-no-host-keys", "-", "no /etc/ssh/ssh_host_* in the image", no_host_keys),
        control(
            "ssh-host-keys-first-boot",
            "-",
            "an enabled unit creates host keys before sshd",
            host_keys_first_boot,
        ),
    ]
}

fn described(config: &SshdConfig, setting: &sshd::Setting) -> (String, Option<Where>) {
    let at = setting.at.clone().or_else(|| Some(Where::file(sshd::MAIN)));
    (format!("{} ({})", setting.value, config.origin(setting)), at)
}

/// Passes when every context (global and each `Match`) gives a value satisfying `ok`.
fn all_satisfy(ctx: &Ctx, keyword: &str, ok: impl Fn(&str) -> bool) -> anyhow::Result<Verdict> {
    let config = ctx.sshd()?;
    let settings = config.possible(keyword);
    for setting in &settings {
        if !ok(&setting.value.to_ascii_lowercase()) {
            let (found, at) = described(config, setting);
            return Ok(fail(found, at));
        }
    }
    let (found, at) = described(config, &settings[0]);
    Ok(pass(found, at))
}

fn all_equal(ctx: &Ctx, keyword: &str, want: &str) -> anyhow::Result<Verdict> {
    all_satisfy(ctx, keyword, |v| v == want)
}

fn all_at_most(ctx: &Ctx, keyword: &str, max: u64) -> anyhow::Result<Verdict> {
    all_satisfy(ctx, keyword, |v| v.parse::<u64>().is_ok_and(|n| n <= max))
}

/// sshd's time format: `90`, `1m30s`, `2h`.
fn seconds(value: &str) -> Option<u64> {
    let mut total = 0;
    let mut number = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604800,
            _ => return None,
        };
        total += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    if !number.is_empty() {
        total += number.parse::<u64>().ok()?;
    }
    Some(total)
}

fn login_grace(ctx: &Ctx) -> anyhow::Result<Verdict> {
    all_satisfy(ctx, "LoginGraceTime", |v| seconds(v).is_some_and(|s| (1..=60).contains(&s)))
}

fn max_startups(ctx: &Ctx) -> anyhow::Result<Verdict> {
    all_satisfy(ctx, "MaxStartups", |v| {
        let parts: Vec<u64> = v.split(':').filter_map(|p| p.parse().ok()).collect();
        match parts.as_slice() {
            [start, rate, full] => *start <= 10 && *rate >= 30 && *full <= 60,
            [n] => *n <= 10,
            _ => false,
        }
    })
}

fn client_alive(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let interval = all_satisfy(ctx, "ClientAliveInterval", |v| {
        seconds(v).is_some_and(|s| (1..=300).contains(&s))
    })?;
    if matches!(interval, Verdict::Fail { .. }) {
        return Ok(interval);
    }
    all_satisfy(ctx, "ClientAliveCountMax", |v| {
        v.parse::<u64>().is_ok_and(|n| (1..=3).contains(&n))
    })
}

fn weak_kex(name: &str) -> bool {
    name.contains("sha1") || name.contains("group1-")
}

fn weak_cipher(name: &str) -> bool {
    name.contains("cbc") || name.contains("arcfour") || name.contains("3des")
}

fn weak_mac(name: &str) -> bool {
    !name.contains("-etm@")
        || name.contains("sha1")
        || name.contains("md5")
        || name.contains("umac-64")
}

fn algos(
    ctx: &Ctx,
    keyword: &str,
    list: AlgoList,
    weak: fn(&str) -> bool,
) -> anyhow::Result<Verdict> {
    let config = ctx.sshd()?;
    let settings = config.possible(keyword);
    for setting in &settings {
        let names = list.effective(&setting.value);
        let bad =
            names.iter().find(|n| !list.knows(n)).map(|n| format!("unknown to OpenSSH 9.2: {n}"));
        let bad = bad.or_else(|| names.iter().find(|n| weak(n)).map(|n| format!("weak: {n}")));
        if let Some(problem) = bad {
            let (_, at) = described(config, setting);
            return Ok(fail(format!("{problem} ({})", config.origin(setting)), at));
        }
    }
    let (found, at) = described(config, &settings[0]);
    Ok(pass(found, at))
}

fn config_perms(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let config = ctx.sshd()?;
    let dir = tree::stat(ctx.tree, "/etc/ssh")?;
    if let Some(meta) = dir {
        if meta.uid != 0 || meta.mode & 0o022 != 0 {
            return Ok(fail(
                format!("/etc/ssh uid {} mode {:04o}", meta.uid, meta.mode),
                Some(Where::file("/etc/ssh")),
            ));
        }
    }
    for file in &config.files {
        let Some(meta) = tree::stat(ctx.tree, file)? else { continue };
        if meta.uid != 0 || meta.mode & 0o022 != 0 {
            return Ok(fail(
                format!("uid {} mode {:04o}", meta.uid, meta.mode),
                Some(Where::file(file)),
            ));
        }
    }
    Ok(pass(
        format!("{} file(s) root-owned, not writable by others", config.files.len()),
        Some(Where::file(sshd::MAIN)),
    ))
}

/// Keywords sshd accepts inside a `Match` block (sshd_config(5), OpenSSH 9.2).
const MATCH_KEYWORDS: &str =
    "acceptenv allowagentforwarding allowgroups allowstreamlocalforwarding \
allowtcpforwarding allowusers authenticationmethods authorizedkeyscommand \
authorizedkeyscommanduser authorizedkeysfile authorizedprincipalscommand \
authorizedprincipalscommanduser authorizedprincipalsfile banner casignaturealgorithms \
channeltimeout chrootdirectory clientalivecountmax clientaliveinterval denygroups denyusers \
disableforwarding exposeauthinfo forcecommand gatewayports gssapiauthentication \
hostbasedacceptedalgorithms hostbasedauthentication hostbasedusesnamefrompacketonly \
ignorerhosts include ipqos kbdinteractiveauthentication kerberosauthentication loglevel \
maxauthtries maxsessions passwordauthentication permitemptypasswords permitlisten permitopen \
permitrootlogin permittty permittunnel permituserrc pubkeyacceptedalgorithms \
pubkeyauthentication pubkeyauthoptions rekeylimit revokedkeys setenv streamlocalbindmask \
streamlocalbindunlink trustedusercakeys unusedconnectiontimeout x11displayoffset \
x11forwarding x11uselocalhost";

fn config_valid(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let config = ctx.sshd()?;
    let allowed: Vec<&str> = MATCH_KEYWORDS.split_whitespace().collect();
    let bad = config
        .directives
        .iter()
        .find(|d| d.block.is_some() && !allowed.contains(&d.keyword.as_str()));
    Ok(match bad {
        Some(d) => fail(
            format!("`{}` is not allowed inside Match: sshd refuses to start", d.keyword),
            Some(d.at.clone()),
        ),
        None => pass(
            format!("{} Match block(s), keywords allowed", config.blocks.len()),
            Some(Where::file(sshd::MAIN)),
        ),
    })
}

fn allow_users(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let config = ctx.sshd()?;
    let admin = &ctx.expect.admin;
    let mut contexts = vec![None];
    contexts.extend((0..config.blocks.len()).map(Some));
    for block in contexts {
        let lines = config.all("AllowUsers", block);
        let users: Vec<&String> = lines.iter().flat_map(|d| &d.args).collect();
        let at = lines.first().map(|d| d.at.clone()).or_else(|| Some(Where::file(sshd::MAIN)));
        if users.is_empty() || users.iter().any(|u| *u != admin) {
            let found = if users.is_empty() {
                "not set: every user may log in".to_string()
            } else {
                join(&users)
            };
            return Ok(fail(found, at));
        }
    }
    let first = config.all("AllowUsers", None);
    Ok(pass(admin.clone(), first.first().map(|d| d.at.clone())))
}

fn join(items: &[&String]) -> String {
    items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

fn host_key_type(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let config = ctx.sshd()?;
    let keys = config.all("HostKey", None);
    if keys.is_empty() {
        return Ok(fail(
            "no HostKey: sshd loads RSA, ECDSA and ed25519 keys",
            Some(Where::file(sshd::MAIN)),
        ));
    }
    if let Some(d) = keys.iter().find(|d| !d.value().contains("ed25519")) {
        return Ok(fail(d.value(), Some(d.at.clone())));
    }
    let algos = config.get("HostKeyAlgorithms", None);
    let names = AlgoList::Keys.effective(&algos.value);
    if let Some(bad) = names.iter().find(|n| !n.starts_with("ssh-ed25519")) {
        let (_, at) = described(config, &algos);
        return Ok(fail(format!("HostKeyAlgorithms offers {bad}"), at));
    }
    Ok(pass(keys.iter().map(|d| d.value()).collect::<Vec<_>>().join(" "), Some(keys[0].at.clone())))
}

fn user_key_algorithms(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let config = ctx.sshd()?;
    let verdict = algos(ctx, "PubkeyAcceptedAlgorithms", AlgoList::Keys, |n| {
        n.starts_with("ssh-rsa") || n.starts_with("ssh-dss")
    })?;
    if matches!(verdict, Verdict::Fail { .. }) {
        return Ok(verdict);
    }
    let size = config.get("RequiredRSASize", None);
    let (found, at) = described(config, &size);
    if size.value.parse::<u32>().map_or(true, |n| n < crate::sshkey::MIN_RSA_BITS) {
        return Ok(fail(format!("RequiredRSASize {found}"), at));
    }
    Ok(pass(format!("RequiredRSASize {found}"), at))
}

/// The authorized keys files of the admin, `%h`/`%u`/`%%` expanded, relative to the home.
fn authorized_keys_files(ctx: &Ctx) -> anyhow::Result<Vec<String>> {
    let config = ctx.sshd()?;
    let passwd = ctx.accounts("/etc/passwd")?;
    let admin = &ctx.expect.admin;
    let home = crate::audit::accounts::find(&passwd, admin)
        .map(|e| e.field(5).to_string())
        .unwrap_or_default();
    let lines = config.all("AuthorizedKeysFile", None);
    let patterns: Vec<String> = if lines.is_empty() {
        sshd::default_of("authorizedkeysfile").split_whitespace().map(String::from).collect()
    } else {
        lines.iter().flat_map(|d| d.args.clone()).collect()
    };
    Ok(patterns
        .iter()
        .filter(|p| p.as_str() != "none")
        .map(|p| {
            let p = p.replace("%h", &home).replace("%u", admin).replace("%%", "%");
            if p.starts_with('/') {
                p
            } else {
                tree::join(&home, &p)
            }
        })
        .collect())
}

fn embedded_key_accepted(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let config = ctx.sshd()?;
    let accepted = AlgoList::Keys.effective(&config.get("PubkeyAcceptedAlgorithms", None).value);
    let mut count = 0;
    for file in authorized_keys_files(ctx)? {
        let Some(text) = tree::read_text(ctx.tree, &file)? else { continue };
        let has_keys = text.lines().any(|l| !l.trim().is_empty() && !l.trim().starts_with('#'));
        if !has_keys {
            continue;
        }
        let keys = match crate::sshkey::parse_authorized_keys(&without_options(&text)) {
            Ok(keys) => keys,
            Err(e) => return Ok(fail(e, Some(Where::file(&file)))),
        };
        for key in keys {
            count += 1;
            if !key_accepted(key.algorithm(), &accepted) {
                return Ok(fail(
                    format!(
                        "{} key not in PubkeyAcceptedAlgorithms: owner locked out",
                        key.algorithm()
                    ),
                    Some(Where::file(&file)),
                ));
            }
        }
    }
    let ssh_on = ctx.expect.ssh_enabled.unwrap_or(ctx.ssh_enabled()?);
    if count == 0 && ssh_on {
        return Ok(fail("SSH enabled but no authorized key", None));
    }
    Ok(pass(format!("{count} key(s) accepted"), None))
}

/// The key lines with any leading options field (`from="a,b",command="x y",no-pty`) cut off,
/// so the key parser sees `type blob comment`; quoted commas and spaces stay in the options.
fn without_options(text: &str) -> String {
    let key_word =
        |w: &str| w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-");
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start_matches('\u{feff}').trim_start();
        let first = trimmed.split_whitespace().next().unwrap_or("");
        if trimmed.starts_with('#') || first.is_empty() || key_word(first) {
            out.push_str(line);
        } else {
            out.push_str(skip_options(trimmed));
        }
        out.push('\n');
    }
    out
}

/// The rest of a line after its options field (which ends at the first unquoted blank).
fn skip_options(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return line[i..].trim_start(),
            _ => {}
        }
    }
    ""
}

/// Whether a key of `algorithm` can authenticate under the accepted signature algorithms.
fn key_accepted(algorithm: &str, accepted: &[String]) -> bool {
    if algorithm == "ssh-rsa" {
        return accepted
            .iter()
            .any(|a| a == "rsa-sha2-256" || a == "rsa-sha2-512" || a == "ssh-rsa");
    }
    accepted.iter().any(|a| a == algorithm)
}

fn authorized_keys_path(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let admin_uid = ctx.uid_of(&ctx.expect.admin)?;
    let mut checked = 0;
    for file in authorized_keys_files(ctx)? {
        let real = tree::resolve(ctx.tree, &file)?;
        let Some(meta) = ctx.tree.lstat(&real)? else { continue };
        if meta.uid != admin_uid {
            return Ok(fail(
                format!("{real} owned by uid {}, not {} ({admin_uid})", meta.uid, ctx.expect.admin),
                Some(Where::file(&real)),
            ));
        }
        let mut path = String::new();
        for part in std::iter::once("").chain(real.split('/').filter(|p| !p.is_empty())) {
            path = if part.is_empty() { "/".into() } else { tree::join(&path, part) };
            let Some(m) = ctx.tree.lstat(&path)? else { continue };
            let bad_owner = m.uid != 0 && m.uid != admin_uid;
            if bad_owner || m.mode & 0o022 != 0 {
                return Ok(fail(
                    format!(
                        "{path} uid {} mode {:04o}: StrictModes ignores the key",
                        m.uid, m.mode
                    ),
                    Some(Where::file(&path)),
                ));
            }
        }
        checked += 1;
    }
    Ok(pass(format!("{checked} file(s) pass StrictModes"), None))
}

fn no_host_keys(ctx: &Ctx) -> anyhow::Result<Verdict> {
    for name in tree::list(ctx.tree, "/etc/ssh")? {
        let path = tree::join("/etc/ssh", &name);
        let is_file = ctx.tree.lstat(&path)?.is_some_and(|m| m.kind != Kind::Dir);
        if name.starts_with("ssh_host_") && is_file {
            return Ok(fail(format!("{path} is baked into the image"), Some(Where::file(&path))));
        }
    }
    Ok(pass("none", Some(Where::file("/etc/ssh"))))
}

fn host_keys_first_boot(ctx: &Ctx) -> anyhow::Result<Verdict> {
    for name in crate::audit::systemd::own_units(ctx.tree)? {
        let Some(unit) = crate::audit::systemd::load_unit(ctx.tree, &name)? else { continue };
        let before = unit.words("Unit", "Before");
        if !before.iter().any(|b| b == "ssh.service" || b == "sshd.service") {
            continue;
        }
        if !creates_host_keys(ctx, &unit)? {
            continue;
        }
        return Ok(match crate::audit::systemd::enabled_by(ctx.tree, &name)? {
            Some(link) => pass(format!("{name}, before ssh.service"), Some(Where::file(&link))),
            None => fail(
                format!("{name} creates host keys but is not enabled"),
                Some(Where::file(&unit.path)),
            ),
        });
    }
    Ok(fail("no unit ordered before ssh.service creates host keys", None))
}

fn creates_host_keys(ctx: &Ctx, unit: &crate::audit::systemd::Unit) -> anyhow::Result<bool> {
    for line in unit.values("Service", "ExecStart") {
        if line.value.contains("ssh-keygen") {
            return Ok(true);
        }
        let program = line
            .value
            .trim_start_matches(['-', '@', '+', '!', ':'])
            .split_whitespace()
            .next()
            .unwrap_or("");
        if let Some(script) = tree::read_text(ctx.tree, program)? {
            if script.contains("ssh-keygen") {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

//! Kernel controls: sysctl values as finally applied, our file last, the boot command line.

use super::{control, fail, pass, Control, Verdict};
use crate::audit::context::Ctx;
use crate::audit::report::Where;

/// Our sysctl file's name; it must sort after every other.
const OURS: &str = "99-zz-baseimg.conf";
const EXTLINUX: &str = "/boot/extlinux/extlinux.conf";

/// How a sysctl value is judged.
#[derive(Clone, Copy)]
enum Want {
    Is(&'static str),
    AtLeast(i64),
}

const NETWORK: &[(&str, Want)] = &[
    ("net.ipv4.ip_forward", Want::Is("0")),
    ("net.ipv4.conf.all.forwarding", Want::Is("0")),
    ("net.ipv6.conf.all.forwarding", Want::Is("0")),
    ("net.ipv4.conf.all.accept_redirects", Want::Is("0")),
    ("net.ipv4.conf.default.accept_redirects", Want::Is("0")),
    ("net.ipv6.conf.all.accept_redirects", Want::Is("0")),
    ("net.ipv6.conf.default.accept_redirects", Want::Is("0")),
    ("net.ipv4.conf.all.secure_redirects", Want::Is("0")),
    ("net.ipv4.conf.default.secure_redirects", Want::Is("0")),
    ("net.ipv4.conf.all.send_redirects", Want::Is("0")),
    ("net.ipv4.conf.default.send_redirects", Want::Is("0")),
    ("net.ipv4.conf.all.accept_source_route", Want::Is("0")),
    ("net.ipv4.conf.default.accept_source_route", Want::Is("0")),
    ("net.ipv6.conf.all.accept_source_route", Want::Is("0")),
    ("net.ipv6.conf.default.accept_source_route", Want::Is("0")),
    ("net.ipv4.conf.all.rp_filter", Want::Is("1")),
    ("net.ipv4.conf.default.rp_filter", Want::Is("1")),
    ("net.ipv4.tcp_syncookies", Want::Is("1")),
    ("net.ipv4.conf.all.log_martians", Want::Is("1")),
    ("net.ipv4.conf.default.log_martians", Want::Is("1")),
];

/// Per-interface keys where an interface's own value can undo `all` (OR / max semantics).
const PER_INTERFACE: &[(&str, &str, Want)] = &[
    ("ipv4", "rp_filter", Want::Is("1")),
    ("ipv4", "accept_redirects", Want::Is("0")),
    ("ipv4", "secure_redirects", Want::Is("0")),
    ("ipv4", "send_redirects", Want::Is("0")),
    ("ipv6", "accept_redirects", Want::Is("0")),
];

const KERNEL: &[(&str, Want)] = &[
    ("kernel.randomize_va_space", Want::Is("2")),
    ("kernel.kptr_restrict", Want::Is("2")),
    ("kernel.dmesg_restrict", Want::Is("1")),
    ("kernel.yama.ptrace_scope", Want::AtLeast(1)),
    ("fs.suid_dumpable", Want::Is("0")),
    ("kernel.sysrq", Want::Is("0")),
    ("kernel.unprivileged_bpf_disabled", Want::Is("1")),
    ("fs.protected_hardlinks", Want::Is("1")),
    ("fs.protected_symlinks", Want::Is("1")),
    ("fs.protected_fifos", Want::AtLeast(1)),
    ("fs.protected_regular", Want::AtLeast(1)),
];

pub fn controls() -> Vec<Control> {
    vec![
        control("sysctl-network", "CIS 3.3.x, sysctl-01..19", "no forwarding, redirects or source routing; rp_filter=1; syncookies; martians logged", |c| sysctl_set(c, NETWORK, true)),
        control("sysctl-kernel", "CIS 1.5.x, sysctl-20..33", "ASLR 2, kptr 2, dmesg 1, ptrace>=1, no suid dumps, no sysrq, no unpriv BPF, protected links", |c| sysctl_set(c, KERNEL, false)),
        control("sysctl-ours-last", "-", "our sysctl file sorts after every other", ours_last),
        control("kernel-panic-reboot", "C19", "every boot entry's command line has panic=N (N != 0)", panic_arg),
    ]
}

fn satisfied(want: Want, value: &str) -> bool {
    match want {
        Want::Is(v) => value == v,
        Want::AtLeast(n) => value.parse::<i64>().is_ok_and(|v| v >= n),
    }
}

fn describe(want: Want) -> String {
    match want {
        Want::Is(v) => v.to_string(),
        Want::AtLeast(n) => format!(">= {n}"),
    }
}

fn sysctl_set(ctx: &Ctx, wants: &[(&str, Want)], interfaces: bool) -> anyhow::Result<Verdict> {
    let sysctl = ctx.sysctl()?;
    for (key, want) in wants {
        let Some(a) = sysctl.effective(key) else {
            return Ok(fail(
                format!("{key} not set (kernel default), want {}", describe(*want)),
                None,
            ));
        };
        if !satisfied(*want, &a.value) {
            return Ok(fail(
                format!("{key} = {} (want {})", a.value, describe(*want)),
                Some(a.at.clone()),
            ));
        }
    }
    if interfaces {
        for (family, name, want) in PER_INTERFACE {
            let Some(a) = sysctl.per_interface(family, name) else { continue };
            if !satisfied(*want, &a.value) {
                let found = format!(
                    "interfaces present at boot get {} = {} (from `{}`)",
                    name, a.value, a.key
                );
                return Ok(fail(found, Some(a.at.clone())));
            }
        }
    }
    Ok(pass(format!("{} keys as required", wants.len()), None))
}

fn ours_last(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let sysctl = ctx.sysctl()?;
    let Some(last) = sysctl.assignments.last() else {
        return Ok(fail("no sysctl settings at all", None));
    };
    let mut names: Vec<&str> =
        sysctl.assignments.iter().map(|a| a.at.file.rsplit('/').next().unwrap_or("")).collect();
    names.dedup();
    let ours = names.iter().position(|n| *n == OURS);
    match ours {
        None => Ok(fail(format!("{OURS} missing"), None)),
        Some(i) if i + 1 != names.len() => Ok(fail(
            format!("{} sorts after {OURS}", names[names.len() - 1]),
            Some(last.at.clone()),
        )),
        Some(_) => Ok(pass(format!("{OURS} applied last"), Some(Where::file(&last.at.file)))),
    }
}

/// Every `append` line of extlinux.conf (each label's kernel command line).
pub fn append_lines(ctx: &Ctx) -> anyhow::Result<Vec<(String, Where)>> {
    let text = ctx.text(EXTLINUX)?;
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let mut words = trimmed.splitn(2, char::is_whitespace);
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("append")) {
            out.push((words.next().unwrap_or("").to_string(), Where::line(EXTLINUX, index + 1)));
        }
    }
    Ok(out)
}

fn panic_arg(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let lines = append_lines(ctx)?;
    if lines.is_empty() {
        return Ok(fail("no append line", Some(Where::file(EXTLINUX))));
    }
    for (args, at) in &lines {
        let panic = args.split_whitespace().rev().find_map(|w| w.strip_prefix("panic="));
        match panic {
            Some(n) if n.parse::<i64>().is_ok_and(|n| n != 0) => {}
            Some(n) => {
                return Ok(fail(format!("panic={n}: no reboot on a failed boot"), Some(at.clone())))
            }
            None => {
                return Ok(fail(
                    "no panic=: a failed boot leaves a root shell on the console",
                    Some(at.clone()),
                ))
            }
        }
    }
    Ok(pass(format!("panic= on {} boot entr(ies)", lines.len()), Some(lines[0].1.clone())))
}

//! Firewall controls, checked on the saved rules as iptables-restore reads them.

use super::{control, fail, pass, Control, Verdict};
use crate::audit::context::Ctx;
use crate::audit::iptables::{self, Rule, Ruleset};
use crate::audit::report::Where;
use crate::audit::systemd;
use crate::audit::tree;

const V4: &str = "/etc/iptables/rules.v4";
const V6: &str = "/etc/iptables/rules.v6";
/// UDP ports every image declares: mDNS announcements and DHCPv6 replies.
const UDP_DECLARED: &[u16] = &[5353, 546];

pub fn controls() -> Vec<Control> {
    vec![
        control(
            "fw-rules-valid",
            "C7",
            "rules.v4 and rules.v6 present, one COMMIT per table",
            rules_valid,
        ),
        control(
            "fw-policy-drop",
            "CIS 4.4.2.x, 4.4.3.x",
            "INPUT and FORWARD policy DROP, v4 and v6",
            policy_drop,
        ),
        control(
            "fw-loopback",
            "CIS 4.4.2.2, 4.4.3.2",
            "lo accepted; loopback sources elsewhere dropped",
            loopback,
        ),
        control(
            "fw-established",
            "CIS 4.4.2.4, 4.4.3.4",
            "established/related accepted",
            established,
        ),
        control("fw-icmpv6-nd", "C8", "ICMPv6 types 133..136 accepted before any drop", icmpv6_nd),
        control(
            "fw-declared-ports",
            "CIS 4.4.2.3",
            "new connections only on declared ports; SSH only while enabled",
            declared_ports,
        ),
        control(
            "fw-loaded-at-boot",
            "C9",
            "an enabled unit loads both files before network-pre.target",
            loaded_at_boot,
        ),
        control(
            "fw-one-backend",
            "-",
            "iptables and ip6tables on one backend; fail2ban bans with it",
            one_backend,
        ),
        control(
            "fw-match-modules",
            "-",
            "every -m module exists for the image's kernel",
            match_modules,
        ),
    ]
}

fn load(ctx: &Ctx, path: &str) -> anyhow::Result<Result<Ruleset, (String, Where)>> {
    let Some(text) = tree::read_text(ctx.tree, path)? else {
        return Ok(Err(("missing".into(), Where::file(path))));
    };
    Ok(iptables::parse(&text, path))
}

/// Both rule sets, or the failing verdict for the first that does not parse.
fn both(ctx: &Ctx) -> anyhow::Result<Result<[(&'static str, Ruleset); 2], Verdict>> {
    let mut sets = Vec::new();
    for path in [V4, V6] {
        match load(ctx, path)? {
            Ok(set) => sets.push((path, set)),
            Err((message, at)) => return Ok(Err(fail(message, Some(at)))),
        }
    }
    let v6 = sets.pop().expect("two sets");
    let v4 = sets.pop().expect("two sets");
    Ok(Ok([v4, v6]))
}

macro_rules! rule_sets {
    ($ctx:expr) => {
        match both($ctx)? {
            Ok(sets) => sets,
            Err(verdict) => return Ok(verdict),
        }
    };
}

fn rules_valid(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let sets = rule_sets!(ctx);
    let tables: usize = sets.iter().map(|(_, s)| s.tables.len()).sum();
    Ok(pass(format!("{tables} table(s), each committed once"), Some(Where::file(V4))))
}

fn input(set: &Ruleset) -> &[Rule] {
    set.chain("filter", "INPUT").map(|c| c.rules.as_slice()).unwrap_or(&[])
}

fn policy_drop(ctx: &Ctx) -> anyhow::Result<Verdict> {
    for (path, set) in rule_sets!(ctx) {
        for chain in ["INPUT", "FORWARD"] {
            let policy = set
                .chain("filter", chain)
                .map(|c| c.policy.clone())
                .unwrap_or_else(|| "ACCEPT (undeclared)".into());
            if policy != "DROP" {
                return Ok(fail(format!("{chain} policy {policy}"), Some(Where::file(path))));
            }
        }
    }
    Ok(pass("DROP", Some(Where::file(V4))))
}

fn loopback(ctx: &Ctx) -> anyhow::Result<Verdict> {
    for ((path, set), source) in rule_sets!(ctx).into_iter().zip(["127.0.0.0/8", "::1/128"]) {
        let rules = input(&set);
        let lo = rules.iter().position(|r| {
            r.option(&["-i", "--in-interface"]).as_deref() == Some("lo")
                && r.target().as_deref() == Some("ACCEPT")
        });
        let Some(lo) = lo else {
            return Ok(fail("no `-i lo -j ACCEPT`", Some(Where::file(path))));
        };
        let spoof = rules.iter().position(|r| {
            let s = r.option(&["-s", "--source"]).unwrap_or_default();
            let same = s == source || (source == "::1/128" && s == "::1");
            let dropped = matches!(r.target().as_deref(), Some("DROP") | Some("REJECT"));
            same && dropped
        });
        match spoof {
            Some(i) if i > lo || rules[i].option(&["-i"]).as_deref() == Some("!lo") => {}
            _ => {
                return Ok(fail(
                    format!("{source} from other interfaces not dropped after the lo accept"),
                    Some(Where::file(path)),
                ))
            }
        }
    }
    Ok(pass("lo accepted, spoofed loopback dropped", Some(Where::file(V4))))
}

fn established(ctx: &Ctx) -> anyhow::Result<Verdict> {
    for (path, set) in rule_sets!(ctx) {
        let ok = input(&set).iter().any(|r| {
            let state = r.option(&["--ctstate", "--state"]).unwrap_or_default();
            state.contains("ESTABLISHED")
                && state.contains("RELATED")
                && r.target().as_deref() == Some("ACCEPT")
        });
        if !ok {
            return Ok(fail("no RELATED,ESTABLISHED accept", Some(Where::file(path))));
        }
    }
    Ok(pass("accepted", Some(Where::file(V4))))
}

fn nd_type(rule: &Rule) -> Option<u8> {
    let t = rule.option(&["--icmpv6-type"])?;
    match t.as_str() {
        "router-solicitation" => Some(133),
        "router-advertisement" => Some(134),
        "neighbour-solicitation" | "neighbor-solicitation" => Some(135),
        "neighbour-advertisement" | "neighbor-advertisement" => Some(136),
        other => other.split('/').next()?.parse().ok(),
    }
}

fn icmpv6_nd(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let [_, (path, set)] = rule_sets!(ctx);
    let rules = input(&set);
    let all_icmp = |r: &Rule| {
        r.option(&["-p", "--protocol"])
            .is_some_and(|p| p == "ipv6-icmp" || p == "icmpv6" || p == "58")
            && r.option(&["--icmpv6-type"]).is_none()
    };
    let first_drop = rules.iter().position(|r| {
        let drop = matches!(r.target().as_deref(), Some("DROP") | Some("REJECT"));
        drop && r
            .option(&["-s", "--source", "-p", "--protocol", "--ctstate", "--state", "-i"])
            .is_none()
    });
    let limit = first_drop.unwrap_or(rules.len());
    for wanted in 133..=136u8 {
        let ok = rules[..limit].iter().any(|r| {
            r.target().as_deref() == Some("ACCEPT") && (nd_type(r) == Some(wanted) || all_icmp(r))
        });
        if !ok {
            return Ok(fail(
                format!("ICMPv6 type {wanted} not accepted: IPv6 breaks under policy DROP"),
                Some(Where::file(path)),
            ));
        }
    }
    Ok(pass("133..136 accepted", Some(Where::file(path))))
}

/// The chain the ssh unit's drop-in fills with its accept rule while sshd runs.
fn ssh_hook_chain(ctx: &Ctx) -> anyhow::Result<Option<String>> {
    let Some(unit) = systemd::load_unit(ctx.tree, "ssh.service")? else { return Ok(None) };
    for line in unit.values("Service", "ExecStartPre") {
        let words: Vec<&str> = line.value.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "-A" || *w == "-I") {
            if words.contains(&"ACCEPT") && words[0].contains("iptables") {
                return Ok(words.get(i + 1).map(|s| s.to_string()));
            }
        }
    }
    Ok(None)
}

fn ssh_port(ctx: &Ctx) -> anyhow::Result<u16> {
    if let Some(port) = ctx.expect.ssh_port {
        return Ok(port);
    }
    Ok(ctx.sshd()?.get("Port", None).value.parse().unwrap_or(22))
}

/// Why a rule that lets new traffic in is not allowed, if it is not.
fn port_problem(
    ctx: &Ctx,
    rule: &Rule,
    hook: Option<&str>,
    ssh_on: bool,
    ssh_port: u16,
) -> Option<String> {
    let target = rule.target().unwrap_or_default();
    let state = rule.option(&["--ctstate", "--state"]).unwrap_or_default();
    let proto = rule.option(&["-p", "--protocol"]).unwrap_or_default();
    let benign = rule.option(&["-i", "--in-interface"]).as_deref() == Some("lo")
        || (!state.is_empty() && !state.contains("NEW"))
        || proto.contains("icmp")
        || matches!(target.as_str(), "DROP" | "REJECT" | "RETURN" | "LOG");
    if benign || target.is_empty() {
        return None;
    }
    let ports = rule.ports();
    if ports.is_empty() {
        return Some(format!(
            "accepts new {} traffic on every port",
            if proto.is_empty() { "all" } else { &proto }
        ));
    }
    let is_ssh = ports.iter().all(|&(lo, hi)| lo == ssh_port && hi == ssh_port);
    if is_ssh && Some(target.as_str()) == hook {
        return None;
    }
    if is_ssh && !ssh_on {
        return Some(format!("port {ssh_port} open while SSH is disabled"));
    }
    let declared = |port: u16| match proto.as_str() {
        "udp" => UDP_DECLARED.contains(&port),
        _ => port == ctx.expect.https_port || (ssh_on && port == ssh_port),
    };
    ports.iter().find(|&&(lo, hi)| !(lo..=hi).all(declared)).map(|(lo, hi)| {
        if lo == hi {
            format!("undeclared {proto} port {lo}")
        } else {
            format!("undeclared {proto} ports {lo}:{hi}")
        }
    })
}

fn declared_ports(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let sets = rule_sets!(ctx);
    let hook = ssh_hook_chain(ctx)?;
    let ssh_on = ctx.expect.ssh_enabled.unwrap_or(ctx.ssh_enabled()?);
    let ssh_port = ssh_port(ctx)?;
    for (_, set) in &sets {
        for rule in input(set) {
            if let Some(problem) = port_problem(ctx, rule, hook.as_deref(), ssh_on, ssh_port) {
                return Ok(fail(problem, Some(rule.at.clone())));
            }
        }
        if let Some(chain) = hook.as_deref().and_then(|h| set.chain("filter", h)) {
            if let Some(rule) = chain.rules.first().filter(|_| !ssh_on) {
                return Ok(fail(
                    "SSH chain not empty while SSH is disabled",
                    Some(rule.at.clone()),
                ));
            }
        }
    }
    let https_open = sets.iter().all(|(_, s)| {
        input(s).iter().any(|r| r.ports().contains(&(ctx.expect.https_port, ctx.expect.https_port)))
    });
    if !https_open {
        return Ok(fail(
            format!("HTTPS port {} not open", ctx.expect.https_port),
            Some(Where::file(V4)),
        ));
    }
    let ssh = if ssh_on { format!(", SSH {ssh_port} while sshd runs") } else { String::new() };
    Ok(pass(format!("tcp {}{ssh}, udp 5353, 546", ctx.expect.https_port), Some(Where::file(V4))))
}

fn loads(unit: &systemd::Unit, program: &str, file: &str) -> bool {
    unit.values("Service", "ExecStart")
        .iter()
        .chain(unit.values("Service", "ExecStartPre").iter())
        .any(|l| {
            let words: Vec<&str> = l.value.split_whitespace().collect();
            words.first().is_some_and(|w| w.ends_with(program)) && words.contains(&file)
        })
}

fn loaded_at_boot(ctx: &Ctx) -> anyhow::Result<Verdict> {
    if let Some(link) = systemd::enabled_by(ctx.tree, "netfilter-persistent.service")? {
        return Ok(pass("netfilter-persistent.service enabled", Some(Where::file(&link))));
    }
    for name in systemd::own_units(ctx.tree)? {
        let Some(unit) = systemd::load_unit(ctx.tree, &name)? else { continue };
        if !(loads(&unit, "iptables-restore", V4) && loads(&unit, "ip6tables-restore", V6)) {
            continue;
        }
        let Some(link) = systemd::enabled_by(ctx.tree, &name)? else {
            return Ok(fail(
                format!("{name} loads the rules but is not enabled"),
                Some(Where::file(&unit.path)),
            ));
        };
        if !unit.words("Unit", "Before").iter().any(|b| b == "network-pre.target") {
            return Ok(fail(
                format!("{name} is not ordered before network-pre.target"),
                Some(Where::file(&unit.path)),
            ));
        }
        return Ok(pass(format!("{name}, before network-pre.target"), Some(Where::file(&link))));
    }
    Ok(fail("no enabled unit runs iptables-restore and ip6tables-restore on the saved rules", None))
}

/// `nft` or `legacy` for an alternatives link, from its target's name.
fn backend(ctx: &Ctx, name: &str) -> anyhow::Result<Option<&'static str>> {
    let path = format!("/etc/alternatives/{name}");
    if ctx.tree.lstat(&path)?.is_none() {
        return Ok(None);
    }
    let target = ctx.tree.read_link(&path)?;
    Ok(Some(if target.contains("legacy") { "legacy" } else { "nft" }))
}

fn one_backend(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let v4 = backend(ctx, "iptables")?.unwrap_or("nft");
    let v6 = backend(ctx, "ip6tables")?.unwrap_or("nft");
    if v4 != v6 {
        return Ok(fail(
            format!("iptables {v4}, ip6tables {v6}"),
            Some(Where::file("/etc/alternatives/ip6tables")),
        ));
    }
    let jails = super::services::fail2ban_jails(ctx)?;
    if let Some(action) = jails.value("sshd", "banaction") {
        let nft_action = action.0.starts_with("nftables");
        if nft_action && v4 == "legacy" {
            return Ok(fail(
                format!("fail2ban bans with {} but iptables is legacy", action.0),
                Some(action.1.clone()),
            ));
        }
        if !nft_action && !action.0.starts_with("iptables") {
            return Ok(fail(format!("fail2ban bans with {}", action.0), Some(action.1.clone())));
        }
    }
    Ok(pass(format!("{v4} throughout"), Some(Where::file("/etc/alternatives/iptables"))))
}

/// Kernel module folders of the image (`/usr/lib/modules/<version>`).
pub fn module_dirs(ctx: &Ctx) -> anyhow::Result<Vec<String>> {
    let mut dirs = Vec::new();
    for base in ["/usr/lib/modules", "/lib/modules"] {
        for version in tree::list(ctx.tree, base)? {
            let dir = tree::join(base, &version);
            if !dirs.iter().any(|d: &String| d.ends_with(&format!("/{version}"))) {
                dirs.push(dir);
            }
        }
    }
    Ok(dirs)
}

/// Whether a module (by file stem, `xt_conntrack`) is built in or shipped for `dir`'s kernel.
pub fn module_present(ctx: &Ctx, dir: &str, stem: &str) -> anyhow::Result<bool> {
    let builtin = tree::read_text(ctx.tree, &format!("{dir}/modules.builtin"))?.unwrap_or_default();
    let file = format!("/{stem}.ko");
    if builtin.lines().any(|l| l.ends_with(&file)) {
        return Ok(true);
    }
    let mut found = false;
    walk_names(ctx, dir, &mut |name| found |= name.starts_with(&format!("{stem}.ko")))?;
    Ok(found)
}

fn walk_names(ctx: &Ctx, dir: &str, visit: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    for name in tree::list(ctx.tree, dir)? {
        let path = tree::join(dir, &name);
        visit(&name);
        if ctx.tree.lstat(&path)?.is_some_and(|m| m.kind == tree::Kind::Dir) {
            walk_names(ctx, &path, visit)?;
        }
    }
    Ok(())
}

fn match_modules(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let sets = rule_sets!(ctx);
    let dirs = module_dirs(ctx)?;
    let Some(dir) = dirs.first() else {
        return Ok(fail("no kernel modules folder", Some(Where::file("/usr/lib/modules"))));
    };
    let mut checked = std::collections::BTreeSet::new();
    for (_, set) in &sets {
        for chain in set.tables.values().flat_map(|t| t.values()) {
            for rule in &chain.rules {
                for module in rule.modules() {
                    if checked.insert(module.to_string())
                        && !module_present(ctx, dir, &format!("xt_{module}"))?
                    {
                        return Ok(fail(
                            format!("-m {module}: no xt_{module} for {dir}"),
                            Some(rule.at.clone()),
                        ));
                    }
                }
            }
        }
    }
    Ok(pass(format!("{} module(s) present", checked.len()), Some(Where::file(dir))))
}

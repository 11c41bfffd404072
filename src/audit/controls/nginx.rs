//! nginx's configuration as a tree of directives, `include` expanded, and its controls.

use super::{fail, pass, Verdict};
use crate::audit::context::Ctx;
use crate::audit::glob;
use crate::audit::report::Where;
use crate::audit::tree;

const MAIN: &str = "/etc/nginx/nginx.conf";
/// nginx's idle timeout for proxied reads when none is set.
const DEFAULT_READ_TIMEOUT: u64 = 60;

/// One directive; blocks carry their children.
#[derive(Debug, Clone)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub children: Vec<Directive>,
    pub at: Where,
}

impl Directive {
    fn find(&self, name: &str) -> Option<&Directive> {
        self.children.iter().find(|d| d.name == name)
    }
}

fn tokens(text: &str, file: &str) -> Vec<(String, Where)> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let at = Where::line(file, index + 1);
        let mut word = String::new();
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '{' | '}' | ';') => {
                    flush(&mut word, &mut out, &at);
                    out.push((c.to_string(), at.clone()));
                }
                (None, c) if c.is_whitespace() => flush(&mut word, &mut out, &at),
                (None, c) => word.push(c),
            }
        }
        flush(&mut word, &mut out, &at);
    }
    out
}

fn flush(word: &mut String, out: &mut Vec<(String, Where)>, at: &Where) {
    if !word.is_empty() {
        out.push((std::mem::take(word), at.clone()));
    }
}

/// Reads nginx.conf with every `include` expanded in place.
pub fn read(ctx: &Ctx) -> anyhow::Result<Vec<Directive>> {
    let text = ctx.text(MAIN)?;
    let toks = tokens(&text, MAIN);
    let mut pos = 0;
    parse_block(ctx, &toks, &mut pos, 0)
}

fn parse_block(
    ctx: &Ctx,
    toks: &[(String, Where)],
    pos: &mut usize,
    depth: usize,
) -> anyhow::Result<Vec<Directive>> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut start: Option<Where> = None;
    while *pos < toks.len() {
        let (tok, at) = &toks[*pos];
        *pos += 1;
        match tok.as_str() {
            "}" => break,
            ";" | "{" => {
                let Some(name) = words.first().cloned() else { continue };
                let args = words.split_off(1);
                words.clear();
                let at = start.take().unwrap_or_else(|| at.clone());
                let children =
                    if tok == "{" { parse_block(ctx, toks, pos, depth)? } else { Vec::new() };
                if name == "include" && depth < 8 {
                    out.extend(include(ctx, &args, depth)?);
                } else {
                    out.push(Directive { name, args, children, at });
                }
            }
            _ => {
                start.get_or_insert_with(|| at.clone());
                words.push(tok.clone());
            }
        }
    }
    Ok(out)
}

fn include(ctx: &Ctx, args: &[String], depth: usize) -> anyhow::Result<Vec<Directive>> {
    let mut out = Vec::new();
    for pattern in args {
        let absolute = if pattern.starts_with('/') {
            pattern.clone()
        } else {
            tree::join("/etc/nginx", pattern)
        };
        for file in glob::expand(ctx.tree, &absolute)? {
            let Some(text) = tree::read_text(ctx.tree, &file)? else { continue };
            let toks = tokens(&text, &file);
            let mut pos = 0;
            out.extend(parse_block(ctx, &toks, &mut pos, depth + 1)?);
        }
    }
    Ok(out)
}

fn all<'a>(dirs: &'a [Directive], name: &str, out: &mut Vec<&'a Directive>) {
    for d in dirs {
        if d.name == name {
            out.push(d);
        }
        all(&d.children, name, out);
    }
}

fn collect<'a>(dirs: &'a [Directive], name: &str) -> Vec<&'a Directive> {
    let mut out = Vec::new();
    all(dirs, name, &mut out);
    out
}

pub fn hardening(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let conf = read(ctx)?;
    let user = conf.iter().find(|d| d.name == "user");
    if let Some(u) = user.filter(|u| u.args.first().is_some_and(|a| a == "root")) {
        return Ok(fail("workers run as root", Some(u.at.clone())));
    }
    let tokens_off =
        collect(&conf, "server_tokens").iter().any(|d| d.args.first().is_some_and(|a| a == "off"));
    if !tokens_off {
        return Ok(fail(
            "server_tokens not off: the version is in every answer",
            Some(Where::file(MAIN)),
        ));
    }
    if tree::stat(ctx.tree, "/etc/nginx/sites-enabled/default")?.is_some() {
        return Ok(fail(
            "default site enabled",
            Some(Where::file("/etc/nginx/sites-enabled/default")),
        ));
    }
    let protocols = collect(&conf, "ssl_protocols");
    if protocols.is_empty() {
        return Ok(fail(
            "ssl_protocols unset: nginx allows TLSv1 and TLSv1.1",
            Some(Where::file(MAIN)),
        ));
    }
    for d in &protocols {
        if let Some(bad) = d.args.iter().find(|p| !matches!(p.as_str(), "TLSv1.2" | "TLSv1.3")) {
            return Ok(fail(format!("ssl_protocols allows {bad}"), Some(d.at.clone())));
        }
    }
    for d in collect(&conf, "proxy_pass") {
        let url = d.args.first().map(String::as_str).unwrap_or("");
        let host = url.split("://").nth(1).unwrap_or(url);
        let loopback = ["127.", "localhost", "[::1]", "unix:"].iter().any(|p| host.starts_with(p));
        if !loopback {
            return Ok(fail(format!("upstream {url} is not on loopback"), Some(d.at.clone())));
        }
    }
    Ok(pass("hardened", Some(Where::file(MAIN))))
}

/// Seconds of an nginx time value (`120s`, `2m`, `90`).
fn seconds(value: &str) -> Option<u64> {
    let (number, unit) =
        value.split_at(value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len()));
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    number.parse::<u64>().ok().map(|n| n * factor)
}

fn websocket_problem(loc: &Directive) -> Option<String> {
    let version = loc.find("proxy_http_version").and_then(|d| d.args.first().cloned());
    if version.as_deref() != Some("1.1") {
        return Some("no `proxy_http_version 1.1`: the upgrade fails".into());
    }
    let headers: Vec<String> = loc
        .children
        .iter()
        .filter(|d| d.name == "proxy_set_header")
        .filter_map(|d| d.args.first().map(|h| h.to_ascii_lowercase()))
        .collect();
    for header in ["upgrade", "connection"] {
        if !headers.iter().any(|h| h == header) {
            return Some(format!("no `proxy_set_header {header}`: hop-by-hop header dropped"));
        }
    }
    let timeout =
        loc.find("proxy_read_timeout").and_then(|d| d.args.first().and_then(|a| seconds(a)));
    match timeout.unwrap_or(DEFAULT_READ_TIMEOUT) {
        t if t <= DEFAULT_READ_TIMEOUT => {
            Some(format!("proxy_read_timeout {t}s: idle sockets die"))
        }
        _ => None,
    }
}

pub fn websocket(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let conf = read(ctx)?;
    let port = format!(":{}", ctx.expect.middleware_port);
    let mut checked = 0;
    for loc in collect(&conf, "location") {
        let path = loc.args.last().map(String::as_str).unwrap_or("");
        let proxy =
            loc.find("proxy_pass").and_then(|d| d.args.first().cloned()).unwrap_or_default();
        let is_ws = !proxy.is_empty()
            && (path.contains("ws")
                || proxy.contains(&port)
                || loc.find("proxy_set_header").is_some_and(|_| proxy.contains("ws")));
        if !is_ws {
            continue;
        }
        checked += 1;
        if let Some(problem) = websocket_problem(loc) {
            return Ok(fail(format!("location {path}: {problem}"), Some(loc.at.clone())));
        }
    }
    if checked == 0 {
        return Ok(fail("no websocket location proxies the middleware", Some(Where::file(MAIN))));
    }
    Ok(pass(format!("{checked} websocket location(s) upgrade properly"), Some(Where::file(MAIN))))
}

//! udev rules read and evaluated on one event: enough to know what a rule does to a device.

use std::collections::BTreeMap;

use super::confdirs;
use super::glob::fnmatch;
use super::report::Where;
use super::tree::Tree;

const DIRS: &[&str] =
    &["/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"];

/// One `KEY op "value"` of a rule.
#[derive(Debug, Clone)]
struct Term {
    key: String,
    op: String,
    value: String,
}

/// One rule line.
#[derive(Debug, Clone)]
pub struct Rule {
    terms: Vec<Term>,
    at: Where,
}

/// A device event: its keys (`ACTION`, `SUBSYSTEM`, `ENV{DEVTYPE}`, `ATTR{...}`).
#[derive(Debug, Clone)]
pub struct Event {
    keys: BTreeMap<String, String>,
}

impl Event {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        Self { keys: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    fn get(&self, key: &str) -> Option<&String> {
        let parent = key.replacen("ATTRS{", "ATTR{", 1).replacen("SUBSYSTEMS", "SUBSYSTEM", 1);
        self.keys.get(key).or_else(|| self.keys.get(&parent))
    }
}

/// Every rule of the image, files merged by name across the udev folders.
pub fn read_rules(tree: &dyn Tree) -> anyhow::Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for (file, text) in confdirs::read_merged(tree, DIRS, ".rules")? {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            rules.push(Rule { terms: parse_terms(line), at: Where::line(&file, index + 1) });
        }
    }
    Ok(rules)
}

fn parse_terms(line: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    for part in split_commas(line) {
        let Some(op_at) = part.find(['=', '!', '+', ':']) else { continue };
        let key = part[..op_at].trim().to_string();
        let rest = &part[op_at..];
        let op_len = rest.find('"').unwrap_or(rest.len());
        let op = rest[..op_len].trim().to_string();
        let value = rest[op_len..].trim().trim_matches('"').to_string();
        terms.push(Term { key, op, value });
    }
    terms
}

fn split_commas(line: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

fn matches(term: &Term, event: &Event) -> bool {
    let value = event.get(&term.key).map(String::as_str).unwrap_or("");
    let hit = term.value.split('|').any(|alt| fnmatch(alt, value));
    if term.op == "!=" {
        !hit
    } else {
        hit
    }
}

/// The last `ATTR{authorized}` a matching rule assigns to the event, with its line.
pub fn authorized_after(rules: &[Rule], event: &Event) -> Option<(String, Where)> {
    let mut result = None;
    for rule in rules {
        let (tests, assigns): (Vec<&Term>, Vec<&Term>) =
            rule.terms.iter().partition(|t| t.op == "==" || t.op == "!=");
        if !tests.iter().all(|t| matches(t, event)) {
            continue;
        }
        for assign in assigns {
            if assign.key == "ATTR{authorized}" {
                result = Some((assign.value.clone(), rule.at.clone()));
            }
        }
    }
    result
}

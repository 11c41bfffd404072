//! systemd units as systemd loads them: unit folders by priority, drop-ins, `*.wants` links.

use super::report::Where;
use super::tree::{self, Kind, Tree};

/// Unit folders, highest priority first.
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Targets reached on every boot of the appliance: a link in their `.wants` starts a unit.
const BOOT_TARGETS: &[&str] = &[
    "default.target",
    "multi-user.target",
    "graphical.target",
    "basic.target",
    "sysinit.target",
    "sockets.target",
    "timers.target",
    "paths.target",
    "local-fs.target",
    "network.target",
    "network-pre.target",
    "network-online.target",
];

/// One `Key=Value` of a unit, with its section and line.
#[derive(Debug, Clone)]
pub struct UnitLine {
    pub section: String,
    pub key: String,
    pub value: String,
    pub at: Where,
}

/// A unit file with its drop-ins applied in order.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub name: String,
    pub path: String,
    pub lines: Vec<UnitLine>,
}

impl Unit {
    /// Every value of `key` in `section`, an empty assignment resetting the list.
    pub fn values(&self, section: &str, key: &str) -> Vec<&UnitLine> {
        let mut out = Vec::new();
        for line in self.lines.iter().filter(|l| l.section == section && l.key == key) {
            if line.value.is_empty() {
                out.clear();
            } else {
                out.push(line);
            }
        }
        out
    }

    /// The last value of `key` in `section`.
    pub fn get(&self, section: &str, key: &str) -> Option<&UnitLine> {
        self.lines.iter().rev().find(|l| l.section == section && l.key == key)
    }

    /// Every word of every value of a list-valued key (`Before=`, `After=`...).
    pub fn words(&self, section: &str, key: &str) -> Vec<String> {
        self.values(section, key)
            .iter()
            .flat_map(|l| l.value.split_whitespace().map(String::from).collect::<Vec<_>>())
            .collect()
    }
}

/// Parses unit text (continuation lines joined) into `Key=Value` lines.
pub fn parse_unit(text: &str, path: &str, lines: &mut Vec<UnitLine>) {
    let mut section = String::new();
    let mut pending: Option<(String, usize)> = None;
    for (index, raw) in text.lines().enumerate() {
        let (line, start) = match pending.take() {
            Some((mut acc, start)) => {
                acc.push(' ');
                acc.push_str(raw.trim());
                (acc, start)
            }
            None => (raw.trim().to_string(), index + 1),
        };
        if let Some(stripped) = line.strip_suffix('\\') {
            pending = Some((stripped.trim_end().to_string(), start));
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            lines.push(UnitLine {
                section: section.clone(),
                key: key.trim().to_string(),
                value: value.trim().to_string(),
                at: Where::line(path, start),
            });
        }
    }
}

/// The unit file systemd would load for `name` (an instance falls back to its template),
/// or `None` when it is missing or masked.
pub fn find_unit(tree: &dyn Tree, name: &str) -> anyhow::Result<Option<String>> {
    let template = template_of(name);
    for candidate in std::iter::once(name.to_string()).chain(template) {
        for dir in UNIT_DIRS {
            let path = tree::join(dir, &candidate);
            if tree.lstat(&tree::resolve(tree, dir)?)?.is_none() {
                continue;
            }
            if tree::stat(tree, &path)?.is_some() || tree.lstat(&path)?.is_some() {
                if tree::resolve(tree, &path)? == "/dev/null" {
                    return Ok(None);
                }
                return Ok(Some(path));
            }
        }
    }
    Ok(None)
}

fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let suffix = rest.rsplit_once('.')?.1;
    (!rest.starts_with('.')).then(|| format!("{prefix}@.{suffix}"))
}

/// Loads a unit and its drop-ins (`name.d/*.conf` from every folder, by file name).
pub fn load_unit(tree: &dyn Tree, name: &str) -> anyhow::Result<Option<Unit>> {
    let Some(path) = find_unit(tree, name)? else { return Ok(None) };
    let mut unit = Unit { name: name.to_string(), path: path.clone(), lines: Vec::new() };
    if let Some(text) = tree::read_text(tree, &path)? {
        parse_unit(&text, &path, &mut unit.lines);
    }
    let dropin_dirs: Vec<String> = UNIT_DIRS.iter().map(|d| format!("{d}/{name}.d")).collect();
    let dirs: Vec<&str> = dropin_dirs.iter().map(String::as_str).collect();
    for (file, text) in super::confdirs::read_merged(tree, &dirs, ".conf")? {
        parse_unit(&text, &file, &mut unit.lines);
    }
    Ok(Some(unit))
}

/// Where a unit is enabled: the first `*.wants/` or `*.requires/` link of a boot target
/// that names it, or `None` when nothing starts it at boot (or it is masked).
pub fn enabled_by(tree: &dyn Tree, name: &str) -> anyhow::Result<Option<String>> {
    if find_unit(tree, name)?.is_none() {
        return Ok(None);
    }
    for dir in UNIT_DIRS {
        for target in BOOT_TARGETS {
            for kind in ["wants", "requires"] {
                let link = format!("{dir}/{target}.{kind}/{name}");
                let Some(meta) =
                    tree.lstat(&tree::resolve(tree, &format!("{dir}/{target}.{kind}"))?.clone())?
                else {
                    continue;
                };
                if meta.kind != Kind::Dir {
                    continue;
                }
                if tree.lstat(&link)?.is_some() && tree::resolve(tree, &link)? != "/dev/null" {
                    return Ok(Some(link));
                }
            }
        }
    }
    Ok(None)
}

/// Names of the project's own units (`baseimg-*`, `base-middleware*`) found in unit folders.
pub fn own_units(tree: &dyn Tree) -> anyhow::Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    for dir in UNIT_DIRS {
        for name in tree::list(tree, dir)? {
            let ours = name.starts_with("baseimg-") || name.starts_with("base-middleware");
            if ours && (name.ends_with(".service") || name.ends_with(".socket")) {
                names.insert(name);
            }
        }
    }
    Ok(names.into_iter().collect())
}

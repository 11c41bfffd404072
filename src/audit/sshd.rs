//! sshd's configuration read the way sshd reads it: keywords, `Include` in place, `Match` blocks.

use anyhow::Context;

use super::glob;
use super::report::Where;
use super::tree::{self, Tree};

/// The main file, and the folder relative `Include` paths start from.
pub const MAIN: &str = "/etc/ssh/sshd_config";
const SSH_DIR: &str = "/etc/ssh";
/// sshd's own limit on nested `Include`s.
const MAX_DEPTH: usize = 16;

/// Keywords whose every occurrence counts (all others: the first value obtained wins).
const ACCUMULATING: &[&str] = &[
    "hostkey",
    "port",
    "listenaddress",
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "acceptenv",
    "setenv",
    "subsystem",
    "hostcertificate",
    "authorizedkeysfile",
    "permitlisten",
    "permitopen",
    "channeltimeout",
];

/// Old spellings sshd still accepts, mapped to the keyword they set.
const ALIASES: &[(&str, &str)] = &[
    ("challengeresponseauthentication", "kbdinteractiveauthentication"),
    ("pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms"),
    ("hostbasedacceptedkeytypes", "hostbasedacceptedalgorithms"),
    ("skeyauthentication", "kbdinteractiveauthentication"),
];

/// One keyword line, with where it came from and the `Match` block it belongs to.
#[derive(Debug, Clone)]
pub struct Directive {
    pub keyword: String,
    pub args: Vec<String>,
    pub at: Where,
    /// Index into [`SshdConfig::blocks`], or `None` for a global setting.
    pub block: Option<usize>,
}

impl Directive {
    pub fn value(&self) -> String {
        self.args.join(" ")
    }
}

/// A `Match` line: its criteria and where it starts.
#[derive(Debug, Clone)]
pub struct MatchBlock {
    pub criteria: String,
    pub at: Where,
}

/// The whole configuration in reading order, includes expanded.
#[derive(Debug, Default)]
pub struct SshdConfig {
    pub directives: Vec<Directive>,
    pub blocks: Vec<MatchBlock>,
    /// Every file read, in order (the main file first).
    pub files: Vec<String>,
}

/// The value a keyword has for one evaluation context.
#[derive(Debug, Clone)]
pub struct Setting {
    pub value: String,
    /// `None` when the value is sshd's compiled-in default.
    pub at: Option<Where>,
    /// The `Match` block that supplied it, if any.
    pub block: Option<usize>,
}

impl SshdConfig {
    /// Reads `/etc/ssh/sshd_config` of `tree` with every `Include` expanded in place.
    pub fn read(tree: &dyn Tree) -> anyhow::Result<Self> {
        let mut config = Self::default();
        let mut reader = Reader { tree, config: &mut config, block: None };
        reader.file(MAIN, 0)?;
        Ok(config)
    }

    /// Parses one text as the main file (for tests and `sshd -T` output).
    pub fn parse_text(text: &str, file: &str) -> Self {
        let mut config = Self::default();
        let mut reader = Reader { tree: &tree::EmptyTree, config: &mut config, block: None };
        let _ = reader.text(text, file, 0);
        config
    }

    /// The value of `keyword` globally (`block = None`), or for a connection the given
    /// `Match` block applies to: a value set inside the block overrides the global one, as
    /// sshd copies Match values over globals; within each, the first value wins.
    pub fn get(&self, keyword: &str, block: Option<usize>) -> Setting {
        let keyword = canonical(keyword);
        if ACCUMULATING.contains(&keyword.as_str()) {
            let all = self.all(&keyword, block);
            if let Some(first) = all.first() {
                let value = all.iter().map(|d| d.value()).collect::<Vec<_>>().join(" ");
                let block = all.iter().find_map(|d| d.block);
                return Setting { value, at: Some(first.at.clone()), block };
            }
        }
        let in_block = |d: &&Directive| d.keyword == keyword && block.is_some() && d.block == block;
        let global = |d: &&Directive| d.keyword == keyword && d.block.is_none();
        let found =
            self.directives.iter().find(in_block).or_else(|| self.directives.iter().find(global));
        match found {
            Some(d) => Setting { value: d.value(), at: Some(d.at.clone()), block: d.block },
            None => Setting { value: default_of(&keyword).to_string(), at: None, block: None },
        }
    }

    /// Every value of an accumulating keyword in one context, in reading order.
    pub fn all(&self, keyword: &str, block: Option<usize>) -> Vec<&Directive> {
        let keyword = canonical(keyword);
        let of = |b: Option<usize>| -> Vec<&Directive> {
            self.directives.iter().filter(|d| d.keyword == keyword && d.block == b).collect()
        };
        match block.map(|b| of(Some(b))) {
            Some(inside) if !inside.is_empty() => inside,
            _ => of(None),
        }
    }

    /// The global value and the value under every `Match` block that sets the keyword.
    pub fn possible(&self, keyword: &str) -> Vec<Setting> {
        let mut out = vec![self.get(keyword, None)];
        for index in 0..self.blocks.len() {
            let setting = self.get(keyword, Some(index));
            if setting.block.is_some() {
                out.push(setting);
            }
        }
        out
    }

    /// Where a value came from, for the report: the line, or the default with its keyword.
    pub fn origin(&self, setting: &Setting) -> String {
        let under = setting
            .block
            .and_then(|b| self.blocks.get(b))
            .map(|b| format!(" (inside `Match {}` at {})", b.criteria, b.at))
            .unwrap_or_default();
        match &setting.at {
            Some(at) => format!("{at}{under}"),
            None => "sshd default".to_string(),
        }
    }
}

/// The keyword sshd stores a spelling under (lowercase, aliases resolved).
pub fn canonical(keyword: &str) -> String {
    let lower = keyword.to_ascii_lowercase();
    ALIASES.iter().find(|(a, _)| *a == lower).map(|(_, k)| k.to_string()).unwrap_or(lower)
}

/// OpenSSH 9.2's compiled-in default (Debian 12), for keywords the audit checks.
pub fn default_of(keyword: &str) -> &'static str {
    match keyword {
        "permitrootlogin" => "prohibit-password",
        "passwordauthentication" | "kbdinteractiveauthentication" => "yes",
        "pubkeyauthentication" | "strictmodes" | "ignorerhosts" | "debianbanner" => "yes",
        "permitemptypasswords" | "hostbasedauthentication" | "gssapiauthentication" => "no",
        "disableforwarding" | "permittunnel" | "permituserenvironment" | "usepam" => "no",
        "authenticationmethods" => "any",
        "maxauthtries" => "6",
        "logingracetime" => "120",
        "maxstartups" => "10:30:100",
        "clientaliveinterval" => "0",
        "clientalivecountmax" => "3",
        "loglevel" => "INFO",
        "port" => "22",
        "authorizedkeysfile" => ".ssh/authorized_keys .ssh/authorized_keys2",
        "requiredrsasize" => "1024",
        "kexalgorithms" => super::sshd_algos::DEFAULT_KEX,
        "ciphers" => super::sshd_algos::DEFAULT_CIPHERS,
        "macs" => super::sshd_algos::DEFAULT_MACS,
        "hostkeyalgorithms" | "pubkeyacceptedalgorithms" => super::sshd_algos::DEFAULT_KEYS,
        _ => "",
    }
}

struct Reader<'a> {
    tree: &'a dyn Tree,
    config: &'a mut SshdConfig,
    block: Option<usize>,
}

impl Reader<'_> {
    fn file(&mut self, path: &str, depth: usize) -> anyhow::Result<()> {
        anyhow::ensure!(depth <= MAX_DEPTH, "`Include` nested deeper than {MAX_DEPTH} at `{path}`");
        let text = tree::read_text(self.tree, path)?
            .with_context(|| format!("reading sshd config `{path}`: not found"))?;
        self.config.files.push(path.to_string());
        let outer = self.block;
        self.text(&text, path, depth)?;
        self.block = outer;
        Ok(())
    }

    fn text(&mut self, text: &str, file: &str, depth: usize) -> anyhow::Result<()> {
        for (index, line) in text.lines().enumerate() {
            let at = Where::line(file, index + 1);
            let Some((keyword, args)) = split_line(line) else { continue };
            match keyword.as_str() {
                "include" => self.include(&args, &at, depth)?,
                "match" => self.start_match(&args, at),
                _ => {
                    self.config.directives.push(Directive { keyword, args, at, block: self.block })
                }
            }
        }
        Ok(())
    }

    fn include(&mut self, patterns: &[String], at: &Where, depth: usize) -> anyhow::Result<()> {
        for pattern in patterns {
            let absolute = if pattern.starts_with('/') {
                pattern.clone()
            } else {
                tree::join(SSH_DIR, pattern)
            };
            let files = glob::expand(self.tree, &absolute)
                .with_context(|| format!("expanding `Include {pattern}` at {at}"))?;
            for file in files {
                self.file(&file, depth + 1)?;
            }
        }
        Ok(())
    }

    fn start_match(&mut self, args: &[String], at: Where) {
        let criteria = args.join(" ");
        if criteria.eq_ignore_ascii_case("all") && self.block.is_some() {
            self.block = None;
            return;
        }
        self.config.blocks.push(MatchBlock { criteria, at });
        self.block = Some(self.config.blocks.len() - 1);
    }
}

/// Splits a config line into its lowercase canonical keyword and arguments (`key value`,
/// `key=value`, double quotes); `None` for blank lines and comments.
pub fn split_line(line: &str) -> Option<(String, Vec<String>)> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let keyword = canonical(&line[..end]);
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    Some((keyword, split_args(rest)))
}

/// Words of an argument string: whitespace separated, `"..."` quoting, `#` starts a comment.
fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let mut word = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if c == '"' {
                quoted = !quoted;
            } else if c.is_whitespace() && !quoted {
                break;
            } else {
                word.push(c);
            }
            chars.next();
        }
        args.push(word);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_equals_value_and_case_are_one_setting() {
        assert_eq!(
            split_line("PasswordAuthentication=yes"),
            Some(("passwordauthentication".into(), vec!["yes".into()]))
        );
        assert_eq!(
            split_line("  passwordauthentication = no # x"),
            Some(("passwordauthentication".into(), vec!["no".into()]))
        );
        assert_eq!(
            split_line("ChallengeResponseAuthentication yes").map(|l| l.0).as_deref(),
            Some("kbdinteractiveauthentication")
        );
    }

    #[test]
    fn quoted_argument_keeps_its_spaces() {
        assert_eq!(split_args("\"/a b/c\" d"), vec!["/a b/c".to_string(), "d".to_string()]);
    }
}

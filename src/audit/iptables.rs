//! `iptables-save` files parsed per table and chain, with the faults iptables-restore rejects.

use std::collections::BTreeMap;

use super::report::Where;

/// One `-A CHAIN ...` line, its words after the chain name.
#[derive(Debug, Clone)]
pub struct Rule {
    pub words: Vec<String>,
    pub at: Where,
}

impl Rule {
    /// The word after the first of `options` (`-p` / `--protocol` ...), `!` kept as a prefix.
    pub fn option(&self, options: &[&str]) -> Option<String> {
        let index = self.words.iter().position(|w| options.contains(&w.as_str()))?;
        let negated = index > 0 && self.words[index - 1] == "!";
        let value = self.words.get(index + 1)?;
        let value =
            if value == "!" { format!("!{}", self.words.get(index + 2)?) } else { value.clone() };
        Some(if negated { format!("!{value}") } else { value })
    }

    /// The target of `-j` / `--jump` (or `-g`).
    pub fn target(&self) -> Option<String> {
        self.option(&["-j", "--jump", "-g", "--goto"])
    }

    /// The match modules named with `-m` / `--match`.
    pub fn modules(&self) -> Vec<&str> {
        self.words
            .windows(2)
            .filter(|w| w[0] == "-m" || w[0] == "--match")
            .map(|w| w[1].as_str())
            .collect()
    }

    /// The destination ports the rule names (`--dport`, `--dports a,b:c`).
    pub fn ports(&self) -> Vec<(u16, u16)> {
        let Some(spec) =
            self.option(&["--dport", "--destination-port", "--dports", "--destination-ports"])
        else {
            return Vec::new();
        };
        spec.trim_start_matches('!')
            .split(',')
            .map(|p| {
                let (lo, hi) = p.split_once(':').unwrap_or((p, p));
                (lo.parse().unwrap_or(0), hi.parse().unwrap_or(65535))
            })
            .collect()
    }
}

/// One chain: its policy (`-` for user chains) and rules in order.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    pub policy: String,
    pub rules: Vec<Rule>,
}

/// The tables of one rules file.
#[derive(Debug, Default)]
pub struct Ruleset {
    pub tables: BTreeMap<String, BTreeMap<String, Chain>>,
}

impl Ruleset {
    /// A chain of a table, if declared.
    pub fn chain(&self, table: &str, chain: &str) -> Option<&Chain> {
        self.tables.get(table)?.get(chain)
    }
}

/// Parses a rules file; the error names the line iptables-restore would reject.
pub fn parse(text: &str, file: &str) -> Result<Ruleset, (String, Where)> {
    let mut set = Ruleset::default();
    let mut table: Option<String> = None;
    let mut last = 0;
    for (index, line) in text.lines().enumerate() {
        let at = Where::line(file, index + 1);
        let line = line.trim();
        last = index + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            if let Some(open) = &table {
                return Err((format!("table `{name}` starts before `{open}` is committed"), at));
            }
            if set.tables.contains_key(name) {
                return Err((format!("table `{name}` appears twice"), at));
            }
            set.tables.insert(name.to_string(), BTreeMap::new());
            table = Some(name.to_string());
        } else if line == "COMMIT" {
            if table.take().is_none() {
                return Err(("`COMMIT` outside a table (a second COMMIT?)".into(), at));
            }
        } else {
            let Some(name) = &table else {
                return Err((format!("`{line}` outside a table"), at));
            };
            let chains =
                set.tables.get_mut(name).ok_or_else(|| ("no table".to_string(), at.clone()))?;
            add_line(chains, line, at)?;
        }
    }
    match table {
        Some(open) => Err((format!("table `{open}` has no `COMMIT`"), Where::line(file, last))),
        None => Ok(set),
    }
}

fn add_line(
    chains: &mut BTreeMap<String, Chain>,
    line: &str,
    at: Where,
) -> Result<(), (String, Where)> {
    let words: Vec<String> = shell_words(line);
    if let Some(name) = line.strip_prefix(':') {
        let mut parts = name.split_whitespace();
        let chain = parts.next().unwrap_or_default().to_string();
        let policy = parts.next().unwrap_or("-").to_string();
        chains.insert(chain, Chain { policy, rules: Vec::new() });
        return Ok(());
    }
    match words.first().map(String::as_str) {
        Some("-A") | Some("--append") | Some("-I") | Some("--insert") => {
            let Some(chain) = words.get(1).cloned() else {
                return Err((format!("rule without a chain: `{line}`"), at));
            };
            let Some(c) = chains.get_mut(&chain) else {
                return Err((format!("rule for undeclared chain `{chain}`"), at));
            };
            c.rules.push(Rule { words: words.get(2..).unwrap_or_default().to_vec(), at });
            Ok(())
        }
        _ => Err((format!("line iptables-restore does not know: `{line}`"), at)),
    }
}

/// Words of a rule line, double quotes kept together.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    #[test]
    fn append_without_a_chain_is_an_error_not_a_panic() {
        // Found by the audit_iptables fuzz target.
        let err = super::parse("*filter\n:INPUT DROP [0:0]\n-A\nCOMMIT\n", "rules.v4");
        assert!(err.expect_err("refused").0.contains("rule without a chain"));
    }

    use super::*;

    #[test]
    fn second_commit_is_rejected_with_its_line() {
        let err = parse("*filter\n:INPUT DROP [0:0]\nCOMMIT\nCOMMIT\n", "r").unwrap_err();
        assert_eq!(err.1, Where::line("r", 4));
    }

    #[test]
    fn missing_commit_is_rejected() {
        assert!(parse("*filter\n:INPUT DROP [0:0]\n", "r").is_err());
    }
}

//! `/etc/passwd`, `/etc/shadow` and `/etc/group` as tables of fields.

use super::report::Where;

/// One line of a colon-separated account file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub fields: Vec<String>,
    pub at: Where,
}

impl Entry {
    pub fn name(&self) -> &str {
        self.field(0)
    }

    /// The field at `index`, or "" when the line is shorter.
    pub fn field(&self, index: usize) -> &str {
        self.fields.get(index).map(String::as_str).unwrap_or("")
    }

    /// A numeric field (uid, gid, days), if it parses.
    pub fn number(&self, index: usize) -> Option<i64> {
        self.field(index).parse().ok()
    }
}

/// Parses an account file: one entry per non-empty, non-comment line.
pub fn parse(text: &str, file: &str) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| Entry {
            fields: l.split(':').map(String::from).collect(),
            at: Where::line(file, i + 1),
        })
        .collect()
}

/// The entry named `name`.
pub fn find<'a>(entries: &'a [Entry], name: &str) -> Option<&'a Entry> {
    entries.iter().find(|e| e.name() == name)
}

/// Whether a shadow hash cannot match any password (`!...`, `*...`, or not a crypt string).
pub fn hash_is_locked(hash: &str) -> bool {
    hash.starts_with('!') || hash.starts_with('*') || (!hash.is_empty() && !hash.starts_with('$'))
}

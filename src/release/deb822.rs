//! Debian's control-file format (deb822): paragraphs of `Field: value` lines, as in
//! dpkg's status file and machine-readable copyright files.

/// One paragraph: its fields in order, continuation lines joined with newlines.
#[derive(Debug, Default)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// A field's value (field names compare without case, as Debian specifies).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits `text` into paragraphs; lines that are neither fields nor continuations (comments,
/// stray text) are skipped.
pub fn paragraphs(text: &str) -> Vec<Paragraph> {
    let mut out = Vec::new();
    let mut current = Paragraph::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            if !name.starts_with('#') && !name.contains(' ') {
                current.fields.push((name.to_string(), value.trim().to_string()));
            }
        }
    }
    if !current.fields.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nDescription: short\n long\n .\n\n\n\nPackage: b\n";
        let paras = paragraphs(text);
        assert_eq!(paras.len(), 2);
        assert_eq!(paras[0].get("package"), Some("a"));
        assert_eq!(paras[0].get("Description"), Some("short\nlong\n."));
        assert_eq!(paras[1].get("Package"), Some("b"));
    }
}

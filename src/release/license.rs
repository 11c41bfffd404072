//! Licenses from Debian's machine-readable copyright files, as SPDX license expressions.
//!
//! Debian's short names map to SPDX identifiers where one exists; any other name becomes a
//! `LicenseRef-Debian-<name>` that the document declares, so the expression stays valid.

use std::collections::BTreeSet;

use super::deb822;

/// A package's declared license and the license references it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub expression: String,
    pub refs: BTreeSet<String>,
}

/// Debian short name (lowercase) to SPDX identifier.
const SPDX_IDS: &[(&str, &str)] = &[
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-2", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("cc-by-3.0", "CC-BY-3.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("expat", "MIT"),
    ("fsfap", "FSFAP"),
    ("fsfullr", "FSFULLR"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("gfdl-niv-1.3", "GFDL-1.3-no-invariants-only"),
    ("gfdl-niv-1.3+", "GFDL-1.3-no-invariants-or-later"),
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2.0", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-2.0+", "GPL-2.0-or-later"),
    ("gplv2+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3.0", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("gpl-3.0+", "GPL-3.0-or-later"),
    ("gplv3+", "GPL-3.0-or-later"),
    ("isc", "ISC"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.0+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgplv2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("lgpl-3.0+", "LGPL-3.0-or-later"),
    ("lgplv3+", "LGPL-3.0-or-later"),
    ("mit", "MIT"),
    ("mpl-1.1", "MPL-1.1"),
    ("ms-pl", "MS-PL"),
    ("sleepycat", "Sleepycat"),
    ("x11", "X11"),
    ("zlib", "Zlib"),
];

/// The licenses a copyright file states, joined with AND; `None` for a file that is not in
/// the machine-readable format or names no license.
pub fn declared(copyright: &str) -> Option<Declared> {
    let paras = deb822::paragraphs(copyright);
    paras.first()?.get("Format")?;
    let mut exprs = BTreeSet::new();
    let mut refs = BTreeSet::new();
    for (i, para) in paras.iter().enumerate() {
        if i > 0 && para.get("Files").is_none() {
            continue;
        }
        let Some(name) = para.get("License").and_then(|l| l.lines().next()) else { continue };
        if let Some((expr, used)) = expression(name) {
            exprs.insert(expr);
            refs.extend(used);
        }
    }
    if exprs.is_empty() {
        return None;
    }
    let expression = join(exprs.into_iter().collect(), "AND");
    Some(Declared { expression, refs })
}

/// Converts one `License:` line (`GPL-1+ or Artistic, and BSD-3-clause`); `None` when it is
/// prose rather than license names.
fn expression(line: &str) -> Option<(String, BTreeSet<String>)> {
    let mut refs = BTreeSet::new();
    let mut out = String::new();
    for (i, group) in line.split(',').enumerate() {
        let group = group.trim();
        let (joiner, group) = match group.split_once(' ') {
            Some((w @ ("and" | "or"), rest)) if i > 0 => (w.to_uppercase(), rest),
            _ if i > 0 => ("AND".to_string(), group),
            _ => (String::new(), group),
        };
        let expr = group_expression(group, &mut refs)?;
        if i > 0 {
            out = format!("{} {joiner} {}", wrap(&out), wrap(&expr));
        } else {
            out = expr;
        }
    }
    Some((out, refs))
}

/// Names joined by `and`/`or` (`and/or` read as `or`); a `with ... exception` term stays one
/// reference.
fn group_expression(group: &str, refs: &mut BTreeSet<String>) -> Option<String> {
    let mut parts = Vec::new();
    let mut term: Vec<&str> = Vec::new();
    for word in group.split_whitespace() {
        let op = match word.to_ascii_lowercase().as_str() {
            "or" | "and/or" => Some("OR"),
            "and" => Some("AND"),
            _ => None,
        };
        match op {
            Some(op) => {
                parts.push(term_id(&term, refs)?);
                parts.push(op.to_string());
                term.clear();
            }
            None => term.push(word),
        }
    }
    parts.push(term_id(&term, refs)?);
    Some(parts.join(" "))
}

fn term_id(words: &[&str], refs: &mut BTreeSet<String>) -> Option<String> {
    let is_exception = words.len() >= 3
        && words[1].eq_ignore_ascii_case("with")
        && words.last()?.eq_ignore_ascii_case("exception");
    if words.len() != 1 && !is_exception {
        return None;
    }
    let name = words.join(" ");
    let known = SPDX_IDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(&name));
    if let Some((_, id)) = known {
        return Some(id.to_string());
    }
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    let id = format!("LicenseRef-Debian-{clean}");
    refs.insert(id.clone());
    Some(id)
}

fn wrap(expr: &str) -> String {
    if expr.contains(' ') {
        format!("({expr})")
    } else {
        expr.to_string()
    }
}

fn join(exprs: Vec<String>, op: &str) -> String {
    if exprs.len() == 1 {
        return exprs.into_iter().next().unwrap_or_default();
    }
    exprs.iter().map(|e| wrap(e)).collect::<Vec<_>>().join(&format!(" {op} "))
}

/// The declaration SPDX requires for a license reference.
pub fn extracted_info(id: &str) -> serde_json::Value {
    let name = id.trim_start_matches("LicenseRef-Debian-");
    serde_json::json!({
        "licenseId": id,
        "name": name,
        "extractedText": format!(
            "The license Debian names `{name}` in the copyright files under /usr/share/doc \
             in the image; SPDX has no identifier for it. Its text is in those files."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(line: &str) -> Option<String> {
        expression(line).map(|(e, _)| e)
    }

    #[test]
    fn debian_names_become_spdx_expressions() {
        assert_eq!(expr("GPL-2+").as_deref(), Some("GPL-2.0-or-later"));
        assert_eq!(
            expr("GPL-1+ or Artistic").as_deref(),
            Some("GPL-1.0-or-later OR Artistic-1.0-Perl")
        );
        assert_eq!(
            expr("GPL-1+ or Artistic, and BSD-3-clause").as_deref(),
            Some("(GPL-1.0-or-later OR Artistic-1.0-Perl) AND BSD-3-Clause")
        );
        assert_eq!(
            expr("GPL-2+ with OpenSSL exception").as_deref(),
            Some("LicenseRef-Debian-GPL-2--with-OpenSSL-exception")
        );
        assert_eq!(expr("Permission to use, copy, modify"), None);
    }

    #[test]
    fn files_paragraphs_are_joined_and_prose_files_give_none() {
        let text = "Format: https://x\n\nFiles: *\nLicense: BSD-3-clause\n\nFiles: a\n\
                    License: GPL-2\n\nLicense: GPL-2\n Full text...\n";
        let d = declared(text).expect("declared");
        assert_eq!(d.expression, "BSD-3-Clause AND GPL-2.0-only");
        assert!(d.refs.is_empty());
        assert_eq!(declared("This package was debianized by someone.\n"), None);
    }
}

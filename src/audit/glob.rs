//! Shell-style patterns (`*`, `?`, `[...]`) matched against names and expanded in a tree.

use super::tree::{self, Tree};

/// Whether `name` matches the shell pattern `pattern` (no `/` special-casing).
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_from(&p, &n)
}

fn matches_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|skip| matches_from(&p[1..], &n[skip..])),
        Some('?') => !n.is_empty() && matches_from(&p[1..], &n[1..]),
        Some('[') => match (class_end(p), n.first()) {
            (Some(end), Some(c)) => {
                in_class(&p[1..end], *c) && matches_from(&p[end + 1..], &n[1..])
            }
            (None, Some(c)) => *c == '[' && matches_from(&p[1..], &n[1..]),
            (_, None) => false,
        },
        Some(c) => n.first() == Some(c) && matches_from(&p[1..], &n[1..]),
    }
}

fn class_end(p: &[char]) -> Option<usize> {
    let start = if p.get(1) == Some(&'!') || p.get(1) == Some(&'^') { 2 } else { 1 };
    (start + 1..p.len()).find(|&i| p[i] == ']').or_else(|| (start..p.len()).find(|&i| p[i] == ']'))
}

fn in_class(class: &[char], c: char) -> bool {
    let (negate, class) = match class.first() {
        Some('!') | Some('^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut hit = false;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            hit |= class[i] <= c && c <= class[i + 2];
            i += 3;
        } else {
            hit |= class[i] == c;
            i += 1;
        }
    }
    hit != negate
}

fn has_magic(part: &str) -> bool {
    part.contains(['*', '?', '['])
}

/// The paths matching an absolute pattern in `tree`, in name order like glob(3); a pattern
/// without wildcards gives itself only when it exists.
pub fn expand(tree: &dyn Tree, pattern: &str) -> anyhow::Result<Vec<String>> {
    let mut found = vec![String::from("/")];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            if has_magic(part) {
                for name in tree::list(tree, dir)? {
                    if fnmatch(part, &name) && (!name.starts_with('.') || part.starts_with('.')) {
                        next.push(tree::join(dir, &name));
                    }
                }
            } else {
                let path = tree::join(dir, part);
                if tree::stat(tree, &path)?.is_some() {
                    next.push(path);
                }
            }
        }
        found = next;
    }
    found.retain(|p| p != "/");
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_question_and_classes_match_like_the_shell() {
        assert!(fnmatch("*.conf", "50-other.conf"));
        assert!(!fnmatch("*.conf", "50-other.conf.bak"));
        assert!(fnmatch("[0-9]?-x", "50-x"));
        assert!(fnmatch("[!a]*", "b"));
        assert!(!fnmatch("[!a]*", "a"));
    }
}

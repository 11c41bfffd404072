//! SSH public key files under tests/keys/: every `good/` file parses; every `bad/` file is
//! refused with the exact message in its `.err` golden file, and nothing panics.
//! BASEIMG_BLESS=1 rewrites the golden files.

use std::path::{Path, PathBuf};

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/keys").join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

fn message(path: &Path) -> String {
    let err = baseimg::sshkey::read_key_file(path).expect_err("a malformed key must be refused");
    let name = path.file_name().expect("name").to_string_lossy().into_owned();
    format!("{err:#}\n").replace(&path.display().to_string(), &name)
}

#[test]
fn pasted_key_forms_parse() {
    let good = files("good", "pub");
    assert!(good.len() >= 10, "the good corpus has shrunk to {}", good.len());
    let mut algorithms = std::collections::BTreeSet::new();
    for path in good {
        let keys = baseimg::sshkey::read_key_file(&path)
            .unwrap_or_else(|e| panic!("{} is refused: {e:#}", path.display()));
        for key in keys {
            assert!(!key.line().contains(['\r', '\n', '\u{feff}']), "{}", path.display());
            assert_eq!(key.line(), key.line().trim(), "{}", path.display());
            algorithms.insert(key.algorithm().to_string());
        }
    }
    for wanted in [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ] {
        assert!(algorithms.contains(wanted), "no good key of type {wanted}: {algorithms:?}");
    }
}

#[test]
fn every_malformed_key_fails_with_its_golden_message() {
    let bad = files("bad", "pub");
    assert!(bad.len() >= 30, "the bad corpus has shrunk to {}", bad.len());
    let bless = std::env::var_os("BASEIMG_BLESS").is_some();
    let mut mismatches = Vec::new();
    for path in &bad {
        let got = message(path);
        let golden = path.with_extension("err");
        if bless {
            std::fs::write(&golden, &got).expect("bless");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            mismatches.push(format!("{}:\n--- want\n{want}--- got\n{got}", path.display()));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

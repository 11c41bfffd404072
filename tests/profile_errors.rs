//! Malformed profiles under tests/profiles/bad/: each fails with the exact message in its
//! `.err` golden file (file, line, column, value and hint). BASEIMG_BLESS=1 rewrites them.

use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/profiles/bad")
}

fn error_text(path: &Path) -> String {
    let err = baseimg::profile::load(path).expect_err("a malformed profile must be refused");
    let name = path.file_name().expect("name").to_string_lossy().into_owned();
    format!("{err:#}\n").replace(&path.display().to_string(), &name)
}

#[test]
fn every_malformed_profile_fails_with_its_golden_message() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 50, "the corpus has shrunk to {}", cases.len());
    let bless = std::env::var_os("BASEIMG_BLESS").is_some();
    let mut mismatches = Vec::new();
    for case in &cases {
        let got = error_text(case);
        let golden = case.with_extension("err");
        if bless {
            std::fs::write(&golden, &got).expect("bless");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            mismatches.push(format!("{}:\n--- want\n{want}--- got\n{got}", case.display()));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn shipped_profiles_parse() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for name in ["rockpro64", "qemu-arm64"] {
        let path = root.join(format!("image-profiles/{name}.toml"));
        let loaded = baseimg::profile::load(&path).expect("shipped profile parses");
        assert_eq!(loaded.profile.image.name.as_str(), name);
        assert!(!loaded.profile.ssh.enabled, "SSH must be off by default");
    }
}

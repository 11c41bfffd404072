//! The good baseline passes every control, from a tarball and from a folder.

#[path = "audit_harness.rs"]
mod harness;

use harness::{failures, Fixture};

#[test]
fn good_baseline_passes_every_control() {
    let report = Fixture::good().audit();
    assert_eq!(failures(&report), Vec::<String>::new());
    assert!(report.passed > 40, "{} passed", report.passed);
}

#[test]
fn waived_control_is_reported_waived_not_passed() {
    let mut f = Fixture::good();
    f.replace("/etc/ssh/sshd_config", "MaxStartups 10:30:60", "MaxStartups 100");
    let waivers = baseimg::audit::waivers_from_profile("[audit]\nwaive = [\"ssh-max-startups\"]\n")
        .expect("waivers parse");
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("w.rootfs.tar");
    f.write_tar(&tar);
    let tree = baseimg::audit::open(&tar).expect("opens");
    let report = baseimg::audit::audit(tree.as_ref(), f.expect.clone(), &waivers, "w");
    assert_eq!(
        harness::status(&report, "ssh-max-startups"),
        baseimg::audit::report::Status::Waived
    );
    assert_eq!(report.failed, 0);
}

#[test]
fn waiver_of_unknown_control_is_an_error() {
    let err = baseimg::audit::waivers_from_profile("[audit]\nwaive = [\"ssh-max-startup\"]\n")
        .expect_err("typo rejected");
    assert!(err.to_string().contains("ssh-max-startup"), "{err}");
}

#[test]
fn folder_and_tarball_give_the_same_verdicts() {
    let f = Fixture::good();
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("t.rootfs.tar");
    f.write_tar(&tar);
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).expect("tar"));
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(nix_root());
    archive.unpack(&root).expect("unpack");
    let from_tar = baseimg::audit::audit(
        baseimg::audit::open(&tar).expect("tar").as_ref(),
        f.expect.clone(),
        &[],
        "t",
    );
    let from_dir = baseimg::audit::audit(
        baseimg::audit::open(&root).expect("dir").as_ref(),
        f.expect.clone(),
        &[],
        "d",
    );
    let owner_bound = [
        "ssh-authorized-keys-path",
        "acct-file-perms",
        "acct-setuid-allowlist",
        "ssh-config-perms",
    ];
    for (a, b) in from_tar.findings.iter().zip(&from_dir.findings) {
        if !owner_bound.contains(&a.control) || nix_root() {
            assert_eq!(a.status, b.status, "{}: tar {:?}, dir {:?}", a.control, a, b);
        }
    }
}

/// Whether the tests run as root (only then does unpacking keep owners).
fn nix_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

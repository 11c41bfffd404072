use super::*;

const MINIMAL: &str = r#"
format = 1
[image]
name = "t"
board = "qemu-arm64"
hostname = "t"
source_date_epoch = 0
[base]
suite = "bookworm"
packages = ["systemd", "systemd-sysv", "udev", "linux-image-arm64", "initramfs-tools",
  "openssh-server", "iptables", "fail2ban", "python3-systemd", "nginx-light", "openssl", "sudo"]
"#;

#[test]
fn minimal_profile_takes_secure_defaults() {
    let p = parse(MINIMAL).expect("minimal profile parses");
    assert!(!p.ssh.enabled);
    assert_eq!(p.ssh.port.get(), 22);
    assert_eq!(p.network.https_port.get(), 443);
    assert_eq!(p.kernel.panic_seconds, 10);
    assert!(p.ssh.authorized_keys.is_empty());
}

#[test]
fn misspelt_key_points_at_its_line_with_a_hint() {
    let text = MINIMAL.replace("hostname = ", "hostnam = ");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.hint.as_deref(), Some("did you mean `hostname`?"));
    let rendered = err.render(Path::new("p.toml"), &text);
    assert!(rendered.starts_with("p.toml:6:1: unknown field `hostnam`"), "{rendered}");
}

#[test]
fn far_off_key_gets_no_hint() {
    let text = MINIMAL.replace("hostname = ", "zzzzzzzzzz = ");
    assert_eq!(parse(&text).unwrap_err().hint, None);
}

#[test]
fn line_and_column_count_characters_not_bytes() {
    assert_eq!(line_column("a\nbé=x", 5), (2, 3));
    assert_eq!(line_column("", 0), (1, 1));
}

#[test]
fn names_resolve_to_the_profiles_folder_and_paths_stay_paths() {
    let project = Path::new("/p");
    assert_eq!(resolve(project, "rockpro64"), Path::new("/p/image-profiles/rockpro64.toml"));
    assert_eq!(resolve(project, "x/y.toml"), Path::new("x/y.toml"));
    assert_eq!(resolve(project, "my.toml"), Path::new("my.toml"));
}

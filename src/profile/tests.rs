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
fn errors_found_after_parsing_point_at_their_key() {
    let text = MINIMAL.to_string() + "[disk]  # sizes\nsize_mib = 2048\ndata_size_mib = 4000\n";
    let err = parse(&text).unwrap_err();
    let rendered = err.render(Path::new("p.toml"), &text);
    assert!(rendered.starts_with("p.toml:14:1: disk.data_size_mib = 4000"), "{rendered}");
    let ports = MINIMAL.to_string() + "[middleware]\nport = 443\n";
    let rendered = parse(&ports).unwrap_err().render(Path::new("p.toml"), &ports);
    assert!(
        rendered.starts_with("p.toml:13:1: network.https_port and middleware.port"),
        "{rendered}"
    );
}

#[test]
fn error_lines_cannot_drive_the_terminal() {
    assert_eq!(shown_line("a\u{1b}[2Jb\0"), "a\\u{1b}[2Jb\\u{0}");
    assert!(shown_line(&"x".repeat(500)).ends_with(" …"));
}

#[test]
fn bytes_that_are_not_utf8_are_located() {
    let err = decode(b"format = 1\n# caf\xe9\n").expect_err("not UTF-8");
    assert_eq!(err.message, "line 2, column 6: byte 0xe9 is not UTF-8; profiles are UTF-8 text");
    assert_eq!(decode(b"\xef\xbb\xbfformat = 1\n").expect("BOM skipped"), "format = 1\n");
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

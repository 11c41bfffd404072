//! Cases C1..C19 of hardening-cases.md that concern the audit, each over its whole kind.

#[path = "audit_harness.rs"]
mod harness;

use harness::{assert_fails, assert_passes, Fixture};

const SSHD: &str = "/etc/ssh/sshd_config";
const DROPIN: &str = "/etc/ssh/sshd_config.d/50-other.conf";

fn with_include_first(f: &mut Fixture, pattern: &str) {
    f.prepend(SSHD, &format!("Include {pattern}\n"));
}

#[test]
fn c1_dropin_included_first_wins_over_main_file() {
    let mut f = Fixture::good();
    f.write(DROPIN, "PasswordAuthentication yes\n");
    with_include_first(&mut f, "/etc/ssh/sshd_config.d/*.conf");
    let found = assert_fails(&f.audit(), "ssh-password-auth");
    assert!(found.contains("50-other.conf:1"), "{found}");
}

#[test]
fn c1_relative_include_resolves_from_etc_ssh() {
    let mut f = Fixture::good();
    f.write(DROPIN, "passwordauthentication=YES\n");
    with_include_first(&mut f, "sshd_config.d/*.conf");
    assert_fails(&f.audit(), "ssh-password-auth");
}

#[test]
fn c1_include_in_the_middle_wins_for_keywords_set_later() {
    let mut f = Fixture::good();
    f.write(DROPIN, "KbdInteractiveAuthentication yes\n");
    f.replace(SSHD, "PermitRootLogin no\n", "PermitRootLogin no\nInclude sshd_config.d/*.conf\n");
    assert_fails(&f.audit(), "ssh-kbd-interactive");
}

#[test]
fn c1_alias_spelling_counts_as_the_same_keyword() {
    let mut f = Fixture::good();
    f.write(DROPIN, "ChallengeResponseAuthentication yes\n");
    with_include_first(&mut f, "sshd_config.d/*.conf");
    assert_fails(&f.audit(), "ssh-kbd-interactive");
}

#[test]
fn c1_glob_files_are_read_in_name_order() {
    let mut f = Fixture::good();
    f.write("/etc/ssh/sshd_config.d/10-first.conf", "PasswordAuthentication no\n");
    f.write("/etc/ssh/sshd_config.d/90-last.conf", "PasswordAuthentication yes\n");
    with_include_first(&mut f, "sshd_config.d/*.conf");
    assert_passes(&f.audit(), "ssh-password-auth");
    f.write("/etc/ssh/sshd_config.d/05-early.conf", "PasswordAuthentication yes\n");
    assert_fails(&f.audit(), "ssh-password-auth");
}

#[test]
fn c1_nested_include_expands_in_place() {
    let mut f = Fixture::good();
    f.write("/etc/ssh/sshd_config.d/10-outer.conf", "Include /etc/ssh/extra/*.conf\n");
    f.write("/etc/ssh/extra/1.conf", "PermitRootLogin yes\n");
    with_include_first(&mut f, "sshd_config.d/*.conf");
    assert_fails(&f.audit(), "ssh-root-login");
}

#[test]
fn c1_include_after_the_setting_does_not_win() {
    let mut f = Fixture::good();
    f.write(DROPIN, "PasswordAuthentication yes\n");
    f.append(SSHD, "Include sshd_config.d/*.conf\n");
    assert_passes(&f.audit(), "ssh-password-auth");
}

#[test]
fn c2_setting_after_match_is_conditional_so_global_is_debian_default() {
    let mut f = Fixture::good();
    f.replace(SSHD, "PermitRootLogin no\n", "");
    f.append(SSHD, "Match User sftp\n  ForceCommand internal-sftp\nPermitRootLogin no\n");
    let found = assert_fails(&f.audit(), "ssh-root-login");
    assert!(found.contains("prohibit-password"), "{found}");
}

#[test]
fn c2_any_match_criterion_that_loosens_a_control_fails_it() {
    for criteria in
        ["User base", "Address 10.0.0.0/8", "Group sudo", "Host *", "LocalPort 22", "User *,!root"]
    {
        let mut f = Fixture::good();
        f.append(SSHD, &format!("Match {criteria}\n    PasswordAuthentication yes\n"));
        let found = assert_fails(&f.audit(), "ssh-password-auth");
        assert!(found.contains(criteria), "Match {criteria}: {found}");
    }
}

#[test]
fn c2_match_inside_an_included_file_ends_with_that_file() {
    let mut f = Fixture::good();
    f.write(DROPIN, "Match User sftp\n  ForceCommand internal-sftp\n");
    f.replace(SSHD, "PermitRootLogin no\n", "Include sshd_config.d/*.conf\nPermitRootLogin no\n");
    assert_passes(&f.audit(), "ssh-root-login");
}

#[test]
fn c2_match_all_returns_to_global_settings() {
    let mut f = Fixture::good();
    f.replace(
        SSHD,
        "PermitRootLogin no\n",
        "Match User x\n  X11Forwarding no\nMatch all\nPermitRootLogin no\n",
    );
    assert_passes(&f.audit(), "ssh-root-login");
}

#[test]
fn c3_keyword_not_allowed_inside_match_fails_config_validity() {
    let mut f = Fixture::good();
    f.append(SSHD, "Match User x\n  PrintMotd no\n");
    let found = assert_fails(&f.audit(), "ssh-config-valid");
    assert!(found.contains("printmotd"), "{found}");
}

#[test]
fn c4_algorithm_unknown_to_the_image_openssh_fails() {
    let mut f = Fixture::good();
    f.replace(SSHD, "KexAlgorithms ", "KexAlgorithms mlkem768x25519-sha256,");
    let found = assert_fails(&f.audit(), "ssh-kex");
    assert!(found.contains("mlkem768x25519-sha256"), "{found}");
}

#[test]
fn c4_plus_list_adds_to_defaults_and_sha1_is_caught() {
    let mut f = Fixture::good();
    f.replace(
        SSHD,
        "MACs hmac-sha2-256-etm@openssh.com,",
        "MACs +hmac-sha1,hmac-sha2-256-etm@openssh.com,",
    );
    assert_fails(&f.audit(), "ssh-macs");
}

#[test]
fn c5_bang_lock_without_pam_locks_out_the_key() {
    let mut f = Fixture::good();
    f.replace("/etc/shadow", "base:!*:20423:0:99999:7:::", "base:!:19000:0:99999:7:::");
    f.replace(SSHD, "UsePAM yes", "UsePAM no");
    let found = assert_fails(&f.audit(), "acct-admin-locked");
    assert!(found.contains("UsePAM no"), "{found}");
}

#[test]
fn c5_star_lock_without_pam_keeps_the_key() {
    let mut f = Fixture::good();
    f.replace("/etc/shadow", "base:!*:", "base:*:");
    f.replace(SSHD, "UsePAM yes", "UsePAM no");
    assert_passes(&f.audit(), "acct-admin-locked");
}

#[test]
fn c5_account_expired_in_the_past_blocks_the_key() {
    let mut f = Fixture::good();
    f.replace("/etc/shadow", "base:!*:20423:0:99999:7:::", "base:!*:20423:0:99999:7::1:");
    assert_fails(&f.audit(), "acct-admin-locked");
}

#[test]
fn c6_group_writable_component_is_named() {
    for path in ["/home/base/.ssh/authorized_keys", "/home/base/.ssh", "/home/base", "/home"] {
        let mut f = Fixture::good();
        let mode = f.nodes[path].mode | 0o020;
        f.chmod(path, mode);
        let found = assert_fails(&f.audit(), "ssh-authorized-keys-path");
        assert!(found.contains(path), "{path}: {found}");
    }
}

#[test]
fn c6_numeric_owner_that_is_not_base_is_named() {
    let mut f = Fixture::good();
    f.chown("/home/base/.ssh/authorized_keys", 1001, 1001);
    let found = assert_fails(&f.audit(), "ssh-authorized-keys-path");
    assert!(found.contains("1001"), "{found}");
    let mut f = Fixture::good();
    f.chown("/home/base/.ssh", 1001, 1001);
    assert!(assert_fails(&f.audit(), "ssh-authorized-keys-path").contains("/home/base/.ssh"));
}

#[test]
fn c7_second_commit_fails_with_its_line() {
    let mut f = Fixture::good();
    f.append("/etc/iptables/rules.v6", "COMMIT\n");
    let found = assert_fails(&f.audit(), "fw-rules-valid");
    assert!(found.contains("rules.v6:"), "{found}");
}

#[test]
fn c8_missing_ipv6_rules_fail() {
    let mut f = Fixture::good();
    f.remove("/etc/iptables/rules.v6");
    assert_fails(&f.audit(), "fw-rules-valid");
    assert_fails(&f.audit(), "fw-policy-drop");
}

#[test]
fn c8_ipv6_drop_without_neighbour_discovery_fails() {
    for t in 133..=136 {
        let mut f = Fixture::good();
        f.replace(
            "/etc/iptables/rules.v6",
            &format!("-A INPUT -p ipv6-icmp --icmpv6-type {t} -j ACCEPT\n"),
            "",
        );
        assert_fails(&f.audit(), "fw-icmpv6-nd");
    }
}

#[test]
fn c9_rules_without_an_enabled_loader_fail() {
    let mut f = Fixture::good();
    f.remove("/etc/systemd/system/sysinit.target.wants/baseimg-firewall.service");
    assert_fails(&f.audit(), "fw-loaded-at-boot");
    let mut f = Fixture::good();
    f.symlink("/etc/systemd/system/baseimg-firewall.service", "/dev/null");
    assert_fails(&f.audit(), "fw-loaded-at-boot");
}

#[test]
fn c10_default_backend_on_debian_12_fails() {
    let mut f = Fixture::good();
    f.replace("/etc/fail2ban/jail.d/baseimg.local", "backend = systemd\n", "");
    f.write("/etc/fail2ban/jail.conf", "[DEFAULT]\nbackend = auto\n[sshd]\nport = ssh\n");
    assert_fails(&f.audit(), "fail2ban-sshd-jail");
}

#[test]
fn c10_systemd_backend_without_python_module_fails() {
    let mut f = Fixture::good();
    f.remove("/usr/lib/python3/dist-packages/systemd");
    assert!(assert_fails(&f.audit(), "fail2ban-sshd-jail").contains("python3-systemd"));
}

#[test]
fn c10_later_local_file_overrides_the_backend() {
    let mut f = Fixture::good();
    f.write("/etc/fail2ban/jail.d/zz-vendor.local", "[sshd]\nbackend = pyinotify\n");
    assert_fails(&f.audit(), "fail2ban-sshd-jail");
}

#[test]
fn c11_keyboard_deauthorized_storage_kept() {
    assert_passes(&Fixture::good().audit(), "usb-hid-deauthorized");
}

#[test]
fn c11_device_wide_deauthorization_breaks_storage_and_fails() {
    let mut f = Fixture::good();
    f.write(
        "/etc/udev/rules.d/10-all.rules",
        "ACTION==\"add\", SUBSYSTEM==\"usb\", ATTR{authorized}=\"0\"\n",
    );
    assert_fails(&f.audit(), "usb-hid-deauthorized");
}

#[test]
fn c11_later_rule_reauthorizing_hid_fails() {
    let mut f = Fixture::good();
    f.write(
        "/usr/lib/udev/rules.d/99-vendor.rules",
        "ACTION==\"add\", ATTR{bInterfaceClass}==\"03\", ATTR{authorized}=\"1\"\n",
    );
    assert_fails(&f.audit(), "usb-hid-deauthorized");
}

#[test]
fn c11_authorized_default_zero_on_the_command_line_fails() {
    let mut f = Fixture::good();
    f.replace("/boot/extlinux/extlinux.conf", "panic=10", "panic=10 usbcore.authorized_default=0");
    assert_fails(&f.audit(), "usb-hid-deauthorized");
}

#[test]
fn c12_bare_websocket_location_fails() {
    let mut f = Fixture::good();
    let conf = "/etc/nginx/nginx.conf";
    let text = f.text(conf);
    let start = text.find("location = /api/ws").expect("ws location");
    let end = start + text[start..].find('}').expect("block end") + 1;
    let bare = "location /ws { proxy_pass http://127.0.0.1:8845; }";
    f.write(conf, &format!("{}{bare}{}", &text[..start], &text[end..]));
    assert_fails(&f.audit(), "nginx-websocket");
}

#[test]
fn c12_default_read_timeout_fails() {
    let mut f = Fixture::good();
    f.replace("/etc/nginx/nginx.conf", "proxy_read_timeout 120s;", "");
    assert!(assert_fails(&f.audit(), "nginx-websocket").contains("60s"));
}

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII90CeMx/+iVwm1ZJwxVvl6RlBnFN0drecY3bDFVZHoL";

#[test]
fn c13_key_with_options_and_spaced_comment_is_accepted() {
    let mut f = Fixture::good();
    let line = format!(
        "from=\"10.0.0.1,10.0.0.2\",command=\"/usr/bin/x --a b\",no-pty {ED25519} my laptop\n"
    );
    f.write("/home/base/.ssh/authorized_keys", &line);
    let report = f.audit();
    assert_passes(&report, "ssh-embedded-key-accepted");
    assert!(report.get("ssh-embedded-key-accepted").expect("control").found.starts_with("1 key"));
}

#[test]
fn c13_key_type_not_accepted_by_sshd_locks_the_owner_out() {
    let mut f = Fixture::good();
    let ecdsa = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/audit-keys/ecdsa.pub"
    ))
    .expect("key");
    f.write("/home/base/.ssh/authorized_keys", &ecdsa);
    f.replace(
        SSHD,
        "PubkeyAcceptedAlgorithms ssh-ed25519,",
        "PubkeyAcceptedAlgorithms ssh-ed25519,rsa-sha2-512\n#",
    );
    assert!(assert_fails(&f.audit(), "ssh-embedded-key-accepted").contains("ecdsa-sha2-nistp256"));
}

#[test]
fn c14_bom_and_crlf_key_file_is_read() {
    let mut f = Fixture::good();
    f.write("/home/base/.ssh/authorized_keys", &format!("\u{feff}{ED25519} laptop\r\n"));
    assert_passes(&f.audit(), "ssh-embedded-key-accepted");
}

#[test]
fn c14_utf16_key_file_fails() {
    let mut f = Fixture::good();
    let utf16: Vec<u8> = ED25519.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    f.write_bytes("/home/base/.ssh/authorized_keys", utf16);
    assert_fails(&f.audit(), "ssh-embedded-key-accepted");
}

#[test]
fn c15_small_rsa_key_fails() {
    let mut f = Fixture::good();
    let rsa = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/audit-keys/rsa2048.pub"
    ))
    .expect("key");
    f.write("/home/base/.ssh/authorized_keys", &rsa);
    assert!(assert_fails(&f.audit(), "ssh-embedded-key-accepted").contains("3072"));
}

#[test]
fn c18_baked_host_key_or_machine_id_fails() {
    let mut f = Fixture::good();
    f.write("/etc/ssh/ssh_host_ed25519_key", "secret");
    assert_fails(&f.audit(), "ssh-no-host-keys");
    let mut f = Fixture::good();
    f.write("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    assert_fails(&f.audit(), "acct-machine-id-empty");
    let mut f = Fixture::good();
    f.remove("/etc/systemd/system/multi-user.target.wants/baseimg-firstboot.service");
    assert_fails(&f.audit(), "ssh-host-keys-first-boot");
}

#[test]
fn c19_missing_or_zero_panic_fails() {
    for replacement in ["", "panic=0"] {
        let mut f = Fixture::good();
        f.replace("/boot/extlinux/extlinux.conf", "panic=10", replacement);
        assert_fails(&f.audit(), "kernel-panic-reboot");
    }
}

#[test]
fn c19_second_boot_entry_without_panic_fails() {
    let mut f = Fixture::good();
    f.append(
        "/boot/extlinux/extlinux.conf",
        "\nlabel rescue\n    kernel /boot/vmlinuz\n    append root=/dev/sda2 ro\n",
    );
    assert_fails(&f.audit(), "kernel-panic-reboot");
}

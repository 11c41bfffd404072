//! Mutation test: each known misconfiguration, applied alone to the good tree, must be caught.

#[path = "audit_harness.rs"]
mod harness;

use baseimg::audit::report::Status;
use harness::Fixture;

const SSHD: &str = "/etc/ssh/sshd_config";
const V4: &str = "/etc/iptables/rules.v4";
const V6: &str = "/etc/iptables/rules.v6";
const SYSCTL: &str = "/etc/sysctl.d/99-zz-baseimg.conf";

type Mutation = fn(&mut Fixture);

/// (name, control that must fail, mutation).
fn mutants() -> Vec<(&'static str, &'static str, Mutation)> {
    vec![
        ("sshd_config group-writable", "ssh-config-perms", |f| {
            f.chmod(SSHD, 0o664);
        }),
        ("sshd_config owned by a user", "ssh-config-perms", |f| {
            f.chown(SSHD, 1000, 0);
        }),
        ("root login with key", "ssh-root-login", |f| {
            f.replace(SSHD, "PermitRootLogin no", "PermitRootLogin prohibit-password");
        }),
        ("root login line removed", "ssh-root-login", |f| {
            f.replace(SSHD, "PermitRootLogin no\n", "");
        }),
        ("passwords on", "ssh-password-auth", |f| {
            f.replace(SSHD, "PasswordAuthentication no", "PasswordAuthentication yes");
        }),
        ("keyboard-interactive on", "ssh-kbd-interactive", |f| {
            f.replace(SSHD, "KbdInteractiveAuthentication no", "KbdInteractiveAuthentication yes");
        }),
        ("empty passwords", "ssh-empty-passwords", |f| {
            f.replace(SSHD, "PermitEmptyPasswords no", "PermitEmptyPasswords yes");
        }),
        ("auth methods any", "ssh-auth-methods", |f| {
            f.replace(SSHD, "AuthenticationMethods publickey", "AuthenticationMethods any");
        }),
        ("AllowUsers removed", "ssh-allow-users", |f| {
            f.replace(SSHD, "AllowUsers base\n", "");
        }),
        ("AllowUsers widened", "ssh-allow-users", |f| {
            f.replace(SSHD, "AllowUsers base", "AllowUsers base root");
        }),
        ("StrictModes off", "ssh-strict-modes", |f| {
            f.replace(SSHD, "StrictModes yes", "StrictModes no");
        }),
        ("host-based auth", "ssh-hostbased", |f| {
            f.replace(SSHD, "HostbasedAuthentication no", "HostbasedAuthentication yes");
        }),
        ("rhosts honoured", "ssh-ignore-rhosts", |f| {
            f.replace(SSHD, "IgnoreRhosts yes", "IgnoreRhosts no");
        }),
        ("GSSAPI on", "ssh-gssapi", |f| {
            f.replace(SSHD, "GSSAPIAuthentication no", "GSSAPIAuthentication yes");
        }),
        ("forwarding allowed", "ssh-disable-forwarding", |f| {
            f.replace(SSHD, "DisableForwarding yes", "DisableForwarding no");
        }),
        ("tunnels allowed", "ssh-permit-tunnel", |f| {
            f.replace(SSHD, "PermitTunnel no", "PermitTunnel yes");
        }),
        ("user environment", "ssh-user-environment", |f| {
            f.replace(SSHD, "PermitUserEnvironment no", "PermitUserEnvironment yes");
        }),
        ("6 auth tries", "ssh-max-auth-tries", |f| {
            f.replace(SSHD, "MaxAuthTries 3", "MaxAuthTries 6");
        }),
        ("2 minute grace", "ssh-login-grace", |f| {
            f.replace(SSHD, "LoginGraceTime 30", "LoginGraceTime 2m");
        }),
        ("unbounded startups", "ssh-max-startups", |f| {
            f.replace(SSHD, "MaxStartups 10:30:60", "MaxStartups 100");
        }),
        ("no keepalive", "ssh-client-alive", |f| {
            f.replace(SSHD, "ClientAliveInterval 300", "ClientAliveInterval 0");
        }),
        ("quiet log", "ssh-log-level", |f| {
            f.replace(SSHD, "LogLevel VERBOSE", "LogLevel INFO");
        }),
        ("Debian banner", "ssh-debian-banner", |f| {
            f.replace(SSHD, "DebianBanner no", "DebianBanner yes");
        }),
        ("SHA-1 kex", "ssh-kex", |f| {
            f.replace(SSHD, "KexAlgorithms ", "KexAlgorithms diffie-hellman-group14-sha1,");
        }),
        ("CBC cipher", "ssh-ciphers", |f| {
            f.replace(SSHD, "Ciphers ", "Ciphers aes256-cbc,");
        }),
        ("non-ETM MAC", "ssh-macs", |f| {
            f.replace(SSHD, "MACs ", "MACs hmac-sha2-256,");
        }),
        ("default MACs", "ssh-macs", |f| {
            f.replace(SSHD, "MACs hmac", "#MACs hmac");
        }),
        ("RSA host key", "ssh-host-key-type", |f| {
            f.replace(
                SSHD,
                "HostKey /etc/ssh/ssh_host_ed25519_key",
                "HostKey /etc/ssh/ssh_host_rsa_key",
            );
        }),
        ("ssh-rsa user keys", "ssh-user-key-algorithms", |f| {
            f.replace(SSHD, "PubkeyAcceptedAlgorithms ", "PubkeyAcceptedAlgorithms ssh-rsa,");
        }),
        ("small RSA allowed", "ssh-user-key-algorithms", |f| {
            f.replace(SSHD, "RequiredRSASize 3072", "RequiredRSASize 2048");
        }),
        ("keys file group-writable", "ssh-authorized-keys-path", |f| {
            f.chmod("/home/base/.ssh/authorized_keys", 0o660);
        }),
        ("keys file foreign uid", "ssh-authorized-keys-path", |f| {
            f.chown("/home/base/.ssh/authorized_keys", 1001, 1001);
        }),
        ("host key baked in", "ssh-no-host-keys", |f| {
            f.write("/etc/ssh/ssh_host_ed25519_key", "k");
        }),
        ("first-boot unit disabled", "ssh-host-keys-first-boot", |f| {
            f.remove("/etc/systemd/system/multi-user.target.wants/baseimg-firstboot.service");
        }),
        ("drop-in enables passwords", "ssh-password-auth", |f| {
            f.write("/etc/ssh/sshd_config.d/50-other.conf", "PasswordAuthentication yes\n");
            f.prepend(SSHD, "Include sshd_config.d/*.conf\n");
        }),
        ("Match loosens root login", "ssh-root-login", |f| {
            f.append(SSHD, "Match Address 10.0.0.0/8\n  PermitRootLogin yes\n");
        }),
        ("shadow world-readable", "acct-file-perms", |f| {
            f.chmod("/etc/shadow", 0o644);
        }),
        ("passwd group-writable", "acct-file-perms", |f| {
            f.chmod("/etc/passwd", 0o664);
        }),
        ("password in passwd", "acct-shadowed", |f| {
            f.replace("/etc/passwd", "base:x:", "base::");
        }),
        ("second uid 0", "acct-shadowed", |f| {
            f.replace("/etc/passwd", "daemon:x:1:", "daemon:x:0:");
        }),
        ("empty hash", "acct-shadowed", |f| {
            f.replace("/etc/shadow", "daemon:*:", "daemon::");
        }),
        ("root has a password", "acct-root-locked", |f| {
            f.replace("/etc/shadow", "root:!*:", "root:$y$j9T$abc$def:");
        }),
        ("admin has a password", "acct-admin-locked", |f| {
            f.replace("/etc/shadow", "base:!*:", "base:$y$j9T$abc$def:");
        }),
        ("admin ! lock without PAM", "acct-admin-locked", |f| {
            f.replace("/etc/shadow", "base:!*:", "base:!:");
            f.replace(SSHD, "UsePAM yes", "UsePAM no");
        }),
        ("sudo NOPASSWD", "acct-sudo-password", |f| {
            f.write("/etc/sudoers.d/base", "base ALL=(ALL) NOPASSWD: ALL\n");
        }),
        ("sudo !authenticate", "acct-sudo-password", |f| {
            f.append("/etc/sudoers", "Defaults:base !authenticate\n");
        }),
        (".rhosts", "acct-trust-files", |f| {
            f.write("/home/base/.rhosts", "+ +\n");
        }),
        ("hosts.equiv", "acct-trust-files", |f| {
            f.write("/etc/hosts.equiv", "+\n");
        }),
        ("set-uid shell", "acct-setuid-allowlist", |f| {
            f.write("/usr/local/bin/rootsh", "x");
            f.chmod("/usr/local/bin/rootsh", 0o4755);
        }),
        ("machine-id baked", "acct-machine-id-empty", |f| {
            f.write("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        }),
        ("D-Bus machine-id baked", "acct-machine-id-empty", |f| {
            f.write("/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n");
        }),
        ("random seed baked", "acct-no-random-seed", |f| {
            f.write("/var/lib/systemd/random-seed", "x");
        }),
        ("forwarding on", "sysctl-network", |f| {
            f.replace(SYSCTL, "net.ipv4.ip_forward = 0", "net.ipv4.ip_forward = 1");
        }),
        ("redirects accepted", "sysctl-network", |f| {
            f.replace(SYSCTL, "net.ipv6.conf.all.accept_redirects = 0\n", "");
        }),
        ("vendor glob rp_filter=2", "sysctl-network", |f| {
            f.write(
                "/usr/lib/sysctl.d/50-default.conf",
                "net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\n",
            );
        }),
        ("later file re-enables forwarding", "sysctl-network", |f| {
            f.write("/etc/sysctl.d/zz-router.conf", "net/ipv4/ip_forward=1\n");
        }),
        ("sysrq on", "sysctl-kernel", |f| {
            f.replace(SYSCTL, "kernel.sysrq = 0", "kernel.sysrq = 1");
        }),
        ("ptrace unrestricted", "sysctl-kernel", |f| {
            f.replace(SYSCTL, "kernel.yama.ptrace_scope = 2", "kernel.yama.ptrace_scope = 0");
        }),
        ("our file not last", "sysctl-ours-last", |f| {
            f.write("/etc/sysctl.d/zzz-vendor.conf", "vm.swappiness = 10\n");
        }),
        ("no panic=", "kernel-panic-reboot", |f| {
            f.replace("/boot/extlinux/extlinux.conf", " panic=10", "");
        }),
        ("double COMMIT", "fw-rules-valid", |f| {
            f.append(V4, "COMMIT\n");
        }),
        ("no v6 rules", "fw-rules-valid", |f| {
            f.remove(V6);
        }),
        ("INPUT accept", "fw-policy-drop", |f| {
            f.replace(V4, ":INPUT DROP", ":INPUT ACCEPT");
        }),
        ("v6 FORWARD accept", "fw-policy-drop", |f| {
            f.replace(V6, ":FORWARD DROP", ":FORWARD ACCEPT");
        }),
        ("no loopback accept", "fw-loopback", |f| {
            f.replace(V4, "-A INPUT -i lo -j ACCEPT\n", "");
        }),
        ("no v6 spoof drop", "fw-loopback", |f| {
            f.replace(V6, "-A INPUT -s ::1/128 -j DROP\n", "");
        }),
        ("no established", "fw-established", |f| {
            f.replace(V6, "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", "");
        }),
        ("no neighbour solicitation", "fw-icmpv6-nd", |f| {
            f.replace(V6, "-A INPUT -p ipv6-icmp --icmpv6-type 135 -j ACCEPT\n", "");
        }),
        ("undeclared port", "fw-declared-ports", |f| {
            f.replace(V4, "COMMIT", "-A INPUT -p tcp --dport 50001 -j ACCEPT\nCOMMIT");
        }),
        ("SSH open while disabled", "fw-declared-ports", |f| {
            f.replace(V6, "COMMIT", "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT");
        }),
        ("accept everything", "fw-declared-ports", |f| {
            f.replace(V4, "COMMIT", "-A INPUT -p tcp -j ACCEPT\nCOMMIT");
        }),
        ("firewall unit not enabled", "fw-loaded-at-boot", |f| {
            f.remove("/etc/systemd/system/sysinit.target.wants/baseimg-firewall.service");
        }),
        ("firewall after network", "fw-loaded-at-boot", |f| {
            f.replace(
                "/etc/systemd/system/baseimg-firewall.service",
                "Before=network-pre.target",
                "Before=",
            );
        }),
        ("mixed backends", "fw-one-backend", |f| {
            f.symlink("/etc/alternatives/ip6tables", "/usr/sbin/ip6tables-legacy");
        }),
        ("fail2ban other family", "fw-one-backend", |f| {
            f.symlink("/etc/alternatives/iptables", "/usr/sbin/iptables-legacy");
            f.symlink("/etc/alternatives/ip6tables", "/usr/sbin/ip6tables-legacy");
            f.replace(
                "/etc/fail2ban/jail.d/baseimg.local",
                "banaction = iptables-multiport",
                "banaction = nftables-multiport",
            );
        }),
        ("match module missing", "fw-match-modules", |f| {
            f.remove("/usr/lib/modules/6.1.0-99-arm64/kernel/net/netfilter/xt_limit.ko.xz");
        }),
        ("jail disabled", "fail2ban-sshd-jail", |f| {
            f.replace("/etc/fail2ban/jail.d/baseimg.local", "enabled = true", "enabled = false");
        }),
        ("jail default backend", "fail2ban-sshd-jail", |f| {
            f.replace("/etc/fail2ban/jail.d/baseimg.local", "backend = systemd", "backend = auto");
        }),
        ("no python3-systemd", "fail2ban-sshd-jail", |f| {
            f.remove("/usr/lib/python3/dist-packages/systemd");
        }),
        ("HID rule removed", "usb-hid-deauthorized", |f| {
            f.remove("/etc/udev/rules.d/60-baseimg-usb-hid.rules");
        }),
        ("HID rule masked", "usb-hid-deauthorized", |f| {
            f.symlink("/etc/udev/rules.d/60-baseimg-usb-hid.rules", "/dev/null");
        }),
        ("whole devices de-authorized", "usb-hid-deauthorized", |f| {
            f.replace(
                "/etc/udev/rules.d/60-baseimg-usb-hid.rules",
                "ENV{DEVTYPE}==\"usb_interface\", ATTR{bInterfaceClass}==\"03\", ",
                "",
            );
        }),
        ("usbhid only blacklisted", "usb-hid-modules-blocked", |f| {
            f.replace("/etc/modprobe.d/baseimg-usb-hid.conf", "install usbhid /bin/false\n", "");
        }),
        ("usbhid built in", "usb-hid-not-builtin", |f| {
            f.append(
                "/usr/lib/modules/6.1.0-99-arm64/modules.builtin",
                "kernel/drivers/hid/usbhid/usbhid.ko\n",
            );
        }),
        ("usbhid in initramfs", "usb-hid-not-in-initramfs", |f| {
            let cpio = baseimg::audit::initramfs::write_newc(&[(
                "usr/lib/modules/6.1.0-99-arm64/kernel/drivers/hid/usbhid/usbhid.ko.xz",
                b"x",
            )]);
            f.write_bytes("/boot/initrd.img-6.1.0-99-arm64", cpio);
        }),
        ("middleware as root", "svc-sandbox", |f| {
            f.replace(
                "/usr/lib/systemd/system/base-middleware.service",
                "User=base-middleware\n",
                "",
            );
        }),
        ("middleware not strict", "svc-sandbox", |f| {
            f.replace(
                "/usr/lib/systemd/system/base-middleware.service",
                "ProtectSystem=strict",
                "ProtectSystem=full",
            );
        }),
        ("drop-in weakens sandbox", "svc-sandbox", |f| {
            f.write(
                "/etc/systemd/system/base-middleware.service.d/debug.conf",
                "[Service]\nNoNewPrivileges=no\n",
            );
        }),
        ("helper without PrivateDevices", "svc-sandbox", |f| {
            f.replace(
                "/usr/lib/systemd/system/base-middleware-helper@.service",
                "PrivateDevices=yes\n",
                "",
            );
        }),
        ("service user with a shell", "svc-users", |f| {
            f.replace(
                "/etc/passwd",
                "baseimg middleware:/nonexistent:/usr/sbin/nologin",
                "baseimg middleware:/nonexistent:/bin/sh",
            );
        }),
        ("middleware on all addresses", "svc-loopback-listen", |f| {
            f.replace(
                "/usr/lib/systemd/system/base-middleware.service",
                "--listen 127.0.0.1:8845",
                "--listen 0.0.0.0:8845",
            );
        }),
        ("server tokens on", "nginx-hardening", |f| {
            f.replace("/etc/nginx/nginx.conf", "server_tokens off;", "server_tokens on;");
        }),
        ("TLS 1.0", "nginx-hardening", |f| {
            f.replace(
                "/etc/nginx/nginx.conf",
                "ssl_protocols TLSv1.2",
                "ssl_protocols TLSv1 TLSv1.2",
            );
        }),
        ("default site", "nginx-hardening", |f| {
            f.write("/etc/nginx/sites-enabled/default", "server { listen 80; }\n");
        }),
        ("workers as root", "nginx-hardening", |f| {
            f.replace("/etc/nginx/nginx.conf", "user www-data;", "user root;");
        }),
        ("public upstream", "nginx-hardening", |f| {
            f.replace(
                "/etc/nginx/nginx.conf",
                "proxy_pass http://127.0.0.1:8845;",
                "proxy_pass http://10.0.0.5:8845;",
            );
        }),
        ("websocket HTTP/1.0", "nginx-websocket", |f| {
            f.replace("/etc/nginx/nginx.conf", "proxy_http_version 1.1;", "");
        }),
        ("websocket no upgrade header", "nginx-websocket", |f| {
            f.replace("/etc/nginx/nginx.conf", "proxy_set_header Upgrade $http_upgrade;", "");
        }),
    ]
}

#[test]
fn every_known_misconfiguration_is_caught() {
    let list = mutants();
    let mut missed = Vec::new();
    for (name, control, mutate) in &list {
        let mut fixture = Fixture::good();
        mutate(&mut fixture);
        let report = fixture.audit();
        let status = report.get(control).map(|f| f.status);
        if status != Some(Status::Fail) {
            missed.push(format!("{name}: {control} is {status:?}"));
        }
    }
    let caught = list.len() - missed.len();
    println!("audit mutants: {} mutants, {caught} caught", list.len());
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

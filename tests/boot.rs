//! The built `qemu-arm64` image booted under `qemu-system-aarch64` and probed from its LAN
//! with real clients (nmap, OpenSSH, `baseimg device`), as an attacker and as its owner.
//!
//! These need a built image, root, qemu-system-arm, u-boot-qemu, nmap and dnsmasq, so they
//! are ignored by default. Build with the test key, then run one test at a time:
//!
//! ```sh
//! baseimg build --profile qemu-arm64 --out out/qemu-arm64 \
//!     --ssh-key tests/fixtures/boot-key/id_ed25519.pub
//! BASEIMG_IMAGE_DIR=out/qemu-arm64 cargo test --release --test boot -- --ignored --test-threads=1 --nocapture
//! ```
//!
//! Each check prints one `ok:` line; a failed check names the port or unit at fault.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use baseimg::profile::Profile;
use baseimg::run::{RunOptions, Vm, GUEST_V4, HOST_V4, TAP};

/// An address on the LAN the attacker uses, so that its ban does not lock out the owner.
const ATTACKER_V4: &str = "192.168.77.66";
/// Units the image must run once the owner enabled SSH.
const REQUIRED_UNITS: &[&str] = &[
    "baseimg-firewall.service",
    "baseimg-firstboot.service",
    "systemd-networkd.service",
    "nginx.service",
    "base-middleware.service",
    "fail2ban.service",
    "ssh.service",
];
/// Common UDP services an appliance might expose by mistake.
const UDP_PORTS: &str = "53,67,68,69,111,123,137,138,161,162,500,514,520,546,547,623,1900,\
                         4500,5353,5355,11211";
/// The password the owner sets for `base` through the API.
const OWNER_PASSWORD: &str = "correct horse battery staple";
const BOOT_TIMEOUT: Duration = Duration::from_secs(900);

fn out_dir() -> PathBuf {
    let dir =
        std::env::var_os("BASEIMG_IMAGE_DIR").expect("set BASEIMG_IMAGE_DIR to an output folder");
    PathBuf::from(dir)
}

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The image and its profile, as the output folder's manifest names them.
fn built_image() -> (PathBuf, Profile) {
    let text = std::fs::read_to_string(out_dir().join("manifest.json")).expect("manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest parses");
    assert_eq!(manifest["board"], "qemu-arm64", "only the qemu-arm64 board boots under QEMU");
    let name = manifest["image"].as_str().expect("image name");
    let profile_path = manifest["profile"]["path"].as_str().expect("profile path");
    let loaded = baseimg::profile::load(&project().join(profile_path)).expect("profile loads");
    (out_dir().join(format!("{name}.img")), loaded.profile)
}

/// The private key whose public half the image was built with, copied to a file only its
/// owner can read: ssh ignores a key that others can read, as a fresh checkout leaves it.
fn owner_key() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let source = std::env::var_os("BASEIMG_BOOT_KEY")
        .map(PathBuf::from)
        .unwrap_or_else(|| project().join("tests/fixtures/boot-key/id_ed25519"));
    let copy = std::env::temp_dir().join(format!("baseimg-boot-key-{}", std::process::id()));
    if !copy.exists() {
        let bytes = std::fs::read(&source).expect("owner key readable");
        std::fs::write(&copy, bytes).expect("owner key copied");
    }
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    copy
}

fn ok(message: &str) {
    println!("ok: {message}");
}

/// One booted machine and the owner's side of its LAN.
struct Session {
    vm: Vm,
    profile: Profile,
    work: PathBuf,
    v6: Ipv6Addr,
}

impl Session {
    fn boot(image: &Path, profile: &Profile, work: &Path, netns: &str, usb: bool) -> Result<Self> {
        let mut opts = RunOptions::new(image.to_path_buf(), work.join("vm"));
        opts.usb_keyboard = usb;
        let vm = Vm::start(&opts, netns)?;
        let https = profile.network.https_port.get();
        let booted = vm.wait_for_port(https, BOOT_TIMEOUT)?;
        println!(
            "boot time under emulation: {:.0}s from power-on to port {https} answering",
            booted.as_secs_f64()
        );
        let v6 = vm.guest_link_local(Duration::from_secs(60))?;
        ok(&format!("booted; the LAN sees {GUEST_V4} and {v6}%{TAP}"));
        Ok(Self { vm, profile: profile.clone(), work: work.to_path_buf(), v6 })
    }

    fn v6_scoped(&self) -> String {
        format!("{}%{TAP}", self.v6)
    }

    /// A command run on the LAN, with its output captured.
    fn lan(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.vm.lan().name(), program]);
        cmd
    }

    fn baseimg(&self) -> Command {
        let mut cmd = self.lan(env!("CARGO_BIN_EXE_baseimg"));
        cmd.arg("device").arg("--config-dir").arg(self.work.join("client"));
        cmd
    }

    /// Ports that answer a scan from the LAN and are not declared by the profile.
    fn scan(&self, ssh_enabled: bool) -> Result<()> {
        let https = self.profile.network.https_port.get();
        let ssh = self.profile.ssh.port.get();
        let mut declared_tcp = BTreeSet::from([https]);
        if ssh_enabled {
            declared_tcp.insert(ssh);
        }
        let declared_udp = BTreeSet::from([5353u16, 546]);
        let v4 = GUEST_V4.to_string();
        let v6 = self.v6_scoped();
        for (family, addr) in [("IPv4", v4.as_str()), ("IPv6", v6.as_str())] {
            let six: &[&str] = if family == "IPv6" { &["-6", "-e", TAP] } else { &[] };
            let started = Instant::now();
            let tcp = self.nmap(six, &["-sS", "-p-", addr])?;
            let answering = answering_ports(&tcp, "tcp")?;
            check_declared(&answering, &declared_tcp, "tcp", addr)?;
            ensure!(
                answering.contains(&https),
                "port {https}/tcp (nginx) does not answer on {addr}: {tcp}"
            );
            if !ssh_enabled {
                ensure!(!answering.contains(&ssh), "SSH port {ssh}/tcp answers on {addr}");
            }
            let udp = self.nmap(six, &["-sU", "-p", UDP_PORTS, addr])?;
            check_declared(&answering_ports(&udp, "udp")?, &declared_udp, "udp", addr)?;
            ok(&format!(
                "{family} scan of all TCP ports and {} common UDP ports of {addr} in {:.0}s: \
                 only {} answer",
                UDP_PORTS.split(',').count(),
                started.elapsed().as_secs_f64(),
                declared_tcp.iter().map(|p| format!("{p}/tcp")).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }

    fn nmap(&self, extra: &[&str], args: &[&str]) -> Result<String> {
        let out = self
            .lan("nmap")
            .args(["-n", "-Pn", "--max-retries", "1", "--min-rate", "4000", "-oG", "-"])
            .args(extra)
            .args(args)
            .output()
            .context("running nmap (apt-get install nmap)")?;
        ensure!(out.status.success(), "nmap failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ssh_closed_by_default(&self) -> Result<()> {
        let ssh = self.profile.ssh.port.get();
        ensure!(
            !self.vm.tcp_connects(&GUEST_V4.to_string(), ssh),
            "port {ssh}/tcp accepts connections although SSH is off by default"
        );
        ok(&format!("SSH is off by default: port {ssh}/tcp does not accept connections"));
        Ok(())
    }

    fn discover(&self) -> Result<()> {
        let out = self.baseimg().args(["discover", "--json", "--seconds", "8"]).output()?;
        ensure!(out.status.success(), "discover failed: {}", String::from_utf8_lossy(&out.stderr));
        let found: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let device = found
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| {
                d["addresses"].as_array().into_iter().flatten().any(|a| a == &GUEST_V4.to_string())
            })
            .with_context(|| format!("mDNS discovery did not find {GUEST_V4}: {found}"))?;
        let port = self.profile.network.https_port.get();
        ensure!(device["port"] == port, "mDNS announces port {} not {port}", device["port"]);
        ok(&format!(
            "mDNS: `{}` found at {GUEST_V4} port {port}, paired={}",
            device["instance"].as_str().unwrap_or("?"),
            device["properties"]["paired"].as_str().unwrap_or("?")
        ));
        Ok(())
    }

    /// Pairs through nginx's public port, typing the code the device shows on its console.
    fn pair(&self) -> Result<()> {
        let from = self.vm.console().len();
        let mut child = self
            .baseimg()
            .args(["pair", &GUEST_V4.to_string(), "--name", "boot-test"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("pair's stderr")?;
        let client_code = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut code = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("confirmation code: ").nth(1) {
                    code = Some(rest.trim().to_string());
                }
                lines.push(line);
            }
            (code, lines.join("\n"))
        });
        let line = self.vm.wait_for_console("confirmation code", from, Duration::from_secs(60))?;
        let device_code = line
            .rsplit("confirmation code ")
            .next()
            .map(|c| c.trim().chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|c| c.len() == 6)
            .with_context(|| format!("no six-digit code in the console line {line:?}"))?;
        let mut stdin = child.stdin.take().context("pair's stdin")?;
        writeln!(stdin, "{device_code}")?;
        drop(stdin);
        let status = child.wait()?;
        let (client_code, log) = client_code.join().expect("reader thread");
        ensure!(status.success(), "pairing failed ({status}): {log}");
        ensure!(
            client_code.as_deref() == Some(device_code.as_str()),
            "the client showed {client_code:?}, the device {device_code}"
        );
        ok(&format!("paired through nginx on port 443; both sides showed code {device_code}"));
        Ok(())
    }

    fn device(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut child = self
            .baseimg()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut input = child.stdin.take().context("stdin")?;
        if let Some(text) = stdin {
            writeln!(input, "{text}")?;
        }
        drop(input);
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "`baseimg device {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ssh(&self, user_at: &str, key: Option<&Path>, extra: &[&str], command: &str) -> Command {
        let mut cmd = self.lan("ssh");
        cmd.args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "IdentityAgent=none", "-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.work.join("known_hosts").display()));
        if let Some(key) = key {
            cmd.arg("-i").arg(key);
        }
        cmd.args(extra).arg(user_at).arg(command);
        cmd
    }

    /// Runs `command` as `base` with the owner's key and returns its stdout.
    fn shell(&self, command: &str) -> Result<String> {
        self.shell_with_input(command, "")
    }

    /// Runs `command` as root through sudo with `base`'s password (the image has no D-Bus,
    /// so systemctl talks to systemd only as root, over its private socket).
    fn root_shell(&self, command: &str) -> Result<String> {
        let quoted = command.replace('\'', "'\\''");
        self.shell_with_input(&format!("sudo -S -p '' sh -c '{quoted}'"), OWNER_PASSWORD)
    }

    fn shell_with_input(&self, command: &str, input: &str) -> Result<String> {
        let target = format!("base@{GUEST_V4}");
        let mut child = self
            .ssh(&target, Some(&owner_key()), &["-b", &HOST_V4.to_string()], command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().context("ssh's stdin")?;
        writeln!(stdin, "{input}")?;
        drop(stdin);
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "ssh base@{GUEST_V4} {command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ssh_policy(&self, added_key: &Path) -> Result<()> {
        let v4 = GUEST_V4.to_string();
        let password = self
            .ssh(
                &format!("base@{v4}"),
                None,
                &["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password"],
                "true",
            )
            .output()?;
        let said = String::from_utf8_lossy(&password.stderr);
        ensure!(
            !password.status.success() && said.contains("Permission denied (publickey)"),
            "a password login was not refused with `Permission denied (publickey)`: {said}"
        );
        ok("password login refused: Permission denied (publickey)");
        let root = self.ssh(&format!("root@{v4}"), Some(&owner_key()), &[], "true").output()?;
        let said = String::from_utf8_lossy(&root.stderr);
        ensure!(
            !root.status.success() && said.contains("Permission denied"),
            "root logged in with the owner's key: {said}"
        );
        ok("root with a valid key refused");
        for (addr, key) in [(v4.clone(), owner_key()), (self.v6_scoped(), added_key.to_path_buf())]
        {
            let out = self.ssh(&format!("base@{addr}"), Some(&key), &[], "id -un").output()?;
            let who = String::from_utf8_lossy(&out.stdout);
            ensure!(
                out.status.success() && who.trim() == "base",
                "base with key {} got no shell on {addr}: {}",
                key.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            ok(&format!("base with key {} gets a shell on {addr}", key.display()));
        }
        Ok(())
    }

    fn units(&self) -> Result<()> {
        let failed = self.root_shell("systemctl --failed --no-legend --plain")?;
        ensure!(failed.trim().is_empty(), "failed units:\n{failed}");
        ok("`systemctl --failed` is empty");
        for unit in REQUIRED_UNITS {
            let state = self.root_shell(&format!("systemctl is-active {unit} || true"))?;
            ensure!(state.trim() == "active", "unit {unit} is {}, not active", state.trim());
        }
        ok(&format!("active: {}", REQUIRED_UNITS.join(", ")));
        // The enabled services, from their links (`systemctl list-unit-files` makes systemd
        // read every unit file, which times out under emulation).
        let files =
            self.shell("ls -1 /etc/systemd/system/*.wants/ | grep '\\.service$' | sort -u")?;
        let units: Vec<&str> = files.lines().map(str::trim).filter(|u| !u.contains('@')).collect();
        ensure!(units.len() >= REQUIRED_UNITS.len(), "few enabled units listed: {files}");
        let shown = self.root_shell(&format!(
            "systemctl show -p Id,Type,ActiveState,Result {}",
            units.join(" ")
        ))?;
        let mut checked = 0;
        for block in shown.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let field = |key: &str| {
                block.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).unwrap_or("?")
            };
            let (unit, kind, state, result) =
                (field("Id"), field("Type"), field("ActiveState"), field("Result"));
            let finished_oneshot = kind == "oneshot" && state == "inactive" && result == "success";
            ensure!(
                state == "active" || finished_oneshot,
                "enabled unit {unit} ({kind}) is {state}, result {result}"
            );
            checked += 1;
        }
        ensure!(checked == units.len(), "systemctl show listed {checked} of {units:?}: {shown}");
        let running = self.root_shell("systemctl is-system-running || true")?;
        ensure!(running.trim() == "running", "the system is {}, not running", running.trim());
        ok(&format!("all {checked} enabled services active; system state `running`"));
        Ok(())
    }

    fn usb_keyboard(&self) -> Result<()> {
        let listing = self.shell(
            "for d in /sys/bus/usb/devices/*:*; do echo \"$d $(cat $d/bInterfaceClass) \
             $(cat $d/authorized) $(basename \"$(readlink $d/driver)\" 2>/dev/null)\"; done",
        )?;
        let hid: Vec<&str> =
            listing.lines().filter(|l| l.split_whitespace().nth(1) == Some("03")).collect();
        ensure!(!hid.is_empty(), "no USB HID interface on the machine:\n{listing}");
        for line in &hid {
            let fields: Vec<&str> = line.split_whitespace().collect();
            ensure!(
                fields.get(2) == Some(&"0") && fields.len() < 4,
                "USB HID interface still authorized or bound: {line}"
            );
        }
        ok(&format!("USB keyboard's HID interface de-authorized, no driver: {}", hid.join("; ")));
        Ok(())
    }

    fn fail2ban(&self) -> Result<()> {
        let status = self
            .lan("ip")
            .args(["addr", "add", &format!("{ATTACKER_V4}/24"), "dev", TAP])
            .status()?;
        ensure!(status.success(), "adding the attacker's address");
        let target = format!("admin@{GUEST_V4}");
        let tries = self.profile.fail2ban.max_retry + 1;
        for _ in 0..tries {
            let _ = self.ssh(&target, None, &["-b", ATTACKER_V4], "true").output()?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .ssh(&target, None, &["-b", ATTACKER_V4, "-o", "ConnectTimeout=5"], "true")
                .output()?;
            let said = String::from_utf8_lossy(&out.stderr).into_owned();
            let banned = said.contains("refused") || said.contains("timed out");
            if banned {
                ok(&format!(
                    "after {tries} failed logins {ATTACKER_V4} is banned ({})",
                    said.trim()
                ));
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{ATTACKER_V4} was not banned after {tries} failed logins: {said}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
        let who = self.shell("id -un")?;
        ensure!(who.trim() == "base", "the owner lost access");
        ok(&format!("the owner at {HOST_V4} still gets in"));
        Ok(())
    }

    fn host_key(&self) -> Result<String> {
        let out =
            self.lan("ssh-keyscan").args(["-t", "ed25519", &GUEST_V4.to_string()]).output()?;
        let line = String::from_utf8_lossy(&out.stdout);
        let key = line.split_whitespace().nth(2).context("ssh-keyscan found no ed25519 key")?;
        Ok(key.to_string())
    }

    fn tls_fingerprint(&self) -> Result<String> {
        let port = self.profile.network.https_port.get();
        let script = format!(
            "openssl s_client -connect {GUEST_V4}:{port} </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256"
        );
        let out = self.lan("bash").args(["-c", &script]).output()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        ensure!(text.contains("Fingerprint="), "no TLS certificate on port {port}: {text}");
        Ok(text)
    }

    fn reboot(&self) -> Result<()> {
        let from = self.vm.console().len();
        // The device may go down before its reply arrives; the reboot itself is checked
        // below by the firmware's banner on the console.
        if let Err(e) = self.device(&["reboot"], None) {
            println!("note: `baseimg device reboot` reported an error although rebooting: {e:#}");
        }
        self.vm.wait_for_console("U-Boot", from, Duration::from_secs(300))?;
        let started = Instant::now();
        let port = self.profile.network.https_port.get();
        self.vm.wait_for_port(port, BOOT_TIMEOUT)?;
        println!(
            "reboot time under emulation: {:.0}s from firmware to port {port} answering",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// The ports of one protocol that answered (open or closed), from nmap's greppable output;
/// "filtered" and "open|filtered" mean no answer.
fn answering_ports(grepable: &str, proto: &str) -> Result<BTreeSet<u16>> {
    let mut answering = BTreeSet::new();
    for line in grepable.lines().filter(|l| l.starts_with("Host:")) {
        if let Some(ignored) = line.split("Ignored State: ").nth(1) {
            let state = ignored.split_whitespace().next().unwrap_or("");
            ensure!(
                state.contains("filtered"),
                "most {proto} ports answer `{state}` ({}): without the firewall a closed port \
                 answers; is baseimg-firewall.service loaded?",
                ignored.trim()
            );
        }
        let Some(ports) = line.split("Ports: ").nth(1) else { continue };
        for entry in ports.split("\t").next().unwrap_or("").split(", ") {
            let fields: Vec<&str> = entry.split('/').collect();
            if fields.len() < 3 || fields[2] != proto {
                continue;
            }
            if fields[1] == "open" || fields[1] == "closed" || fields[1] == "unfiltered" {
                answering.insert(fields[0].trim().parse()?);
            }
        }
    }
    Ok(answering)
}

fn check_declared(
    answering: &BTreeSet<u16>,
    declared: &BTreeSet<u16>,
    proto: &str,
    addr: &str,
) -> Result<()> {
    let stray: Vec<String> =
        answering.difference(declared).map(|p| format!("{p}/{proto}")).collect();
    ensure!(
        stray.is_empty(),
        "{} port(s) answer on {addr} but are not declared (declared: {}): {}",
        stray.len(),
        declared.iter().map(|p| format!("{p}/{proto}")).collect::<Vec<_>>().join(", "),
        stray.iter().take(20).cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

fn work_dir(name: &str) -> PathBuf {
    let dir = project().join("target/boot-test").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    dir
}

fn new_key(work: &Path) -> Result<PathBuf> {
    let key = work.join("added_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "added-through-the-api", "-f"])
        .arg(&key)
        .status()?;
    ensure!(status.success(), "ssh-keygen failed");
    Ok(key)
}

/// Pairs a fresh client and switches SSH on through the API; returns the added key.
fn owner_takes_over(s: &Session) -> Result<PathBuf> {
    s.discover()?;
    s.pair()?;
    s.device(&["set-password", "--account", "base"], Some(OWNER_PASSWORD))?;
    ok("set base's password through the API");
    let added = new_key(&s.work)?;
    s.device(&["ssh", "keys", "add", &format!("{}.pub", added.display())], None)?;
    let keys = s.device(&["ssh", "keys", "list"], None)?;
    ensure!(keys.lines().count() >= 2, "the added key is not listed: {keys}");
    ok(&format!("added an SSH key through the API; base has {} keys", keys.lines().count()));
    s.device(&["ssh", "enable"], None)?;
    let ssh = s.profile.ssh.port.get();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !s.vm.tcp_connects(&GUEST_V4.to_string(), ssh) {
        ensure!(Instant::now() < deadline, "port {ssh}/tcp closed after `ssh enable`");
        std::thread::sleep(Duration::from_secs(2));
    }
    ok(&format!("SSH enabled through the API: port {ssh}/tcp accepts connections"));
    Ok(added)
}

#[test]
#[ignore = "needs a built qemu-arm64 image and root: set BASEIMG_IMAGE_DIR"]
fn booted_image_holds_up_to_attacker_and_owner() {
    let (image, profile) = built_image();
    let run = || -> Result<()> {
        let work = work_dir("first");
        let first = Session::boot(&image, &profile, &work, "baseimg-boot-a", true)?;
        first.scan(false)?;
        first.ssh_closed_by_default()?;
        let added = owner_takes_over(&first)?;
        first.ssh_policy(&added)?;
        first.units()?;
        first.usb_keyboard()?;
        first.fail2ban()?;
        let key_a = first.host_key()?;
        let tls_a = first.tls_fingerprint()?;
        first.reboot()?;
        first.scan(true)?;
        let state = first.root_shell("systemctl is-active baseimg-firewall.service || true")?;
        ensure!(state.trim() == "active", "after a reboot baseimg-firewall.service is {state}");
        ok("after a reboot the firewall is loaded: only declared ports answer, unit active");
        ensure!(first.host_key()? == key_a, "the SSH host key changed across a reboot");
        ok("the SSH host key survives a reboot");
        drop(first);

        let second = Session::boot(&image, &profile, &work_dir("second"), "baseimg-boot-b", false)?;
        owner_takes_over(&second)?;
        let key_b = second.host_key()?;
        ensure!(key_a != key_b, "two first boots of one image gave the same SSH host key {key_a}");
        ok("two first boots of the same image give different SSH host keys");
        let tls_b = second.tls_fingerprint()?;
        ensure!(tls_a != tls_b, "two first boots gave the same TLS certificate: {tls_a}");
        ok("and different TLS certificates");
        Ok(())
    };
    if let Err(e) = run() {
        panic!("{e:#}");
    }
}

#[cfg(test)]
mod parsing {
    use super::*;

    #[test]
    fn answering_ports_reads_nmap_greppable_output() {
        let out = "# Nmap 7.93 scan\nHost: 192.168.77.10 ()\tStatus: Up\n\
                   Host: 192.168.77.10 ()\tPorts: 22/closed/tcp//ssh///, 443/open/tcp//https///, \
                   8080/filtered/tcp//http-proxy///\tIgnored State: filtered (65532)\n";
        assert_eq!(answering_ports(out, "tcp").unwrap(), BTreeSet::from([22, 443]));
        let closed = "Host: x ()\tPorts: 443/open/tcp//https///\tIgnored State: closed (65534)\n";
        let err = answering_ports(closed, "tcp").unwrap_err().to_string();
        assert!(err.contains("baseimg-firewall.service"), "{err}");
        let udp =
            "Host: x ()\tPorts: 53/open|filtered/udp//domain///, 5353/open/udp//zeroconf///\n";
        assert_eq!(answering_ports(udp, "udp").unwrap(), BTreeSet::from([5353]));
    }

    #[test]
    fn undeclared_ports_are_named() {
        let err = check_declared(&BTreeSet::from([443, 8080]), &BTreeSet::from([443]), "tcp", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("8080/tcp") && err.contains("declared: 443/tcp"), "{err}");
    }
}

/// A copy of the image with the firewall unit disabled (its `sysinit.target.wants` link
/// removed with debugfs), to show the suite catches it.
fn image_without_firewall(image: &Path, work: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(out_dir().join("manifest.json"))?;
    let manifest: serde_json::Value = serde_json::from_str(&text)?;
    let start = manifest["layout"]["root_start"].as_u64().context("root_start")? * 512;
    let broken = work.join("no-firewall.img");
    let status = Command::new("cp").arg("--sparse=always").arg(image).arg(&broken).status()?;
    ensure!(status.success(), "copying the image");
    let link = "/etc/systemd/system/sysinit.target.wants/baseimg-firewall.service";
    let out = Command::new("debugfs")
        .args(["-w", "-R", &format!("rm {link}")])
        .arg(format!("{}?offset={start}", broken.display()))
        .output()?;
    let said = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success() && !said.contains("not found"), "debugfs rm {link}: {said}");
    Ok(broken)
}

#[test]
#[ignore = "needs a built qemu-arm64 image and root: set BASEIMG_IMAGE_DIR"]
fn image_without_firewall_fails_the_scan_naming_the_unit() {
    let (image, profile) = built_image();
    let work = work_dir("no-firewall");
    let broken = image_without_firewall(&image, &work).expect("broken copy");
    let session = Session::boot(&broken, &profile, &work, "baseimg-boot-c", false).expect("boots");
    let err = session.scan(false).expect_err("the scan must fail without the firewall");
    let message = format!("{err:#}");
    println!("the suite's message for an image without its firewall: {message}");
    assert!(message.contains("baseimg-firewall.service"), "{message}");
    ok("an image without its firewall unit fails the scan, naming baseimg-firewall.service");
}

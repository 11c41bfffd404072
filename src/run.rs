//! `baseimg run`: boots a built `qemu-arm64` image under `qemu-system-aarch64` (software
//! emulation) on a network of its own, the way it would sit on a LAN.
//!
//! The network is a private network namespace holding one tap device: the machine's NIC is
//! plugged into it, dnsmasq in the namespace hands out one DHCPv4 lease, and IPv6 works by
//! link-local addresses. Programs run inside the namespace ([`Vm::exec`]) see the machine
//! exactly as a host on its LAN would: every port, nothing forwarded. Nothing of it is
//! reachable from outside this machine. The serial console goes to a log file.

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::runner::Cmd;

/// QEMU's firmware for the `virt` machine, from Debian's `u-boot-qemu`.
pub const FIRMWARE: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// The tap device inside the namespace.
pub const TAP: &str = "tap0";
/// The namespace's own address (the owner's and attacker's side of the LAN).
pub const HOST_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// The address dnsmasq leases to the machine.
pub const GUEST_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 10);
/// The machine's NIC address (a locally administered QEMU address).
pub const GUEST_MAC: &str = "52:54:00:ba:5e:01";

/// How to boot.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The raw disk image (`<name>.img` of a `qemu-arm64` build).
    pub image: PathBuf,
    /// Folder for the serial console log and the logs of QEMU and dnsmasq.
    pub work_dir: PathBuf,
    /// Attach a USB keyboard (QEMU's `usb-kbd` on an xHCI controller).
    pub usb_keyboard: bool,
    /// Write to the image. Without it, writes go to a temporary overlay QEMU drops on exit
    /// (kept across reboots of the machine), so every run is a first boot.
    pub write_image: bool,
    pub memory_mib: u32,
    pub cpus: u32,
}

impl RunOptions {
    pub fn new(image: PathBuf, work_dir: PathBuf) -> Self {
        Self { image, work_dir, usb_keyboard: false, write_image: false, memory_mib: 1024, cpus: 2 }
    }
}

/// A private network namespace with a tap device and a DHCP server on it; removed on drop.
#[derive(Debug)]
pub struct LanNamespace {
    name: String,
    dnsmasq: Option<duct::Handle>,
}

impl LanNamespace {
    /// Creates namespace `name` with [`TAP`] at [`HOST_V4`] and dnsmasq leasing [`GUEST_V4`].
    pub fn create(name: &str, work_dir: &Path) -> anyhow::Result<Self> {
        let ip = |args: &[&str]| Cmd::new("ip").from_package("iproute2").args(args).run();
        ip(&["netns", "add", name]).with_context(|| {
            format!(
                "creating network namespace {name} (if a killed run left it behind and no \
                 machine uses it, remove it with `ip netns del {name}`)"
            )
        })?;
        let mut ns = Self { name: name.to_string(), dnsmasq: None };
        let host = format!("{HOST_V4}/24");
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        ip(&["-n", name, "tuntap", "add", "dev", TAP, "mode", "tap"])?;
        ip(&["-n", name, "addr", "add", &host, "dev", TAP])?;
        ip(&["-n", name, "link", "set", TAP, "up"])?;
        // Multicast (mDNS) leaves through the tap device; there is no other way out anyway.
        ip(&["-n", name, "route", "add", "224.0.0.0/4", "dev", TAP])?;
        let lease = format!("{GUEST_MAC},{GUEST_V4}");
        let range = format!("{GUEST_V4},{GUEST_V4},255.255.255.0,1h");
        let dnsmasq = ns
            .exec("dnsmasq")
            .from_package("dnsmasq-base")
            .args(["--keep-in-foreground", "--conf-file=/dev/null", "--port=0"])
            .args(["--bind-interfaces", &format!("--interface={TAP}"), "--leasefile-ro"])
            .args(["--pid-file=", "--log-dhcp", "--log-facility=-"])
            .arg(format!("--dhcp-range={range}"))
            .arg(format!("--dhcp-host={lease}"))
            .spawn_logged(&work_dir.join("dnsmasq.log"))?;
        ns.dnsmasq = Some(dnsmasq);
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command run inside the namespace.
    pub fn exec(&self, program: &str) -> Cmd {
        Cmd::new("ip").from_package("iproute2").args(["netns", "exec", &self.name, program])
    }
}

impl Drop for LanNamespace {
    fn drop(&mut self) {
        if let Some(dnsmasq) = self.dnsmasq.take() {
            let _ = dnsmasq.kill();
        }
        let _ = Cmd::new("ip").args(["netns", "del", &self.name]).quiet().run();
    }
}

/// A running machine on its own LAN. Dropping it stops QEMU and removes the namespace.
#[derive(Debug)]
pub struct Vm {
    qemu: Option<duct::Handle>,
    lan: LanNamespace,
    console: PathBuf,
    started: Instant,
}

impl Vm {
    /// Creates the namespace `netns` and boots the image in it.
    pub fn start(opts: &RunOptions, netns: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            opts.image.is_file(),
            "no disk image at `{}`: build one with `baseimg build --profile qemu-arm64`",
            opts.image.display()
        );
        anyhow::ensure!(
            Path::new(FIRMWARE).is_file(),
            "no QEMU firmware at {FIRMWARE}; install it with `apt-get install u-boot-qemu`"
        );
        std::fs::create_dir_all(&opts.work_dir)
            .with_context(|| format!("creating `{}`", opts.work_dir.display()))?;
        let console = opts.work_dir.join("console.log");
        let lan = LanNamespace::create(netns, &opts.work_dir)?;
        let qemu = lan
            .exec("qemu-system-aarch64")
            .from_package("qemu-system-arm")
            .args(qemu_args(opts, &console))
            .spawn_logged(&opts.work_dir.join("qemu.log"))?;
        Ok(Self { qemu: Some(qemu), lan, console, started: Instant::now() })
    }

    /// The network namespace the machine's LAN lives in.
    pub fn lan(&self) -> &LanNamespace {
        &self.lan
    }

    /// A command run on the machine's LAN.
    pub fn exec(&self, program: &str) -> Cmd {
        self.lan.exec(program)
    }

    /// The serial console log.
    pub fn console_path(&self) -> &Path {
        &self.console
    }

    /// Everything the machine wrote on its serial console so far.
    pub fn console(&self) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.console) {
            let _ = file.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Time since QEMU started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Fails if QEMU has exited, with the end of its log.
    pub fn check_running(&self) -> anyhow::Result<()> {
        if let Some(qemu) = &self.qemu {
            if let Some(output) = qemu.try_wait().context("checking on QEMU")? {
                anyhow::bail!(
                    "QEMU exited ({}); serial console: `{}`",
                    output.status,
                    self.console.display()
                );
            }
        }
        Ok(())
    }

    /// Waits until the serial console, after its first `from` bytes, shows a line containing
    /// `needle`; returns that line.
    pub fn wait_for_console(
        &self,
        needle: &str,
        from: usize,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.console();
            if let Some(line) = text.get(from..).unwrap_or("").lines().find(|l| l.contains(needle))
            {
                return Ok(line.to_string());
            }
            self.check_running()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "the serial console did not show {needle:?} within {}s (`{}`)",
                timeout.as_secs(),
                self.console.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits until `port` on the machine accepts TCP connections over IPv4.
    pub fn wait_for_port(&self, port: u16, timeout: Duration) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.tcp_connects(&GUEST_V4.to_string(), port) {
                return Ok(self.uptime());
            }
            self.check_running()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "TCP port {port} of {GUEST_V4} did not accept connections within {}s \
                 (serial console: `{}`)",
                timeout.as_secs(),
                self.console.display()
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Whether a TCP connection to `addr` (IPv4, or IPv6 with `%scope`) port `port` opens
    /// within 3 seconds, from the LAN.
    pub fn tcp_connects(&self, addr: &str, port: u16) -> bool {
        let host = addr.split('%').next().unwrap_or(addr);
        let probe = format!("exec 3<>/dev/tcp/{host}/{port}");
        self.exec("timeout").args(["3", "bash", "-c", &probe]).quiet().run().is_ok()
    }

    /// The machine's IPv6 link-local address, found by pinging all nodes on the link.
    pub fn guest_link_local(&self, timeout: Duration) -> anyhow::Result<Ipv6Addr> {
        let deadline = Instant::now() + timeout;
        loop {
            let all_nodes = format!("ff02::1%{TAP}");
            let _ = self.exec("ping").args(["-6", "-c", "2", "-w", "3", &all_nodes]).quiet().run();
            let neigh = self.exec("ip").args(["-6", "neigh", "show", "dev", TAP]).quiet().read()?;
            let found = neigh
                .lines()
                .filter(|l| l.to_ascii_lowercase().contains(GUEST_MAC))
                .filter_map(|l| l.split_whitespace().next()?.parse::<Ipv6Addr>().ok())
                .find(|a| a.segments()[0] == 0xfe80);
            if let Some(addr) = found {
                return Ok(addr);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the machine answered no IPv6 ping on {TAP} within {}s",
                timeout.as_secs()
            );
        }
    }

    /// Stops QEMU (the machine is powered off, not shut down).
    pub fn stop(&mut self) {
        if let Some(qemu) = self.qemu.take() {
            let _ = qemu.kill();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The board `baseimg run` can boot.
pub const BOARD: &str = "qemu-arm64";

/// `baseimg run`: boots, reports the addresses and the boot time, and keeps the machine
/// running until it powers off or the user presses Ctrl-C.
pub fn run_until_stopped(
    profile: &crate::profile::Profile,
    opts: &RunOptions,
    netns: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        profile.image.board.to_string() == BOARD,
        "`baseimg run` boots only the {BOARD} board (QEMU's virt machine); this profile's \
         board is {}",
        profile.image.board
    );
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    watch_ctrl_c(interrupted.clone())?;
    let vm = Vm::start(opts, netns)?;
    let port = profile.network.https_port.get();
    eprintln!(
        "booting `{}`; serial console: {}",
        opts.image.display(),
        vm.console_path().display()
    );
    let booted = vm.wait_for_port(port, Duration::from_secs(900))?;
    let v6 = vm.guest_link_local(Duration::from_secs(30))?;
    eprintln!("booted in {:.0}s: port {port} answers", booted.as_secs_f64());
    println!("netns\t{netns}");
    println!("ipv4\t{GUEST_V4}");
    println!("ipv6\t{v6}%{TAP}");
    println!("console\t{}", vm.console_path().display());
    eprintln!(
        "try: ip netns exec {netns} baseimg device pair {GUEST_V4}   (Ctrl-C stops the machine)"
    );
    while !interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        if let Err(stopped) = vm.check_running() {
            eprintln!("{stopped:#}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("stopping the machine");
    Ok(())
}

/// Sets `flag` on Ctrl-C (SIGINT) instead of dying, so the namespace gets removed.
fn watch_ctrl_c(flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal watcher")?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        })
    });
    Ok(())
}

/// QEMU's command line: the `virt` machine with U-Boot, the image on virtio, the NIC on the
/// namespace's tap device, entropy from the host, the serial console into `console`.
fn qemu_args(opts: &RunOptions, console: &Path) -> Vec<String> {
    let snapshot = if opts.write_image { "" } else { ",snapshot=on" };
    let mut args: Vec<String> = [
        "-M",
        "virt",
        "-cpu",
        "cortex-a72",
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        "-bios",
        FIRMWARE,
        "-device",
        "virtio-blk-pci,drive=disk",
        "-netdev",
        &format!("tap,id=lan,ifname={TAP},script=no,downscript=no"),
        // romfile= : U-Boot has its own virtio-net driver; no iPXE option ROM needed.
        "-device",
        &format!("virtio-net-pci,netdev=lan,mac={GUEST_MAC},romfile="),
        "-object",
        "rng-random,filename=/dev/urandom,id=rng",
        "-device",
        "virtio-rng-pci,rng=rng",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["-smp".into(), opts.cpus.to_string(), "-m".into(), opts.memory_mib.to_string()]);
    args.extend([
        "-drive".into(),
        format!("if=none,id=disk,format=raw,file={}{snapshot}", opts.image.display()),
        "-serial".into(),
        format!("file:{}", console.display()),
    ]);
    if opts.usb_keyboard {
        args.extend(
            ["-device", "qemu-xhci,id=xhci", "-device", "usb-kbd,bus=xhci.0"].map(String::from),
        );
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_args_protect_the_image_unless_asked_and_add_the_keyboard() {
        let mut opts = RunOptions::new("/img/a.img".into(), "/tmp/w".into());
        let args = qemu_args(&opts, Path::new("/tmp/w/console.log")).join(" ");
        assert!(args.contains("file=/img/a.img,snapshot=on"), "{args}");
        assert!(args.contains("-serial file:/tmp/w/console.log"), "{args}");
        assert!(args.contains(&format!("ifname={TAP}")), "{args}");
        assert!(!args.contains("usb-kbd"), "{args}");
        opts.write_image = true;
        opts.usb_keyboard = true;
        let args = qemu_args(&opts, Path::new("/tmp/w/console.log")).join(" ");
        assert!(args.contains("file=/img/a.img ") && !args.contains("snapshot"), "{args}");
        assert!(args.contains("-device qemu-xhci,id=xhci -device usb-kbd,bus=xhci.0"), "{args}");
    }
}

//! USB controls: HID interfaces de-authorized by udev, HID drivers blocked everywhere.

use std::collections::BTreeMap;

use super::{control, fail, pass, Control, Verdict};
use crate::audit::context::Ctx;
use crate::audit::report::Where;
use crate::audit::udev::{self, Event};
use crate::audit::{confdirs, initramfs, tree};

const HID_MODULES: &[&str] = &["usbhid", "usbkbd", "usbmouse"];
const MODPROBE_DIRS: &[&str] =
    &["/etc/modprobe.d", "/run/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"];

pub fn controls() -> Vec<Control> {
    vec![
        control(
            "usb-hid-deauthorized",
            "C11",
            "HID interfaces de-authorized on add; storage, hubs, network kept",
            hid_deauthorized,
        ),
        control(
            "usb-hid-modules-blocked",
            "CIS 1.1.1.x style",
            "usbhid, usbkbd, usbmouse blocked with `install ... /bin/false`",
            modules_blocked,
        ),
        control(
            "usb-hid-not-builtin",
            "-",
            "HID drivers are modules, not built into the kernel",
            not_builtin,
        ),
        control(
            "usb-hid-not-in-initramfs",
            "-",
            "no HID driver in any initramfs",
            not_in_initramfs,
        ),
    ]
}

/// The events the udev rules must handle: (what, event, whether it must end de-authorized).
fn scenarios() -> Vec<(&'static str, Event, bool)> {
    let iface = |class: &str| {
        Event::new(&[
            ("ACTION", "add"),
            ("SUBSYSTEM", "usb"),
            ("ENV{DEVTYPE}", "usb_interface"),
            ("ATTR{bInterfaceClass}", class),
        ])
    };
    let device = Event::new(&[
        ("ACTION", "add"),
        ("SUBSYSTEM", "usb"),
        ("ENV{DEVTYPE}", "usb_device"),
        ("ATTR{bDeviceClass}", "00"),
    ]);
    vec![
        ("a keyboard's HID interface", iface("03"), true),
        ("a USB disk's storage interface", iface("08"), false),
        ("a hub interface", iface("09"), false),
        ("a network adapter's interface", iface("02"), false),
        ("a composite device (disk with a HID button)", device, false),
    ]
}

fn hid_deauthorized(ctx: &Ctx) -> anyhow::Result<Verdict> {
    for (args, at) in super::kernel::append_lines(ctx)? {
        if args.split_whitespace().any(|w| w == "usbcore.authorized_default=0") {
            return Ok(fail("usbcore.authorized_default=0: interface rules never fire", Some(at)));
        }
    }
    let rules = udev::read_rules(ctx.tree)?;
    for (what, event, deauthorize) in scenarios() {
        let result = udev::authorized_after(&rules, &event);
        let deauthorized = result.as_ref().is_some_and(|(v, _)| v == "0");
        if deauthorized != deauthorize {
            let at = result.map(|(_, at)| at).or_else(|| Some(Where::file("/etc/udev/rules.d")));
            let verb = if deauthorize { "stays authorized" } else { "is de-authorized" };
            return Ok(fail(format!("{what} {verb}"), at));
        }
    }
    Ok(pass("keyboard de-authorized; storage, hub, network kept", None))
}

/// `install` and `blacklist` lines per module, first `install` winning as in kmod.
fn modprobe(ctx: &Ctx) -> anyhow::Result<BTreeMap<String, (String, Where)>> {
    let mut installs = BTreeMap::new();
    for (file, text) in confdirs::read_merged(ctx.tree, MODPROBE_DIRS, ".conf")? {
        for (index, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["install", module, command @ ..] = words.as_slice() {
                let module = module.replace('-', "_");
                installs
                    .entry(module)
                    .or_insert((command.join(" "), Where::line(&file, index + 1)));
            }
        }
    }
    Ok(installs)
}

fn modules_blocked(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let installs = modprobe(ctx)?;
    for module in HID_MODULES {
        let Some((command, at)) = installs.get(*module) else {
            return Ok(fail(format!("{module} not blocked"), Some(Where::file("/etc/modprobe.d"))));
        };
        let blocked = ["/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true"]
            .contains(&command.as_str());
        if !blocked {
            return Ok(fail(format!("install {module} {command}"), Some(at.clone())));
        }
    }
    let at = installs.get("usbhid").map(|(_, at)| at.clone());
    Ok(pass("usbhid, usbkbd, usbmouse blocked", at))
}

fn not_builtin(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let dirs = super::firewall::module_dirs(ctx)?;
    if dirs.is_empty() {
        return Ok(fail("no kernel modules folder", Some(Where::file("/usr/lib/modules"))));
    }
    for dir in &dirs {
        let file = format!("{dir}/modules.builtin");
        let text = tree::read_text(ctx.tree, &file)?.unwrap_or_default();
        for (index, line) in text.lines().enumerate() {
            let stem = line.rsplit('/').next().unwrap_or("").trim_end_matches(".ko");
            if HID_MODULES.contains(&stem) {
                return Ok(fail(
                    format!("{stem} built into the kernel"),
                    Some(Where::line(&file, index + 1)),
                ));
            }
        }
    }
    Ok(pass(format!("{} kernel(s) without built-in HID drivers", dirs.len()), None))
}

/// Every initramfs in `/boot` (`initrd.img-*`).
fn initramfs_files(ctx: &Ctx) -> anyhow::Result<Vec<String>> {
    Ok(tree::list(ctx.tree, "/boot")?
        .into_iter()
        .filter(|n| n.starts_with("initrd.img") || n.starts_with("initramfs"))
        .map(|n| tree::join("/boot", &n))
        .filter(|p| !p.ends_with(".bak"))
        .collect())
}

fn not_in_initramfs(ctx: &Ctx) -> anyhow::Result<Verdict> {
    let files = initramfs_files(ctx)?;
    if files.is_empty() {
        return Ok(fail("no initramfs in /boot", Some(Where::file("/boot"))));
    }
    for file in &files {
        let Some(bytes) = tree::read_bytes(ctx.tree, file)? else { continue };
        let names = initramfs::entries(&bytes)
            .map_err(|e| e.context(format!("reading initramfs `{file}`")))?;
        for name in &names {
            let base = name.rsplit('/').next().unwrap_or("");
            if HID_MODULES.iter().any(|m| base.starts_with(&format!("{m}.ko"))) {
                return Ok(fail(format!("{name} inside"), Some(Where::file(file))));
            }
        }
    }
    Ok(pass(format!("{} initramfs without HID drivers", files.len()), Some(Where::file(&files[0]))))
}

//! Carrying out helper requests on a system root with an injectable command runner.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use zeroize::Zeroizing;

use super::password::PasswordHash;
use super::runner::{run_checked, CommandRunner, CommandSpec};
use super::{authorized_keys, HelperReply, HelperRequest, Privileged};
use crate::messages::{Account, ServiceState, SystemStatus};

const CHPASSWD: &str = "/usr/sbin/chpasswd";
const USERMOD: &str = "/usr/sbin/usermod";
const SYSTEMCTL: &str = "/usr/bin/systemctl";
const SYSTEMD_RUN: &str = "/usr/bin/systemd-run";
/// A reboot starts this long after it is asked for, so the reply reaches the client before
/// nginx and the daemon stop.
const REBOOT_DELAY: &str = "--on-active=3";

/// The SSH server's unit.
pub const SSH_UNIT: &str = "ssh.service";

/// Units whose state `status` reports.
pub const REPORTED_UNITS: [&str; 4] =
    ["base-middleware.service", "nginx.service", SSH_UNIT, "fail2ban.service"];

/// The helper's operations on the system below `root` (`/` on a device).
pub struct SystemOps {
    root: PathBuf,
    runner: Box<dyn CommandRunner>,
}

impl SystemOps {
    /// Operations on `root`; a root other than `/` is an offline tree: the commands get
    /// their `--root` option and live-only actions (start, stop, reboot) are refused.
    pub fn new(root: &Path, runner: Box<dyn CommandRunner>) -> Self {
        Self { root: root.to_path_buf(), runner }
    }

    /// Performs `request`, turning failures into a [`HelperReply::Failed`].
    pub fn handle(&self, request: &HelperRequest) -> HelperReply {
        self.perform(request)
            .unwrap_or_else(|err| HelperReply::Failed { message: format!("{err:#}") })
    }

    fn perform(&self, request: &HelperRequest) -> anyhow::Result<HelperReply> {
        match request {
            HelperRequest::SystemStatus => Ok(HelperReply::Status(self.system_status()?)),
            HelperRequest::SetPasswordHash { account, hash } => {
                self.set_password_hash(*account, hash).map(|()| HelperReply::Done)
            }
            HelperRequest::SetSsh { enabled } => self.set_ssh(*enabled).map(|()| HelperReply::Done),
            HelperRequest::AddAuthorizedKey { key } => {
                authorized_keys::add(&self.root, key).map(|()| HelperReply::Done)
            }
            HelperRequest::ListAuthorizedKeys => {
                Ok(HelperReply::Keys { keys: authorized_keys::list(&self.root)? })
            }
            HelperRequest::RemoveAuthorizedKey { fingerprint } => {
                let removed = authorized_keys::remove(&self.root, fingerprint)?;
                Ok(if removed { HelperReply::Done } else { HelperReply::NotFound })
            }
            HelperRequest::Reboot => self.reboot().map(|()| HelperReply::Done),
        }
    }

    fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    fn root_args(&self, flag: &str) -> Vec<String> {
        if self.is_live() {
            Vec::new()
        } else {
            vec![flag.to_string(), self.root.display().to_string()]
        }
    }

    fn command(&self, program: &'static str, root_flag: &str, args: &[&str]) -> CommandSpec {
        let mut spec = CommandSpec::new(program, &[]);
        spec.args = self.root_args(root_flag);
        spec.args.extend(args.iter().map(|arg| arg.to_string()));
        spec
    }

    fn set_password_hash(&self, account: Account, hash: &PasswordHash) -> anyhow::Result<()> {
        let line = Zeroizing::new(format!("{}:{}\n", account.login(), hash.as_str()).into_bytes());
        let chpasswd = self.command(CHPASSWD, "--root", &["--encrypted"]).with_stdin(line);
        run_checked(self.runner.as_ref(), &chpasswd)?;
        let unlock = self.command(USERMOD, "--root", &["--unlock", account.login()]);
        run_checked(self.runner.as_ref(), &unlock)?;
        Ok(())
    }

    fn set_ssh(&self, enabled: bool) -> anyhow::Result<()> {
        let verb = if enabled { "enable" } else { "disable" };
        let mut args = vec![verb];
        if self.is_live() {
            args.push("--now");
        }
        args.push(SSH_UNIT);
        run_checked(self.runner.as_ref(), &self.command(SYSTEMCTL, "--root", &args))?;
        Ok(())
    }

    fn reboot(&self) -> anyhow::Result<()> {
        if !self.is_live() {
            bail!("reboot is only possible on the live system, not on `{}`", self.root.display());
        }
        let args = [REBOOT_DELAY, "--unit=base-middleware-reboot", SYSTEMCTL, "reboot"];
        run_checked(self.runner.as_ref(), &CommandSpec::new(SYSTEMD_RUN, &args))?;
        Ok(())
    }

    fn system_status(&self) -> anyhow::Result<SystemStatus> {
        let enabled = self.command(SYSTEMCTL, "--root", &["is-enabled", SSH_UNIT]);
        let ssh_enabled = self.runner.run(&enabled)?.stdout.trim() == "enabled";
        let locked_accounts = locked_accounts(&self.root.join("etc/shadow"))?;
        let services = REPORTED_UNITS.iter().map(|unit| self.unit_state(unit)).collect();
        Ok(SystemStatus { ssh_enabled, locked_accounts, services })
    }

    fn unit_state(&self, unit: &str) -> ServiceState {
        let state = if self.is_live() {
            let spec = CommandSpec::new(SYSTEMCTL, &["is-active", unit]);
            self.runner
                .run(&spec)
                .map_or("unknown".to_string(), |out| out.stdout.trim().to_string())
        } else {
            "offline".to_string()
        };
        ServiceState { unit: unit.to_string(), state }
    }
}

impl Privileged for SystemOps {
    fn call(&self, request: &HelperRequest) -> anyhow::Result<HelperReply> {
        Ok(self.handle(request))
    }
}

/// Accounts among `base` and `root` whose shadow entry is locked (`!` or `*`) or missing.
fn locked_accounts(shadow_path: &Path) -> anyhow::Result<Vec<Account>> {
    let shadow = fs::read_to_string(shadow_path)
        .with_context(|| format!("reading `{}`", shadow_path.display()))?;
    let hash_of = |login: &str| {
        shadow.lines().find_map(|line| {
            let mut fields = line.split(':');
            (fields.next() == Some(login)).then(|| fields.next().unwrap_or("").to_string())
        })
    };
    let locked = |account: &Account| match hash_of(account.login()) {
        Some(hash) => hash.starts_with('!') || hash.starts_with('*'),
        None => true,
    };
    Ok([Account::Base, Account::Root].into_iter().filter(locked).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::helper::runner::CommandOutput;

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl CommandRunner for Recorder {
        fn run(&self, spec: &CommandSpec) -> anyhow::Result<CommandOutput> {
            self.0.lock().expect("lock").push(spec.to_string());
            Ok(CommandOutput { code: Some(0), ..CommandOutput::default() })
        }
    }

    fn live() -> (SystemOps, Recorder) {
        let recorder = Recorder::default();
        (SystemOps::new(Path::new("/"), Box::new(recorder.clone())), recorder)
    }

    #[test]
    fn live_ssh_toggle_starts_and_stops_the_unit_now() {
        let (ops, recorder) = live();
        assert_eq!(ops.handle(&HelperRequest::SetSsh { enabled: true }), HelperReply::Done);
        assert_eq!(ops.handle(&HelperRequest::SetSsh { enabled: false }), HelperReply::Done);
        let ran = recorder.0.lock().expect("lock").clone();
        assert_eq!(
            ran,
            [
                "/usr/bin/systemctl enable --now ssh.service",
                "/usr/bin/systemctl disable --now ssh.service"
            ]
        );
    }

    #[test]
    fn live_password_change_feeds_the_hash_on_stdin_then_unlocks() {
        let (ops, recorder) = live();
        let hash = PasswordHash::parse("$6$saltsalt$abc").expect("valid");
        let request = HelperRequest::SetPasswordHash { account: Account::Base, hash };
        assert_eq!(ops.handle(&request), HelperReply::Done);
        let ran = recorder.0.lock().expect("lock").clone();
        assert_eq!(ran, ["/usr/sbin/chpasswd --encrypted", "/usr/sbin/usermod --unlock base"]);
    }

    #[test]
    fn live_reboot_asks_systemd() {
        let (ops, recorder) = live();
        assert_eq!(ops.handle(&HelperRequest::Reboot), HelperReply::Done);
        assert_eq!(
            recorder.0.lock().expect("lock").clone(),
            ["/usr/bin/systemd-run --on-active=3 --unit=base-middleware-reboot /usr/bin/systemctl reboot"]
        );
    }

    #[test]
    fn offline_root_passes_root_option_and_skips_now() {
        let recorder = Recorder::default();
        let ops = SystemOps::new(Path::new("/srv/image"), Box::new(recorder.clone()));
        assert_eq!(ops.handle(&HelperRequest::SetSsh { enabled: true }), HelperReply::Done);
        let ran = recorder.0.lock().expect("lock").clone();
        assert_eq!(ran, ["/usr/bin/systemctl --root /srv/image enable ssh.service"]);
    }

    #[test]
    fn missing_or_starred_shadow_entries_count_as_locked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shadow = dir.path().join("shadow");
        std::fs::write(&shadow, "root:*:1::::::\nbase:$6$x$y:1::::::\n").expect("written");
        assert_eq!(locked_accounts(&shadow).expect("read"), vec![Account::Root]);
        std::fs::write(&shadow, "root:$6$x$y:1::::::\n").expect("written");
        assert_eq!(locked_accounts(&shadow).expect("read"), vec![Account::Base]);
    }
}

//! The one way this program runs external commands: shown, checked, with a clean environment.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context;

/// Environment every command gets, on top of `PATH`; nothing else leaks in from the caller.
const CLEAN_ENV: &[(&str, &str)] = &[("LC_ALL", "C.UTF-8"), ("TZ", "UTC"), ("LANG", "C.UTF-8")];

/// A command line to run: the program, its arguments and extra environment.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
    debian_package: Option<&'static str>,
    stdin: Option<Vec<u8>>,
    quiet: bool,
    dir: Option<std::path::PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            debian_package: None,
            stdin: None,
            quiet: false,
            dir: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Names the Debian package that provides the program, for the "not found" message.
    pub fn from_package(mut self, package: &'static str) -> Self {
        self.debian_package = Some(package);
        self
    }

    /// Does not show the command line before it runs (for many small reads); a failure still
    /// names it.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Passes these variables through from this process's environment, where set.
    pub fn inherit_env(mut self, keys: &[&str]) -> Self {
        for key in keys {
            if let Some(value) = std::env::var_os(key) {
                self.env.push((key.to_string(), value));
            }
        }
        self
    }

    /// Runs the command in `dir` instead of this process's working folder.
    pub fn dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Feeds `bytes` to the command's stdin (which is otherwise closed).
    pub fn stdin_bytes(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// The command line as a user would type it.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn expression(&self, stderr_capture: bool) -> duct::Expression {
        // One complete environment: duct applies outer settings first, so a later `env()`
        // on top of `full_env()` would be cleared again.
        let mut env: std::collections::HashMap<String, OsString> =
            clean_env().into_iter().map(|(k, v)| (k, OsString::from(v))).collect();
        env.extend(self.env.iter().cloned());
        let mut expr = duct::cmd(&self.program, &self.args).full_env(env);
        expr = match &self.stdin {
            Some(bytes) => expr.stdin_bytes(bytes.clone()),
            None => expr.stdin_null(),
        };
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir);
        }
        if stderr_capture {
            expr = expr.stderr_capture();
        }
        expr.unchecked()
    }

    /// Runs the command, its stdout and stderr captured; fails with both on a non-zero exit.
    pub fn run(&self) -> anyhow::Result<Vec<u8>> {
        if !self.quiet {
            crate::progress::command(&self.display());
        }
        let output =
            self.expression(true).stdout_capture().run().map_err(|e| self.spawn_error(e))?;
        if !output.status.success() {
            anyhow::bail!(
                "command failed ({}): {}\n{}{}",
                output.status,
                self.display(),
                tail(&output.stderr),
                tail(&output.stdout)
            );
        }
        Ok(output.stdout)
    }

    /// Runs the command and returns its stdout as text.
    pub fn read(&self) -> anyhow::Result<String> {
        let out = self.run()?;
        String::from_utf8(out).with_context(|| format!("reading the output of {}", self.display()))
    }

    /// Runs the command and returns stdout and stderr together (for `--version` probes that
    /// print to either).
    pub fn run_merged(&self) -> anyhow::Result<String> {
        let output = self
            .expression(false)
            .stderr_to_stdout()
            .stdout_capture()
            .run()
            .map_err(|e| self.spawn_error(e))?;
        anyhow::ensure!(
            output.status.success(),
            "command failed ({}): {}",
            output.status,
            self.display()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs the command with its output going to `log` (a long step's log file).
    pub fn run_logged(&self, log: &Path) -> anyhow::Result<()> {
        crate::progress::command(&self.display());
        let file = std::fs::File::create(log)
            .with_context(|| format!("creating log file `{}`", log.display()))?;
        let err_file = file.try_clone().context("duplicating the log file handle")?;
        let _heartbeat = crate::progress::Heartbeat::start(log);
        let status = self
            .expression(false)
            .stdout_file(file)
            .stderr_file(err_file)
            .run()
            .map_err(|e| self.spawn_error(e))?
            .status;
        if !status.success() {
            let text = std::fs::read(log).unwrap_or_default();
            anyhow::bail!(
                "command failed ({status}): {}\nlast lines of `{}`:\n{}",
                self.display(),
                log.display(),
                tail(&text)
            );
        }
        Ok(())
    }

    /// Starts the command without waiting for it (a daemon or a virtual machine), its output
    /// going to `log`. The caller stops it through the returned handle.
    pub fn spawn_logged(&self, log: &Path) -> anyhow::Result<duct::Handle> {
        crate::progress::command(&self.display());
        let file = std::fs::File::create(log)
            .with_context(|| format!("creating log file `{}`", log.display()))?;
        let err_file = file.try_clone().context("duplicating the log file handle")?;
        self.expression(false)
            .stdout_file(file)
            .stderr_file(err_file)
            .start()
            .map_err(|e| self.spawn_error(e))
    }

    fn spawn_error(&self, e: std::io::Error) -> anyhow::Error {
        let program = self.program.to_string_lossy();
        if e.kind() == std::io::ErrorKind::NotFound {
            let hint = match self.debian_package {
                Some(pkg) => format!("; install it with `apt-get install {pkg}`"),
                None => String::new(),
            };
            return anyhow::anyhow!("`{program}` was not found on PATH{hint}");
        }
        anyhow::Error::new(e).context(format!("starting {}", self.display()))
    }
}

fn clean_env() -> std::collections::HashMap<String, String> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    let mut env: std::collections::HashMap<String, String> =
        CLEAN_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env.insert("PATH".into(), path);
    if let Ok(tmp) = std::env::var("TMPDIR") {
        env.insert("TMPDIR".into(), tmp);
    }
    env
}

/// The last 40 lines of a command's output, for an error message.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(40);
    lines[start..].iter().map(|l| format!("  {l}\n")).collect()
}

pub fn shell_quote(s: &str) -> String {
    let plain =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_command_reports_its_line_and_stderr() {
        let err = Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]).run().unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("sh -c 'echo oops >&2; exit 3'"), "{text}");
        assert!(text.contains("oops"), "{text}");
    }

    #[test]
    fn missing_program_names_its_package() {
        let err = Cmd::new("baseimg-no-such-tool").from_package("some-pkg").run().unwrap_err();
        assert!(err.to_string().contains("apt-get install some-pkg"), "{err}");
    }

    #[test]
    fn extra_variables_reach_the_command() {
        let out = Cmd::new("env").env("SOURCE_DATE_EPOCH", "42").read().expect("env runs");
        assert!(out.lines().any(|l| l == "SOURCE_DATE_EPOCH=42"), "{out}");
    }

    #[test]
    fn environment_is_clean() {
        std::env::set_var("BASEIMG_LEAK_CHECK", "1");
        let out = Cmd::new("env").read().expect("env runs");
        assert!(!out.contains("BASEIMG_LEAK_CHECK"));
        assert!(out.contains("TZ=UTC"));
    }
}

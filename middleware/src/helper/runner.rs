//! Running the helper's external commands: argv only, clean environment, checked status.

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use zeroize::Zeroizing;

/// One command: an absolute program path, its arguments, and optional secret stdin.
pub struct CommandSpec {
    pub program: &'static str,
    pub args: Vec<String>,
    pub stdin: Option<Zeroizing<Vec<u8>>>,
}

impl CommandSpec {
    /// A command without stdin.
    pub fn new(program: &'static str, args: &[&str]) -> Self {
        let args = args.iter().map(|arg| arg.to_string()).collect();
        Self { program, args, stdin: None }
    }

    /// Feeds `input` on stdin (kept out of every message and log).
    pub fn with_stdin(mut self, input: Zeroizing<Vec<u8>>) -> Self {
        self.stdin = Some(input);
        self
    }
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program)?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// What a finished command printed and how it exited.
#[derive(Debug, Clone, Default)]
pub struct CommandOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs commands; tests substitute a recorder.
pub trait CommandRunner: Send + Sync {
    /// Runs `spec` to completion; an error means it could not run at all.
    fn run(&self, spec: &CommandSpec) -> anyhow::Result<CommandOutput>;
}

/// Runs `spec` and fails unless it exits 0, putting the command and its stderr in the error.
pub fn run_checked(runner: &dyn CommandRunner, spec: &CommandSpec) -> anyhow::Result<String> {
    let output = runner.run(spec)?;
    if !output.success() {
        let code = output.code.map_or("a signal".to_string(), |code| format!("status {code}"));
        bail!("`{spec}` exited with {code}: {}", output.stderr.trim());
    }
    Ok(output.stdout)
}

/// The real runner: no shell, `env` cleared to PATH and LC_ALL=C, stdin closed unless fed.
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, spec: &CommandSpec) -> anyhow::Result<CommandOutput> {
        let mut child = Command::new(spec.program)
            .args(&spec.args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{spec}`"))?;
        if let (Some(input), Some(mut stdin)) = (&spec.stdin, child.stdin.take()) {
            stdin.write_all(input).with_context(|| format!("writing to `{spec}`"))?;
        }
        let output = child.wait_with_output().with_context(|| format!("waiting for `{spec}`"))?;
        Ok(CommandOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_command_error_names_command_and_stderr() {
        let spec = CommandSpec::new("/bin/sh", &["-c", "echo boom >&2; exit 3"]);
        let err = run_checked(&SystemRunner, &spec).expect_err("fails").to_string();
        assert!(err.contains("/bin/sh -c") && err.contains("status 3") && err.contains("boom"));
    }

    #[test]
    fn stdin_reaches_the_command_but_not_its_display() {
        let spec = CommandSpec::new("/bin/cat", &[]).with_stdin(Zeroizing::new(b"secret".to_vec()));
        assert_eq!(run_checked(&SystemRunner, &spec).expect("runs"), "secret");
        assert!(!spec.to_string().contains("secret"));
    }
}

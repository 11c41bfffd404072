//! Status output on stderr: step starts and durations, commands run; plain lines in CI.

use std::io::Write;
use std::time::Instant;

/// Announces a build step and returns a guard that prints its duration when dropped.
pub fn step(name: &str) -> StepTimer {
    let _ = writeln!(std::io::stderr(), "==> {name}");
    StepTimer { name: name.to_string(), start: Instant::now() }
}

/// A note within the current step.
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "    {message}");
}

/// Shows a command line before it runs.
pub fn command(line: &str) {
    let _ = writeln!(std::io::stderr(), "    $ {line}");
}

/// Prints the duration of a step when dropped.
pub struct StepTimer {
    name: String,
    start: Instant,
}

impl Drop for StepTimer {
    fn drop(&mut self) {
        let secs = self.start.elapsed().as_secs_f64();
        let _ = writeln!(std::io::stderr(), "    {} took {secs:.1}s", self.name);
    }
}

/// While alive, prints every 30 seconds how long a long command has run and its log's last line.
pub struct Heartbeat {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(log: &std::path::Path) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let log = log.to_path_buf();
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            let period = std::time::Duration::from_secs(30);
            while stopped.recv_timeout(period) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                let text = std::fs::read(&log).unwrap_or_default();
                let text = String::from_utf8_lossy(&text);
                let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                let last: String = last.chars().take(100).collect();
                let secs = start.elapsed().as_secs();
                let _ = writeln!(std::io::stderr(), "    [{}m{:02}s] {last}", secs / 60, secs % 60);
            }
        });
        Self { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

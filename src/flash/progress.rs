//! Progress of a long write on stderr: bytes done, share and throughput; redrawn in place on
//! a terminal, a line every few seconds in a log.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    what: &'static str,
    total: u64,
    done: u64,
    start: Instant,
    last: Instant,
    terminal: bool,
}

impl Progress {
    pub fn new(what: &'static str, total: u64) -> Self {
        let now = Instant::now();
        let terminal = std::io::stderr().is_terminal();
        Self { what, total, done: 0, start: now, last: now, terminal }
    }

    pub fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        let every = if self.terminal { Duration::from_millis(250) } else { Duration::from_secs(5) };
        if self.last.elapsed() >= every {
            self.last = Instant::now();
            self.show(false);
        }
    }

    pub fn finish(&mut self) {
        self.show(true);
    }

    fn show(&self, last: bool) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
        let line = format!(
            "    {} {:.0} of {:.0} MiB ({:.0}%), {:.1} MiB/s, {secs:.1}s",
            self.what,
            mib(self.done),
            mib(self.total),
            self.done as f64 * 100.0 / self.total.max(1) as f64,
            mib(self.done) / secs
        );
        let mut err = std::io::stderr();
        let _ = if self.terminal && !last {
            write!(err, "\r{line}\x1b[K")
        } else if self.terminal {
            writeln!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
    }
}

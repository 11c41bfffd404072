//! The pairing window: when the device may approve a new client, and why.

use std::time::{Duration, Instant};

/// Longest window a client or a local command may open.
pub const MAX_WINDOW: Duration = Duration::from_secs(600);

/// Window length when none is given.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(120);

/// Why the window is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowReason {
    /// No client has ever been paired (or all were revoked).
    FactoryState,
    /// A paired client asked for a window.
    OpenedByClient,
    /// Root ran `base-middleware open-window` on the device.
    OpenedLocally,
}

/// A timed window; it admits one new client and then closes.
#[derive(Debug, Default)]
pub struct PairingWindow {
    open: Option<(Instant, WindowReason)>,
}

impl PairingWindow {
    /// Opens (or extends) the window for `length`, capped at [`MAX_WINDOW`].
    pub fn open(&mut self, length: Duration, reason: WindowReason, now: Instant) -> Duration {
        let length = length.min(MAX_WINDOW);
        self.open = Some((now + length, reason));
        length
    }

    /// Whether a new client may be approved now, given how many clients are paired.
    pub fn reason_open(&self, paired_clients: usize, now: Instant) -> Option<WindowReason> {
        if paired_clients == 0 {
            return Some(WindowReason::FactoryState);
        }
        match self.open {
            Some((deadline, reason)) if now < deadline => Some(reason),
            _ => None,
        }
    }

    /// Closes the window after it admitted a client.
    pub fn close(&mut self) {
        self.open = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_state_is_open_without_any_window() {
        let window = PairingWindow::default();
        assert_eq!(window.reason_open(0, Instant::now()), Some(WindowReason::FactoryState));
        assert_eq!(window.reason_open(1, Instant::now()), None);
    }

    #[test]
    fn timed_window_expires_and_is_capped() {
        let mut window = PairingWindow::default();
        let now = Instant::now();
        let granted = window.open(Duration::from_secs(3600), WindowReason::OpenedByClient, now);
        assert_eq!(granted, MAX_WINDOW);
        assert_eq!(window.reason_open(1, now), Some(WindowReason::OpenedByClient));
        assert_eq!(window.reason_open(1, now + MAX_WINDOW), None);
    }

    #[test]
    fn window_closes_after_admitting_a_client() {
        let mut window = PairingWindow::default();
        let now = Instant::now();
        window.open(DEFAULT_WINDOW, WindowReason::OpenedLocally, now);
        window.close();
        assert_eq!(window.reason_open(1, now), None);
    }
}

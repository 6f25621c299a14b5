//! Time as unix milliseconds. Commands read "now" once per command (once per EXEC) from a
//! [`Clock`]; tests use [`Clock::manual`] to move time without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The source of "now" for the whole server.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system wall clock.
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock that only moves when told to; starts at `start_ms`.
    pub fn manual(start_ms: u64) -> Self {
        Clock {
            manual: Some(Arc::new(AtomicU64::new(start_ms))),
        }
    }

    /// Current unix time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Relaxed),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    /// Current unix time in microseconds (TIME, CLIENT LIST ages).
    pub fn now_us(&self) -> u64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Relaxed) * 1000,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
        }
    }

    /// Moves a manual clock forward. No effect on the system clock.
    pub fn advance_ms(&self, ms: u64) {
        if let Some(t) = &self.manual {
            t.fetch_add(ms, Ordering::Relaxed);
        }
    }

    /// Sets a manual clock. No effect on the system clock.
    pub fn set_ms(&self, ms: u64) {
        if let Some(t) = &self.manual {
            t.store(ms, Ordering::Relaxed);
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance_ms(5);
        assert_eq!(c.now_ms(), 1005);
        let shared = c.clone();
        shared.set_ms(42);
        assert_eq!(c.now_ms(), 42);
    }

    #[test]
    fn system_clock_is_plausible() {
        assert!(Clock::system().now_ms() > 1_600_000_000_000);
    }
}

//! CLIENT PAUSE / UNPAUSE: holding clients' commands back for a while, as failover tools do
//! during a switchover (pause writes on the old master, let the replica catch up, promote).
//!
//! `ALL` holds every command of normal clients, `WRITE` only those that may change data
//! (write commands, PUBLISH, an EXEC whose transaction writes). Replicas and the master's
//! link are never held. While paused nothing expires either — the sweeper waits and lazy
//! expiry hides instead of deleting (the keyspace's flag) — so the dataset, and the
//! stream replicas receive, stay still, as in Redis. A held client waits in its
//! connection task, in order: its pipelined commands after the held one wait too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The pause in force.
#[derive(Debug, Clone, Copy)]
struct State {
    until: Instant,
    all: bool,
}

#[derive(Debug, Default)]
pub struct Pause {
    /// One load per command while no pause is on.
    active: AtomicBool,
    state: Mutex<Option<State>>,
    ended: Notify,
    /// The keyspace's "keep expired data" flag for pauses (see `Keyspace`).
    expiry_paused: Arc<AtomicBool>,
}

impl Pause {
    /// A pause controller that stops expiry through `expiry_paused`.
    pub fn new(expiry_paused: Arc<AtomicBool>) -> Self {
        Pause {
            expiry_paused,
            ..Default::default()
        }
    }

    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// CLIENT PAUSE: for `ms` from now, every command (`all`) or the writing ones. A pause
    /// in force is extended, never shortened, and `ALL` wins over `WRITE`.
    pub fn pause(&self, ms: u64, all: bool) {
        let until = Instant::now() + Duration::from_millis(ms);
        let mut st = self.state.lock();
        *st = Some(match *st {
            Some(s) => State {
                until: s.until.max(until),
                all: s.all || all,
            },
            None => State { until, all },
        });
        self.expiry_paused.store(true, Ordering::Relaxed);
        self.active.store(true, Ordering::Relaxed);
    }

    /// CLIENT UNPAUSE (or the pause's end).
    pub fn unpause(&self) {
        *self.state.lock() = None;
        self.active.store(false, Ordering::Relaxed);
        self.expiry_paused.store(false, Ordering::Relaxed);
        self.ended.notify_waiters();
    }

    /// Ends a pause whose time is up (called by the waiting clients and the sweeper task).
    pub fn refresh(&self) {
        // Checked and cleared under one lock: a CLIENT PAUSE made meanwhile stays.
        let mut st = self.state.lock();
        if st.is_some_and(|s| Instant::now() >= s.until) {
            *st = None;
            self.active.store(false, Ordering::Relaxed);
            self.expiry_paused.store(false, Ordering::Relaxed);
            drop(st);
            self.ended.notify_waiters();
        }
    }

    /// Whether a command that writes (`writes`) or not is held now.
    pub fn holds(&self, writes: bool) -> bool {
        if !self.is_active() {
            return false;
        }
        self.refresh();
        match *self.state.lock() {
            Some(s) => s.all || writes,
            None => false,
        }
    }

    /// Waits until a command that writes (or not) may run.
    pub async fn wait(&self, writes: bool) {
        loop {
            let ended = self.ended.notified();
            let until = match *self.state.lock() {
                Some(s) if s.all || writes => s.until,
                _ => return,
            };
            tokio::select! {
                _ = ended => {}
                _ = tokio::time::sleep_until(until) => self.refresh(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_pauses_hold_writes_only_and_all_wins() {
        let flag = Arc::new(AtomicBool::new(false));
        let p = Pause::new(Arc::clone(&flag));
        assert!(!p.holds(true));
        p.pause(60_000, false);
        assert!(flag.load(Ordering::Relaxed), "expiry stops while paused");
        assert!(p.holds(true));
        assert!(!p.holds(false));
        p.pause(10, true);
        assert!(p.holds(false), "ALL wins");
        p.unpause();
        assert!(!p.holds(true));
        assert!(!flag.load(Ordering::Relaxed));
        p.pause(0, true);
        p.refresh();
        assert!(!p.is_active(), "a pause whose time is up ends");
    }
}

//! ACL LOG: refused commands and failed logins, newest first, with repeats of the same
//! event within a minute folded into one entry, as Redis's `addACLLogEntry`.

use std::collections::VecDeque;

/// Repeats of one event closer than this are counted in its entry (Redis's
/// `ACL_LOG_GROUPING_MAX_TIME_DELTA`).
const GROUPING_MS: u64 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogReason {
    Command,
    Key,
    Channel,
    Auth,
}

impl LogReason {
    pub fn name(self) -> &'static str {
        match self {
            LogReason::Command => "command",
            LogReason::Key => "key",
            LogReason::Channel => "channel",
            LogReason::Auth => "auth",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogContext {
    TopLevel,
    Multi,
}

impl LogContext {
    pub fn name(self) -> &'static str {
        match self {
            LogContext::TopLevel => "toplevel",
            LogContext::Multi => "multi",
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub reason: LogReason,
    pub context: LogContext,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// The client's CLIENT LIST line at the latest occurrence.
    pub client_info: Vec<u8>,
    pub entry_id: u64,
}

#[derive(Debug, Default)]
pub struct AclLog {
    entries: VecDeque<LogEntry>,
    next_id: u64,
}

/// One event to log.
pub struct Event<'a> {
    pub reason: LogReason,
    pub context: LogContext,
    pub object: &'a [u8],
    pub username: &'a [u8],
    pub client_info: Vec<u8>,
}

impl AclLog {
    pub fn add(&mut self, e: Event<'_>, now_ms: u64, max_len: usize) {
        let similar = self.entries.iter().position(|x| {
            x.reason == e.reason
                && x.context == e.context
                && x.object == e.object
                && x.username == e.username
                && now_ms.saturating_sub(x.updated_ms) <= GROUPING_MS
        });
        if let Some(at) = similar {
            if let Some(mut x) = self.entries.remove(at) {
                x.count += 1;
                x.updated_ms = now_ms;
                x.client_info = e.client_info;
                self.entries.push_front(x);
            }
            return;
        }
        let entry = LogEntry {
            count: 1,
            reason: e.reason,
            context: e.context,
            object: e.object.to_vec(),
            username: e.username.to_vec(),
            created_ms: now_ms,
            updated_ms: now_ms,
            client_info: e.client_info,
            entry_id: self.next_id,
        };
        self.next_id += 1;
        self.entries.push_front(entry);
        self.entries.truncate(max_len);
    }

    /// The newest `count` entries.
    pub fn newest(&self, count: usize) -> Vec<LogEntry> {
        self.entries.iter().take(count).cloned().collect()
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// Applies a smaller `acllog-max-len` at once.
    pub fn trim(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(object: &'a [u8]) -> Event<'a> {
        Event {
            reason: LogReason::Command,
            context: LogContext::TopLevel,
            object,
            username: b"alice",
            client_info: Vec::new(),
        }
    }

    #[test]
    fn repeats_fold_and_move_to_the_front() {
        let mut log = AclLog::default();
        log.add(ev(b"hdel"), 1000, 128);
        log.add(ev(b"hget"), 1001, 128);
        log.add(ev(b"hdel"), 1002, 128);
        let e = log.newest(10);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].object.as_slice(), e[0].count), (&b"hdel"[..], 2));
        assert_eq!(
            (e[0].entry_id, e[0].created_ms, e[0].updated_ms),
            (0, 1000, 1002)
        );
        // More than a minute later it is a new entry.
        log.add(ev(b"hdel"), 1002 + GROUPING_MS + 1, 128);
        assert_eq!(log.newest(10).len(), 3);
        assert_eq!(log.newest(1)[0].entry_id, 2);
        log.add(ev(b"x"), 999_999, 2);
        assert_eq!(log.newest(10).len(), 2);
    }
}

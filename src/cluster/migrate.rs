//! Live slot migration (`CLUSTERX MIGRATE <slot> <target-id>`), source and target sides.
//!
//! The source copies the slot while it keeps serving it:
//! 1. Under every shard lock of database 0, it takes the slot's keys (fields, field TTLs,
//!    key TTL) and starts capturing the effect batches that touch the slot — one cut, so
//!    nothing is missed or sent twice. The capture is one more effect consumer.
//! 2. A task tells the target `CLUSTERX IMPORT <slot> 0`, sends the keys as the commands
//!    the append-only file uses (DEL, HSET, HPEXPIREAT, PEXPIREAT), then what was captured
//!    meanwhile, checking every reply.
//! 3. Hand-over: writes to the slot get `-TRYAGAIN` (clients retry), a barrier under every
//!    lock lets the writes already admitted finish, the rest of the capture is sent, the
//!    target is told `CLUSTERX IMPORT <slot> 1` and serves the slot from then on; the source
//!    answers `-MOVED` for it and deletes its copy.
//!
//! Any failure stops the capture and leaves the source serving the slot with all its data
//! (`migrating_state:fail`); the target is told `CLUSTERX IMPORT <slot> 2` and drops what it
//! received. The controller then assigns the slot with `CLUSTERX SETSLOT` on every node,
//! which ends the overrides.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use super::key_slot;
use crate::keyspace::{Batch, Change, EffectSink};
use crate::persist::propagate::Propagator;

/// How long the target may take to answer before the migration fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// `migrating_state` in CLUSTER INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Start,
    Success,
    Fail,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Start => "start",
            State::Success => "success",
            State::Fail => "fail",
        }
    }
}

/// One migration for the task to run: the slot, the target, the snapshot as commands, and
/// the capture's receiving end.
pub struct Job {
    /// The slots, as an inclusive range (`CLUSTERX MIGRATE 5` or `5-10`).
    pub slots: (u16, u16),
    pub host: String,
    pub port: u16,
    pub snapshot: Vec<u8>,
    pub captured: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// Migration state on both sides, shared by the cluster, the effect sink and the task.
#[derive(Default)]
pub struct Migrations {
    /// Source: the last migration started here and how it went.
    pub status: Mutex<Option<((u16, u16), State)>>,
    capturing: AtomicBool,
    capture_start: AtomicU32,
    capture_end: AtomicU32,
    /// Writes to the migrating slot are refused (`-TRYAGAIN`) during the hand-over.
    finishing: AtomicBool,
    sender: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    propagator: Mutex<Propagator>,
    job: Mutex<Option<Job>>,
    pub wake: Notify,
    /// Source: slots handed over, with the target's endpoint, until the topology says.
    moved: RwLock<HashMap<u16, String>>,
    /// Target: slots being imported, and slots imported and served here.
    importing: RwLock<HashSet<u16>>,
    imported: RwLock<HashSet<u16>>,
    /// Any of the above may change a routing decision: commands then check their slot
    /// again under their locks (one load otherwise).
    any: AtomicBool,
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrations")
            .field("status", &*self.status.lock())
            .finish_non_exhaustive()
    }
}

/// What routing needs to know of the migrations for one slot.
pub enum Override {
    None,
    Moved(String),
    ServedHere,
    Importing,
    /// A write to the slot being handed over.
    TryAgain,
}

impl Override {
    pub fn is_some(&self) -> bool {
        !matches!(self, Override::None)
    }
}

impl Migrations {
    /// Whether any migration state could change a routing decision (one load when idle).
    pub fn active(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Recomputes [`Migrations::active`] after a change.
    fn refresh(&self) {
        let any = self.capturing.load(Ordering::Acquire)
            || !self.moved.read().is_empty()
            || !self.importing.read().is_empty()
            || !self.imported.read().is_empty();
        self.any.store(any, Ordering::Release);
    }

    pub fn in_progress(&self) -> bool {
        self.capturing.load(Ordering::Relaxed)
    }

    /// The override for `slot`, if any.
    pub fn route(&self, slot: u16, write: bool) -> Override {
        if self.finishing.load(Ordering::Relaxed) && write && self.captures(slot) {
            return Override::TryAgain;
        }
        if let Some(e) = self.moved.read().get(&slot) {
            return Override::Moved(e.clone());
        }
        if self.imported.read().contains(&slot) {
            return Override::ServedHere;
        }
        if self.importing.read().contains(&slot) {
            return Override::Importing;
        }
        Override::None
    }

    /// Whether `slot` is in the range being captured.
    fn captures(&self, slot: u16) -> bool {
        let s = u32::from(slot);
        self.capture_start.load(Ordering::Relaxed) <= s
            && s <= self.capture_end.load(Ordering::Relaxed)
    }

    /// A new topology assigns every slot: the overrides end.
    pub fn topology_changed(&self) {
        self.moved.write().clear();
        self.imported.write().clear();
        self.refresh();
    }

    /// Source, under every shard lock: starts capturing the slot's changes and queues the
    /// job for the task.
    pub fn start(&self, mut job: Job, snapshot_batch: &Batch) {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut p = self.propagator.lock();
            p.reset();
            p.batch(snapshot_batch, &mut job.snapshot);
        }
        *self.sender.lock() = Some(tx);
        job.captured = rx;
        self.capture_start
            .store(u32::from(job.slots.0), Ordering::Relaxed);
        self.capture_end
            .store(u32::from(job.slots.1), Ordering::Relaxed);
        self.capturing.store(true, Ordering::Release);
        self.any.store(true, Ordering::Release);
        *self.status.lock() = Some((job.slots, State::Start));
        *self.job.lock() = Some(job);
        self.wake.notify_one();
    }

    fn stop_capture(&self) {
        self.capturing.store(false, Ordering::Release);
        self.finishing.store(false, Ordering::Relaxed);
        *self.sender.lock() = None;
    }

    fn finish(&self, slots: (u16, u16), state: State) {
        self.stop_capture();
        *self.status.lock() = Some((slots, state));
        self.refresh();
    }

    /// Source, after the hand-over: the slot is the target's; clients are sent there.
    fn hand_over(&self, (a, b): (u16, u16), endpoint: String) {
        let mut moved = self.moved.write();
        for slot in a..=b {
            moved.insert(slot, endpoint.clone());
        }
        drop(moved);
        self.refresh();
    }

    /// Target: `CLUSTERX IMPORT slot 0|1|2`.
    pub fn import(&self, (a, b): (u16, u16), state: u8) {
        for slot in a..=b {
            match state {
                0 => {
                    self.importing.write().insert(slot);
                }
                1 => {
                    self.importing.write().remove(&slot);
                    self.imported.write().insert(slot);
                }
                _ => {
                    self.importing.write().remove(&slot);
                }
            }
        }
        self.refresh();
    }

    pub fn take_job(&self) -> Option<Job> {
        self.job.lock().take()
    }
}

/// The capture, as an effect consumer: batches touching the migrating slot, as commands.
pub struct Capture(pub Arc<Migrations>);

impl EffectSink for Capture {
    fn interested(&self) -> bool {
        self.0.capturing.load(Ordering::Relaxed)
    }

    fn publish(&self, batch: &Batch) {
        let m = &self.0;
        let slots = (
            m.capture_start.load(Ordering::Relaxed) as u16,
            m.capture_end.load(Ordering::Relaxed) as u16,
        );
        let mut filtered = Batch::default();
        for (command, effects) in batch.commands() {
            let start = filtered.effects.len();
            for e in effects {
                if e.db != 0 {
                    continue;
                }
                if matches!(e.change, Change::Flushed | Change::Swapped { .. }) {
                    // FLUSHDB while migrating: the copy is void (flushing the target would
                    // take its other slots too). The migration fails.
                    tracing::warn!(?slots, "migration: the database was flushed");
                    m.finish(slots, State::Fail);
                    return;
                }
                if m.captures(key_slot(&e.key)) {
                    filtered.effects.push(e.clone());
                }
            }
            if filtered.effects.len() > start {
                filtered
                    .segments
                    .push(crate::keyspace::Segment { command, start });
            }
        }
        if filtered.effects.is_empty() {
            return;
        }
        let mut out = Vec::new();
        m.propagator.lock().batch(&filtered, &mut out);
        if let Some(tx) = m.sender.lock().as_ref() {
            let _ = tx.send(out);
        }
    }
}

/// The length of the complete RESP2 reply at the front of `buf` (None: more bytes needed;
/// Err: not a reply).
fn reply_len(buf: &[u8]) -> Result<Option<usize>, ()> {
    fn line(buf: &[u8], from: usize) -> Option<usize> {
        buf.get(from..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| from + p)
    }
    fn at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<usize>, ()> {
        if depth > 8 {
            return Err(());
        }
        let Some(&t) = buf.get(pos) else {
            return Ok(None);
        };
        if !b"+-:$*".contains(&t) {
            return Err(());
        }
        let Some(eol) = line(buf, pos + 1) else {
            return Ok(None);
        };
        let n = || {
            std::str::from_utf8(&buf[pos + 1..eol])
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or(())
        };
        match t {
            b'+' | b'-' | b':' => Ok(Some(eol + 2)),
            b'$' => {
                let len = n()?;
                if len < 0 {
                    return Ok(Some(eol + 2));
                }
                let end = eol + 2 + len as usize + 2;
                Ok((buf.len() >= end).then_some(end))
            }
            b'*' => {
                let count = n()?;
                let mut p = eol + 2;
                for _ in 0..count.max(0) {
                    match at(buf, p, depth + 1)? {
                        Some(next) => p = next,
                        None => return Ok(None),
                    }
                }
                Ok(Some(p))
            }
            _ => Err(()),
        }
    }
    at(buf, 0, 0)
}

/// A connection to the target that sends commands and checks their replies.
struct Target {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Target {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| format!("write to the target: {e}"))
    }

    /// Reads `n` replies; an error reply fails the migration.
    async fn replies(&mut self, mut n: usize) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        while n > 0 {
            loop {
                match reply_len(&self.buf) {
                    Ok(Some(len)) => {
                        if self.buf.first() == Some(&b'-') {
                            return Err(format!(
                                "the target answered {}",
                                String::from_utf8_lossy(&self.buf[..len]).trim_end()
                            ));
                        }
                        self.buf.drain(..len);
                        n -= 1;
                        if n == 0 {
                            return Ok(());
                        }
                    }
                    Ok(None) => break,
                    Err(()) => return Err("a malformed reply from the target".into()),
                }
            }
            let read = tokio::time::timeout(REPLY_TIMEOUT, self.stream.read(&mut chunk))
                .await
                .map_err(|_| "the target did not answer in time".to_string())?
                .map_err(|e| format!("read from the target: {e}"))?;
            if read == 0 {
                return Err("the target closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
        Ok(())
    }

    /// Sends commands (already encoded, `count` of them) and checks every reply.
    async fn run(&mut self, bytes: &[u8], count: usize) -> Result<(), String> {
        if count == 0 {
            return Ok(());
        }
        self.send(bytes).await?;
        self.replies(count).await
    }
}

/// How many requests an encoded command stream holds (every one is a multibulk).
fn count_requests(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    while let Ok(Some(len)) = reply_len(bytes) {
        n += 1;
        bytes = &bytes[len..];
    }
    n
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::persist::aof::encode_command(&mut out, args);
    out
}

async fn migrate(
    server: &crate::context::ServerContext,
    m: &Migrations,
    job: &mut Job,
) -> Result<(), String> {
    let stream = tokio::time::timeout(
        REPLY_TIMEOUT,
        TcpStream::connect((job.host.as_str(), job.port)),
    )
    .await
    .map_err(|_| "connecting to the target timed out".to_string())?
    .map_err(|e| format!("connect to the target: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut t = Target {
        stream,
        buf: Vec::new(),
    };
    // The target's password is the cluster's own (`masterauth`, as for replication).
    let auth = server.replication.settings.masterauth.read().clone();
    if let Some(pass) = auth {
        let user = server.replication.settings.masteruser.read().clone();
        let cmd = match &user {
            Some(u) => command(&[b"AUTH", u.as_bytes(), pass.as_bytes()]),
            None => command(&[b"AUTH", pass.as_bytes()]),
        };
        t.run(&cmd, 1).await?;
    }
    let slot = range_text(job.slots);
    t.run(
        &command(&[b"CLUSTERX", b"IMPORT", slot.as_bytes(), b"0"]),
        1,
    )
    .await?;
    let result = copy(server, m, job, &mut t).await;
    if result.is_err() {
        // The target forgets what it received (best effort: the link may be what failed).
        let cmd = command(&[b"CLUSTERX", b"IMPORT", slot.as_bytes(), b"2"]);
        let _ = tokio::time::timeout(Duration::from_secs(5), t.run(&cmd, 1)).await;
    }
    result
}

/// Sends the snapshot and the capture, then hands the slot over.
async fn copy(
    server: &crate::context::ServerContext,
    m: &Migrations,
    job: &mut Job,
    t: &mut Target,
) -> Result<(), String> {
    let slot = range_text(job.slots);
    let snapshot = std::mem::take(&mut job.snapshot);
    t.run(&snapshot, count_requests(&snapshot)).await?;
    // What changed meanwhile, until the queue is (nearly) empty.
    loop {
        let mut chunk = Vec::new();
        while let Ok(more) = job.captured.try_recv() {
            chunk.extend_from_slice(&more);
            if chunk.len() > 1 << 20 {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        t.run(&chunk, count_requests(&chunk)).await?;
        if !m.in_progress() {
            return Err("the capture stopped".into());
        }
    }
    // Hand-over: no more writes to the slot; a barrier under every lock lets the admitted
    // ones finish (their changes are then in the queue).
    m.finishing.store(true, Ordering::Release);
    crate::cmd::run_internal(server, &[b"DBSIZE"]);
    if !m.in_progress() {
        return Err("the capture stopped".into());
    }
    let mut rest = Vec::new();
    while let Ok(more) = job.captured.try_recv() {
        rest.extend_from_slice(&more);
    }
    t.run(&rest, count_requests(&rest)).await?;
    t.run(
        &command(&[b"CLUSTERX", b"IMPORT", slot.as_bytes(), b"1"]),
        1,
    )
    .await?;
    Ok(())
}

/// `5` or `5-10`.
pub fn range_text((a, b): (u16, u16)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// Parses `5` or `5-10` (slots in range, start ≤ end).
pub fn parse_range(text: &[u8]) -> Option<(u16, u16)> {
    let text = std::str::from_utf8(text).ok()?;
    let slot = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|&n| usize::from(n) < super::SLOTS)
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (slot(a)?, slot(b)?),
        None => (slot(text)?, slot(text)?),
    };
    (a <= b).then_some((a, b))
}

/// The task that runs the migrations this node starts.
pub async fn supervise(server: Arc<crate::context::ServerContext>) {
    let m = server.cluster.migrations();
    loop {
        m.wake.notified().await;
        let Some(mut job) = m.take_job() else {
            continue;
        };
        let slot = job.slots;
        let endpoint = format!("{}:{}", job.host, job.port);
        match migrate(&server, &m, &mut job).await {
            Ok(()) => {
                m.hand_over(slot, endpoint.clone());
                m.finish(slot, State::Success);
                // The slot is the target's now: the local copy goes (replicas and the
                // append-only file see DELs).
                crate::cmd::run_internal(
                    &server,
                    &[b"CLUSTERX", b"DROPSLOT", range_text(slot).as_bytes()],
                );
                tracing::info!(slots = %range_text(slot), target = %endpoint, "slots migrated");
            }
            Err(why) => {
                m.finish(slot, State::Fail);
                let slots = range_text(slot);
                tracing::warn!(%slots, target = %endpoint, %why, "slot migration failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lengths() {
        assert_eq!(reply_len(b"+OK\r\n"), Ok(Some(5)));
        assert_eq!(reply_len(b"+OK\r"), Ok(None));
        assert_eq!(reply_len(b"$3\r\nabc\r\n"), Ok(Some(9)));
        assert_eq!(reply_len(b"$-1\r\n"), Ok(Some(5)));
        assert_eq!(reply_len(b"*2\r\n:1\r\n$1\r\na\r\n"), Ok(Some(15)));
        assert_eq!(reply_len(b"*2\r\n:1\r\n"), Ok(None));
        assert_eq!(reply_len(b"?"), Err(()));
        assert_eq!(parse_range(b"5"), Some((5, 5)));
        assert_eq!(parse_range(b"5-10"), Some((5, 10)));
        assert_eq!(parse_range(b"10-5"), None);
        assert_eq!(parse_range(b"16384"), None);
        assert_eq!(range_text((3, 3)), "3");
        assert_eq!(
            count_requests(&command(&[b"HSET", b"k", b"f", b"v"]).repeat(3)),
            3
        );
    }
}

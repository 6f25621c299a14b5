//! Snapshots of the keyspace in Redis's RDB format: SAVE, BGSAVE, save points, the final
//! save at shutdown, and loading at start-up.
//!
//! **Point in time.** A snapshot is taken with every shard of every database locked, so it
//! is one instant: a transaction (which holds its shards for its whole run) is wholly in
//! it or wholly absent. SAVE writes under those locks, as Redis's SAVE blocks its server.
//!
//! **BGSAVE forks**, as Redis does: with every lock held, the process forks, the parent
//! releases the locks at once and goes on serving, and the child — a copy-on-write image of
//! memory at that instant — writes the file and exits. The kernel copies only the pages
//! the parent changes meanwhile, and no write pays anything for the snapshot being taken.
//! Forking a threaded process is sound here because the child touches only what the forking
//! thread owns at that moment (the shard guards it holds), the file it creates, and glibc's
//! allocator (which re-initialises its locks in the child); it never returns into the
//! runtime, logs or unwinds, and always ends with `_exit`. It stops, leaving the snapshot
//! alone, as soon as its parent is gone (it checks between keys and every 64k fields), so a
//! crashed server never has a stray writer renaming files later. (`PR_SET_PDEATHSIG` would
//! fire when the forking *thread* ends, which a pooled thread may do mid-save.)
//!
//! **Crash safety.** Every save writes `temp-<pid>.rdb` in the target directory, fsyncs it,
//! renames it over the snapshot and fsyncs the directory: a crash at any point leaves the
//! previous snapshot whole.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::{info, warn};

use super::rdb::{
    FieldRef, HashHeader, LoadOptions, RdbError, RdbKey, RdbReader, RdbWriter, WriteOptions,
};
use crate::context::ServerContext;
use crate::keyspace::{LockPlan, Locked};

/// The version string written in the file's `redis-ver` field (what INFO reports).
const REDIS_VER: &str = crate::cmd::connection::REDIS_VERSION;

/// How long after a failed background save the save points wait before trying again
/// (Redis's `CONFIG_BGSAVE_RETRY_DELAY`).
const BGSAVE_RETRY_DELAY_S: u64 = 5;

/// A BGSAVE child checks that its parent still runs after this many fields of one hash…
const PARENT_CHECK_FIELDS: usize = 1 << 16;
/// …and after this many keys (a syscall per key would cost seconds on a large dataset).
const PARENT_CHECK_KEYS: u64 = 1024;

/// How often loading logs its progress.
const LOAD_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Snapshot state, shared with the thread that waits for a BGSAVE child.
#[derive(Debug, Default)]
pub struct RdbStatus {
    /// The server's clock (LASTSAVE and the save points count in its seconds).
    clock: crate::clock::Clock,
    /// A snapshot is being loaded: commands without the `loading` flag get `-LOADING`.
    pub loading: AtomicBool,
    pub loading_started_s: AtomicU64,
    pub loading_total_bytes: AtomicU64,
    pub loading_loaded_bytes: AtomicU64,
    /// The BGSAVE child, while one runs.
    child: Mutex<Option<Child>>,
    /// A BGSAVE SCHEDULE is waiting for the running one to end.
    pub scheduled: AtomicBool,
    /// Unix seconds of the last successful save (start-up time until then).
    pub last_save_s: AtomicU64,
    /// The keyspace's change counter at the last successful save.
    pub changes_at_last_save: AtomicU64,
    pub last_bgsave_ok: AtomicBool,
    /// Unix seconds of the last failed background save (retry delay).
    last_bgsave_failed_s: AtomicU64,
    /// Duration of the last background save in seconds, -1 if none ran.
    pub last_bgsave_time_s: AtomicI64,
    /// Saves completed (`rdb_saves`).
    pub saves: AtomicU64,
    pub last_load_keys_loaded: AtomicU64,
    pub last_load_keys_expired: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Child {
    pid: i32,
    started: Instant,
    /// The change counter when it forked: what a success counts as saved.
    changes_at_fork: u64,
}

impl RdbStatus {
    pub fn new(clock: crate::clock::Clock) -> Self {
        RdbStatus {
            last_save_s: AtomicU64::new(clock.now_ms() / 1000),
            clock,
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_time_s: AtomicI64::new(-1),
            ..RdbStatus::default()
        }
    }

    pub fn bgsave_in_progress(&self) -> bool {
        self.child.lock().is_some()
    }

    /// Seconds the running BGSAVE has taken so far, -1 if none runs.
    pub fn current_bgsave_s(&self) -> i64 {
        self.child
            .lock()
            .map_or(-1, |c| c.started.elapsed().as_secs() as i64)
    }

    /// Stops a running BGSAVE (FLUSHALL, shutdown): its result would be stale. The child
    /// gets SIGUSR1, which the waiter counts as deliberate, not as a failure.
    pub fn kill_child(&self) {
        let slot = self.child.lock();
        if let Some(c) = *slot {
            // SAFETY: kill(2) with a pid we forked and have not reaped: the waiter thread
            // reaps it and clears the slot under this lock, which we hold.
            unsafe {
                libc::kill(c.pid, libc::SIGUSR1);
            }
        }
        drop(slot);
        // Until the waiter has recorded the end: a child that already renamed its file
        // must not do so after a save made from now on.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.bgsave_in_progress() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The options the live configuration asks for.
fn write_options(server: &ServerContext, aof_base: bool) -> WriteOptions {
    WriteOptions {
        compression: server.config.rdbcompression.load(Ordering::Relaxed),
        checksum: server.config.rdbchecksum.load(Ordering::Relaxed),
        redis_ver: REDIS_VER.into(),
        ctime_s: unix_s(),
        used_mem: 0,
        aof_base,
        // Redis saves the replication history too, so that a restarted replica (or a
        // master its replicas reconnect to) can continue by partial resync.
        extra_aux: (!aof_base)
            .then(|| server.replication.snapshot_history())
            .flatten()
            .map(|(id, offset, db)| repl_aux(&id, offset, db))
            .unwrap_or_default(),
    }
}

/// Writes every live key the locks hold (every database) to `out`. Expired fields and
/// keys are left out: a loader would drop them anyway.
pub fn write_locked<W: Write>(
    locked: &Locked<'_>,
    out: W,
    opts: &WriteOptions,
    now_ms: u64,
) -> io::Result<(W, u64)> {
    write_checked(locked, out, opts, now_ms, &|| Ok(()))
}

/// [`write_locked`], calling `go_on` between keys and every [`PARENT_CHECK_FIELDS`] fields;
/// an error from it stops the write.
fn write_checked<W: Write>(
    locked: &Locked<'_>,
    out: W,
    opts: &WriteOptions,
    now_ms: u64,
    go_on: &dyn Fn() -> io::Result<()>,
) -> io::Result<(W, u64)> {
    let mut w = RdbWriter::new(out, opts)?;
    let ks = locked.keyspace();
    for db in 0..ks.databases() {
        let (mut keys, mut expires) = (0u64, 0u64);
        locked.for_each_live(db, now_ms, |_, ttl, _| {
            keys += 1;
            expires += u64::from(ttl.is_some());
        });
        if keys == 0 {
            continue;
        }
        w.select_db(db, keys, expires)?;
        let mut result = Ok(());
        let mut keys_written = 0u64;
        locked.for_each_live(db, now_ms, |key, ttl, value| {
            if result.is_err() {
                return;
            }
            keys_written += 1;
            if keys_written.is_multiple_of(PARENT_CHECK_KEYS) {
                if let Err(e) = go_on() {
                    result = Err(e);
                    return;
                }
            }
            let live = || {
                value
                    .iter()
                    .filter(|f| !f.is_expired(now_ms))
                    .map(|f| FieldRef {
                        field: f.field,
                        value: f.value,
                        expire_ms: f.expire_at,
                    })
            };
            let mut stop = None;
            let checked = live().enumerate().map_while(|(i, f)| {
                if i > 0 && i % PARENT_CHECK_FIELDS == 0 {
                    if let Err(e) = go_on() {
                        stop = Some(e);
                        return None;
                    }
                }
                Some(f)
            });
            result = w.write_hash(key, ttl, HashHeader::of(live()), checked);
            if let Some(e) = stop {
                result = Err(e);
            }
        });
        result?;
    }
    w.finish()
}

/// Writes the snapshot to `path` through a temporary file in the same directory, fsynced
/// and renamed into place, then fsyncs the directory. Returns the bytes written.
fn write_file(
    locked: &Locked<'_>,
    path: &Path,
    opts: &WriteOptions,
    now_ms: u64,
    go_on: &dyn Fn() -> io::Result<()>,
) -> io::Result<u64> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("temp-{}.rdb", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp)?;
        let out = BufWriter::with_capacity(1 << 16, file);
        let (buf, n) = write_checked(locked, out, opts, now_ms, go_on)?;
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// SAVE: a snapshot written now, under `locked` (which must hold every shard).
pub fn save_locked(server: &ServerContext, locked: &Locked<'_>) -> io::Result<u64> {
    if server.rdb.loading.load(Ordering::Relaxed) {
        // The dataset in memory is partial until the load ends.
        return Err(io::Error::other("a snapshot is being loaded"));
    }
    let path = server.config.rdb_path();
    let changes = server.keyspace.changes();
    let started = Instant::now();
    let opts = write_options(server, false);
    let n = write_file(locked, &path, &opts, server.clock.now_ms(), &|| Ok(()))?;
    let st = &server.rdb;
    st.changes_at_last_save.store(changes, Ordering::Relaxed);
    st.last_save_s
        .store(server.clock.now_ms() / 1000, Ordering::Relaxed);
    st.saves.fetch_add(1, Ordering::Relaxed);
    info!(
        path = %path.display(),
        bytes = n,
        ms = started.elapsed().as_millis() as u64,
        "DB saved on disk"
    );
    Ok(n)
}

/// SAVE with the locks taken here (shutdown, tests).
pub fn save(server: &ServerContext) -> io::Result<u64> {
    let locked = server.keyspace.lock(&LockPlan::All);
    save_locked(server, &locked)
}

/// Why a BGSAVE did not start.
#[derive(Debug)]
pub enum BgsaveError {
    InProgress,
    Fork(io::Error),
}

/// BGSAVE: forks a child that writes the snapshot of what `locked` (every shard) holds.
/// Returns once the child runs; a thread waits for it and records the outcome.
pub fn bgsave_locked(server: &ServerContext, locked: &Locked<'_>) -> Result<(), BgsaveError> {
    let st = &server.rdb;
    if st.loading.load(Ordering::Relaxed) {
        return Err(BgsaveError::Fork(io::Error::other(
            "a snapshot is being loaded",
        )));
    }
    let mut slot = st.child.lock();
    if slot.is_some() {
        return Err(BgsaveError::InProgress);
    }
    let path = server.config.rdb_path();
    let opts = write_options(server, false);
    let now_ms = server.clock.now_ms();
    let changes = server.keyspace.changes();
    let forking = Instant::now();
    let forked = fork_writer(|parent_alive| write_file(locked, &path, &opts, now_ms, parent_alive));
    note_fork(server, forking);
    let pid = forked.map_err(BgsaveError::Fork)?;
    *slot = Some(Child {
        pid,
        started: Instant::now(),
        changes_at_fork: changes,
    });
    drop(slot);
    info!(pid, "Background saving started");
    let status = Arc::clone(&server.rdb);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let spawned = std::thread::Builder::new()
        .name("hashd-bgsave-wait".into())
        .spawn(move || wait_child(&status, pid, &dir));
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the thread that waits for the BGSAVE child");
    }
    Ok(())
}

/// A fork made: INFO's `total_forks` and `latest_fork_usec`, and LATENCY's `fork` event
/// (how long the fork itself held the caller, under every shard lock).
pub fn note_fork(server: &ServerContext, started: Instant) {
    let usec = started.elapsed().as_micros() as u64;
    server.latency.note_fork(
        usec,
        crate::alloc::allocated() as u64,
        server.clock.now_ms() / 1000,
    );
}

/// The descriptor a full sync's child writes the snapshot to (a pipe's write end).
const KEPT_FD: std::os::fd::RawFd = 3;

/// Where a full sync's snapshot goes.
pub enum SyncTarget<'a> {
    /// The write end of a pipe the parent relays to the replica (diskless sync).
    Pipe(std::os::fd::BorrowedFd<'a>),
    /// A file the parent sends once it is complete (disk sync).
    File(&'a Path),
}

/// Forks a child that writes the snapshot of what `locked` (every shard) holds for a
/// replica, with the replication fields Redis writes (`repl-stream-db`, `repl-id`,
/// `repl-offset`). Returns its pid; [`wait_child_exit`] reaps it.
pub fn fork_sync_snapshot(
    server: &ServerContext,
    locked: &Locked<'_>,
    target: SyncTarget<'_>,
    replid: &str,
    offset: u64,
    db: usize,
) -> io::Result<i32> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut opts = write_options(server, false);
    opts.extra_aux = repl_aux(replid, offset, db);
    let now_ms = server.clock.now_ms();
    match target {
        SyncTarget::Pipe(fd) => fork_writer_keeping(Some(fd.as_raw_fd()), |go_on| {
            // SAFETY: in the child, descriptor 3 is the pipe's write end, and nothing else
            // owns it.
            let file = unsafe { File::from_raw_fd(KEPT_FD) };
            let out = BufWriter::with_capacity(1 << 16, file);
            let (buf, n) = write_checked(locked, out, &opts, now_ms, go_on)?;
            buf.into_inner().map_err(|e| e.into_error())?;
            Ok(n)
        }),
        SyncTarget::File(path) => {
            fork_writer(|go_on| write_file(locked, path, &opts, now_ms, go_on))
        }
    }
}

fn repl_aux(replid: &str, offset: u64, db: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (b"repl-stream-db".to_vec(), db.to_string().into_bytes()),
        (b"repl-id".to_vec(), replid.as_bytes().to_vec()),
        (b"repl-offset".to_vec(), offset.to_string().into_bytes()),
    ]
}

/// Waits for the child `pid` and reaps it: true if it exited with status 0.
pub fn wait_child_exit(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on our own child, with a valid pointer to `status`.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r == pid {
        note_reaped();
    }
    r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// Forks a child that runs `write` and exits: 0 if it returned Ok. `write` gets a check
/// to call now and then, which fails once the parent is gone. Returns the child's pid.
/// Only for callers that hold every shard (see the module documentation).
pub(super) fn fork_writer(
    write: impl FnOnce(&dyn Fn() -> io::Result<()>) -> io::Result<u64>,
) -> io::Result<i32> {
    fork_writer_keeping(None, write)
}

/// [`fork_writer`], with the descriptor `keep` open in the child as descriptor 3 (every
/// other one is closed there).
fn fork_writer_keeping(
    keep: Option<std::os::fd::RawFd>,
    write: impl FnOnce(&dyn Fn() -> io::Result<()>) -> io::Result<u64>,
) -> io::Result<i32> {
    let parent = std::process::id() as i32;
    // SAFETY: see the module documentation. The child runs only `child_main`, which writes
    // from memory this thread owns (the held shard guards) and leaves by `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        child_main(keep, write, parent);
    }
    CHILDREN.fetch_add(1, Ordering::Relaxed);
    Ok(pid)
}

/// Forked children not yet reaped (snapshots, rewrites, full syncs).
static CHILDREN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether a forked child runs: reads then leave keys' access state alone, as Redis's
/// lookups do, so that they do not copy the pages the child shares.
#[inline]
pub fn children_running() -> bool {
    CHILDREN.load(Ordering::Relaxed) > 0
}

/// A child forked by [`fork_writer_keeping`] was reaped.
pub(super) fn note_reaped() {
    let _ = CHILDREN.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}

/// A forked writer: drops what it inherited, runs `write`, exits; never returns.
fn child_main(
    keep: Option<std::os::fd::RawFd>,
    write: impl FnOnce(&dyn Fn() -> io::Result<()>) -> io::Result<u64>,
    parent: i32,
) -> ! {
    // The child holds copies of every descriptor: clients' sockets (a closed connection
    // would stay open until the save ends) and the listeners (a restart after a crash could
    // not bind). It needs none of them. And the runtime's signal handlers are the parent's:
    // a SIGTERM must end the child.
    // SAFETY: close_range, close, getrlimit and signal are async-signal-safe and touch no
    // memory the child relies on.
    unsafe {
        let mut first_closed = 3;
        if let Some(fd) = keep {
            // A failed dup2 leaves descriptor 3 to something else: the write then fails.
            if fd != KEPT_FD && libc::dup2(fd, KEPT_FD) < 0 {
                // Descriptor 3 would be something else: write nothing, fail.
                libc::_exit(1);
            }
            first_closed = KEPT_FD + 1;
        }
        if libc::syscall(libc::SYS_close_range, first_closed as u32, u32::MAX, 0u32) != 0 {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 20) as i32
            } else {
                1024
            };
            for fd in first_closed..max {
                libc::close(fd);
            }
        }
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // An orphaned child is re-parented, so another parent id means the server is gone
        // and the file must stay as it was.
        let parent_alive = || {
            // SAFETY: getppid has no preconditions and touches no memory.
            if unsafe { libc::getppid() } == parent {
                Ok(())
            } else {
                Err(io::Error::other("the server exited during the save"))
            }
        };
        write(&parent_alive).is_ok()
    }))
    .unwrap_or(false);
    // SAFETY: _exit ends the child without running the parent's atexit handlers or
    // destructors, which belong to the parent's threads.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

/// Waits until the child `pid` has exited, without reaping it: until the caller reaps it
/// (waitpid), the pid cannot be reused, so signalling it stays safe.
pub fn wait_exit_unreaped(pid: i32) {
    // SAFETY: waitid on our own child, with a valid pointer to a zeroed siginfo_t.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
    }
}

/// The fields of a loaded key, as the keyspace takes them.
pub fn fields_of(k: &RdbKey) -> impl Iterator<Item = (&[u8], &[u8], Option<u64>)> {
    k.fields
        .iter()
        .map(|f| (f.field.as_slice(), f.value.as_slice(), f.expire_ms))
}

/// Waits for the BGSAVE child and records how it ended.
fn wait_child(st: &RdbStatus, pid: i32, dir: &Path) {
    // The pid stays ours (kill_child signals it under the slot's lock) until the slot is
    // cleared below.
    wait_exit_unreaped(pid);
    let mut slot = st.child.lock();
    let mut status = 0;
    // SAFETY: waitpid on our own exited child, with a valid pointer to `status`.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r == pid {
        note_reaped();
    }
    let exited_ok = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let killed_on_purpose =
        r == pid && libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGUSR1;
    // The outcome is recorded before the slot is cleared, so whoever sees
    // `rdb_bgsave_in_progress:0` also sees this save's status, time and count.
    let Some(child) = *slot else {
        return;
    };
    let secs = child.started.elapsed().as_secs() as i64;
    if exited_ok {
        st.changes_at_last_save
            .store(child.changes_at_fork, Ordering::Relaxed);
        st.last_save_s
            .store(st.clock.now_ms() / 1000, Ordering::Relaxed);
        st.saves.fetch_add(1, Ordering::Relaxed);
        st.last_bgsave_ok.store(true, Ordering::Relaxed);
        info!(pid, "Background saving terminated with success");
    } else {
        // The child's temporary file, if it got that far.
        let _ = std::fs::remove_file(dir.join(format!("temp-{pid}.rdb")));
        if killed_on_purpose {
            info!(pid, "Background saving terminated by signal");
        } else {
            st.last_bgsave_ok.store(false, Ordering::Relaxed);
            st.last_bgsave_failed_s
                .store(st.clock.now_ms() / 1000, Ordering::Relaxed);
            warn!(pid, status, "Background saving error");
        }
    }
    st.last_bgsave_time_s.store(secs, Ordering::Relaxed);
    *slot = None;
}

/// Changes made since the last successful save (`rdb_changes_since_last_save`).
pub fn changes_since_save(server: &ServerContext) -> u64 {
    server
        .keyspace
        .changes()
        .saturating_sub(server.rdb.changes_at_last_save.load(Ordering::Relaxed))
}

/// Whether a save point (or a scheduled BGSAVE) calls for a background save now.
fn save_due(server: &ServerContext) -> bool {
    let st = &server.rdb;
    if st.loading.load(Ordering::Relaxed) || st.bgsave_in_progress() {
        return false;
    }
    if st.scheduled.load(Ordering::Relaxed) {
        return true;
    }
    let now = st.clock.now_ms() / 1000;
    // After a failure, wait a little before trying again (Redis does the same).
    if !st.last_bgsave_ok.load(Ordering::Relaxed)
        && now < st.last_bgsave_failed_s.load(Ordering::Relaxed) + BGSAVE_RETRY_DELAY_S
    {
        return false;
    }
    let changes = changes_since_save(server);
    let since = now.saturating_sub(st.last_save_s.load(Ordering::Relaxed));
    server
        .config
        .save_points
        .read()
        .iter()
        .any(|&(secs, min_changes)| changes >= min_changes && since > secs)
}

/// How often the save points are checked. They count in seconds; Redis checks them at
/// `hz`, but a wake-up per second is enough here and stays off the request path (a 100 ms
/// timer measurably raised p99 latency at pipeline 16).
const SAVE_POINT_CHECK: Duration = Duration::from_secs(1);

/// The save-point task: checks the points every second and starts a BGSAVE when one is
/// reached (or a BGSAVE SCHEDULE waits). Runs until shutdown.
pub async fn run(server: Arc<ServerContext>) {
    let mut shutdown = server.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(SAVE_POINT_CHECK) => {}
        }
        super::appendonly::maybe_rewrite(&server).await;
        if !save_due(&server) {
            continue;
        }
        let srv = Arc::clone(&server);
        let r = tokio::task::spawn_blocking(move || {
            srv.rdb.scheduled.store(false, Ordering::Relaxed);
            let locked = srv.keyspace.lock(&LockPlan::All);
            bgsave_locked(&srv, &locked)
        })
        .await;
        if let Ok(Err(BgsaveError::Fork(e))) = r {
            warn!(error = %e, "Can't save in background: fork failed");
            server.rdb.last_bgsave_ok.store(false, Ordering::Relaxed);
            server
                .rdb
                .last_bgsave_failed_s
                .store(server.clock.now_ms() / 1000, Ordering::Relaxed);
        }
    }
}

/// Why a snapshot could not be loaded at start-up.
#[derive(Debug)]
pub struct LoadError {
    pub path: PathBuf,
    pub source: RdbError,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = match self.source {
            RdbError::UnsupportedType { .. } => {
                "start with rdb-skip-unsupported-types yes to load the hashes and skip such \
                 keys, or move the file"
            }
            _ => "fix or move the file; hashd will not start with a partial dataset",
        };
        write!(
            f,
            "cannot load the snapshot {}: {} ({hint})",
            self.path.display(),
            self.source
        )
    }
}

/// Loads the snapshot at the configured path into the (empty) keyspace, if the file
/// exists. Keys, field TTLs and key TTLs come back as saved; what expired meanwhile is
/// dropped and counted. Logs progress about once a second.
pub fn load(server: &ServerContext) -> Result<bool, LoadError> {
    load_into(server, &mut |k: RdbKey| {
        server
            .keyspace
            .load_key(k.db, &k.key, k.expire_ms, fields_of(&k));
    })
}

/// DEBUG RELOAD: saves (unless `save` is false), empties the keyspace (unless `flush` is
/// false) and loads the snapshot back, all under `locked` (every shard).
pub fn reload_locked(
    server: &ServerContext,
    locked: &mut Locked<'_>,
    save: bool,
    flush: bool,
) -> Result<(), String> {
    if save {
        save_locked(server, locked).map_err(|e| e.to_string())?;
    }
    if flush {
        locked.clear_unrecorded();
    }
    load_into(server, &mut |k: RdbKey| {
        locked.load_key(k.db, &k.key, k.expire_ms, fields_of(&k));
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Removes `temp-<pid>.rdb` files a save that never finished left in the snapshot
/// directory (a crash mid-save): they are never complete snapshots.
pub fn remove_stale_temp_files(server: &ServerContext) {
    let dir = server.config.dir.read().clone();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        // Only a writer that is gone: another server may share the directory.
        // temp-<pid>.rdb (a save), temp-repl-<pid>-<client>.rdb (a full sync's snapshot),
        // temp-<unix s>-<pid>.rdb (a replica receiving one).
        let stale = name
            .strip_prefix("temp-")
            .and_then(|r| r.strip_suffix(".rdb"))
            .and_then(|rest| {
                let parts: Vec<&str> = rest.split('-').collect();
                match parts[..] {
                    [pid] | ["repl", pid, _] | [_, pid] => pid.parse::<i32>().ok(),
                    _ => None,
                }
            })
            .is_some_and(|pid| {
                // SAFETY: kill with signal 0 only checks whether the process exists.
                pid > 0 && unsafe { libc::kill(pid, 0) } != 0
            });
        if stale && std::fs::remove_file(e.path()).is_ok() {
            info!(file = %e.path().display(), "removed an unfinished snapshot from an earlier run");
        }
    }
}

/// A snapshot's `repl-id` and `repl-offset` become our replication history, so that
/// replicas (or our master, if we are one) can continue from there by partial resync.
fn restore_replication_history(server: &ServerContext, aux: &[(Vec<u8>, Vec<u8>)]) {
    let get = |name: &[u8]| {
        aux.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    };
    let id = get(b"repl-id").and_then(|v| std::str::from_utf8(v).ok());
    let offset = get(b"repl-offset")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok());
    let db = stream_db_of(aux);
    if let (Some(id), Some(offset)) = (id, offset) {
        server.replication.restore_history(id, offset, db);
    }
}

/// A snapshot's `repl-stream-db` (0 when absent or not a number).
pub fn stream_db_of(aux: &[(Vec<u8>, Vec<u8>)]) -> usize {
    aux.iter()
        .find(|(k, _)| k == b"repl-stream-db")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads the snapshot file, handing each key to `store`.
fn load_into(server: &ServerContext, store: &mut dyn FnMut(RdbKey)) -> Result<bool, LoadError> {
    let path = server.config.rdb_path();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(LoadError {
                path,
                source: RdbError::Io {
                    offset: 0,
                    source: e,
                },
            })
        }
    };
    let total = file.metadata().map_or(0, |m| m.len());
    let st = &server.rdb;
    st.loading_total_bytes.store(total, Ordering::Relaxed);
    st.loading_loaded_bytes.store(0, Ordering::Relaxed);
    st.loading_started_s
        .store(server.clock.now_ms() / 1000, Ordering::Relaxed);
    let started = Instant::now();
    let cfg = &server.config.startup;
    let opts = LoadOptions {
        now_ms: Some(server.clock.now_ms()),
        skip_unsupported: cfg.rdb_skip_unsupported_types,
        verify_checksum: true,
        relaxed_version: false,
        databases: server.keyspace.databases(),
    };
    let fail = |source| LoadError {
        path: path.clone(),
        source,
    };
    let mut reader = RdbReader::new(file, opts).map_err(fail)?;
    let mut last_log = Instant::now();
    while let Some(k) = reader.next_key().map_err(fail)? {
        store(k);
        let read = reader.bytes_read();
        st.loading_loaded_bytes.store(read, Ordering::Relaxed);
        if last_log.elapsed() >= LOAD_PROGRESS_EVERY {
            last_log = Instant::now();
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            info!(
                keys = reader.stats().keys_loaded,
                percent = format!("{:.1}", read as f64 * 100.0 / total.max(1) as f64),
                mb_per_s = format!("{:.1}", read as f64 / secs / 1e6),
                "loading the snapshot"
            );
        }
    }
    let stats = reader.stats().clone();
    restore_replication_history(server, reader.aux());
    st.last_load_keys_loaded
        .store(stats.keys_loaded, Ordering::Relaxed);
    st.last_load_keys_expired.store(
        stats.keys_expired + stats.hashes_all_fields_expired,
        Ordering::Relaxed,
    );
    if stats.keys_skipped > 0 || stats.other_records_skipped > 0 {
        warn!(
            keys = stats.keys_skipped,
            records = stats.other_records_skipped,
            "skipped keys of types hashd does not serve (rdb-skip-unsupported-types yes)"
        );
    }
    info!(
        path = %path.display(),
        keys = stats.keys_loaded,
        expired_keys = stats.keys_expired + stats.hashes_all_fields_expired,
        expired_fields = stats.fields_expired,
        seconds = format!("{:.3}", started.elapsed().as_secs_f64()),
        "DB loaded from disk"
    );
    Ok(true)
}

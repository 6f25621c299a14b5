//! The append-only file: every change, as the commands that replay it, in Redis 7's
//! multi-part layout (`<dir>/<appenddirname>/`: a manifest, a base file, incr files).
//!
//! **What is logged** comes from the effect record ([`super::propagate`]): the keyspace hands
//! each batch to [`Aof`] under the batch's shard locks, so the file's order is the order in
//! which the locks serialised the changes.
//!
//! **Durability.** A writer thread moves the buffer to the current incr file:
//! * `appendfsync always`: it fsyncs after every write and then publishes the synced
//!   offset; a connection that changed something waits for that offset before its replies
//!   go out ([`Aof::wait_synced`]). Writes from many clients that arrive during one fsync
//!   share the next one (group commit). An acknowledged write is on disk.
//! * `everysec`: written continuously, fsynced at most once a second (about a second lost).
//! * `no`: written; the kernel decides when it reaches the disk.
//!
//! **Loading** replays the base (an RDB preamble, or commands) and then each incr file, as
//! commands run by an internal client at time 0 (nothing counts as expired during the
//! replay, as in Redis), then expiry resumes. A truncated last command is cut off and the
//! file truncated there when `aof-load-truncated yes`; damage elsewhere stops the server
//! with the file and offset.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tracing::{error, info, warn};

use super::propagate::Propagator;
use crate::keyspace::{Batch, EffectSink};

/// How long the writer lets appends gather before a write when no reply waits for it
/// (`everysec`, `no`).
const WRITE_GATHER_US: u64 = 500;

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always,
    EverySec,
    No,
}

impl FsyncPolicy {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "always" => Some(FsyncPolicy::Always),
            "everysec" => Some(FsyncPolicy::EverySec),
            "no" => Some(FsyncPolicy::No),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            FsyncPolicy::Always => 0,
            FsyncPolicy::EverySec => 1,
            FsyncPolicy::No => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => FsyncPolicy::Always,
            2 => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }
}

/// What the writer thread and the publishing commands share. The lock is held only to
/// append or take the buffer, never across I/O.
struct Buffer {
    /// Commands not yet written to the file.
    data: Vec<u8>,
    propagator: Propagator,
    /// Offset (bytes ever appended) at the end of `data`.
    end: u64,
    /// A file change for the writer, applied after it wrote what was buffered before.
    control: Option<Control>,
    /// Bytes in the current incr file (as the writer knows it).
    incr_size: u64,
    /// The writer acknowledged the last control.
    control_done: bool,
    /// The writer is waiting for data: the next append must wake it. Otherwise it is busy
    /// and takes what was appended meanwhile on its next turn, without a wake-up.
    writer_idle: bool,
}

enum Control {
    /// Log into this incr file from now on (`u64`: its current size).
    Open(File, u64),
    /// Write and fsync what is buffered, close the file.
    Close,
    /// Like Close, and end the writer thread.
    Exit,
}

/// The append-only log's live state.
pub struct Aof {
    /// Logging: the keyspace records changes for it.
    enabled: AtomicBool,
    policy: AtomicU8,
    buf: Mutex<Buffer>,
    wake: Condvar,
    /// Signalled when the writer has applied a control.
    done: Condvar,
    /// Offset known to be fsynced (`always`) or written (the others).
    synced: tokio::sync::watch::Sender<u64>,
    /// `aof_last_write_status`.
    pub write_ok: AtomicBool,
    /// Fsyncs that took longer than they should (`aof_delayed_fsync`).
    pub delayed_fsync: AtomicU64,
    base_size: AtomicU64,
    earlier_incrs: AtomicU64,
    writer_running: AtomicBool,
    /// The manifest as last written (loaded at start-up, replaced by each rewrite).
    manifest: Mutex<Option<super::aof::Manifest>>,
    /// BGREWRITEAOF's state.
    pub rewrite: RewriteState,
}

/// A background rewrite's state (INFO `aof_rewrite_*`).
#[derive(Debug)]
pub struct RewriteState {
    child: Mutex<Option<(i32, Instant)>>,
    /// A BGREWRITEAOF waits for a running BGSAVE.
    pub scheduled: AtomicBool,
    pub last_ok: AtomicBool,
    pub rewrites: AtomicU64,
    pub last_time_s: std::sync::atomic::AtomicI64,
}

impl RewriteState {
    pub fn in_progress(&self) -> bool {
        self.child.lock().is_some()
    }

    /// Seconds the running rewrite has taken, -1 if none runs.
    pub fn current_s(&self) -> i64 {
        self.child
            .lock()
            .map_or(-1, |(_, t)| t.elapsed().as_secs() as i64)
    }

    /// Stops a running rewrite (shutdown); its half-written base is removed by its waiter.
    pub fn kill(&self) {
        if let Some((pid, _)) = *self.child.lock() {
            // SAFETY: our unreaped child (the waiter reaps it under this lock).
            unsafe {
                libc::kill(pid, libc::SIGUSR1);
            }
        }
    }
}

impl Aof {
    pub fn new(policy: FsyncPolicy) -> Arc<Self> {
        Arc::new(Aof {
            enabled: AtomicBool::new(false),
            policy: AtomicU8::new(policy.to_u8()),
            buf: Mutex::new(Buffer {
                data: Vec::new(),
                propagator: Propagator::new(),
                end: 0,
                control: None,
                incr_size: 0,
                control_done: true,
                writer_idle: false,
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
            synced: tokio::sync::watch::Sender::new(0),
            write_ok: AtomicBool::new(true),
            delayed_fsync: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            earlier_incrs: AtomicU64::new(0),
            writer_running: AtomicBool::new(false),
            manifest: Mutex::new(None),
            rewrite: RewriteState {
                child: Mutex::new(None),
                scheduled: AtomicBool::new(false),
                last_ok: AtomicBool::new(true),
                rewrites: AtomicU64::new(0),
                last_time_s: std::sync::atomic::AtomicI64::new(-1),
            },
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    pub fn set_policy(&self, p: FsyncPolicy) {
        self.policy.store(p.to_u8(), Ordering::Relaxed);
    }

    /// Whether a connection that changed something must wait for the fsync.
    pub fn must_wait(&self) -> bool {
        self.enabled() && self.policy() == FsyncPolicy::Always
    }

    /// The offset at the end of everything logged so far.
    pub fn appended(&self) -> u64 {
        self.buf.lock().end
    }

    /// Completes once everything up to `offset` is on disk (or the log stopped).
    pub async fn wait_synced(&self, offset: u64) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|&s| s >= offset).await;
    }

    /// Bytes in the current incr file.
    pub fn incr_size(&self) -> u64 {
        self.buf.lock().incr_size
    }

    /// Bytes logged but not yet written to the file (`aof_buffer_length`).
    pub fn buffered(&self) -> u64 {
        self.buf.lock().data.len() as u64
    }

    /// The base file's size (`aof_base_size`).
    pub fn base_size(&self) -> u64 {
        self.base_size.load(Ordering::Relaxed)
    }

    /// Base plus incr files (`aof_current_size`).
    pub fn current_size(&self) -> u64 {
        self.base_size() + self.earlier_incrs.load(Ordering::Relaxed) + self.incr_size()
    }

    /// Records the sizes of the files before the one being appended to.
    pub fn set_sizes(&self, base: u64, earlier_incrs: u64) {
        self.base_size.store(base, Ordering::Relaxed);
        self.earlier_incrs.store(earlier_incrs, Ordering::Relaxed);
    }

    /// Hands the writer a control and waits until it has applied it.
    /// Without a writer thread (unit tests) the control stays queued for one that starts.
    fn control(&self, c: Control) {
        let mut b = self.buf.lock();
        b.control = Some(c);
        b.control_done = false;
        self.wake.notify_all();
        while !b.control_done && self.writer_running.load(Ordering::Relaxed) {
            self.done.wait_for(&mut b, Duration::from_millis(100));
        }
    }

    /// Marks the writer thread as about to run, before it is spawned: from then on a
    /// control waits for it to be applied (`false` undoes this if the spawn failed).
    pub fn set_writer_running(&self, running: bool) {
        self.writer_running.store(running, Ordering::Relaxed);
    }

    /// Starts logging into `file` (an incr file opened for appending, `size` bytes long).
    /// The caller holds every shard, so nothing is published meanwhile.
    pub fn start(&self, file: File, size: u64) {
        self.control(Control::Open(file, size));
        self.buf.lock().propagator.reset();
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Stops logging: what is buffered is written and fsynced, the file closed.
    pub fn stop(&self) {
        self.enabled.store(false, Ordering::Relaxed);
        self.control(Control::Close);
    }

    /// Stops the writer thread for good (shutdown), after a last write and fsync.
    pub fn shut_down(&self) {
        self.enabled.store(false, Ordering::Relaxed);
        self.control(Control::Exit);
    }

    /// The writer thread: moves the buffer to the file and fsyncs per the policy.
    pub fn run_writer(self: Arc<Self>, on_fatal: impl Fn(String)) {
        self.writer_running.store(true, Ordering::Relaxed);
        let mut file: Option<File> = None;
        let mut last_fsync = Instant::now();
        let mut unsynced = false;
        loop {
            let mut b = self.buf.lock();
            let mut waited = false;
            while b.data.is_empty() && b.control.is_none() {
                waited = true;
                b.writer_idle = true;
                if unsynced && self.policy() == FsyncPolicy::EverySec {
                    let left = Duration::from_secs(1).saturating_sub(last_fsync.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    self.wake.wait_for(&mut b, left);
                } else {
                    self.wake.wait(&mut b);
                }
            }
            b.writer_idle = false;
            if waited && b.control.is_none() && self.policy() != FsyncPolicy::Always {
                // Nobody waits for this write: let a moment's appends gather, so a stream of
                // small writes costs one write(2) per gathering, not one per command (as
                // Redis writes once per event-loop turn).
                drop(b);
                std::thread::sleep(Duration::from_micros(WRITE_GATHER_US));
                b = self.buf.lock();
            }
            let data = std::mem::take(&mut b.data);
            let end = b.end;
            let mut control = b.control.take();
            b.incr_size += data.len() as u64;
            drop(b);
            // With no file yet, what is buffered was logged after an Open (queued before
            // this thread ran): that file receives it.
            if file.is_none() {
                if let Some(Control::Open(..)) = control {
                    if let Some(Control::Open(f, size)) = control.take() {
                        file = Some(f);
                        let mut b = self.buf.lock();
                        b.incr_size = size + data.len() as u64;
                        b.control_done = true;
                        self.done.notify_all();
                    }
                }
            }
            // Never acknowledged: with nowhere to write it, the offset stays behind.
            let nowhere = file.is_none() && !data.is_empty();
            if nowhere {
                error!("append-only data with no open file; it is not acknowledged");
                self.write_ok.store(false, Ordering::Relaxed);
            }

            let policy = self.policy();
            let mut result = Ok(());
            if let Some(f) = file.as_mut() {
                if !data.is_empty() {
                    result = f.write_all(&data);
                    unsynced = true;
                }
                let sync_now = control.is_some()
                    || match policy {
                        FsyncPolicy::Always => true,
                        FsyncPolicy::EverySec => last_fsync.elapsed() >= Duration::from_secs(1),
                        FsyncPolicy::No => false,
                    };
                if result.is_ok() && unsynced && sync_now {
                    let started = Instant::now();
                    result = f.sync_data();
                    if started.elapsed() > Duration::from_secs(2) {
                        self.delayed_fsync.fetch_add(1, Ordering::Relaxed);
                        warn!("Asynchronous AOF fsync is taking too long (disk is busy?)");
                    }
                    last_fsync = Instant::now();
                    unsynced = false;
                }
            }
            match result {
                Ok(()) if nowhere => {}
                Ok(()) => {
                    self.write_ok.store(true, Ordering::Relaxed);
                    // `always` acknowledges only what is fsynced; the others what is written.
                    if policy != FsyncPolicy::Always || !unsynced {
                        self.synced.send_replace(end);
                    }
                }
                Err(e) => {
                    self.write_ok.store(false, Ordering::Relaxed);
                    error!(error = %e, "error writing to the append-only file");
                    if policy == FsyncPolicy::Always {
                        // An acknowledgement would be a lie: stop, as Redis does.
                        on_fatal(format!(
                            "can't recover from an append-only file write error with \
                             appendfsync always: {e}"
                        ));
                    }
                }
            }
            if let Some(c) = control {
                let exit = matches!(c, Control::Exit);
                match c {
                    Control::Open(f, size) => {
                        file = Some(f);
                        self.buf.lock().incr_size = size;
                    }
                    Control::Close | Control::Exit => file = None,
                }
                let mut b = self.buf.lock();
                b.control_done = true;
                self.done.notify_all();
                drop(b);
                if exit {
                    self.writer_running.store(false, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

impl EffectSink for Aof {
    fn interested(&self) -> bool {
        self.enabled()
    }

    fn publish(&self, batch: &Batch) {
        let mut b = self.buf.lock();
        let Buffer {
            data,
            propagator,
            end,
            ..
        } = &mut *b;
        let before = data.len();
        propagator.batch(batch, data);
        *end += (data.len() - before) as u64;
        let wake = std::mem::take(&mut b.writer_idle);
        drop(b);
        if wake {
            self.wake.notify_one();
        }
    }
}

/// Names in the AOF directory, from `appendfilename`.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub filename: String,
}

impl Layout {
    pub fn manifest(&self) -> PathBuf {
        self.dir.join(format!("{}.manifest", self.filename))
    }
    pub fn base_name(&self, seq: u64, rdb: bool) -> String {
        format!(
            "{}.{seq}.base.{}",
            self.filename,
            if rdb { "rdb" } else { "aof" }
        )
    }
    pub fn incr_name(&self, seq: u64) -> String {
        format!("{}.{seq}.incr.aof", self.filename)
    }
}

/// Opens (creating) an incr file for appending; returns it and its size.
pub fn open_incr(path: &Path) -> io::Result<(File, u64)> {
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    let size = f.metadata()?.len();
    Ok((f, size))
}

/// fsyncs a directory (after creating or renaming files in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `text` to `path` through a temporary file, fsynced and renamed into place.
pub fn write_atomically(path: &Path, text: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        "temp-{}",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Logs why loading stopped, for the server's exit message.
pub fn describe(path: &Path, what: impl std::fmt::Display) -> String {
    let msg = format!(
        "cannot load the append-only file {}: {what}",
        path.display()
    );
    info!("{msg}");
    msg
}

/// After a replica loaded its master's snapshot, the log starts over from that dataset
/// (a foreground rewrite under `locked`, every shard), as Redis restarts its AOF after a
/// full sync. Nothing to do while the log is off.
pub fn restart_after_full_sync(
    server: &crate::context::ServerContext,
    locked: &crate::keyspace::Locked<'_>,
) -> io::Result<()> {
    if !server.aof.enabled() {
        return Ok(());
    }
    let previous = server.aof.manifest.lock().clone();
    rewrite_locked(server, locked, previous).map(|_| ())
}

/// The AOF directory: `<dir>/<appenddirname>`.
pub fn aof_dir(server: &crate::context::ServerContext) -> PathBuf {
    server
        .config
        .dir
        .read()
        .join(&server.config.startup.appenddirname)
}

/// A rewrite in the foreground, under `locked` (every shard): a new base holding the
/// dataset, a new empty incr file, the manifest swapped to name only those two, the older
/// files removed, and logging switched to the new incr file. Used when the log is switched
/// on (at start-up without a log, CONFIG SET appendonly yes) — as Redis, which writes a base
/// then.
pub fn rewrite_locked(
    server: &crate::context::ServerContext,
    locked: &crate::keyspace::Locked<'_>,
    previous: Option<super::aof::Manifest>,
) -> io::Result<super::aof::Manifest> {
    use super::aof::{manifest_file_name, temp_manifest_file_name};
    let cfg = &server.config.startup;
    let dir = aof_dir(server);
    std::fs::create_dir_all(&dir)?;
    let mut manifest = previous.unwrap_or_default();
    let old: Vec<String> = manifest
        .files_to_load()
        .chain(manifest.history.iter())
        .map(|e| e.name.clone())
        .collect();
    let preamble = server.config.aof_use_rdb_preamble.load(Ordering::Relaxed);
    let base = manifest.new_base(&cfg.appendfilename, preamble).to_string();
    let tmp = dir.join(format!("temp-rewriteaof-{}.aof", std::process::id()));
    let base_size = write_base(server, locked, &tmp, preamble, &|| Ok(()))?;
    std::fs::rename(&tmp, dir.join(&base))?;
    manifest.mark_rewritten_incrs_as_history(false);
    let incr = manifest.new_incr(&cfg.appendfilename).to_string();
    let (incr_file, size) = open_incr(&dir.join(&incr))?;
    // History files are not kept (Redis's aof-disable-auto-gc no).
    manifest.history.clear();
    let tmp_manifest = dir.join(temp_manifest_file_name(&cfg.appendfilename));
    {
        let mut f = File::create(&tmp_manifest)?;
        f.write_all(&manifest.to_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(
        &tmp_manifest,
        dir.join(manifest_file_name(&cfg.appendfilename)),
    )?;
    sync_dir(&dir)?;
    for name in old {
        if name != base && name != incr {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
    server.aof.stop();
    server.aof.set_sizes(base_size, 0);
    server.aof.start(incr_file, size);
    *server.aof.manifest.lock() = Some(manifest.clone());
    info!(base = %base, incr = %incr, "append-only file rewritten");
    Ok(manifest)
}

/// Writes a base of what `locked` (every shard) holds to `path` and fsyncs it: an RDB with
/// the `aof-base` mark, or (`preamble` off) Redis's rewrite commands. Returns its size.
fn write_base(
    server: &crate::context::ServerContext,
    locked: &crate::keyspace::Locked<'_>,
    path: &Path,
    preamble: bool,
    go_on: &dyn Fn() -> io::Result<()>,
) -> io::Result<u64> {
    let opts = super::rdb::WriteOptions {
        compression: server.config.rdbcompression.load(Ordering::Relaxed),
        checksum: server.config.rdbchecksum.load(Ordering::Relaxed),
        redis_ver: crate::cmd::connection::REDIS_VERSION.into(),
        aof_base: true,
        ..super::rdb::WriteOptions::default()
    };
    let file = File::create(path)?;
    let out = io::BufWriter::with_capacity(1 << 16, file);
    let now = server.clock.now_ms();
    let buf = if preamble {
        go_on()?;
        super::snapshot::write_locked(locked, out, &opts, now)?.0
    } else {
        // Commands, as Redis's rewriteAppendOnlyFileRio: the portable form.
        let mut w = super::aof::CommandBaseWriter::new(out);
        let mut result = Ok(());
        for db in 0..server.keyspace.databases() {
            locked.for_each_live(db, now, |key, ttl, value| {
                if result.is_err() {
                    return;
                }
                let fields: Vec<super::rdb::FieldRef<'_>> = value
                    .iter()
                    .filter(|f| !f.is_expired(now))
                    .map(|f| super::rdb::FieldRef {
                        field: f.field,
                        value: f.value,
                        expire_ms: f.expire_at,
                    })
                    .collect();
                result = w.hash(db, key, ttl, &fields);
            });
        }
        result?;
        w.finish()?
    };
    let file = buf.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file.metadata().map_or(0, |m| m.len()))
}

/// How BGREWRITEAOF went.
pub enum Rewrite {
    Started,
    /// Waits for the running BGSAVE.
    Scheduled,
}

/// BGREWRITEAOF, under `locked` (every shard): the log moves to a new incr file at once
/// (listed in the manifest), and a forked child writes a base of this instant; when it
/// succeeds the manifest is swapped to the new base and incr, and the older files go.
/// Clients are served throughout.
pub fn bgrewrite_locked(
    server: &crate::context::ServerContext,
    locked: &crate::keyspace::Locked<'_>,
) -> Result<Rewrite, String> {
    use super::aof::{manifest_file_name, temp_rewrite_file_name};
    let aof = &server.aof;
    let mut slot = aof.rewrite.child.lock();
    if slot.is_some() {
        return Err("ERR Background append only file rewriting already in progress".into());
    }
    if server.rdb.bgsave_in_progress() {
        aof.rewrite.scheduled.store(true, Ordering::Relaxed);
        return Ok(Rewrite::Scheduled);
    }
    aof.rewrite.scheduled.store(false, Ordering::Relaxed);
    let cfg = &server.config.startup;
    let dir = aof_dir(server);
    let io_err = |e: io::Error| {
        warn!(error = %e, "Can't rewrite the append only file in background");
        "ERR".to_string()
    };
    std::fs::create_dir_all(&dir).map_err(io_err)?;
    let mut manifest = aof.manifest.lock().clone().unwrap_or_default();
    let incr = manifest.new_incr(&cfg.appendfilename).to_string();
    let (file, size) = open_incr(&dir.join(&incr)).map_err(io_err)?;
    write_atomically(
        &dir.join(manifest_file_name(&cfg.appendfilename)),
        &manifest.to_bytes(),
    )
    .map_err(io_err)?;
    if aof.enabled() {
        // Everything logged so far is in the older files; what follows goes to the new one.
        aof.start(file, size);
    }
    *aof.manifest.lock() = Some(manifest);
    let preamble = server.config.aof_use_rdb_preamble.load(Ordering::Relaxed);
    let tmp = dir.join(temp_rewrite_file_name(std::process::id()));
    let pid = {
        let forking = std::time::Instant::now();
        let forked =
            super::snapshot::fork_writer(|go_on| write_base(server, locked, &tmp, preamble, go_on));
        super::snapshot::note_fork(server, forking);
        forked
    }
    .map_err(io_err)?;
    *slot = Some((pid, Instant::now()));
    drop(slot);
    info!(pid, "Background append only file rewriting started");
    let srv_aof = Arc::clone(aof);
    let appendfilename = cfg.appendfilename.clone();
    let spawned = std::thread::Builder::new()
        .name("hashd-aofrw-wait".into())
        .spawn(move || finish_rewrite(&srv_aof, pid, &dir, &tmp, &appendfilename, preamble));
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the thread that waits for the rewrite child");
    }
    Ok(Rewrite::Started)
}

/// Waits for the rewrite child; on success installs its base in the manifest.
fn finish_rewrite(
    aof: &Aof,
    pid: i32,
    dir: &Path,
    tmp: &Path,
    appendfilename: &str,
    preamble: bool,
) {
    use super::aof::manifest_file_name;
    // The pid stays ours until the slot is cleared (kill targets it under the same lock).
    super::snapshot::wait_exit_unreaped(pid);
    let mut slot = aof.rewrite.child.lock();
    let mut status = 0;
    // SAFETY: waitpid on our own exited child, with a valid pointer to `status`.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r == pid {
        super::snapshot::note_reaped();
    }
    let ok = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let started = slot.map(|(_, t)| t);
    let installed = ok
        && (|| -> io::Result<()> {
            let mut guard = aof.manifest.lock();
            let manifest = guard.get_or_insert_with(Default::default);
            let base = manifest.new_base(appendfilename, preamble).to_string();
            std::fs::rename(tmp, dir.join(&base))?;
            manifest.mark_rewritten_incrs_as_history(true);
            let history = std::mem::take(&mut manifest.history);
            write_atomically(
                &dir.join(manifest_file_name(appendfilename)),
                &manifest.to_bytes(),
            )?;
            for h in history {
                let _ = std::fs::remove_file(dir.join(h.name));
            }
            let base_size = std::fs::metadata(dir.join(&base)).map_or(0, |m| m.len());
            aof.set_sizes(base_size, 0);
            Ok(())
        })()
        .map_err(|e| warn!(error = %e, "cannot install the rewritten append only file"))
        .is_ok();
    if !installed {
        let _ = std::fs::remove_file(tmp);
    }
    let rw = &aof.rewrite;
    rw.last_ok.store(installed, Ordering::Relaxed);
    if installed {
        rw.rewrites.fetch_add(1, Ordering::Relaxed);
        info!(pid, "Background AOF rewrite finished successfully");
    } else {
        warn!(pid, "Background AOF rewrite failed");
    }
    if let Some(t) = started {
        rw.last_time_s
            .store(t.elapsed().as_secs() as i64, Ordering::Relaxed);
    }
    *slot = None;
}

/// Loads the append-only files named by the manifest (base, then incr files, in order)
/// and opens the last incr file for logging; without a manifest, starts a new log with a
/// base of the current (empty) dataset, as Redis does when `appendonly yes` meets no log.
/// Runs before clients may run commands (they get `-LOADING`).
pub fn load_and_open(server: &crate::context::ServerContext) -> Result<(), String> {
    use super::aof::{manifest_file_name, Manifest};
    let cfg = &server.config.startup;
    let dir = aof_dir(server);
    let manifest_path = dir.join(manifest_file_name(&cfg.appendfilename));
    let text = match std::fs::read(&manifest_path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            info!("no append-only file yet: creating its base");
            let locked = server.keyspace.lock(&crate::keyspace::LockPlan::All);
            rewrite_locked(server, &locked, None).map_err(|e| {
                format!(
                    "cannot create the append-only file in {}: {e}",
                    dir.display()
                )
            })?;
            return Ok(());
        }
        Err(e) => return Err(describe(&manifest_path, e)),
    };
    let mut manifest = Manifest::parse(&text).map_err(|e| describe(&manifest_path, e))?;
    let files: Vec<(String, bool)> = manifest
        .files_to_load()
        .map(|e| (e.name.clone(), e.kind == super::aof::FileKind::Base))
        .collect();
    let started = Instant::now();
    let mut replayer = Replayer::new(server);
    let mut base_size = 0;
    let mut earlier = 0;
    let count = files.len();
    for (i, (name, is_base)) in files.iter().enumerate() {
        let path = dir.join(name);
        let last = i + 1 == count;
        let size = load_file(server, &mut replayer, &path, last)?;
        if *is_base {
            base_size = size;
        } else if !last {
            earlier += size;
        }
    }
    // Log into the last incr file (a manifest without one gets a new one).
    if manifest.incrs.is_empty() {
        manifest.new_incr(&cfg.appendfilename);
        write_atomically(&manifest_path, &manifest.to_bytes())
            .map_err(|e| describe(&manifest_path, e))?;
    }
    let incr = manifest
        .incrs
        .last()
        .map(|e| e.name.clone())
        .unwrap_or_default();
    let (file, size) = open_incr(&dir.join(&incr)).map_err(|e| describe(&dir.join(&incr), e))?;
    server.aof.set_sizes(base_size, earlier);
    server.aof.start(file, size);
    *server.aof.manifest.lock() = Some(manifest);
    info!(
        commands = replayer.commands,
        seconds = format!("{:.3}", started.elapsed().as_secs_f64()),
        "DB loaded from append only file"
    );
    Ok(())
}

/// Runs logged commands as an internal client that replays (time 0: nothing expired).
struct Replayer<'s> {
    server: &'s crate::context::ServerContext,
    client: crate::client::ClientState,
    out: Vec<u8>,
    commands: u64,
}

impl<'s> Replayer<'s> {
    fn new(server: &'s crate::context::ServerContext) -> Self {
        let shared = Arc::new(crate::client::ClientShared::new(0, None, None, 0));
        let mut client = crate::client::ClientState::new(shared, true);
        client.replaying = true;
        Replayer {
            server,
            client,
            out: Vec::new(),
            commands: 0,
        }
    }

    /// Runs one command; an unknown command is an error (the file is not one hashd can
    /// replay), other error replies are logged and skipped, as Redis does.
    fn run(&mut self, argv: &[Vec<u8>]) -> Result<(), String> {
        self.out.clear();
        let owned = crate::cmd::OwnedArgs::from_slices(argv);
        crate::cmd::dispatch(
            self.server,
            &mut self.client,
            owned.as_args(),
            &mut self.out,
        );
        self.commands += 1;
        if self.out.starts_with(b"-ERR unknown command") {
            let name = String::from_utf8_lossy(argv.first().map_or(&[][..], |a| a));
            return Err(format!(
                "unknown command '{name}' (hashd serves only hashes; a log of other types \
                 cannot be replayed)"
            ));
        }
        if self.out.starts_with(b"-") {
            warn!(
                reply = %String::from_utf8_lossy(&self.out).trim_end(),
                "a command of the append-only file failed while replaying"
            );
        }
        Ok(())
    }
}

/// Loads one file of the manifest; returns its size. A truncated tail of the last file is
/// cut off when `aof-load-truncated yes`.
fn load_file(
    server: &crate::context::ServerContext,
    replayer: &mut Replayer<'_>,
    path: &Path,
    last: bool,
) -> Result<u64, String> {
    use super::aof::{open_base, rdb_tail, AofEnd, AofItem, AofReader, Base, TruncateReason};
    let file = File::open(path).map_err(|e| describe(path, e))?;
    let size = file.metadata().map_or(0, |m| m.len());
    let base =
        open_base(io::BufReader::with_capacity(1 << 16, file)).map_err(|e| describe(path, e))?;
    let mut reader = match base {
        Base::Commands(r) => r,
        Base::Rdb(input) => {
            let opts = super::rdb::LoadOptions {
                now_ms: None,
                skip_unsupported: server.config.startup.rdb_skip_unsupported_types,
                verify_checksum: true,
                relaxed_version: false,
                databases: server.keyspace.databases(),
            };
            let mut rdb = super::rdb::RdbReader::new(input, opts).map_err(|e| describe(path, e))?;
            while let Some(k) = rdb.next_key().map_err(|e| describe(path, e))? {
                server
                    .keyspace
                    .load_key(k.db, &k.key, k.expire_ms, super::snapshot::fields_of(&k));
            }
            rdb_tail(rdb)
        }
    };
    let end = replay_all(replayer, &mut reader).map_err(|e| describe(path, e))?;
    if let AofEnd::Truncated {
        valid_up_to,
        reason,
        ..
    } = end
    {
        let why = match reason {
            TruncateReason::ShortRead => "short read",
            TruncateReason::UnfinishedMulti => "an unfinished MULTI/EXEC transaction",
        };
        if !last {
            return Err(describe(
                path,
                format!("{why} at byte {valid_up_to}, and the truncated file is not the last file"),
            ));
        }
        if !server.config.startup.aof_load_truncated {
            return Err(describe(
                path,
                format!(
                    "unexpected end of file ({why}) at byte {valid_up_to}; make a backup, then \
                     run redis-check-aof --fix on the manifest, or start with \
                     aof-load-truncated yes"
                ),
            ));
        }
        warn!(file = %path.display(), offset = valid_up_to, "!!! Warning: {why} while loading the AOF file; truncating it !!!");
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| describe(path, e))?;
        f.set_len(valid_up_to)
            .and_then(|_| f.sync_all())
            .map_err(|e| describe(path, e))?;
        return Ok(valid_up_to);
    }
    fn replay_all<R: io::Read>(
        replayer: &mut Replayer<'_>,
        reader: &mut AofReader<R>,
    ) -> Result<AofEnd, String> {
        let mut pending: Vec<Vec<Vec<u8>>> = Vec::new();
        loop {
            match reader.next_item().map_err(|e| e.to_string())? {
                AofItem::Command(argv) => {
                    // A transaction is applied once its EXEC is read: an unfinished one at a
                    // truncated end is dropped whole.
                    let name = argv.first().map(|a| a.to_ascii_lowercase());
                    match name.as_deref() {
                        Some(b"multi") => pending.push(argv.to_vec()),
                        Some(b"exec") if !pending.is_empty() => {
                            for c in pending.drain(..) {
                                replayer.run(&c)?;
                            }
                            replayer.run(argv)?;
                        }
                        _ if !pending.is_empty() => pending.push(argv.to_vec()),
                        _ => replayer.run(argv)?,
                    }
                }
                AofItem::End(end) => return Ok(end),
            }
        }
    }
    Ok(size)
}

/// Starts a BGREWRITEAOF that waits (scheduled behind a BGSAVE), or that the log's growth
/// calls for (`auto-aof-rewrite-percentage` over the size after the last rewrite, once past
/// `auto-aof-rewrite-min-size`), as Redis's serverCron. Called once a second.
pub async fn maybe_rewrite(server: &Arc<crate::context::ServerContext>) {
    let aof = &server.aof;
    if server.rdb.loading.load(Ordering::Relaxed)
        || aof.rewrite.in_progress()
        || server.rdb.bgsave_in_progress()
    {
        return;
    }
    let scheduled = aof.rewrite.scheduled.load(Ordering::Relaxed);
    let cfg = &server.config;
    let percent = cfg.auto_aof_rewrite_percentage.load(Ordering::Relaxed);
    let min = cfg.auto_aof_rewrite_min_size.load(Ordering::Relaxed);
    let size = aof.current_size();
    let base = aof.base_size().max(1);
    let grown = aof.enabled()
        && percent > 0
        && size > min
        && size.saturating_sub(base).saturating_mul(100) / base >= percent;
    if !scheduled && !grown {
        return;
    }
    if grown {
        info!(size, base, "starting an automatic append only file rewrite");
    }
    let srv = Arc::clone(server);
    let _ = tokio::task::spawn_blocking(move || {
        let locked = srv.keyspace.lock(&crate::keyspace::LockPlan::All);
        if let Err(e) = bgrewrite_locked(&srv, &locked) {
            warn!(error = %e, "cannot start the append only file rewrite");
        }
    })
    .await;
}

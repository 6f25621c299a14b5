//! Serving one replica: the connection that sent `PSYNC` or `SYNC` becomes a replica link.
//!
//! * `PSYNC <replid> <offset>` continues from the backlog when our history has that id (or
//!   had it, up to `second_repl_offset`) and the backlog still holds the offset:
//!   `+CONTINUE <replid>`, then the missing bytes, then the live stream.
//! * Otherwise a full sync: `+FULLRESYNC <replid> <offset>` (nothing for `SYNC`), then the
//!   snapshot, then the stream from that offset. The snapshot is written by a forked child
//!   (as BGSAVE) holding the instant at which every shard was locked and the replica
//!   registered, so snapshot and stream meet exactly. Diskless (`repl-diskless-sync yes` and
//!   a replica that sent `capa eof`): the child writes into a pipe and we relay it as
//!   `$EOF:<mark>\r\n…<mark>`, then wait for the replica's first ACK before streaming, as
//!   Redis does. Disk: the child writes a file, sent as `$<len>\r\n…` once complete, with a
//!   `\n` keep-alive every second meanwhile.
//! * Then the stream, and the replica's `REPLCONF ACK <offset>` read back. A replica past
//!   `client-output-buffer-limit replica`, or silent for `repl-timeout`, is disconnected.
//!
//! The link is a plain socket or, for a replica that connected to `tls-port`, a TLS
//! stream ([`ReplicaStream`]): the same sync and stream go over either.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::{AttachedReplica, PsyncRefusal, ReplicaState};
use crate::client::ClientShared;
use crate::cmd::Args;
use crate::context::ServerContext;
use crate::keyspace::LockPlan;
use crate::protocol::{parse_i64, ParseLimits, Parsed, RequestParser};
use crate::shutdown::ShutdownSignal;

/// What a replica asked for, gathered from its REPLCONF and PSYNC / SYNC.
#[derive(Clone, Debug, Default)]
pub struct SyncRequest {
    /// PSYNC's replication id and offset; None for SYNC.
    pub psync: Option<(String, i64)>,
    /// `REPLCONF capa eof`: it can take a diskless transfer.
    pub capa_eof: bool,
    /// `REPLCONF capa psync2`: it understands `+CONTINUE <replid>`.
    pub capa_psync2: bool,
    /// `REPLCONF listening-port`.
    pub listening_port: u64,
    /// `REPLCONF ip-address`.
    pub ip_address: Option<String>,
}

/// A replica's connection, split in two for the stream (ACKs are read while the stream is
/// written): a plain socket splits for free, a TLS stream through tokio's shared halves.
pub trait ReplicaStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    type Reader: AsyncRead + Unpin + Send;
    type Writer: AsyncWrite + Unpin + Send;
    fn split_link(self) -> (Self::Reader, Self::Writer);
}

impl ReplicaStream for TcpStream {
    type Reader = tokio::net::tcp::OwnedReadHalf;
    type Writer = tokio::net::tcp::OwnedWriteHalf;
    fn split_link(self) -> (Self::Reader, Self::Writer) {
        self.into_split()
    }
}

impl ReplicaStream for tokio_rustls::server::TlsStream<TcpStream> {
    type Reader = tokio::io::ReadHalf<Self>;
    type Writer = tokio::io::WriteHalf<Self>;
    fn split_link(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}

/// Writes all of `bytes` and flushes (which a TLS stream needs: rustls may hold the last
/// records of an accepted write; a plain socket's flush does nothing).
async fn send<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

/// Serves the replica on `stream` until the link ends. `rbuf` holds what the client sent
/// after its PSYNC / SYNC.
pub async fn serve<S: ReplicaStream>(
    stream: S,
    rbuf: BytesMut,
    server: Arc<ServerContext>,
    shared: Arc<ClientShared>,
    req: SyncRequest,
    mut shutdown: ShutdownSignal,
) {
    let ip = req.ip_address.clone().unwrap_or_else(|| {
        shared
            .addr
            .rsplit_once(':')
            .map_or(shared.addr.clone(), |(ip, _)| ip.to_string())
    });
    let name = format!("{ip}:{}", req.listening_port);
    // At shutdown an online replica gets what is queued for it first (the server runs no
    // more commands then, so the queue only shrinks), for at most SHUTDOWN_FLUSH; a replica
    // still syncing is dropped at once.
    let shutting_down = async {
        shutdown.wait().await;
        tokio::time::sleep(SHUTDOWN_FLUSH).await;
    };
    let result = tokio::select! {
        r = sync_and_stream(stream, rbuf, &server, &shared, &req, &ip, &name) => r,
        _ = shutting_down => Ok(()),
        _ = shared.killed() => Ok(()),
    };
    match result {
        Ok(()) => info!("Connection with replica {name} lost."),
        Err(e) => info!(error = %e, "Connection with replica {name} lost."),
    }
}

/// How long shutdown lets an online replica take its queued stream.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

type Result<T> = std::result::Result<T, String>;

fn io_err(e: std::io::Error) -> String {
    e.to_string()
}

/// Detaches the replica from the stream when the link ends, however it ends.
struct Attached<'a> {
    server: &'a ServerContext,
    replica: Arc<AttachedReplica>,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.server.replication.detach(&self.replica);
    }
}

async fn sync_and_stream<S: ReplicaStream>(
    mut stream: S,
    rbuf: BytesMut,
    server: &ServerContext,
    shared: &ClientShared,
    req: &SyncRequest,
    ip: &str,
    name: &str,
) -> Result<()> {
    let repl = &server.replication;
    info!("Replica {name} asks for synchronization");
    if repl.is_replica() && !repl.link_up() {
        // A replica whose own link is down has no consistent history to offer.
        let _ = send(
            &mut stream,
            b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n",
        )
        .await;
        return Err("our own master link is down".into());
    }
    if let Some((id, offset)) = &req.psync {
        match repl.try_continue(id, *offset, shared.id, ip, req.listening_port) {
            Ok(c) => {
                let guard = Attached {
                    server,
                    replica: Arc::clone(&c.replica),
                };
                repl.stats
                    .sync_partial_ok
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let line = if req.capa_psync2 {
                    format!("+CONTINUE {}\r\n", c.replid)
                } else {
                    "+CONTINUE\r\n".to_string()
                };
                send(&mut stream, line.as_bytes()).await.map_err(io_err)?;
                info!(
                    "Partial resynchronization request from {name} accepted. Sending {} bytes \
                     of backlog starting from offset {offset}.",
                    c.replica.pending_len()
                );
                return stream_to(stream, rbuf, server, &guard.replica).await;
            }
            Err(PsyncRefusal::Asked) => info!("Full resync requested by replica {name}"),
            Err(why) => {
                repl.stats
                    .sync_partial_err
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let reason = match why {
                    PsyncRefusal::IdMismatch => "Replication ID mismatch",
                    _ => "the offset is out of the backlog's range",
                };
                info!(
                    "Partial resynchronization not accepted: {reason} (Replica asked for \
                     '{id}', offset {offset})"
                );
            }
        }
    }
    repl.stats
        .sync_full
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let diskless = req.capa_eof
        && req.psync.is_some()
        && repl
            .settings
            .diskless_sync
            .load(std::sync::atomic::Ordering::Relaxed);
    if diskless {
        let delay = repl
            .settings
            .diskless_sync_delay_s
            .load(std::sync::atomic::Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_secs(delay)).await;
        }
    }
    let snapshot = start_snapshot(server, shared.id, ip, req.listening_port, diskless).await?;
    let guard = Attached {
        server,
        replica: Arc::clone(&snapshot.replica),
    };
    let replica = &guard.replica;
    if req.psync.is_some() {
        let line = format!("+FULLRESYNC {} {}\r\n", snapshot.replid, snapshot.offset);
        send(&mut stream, line.as_bytes()).await.map_err(io_err)?;
    }
    replica.set_state(ReplicaState::SendBulk);
    match snapshot.output {
        Output::Pipe(reader) => {
            info!(
                "Starting BGSAVE for SYNC with target: replicas sockets (child {})",
                snapshot.pid
            );
            let mut child = SnapshotChild::watch(snapshot.pid, None);
            let mark = super::random_id();
            let sent = relay_pipe(&mut stream, reader, &mark, sync_timeout(server)).await;
            let ok = child.finished().await;
            sent?;
            if !ok {
                return Err("the snapshot child failed".into());
            }
            // The replica acknowledges once it has loaded; only then does the stream flow.
            replica.set_state(ReplicaState::WaitAck);
        }
        Output::File(path) => {
            info!(
                "Starting BGSAVE for SYNC with target: disk (child {})",
                snapshot.pid
            );
            let mut child = SnapshotChild::watch(snapshot.pid, Some(path.clone()));
            // The file goes when `child` drops, whatever happens to the sync.
            send_file(&mut stream, &mut child, &path, sync_timeout(server)).await?;
            drop(child);
            // Its ACKs start now: the transfer's time is not silence (Redis's
            // replicaPutOnline).
            replica
                .last_ack_ms
                .store(server.clock.now_ms(), std::sync::atomic::Ordering::Relaxed);
            replica.set_state(ReplicaState::Online);
        }
    }
    info!("Synchronization with replica {name} succeeded");
    stream_to(stream, rbuf, server, replica).await
}

enum Output {
    Pipe(tokio::net::unix::pipe::Receiver),
    File(std::path::PathBuf),
}

struct Snapshot {
    replid: String,
    offset: u64,
    replica: Arc<AttachedReplica>,
    pid: i32,
    output: Output,
}

/// Locks every shard, registers the replica at the current offset and forks the child
/// that writes the snapshot of that instant.
async fn start_snapshot(
    server: &ServerContext,
    client_id: u64,
    ip: &str,
    listening_port: u64,
    diskless: bool,
) -> Result<Snapshot> {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    let (read_end, write_end) = if diskless {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 with a valid two-element array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io_err(std::io::Error::last_os_error()));
        }
        // SAFETY: both descriptors were just created and are owned here alone.
        unsafe {
            (
                Some(OwnedFd::from_raw_fd(fds[0])),
                Some(OwnedFd::from_raw_fd(fds[1])),
            )
        }
    } else {
        (None, None)
    };
    let path = server
        .config
        .dir
        .read()
        .join(format!("temp-repl-{}-{client_id}.rdb", std::process::id()));
    // The whole dataset's instant: taken off the async workers, as the locks may wait.
    let started = {
        // SAFETY of the borrow: the blocking section runs to completion before we return.
        let ks = &server.keyspace;
        tokio::task::block_in_place(|| {
            let locked = ks.lock(&LockPlan::All);
            let point = server
                .replication
                .begin_full_sync(client_id, ip, listening_port);
            let target = match &write_end {
                Some(fd) => crate::persist::snapshot::SyncTarget::Pipe(fd.as_fd()),
                None => crate::persist::snapshot::SyncTarget::File(&path),
            };
            let forking = std::time::Instant::now();
            let forked = crate::persist::snapshot::fork_sync_snapshot(
                server,
                &locked,
                target,
                &point.replid,
                point.offset,
                point.db,
            );
            crate::persist::snapshot::note_fork(server, forking);
            drop(locked);
            match forked {
                Ok(pid) => Ok((point, pid)),
                Err(e) => {
                    server.replication.detach(&point.replica);
                    Err(format!("cannot fork the snapshot child: {e}"))
                }
            }
        })
    };
    // Our copy of the write end closes, so the pipe ends when the child does.
    drop(write_end);
    let (point, pid) = started?;
    let output = match read_end {
        Some(fd) => match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
            Ok(r) => Output::Pipe(r),
            Err(e) => {
                server.replication.detach(&point.replica);
                drop(SnapshotChild::watch(pid, None));
                return Err(io_err(e));
            }
        },
        None => Output::File(path),
    };
    Ok(Snapshot {
        replid: point.replid,
        offset: point.offset,
        replica: point.replica,
        pid,
        output,
    })
}

/// A full sync's snapshot child, reaped exactly once by a thread of its own. If the sync
/// ends before the child does (the replica went, shutdown, CLIENT KILL), dropping this
/// kills the child — only while it is unreaped, so the pid cannot be another process's —
/// and the files it leaves are removed once it has exited.
struct SnapshotChild {
    pid: i32,
    reaped: Arc<parking_lot::Mutex<bool>>,
    result: Option<tokio::sync::oneshot::Receiver<bool>>,
    /// The finished snapshot (disk sync), removed when this drops.
    file: Option<std::path::PathBuf>,
}

impl SnapshotChild {
    fn watch(pid: i32, file: Option<std::path::PathBuf>) -> Self {
        let reaped = Arc::new(parking_lot::Mutex::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let flag = Arc::clone(&reaped);
        let temp = file
            .as_ref()
            .and_then(|f| f.parent())
            .map(|d| d.join(format!("temp-{pid}.rdb")));
        let spawned = std::thread::Builder::new()
            .name("hashd-sync-wait".into())
            .spawn(move || {
                crate::persist::snapshot::wait_exit_unreaped(pid);
                let mut reaped = flag.lock();
                let ok = crate::persist::snapshot::wait_child_exit(pid);
                *reaped = true;
                drop(reaped);
                // A child killed halfway leaves its temporary file.
                if let Some(t) = temp {
                    let _ = std::fs::remove_file(t);
                }
                let _ = tx.send(ok);
            });
        if spawned.is_err() {
            warn!(
                pid,
                "cannot start the thread that waits for a sync's snapshot child"
            );
        }
        SnapshotChild {
            pid,
            reaped,
            result: Some(rx),
            file,
        }
    }

    /// Completes when the child has exited: true if it succeeded.
    async fn finished(&mut self) -> bool {
        match self.result.as_mut() {
            Some(rx) => {
                let ok = rx.await.unwrap_or(false);
                self.result = None;
                ok
            }
            None => false,
        }
    }
}

impl Drop for SnapshotChild {
    fn drop(&mut self) {
        let reaped = self.reaped.lock();
        if !*reaped {
            // SAFETY: our own child, not yet reaped (the waiter reaps under this lock).
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
        drop(reaped);
        if let Some(f) = self.file.take() {
            // Written by then if the child finished; if it was killed, never renamed.
            let _ = std::fs::remove_file(f);
        }
    }
}

/// `repl-timeout`: how long a full sync's write to the replica may wait.
fn sync_timeout(server: &ServerContext) -> Duration {
    Duration::from_secs(
        server
            .replication
            .settings
            .timeout_s
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1),
    )
}

/// Writes `bytes` to the replica unless it accepts nothing for `limit` (a replica that
/// stopped reading during its full sync: Redis drops it after `repl-timeout` too).
async fn write_within<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    limit: Duration,
) -> Result<()> {
    match tokio::time::timeout(limit, send(stream, bytes)).await {
        Ok(r) => r.map_err(io_err),
        Err(_) => Err("Disconnecting timedout replica (full sync)".into()),
    }
}

/// Diskless: `$EOF:<mark>\r\n`, the pipe's bytes as they come, then the mark.
async fn relay_pipe<S: AsyncWrite + Unpin>(
    stream: &mut S,
    mut reader: tokio::net::unix::pipe::Receiver,
    mark: &str,
    limit: Duration,
) -> Result<()> {
    write_within(stream, format!("$EOF:{mark}\r\n").as_bytes(), limit).await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).await.map_err(io_err)?;
        if n == 0 {
            break;
        }
        write_within(stream, &buf[..n], limit).await?;
    }
    write_within(stream, mark.as_bytes(), limit).await
}

/// Disk: waits for the child (a `\n` keep-alive every second), then `$<len>\r\n` and the
/// file.
async fn send_file<S: AsyncWrite + Unpin>(
    stream: &mut S,
    child: &mut SnapshotChild,
    path: &std::path::Path,
    limit: Duration,
) -> Result<()> {
    let ok = loop {
        tokio::select! {
            ok = child.finished() => break ok,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                write_within(stream, b"\n", limit).await?;
            }
        }
    };
    if !ok {
        return Err("the snapshot child failed".into());
    }
    use std::io::Read;
    // A file the child just wrote: its pages are in the cache, reads do not wait on disk.
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    write_within(stream, format!("${len}\r\n").as_bytes(), limit).await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            return Ok(());
        }
        write_within(stream, &buf[..n], limit).await?;
    }
}

/// The live stream: what is queued for the replica goes out as it comes, while its ACKs
/// are read back. Ends when the replica goes, falls silent past `repl-timeout`, or
/// overflows its output buffer limit.
async fn stream_to<S: ReplicaStream>(
    stream: S,
    rbuf: BytesMut,
    server: &ServerContext,
    replica: &Arc<AttachedReplica>,
) -> Result<()> {
    let (rd, wr) = stream.split_link();
    tokio::select! {
        r = read_acks(rd, rbuf, server, replica) => r,
        r = write_stream(wr, server, replica) => r,
        r = watch_health(server, replica) => r,
    }
}

async fn write_stream<W: AsyncWrite + Unpin>(
    mut wr: W,
    server: &ServerContext,
    replica: &AttachedReplica,
) -> Result<()> {
    loop {
        if replica.overflowed() {
            return Err("output buffer limit reached".into());
        }
        let closing = server.closing.load(std::sync::atomic::Ordering::Relaxed);
        if replica.state() != ReplicaState::Online {
            if closing {
                return Ok(());
            }
            replica.wait_for_data().await;
            continue;
        }
        if replica.pending_len() == 0 {
            if closing {
                // Everything the server acknowledged has gone to this replica.
                let _ = wr.flush().await;
                return Ok(());
            }
            replica.wait_for_data().await;
            continue;
        }
        // Let the connections with input ready run their batches first: the stream then
        // leaves in fewer, fuller writes (as Redis writes its replicas once per event loop).
        tokio::task::yield_now().await;
        let data = replica.take_pending();
        send(&mut wr, &data).await.map_err(io_err)?;
    }
}

async fn watch_health(server: &ServerContext, replica: &AttachedReplica) -> Result<()> {
    use std::sync::atomic::Ordering;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if replica.overflowed() {
            return Err("output buffer limit reached".into());
        }
        let timeout_ms = server
            .replication
            .settings
            .timeout_s
            .load(Ordering::Relaxed)
            * 1000;
        // Only a streaming replica must ACK every second.
        let silent = server
            .clock
            .now_ms()
            .saturating_sub(replica.last_ack_ms.load(Ordering::Relaxed));
        if replica.state() == ReplicaState::Online && silent > timeout_ms {
            warn!(
                "Disconnecting timedout replica (streaming sync): {}",
                replica.ip
            );
            return Err("timeout".into());
        }
    }
}

/// Reads `REPLCONF ACK <offset> [FACK <offset>]` (and anything else, ignored) from the
/// replica.
async fn read_acks<R: AsyncRead + Unpin>(
    mut rd: R,
    mut rbuf: BytesMut,
    server: &ServerContext,
    replica: &AttachedReplica,
) -> Result<()> {
    let mut parser = RequestParser::new();
    let limits = ParseLimits {
        max_bulk_len: 1024 * 1024,
        unauthenticated: false,
    };
    loop {
        loop {
            match parser.parse(&rbuf, limits) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Ignored { consumed }) => rbuf.advance(consumed),
                Ok(Parsed::Request { consumed, source }) => {
                    let data: &[u8] = match source {
                        crate::protocol::ArgSource::ReadBuffer => &rbuf[..],
                        crate::protocol::ArgSource::InlineBuffer => &parser.inline_buf,
                    };
                    let args = Args::new(data, &parser.spans);
                    if args.len() >= 3
                        && args.get(0).eq_ignore_ascii_case(b"replconf")
                        && args.get(1).eq_ignore_ascii_case(b"ack")
                    {
                        if let Some(off) =
                            parse_i64(args.get(2)).and_then(|v| u64::try_from(v).ok())
                        {
                            server.replication.record_ack(replica, off);
                            if replica.state() == ReplicaState::WaitAck {
                                replica.set_state(ReplicaState::Online);
                                replica.wake.notify_one();
                            }
                        }
                    }
                    rbuf.advance(consumed);
                }
                Err(e) => return Err(format!("protocol error from the replica: {e}")),
            }
        }
        if rbuf.len() > 1024 * 1024 {
            return Err("the replica sent too much".into());
        }
        rbuf.reserve(4096);
        let n = rd.read_buf(&mut rbuf).await.map_err(io_err)?;
        if n == 0 {
            return Ok(());
        }
    }
}

//! One client connection: read → parse every complete request already buffered → run each →
//! append each reply to one output buffer → one write. Pipelined input is answered with one
//! write per batch, never one syscall per reply.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::client::{ClientShared, ClientState};
use crate::cmd::{self, Args};
use crate::context::ServerContext;
use crate::keyspace::PREFETCH_BATCH;
use crate::protocol::{request, ArgSource, ParseLimits, Parsed, Reply, RequestParser};
use crate::pubsub::{self, Message, Subscriptions};
use crate::shutdown::ShutdownSignal;

/// Read buffer size we start with and keep between requests.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Flush replies early once this much is pending, so a long pipeline of large replies does
/// not buffer without bound (and a client that does not read stalls only itself).
const FLUSH_THRESHOLD_BYTES: usize = 64 * 1024;
/// Output buffers that grew past this are released after a flush.
const KEEP_OUTPUT_CAPACITY_BYTES: usize = 1024 * 1024;
/// A read buffer that grew past this (a large request) is released once it is empty, so
/// an idle connection does not keep its largest request's memory (Redis shrinks its query
/// buffers in `clientsCron`).
const KEEP_READ_CAPACITY_BYTES: usize = 256 * 1024;
/// Query buffer limit while unauthenticated (spec §2.3).
const UNAUTH_QUERY_BUFFER_LIMIT_BYTES: usize = 1024 * 1024;

/// Serves one client until it quits, errs, is killed, or the server shuts down.
pub async fn serve(
    mut stream: TcpStream,
    server: Arc<ServerContext>,
    mut shutdown: ShutdownSignal,
) {
    let _ = stream.set_nodelay(true);
    let id = server.clients.next_id();
    let shared = Arc::new(ClientShared::new(
        id,
        stream.peer_addr().ok(),
        stream.local_addr().ok(),
        server.clock.now_ms(),
    ));
    {
        use std::os::fd::AsRawFd;
        shared
            .fd
            .store(i64::from(stream.as_raw_fd()), Ordering::Relaxed);
    }
    server.clients.register(Arc::clone(&shared));
    let span = tracing::debug_span!("conn", id, addr = %shared.addr);
    let _enter = span.enter();
    debug!("accepted");

    if let Some((rbuf, req)) = session(&mut stream, &server, &shared, &mut shutdown).await {
        // PSYNC / SYNC: from here on this connection is a replica's link.
        shared.set_kind(crate::client::ClientKind::Replica);
        crate::replication::master::serve(
            stream,
            rbuf,
            Arc::clone(&server),
            Arc::clone(&shared),
            req,
            shutdown,
        )
        .await;
    }
    server.clients.unregister(id);
    debug!("closed");
}

/// Serves one client that connected to `tls-port`, once its TLS handshake is done. As
/// [`serve`]: a replica's PSYNC / SYNC turns the connection into its link, streamed over
/// TLS.
pub async fn serve_tls(
    mut stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: Option<std::net::SocketAddr>,
    local: Option<std::net::SocketAddr>,
    fd: i64,
    server: Arc<ServerContext>,
    mut shutdown: ShutdownSignal,
) {
    let id = server.clients.next_id();
    let shared = Arc::new(ClientShared::new(id, peer, local, server.clock.now_ms()));
    shared.fd.store(fd, Ordering::Relaxed);
    server.clients.register(Arc::clone(&shared));
    let span = tracing::debug_span!("conn", id, addr = %shared.addr, tls = true);
    let _enter = span.enter();
    debug!("accepted (TLS)");
    match session(&mut stream, &server, &shared, &mut shutdown).await {
        Some((rbuf, req)) => {
            shared.set_kind(crate::client::ClientKind::Replica);
            crate::replication::master::serve(
                stream,
                rbuf,
                Arc::clone(&server),
                Arc::clone(&shared),
                req,
                shutdown,
            )
            .await;
        }
        None => {
            let _ = stream.shutdown().await;
        }
    }
    server.clients.unregister(id);
    debug!("closed");
}

/// One client's session on `stream`, plain or TLS: its state from the first request to
/// the last, and what it leaves behind (stats, MONITOR, WATCH, tracking, subscriptions)
/// cleared. Returns the unread input and the sync request if it became a replica.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    server: &Arc<ServerContext>,
    shared: &Arc<ClientShared>,
    shutdown: &mut ShutdownSignal,
) -> Option<(BytesMut, crate::replication::master::SyncRequest)> {
    let id = shared.id;
    let mut client = ClientState::new(Arc::clone(shared), false);
    client.log_in_as_default(&server.acl);
    let takeover = match run(stream, server, &mut client, shutdown).await {
        Ok(t) => t,
        Err(e) => {
            debug!(error = %e, "connection error");
            None
        }
    };
    server.commands.flush(&mut client.stats);
    if client.monitor.is_some() {
        server.monitors.remove(id);
    }
    cmd::multi::forget_watches(server, &mut client);
    if client.tracking.is_some() {
        server.tracker.disable(id);
    }
    pubsub::forget(&server.pubsub, &mut client);
    takeover.map(|rbuf| (rbuf, std::mem::take(&mut client.repl)))
}

/// Serves requests until the connection ends; returns the unread input if the client
/// became a replica (PSYNC / SYNC), whose link then takes the socket over.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    server: &ServerContext,
    client: &mut ClientState,
    shutdown: &mut ShutdownSignal,
) -> std::io::Result<Option<BytesMut>> {
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut parser = RequestParser::new();
    let shared = Arc::clone(&client.shared);
    shared.rbs.store(out.capacity(), Ordering::Relaxed);
    // Built once: re-creating these on every read showed up in profiles at pipeline 1.
    let stop = async {
        tokio::select! {
            _ = shutdown.wait() => {}
            _ = shared.killed() => {}
        }
    };
    tokio::pin!(stop);
    loop {
        if rbuf.is_empty() && rbuf.capacity() > KEEP_READ_CAPACITY_BYTES {
            rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        }
        if rbuf.capacity() - rbuf.len() < READ_CHUNK_BYTES / 4 {
            rbuf.reserve(READ_CHUNK_BYTES);
        }
        shared.qbuf.store(rbuf.len(), Ordering::Relaxed);
        shared
            .qbuf_free
            .store(rbuf.capacity() - rbuf.len(), Ordering::Relaxed);
        // `timeout`: a client idle that long is closed, unless it is subscribed (Redis
        // exempts pub/sub clients, replicas and its master).
        let idle_limit_s = server.config.timeout.load(Ordering::Relaxed);
        let idle_timeout = idle_limit_s > 0 && !client.in_pubsub_mode() && client.monitor.is_none();
        let woke = tokio::select! {
            r = stream.read_buf(&mut rbuf) => Wake::Read(r?),
            _ = &mut stop => return Ok(None),
            Some(msg) = next_message(&mut client.pubsub), if client.pubsub.is_some() => {
                Wake::Message(msg)
            }
            Some(line) = next_monitor_line(&mut client.monitor), if client.monitor.is_some() => {
                Wake::Monitor(line)
            }
            _ = idle_expired(server, &shared, idle_limit_s), if idle_timeout => {
                debug!("closing an idle client (timeout)");
                return Ok(None);
            }
        };
        let n = match woke {
            Wake::Read(n) => n,
            Wake::Monitor(line) => {
                out.extend_from_slice(&line);
                // Whatever else is waiting goes in the same write.
                if let Some(rx) = client.monitor.as_mut() {
                    while out.len() < FLUSH_THRESHOLD_BYTES {
                        match rx.try_recv() {
                            Ok(l) => out.extend_from_slice(&l),
                            Err(_) => break,
                        }
                    }
                }
                if write_out(server, stream, &mut out, &shared).await? {
                    return Ok(None);
                }
                continue;
            }
            Wake::Message(msg) => {
                msg.write(
                    &mut Reply::new(&mut out, client.protocol),
                    client.in_pubsub_mode(),
                );
                pubsub::drain(client, &mut out);
                if write_out(server, stream, &mut out, &shared).await? {
                    return Ok(None);
                }
                continue;
            }
        };
        if n == 0 {
            return Ok(None);
        }
        server
            .stats
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        shared
            .last_interaction_ms
            .store(server.clock.now_ms(), Ordering::Relaxed);

        let limit = if client.authenticated {
            server
                .config
                .client_query_buffer_limit
                .load(Ordering::Relaxed) as usize
        } else {
            UNAUTH_QUERY_BUFFER_LIMIT_BYTES
        };
        // Arguments queued by MULTI count too (Redis's `argv_len_sums`).
        let queued = client.multi.as_ref().map_or(0, |m| m.queued_bytes);
        if rbuf.len() + queued > limit {
            debug!(
                bytes = rbuf.len(),
                queued, "query buffer limit exceeded; closing"
            );
            return Ok(None);
        }

        let batch =
            process_buffer(server, client, &mut parser, &mut rbuf, &mut out, stream).await?;
        if !client.stats.is_empty() {
            server.commands.flush(&mut client.stats);
        }
        wait_for_aof(server, client).await;
        if batch.requests > 1 && !out.is_empty() {
            // Let every other connection with input ready run its batch before this one
            // writes (tokio defers a yielded task until it has polled for I/O again). Replies
            // then leave in bursts, as from Redis's event loop: fewer, fuller wake-ups on
            // both sides (pipeline 16: ~10% less server CPU per request, measured). The
            // extra I/O poll this costs is only worth it for a pipelined batch: after a
            // lone request it cost more CPU than it saved (pipeline 1, measured).
            tokio::task::yield_now().await;
        }
        if !out.is_empty() && write_out(server, stream, &mut out, &shared).await? {
            return Ok(None);
        }
        if batch.close || shared.is_killed() {
            return Ok(None);
        }
        if client.become_replica {
            return Ok(Some(rbuf));
        }
    }
}

/// With `appendfsync always`, replies to writes go out only once the append-only file is
/// fsynced past them. Everything this client changed was logged when its commands released
/// their locks, so the current end of the log covers it; writes of other clients that
/// share the fsync are acknowledged by it too (group commit).
async fn wait_for_aof(server: &ServerContext, client: &mut ClientState) {
    if client.aof_wait {
        client.aof_wait = false;
        let target = server.aof.appended();
        server.aof.wait_synced(target).await;
    }
}

/// Completes once the client has been idle for `limit_s` seconds (its last interaction is
/// re-read on waking: a command run meanwhile moves the deadline).
async fn idle_expired(server: &ServerContext, shared: &ClientShared, limit_s: u64) {
    loop {
        let last = shared.last_interaction_ms.load(Ordering::Relaxed);
        let deadline = last.saturating_add(limit_s * 1000);
        let now = server.clock.now_ms();
        if now >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(deadline - now)).await;
    }
}

/// What woke the connection up.
enum Wake {
    Read(usize),
    Message(Arc<Message>),
    Monitor(bytes::Bytes),
}

/// The next MONITOR line for a monitoring client; never completes for others.
async fn next_monitor_line(
    rx: &mut Option<tokio::sync::mpsc::Receiver<bytes::Bytes>>,
) -> Option<bytes::Bytes> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// The next pub/sub message for a client that has subscribed; never completes for one
/// that has not.
async fn next_message(subs: &mut Option<Box<Subscriptions>>) -> Option<Arc<Message>> {
    match subs {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes and clears `out`. Returns true if the client was killed first: a client that
/// stopped reading (a subscriber past its limit, a CLIENT KILL target) must not keep its
/// connection by leaving the write pending.
async fn write_out<S: AsyncWrite + Unpin>(
    server: &ServerContext,
    stream: &mut S,
    out: &mut Vec<u8>,
    shared: &ClientShared,
) -> std::io::Result<bool> {
    shared.obl.store(out.len(), Ordering::Relaxed);
    shared.rbp.fetch_max(out.len(), Ordering::Relaxed);
    let killed = tokio::select! {
        // The write first: replies that fit the socket buffer still go out to a client
        // killed meanwhile (SHUTDOWN's own +OK to the one before it, at shutdown).
        biased;
        // The flush matters for TLS: rustls may keep the last records of a write it
        // accepted until the socket drains (a no-op for a plain socket).
        r = async { stream.write_all(out).await?; stream.flush().await } => {
            r?;
            server
                .stats
                .net_output_bytes
                .fetch_add(out.len() as u64, Ordering::Relaxed);
            false
        }
        _ = shared.killed() => true,
    };
    out.clear();
    if out.capacity() > KEEP_OUTPUT_CAPACITY_BYTES {
        *out = Vec::with_capacity(READ_CHUNK_BYTES);
    }
    shared.obl.store(0, Ordering::Relaxed);
    shared.rbs.store(out.capacity(), Ordering::Relaxed);
    Ok(killed)
}

/// When a read brought several requests, starts loading the keyspace memory they will
/// touch, so their cache misses overlap (see `keyspace::prefetch`). A lone request gains
/// nothing from it and skips the work; so do transactions, whose commands only queue, and
/// subscribed clients.
fn prefetch_batch(server: &ServerContext, client: &ClientState, rbuf: &[u8]) {
    if !client.authenticated || client.multi.is_some() || client.in_pubsub_mode() {
        return;
    }
    let mut keys: SmallVec<[&[u8]; PREFETCH_BATCH]> = SmallVec::new();
    request::peek_keys(rbuf, PREFETCH_BATCH, |key| keys.push(key));
    if keys.len() > 1 {
        server.keyspace.prefetch(client.db, &keys);
    }
}

/// What running a read's worth of requests did.
struct Batch {
    /// Requests run (or refused) from the buffer.
    requests: usize,
    /// The connection must close once the pending replies are written.
    close: bool,
}

/// Runs every complete request in `rbuf`.
async fn process_buffer<S: AsyncRead + AsyncWrite + Unpin>(
    server: &ServerContext,
    client: &mut ClientState,
    parser: &mut RequestParser,
    rbuf: &mut BytesMut,
    out: &mut Vec<u8>,
    stream: &mut S,
) -> std::io::Result<Batch> {
    prefetch_batch(server, client, rbuf);
    let mut requests = 0;
    let close = loop {
        let limits = ParseLimits {
            max_bulk_len: server.config.proto_max_bulk_len.load(Ordering::Relaxed) as i64,
            unauthenticated: !client.authenticated,
        };
        match parser.parse(rbuf, limits) {
            Ok(Parsed::Incomplete) => break false,
            Ok(Parsed::Ignored { consumed }) => rbuf.advance(consumed),
            Ok(Parsed::Request { consumed, source }) => {
                requests += 1;
                let data: &[u8] = match source {
                    ArgSource::ReadBuffer => &rbuf[..],
                    ArgSource::InlineBuffer => &parser.inline_buf,
                };
                let args = Args::new(data, &parser.spans);
                if server.pause.is_active() {
                    let writes = cmd::may_write(server, client, args);
                    if server.pause.holds(writes) {
                        // What is answered already goes out; this command waits its turn.
                        let shared = Arc::clone(&client.shared);
                        if !out.is_empty() && write_out(server, stream, out, &shared).await? {
                            break true;
                        }
                        tokio::select! {
                            _ = server.pause.wait(writes) => {}
                            _ = shared.killed() => break true,
                        }
                    }
                }
                let mark = out.len();
                cmd::dispatch(server, client, args, out);
                rbuf.advance(consumed);
                // CLIENT REPLY OFF / SKIP: the command ran, its reply is dropped.
                let modes = client.replies;
                let suppressed = modes.off || modes.skip;
                if suppressed {
                    out.truncate(mark);
                }
                if modes.skip || modes.skip_next {
                    client.replies.skip = modes.skip_next;
                    client.replies.skip_next = false;
                }
                if client.close_now {
                    out.clear();
                    break true;
                }
                if client.close_after_reply {
                    break true;
                }
                if let Some((n, timeout)) = client.wait.take() {
                    // WAIT: the replies before it go out first, then it blocks this client.
                    let shared = Arc::clone(&client.shared);
                    if !out.is_empty() && write_out(server, stream, out, &shared).await? {
                        break true;
                    }
                    let mut shutdown = server.shutdown.subscribe();
                    shared.set_blocked(true);
                    let count = tokio::select! {
                        c = server.replication.wait_for_acks(n, client.woff, timeout) => Ok(c),
                        error = shared.unblocked() => Err(error),
                        _ = shared.killed() => break true,
                        _ = shutdown.wait() => break true,
                    };
                    shared.set_blocked(false);
                    // Under CLIENT REPLY OFF / SKIP, WAIT's own answer is dropped too.
                    let mut dropped = Vec::new();
                    let target = if suppressed { &mut dropped } else { &mut *out };
                    let mut r = Reply::new(target, client.protocol);
                    match count {
                        Ok(c) => r.int(c as i64),
                        // CLIENT UNBLOCK: TIMEOUT answers what WAIT has now, ERROR an error.
                        Err(false) => r.int(server.replication.acked_count(client.woff) as i64),
                        Err(true) => r.error(&crate::error::CmdError::other(
                            "UNBLOCKED client unblocked via CLIENT UNBLOCK",
                        )),
                    }
                }
                if client.become_replica {
                    // The rest of the input belongs to the replication link.
                    break false;
                }
                if out.len() >= FLUSH_THRESHOLD_BYTES {
                    wait_for_aof(server, client).await;
                    // CLIENT KILL must reach a client that stopped reading mid-batch too.
                    let shared = Arc::clone(&client.shared);
                    if write_out(server, stream, out, &shared).await? {
                        break true;
                    }
                }
            }
            Err(e) => {
                debug!(error = %e, "protocol error; closing");
                server.stats.errors.note(&e.reply_text());
                Reply::new(out, client.protocol).protocol_error(&e);
                break true;
            }
        }
    };
    Ok(Batch { requests, close })
}

//! The replica side: the link to our master (`REPLICAOF host port`, or `replicaof` in the
//! configuration).
//!
//! One task per configured master. It connects, runs Redis's handshake (`PING`, `AUTH`
//! with `masteruser`/`masterauth`, `REPLCONF listening-port`, `REPLCONF capa eof capa
//! psync2`, `PSYNC <replid> <offset+1>`), then either continues (`+CONTINUE`) or takes a
//! full sync: the snapshot (`$<len>` or diskless `$EOF:<mark>`) is received into a file
//! in `dir`, checked whole, and only then replaces the dataset, so a master whose data
//! hashd cannot hold (other types) leaves the link down and our data as it was. Then it
//! applies the stream as the master's client: commands run at time 0 (nothing counts as
//! expired: the master's `HDEL`s decide), bypassing `replica-read-only`; `REPLCONF GETACK`
//! is answered, and `REPLCONF ACK <offset>` is sent every second. What was applied is kept
//! in our backlog and passed on to our own replicas byte for byte.
//!
//! The offset moves only between transactions, as in Redis: after a cut in the middle of a
//! `MULTI`, the master resends it whole.
//!
//! With `tls-replication yes` the link is a TLS connection (`tls.rs`'s client
//! configuration, chosen when each connection starts): the master's certificate must chain
//! to our CA; its name is not checked, as in Redis.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::{LinkControl, LinkStatus};
use crate::client::{ClientKind, ClientShared, ClientState};
use crate::cmd::Args;
use crate::context::ServerContext;
use crate::keyspace::LockPlan;
use crate::persist::aof::encode_command;
use crate::persist::rdb::{LoadOptions, RdbReader};
use crate::protocol::{ArgSource, ParseLimits, Parsed, RequestParser};

/// Waits for REPLICAOF requests and runs one link task per master asked for.
pub async fn supervise(server: Arc<ServerContext>) {
    loop {
        if let Some((control, host, port)) = server.replication.take_link_request() {
            tokio::spawn(run(Arc::clone(&server), control, host, port));
            continue;
        }
        // A request made meanwhile left a permit: this returns at once then.
        server.replication.link_requested().await;
    }
}

type Result<T> = std::result::Result<T, String>;

fn io_err(e: std::io::Error) -> String {
    e.to_string()
}

/// The link's life: connect, sync, stream; on any failure wait a second and start over,
/// until REPLICAOF points elsewhere or the server shuts down.
async fn run(server: Arc<ServerContext>, control: Arc<LinkControl>, host: String, port: u16) {
    let mut shutdown = server.shutdown.subscribe();
    info!("Connecting to MASTER {host}:{port}");
    loop {
        if control.is_stopped() {
            return;
        }
        let r = tokio::select! {
            r = session(&server, &control, &host, port) => r,
            _ = control.stopped() => return,
            _ = shutdown.wait() => return,
        };
        let now = server.clock.now_ms();
        server.replication.update_link(&control, |m| {
            if m.status == LinkStatus::Connected || m.status == LinkStatus::Sync {
                m.down_since_ms = now;
            }
            m.status = LinkStatus::Connect;
        });
        if let Err(e) = r {
            warn!("Master {host}:{port}: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = control.stopped() => return,
            _ = shutdown.wait() => return,
        }
    }
}

/// The connection to the master: a plain socket or a TLS stream.
trait MasterStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> MasterStream for S {}

/// Bytes read from the master, consumed from the front.
struct Link {
    stream: Box<dyn MasterStream>,
    buf: BytesMut,
    peer: Option<std::net::SocketAddr>,
    local: Option<std::net::SocketAddr>,
}

/// Writes all of `bytes` and flushes (rustls may hold the last records of a write).
async fn send(stream: &mut Box<dyn MasterStream>, bytes: &[u8]) -> Result<()> {
    stream.write_all(bytes).await.map_err(io_err)?;
    stream.flush().await.map_err(io_err)
}

/// Connects to the master (within `timeout`), over TLS with `tls-replication yes`.
async fn connect(server: &ServerContext, host: &str, port: u16, timeout: Duration) -> Result<Link> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| "timeout connecting to the master".to_string())?
        .map_err(io_err)?;
    let _ = tcp.set_nodelay(true);
    let (peer, local) = (tcp.peer_addr().ok(), tcp.local_addr().ok());
    let stream: Box<dyn MasterStream> = match server.tls.connector() {
        None => Box::new(tcp),
        Some(connector) => {
            let name = crate::tls::master_name(host, peer)
                .ok_or_else(|| format!("no TLS server name for the master '{host}'"))?;
            let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| "timeout during the TLS handshake with the master".to_string())?
                .map_err(|e| format!("TLS handshake with the master failed: {e}"))?;
            Box::new(tls)
        }
    };
    Ok(Link {
        stream,
        buf: BytesMut::with_capacity(64 * 1024),
        peer,
        local,
    })
}

impl Link {
    async fn fill(&mut self) -> Result<()> {
        self.buf.reserve(64 * 1024);
        let n = self.stream.read_buf(&mut self.buf).await.map_err(io_err)?;
        if n == 0 {
            return Err("the master closed the connection".into());
        }
        Ok(())
    }

    /// One `\r\n`- (or `\n`-) terminated line, without its ending.
    async fn line(&mut self) -> Result<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line = self.buf.split_to(i + 1);
                line.truncate(i);
                if line.last() == Some(&b'\r') {
                    line.truncate(i - 1);
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > 64 * 1024 {
                return Err("the master sent a line that is too long".into());
            }
            self.fill().await?;
        }
    }

    async fn command(&mut self, argv: &[&[u8]]) -> Result<String> {
        let mut out = Vec::new();
        encode_command(&mut out, argv);
        send(&mut self.stream, &out).await?;
        self.line().await
    }
}

async fn session(
    server: &Arc<ServerContext>,
    control: &Arc<LinkControl>,
    host: &str,
    port: u16,
) -> Result<()> {
    let repl = &server.replication;
    // Our own snapshot (with the history to continue from) loads first.
    while server.rdb.loading.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    repl.update_link(control, |m| m.status = LinkStatus::Connecting);
    let timeout = Duration::from_secs(repl.settings.timeout_s.load(Ordering::Relaxed).max(1));
    let mut link = connect(server, host, port, timeout).await?;
    info!("MASTER <-> REPLICA sync started");
    let handshake = tokio::time::timeout(timeout, handshake(server, &mut link));
    let reply = handshake
        .await
        .map_err(|_| "timeout during the handshake".to_string())??;
    let mut words = reply.split_whitespace();
    match words.next() {
        Some("+FULLRESYNC") => {
            let (id, offset) = (
                words.next(),
                words.next().and_then(|o| o.parse::<u64>().ok()),
            );
            let (Some(id), Some(offset)) = (id, offset) else {
                return Err(format!(
                    "Master replied with wrong +FULLRESYNC syntax: {reply}"
                ));
            };
            info!("Full resync from master: {id}:{offset}");
            full_sync(server, control, &mut link, id, offset).await?;
        }
        Some("+CONTINUE") => {
            if let Some(id) = words.next() {
                repl.continue_with_id(id);
            }
            info!("Successful partial resynchronization with master.");
            info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        }
        _ => return Err(format!("unexpected reply to PSYNC: {reply}")),
    }
    apply_stream(server, control, link).await
}

/// PING, AUTH, REPLCONF, PSYNC; returns the PSYNC reply line.
async fn handshake(server: &ServerContext, link: &mut Link) -> Result<String> {
    let pong = link.command(&[b"PING"]).await?;
    // An error that says we must authenticate still proves the master is there.
    let accepted = pong.starts_with('+')
        || pong.starts_with("-NOAUTH")
        || pong.starts_with("-NOPERM")
        || pong.starts_with("-ERR operation not permitted");
    if !accepted {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    let settings = &server.replication.settings;
    let pass = settings.masterauth.read().clone();
    if let Some(pass) = pass {
        let user = settings.masteruser.read().clone();
        let reply = match &user {
            Some(u) => {
                link.command(&[b"AUTH", u.as_bytes(), pass.as_bytes()])
                    .await?
            }
            None => link.command(&[b"AUTH", pass.as_bytes()]).await?,
        };
        if !reply.starts_with('+') {
            return Err(format!("Unable to AUTH to MASTER: {reply}"));
        }
    }
    let port = server.port.load(Ordering::Relaxed).to_string();
    let reply = link
        .command(&[b"REPLCONF", b"listening-port", port.as_bytes()])
        .await?;
    if reply.starts_with('-') {
        info!("(Non critical) Master does not understand REPLCONF listening-port: {reply}");
    }
    let reply = link
        .command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        .await?;
    if reply.starts_with('-') {
        info!("(Non critical) Master does not understand REPLCONF capa: {reply}");
    }
    let (id, offset) = server.replication.psync_request();
    let offset = offset.to_string();
    info!("Trying a partial resynchronization (request {id}:{offset}).");
    let mut out = Vec::new();
    encode_command(&mut out, &[b"PSYNC", id.as_bytes(), offset.as_bytes()]);
    send(&mut link.stream, &out).await?;
    loop {
        // The master may send newlines while it prepares.
        let line = link.line().await?;
        if !line.is_empty() {
            return Ok(line);
        }
    }
}

/// Receives the master's snapshot into a file, checks it, and replaces the dataset.
async fn full_sync(
    server: &Arc<ServerContext>,
    control: &Arc<LinkControl>,
    link: &mut Link,
    replid: &str,
    offset: u64,
) -> Result<()> {
    let repl = &server.replication;
    let now = server.clock.now_ms();
    repl.update_link(control, |m| {
        m.status = LinkStatus::Sync;
        m.sync_bytes = (-1, 0);
        m.sync_started_ms = now;
        m.last_io_ms = now;
    });
    let header = loop {
        let line = link.line().await?;
        if !line.is_empty() {
            break line;
        }
        let now = server.clock.now_ms();
        repl.update_link(control, |m| m.last_io_ms = now);
    };
    let Some(size) = header.strip_prefix('$') else {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$': {header}"
        ));
    };
    let dir = server.config.dir.read().clone();
    let tmp = dir.join(format!(
        "temp-{}-{}.rdb",
        server.clock.now_ms() / 1000,
        std::process::id()
    ));
    let received = receive_snapshot(server, control, link, size, &tmp).await;
    if let Err(e) = received {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    info!("MASTER <-> REPLICA sync: Flushing old data");
    let srv = Arc::clone(server);
    let id = replid.to_string();
    let link = Arc::clone(control);
    let loaded = tokio::task::spawn_blocking(move || load_snapshot(&srv, &link, &tmp, &id, offset))
        .await
        .map_err(|e| e.to_string())?;
    loaded?;
    info!("MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

/// Reads `$<len>` bytes, or up to the `$EOF:<mark>` mark, into `path`.
async fn receive_snapshot(
    server: &ServerContext,
    control: &Arc<LinkControl>,
    link: &mut Link,
    size: &str,
    path: &std::path::Path,
) -> Result<()> {
    use std::io::Write;
    let mut file =
        std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path).map_err(io_err)?);
    let repl = &server.replication;
    let progress = |read: u64, total: i64| {
        let now = server.clock.now_ms();
        repl.update_link(control, |m| {
            m.sync_bytes = (total, read);
            m.last_io_ms = now;
        });
    };
    if let Some(mark) = size.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        if mark.len() != 40 {
            return Err("Bad $EOF mark from the master".into());
        }
        info!("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk");
        let mut read = 0u64;
        loop {
            // Everything but the last 40 bytes is snapshot for sure.
            if link.buf.len() > mark.len() {
                let n = link.buf.len() - mark.len();
                file.write_all(&link.buf[..n]).map_err(io_err)?;
                link.buf.advance(n);
                read += n as u64;
                progress(read, -1);
            }
            if link.buf.len() == mark.len() && link.buf[..] == mark[..] {
                link.buf.clear();
                break;
            }
            link.fill().await?;
        }
    } else {
        let total: u64 = size
            .parse()
            .map_err(|_| format!("Bad protocol from MASTER: ${size}"))?;
        info!("MASTER <-> REPLICA sync: receiving {total} bytes from master to disk");
        let mut left = total;
        loop {
            let n = (link.buf.len() as u64).min(left) as usize;
            file.write_all(&link.buf[..n]).map_err(io_err)?;
            link.buf.advance(n);
            left -= n as u64;
            progress(total - left, total as i64);
            if left == 0 {
                break;
            }
            link.fill().await?;
        }
    }
    let file = file.into_inner().map_err(|e| e.into_error().to_string())?;
    file.sync_all().map_err(io_err)
}

/// Checks the received snapshot whole, then — with every shard held — replaces the dataset
/// with it, takes the master's history and restarts the append-only file. The file becomes
/// our snapshot file, as Redis renames it over `dbfilename`.
fn load_snapshot(
    server: &ServerContext,
    link: &Arc<LinkControl>,
    tmp: &std::path::Path,
    replid: &str,
    offset: u64,
) -> Result<()> {
    let opts = || LoadOptions {
        // Keep what already expired: the master's HDEL / DEL will say when it goes.
        now_ms: None,
        skip_unsupported: server.config.startup.rdb_skip_unsupported_types,
        verify_checksum: true,
        relaxed_version: false,
        databases: server.keyspace.databases(),
    };
    let open = || -> Result<RdbReader<std::io::BufReader<std::fs::File>>> {
        let f = std::fs::File::open(tmp).map_err(io_err)?;
        RdbReader::new(std::io::BufReader::with_capacity(1 << 16, f), opts())
            .map_err(|e| e.to_string())
    };
    // First pass: nothing changes unless all of it can be loaded.
    let checked = (|| {
        let mut r = open()?;
        while r.next_key().map_err(|e| e.to_string())?.is_some() {}
        Ok::<_, String>(crate::persist::snapshot::stream_db_of(r.aux()))
    })();
    let stream_db = match checked {
        Ok(db) => db,
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            return Err(format!(
                "the master's snapshot cannot be loaded ({e}); hashd serves only hashes, so the \
             link stays down and the dataset is unchanged"
            ));
        }
    };
    let path = server.config.rdb_path();
    let source = if std::fs::rename(tmp, &path).is_ok() {
        path
    } else {
        tmp.to_path_buf()
    };
    server.rdb.loading.store(true, Ordering::Relaxed);
    let result = (|| {
        let mut locked = server.keyspace.lock(&LockPlan::All);
        // REPLICAOF may have pointed us elsewhere (or nowhere) while this was received:
        // then the data stays as it is.
        if !server.replication.is_current_link(link) {
            return Err("the link was stopped before its snapshot was loaded".into());
        }
        locked.clear_unrecorded();
        let f = std::fs::File::open(&source).map_err(io_err)?;
        let mut r = RdbReader::new(std::io::BufReader::with_capacity(1 << 16, f), opts())
            .map_err(|e| e.to_string())?;
        let mut keys = 0u64;
        while let Some(k) = r.next_key().map_err(|e| e.to_string())? {
            keys += 1;
            locked.load_key(
                k.db,
                &k.key,
                k.expire_ms,
                crate::persist::snapshot::fields_of(&k),
            );
        }
        server
            .replication
            .adopt_master_history(replid, offset, stream_db);
        info!("MASTER <-> REPLICA sync: Loading DB in memory ({keys} keys)");
        crate::persist::appendonly::restart_after_full_sync(server, &locked)
            .map_err(|e| format!("cannot restart the append-only file: {e}"))
    })();
    server.rdb.loading.store(false, Ordering::Relaxed);
    if source != server.config.rdb_path() {
        let _ = std::fs::remove_file(&source);
    }
    result
}

/// Applies the master's stream until the link breaks.
async fn apply_stream(
    server: &Arc<ServerContext>,
    control: &Arc<LinkControl>,
    mut link: Link,
) -> Result<()> {
    let repl = &server.replication;
    let now = server.clock.now_ms();
    repl.update_link(control, |m| {
        m.status = LinkStatus::Connected;
        m.last_io_ms = now;
    });
    let shared = Arc::new(ClientShared::new(
        server.clients.next_id(),
        link.peer,
        link.local,
        now,
    ));
    shared.set_kind(ClientKind::Master);
    server.clients.register(Arc::clone(&shared));
    let _registered = Registered(server, shared.id);
    let mut client = ClientState::new(Arc::clone(&shared), true);
    client.replaying = true;
    client.master_link = Some(Arc::clone(control));
    // A partial resync (or a restart) goes on in the database the stream had selected.
    client.select(repl.stream_db());
    let mut parser = RequestParser::new();
    let mut out = Vec::new();
    // Applied bytes not yet counted: the commands of an open transaction.
    let mut unapplied: Vec<u8> = Vec::new();
    let mut offset = repl.offset();
    let mut ack_every = tokio::time::interval(Duration::from_secs(1));
    let limits = ParseLimits {
        max_bulk_len: i64::MAX,
        unauthenticated: false,
    };
    let timeout_ms = || repl.settings.timeout_s.load(Ordering::Relaxed) * 1000;
    let mut last_io = std::time::Instant::now();
    loop {
        loop {
            let parsed = parser
                .parse(&link.buf, limits)
                .map_err(|e| format!("protocol error in the master's stream: {e}"))?;
            let (consumed, request) = match parsed {
                Parsed::Incomplete => break,
                Parsed::Ignored { consumed } => (consumed, None),
                Parsed::Request { consumed, source } => (consumed, Some(source)),
            };
            // This request's bytes join those not yet streamed on (an open transaction's).
            unapplied.extend_from_slice(&link.buf[..consumed]);
            let after = offset + unapplied.len() as u64;
            let mut dispatched = false;
            if let Some(source) = request {
                let data: &[u8] = match source {
                    ArgSource::ReadBuffer => &link.buf[..],
                    ArgSource::InlineBuffer => &parser.inline_buf,
                };
                let args = Args::new(data, &parser.spans);
                let name = args.get(0);
                if name.eq_ignore_ascii_case(b"replconf") {
                    if args.len() >= 2 && args.get(1).eq_ignore_ascii_case(b"getack") {
                        // The ACK counts what came before this request.
                        send_ack(&mut link.stream, offset).await?;
                    }
                } else if !name.eq_ignore_ascii_case(b"ping") {
                    // REPLICAOF may have pointed us elsewhere since the last read.
                    if control.is_stopped() {
                        return Ok(());
                    }
                    // The command feeds the stream on, and records where it stands, under
                    // its own locks (cmd::execute), unless it only queued in MULTI.
                    client.master_offset_after = Some(after);
                    client.master_pending = std::mem::take(&mut unapplied);
                    out.clear();
                    crate::cmd::dispatch(server, &mut client, args, &mut out);
                    unapplied = std::mem::take(&mut client.master_pending);
                    dispatched = true;
                    if out.starts_with(b"-ERR unknown command") {
                        return Err(format!(
                            "the master sent a command hashd does not serve ({}); \
                             hashd follows only masters whose data is hashes",
                            String::from_utf8_lossy(name)
                        ));
                    }
                    if out.starts_with(b"-") {
                        warn!(
                            reply = %String::from_utf8_lossy(&out).trim_end(),
                            "a command from the master failed"
                        );
                    }
                }
            }
            link.buf.advance(consumed);
            if dispatched && unapplied.is_empty() {
                // Streamed on by the command.
                offset = after;
            } else if client.multi.is_none() {
                // PING, GETACK, or a command refused before it ran: nothing changed.
                repl.feed_from_master(control, &unapplied);
                repl.note_applied(after, client.db);
                offset = after;
                unapplied.clear();
            }
        }
        tokio::select! {
            r = link.stream.read_buf(&mut link.buf) => {
                if r.map_err(io_err)? == 0 {
                    return Err("the master closed the connection".into());
                }
                last_io = std::time::Instant::now();
                let now = server.clock.now_ms();
                repl.update_link(control, |m| m.last_io_ms = now);
            }
            _ = ack_every.tick() => {
                send_ack(&mut link.stream, offset).await?;
                if last_io.elapsed().as_millis() as u64 > timeout_ms() {
                    return Err("Timeout connecting to the MASTER...".into());
                }
            }
            _ = shared.killed() => return Err("the link was killed (CLIENT KILL)".into()),
        }
        link.buf.reserve(16 * 1024);
    }
}

async fn send_ack(stream: &mut Box<dyn MasterStream>, offset: u64) -> Result<()> {
    let mut out = Vec::new();
    let off = offset.to_string();
    encode_command(&mut out, &[b"REPLCONF", b"ACK", off.as_bytes()]);
    send(stream, &out).await
}

/// Unregisters the master's client when the link ends.
struct Registered<'a>(&'a ServerContext, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.clients.unregister(self.1);
    }
}

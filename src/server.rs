//! The listener: accepts clients on every bound address, enforces `maxclients`, runs the
//! sweeper, and on shutdown stops accepting and waits for connections to finish their
//! in-flight commands.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::context::ServerContext;

/// How long shutdown waits for connections to finish before giving up on them.
const DRAIN_TIMEOUT_MS: u64 = 5_000;

/// Serves until shutdown is triggered (SHUTDOWN, SIGINT/SIGTERM via `main`), then drains.
pub async fn run(listeners: Vec<TcpListener>, server: Arc<ServerContext>) {
    let mut tasks = JoinSet::new();
    let sweeper = tokio::spawn(crate::sweeper::run(Arc::clone(&server)));
    // The snapshot loads while clients already connect (they get -LOADING meanwhile).
    let (loaded_tx, mut loaded_rx) = tokio::sync::oneshot::channel();
    crate::persist::snapshot::remove_stale_temp_files(&server);
    {
        // The append-only file's writer: idle until logging starts.
        let aof = Arc::clone(&server.aof);
        let srv = Arc::clone(&server);
        // Before the spawn: the loader's first control must wait for this thread.
        server.aof.set_writer_running(true);
        let spawned = std::thread::Builder::new()
            .name("hashd-aof".into())
            .spawn(move || aof.run_writer(move |why| srv.fail(why)));
        if let Err(e) = spawned {
            server.aof.set_writer_running(false);
            server.fail(format!("cannot start the append-only file writer: {e}"));
        }
    }
    // `replicaof` from the configuration: before the load, which may bring the history to
    // continue from (the link starts once the load is over).
    if let Ok(Some((host, port))) = server.config.startup.master_addr() {
        server.replication.become_replica_at_startup(&host, port);
    }
    // With the append-only file on, it alone is loaded (as in Redis: it is the newer).
    let appendonly = server.config.startup.appendonly;
    let mut loading = appendonly || server.config.rdb_path().exists();
    if loading {
        use std::sync::atomic::Ordering;
        // Set before the first client is accepted, so none runs a command on a partial
        // dataset.
        server.rdb.loading.store(true, Ordering::Relaxed);
        let srv = Arc::clone(&server);
        tokio::task::spawn_blocking(move || {
            let r = if appendonly {
                crate::persist::appendonly::load_and_open(&srv).map(|_| true)
            } else {
                crate::persist::snapshot::load(&srv).map_err(|e| e.to_string())
            };
            // A failure is recorded before `loading` clears, so no shutdown in between can
            // take the partial dataset for a complete one and save it.
            if let Err(e) = &r {
                error!("{e}");
                srv.fail(e.clone());
            }
            srv.rdb.loading.store(false, Ordering::Relaxed);
            let _ = loaded_tx.send(r);
        });
    }
    let saver = tokio::spawn(crate::persist::snapshot::run(Arc::clone(&server)));
    let replication = tokio::spawn(crate::replication::replica::supervise(Arc::clone(&server)));
    let pinger = tokio::spawn(crate::replication::ping_replicas(Arc::clone(&server)));
    let sampler = tokio::spawn(sample_instantaneous(Arc::clone(&server)));
    let migrations = server
        .cluster
        .enabled
        .then(|| tokio::spawn(crate::cluster::migrate::supervise(Arc::clone(&server))));
    let metrics_port = server.config.startup.metrics_port;
    if metrics_port > 0 {
        for addr in &server.config.startup.bind {
            let host = addr.trim_start_matches('-');
            match TcpListener::bind((host, metrics_port)).await {
                Ok(l) => {
                    info!(addr = %host, port = metrics_port, "Prometheus metrics on /metrics");
                    tokio::spawn(crate::metrics::serve(l, Arc::clone(&server)));
                }
                Err(e) => server.fail(format!(
                    "cannot listen for metrics on {host}:{metrics_port}: {e}"
                )),
            }
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(TcpStream, bool)>(64);
    let mut acceptors = JoinSet::new();
    let mut accepting = std::collections::HashMap::new();
    // tls-port: accepted like the others, with the handshake in the connection's task.
    let tls_named: Vec<(String, TcpListener)> = server
        .listening
        .take_tls_listeners()
        .into_iter()
        .map(|l| {
            let name = l
                .local_addr()
                .map_or_else(|_| String::new(), |a| format!("tls {a}"));
            (name, l)
        })
        .collect();
    let tls_serving: Vec<String> = tls_named
        .iter()
        .map(|(n, _)| n.trim_start_matches("tls ").to_string())
        .collect();
    spawn_acceptors(tls_named, true, &tx, &mut acceptors, &mut accepting);
    let named: Vec<(String, TcpListener)> = listeners
        .into_iter()
        .map(|l| {
            let name = l
                .local_addr()
                .map_or_else(|_| String::new(), |a| a.to_string());
            (name, l)
        })
        .collect();
    // CONFIG SET bind / port / tls-port hand new listeners over here (see listen.rs).
    let (replace_tx, mut replace_rx) = tokio::sync::mpsc::unbounded_channel();
    server.listening.install(
        replace_tx,
        named.iter().map(|(n, _)| n.clone()).collect(),
        tls_serving,
    );
    spawn_acceptors(named, false, &tx, &mut acceptors, &mut accepting);

    // Connections admitted and not yet closed: counted here, at accept time, so a burst
    // cannot get past `maxclients` before its connections register as clients.
    let admitted = Arc::new(AtomicUsize::new(0));
    // As Redis, "ready" once the dataset is loaded (clients connecting earlier get -LOADING).
    if !loading {
        ready();
    }
    let mut shutdown = server.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = &mut loaded_rx, if loading => {
                loading = false;
                match r {
                    Ok(Ok(_)) => ready(),
                    // Already recorded by the loader.
                    Ok(Err(_)) => {}
                    Err(_) => server.fail("the snapshot loader stopped unexpectedly".into()),
                }
            }
            Some((stream, tls)) = rx.recv() => accept(stream, tls, &server, &admitted, &mut tasks),
            Some(r) = replace_rx.recv() => {
                // Listeners not kept close with their tasks; accepted connections stay.
                // TLS listeners are named `tls <host:port>`; a replacement changes either
                // the plain ones or the TLS ones.
                let crate::listen::Replacement { keep, add, tls } = r;
                accepting.retain(|name: &String, task: &mut tokio::task::AbortHandle| {
                    let kept = match name.strip_prefix("tls ") {
                        Some(addr) => !tls || keep.iter().any(|k| k == addr),
                        None => tls || keep.contains(name),
                    };
                    if !kept {
                        task.abort();
                    }
                    kept
                });
                let add = if tls {
                    add.into_iter().map(|(n, l)| (format!("tls {n}"), l)).collect()
                } else {
                    add
                };
                spawn_acceptors(add, tls, &tx, &mut acceptors, &mut accepting);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    info!("shutting down: no longer accepting connections");
    saver.abort();
    final_save(&server).await;
    // What the log buffered reaches the disk before the process exits.
    let aof = Arc::clone(&server.aof);
    let _ = tokio::task::spawn_blocking(move || aof.shut_down()).await;
    acceptors.abort_all();
    // Nothing runs any more: a connection still writing to a client that stopped reading
    // would hold the exit up until the drain's timeout, so every one is told to close.
    // Replicas are not: they take what is queued for them first (replication::master).
    server.replication.wake_all();
    for c in server.clients.snapshot() {
        if c.kind() != crate::client::ClientKind::Replica {
            c.kill();
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_millis(DRAIN_TIMEOUT_MS), drain)
        .await
        .is_err()
    {
        warn!("connections did not close in time; dropping them");
    }
    sweeper.abort();
    replication.abort();
    pinger.abort();
    sampler.abort();
    if let Some(m) = migrations {
        m.abort();
    }
    warn!("hashd is now ready to exit, bye bye...");
}

/// INFO's `instantaneous_*`: the counters sampled every 100 ms, as Redis's `serverCron`.
async fn sample_instantaneous(server: Arc<ServerContext>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let st = &server.stats;
        let values = [
            st.total_commands_processed.load(Ordering::Relaxed),
            st.net_input_bytes.load(Ordering::Relaxed),
            st.net_output_bytes.load(Ordering::Relaxed),
        ];
        st.instantaneous.lock().sample(Instant::now(), values);
    }
}

/// How often a failing accept (EMFILE, ENFILE, ENOMEM) is logged.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// redis-server's line; testcontainers and Spring wait for `.*Ready to accept connections.*`.
fn ready() {
    info!("Ready to accept connections tcp");
}

/// The save Redis makes on the way out when save points are set (or SHUTDOWN SAVE asked for
/// one): after no command can run any more, so it holds every acknowledged write. Never
/// after a failed load: that would replace the file with a partial dataset.
async fn final_save(server: &Arc<ServerContext>) {
    use crate::context::FinalSave;
    use std::sync::atomic::Ordering;
    server.closing.store(true, Ordering::Relaxed);
    let wanted = match server.final_save() {
        FinalSave::Default => !server.config.save_points.read().is_empty(),
        FinalSave::Save => true,
        FinalSave::NoSave | FinalSave::Done => false,
    };
    server.rdb.kill_child();
    server.aof.rewrite.kill();
    if !wanted || server.failure().is_some() || server.rdb.loading.load(Ordering::Relaxed) {
        return;
    }
    info!("saving the final snapshot before exiting");
    let srv = Arc::clone(server);
    match tokio::task::spawn_blocking(move || crate::persist::snapshot::save(&srv)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            error!(error = %e, "error trying to save the DB before exiting");
            server.fail(format!("the final snapshot could not be saved: {e}"));
        }
        Err(e) => server.fail(format!("the final snapshot could not be saved: {e}")),
    }
}

/// Admits the connection, or — with `maxclients` connections open — writes Redis's error
/// and closes it. Runs only in the accept loop, so the check and the count are one step.
/// One accepting task per listener, handing connections to the main loop; each task's
/// handle is kept under the listener's `host:port`, so CONFIG SET can close it.
fn spawn_acceptors(
    listeners: Vec<(String, TcpListener)>,
    tls: bool,
    tx: &tokio::sync::mpsc::Sender<(TcpStream, bool)>,
    acceptors: &mut JoinSet<()>,
    accepting: &mut std::collections::HashMap<String, tokio::task::AbortHandle>,
) {
    for (name, listener) in listeners {
        let tx = tx.clone();
        let handle = acceptors.spawn(async move {
            let mut last_warning = None;
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if tx.send((stream, tls)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning, and say so at
                        // most once every 10 s rather than 20 times a second.
                        if last_warning.is_none_or(|t: Instant| t.elapsed() >= ACCEPT_WARNING_EVERY)
                        {
                            warn!(error = %e, "Accepting client connection failed");
                            last_warning = Some(Instant::now());
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        accepting.insert(name, handle);
    }
}

fn accept(
    stream: TcpStream,
    tls: bool,
    server: &Arc<ServerContext>,
    admitted: &Arc<AtomicUsize>,
    tasks: &mut JoinSet<()>,
) {
    server
        .stats
        .total_connections_received
        .fetch_add(1, Ordering::Relaxed);
    if protected_mode_refuses(server, &stream) {
        server
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        debug!("refusing a non-loopback connection: protected mode");
        let _ = stream.try_write(PROTECTED_MODE_DENIED.as_bytes());
        return;
    }
    let max = server.config.maxclients.load(Ordering::Relaxed) as usize;
    if admitted.load(Ordering::Acquire) >= max {
        server
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        debug!(max, "refusing connection: maxclients reached");
        // Best effort, as in Redis: a fresh socket's send buffer takes it without waiting,
        // and the stream closes when dropped here.
        let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
        return;
    }
    admitted.fetch_add(1, Ordering::AcqRel);
    set_keepalive(&stream, server.config.tcp_keepalive.load(Ordering::Relaxed));
    let slot = Admitted(Arc::clone(admitted));
    if tls {
        let server = Arc::clone(server);
        tasks.spawn(async move {
            let _slot = slot;
            serve_tls(stream, server).await
        });
        return;
    }
    let serve = crate::conn::serve(stream, Arc::clone(server), server.shutdown.subscribe());
    tasks.spawn(async move {
        let _slot = slot;
        serve.await
    });
}

/// How long a TLS client may take over its handshake before it is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A `tls-port` connection: the handshake (with the acceptor in force now, so CONFIG SET
/// of the certificates applies to new connections), then the usual serving.
async fn serve_tls(stream: TcpStream, server: Arc<ServerContext>) {
    use std::os::fd::AsRawFd;
    let Some(acceptor) = server.tls.acceptor() else {
        return;
    };
    let (peer, local) = (stream.peer_addr().ok(), stream.local_addr().ok());
    let fd = i64::from(stream.as_raw_fd());
    let _ = stream.set_nodelay(true);
    let shutdown = server.shutdown.subscribe();
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => crate::conn::serve_tls(tls, peer, local, fd, server, shutdown).await,
        Ok(Err(e)) => debug!(error = %e, "Error accepting a client connection: TLS handshake"),
        Err(_) => debug!("TLS handshake timed out"),
    }
}

/// Redis's reply to a client protected mode refuses (`acceptCommonHandler`).
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because \
protected mode is enabled and no password is set for the default user. In this mode \
connections are only accepted from the loopback interface. If you want to connect from \
external computers to Redis you may adopt one of the following solutions: 1) Just disable \
protected mode sending the command 'CONFIG SET protected-mode no' from the loopback \
interface by connecting to Redis from the same host the server is running, however MAKE \
SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make \
this change permanent. 2) Alternatively you can just disable the protected mode by editing \
the Redis configuration file, and setting the protected mode option to 'no', and then \
restarting the server. 3) If you started the server manually just for testing, restart it \
with the '--protected-mode no' option. 4) Set up an authentication password for the default \
user. NOTE: You only need to do one of the above things in order for the server to start \
accepting connections from the outside.\r\n";

/// Protected mode (`protected-mode yes`, the default, as in Redis): while the default user
/// has no password, only loopback clients are served.
fn protected_mode_refuses(server: &ServerContext, stream: &TcpStream) -> bool {
    if !server.config.protected_mode.load(Ordering::Relaxed) || !server.acl.default_user().nopass {
        return false;
    }
    stream.peer_addr().is_ok_and(|peer| !is_loopback(peer.ip()))
}

/// 127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6.
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `tcp-keepalive`: probes after `interval` idle seconds, then every third of it, three
/// times, as Redis's `anetKeepAlive`. Best effort.
fn set_keepalive(stream: &TcpStream, interval: u64) {
    use std::os::fd::AsRawFd;
    if interval == 0 {
        return;
    }
    let fd = stream.as_raw_fd();
    let set = |level: i32, name: i32, value: i32| {
        // SAFETY: setsockopt on a socket we own, with a valid pointer to an int.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            );
        }
    };
    let idle = interval.min(i32::MAX as u64) as i32;
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (idle / 3).max(1));
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

/// One admitted connection's place under `maxclients`, given back when its task ends
/// (however it ends: closed, killed, aborted at shutdown).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_addresses_include_mapped_ipv4() {
        for ip in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "192.0.2.2",
            "10.0.0.1",
            "::ffff:10.0.0.1",
            "fe80::1",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }
}

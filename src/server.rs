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
    let (tx, mut rx) = tokio::sync::mpsc::channel::<TcpStream>(64);
    let mut acceptors = JoinSet::new();
    for listener in listeners {
        let tx = tx.clone();
        acceptors.spawn(async move {
            let mut last_warning = None;
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if tx.send(stream).await.is_err() {
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
    }
    drop(tx);

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
            Some(stream) = rx.recv() => accept(stream, &server, &admitted, &mut tasks),
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
    warn!("hashd is now ready to exit, bye bye...");
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
fn accept(
    stream: TcpStream,
    server: &Arc<ServerContext>,
    admitted: &Arc<AtomicUsize>,
    tasks: &mut JoinSet<()>,
) {
    server
        .stats
        .total_connections_received
        .fetch_add(1, Ordering::Relaxed);
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
    let slot = Admitted(Arc::clone(admitted));
    let serve = crate::conn::serve(stream, Arc::clone(server), server.shutdown.subscribe());
    tasks.spawn(async move {
        let _slot = slot;
        serve.await
    });
}

/// One admitted connection's place under `maxclients`, given back when its task ends
/// (however it ends: closed, killed, aborted at shutdown).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

//! The listener: accepts clients on every bound address, enforces `maxclients`, runs the
//! sweeper, and on shutdown stops accepting and waits for connections to finish their
//! in-flight commands.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::context::ServerContext;

/// How long shutdown waits for connections to finish before giving up on them.
const DRAIN_TIMEOUT_MS: u64 = 5_000;

/// Serves until shutdown is triggered (SHUTDOWN, SIGINT/SIGTERM via `main`), then drains.
pub async fn run(listeners: Vec<TcpListener>, server: Arc<ServerContext>) {
    let mut tasks = JoinSet::new();
    let sweeper = tokio::spawn(crate::sweeper::run(Arc::clone(&server)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<TcpStream>(64);
    let mut acceptors = JoinSet::new();
    for listener in listeners {
        let tx = tx.clone();
        acceptors.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if tx.send(stream).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    drop(tx);

    let mut shutdown = server.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            Some(stream) = rx.recv() => accept(stream, &server, &mut tasks).await,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    info!("shutting down: no longer accepting connections");
    acceptors.abort_all();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_millis(DRAIN_TIMEOUT_MS), drain)
        .await
        .is_err()
    {
        warn!("connections did not close in time; dropping them");
    }
    sweeper.abort();
    info!("bye");
}

async fn accept(mut stream: TcpStream, server: &Arc<ServerContext>, tasks: &mut JoinSet<()>) {
    use std::sync::atomic::Ordering;
    server
        .stats
        .total_connections_received
        .fetch_add(1, Ordering::Relaxed);
    let max = server.config.maxclients.load(Ordering::Relaxed) as usize;
    if server.clients.len() >= max {
        server
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        warn!(max, "refusing connection: maxclients reached");
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    tasks.spawn(crate::conn::serve(
        stream,
        Arc::clone(server),
        server.shutdown.subscribe(),
    ));
}

//! One shutdown signal for the whole server. SIGINT, SIGTERM and the SHUTDOWN command all
//! trigger it; the listener, every connection and the sweeper watch it. SIGHUP is ignored.

use tokio::sync::watch;

/// The trigger side, held by the server context.
#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Shutdown { tx }
    }

    /// Starts a graceful shutdown. Safe to call from synchronous code and more than once.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// A receiver whose `wait` completes once shutdown is triggered.
    pub fn subscribe(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
        }
    }
}

/// The watching side.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
}

impl ShutdownSignal {
    /// Completes when shutdown has been triggered (at once if it already was).
    pub async fn wait(&mut self) {
        // An error means the sender is gone, which only happens as the server exits.
        let _ = self.rx.wait_for(|&v| v).await;
    }
}

/// Ignores SIGHUP for the whole process, as Redis does (`signal(SIGHUP, SIG_IGN)`): a
/// server started from a terminal keeps running when the terminal goes away. Forked
/// children (BGSAVE, rewrites) inherit it.
pub fn ignore_hangup() {
    #[cfg(unix)]
    // SAFETY: installing SIG_IGN for SIGHUP has no preconditions.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

/// Resolves on SIGINT or SIGTERM, with the signal's name.
pub async fn os_signal() -> &'static str {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return "SIGINT";
                }
            };
        tokio::select! {
            _ = ctrl_c => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        "SIGINT"
    }
}

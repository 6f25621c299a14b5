//! Freeing large values off the request path (Redis's lazyfree): UNLINK, FLUSHDB /
//! FLUSHALL ASYNC, and DEL / FLUSH* with `lazyfree-lazy-user-del` / `-user-flush`. The
//! key is gone at once; its memory is released by a background thread, so a DEL of a hash
//! of a million fields does not hold its shard (and every client behind it) while the
//! allocator walks them. Small values are freed inline, where handing them over would
//! cost more than freeing them (Redis's `LAZYFREE_THRESHOLD`: more than 64 elements).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

/// Values with more elements than this are freed in the background.
pub const LAZYFREE_THRESHOLD: usize = 64;

/// Counters (INFO `lazyfree_pending_objects`, `lazyfreed_objects`).
#[derive(Debug, Default)]
struct Counts {
    pending: AtomicUsize,
    freed: AtomicU64,
}

type Job = (Box<dyn Send>, usize);

/// The background freer, started at its first use.
#[derive(Debug, Default)]
pub struct LazyFree {
    counts: Arc<Counts>,
    sender: OnceLock<mpsc::Sender<Job>>,
}

impl LazyFree {
    /// Frees `value` (which counts as `objects` objects) on the background thread, or
    /// here if that thread could not be started.
    pub fn free<T: Send + 'static>(&self, value: T, objects: usize) {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let counts = Arc::clone(&self.counts);
            let spawned = std::thread::Builder::new()
                .name("hashd-lazyfree".into())
                .spawn(move || {
                    for (job, n) in rx {
                        drop(job);
                        counts.pending.fetch_sub(n, Ordering::Relaxed);
                        counts.freed.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            if spawned.is_err() {
                tracing::warn!("cannot start the lazyfree thread: freeing inline");
            }
            tx
        });
        self.counts.pending.fetch_add(objects, Ordering::Relaxed);
        if let Err(mpsc::SendError((job, n))) = sender.send((Box::new(value), objects)) {
            // The thread is not there: free here.
            drop(job);
            self.counts.pending.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Objects handed over and not freed yet.
    pub fn pending(&self) -> usize {
        self.counts.pending.load(Ordering::Relaxed)
    }

    /// Objects freed in the background so far.
    pub fn freed(&self) -> u64 {
        self.counts.freed.load(Ordering::Relaxed)
    }

    pub fn reset_stats(&self) {
        self.counts.freed.store(0, Ordering::Relaxed);
    }
}

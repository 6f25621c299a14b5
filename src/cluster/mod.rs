//! Cluster mode (`cluster-enabled yes`): the Redis Cluster protocol clients see — hash
//! slots, `-MOVED`, `-CROSSSLOT`, `-CLUSTERDOWN`, CLUSTER SLOTS/SHARDS/NODES/INFO — on a
//! topology pushed by a controller with Kvrocks's `CLUSTERX SETNODEID`/`SETNODES`, as
//! apache/kvrocks-controller does (spec formats.md §4). There is no gossip bus: nodes
//! learn the topology only from the controller (or the cluster configuration file at
//! start-up), and a node the topology names as a replica follows its master with the
//! replication machinery.
//!
//! The check of each command ([`Cluster::route`]) runs in the dispatcher after the ACL
//! check, as Redis's `getNodeByQuery`: the command's keys (EXEC: every queued command's)
//! must share a slot, which must be served by this node — or by its master, for a
//! READONLY client's read on a replica.

pub mod migrate;
pub mod slot;
pub mod topology;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::CmdError;
pub use slot::{key_slot, SLOTS};
pub use topology::{valid_node_id, Node, Topology};

/// Why a command is not served here, with Redis's reply for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    Moved {
        slot: u16,
        endpoint: String,
    },
    CrossSlot,
    /// The cluster is not healthy (slots unassigned with `cluster-require-full-coverage`).
    Down,
    /// No master serves the key's slot.
    Unbound,
    /// A write to a slot in its migration's hand-over.
    TryAgain,
}

/// What a connection told the cluster: READONLY, ASKING (for its next command), and
/// whether it imports slots (the source of a migration).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientFlags {
    pub readonly: bool,
    pub asking: bool,
    pub importer: bool,
}

impl Redirect {
    pub fn error(&self) -> CmdError {
        match self {
            Redirect::Moved { slot, endpoint } => {
                CmdError::other(format!("MOVED {slot} {endpoint}"))
            }
            Redirect::CrossSlot => {
                CmdError::other("CROSSSLOT Keys in request don't hash to the same slot")
            }
            Redirect::Down => CmdError::other("CLUSTERDOWN The cluster is down"),
            Redirect::Unbound => CmdError::other("CLUSTERDOWN Hash slot not served"),
            Redirect::TryAgain => {
                CmdError::other("TRYAGAIN Multiple keys request during rehashing of slot")
            }
        }
    }
}

/// What routing reads for every command, rebuilt at each change of the topology or the
/// node's id, and cached per thread (see [`Cluster::with_routing`]).
#[derive(Debug, Default)]
struct Routing {
    topology: Option<Arc<Topology>>,
    my_id: String,
    /// This node's index in the topology's nodes.
    me: Option<usize>,
    healthy: bool,
}

/// Distinguishes clusters (several servers in one test process) in the per-thread cache.
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// (cluster instance, generation, routing) for the clusters this thread routed for.
    static ROUTING: RefCell<Vec<(u64, u64, Arc<Routing>)>> = const { RefCell::new(Vec::new()) };
}

/// The node's cluster state.
#[derive(Debug)]
pub struct Cluster {
    pub enabled: bool,
    /// `cluster-config-file`, resolved against `dir` at start-up.
    file: Option<PathBuf>,
    pub require_full_coverage: AtomicBool,
    migrations: Arc<migrate::Migrations>,
    /// The topology and this node's id, with what routing derives from them.
    routing: RwLock<Arc<Routing>>,
    /// Bumped (under `routing`'s lock) at each rebuild; threads compare it with their
    /// cached copy, so routing a command costs a plain load, no shared write.
    generation: AtomicU64,
    instance: u64,
}

/// A fresh random node id: 40 hex characters.
pub fn random_node_id() -> String {
    let mut rng = fastrand::Rng::new();
    (0..40)
        .map(|_| char::from_digit(rng.u32(..16), 16).unwrap_or('0'))
        .collect()
}

impl Cluster {
    pub fn disabled() -> Self {
        Cluster {
            enabled: false,
            file: None,
            require_full_coverage: AtomicBool::new(true),
            migrations: Arc::default(),
            routing: RwLock::new(Arc::new(Routing {
                my_id: random_node_id(),
                ..Routing::default()
            })),
            generation: AtomicU64::new(0),
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Changes the topology and/or the id (`change` gets them) and rebuilds what routing
    /// derives from them, under the one lock.
    fn update(&self, change: impl FnOnce(&mut Option<Arc<Topology>>, &mut String)) {
        let mut guard = self.routing.write();
        let (mut topology, mut my_id) = (guard.topology.clone(), guard.my_id.clone());
        change(&mut topology, &mut my_id);
        let healthy = topology.as_ref().is_some_and(|t| {
            t.assigned_slots() == SLOTS || !self.require_full_coverage.load(Ordering::Relaxed)
        });
        let me = topology
            .as_ref()
            .and_then(|t| t.nodes.iter().position(|n| n.id == my_id));
        *guard = Arc::new(Routing {
            topology,
            my_id,
            me,
            healthy,
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs `f` on this thread's copy of the routing state, refreshed if it changed.
    fn with_routing<R>(&self, f: impl FnOnce(&Routing) -> R) -> R {
        let generation = self.generation.load(Ordering::Acquire);
        ROUTING.with(|cell| {
            let mut cache = cell.borrow_mut();
            let at = cache.iter().position(|e| e.0 == self.instance);
            match at {
                Some(i) if cache[i].1 == generation => f(&cache[i].2),
                _ => {
                    let (fresh, g) = {
                        let guard = self.routing.read();
                        (Arc::clone(&guard), self.generation.load(Ordering::Acquire))
                    };
                    match at {
                        Some(i) => cache[i] = (self.instance, g, Arc::clone(&fresh)),
                        None => cache.push((self.instance, g, Arc::clone(&fresh))),
                    }
                    f(&fresh)
                }
            }
        })
    }

    pub fn migrations(&self) -> Arc<migrate::Migrations> {
        Arc::clone(&self.migrations)
    }

    /// A migration could change where a slot is served (one load when none is).
    pub fn migrations_active(&self) -> bool {
        self.migrations.active()
    }

    /// From the configuration: the configuration file's topology and id when it exists
    /// (a bad file was refused at start-up; here it is only skipped).
    pub fn from_config(
        config: &crate::config::Config,
        migrations: Arc<migrate::Migrations>,
    ) -> Self {
        let mut c = Cluster::disabled();
        c.migrations = migrations;
        c.enabled = config.cluster_enabled;
        c.require_full_coverage
            .store(config.cluster_require_full_coverage, Ordering::Relaxed);
        if !c.enabled {
            return c;
        }
        let file = std::path::Path::new(&config.dir).join(&config.cluster_config_file);
        if let Ok((topology, id)) = load_file(&file) {
            c.update(|t, my_id| {
                if let Some(id) = id {
                    *my_id = id;
                }
                *t = topology.map(Arc::new);
            });
        }
        c.file = Some(file);
        c
    }

    pub fn my_id(&self) -> String {
        self.routing.read().my_id.clone()
    }

    pub fn topology(&self) -> Option<Arc<Topology>> {
        self.routing.read().topology.clone()
    }

    /// CLUSTERX SETNODEID.
    pub fn set_my_id(&self, id: &str) -> std::io::Result<()> {
        self.update(|_, my_id| *my_id = id.to_ascii_lowercase());
        self.save()
    }

    /// Installs a topology (CLUSTERX SETNODES / SETSLOT) and saves it.
    pub fn set_topology(&self, t: Option<Topology>) -> std::io::Result<()> {
        self.update(|topology, _| *topology = t.map(Arc::new));
        self.migrations.topology_changed();
        self.save()
    }

    /// CONFIG SET cluster-require-full-coverage.
    pub fn set_require_full_coverage(&self, on: bool) {
        self.require_full_coverage.store(on, Ordering::Relaxed);
        self.update(|_, _| {});
    }

    /// The topology version (CLUSTERX VERSION; -1 before any).
    pub fn version(&self) -> i64 {
        self.topology().map_or(-1, |t| t.version as i64)
    }

    /// Healthy: a topology, and every slot served unless `cluster-require-full-coverage
    /// no` (CLUSTER INFO `cluster_state:ok`).
    pub fn healthy(&self) -> bool {
        self.routing.read().healthy
    }

    /// Writes the configuration file (a temporary file renamed over it), if there is one.
    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let my_id = self.my_id();
        let text = match self.topology() {
            Some(t) => t.file_text(&my_id),
            None => format!(
                "{my_id} :0@0 myself,master - 0 0 0 connected\nvars currentEpoch 0 \
                 lastVoteEpoch 0\n"
            ),
        };
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let result = (|| {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Where the command with these keys is served (Redis's `getNodeByQuery`): here, or
    /// the redirect. `write`: the command (or transaction) writes; `readonly_client`:
    /// READONLY was sent on this connection.
    pub fn route<'a>(
        &self,
        mut keys: impl Iterator<Item = &'a [u8]>,
        write: bool,
        client: ClientFlags,
    ) -> Result<(), Redirect> {
        let Some(first) = keys.next() else {
            return Ok(());
        };
        let slot = key_slot(first);
        // A migration's overrides, until the controller's next topology.
        let overridden = if self.migrations.active() {
            match self.migrations.route(slot, write) {
                migrate::Override::Importing if !(client.asking || client.importer) => {
                    migrate::Override::None
                }
                o => o,
            }
        } else {
            migrate::Override::None
        };
        self.with_routing(|r| {
            let owner_index = r.topology.as_ref().and_then(|t| t.owner_index(slot));
            // The common case first: a served slot of this node's, one key.
            if owner_index.is_some() && owner_index == r.me && r.healthy && !overridden.is_some() {
                if keys.all(|k| k == first || key_slot(k) == slot) {
                    return Ok(());
                }
                return Err(Redirect::CrossSlot);
            }
            let owner = r.topology.as_ref().and_then(|t| t.owner(slot));
            // Redis's order: the first key's slot must be served before the others count.
            if owner.is_none() && matches!(overridden, migrate::Override::None) {
                return Err(Redirect::Unbound);
            }
            for k in keys {
                if k != first && key_slot(k) != slot {
                    return Err(Redirect::CrossSlot);
                }
            }
            match overridden {
                migrate::Override::TryAgain => return Err(Redirect::TryAgain),
                migrate::Override::Moved(endpoint) => {
                    return Err(Redirect::Moved { slot, endpoint })
                }
                migrate::Override::ServedHere | migrate::Override::Importing => return Ok(()),
                migrate::Override::None => {}
            }
            let Some(owner) = owner else {
                return Err(Redirect::Unbound);
            };
            if !r.healthy {
                return Err(Redirect::Down);
            }
            if owner_index == r.me {
                return Ok(());
            }
            if client.readonly && !write {
                let me = r.topology.as_ref().and_then(|t| t.node(&r.my_id));
                if me.is_some_and(|m| m.master_id.as_deref() == Some(owner.id.as_str())) {
                    return Ok(());
                }
            }
            Err(Redirect::Moved {
                slot,
                endpoint: owner.endpoint(),
            })
        })
    }
}

/// Reads a cluster configuration file: its topology (none before the first one was set)
/// and this node's id (none without a file).
pub fn load_file(path: &std::path::Path) -> Result<(Option<Topology>, Option<String>), String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            // A file written before any topology holds only this node's line.
            let has_nodes = text
                .lines()
                .any(|l| !l.starts_with("vars") && !l.contains(" :0@0 "));
            if !has_nodes {
                let id = text
                    .lines()
                    .find(|l| l.contains("myself"))
                    .and_then(|l| l.split_whitespace().next())
                    .map(str::to_string);
                return Ok((None, id));
            }
            Topology::parse_file(&text)
                .map(|(t, id)| (Some(t), id))
                .map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, None)),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

//! CLUSTER INFO | MYID | MYSHARDID | SLOTS | SHARDS | NODES | REPLICAS | SLAVES | KEYSLOT |
//! COUNTKEYSINSLOT | GETKEYSINSLOT | LINKS | COUNT-FAILURE-REPORTS | SAVECONFIG | RESET |
//! HELP, READONLY, READWRITE, ASKING, and the controller's CLUSTERX SETNODEID | SETNODES |
//! SETSLOT | VERSION (Kvrocks's spelling, as apache/kvrocks-controller sends them).
//!
//! Every reply is built from the one topology `crate::cluster` holds. The gossip-bus
//! administration (MEET, ADDSLOTS, SETSLOT, FAILOVER…) is refused with a reason: a hashd
//! cluster's topology comes from its controller. Without `cluster-enabled yes` every
//! CLUSTER subcommand answers Redis's "cluster support disabled".

use std::sync::atomic::Ordering;

use super::{flags, parse, Args, Command, Ctx};
use crate::cluster::{key_slot, valid_node_id, Node, Topology, SLOTS};
use crate::error::CmdError;
use crate::protocol::{parse_i64, Reply};

const DISABLED: &str = "ERR This instance has cluster support disabled";

const INFO: u32 = flags::STALE;
const ADMIN: u32 = flags::ADMIN | flags::STALE;
const GOSSIP: u32 = flags::ADMIN | flags::STALE | flags::NO_ASYNC_LOADING;

/// A CLUSTER subcommand with Redis 7.4.1's documentation (COMMAND DOCS answers with it).
const fn sub(
    name: &'static str,
    arity: i32,
    handler: super::Handler,
    f: u32,
    (since, summary, complexity): (&'static str, &'static str, &'static str),
) -> Command {
    Command::new(name, arity, handler)
        .flags(f)
        .doc("cluster", since, summary, complexity, "")
}

const SUBCOMMANDS: &[Command] = &[
    sub(
        "cluster|info",
        2, info, INFO,
        ("3.0.0", "Returns information about the state of a node.", "O(1)"),
    ),
    sub(
        "cluster|myid",
        2, myid, INFO,
        ("3.0.0", "Returns the ID of a node.", "O(1)"),
    ),
    sub(
        "cluster|myshardid",
        2, myshardid, INFO,
        ("7.2.0", "Returns the shard ID of a node.", "O(1)"),
    ),
    sub(
        "cluster|slots",
        2, slots, INFO | flags::LOADING,
        ("3.0.0", "Returns the mapping of cluster slots to nodes.", "O(N) where N is the total number of Cluster nodes"),
    ),
    sub(
        "cluster|shards",
        2, shards, INFO | flags::LOADING,
        ("7.0.0", "Returns the mapping of cluster slots to shards.", "O(N) where N is the total number of cluster nodes"),
    ),
    sub(
        "cluster|nodes",
        2, nodes, INFO,
        ("3.0.0", "Returns the cluster configuration for a node.", "O(N) where N is the total number of Cluster nodes"),
    ),
    sub(
        "cluster|replicas",
        3, replicas, ADMIN,
        ("5.0.0", "Lists the replica nodes of a master node.", "O(N) where N is the number of replicas."),
    ),
    sub(
        "cluster|slaves",
        3, replicas, ADMIN,
        ("3.0.0", "Lists the replica nodes of a master node.", "O(N) where N is the number of replicas."),
    ),
    sub(
        "cluster|keyslot",
        3, keyslot, INFO,
        ("3.0.0", "Returns the hash slot for a key.", "O(N) where N is the number of bytes in the key"),
    ),
    sub(
        "cluster|countkeysinslot",
        3, countkeysinslot, INFO | flags::LOCK_DB,
        ("3.0.0", "Returns the number of keys in a hash slot.", "O(1)"),
    ),
    sub(
        "cluster|getkeysinslot",
        4, getkeysinslot, INFO | flags::LOCK_DB,
        ("3.0.0", "Returns the key names in a hash slot.", "O(N) where N is the number of requested keys"),
    ),
    sub(
        "cluster|links",
        2, links, INFO,
        ("7.0.0", "Returns a list of all TCP links to and from peer nodes.", "O(N) where N is the total number of Cluster nodes"),
    ),
    sub(
        "cluster|count-failure-reports",
        3, count_failure_reports, ADMIN,
        ("3.0.0", "Returns the number of active failure reports active for a node.", "O(N) where N is the number of failure reports"),
    ),
    sub(
        "cluster|saveconfig",
        2, saveconfig, GOSSIP,
        ("3.0.0", "Forces a node to save the cluster configuration to disk.", "O(1)"),
    ),
    sub(
        "cluster|reset",
        -2, reset, ADMIN | flags::NOSCRIPT | flags::LOCK_DB,
        ("3.0.0", "Resets a node.", "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect."),
    ),
    sub(
        "cluster|help",
        2, help, flags::LOADING | flags::STALE,
        ("5.0.0", "Returns helpful text about the different subcommands.", "O(1)"),
    ),
    sub(
        "cluster|addslots",
        -3, gossip_only, GOSSIP,
        ("3.0.0", "Assigns new hash slots to a node.", "O(N) where N is the total number of hash slot arguments"),
    ),
    sub(
        "cluster|addslotsrange",
        -4, gossip_only, GOSSIP,
        ("7.0.0", "Assigns new hash slot ranges to a node.", "O(N) where N is the total number of the slots between the start slot and end slot arguments."),
    ),
    sub(
        "cluster|delslots",
        -3, gossip_only, GOSSIP,
        ("3.0.0", "Sets hash slots as unbound for a node.", "O(N) where N is the total number of hash slot arguments"),
    ),
    sub(
        "cluster|delslotsrange",
        -4, gossip_only, GOSSIP,
        ("7.0.0", "Sets hash slot ranges as unbound for a node.", "O(N) where N is the total number of the slots between the start slot and end slot arguments."),
    ),
    sub(
        "cluster|flushslots",
        2, gossip_only, GOSSIP,
        ("3.0.0", "Deletes all slots information from a node.", "O(1)"),
    ),
    sub(
        "cluster|meet",
        -4, gossip_only, GOSSIP,
        ("3.0.0", "Forces a node to handshake with another node.", "O(1)"),
    ),
    sub(
        "cluster|forget",
        3, gossip_only, GOSSIP,
        ("3.0.0", "Removes a node from the nodes table.", "O(1)"),
    ),
    sub(
        "cluster|replicate",
        3, gossip_only, GOSSIP,
        ("3.0.0", "Configure a node as replica of a master node.", "O(1)"),
    ),
    sub(
        "cluster|setslot",
        -4, gossip_only, GOSSIP,
        ("3.0.0", "Binds a hash slot to a node.", "O(1)"),
    ),
    sub(
        "cluster|failover",
        -2, gossip_only, GOSSIP,
        ("3.0.0", "Forces a replica to perform a manual failover of its master.", "O(1)"),
    ),
    sub(
        "cluster|bumpepoch",
        2, gossip_only, GOSSIP,
        ("3.0.0", "Advances the cluster config epoch.", "O(1)"),
    ),
    sub(
        "cluster|set-config-epoch",
        3, gossip_only, GOSSIP,
        ("3.0.0", "Sets the configuration epoch for a new node.", "O(1)"),
    ),
];

const X_ADMIN: u32 = flags::ADMIN | flags::NOSCRIPT | flags::STALE | flags::LOADING;

const X_SUBCOMMANDS: &[Command] = &[
    Command::new("clusterx|setnodeid", 3, setnodeid)
        .flags(X_ADMIN)
        .doc(
            "cluster",
            "hashd",
            "Sets this node's 40-character id (Kvrocks's controller contract).",
            "O(1)",
            "node-id",
        ),
    Command::new("clusterx|setnodes", -4, setnodes)
        .flags(X_ADMIN)
        .doc(
            "cluster",
            "hashd",
            "Installs the cluster topology: one line per node, `<id> <ip> <port> <master|slave> \
             <master-id|-> [slot ranges]`, if its version is newer (or with FORCE).",
            "O(N) where N is the number of nodes and slot ranges",
            "topology version [FORCE]",
        ),
    Command::new("clusterx|setslot", 6, setslot)
        .flags(X_ADMIN)
        .doc(
            "cluster",
            "hashd",
            "Assigns one slot to a master, as the next topology version.",
            "O(N) where N is the number of nodes",
            "slot NODE node-id version",
        ),
    Command::new("clusterx|migrate", 4, migrate)
        .flags(X_ADMIN | flags::LOCK_DB)
        .doc(
            "cluster",
            "hashd",
            "Copies a slot's keys to another master, then the writes made meanwhile, and hands \
             the slot over (CLUSTER INFO migrating_state tells how it went).",
            "O(N) where N is the number of keys of the node",
            "slot|start-end target-node-id",
        ),
    Command::new("clusterx|import", 4, import)
        .flags(X_ADMIN | flags::LOCK_DB)
        .doc(
            "cluster",
            "hashd",
            "Sent by a migration's source to its target: 0 the slot's import starts, 1 it \
             succeeded (the slot is served here), 2 it failed (what came is dropped).",
            "O(N) where N is the number of keys of the node (state 2)",
            "slot state",
        ),
    Command::new("clusterx|dropslot", 3, dropslot)
        .flags(X_ADMIN | flags::WRITE | flags::LOCK_DB)
        .doc(
            "cluster",
            "hashd",
            "Deletes the keys of a slot this node no longer serves (after a migration).",
            "O(N) where N is the number of keys of the node",
            "slot",
        ),
    Command::new("clusterx|version", 2, version)
        .flags(flags::STALE | flags::LOADING)
        .doc(
            "cluster",
            "hashd",
            "Returns the topology version (-1 before any).",
            "O(1)",
            "",
        ),
    Command::new("clusterx|help", 2, x_help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "cluster",
            "hashd",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
];

pub const COMMANDS: &[Command] = &[
    Command::container("cluster", SUBCOMMANDS).doc(
        "cluster",
        "3.0.0",
        "A container for Redis Cluster commands.",
        "Depends on subcommand.",
        "",
    ),
    Command::container("clusterx", X_SUBCOMMANDS).doc(
        "cluster",
        "hashd",
        "The cluster controller's commands (Kvrocks's CLUSTERX).",
        "Depends on subcommand.",
        "",
    ),
    Command::new("readonly", 1, readonly)
        .flags(flags::FAST | flags::LOADING | flags::STALE)
        .acl(&["connection"])
        .doc(
            "cluster",
            "3.0.0",
            "Enables read-only queries for a connection to a Redis Cluster replica node.",
            "O(1)",
            "",
        ),
    Command::new("readwrite", 1, readwrite)
        .flags(flags::FAST | flags::LOADING | flags::STALE)
        .acl(&["connection"])
        .doc(
            "cluster",
            "3.0.0",
            // Redis 7.4.1's text, its typo included (COMMAND DOCS answers with it).
            "Enables read-write queries for a connection to a Reids Cluster replica node.",
            "O(1)",
            "",
        ),
    Command::new("asking", 1, asking)
        .flags(flags::FAST)
        .acl(&["connection"])
        .doc(
            "cluster",
            "3.0.0",
            "Signals that a cluster client is following an -ASK redirect.",
            "O(1)",
            "",
        ),
];

fn enabled(ctx: &Ctx<'_, '_>) -> Result<(), CmdError> {
    if ctx.server.cluster.enabled {
        Ok(())
    } else {
        Err(CmdError::other(DISABLED))
    }
}

/// This node as the topology lists it, or as a lone master before any topology.
fn myself(ctx: &Ctx<'_, '_>, t: Option<&Topology>) -> Node {
    let id = ctx.server.cluster.my_id();
    t.and_then(|t| t.node(&id).cloned()).unwrap_or(Node {
        id,
        ip: String::new(),
        port: ctx.server.port.load(Ordering::Relaxed) as u16,
        master_id: None,
        slots: Vec::new(),
    })
}

/// CLUSTER INFO
fn info(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let c = &ctx.server.cluster;
    let t = c.topology();
    let assigned = t.as_ref().map_or(0, |t| t.assigned_slots());
    let version = t.as_ref().map_or(0, |t| t.version);
    // Once a migration has started here, how it stands (what kvrocks-controller reads).
    let migrating = match *c.migrations().status.lock() {
        // Kvrocks's names: `migrating_slot` for one slot, `migrating_slot(s)` for a range.
        Some(((a, b), state)) if a == b => {
            format!("migrating_slot:{a}\r\nmigrating_state:{}\r\n", state.name())
        }
        Some(((a, b), state)) => format!(
            "migrating_slot(s):{a}-{b}\r\nmigrating_state:{}\r\n",
            state.name()
        ),
        None => String::new(),
    };
    let text = format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{}\r\n\
         cluster_size:{}\r\ncluster_current_epoch:{version}\r\ncluster_my_epoch:{version}\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n{migrating}",
        if c.healthy() { "ok" } else { "fail" },
        t.as_ref().map_or(1, |t| t.nodes.len().max(1)),
        t.as_ref().map_or(0, |t| t.size()),
    );
    reply.verbatim(text.as_bytes());
    Ok(())
}

/// CLUSTER MYID
fn myid(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    reply.bulk(ctx.server.cluster.my_id().as_bytes());
    Ok(())
}

/// CLUSTER MYSHARDID: a shard is a master and its replicas; its id is the master's.
fn myshardid(
    ctx: &mut Ctx<'_, '_>,
    _args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    enabled(ctx)?;
    let t = ctx.server.cluster.topology();
    let me = myself(ctx, t.as_deref());
    reply.bulk(me.master_id.unwrap_or(me.id).as_bytes());
    Ok(())
}

/// `[ip, port, id, {}]`: one node of CLUSTER SLOTS.
fn slot_node(reply: &mut Reply<'_>, n: &Node) {
    reply.array(4);
    reply.bulk(n.ip.as_bytes());
    reply.int(i64::from(n.port));
    reply.bulk(n.id.as_bytes());
    reply.map(0);
}

/// CLUSTER SLOTS
fn slots(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let Some(t) = ctx.server.cluster.topology() else {
        reply.array(0);
        return Ok(());
    };
    let ranges = t.ranges();
    reply.array(ranges.len());
    for (a, b, master) in ranges {
        let replicas: Vec<&Node> = t.replicas_of(master).collect();
        reply.array(3 + replicas.len());
        reply.int(i64::from(a));
        reply.int(i64::from(b));
        slot_node(reply, master);
        replicas.iter().for_each(|r| slot_node(reply, r));
    }
    Ok(())
}

/// CLUSTER SHARDS
fn shards(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let t = ctx.server.cluster.topology();
    let my_id = ctx.server.cluster.my_id();
    let my_offset = ctx.server.replication.offset() as i64;
    let node = |reply: &mut Reply<'_>, n: &Node| {
        reply.map(7);
        reply.bulk(b"id");
        reply.bulk(n.id.as_bytes());
        reply.bulk(b"port");
        reply.int(i64::from(n.port));
        reply.bulk(b"ip");
        reply.bulk(n.ip.as_bytes());
        reply.bulk(b"endpoint");
        reply.bulk(n.ip.as_bytes());
        reply.bulk(b"role");
        reply.bulk(if n.is_master() { b"master" } else { b"replica" });
        reply.bulk(b"replication-offset");
        reply.int(if n.id == my_id { my_offset } else { 0 });
        reply.bulk(b"health");
        reply.bulk(b"online");
    };
    let Some(t) = t else {
        reply.array(1);
        reply.map(2);
        reply.bulk(b"slots");
        reply.array(0);
        reply.bulk(b"nodes");
        reply.array(1);
        node(reply, &myself(ctx, None));
        return Ok(());
    };
    let masters: Vec<&Node> = t.nodes.iter().filter(|n| n.is_master()).collect();
    reply.array(masters.len());
    for m in masters {
        reply.map(2);
        reply.bulk(b"slots");
        let ranges = t.slots_of(m);
        reply.array(ranges.len() * 2);
        for (a, b) in ranges {
            reply.int(i64::from(a));
            reply.int(i64::from(b));
        }
        reply.bulk(b"nodes");
        let replicas: Vec<&Node> = t.replicas_of(m).collect();
        reply.array(1 + replicas.len());
        node(reply, m);
        replicas.iter().for_each(|r| node(reply, r));
    }
    Ok(())
}

/// CLUSTER NODES
fn nodes(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let my_id = ctx.server.cluster.my_id();
    let text = match ctx.server.cluster.topology() {
        Some(t) => t.nodes_text(&my_id),
        None => {
            let port = ctx.server.port.load(Ordering::Relaxed);
            format!(
                "{my_id} :{port}@{} myself,master - 0 0 0 connected\n",
                port + 10000
            )
        }
    };
    reply.verbatim(text.as_bytes());
    Ok(())
}

/// CLUSTER REPLICAS node-id (and SLAVES): the CLUSTER NODES lines of its replicas.
fn replicas(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let id = String::from_utf8_lossy(args.get(2)).to_ascii_lowercase();
    let t = ctx.server.cluster.topology();
    let Some(node) = t.as_ref().and_then(|t| t.node(&id)) else {
        return Err(super::keys::error_quoting(
            "ERR Unknown node ",
            args.get(2),
            "",
        ));
    };
    if !node.is_master() {
        return Err(CmdError::other("ERR The specified node is not a master"));
    }
    let my_id = ctx.server.cluster.my_id();
    let lines: Vec<String> = t
        .as_ref()
        .map(|t| {
            let all = t.nodes_text(&my_id);
            t.replicas_of(node)
                .filter_map(|r| {
                    all.lines()
                        .find(|l| l.starts_with(&r.id))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    reply.array(lines.len());
    lines.iter().for_each(|l| reply.bulk(l.as_bytes()));
    Ok(())
}

/// CLUSTER KEYSLOT key
fn keyslot(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    reply.int(i64::from(key_slot(args.get(2))));
    Ok(())
}

fn slot_arg(arg: &[u8], invalid: &'static str) -> Result<u16, CmdError> {
    let n = parse_i64(arg).ok_or(CmdError::NotInteger)?;
    u16::try_from(n)
        .ok()
        .filter(|&s| usize::from(s) < SLOTS)
        .ok_or_else(|| CmdError::other(invalid))
}

/// CLUSTER COUNTKEYSINSLOT slot (by a scan of the keys: hashd keeps no per-slot index).
fn countkeysinslot(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    enabled(ctx)?;
    let slot = slot_arg(args.get(2), "ERR Invalid slot")?;
    let now = ctx.now_ms;
    let mut n = 0;
    ctx.db().for_each_key(now, |key, _| {
        if key_slot(key) == slot {
            n += 1;
        }
    });
    reply.int(n);
    Ok(())
}

/// CLUSTER GETKEYSINSLOT slot count
fn getkeysinslot(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    enabled(ctx)?;
    let invalid = "ERR Invalid slot or number of keys";
    let slot_n = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let count = parse_i64(args.get(3)).ok_or(CmdError::NotInteger)?;
    let slot = u16::try_from(slot_n)
        .ok()
        .filter(|&s| usize::from(s) < SLOTS && count >= 0)
        .ok_or_else(|| CmdError::other(invalid))?;
    let max = usize::try_from(count).unwrap_or(usize::MAX);
    let now = ctx.now_ms;
    let mut found: Vec<Vec<u8>> = Vec::new();
    ctx.db().for_each_key(now, |key, _| {
        if found.len() < max && key_slot(key) == slot {
            found.push(key.to_vec());
        }
    });
    reply.array(found.len());
    found.iter().for_each(|k| reply.bulk(k));
    Ok(())
}

/// CLUSTER LINKS: there is no cluster bus, so no links.
fn links(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    reply.array(0);
    Ok(())
}

/// CLUSTER COUNT-FAILURE-REPORTS node-id: nodes report no failures without a bus.
fn count_failure_reports(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    enabled(ctx)?;
    let id = String::from_utf8_lossy(args.get(2)).to_ascii_lowercase();
    if ctx
        .server
        .cluster
        .topology()
        .and_then(|t| t.node(&id).cloned())
        .is_none()
    {
        return Err(super::keys::error_quoting(
            "ERR Unknown node ",
            args.get(2),
            "",
        ));
    }
    reply.int(0);
    Ok(())
}

fn saved(r: std::io::Result<()>) -> Result<(), CmdError> {
    r.map_err(|e| CmdError::other(format!("ERR error saving the cluster node config: {e}")))
}

/// CLUSTER SAVECONFIG
fn saveconfig(
    ctx: &mut Ctx<'_, '_>,
    _args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    enabled(ctx)?;
    let c = &ctx.server.cluster;
    saved(c.set_topology(c.topology().map(|t| (*t).clone())))?;
    reply.ok();
    Ok(())
}

/// CLUSTER RESET [HARD | SOFT]: forgets the topology (HARD also takes a new id); a
/// replica becomes a master. A master holding keys refuses, as in Redis.
fn reset(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let hard = match args.len() {
        2 => false,
        3 if parse::is(args.get(2), "hard") => true,
        3 if parse::is(args.get(2), "soft") => false,
        _ => return Err(CmdError::Syntax),
    };
    let repl = &ctx.server.replication;
    if !repl.is_replica() && !ctx.db().is_empty() {
        return Err(CmdError::other(
            "ERR CLUSTER RESET can't be called with master nodes containing keys",
        ));
    }
    if repl.is_replica() {
        repl.become_master();
    }
    let c = &ctx.server.cluster;
    if hard {
        saved(c.set_my_id(&crate::cluster::random_node_id()))?;
    }
    saved(c.set_topology(None))?;
    reply.ok();
    Ok(())
}

/// The bus administration a gossiping Redis node has; a hashd node's topology is its
/// controller's.
fn gossip_only(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    _reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    enabled(ctx)?;
    Err(CmdError::other(format!(
        "ERR CLUSTER {} is not supported: hashd has no cluster bus; its topology is set with \
         CLUSTERX SETNODES (see docs/CLUSTER.md)",
        String::from_utf8_lossy(args.get(1)).to_ascii_uppercase()
    )))
}

const HELP: &[&str] = &[
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the node's shard id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@bus-port[,hostname]> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLAVES <node-id>",
    "    Return <node-id> replicas.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
];

fn help(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    super::client::help_reply(reply, args.get(0), HELP);
    Ok(())
}

// ---- READONLY / READWRITE / ASKING ----

fn readonly(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    ctx.client.cluster_readonly = true;
    reply.ok();
    Ok(())
}

fn readwrite(
    ctx: &mut Ctx<'_, '_>,
    _args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    enabled(ctx)?;
    ctx.client.cluster_readonly = false;
    reply.ok();
    Ok(())
}

/// ASKING: hashd migrates no slots yet, so no slot is ever importing here and the flag
/// changes nothing; it is accepted as Redis accepts it.
fn asking(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    reply.ok();
    Ok(())
}

// ---- CLUSTERX ----

/// After a topology change: this node follows the master the topology gives it, or
/// stops following one.
fn apply_role(ctx: &mut Ctx<'_, '_>) {
    let c = &ctx.server.cluster;
    let (Some(t), my_id) = (c.topology(), c.my_id()) else {
        return;
    };
    let Some(me) = t.node(&my_id) else {
        return;
    };
    let repl = &ctx.server.replication;
    match &me.master_id {
        Some(m) => {
            if let Some(master) = t.node(m) {
                if repl.become_replica(&master.ip, master.port).is_some() {
                    tracing::info!(master = %master.endpoint(), "cluster topology: replica");
                }
            }
        }
        None if repl.is_replica() => {
            repl.become_master();
            tracing::info!("cluster topology: master");
        }
        None => {}
    }
}

/// CLUSTERX SETNODEID node-id
fn setnodeid(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let id = String::from_utf8_lossy(args.get(2)).into_owned();
    if !valid_node_id(&id) {
        return Err(CmdError::other("ERR Invalid node id"));
    }
    saved(ctx.server.cluster.set_my_id(&id))?;
    apply_role(ctx);
    reply.ok();
    Ok(())
}

fn version_arg(arg: &[u8]) -> Result<u64, CmdError> {
    parse_i64(arg)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| CmdError::other("ERR Invalid cluster version"))
}

/// CLUSTERX SETNODES "<topology>" version [FORCE]
fn setnodes(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let force = match args.len() {
        4 => false,
        5 if parse::is(args.get(4), "force") => true,
        _ => return Err(CmdError::Syntax),
    };
    let version = version_arg(args.get(3))?;
    let c = &ctx.server.cluster;
    let current = c.version();
    if !force && (version as i64) < current {
        return Err(CmdError::other("ERR Invalid cluster version"));
    }
    if !force && version as i64 == current {
        reply.ok();
        return Ok(());
    }
    let text = String::from_utf8_lossy(args.get(2));
    let t = Topology::parse_setnodes(&text, version)
        .map_err(|why| CmdError::other(format!("ERR Invalid cluster nodes info: {why}")))?;
    saved(c.set_topology(Some(t)))?;
    apply_role(ctx);
    reply.ok();
    Ok(())
}

/// CLUSTERX SETSLOT slot NODE node-id version: the slot moves to that master, as
/// version `current + 1`.
fn setslot(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let slot = slot_arg(args.get(2), "ERR Invalid slot id")?;
    if !parse::is(args.get(3), "node") {
        return Err(CmdError::Syntax);
    }
    let version = version_arg(args.get(5))?;
    let c = &ctx.server.cluster;
    let Some(t) = c.topology() else {
        return Err(CmdError::other(
            "CLUSTERDOWN The cluster is not initialized",
        ));
    };
    if version != t.version + 1 {
        return Err(CmdError::other("ERR Invalid cluster version"));
    }
    let id = String::from_utf8_lossy(args.get(4)).to_ascii_lowercase();
    if !t.node(&id).is_some_and(Node::is_master) {
        return Err(CmdError::other("ERR Invalid node id"));
    }
    let mut nodes = t.nodes.clone();
    for n in nodes.iter_mut().filter(|n| n.is_master()) {
        let mine: Vec<(u16, u16)> = t.slots_of(n);
        let mut slots = Vec::new();
        for (a, b) in mine {
            if (a..=b).contains(&slot) {
                if a < slot {
                    slots.push((a, slot - 1));
                }
                if slot < b {
                    slots.push((slot + 1, b));
                }
            } else {
                slots.push((a, b));
            }
        }
        if n.id == id {
            slots.push((slot, slot));
        }
        n.slots = slots;
    }
    let t = Topology::new(version, nodes).map_err(|why| CmdError::other(format!("ERR {why}")))?;
    saved(c.set_topology(Some(t)))?;
    apply_role(ctx);
    reply.ok();
    Ok(())
}

/// A field as a migration copies it: name, value, deadline.
type FieldCopy = (Vec<u8>, Vec<u8>, Option<u64>);

/// CLUSTERX MIGRATE slot target-node-id: the snapshot is taken here, under every lock of
/// the database, and the capture of the slot's writes starts at the same instant; the
/// migration task does the rest (`cluster::migrate`).
fn migrate(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    use crate::keyspace::{Batch, Cause, Change, Effect, Segment};
    enabled(ctx)?;
    let slots = crate::cluster::migrate::parse_range(args.get(2))
        .ok_or_else(|| CmdError::other("ERR Invalid slot range"))?;
    let c = &ctx.server.cluster;
    let Some(t) = c.topology() else {
        return Err(CmdError::other(
            "CLUSTERDOWN The cluster is not initialized",
        ));
    };
    let my_id = c.my_id();
    let mine = |s: u16| t.owner(s).is_some_and(|o| o.id == my_id);
    if !(slots.0..=slots.1).all(mine) {
        return Err(CmdError::other(
            "ERR Can't migrate slot which doesn't belong to me",
        ));
    }
    let target_id = String::from_utf8_lossy(args.get(3)).to_ascii_lowercase();
    let target = match t.node(&target_id) {
        Some(n) if n.is_master() && n.id != my_id => n.clone(),
        _ => return Err(CmdError::other("ERR Can't find the target node id")),
    };
    let m = c.migrations();
    if m.in_progress() {
        return Err(CmdError::other("ERR There is already a migrating slot"));
    }
    let now = ctx.now_ms;
    let mut keys: Vec<(Vec<u8>, Vec<FieldCopy>)> = Vec::new();
    ctx.db().for_each_key(now, |key, value| {
        if (slots.0..=slots.1).contains(&key_slot(key)) {
            let fields = value
                .iter()
                .filter(|f| !f.is_expired(now))
                .map(|f| (f.field.to_vec(), f.value.to_vec(), f.expire_at))
                .collect();
            keys.push((key.to_vec(), fields));
        }
    });
    let mut batch = Batch::default();
    batch.segments.push(Segment {
        command: Some("restore"),
        start: 0,
    });
    for (key, fields) in keys {
        if fields.is_empty() {
            continue;
        }
        let deadline = ctx.db().key_deadline(&key, now).flatten();
        batch.effects.push(Effect {
            db: 0,
            key,
            cause: Cause::Command,
            change: Change::Restored {
                fields,
                deadline,
                replaced: true,
            },
        });
    }
    let job = crate::cluster::migrate::Job {
        slots,
        host: target.ip.clone(),
        port: target.port,
        snapshot: Vec::new(),
        captured: tokio::sync::mpsc::unbounded_channel().1,
    };
    m.start(job, &batch);
    let shown = crate::cluster::migrate::range_text(slots);
    tracing::info!(slots = %shown, target = %target.endpoint(), keys = batch.effects.len(), "migrating");
    reply.ok();
    Ok(())
}

/// Deletes every key of the slots `a..=b` in the database (the caller holds its locks).
fn drop_keys(ctx: &mut Ctx<'_, '_>, (a, b): (u16, u16)) -> usize {
    let now = ctx.now_ms;
    let mut keys = Vec::new();
    ctx.db().for_each_key(now, |key, _| {
        if (a..=b).contains(&key_slot(key)) {
            keys.push(key.to_vec());
        }
    });
    let mut db = ctx.db();
    keys.iter()
        .filter(|k| db.delete_lazily(k, now, false))
        .count()
}

fn range_arg(arg: &[u8]) -> Result<(u16, u16), CmdError> {
    crate::cluster::migrate::parse_range(arg)
        .ok_or_else(|| CmdError::other("ERR Invalid slot range"))
}

/// CLUSTERX IMPORT slot|range 0|1|2 (a migration's target).
fn import(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let slots = range_arg(args.get(2))?;
    let state = match args.get(3) {
        b"0" => 0,
        b"1" => 1,
        b"2" => 2,
        _ => return Err(CmdError::other("ERR Invalid import state")),
    };
    let m = ctx.server.cluster.migrations();
    m.import(slots, state);
    let shown = crate::cluster::migrate::range_text(slots);
    match state {
        0 => ctx.client.cluster_importer = true,
        1 => tracing::info!(slots = %shown, "slots imported"),
        _ => {
            let dropped = drop_keys(ctx, slots);
            tracing::warn!(slots = %shown, dropped, "slot import failed; its keys are dropped");
        }
    }
    reply.ok();
    Ok(())
}

/// CLUSTERX DROPSLOT slot|range: only for slots this node does not serve.
fn dropslot(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    let slots = range_arg(args.get(2))?;
    let c = &ctx.server.cluster;
    let my_id = c.my_id();
    let topology = c.topology();
    let served_here = |slot: u16| match c.migrations().route(slot, false) {
        crate::cluster::migrate::Override::Moved(_) => false,
        crate::cluster::migrate::Override::ServedHere => true,
        _ => topology
            .as_ref()
            .and_then(|t| t.owner(slot))
            .is_some_and(|o| o.id == my_id),
    };
    if (slots.0..=slots.1).any(served_here) {
        return Err(CmdError::other("ERR The slot is served by this node"));
    }
    reply.int(drop_keys(ctx, slots) as i64);
    Ok(())
}

/// CLUSTERX VERSION
fn version(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enabled(ctx)?;
    reply.int(ctx.server.cluster.version());
    Ok(())
}

const X_HELP: &[&str] = &[
    "SETNODEID <node-id>",
    "    Set this node's id (40 hex characters).",
    "SETNODES <topology> <version> [FORCE]",
    "    Install the topology, one node per line: <id> <ip> <port> <master|slave> <master-id|-> [<slot>|<start-end> ...].",
    "SETSLOT <slot> NODE <node-id> <version>",
    "    Assign <slot> to the master <node-id> as topology <version> (the current one plus 1).",
    "MIGRATE <slot>|<start-end> <target-node-id>",
    "    Copy the slots' keys to the master <target-node-id>, then the writes made meanwhile, and hand them over.",
    "IMPORT <slot> <0|1|2>",
    "    (From a migration's source) the import of <slot> starts, succeeded or failed.",
    "DROPSLOT <slot>",
    "    Delete the keys of a slot this node does not serve.",
    "VERSION",
    "    Return the topology version (-1 before any).",
];

fn x_help(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    super::client::help_reply(reply, args.get(0), X_HELP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;

    #[test]
    fn standalone_answers_cluster_support_disabled() {
        // Redis 7.4.1 without cluster-enabled, the same commands.
        let mut env = TestEnv::new();
        for cmd in [
            "CLUSTER NODES",
            "cluster slots",
            "CLUSTER INFO",
            "CLUSTER HELP",
            "CLUSTER KEYSLOT a",
            "READONLY",
            "READWRITE",
            "ASKING",
            "CLUSTERX VERSION",
        ] {
            assert_eq!(
                env.run(cmd),
                "-ERR This instance has cluster support disabled\r\n",
                "{cmd}"
            );
        }
        assert_eq!(
            env.run("CLUSTER ANYTHING at all"),
            "-ERR unknown subcommand 'ANYTHING'. Try CLUSTER HELP.\r\n"
        );
        assert_eq!(
            env.run("CLUSTER"),
            "-ERR wrong number of arguments for 'cluster' command\r\n"
        );
    }
}

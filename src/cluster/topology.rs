//! The cluster's topology as a controller pushes it (`CLUSTERX SETNODES`): nodes, their
//! roles, and which master serves each slot; and its file form, which is Redis's
//! `nodes.conf` shape (CLUSTER NODES lines and a `vars` line).

use super::slot::SLOTS;

/// No master serves the slot.
const UNASSIGNED: u16 = u16::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// 40 hex characters.
    pub id: String,
    pub ip: String,
    pub port: u16,
    /// The master's id for a replica; `None` for a master.
    pub master_id: Option<String>,
    /// Slot ranges (inclusive) a master serves.
    pub slots: Vec<(u16, u16)>,
}

impl Node {
    pub fn is_master(&self) -> bool {
        self.master_id.is_none()
    }

    /// `ip:port`, as MOVED names it.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

#[derive(Clone, Debug)]
pub struct Topology {
    pub version: u64,
    pub nodes: Vec<Node>,
    /// Slot → index of its master in `nodes`.
    owner: Vec<u16>,
    /// Slots some master serves.
    assigned: usize,
}

pub fn valid_node_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `0-5460 5461 6000-6001`: slot ranges.
fn parse_slots<'a>(words: impl Iterator<Item = &'a str>) -> Result<Vec<(u16, u16)>, String> {
    let slot = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|&n| usize::from(n) < SLOTS)
            .ok_or_else(|| format!("Invalid slot id '{s}'"))
    };
    let mut out = Vec::new();
    for w in words {
        let (a, b) = match w.split_once('-') {
            Some((a, b)) => (slot(a)?, slot(b)?),
            None => (slot(w)?, slot(w)?),
        };
        if a > b {
            return Err(format!("Invalid slot range '{w}'"));
        }
        out.push((a, b));
    }
    Ok(out)
}

impl Topology {
    /// Checks the nodes and builds the slot table: ids valid and distinct, replicas of
    /// masters that are listed, no slot served twice.
    pub fn new(version: u64, nodes: Vec<Node>) -> Result<Topology, String> {
        let mut owner = vec![UNASSIGNED; SLOTS];
        for (i, n) in nodes.iter().enumerate() {
            if !valid_node_id(&n.id) {
                return Err(format!("Invalid node id '{}'", n.id));
            }
            if nodes[..i].iter().any(|m| m.id == n.id) {
                return Err(format!("Duplicate node id '{}'", n.id));
            }
            if let Some(m) = &n.master_id {
                if !nodes.iter().any(|x| &x.id == m && x.is_master()) {
                    return Err(format!(
                        "Invalid master node id '{m}' of replica '{}'",
                        n.id
                    ));
                }
                continue;
            }
            for &(a, b) in &n.slots {
                for s in a..=b {
                    let o = &mut owner[usize::from(s)];
                    if *o != UNASSIGNED {
                        return Err(format!("Slot {s} is served by more than one master"));
                    }
                    *o = i as u16;
                }
            }
        }
        if nodes.len() >= usize::from(UNASSIGNED) {
            return Err("Too many nodes".into());
        }
        let assigned = owner.iter().filter(|&&o| o != UNASSIGNED).count();
        Ok(Topology {
            version,
            nodes,
            owner,
            assigned,
        })
    }

    /// `CLUSTERX SETNODES`'s text: one node per line,
    /// `<id> <ip> <port> <master|slave> <master-id|-> [slot ranges…]`.
    pub fn parse_setnodes(text: &str, version: u64) -> Result<Topology, String> {
        let mut nodes = Vec::new();
        for line in text.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
            let mut w = line.split_whitespace();
            let (Some(id), Some(ip), Some(port), Some(role), Some(master)) =
                (w.next(), w.next(), w.next(), w.next(), w.next())
            else {
                return Err(format!("Invalid cluster node line '{line}'"));
            };
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("Invalid port '{port}'"))?;
            let master_id = match role.to_ascii_lowercase().as_str() {
                "master" => None,
                "slave" | "replica" => {
                    if master == "-" {
                        return Err(format!("Replica '{id}' has no master"));
                    }
                    Some(master.to_ascii_lowercase())
                }
                _ => return Err(format!("Invalid node role '{role}'")),
            };
            let slots = parse_slots(w)?;
            if master_id.is_some() && !slots.is_empty() {
                return Err(format!("Replica '{id}' cannot serve slots"));
            }
            nodes.push(Node {
                id: id.to_ascii_lowercase(),
                ip: ip.to_string(),
                port,
                master_id,
                slots,
            });
        }
        Topology::new(version, nodes)
    }

    /// The master serving `slot`.
    pub fn owner(&self, slot: u16) -> Option<&Node> {
        match self.owner.get(usize::from(slot)) {
            Some(&i) if i != UNASSIGNED => self.nodes.get(usize::from(i)),
            _ => None,
        }
    }

    /// The index in `nodes` of the master serving `slot`.
    pub fn owner_index(&self, slot: u16) -> Option<usize> {
        match self.owner.get(usize::from(slot)) {
            Some(&i) if i != UNASSIGNED => Some(usize::from(i)),
            _ => None,
        }
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn assigned_slots(&self) -> usize {
        self.assigned
    }

    /// Masters serving at least one slot (CLUSTER INFO `cluster_size`).
    pub fn size(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.is_master() && !n.slots.is_empty())
            .count()
    }

    /// Contiguous ranges with the same master, in slot order: (start, end, master).
    pub fn ranges(&self) -> Vec<(u16, u16, &Node)> {
        let mut out: Vec<(u16, u16, &Node)> = Vec::new();
        for s in 0..SLOTS as u16 {
            let Some(n) = self.owner(s) else {
                continue;
            };
            match out.last_mut() {
                Some((_, end, m)) if *end + 1 == s && m.id == n.id => *end = s,
                _ => out.push((s, s, n)),
            }
        }
        out
    }

    /// The master's slots as merged ranges.
    pub fn slots_of(&self, master: &Node) -> Vec<(u16, u16)> {
        self.ranges()
            .into_iter()
            .filter(|(_, _, n)| n.id == master.id)
            .map(|(a, b, _)| (a, b))
            .collect()
    }

    pub fn replicas_of<'a>(&'a self, master: &'a Node) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes
            .iter()
            .filter(move |n| n.master_id.as_deref() == Some(master.id.as_str()))
    }

    /// CLUSTER NODES: one line per node, `myself` marked.
    pub fn nodes_text(&self, my_id: &str) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let me = if n.id == my_id { "myself," } else { "" };
            let role = if n.is_master() { "master" } else { "slave" };
            out.push_str(&format!(
                "{} {}:{}@{} {me}{role} {} 0 0 {} connected",
                n.id,
                n.ip,
                n.port,
                u32::from(n.port) + 10000,
                n.master_id.as_deref().unwrap_or("-"),
                self.version,
            ));
            if n.is_master() {
                for (a, b) in self.slots_of(n) {
                    if a == b {
                        out.push_str(&format!(" {a}"));
                    } else {
                        out.push_str(&format!(" {a}-{b}"));
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// The cluster configuration file: CLUSTER NODES lines and Redis's `vars` line, the
    /// topology version as `currentEpoch`.
    pub fn file_text(&self, my_id: &str) -> String {
        format!(
            "{}vars currentEpoch {} lastVoteEpoch 0\n",
            self.nodes_text(my_id),
            self.version
        )
    }

    /// Reads [`Topology::file_text`] back: the topology and this node's id.
    pub fn parse_file(text: &str) -> Result<(Topology, Option<String>), String> {
        let mut nodes = Vec::new();
        let mut version = 0;
        let mut my_id = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.first() == Some(&"vars") {
                if let Some(i) = w.iter().position(|x| *x == "currentEpoch") {
                    version = w
                        .get(i + 1)
                        .and_then(|v| v.parse().ok())
                        .ok_or("bad currentEpoch")?;
                }
                continue;
            }
            if w.len() < 8 {
                return Err(format!("bad node line '{line}'"));
            }
            let addr = w[1].split('@').next().unwrap_or_default();
            let (ip, port) = addr
                .rsplit_once(':')
                .ok_or_else(|| format!("bad address in '{line}'"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("bad port in '{line}'"))?;
            let flags: Vec<&str> = w[2].split(',').collect();
            if flags.contains(&"myself") {
                my_id = Some(w[0].to_string());
            }
            let master_id = if flags.contains(&"slave") {
                Some(w[3].to_string())
            } else {
                None
            };
            let slots = if master_id.is_none() {
                parse_slots(w[8..].iter().copied())?
            } else {
                Vec::new()
            };
            nodes.push(Node {
                id: w[0].to_string(),
                ip: ip.to_string(),
                port,
                master_id,
                slots,
            });
        }
        Ok((Topology::new(version, nodes)?, my_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn three() -> Topology {
        let text = format!(
            "{A} 127.0.0.1 7001 master - 0-8000\n{B} 127.0.0.1 7002 master - 8001-16383\n\
             {C} 127.0.0.1 7003 slave {A}\n"
        );
        Topology::parse_setnodes(&text, 3).unwrap()
    }

    #[test]
    fn parses_and_routes() {
        let t = three();
        assert_eq!(t.owner(0).unwrap().id, A);
        assert_eq!(t.owner(8001).unwrap().port, 7002);
        assert_eq!(t.assigned_slots(), SLOTS);
        assert_eq!(t.size(), 2);
        assert_eq!(t.replicas_of(t.node(A).unwrap()).count(), 1);
        assert_eq!(t.ranges().len(), 2);
    }

    #[test]
    fn refuses_bad_topologies() {
        let bad = |text: String| Topology::parse_setnodes(&text, 1).unwrap_err();
        assert!(bad(format!(
            "{A} 127.0.0.1 7001 master - 0-10\n{B} 127.0.0.1 7002 master - 5"
        ))
        .contains("more than one"));
        assert!(bad(format!("{A} 127.0.0.1 7001 master - 0-16384")).contains("Invalid slot"));
        assert!(bad(format!("{A} 127.0.0.1 7001 slave {B}")).contains("Invalid master"));
        assert!(bad("abc 127.0.0.1 7001 master - 0".into()).contains("Invalid node id"));
        assert!(bad(format!("{A} 127.0.0.1 x master - 0")).contains("Invalid port"));
        assert!(bad(format!("{A} 127.0.0.1 7001 boss - 0")).contains("Invalid node role"));
        assert!(bad(format!("{A} 127.0.0.1 7001 master - 9-3")).contains("Invalid slot range"));
    }

    #[test]
    fn the_file_round_trips() {
        let t = three();
        let text = t.file_text(C);
        assert!(text.contains(&format!(
            "{C} 127.0.0.1:7003@17003 myself,slave {A} 0 0 3 connected\n"
        )));
        assert!(text.ends_with("vars currentEpoch 3 lastVoteEpoch 0\n"));
        let (back, me) = Topology::parse_file(&text).unwrap();
        assert_eq!(me.as_deref(), Some(C));
        assert_eq!(back.nodes, t.nodes);
        assert_eq!(back.version, 3);
    }
}

//! The client listeners: bound at start-up from `bind` and `port`, and rebound at run
//! time by CONFIG SET bind / port, as Redis's `changeBindAddr` / `changeListenPort` do:
//! the new addresses are bound first, and only if every required one binds do they
//! replace the old (which close; connections already accepted stay). A failure leaves
//! the old listeners serving and answers Redis's error. CONFIG SET tls-port does the same
//! for the TLS listeners (`tls-port 0` closes them), and CONFIG SET bind moves both.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use parking_lot::{Mutex, RwLock};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

/// Pending connections the kernel queues per listener (Redis's `tcp-backlog` default).
const BACKLOG: u32 = 511;

/// Why binding failed: the address (as `host:port`) and the system's error.
#[derive(Debug)]
pub struct BindError {
    pub addr: String,
    pub source: io::Error,
}

/// `host:port` for one `bind` entry (`*` is every IPv4 address, `::*` every IPv6 one, a
/// leading `-` marks it optional).
fn target(entry: &str, port: u16) -> (bool, String) {
    let optional = entry.starts_with('-');
    let host = match entry.trim_start_matches('-') {
        "*" => "0.0.0.0",
        "::*" => "::",
        other => other,
    };
    let t = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    (optional, t)
}

/// The address a `host:port` resolves to, as a listener's `local_addr` shows it: how
/// listeners are named, so a `bind` written another way still matches.
fn resolve(t: &str) -> io::Result<SocketAddr> {
    t.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind"))
}

/// One listening socket with `SO_REUSEADDR`, as Redis's (and as tokio's own `bind`): a
/// restart does not wait for the old connections' TIME_WAIT.
fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Binds every `bind` entry on `port`; optional entries (`-addr`) that fail are skipped.
/// Fails if a required one fails, or none could be bound. Must run inside the runtime.
pub fn bind_all(bind: &[String], port: u16) -> Result<Vec<TcpListener>, BindError> {
    let listeners: Vec<TcpListener> = bind_except(bind, port, &[])?
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    if listeners.is_empty() {
        return Err(BindError {
            addr: bind.join(" "),
            source: io::Error::new(io::ErrorKind::AddrNotAvailable, "no address could be bound"),
        });
    }
    Ok(listeners)
}

/// A listener just bound, with its `host:port`.
type Bound = (String, TcpListener);

/// Which of the `serving` listeners stay (their `host:port` is still wanted) and the new
/// ones bound for `addrs` on `port`; an error if none would be left.
fn plan(
    addrs: &[String],
    port: u16,
    serving: &[String],
) -> Result<(Vec<String>, Vec<Bound>), BindError> {
    let wanted: Vec<String> = addrs
        .iter()
        .filter_map(|a| resolve(&target(a, port).1).ok())
        .map(|a| a.to_string())
        .collect();
    let keep: Vec<String> = serving
        .iter()
        .filter(|t| wanted.contains(t))
        .cloned()
        .collect();
    let add = bind_except(addrs, port, &keep)?;
    if keep.is_empty() && add.is_empty() {
        return Err(BindError {
            addr: addrs.join(" "),
            source: io::Error::new(io::ErrorKind::AddrNotAvailable, "no address could be bound"),
        });
    }
    Ok((keep, add))
}

/// Binds the `bind` entries on `port` whose `host:port` is not in `skip` (already bound),
/// returning each new listener with its `host:port`.
fn bind_except(
    bind: &[String],
    port: u16,
    skip: &[String],
) -> Result<Vec<(String, TcpListener)>, BindError> {
    let mut listeners: Vec<(String, TcpListener)> = Vec::new();
    for entry in bind {
        let (optional, t) = target(entry, port);
        let addr = resolve(&t);
        if let Ok(a) = &addr {
            let name = a.to_string();
            if skip.contains(&name) || listeners.iter().any(|(u, _)| *u == name) {
                continue;
            }
        }
        match addr.and_then(|a| listen_on(a).map(|l| (a.to_string(), l))) {
            Ok(named) => listeners.push(named),
            Err(e) if optional => {
                info!(address = %t, error = %e, "optional bind address unavailable")
            }
            Err(source) => return Err(BindError { addr: t, source }),
        }
    }
    Ok(listeners)
}

/// What the accept loop is told to do: keep the listeners on these addresses, close the
/// others, and start accepting on the new ones. `tls`: the change is to the `tls-port`
/// listeners (the plain ones stay as they are), otherwise to the plain ones.
#[derive(Debug)]
pub struct Replacement {
    pub keep: Vec<String>,
    pub add: Vec<(String, TcpListener)>,
    pub tls: bool,
}

/// What CONFIG SET changes, and the accept loop it hands new listeners to.
#[derive(Debug)]
pub struct Listening {
    /// `bind` as last applied.
    bind: RwLock<Vec<String>>,
    /// The address of every listener serving now (as `local_addr` shows it).
    serving: Mutex<Vec<String>>,
    /// The accept loop's inbox (set once it runs).
    replace: Mutex<Option<UnboundedSender<Replacement>>>,
    /// `tls-port` listeners bound at start-up, until the accept loop takes them.
    tls: Mutex<Vec<TcpListener>>,
    /// The address of every `tls-port` listener serving now.
    tls_serving: Mutex<Vec<String>>,
    /// `tls-port` as last applied (0: none).
    tls_port: std::sync::atomic::AtomicU64,
}

impl Listening {
    pub fn new(bind: &[String], tls_port: u16) -> Self {
        Listening {
            bind: RwLock::new(bind.to_vec()),
            serving: Mutex::new(Vec::new()),
            replace: Mutex::new(None),
            tls: Mutex::new(Vec::new()),
            tls_serving: Mutex::new(Vec::new()),
            tls_port: std::sync::atomic::AtomicU64::new(u64::from(tls_port)),
        }
    }

    /// Hands over the `tls-port` listeners (start-up), for the accept loop.
    pub fn set_tls_listeners(&self, listeners: Vec<TcpListener>) {
        *self.tls.lock() = listeners;
    }

    pub fn take_tls_listeners(&self) -> Vec<TcpListener> {
        std::mem::take(&mut *self.tls.lock())
    }

    /// `tls-port` in force (CONFIG GET tls-port).
    pub fn tls_port(&self) -> u16 {
        self.tls_port.load(std::sync::atomic::Ordering::Relaxed) as u16
    }

    /// Called by the accept loop with the listeners it serves (by `host:port`, plain and
    /// TLS): where replacements go.
    pub fn install(
        &self,
        tx: UnboundedSender<Replacement>,
        serving: Vec<String>,
        tls_serving: Vec<String>,
    ) {
        *self.serving.lock() = serving;
        *self.tls_serving.lock() = tls_serving;
        *self.replace.lock() = Some(tx);
    }

    /// CONFIG SET tls-port (and bind, with `tls-port` set): the TLS listeners on `bind`
    /// (or the current addresses) and `port`; 0 closes them. As [`Listening::rebind`]:
    /// kept addresses stay, new ones are bound first, and on failure nothing changes.
    pub fn rebind_tls(&self, bind: Option<&[String]>, port: u16) -> Result<(), BindError> {
        use std::sync::atomic::Ordering;
        let addrs = bind.map_or_else(|| self.bind(), <[String]>::to_vec);
        let mut serving = self.tls_serving.lock();
        let (keep, add) = if port == 0 {
            (Vec::new(), Vec::new())
        } else {
            plan(&addrs, port, &serving)?
        };
        let now = self.hand_over(keep, add, true)?;
        if *serving != now {
            warn!(tls_listening = %now.join(", "), "TLS listening addresses changed by CONFIG SET");
        }
        *serving = now;
        self.tls_port.store(u64::from(port), Ordering::Relaxed);
        Ok(())
    }

    /// The `bind` addresses in force (CONFIG GET bind).
    pub fn bind(&self) -> Vec<String> {
        self.bind.read().clone()
    }

    /// Rebinds on `bind` (or the current addresses) and `port` (or the current one).
    /// A listener whose `host:port` stays is kept (so a `bind` change on the same port
    /// does not have to bind an address twice); the new ones are bound first, and only
    /// once every required one is do the old ones close. On failure nothing changes.
    pub fn rebind(
        &self,
        port_slot: &std::sync::atomic::AtomicU64,
        bind: Option<Vec<String>>,
        port: Option<u16>,
    ) -> Result<(), BindError> {
        use std::sync::atomic::Ordering;
        let addrs = bind.unwrap_or_else(|| self.bind());
        let port = port.unwrap_or(port_slot.load(Ordering::Relaxed) as u16);
        let mut serving = self.serving.lock();
        let (keep, add) = plan(&addrs, port, &serving)?;
        let now = self.hand_over(keep, add, false)?;
        warn!(listening = %now.join(", "), "Listening addresses changed by CONFIG SET");
        *serving = now;
        *self.bind.write() = addrs;
        port_slot.store(u64::from(port), Ordering::Relaxed);
        Ok(())
    }

    /// Gives the accept loop the listeners to keep and the new ones; returns the
    /// `host:port`s served afterwards.
    fn hand_over(
        &self,
        keep: Vec<String>,
        add: Vec<Bound>,
        tls: bool,
    ) -> Result<Vec<String>, BindError> {
        let now: Vec<String> = keep
            .iter()
            .cloned()
            .chain(add.iter().map(|(t, _)| t.clone()))
            .collect();
        match self.replace.lock().as_ref() {
            Some(tx) if tx.send(Replacement { keep, add, tls }).is_ok() => Ok(now),
            _ => Err(BindError {
                addr: now.join(", "),
                source: io::Error::other("the accept loop is not running"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_redis_conf_forms() {
        assert_eq!(target("127.0.0.1", 7), (false, "127.0.0.1:7".into()));
        assert_eq!(target("-::1", 7), (true, "[::1]:7".into()));
        assert_eq!(target("*", 7), (false, "0.0.0.0:7".into()));
        assert_eq!(target("::*", 7), (false, "[::]:7".into()));
    }

    #[tokio::test]
    async fn a_required_address_that_fails_fails_the_whole_bind() {
        let taken = bind_all(&["127.0.0.1".into()], 0).expect("bind");
        let port = taken[0].local_addr().expect("addr").port();
        let e = bind_all(&["127.0.0.1".into()], port).unwrap_err();
        assert_eq!(e.addr, format!("127.0.0.1:{port}"));
        // Optional ones are skipped, but one must bind.
        assert!(bind_all(&["-192.0.2.1".into(), "127.0.0.1".into()], 0).is_ok());
        assert!(bind_all(&["-192.0.2.1".into()], 0).is_err());
    }
}

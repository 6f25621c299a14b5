//! Access control lists, as Redis 7.4: named users with passwords, and what each may run,
//! touch and subscribe to.
//!
//! [`Acl`] is the server's user table. A connection holds an `Arc` of its user; ACL
//! SETUSER, DELUSER and LOAD replace users in the table and bump a generation counter,
//! and each connection picks up its user's new version before its next command (one
//! relaxed load when nothing changed). The default user allowing everything makes
//! [`Acl::check`] a single flag test, so ACLs cost nothing until they are used.
//!
//! `requirepass` is the default user's password, as in Redis: setting it is
//! `resetpass >password`, clearing it `nopass`.

pub mod file;
mod log;
pub mod redis_commands;
mod selector;
mod user;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::cmd::{self, Args, Command};

pub use log::{AclLog, Event, LogContext, LogEntry, LogReason};
pub use selector::{category_index, category_masks, Denied, KeyAccess, RuleError, Selector};
pub use user::{hash_password, merge_selector_args, valid_name, SetUserError, User};

/// The default user's name.
pub const DEFAULT_USER: &[u8] = b"default";

/// Counters for INFO stats (`acl_access_denied_*`).
#[derive(Debug, Default)]
pub struct DeniedCounts {
    pub auth: AtomicU64,
    pub command: AtomicU64,
    pub key: AtomicU64,
    pub channel: AtomicU64,
}

impl DeniedCounts {
    pub fn reset(&self) {
        for c in [&self.auth, &self.command, &self.key, &self.channel] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// The server's users, ACL LOG and settings.
#[derive(Debug)]
pub struct Acl {
    users: RwLock<BTreeMap<Vec<u8>, Arc<User>>>,
    /// Bumped by every change to the table; connections compare it before each command.
    generation: AtomicU64,
    /// The default user is on and needs no password: connections start authenticated.
    default_open: AtomicBool,
    pub log: Mutex<AclLog>,
    pub denied: DeniedCounts,
    /// `aclfile`: where ACL SAVE writes and ACL LOAD reads (start-up only, as Redis).
    pub file: Option<PathBuf>,
    /// `acl-pubsub-default`: new users (and `reset`) allow every channel.
    pub all_channels_default: AtomicBool,
    /// `acllog-max-len`.
    pub log_max_len: AtomicUsize,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new(None, false, 128)
    }
}

impl Acl {
    /// A table with only the default user, allowing everything without a password.
    pub fn new(file: Option<PathBuf>, all_channels_default: bool, log_max_len: usize) -> Self {
        let acl = Acl {
            users: RwLock::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
            default_open: AtomicBool::new(true),
            log: Mutex::new(AclLog::default()),
            denied: DeniedCounts::default(),
            file,
            all_channels_default: AtomicBool::new(all_channels_default),
            log_max_len: AtomicUsize::new(log_max_len),
        };
        acl.users
            .write()
            .insert(DEFAULT_USER.to_vec(), Arc::new(User::default_user()));
        acl
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether new connections are authenticated (and unauthenticated ones may run
    /// commands): the default user is on and has `nopass` (Redis's `authRequired`).
    pub fn default_open(&self) -> bool {
        self.default_open.load(Ordering::Relaxed)
    }

    pub fn pubsub_default(&self) -> bool {
        self.all_channels_default.load(Ordering::Relaxed)
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// A user with the table generation it belongs to (read together, under the lock
    /// every change holds).
    pub fn get_with_generation(&self, name: &[u8]) -> Option<(Arc<User>, u64)> {
        let users = self.users.read();
        let user = users.get(name).cloned()?;
        Some((user, self.generation.load(Ordering::Acquire)))
    }

    /// The default user and the generation, for a new connection.
    pub fn default_with_generation(&self) -> (Arc<User>, u64) {
        self.get_with_generation(DEFAULT_USER)
            .unwrap_or_else(|| (Arc::new(User::default_user()), self.generation()))
    }

    pub fn default_user(&self) -> Arc<User> {
        self.get(DEFAULT_USER)
            .unwrap_or_else(|| Arc::new(User::default_user()))
    }

    /// Every user, in name order (ACL LIST, ACL USERS, ACL SAVE).
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    fn changed(&self, users: &BTreeMap<Vec<u8>, Arc<User>>) {
        let open = users
            .get(DEFAULT_USER)
            .is_some_and(|u| u.enabled && u.nopass);
        self.default_open.store(open, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Stores `user` (new or a new version of an existing one).
    pub fn put(&self, user: User) -> Arc<User> {
        let user = Arc::new(user);
        let mut users = self.users.write();
        users.insert(user.name.clone(), Arc::clone(&user));
        self.changed(&users);
        user
    }

    /// Removes a user; false if there was none. The default user cannot be removed (the
    /// caller refuses it first).
    pub fn remove(&self, name: &[u8]) -> bool {
        let mut users = self.users.write();
        let removed = users.remove(name).is_some();
        if removed {
            self.changed(&users);
        }
        removed
    }

    /// Replaces the whole table (ACL LOAD, start-up); a table without the default user
    /// gets a fresh one, as Redis's.
    pub fn replace(&self, mut table: BTreeMap<Vec<u8>, User>) {
        table
            .entry(DEFAULT_USER.to_vec())
            .or_insert_with(User::default_user);
        let mut users = self.users.write();
        *users = table.into_iter().map(|(k, u)| (k, Arc::new(u))).collect();
        self.changed(&users);
    }

    /// The credentials check of AUTH and HELLO: the user exists, is on, and has `nopass`
    /// or this password.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let user = self.get(name)?;
        user.accepts(password).then_some(user)
    }

    /// Applies `requirepass` to the default user: `resetpass >pw`, or `nopass` when
    /// empty.
    pub fn set_default_password(&self, password: Option<&str>) {
        let mut user = (*self.default_user()).clone();
        user.set_only_password(password.map(str::as_bytes));
        self.put(user);
    }
}

/// The start-up user table: the default user (with `requirepass`), then the `user`
/// directives, or the ACL file — not both, as Redis refuses.
pub fn startup_table(config: &crate::config::Config) -> Result<BTreeMap<Vec<u8>, User>, String> {
    let all_channels = config.acl_pubsub_default == "allchannels";
    if !config.user.is_empty() && !config.aclfile.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting                     an ACL file path is invalid. This setup is very likely to lead to                     configuration errors and security holes, please define either an ACL                     file or declare users directly in your redis.conf, but not both."
            .into());
    }
    let mut table = if config.aclfile.is_empty() {
        file::from_directives(&config.user, all_channels)?
    } else {
        file::load(std::path::Path::new(&config.aclfile), all_channels)?
    };
    if !table.contains_key(DEFAULT_USER) {
        let mut d = User::default_user();
        d.set_only_password(config.requirepass.as_deref().map(str::as_bytes));
        table.insert(DEFAULT_USER.to_vec(), d);
    }
    Ok(table)
}

impl Acl {
    /// The server's table at start-up (validated before: a failure here, which only a
    /// file changed in between could cause, leaves the default user alone).
    pub fn from_config(config: &crate::config::Config) -> Self {
        let file = (!config.aclfile.is_empty()).then(|| PathBuf::from(&config.aclfile));
        let acl = Acl::new(
            file,
            config.acl_pubsub_default == "allchannels",
            config.acllog_max_len as usize,
        );
        match startup_table(config) {
            Ok(t) => acl.replace(t),
            Err(why) => {
                tracing::warn!(%why, "ACL users not loaded");
                acl.set_default_password(config.requirepass.as_deref());
            }
        }
        acl
    }
}

/// Where the check of one command found it refused, with what ACL LOG and the reply need.
#[derive(Debug)]
pub struct Refusal {
    pub denied: Denied,
    /// The key, channel or command name ACL LOG records.
    pub object: Vec<u8>,
}

/// Redis's `ACLCheckAllUserCommandPerm`: whether `user` may run `command` (at table
/// `index`) with `args`. Any selector allowing it is enough; otherwise the most relevant
/// denial is reported.
pub fn check(user: &User, index: usize, command: &Command, args: Args<'_>) -> Result<(), Refusal> {
    if user.root.unrestricted() {
        return Ok(());
    }
    // Keys and channels are looked up only when some selector restricts them.
    let keys = if command.first_key > 0 && user.selectors().any(|s| !s.all_keys) {
        key_refs(index, command, args)
    } else {
        Vec::new()
    };
    let channels = if user.selectors().any(|s| !s.all_channels) {
        channel_refs(command, args)
    } else {
        Vec::new()
    };
    let mut worst: Option<Denied> = None;
    for s in user.selectors() {
        match s.check(index, command, args, &keys, &channels) {
            Ok(()) => return Ok(()),
            Err(d) => worst = Some(worst.map_or(d, |w| w.most_relevant(d))),
        }
    }
    let denied = worst.unwrap_or(Denied::Command);
    let object = match denied {
        Denied::Command => command.name.as_bytes().to_vec(),
        Denied::Key(p) | Denied::Channel(p) => args.get(p).to_vec(),
    };
    Err(Refusal { denied, object })
}

/// The error text a refused command gets: Redis's `getAclErrorMessage`, verbose (ACL
/// DRYRUN) or not (a command's `-NOPERM` reply).
pub fn denial_message(user: &[u8], command: &Command, r: &Refusal, verbose: bool) -> Vec<u8> {
    let mut m = Vec::new();
    match r.denied {
        Denied::Command => {
            m.extend_from_slice(b"User ");
            m.extend_from_slice(user);
            m.extend_from_slice(b" has no permissions to run the '");
            m.extend_from_slice(command.name.as_bytes());
            m.extend_from_slice(b"' command");
        }
        Denied::Key(_) if verbose => {
            m.extend_from_slice(b"User ");
            m.extend_from_slice(user);
            m.extend_from_slice(b" has no permissions to access the '");
            m.extend_from_slice(&r.object);
            m.extend_from_slice(b"' key");
        }
        Denied::Key(_) => m.extend_from_slice(b"No permissions to access a key"),
        Denied::Channel(_) if verbose => {
            m.extend_from_slice(b"User ");
            m.extend_from_slice(user);
            m.extend_from_slice(b" has no permissions to access the '");
            m.extend_from_slice(&r.object);
            m.extend_from_slice(b"' channel");
        }
        Denied::Channel(_) => m.extend_from_slice(b"No permissions to access a channel"),
    }
    m
}

/// The command (or subcommand) `args` names, with its table index, if it exists and
/// its arity fits (what ACL DRYRUN checks before the permissions).
pub fn resolve_command(args: Args<'_>) -> Option<(usize, &'static Command)> {
    cmd::resolve_for_acl(args).ok()
}

/// The keys of a request and what the command does to each (Redis's key specs).
pub fn key_refs(index: usize, command: &Command, args: Args<'_>) -> Vec<(usize, KeyAccess)> {
    cmd::command::key_access(index, command, args.len())
}

/// The channels of a request: (position, is a pattern). Only publishing and subscribing
/// are checked, as in Redis (unsubscribing never is).
pub fn channel_refs(command: &Command, args: Args<'_>) -> Vec<(usize, bool)> {
    match command.name {
        "publish" => vec![(1, false)],
        "subscribe" => (1..args.len()).map(|p| (p, false)).collect(),
        "psubscribe" => (1..args.len()).map(|p| (p, true)).collect(),
        _ => Vec::new(),
    }
}

/// ACL GENPASS: `bits` of randomness from the system's secure generator, as hex.
pub fn generate_password(bits: usize) -> Option<String> {
    use ring::rand::SecureRandom;
    let chars = bits.div_ceil(4);
    let mut raw = vec![0u8; chars.div_ceil(2)];
    ring::rand::SystemRandom::new().fill(&mut raw).ok()?;
    let mut hex = String::with_capacity(raw.len() * 2);
    for b in raw {
        hex.push_str(&format!("{b:02x}"));
    }
    hex.truncate(chars);
    Some(hex)
}

//! Configuration: built-in defaults, overridden by a TOML file, overridden by
//! redis-server-style command-line flags. [`Config`] is what was asked for at start-up;
//! [`LiveConfig`] holds the parameters CONFIG SET may change while running.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use clap::Parser;
use parking_lot::RwLock;
use serde::Deserialize;

use crate::error::StartupError;

pub const DEFAULT_PORT: u16 = 6379;
pub const DEFAULT_DATABASES: usize = 16;
pub const DEFAULT_MAXCLIENTS: u64 = 10_000;
pub const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
pub const DEFAULT_QUERY_BUFFER_LIMIT: u64 = 1024 * 1024 * 1024;
/// `proto-max-bulk-len` may not go below this (Redis's minimum).
pub const MIN_PROTO_MAX_BULK_LEN: u64 = 1024 * 1024;
pub const DEFAULT_HZ: u64 = 10;
/// Share of one core the sweeper may use, in percent.
pub const DEFAULT_SWEEPER_CPU_PERCENT: u64 = 25;

/// Command-line flags. Each overrides the same option of the config file.
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "hashd",
    version,
    about = "A Redis-protocol server for hashes with per-field expiration"
)]
pub struct Cli {
    /// Path to a TOML config file (see config/hashd.toml).
    pub config: Option<PathBuf>,
    /// TCP port to listen on.
    #[arg(long)]
    pub port: Option<u16>,
    /// Addresses to listen on (several allowed, like redis-server's `bind`).
    #[arg(long, num_args = 1..)]
    pub bind: Option<Vec<String>>,
    /// Password clients must AUTH with (user `default`).
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Number of databases (SELECT 0..N-1).
    #[arg(long)]
    pub databases: Option<usize>,
    /// Maximum simultaneous clients.
    #[arg(long)]
    pub maxclients: Option<u64>,
    /// Log level: debug, verbose, notice, warning (Redis names) or trace/info/warn/error.
    #[arg(long)]
    pub loglevel: Option<String>,
    /// Shards per database (rounded up to a power of two, at most 256).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Worker threads serving clients (0 = one per CPU core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Background expiry cycles per second.
    #[arg(long)]
    pub hz: Option<u64>,
    /// Largest bulk string a client may send, in bytes.
    #[arg(long = "proto-max-bulk-len")]
    pub proto_max_bulk_len: Option<u64>,
    /// Largest query buffer per client, in bytes.
    #[arg(long = "client-query-buffer-limit")]
    pub client_query_buffer_limit: Option<u64>,
    /// Hashes with more fields than this use the table encoding.
    #[arg(long = "hash-max-listpack-entries")]
    pub hash_max_listpack_entries: Option<usize>,
    /// Hashes with a field or value longer than this use the table encoding.
    #[arg(long = "hash-max-listpack-value")]
    pub hash_max_listpack_value: Option<usize>,
    /// Redis directives hashd accepts and ignores, so that redis-server command lines in
    /// docker-compose files keep working (`--save ''`, `--appendonly yes`, …).
    #[arg(long = "save", num_args = 0.., allow_hyphen_values = false, hide = true)]
    pub ignored_save: Option<Vec<String>>,
    #[arg(long = "appendonly", hide = true)]
    pub ignored_appendonly: Option<String>,
    #[arg(long = "protected-mode", hide = true)]
    pub ignored_protected_mode: Option<String>,
    #[arg(long = "dir", hide = true)]
    pub ignored_dir: Option<String>,
    #[arg(long = "daemonize", hide = true)]
    pub ignored_daemonize: Option<String>,
    #[arg(long = "maxmemory", hide = true)]
    pub ignored_maxmemory: Option<String>,
    #[arg(long = "maxmemory-policy", hide = true)]
    pub ignored_maxmemory_policy: Option<String>,
    #[arg(long = "logfile", hide = true)]
    pub ignored_logfile: Option<String>,
    #[arg(long = "timeout", hide = true)]
    pub ignored_timeout: Option<String>,
    #[arg(long = "tcp-keepalive", hide = true)]
    pub ignored_tcp_keepalive: Option<String>,
    #[arg(long = "io-threads", hide = true)]
    pub ignored_io_threads: Option<String>,
    #[arg(long = "loadmodule", hide = true)]
    pub ignored_loadmodule: Option<Vec<String>>,
}

impl Cli {
    /// Names of the Redis directives given on the command line that hashd ignores.
    pub fn ignored_directives(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let pairs: [(&'static str, bool); 12] = [
            ("save", self.ignored_save.is_some()),
            ("appendonly", self.ignored_appendonly.is_some()),
            ("protected-mode", self.ignored_protected_mode.is_some()),
            ("dir", self.ignored_dir.is_some()),
            ("daemonize", self.ignored_daemonize.is_some()),
            ("maxmemory", self.ignored_maxmemory.is_some()),
            ("maxmemory-policy", self.ignored_maxmemory_policy.is_some()),
            ("logfile", self.ignored_logfile.is_some()),
            ("timeout", self.ignored_timeout.is_some()),
            ("tcp-keepalive", self.ignored_tcp_keepalive.is_some()),
            ("io-threads", self.ignored_io_threads.is_some()),
            ("loadmodule", self.ignored_loadmodule.is_some()),
        ];
        for (name, given) in pairs {
            if given {
                v.push(name);
            }
        }
        v
    }
}

/// The start-up configuration. Field names follow redis.conf with `-` as `_` in TOML,
/// and the TOML file may use either spelling (`hash-max-listpack-entries` or
/// `hash_max_listpack_entries`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    pub requirepass: Option<String>,
    pub databases: usize,
    pub maxclients: u64,
    pub loglevel: String,
    pub shards: usize,
    /// Worker threads serving clients; 0 means one per CPU core.
    pub threads: usize,
    pub hz: u64,
    /// Share of one core the background sweeper may use, in percent (1–100).
    pub sweeper_cpu_percent: u64,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    /// Where the configuration came from, for the start-up banner.
    #[serde(skip)]
    pub source: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: DEFAULT_PORT,
            bind: vec!["127.0.0.1".into()],
            requirepass: None,
            databases: DEFAULT_DATABASES,
            maxclients: DEFAULT_MAXCLIENTS,
            loglevel: "notice".into(),
            shards: 8,
            threads: 0,
            hz: DEFAULT_HZ,
            sweeper_cpu_percent: DEFAULT_SWEEPER_CPU_PERCENT,
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            client_query_buffer_limit: DEFAULT_QUERY_BUFFER_LIMIT,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            source: "built-in defaults".into(),
        }
    }
}

fn invalid(option: &str, reason: impl Into<String>) -> StartupError {
    StartupError::InvalidOption {
        option: option.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// Defaults ← config file (if given) ← flags; then validation.
    pub fn load(cli: &Cli) -> Result<Config, StartupError> {
        let mut cfg = match &cli.config {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        cfg.apply_cli(cli);
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Config, StartupError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| StartupError::ConfigRead {
            path: display.clone(),
            source,
        })?;
        let mut cfg = Self::from_toml(&text).map_err(|message| StartupError::ConfigParse {
            path: display.clone(),
            message,
        })?;
        cfg.source = display;
        Ok(cfg)
    }

    /// Parses TOML text; keys may use `-` or `_`.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let value: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let normalized: toml::Table = value
            .into_iter()
            .map(|(k, v)| (k.replace('_', "-"), v))
            .collect();
        Config::deserialize(toml::Value::Table(normalized)).map_err(|e| e.message().to_string())
    }

    fn apply_cli(&mut self, cli: &Cli) {
        let mut from_flags = false;
        macro_rules! take {
            ($field:ident) => {
                if let Some(v) = &cli.$field {
                    self.$field = v.clone();
                    from_flags = true;
                }
            };
        }
        take!(port);
        take!(bind);
        take!(databases);
        take!(maxclients);
        take!(loglevel);
        take!(shards);
        take!(threads);
        take!(hz);
        take!(proto_max_bulk_len);
        take!(client_query_buffer_limit);
        take!(hash_max_listpack_entries);
        take!(hash_max_listpack_value);
        if let Some(p) = &cli.requirepass {
            self.requirepass = (!p.is_empty()).then(|| p.clone());
            from_flags = true;
        }
        if from_flags {
            self.source = format!("{} + command-line flags", self.source);
        }
    }

    pub fn validate(&self) -> Result<(), StartupError> {
        if self.bind.is_empty() {
            return Err(invalid("bind", "at least one address is required"));
        }
        if !(1..=1_000_000).contains(&self.databases) {
            return Err(invalid("databases", "must be between 1 and 1000000"));
        }
        if self.maxclients == 0 {
            return Err(invalid("maxclients", "must be at least 1"));
        }
        if !(1..=256).contains(&self.shards) {
            return Err(invalid("shards", "must be between 1 and 256"));
        }
        if self.threads > 1024 {
            return Err(invalid(
                "threads",
                "must be between 0 (one per core) and 1024",
            ));
        }
        if !(1..=500).contains(&self.hz) {
            return Err(invalid("hz", "must be between 1 and 500"));
        }
        if !(1..=100).contains(&self.sweeper_cpu_percent) {
            return Err(invalid("sweeper-cpu-percent", "must be between 1 and 100"));
        }
        if self.proto_max_bulk_len < MIN_PROTO_MAX_BULK_LEN {
            return Err(invalid(
                "proto-max-bulk-len",
                "must be at least 1048576 (1mb)",
            ));
        }
        if self.client_query_buffer_limit < 1024 * 1024 {
            return Err(invalid(
                "client-query-buffer-limit",
                "must be at least 1048576 (1mb)",
            ));
        }
        if tracing_level(&self.loglevel).is_none() {
            return Err(invalid(
                "loglevel",
                "must be one of debug, verbose, notice, warning, nothing, trace, info, warn, error",
            ));
        }
        Ok(())
    }
}

/// Maps Redis log level names (and tracing's own) onto a tracing filter directive.
pub fn tracing_level(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" | "verbose" => "debug",
        "notice" | "info" => "info",
        "warning" | "warn" => "warn",
        "error" => "error",
        "nothing" | "off" => "off",
        _ => return None,
    })
}

/// Parameters that CONFIG SET may change at run time.
#[derive(Debug)]
pub struct LiveConfig {
    pub requirepass: RwLock<Option<String>>,
    pub maxclients: AtomicU64,
    pub hz: AtomicU64,
    pub sweeper_cpu_percent: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    pub client_query_buffer_limit: AtomicU64,
    /// DEBUG SET-ACTIVE-EXPIRE: whether the sweeper runs.
    pub active_expire: AtomicBool,
    /// The start-up configuration (read-only values such as port and databases).
    pub startup: Config,
}

impl LiveConfig {
    pub fn new(cfg: &Config) -> Self {
        LiveConfig {
            requirepass: RwLock::new(cfg.requirepass.clone()),
            maxclients: AtomicU64::new(cfg.maxclients),
            hz: AtomicU64::new(cfg.hz),
            sweeper_cpu_percent: AtomicU64::new(cfg.sweeper_cpu_percent),
            proto_max_bulk_len: AtomicU64::new(cfg.proto_max_bulk_len),
            client_query_buffer_limit: AtomicU64::new(cfg.client_query_buffer_limit),
            active_expire: AtomicBool::new(true),
            startup: cfg.clone(),
        }
    }

    pub fn requires_auth(&self) -> bool {
        self.requirepass.read().is_some()
    }

    pub fn get(&self, v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::load(&Cli::default()).unwrap();
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, vec!["127.0.0.1".to_string()]);
        assert_eq!(c.databases, 16);
        assert_eq!(c.maxclients, 10_000);
        assert_eq!(c.requirepass, None);
    }

    #[test]
    fn flags_override_file() {
        let mut cfg = Config::from_toml("port = 7000\nhash_max_listpack_entries = 8\n").unwrap();
        assert_eq!(cfg.port, 7000);
        assert_eq!(cfg.hash_max_listpack_entries, 8);
        let cli = Cli::try_parse_from(["hashd", "--port", "7001", "--requirepass", "pw"]).unwrap();
        cfg.apply_cli(&cli);
        assert_eq!(cfg.port, 7001);
        assert_eq!(cfg.requirepass.as_deref(), Some("pw"));
    }

    #[test]
    fn bad_values_name_the_option() {
        let err = Config::from_toml("port = \"x\"").unwrap_err();
        assert!(
            err.contains("port") || err.contains("invalid type"),
            "{err}"
        );
        let err = Config::from_toml("nosuch = 1").unwrap_err();
        assert!(err.contains("nosuch"), "{err}");
        let cfg = Config {
            hz: 0,
            ..Config::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("'hz'"));
    }

    #[test]
    fn redis_directives_are_accepted() {
        let cli = Cli::try_parse_from([
            "hashd",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--port",
            "6380",
        ])
        .unwrap();
        assert_eq!(cli.port, Some(6380));
        assert_eq!(cli.ignored_directives(), vec!["save", "appendonly"]);
    }

    #[test]
    fn example_config_file_parses_to_defaults() {
        let text = include_str!("../config/hashd.toml");
        let mut cfg = Config::from_toml(text).unwrap();
        cfg.source = Config::default().source;
        assert_eq!(cfg, Config::default());
    }
}

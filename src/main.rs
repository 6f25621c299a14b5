//! The `hashd` binary: flags → config → logging → bind → serve until a signal or SHUTDOWN.
//!
//! The log is written in redis-server's format (`<pid>:<role> <date> <level> <message>`)
//! with Redis's words for the start-up events, so tools that wait for
//! `Ready to accept connections` (testcontainers, Spring) work unchanged.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing::{error, info, warn};

use hashd::clock::Clock;
use hashd::config::{tracing_level, Cli, Config};
use hashd::context::ServerContext;
use hashd::error::StartupError;

/// File descriptors kept for the server's own use beyond one per client (Redis's
/// `CONFIG_MIN_RESERVED_FDS`): listeners, the runtime's poller, snapshot files, pipes.
const MIN_RESERVED_FDS: u64 = 32;

fn main() -> ExitCode {
    // Redis ignores SIGHUP: closing the terminal that started the server must not stop it.
    hashd::shutdown::ignore_hangup();
    let (args, ignored_flags) = hashd::config::strip_ignored_flags(hashd::config::join_user_flags(
        std::env::args_os().collect(),
    ));
    // A setting hashd does not implement passes only with the value that describes what
    // hashd does (`--maxmemory 0`); anything else stops here, naming it.
    for (name, values) in &ignored_flags {
        if let Err(e) = hashd::config::check_unimplemented(name, values) {
            eprintln!("hashd: invalid option {name}: {e}");
            return ExitCode::from(1);
        }
    }
    let cli = Cli::parse_from(args);
    let mut config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hashd: {e}");
            return ExitCode::from(1);
        }
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = tracing_level(&config.loglevel).unwrap_or("info");
    let filter = tracing_subscriber::EnvFilter::try_from_env("HASHD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("hashd={level}")));
    // The filter can be swapped at run time (CONFIG SET loglevel).
    let (filter, reload) = tracing_subscriber::reload::Layer::new(filter);
    let writer = if config.logfile.is_empty() {
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stdout)
    } else {
        // As Redis: appended to, created if missing.
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.logfile)
        {
            Ok(f) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(f)),
            Err(e) => {
                eprintln!("hashd: can't open the log file {}: {e}", config.logfile);
                return ExitCode::from(1);
            }
        }
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(redis_log::RedisFormat::new())
                .with_writer(writer),
        )
        .init();
    let set_level: hashd::context::LogLevelSetter = Box::new(move |name: &str| {
        let directive = tracing_level(name).ok_or(())?;
        reload
            .modify(|f| *f = tracing_subscriber::EnvFilter::new(format!("hashd={directive}")))
            .map_err(|_| ())
    });
    let _pidfile = match PidFile::write(&config.pidfile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hashd: can't write the pid file {}: {e}", config.pidfile);
            return ExitCode::from(1);
        }
    };
    let pid = std::process::id();
    info!("oO0OoO0OoO0Oo hashd is starting oO0OoO0OoO0Oo");
    info!(
        "hashd version={}, bits={}, commit={}, modified=0, pid={pid}, just started",
        env!("CARGO_PKG_VERSION"),
        usize::BITS,
        option_env!("HASHD_GIT_SHA1").unwrap_or("00000000"),
    );
    info!(config = %config.source, "Configuration loaded");
    for name in ignored_flags.iter().map(|(n, _)| n).chain(&config.ignored) {
        info!(directive = %name, "accepted and ignored redis-server directive");
    }
    if let Err(code) = adjust_open_files_limit(&mut config) {
        return code;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.threads > 0 {
        builder.worker_threads(config.threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hashd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(config, set_level)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("hashd: {e}");
            ExitCode::from(1)
        }
    }
}

/// `pidfile`: the process id, written at start-up and removed on the way out (as Redis).
struct PidFile(Option<std::path::PathBuf>);

impl PidFile {
    fn write(path: &str) -> std::io::Result<PidFile> {
        if path.is_empty() {
            return Ok(PidFile(None));
        }
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile(Some(path.into())))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Redis's `adjustOpenFilesLimit`: raises RLIMIT_NOFILE to `maxclients` + 32 if it is
/// lower, trying ever smaller limits (16 at a time) when the system refuses; when the
/// limit stays short, lowers `maxclients` to what fits, with Redis's warning. Exits (as
/// Redis does) when not even the reserved descriptors fit.
fn adjust_open_files_limit(config: &mut Config) -> Result<(), ExitCode> {
    let wanted = config.maxclients.saturating_add(MIN_RESERVED_FDS);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == -1 {
        let e = std::io::Error::last_os_error();
        config.maxclients = 1024 - MIN_RESERVED_FDS;
        warn!(
            "Unable to obtain the current NOFILE limit ({e}), assuming 1024 and setting the max clients configuration accordingly."
        );
        return Ok(());
    }
    let old: u64 = limit.rlim_cur;
    if old >= wanted {
        return Ok(());
    }
    let hard: u64 = limit.rlim_max;
    let mut best = wanted;
    let mut os_error = None;
    while best > old {
        let attempt = libc::rlimit {
            rlim_cur: best,
            // Never lowers the hard limit (Redis sets both to `best`).
            rlim_max: hard.max(best),
        };
        // SAFETY: setrlimit only reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &attempt) } != -1 {
            break;
        }
        os_error = Some(std::io::Error::last_os_error());
        if best < 16 {
            best = old;
            break;
        }
        best -= 16;
    }
    best = best.max(old);
    if best >= wanted {
        info!(
            "Increased maximum number of open files to {wanted} (it was originally set to {old})."
        );
        return Ok(());
    }
    if best <= MIN_RESERVED_FDS {
        warn!(
            "Your current 'ulimit -n' of {old} is not enough for the server to start. Please increase your open file limit to at least {wanted}. Exiting."
        );
        eprintln!("hashd: the open files limit ({old}) is too low; at least {wanted} needed");
        return Err(ExitCode::from(1));
    }
    let requested = config.maxclients;
    config.maxclients = best - MIN_RESERVED_FDS;
    let why = os_error
        .map(|e| strip_os_error_code(&e))
        .unwrap_or_else(|| "unknown".into());
    warn!(
        "You requested maxclients of {requested} requiring at least {wanted} max file descriptors."
    );
    warn!("Server can't set maximum open files to {wanted} because of OS error: {why}.");
    warn!(
        "Current maximum open files is {best}. maxclients has been reduced to {} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
        config.maxclients
    );
    Ok(())
}

/// `strerror` text: Rust's io::Error adds " (os error N)".
fn strip_os_error_code(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

async fn serve(
    config: Config,
    set_level: hashd::context::LogLevelSetter,
) -> Result<(), StartupError> {
    let bind_error = |e: hashd::listen::BindError| StartupError::Bind {
        addr: e.addr,
        source: e.source,
    };
    // `port 0` with a `tls-port` serves TLS only, as Redis; without one it binds a free
    // port (tests read it from the log).
    let listeners = if config.port == 0 && config.tls_port != 0 {
        Vec::new()
    } else {
        hashd::listen::bind_all(&config.bind, config.port).map_err(bind_error)?
    };
    let tls_listeners = if config.tls_port != 0 {
        hashd::listen::bind_all(&config.bind, config.tls_port).map_err(bind_error)?
    } else {
        Vec::new()
    };
    let server = Arc::new(ServerContext::new(&config, Clock::system()));
    server.set_log_level_setter(set_level);
    let tls_addrs: Vec<String> = tls_listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    if !tls_addrs.is_empty() {
        info!(tls_listening = %tls_addrs.join(", "), "TLS clients on tls-port");
    }
    server.listening.set_tls_listeners(tls_listeners);
    if let Some(port) = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port())
    {
        server
            .port
            .store(u64::from(port), std::sync::atomic::Ordering::Relaxed);
    }
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    // `listening=` names every bound address (tests and scripts read the port from it).
    info!(
        listening = %addrs.join(", "),
        "Running mode=standalone, port={}.",
        server.port.load(std::sync::atomic::Ordering::Relaxed)
    );
    info!("Server initialized");
    let srv = Arc::clone(&server);
    tokio::spawn(async move {
        let name = hashd::shutdown::os_signal().await;
        warn!("Received {name} scheduling shutdown...");
        srv.shutdown.trigger();
    });
    hashd::server::run(listeners, Arc::clone(&server)).await;
    match server.failure() {
        Some(why) => Err(StartupError::Fatal(why)),
        None => Ok(()),
    }
}

/// redis-server's log line: `<pid>:<role> <dd Mon yyyy HH:MM:SS.mmm> <level> <message>`,
/// the level as Redis marks it (`.` debug, `-` verbose, `*` notice, `#` warning) and the
/// role `M` (the server) or `C` (a forked child: BGSAVE, rewrite). Fields follow the
/// message as ` key=value`.
mod redis_log {
    use std::fmt;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    pub struct RedisFormat {
        pid: u32,
        /// The local time's offset from UTC in seconds, and the UTC hour it was read for
        /// (refreshed hourly by the server process, for daylight saving changes).
        offset_s: AtomicI64,
        offset_hour: AtomicI64,
    }

    impl RedisFormat {
        pub fn new() -> Self {
            let f = RedisFormat {
                pid: std::process::id(),
                offset_s: AtomicI64::new(0),
                offset_hour: AtomicI64::new(i64::MIN),
            };
            f.offset(now().0);
            f
        }

        /// Seconds east of UTC. A forked child never calls into libc's time zone code
        /// (its lock may have been held by another thread at the fork): it keeps the
        /// offset it inherited.
        fn offset(&self, unix_s: i64) -> i64 {
            let hour = unix_s.div_euclid(3600);
            if self.offset_hour.load(Ordering::Relaxed) != hour && std::process::id() == self.pid {
                let t = unix_s as libc::time_t;
                // SAFETY: zeroed `tm` is a valid value; localtime_r writes into it.
                let mut tm: libc::tm = unsafe { std::mem::zeroed() };
                if !unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
                    self.offset_s.store(tm.tm_gmtoff as i64, Ordering::Relaxed);
                }
                self.offset_hour.store(hour, Ordering::Relaxed);
            }
            self.offset_s.load(Ordering::Relaxed)
        }
    }

    fn now() -> (i64, u32) {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (d.as_secs() as i64, d.subsec_millis())
    }

    /// `01 Dec 2026 10:02:00.685` for a local time in seconds since the epoch.
    pub fn format_time(local_s: i64, millis: u32) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let days = local_s.div_euclid(86_400);
        let secs = local_s.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{day:02} {} {year} {:02}:{:02}:{:02}.{millis:03}",
            MONTHS[(month - 1) as usize],
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    impl<S, N> FormatEvent<S, N> for RedisFormat
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> fmt::Result {
            let pid = std::process::id();
            let role = if pid == self.pid { 'M' } else { 'C' };
            let level = match *event.metadata().level() {
                Level::ERROR | Level::WARN => '#',
                Level::INFO => '*',
                Level::DEBUG => '-',
                Level::TRACE => '.',
            };
            let (s, ms) = now();
            let when = format_time(s + self.offset(s), ms);
            write!(writer, "{pid}:{role} {when} {level} ")?;
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            writeln!(writer)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::format_time;

        #[test]
        fn dates_as_redis_prints_them() {
            assert_eq!(format_time(0, 0), "01 Jan 1970 00:00:00.000");
            // 2026-12-01 10:02:00 UTC
            assert_eq!(format_time(1_796_119_320, 685), "01 Dec 2026 10:02:00.685");
            // 2024-02-29 23:59:59 UTC (leap day)
            assert_eq!(format_time(1_709_251_199, 7), "29 Feb 2024 23:59:59.007");
        }
    }
}

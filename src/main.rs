//! The `hashd` binary: flags → config → logging → bind → serve until a signal or SHUTDOWN.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;
use tracing::{error, info};

use hashd::clock::Clock;
use hashd::config::{tracing_level, Cli, Config};
use hashd::context::ServerContext;
use hashd::error::StartupError;

fn main() -> ExitCode {
    let (args, ignored_flags) = hashd::config::strip_ignored_flags(std::env::args_os().collect());
    let cli = Cli::parse_from(args);
    let config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hashd: {e}");
            return ExitCode::from(1);
        }
    };
    let level = tracing_level(&config.loglevel).unwrap_or("info");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HASHD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("hashd={level}"))),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    for name in ignored_flags.iter().chain(&config.ignored) {
        info!(directive = %name, "accepted and ignored redis-server directive");
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
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("hashd: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(config: Config) -> Result<(), StartupError> {
    let mut listeners = Vec::new();
    for addr in &config.bind {
        // redis.conf forms: "-addr" may fail quietly, "*" is every IPv4 address, "::*" IPv6.
        let optional = addr.starts_with('-');
        let host = match addr.trim_start_matches('-') {
            "*" => "0.0.0.0",
            "::*" => "::",
            other => other,
        };
        let target = if host.contains(':') {
            format!("[{}]:{}", host, config.port)
        } else {
            format!("{}:{}", host, config.port)
        };
        match TcpListener::bind(&target).await {
            Ok(l) => listeners.push(l),
            Err(e) if optional => {
                info!(address = %target, error = %e, "optional bind address unavailable")
            }
            Err(source) => {
                return Err(StartupError::Bind {
                    addr: target.clone(),
                    source,
                })
            }
        }
    }
    if listeners.is_empty() {
        return Err(StartupError::Bind {
            addr: config.bind.join(" "),
            source: std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                "no address could be bound",
            ),
        });
    }
    let server = Arc::new(ServerContext::new(&config, Clock::system()));
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
    info!(
        version = env!("CARGO_PKG_VERSION"),
        listening = %addrs.join(", "),
        config = %config.source,
        "hashd ready to accept connections"
    );
    let srv = Arc::clone(&server);
    tokio::spawn(async move {
        hashd::shutdown::os_signal().await;
        info!("signal received");
        srv.shutdown.trigger();
    });
    hashd::server::run(listeners, Arc::clone(&server)).await;
    match server.failure() {
        Some(why) => Err(StartupError::Fatal(why)),
        None => Ok(()),
    }
}

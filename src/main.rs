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
    let cli = Cli::parse();
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
    for name in cli.ignored_directives() {
        info!(
            directive = name,
            "accepted and ignored redis-server directive"
        );
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
        let target = format!("{}:{}", addr, config.port);
        let l = TcpListener::bind(&target)
            .await
            .map_err(|source| StartupError::Bind {
                addr: target.clone(),
                source,
            })?;
        listeners.push(l);
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
    hashd::server::run(listeners, server).await;
    Ok(())
}

//! `capacloud-indexer`: follows the marketplace contract's finalized events into a database
//! and serves the query API and the dashboard.
//!
//! - `capacloud-indexer run --contract 0x… [--database-url …] [--listen …]`: backfill, then
//!   follow the finalized head, serving HTTP all along.
//! - `capacloud-indexer rebuild [--database-url …]`: recompute the derived tables from the
//!   raw events (no chain needed).
//!
//! Exit codes: 0 after a clean shutdown; 1 when the chain or the database fails, or the
//! database holds another chain's or contract's events; 2 for bad flags.

use anyhow::{Context, Result};
use capacloud_client::chain;
use capacloud_indexer::api::{self, AppState};
use capacloud_indexer::ingest::{self, Options, Progress};
use capacloud_indexer::store::Store;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "capacloud-indexer", version, about = "CapaCloud market indexer, query API and dashboard")]
struct Cli {
    /// Database: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` (default: SQLite under
    /// $CAPACLOUD_HOME/indexer.sqlite).
    #[arg(long, env = "CAPACLOUD_INDEXER_DB", global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Backfill and follow the chain, serving the API and dashboard.
    Run {
        /// Node WebSocket URL.
        #[arg(long, env = "CAPACLOUD_URL", default_value = "ws://127.0.0.1:9944")]
        url: String,
        /// Marketplace contract address.
        #[arg(long, env = "CAPACLOUD_CONTRACT")]
        contract: String,
        /// Index from this block instead of the contract's deployment block (found by
        /// bisection on an archive node).
        #[arg(long)]
        from_block: Option<u32>,
        /// Blocks per database transaction.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch_blocks: u32,
        /// HTTP address of the API and dashboard.
        #[arg(long, env = "CAPACLOUD_INDEXER_LISTEN", default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        /// Seconds between looks at the finalized head once caught up.
        #[arg(long, default_value_t = 1.0)]
        poll_secs: f64,
    },
    /// Recompute the derived tables from the raw events.
    Rebuild,
}

/// Bad flags: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn default_db() -> String {
    let home = capacloud_client::keys::capacloud_home().unwrap_or_else(|| PathBuf::from("."));
    format!("sqlite://{}", home.join("indexer.sqlite").display())
}

use capacloud_client::shutdown_signal;

async fn run(cli: Cli) -> Result<()> {
    let db = cli.database_url.unwrap_or_else(default_db);
    if let Some(path) = db.strip_prefix("sqlite://") {
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    } else if !db.starts_with("postgres://") && !db.starts_with("postgresql://") && !db.starts_with("sqlite:") {
        return Err(BadInput(format!("--database-url must start with sqlite:// or postgres://, not {db:?}")).into());
    }
    let store = Store::open(&db).await.with_context(|| format!("opening the database {db}"))?;
    match cli.command {
        Command::Rebuild => {
            let fold = store.rebuild().await?;
            println!("rebuilt: {} jobs, {} accounts, {} offers, {} price points", fold.jobs.len(), fold.accounts.len(), fold.offers.len(), fold.prices.len());
            Ok(())
        }
        Command::Run { url, contract, from_block, batch_blocks, listen, poll_secs } => {
            let contract = chain::parse_address(&contract).map_err(|e| BadInput(e.to_string()))?;
            if !(0.05..=60.0).contains(&poll_secs) {
                return Err(BadInput("--poll-secs must be 0.05 to 60".into()).into());
            }
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| BadInput(format!("cannot listen on {listen}: {e}")))?;
            let progress = Arc::new(Progress::default());
            let state = AppState { store: store.clone(), progress: progress.clone(), registry: Arc::new(progress.registry()), contract };
            println!("dashboard: http://{}/", listener.local_addr()?);
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let mut stop_http = stop_rx.clone();
            let http = tokio::spawn(api::serve(listener, state, async move {
                let _ = stop_http.wait_for(|s| *s).await;
            }));
            let opts = Options { contract, from_block, batch_blocks, poll: Duration::from_secs_f64(poll_secs), progress_bar: true };
            let result = ingest::run_forever(url, store, opts, progress, shutdown_signal()).await;
            let _ = stop_tx.send(true);
            let _ = http.await;
            result.map_err(Into::into)
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CAPACLOUD_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<BadInput>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

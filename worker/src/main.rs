//! `capacloud-worker`: the provider daemon. Today it follows the marketplace's events;
//! job execution arrives with the GPU executor.

use anyhow::{Context, Result};
use capacloud_worker::follow;
use clap::Parser;
use std::process::ExitCode;
use subxt::utils::H160;

#[derive(Parser)]
#[command(name = "capacloud-worker", version, about = "CapaCloud provider worker")]
struct Args {
    /// Node RPC endpoint.
    #[arg(long, env = "CAPACLOUD_URL", default_value = "ws://127.0.0.1:9944")]
    url: String,
    /// Marketplace contract address (0x + 40 hex digits).
    #[arg(long, env = "CAPACLOUD_CONTRACT")]
    contract: String,
}

async fn run(args: Args) -> Result<()> {
    let bytes = hex::decode(args.contract.trim_start_matches("0x")).context("contract address is not hex")?;
    anyhow::ensure!(bytes.len() == 20, "contract address must be 20 bytes");
    let contract = H160::from_slice(&bytes);
    let client = subxt::OnlineClient::from_insecure_url(&args.url)
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    let follower = tokio::spawn(follow::follow(client, contract, tx, shutdown));
    while let Some(obs) = rx.recv().await {
        tracing::debug!(block = obs.block_number, "event handled");
    }
    follower.await??;
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CAPACLOUD_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `capacloud-worker`: the provider daemon. It measures its GPU, registers (or tops up) its
//! stake, lists or updates its offer, then runs the job loop until Ctrl-C.

use anyhow::{Context, Result};
use capacloud_client::blob::LocalStore;
use capacloud_client::chain::{self, Chain};
use capacloud_client::marketplace::{OfferInput, UNITS_PER_PLANCK};
use capacloud_client::Marketplace;
use capacloud_executor::{score, ExecLimits, Gpu};
use capacloud_worker::provider::{Worker, WorkerConfig};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "capacloud-worker", version, about = "CapaCloud provider worker")]
struct Args {
    /// Node RPC endpoint.
    #[arg(long, env = "CAPACLOUD_URL", default_value = "ws://127.0.0.1:9944")]
    url: String,
    /// Signing key: dev URI (//Bob), seed phrase, or 0x secret seed.
    #[arg(long, env = "CAPACLOUD_SURI", hide_env_values = true)]
    suri: String,
    /// Marketplace contract address (0x + 40 hex digits).
    #[arg(long, env = "CAPACLOUD_CONTRACT")]
    contract: String,
    /// Directory of the content-addressed blob store (specs, inputs, outputs).
    #[arg(long, env = "CAPACLOUD_BLOBS")]
    blobs: PathBuf,
    /// Stake to keep bonded, in WND (registers or tops up to it).
    #[arg(long, env = "CAPACLOUD_STAKE_WND", default_value_t = 20)]
    stake_wnd: u128,
    /// Price per work unit, in contract units (10^-18 WND).
    #[arg(long, env = "CAPACLOUD_PRICE")]
    price: u128,
    /// Largest job, in work units.
    #[arg(long, default_value_t = 1_000_000)]
    max_units: u64,
    /// VRAM to advertise, in MiB (wgpu does not report it).
    #[arg(long, default_value_t = 16_384)]
    vram_mib: u32,
    /// URL where this worker serves outputs.
    #[arg(long, default_value = "file://blobs")]
    endpoint: String,
    /// Seconds between passes over the jobs.
    #[arg(long, default_value_t = 1.0)]
    poll_secs: f64,
    /// Demo only: commit made-up results without computing (gets slashed when checked).
    #[arg(long)]
    cheat: bool,
}

async fn run(args: Args) -> Result<()> {
    let address = chain::parse_address(&args.contract)?;
    let signer = chain::keypair_from_uri(&args.suri)?;
    // Salts must survive restarts and stay secret: derive them from the key material.
    let salt_secret = capacloud_client::blob::sha256(&[b"capacloud-salt".as_slice(), args.suri.as_bytes()].concat());
    let gpu = Arc::new(Gpu::from_env().context("opening a GPU adapter")?);
    let measured = score::measure(&gpu).context("measuring the adapter score")?;
    tracing::info!(adapter = %gpu.describe(), gops = measured.matmul_gops, class = measured.class, "benchmarked");

    let chain = Chain::connect(&args.url, signer).await?;
    let market = Marketplace::at(&chain, address).await?;
    let me = chain.address();
    let target = args.stake_wnd * 1_000_000_000_000 * UNITS_PER_PLANCK;
    match market.provider(me).await? {
        None => {
            market.register_provider(target).await?;
            tracing::info!(stake_wnd = args.stake_wnd, "registered");
        }
        Some(p) if p.stake < target => {
            let top_up = (target - p.stake).div_ceil(UNITS_PER_PLANCK) * UNITS_PER_PLANCK;
            market.add_stake(top_up).await?;
            tracing::info!(top_up, "stake topped up");
        }
        Some(_) => {}
    }
    let info = OfferInput {
        gpu_vendor: vendor_name(gpu.info.vendor),
        gpu_model: gpu.info.name.chars().take(64).collect(),
        vram_mib: args.vram_mib,
        backend: format!("Vulkan {}", gpu.info.driver).chars().take(64).collect(),
        benchmark_score: measured.matmul_gops.round() as u32,
        gpu_class: measured.class,
        price_per_unit: args.price,
        max_units: args.max_units,
        endpoint: args.endpoint.clone(),
    };
    // Reuse this provider's first active offer, else list one.
    let mut offer_id = None;
    for id in 0..market.offer_count().await? {
        if market.offer(id).await?.is_some_and(|o| o.active && o.provider == me) {
            offer_id = Some(id);
            break;
        }
    }
    let offer_id = match offer_id {
        Some(id) => {
            market.update_offer(id, &info).await?;
            id
        }
        None => market.list_offer(&info).await?.0,
    };
    println!("{}", serde_json::json!({ "provider": format!("{me:?}"), "offer_id": offer_id, "gops": measured.matmul_gops, "class": measured.class }));

    let blobs = Arc::new(LocalStore::new(&args.blobs)?);
    let cfg = WorkerConfig {
        offer_id,
        bid_price: args.price,
        salt_secret,
        cheat: args.cheat,
        poll: Duration::from_secs_f64(args.poll_secs),
        limits: ExecLimits::default(),
    };
    let worker = Worker::new(&chain, address, gpu, blobs, cfg);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    worker.run(shutdown).await;
    Ok(())
}

/// The PCI vendor id as a name (wgpu reports ids; Mesa's software adapters use 0x10005).
fn vendor_name(id: u32) -> String {
    match id {
        0x10DE => "NVIDIA".into(),
        0x1002 => "AMD".into(),
        0x8086 => "Intel".into(),
        0x13B5 => "ARM".into(),
        0x5143 => "Qualcomm".into(),
        0x106B => "Apple".into(),
        0x10005 => "Mesa".into(),
        other => format!("{other:#06x}"),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CAPACLOUD_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

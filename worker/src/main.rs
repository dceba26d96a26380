//! `capacloud-worker`: the provider daemon. It measures its GPU, registers (or tops up) its
//! stake, lists or updates its offer, serves its endpoint (outputs, chunk proofs, blobs,
//! `/metrics`), then runs the job loop until Ctrl-C or SIGTERM.
//!
//! Exit codes: 0 after a clean shutdown; 1 when the chain, the GPU or the network fails;
//! 2 for bad configuration (flags, env vars, config file, key).

use anyhow::{Context, Result};
use capacloud_client::blob::LocalStore;
use capacloud_client::chain::{self, Chain};
use capacloud_client::keys;
use capacloud_client::marketplace::{OfferInfo, OfferInput, UNITS_PER_PLANCK};
use capacloud_client::Marketplace;
use capacloud_executor::{score, ExecLimits, Gpu};
use capacloud_worker::config::{Args, Settings};
use capacloud_worker::metrics::Metrics;
use capacloud_worker::provider::{Worker, WorkerConfig};
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Bad configuration: reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadConfig(String);

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    BadConfig(e.to_string()).into()
}

use capacloud_client::shutdown_signal;

async fn run(s: Settings) -> Result<()> {
    let address = chain::parse_address(&s.contract).map_err(bad)?;
    let key = keys::load(s.suri.as_deref(), s.key_file.as_deref()).map_err(bad)?;
    let store = LocalStore::new(s.data_dir.join("blobs")).map_err(|e| bad(format!("data dir {}: {e}", s.data_dir.display())))?;
    let listener = tokio::net::TcpListener::bind(s.listen).await.map_err(|e| bad(format!("cannot listen on {}: {e}", s.listen)))?;
    let bound = listener.local_addr()?;
    let endpoint = s.endpoint.clone().unwrap_or_else(|| format!("http://{bound}"));

    let gpu = Arc::new(Gpu::from_env().context("opening a GPU adapter")?);
    let measured = score::measure(&gpu).context("measuring the adapter score")?;
    tracing::info!(adapter = %gpu.describe(), gops = measured.matmul_gops, class = measured.class, "benchmarked");

    let chain = Arc::new(Chain::connect(&s.url, key.pair).await?);
    let market = Marketplace::at(&chain, address).await?;
    let me = chain.address();
    let stake = market.provider(me).await?.filter(|p| p.slot != 0).map_or(0, |p| p.stake);
    if stake < s.stake {
        let top_up = (s.stake - stake).div_ceil(UNITS_PER_PLANCK) * UNITS_PER_PLANCK;
        market.stake(top_up).await?;
        tracing::info!(provider = ?me, top_up, "staked");
    }
    let info = OfferInfo {
        gpu_vendor: vendor_name(gpu.info.vendor),
        gpu_model: gpu.info.name.chars().take(48).collect(),
        backend: format!("Vulkan {}", gpu.info.driver).chars().take(48).collect(),
        endpoint: endpoint.clone(),
    };
    let offer = OfferInput {
        price_per_unit: s.price,
        max_units: s.max_units,
        vram_mib: s.vram_mib,
        benchmark_score: measured.matmul_gops.round() as u32,
        info: codec::Encode::encode(&info),
    };
    // Reuse this provider's first active offer, else list one.
    let mut offer_id = None;
    for id in 0..market.offer_count().await? {
        if market.offer(id).await?.is_some_and(|o| o.active && o.provider == me) {
            offer_id = Some(id);
            break;
        }
    }
    let (offer_id, _) = market.list_offer(offer_id, &offer).await?;
    println!(
        "{}",
        serde_json::json!({ "provider": format!("{me:?}"), "offer_id": offer_id, "endpoint": endpoint, "gops": measured.matmul_gops, "class": measured.class })
    );

    let metrics = Arc::new(Metrics::default());
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(capacloud_client::blob::server::serve(
        listener,
        capacloud_worker::serve::router(
            store.clone(),
            metrics.clone(),
            capacloud_worker::serve::ChainGate::new(chain.clone(), address, store.clone()),
        ),
        async {
            let _ = http_stopped.await;
        },
    ));
    tracing::info!(%endpoint, listen = %bound, "serving outputs, proofs, blobs and /metrics");

    let cfg = WorkerConfig {
        offer_id,
        bid_price: s.price,
        salt_secret: key.salt_secret,
        cheat: s.cheat,
        poll: Duration::from_secs_f64(s.poll_secs),
        limits: ExecLimits { timeout: Duration::from_secs(s.kernel_secs), ..ExecLimits::default() },
        withdraw_above: s.withdraw_above,
        state_file: Some(s.data_dir.join("state.json")),
        isolate: if s.isolate { Some(std::env::current_exe().context("locating this executable for kernel isolation")?) } else { None },
        max_job_bytes: s.max_job_bytes,
        fetch_timeout: Duration::from_secs(s.fetch_secs),
        health_retry: capacloud_worker::provider::HEALTH_RETRY,
    };
    let worker = Worker::new(chain.clone(), address, gpu, store, cfg, metrics);
    worker.run(shutdown_signal()).await;
    let _ = stop_http.send(());
    http.await?.context("HTTP endpoint")?;
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
    if let Some(dir) = &args.run_kernel {
        // The child side of --isolate: run one kernel and exit.
        return match capacloud_worker::isolate::run_kernel_dir(dir, Duration::from_millis(args.kernel_timeout_ms)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(capacloud_worker::isolate::EXIT_KERNEL_FAILED as u8)
            }
        };
    }
    let settings = match Settings::resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            if e.downcast_ref::<BadConfig>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

//! `capacloud-indexer-bench`: the market indexer measured, each figure beside its baseline
//! from the same run:
//!
//! - **backfill** on a private local chain: the indexer's backfill into SQLite and into
//!   PostgreSQL, beside reading the same blocks' events over RPC without storing them (the
//!   indexer should be RPC-bound, not database-bound);
//! - **store writes**: synthetic market events (created, assigned, settled, price update per
//!   job) committed in batches, into SQLite and PostgreSQL;
//! - **API under load** at 10k and 100k jobs: p50/p99 latency and requests/s from a second
//!   process (this binary in `load` mode) on loopback, beside `/openapi.json` (a static
//!   document) on the same server;
//! - **dashboard first load** in headless Chromium, beside the static document.
//!
//! `make bench-indexer` runs it; the results go to BENCHMARKS.md. It prints markdown tables.

use anyhow::{ensure, Context, Result};
use capacloud_client::chain::Reader;
use capacloud_client::marketplace::*;
use capacloud_client::summary::Fold;
use capacloud_indexer::api::{self, AppState};
use capacloud_indexer::ingest::{apply_batch, Indexer, Options, Progress};
use capacloud_indexer::store::{Cursor, RawEvent, Store};
use capacloud_tests::{contract_artifacts, deploy_fast, dev_chains, lavapipe_offer, PgServer, TestNode};
use clap::{Parser, Subcommand};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subxt::utils::{H160, H256};

const WND: Amount = UNITS_PER_WND;

#[derive(Parser)]
#[command(about = "CapaCloud indexer benchmark: backfill, store writes, API load, dashboard load")]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Job counts of the API measurements.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    jobs: Vec<u64>,
    /// Seconds of load per endpoint.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 16)]
    conc: usize,
    /// Seconds of market activity on the chain before the backfill is measured.
    #[arg(long, default_value_t = 60)]
    market_secs: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// The load generator: GET `url` from `conc` connections for `secs` seconds; prints
    /// one JSON line {requests, errors, p50_ms, p99_ms, rps}.
    Load {
        url: String,
        #[arg(long)]
        secs: u64,
        #[arg(long)]
        conc: usize,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.cmd {
        Some(Cmd::Load { url, secs, conc }) => rt.block_on(load(url, secs, conc)),
        None => rt.block_on(run(args)),
    }
}

async fn load(url: String, secs: u64, conc: usize) -> Result<()> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(conc).build()?;
    let end = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < end {
                    let t = Instant::now();
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            lat.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(f64::NAN);
    println!(
        "{}",
        serde_json::json!({ "requests": lat.len(), "errors": errors, "p50_ms": q(0.5), "p99_ms": q(0.99), "rps": lat.len() as f64 / secs as f64 })
    );
    Ok(())
}

fn raw(block: u32, index: u32, e: &Event) -> RawEvent {
    capacloud_tests::raw_event(block, index, H256::from_low_u64_be(u64::from(block)), e)
}

/// A synthetic market of `jobs` jobs, 4 events each, 10 jobs per block, in batches of
/// `per_batch` blocks.
fn synthetic(jobs: u64, per_batch: u32) -> Vec<(u32, Vec<RawEvent>)> {
    let providers: Vec<H160> = (0..20u8).map(|i| H160::repeat_byte(i + 1)).collect();
    let mut batches: Vec<(u32, Vec<RawEvent>)> = Vec::new();
    for id in 0..jobs {
        let block = 1 + (id / 10) as u32;
        let provider = providers[(id % 20) as usize];
        let renter = H160::from_low_u64_be(1_000 + id % 500);
        let ev = |kind| Event::Job(JobEvent { job_id: id, renter, provider, kind });
        let input = JobInput {
            spec_hash: [1; 32],
            manifest_hash: [0; 32],
            uri: b"http://spec".to_vec(),
            tasks: 1 + (id % 100) as u32,
            units_per_task: 100,
            max_price_per_unit: 1_000,
            requirements: Default::default(),
            compute_blocks: 20,
            check_rate_bps: 1_000,
            pay_if_unverified: false,
            offer_id: Some(id % 20),
        };
        let value = 900 * 100 * Amount::from(input.tasks);
        let events = [
            ev(JobEventKind::Created { input, escrow: value * 2, phase_deadline: block + 6 }),
            ev(JobEventKind::Assigned { offer_id: id % 20, price_per_unit: 900, lock: value, gpu_class: (id % 3) as u8, commit_deadline: block + 20 }),
            ev(JobEventKind::Settled { batch_root: [2; 32], provider_payout: value - value / 50, verifier_fees: 0, protocol_fee: value / 50, renter_refund: value, tasks: 1, sampled: (id % 2) as u32 }),
            Event::Market(MarketEvent { kind: MarketEventKind::PriceIndexUpdated { gpu_class: (id % 3) as u8, price: 900, value, index: 900 } }),
        ];
        let batch_no = (block - 1) / per_batch;
        if batches.len() as u32 <= batch_no {
            batches.push((block, Vec::new()));
        }
        let b = batches.last_mut().expect("pushed");
        b.0 = block;
        for e in &events {
            let index = b.1.iter().filter(|r| r.block_number == block).count() as u32;
            b.1.push(raw(block, index, e));
        }
    }
    batches
}

/// Commits `batches` into `store` as the indexer does; returns (events, seconds).
async fn fill(store: &Store, batches: &[(u32, Vec<RawEvent>)]) -> Result<(usize, f64)> {
    let mut fold = Fold::default();
    let t = Instant::now();
    let mut n = 0;
    for (last, events) in batches {
        let (touched, _) = apply_batch(&mut fold, events);
        let cursor = Cursor { genesis_hash: H256::zero(), contract: H160::zero(), first_block: 1, block_number: *last, block_hash: H256::zero() };
        store.commit_batch(events, &fold, &touched, &cursor).await?;
        n += events.len();
    }
    Ok((n, t.elapsed().as_secs_f64()))
}

struct LoadResult {
    p50: f64,
    p99: f64,
    rps: f64,
    errors: u64,
}

fn load_from_second_process(url: &str, secs: u64, conc: usize) -> Result<LoadResult> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["load", url, "--secs", &secs.to_string(), "--conc", &conc.to_string()])
        .output()
        .context("running the load generator")?;
    ensure!(out.status.success(), "load generator failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(LoadResult {
        p50: v["p50_ms"].as_f64().unwrap_or(f64::NAN),
        p99: v["p99_ms"].as_f64().unwrap_or(f64::NAN),
        rps: v["rps"].as_f64().unwrap_or(0.0),
        errors: v["errors"].as_u64().unwrap_or(0),
    })
}

fn browser_load_ms(url: &str) -> Option<f64> {
    let t = Instant::now();
    capacloud_tests::browser_dom("indexer-bench", url)?;
    Some(t.elapsed().as_secs_f64() * 1e3)
}

async fn run(args: Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pg = PgServer::start("indexer-bench").context("the benchmark needs PostgreSQL")?;

    // ---- backfill on a real chain.
    let art = contract_artifacts("indexer-bench").context("build the contract first (make contract)")?;
    let node = TestNode::start("indexer-bench").context("the benchmark needs the node (make setup)")?;
    let url = node.url();
    let chains = dev_chains(&url).await;
    let m = deploy_fast(&chains[0], &art.code, 6, 6).await;
    let stop = Instant::now() + Duration::from_secs(args.market_secs);
    let activity = chains[1..].iter().enumerate().map(|(i, c)| {
        let mi = m.with(c);
        async move {
            mi.stake(10 * WND).await?;
            let (id, _) = mi.list_offer(None, &lavapipe_offer(WND / 1_000)).await?;
            let mut k = 0u128;
            while Instant::now() < stop {
                k += 1;
                mi.list_offer(Some(id), &lavapipe_offer(WND / 1_000 + k * 1_000 + i as u128)).await?;
            }
            anyhow::Ok(())
        }
    });
    futures::future::try_join_all(activity).await?;
    let reader = Reader::connect(&url).await?;
    let (head, _) = reader.finalized_head().await?;
    let first = reader.deployment_block(m.address(), head).await?.context("deployed")?;
    let blocks = head - first + 1;
    // Baseline: the same reads, nothing stored.
    let t = Instant::now();
    let mut events = 0usize;
    {
        use futures::StreamExt;
        let contract = m.address();
        let per_block: Vec<_> = futures::stream::iter(first..=head)
            .map(|n| {
                let reader = &reader;
                async move {
                    let hash = reader.block_hash(n).await?.context("block")?;
                    anyhow::Ok(reader.contract_events_of(contract, hash).await?.len())
                }
            })
            .buffered(8)
            .collect()
            .await;
        for n in per_block {
            events += n?;
        }
    }
    let rpc_secs = t.elapsed().as_secs_f64();
    let mut backfill = vec![("RPC reads only (baseline)".to_string(), rpc_secs)];
    for (name, db) in [("indexer → SQLite", format!("sqlite://{}", dir.path().join("chain.sqlite").display())), ("indexer → PostgreSQL", pg.database("chain"))] {
        let store = Store::open(&db).await?;
        let opts = Options { contract: m.address(), from_block: Some(first), batch_blocks: 200, poll: Duration::from_secs(1), progress_bar: false };
        let mut ix = Indexer::start(reader.clone(), store.clone(), opts, Arc::new(Progress::default())).await?;
        let t = Instant::now();
        ix.sync_to(head).await?;
        backfill.push((name.to_string(), t.elapsed().as_secs_f64()));
        ensure!(store.raw_events().await?.len() == events, "{name}: stored {} events, the chain has {events}", store.raw_events().await?.len());
    }
    drop(node);
    println!("\n### Backfill: {blocks} blocks, {events} contract events (local node, 1 s blocks, 200-block batches)\n");
    println!("| path | seconds | blocks/s | events/s |\n|---|---|---|---|");
    for (name, secs) in &backfill {
        println!("| {name} | {secs:.2} | {:.0} | {:.0} |", f64::from(blocks) / secs, events as f64 / secs);
    }

    // ---- store writes and the API, on synthetic markets.
    let mut api_rows = Vec::new();
    let mut writes = Vec::new();
    for &jobs in &args.jobs {
        let batches = synthetic(jobs, 100);
        let sqlite = format!("sqlite://{}", dir.path().join(format!("synthetic-{jobs}.sqlite")).display());
        let postgres = pg.database(&format!("synthetic_{jobs}"));
        for (backend, db) in [("SQLite", &sqlite), ("PostgreSQL", &postgres)] {
            let store = Store::open(db).await?;
            let (n, secs) = fill(&store, &batches).await?;
            writes.push((jobs, backend, n, secs));
            let progress = Arc::new(Progress::default());
            progress.head_block.set(i64::from(batches.last().map_or(0, |b| b.0)));
            progress.indexed_block.set(progress.head_block.get());
            let state = AppState { store: store.clone(), progress: progress.clone(), registry: Arc::new(progress.registry()), contract: H160::zero() };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let base = format!("http://{}", listener.local_addr()?);
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(api::serve(listener, state, async move {
                let _ = rx.await;
            }));
            for (what, path) in [
                ("/openapi.json (static baseline)", "/openapi.json".to_string()),
                ("/api/stats", "/api/stats".into()),
                ("/api/jobs?limit=50", "/api/jobs?limit=50".into()),
                ("/api/jobs?state=Settled&after=…&limit=50", format!("/api/jobs?state=Settled&limit=50&after={}:0", jobs / 20)),
                ("/api/jobs/{id}", format!("/api/jobs/{}", jobs / 2)),
                ("/ (dashboard)", "/".into()),
            ] {
                let r = load_from_second_process(&format!("{base}{path}"), args.secs, args.conc)?;
                api_rows.push((jobs, backend, what, r));
            }
            if backend == "SQLite" {
                let static_ms = browser_load_ms(&format!("{base}/openapi.json"));
                let page_ms = browser_load_ms(&format!("{base}/"));
                if let (Some(s), Some(p)) = (static_ms, page_ms) {
                    api_rows.push((jobs, "Chromium", "first load: / vs /openapi.json", LoadResult { p50: p, p99: s, rps: 0.0, errors: 0 }));
                }
            }
            let _ = tx.send(());
            server.await??;
        }
    }
    println!("\n### Store writes (synthetic: 4 events per job, 10 jobs per block, 100-block batches)\n");
    println!("| jobs | database | events | seconds | events/s |\n|---|---|---|---|---|");
    for (jobs, backend, n, secs) in &writes {
        println!("| {jobs} | {backend} | {n} | {secs:.1} | {:.0} |", *n as f64 / secs);
    }
    println!("\n### API under load ({} connections from a second process, {} s per row, loopback, 2 cores shared)\n", args.conc, args.secs);
    println!("| jobs | database | endpoint | p50 ms | p99 ms | requests/s | errors |\n|---|---|---|---|---|---|---|");
    for (jobs, backend, what, r) in &api_rows {
        if *backend == "Chromium" {
            println!("| {jobs} | headless Chromium | dashboard first load {:.0} ms (static document: {:.0} ms) | | | | |", r.p50, r.p99);
        } else {
            println!("| {jobs} | {backend} | {what} | {:.2} | {:.2} | {:.0} | {} |", r.p50, r.p99, r.rps, r.errors);
        }
    }
    Ok(())
}

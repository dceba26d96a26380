//! `capacloud-market-bench`: what task batches buy, measured on a private local chain and on
//! this machine's GPU (lavapipe here), each figure beside its baseline from the same run:
//!
//! - **chain cost per task**: one job of N tasks against N single-task jobs, N = 1, 10, 100,
//!   1000 (separate jobs up to `--separate-max`), at the default 10 % check rate: fees,
//!   ref_time and proof size per task, the tasks one block holds (from the runtime's own
//!   block-weight limits), blocks spanned. Both driven in-process by one program sending
//!   each transaction once the previous one is final (the protocol floor: no GPU, no polling);
//! - **compute per task**: N sha256 tasks in one sandboxed kernel child (how the worker runs a
//!   batch) against one child per task (how it runs separate jobs), beside in-process
//!   execution on one shared device (the floor);
//! - **end to end**: one batch of each N through three real `capacloud-worker` processes and
//!   the renter's `follow` (tasks per minute), against the floor's latency for the same
//!   batch, with the processes' CPU and memory beside the node's.
//!
//! `make bench-market` runs it; the results go to BENCHMARKS.md. It prints markdown tables.

use anyhow::{ensure, Context, Result};
use capacloud_client::blob::{HttpStore, LocalStore};
use capacloud_client::chain::{Chain, Receipt};
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, Journal, Terms};
use capacloud_client::Marketplace;
use capacloud_executor::exec::ExecLimits;
use capacloud_executor::Gpu;
use capacloud_tests::drive::{self, outputs, provider_commitment};
use capacloud_tests::procs::{sampled, start_worker, stop_worker, Window};
use capacloud_tests::{chain_spec, contract_artifacts, deploy_fast, dev_chains, endpoint, next_epoch, node_binary, provider_with_offer, TestNode};
use clap::Parser;
use codec::{Compact, Decode};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use subxt::utils::H160;

const WND: Amount = UNITS_PER_WND;
const PRICE: Amount = WND / 10_000;
/// Work units per task of the chain runs (the contract only sees the number).
const UNITS: u64 = 100;

#[derive(Parser)]
#[command(about = "CapaCloud market benchmark: task batches against separate jobs, on a local chain and this GPU")]
struct Args {
    /// Task counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    tasks: Vec<u32>,
    /// Largest N run as N separate jobs on chain (each is a full lifecycle).
    #[arg(long, default_value_t = 100)]
    separate_max: u32,
    /// Largest N run as N separate kernel children.
    #[arg(long, default_value_t = 100)]
    children_max: u32,
    /// Check rate of every job, basis points.
    #[arg(long, default_value_t = 1_000)]
    rate: u16,
    /// Tasks of the end-to-end batches through the worker processes, one batch each (0: none).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    e2e_tasks: Vec<u32>,
    /// Accept window (blocks) of the end-to-end runs' contract: a worker runs a large batch
    /// once (its trial) before it accepts, so the window must hold fetching, hashing and
    /// computing the largest batch (~2 min for 1,000 tasks on lavapipe).
    #[arg(long, default_value_t = 300)]
    e2e_accept_window: u32,
    /// 64-byte messages per sha256 task.
    #[arg(long, default_value_t = 4_096)]
    messages: u32,
    /// Separate jobs in flight at once.
    #[arg(long, default_value_t = 24)]
    in_flight: usize,
}

// ------------------------------------------------------------------ block limits

#[derive(Decode, Clone, Copy)]
struct Weight {
    ref_time: Compact<u64>,
    proof_size: Compact<u64>,
}

#[derive(Decode)]
struct PerClass {
    _base_extrinsic: Weight,
    _max_extrinsic: Option<Weight>,
    max_total: Option<Weight>,
    _reserved: Option<Weight>,
}

#[derive(Decode)]
struct BlockWeights {
    _base_block: Weight,
    max_block: Weight,
    normal: PerClass,
    _operational: PerClass,
    _mandatory: PerClass,
}

/// What transactions may use of one block: the normal class's (ref_time, proof_size).
fn normal_limits(chain: &Chain) -> Result<(u64, u64)> {
    let c = chain.client().constants().at(&subxt::dynamic::constant("System", "BlockWeights"))?;
    let w = BlockWeights::decode(&mut c.encoded())?;
    let n = w.normal.max_total.unwrap_or(w.max_block);
    Ok((n.ref_time.0, n.proof_size.0))
}

// ------------------------------------------------------------------ the chain runs

/// The transactions of some lifecycles, summed.
#[derive(Default, Clone, Copy)]
struct Cost {
    txs: u32,
    fee: u128,
    ref_time: u64,
    proof: u64,
    first_block: u32,
    last_block: u32,
    checked: u32,
}

impl Cost {
    fn add(&mut self, r: &Receipt) {
        self.txs += 1;
        self.fee += r.fee;
        self.ref_time += r.dry_run.gas_required.ref_time;
        self.proof += r.dry_run.gas_required.proof_size;
        self.first_block = if self.first_block == 0 { r.block_number } else { self.first_block.min(r.block_number) };
        self.last_block = self.last_block.max(r.block_number);
    }

    fn merge(mut self, o: Cost) -> Cost {
        self.txs += o.txs;
        self.fee += o.fee;
        self.ref_time += o.ref_time;
        self.proof += o.proof;
        self.first_block = if self.first_block == 0 { o.first_block } else { self.first_block.min(o.first_block) };
        self.last_block = self.last_block.max(o.last_block);
        self.checked += o.checked;
        self
    }
}

/// The parties of the chain runs.
struct Parties<'a> {
    m: &'a Marketplace<'a>,
    renter: &'a Chain,
    provider: &'a Chain,
    offer: u64,
    verifiers: BTreeMap<H160, &'a Chain>,
}

/// One job of `tasks` tasks from creation to settlement, every transaction sent as soon as
/// the previous one is final.
async fn lifecycle(p: &Parties<'_>, tasks: u32, rate: u16, seed: Hash32) -> Result<Cost> {
    let (mr, mp) = (p.m.with(p.renter), p.m.with(p.provider));
    let mut cost = Cost::default();
    let input = JobInput {
        spec_hash: drive::sha(&[b"bench-spec"]),
        manifest_hash: if tasks > 1 { drive::sha(&[b"bench-manifest", &tasks.to_le_bytes()]) } else { [0; 32] },
        uri: b"sha256:bench".to_vec(),
        tasks,
        units_per_task: UNITS,
        max_price_per_unit: PRICE,
        requirements: Requirements::default(),
        compute_blocks: 4,
        check_rate_bps: rate,
        pay_if_unverified: false,
        offer_id: Some(p.offer),
    };
    let now = p.renter.finalized_number().await?;
    let escrow = mr.required_escrow(&input, now).await?;
    let (id, r) = mr.create_job(&input, seed_commitment(&seed), escrow).await.context("create_job")?;
    cost.add(&r);
    // The provider commits to the direct hire without accepting first (the commit accepts).
    let roots = outputs(id, tasks, b"bench");
    cost.add(&mp.commit(id, provider_commitment(id, p.provider.address(), &roots)).await.context("commit")?);
    let commit_block = p.m.job_core(id).await?.context("job vanished")?.commit_block;
    while p.renter.finalized_number().await? <= commit_block {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cost.add(&mr.reveal_seed(id, seed).await.context("reveal_seed")?);
    let job = p.m.job(id).await?.context("job vanished")?;
    if job.core.checked() {
        cost.checked = job.core.sampled;
        let v = job.current_verifier().context("no verifier drawn")?.account;
        let mv = p.m.with(p.verifiers.get(&v).context("the drawn verifier is not one of ours")?);
        let r = drive::verifier_commit(&mv, id, &roots).await.context("verifier commit")?;
        cost.add(&r);
        while p.renter.finalized_number().await? <= r.block_number {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        cost.add(&drive::provider_reveal(&mp, id, &roots).await.context("provider reveal")?);
        cost.add(&drive::verifier_reveal(&mv, id, &roots, false).await.context("verifier reveal")?);
    } else {
        cost.add(&drive::provider_reveal(&mp, id, &roots).await.context("provider reveal")?);
    }
    let state = p.m.job_core(id).await?.context("job vanished")?.state;
    ensure!(state == JobState::Settled, "job {id} ended {state:?}");
    Ok(cost)
}

/// N single-task jobs, `in_flight` at a time.
async fn separate(p: &Parties<'_>, n: u32, rate: u16, in_flight: usize) -> Result<Cost> {
    futures::stream::iter(0..n)
        .map(|i| lifecycle(p, 1, rate, drive::sha(&[b"separate", &n.to_le_bytes(), &i.to_le_bytes()])))
        .buffer_unordered(in_flight)
        .try_fold(Cost::default(), |acc, c| async move { Ok(acc.merge(c)) })
        .await
}

fn per_task(total: f64, n: u32) -> f64 {
    total / f64::from(n)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let art = contract_artifacts("capacloud-market-bench").context("build the contract first (make contract)")?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);

    // ---- compute per task: one kernel child per batch vs one per task vs in-process.
    eprintln!("compute: acquiring the GPU");
    let gpu = Gpu::from_env().context("no GPU adapter (lavapipe: apt install mesa-vulkan-drivers)")?;
    let worker_exe = std::env::current_exe()?.with_file_name("capacloud-worker");
    ensure!(worker_exe.exists(), "{} not built (cargo build --bins)", worker_exe.display());
    let limits = ExecLimits::default();
    let mut compute_rows = Vec::new();
    for &n in &args.tasks {
        eprintln!("compute: {n} tasks");
        let bundle = renter::library_job("sha256", args.messages, 1, n)?;
        let t = Instant::now();
        let mut roots = Vec::new();
        capacloud_executor::batch::execute_batch(&gpu, &bundle.spec, bundle.tasks.iter().cloned(), &limits, |_, e| {
            roots.push(e.commitment.root);
            Ok(())
        })?;
        let in_process = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let isolated = capacloud_worker::isolate::execute_tasks(&worker_exe, &bundle.spec, &bundle.tasks, &limits, capacloud_worker::isolate::STARTUP_GRACE).await?;
        let one_child = t.elapsed().as_secs_f64();
        ensure!(isolated.iter().map(|(_, c)| c.root).eq(roots.iter().copied()), "the child's roots differ from in-process execution");
        let per_child = if n <= args.children_max {
            let t = Instant::now();
            for inputs in &bundle.tasks {
                capacloud_worker::isolate::execute(&worker_exe, &bundle.spec, inputs, &limits, capacloud_worker::isolate::STARTUP_GRACE).await?;
            }
            Some(t.elapsed().as_secs_f64())
        } else {
            None
        };
        compute_rows.push((n, in_process, one_child, per_child));
    }
    drop(gpu);
    println!("## Task batches ({cores} CPU cores; check rate {} %)", f64::from(args.rate) / 100.0);
    println!("\n### Compute per task: sha256 of {} × 64-byte messages per task\n", args.messages);
    println!("| N | in-process, one device (floor) ms/task | batch in one kernel child ms/task | one child per task (separate jobs) ms/task | saved per task |");
    println!("|---|---|---|---|---|");
    for (n, inp, one, per) in &compute_rows {
        let ms = |s: f64| per_task(s * 1000.0, *n);
        match per {
            Some(p) => println!("| {n} | {:.1} | {:.1} | {:.1} | {:.0} % |", ms(*inp), ms(*one), ms(*p), (1.0 - one / p) * 100.0),
            None => println!("| {n} | {:.1} | {:.1} | not run (> --children-max {}) | |", ms(*inp), ms(*one), args.children_max),
        }
    }

    // ---- chain cost per task.
    let node = TestNode::start_with(&node_binary(), &chain_spec()).map_err(anyhow::Error::msg)?;
    let url = node.url();
    let [alice, bob, charlie, dave, eve, ferdie] = &dev_chains(&url).await;
    let (max_ref, max_proof) = normal_limits(alice)?;
    let m = deploy_fast(alice, &art.code, 6, 10).await;
    let offer = provider_with_offer(&m, bob, 20_000 * WND, &capacloud_tests::lavapipe_offer(PRICE)).await;
    for v in [charlie, eve, ferdie] {
        m.with(v).stake(100 * WND).await?;
    }
    next_epoch(&m).await;
    let parties = Parties { m: &m, renter: dave, provider: bob, offer, verifiers: [charlie, eve, ferdie].into_iter().map(|c| (c.address(), c)).collect() };
    let mut chain_rows = Vec::new();
    for &n in &args.tasks {
        eprintln!("chain: one job of {n} tasks");
        let t = Instant::now();
        let batch = lifecycle(&parties, n, args.rate, drive::sha(&[b"batch", &n.to_le_bytes()])).await?;
        let batch_secs = t.elapsed().as_secs_f64();
        let sep = if n <= args.separate_max {
            eprintln!("chain: {n} single-task jobs");
            let t = Instant::now();
            let c = separate(&parties, n, args.rate, args.in_flight).await?;
            Some((c, t.elapsed().as_secs_f64()))
        } else {
            None
        };
        let (balance, total) = m.balance_check().await?;
        ensure!(balance == total, "money invariant broken: balance {balance} != {total}");
        chain_rows.push((n, (batch, batch_secs), sep));
    }

    println!("\n### Chain cost per task (local dev chain, 1 s blocks): one job of N tasks vs N single-task jobs (protocol floor driver)\n");
    println!("Block limits read from the runtime (normal class): ref_time {:.2} s, proof size {:.2} MiB.\n", max_ref as f64 / 1e12, max_proof as f64 / 1_048_576.0);
    println!("| N | layout | txs | checked tasks | fee / task (WND) | ref_time / task (ms) | proof / task (KiB) | tasks per block | blocks spanned | wall s |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let line = |n: u32, layout: &str, c: &Cost, secs: f64| {
        let per_block = (max_ref as f64 / per_task(c.ref_time as f64, n)).min(max_proof as f64 / per_task(c.proof as f64, n));
        println!(
            "| {n} | {layout} | {} | {} | {:.5} | {:.2} | {:.1} | {:.0} | {} | {:.1} |",
            c.txs,
            c.checked,
            per_task(c.fee as f64, n) / 1e12,
            per_task(c.ref_time as f64, n) / 1e9,
            per_task(c.proof as f64, n) / 1024.0,
            per_block,
            c.last_block - c.first_block,
            secs
        );
    };
    for (n, (batch, bs), sep) in &chain_rows {
        line(*n, "one batch job", batch, *bs);
        match sep {
            Some((c, s)) => line(*n, "separate jobs (baseline)", c, *s),
            None => println!("| {n} | separate jobs (baseline) | not run (> --separate-max {}) | | | | | | | |", args.separate_max),
        }
    }

    // ---- end to end through three worker processes, one batch per N.
    let e2e_sizes: Vec<u32> = args.e2e_tasks.iter().copied().filter(|n| *n > 0).collect();
    let mut e2e = Vec::new();
    if !e2e_sizes.is_empty() {
        // A contract of its own: the floor's 6-block accept window cannot hold a worker's trial.
        let m = deploy_fast(alice, &art.code, args.e2e_accept_window, 10).await;
        let dir = tempfile::Builder::new().prefix("capacloud-bench-").tempdir()?;
        let contract = format!("{:?}", m.address());
        let mut workers = Vec::new();
        for (name, suri) in [("charlie", "//Charlie"), ("eve", "//Eve"), ("ferdie", "//Ferdie")] {
            let w = start_worker(name, suri, &url, &contract, PRICE, dir.path())?;
            workers.push((name, (w.child, w.offer_id)));
        }
        next_epoch(&m).await; // their stakes count in draws
        let renter_server = endpoint(LocalStore::new(dir.path().join("renter"))?, None).await;
        let store = HttpStore::new(&renter_server.url)?;
        let terms = Terms {
            offer_id: Some(workers[0].1 .1),
            max_price_per_unit: PRICE,
            check_rate_bps: args.rate,
            compute_blocks: capacloud_tests::TEST_MAX_COMPUTE,
            requirements: Requirements::default(),
            pay_if_unverified: false,
        };
        let mut pids: Vec<(String, u32)> = workers.iter().map(|(name, (c, _))| (format!("worker {name}"), c.id())).collect();
        pids.push(("node (baseline)".into(), node.pid()));
        let md = m.with(dave);
        for &n in &e2e_sizes {
            eprintln!("end to end: floor for {n} tasks");
            let t = Instant::now();
            let floor = lifecycle(&parties, n, args.rate, drive::sha(&[b"e2e-floor", &n.to_le_bytes()])).await?;
            let floor_secs = t.elapsed().as_secs_f64();
            eprintln!("end to end: {n} tasks through the workers");
            let bundle = renter::library_job("sha256", args.messages, 2, n)?;
            let from = alice.finalized_number().await?;
            let mut busy = Window::open(&pids)?;
            let t = Instant::now();
            let job = sampled(&mut busy, async {
                let input = renter::stage(&store, &bundle, &terms).await?;
                let seed = renter::random_seed()?;
                let now = dave.finalized_number().await?;
                let id = renter::create(&md, &Journal::new(dir.path().join(format!("journal-{n}"))), &input, &seed, now).await?;
                let job = renter::follow(&md, id, &seed, Duration::from_secs(1_800), |_| {}).await?;
                anyhow::Ok((id, job))
            })
            .await?;
            let secs = t.elapsed().as_secs_f64();
            let busy = busy.close()?;
            let (id, job) = job;
            ensure!(job.state == JobState::Settled, "job {id} of {n} tasks ended {:?}", job.state);
            let outputs = renter::fetch_outputs(&md, id, &job, &store).await?;
            ensure!(outputs.len() == n as usize, "fetched {} of {n} outputs", outputs.len());
            let events = alice.contract_events_in(m.address(), from, alice.finalized_number().await?).await?;
            let fold = capacloud_client::summary::fold(&events);
            let row = fold.jobs.get(&id).context("the job is not in the events")?;
            let blocks = row.ended.map(|e| e.block - row.created.block).context("no settlement event")?;
            let (balance, total) = m.balance_check().await?;
            ensure!(balance == total, "money invariant broken: balance {balance} != {total}");
            e2e.push((n, floor, floor_secs, blocks, secs, job.core.sampled, busy));
        }
        for (name, (child, _)) in workers {
            stop_worker(name, child)?;
        }
    }

    if !e2e.is_empty() {
        println!("\n### End to end: one batch of N sha256 tasks through 3 worker processes (accept window {} blocks)\n", args.e2e_accept_window);
        println!("Seconds from the renter's first upload to the settled job it follows; tasks/min = N / seconds × 60.\n");
        println!("| N | floor: blocks create → settled | floor: seconds | floor: tasks/min | workers: blocks create → settled | workers: seconds (stage + create + follow) | workers: tasks/min | tasks re-executed |");
        println!("|---|---|---|---|---|---|---|---|");
        for (n, floor, floor_secs, blocks, secs, sampled, _) in &e2e {
            let per_min = |s: f64| f64::from(*n) / s * 60.0;
            println!(
                "| {n} | {} | {floor_secs:.1} | {:.0} | {blocks} | {secs:.1} | {:.0} | {sampled} |",
                floor.last_block - floor.first_block,
                per_min(*floor_secs),
                per_min(*secs)
            );
        }
        println!("\n| N | process | CPU % of one core | peak RSS MiB |\n|---|---|---|---|");
        for (n, .., busy) in &e2e {
            for (name, c, r) in busy {
                println!("| {n} | {name} | {c:.1} | {r:.0} |");
            }
        }
    }
    Ok(())
}

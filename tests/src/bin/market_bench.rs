//! `capacloud-market-bench`: the market end to end on a private local chain, with three real
//! `capacloud-worker` processes (lavapipe here), each figure beside its baseline from the
//! same run:
//!
//! - **latency** create → settled, in blocks and seconds, unchecked and checked jobs: the
//!   workers (event-woken loops, GPU execution, HTTP input fetches, the renter's `follow`)
//!   against the *protocol floor*, the same lifecycle driven in-process by one program that
//!   sends each transaction as soon as the previous one is final;
//! - **throughput**: N jobs spread over three providers, submitted at once, workers against
//!   the same floor driver;
//! - **resources**: each worker's CPU and resident memory while idle and while busy, beside
//!   the node's over the same windows.
//!
//! `make bench-market` runs it; the results go to BENCHMARKS.md. It prints markdown tables.

use anyhow::{bail, ensure, Context, Result};
use capacloud_client::blob::{self, HttpStore, LocalStore};
use capacloud_client::chain::Chain;
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, JobBundle, Terms};
use capacloud_client::Marketplace;
use capacloud_executor::workloads::{Sha256Batch, Workload};
use capacloud_tests::{chain_spec, contract_artifacts, deploy_fast, dev_chains, endpoint, node_binary, provider_with_offer, TestNode};
use clap::Parser;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WND: Amount = 1_000_000_000_000_000_000;
const PRICE: Amount = WND / 1_000;
/// Check rate of the "unchecked" jobs: 1 % (0 would mean the contract's default, 10 %).
const RARE_CHECK_BPS: u16 = 100;

#[derive(Parser)]
#[command(about = "CapaCloud market benchmark: latency, throughput and worker resources on a local chain")]
struct Args {
    /// Sequential jobs per latency series.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Jobs in the throughput run.
    #[arg(long, default_value_t = 12)]
    jobs: usize,
    /// 64-byte messages per throughput job (SHA-256 batch: 4 MiB of input by default,
    /// fetched over HTTP by the provider and its verifiers).
    #[arg(long, default_value_t = 65_536)]
    messages: u32,
    /// Start the workers with `--isolate` (each kernel in a child process).
    #[arg(long)]
    isolate: bool,
    /// Seconds of the idle resource window.
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
}

/// CPU ticks (user + system, its finished children's included: an isolated worker's kernel
/// processes) and resident memory (KiB, the process alone) of a process.
fn sample(pid: u32) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f[11..=14].iter().map(|v| v.parse::<u64>()).sum::<Result<u64, _>>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    Ok((ticks, rss))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// CPU % and peak RSS of each process over a window, sampled every 250 ms.
struct Window {
    pids: Vec<(String, u32)>,
    start: Instant,
    ticks0: Vec<u64>,
    peak_rss: Vec<u64>,
}

impl Window {
    fn open(pids: &[(String, u32)]) -> Result<Self> {
        let mut ticks0 = Vec::new();
        let mut peak_rss = Vec::new();
        for (_, pid) in pids {
            let (t, r) = sample(*pid)?;
            ticks0.push(t);
            peak_rss.push(r);
        }
        Ok(Self { pids: pids.to_vec(), start: Instant::now(), ticks0, peak_rss })
    }

    fn poll(&mut self) {
        for (i, (_, pid)) in self.pids.iter().enumerate() {
            if let Ok((_, r)) = sample(*pid) {
                self.peak_rss[i] = self.peak_rss[i].max(r);
            }
        }
    }

    /// (name, CPU % of one core, peak RSS MiB) per process.
    fn close(mut self) -> Result<Vec<(String, f64, f64)>> {
        self.poll();
        let secs = self.start.elapsed().as_secs_f64();
        let mut out = Vec::new();
        for (i, (name, pid)) in self.pids.iter().enumerate() {
            let (t, _) = sample(*pid)?;
            out.push((name.clone(), (t - self.ticks0[i]) as f64 / clock_ticks() / secs * 100.0, self.peak_rss[i] as f64 / 1024.0));
        }
        Ok(out)
    }
}

/// Runs `fut` while sampling `window` every 250 ms.
async fn sampled<T>(window: &mut Window, fut: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tokio::time::sleep(Duration::from_millis(250)) => window.poll(),
        }
    }
}

/// One finished job as measured.
#[derive(Clone, Copy, Debug)]
struct Done {
    id: u64,
    checked: bool,
    secs: f64,
}

/// The protocol floor: renter, provider and (when drawn) verifier in one program, each
/// transaction sent as soon as the previous one is final. No GPU, no polling, no HTTP.
#[allow(clippy::too_many_arguments)]
async fn drive(m: &Marketplace<'_>, renter: &Chain, provider: (&Chain, u64), verifiers: &[&Chain], spec_hash: Hash32, work_units: u64, root: Hash32, rate: u16, seed: Hash32) -> Result<Done> {
    let start = Instant::now();
    let (mr, mp) = (m.with(renter), m.with(provider.0));
    let now = renter.finalized_number().await?;
    let input = JobInput {
        spec_hash,
        spec_uri: blob::uri(&spec_hash),
        work_units,
        max_price_per_unit: PRICE,
        requirements: Requirements::default(),
        deadline: now + 60,
        check_rate_bps: rate,
        seed_commitment: seed_commitment(&seed),
        offer_id: Some(provider.1),
    };
    let (id, _) = mr.create_job(&input).await.context("create_job")?;
    mp.accept_job(id).await.context("accept_job")?;
    let salt = blob::sha256(&[b"floor-p".as_slice(), &id.to_le_bytes()].concat());
    mp.commit_result(id, result_commitment(b"P", id, provider.0.address(), &root, &salt)).await.context("commit_result")?;
    mr.reveal_seed(id, seed).await.context("reveal_seed")?;
    let job = m.job(id).await?.context("job vanished")?;
    match job.state {
        JobState::Reveal => {
            mp.reveal_result(id, root, salt).await.context("reveal_result")?;
        }
        JobState::VerifierCommit => {
            let v = job.current_verifier().context("no verifier drawn")?.account;
            let vc = verifiers.iter().find(|c| c.address() == v).context("verifier is not one of ours")?;
            let mv = m.with(vc);
            let vsalt = blob::sha256(&[b"floor-v".as_slice(), &id.to_le_bytes()].concat());
            mv.commit_verification(id, result_commitment(b"V", id, v, &root, &vsalt)).await.context("commit_verification")?;
            let (a, b) = tokio::join!(mp.reveal_result(id, root, salt), mv.reveal_result(id, root, vsalt));
            a.context("provider reveal_result")?;
            b.context("verifier reveal_result")?;
        }
        s => bail!("job {id} in {s:?} after the seed"),
    }
    let job = m.job(id).await?.context("job vanished")?;
    ensure!(job.state == JobState::Settled, "job {id} ended {:?}", job.state);
    Ok(Done { id, checked: job.checked, secs: start.elapsed().as_secs_f64() })
}

/// The real path: `renter::submit` + `renter::follow`, what `capacloud job submit` runs.
async fn through_workers(m: &Marketplace<'_>, store: &HttpStore, bundle: &JobBundle, offer: u64, rate: u16, seed: Hash32) -> Result<Done> {
    let start = Instant::now();
    let now = m.chain().finalized_number().await?;
    let terms = Terms { offer_id: Some(offer), max_price_per_unit: PRICE, check_rate_bps: rate, deadline_blocks: 60, requirements: Requirements::default() };
    let id = renter::submit(m, store, bundle, &terms, &seed, now).await?;
    let job = renter::follow(m, id, &seed, Duration::from_secs(300), |_| {}).await?;
    ensure!(job.state == JobState::Settled, "job {id} ended {:?}", job.state);
    Ok(Done { id, checked: job.checked, secs: start.elapsed().as_secs_f64() })
}

struct WorkerProc {
    name: String,
    child: Child,
    offer_id: u64,
}

/// Starts `capacloud-worker` (the binary beside this one) and waits for its ready line.
fn start_worker(name: &str, suri: &str, url: &str, contract: &str, dir: &std::path::Path, isolate: bool) -> Result<WorkerProc> {
    let bin = std::env::current_exe()?.with_file_name("capacloud-worker");
    ensure!(bin.exists(), "{} not built (cargo build --bins)", bin.display());
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let mut child = Command::new(bin)
        .args(["--url", url, "--suri", suri, "--contract", contract, "--price", &PRICE.to_string(), "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.join(name))
        .args(isolate.then_some("--isolate"))
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let ready: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("{name} did not start; see {}/{name}.log", dir.display()))?;
    Ok(WorkerProc { name: name.into(), child, offer_id: ready["offer_id"].as_u64().context("offer_id")? })
}

fn stats(xs: &[f64]) -> String {
    if xs.is_empty() {
        return "–".into();
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    format!("{:.1} ({:.1}–{:.1})", v[v.len() / 2], v[0], v[v.len() - 1])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let art = contract_artifacts("capacloud-market-bench").context("build the contract first (make contract)")?;
    let node = TestNode::start_with(&node_binary(), &chain_spec()).map_err(anyhow::Error::msg)?;
    let url = node.url();
    let [alice, bob, charlie, dave, eve, ferdie] = &dev_chains(&url).await;
    let m = deploy_fast(alice, &art.code, 6, 10).await;
    let providers = [bob, charlie, eve];
    let mut offers = Vec::new();
    for p in providers {
        // Enough stake for every throughput job at once (each locks value × 99 at a 1 % check rate).
        offers.push(provider_with_offer(&m, p, 200 * WND, &capacloud_tests::lavapipe_offer(PRICE)).await);
    }

    let dir = tempfile::Builder::new().prefix("capacloud-bench-").tempdir()?;
    let renter_server = endpoint(LocalStore::new(dir.path().join("renter"))?, None).await;
    let store = HttpStore::new(&renter_server.url)?;
    let w = Sha256Batch { messages: 256, seed: 11 };
    let prepared = w.prepare();
    let root = blob::output_root(&w.cpu_reference(&prepared));
    let (spec, inputs) = prepared.to_job();
    let spec_hash = spec.spec_hash();
    let bundle = JobBundle { spec, inputs, library: None };
    let big = Sha256Batch { messages: args.messages, seed: 12 };
    let big_prepared = big.prepare();
    let big_root = blob::output_root(&big.cpu_reference(&big_prepared));
    let (big_spec, big_inputs) = big_prepared.to_job();
    let big_hash = big_spec.spec_hash();
    let big_units = big_spec.work_units;
    let big_bundle = JobBundle { spec: big_spec, inputs: big_inputs, library: None };
    let seed = |tag: &str, i: usize| blob::sha256(format!("{tag}-{i}").as_bytes());
    let (md, mf) = (m.with(dave), m.with(ferdie));

    // ---- Floor: latency series, then throughput (no workers running yet).
    eprintln!("floor: latency");
    let mut floor_lat = Vec::new();
    for rate in [RARE_CHECK_BPS, 10_000] {
        for i in 0..args.runs {
            let s = seed(&format!("floor-{rate}"), i);
            floor_lat.push(drive(&m, dave, (providers[i % 3], offers[i % 3]), &providers, spec_hash, bundle.spec.work_units, root, rate, s).await?);
        }
    }
    eprintln!("floor: throughput");
    let t = Instant::now();
    let jobs: Vec<_> = (0..args.jobs)
        .map(|i| {
            let renter = if i % 2 == 0 { dave } else { ferdie };
            drive(&m, renter, (providers[i % 3], offers[i % 3]), &providers, big_hash, big_units, big_root, RARE_CHECK_BPS, seed("floor-tp", i))
        })
        .collect();
    let floor_tp = futures::future::try_join_all(jobs).await?;
    let floor_tp_secs = t.elapsed().as_secs_f64();

    // ---- The three worker processes.
    eprintln!("starting three workers");
    let contract = format!("{:?}", m.address());
    let mut workers = Vec::new();
    for (name, suri) in [("bob", "//Bob"), ("charlie", "//Charlie"), ("eve", "//Eve")] {
        workers.push(start_worker(name, suri, &url, &contract, dir.path(), args.isolate)?);
    }
    let mut pids: Vec<(String, u32)> = workers.iter().map(|w| (format!("worker {}", w.name), w.child.id())).collect();
    pids.push(("node (baseline)".into(), node.pid()));
    eprintln!("idle window ({} s)", args.idle_secs);
    let idle = Window::open(&pids)?;
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle = idle.close()?;

    eprintln!("workers: latency");
    let mut worker_lat = Vec::new();
    for rate in [RARE_CHECK_BPS, 10_000] {
        for i in 0..args.runs {
            let offer = workers[i % 3].offer_id;
            worker_lat.push(through_workers(&md, &store, &bundle, offer, rate, seed(&format!("workers-{rate}"), i)).await?);
        }
    }
    eprintln!("workers: throughput");
    let mut busy = Window::open(&pids)?;
    let t = Instant::now();
    let jobs: Vec<_> = (0..args.jobs)
        .map(|i| {
            let mr = if i % 2 == 0 { &md } else { &mf };
            through_workers(mr, &store, &big_bundle, workers[i % 3].offer_id, RARE_CHECK_BPS, seed("workers-tp", i))
        })
        .collect();
    let worker_tp = sampled(&mut busy, futures::future::try_join_all(jobs)).await?;
    let worker_tp_secs = t.elapsed().as_secs_f64();
    let busy = busy.close()?;

    // Graceful shutdown: SIGTERM, exit 0.
    for w in &mut workers {
        // SAFETY: kill(2) with a child's pid.
        unsafe { libc::kill(w.child.id() as i32, libc::SIGTERM) };
        let status = w.child.wait()?;
        ensure!(status.success(), "worker {} exited {status} after SIGTERM", w.name);
    }
    let (balance, total) = m.balance_check().await?;
    ensure!(balance == total, "money invariant broken: balance {balance} != {total}");

    // Blocks per job from the events (JobCreated block → settlement block).
    let head = alice.finalized_number().await?;
    let events = alice.contract_events_in(m.address(), 0, head).await?;
    let capacloud_client::summary::Folded { jobs: rows, undecodable, .. } = capacloud_client::summary::fold(&events);
    ensure!(undecodable == 0, "{undecodable} undecodable events");
    let blocks = |d: &Done| -> f64 {
        let r = &rows[&d.id];
        r.ended_block.map(|e| f64::from(e - r.created_block)).unwrap_or(f64::NAN)
    };
    let span = |ds: &[Done]| -> u32 {
        let first = ds.iter().map(|d| rows[&d.id].created_block).min().unwrap_or(0);
        let last = ds.iter().filter_map(|d| rows[&d.id].ended_block).max().unwrap_or(0);
        last - first
    };

    println!(
        "## Market benchmark (local dev chain, 1 s blocks, lavapipe workers{}, {} CPU cores)\n",
        if args.isolate { " with --isolate" } else { "" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("### Latency create → settled (median (min–max))\n");
    println!("| path | checked | jobs | blocks | seconds |");
    println!("|---|---|---|---|---|");
    for (path, ds) in [("protocol floor (one in-process driver)", &floor_lat), ("3 worker processes + renter follow", &worker_lat)] {
        for checked in [false, true] {
            let sel: Vec<&Done> = ds.iter().filter(|d| d.checked == checked).collect();
            let b: Vec<f64> = sel.iter().map(|d| blocks(d)).collect();
            let s: Vec<f64> = sel.iter().map(|d| d.secs).collect();
            println!("| {path} | {} | {} | {} | {} |", if checked { "yes" } else { "no" }, sel.len(), stats(&b), stats(&s));
        }
    }
    println!("\n### Throughput: {} SHA-256 jobs of {} messages ({} MiB in) submitted at once over 3 providers\n", args.jobs, args.messages, args.messages / 16_384);
    println!("| path | wall s | blocks spanned | jobs/min | checked |");
    println!("|---|---|---|---|---|");
    for (path, ds, secs) in [("protocol floor (one in-process driver)", &floor_tp, floor_tp_secs), ("3 worker processes + renter follow", &worker_tp, worker_tp_secs)] {
        let checked = ds.iter().filter(|d| d.checked).count();
        println!("| {path} | {secs:.1} | {} | {:.1} | {checked} |", span(ds), ds.len() as f64 / secs * 60.0);
    }
    println!("\n### Resources (CPU % of one core; peak resident MiB): idle {} s, busy = the throughput run\n", args.idle_secs);
    println!("| process | idle CPU % | idle RSS MiB | busy CPU % | busy peak RSS MiB |");
    println!("|---|---|---|---|---|");
    let busy: BTreeMap<String, (f64, f64)> = busy.into_iter().map(|(n, c, r)| (n, (c, r))).collect();
    for (name, c, r) in idle {
        let (bc, br) = busy[&name];
        println!("| {name} | {c:.1} | {r:.0} | {bc:.1} | {br:.0} |");
    }
    Ok(())
}

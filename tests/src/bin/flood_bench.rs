//! `capacloud-flood-bench`: a provider's worker while its endpoint is flooded, beside the same
//! worker unattacked in the same run. Three real `capacloud-worker` processes on a private
//! local chain; the renter hires Charlie for `--jobs` checked jobs in a row, first with no
//! attack (the baseline), then while an attacker floods Charlie's endpoint with
//!
//! - unsigned reads of outputs (`GET /outputs/<random>`: 401 each),
//! - reads of the jobs' real outputs signed by fresh strangers' keys (each a signature check
//!   and, for a root the worker produced, a chain read by its reader gate: 403 each),
//! - slowloris connections (half a request line, then silence), more than the worker's
//!   connection caps;
//!
//! and then while a hostile renter (Bob) hires Charlie for a runaway kernel every
//! `--hostile-every` seconds and never moves them on: each is valid, priced by its dispatch,
//! and would run for minutes, so Charlie runs it first as a trial (in its lane for long
//! trials, on the same two cores) and never signs for it; the trial is stopped when the
//! job's accept window closes. Charlie's own jobs' trials run in the quick lane.
//!
//! The attacker sends from 127.0.0.2 and the renter from 127.0.0.1 (both loopback): one
//! attacking host against the per-address connection cap. Both share this machine's cores.
//!
//! Per condition: job latency in blocks (created → settled) and seconds, the worker's CPU and
//! peak RSS, jobs lost by the honest parties (must be 0: every job settles, the renter gets
//! every output), and what the attack's requests got. `make bench-flood` runs it.

use anyhow::{ensure, Context, Result};
use capacloud_client::blob::access::{Action, Signer};
use capacloud_client::blob::{HttpStore, LocalStore};
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, Journal, Terms};
use capacloud_tests::procs::{sampled, start_worker, stop_worker, Window};
use capacloud_tests::{chain_spec, contract_artifacts, deploy_fast, dev_chains, endpoint, next_epoch, node_binary, runaway_job, TestNode};
use clap::Parser;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WND: Amount = UNITS_PER_WND;
const PRICE: Amount = WND / 10_000;

#[derive(Parser)]
#[command(about = "CapaCloud flood benchmark: a worker's job latency and memory with its endpoint under attack, beside no attack")]
struct Args {
    /// Checked jobs per condition, one after another.
    #[arg(long, default_value_t = 3)]
    jobs: u32,
    /// Tasks per job (sha256 batches).
    #[arg(long, default_value_t = 4)]
    tasks: u32,
    /// 64-byte messages per task.
    #[arg(long, default_value_t = 4_096)]
    messages: u32,
    /// Concurrent unsigned readers.
    #[arg(long, default_value_t = 32)]
    unsigned: usize,
    /// Concurrent readers signing with fresh keys.
    #[arg(long, default_value_t = 8)]
    signed: usize,
    /// Slowloris connections held open (the worker closes them after 10 s and caps
    /// connections at 256).
    #[arg(long, default_value_t = 300)]
    slowloris: usize,
    /// Seconds between the hostile renter's runaway hires.
    #[arg(long, default_value_t = 3)]
    hostile_every: u64,
}

/// What the attack's requests got.
#[derive(Default)]
struct Tally {
    by_status: Mutex<BTreeMap<String, u64>>,
    slow_closed: AtomicU64,
}

impl Tally {
    fn count(&self, what: String) {
        *self.by_status.lock().unwrap().entry(what).or_default() += 1;
    }

    fn summary(&self) -> String {
        let mut parts: Vec<String> = self.by_status.lock().unwrap().iter().map(|(k, v)| format!("{k}: {v}")).collect();
        parts.push(format!("slowloris connections closed by the worker: {}", self.slow_closed.load(Ordering::Relaxed)));
        parts.join(", ")
    }
}

/// Floods `base` until `stop` is set; `roots` holds real output roots to ask for (signed).
fn attack(base: String, roots: Arc<Mutex<Vec<[u8; 32]>>>, args: &Args, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .local_address(std::net::IpAddr::from(ATTACKER))
        .build()
        .expect("client");
    for i in 0..args.unsigned {
        let (http, base, stop, tally) = (http.clone(), base.clone(), stop.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let root = capacloud_client::blob::sha256(&[i.to_le_bytes(), n.to_le_bytes()].concat());
                match http.get(format!("{base}/outputs/{}", hex::encode(root))).send().await {
                    Ok(r) => tally.count(format!("unsigned {}", r.status().as_u16())),
                    Err(_) => tally.count("unsigned error".into()),
                }
            }
        }));
    }
    for _ in 0..args.signed {
        let (http, base, stop, tally, roots) = (http.clone(), base.clone(), stop.clone(), tally.clone(), roots.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Some(root) = roots.lock().unwrap().last().copied() else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let stranger = Signer::new(subxt_signer::sr25519::Keypair::from_secret_key(rand_secret()).expect("a key"));
                let auth = stranger.header(Action::Read, &root);
                match http.get(format!("{base}/outputs/{}", hex::encode(root))).header("authorization", auth).send().await {
                    Ok(r) => tally.count(format!("signed stranger {}", r.status().as_u16())),
                    Err(_) => tally.count("signed stranger error".into()),
                }
            }
        }));
    }
    let addr = base.trim_start_matches("http://").to_string();
    for _ in 0..args.slowloris {
        let (addr, stop, tally) = (addr.clone(), stop.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut conn) = connect_from_attacker(&addr).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let _ = conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
                let mut buf = [0u8; 256];
                // Held until the worker closes it (header timeout, or the cap on accept).
                loop {
                    tokio::select! {
                        r = conn.read(&mut buf) => {
                            if matches!(r, Ok(0) | Err(_)) { tally.slow_closed.fetch_add(1, Ordering::Relaxed); }
                            if !matches!(r, Ok(n) if n > 0) { break; }
                        }
                        _ = tokio::time::sleep(Duration::from_millis(500)) => if stop.load(Ordering::Relaxed) { return; },
                    }
                }
            }
        }));
    }
    tasks
}

/// The attacking host's address (loopback, distinct from the renter's 127.0.0.1).
const ATTACKER: [u8; 4] = [127, 0, 0, 2];

async fn connect_from_attacker(addr: &str) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from((ATTACKER, 0)))?;
    let target = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| std::io::Error::other("no address"))?;
    socket.connect(target).await
}

fn rand_secret() -> [u8; 32] {
    capacloud_client::renter::random_seed().expect("randomness")
}

/// What Charlie is put through while the renter's jobs run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    None,
    /// Its endpoint flooded ([`attack`]).
    Flood,
    /// A hostile renter hiring it for runaway kernels.
    Runaways,
}

/// One condition's figures.
struct Row {
    label: &'static str,
    blocks: Vec<u32>,
    secs: Vec<f64>,
    settled: u32,
    outputs_ok: u32,
    procs: Vec<(String, f64, f64)>,
    attack: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let art = contract_artifacts("capacloud-flood-bench").context("build the contract first (make contract)")?;
    let node = TestNode::start_with(&node_binary(), &chain_spec()).map_err(anyhow::Error::msg)?;
    let url = node.url();
    let [alice, _, _, dave, _, _] = &dev_chains(&url).await;
    let m = deploy_fast(alice, &art.code, 6, 10).await;
    let dir = tempfile::Builder::new().prefix("capacloud-flood-").tempdir()?;
    let contract = format!("{:?}", m.address());
    let mut workers = Vec::new();
    for (name, suri) in [("charlie", "//Charlie"), ("eve", "//Eve"), ("ferdie", "//Ferdie")] {
        eprintln!("starting worker {name}");
        workers.push((name, start_worker(name, suri, &url, &contract, PRICE, dir.path())?));
    }
    next_epoch(&m).await; // their stakes count in draws
    let (charlie_offer, charlie_url) = (workers[0].1.offer_id, workers[0].1.endpoint.clone());
    let renter_server = endpoint(LocalStore::new(dir.path().join("renter"))?, None).await;
    let store = HttpStore::new(&renter_server.url)?;
    let journal = Journal::new(dir.path().join("journal"));
    let md = m.with(dave);
    let terms = Terms {
        offer_id: Some(charlie_offer),
        max_price_per_unit: PRICE,
        check_rate_bps: 10_000,
        compute_blocks: capacloud_tests::TEST_MAX_COMPUTE,
        requirements: Requirements::default(),
        pay_if_unverified: false,
    };
    let mut pids: Vec<(String, u32)> = workers.iter().map(|(name, w)| (format!("worker {name}"), w.child.id())).collect();
    pids.push(("node".into(), node.pid()));

    let roots: Arc<Mutex<Vec<[u8; 32]>>> = Arc::default();
    let mut rows = Vec::new();
    let hostile_jobs: Arc<Mutex<Vec<u64>>> = Arc::default();
    let runaway = renter::stage(&store, &runaway_job(77), &Terms { check_rate_bps: 0, ..terms.clone() }).await?;
    for (label, condition) in [("no attack (baseline)", Condition::None), ("endpoint flooded", Condition::Flood), ("runaway hires", Condition::Runaways)] {
        eprintln!("{label}: {} jobs", args.jobs);
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let attackers = match condition {
            Condition::None => Vec::new(),
            Condition::Flood => attack(charlie_url.clone(), roots.clone(), &args, stop.clone(), tally.clone()),
            Condition::Runaways => {
                let (contract, input, stop, posted, every) = (m.address(), runaway.clone(), stop.clone(), hostile_jobs.clone(), args.hostile_every);
                let journal = Journal::new(dir.path().join("hostile-journal"));
                let bob = capacloud_client::chain::Chain::connect(&url, subxt_signer::sr25519::dev::bob()).await?;
                vec![tokio::spawn(async move {
                    let mb = capacloud_client::Marketplace::unchecked(&bob, contract);
                    while !stop.load(Ordering::Relaxed) {
                        let now = bob.best_number().await.unwrap_or(0);
                        match renter::create(&mb, &journal, &input, &rand_secret(), now).await {
                            Ok(id) => posted.lock().unwrap().push(id),
                            Err(e) => eprintln!("hostile renter: {e}"),
                        }
                        tokio::time::sleep(Duration::from_secs(every)).await;
                    }
                })]
            }
        };
        if condition != Condition::None {
            tokio::time::sleep(Duration::from_secs(3)).await; // the attack is on before the first job
        }
        let mut window = Window::open(&pids)?;
        let mut row = Row { label, blocks: Vec::new(), secs: Vec::new(), settled: 0, outputs_ok: 0, procs: Vec::new(), attack: String::new() };
        for j in 0..args.jobs {
            let bundle = renter::library_job("sha256", args.messages, 1_000 + u64::from(j) * 97 + condition as u64 * 7, args.tasks)?;
            let t = Instant::now();
            let (id, job) = sampled(&mut window, async {
                let input = renter::stage(&store, &bundle, &terms).await?;
                let seed = renter::random_seed()?;
                let now = dave.finalized_number().await?;
                let id = renter::create(&md, &journal, &input, &seed, now).await?;
                let job = renter::follow(&md, id, &seed, Duration::from_secs(600), |_| {}).await?;
                anyhow::Ok((id, job))
            })
            .await?;
            row.secs.push(t.elapsed().as_secs_f64());
            if job.state == JobState::Settled {
                row.settled += 1;
                roots.lock().unwrap().push(job.batch_root);
                let outputs = renter::fetch_outputs(&md, id, &job, &store).await?;
                if outputs.len() == args.tasks as usize {
                    row.outputs_ok += 1;
                }
            }
            let created = md.job(id).await?.context("job")?.core.opened_at;
            let ended = dave.finalized_number().await?;
            row.blocks.push(ended.saturating_sub(created));
            eprintln!("  job {id}: {:?} after {} s", job.state, row.secs.last().unwrap().round());
        }
        stop.store(true, Ordering::Relaxed);
        for a in attackers {
            a.abort();
        }
        row.procs = window.close()?;
        row.attack = match condition {
            Condition::None => "—".into(),
            Condition::Flood => tally.summary(),
            Condition::Runaways => {
                let posted = hostile_jobs.lock().unwrap().clone();
                let mut accepted = 0;
                for id in &posted {
                    if md.job_core(*id).await?.context("hostile job")?.state != JobState::AwaitingAccept {
                        accepted += 1;
                    }
                }
                ensure!(accepted == 0, "Charlie signed for {accepted} runaway hires");
                format!("{} runaway hires posted, none accepted", posted.len())
            }
        };
        rows.push(row);
    }
    for (name, w) in workers {
        stop_worker(name, w.child)?;
    }
    let (balance, total) = m.balance_check().await?;
    ensure!(balance == total, "money invariant broken: balance {balance} != {total}");

    println!("### A worker's endpoint under attack: {} checked jobs of {} sha256 tasks per condition, hired directly (Charlie), verified by Eve or Ferdie\n", args.jobs, args.tasks);
    println!("| condition | jobs settled | outputs fetched by the renter | jobs lost | blocks create → settled (each) | seconds (each) | Charlie CPU % of one core | Charlie peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let charlie = r.procs.iter().find(|p| p.0 == "worker charlie").context("charlie")?;
        println!(
            "| {} | {}/{} | {}/{} | {} | {:?} | {} | {:.1} | {:.0} |",
            r.label,
            r.settled,
            args.jobs,
            r.outputs_ok,
            args.jobs,
            args.jobs - r.settled.min(r.outputs_ok),
            r.blocks,
            r.secs.iter().map(|s| format!("{s:.0}")).collect::<Vec<_>>().join(", "),
            charlie.1,
            charlie.2
        );
    }
    println!("\n| condition | process | CPU % of one core | peak RSS MiB |\n|---|---|---|---|");
    for r in &rows {
        for (name, c, rss) in &r.procs {
            println!("| {} | {name} | {c:.1} | {rss:.0} |", r.label);
        }
    }
    println!("\nAttack (flooded condition): {}", rows[1].attack);
    println!("Attack (runaway hires, one every {} s): {}", args.hostile_every, rows[2].attack);
    println!("Attack load: {} unsigned readers, {} signing strangers, {} slowloris connections", args.unsigned, args.signed, args.slowloris);
    Ok(())
}

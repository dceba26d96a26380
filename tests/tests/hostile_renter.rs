//! Hostile renters against a provider running `capacloud-worker` with its defaults (kernels
//! in the sandbox, 30 s fetches, 60 s per kernel), on a real node. Six direct hires are
//! posted to it just before an honest one: a spec URI that accepts connections and never
//! answers, one that drips a byte a second forever, a kernel that is not valid WGSL, an input
//! its renter's store no longer serves, a runaway kernel (valid, priced by its dispatch, but
//! its loops would run for minutes: the worker runs it first, in its lane for long trials,
//! and does not sign while it runs), and a kernel that asks for more workgroup memory than
//! some adapters have (it would fail when its pipeline is created). The worker signs none of
//! them and stalls on none of them (its fetches run beside its passes, the honest job's
//! trial in the quick lane beside the runaway one's): the honest job is accepted within two
//! blocks and settles, well inside the 30 s a silent URI holds a fetch; every hostile job ends refunded,
//! its renter getting back exactly its escrow (the renter's follow moves them on: the provider
//! spends no fee on hires it never accepted); the provider's stake, reputation and
//! withdrawable balance lose nothing (no slash, no timeout); its metrics name each refusal;
//! and it stops cleanly. The money invariant holds at the end.
//!
//! A second test: a small kernel that crashes the driver costs neither the provider it hires
//! nor the verifier drawn to check it anything (see its docs).

use capacloud_client::blob::{self, LocalStore};
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, JobBundle, Journal, Terms};
use capacloud_executor::workloads::matmul::Matmul;
use capacloud_executor::workloads::Workload;
use capacloud_client::Marketplace;
use capacloud_tests::procs::stop_worker;
use capacloud_tests::{
    assert_provider_unharmed, assert_verifier_bowed_out_unharmed, binary_worker_market, endpoint, job_event_block, job_events, kernel_child_wrapper, renter_side, runaway_job, two_provider_market, worker_chain, worker_config,
};
use capacloud_worker::metrics::{ActionLabel, Metrics};
use capacloud_worker::provider::Worker;
use std::sync::Arc;
use std::time::Duration;
use subxt_signer::sr25519::dev;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PRICE: Amount = UNITS_PER_WND / 1_000;

fn matmul_job(seed: u64) -> JobBundle {
    let (spec, inputs) = Matmul { n: 64, seed }.prepare().to_job();
    JobBundle { spec, tasks: vec![inputs], library: None }
}

/// The matmul kernel with 128 KiB of workgroup memory more: valid WGSL, but over what many
/// adapters have (wgpu's portable limit is 16 KiB), so its pipeline would fail on them.
fn oversized_job(seed: u64) -> JobBundle {
    let mut job = matmul_job(seed);
    job.spec.wgsl = job
        .spec
        .wgsl
        .replacen("@compute", "var<workgroup> big: array<u32, 32768>;\n@compute", 1)
        .replacen("let n = params.n;", "big[lid.x] = lid.y;\n    let n = params.n + big[0];", 1);
    job
}

/// A server that accepts connections and never answers (holding them open).
async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// A server that answers `200 OK` with a 1 MB body and sends it a byte a second.
async fn drip_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                if socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n").await.is_err() {
                    return;
                }
                while socket.write_all(b"x").await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// The amounts of job `id`'s events of one kind, picked by `f`.
fn amounts(events: &[(u32, capacloud_client::chain::ContractEvent)], id: u64, f: impl Fn(&JobEventKind) -> Option<Amount>) -> Vec<Amount> {
    job_events(events, id).iter().filter_map(|(_, k)| f(k)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_renters_cost_a_default_worker_nothing() {
    let Some(market) = binary_worker_market("hostile_renters_cost_a_default_worker_nothing", PRICE, None).await else { return };
    let [alice, bob, _, dave, _, _] = &market.chains;
    let m = Marketplace::unchecked(alice, market.market);
    let md = m.with(dave);
    let worker = market.worker;
    let offer = worker.offer_id;
    let stake_before = m.provider(bob.address()).await.unwrap().unwrap().stake;

    let renter = renter_side().await;
    let (server, store) = (&renter.server, &renter.store);
    let lossy_dir = tempfile::tempdir().unwrap();
    let lossy_server = endpoint(LocalStore::new(lossy_dir.path()).unwrap(), None).await;
    let lossy = blob::open(&lossy_server.url).unwrap();
    let terms = Terms { offer_id: Some(offer), max_price_per_unit: PRICE, check_rate_bps: 0, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };

    // The hostile jobs' inputs.
    let staged = renter::stage(store.as_ref(), &matmul_job(1), &terms).await.unwrap();
    let spec_uri = String::from_utf8(staged.uri.clone()).unwrap();
    let moved = |to: &str| JobInput { uri: spec_uri.replace(&server.url, to).into_bytes(), ..staged.clone() };
    let silent = moved(&silent_server().await);
    let drip = moved(&drip_server().await);
    let mut broken = matmul_job(2);
    broken.spec.wgsl = "@compute @workgroup_size(8, 8) fn main( {".into();
    let broken = renter::stage(store.as_ref(), &broken, &terms).await.unwrap();
    let runaway = renter::stage(store.as_ref(), &runaway_job(5), &terms).await.unwrap();
    let oversized = renter::stage(store.as_ref(), &oversized_job(6), &terms).await.unwrap();
    let missing = renter::stage(lossy.as_ref(), &matmul_job(3), &terms).await.unwrap();
    for f in std::fs::read_dir(lossy_dir.path()).unwrap() {
        let path = f.unwrap().path();
        if path.file_name().unwrap().to_str().unwrap() != hex::encode(missing.spec_hash) {
            std::fs::remove_file(path).unwrap();
        }
    }
    let honest = renter::stage(store.as_ref(), &matmul_job(4), &terms).await.unwrap();

    // Posted hostile first, the honest job last, one block apart.
    let journal = &renter.journal;
    let first_block = dave.best_number().await.unwrap();
    let mut jobs = Vec::new();
    for (name, input) in [("silent", &silent), ("drip", &drip), ("broken", &broken), ("missing", &missing), ("runaway", &runaway), ("oversized", &oversized), ("honest", &honest)] {
        let seed = renter::random_seed().unwrap();
        let id = renter::create(&md, journal, input, &seed, dave.best_number().await.unwrap()).await.unwrap();
        jobs.push((name, id, seed));
    }
    let ended = futures::future::join_all(jobs.iter().map(|(_, id, seed)| renter::follow(&md, *id, seed, Duration::from_secs(600), |_| {}))).await;
    let ended: Vec<Job> = ended.into_iter().map(|r| r.unwrap()).collect();
    let metrics = reqwest::get(format!("{}/metrics", worker.endpoint)).await.unwrap().text().await.unwrap();
    stop_worker("bob", worker.child).unwrap();

    let events = dave.contract_events_in(m.address(), first_block, dave.best_number().await.unwrap()).await.unwrap();
    let (_, honest_id, _) = jobs[6];
    let block_of = |id: u64, pick: fn(&JobEventKind) -> bool| job_event_block(&events, id, pick);
    let created = block_of(honest_id, |k| matches!(k, JobEventKind::Created { .. })).unwrap();
    let assigned = block_of(honest_id, |k| matches!(k, JobEventKind::Assigned { .. })).unwrap();
    println!("honest job {honest_id}: created #{created}, accepted #{assigned}");
    assert!(assigned - created <= 2, "the honest job was accepted at once ({created} → {assigned}), behind no hostile fetch");
    assert_eq!(ended[6].state, JobState::Settled, "the honest job settled");
    let paid = amounts(&events, honest_id, |k| match k {
        JobEventKind::Settled { provider_payout, .. } => Some(*provider_payout),
        _ => None,
    });
    assert_eq!(md.withdrawable_of(bob.address()).await.unwrap(), paid.iter().sum::<Amount>(), "Bob was paid for the honest job, nothing taken");

    for ((name, id, _), job) in jobs.iter().zip(&ended).take(6) {
        assert_eq!(job.state, JobState::Refunded, "{name}: refunded");
        let escrow = amounts(&events, *id, |k| match k {
            JobEventKind::Created { escrow, .. } => Some(*escrow),
            _ => None,
        });
        let refunded = amounts(&events, *id, |k| match k {
            JobEventKind::Refunded { amount, .. } => Some(*amount),
            _ => None,
        });
        assert_eq!(refunded.iter().sum::<Amount>(), escrow[0], "{name}: the renter got exactly its escrow back");
        assert!(block_of(*id, |k| matches!(k, JobEventKind::Assigned { .. })).is_none(), "{name}: never accepted");
    }
    assert_provider_unharmed(&m, &events, bob.address(), stake_before).await;

    // Each refusal is named in the worker's metrics.
    let count = |reason: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with("capacloud_worker_failures_total{") && l.contains(&format!("reason=\"{reason}\"")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    // (The silent and dripping URIs were still being waited on, in the background, when
    // their jobs ended: their checks were dropped with the jobs.)
    assert!(count("unavailable") >= 1.0, "the missing input refused as unavailable:\n{metrics}");
    assert!(count("invalid_job") >= 2.0, "the broken and the oversized kernel refused as invalid:\n{metrics}");
    // The runaway kernel was still in its trial when its job ended (its trial was stopped
    // with the job): one trial finished, the honest job's.
    assert!(metrics.contains("capacloud_worker_trials_total 1"), "one trial finished:\n{metrics}");
    assert!(!metrics.contains("action=\"cleaned up\""), "Bob spent no fee moving on hires it never accepted:\n{metrics}");

    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

/// What the kernel sandbox wrapper of the crash test crashes on.
const CRASH_MARKER: &str = "capacloud-test: this kernel crashes the driver";

/// The matmul job with [`CRASH_MARKER`] in a comment of its kernel.
fn crashing_job(seed: u64) -> JobBundle {
    let mut job = matmul_job(seed);
    job.spec.wgsl = format!("// {CRASH_MARKER}\n{}", job.spec.wgsl);
    job
}

/// A renter's kernel that crashes the driver: small (a 64 × 64 matmul, its static bound far
/// below `TRUSTED_OPS`), valid, and fatal to the process that runs it. Simulated by running
/// the workers' kernel sandbox through a wrapper that kills itself with SIGSEGV, as a driver
/// bug would, when the spec carries [`CRASH_MARKER`]. Every kernel is tried before anything
/// is signed:
/// - hired directly, the honest worker's trial crashes; its GPU passes its probe, so the job
///   is refused before signing (never accepted, never reported) and its renter gets back
///   exactly its escrow. (Accepted untried, the crash would have made the provider report
///   the inputs unavailable, a verifier would have found them available, and the provider
///   would have lost its deposit and then a commitment timeout.)
/// - a dishonest provider that runs nothing accepts and commits a checked job running it;
///   the honest worker drawn to verify crashes too and bows out before committing (replaced,
///   neither paid nor slashed) instead of letting its commitment time out at its bond's cost.
///   With nobody else to draw, the contract's rule for a round whose every verifier bowed
///   out applies: the renter's job is at fault and the provider is paid, unverified.
///
/// The honest worker's stake, lock, record and balance are untouched; the money invariant
/// holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_that_crashes_the_driver_costs_its_provider_and_verifier_nothing() {
    let test = "a_kernel_that_crashes_the_driver_costs_its_provider_and_verifier_nothing";
    let Some(fx) = two_provider_market(test, PRICE).await else { return };
    let [alice, bob, _, dave, _, _] = &fx.chains;
    let (m, url, gpu) = (Marketplace::unchecked(alice, fx.market), fx.node.url(), fx.gpu.clone());
    let (bob_offer, charlie_offer) = (fx.bob_offer, fx.charlie_offer);
    let bob_before = m.provider(bob.address()).await.unwrap().unwrap();

    // One directory plays the renter's and both providers' blob store (location-free URIs).
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalStore::new(dir.path().join("blobs")).unwrap();
    let journal = Journal::new(dir.path().join("jobs"));
    let wrapper = kernel_child_wrapper(&dir.path().join("kernel-child.sh"), &format!("grep -aq '{CRASH_MARKER}' \"$2/spec\""), "simulated: the driver crashed", "kill -SEGV $$");
    let mut bob_cfg = worker_config(bob_offer, PRICE, 1, false);
    bob_cfg.isolate = Some(wrapper);
    let bob_metrics = Arc::new(Metrics::default());
    let bob_w = Worker::new(worker_chain(&url, dev::bob()).await, m.address(), gpu.clone(), blobs.clone(), bob_cfg, bob_metrics.clone());
    // Charlie cheats: it signs for jobs without running them.
    let charlie_w = Worker::new(worker_chain(&url, dev::charlie()).await, m.address(), gpu.clone(), blobs.clone(), worker_config(charlie_offer, PRICE, 2, true), Arc::new(Metrics::default()));

    let md = m.with(dave);
    let terms = |offer: u64, check_rate_bps: u16| Terms { offer_id: Some(offer), max_price_per_unit: PRICE, check_rate_bps, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };
    let dave_before = md.withdrawable_of(dave.address()).await.unwrap();
    let first_block = dave.best_number().await.unwrap();
    let mut jobs = Vec::new();
    for (bundle, terms) in [(crashing_job(11), terms(bob_offer, 0)), (crashing_job(12), terms(charlie_offer, 10_000))] {
        let input = renter::stage(&blobs, &bundle, &terms).await.unwrap();
        let seed = renter::random_seed().unwrap();
        let id = renter::create(&md, &journal, &input, &seed, dave.best_number().await.unwrap()).await.unwrap();
        jobs.push((id, seed));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let follow = async {
        let start = std::time::Instant::now();
        let ended = futures::future::join_all(jobs.iter().map(|(id, seed)| {
            renter::follow(&md, *id, seed, Duration::from_secs(300), move |state| println!("{:>6.1} s: job {id} {state:?}", start.elapsed().as_secs_f64()))
        }))
        .await;
        let _ = stop_tx.send(true);
        ended
    };
    let (ended, (), ()) = tokio::join!(follow, bob_w.run(stopped(stop_rx.clone())), charlie_w.run(stopped(stop_rx)));
    let [hired, checked] = [ended[0].as_ref().unwrap(), ended[1].as_ref().unwrap()];
    let (hired_id, checked_id) = (jobs[0].0, jobs[1].0);
    let events = dave.contract_events_in(m.address(), first_block, dave.best_number().await.unwrap()).await.unwrap();
    let of = |id: u64| -> Vec<JobEventKind> { job_events(&events, id).into_iter().map(|(_, k)| k).collect() };
    let steps = |action: &'static str| bob_metrics.steps.get_or_create(&ActionLabel { action }).get();

    // Hired directly: refused in its trial, never signed for, refunded exactly.
    assert_eq!((hired.state, hired.reported), (JobState::Refunded, false), "the crashing hire was refunded, never reported");
    assert!(!of(hired_id).iter().any(|k| matches!(k, JobEventKind::Assigned { .. })), "and never accepted");
    let escrow = |id: u64| of(id).iter().find_map(|k| if let JobEventKind::Created { escrow, .. } = k { Some(*escrow) } else { None }).unwrap();
    let refunded: Amount = of(hired_id).iter().filter_map(|k| if let JobEventKind::Refunded { amount, .. } = k { Some(*amount) } else { None }).sum();
    assert_eq!(refunded, escrow(hired_id), "its renter got exactly its escrow back");
    assert_eq!(steps("accepted") + steps("accepted and committed"), 0, "Bob signed for nothing");
    assert!(bob_w.healthy(), "the crash was the kernel's: Bob's GPU passed its probe");

    // Checked, Charlie's: Bob was drawn, crashed, bowed out.
    assert_eq!(steps("bowed out as verifier"), 1, "Bob bowed out once");
    assert_eq!(steps("verification committed"), 0);
    assert_verifier_bowed_out_unharmed(&m, &events, checked_id, bob.address(), &bob_before).await;
    assert_eq!(checked.state, JobState::Unverified, "nobody else to draw: paid unverified");
    let paid: Amount = of(checked_id)
        .iter()
        .filter_map(|k| if let JobEventKind::Unverified { paid: true, renter_refund, .. } = k { Some(escrow(checked_id) - *renter_refund) } else { None })
        .sum();
    assert!(paid > 0, "Charlie was paid: {:?}", of(checked_id));

    // Bob lost nothing and gained nothing (checked above, at the end of the job); Dave paid
    // Charlie's job and nothing else.
    assert_eq!(md.withdrawable_of(dave.address()).await.unwrap() - dave_before, escrow(hired_id) + escrow(checked_id) - paid, "Dave: both escrows back but the price of Charlie's job");
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

//! A provider whose disk is nearly full, on a real node: `capacloud-worker` (the binary, its
//! defaults) keeps its data on an 8 MiB filesystem. A direct hire whose output (a 12 MB
//! Mandelbrot image, no inputs: everything it needs to fetch fits) would not fit is declined
//! before anything is signed — accepted, it would have failed to store its output and cost
//! the provider its commitment — and refunded to the renter exactly; a small hire posted
//! after it is accepted and settles. Nobody is slashed, the provider's stake and reputation
//! are untouched, its metrics count `disk_full`, and the money invariant holds.
//!
//! Two more, on verifiers whose disk is small: one drawn for a job whose sampled outputs its
//! disk cannot hold bows out instead of losing its bond; one drawn to check a provider's
//! claim that a job's inputs are unavailable votes on what it fetched, not on what its disk
//! could keep (see their docs).

use capacloud_client::blob::LocalStore;
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, Terms};
use capacloud_client::Marketplace;
use capacloud_tests::procs::stop_worker;
use capacloud_tests::{assert_provider_unharmed, assert_verifier_bowed_out_unharmed, binary_worker_market, job_events, renter_side, two_provider_market, worker_chain, worker_config, SmallDisk};
use capacloud_worker::metrics::{ActionLabel, Metrics};
use capacloud_worker::provider::Worker;
use std::sync::Arc;
use std::time::Duration;
use subxt_signer::sr25519::dev;

const PRICE: Amount = UNITS_PER_WND / 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_declines_a_job_its_disk_cannot_hold() {
    let test = "a_worker_declines_a_job_its_disk_cannot_hold";
    let Some(disk) = SmallDisk::mount(test, 8) else { return };
    // Bob's data directory is the small disk.
    let Some(market) = binary_worker_market(test, PRICE, Some(disk.path())).await else { return };
    let [alice, bob, _, dave, _, _] = &market.chains;
    let m = Marketplace::unchecked(alice, market.market);
    let md = m.with(dave);
    let worker = market.worker;
    let stake_before = m.provider(bob.address()).await.unwrap().unwrap().stake;

    let renter = renter_side().await;
    let terms = Terms { offer_id: Some(worker.offer_id), max_price_per_unit: PRICE, check_rate_bps: 0, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };
    let big = renter::library_job("mandelbrot", 2048, 1, 1).unwrap();
    let output_bytes: u64 = big.spec.bindings.iter().map(|b| if let capacloud_executor::spec::BindingKind::Output { len } = b.kind { len } else { 0 }).sum();
    assert!(output_bytes > 8 << 20, "the output ({output_bytes} bytes) is larger than the disk");
    let small = renter::library_job("matmul", 64, 1, 1).unwrap();
    let first_block = dave.best_number().await.unwrap();
    let mut jobs = Vec::new();
    for bundle in [&big, &small] {
        let input = renter::stage(renter.store.as_ref(), bundle, &terms).await.unwrap();
        let seed = renter::random_seed().unwrap();
        let id = renter::create(&md, &renter.journal, &input, &seed, dave.best_number().await.unwrap()).await.unwrap();
        jobs.push((id, seed));
    }
    let ended = futures::future::join_all(jobs.iter().map(|(id, seed)| renter::follow(&md, *id, seed, Duration::from_secs(600), |_| {}))).await;
    let metrics = reqwest::get(format!("{}/metrics", worker.endpoint)).await.unwrap().text().await.unwrap();
    stop_worker("bob", worker.child).unwrap();
    let [big_job, small_job] = [ended[0].as_ref().unwrap(), ended[1].as_ref().unwrap()];

    let events = dave.contract_events_in(m.address(), first_block, dave.best_number().await.unwrap()).await.unwrap();
    let of = |id: u64| -> Vec<JobEventKind> { job_events(&events, id).into_iter().map(|(_, k)| k).collect() };
    let (big_id, small_id) = (jobs[0].0, jobs[1].0);
    assert_eq!(big_job.state, JobState::Refunded, "the job the disk could not hold was refunded");
    assert!(!of(big_id).iter().any(|k| matches!(k, JobEventKind::Assigned { .. })), "and never accepted");
    let escrow = of(big_id).iter().find_map(|k| if let JobEventKind::Created { escrow, .. } = k { Some(*escrow) } else { None }).unwrap();
    let refunded: Amount = of(big_id).iter().filter_map(|k| if let JobEventKind::Refunded { amount, .. } = k { Some(*amount) } else { None }).sum();
    assert_eq!(refunded, escrow, "the renter got exactly its escrow back");
    assert_eq!(small_job.state, JobState::Settled, "the small job posted after it settled");
    let payout = of(small_id).iter().find_map(|k| if let JobEventKind::Settled { provider_payout, .. } = k { Some(*provider_payout) } else { None }).unwrap();
    assert_eq!(md.withdrawable_of(bob.address()).await.unwrap(), payout);
    assert_provider_unharmed(&m, &events, bob.address(), stake_before).await;
    assert!(
        metrics.lines().any(|l| l.starts_with("capacloud_worker_failures_total{") && l.contains("reason=\"disk_full\"")),
        "the refusal is counted as disk_full:\n{metrics}"
    );
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

/// A hostile renter's outputs against a drawn verifier's disk: Charlie, a provider that signs
/// without computing, accepts a 100 %-checked job whose one task writes a 12 MB Mandelbrot
/// image; Bob, the only other provider, keeps his data on an 8 MiB disk and is drawn to
/// re-execute the task. He checks his free space before fetching and running the sample,
/// finds it short and bows out (`report(false)`: replaced, neither paid nor slashed) — before,
/// he ran the kernel, failed to store its output on every pass and lost his bond when his
/// commitment window closed. With nobody else to draw, the job ends `Unverified`.
/// Bob's stake, lock, record and balance are untouched, his metrics count `disk_full`, Dave
/// pays exactly what the contract's rule for that end says, and the money invariant holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_whose_disk_cannot_hold_the_sample_bows_out() {
    let test = "a_verifier_whose_disk_cannot_hold_the_sample_bows_out";
    let Some(disk) = SmallDisk::mount(test, 8) else { return };
    let Some(fx) = two_provider_market(test, PRICE).await else { return };
    let [alice, bob, _, dave, _, _] = &fx.chains;
    let (m, url, gpu) = (Marketplace::unchecked(alice, fx.market), fx.node.url(), fx.gpu.clone());
    let (bob_offer, charlie_offer) = (fx.bob_offer, fx.charlie_offer);
    let bob_before = m.provider(bob.address()).await.unwrap().unwrap();

    // Bob's store is the small disk; Charlie's and the renter's are ordinary directories
    // (the renter's served over HTTP, where Bob fetches the spec).
    let charlie_dir = tempfile::tempdir().unwrap();
    let bob_metrics = Arc::new(Metrics::default());
    let bob_w = Worker::new(worker_chain(&url, dev::bob()).await, m.address(), gpu.clone(), LocalStore::new(disk.path()).unwrap(), worker_config(bob_offer, PRICE, 1, false), bob_metrics.clone());
    let charlie_w = Worker::new(worker_chain(&url, dev::charlie()).await, m.address(), gpu, LocalStore::new(charlie_dir.path()).unwrap(), worker_config(charlie_offer, PRICE, 2, true), Arc::new(Metrics::default()));
    let renter = renter_side().await;
    let md = m.with(dave);
    let terms = Terms { offer_id: Some(charlie_offer), max_price_per_unit: PRICE, check_rate_bps: 10_000, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };
    let big = renter::library_job("mandelbrot", 2048, 1, 1).unwrap();
    let output_bytes: u64 = big.spec.bindings.iter().map(|b| if let capacloud_executor::spec::BindingKind::Output { len } = b.kind { len } else { 0 }).sum();
    assert!(output_bytes > 8 << 20, "the output ({output_bytes} bytes) is larger than Bob's disk");
    let dave_before = md.withdrawable_of(dave.address()).await.unwrap();
    let first_block = dave.best_number().await.unwrap();
    let input = renter::stage(renter.store.as_ref(), &big, &terms).await.unwrap();
    let seed = renter::random_seed().unwrap();
    let id = renter::create(&md, &renter.journal, &input, &seed, dave.best_number().await.unwrap()).await.unwrap();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let follow = async {
        let start = std::time::Instant::now();
        let ended = renter::follow(&md, id, &seed, Duration::from_secs(300), move |state| println!("{:>6.1} s: job {id} {state:?}", start.elapsed().as_secs_f64())).await;
        let _ = stop_tx.send(true);
        ended
    };
    let (ended, (), ()) = tokio::join!(follow, bob_w.run(stopped(stop_rx.clone())), charlie_w.run(stopped(stop_rx)));
    let job = ended.unwrap();
    let events = dave.contract_events_in(m.address(), first_block, dave.best_number().await.unwrap()).await.unwrap();
    let of: Vec<JobEventKind> = job_events(&events, id).into_iter().map(|(_, k)| k).collect();
    let steps = |action: &'static str| bob_metrics.steps.get_or_create(&ActionLabel { action }).get();

    assert!(of.iter().any(|k| matches!(k, JobEventKind::Assigned { .. })), "Charlie accepted: {of:?}");
    assert_eq!(steps("bowed out as verifier"), 1, "Bob bowed out once");
    assert_eq!(steps("verification committed"), 0);
    assert!(bob_metrics.failure_count("disk_full") >= 1, "for want of disk, found before running the kernel");
    assert_eq!(bob_metrics.failure_count("blob"), 0, "nothing failed to be stored: nothing was run");
    assert_verifier_bowed_out_unharmed(&m, &events, id, bob.address(), &bob_before).await;
    assert_eq!(job.state, JobState::Unverified, "nobody else to draw");
    assert!(std::fs::read_dir(disk.path()).unwrap().all(|f| !f.unwrap().file_name().to_string_lossy().starts_with("output-")), "Bob stored no output");

    let escrow = of.iter().find_map(|k| if let JobEventKind::Created { escrow, .. } = k { Some(*escrow) } else { None }).unwrap();
    let refund = of.iter().find_map(|k| if let JobEventKind::Unverified { renter_refund, .. } = k { Some(*renter_refund) } else { None }).unwrap();
    assert_eq!(md.withdrawable_of(dave.address()).await.unwrap() - dave_before, refund, "Dave got back what the contract's Unverified rule refunds, to the unit");
    assert!(refund <= escrow);
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

/// A provider's false claim against a drawn verifier's disk: Charlie, driven by hand, accepts
/// a direct hire whose two inputs (the matrices of a 1024 × 1024 matmul, 4 MiB each) its
/// renter serves, then reports them unavailable, hoping to walk away without computing.
/// Bob, the only other provider, keeps his data on a 4 MiB disk and is drawn to check the
/// claim. He fetches each input and checks its hash without storing it, and votes
/// *available*: Charlie loses his deposit to Bob, the renter pays nothing and its job is
/// Charlie's to compute again. (Before, Bob's store tried to keep each fetched input, the
/// full disk refused, and the local error was taken for a missing input: he voted
/// *unavailable*, Charlie's lie stood and the renter paid both of them the availability fee.)
/// Bob's stake and lock are as before; the money invariant holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_with_a_small_disk_votes_on_what_it_fetched() {
    let test = "a_verifier_with_a_small_disk_votes_on_what_it_fetched";
    let Some(disk) = SmallDisk::mount(test, 4) else { return };
    let Some(fx) = two_provider_market(test, PRICE).await else { return };
    let [alice, bob, charlie, dave, _, _] = &fx.chains;
    let (m, url, gpu) = (Marketplace::unchecked(alice, fx.market), fx.node.url(), fx.gpu.clone());
    let (bob_offer, charlie_offer) = (fx.bob_offer, fx.charlie_offer);
    let bob_before = m.provider(bob.address()).await.unwrap().unwrap();

    let bob_metrics = Arc::new(Metrics::default());
    let bob_w = Worker::new(worker_chain(&url, dev::bob()).await, m.address(), gpu, LocalStore::new(disk.path()).unwrap(), worker_config(bob_offer, PRICE, 1, false), bob_metrics.clone());
    let renter = renter_side().await;
    let (md, mc) = (m.with(dave), m.with(charlie));
    let terms = Terms { offer_id: Some(charlie_offer), max_price_per_unit: PRICE, check_rate_bps: 0, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };
    let bundle = renter::library_job("matmul", 1024, 1, 1).unwrap();
    let inputs: Vec<(Hash32, u64)> = bundle.spec.bindings.iter().filter_map(|b| if let capacloud_executor::spec::BindingKind::Input(r) = &b.kind { Some((r.sha256, r.len)) } else { None }).collect();
    assert!(inputs.len() == 2 && inputs.iter().all(|&(_, l)| l >= 4 << 20), "two inputs, each as large as Bob's disk: {inputs:?}");
    let dave_before = md.withdrawable_of(dave.address()).await.unwrap();
    let first_block = dave.best_number().await.unwrap();
    let input = renter::stage(renter.store.as_ref(), &bundle, &terms).await.unwrap();
    let seed = renter::random_seed().unwrap();
    let id = renter::create(&md, &renter.journal, &input, &seed, dave.best_number().await.unwrap()).await.unwrap();
    mc.accept_job(id).await.unwrap();
    mc.report(id, false).await.unwrap();
    assert_eq!(md.job(id).await.unwrap().unwrap().state, JobState::InputCheck);

    // Bob runs until the check is decided.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let decided = async {
        let start = std::time::Instant::now();
        let state = loop {
            let state = md.job(id).await.unwrap().unwrap().state;
            if state != JobState::InputCheck || start.elapsed() > Duration::from_secs(180) {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let _ = stop_tx.send(true);
        state
    };
    let stopped = async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let (state, ()) = tokio::join!(decided, bob_w.run(stopped));
    let events = dave.contract_events_in(m.address(), first_block, dave.best_number().await.unwrap()).await.unwrap();
    let of: Vec<JobEventKind> = job_events(&events, id).into_iter().map(|(_, k)| k).collect();

    assert_eq!(state, JobState::Assigned, "the claim failed: the job is Charlie's to compute again ({of:?})");
    assert!(of.iter().any(|k| matches!(k, JobEventKind::InputsChecked { available: true, .. })), "{of:?}");
    let voted = events.iter().any(|(_, e)| matches!(&e.decoded, Some(Event::Verifier(v)) if v.job_id == id && v.verifier == bob.address() && v.kind == VerifierEventKind::Voted { available: true }));
    assert!(voted, "Bob voted the inputs available");
    let deposit = of.iter().find_map(|k| if let JobEventKind::InputsReported { deposit } = k { Some(*deposit) } else { None }).unwrap();
    let slashed = of.iter().find_map(|k| if let JobEventKind::ProviderSlashed { amount, reason: SlashReason::FalseUnavailability, .. } = k { Some(*amount) } else { None });
    assert_eq!(slashed, Some(deposit), "Charlie lost his deposit");
    assert_eq!(md.withdrawable_of(bob.address()).await.unwrap(), deposit, "to Bob, who checked");
    assert_eq!(md.withdrawable_of(dave.address()).await.unwrap(), dave_before, "the renter paid nothing");
    let bob_after = m.provider(bob.address()).await.unwrap().unwrap();
    assert_eq!((bob_after.stake, bob_after.locked), (bob_before.stake, 0), "Bob's stake untouched, his bond released");
    for (h, _) in &inputs {
        assert!(!disk.path().join(hex::encode(h)).exists(), "an input was stored on Bob's disk");
    }
    assert_eq!(bob_metrics.failure_count("blob"), 0);
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

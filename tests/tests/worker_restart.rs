//! Workers that die mid-job.
//!
//! - A provider worker killed after committing is started again on the same data dir: it
//!   resumes from its persisted state and the chain's, reveals without re-executing the
//!   kernel, never submits a step twice, and then auto-withdraws exactly its payout. The
//!   verifier drawn for the job is killed after its hidden commitment and started again
//!   too: it reveals from its state file (no second execution), is paid its fee and keeps
//!   its bond.
//! - A provider worker killed after accepting and never restarted: once the commit deadline
//!   passes, the renter's `follow` moves the job on; the provider's penalty goes to the
//!   treasury, the job is re-opened, and with nobody bidding the renter gets its escrow
//!   back, exactly (it gains nothing from the provider's failure).
//! - A provider worker killed with its reveal in the pool (sent, not yet in a block): the
//!   restarted worker waits for its account's pending transaction instead of sending the
//!   reveal again; one reveal, no failed call, the exact payout.
//! - A worker whose GPU stops working withdraws its offer until it works again.

use capacloud_client::blob::LocalStore;
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, JobBundle, Journal, Terms};
use capacloud_executor::workloads::{Matmul, Workload};
use capacloud_tests::{contract_artifacts, deploy_fast, dev_chains, gpu_or_skip, lavapipe_offer, next_epoch, provider_with_offer, worker_chain, worker_config, TestNode};
use capacloud_worker::metrics::Metrics;
use capacloud_worker::provider::{Worker, WorkerState};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subxt_signer::sr25519::dev;

const WND: Amount = UNITS_PER_WND;
const PRICE: Amount = WND / 1_000;

fn matmul_job() -> JobBundle {
    let (spec, inputs) = Matmul { n: 64, seed: 9 }.prepare().to_job();
    JobBundle { spec, tasks: vec![inputs], library: None }
}

fn terms(offer: u64, compute_blocks: u32) -> Terms {
    Terms { offer_id: Some(offer), max_price_per_unit: PRICE, check_rate_bps: 10_000, compute_blocks, requirements: Requirements::default(), pay_if_unverified: false }
}

async fn submit(md: &capacloud_client::Marketplace<'_>, blobs: &LocalStore, journal: &Journal, bundle: &JobBundle, terms: &Terms, seed: &Hash32) -> u64 {
    let now = md.chain().finalized_number().await.unwrap();
    let input = renter::stage(blobs, bundle, terms).await.unwrap();
    renter::create(md, journal, &input, seed, now).await.unwrap()
}

/// Runs `worker`'s passes until it has taken `step` on `job` (at most 60 s, no step
/// failing); the steps it took.
async fn passes_until(worker: &Arc<Worker>, job: u64, step: &'static str) -> Vec<(u64, &'static str)> {
    let mut steps = Vec::new();
    let start = Instant::now();
    while !steps.contains(&(job, step)) {
        assert!(start.elapsed() < Duration::from_secs(60), "never {step}: {steps:?}");
        let r = worker.pass().await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        steps.extend(r.actions);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_worker_resumes_without_double_submitting() {
    let test = "restarted_worker_resumes_without_double_submitting";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let [alice, bob, charlie, dave, _, _] = &dev_chains(&node.url()).await;
    let m = deploy_fast(alice, &art.code, 6, 12).await;
    let bob_offer = provider_with_offer(&m, bob, 20 * WND, &lavapipe_offer(PRICE)).await;
    let charlie_offer = provider_with_offer(&m, charlie, 20 * WND, &lavapipe_offer(PRICE)).await;
    next_epoch(&m).await;

    // One directory plays the renter's and both providers' blob store (location-free URIs).
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalStore::new(dir.path().join("blobs")).unwrap();
    let journal = Journal::new(dir.path().join("jobs"));
    let bundle = matmul_job();
    let seed = [4u8; 32];
    let md = m.with(dave);
    let job = submit(&md, &blobs, &journal, &bundle, &terms(bob_offer, 12), &seed).await;

    // Bob's worker keeps its state in its data dir; it accepts and commits, then "dies".
    let state_file = dir.path().join("bob-state.json");
    let bob_cfg = || {
        let mut c = worker_config(bob_offer, PRICE, 1, false);
        c.state_file = Some(state_file.clone());
        c.withdraw_above = Some(0);
        c
    };
    let bob_w = worker_chain(&node.url(), dev::bob()).await;
    let steps = {
        let first = Worker::new(bob_w.clone(), m.address(), gpu.clone(), blobs.clone(), bob_cfg(), Arc::new(Metrics::default()));
        passes_until(&first, job, "accepted and committed").await
    };
    assert_eq!(steps, vec![(job, "accepted and committed")]);
    assert_eq!(m.job_core(job).await.unwrap().unwrap().state, JobState::Committed);
    let saved = WorkerState::load(&state_file);
    assert_eq!((saved.next_job, saved.live.iter().copied().collect::<Vec<_>>()), (job + 1, vec![job]));
    assert!(saved.computed.contains_key(&job), "the computed result is on disk");

    // The renter reveals; Charlie verifies; a new Bob worker on the same data dir finishes.
    let core = m.job_core(job).await.unwrap().unwrap();
    while dave.finalized_number().await.unwrap() <= core.commit_block {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let charlie_before = m.provider(charlie.address()).await.unwrap().unwrap();
    md.reveal_seed(job, seed).await.unwrap();
    let charlie_cfg = || {
        let mut c = worker_config(charlie_offer, PRICE, 2, false);
        c.state_file = Some(dir.path().join("charlie-state.json"));
        c
    };
    let charlie_w = worker_chain(&node.url(), dev::charlie()).await;
    let mut charlie_worker = Worker::new(charlie_w.clone(), m.address(), gpu.clone(), blobs.clone(), charlie_cfg(), Arc::new(Metrics::default()));
    let charlie_restarted_metrics = Arc::new(Metrics::default());
    let (mut charlie_steps, mut charlie_restarted) = (Vec::new(), false);
    let restarted_metrics = Arc::new(Metrics::default());
    let restarted = Worker::new(bob_w.clone(), m.address(), gpu.clone(), blobs.clone(), bob_cfg(), restarted_metrics.clone());
    let mut bob_steps = Vec::new();
    let mut withdrawn = 0;
    let start = Instant::now();
    loop {
        let j = m.job_core(job).await.unwrap().unwrap();
        if j.state.is_terminal() {
            assert_eq!(j.state, JobState::Settled, "{j:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "stuck in {:?}", j.state);
        let rc = charlie_worker.pass().await.unwrap();
        assert!(rc.errors.is_empty(), "{:?}", rc.errors);
        charlie_steps.extend(rc.actions);
        if !charlie_restarted && charlie_steps.contains(&(job, "verification committed")) {
            // The verifier "dies" right after its hidden commitment; a new one takes its data dir.
            assert_eq!(j.state, JobState::VerifierCommit);
            charlie_worker = Worker::new(charlie_w.clone(), m.address(), gpu.clone(), blobs.clone(), charlie_cfg(), charlie_restarted_metrics.clone());
            charlie_restarted = true;
        }
        let rb = restarted.pass().await.unwrap();
        assert!(rb.errors.is_empty(), "{:?}", rb.errors);
        bob_steps.extend(rb.actions);
        withdrawn += rb.withdrawn;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    withdrawn += restarted.pass().await.unwrap().withdrawn;
    // The restarted worker only revealed: it neither accepted nor committed again, and it
    // did not run the kernel again (the result came from its state file).
    assert_eq!(bob_steps, vec![(job, "revealed")]);
    assert_eq!(restarted_metrics.gpu_seconds.get(), 0.0);
    // The restarted verifier revealed what its first life computed and committed to, once.
    assert_eq!(charlie_steps, vec![(job, "verification committed"), (job, "verification revealed")]);
    assert_eq!(charlie_restarted_metrics.gpu_seconds.get(), 0.0, "the verifier re-ran the kernel");
    let charlie_after = m.provider(charlie.address()).await.unwrap().unwrap();
    assert_eq!((charlie_after.stake, charlie_after.locked), (charlie_before.stake, charlie_before.locked), "bond released, nothing slashed");
    assert_eq!(charlie_after.reputation.checks_passed, charlie_before.reputation.checks_passed + 1);
    let j_core = m.job_core(job).await.unwrap().unwrap();
    let charlie_fee = econ::verifier_fee(j_core.task_value() * Amount::from(j_core.sampled), j_core.terms.verifier_fee_bps);
    assert!(charlie_fee > 0);
    assert_eq!(m.withdrawable_of(charlie.address()).await.unwrap(), charlie_fee, "the verifier's fee, exactly");
    let j = m.job(job).await.unwrap().unwrap();
    assert_eq!(j.provider_answer, j.verifiers[1].unwrap().answer, "the persisted result matched the verifier's");
    // Auto-withdraw (threshold 0): exactly the provider's payout, nothing left behind.
    let value = Amount::from(bundle.spec.work_units) * PRICE;
    assert_eq!(withdrawn, value - value * 200 / 10_000);
    assert_eq!(m.withdrawable_of(bob.address()).await.unwrap(), 0);
    assert!(restarted.state().live.is_empty(), "the ended job is forgotten");
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_worker_job_is_refunded_and_the_penalty_goes_to_the_treasury() {
    let test = "dead_worker_job_is_refunded_and_the_penalty_goes_to_the_treasury";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let [alice, bob, _, dave, _, _] = &dev_chains(&node.url()).await;
    let m = deploy_fast(alice, &art.code, 4, 6).await;
    let bob_offer = provider_with_offer(&m, bob, 20 * WND, &lavapipe_offer(PRICE)).await;
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalStore::new(dir.path()).unwrap();
    let journal = Journal::new(dir.path().join("jobs"));
    let bundle = matmul_job();
    let seed = [5u8; 32];
    let md = m.with(dave);
    // An auction: a direct hire's provider commits as it accepts, so only a job won in an
    // auction is ever assigned to a worker that has not committed yet.
    let job = submit(&md, &blobs, &journal, &bundle, &Terms { offer_id: None, ..terms(bob_offer, 6) }, &seed).await;

    // Bob's worker bids (after its trial), closes the auction it won, then dies before
    // committing (dropped, its result only in memory).
    {
        let w = Worker::new(worker_chain(&node.url(), dev::bob()).await, m.address(), gpu.clone(), blobs.clone(), worker_config(bob_offer, PRICE, 1, false), Arc::new(Metrics::default()));
        assert_eq!(passes_until(&w, job, "closed auction").await, vec![(job, "bid"), (job, "closed auction")]);
    }
    let accepted = m.job_core(job).await.unwrap().unwrap();
    assert_eq!(accepted.state, JobState::Assigned);
    let escrow = accepted.escrow;
    let dave_before = m.withdrawable_of(dave.address()).await.unwrap();
    let treasury_before = m.state().await.unwrap().totals.treasury;

    // The renter keeps following (its seed comes back from the journal, as after a crash):
    // after the deadline it calls cleanup itself, the job re-opens, nobody bids, refund.
    let seed = renter::journaled_seed(&journal, m.address(), job).unwrap();
    let mut seen = Vec::new();
    let end = renter::follow(&md, job, &seed, Duration::from_secs(120), |s| seen.push(s)).await.unwrap();
    assert_eq!(end.state, JobState::Refunded);
    assert_eq!(seen, vec![JobState::Assigned, JobState::Open, JobState::Refunded]);
    // Exactly the escrow back; the penalty (10 % of the lock) went to the treasury.
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap(), dave_before + escrow);
    let penalty = econ::timeout_penalty(accepted.lock);
    assert_eq!(m.state().await.unwrap().totals.treasury, treasury_before + penalty);
    let b = m.provider(bob.address()).await.unwrap().unwrap();
    assert_eq!((b.reputation.timeouts, b.stake), (1, 20 * WND - penalty));
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

/// A provider worker killed while its reveal is in the pool (sent, not yet in a block): the
/// chain is paused by hand so the window stays open. The restarted worker (a new connection,
/// the same state file) sees its account's transaction in the pool and takes no step
/// until it lands. The provider sends exactly one reveal, pays for no failed call, and is
/// credited exactly its payout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_its_reveal_in_the_pool_does_not_send_it_again() {
    let test = "a_worker_killed_with_its_reveal_in_the_pool_does_not_send_it_again";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start_manual(test) else { return };
    let block = Duration::from_millis(500);
    let producer = node.produce_blocks(block, 0);
    let [alice, bob, _, dave, _, _] = &dev_chains(&node.url()).await;
    let m = deploy_fast(alice, &art.code, 6, 12).await;
    let bob_offer = provider_with_offer(&m, bob, 20 * WND, &lavapipe_offer(PRICE)).await;
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalStore::new(dir.path().join("blobs")).unwrap();
    let journal = Journal::new(dir.path().join("jobs"));
    let bundle = matmul_job();
    let seed = [6u8; 32];
    let md = m.with(dave);
    // Unchecked: the provider's reveal settles the job.
    let job = submit(&md, &blobs, &journal, &bundle, &Terms { check_rate_bps: 0, ..terms(bob_offer, 12) }, &seed).await;
    let bob_cfg = || {
        let mut c = worker_config(bob_offer, PRICE, 1, false);
        c.state_file = Some(dir.path().join("bob-state.json"));
        c
    };
    let first = Worker::new(worker_chain(&node.url(), dev::bob()).await, m.address(), gpu.clone(), blobs.clone(), bob_cfg(), Arc::new(Metrics::default()));
    assert_eq!(passes_until(&first, job, "accepted and committed").await, vec![(job, "accepted and committed")]);
    let core = m.job_core(job).await.unwrap().unwrap();
    while dave.finalized_number().await.unwrap() <= core.commit_block {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    md.reveal_seed(job, seed).await.unwrap();
    assert_eq!(m.job_core(job).await.unwrap().unwrap().state, JobState::Reveal);

    // The chain pauses (one last block, then none); the worker sends its reveal and is
    // killed while it waits for a block.
    producer.set_interval(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paused_at = bob.best_number().await.unwrap();
    let nonce_before = bob.client().tx().account_nonce(&bob.account()).await.unwrap();
    assert_eq!(bob.pending_transactions().await.unwrap(), 0);
    let pass = tokio::spawn({
        let first = first.clone();
        async move { first.pass().await.map(|r| r.actions) }
    });
    let start = Instant::now();
    while bob.pending_transactions().await.unwrap() == 0 {
        assert!(start.elapsed() < Duration::from_secs(60) && !pass.is_finished(), "the reveal never reached the pool");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pass.abort();
    drop(first);
    assert_eq!(bob.best_number().await.unwrap(), paused_at, "the chain stayed paused");

    // A new worker on the same state file: the reveal is pending, so it waits.
    let restarted = Worker::new(worker_chain(&node.url(), dev::bob()).await, m.address(), gpu.clone(), blobs.clone(), bob_cfg(), Arc::new(Metrics::default()));
    for _ in 0..3 {
        let r = restarted.pass().await.unwrap();
        assert_eq!((r.pooled, r.actions.len(), r.errors.len()), (1, 0, 0), "{r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(m.job_core(job).await.unwrap().unwrap().state, JobState::Reveal);

    // Blocks again: the first life's reveal lands and settles the job; the new worker
    // only forgets it.
    producer.set_interval(block);
    let start = Instant::now();
    let mut after = Vec::new();
    loop {
        let r = restarted.pass().await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        after.extend(r.actions);
        if restarted.state().live.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the job was not forgotten: {:?}", m.job_core(job).await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(after.is_empty(), "the restarted worker took a step: {after:?}");
    assert_eq!(m.job_core(job).await.unwrap().unwrap().state, JobState::Settled);
    assert_eq!(bob.client().tx().account_nonce(&bob.account()).await.unwrap(), nonce_before + 1, "exactly one transaction: the first life's reveal");
    let value = Amount::from(bundle.spec.work_units) * PRICE;
    assert_eq!(m.withdrawable_of(bob.address()).await.unwrap(), value - value * 200 / 10_000, "the payout, exactly");
    let b = m.provider(bob.address()).await.unwrap().unwrap();
    assert_eq!((b.stake, b.locked, b.reputation.timeouts), (20 * WND, 0, 0), "nothing slashed, lock released");
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

/// A worker whose GPU stops working (its kernel sandbox runs through a wrapper that fails
/// while a flag file exists): the trial of the job hiring it fails, the health probe fails
/// too, so the worker withdraws its offer, does not accept the job and does not count it as
/// refused (the fault is its GPU's, not the renter's). Once the GPU works again the probe
/// passes, the offer is listed again, and a job hiring it is computed, committed and settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_gpu_fails_withdraws_its_offer_until_it_works_again() {
    let test = "a_worker_whose_gpu_fails_withdraws_its_offer_until_it_works_again";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let [alice, bob, _, dave, _, _] = &dev_chains(&node.url()).await;
    let m = deploy_fast(alice, &art.code, 6, 12).await;
    let bob_offer = provider_with_offer(&m, bob, 20 * WND, &lavapipe_offer(PRICE)).await;
    next_epoch(&m).await;

    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalStore::new(dir.path().join("blobs")).unwrap();
    let journal = Journal::new(dir.path().join("jobs"));
    let flag = dir.path().join("gpu-lost");
    std::fs::write(&flag, b"").unwrap();
    let wrapper = capacloud_tests::kernel_child_wrapper(&dir.path().join("kernel-child.sh"), &format!("[ -e '{}' ]", flag.display()), "simulated: the GPU is gone", "exit 1");
    let mut cfg = worker_config(bob_offer, PRICE, 1, false);
    cfg.isolate = Some(wrapper);
    cfg.health_retry = Duration::from_secs(1);
    let metrics = Arc::new(Metrics::default());
    let w = Worker::new(worker_chain(&node.url(), dev::bob()).await, m.address(), gpu.clone(), blobs.clone(), cfg, metrics.clone());

    let md = m.with(dave);
    let unchecked = Terms { check_rate_bps: 0, ..terms(bob_offer, 20) };
    let seed = [5u8; 32];
    let job = submit(&md, &blobs, &journal, &matmul_job(), &unchecked, &seed).await;

    // The trial fails, the probe fails: the offer is withdrawn, the job not accepted.
    let mut steps = Vec::new();
    let start = Instant::now();
    while m.offer(bob_offer).await.unwrap().unwrap().active {
        assert!(start.elapsed() < Duration::from_secs(90), "the offer stayed listed: {steps:?}");
        steps.extend(w.pass().await.unwrap().actions);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(steps.is_empty(), "nothing signed while the GPU is gone: {steps:?}");
    assert!(!w.healthy());
    assert_eq!(metrics.gpu_healthy.get(), 0);
    // More passes while the GPU is gone: the job waits; it is neither accepted nor refused.
    for _ in 0..3 {
        let r = w.pass().await.unwrap();
        assert!(r.actions.is_empty(), "{:?}", r.actions);
        assert!(r.errors.iter().all(|(_, e)| e.contains("health probe")), "{:?}", r.errors);
    }
    let core = m.job_core(job).await.unwrap().unwrap();
    assert_eq!((core.state, core.reported), (JobState::AwaitingAccept, false));
    assert!(!w.state().refused.contains(&job), "a GPU fault is not the job's");
    assert!(metrics.failures.get_or_create(&capacloud_worker::metrics::ReasonLabel { reason: "gpu_unhealthy" }).get() > 0);

    // The GPU works again: the probe passes and the same terms are listed again (a new
    // offer id: the contract keeps a withdrawn offer withdrawn).
    std::fs::remove_file(&flag).unwrap();
    let start = Instant::now();
    while !w.healthy() {
        assert!(start.elapsed() < Duration::from_secs(60), "not listed again: {steps:?}");
        steps.extend(w.pass().await.unwrap().actions);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(metrics.gpu_healthy.get(), 1);
    let relisted = w.offer_id();
    assert_ne!(relisted, bob_offer);
    let (old, new) = (m.offer(bob_offer).await.unwrap().unwrap(), m.offer(relisted).await.unwrap().unwrap());
    assert!(!old.active && new.active);
    assert_eq!((new.provider, new.input.price_per_unit), (bob.address(), old.input.price_per_unit));
    // The job that waited hired the withdrawn offer: it is never accepted, and its renter
    // gets its escrow back (the renter's own follow moves it on). A job hiring the listed
    // offer again settles.
    let seed2 = [6u8; 32];
    let bundle2 = {
        let (spec, inputs) = Matmul { n: 64, seed: 10 }.prepare().to_job();
        JobBundle { spec, tasks: vec![inputs], library: None }
    };
    let job2 = submit(&md, &blobs, &journal, &bundle2, &Terms { offer_id: Some(relisted), ..unchecked.clone() }, &seed2).await;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let escrow = m.job_core(job).await.unwrap().unwrap().escrow;
    let first_block = dave.best_number().await.unwrap();
    let follow = async {
        let (j, first) = tokio::join!(
            renter::follow(&md, job2, &seed2, Duration::from_secs(120), |_| {}),
            renter::follow(&md, job, &seed, Duration::from_secs(120), |_| {})
        );
        let _ = stop_tx.send(true);
        (j.unwrap(), first.unwrap().core)
    };
    let ((j2, first), ()) = tokio::join!(follow, w.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    assert_eq!(j2.state, JobState::Settled);
    assert_eq!((first.state, first.reported), (JobState::Refunded, false), "the job that waited through the outage was refunded, never reported");
    let events = dave.contract_events_in(m.address(), first_block, dave.best_number().await.unwrap()).await.unwrap();
    let refunded: Vec<Amount> = capacloud_tests::job_events(&events, job).into_iter().filter_map(|(_, k)| if let JobEventKind::Refunded { amount, .. } = k { Some(amount) } else { None }).collect();
    assert_eq!(refunded, vec![escrow], "its renter got exactly its escrow back");
    assert_eq!(m.provider(bob.address()).await.unwrap().unwrap().reputation.timeouts, 0, "Bob never held the job: no timeout");
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

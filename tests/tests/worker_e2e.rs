//! Provider workers on a real node and a real GPU adapter (lavapipe in CI), each with its
//! own disk and HTTP endpoint, as on separate machines. The renter keeps spec, manifest and
//! inputs on its own blob server. A checked job is validated, accepted, its inputs fetched
//! over HTTP (hash-checked), run on the GPU, committed, verified by a second worker's
//! re-execution and settled with exact payouts; the renter downloads the output from the
//! provider's endpoint and checks it against the batch root. A batch of tasks is verified on
//! its sample only. A worker that never computes is caught by two verifiers and slashed.
//! The money invariant holds at the end.

use capacloud_client::blob::{self, BlobError, BlobStore, HttpStore, LocalStore};
use capacloud_client::Marketplace;
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, JobBundle, Journal, Terms};
use capacloud_executor::workloads::{Mandelbrot, Workload};
use capacloud_tests::{contract_artifacts, deploy_fast, dev_chains, endpoint, gpu_or_skip, lavapipe_offer_at, next_epoch, provider_with_offer, worker_chain, worker_config, Endpoint, TestNode};
use capacloud_worker::metrics::Metrics;
use capacloud_worker::provider::Worker;
use capacloud_worker::serve::ChainGate;
use capacloud_client::blob::access::Signer;
use capacloud_client::blob::server::Gate;
use std::sync::Arc;
use std::time::Duration;
use subxt::utils::H160;
use subxt_signer::sr25519::dev;

const WND: Amount = UNITS_PER_WND;
const PRICE: Amount = WND / 1_000;

/// One provider "machine": its disk, metrics and HTTP endpoint.
struct Machine {
    _dir: tempfile::TempDir,
    store: LocalStore,
    metrics: Arc<Metrics>,
    endpoint: Endpoint,
}

async fn machine(url: &str, market: H160) -> Machine {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("blobs")).unwrap();
    let metrics = Arc::new(Metrics::default());
    // The endpoint's reader checks use their own read connection, as the daemon's does.
    let gate = ChainGate::new(worker_chain(url, dev::ferdie()).await, market, store.clone());
    let endpoint = endpoint(store.clone(), Some((metrics.clone(), gate))).await;
    Machine { _dir: dir, store, metrics, endpoint }
}

/// What `capacloud job submit` does: stage, create (journaled), follow to the end.
async fn submit_and_follow(md: &Marketplace<'_>, store: &HttpStore, journal: &Journal, bundle: &JobBundle, terms: Terms, seed: Hash32) -> (u64, Job) {
    let now = md.chain().finalized_number().await.unwrap();
    let input = renter::stage(store, bundle, &terms).await.unwrap();
    let id = renter::create(md, journal, &input, &seed, now).await.unwrap();
    // A retried submission finds the job, never escrows twice.
    assert_eq!(renter::create(md, journal, &input, &seed, now).await.unwrap(), id);
    let job = renter::follow(md, id, &seed, Duration::from_secs(300), |_| {}).await.unwrap();
    (id, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_verify_and_catch_a_cheater() {
    let test = "workers_run_verify_and_catch_a_cheater";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let [alice, bob, charlie, dave, eve, _] = &dev_chains(&node.url()).await;
    let m = deploy_fast(alice, &art.code, 6, 10).await;
    let machines = [machine(&node.url(), m.address()).await, machine(&node.url(), m.address()).await, machine(&node.url(), m.address()).await];
    let mut offers = Vec::new();
    for (c, mach) in [bob, charlie, eve].into_iter().zip(&machines) {
        offers.push(provider_with_offer(&m, c, 20 * WND, &lavapipe_offer_at(PRICE, &mach.endpoint.url)).await);
    }
    next_epoch(&m).await;

    // The renter's blob server, on "its" machine: what `capacloud blobs serve` runs.
    let renter_dir = tempfile::tempdir().unwrap();
    let renter_server = endpoint(LocalStore::new(renter_dir.path()).unwrap(), None).await;
    let renter_store = HttpStore::new(&renter_server.url).unwrap();
    let journal_dir = tempfile::tempdir().unwrap();
    let journal = Journal::new(journal_dir.path());
    let w = Mandelbrot { width: 96, height: 64, max_iter: 128 };
    let prepared = w.prepare();
    let reference = w.cpu_reference(&prepared);
    let expected_root = blob::output_root(&reference);
    let (spec, inputs) = prepared.to_job();
    let single = JobBundle { spec, tasks: vec![inputs], library: None };
    renter::check(&single).unwrap();
    // A batch of 6 SHA-256 tasks (different messages, one kernel).
    let batch = renter::library_job("sha256", 64, 7, 6).unwrap();
    renter::check(&batch).unwrap();
    let batch_refs: Vec<Vec<u8>> = {
        let (wl, ps) = batch.library.as_ref().unwrap();
        ps.iter().map(|p| wl.cpu_reference(p)).collect()
    };
    let terms = |offer, rate| Terms {
        offer_id: Some(offer),
        max_price_per_unit: PRICE,
        check_rate_bps: rate,
        compute_blocks: 4,
        requirements: Requirements { min_vram_mib: 1_024, min_benchmark_score: 1, gpu_class: Some(2) },
        pay_if_unverified: false,
    };

    let url = node.url();
    let (bob_w, charlie_w, eve_w) = (worker_chain(&url, dev::bob()).await, worker_chain(&url, dev::charlie()).await, worker_chain(&url, dev::eve()).await);
    let worker = |chain: Arc<capacloud_client::chain::Chain>, i: usize, cfg| Worker::new(chain, m.address(), gpu.clone(), machines[i].store.clone(), cfg, machines[i].metrics.clone());
    // Charlie runs his kernels sandboxed in child processes (the daemon's default): same
    // results, same protocol.
    let mut charlie_cfg = worker_config(offers[1], PRICE, 2, false);
    charlie_cfg.isolate = Some(capacloud_tests::built_binary("capacloud-worker"));
    let workers = [
        worker(bob_w, 0, worker_config(offers[0], PRICE, 1, false)),
        worker(charlie_w, 1, charlie_cfg),
        worker(eve_w, 2, worker_config(offers[2], PRICE, 3, true)),
    ];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let md = m.with(dave);
    let renter = async {
        let run = |bundle, terms, seed| submit_and_follow(&md, &renter_store, &journal, bundle, terms, seed);
        let honest = run(&single, terms(offers[0], 10_000), [1; 32]).await;
        // Payouts of the honest job, before anyone earns anything else.
        let paid = (
            m.withdrawable_of(bob.address()).await.unwrap(),
            m.withdrawable_of(honest.1.verifiers[1].unwrap().account).await.unwrap(),
            m.withdrawable_of(dave.address()).await.unwrap(),
            m.state().await.unwrap().totals.treasury,
        );
        let batched = run(&batch, terms(offers[0], 5_000), [3; 32]).await;
        let cheat = run(&single, terms(offers[2], 10_000), [2; 32]).await;
        let _ = stop_tx.send(true);
        (honest, paid, batched, cheat)
    };
    let (_, _, _, ((honest_id, honest), paid, (batch_id, batched), (cheat_id, cheat))) = tokio::join!(
        workers[0].run(stopped(stop_rx.clone())),
        workers[1].run(stopped(stop_rx.clone())),
        workers[2].run(stopped(stop_rx.clone())),
        renter
    );

    // Honest provider: settled on the GPU's outputs, which equal the CPU reference's.
    assert_eq!(honest.state, JobState::Settled);
    assert_eq!(honest.sampled, 1);
    assert_eq!(honest.batch_root, blob::batch_root(&[expected_root]));
    // Exact payouts: provider value − 2 %, verifier 100 % of the re-executed work, renter the rest.
    let value = Amount::from(single.spec.work_units) * PRICE;
    let escrow = econ::escrow_for(1, single.spec.work_units, PRICE, 10_000).unwrap();
    let pfee = value * 200 / 10_000;
    assert_eq!(paid, (value - pfee, value, escrow - value - value, pfee));

    // The output comes from Bob's endpoint (the renter's server never had it), checked
    // against the batch root; a chunk checks against the task's root alone.
    assert!(matches!(renter_store.get_output_unchecked(&expected_root).await, Err(BlobError::NotFound(_))));
    let outputs = renter::fetch_outputs(&md, honest_id, &honest, &renter_store).await.unwrap();
    assert_eq!(outputs, vec![reference.clone()]);
    // Bob serves it only to the renter of the settled job: unsigned is 401, a stranger's
    // signature 403, the renter's (Dave's) the chunk.
    let bob_endpoint = HttpStore::new(&machines[0].endpoint.url).unwrap();
    let refused = |e: BlobError, status: &str| assert!(matches!(&e, BlobError::Http { reason, .. } if reason.starts_with(status)), "{e}");
    refused(bob_endpoint.get_chunk(&expected_root, 1).await.unwrap_err(), "401");
    refused(bob_endpoint.clone().signed_by(Signer::new(dev::eve())).get_chunk(&expected_root, 1).await.unwrap_err(), "403");
    let as_dave = bob_endpoint.clone().signed_by(Signer::new(dev::dave()));
    assert_eq!(as_dave.get_chunk(&expected_root, 1).await.unwrap(), reference[4096..8192]);
    // Published by Dave, it is anyone's; Eve cannot publish what she may not read.
    refused(HttpStore::new(&machines[0].endpoint.url).unwrap().signed_by(Signer::new(dev::eve())).publish(&expected_root).await.unwrap_err(), "403");
    as_dave.publish(&expected_root).await.unwrap();
    assert_eq!(bob_endpoint.get_chunk(&expected_root, 1).await.unwrap(), reference[4096..8192]);
    // The gate admits the renter of a settled job only: not for the job whose provider was
    // slashed (Dave was refunded), and nobody else for the settled one.
    let scratch = tempfile::tempdir().unwrap();
    let notes = LocalStore::new(scratch.path()).unwrap();
    let (settled_root, slashed_root) = ([0x51; 32], [0x52; 32]);
    notes.note_job_sync(&settled_root, honest_id).unwrap();
    notes.note_job_sync(&slashed_root, cheat_id).unwrap();
    let gate = ChainGate::new(worker_chain(&node.url(), dev::ferdie()).await, m.address(), notes.clone());
    assert!(gate.admit(&settled_root, &dave.address()).await);
    assert!(!gate.admit(&settled_root, &eve.address()).await);
    assert!(!gate.admit(&slashed_root, &dave.address()).await, "a refunded renter does not get the work");
    assert!(notes.may_read_sync(&settled_root, Some(&dave.address().0)).unwrap(), "the admission is recorded");
    // Bob fetched the spec and inputs from the renter's server and cached them.
    assert!(String::from_utf8_lossy(&honest.input.uri).starts_with(&renter_server.url));
    let cached = machines[0].store.get(&honest.input.spec_hash).await.unwrap();
    let spec = capacloud_executor::spec::JobSpec::decode_spec(&cached).unwrap();
    for b in &spec.bindings {
        if let capacloud_executor::spec::BindingKind::Input(r) = &b.kind {
            assert!(r.uri.starts_with(&renter_server.url), "{}", r.uri);
            assert_eq!(machines[0].store.get(&r.sha256).await.unwrap(), single.tasks[0][&b.binding]);
        }
    }

    // The batch: every task's output checked against the batch root, each equal to its CPU
    // reference; the verifier re-executed only the sampled tasks.
    assert_eq!(batched.state, JobState::Settled, "{batched:?}");
    assert_eq!(batched.tasks, 6);
    let outs = renter::fetch_outputs(&md, batch_id, &batched, &renter_store).await.unwrap();
    assert_eq!(outs, batch_refs);
    let sampled = batched.sampled;
    assert!(sampled >= 1, "a 50 % rate sampled tasks");
    let bv = batched.verifiers[1].unwrap().account;
    let vm = if bv == charlie.address() { &machines[1] } else { &machines[2] };
    assert!(vm.metrics.step_count("verification revealed") >= 1, "the drawn verifier revealed its re-execution");
    println!("batch: {sampled} of 6 tasks sampled and re-executed by {bv:?}");

    // The provider that never computed: outvoted by two verifiers, slashed.
    assert_eq!(cheat.state, JobState::Slashed);
    assert_eq!(cheat.round, 2);
    let e = m.provider(eve.address()).await.unwrap().unwrap();
    assert_eq!(e.reputation.checks_failed, 1);
    // Bob passed his two checks as a provider and, as one of the only two others, verified
    // Eve's job in one of its two rounds (a verifier is never drawn twice for a job).
    let b = m.provider(bob.address()).await.unwrap().unwrap();
    assert_eq!((b.reputation.jobs_completed, b.reputation.checks_passed), (2, 3));
    let c = m.provider(charlie.address()).await.unwrap().unwrap();
    assert_eq!((c.reputation.jobs_completed, c.reputation.checks_failed), (0, 0));

    // Bob's /metrics over HTTP: commits (each accepting its direct hire), settled jobs, GPU
    // time counted.
    let text = reqwest::get(format!("{}/metrics", machines[0].endpoint.url)).await.unwrap().text().await.unwrap();
    for line in ["capacloud_worker_steps_total{action=\"accepted and committed\"} 2", "capacloud_worker_jobs_finished_total{state=\"Settled\"} 2"] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(machines[0].metrics.gpu_seconds.get() > 0.0);
    assert_eq!(machines[2].metrics.step_count("accepted and committed"), 1, "Eve committed her made-up outputs once");
    assert!(machines[1].metrics.step_count("verification revealed") >= 1);
    assert!(machines[1].metrics.gpu_seconds.get() > 0.0, "Charlie verified, in a child process");

    // The market's history folded from its events (what `capacloud summary` prints).
    let summary = capacloud_client::summary::summarize(&m, 0).await.unwrap();
    assert_eq!(summary.undecodable_events, 0);
    let [h, bt, c] = &summary.jobs[..] else { panic!("three jobs: {:?}", summary.jobs) };
    assert_eq!((h.job_id, h.direct, h.provider, h.price_per_unit, h.sampled, h.state), (honest_id, true, Some(bob.address()), Some(PRICE), Some(1), Some(JobState::Settled)));
    assert_eq!((h.provider_payout, h.verifier_fees, h.protocol_fee, h.renter_refund), (value - pfee, value, pfee, escrow - 2 * value));
    assert!(h.slashes.is_empty());
    assert_eq!((bt.tasks, bt.sampled, bt.state), (6, Some(sampled), Some(JobState::Settled)));
    assert_eq!((c.provider, c.state, c.provider_payout), (Some(eve.address()), Some(JobState::Slashed), 0));
    let [(who, amount, why)] = &c.slashes[..] else { panic!("one slash: {:?}", c.slashes) };
    assert_eq!((*who, why.as_str()), (eve.address(), "WrongResult"));
    assert_eq!(*amount, econ::lock_for(value, 10_000, 10_000, WND), "the whole lock");
    let eve_row = summary.providers.iter().find(|p| p.provider == eve.address()).unwrap();
    assert_eq!((eve_row.slashed, eve_row.checks_failed), (*amount, 1));

    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

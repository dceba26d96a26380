//! Provider workers on a real node and a real GPU adapter (lavapipe in CI), each with its
//! own disk and HTTP endpoint, as on separate machines. The renter keeps spec and inputs on
//! its own blob server; a checked job is accepted, the inputs fetched over HTTP (hash-checked),
//! run on the GPU, committed, verified by a second worker's re-execution and settled with
//! exact payouts; the renter downloads the output from the provider's endpoint and checks it
//! against the revealed root, chunk proofs included. A worker that never computes is caught
//! by two verifiers and slashed. The money invariant holds at the end.

use capacloud_client::blob::{self, BlobError, BlobStore, HttpStore, LocalStore};
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, JobBundle, Terms};
use capacloud_executor::workloads::{Mandelbrot, Workload};
use capacloud_tests::{contract_artifacts, deploy_fast, dev_chains, endpoint, gpu_or_skip, lavapipe_offer, provider_with_offer, worker_config, Endpoint, TestNode};
use capacloud_worker::metrics::Metrics;
use capacloud_worker::provider::Worker;
use std::sync::Arc;
use std::time::Duration;

const WND: Amount = 1_000_000_000_000_000_000;
const PRICE: Amount = WND / 1_000;

/// One provider "machine": its disk, metrics and HTTP endpoint.
struct Machine {
    _dir: tempfile::TempDir,
    store: LocalStore,
    metrics: Arc<Metrics>,
    endpoint: Endpoint,
}

async fn machine() -> Machine {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("blobs")).unwrap();
    let metrics = Arc::new(Metrics::default());
    let endpoint = endpoint(store.clone(), Some(metrics.clone())).await;
    Machine { _dir: dir, store, metrics, endpoint }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_verify_and_catch_a_cheater() {
    let test = "workers_run_verify_and_catch_a_cheater";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let [alice, bob, charlie, dave, eve, _] = &dev_chains(&node.url()).await;
    let m = deploy_fast(alice, &art.code, 6, 10).await;
    let machines = [machine().await, machine().await, machine().await];
    let mut offers = Vec::new();
    for (c, mach) in [bob, charlie, eve].into_iter().zip(&machines) {
        let offer = OfferInput { endpoint: mach.endpoint.url.clone(), ..lavapipe_offer(PRICE) };
        offers.push(provider_with_offer(&m, c, 20 * WND, &offer).await);
    }

    // The renter's blob server, on "its" machine: what `capacloud blobs serve` runs.
    let renter_dir = tempfile::tempdir().unwrap();
    let renter_server = endpoint(LocalStore::new(renter_dir.path()).unwrap(), None).await;
    let renter_store = HttpStore::new(&renter_server.url).unwrap();
    let w = Mandelbrot { width: 96, height: 64, max_iter: 128 };
    let prepared = w.prepare();
    let reference = w.cpu_reference(&prepared);
    let expected_root = blob::output_root(&reference);
    let (spec, inputs) = prepared.to_job();
    let bundle = JobBundle { spec, inputs, library: None };
    renter::check(&bundle).unwrap();
    let terms = |offer| Terms {
        offer_id: Some(offer),
        max_price_per_unit: PRICE,
        check_rate_bps: 10_000,
        deadline_blocks: 40,
        requirements: Requirements { min_vram_mib: 1_024, min_benchmark_score: 1, gpu_class: Some(2) },
    };

    let worker = |chain, i: usize, cfg| Worker::new(chain, m.address(), gpu.clone(), machines[i].store.clone(), cfg, machines[i].metrics.clone()).unwrap();
    // Charlie runs his kernels in child processes (`--isolate`): same results, same protocol.
    let mut charlie_cfg = worker_config(offers[1], PRICE, 2, false);
    charlie_cfg.isolate = Some(capacloud_tests::built_binary("capacloud-worker"));
    let workers = [worker(bob, 0, worker_config(offers[0], PRICE, 1, false)), worker(charlie, 1, charlie_cfg), worker(eve, 2, worker_config(offers[2], PRICE, 3, true))];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let md = m.with(dave);
    let renter = async {
        let run = |offer, seed| {
            let (md, bundle, terms, renter_store, dave) = (&md, &bundle, terms(offer), &renter_store, &dave);
            async move {
                let now = dave.finalized_number().await.unwrap();
                let id = renter::submit(md, renter_store, bundle, &terms, &seed, now).await.unwrap();
                let job = renter::follow(md, id, &seed, Duration::from_secs(240), |_| {}).await.unwrap();
                (id, job)
            }
        };
        let honest = run(offers[0], [1; 32]).await;
        // Payouts of the honest job, before anyone earns anything else.
        let paid = (
            m.withdrawable_of(bob.address()).await.unwrap(),
            m.withdrawable_of(honest.1.verifiers[0].unwrap().account).await.unwrap(),
            m.withdrawable_of(dave.address()).await.unwrap(),
            m.accounting().await.unwrap().treasury,
        );
        let cheat = run(offers[2], [2; 32]).await;
        let _ = stop_tx.send(true);
        (honest, paid, cheat)
    };
    let (_, _, _, ((honest_id, honest), paid, (_, cheat))) = tokio::join!(
        workers[0].run(stopped(stop_rx.clone())),
        workers[1].run(stopped(stop_rx.clone())),
        workers[2].run(stopped(stop_rx.clone())),
        renter
    );

    // Honest provider: settled on the GPU's root, which equals the CPU reference's.
    assert_eq!(honest.state, JobState::Settled);
    assert!(honest.checked);
    assert_eq!(honest.provider_root, Some(expected_root));
    assert_eq!(honest.verifiers[0].and_then(|v| v.root), Some(expected_root));
    // Exact payouts: provider value − 2 %, verifier 3 %, renter the rest of the escrow.
    let value = Amount::from(bundle.spec.work_units) * PRICE;
    let escrow = m.required_escrow(bundle.spec.work_units, PRICE).await.unwrap().unwrap();
    let (pfee, vfee) = (value * 200 / 10_000, value * 300 / 10_000);
    assert_eq!(paid, (value - pfee, vfee, escrow - value - vfee, pfee));

    // The output comes from Bob's endpoint (the renter's server never had it), checked
    // against the revealed root; a chunk checks against the root alone.
    assert!(matches!(renter_store.get_output_unchecked(&expected_root).await, Err(BlobError::NotFound(_))));
    let output = renter::fetch_output(&md, honest_id, &honest, &renter_store).await.unwrap();
    assert_eq!(output, reference);
    let bob_endpoint = HttpStore::new(&machines[0].endpoint.url).unwrap();
    assert_eq!(bob_endpoint.get_chunk(&expected_root, 1).await.unwrap(), reference[4096..8192]);
    // Bob fetched the inputs and spec from the renter's server and cached them.
    assert!(honest.input.spec_uri.starts_with(&renter_server.url), "{}", honest.input.spec_uri);
    let cached = machines[0].store.get(&honest.input.spec_hash).await.unwrap();
    let spec = capacloud_executor::spec::JobSpec::decode_spec(&cached).unwrap();
    for b in &spec.bindings {
        if let capacloud_executor::spec::BindingKind::Input(r) = &b.kind {
            assert!(r.uri.starts_with(&renter_server.url), "{}", r.uri);
            assert_eq!(machines[0].store.get(&r.sha256).await.unwrap(), bundle.inputs[&b.binding]);
        }
    }

    // The provider that never computed: outvoted by two verifiers, slashed.
    assert_eq!(cheat.state, JobState::Slashed);
    assert_eq!(cheat.round, 2);
    for v in cheat.verifiers.iter().flatten() {
        assert_eq!(v.root, Some(expected_root), "both verifiers computed the real output");
    }
    let e = m.provider(eve.address()).await.unwrap().unwrap();
    assert_eq!(e.reputation.checks_failed, 1);
    let b = m.provider(bob.address()).await.unwrap().unwrap();
    assert_eq!((b.reputation.jobs_completed, b.reputation.checks_passed), (1, 1));

    // Bob's /metrics over HTTP: one commit, one settled job, GPU time counted.
    let text = reqwest::get(format!("{}/metrics", machines[0].endpoint.url)).await.unwrap().text().await.unwrap();
    for line in ["capacloud_worker_steps_total{action=\"accepted\"} 1", "capacloud_worker_steps_total{action=\"committed\"} 1", "capacloud_worker_jobs_finished_total{state=\"Settled\"} 1"] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(machines[0].metrics.gpu_seconds.get() > 0.0);
    assert_eq!(machines[2].metrics.step_count("committed"), 1, "Eve committed her made-up root once");
    // Charlie verified the cheat in one of its two rounds, computing in a child process.
    assert!(machines[1].metrics.step_count("verification revealed") >= 1);
    assert!(machines[1].metrics.gpu_seconds.get() > 0.0);

    // The market's history folded from its events (what `capacloud summary` prints).
    let summary = capacloud_client::summary::summarize(&m, 0).await.unwrap();
    assert_eq!(summary.undecodable_events, 0);
    let [h, c] = &summary.jobs[..] else { panic!("two jobs: {:?}", summary.jobs) };
    assert_eq!((h.job_id, h.direct, h.provider, h.price_per_unit, h.checked, h.state), (honest_id, true, Some(bob.address()), Some(PRICE), Some(true), Some(JobState::Settled)));
    assert_eq!((h.provider_payout, h.verifier_fees, h.protocol_fee, h.renter_refund), (value - pfee, vfee, pfee, escrow - value - vfee));
    assert!(h.slashes.is_empty());
    assert_eq!((c.provider, c.state, c.provider_payout), (Some(eve.address()), Some(JobState::Slashed), 0));
    let [(who, amount, why)] = &c.slashes[..] else { panic!("one slash: {:?}", c.slashes) };
    assert_eq!((*who, why.as_str()), (eve.address(), "WrongResult"));
    assert_eq!(*amount, m.required_lock(value, 10_000).await.unwrap(), "the whole lock");
    let eve_row = summary.providers.iter().find(|p| p.provider == eve.address()).unwrap();
    assert_eq!((eve_row.slashed, eve_row.checks_failed), (*amount, 1));
    let bob_row = summary.providers.iter().find(|p| p.provider == bob.address()).unwrap();
    assert_eq!(bob_row.provider_payouts, value - pfee);

    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

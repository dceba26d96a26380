//! Provider workers on a real node and a real GPU adapter (lavapipe in CI): a renter's
//! checked job is accepted, run on the GPU, committed, verified by a second worker's
//! re-execution and settled, with the provider's root equal to the CPU reference's; a
//! worker that never computes is caught by two verifiers and slashed.

use capacloud_client::blob::{BlobStore, LocalStore};
use capacloud_client::chain::Chain;
use capacloud_client::marketplace::*;
use capacloud_client::Marketplace;
use capacloud_executor::merkle;
use capacloud_executor::workloads::{Mandelbrot, Workload};
use capacloud_tests::{contract_artifacts, gpu_or_skip, lavapipe_offer, worker_config, TestNode};
use capacloud_worker::provider::Worker;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subxt_signer::sr25519::dev;

const WND: Amount = 1_000_000_000_000_000_000;
const PRICE: Amount = WND / 1_000;


/// Creates a checked direct-hire job for `offer_id`, reveals the seed when the provider has
/// committed, and waits until the job ends. Returns the final job.
async fn run_job(m: &Marketplace<'_>, chain: &Chain, offer_id: u64, spec_hash: Hash32, seed: Hash32) -> Job {
    let now = chain.finalized_number().await.unwrap();
    let input = JobInput {
        spec_hash,
        spec_uri: capacloud_client::blob::uri(&spec_hash),
        work_units: 10,
        max_price_per_unit: PRICE,
        requirements: Requirements { min_vram_mib: 1_024, min_benchmark_score: 1, gpu_class: Some(2) },
        deadline: now + 40,
        check_rate_bps: 10_000,
        seed_commitment: seed_commitment(&seed),
        offer_id: Some(offer_id),
    };
    let (id, _) = m.create_job(&input).await.unwrap();
    let start = Instant::now();
    loop {
        let job = m.job(id).await.unwrap().unwrap();
        if job.state.is_terminal() {
            return job;
        }
        if job.state == JobState::Committed {
            m.reveal_seed(id, seed).await.unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(240), "job {id} stuck in {:?}", job.state);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_verify_and_catch_a_cheater() {
    let test = "workers_run_verify_and_catch_a_cheater";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let url = node.url();
    let connect = |k| Chain::connect(&url, k);
    let (alice, bob, charlie, dave, eve) =
        (connect(dev::alice()).await.unwrap(), connect(dev::bob()).await.unwrap(), connect(dev::charlie()).await.unwrap(), connect(dev::dave()).await.unwrap(), connect(dev::eve()).await.unwrap());
    let (m, _) = Marketplace::deploy(&alice, &art.code).await.unwrap();
    m.set_params(Params { accept_window: 6, bid_window: 6, reveal_window: 10, unstake_cooldown: 4, ..m.params().await.unwrap() })
        .await
        .unwrap();
    let mut offers = Vec::new();
    for c in [&bob, &charlie, &eve] {
        let mc = m.with(c);
        mc.register_provider(20 * WND).await.unwrap();
        offers.push(mc.list_offer(&lavapipe_offer(PRICE)).await.unwrap().0);
    }

    // The renter's job: a small Mandelbrot, stored content-addressed.
    let dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let w = Mandelbrot { width: 96, height: 64, max_iter: 128 };
    let prepared = w.prepare();
    let expected_root = merkle::commit(&w.cpu_reference(&prepared), merkle::DEFAULT_CHUNK).root;
    let (spec, inputs) = prepared.to_job();
    let spec_hash = blobs.put(&spec.encode_spec()).unwrap();
    assert_eq!(spec_hash, spec.spec_hash());
    for data in inputs.values() {
        blobs.put(data).unwrap();
    }

    let workers = [
        Worker::new(&bob, m.address(), gpu.clone(), blobs.clone(), worker_config(offers[0], PRICE, 1, false)),
        Worker::new(&charlie, m.address(), gpu.clone(), blobs.clone(), worker_config(offers[1], PRICE, 2, false)),
        Worker::new(&eve, m.address(), gpu.clone(), blobs.clone(), worker_config(offers[2], PRICE, 3, true)),
    ];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let md = m.with(&dave);
    let renter = async {
        let honest = run_job(&md, &dave, offers[0], spec_hash, [1; 32]).await;
        let cheat = run_job(&md, &dave, offers[2], spec_hash, [2; 32]).await;
        let _ = stop_tx.send(true);
        (honest, cheat)
    };
    let (_, _, _, (honest, cheat)) = tokio::join!(
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
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

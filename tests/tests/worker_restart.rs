//! A provider worker that dies after committing resumes from the chain's state when it is
//! started again: the new process (no memory of the old one) recomputes the same result and
//! salt, reveals, and never submits a step twice.

use capacloud_client::blob::{BlobStore, LocalStore};
use capacloud_client::chain::Chain;
use capacloud_client::marketplace::*;
use capacloud_client::Marketplace;
use capacloud_executor::workloads::{Matmul, Workload};
use capacloud_tests::{contract_artifacts, gpu_or_skip, lavapipe_offer, worker_config, TestNode};
use capacloud_worker::provider::Worker;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subxt_signer::sr25519::dev;

const WND: Amount = 1_000_000_000_000_000_000;
const PRICE: Amount = WND / 1_000;


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_worker_resumes_without_double_submitting() {
    let test = "restarted_worker_resumes_without_double_submitting";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let url = node.url();
    let alice = Chain::connect(&url, dev::alice()).await.unwrap();
    let bob = Chain::connect(&url, dev::bob()).await.unwrap();
    let charlie = Chain::connect(&url, dev::charlie()).await.unwrap();
    let dave = Chain::connect(&url, dev::dave()).await.unwrap();
    let (m, _) = Marketplace::deploy(&alice, &art.code).await.unwrap();
    m.set_params(Params { accept_window: 6, bid_window: 6, reveal_window: 12, unstake_cooldown: 4, ..m.params().await.unwrap() })
        .await
        .unwrap();
    let (mb, mc) = (m.with(&bob), m.with(&charlie));
    mb.register_provider(20 * WND).await.unwrap();
    mc.register_provider(20 * WND).await.unwrap();
    let (bob_offer, _) = mb.list_offer(&lavapipe_offer(PRICE)).await.unwrap();
    let (charlie_offer, _) = mc.list_offer(&lavapipe_offer(PRICE)).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let (spec, inputs) = Matmul { n: 64, seed: 9 }.prepare().to_job();
    let spec_hash = blobs.put(&spec.encode_spec()).unwrap();
    for data in inputs.values() {
        blobs.put(data).unwrap();
    }
    let seed = [4u8; 32];
    let now = dave.finalized_number().await.unwrap();
    let md = m.with(&dave);
    let (job, _) = md
        .create_job(&JobInput {
            spec_hash,
            spec_uri: capacloud_client::blob::uri(&spec_hash),
            work_units: spec.work_units,
            max_price_per_unit: PRICE,
            requirements: Requirements::default(),
            deadline: now + 60,
            check_rate_bps: 10_000,
            seed_commitment: seed_commitment(&seed),
            offer_id: Some(bob_offer),
        })
        .await
        .unwrap();

    // The first Bob worker accepts and commits, then "dies" (is dropped).
    let mut steps = Vec::new();
    {
        let first = Worker::new(&bob, m.address(), gpu.clone(), blobs.clone(), worker_config(bob_offer, PRICE, 1, false));
        for _ in 0..2 {
            let r = first.pass().await.unwrap();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            steps.extend(r.actions);
        }
    }
    assert_eq!(steps, vec![(job, "accepted"), (job, "committed")]);
    assert_eq!(m.job(job).await.unwrap().unwrap().state, JobState::Committed);

    // The renter reveals; Charlie verifies; a fresh Bob worker (same key) finishes the job.
    md.reveal_seed(job, seed).await.unwrap();
    let charlie_worker = Worker::new(&charlie, m.address(), gpu.clone(), blobs.clone(), worker_config(charlie_offer, PRICE, 2, false));
    let restarted = Worker::new(&bob, m.address(), gpu.clone(), blobs.clone(), worker_config(bob_offer, PRICE, 1, false));
    let mut bob_steps = Vec::new();
    let start = Instant::now();
    loop {
        let j = m.job(job).await.unwrap().unwrap();
        if j.state.is_terminal() {
            assert_eq!(j.state, JobState::Settled, "{j:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "stuck in {:?}", j.state);
        let rc = charlie_worker.pass().await.unwrap();
        assert!(rc.errors.is_empty(), "{:?}", rc.errors);
        let rb = restarted.pass().await.unwrap();
        assert!(rb.errors.is_empty(), "{:?}", rb.errors);
        bob_steps.extend(rb.actions);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The restarted worker only revealed: it neither accepted nor committed again.
    assert_eq!(bob_steps, vec![(job, "revealed")]);
    let j = m.job(job).await.unwrap().unwrap();
    assert_eq!(j.provider_root, j.verifiers[0].and_then(|v| v.root), "the recomputed root matched the verifier's");
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

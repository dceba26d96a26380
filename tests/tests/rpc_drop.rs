//! The chain connection survives the node going away. With two provider workers running and
//! a renter following a job, the node is restarted (every websocket dropped): the job still
//! settles, a second job submitted after the restart settles too, and the same clients read
//! state and submit transactions again.

use capacloud_client::blob::LocalStore;
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, JobBundle, Journal, Terms};
use capacloud_executor::workloads::{Sha256Batch, Workload};
use capacloud_tests::{contract_artifacts, deploy_fast, dev_chains, gpu_or_skip, lavapipe_offer, next_epoch, provider_with_offer, worker_chain, worker_config, TestNode};
use subxt_signer::sr25519::dev;
use capacloud_worker::metrics::Metrics;
use capacloud_worker::provider::Worker;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WND: Amount = UNITS_PER_WND;
const PRICE: Amount = WND / 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_renter_survive_a_node_restart() {
    let test = "workers_and_renter_survive_a_node_restart";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(mut node) = TestNode::start(test) else { return };
    let [alice, bob, charlie, dave, _, ferdie] = &dev_chains(&node.url()).await;
    let m = deploy_fast(alice, &art.code, 10, 20).await;
    let bob_offer = provider_with_offer(&m, bob, 20 * WND, &lavapipe_offer(PRICE)).await;
    let charlie_offer = provider_with_offer(&m, charlie, 20 * WND, &lavapipe_offer(PRICE)).await;
    next_epoch(&m).await;

    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalStore::new(dir.path()).unwrap();
    let (spec, inputs) = Sha256Batch { messages: 256, seed: 3 }.prepare().to_job();
    let bundle = JobBundle { spec, tasks: vec![inputs], library: None };
    let terms = Terms { offer_id: Some(bob_offer), max_price_per_unit: PRICE, check_rate_bps: 10_000, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };
    let journal = Journal::new(dir.path().join("jobs"));
    let bob_metrics = Arc::new(Metrics::default());
    let workers = [
        Worker::new(worker_chain(&node.url(), dev::bob()).await, m.address(), gpu.clone(), blobs.clone(), worker_config(bob_offer, PRICE, 1, false), bob_metrics.clone()),
        Worker::new(worker_chain(&node.url(), dev::charlie()).await, m.address(), gpu.clone(), blobs.clone(), worker_config(charlie_offer, PRICE, 2, false), Arc::new(Metrics::default())),
    ];
    let _ = (bob, charlie);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let md = m.with(dave);
    let renter = async {
        let seed = [7u8; 32];
        let now = dave.finalized_number().await.unwrap();
        let input = renter::stage(&blobs, &bundle, &terms).await.unwrap();
        let first = renter::create(&md, &journal, &input, &seed, now).await.unwrap();
        // Restart the node once Bob has taken the job, while the renter follows it.
        let start = Instant::now();
        while m.job_core(first).await.unwrap().unwrap().state == JobState::AwaitingAccept {
            assert!(start.elapsed() < Duration::from_secs(60), "job {first} never accepted");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let before = dave.finalized_number().await.unwrap();
        let follow = renter::follow(&md, first, &seed, Duration::from_secs(240), |_| {});
        let restart = async {
            tokio::task::block_in_place(|| node.restart().unwrap());
        };
        let (first_job, ()) = tokio::join!(follow, restart);
        let first_job = first_job.expect("the renter's follow survives the drop");
        assert!(dave.finalized_number().await.unwrap() >= before, "the chain went on from its database");

        // A job created after the restart is taken and settled too.
        let seed2 = [8u8; 32];
        let now = dave.finalized_number().await.unwrap();
        let input = renter::stage(&blobs, &bundle, &terms).await.unwrap();
        let second = renter::create(&md, &journal, &input, &seed2, now).await.unwrap();
        let second_job = renter::follow(&md, second, &seed2, Duration::from_secs(240), |_| {}).await.unwrap();
        let _ = stop_tx.send(true);
        (first_job, second_job)
    };
    let (_, _, (first, second)) = tokio::join!(workers[0].run(stopped(stop_rx.clone())), workers[1].run(stopped(stop_rx.clone())), renter);
    assert_eq!((first.state, second.state), (JobState::Settled, JobState::Settled));
    assert_ne!(first.provider_answer, [0; 32]);
    assert_eq!(blob_roots(&first), blob_roots(&second), "same spec, same result");
    assert_eq!(bob_metrics.step_count("accepted and committed"), 2);
    assert_eq!(bob_metrics.step_count("revealed"), 2);

    // Plain reads and writes through the clients made before the restart.
    m.with(ferdie).stake(2 * WND).await.expect("a transaction after the reconnect");
    assert_eq!(m.provider(ferdie.address()).await.unwrap().unwrap().stake, 2 * WND);
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);

    // With the node gone for good, a worker still stops when asked: the pass stuck on the
    // reconnecting connection gets its grace, then is abandoned.
    node.stop();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ask = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = stop_tx.send(true);
        Instant::now()
    };
    let (asked, ()) = tokio::join!(ask, workers[0].run(stopped(stop_rx)));
    let took = asked.elapsed();
    assert!(took < capacloud_worker::provider::SHUTDOWN_GRACE + Duration::from_secs(5), "the worker took {took:?} to stop");
}

/// The task roots behind a settled job's batch root, from the shared blob store.
fn blob_roots(j: &Job) -> [u8; 32] {
    j.batch_root
}

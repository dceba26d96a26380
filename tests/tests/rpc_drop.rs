//! The chain connection survives the node going away: after a restart of the node (every
//! websocket dropped), the same client reads state and submits transactions again, and the
//! worker's loop goes on passing over jobs.

use capacloud_client::chain::Chain;
use capacloud_client::marketplace::Amount;
use capacloud_client::Marketplace;
use capacloud_tests::{contract_artifacts, TestNode};
use std::time::{Duration, Instant};
use subxt_signer::sr25519::dev;

const WND: Amount = 1_000_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_survive_a_node_restart() {
    let test = "clients_survive_a_node_restart";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(mut node) = TestNode::start(test) else { return };
    let alice = Chain::connect(&node.url(), dev::alice()).await.unwrap();
    let bob = Chain::connect(&node.url(), dev::bob()).await.unwrap();
    let (m, _) = Marketplace::deploy(&alice, &art.code).await.unwrap();
    let mb = m.with(&bob);
    let before = alice.finalized_number().await.unwrap();

    node.restart().unwrap();

    // The first calls may fail while the client reconnects; within seconds they succeed.
    let start = Instant::now();
    let count = loop {
        match m.job_count().await {
            Ok(n) => break n,
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(30), "no reconnect: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    assert_eq!(count, 0);
    assert!(alice.finalized_number().await.unwrap() >= before, "the chain went on from its database");
    mb.register_provider(2 * WND).await.expect("a transaction after the reconnect");
    assert_eq!(m.provider(bob.address()).await.unwrap().unwrap().stake, 2 * WND);
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total);
}

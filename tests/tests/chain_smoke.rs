//! The foundation's end-to-end path on a real node: a wallet-signed upload and
//! instantiation, a message call, a state read through a dry-run, and the contract's
//! event decoded from the block — plus the refusals that must move no funds.

use capacloud_client::chain::{Chain, ChainError};
use capacloud_client::marketplace::{self as abi, event_sig, ContractError, Event, Params};
use capacloud_client::Marketplace;
use capacloud_tests::{contract_artifacts, TestNode};
use subxt_signer::sr25519::dev;

fn default_params() -> Params {
    // Must equal `Params::default()` in contracts/marketplace/lib.rs.
    Params {
        protocol_fee_bps: 200,
        verifier_fee_bps: 300,
        default_check_rate_bps: 1_000,
        min_stake: 10u128.pow(18),
        accept_window: 20,
        bid_window: 10,
        reveal_window: 20,
        unstake_cooldown: 50,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_call_read_and_decode_events_on_a_real_node() {
    let test = "deploy_call_read_and_decode_events_on_a_real_node";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(node) = TestNode::start(test) else { return };

    let alice = Chain::connect(&node.url(), dev::alice()).await.expect("connect as Alice");
    assert!(alice.is_mapped().await.unwrap(), "genesis pre-maps Alice for pallet-revive");
    let alice_before = alice.free_balance().await.unwrap();

    // Upload + instantiate, gas and deposit from the dry-run.
    let (m, dep) = Marketplace::deploy(&alice, &art.code).await.expect("deploy");
    let d = &dep.receipt.dry_run;
    assert!(d.gas_required.ref_time > 0 && d.gas_required.proof_size > 0, "{d:?}");
    let deploy_deposit = d.storage_deposit.charge_or_zero();
    assert!(deploy_deposit > 0, "instantiation stores code and state: {d:?}");
    assert!(dep.receipt.fee > 0);
    println!(
        "deploy: block #{} gas ref_time {} proof_size {} deposit {} fee {}",
        dep.receipt.block_number, d.gas_required.ref_time, d.gas_required.proof_size, deploy_deposit, dep.receipt.fee
    );

    // State read back through dry-runs.
    assert_eq!(m.version().await.unwrap(), abi::INTERFACE_VERSION);
    assert_eq!(m.admin().await.unwrap(), alice.address());
    assert_eq!(m.params().await.unwrap(), default_params());

    // An indexer (the worker's follower) watching finalized blocks.
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let follower = tokio::spawn(capacloud_worker::follow::follow(
        alice.client().clone(),
        m.address(),
        tx,
        async move {
            let _ = stop_rx.await;
        },
    ));

    // A signed message call that changes state and emits an event.
    let new = Params { protocol_fee_bps: 150, bid_window: 7, ..default_params() };
    let r = m.set_params(new).await.expect("set_params");
    println!(
        "set_params: block #{} gas ref_time {} proof_size {} deposit {:?} fee {}",
        r.block_number, r.dry_run.gas_required.ref_time, r.dry_run.gas_required.proof_size, r.dry_run.storage_deposit, r.fee
    );
    assert_eq!(m.params().await.unwrap(), new);
    let expected = Event::ParamsUpdated { admin: alice.address(), params: new };
    assert_eq!(r.events.len(), 1, "{:?}", r.events);
    let ev = &r.events[0];
    assert_eq!(ev.contract, m.address());
    assert_eq!(ev.decoded.as_ref(), Some(&expected));
    assert_eq!(ev.topics[0], abi::signature_topic(event_sig::PARAMS_UPDATED));
    assert_eq!(ev.topics[1], abi::field_topic(&alice.address()));

    // The same event read from the block, and seen by the follower.
    let in_block = alice.contract_events_at(r.block_hash).await.unwrap();
    assert!(in_block.iter().any(|e| e.decoded.as_ref() == Some(&expected)));
    let seen = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("follower saw the event in time")
        .expect("follower channel open");
    assert_eq!(seen.block_number, r.block_number);
    assert_eq!(seen.event.decoded, Some(expected));
    let _ = stop_tx.send(());
    follower.await.unwrap().expect("follower ends cleanly");

    // Alice paid exactly the two fees and the storage deposits, to the planck.
    let alice_after = alice.free_balance().await.unwrap();
    let set_deposit = r.dry_run.storage_deposit.charge_or_zero();
    assert_eq!(alice_before - alice_after, dep.receipt.fee + r.fee + deploy_deposit + set_deposit);

    // Refusals: decided by the dry-run, so nothing is signed and no funds move.
    let bob = Chain::connect(&node.url(), dev::bob()).await.unwrap();
    let bob_before = bob.free_balance().await.unwrap();
    let as_bob = Marketplace::at(&bob, m.address()).await.unwrap();
    match as_bob.set_params(new).await {
        Err(ChainError::Reverted { error: Some(ContractError::NotAdmin), .. }) => {}
        other => panic!("expected NotAdmin, got {other:?}"),
    }
    let bad = Params { protocol_fee_bps: 5_000, ..new };
    match m.set_params(bad).await {
        Err(ChainError::Reverted { error: Some(ContractError::ParamOutOfBounds), .. }) => {}
        other => panic!("expected ParamOutOfBounds, got {other:?}"),
    }
    assert_eq!(bob.free_balance().await.unwrap(), bob_before);
    assert_eq!(alice.free_balance().await.unwrap(), alice_after);
    assert_eq!(m.params().await.unwrap(), new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_account_is_mapped_automatically_once() {
    let test = "unmapped_account_is_mapped_automatically_once";
    let Some(node) = TestNode::start(test) else { return };
    // The local_testnet preset funds //Alice//stash but genesis maps only Alice..Ferdie.
    let stash = capacloud_client::keys::from_suri("//Alice//stash").unwrap().pair;
    let c = Chain::connect(&node.url(), stash).await.unwrap();
    assert!(c.free_balance().await.unwrap() > 0, "stash is funded");
    assert!(!c.is_mapped().await.unwrap());
    assert!(c.ensure_mapped().await.unwrap(), "first call maps");
    assert!(c.is_mapped().await.unwrap());
    assert!(!c.ensure_mapped().await.unwrap(), "second call is a no-op");
}

#[test]
fn abi_matches_contract_metadata() {
    let Some(art) = contract_artifacts("abi_matches_contract_metadata") else { return };
    let spec = &art.metadata["spec"];
    let mut entries: Vec<&serde_json::Value> = Vec::new();
    for kind in ["constructors", "messages"] {
        entries.extend(spec[kind].as_array().expect("metadata lists them"));
    }
    assert_eq!(entries.len(), abi::msg::ALL.len(), "client covers every constructor and message");
    for label in abi::msg::ALL {
        let e = entries.iter().find(|e| e["label"] == *label).unwrap_or_else(|| panic!("{label} in metadata"));
        let want = format!("0x{}", hex::encode(abi::selector(label)));
        assert_eq!(e["selector"].as_str(), Some(want.as_str()), "selector of {label}");
    }
    let events = spec["events"].as_array().expect("metadata lists events");
    assert_eq!(events.len(), event_sig::ALL.len(), "client covers every event");
    for sig in event_sig::ALL {
        let label = sig.split('(').next().unwrap();
        let e = events.iter().find(|e| e["label"] == label).unwrap_or_else(|| panic!("{label} in metadata"));
        let want = format!("{:?}", abi::signature_topic(sig));
        assert_eq!(e["signature_topic"].as_str(), Some(want.as_str()), "topic of {label}");
    }
}

//! The foundation's end-to-end path on a real node: a wallet-signed upload and
//! instantiation, a message call, state read straight from contract storage, the block
//! hash and SHA-256 host paths the contract depends on, and the contract's event decoded
//! from the block — plus the refusals that must move no funds.

use capacloud_client::chain::{Chain, ChainError};
use capacloud_client::contract::Deploy;
use capacloud_client::marketplace::{self as abi, ContractError, Event, MarketEvent, MarketEventKind, Params, INTERFACE_VERSION};
use capacloud_client::Marketplace;
use capacloud_tests::{contract_artifacts, TestNode};
use subxt_signer::sr25519::dev;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_call_read_and_decode_events_on_a_real_node() {
    let test = "deploy_call_read_and_decode_events_on_a_real_node";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(node) = TestNode::start(test) else { return };

    let alice = Chain::connect(&node.url(), dev::alice()).await.expect("connect as Alice");
    assert!(alice.is_mapped().await.unwrap(), "genesis pre-maps Alice for pallet-revive");
    let alice_before = alice.free_balance().await.unwrap();

    // A market whose epoch cannot hold a compute window under its parameters (the
    // defaults' 20-block reveal window in a 100-block epoch) is refused at the dry-run;
    // nothing is paid.
    match Marketplace::deploy(&alice, &art.code, Deploy { epoch_blocks: 100, params_delay: 5, params: Params::default() }).await {
        Err(ChainError::Reverted { error: Some(ContractError::ParamOutOfBounds), .. }) => {}
        Err(e) => panic!("expected ParamOutOfBounds, got {e:?}"),
        Ok(_) => panic!("expected ParamOutOfBounds, got a deployment"),
    }
    assert_eq!(alice.free_balance().await.unwrap(), alice_before);

    // Upload + instantiate, gas and deposit from the dry-run.
    let initial = Params { reveal_window: 5, ..Params::default() };
    let (m, dep) = Marketplace::deploy(&alice, &art.code, Deploy { epoch_blocks: 100, params_delay: 5, params: initial }).await.expect("deploy");
    let d = &dep.receipt.dry_run;
    assert!(d.gas_required.ref_time > 0 && d.gas_required.proof_size > 0, "{d:?}");
    let deploy_deposit = d.storage_deposit.charge_or_zero();
    assert!(deploy_deposit > 0, "instantiation stores code and state: {d:?}");
    assert!(dep.receipt.fee > 0);
    println!(
        "deploy: block #{} gas ref_time {} proof_size {} deposit {} fee {} code {} B",
        dep.receipt.block_number,
        d.gas_required.ref_time,
        d.gas_required.proof_size,
        deploy_deposit,
        dep.receipt.fee,
        art.code.len()
    );

    // State read straight from storage (no dry-run).
    let st = m.state().await.unwrap();
    assert_eq!(st.version, INTERFACE_VERSION);
    assert_eq!(st.admin, alice.address());
    assert_eq!((st.epoch_blocks, st.params_delay), (100, 5));
    assert_eq!(st.params, initial);
    assert_eq!(m.balance_check().await.unwrap(), (0, 0));
    assert!(Marketplace::at(&alice, m.address()).await.is_ok(), "the interface version matches");

    // An indexer (the worker's follower) watching finalized blocks.
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let follower = tokio::spawn(capacloud_worker::follow::follow(alice.client().clone(), m.address(), tx, async move {
        let _ = stop_rx.await;
    }));

    // A signed message call that changes state and emits an event: the change is
    // scheduled `params_delay` blocks ahead, for new jobs only.
    let new = Params { protocol_fee_bps: 150, bid_window: 7, ..initial };
    let r = m.set_params(new).await.expect("set_params");
    println!(
        "set_params: block #{} gas ref_time {} proof_size {} deposit {:?} fee {}",
        r.block_number, r.dry_run.gas_required.ref_time, r.dry_run.gas_required.proof_size, r.dry_run.storage_deposit, r.fee
    );
    let st = m.state().await.unwrap();
    let effective_at = st.pending_params.expect("scheduled").1;
    assert!(effective_at >= r.block_number + 5 - 1 && effective_at <= r.block_number + 5, "{effective_at} vs block {}", r.block_number);
    assert_eq!(st.params_at(effective_at - 1), initial);
    assert_eq!(st.params_at(effective_at), new);
    let expected = Event::Market(MarketEvent { kind: MarketEventKind::ParamsScheduled { params: new, effective_at } });
    assert_eq!(r.events.len(), 1, "{:?}", r.events);
    let ev = &r.events[0];
    assert_eq!(ev.contract, m.address());
    assert_eq!(ev.decoded.as_ref(), Some(&expected));
    assert_eq!(ev.topics[0], abi::signature_topic(abi::signature::MARKET));

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

/// Every selector, event signature and storage key the client uses is the built
/// contract's: the guard that `capacloud-types` and the contract agree.
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
    let sigs = [abi::signature::JOB, abi::signature::VERIFIER, abi::signature::ACCOUNT, abi::signature::MARKET];
    let events = spec["events"].as_array().expect("metadata lists events");
    assert_eq!(events.len(), sigs.len(), "client covers every event");
    for sig in sigs {
        let label = sig.split('(').next().unwrap();
        let e = events.iter().find(|e| e["label"] == label).unwrap_or_else(|| panic!("{label} in metadata"));
        let want = format!("{:?}", abi::signature_topic(sig));
        assert_eq!(e["signature_topic"].as_str(), Some(want.as_str()), "topic of {label}");
    }
    // The storage layout: the root value at key 0 and every mapping at its manual key
    // (ink! writes a key as the hex of its little-endian bytes).
    use abi::keys;
    let root = &art.metadata["storage"]["root"];
    assert_eq!(root["root_key"].as_str(), Some("0x00000000"), "the root value at key 0");
    let fields = root["layout"]["struct"]["fields"].as_array().expect("the storage struct's fields");
    let expected = [
        ("providers", keys::PROVIDERS),
        ("slot_owner", keys::SLOT_OWNER),
        ("free_slots", keys::FREE_SLOTS),
        ("tree", keys::TREE),
        ("offers", keys::OFFERS),
        ("jobs", keys::JOBS),
        ("inputs", keys::INPUTS),
        ("verifiers", keys::VERIFIERS),
        ("drawn", keys::DRAWN),
        ("withdrawable", keys::WITHDRAWABLE),
        ("price_index", keys::PRICE_INDEX),
    ];
    assert_eq!(fields.len(), expected.len() + 1, "one packed root value and the mappings");
    assert_eq!(fields[0]["name"], "state", "the root value is the MarketState");
    for (name, key) in expected {
        let f = fields.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name} in the storage layout"));
        let want = format!("0x{}", hex::encode(key.to_le_bytes()));
        assert_eq!(f["layout"]["root"]["root_key"].as_str(), Some(want.as_str()), "storage key of {name}");
    }
}

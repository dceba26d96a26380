//! The marketplace on a real node: a full checked job with an honest provider and verifier
//! (payouts exact to the unit, and to the planck once withdrawn), an unchecked job, a cheating
//! provider slashed with the renter compensated, a silent provider refunded after its
//! deadline, and a silent verifier replaced. The money invariant is checked after every
//! transaction; the gas of every message is printed for BENCHMARKS.md.

use capacloud_client::chain::{self, Chain, Receipt};
use capacloud_client::marketplace::*;
use capacloud_client::Marketplace;
use capacloud_tests::{contract_artifacts, TestNode};
use std::collections::BTreeMap;
use std::sync::Mutex;
use subxt::utils::H160;
use subxt_signer::sr25519::dev;

const WND: Amount = 1_000_000_000_000_000_000;
const PRICE: Amount = WND / 100;
const UNITS: u64 = 10;

/// ref_time, proof_size, storage deposit charged, fee.
type Cost = (u64, u64, u128, u128);

/// Gas and fee per message, for the benchmark table.
static GAS: Mutex<BTreeMap<&'static str, Cost>> = Mutex::new(BTreeMap::new());

fn record<'a>(label: &'static str, r: &'a Receipt) -> &'a Receipt {
    GAS.lock().unwrap().insert(
        label,
        (r.dry_run.gas_required.ref_time, r.dry_run.gas_required.proof_size, r.dry_run.storage_deposit.charge_or_zero(), r.fee),
    );
    r
}

async fn invariant(m: &Marketplace<'_>) {
    let (balance, total) = m.balance_check().await.expect("balance_check");
    assert_eq!(balance, total, "contract balance != escrow + stakes + withdrawable + treasury");
}

async fn wait_until_past(chain: &Chain, block: u32) {
    while chain.finalized_number().await.unwrap() <= block {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

fn offer(price: Amount) -> OfferInput {
    OfferInput {
        gpu_vendor: "NVIDIA".into(),
        gpu_model: "H100 80GB HBM3".into(),
        vram_mib: 81_559,
        backend: "Vulkan NVIDIA 580.159.04".into(),
        benchmark_score: 20_423,
        gpu_class: 14,
        price_per_unit: price,
        max_units: 1_000,
        endpoint: "http://127.0.0.1:7070".into(),
    }
}

fn job_input(offer_id: u64, rate: u16, seed: &Hash32, deadline: u32) -> JobInput {
    JobInput {
        spec_hash: [0x5E; 32],
        spec_uri: "sha256:5e5e".into(),
        work_units: UNITS,
        max_price_per_unit: PRICE,
        requirements: Requirements { min_vram_mib: 16_384, min_benchmark_score: 1, gpu_class: Some(14) },
        deadline,
        check_rate_bps: rate,
        seed_commitment: seed_commitment(seed),
        offer_id: Some(offer_id),
    }
}

fn settled(r: &Receipt) -> Option<Event> {
    r.events.iter().filter_map(|e| e.decoded.clone()).find(|e| matches!(e, Event::JobSettled { .. }))
}

fn slashes(r: &Receipt) -> Vec<Event> {
    r.events.iter().filter_map(|e| e.decoded.clone()).filter(|e| matches!(e, Event::Slashed { .. })).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_lifecycles_on_a_real_node() {
    let test = "marketplace_lifecycles_on_a_real_node";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let url = node.url();
    let alice = Chain::connect(&url, dev::alice()).await.unwrap();
    let bob = Chain::connect(&url, dev::bob()).await.unwrap();
    let charlie = Chain::connect(&url, dev::charlie()).await.unwrap();
    let dave = Chain::connect(&url, dev::dave()).await.unwrap();
    let eve = Chain::connect(&url, dev::eve()).await.unwrap();
    let verifiers: BTreeMap<H160, &Chain> = [(charlie.address(), &charlie), (eve.address(), &eve)].into();

    let (m, dep) = Marketplace::deploy(&alice, &art.code).await.unwrap();
    record("instantiate_with_code", &dep.receipt);
    let params = Params { accept_window: 6, bid_window: 6, reveal_window: 8, unstake_cooldown: 4, ..m.params().await.unwrap() };
    record("set_params", &m.set_params(params).await.unwrap());
    invariant(&m).await;

    let (mb, mc, md, me) = (m.with(&bob), m.with(&charlie), m.with(&dave), m.with(&eve));
    record("register_provider", &mb.register_provider(100 * WND).await.unwrap());
    mc.register_provider(50 * WND).await.unwrap();
    me.register_provider(50 * WND).await.unwrap();
    let (offer_id, r) = mb.list_offer(&offer(PRICE)).await.unwrap();
    record("list_offer", &r);
    invariant(&m).await;
    let escrow = m.required_escrow(UNITS, PRICE).await.unwrap().unwrap();
    let value = UNITS as Amount * PRICE;
    let (pfee, vfee) = (value * 200 / 10_000, value * 300 / 10_000);

    // Job for the silent-provider case first, so its deadline passes during the others.
    let now = dave.finalized_number().await.unwrap();
    let (silent_job, _) = md.create_job(&job_input(offer_id, 1_000, &[9; 32], now + 14)).await.unwrap();
    mb.accept_job(silent_job).await.unwrap();
    invariant(&m).await;

    // ---- 1. checked job, honest provider and verifier: exact payouts.
    let seed = [1u8; 32];
    let (root, salt) = ([0xAB; 32], [0x5A; 32]);
    let now = dave.finalized_number().await.unwrap();
    let (job, r) = md.create_job(&job_input(offer_id, 10_000, &seed, now + 60)).await.unwrap();
    record("create_job", &r);
    record("accept_job", &mb.accept_job(job).await.unwrap());
    record("commit_result", &mb.commit_result(job, result_commitment(b"P", job, bob.address(), &root, &salt)).await.unwrap());
    let r = md.reveal_seed(job, seed).await.unwrap();
    record("reveal_seed (checked, draws verifier)", &r);
    let v = m.job(job).await.unwrap().unwrap().current_verifier().expect("a verifier was drawn");
    assert!(verifiers.contains_key(&v.account), "verifier is neither provider nor renter");
    let vchain = verifiers[&v.account];
    let vm = m.with(vchain);
    let vsalt = [0x77; 32];
    record("commit_verification", &vm.commit_verification(job, result_commitment(b"V", job, v.account, &root, &vsalt)).await.unwrap());
    record("reveal_result (verifier)", &vm.reveal_result(job, root, vsalt).await.unwrap());
    let r = mb.reveal_result(job, root, salt).await.unwrap();
    record("reveal_result (provider, settles)", &r);
    assert_eq!(
        settled(&r),
        Some(Event::JobSettled {
            job_id: job,
            renter: dave.address(),
            provider: bob.address(),
            root,
            provider_payout: value - pfee,
            verifier_fees: vfee,
            protocol_fee: pfee,
            renter_refund: escrow - value - vfee,
            checked: true,
        })
    );
    assert_eq!(m.withdrawable_of(bob.address()).await.unwrap(), value - pfee);
    assert_eq!(m.withdrawable_of(v.account).await.unwrap(), vfee);
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap(), escrow - value - vfee);
    assert_eq!(m.accounting().await.unwrap().treasury, pfee);
    invariant(&m).await;
    // Withdrawn to the planck: Bob's balance grows by the payout minus the withdraw fee.
    let before = bob.free_balance().await.unwrap();
    let (amount, r) = mb.withdraw().await.unwrap();
    record("withdraw", &r);
    assert_eq!(amount, value - pfee);
    assert_eq!(bob.free_balance().await.unwrap() + r.fee - before, (value - pfee) / UNITS_PER_PLANCK);
    invariant(&m).await;

    // ---- 2. unchecked job (50% rate, a salt whose check seed says "unchecked").
    let seed2 = [2u8; 32];
    let now = dave.finalized_number().await.unwrap();
    let (job2, _) = md.create_job(&job_input(offer_id, 5_000, &seed2, now + 60)).await.unwrap();
    mb.accept_job(job2).await.unwrap();
    let salt2 = (0u8..=255)
        .map(|i| [i; 32])
        .find(|s| {
            let c = result_commitment(b"P", job2, bob.address(), &root, s);
            let cs = sp_crypto_hashing::sha2_256(&[seed2.as_slice(), c.as_slice()].concat());
            u64::from_le_bytes(cs[..8].try_into().unwrap()) % 10_000 >= 5_000
        })
        .unwrap();
    mb.commit_result(job2, result_commitment(b"P", job2, bob.address(), &root, &salt2)).await.unwrap();
    record("reveal_seed (unchecked)", &md.reveal_seed(job2, seed2).await.unwrap());
    let r = mb.reveal_result(job2, root, salt2).await.unwrap();
    record("reveal_result (provider, unchecked settles)", &r);
    match settled(&r) {
        Some(Event::JobSettled { checked: false, provider_payout, renter_refund, .. }) => {
            assert_eq!((provider_payout, renter_refund), (value - pfee, escrow - value));
        }
        other => panic!("unchecked job did not settle: {other:?}"),
    }
    invariant(&m).await;

    // ---- 3. cheating provider: wrong root, caught, slashed, renter compensated.
    let seed3 = [3u8; 32];
    let (good, bad) = ([0x60; 32], [0xBA; 32]);
    let now = dave.finalized_number().await.unwrap();
    let (job3, _) = md.create_job(&job_input(offer_id, 10_000, &seed3, now + 60)).await.unwrap();
    mb.accept_job(job3).await.unwrap();
    let lock = m.job(job3).await.unwrap().unwrap().lock;
    mb.commit_result(job3, result_commitment(b"P", job3, bob.address(), &bad, &salt)).await.unwrap();
    md.reveal_seed(job3, seed3).await.unwrap();
    let dave_before = m.withdrawable_of(dave.address()).await.unwrap();
    let mut last = None;
    for round in 1..=2u8 {
        let j = m.job(job3).await.unwrap().unwrap();
        assert_eq!(j.round, round);
        let v = j.current_verifier().expect("verifier drawn");
        let vm = m.with(verifiers[&v.account]);
        vm.commit_verification(job3, result_commitment(b"V", job3, v.account, &good, &vsalt)).await.unwrap();
        if round == 1 {
            mb.reveal_result(job3, bad, salt).await.unwrap();
        }
        let r = vm.reveal_result(job3, good, vsalt).await.unwrap();
        if round == 2 {
            record("reveal_result (round 2, slashes)", &r);
        }
        last = Some(r);
        invariant(&m).await;
    }
    let j = m.job(job3).await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Slashed);
    let s = slashes(last.as_ref().unwrap());
    let Some(Event::Slashed { account, amount, to_renter, to_verifiers, to_treasury, reason, .. }) = s.first().cloned() else {
        panic!("no Slashed event: {s:?}")
    };
    assert_eq!((account, amount, reason), (bob.address(), lock, SlashReason::WrongResult));
    assert_eq!(to_renter, value);
    assert_eq!(to_verifiers, 2 * vfee);
    assert_eq!(to_renter + to_verifiers + to_treasury, lock);
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap(), dave_before + escrow + value);
    assert_eq!(m.provider(bob.address()).await.unwrap().unwrap().reputation.checks_failed, 1);
    invariant(&m).await;

    // ---- 4. silent provider: refunded after the deadline, provider penalised.
    let j = m.job(silent_job).await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Assigned);
    wait_until_past(&eve, j.phase_deadline).await;
    let dave_before = m.withdrawable_of(dave.address()).await.unwrap();
    let r = me.cleanup(silent_job).await.unwrap();
    record("cleanup (commit timeout)", &r);
    assert_eq!(m.job(silent_job).await.unwrap().unwrap().state, JobState::Refunded);
    let penalty = j.lock / 10;
    let comp = penalty.min(value);
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap(), dave_before + escrow + comp);
    assert_eq!(m.provider(bob.address()).await.unwrap().unwrap().reputation.timeouts, 1);
    invariant(&m).await;

    // ---- 5. silent verifier: slashed and replaced by another draw.
    let seed5 = [5u8; 32];
    let now = dave.finalized_number().await.unwrap();
    let (job5, _) = md.create_job(&job_input(offer_id, 10_000, &seed5, now + 60)).await.unwrap();
    mb.accept_job(job5).await.unwrap();
    mb.commit_result(job5, result_commitment(b"P", job5, bob.address(), &root, &salt)).await.unwrap();
    md.reveal_seed(job5, seed5).await.unwrap();
    let j = m.job(job5).await.unwrap().unwrap();
    let silent = j.current_verifier().unwrap();
    wait_until_past(&eve, j.phase_deadline).await;
    let r = m.with(&alice).cleanup(job5).await.unwrap();
    record("cleanup (silent verifier, redraw)", &r);
    let s = slashes(&r);
    assert!(
        matches!(s.first(), Some(Event::Slashed { account, reason: SlashReason::VerifierSilent, .. }) if *account == silent.account),
        "{s:?}"
    );
    let j = m.job(job5).await.unwrap().unwrap();
    let replacement = j.current_verifier().expect("a replacement was drawn");
    assert_ne!(replacement.account, silent.account);
    assert_eq!(j.state, JobState::VerifierCommit);
    invariant(&m).await;

    // ---- 6. open job: reverse auction, closed by anyone after the bid window.
    let now = dave.finalized_number().await.unwrap();
    let open = JobInput { offer_id: None, ..job_input(offer_id, 1_000, &[6; 32], now + 60) };
    let (job6, _) = md.create_job(&open).await.unwrap();
    record("bid", &mb.bid(job6, offer_id, PRICE / 2).await.unwrap());
    let j = m.job(job6).await.unwrap().unwrap();
    assert_eq!(j.best_bid.map(|b| (b.provider, b.price_per_unit)), Some((bob.address(), PRICE / 2)));
    wait_until_past(&eve, j.phase_deadline).await;
    let r = me.close_auction(job6).await.unwrap();
    record("close_auction", &r);
    let j = m.job(job6).await.unwrap().unwrap();
    assert_eq!((j.state, j.provider, j.price_per_unit), (JobState::Assigned, Some(bob.address()), PRICE / 2));
    // Price index of class 14: first clearing PRICE, then 80% · PRICE + 20% · PRICE/2.
    assert_eq!(m.price_index(14).await.unwrap(), Some(PRICE * 8 / 10 + PRICE / 2 * 2 / 10));
    invariant(&m).await;

    // Everything withdrawable can leave; the contract then holds exactly its stakes,
    // escrows and treasury.
    for c in [&charlie, &dave, &eve] {
        if m.withdrawable_of(c.address()).await.unwrap() > 0 {
            m.with(c).withdraw().await.unwrap();
        }
    }
    invariant(&m).await;

    // Gas table and the block's capacity for settled jobs.
    let weights = alice.client().constants().at(&subxt::dynamic::constant("System", "BlockWeights")).unwrap().to_value().unwrap();
    use subxt::ext::scale_value::At;
    let normal = weights.at("per_class").and_then(|p| p.at("normal")).and_then(|n| n.at("max_total")).and_then(|t| t.at(0));
    let max_ref = normal.and_then(|w| w.at("ref_time")).and_then(|v| v.as_u128()).unwrap_or(0);
    let max_proof = normal.and_then(|w| w.at("proof_size")).and_then(|v| v.as_u128()).unwrap_or(0);
    let gas = GAS.lock().unwrap().clone();
    println!("| message | ref_time | proof_size (B) | storage deposit (plancks) | fee (plancks) |");
    println!("|---|---|---|---|---|");
    for (label, (rt, ps, dep, fee)) in &gas {
        println!("| {label} | {rt} | {ps} | {dep} | {fee} |");
    }
    let sum = |labels: &[&str]| -> (u64, u64, u128) {
        labels.iter().filter_map(|l| gas.get(l)).fold((0, 0, 0), |a, g| (a.0 + g.0, a.1 + g.1, a.2 + g.3))
    };
    let checked = sum(&[
        "create_job",
        "accept_job",
        "commit_result",
        "reveal_seed (checked, draws verifier)",
        "commit_verification",
        "reveal_result (verifier)",
        "reveal_result (provider, settles)",
    ]);
    println!("checked job lifecycle: ref_time {} proof_size {} fees {} plancks", checked.0, checked.1, checked.2);
    let unchecked = sum(&[
        "create_job",
        "accept_job",
        "commit_result",
        "reveal_seed (unchecked)",
        "reveal_result (provider, unchecked settles)",
    ]);
    println!("unchecked job lifecycle: ref_time {} proof_size {} fees {} plancks", unchecked.0, unchecked.1, unchecked.2);
    println!("block normal-class limit: ref_time {max_ref} proof_size {max_proof}");
    if max_ref > 0 && max_proof > 0 {
        let per_block = (max_ref / u128::from(checked.0)).min(max_proof / u128::from(checked.1));
        println!("checked jobs per block (all 7 transactions each): {per_block}");
        let per_block = (max_ref / u128::from(unchecked.0)).min(max_proof / u128::from(unchecked.1));
        println!("unchecked jobs per block (all 5 transactions each): {per_block}");
    }
    let _ = chain::revive::PALLET;
}

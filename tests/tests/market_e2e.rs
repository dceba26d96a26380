//! The marketplace on a real node, driven message by message: an unchecked job, a checked
//! job with an honest provider and verifier, a batch of 100 tasks with a sampled check, a
//! provider cheating on one task of a batch slashed through a dispute, a provider that
//! lets its job time out; and the two adversaries the spec names, a griefing renter that
//! withholds its inputs and a Sybil that piles up stake after a commitment to steer the
//! draw. Payouts are checked to the unit, the money invariant after every transaction, and
//! the gas of every message is printed for BENCHMARKS.md. Then the indexer follows that
//! market (in-process on SQLite and PostgreSQL, and as a process killed mid-backfill and
//! restarted): its rows equal the contract's state, and a headless browser reads the
//! dashboard.

use capacloud_client::chain::{Chain, Receipt};
use capacloud_client::marketplace::*;
use capacloud_client::Marketplace;
use capacloud_tests::drive::*;
use capacloud_tests::{contract_artifacts, deploy_fast, lavapipe_offer, next_epoch, TestNode};
use std::collections::BTreeMap;
use std::sync::Mutex;
use subxt::utils::H160;

const WND: Amount = UNITS_PER_WND;
const PRICE: Amount = WND / 100;
const UNITS: u64 = 10;

/// ref_time, proof_size, storage deposit charged, fee.
type Cost = (u64, u64, u128, u128);

/// Gas and fee per message, for the benchmark table.
static GAS: Mutex<BTreeMap<&'static str, Cost>> = Mutex::new(BTreeMap::new());

fn record<'a>(label: &'static str, r: &'a Receipt) -> &'a Receipt {
    GAS.lock().unwrap().insert(label, cost(r));
    r
}

fn cost(r: &Receipt) -> Cost {
    (r.dry_run.gas_required.ref_time, r.dry_run.gas_required.proof_size, r.dry_run.storage_deposit.charge_or_zero(), r.fee)
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

fn job_input(offer_id: Option<u64>, tasks: u32, rate: u16) -> JobInput {
    JobInput {
        spec_hash: [0x5E; 32],
        manifest_hash: if tasks > 1 { [0x6E; 32] } else { [0; 32] },
        uri: b"sha256:5e5e".to_vec(),
        tasks,
        units_per_task: UNITS,
        max_price_per_unit: PRICE,
        requirements: Requirements { min_vram_mib: 1_024, min_benchmark_score: 1, gpu_class: Some(2) },
        compute_blocks: 4,
        check_rate_bps: rate,
        pay_if_unverified: false,
        offer_id,
    }
}

/// Creates a direct hire of `offer` as `renter`, paying its escrow; returns (id, escrow).
async fn create(m: &Marketplace<'_>, label: Option<&'static str>, input: &JobInput, seed: &Hash32) -> (u64, Amount) {
    let now = m.chain().finalized_number().await.unwrap();
    let escrow = m.required_escrow(input, now).await.unwrap();
    let (id, r) = m.create_job(input, seed_commitment(seed), escrow).await.expect("create_job");
    if let Some(l) = label {
        record(l, &r);
    }
    (id, escrow)
}

/// The verifier drawn for job `id`'s current round.
async fn drawn(m: &Marketplace<'_>, id: u64) -> H160 {
    m.job(id).await.unwrap().unwrap().current_verifier().expect("a verifier drawn").account
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_lifecycles_on_a_real_node() {
    let test = "marketplace_lifecycles_on_a_real_node";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(mut node) = TestNode::start(test) else { return };
    let url = node.url();
    let [alice, bob, charlie, dave, eve, _ferdie] = capacloud_tests::dev_chains(&url).await;
    let chains: BTreeMap<H160, &Chain> = [(charlie.address(), &charlie), (eve.address(), &eve), (bob.address(), &bob)].into();

    let m = deploy_fast(&alice, &art.code, 6, 6).await;
    invariant(&m).await;
    let (mb, mc, md, me) = (m.with(&bob), m.with(&charlie), m.with(&dave), m.with(&eve));
    record("stake (register)", &mb.stake(400 * WND).await.unwrap());
    mc.stake(50 * WND).await.unwrap();
    me.stake(50 * WND).await.unwrap();
    let (offer_id, r) = mb.list_offer(None, &lavapipe_offer(PRICE)).await.unwrap();
    record("list_offer", &r);
    invariant(&m).await;
    next_epoch(&m).await;
    let value = UNITS as Amount * PRICE;
    let pfee = value * 200 / 10_000;

    // ---- 1. unchecked job (rate 0), accepted first and then committed: five transactions,
    // exact payouts.
    let input = job_input(Some(offer_id), 1, 0);
    let (id, escrow) = create(&md, Some("create_job"), &input, &[1; 32]).await;
    assert_eq!(escrow, 3 * value, "value + two verifier fees (100 % of the work)");
    record("accept_job", &mb.accept_job(id).await.unwrap());
    let roots = outputs(id, 1, b"honest");
    let c = provider_commitment(id, bob.address(), &roots);
    record("commit (provider)", &mb.commit(id, c).await.unwrap());
    wait_until_past(&dave, m.job_core(id).await.unwrap().unwrap().commit_block).await;
    record("reveal_seed (unchecked)", &md.reveal_seed(id, [1; 32]).await.unwrap());
    let r = record("reveal (provider, unchecked: settles)", &provider_reveal(&mb, id, &roots).await.unwrap()).clone();
    assert!(r.events.iter().any(|e| matches!(&e.decoded, Some(Event::Job(JobEvent { kind: JobEventKind::Settled { .. }, .. })))));
    assert_eq!(m.job_core(id).await.unwrap().unwrap().state, JobState::Settled);
    assert_eq!(m.withdrawable_of(bob.address()).await.unwrap(), value - pfee);
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap(), escrow - value);
    invariant(&m).await;
    let unchecked_ids = id;

    // ---- 2. checked single task (rate 100 %): the verifier re-executes, all exact.
    let roots_next = outputs(m.job_count().await.unwrap(), 1, b"honest");
    let seed = pick_seed(m.job_count().await.unwrap(), bob.address(), &roots_next, 1, BPS, true).unwrap();
    let (id, escrow) = create(&md, None, &job_input(Some(offer_id), 1, BPS), &seed).await;
    // The provider of a direct hire commits without accepting first: one call does both.
    let roots = outputs(id, 1, b"honest");
    let c = provider_commitment(id, bob.address(), &roots);
    let r = record("commit (provider, accepting the hire)", &mb.commit(id, c).await.unwrap()).clone();
    let core = m.job_core(id).await.unwrap().unwrap();
    assert_eq!((core.state, core.commitment, core.provider), (JobState::Committed, c, bob.address()));
    assert!(core.lock > 0 && m.provider(bob.address()).await.unwrap().unwrap().locked == core.lock, "the hire's lock is held");
    let kinds: Vec<_> = r.events.iter().filter_map(|e| match &e.decoded { Some(Event::Job(j)) => Some(j.kind.clone()), _ => None }).collect();
    assert!(matches!(kinds[..], [JobEventKind::Assigned { .. }, JobEventKind::Committed { .. }]), "{kinds:?}");
    wait_until_past(&dave, m.job_core(id).await.unwrap().unwrap().commit_block).await;
    record("reveal_seed (checked: draws)", &md.reveal_seed(id, seed).await.unwrap());
    let v = drawn(&m, id).await;
    assert!(v == charlie.address() || v == eve.address(), "a snapshot provider other than Bob");
    let mv = m.with(chains[&v]);
    record("commit (verifier)", &verifier_commit(&mv, id, &roots).await.unwrap());
    wait_until_past(&dave, m.job(id).await.unwrap().unwrap().current_verifier().unwrap().committed_at).await;
    record("reveal (provider, checked)", &provider_reveal(&mb, id, &roots).await.unwrap());
    record("reveal (verifier: settles)", &verifier_reveal(&mv, id, &roots, false).await.unwrap());
    assert_eq!(m.job_core(id).await.unwrap().unwrap().state, JobState::Settled);
    let fee = value; // 100 % of one task's value
    assert_eq!(m.withdrawable_of(v).await.unwrap(), fee);
    assert_eq!(m.withdrawable_of(bob.address()).await.unwrap(), 2 * (value - pfee));
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap(), 2 * value + (escrow - value - fee));
    assert_eq!(m.provider(v).await.unwrap().unwrap().locked, 0);
    invariant(&m).await;

    // ---- 3. a batch of 100 tasks at a 10 % check rate: one lifecycle, a sample checked.
    let tasks = 100;
    let next = m.job_count().await.unwrap();
    let roots_next = outputs(next, tasks, b"honest");
    let seed = pick_seed(next, bob.address(), &roots_next, tasks, 1_000, true).unwrap();
    let w_dave = m.withdrawable_of(dave.address()).await.unwrap();
    let w_bob = m.withdrawable_of(bob.address()).await.unwrap();
    let mut batch_cost = Vec::new();
    let input = job_input(Some(offer_id), tasks, 1_000);
    let now = dave.finalized_number().await.unwrap();
    let escrow = md.required_escrow(&input, now).await.unwrap();
    let (id, r) = md.create_job(&input, seed_commitment(&seed), escrow).await.unwrap();
    batch_cost.push(cost(&r));
    let roots = outputs(id, tasks, b"honest");
    let c = provider_commitment(id, bob.address(), &roots);
    batch_cost.push(cost(&mb.commit(id, c).await.unwrap()));
    wait_until_past(&dave, m.job_core(id).await.unwrap().unwrap().commit_block).await;
    batch_cost.push(cost(&md.reveal_seed(id, seed).await.unwrap()));
    let k = m.job_core(id).await.unwrap().unwrap().sampled;
    assert!((1..40).contains(&k), "about 10 of 100 sampled: {k}");
    let v = drawn(&m, id).await;
    let mv = m.with(chains[&v]);
    batch_cost.push(cost(&verifier_commit(&mv, id, &roots).await.unwrap()));
    wait_until_past(&dave, m.job(id).await.unwrap().unwrap().current_verifier().unwrap().committed_at).await;
    let r = provider_reveal(&mb, id, &roots).await.unwrap();
    record("reveal (provider, batch of 100 with multiproof)", &r);
    batch_cost.push(cost(&r));
    batch_cost.push(cost(&verifier_reveal(&mv, id, &roots, false).await.unwrap()));
    assert_eq!(m.job_core(id).await.unwrap().unwrap().state, JobState::Settled);
    let batch_value = value * Amount::from(tasks);
    let bfee = value * Amount::from(k);
    assert_eq!(m.withdrawable_of(bob.address()).await.unwrap() - w_bob, batch_value - batch_value * 200 / 10_000);
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap() - w_dave, escrow - batch_value - bfee);
    invariant(&m).await;

    // ---- 4. a provider cheating on one task of a batch: dispute, slashed for the whole batch.
    let tasks = 8;
    let next = m.job_count().await.unwrap();
    let mut cheat_next = outputs(next, tasks, b"honest");
    cheat_next[3] = [0xBA; 32];
    let seed = pick_seed(next, bob.address(), &cheat_next, tasks, BPS, true).unwrap();
    let (id, escrow) = create(&md, None, &job_input(Some(offer_id), tasks, BPS), &seed).await;
    mb.accept_job(id).await.unwrap();
    let lock = m.job_core(id).await.unwrap().unwrap().lock;
    let honest = outputs(id, tasks, b"honest");
    let cheat = cheat_next;
    let c = provider_commitment(id, bob.address(), &cheat);
    mb.commit(id, c).await.unwrap();
    wait_until_past(&dave, m.job_core(id).await.unwrap().unwrap().commit_block).await;
    md.reveal_seed(id, seed).await.unwrap();
    let v1 = drawn(&m, id).await;
    let mv1 = m.with(chains[&v1]);
    verifier_commit(&mv1, id, &honest).await.unwrap();
    wait_until_past(&dave, m.job(id).await.unwrap().unwrap().current_verifier().unwrap().committed_at).await;
    provider_reveal(&mb, id, &cheat).await.unwrap();
    verifier_reveal(&mv1, id, &honest, false).await.unwrap();
    let core = m.job_core(id).await.unwrap().unwrap();
    assert_eq!((core.state, core.round), (JobState::VerifierCommit, 2), "a dispute");
    wait_until_past(&dave, core.draw_at.expect("a draw is due")).await;
    record("cleanup (makes the dispute's draw)", &md.cleanup(id).await.unwrap());
    let v2 = drawn(&m, id).await;
    assert!(v2 != v1 && v2 != bob.address());
    let mv2 = m.with(chains[&v2]);
    verifier_commit(&mv2, id, &honest).await.unwrap();
    wait_until_past(&dave, m.job(id).await.unwrap().unwrap().current_verifier().unwrap().committed_at).await;
    let (w1, w2) = (m.withdrawable_of(v1).await.unwrap(), m.withdrawable_of(v2).await.unwrap());
    let w_dave = m.withdrawable_of(dave.address()).await.unwrap();
    let stake_before = m.provider(bob.address()).await.unwrap().unwrap().stake;
    let r = verifier_reveal(&mv2, id, &honest, true).await.unwrap();
    record("reveal (round-2 verifier: slashes)", &r);
    assert_eq!(m.job_core(id).await.unwrap().unwrap().state, JobState::Slashed);
    let fee = value * Amount::from(tasks);
    assert_eq!(m.provider(bob.address()).await.unwrap().unwrap().stake, stake_before - lock);
    assert_eq!(m.withdrawable_of(v1).await.unwrap() - w1, fee);
    assert_eq!(m.withdrawable_of(v2).await.unwrap() - w2, fee);
    // The lock (at least both verifiers' fees) paid them; the renter gets exactly its
    // escrow back, the rest of the lock went to the treasury.
    assert!(lock >= 2 * fee);
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap() - w_dave, escrow);
    invariant(&m).await;

    // ---- 5. a provider that lets its job time out: penalty to the treasury, job re-opened.
    let (id, escrow) = create(&md, None, &job_input(Some(offer_id), 1, 1_000), &[7; 32]).await;
    mb.accept_job(id).await.unwrap();
    let core = m.job_core(id).await.unwrap().unwrap();
    let treasury = m.state().await.unwrap().totals.treasury;
    wait_until_past(&dave, core.phase_deadline).await;
    record("cleanup (commit timeout: penalty, re-open)", &md.cleanup(id).await.unwrap());
    let after = m.job_core(id).await.unwrap().unwrap();
    assert_eq!(after.state, JobState::Open);
    assert_eq!(after.escrow, escrow, "the renter's escrow stays whole");
    assert_eq!(m.state().await.unwrap().totals.treasury - treasury, econ::timeout_penalty(core.lock));
    invariant(&m).await;

    // ---- withdrawals: everyone leaves with exactly what it was credited.
    let before = bob.free_balance().await.unwrap();
    let owed = m.withdrawable_of(bob.address()).await.unwrap();
    let (amount, r) = mb.withdraw().await.unwrap();
    record("withdraw", &r);
    assert_eq!(amount, owed);
    assert_eq!(bob.free_balance().await.unwrap(), before + owed / UNITS_PER_PLANCK - r.fee);
    invariant(&m).await;

    // ---- the indexer followed this market: its rows equal the contract's state.
    indexer_agrees_with_the_contract(test, &mut node, &m).await;

    // ---- the table for BENCHMARKS.md.
    let gas = GAS.lock().unwrap().clone();
    println!("\n| message | ref_time | proof_size (B) | storage deposit (plancks) | fee (plancks) |\n|---|---|---|---|---|");
    for (label, (rt, ps, dep, fee)) in &gas {
        println!("| {label} | {rt} | {ps} | {dep} | {fee} |");
    }
    let sum = |labels: &[&str]| labels.iter().fold((0u64, 0u64, 0u128), |(a, b, c), l| {
        let (rt, ps, _, fee) = gas[l];
        (a + rt, b + ps, c + fee)
    });
    // A worker commits to a direct hire as it accepts it (four calls unchecked); accepting
    // first (a provider driving the contract by hand) is the five-call path beside it.
    let accepting = "commit (provider, accepting the hire)";
    let unchecked = sum(&["create_job", accepting, "reveal_seed (unchecked)", "reveal (provider, unchecked: settles)"]);
    let unchecked_two_step = sum(&["create_job", "accept_job", "commit (provider)", "reveal_seed (unchecked)", "reveal (provider, unchecked: settles)"]);
    let checked = sum(&["create_job", accepting, "reveal_seed (checked: draws)", "commit (verifier)", "reveal (provider, checked)", "reveal (verifier: settles)"]);
    let batch = batch_cost.iter().fold((0u64, 0u64, 0u128), |(a, b, c), (rt, ps, _, fee)| (a + rt, b + ps, c + fee));
    println!("\n| lifecycle (sum of its transactions) | ref_time | proof_size | fees | fee per task |\n|---|---|---|---|---|");
    for (name, (rt, ps, fee), n) in [
        ("unchecked single task", unchecked, 1u128),
        ("unchecked single task, accepted first", unchecked_two_step, 1),
        ("checked single task", checked, 1),
        (&*format!("batch of 100, 10 % rate ({k} sampled)"), batch, 100),
    ] {
        println!("| {name} | {:.1} G | {:.2} MB | {:.4} WND | {:.5} WND |", rt as f64 / 1e9, ps as f64 / 1e6, fee as f64 / 1e12, fee as f64 / 1e12 / n as f64);
    }
    // The runtime's normal-class proof-size limit (`System::BlockWeights`, 75 % of the
    // 10 MiB block; `capacloud-market-bench` reads it from the chain).
    let per_block = |ps: u64| 7_864_320.0 / ps as f64;
    println!(
        "\nblock capacity (proof size, normal class 7.5 MiB): {:.1} unchecked single-task lifecycles, {:.1} checked, {:.1} batches of 100 = {:.0} tasks",
        per_block(unchecked.1),
        per_block(checked.1),
        per_block(batch.1),
        per_block(batch.1) * 100.0
    );
    println!("contract code: {} bytes", art.code.len());
    // Every call carries the code in its proof: a build without the Makefile's unaligned-access
    // flag (scripts/contract-rustc.sh) is about 80 KB and costs every message ~23 KB more.
    assert!(art.code.len() <= CODE_BUDGET, "contract code {} B is over its {CODE_BUDGET} B budget: built without `make contract`?", art.code.len());
    let _ = unchecked_ids;
}

/// The contract's code size budget (bytes of PolkaVM): BENCHMARKS.md has the measured size.
const CODE_BUDGET: usize = 60_000;

/// The two adversaries of the spec on a real node: a renter that withholds its inputs
/// (the provider reports, a drawn verifier confirms, the renter pays those who tried and
/// nobody is slashed), and a Sybil that piles up stake between commitments and their draws
/// (never drawn: draws read the stake of the epoch's snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversaries_gain_nothing_on_a_real_node() {
    let test = "adversaries_gain_nothing_on_a_real_node";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let url = node.url();
    let [alice, bob, charlie, dave, eve, ferdie] = capacloud_tests::dev_chains(&url).await;
    let chains: BTreeMap<H160, &Chain> = [(charlie.address(), &charlie), (eve.address(), &eve), (ferdie.address(), &ferdie)].into();
    let m = deploy_fast(&alice, &art.code, 6, 6).await;
    let (mb, mc, md, me, mf) = (m.with(&bob), m.with(&charlie), m.with(&dave), m.with(&eve), m.with(&ferdie));
    mb.stake(100 * WND).await.unwrap();
    mc.stake(50 * WND).await.unwrap();
    me.stake(50 * WND).await.unwrap();
    let (offer_id, _) = mb.list_offer(None, &lavapipe_offer(PRICE)).await.unwrap();
    next_epoch(&m).await;

    // ---- a griefing renter withholds its inputs.
    let (id, escrow) = create(&md, None, &job_input(Some(offer_id), 1, 1_000), &[3; 32]).await;
    mb.accept_job(id).await.unwrap();
    let bob_stake = m.provider(bob.address()).await.unwrap().unwrap().stake;
    let r = mb.report(id, false).await.unwrap();
    record("report (provider: inputs unavailable)", &r);
    let core = m.job_core(id).await.unwrap().unwrap();
    assert_eq!(core.state, JobState::InputCheck);
    wait_until_past(&dave, core.draw_at.unwrap()).await;
    record("cleanup (makes the availability draw)", &md.cleanup(id).await.unwrap());
    let v = drawn(&m, id).await;
    assert!(v == charlie.address() || v == eve.address(), "a snapshot provider other than Bob");
    let r = m.with(chains[&v]).report(id, false).await.unwrap();
    record("report (verifier: confirms unavailable)", &r);
    assert_eq!(m.job_core(id).await.unwrap().unwrap().state, JobState::Unavailable);
    let fee = econ::availability_fee(UNITS as Amount * PRICE, 10_000);
    assert_eq!(m.withdrawable_of(bob.address()).await.unwrap(), fee, "the provider is paid for trying");
    assert_eq!(m.withdrawable_of(v).await.unwrap(), fee);
    assert_eq!(m.withdrawable_of(dave.address()).await.unwrap(), escrow - 2 * fee, "the renter pays, gains nothing");
    assert_eq!(m.provider(bob.address()).await.unwrap().unwrap().stake, bob_stake, "nobody slashed");
    invariant(&m).await;

    // ---- a Sybil steering the draw: after each commitment it piles up stake (and takes it
    // out again after the draw), 100 times all the snapshot's stake, yet it is never drawn:
    // draws read the stake of the epoch's snapshot, which it is not in.
    let epoch = m.state().await.unwrap().epoch_blocks;
    for round in 0..4u8 {
        // Rounds stay inside one epoch, so the Sybil's stake is never in a snapshot.
        let now = dave.finalized_number().await.unwrap();
        if now % epoch > epoch - 15 {
            next_epoch(&m).await;
        }
        let next = m.job_count().await.unwrap();
        let roots = outputs(next, 1, b"honest");
        let seed = pick_seed(next, bob.address(), &roots, 1, BPS, true).unwrap();
        let (id, _) = create(&md, None, &job_input(Some(offer_id), 1, BPS), &seed).await;
        mb.accept_job(id).await.unwrap();
        let c = provider_commitment(id, bob.address(), &roots);
        mb.commit(id, c).await.unwrap();
        mf.stake(10_000 * WND).await.unwrap();
        wait_until_past(&dave, m.job_core(id).await.unwrap().unwrap().commit_block).await;
        md.reveal_seed(id, seed).await.unwrap();
        let v = drawn(&m, id).await;
        mf.unstake(10_000 * WND).await.unwrap();
        println!("steering round {round}: drawn {v:?} (Sybil {:?})", ferdie.address());
        let mv = m.with(chains[&v]);
        verifier_commit(&mv, id, &roots).await.unwrap();
        wait_until_past(&dave, m.job(id).await.unwrap().unwrap().current_verifier().unwrap().committed_at).await;
        provider_reveal(&mb, id, &roots).await.unwrap();
        verifier_reveal(&mv, id, &roots, false).await.unwrap();
        assert_eq!(m.job_core(id).await.unwrap().unwrap().state, JobState::Settled);
        // With live weights the Sybil would hold 10,000 of 10,100 WND and be drawn 99 % of
        // the time; the snapshot gives it nothing.
        assert_ne!(v, ferdie.address(), "round {round}: the Sybil's late stake was counted");
        invariant(&m).await;
    }

    // The indexer replays this market too (availability checks, unstaking): same state.
    let dir = tempfile::tempdir().unwrap();
    let store = capacloud_indexer::store::Store::open(&format!("sqlite://{}", dir.path().join("i.sqlite").display())).await.unwrap();
    let reader = capacloud_client::chain::Reader::connect(&url).await.unwrap();
    let opts = capacloud_indexer::ingest::Options { contract: m.address(), from_block: None, batch_blocks: 64, poll: std::time::Duration::from_secs(1), progress_bar: false };
    let mut ix = capacloud_indexer::ingest::Indexer::start(reader, store.clone(), opts, Default::default()).await.unwrap();
    let first = ix.next_block();
    let head = ix.sync_to(u32::MAX).await.unwrap();
    check_store(&m, &store, first, head).await;
}

/// The indexer over the market `m` built: stopped half-way and resumed (in-process, on
/// SQLite and on PostgreSQL), and as the `capacloud-indexer` process killed with SIGKILL
/// mid-backfill and mid-follow and restarted, with the node restarted under it; every store
/// holds exactly the chain's events, its job states, offers, stakes, reputations and
/// withdrawable balances equal the contract's, a database of another chain, contract or
/// history is refused, the CLI reads the same rows from it as from the chain, and a headless
/// browser shows the dashboard.
async fn indexer_agrees_with_the_contract(test: &str, node: &mut TestNode, m: &Marketplace<'_>) {
    let url = &node.url();
    use capacloud_client::chain::Reader;
    use capacloud_indexer::ingest::{Indexer, Options, Progress};
    use capacloud_indexer::store::Store;
    use std::sync::Arc;

    let head = m.chain().finalized_number().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pg = capacloud_tests::PgServer::start(test);
    let mut dbs = vec![format!("sqlite://{}", dir.path().join("in-process.sqlite").display())];
    if let Some(pg) = &pg {
        dbs.push(pg.database("market"));
    }
    let reader = Reader::connect(url).await.unwrap();
    let opts = Options { contract: m.address(), from_block: None, batch_blocks: 16, poll: std::time::Duration::from_secs(1), progress_bar: false };
    let mut first = 0;
    for db in &dbs {
        let store = Store::open(db).await.unwrap();
        let mut ix = Indexer::start(reader.clone(), store.clone(), opts.clone(), Arc::new(Progress::default())).await.unwrap();
        first = ix.next_block();
        assert!(first > 0 && first < head, "the deployment block is found by bisection: {first}");
        ix.sync_to(first + (head - first) / 2).await.unwrap();
        drop(ix);
        let mut ix = Indexer::start(reader.clone(), store.clone(), opts.clone(), Arc::new(Progress::default())).await.unwrap();
        assert_eq!(ix.sync_to(head).await.unwrap(), head);
        check_store(m, &store, first, head).await;
    }

    // The binary, killed mid-backfill (2-block batches) and restarted on its database.
    let db = format!("sqlite://{}", dir.path().join("process.sqlite").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = dir.path().join("indexer.log");
    let spawn = || {
        let err = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        capacloud_tests::ChildGuard::spawn(
            std::process::Command::new(capacloud_tests::built_binary("capacloud-indexer"))
                .args(["--database-url", &db, "run", "--url", url, "--contract", &format!("{:?}", m.address())])
                .args(["--batch-blocks", "2", "--poll-secs", "0.2", "--listen", &format!("127.0.0.1:{port}")])
                .stdout(std::process::Stdio::null())
                .stderr(err),
        )
        .unwrap()
    };
    let log_tail = || std::fs::read_to_string(&log).unwrap_or_default().lines().rev().take(20).collect::<Vec<_>>().join("\n");
    let base = format!("http://127.0.0.1:{port}");
    let wait_ready = |what: &'static str| {
        let base = base.clone();
        let log_tail = &log_tail;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
            loop {
                assert!(std::time::Instant::now() < deadline, "{what}: the indexer never became ready: {}", log_tail());
                if let Ok(r) = reqwest::get(format!("{base}/ready")).await {
                    if r.status().is_success() {
                        return;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    let mut child = spawn();
    // Its API answers once its database is migrated; then read the database beside it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while reqwest::get(format!("{base}/health")).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the indexer never served: {}", log_tail());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let store = Store::open(&db).await.unwrap();
    while store.cursor().await.unwrap().is_none_or(|c| c.block_number < first + 6) {
        assert!(std::time::Instant::now() < deadline, "the indexer made no progress: {}", log_tail());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill();
    let killed_at = store.cursor().await.unwrap().unwrap().block_number;
    println!("indexer killed at block {killed_at} (deployed at {first}, head {head})");
    assert!(killed_at < head, "killed mid-backfill");
    let mut child = spawn();
    wait_ready("restarted mid-backfill").await;
    let now = store.cursor().await.unwrap().unwrap().block_number;
    check_store(m, &store, first, now).await;

    // The dashboard, read by a headless browser.
    if let Some(dom) = capacloud_tests::browser_dom(test, &format!("{base}/")) {
        let jobs = m.job_count().await.unwrap();
        assert_eq!(dom.matches("data-job-id=").count() as u64, jobs.min(50), "every job is listed");
        assert!(dom.contains("data-state=\"Settled\""), "a settled job is shown");
        assert!(dom.contains("data-state=\"Slashed\""), "the slashed job is shown");
        let slashed_row = dom.split("<tr ").find(|r| r.contains("data-account=") && r.contains("class=\"slashed\""));
        assert!(slashed_row.is_some(), "the slashed provider is marked in the leaderboard");
        let points = store.prices(None, None).await.unwrap().len();
        assert!(points > 0);
        assert_eq!(dom.matches("class=\"price-point\"").count(), points, "one chart point per price-index event");
        let offers = store.offers(None, false).await.unwrap();
        for o in &offers {
            assert!(dom.contains(&format!("data-offer-id=\"{}\"", o.row.offer_id)));
        }
        let html = reqwest::get(format!("{base}/")).await.unwrap().text().await.unwrap();
        std::fs::write(std::env::temp_dir().join("capacloud-dashboard.html"), html).unwrap();
    }
    // The CLI reads the same market from the indexer as from the chain.
    let cli = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(capacloud_tests::built_binary("capacloud"))
            .args(["--json", "--url", url])
            .args(args)
            .env("CAPACLOUD_CONTRACT", format!("{:?}", m.address()))
            .output()
            .unwrap();
        assert!(out.status.success(), "capacloud {args:?}: {}\nindexer log:\n{}", String::from_utf8_lossy(&out.stderr), log_tail());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let indexer_arg = base.as_str();
    assert_eq!(cli(&["--indexer", indexer_arg, "offers"]), cli(&["offers"]), "offers (with reputation) agree");
    let pick = |v: serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value, serde_json::Value)> {
        v["jobs"].as_array().unwrap().iter().map(|j| (j["job_id"].clone(), j["state"].clone(), j["tasks"].clone())).collect()
    };
    assert_eq!(pick(cli(&["--indexer", indexer_arg, "job", "list"])), pick(cli(&["job", "list"])));
    let (from_indexer, from_chain) = (cli(&["--indexer", indexer_arg, "summary"]), cli(&["summary"]));
    assert_eq!(from_indexer["summary"]["jobs"], from_chain["summary"]["jobs"], "one fold, two sources");
    assert_eq!(from_indexer["summary"]["providers"], from_chain["summary"]["providers"], "providers' stake, reputation, earnings and withdrawable agree");
    let bad = std::process::Command::new(capacloud_tests::built_binary("capacloud")).args(["--indexer", "ftp://x", "offers", "--contract", "0x00"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad indexer URL is bad input");

    // Killed while following, restarted, and the node restarted under it: it reconnects,
    // catches up, and still holds exactly the chain's events.
    child.kill();
    let mut child = spawn();
    wait_ready("restarted mid-follow").await;
    let before = store.cursor().await.unwrap().unwrap().block_number;
    node.restart().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        let st: serde_json::Value = match reqwest::get(format!("{base}/status")).await {
            Ok(r) => serde_json::from_str(&r.text().await.unwrap()).unwrap(),
            Err(e) => panic!("the indexer's API died with the node: {e}"),
        };
        if st["indexed_block"].as_i64().unwrap() > i64::from(before) + 3 && st["lag"].as_i64().unwrap() <= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the indexer did not catch up after the node restart: {}", log_tail());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let now = store.cursor().await.unwrap().unwrap().block_number;
    check_store(m, &store, first, now).await;
    child.kill();

    // A database of another history, contract or chain is refused, never "repaired".
    let reader = Reader::connect(url).await.unwrap();
    for (n, (genesis, contract, hash)) in [
        (reader.genesis_hash(), m.address(), subxt::utils::H256::repeat_byte(1)),
        (reader.genesis_hash(), H160::repeat_byte(9), reader.block_hash(first).await.unwrap().unwrap()),
        (subxt::utils::H256::repeat_byte(2), m.address(), reader.block_hash(first).await.unwrap().unwrap()),
    ]
    .into_iter()
    .enumerate()
    {
        let other = Store::open(&format!("sqlite://{}", dir.path().join(format!("other-{n}.sqlite")).display())).await.unwrap();
        let cursor = capacloud_indexer::store::Cursor { genesis_hash: genesis, contract, first_block: first, block_number: first, block_hash: hash };
        other.commit_batch(&[], &Default::default(), &Default::default(), &cursor).await.unwrap();
        let refused = Indexer::start(reader.clone(), other, opts.clone(), Arc::new(Progress::default())).await.err().expect("refused");
        let expected = ["HashMismatch", "WrongContract", "WrongChain"][n];
        assert!(format!("{refused:?}").starts_with(expected), "{refused:?}");
    }
}

/// `store` holds exactly the contract's events of blocks `first..=to`, and its job
/// states, offers and stakes equal what the contract says now.
async fn check_store(m: &Marketplace<'_>, store: &capacloud_indexer::store::Store, first: u32, to: u32) {
    use capacloud_indexer::store::JobFilter;
    let direct = m.chain().contract_events_in(m.address(), first, to).await.unwrap();
    let stored = store.raw_events().await.unwrap();
    assert_eq!(stored.len(), direct.len(), "no event lost or doubled");
    for (s, (block, d)) in stored.iter().zip(&direct) {
        assert_eq!((s.block_number, &s.topics, &s.data), (*block, &d.topics, &d.data));
    }
    assert_eq!(stored.iter().filter(|e| e.decode().is_none()).count(), 0);
    let jobs = store.jobs(&JobFilter { limit: 500, ..Default::default() }).await.unwrap();
    assert_eq!(jobs.len() as u64, m.job_count().await.unwrap());
    for j in &jobs {
        let core = m.job_core(j.row.job_id).await.unwrap().unwrap();
        assert_eq!(j.row.state, Some(core.state), "job {}", j.row.job_id);
        assert_eq!(j.row.escrow.max(core.escrow), j.row.escrow, "job {}: the created escrow bounds what is left", j.row.job_id);
    }
    let offers = store.offers(None, true).await.unwrap();
    assert!(!offers.is_empty());
    for o in &offers {
        let on = m.offer(o.row.offer_id).await.unwrap().unwrap();
        assert_eq!((o.row.provider, o.row.gpu_class, o.row.active, o.row.price_per_unit), (on.provider, on.gpu_class, on.active, on.input.price_per_unit));
    }
    for a in store.accounts().await.unwrap() {
        assert_eq!(a.withdrawable, m.withdrawable_of(a.account).await.unwrap(), "withdrawable of {:?}, replayed from the events", a.account);
        if let Some(p) = m.provider(a.account).await.unwrap() {
            assert_eq!(a.stake, p.stake, "stake of {:?}", a.account);
            assert_eq!(a.reputation, p.reputation, "reputation of {:?}, replayed from the events", a.account);
        }
    }
}

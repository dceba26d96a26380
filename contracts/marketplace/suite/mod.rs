//! The contract's test suite, on ink!'s off-chain engine: every message and error
//! (`unit`), each adversary rule of the spec as a scenario (`rules`), random sequences with
//! random parameters and adversaries (`property`), the adversarial market simulation with
//! its strategy table (`sim`), and the statistics of the verifier draw (`draw`).
//!
//! [`ghost_check`] runs after every step of every money test: it re-adds every account's
//! and every job's own figures and compares them with the contract's totals, the balance,
//! the locks and the sampling tree (so a bug that keeps the totals consistent but moves
//! one party's money to another cannot hide).
use crate::marketplace::{Marketplace, Result};
use capacloud_types::hash::{HostSha256 as H, Sha256};
use capacloud_types::*;
use ink::env::test;
use ink::primitives::U256;
use std::collections::BTreeMap;

mod draw;
mod property;
mod rules;
mod sim;
mod unit;

pub type E = crate::CapaEnv;
pub const WND: Amount = UNITS_PER_WND;
/// A price per work unit in the tests (1 mWND).
pub const PRICE: Amount = WND / 1_000;
/// The stake-snapshot epoch of the test markets.
pub const EPOCH: u32 = 100;

pub fn alice() -> Address {
    test::default_accounts().alice
}
pub fn bob() -> Address {
    test::default_accounts().bob
}
pub fn charlie() -> Address {
    test::default_accounts().charlie
}
pub fn django() -> Address {
    test::default_accounts().django
}
pub fn eve() -> Address {
    test::default_accounts().eve
}
pub fn frank() -> Address {
    test::default_accounts().frank
}
/// Extra accounts (Sybils, crowds) for the simulations.
pub fn acct(n: u16) -> Address {
    let mut a = [0xA0u8; 20];
    a[..2].copy_from_slice(&n.to_le_bytes());
    Address::from(a)
}

/// Short windows keep the tests readable: accept/bid/reveal 3 blocks, cooldown 5.
pub fn test_params() -> Params {
    Params { accept_window: 3, bid_window: 3, reveal_window: 3, unstake_cooldown: 5, ..Params::default() }
}

/// A fresh marketplace (in the current engine) with Alice as admin and [`test_params`], and
/// plenty of funds for every account in `funded`.
pub fn fresh_with(funded: &[Address]) -> Marketplace {
    // Each market of a test at its own address (storage is per address).
    thread_local! { static N: std::cell::Cell<u32> = const { std::cell::Cell::new(0) }; }
    let n = N.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let mut bytes = [0xCC; 20];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    let addr = Address::from(bytes);
    for a in funded.iter().chain([alice(), bob(), charlie(), django(), eve(), frank()].iter()) {
        test::set_contract_balance(*a, U256::from(u128::MAX / 64));
    }
    test::set_callee(addr);
    test::set_contract_balance(addr, U256::zero());
    as_(alice());
    Marketplace::new(EPOCH, 0, test_params()).expect("valid parameters")
}

pub fn fresh() -> Marketplace {
    fresh_with(&[])
}

pub fn as_(who: Address) {
    test::set_caller(who);
    test::set_value_transferred(U256::zero());
}

pub fn advance(blocks: u32) {
    for _ in 0..blocks {
        test::advance_block::<E>();
    }
}

pub fn now() -> BlockNumber {
    ink::env::block_number::<E>()
}

pub fn balance_of(a: Address) -> Amount {
    test::get_contract_balance::<E>(a).unwrap().try_into().unwrap()
}

/// Calls a payable message; on `Err` undoes the value transfer, as the chain's revert would.
pub fn paid<T>(who: Address, value: Amount, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let caller_before = test::get_contract_balance::<E>(who).unwrap();
    let contract_before = test::get_contract_balance::<E>(test::callee()).unwrap();
    test::set_caller(who);
    test::transfer_in(U256::from(value));
    let r = f();
    if r.is_err() {
        test::set_contract_balance(who, caller_before);
        test::set_contract_balance(test::callee(), contract_before);
    }
    r
}

pub fn sha(parts: &[&[u8]]) -> Hash32 {
    H::hash(parts)
}

// ------------------------------------------------------------------ market helpers

pub fn register(m: &mut Marketplace, who: Address, stake: Amount) {
    paid(who, stake, || m.stake()).unwrap();
}

pub fn offer_input(price: Amount, score: u32) -> OfferInput {
    let info = OfferInfo {
        gpu_vendor: "NVIDIA".into(),
        gpu_model: "H100".into(),
        backend: "Vulkan".into(),
        endpoint: "http://gpu.example:8800".into(),
    };
    OfferInput { price_per_unit: price, max_units: 1_000_000, vram_mib: 80_000, benchmark_score: score, info: ink::scale::Encode::encode(&info) }
}

pub fn list(m: &mut Marketplace, who: Address, price: Amount) -> u64 {
    as_(who);
    m.list_offer(None, offer_input(price, 1_000)).unwrap()
}

pub fn job_input(offer: Option<u64>, tasks: u32, units: u64, rate: u16) -> JobInput {
    JobInput {
        spec_hash: [7; 32],
        manifest_hash: if tasks > 1 { [8; 32] } else { [0; 32] },
        uri: b"http://renter.example/blobs".to_vec(),
        tasks,
        units_per_task: units,
        max_price_per_unit: 2 * PRICE,
        requirements: Requirements::default(),
        compute_blocks: 5,
        check_rate_bps: rate,
        pay_if_unverified: false,
        offer_id: offer,
    }
}

pub fn escrow_of(m: &Marketplace, input: &JobInput) -> Amount {
    let p = m.state().params_at(now());
    econ::escrow_for(input.tasks, input.units_per_task, input.max_price_per_unit, p.verifier_fee_bps).unwrap()
}

/// The renter's secret seed for a job (tests pick it by index).
pub fn seed(i: u8) -> Hash32 {
    [i; 32]
}

pub fn create(m: &mut Marketplace, renter: Address, input: JobInput, seed: &Hash32) -> u64 {
    let escrow = escrow_of(m, &input);
    paid(renter, escrow, || m.create_job(input, hash::seed_commitment::<H>(seed))).unwrap()
}

/// What a party computed for a job: one output root per task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outputs {
    pub roots: Vec<Hash32>,
}

impl Outputs {
    /// The true outputs of job `job` (what every honest party computes).
    pub fn honest(job: u64, tasks: u32) -> Self {
        Self { roots: (0..tasks).map(|i| sha(&[b"out", &job.to_le_bytes(), &i.to_le_bytes()])).collect() }
    }
    /// Made-up outputs (`tag` distinguishes liars).
    pub fn fake(job: u64, tasks: u32, tag: u8) -> Self {
        Self { roots: (0..tasks).map(|i| sha(&[b"fake", &[tag], &job.to_le_bytes(), &i.to_le_bytes()])).collect() }
    }
    /// Honest except task `bad`.
    pub fn one_wrong(job: u64, tasks: u32, bad: u32) -> Self {
        let mut o = Self::honest(job, tasks);
        o.roots[bad as usize] = sha(&[b"skipped", &job.to_le_bytes()]);
        o
    }
    pub fn leaves(&self) -> Vec<Hash32> {
        self.roots.iter().enumerate().map(|(i, r)| merkle::task_leaf::<H>(i as u32, r)).collect()
    }
    pub fn batch_root(&self) -> Hash32 {
        merkle::root::<H>(&self.leaves())
    }
    /// This party's answer over the job's sample.
    pub fn answer(&self, job: u64, sample: &[u32]) -> Hash32 {
        let l = self.leaves();
        sample::answer::<H>(job, &sample.iter().map(|&i| l[i as usize]).collect::<Vec<_>>())
    }
    pub fn sampled_roots(&self, sample: &[u32]) -> Vec<Hash32> {
        sample.iter().map(|&i| self.roots[i as usize]).collect()
    }
}

pub fn salt_of(who: Address, job: u64) -> Hash32 {
    sha(&[b"salt", who.as_bytes(), &job.to_le_bytes()])
}

/// The sample the contract drew for a decided job.
pub fn sample_of(m: &Marketplace, job: u64) -> Vec<u32> {
    let c = m.job(job).unwrap().core;
    sample::sampled::<H>(&c.check_seed, c.tasks, c.check_rate_bps, !c.seed_revealed)
}

pub fn provider_commit(m: &mut Marketplace, job: u64, who: Address, out: &Outputs) -> Result<()> {
    as_(who);
    m.commit(job, hash::provider_commitment::<H>(job, who, &out.batch_root(), &salt_of(who, job)))
}

pub fn provider_reveal(m: &mut Marketplace, job: u64, who: Address, out: &Outputs) -> Result<()> {
    let c = m.job(job).unwrap().core;
    let (leaves, proof) = if c.checked() {
        let s = sample_of(m, job);
        let all = out.leaves();
        (s.iter().map(|&i| all[i as usize]).collect(), merkle::multiproof::<H>(&all, &s).unwrap())
    } else {
        (vec![], vec![])
    };
    as_(who);
    m.reveal(job, salt_of(who, job), Reveal::Provider { batch_root: out.batch_root(), leaves, proof })
}

pub fn verifier_commit(m: &mut Marketplace, job: u64, who: Address, out: &Outputs) -> Result<()> {
    let a = out.answer(job, &sample_of(m, job));
    as_(who);
    m.commit(job, hash::verifier_commitment::<H>(job, who, &a, &salt_of(who, job)))
}

pub fn verifier_reveal(m: &mut Marketplace, job: u64, who: Address, out: &Outputs, with_roots: bool) -> Result<()> {
    let s = sample_of(m, job);
    let roots = if with_roots { out.sampled_roots(&s) } else { vec![] };
    as_(who);
    m.reveal(job, salt_of(who, job), Reveal::Verifier { answer: out.answer(job, &s), roots })
}

pub fn reveal_seed(m: &mut Marketplace, job: u64, renter: Address, s: &Hash32) -> Result<()> {
    as_(renter);
    m.reveal_seed(job, *s)
}

pub fn cleanup(m: &mut Marketplace, job: u64) -> Result<()> {
    as_(frank());
    m.cleanup(job)
}

pub fn state(m: &Marketplace, job: u64) -> JobState {
    m.job(job).unwrap().core.state
}

/// The current round's drawn verifier.
pub fn verifier(m: &Marketplace, job: u64) -> Option<Address> {
    m.job(job).unwrap().current_verifier().map(|v| v.account)
}

/// A renter seed for the *next* job to be created, which `provider` will commit to `out`
/// for: the seed whose sample of `tasks` tasks at `rate` is non-empty (`checked`) or empty.
/// (Tests pick a decision this way; the simulations use random seeds.)
pub fn pick_seed(m: &Marketplace, provider: Address, out_of: impl Fn(u64) -> Outputs, tasks: u32, rate: u16, checked: bool) -> Hash32 {
    let id = m.state().job_count;
    let out = out_of(id);
    let c = hash::provider_commitment::<H>(id, provider, &out.batch_root(), &salt_of(provider, id));
    (0u8..=255)
        .map(seed)
        .find(|s| sample::sampled::<H>(&sample::check_seed::<H>(s, &c), tasks, rate, false).is_empty() != checked)
        .expect("a seed with the wanted decision")
}

// ------------------------------------------------------------------ events

/// A decoded contract event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Job(JobEvent),
    Verifier(VerifierEvent),
    Account(AccountEvent),
    Market(MarketEvent),
}

fn signature_topic(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    ink::env::hash_bytes::<ink::env::hash::Blake2x256>(s.as_bytes(), &mut out);
    out
}

/// Every event emitted in this engine so far, decoded with the shared types (which also
/// checks the signatures the types crate names).
pub fn events() -> Vec<Ev> {
    use ink::scale::Decode;
    let (job, ver, acc, mkt) = (
        signature_topic(events::signature::JOB),
        signature_topic(events::signature::VERIFIER),
        signature_topic(events::signature::ACCOUNT),
        signature_topic(events::signature::MARKET),
    );
    test::recorded_events()
        .into_iter()
        .map(|e| {
            let t = e.topics[0];
            let d = &mut &e.data[..];
            let ev = if t == job {
                Ev::Job(JobEvent::decode(d).unwrap())
            } else if t == ver {
                Ev::Verifier(VerifierEvent::decode(d).unwrap())
            } else if t == acc {
                Ev::Account(AccountEvent::decode(d).unwrap())
            } else if t == mkt {
                Ev::Market(MarketEvent::decode(d).unwrap())
            } else {
                panic!("unknown event topic {t:?}")
            };
            assert!(d.is_empty(), "event has trailing bytes");
            assert!(e.data.len() + 32 * e.topics.len() <= PAYLOAD_BYTES, "event over pallet-revive's limit: {ev:?}");
            ev
        })
        .collect()
}

/// The kinds of job `id`'s events, in order.
pub fn job_kinds(id: u64) -> Vec<JobEventKind> {
    events().into_iter().filter_map(|e| if let Ev::Job(j) = e { (j.job_id == id).then_some(j.kind) } else { None }).collect()
}

pub fn verifier_kinds(id: u64, who: Address) -> Vec<VerifierEventKind> {
    events()
        .into_iter()
        .filter_map(|e| if let Ev::Verifier(v) = e { (v.job_id == id && v.verifier == who).then_some(v.kind) } else { None })
        .collect()
}

// ------------------------------------------------------------------ the ghost accounting

/// Re-adds every account's and job's own figures and compares them with the contract's:
/// - balance = escrow + stakes + withdrawable + treasury (the money invariant);
/// - Σ (stake + unbonding) over accounts = stakes total; Σ open escrows = escrow total;
///   Σ withdrawable = withdrawable total;
/// - each provider's `locked` = Σ locks of its live jobs (best bids included) + Σ bonds of
///   its live verifier duties, and `locked ≤ stake`;
/// - the sampling tree's weight of each slot = its provider's stake weight, and the
///   root = their sum; every slot is owned by the provider that holds it;
/// - ended jobs hold no escrow and no lock.
///
/// `accounts` must list every account that ever touched the market.
pub fn ghost_check(m: &Marketplace, accounts: &[Address]) {
    let st = m.state();
    let t = st.totals;
    assert_eq!(m.contract_balance(), t.total(), "balance != escrow + stakes + withdrawable + treasury");
    let mut stakes = 0;
    let mut withdrawable = 0;
    let mut weights = 0u64;
    let mut locked: BTreeMap<Address, Amount> = BTreeMap::new();
    let mut escrow = 0;
    for id in 0..st.job_count {
        let j = m.job(id).unwrap();
        let c = &j.core;
        if c.state.is_terminal() {
            assert_eq!(c.escrow, 0, "ended job {id} holds escrow");
            assert_eq!(c.lock, 0, "ended job {id} holds a lock");
            continue;
        }
        escrow += c.escrow;
        if c.has_provider() {
            *locked.entry(c.provider).or_default() += c.lock;
        } else {
            assert_eq!(c.lock, 0, "job {id} locks stake of nobody");
        }
        for v in j.verifiers.iter().flatten() {
            *locked.entry(v.account).or_default() += v.bond;
        }
    }
    let epoch_after = econ::epoch(now(), st.epoch_blocks) + 1;
    let mut slots_seen = 0;
    for a in accounts {
        withdrawable += m.withdrawable_of(*a);
        if let Some(p) = m.provider(*a) {
            stakes += p.stake + p.unbonding;
            assert_eq!(p.locked, locked.get(a).copied().unwrap_or(0), "locked of {a:?}");
            assert!(p.locked <= p.stake, "{a:?} locks more than its stake");
            if p.slot != 0 {
                slots_seen += 1;
                assert_eq!(m.slot_owner(p.slot), *a, "slot {} owner", p.slot);
                let (w, _) = m.weights_at(p.slot, epoch_after);
                assert_eq!(w, Some(econ::weight(p.stake)), "tree weight of {a:?}");
                weights += econ::weight(p.stake);
            } else {
                assert_eq!(p.stake, 0, "{a:?} has stake without a slot");
            }
        } else {
            assert!(!locked.contains_key(a), "{a:?} locked without a record");
        }
    }
    assert_eq!(stakes, t.stakes, "Σ stake + unbonding != stakes total");
    assert_eq!(withdrawable, t.withdrawable, "Σ withdrawable != withdrawable total");
    assert_eq!(escrow, t.escrow, "Σ open escrows != escrow total");
    assert_eq!(slots_seen, st.providers, "providers holding slots");
    if st.slots_used > 0 {
        let (_, total) = m.weights_at(1, epoch_after);
        assert_eq!(total, Some(weights), "tree total != Σ eligible stake");
    }
}

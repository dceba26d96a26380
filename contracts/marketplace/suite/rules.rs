//! Each rule of the spec's "Adversaries and the rules that answer them (v2)" as a scenario
//! that shows the attacker gains nothing and honest parties lose nothing, to the unit.
use super::*;
use crate::marketplace::Marketplace;

fn everyone() -> Vec<Address> {
    vec![alice(), bob(), charlie(), django(), eve(), frank()]
}

/// Bob (offer 0), Charlie (offer 1) and Eve (offer 2) at `PRICE` with 20 WND staked one
/// epoch ago; Django rents.
fn market() -> Marketplace {
    let mut m = fresh();
    for p in [bob(), charlie(), eve()] {
        register(&mut m, p, 20 * WND);
        list(&mut m, p, PRICE);
    }
    advance(EPOCH);
    m
}

/// A direct hire of Bob (offer 0): `tasks` tasks of `1000 / tasks` units (1 WND of work at
/// `PRICE`), accepted.
fn hired(m: &mut Marketplace, tasks: u32, rate: u16, seed: &Hash32) -> u64 {
    let id = create(m, django(), job_input(Some(0), tasks, 1_000 / u64::from(tasks), rate), seed);
    as_(bob());
    m.accept_job(id).unwrap();
    id
}

/// Commits `out` for Bob, then the renter reveals `seed` a block later.
fn commit_and_reveal(m: &mut Marketplace, id: u64, out: &Outputs, seed: &Hash32) {
    provider_commit(m, id, bob(), out).unwrap();
    advance(1);
    reveal_seed(m, id, django(), seed).unwrap();
}

fn treasury(m: &Marketplace) -> Amount {
    m.state().totals.treasury
}

#[ink::test]
fn a_commit_timeout_pays_the_treasury_not_the_renter_and_reopens_the_job_once() {
    let mut m = market();
    let escrow = 6 * WND;
    let id = hired(&mut m, 1, 1_000, &seed(1));
    let lock = m.job(id).unwrap().core.lock;
    advance(6);
    cleanup(&mut m, id).unwrap();
    let penalty = econ::timeout_penalty(lock);
    assert_eq!(treasury(&m), penalty);
    assert_eq!(m.provider(bob()).unwrap().stake, 20 * WND - penalty);
    assert_eq!(m.withdrawable_of(django()), 0, "the renter gains nothing from the timeout");
    let c = m.job(id).unwrap().core;
    assert_eq!((c.state, c.escrow, c.provider, c.reopens), (JobState::Open, escrow, Address::zero(), 1));
    ghost_check(&m, &everyone());
    // Re-opened as an auction: Charlie wins and times out too; now the renter is refunded.
    as_(charlie());
    m.bid(id, 1, PRICE).unwrap();
    advance(4);
    cleanup(&mut m, id).unwrap();
    advance(6);
    cleanup(&mut m, id).unwrap();
    assert_eq!(state(&m, id), JobState::Refunded);
    assert_eq!(m.withdrawable_of(django()), escrow, "exactly the escrow, no more");
    assert!(treasury(&m) > penalty);
    assert_eq!(m.provider(bob()).unwrap().reputation.timeouts, 1);
    ghost_check(&m, &everyone());
}

/// Drives an availability check: Bob reports, the draw is made, the drawn verifier votes.
fn availability_check(m: &mut Marketplace, id: u64, available: bool) -> Address {
    as_(bob());
    assert_eq!(m.report(id, true), Err(Error::BadJob), "a provider only reports inputs missing");
    m.report(id, false).unwrap();
    assert_eq!(m.report(id, false), Err(Error::NotAuthorized), "only the drawn verifier acts now");
    assert_eq!(state(m, id), JobState::InputCheck);
    assert_eq!(cleanup(m, id), Err(Error::DeadlineNotPassed), "the beacon block is not sealed yet");
    advance(1);
    cleanup(m, id).unwrap();
    let v = verifier(m, id).unwrap();
    assert!(v == charlie() || v == eve());
    as_(bob());
    assert_eq!(m.report(id, available), Err(Error::NotAuthorized), "the provider cannot vote");
    as_(v);
    m.report(id, available).unwrap();
    v
}

#[ink::test]
fn inputs_confirmed_unavailable_cost_the_renter_a_fee_to_those_who_tried_and_slash_nobody() {
    let mut m = market();
    let id = hired(&mut m, 1, 1_000, &seed(1));
    let v = availability_check(&mut m, id, false);
    let fee = econ::availability_fee(WND, 10_000);
    assert_eq!(state(&m, id), JobState::Unavailable);
    assert_eq!(m.withdrawable_of(bob()), fee);
    assert_eq!(m.withdrawable_of(v), fee);
    assert_eq!(m.withdrawable_of(django()), 6 * WND - 2 * fee);
    assert_eq!(m.provider(bob()).unwrap().stake, 20 * WND, "nobody slashed");
    assert_eq!(m.provider(bob()).unwrap().locked, 0);
    assert_eq!(m.provider(v).unwrap().locked, 0);
    assert_eq!(treasury(&m), 0);
    assert_eq!(job_kinds(id).last(), Some(&JobEventKind::Unavailable { fee, renter_refund: 6 * WND - 2 * fee }));
    ghost_check(&m, &everyone());
}

#[ink::test]
fn a_false_unavailability_report_pays_the_checker_from_the_reporters_deposit() {
    let mut m = market();
    let id = hired(&mut m, 1, 0, &seed(1));
    let v = availability_check(&mut m, id, true);
    let fee = econ::availability_fee(WND, 10_000);
    assert_eq!(state(&m, id), JobState::Assigned);
    assert_eq!(m.withdrawable_of(v), fee, "the deposit pays the verifier that checked");
    assert_eq!(m.provider(bob()).unwrap().stake, 20 * WND - fee);
    assert_eq!(m.job(id).unwrap().core.phase_deadline, now() + 5, "a fresh compute window");
    as_(bob());
    assert_eq!(m.report(id, false), Err(Error::AlreadyDone), "once per assignment");
    // Bob then completes the job normally; the renter paid nothing for the check.
    let out = Outputs::honest(id, 1);
    commit_and_reveal(&mut m, id, &out, &seed(1));
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    assert_eq!(state(&m, id), JobState::Settled);
    assert_eq!(m.withdrawable_of(django()), 5 * WND);
    ghost_check(&m, &everyone());
}

#[ink::test]
fn a_silent_availability_verifier_is_slashed_to_the_treasury_and_replaced() {
    let mut m = market();
    let id = hired(&mut m, 1, 1_000, &seed(1));
    as_(bob());
    m.report(id, false).unwrap();
    advance(1);
    cleanup(&mut m, id).unwrap();
    let v1 = verifier(&m, id).unwrap();
    let bond = m.job(id).unwrap().current_verifier().unwrap().bond;
    advance(6);
    cleanup(&mut m, id).unwrap();
    assert_eq!(m.provider(v1).unwrap().stake, 20 * WND - bond);
    assert_eq!(treasury(&m), bond);
    let v2 = verifier(&m, id).unwrap();
    assert_ne!(v1, v2, "replaced by someone else");
    assert!(verifier_kinds(id, v1).iter().any(|k| matches!(k, VerifierEventKind::Slashed { reason: SlashReason::VerifierSilent, .. })));
    // Nobody left to draw after the second is silent too: refunded, nobody pays.
    advance(6);
    cleanup(&mut m, id).unwrap();
    assert_eq!(state(&m, id), JobState::Refunded);
    assert_eq!(m.withdrawable_of(django()), 6 * WND);
    assert_eq!(m.provider(bob()).unwrap().stake, 20 * WND, "the reporter loses nothing unconfirmed");
    assert_eq!(job_kinds(id).last(), Some(&JobEventKind::Refunded { amount: 6 * WND, reason: RefundReason::InputsUnconfirmed }));
    ghost_check(&m, &everyone());
}

#[ink::test]
fn a_silent_renter_gets_its_job_checked_on_a_seed_it_cannot_steer() {
    let mut m = market();
    let s = pick_seed(&m, bob(), |id| Outputs::honest(id, 4), 4, 1_000, false);
    let id = hired(&mut m, 4, 1_000, &s);
    let out = Outputs::honest(id, 4);
    provider_commit(&mut m, id, bob(), &out).unwrap();
    advance(4);
    cleanup(&mut m, id).unwrap();
    let c = m.job(id).unwrap().core;
    assert!(!c.seed_revealed);
    assert_eq!(c.sampled, 1, "at least one task is checked");
    assert_eq!(state(&m, id), JobState::VerifierCommit);
    assert!(job_kinds(id).contains(&JobEventKind::SeedRevealed { seed: None, check_seed: c.check_seed, tasks: 4, sampled: 1 }));
    let v = verifier(&m, id).unwrap();
    verifier_commit(&mut m, id, v, &out).unwrap();
    advance(1);
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    verifier_reveal(&mut m, id, v, &out, false).unwrap();
    assert_eq!(state(&m, id), JobState::Settled);
    let fee = econ::verifier_fee(WND / 4, 10_000);
    assert_eq!(m.withdrawable_of(v), fee, "the silent renter pays the check");
    assert_eq!(m.withdrawable_of(django()), 6 * WND - WND - fee);
    ghost_check(&m, &everyone());
}

#[ink::test]
fn a_silent_verifier_is_slashed_and_replaced_and_the_replacement_must_show_its_roots() {
    let mut m = market();
    let id = hired(&mut m, 1, BPS, &seed(1));
    let out = Outputs::honest(id, 1);
    commit_and_reveal(&mut m, id, &out, &seed(1));
    let v1 = verifier(&m, id).unwrap();
    let deadline = m.job(id).unwrap().core.phase_deadline;
    assert_eq!(deadline, now() + 5, "a verifier gets the provider's compute window");
    verifier_commit(&mut m, id, v1, &out).unwrap();
    advance(1);
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    // v1 falls silent: the check is not dropped. v1 is slashed and replaced.
    advance(4);
    cleanup(&mut m, id).unwrap();
    assert_eq!(treasury(&m), 2 * WND);
    let v2 = verifier(&m, id).unwrap();
    assert_ne!(v2, v1);
    assert_eq!(state(&m, id), JobState::VerifierCommit);
    // The provider's answer is public: the replacement cannot just copy it.
    verifier_commit(&mut m, id, v2, &out).unwrap();
    advance(1);
    assert_eq!(verifier_reveal(&mut m, id, v2, &out, false), Err(Error::RootsRequired));
    verifier_reveal(&mut m, id, v2, &out, true).unwrap();
    assert_eq!(state(&m, id), JobState::Settled);
    assert_eq!(m.withdrawable_of(v2), WND);
    assert_eq!(m.withdrawable_of(bob()), WND - WND / 50);
    ghost_check(&m, &everyone());
}

#[ink::test]
fn with_no_eligible_verifier_the_job_ends_unverified_paid_only_if_the_renter_chose_so() {
    let mut m = fresh();
    register(&mut m, bob(), 20 * WND);
    list(&mut m, bob(), PRICE);
    advance(EPOCH);
    // Bob is the only provider: nobody can verify him.
    let id = hired(&mut m, 1, BPS, &seed(1));
    let out = Outputs::honest(id, 1);
    commit_and_reveal(&mut m, id, &out, &seed(1));
    assert_eq!(state(&m, id), JobState::Unverified);
    assert_eq!(m.withdrawable_of(django()), 6 * WND);
    assert_eq!(m.provider(bob()).unwrap().locked, 0);
    assert_eq!(job_kinds(id).last(), Some(&JobEventKind::Unverified { paid: false, provider_payout: 0, protocol_fee: 0, renter_refund: 6 * WND }));
    // The same with pay_if_unverified: the provider reveals and is paid.
    let input = JobInput { pay_if_unverified: true, ..job_input(Some(0), 1, 1_000, BPS) };
    let id2 = create(&mut m, django(), input, &seed(2));
    as_(bob());
    m.accept_job(id2).unwrap();
    let out2 = Outputs::honest(id2, 1);
    commit_and_reveal_as(&mut m, id2, &out2, &seed(2));
    assert_eq!(state(&m, id2), JobState::Reveal);
    provider_reveal(&mut m, id2, bob(), &out2).unwrap();
    assert_eq!(state(&m, id2), JobState::Unverified);
    assert_eq!(m.withdrawable_of(bob()), WND - WND / 50);
    ghost_check(&m, &everyone());
}

fn commit_and_reveal_as(m: &mut Marketplace, id: u64, out: &Outputs, seed: &Hash32) {
    commit_and_reveal(m, id, out, seed)
}

/// Runs a checked job to its dispute: Bob commits `p`, the first verifier `v1o`; returns
/// (v1, v2) with v2 drawn and committed to `v2o`.
fn dispute(m: &mut Marketplace, tasks: u32, p: impl Fn(u64) -> Outputs, v1o: impl Fn(u64) -> Outputs, v2o: impl Fn(u64) -> Outputs) -> (u64, Address, Address) {
    let id = hired(m, tasks, BPS, &seed(1));
    commit_and_reveal(m, id, &p(id), &seed(1));
    let v1 = verifier(m, id).unwrap();
    verifier_commit(m, id, v1, &v1o(id)).unwrap();
    advance(1);
    provider_reveal(m, id, bob(), &p(id)).unwrap();
    verifier_reveal(m, id, v1, &v1o(id), false).unwrap_or_else(|_| verifier_reveal(m, id, v1, &v1o(id), true).unwrap());
    assert_eq!(state(m, id), JobState::VerifierCommit, "answers differ: a dispute");
    assert!(matches!(job_kinds(id).last(), Some(JobEventKind::DrawDue { round: 2, .. })));
    advance(1);
    cleanup(m, id).unwrap();
    let v2 = verifier(m, id).unwrap();
    assert!(v2 != v1 && v2 != bob());
    verifier_commit(m, id, v2, &v2o(id)).unwrap();
    advance(1);
    (id, v1, v2)
}

#[ink::test]
fn a_provider_wrong_on_one_task_of_a_batch_is_slashed_for_the_whole_batch() {
    let mut m = market();
    let tasks = 20;
    let (id, v1, v2) = dispute(&mut m, tasks, |id| Outputs::one_wrong(id, tasks, 7), |id| Outputs::honest(id, tasks), |id| Outputs::honest(id, tasks));
    let lock = m.job(id).unwrap().core.lock;
    verifier_reveal(&mut m, id, v2, &Outputs::honest(id, tasks), true).unwrap();
    assert_eq!(state(&m, id), JobState::Slashed);
    let fee = WND; // 20 tasks × 50 units × PRICE, 100 %
    assert_eq!(m.provider(bob()).unwrap().stake, 20 * WND - lock);
    // The 1 WND lock pays v1's fee; v2's comes from the verification reserve.
    assert_eq!(m.withdrawable_of(v1), fee);
    assert_eq!(m.withdrawable_of(v2), fee);
    assert_eq!(m.withdrawable_of(django()), 6 * WND - (2 * fee - lock));
    assert_eq!(m.withdrawable_of(bob()), 0);
    assert_eq!(m.provider(bob()).unwrap().reputation.checks_failed, 1);
    assert!(job_kinds(id).contains(&JobEventKind::ProviderSlashed { amount: lock, to_verifiers: lock, to_treasury: 0, reason: SlashReason::WrongResult }));
    ghost_check(&m, &everyone());
}

#[ink::test]
fn a_lying_first_verifier_is_slashed_and_pays_the_decider() {
    let mut m = market();
    let (id, v1, v2) = dispute(&mut m, 1, |id| Outputs::honest(id, 1), |id| Outputs::fake(id, 1, 1), |id| Outputs::honest(id, 1));
    verifier_reveal(&mut m, id, v2, &Outputs::honest(id, 1), true).unwrap();
    assert_eq!(state(&m, id), JobState::Settled);
    assert_eq!(m.provider(v1).unwrap().stake, 20 * WND - 2 * WND, "its 2 WND bond");
    assert_eq!(m.withdrawable_of(v2), WND, "its fee, from the liar's bond");
    assert_eq!(m.withdrawable_of(v1), 0);
    assert_eq!(treasury(&m), WND + WND / 50, "the rest of the bond and the protocol fee");
    assert_eq!(m.withdrawable_of(bob()), WND - WND / 50);
    assert_eq!(m.withdrawable_of(django()), 5 * WND, "the renter pays no verification");
    ghost_check(&m, &everyone());
}

#[ink::test]
fn a_decider_that_matches_nobody_is_slashed_and_the_renter_refunded() {
    let mut m = market();
    let (id, v1, v2) = dispute(&mut m, 1, |id| Outputs::honest(id, 1), |id| Outputs::fake(id, 1, 1), |id| Outputs::fake(id, 1, 2));
    verifier_reveal(&mut m, id, v2, &Outputs::fake(id, 1, 2), false).unwrap();
    assert_eq!(state(&m, id), JobState::Refunded);
    assert_eq!(m.provider(v2).unwrap().stake, 18 * WND);
    assert_eq!(m.provider(v1).unwrap().stake, 20 * WND);
    assert_eq!(m.provider(bob()).unwrap().stake, 20 * WND);
    assert_eq!(m.withdrawable_of(django()), 6 * WND);
    assert_eq!(treasury(&m), 2 * WND);
    ghost_check(&m, &everyone());
}

#[ink::test]
fn a_round_two_verifier_cannot_profit_from_copying_a_public_answer() {
    let mut m = market();
    // v2 copies the provider's answer (public) without computing: refused without roots.
    let (id, _v1, v2) = dispute(&mut m, 1, |id| Outputs::honest(id, 1), |id| Outputs::fake(id, 1, 1), |id| Outputs::honest(id, 1));
    assert_eq!(verifier_reveal(&mut m, id, v2, &Outputs::honest(id, 1), false), Err(Error::RootsRequired));
    // Nor can it copy the first verifier's answer: it too was public when v2 committed.
    let mut m2 = market();
    let (id2, _, v2b) = dispute(&mut m2, 1, |id| Outputs::fake(id, 1, 3), |id| Outputs::honest(id, 1), |id| Outputs::honest(id, 1));
    assert_eq!(verifier_reveal(&mut m2, id2, v2b, &Outputs::honest(id2, 1), false), Err(Error::RootsRequired));
    // Without the roots it cannot reveal at all: silence slashes it and a replacement decides.
    advance(4);
    cleanup(&mut m2, id2).unwrap();
    assert_eq!(m2.provider(v2b).unwrap().stake, 18 * WND);
    ghost_check(&m2, &everyone());
}

#[ink::test]
fn a_silent_provider_is_slashed_to_the_treasury_and_pays_the_verifier_that_worked() {
    let mut m = market();
    let id = hired(&mut m, 1, BPS, &seed(1));
    let out = Outputs::honest(id, 1);
    commit_and_reveal(&mut m, id, &out, &seed(1));
    let v1 = verifier(&m, id).unwrap();
    verifier_commit(&mut m, id, v1, &out).unwrap();
    advance(1);
    verifier_reveal(&mut m, id, v1, &out, false).unwrap();
    advance(3);
    cleanup(&mut m, id).unwrap();
    assert_eq!(state(&m, id), JobState::Slashed);
    assert_eq!(m.withdrawable_of(v1), WND);
    assert_eq!(m.withdrawable_of(django()), 6 * WND, "the lock covered the fee: a full refund");
    assert_eq!(m.provider(bob()).unwrap().stake, 18 * WND, "the whole lock: 2 WND, both verifiers' fees at a 100 % rate");
    ghost_check(&m, &everyone());
}

#[ink::test]
fn verifiers_unable_to_fetch_are_replaced_and_if_all_are_the_provider_is_paid() {
    let mut m = market();
    let id = hired(&mut m, 1, BPS, &seed(1));
    let out = Outputs::honest(id, 1);
    commit_and_reveal(&mut m, id, &out, &seed(1));
    for _ in 0..2 {
        let v = verifier(&m, id).unwrap();
        as_(v);
        m.report(id, false).unwrap();
        assert_eq!(m.provider(v).unwrap().locked, 0, "released, not slashed");
        assert_eq!(m.provider(v).unwrap().stake, 20 * WND);
        advance(1);
        cleanup(&mut m, id).unwrap();
    }
    // Both other providers reported; the third draw finds nobody: inputs at fault.
    assert_eq!(state(&m, id), JobState::Reveal);
    assert!(m.job(id).unwrap().core.unverified);
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    assert_eq!(state(&m, id), JobState::Unverified);
    assert_eq!(m.withdrawable_of(bob()), WND - WND / 50);
    ghost_check(&m, &everyone());
}

/// The drawn verifier of a fresh market's first checked job, where after the commitment
/// `after_commit` may move stake.
fn first_draw(block_salt: u64, after_commit: impl Fn(&mut Marketplace)) -> Address {
    crate::test_chain::SALT.with(|s| s.set(block_salt));
    test::set_block_number::<E>(0);
    let mut m = fresh_with(&(0..8).map(acct).collect::<Vec<_>>());
    for p in [bob(), charlie(), eve()] {
        register(&mut m, p, 20 * WND);
        list(&mut m, p, PRICE);
    }
    for i in 0..8 {
        register(&mut m, acct(i), (5 + u128::from(i)) * WND);
    }
    advance(EPOCH);
    let id = hired(&mut m, 1, BPS, &seed(1));
    let out = Outputs::honest(id, 1);
    provider_commit(&mut m, id, bob(), &out).unwrap();
    after_commit(&mut m);
    advance(1);
    reveal_seed(&mut m, id, django(), &seed(1)).unwrap();
    verifier(&m, id).unwrap()
}

#[ink::test]
fn stake_moved_after_the_commitment_does_not_move_the_draw() {
    for salt in 0..24u64 {
        let plain = first_draw(salt, |_| {});
        // After the commitment, when the draw's beacon is not yet sealed but an attacker
        // knows everything else: a Sybil (acct 7) piles up stake, and another account
        // empties its slot, which in a live tree would shift every later interval.
        let leaver = if plain == acct(0) { acct(1) } else { acct(0) };
        let steered = first_draw(salt, |m| {
            register(m, acct(7), 1_000 * WND);
            as_(leaver);
            let free = m.provider(leaver).unwrap().free();
            m.unstake(free).unwrap();
        });
        assert_eq!(plain, steered, "salt {salt}: the draw moved");
    }
}

#[ink::test]
fn a_parameter_change_never_reaches_a_running_job() {
    let mut m = market();
    let id = hired(&mut m, 1, 0, &seed(1));
    as_(alice());
    m.set_params(Params { protocol_fee_bps: MAX_PROTOCOL_FEE_BPS, verifier_fee_bps: 0, ..test_params() }).unwrap();
    let out = Outputs::honest(id, 1);
    commit_and_reveal(&mut m, id, &out, &seed(1));
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    assert_eq!(m.withdrawable_of(bob()), WND - WND / 50, "the 2 % of its creation");
    assert_eq!(treasury(&m), WND / 50);
    // The admin reaches the treasury and nothing else.
    as_(alice());
    assert_eq!(m.claim_treasury(WND), Err(Error::NothingToWithdraw));
    assert_eq!(m.claim_treasury(0), Err(Error::NothingToWithdraw));
    m.claim_treasury(WND / 50).unwrap();
    assert_eq!(m.withdrawable_of(alice()), WND / 50);
    as_(bob());
    assert_eq!(m.claim_treasury(1), Err(Error::NotAdmin));
    assert!(events().contains(&Ev::Market(MarketEvent { kind: MarketEventKind::TreasuryClaimed { admin: alice(), amount: WND / 50 } })));
    // New jobs get the new terms.
    let id2 = hired(&mut m, 1, 0, &seed(2));
    assert_eq!(m.job(id2).unwrap().core.terms.protocol_fee_bps, MAX_PROTOCOL_FEE_BPS);
    ghost_check(&m, &everyone());
}

#[ink::test]
fn wash_trades_barely_move_the_price_index_and_reputation_counts_value() {
    let mut m = market();
    let class = m.offer(0).unwrap().gpu_class;
    // A real job of 1 WND at PRICE sets the index.
    let id = hired(&mut m, 1, 0, &seed(1));
    let out = Outputs::honest(id, 1);
    commit_and_reveal(&mut m, id, &out, &seed(1));
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    assert_eq!(m.price_index(class), Some(PRICE));
    // Eve hires herself through a Sybil renter (Frank) at 20× the price, tiny jobs.
    as_(eve());
    m.list_offer(Some(2), OfferInput { price_per_unit: 20 * PRICE, ..offer_input(20 * PRICE, 1_000) }).unwrap();
    for k in 0..5u8 {
        let input = JobInput { max_price_per_unit: 20 * PRICE, ..job_input(Some(2), 1, 1, 0) };
        let id = create(&mut m, frank(), input, &seed(10 + k));
        as_(eve());
        m.accept_job(id).unwrap();
        let out = Outputs::fake(id, 1, 9);
        provider_commit(&mut m, id, eve(), &out).unwrap();
        advance(1);
        reveal_seed(&mut m, id, frank(), &seed(10 + k)).unwrap();
        provider_reveal(&mut m, id, eve(), &out).unwrap();
    }
    let index = m.price_index(class).unwrap();
    assert!(index < PRICE + PRICE / 500, "5 wash trades moved the index to {index}");
    // Reputation: five wash jobs of 0.02 WND weigh less than one real job of 1 WND.
    let (bob_rep, eve_rep) = (m.provider(bob()).unwrap().reputation, m.provider(eve()).unwrap().reputation);
    assert_eq!(eve_rep.jobs_completed, 5);
    assert!(eve_rep.score() < bob_rep.score());
    ghost_check(&m, &everyone());
}

#[ink::test]
fn the_registry_recycles_slots_so_sybils_cannot_lock_it_forever() {
    let accts: Vec<Address> = (0..MAX_PROVIDERS as u16).map(acct).collect();
    let mut m = fresh_with(&accts);
    for a in &accts {
        register(&mut m, *a, WND);
    }
    assert_eq!(paid(django(), WND, || m.stake()), Err(Error::RegistryFull));
    // One Sybil leaves; two epochs later its slot is someone else's.
    as_(accts[5]);
    m.unstake(WND).unwrap();
    advance(5);
    m.complete_unstake().unwrap();
    assert_eq!(paid(django(), WND, || m.stake()), Err(Error::RegistryFull));
    advance(2 * EPOCH);
    register(&mut m, django(), WND);
    assert_eq!(m.provider(django()).unwrap().slot, 6);
    let mut all = accts.clone();
    all.extend(everyone());
    ghost_check(&m, &all);
}

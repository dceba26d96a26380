//! Every message: its effect, its events, and each documented error (with no funds moved).
use super::*;
use crate::marketplace::Marketplace;

/// Providers Bob (offer 0) and Charlie (offer 1) at `PRICE`, 20 WND staked each, one
/// epoch ago (so their stake counts in draws).
fn market() -> Marketplace {
    let mut m = fresh();
    for p in [bob(), charlie()] {
        register(&mut m, p, 20 * WND);
        list(&mut m, p, PRICE);
    }
    advance(EPOCH);
    m
}

fn everyone() -> Vec<Address> {
    vec![alice(), bob(), charlie(), django(), eve(), frank()]
}

#[ink::test]
fn constructor_sets_admin_params_and_epoch() {
    let m = fresh();
    let st = m.state();
    assert_eq!(st.admin, alice());
    assert_eq!(st.params_at(now()), test_params());
    assert_eq!(st.epoch_blocks, EPOCH);
    assert_eq!(st.totals, Accounting::default());
    ghost_check(&m, &everyone());
}

#[ink::test]
fn set_params_checks_bounds_and_applies_to_new_jobs_after_the_delay() {
    let addr = Address::from([0xCD; 20]);
    test::set_callee(addr);
    as_(alice());
    // The defaults' 20-block reveal window leaves no compute window in a 100-block epoch:
    // such a market is refused at deployment.
    assert_eq!(Marketplace::new(EPOCH, 10, Params::default()).err(), Some(Error::ParamOutOfBounds));
    assert_eq!(Marketplace::new(EPOCH, 10, Params { min_stake: 0, ..test_params() }).err(), Some(Error::ParamOutOfBounds));
    let initial = Params { reveal_window: 5, ..Params::default() };
    let mut m = Marketplace::new(EPOCH, 10, initial).expect("valid parameters");
    assert_eq!(m.state().params_at(now()), initial);
    let bad = [
        Params { protocol_fee_bps: MAX_PROTOCOL_FEE_BPS + 1, ..test_params() },
        Params { verifier_fee_bps: MAX_VERIFIER_FEE_BPS + 1, ..test_params() },
        Params { reveal_window: MAX_REVEAL_WINDOW + 1, ..test_params() },
        Params { reveal_window: 1, ..test_params() },
        Params { bid_window: MAX_WINDOW_BLOCKS + 1, ..test_params() },
        Params { min_stake: 0, ..test_params() },
        Params { default_check_rate_bps: BPS + 1, ..test_params() },
        // Valid on its own, but leaves no compute window within a 100-block epoch.
        Params { reveal_window: 40, ..test_params() },
    ];
    for p in bad {
        assert_eq!(m.set_params(p), Err(Error::ParamOutOfBounds), "{p:?}");
    }
    as_(bob());
    assert_eq!(m.set_params(test_params()), Err(Error::NotAdmin));
    as_(alice());
    let start = now();
    m.set_params(test_params()).unwrap();
    assert_eq!(m.state().params_at(now()), initial, "not before the delay");
    assert_eq!(m.state().pending_params, Some((test_params(), start + 10)));
    advance(10);
    assert_eq!(m.state().params_at(now()), test_params());
    assert!(events().contains(&Ev::Market(MarketEvent {
        kind: MarketEventKind::ParamsScheduled { params: test_params(), effective_at: start + 10 }
    })));
}

#[ink::test]
fn admin_is_handed_over_in_two_steps() {
    let mut m = fresh();
    as_(bob());
    assert_eq!(m.set_admin(bob()), Err(Error::NotAdmin));
    as_(alice());
    m.set_admin(django()).unwrap();
    assert_eq!(m.state().admin, alice());
    as_(bob());
    assert_eq!(m.set_admin(bob()), Err(Error::NotAdmin), "only the proposed admin accepts");
    as_(django());
    assert_eq!(m.set_admin(bob()), Err(Error::NotAdmin), "it accepts for itself only");
    m.set_admin(django()).unwrap();
    assert_eq!(m.state().admin, django());
    assert_eq!(m.state().pending_admin, None);
    as_(alice());
    assert_eq!(m.set_params(test_params()), Err(Error::NotAdmin));
    assert!(events().contains(&Ev::Market(MarketEvent { kind: MarketEventKind::AdminChanged { old: alice(), new: django() } })));
}

#[ink::test]
fn stake_registers_adds_and_unstakes_through_the_cooldown() {
    let mut m = fresh();
    assert_eq!(paid(bob(), 0, || m.stake()), Err(Error::WrongPayment));
    assert_eq!(paid(bob(), WND / 2, || m.stake()), Err(Error::StakeTooLow));
    assert_eq!(balance_of(test::callee()), 0, "a refused stake moves nothing");
    register(&mut m, bob(), 3 * WND);
    let p = m.provider(bob()).unwrap();
    assert_eq!((p.stake, p.slot), (3 * WND, 1));
    register(&mut m, bob(), WND / 2);
    assert_eq!(m.provider(bob()).unwrap().stake, 3 * WND + WND / 2);
    as_(charlie());
    assert_eq!(m.unstake(WND), Err(Error::NotProvider));
    as_(bob());
    assert_eq!(m.unstake(0), Err(Error::InsufficientFreeStake));
    assert_eq!(m.unstake(4 * WND), Err(Error::InsufficientFreeStake));
    assert_eq!(m.complete_unstake(), Err(Error::NothingToUnstake));
    m.unstake(WND).unwrap();
    assert_eq!(m.complete_unstake(), Err(Error::CooldownActive));
    ghost_check(&m, &everyone());
    advance(5);
    m.complete_unstake().unwrap();
    assert_eq!(m.withdrawable_of(bob()), WND);
    let before = balance_of(bob());
    assert_eq!(m.withdraw(), Ok(WND));
    assert_eq!(balance_of(bob()), before + WND);
    assert_eq!(m.withdraw(), Err(Error::NothingToWithdraw));
    ghost_check(&m, &everyone());
    let staked: Vec<_> = events()
        .into_iter()
        .filter_map(|e| match e {
            Ev::Account(AccountEvent { account, kind: AccountEventKind::Staked { added, stake, slot } }) => Some((account, added, stake, slot)),
            _ => None,
        })
        .collect();
    assert_eq!(staked, vec![(bob(), 3 * WND, 3 * WND, 1), (bob(), WND / 2, 3 * WND + WND / 2, 1)]);
}

#[ink::test]
fn a_provider_that_leaves_gives_its_slot_back_for_reuse_two_epochs_later() {
    let mut m = fresh();
    register(&mut m, bob(), 2 * WND);
    as_(bob());
    m.unstake(2 * WND).unwrap();
    advance(5);
    m.complete_unstake().unwrap();
    assert_eq!(m.provider(bob()).unwrap().slot, 0);
    assert_eq!(m.state().providers, 0);
    assert_eq!(m.slot_owner(1), Address::zero());
    as_(bob());
    assert_eq!(m.list_offer(None, offer_input(PRICE, 1)), Err(Error::NotProvider));
    // Too early for reuse: Charlie gets a fresh slot.
    register(&mut m, charlie(), 2 * WND);
    assert_eq!(m.provider(charlie()).unwrap().slot, 2);
    advance(2 * EPOCH);
    register(&mut m, django(), 2 * WND);
    assert_eq!(m.provider(django()).unwrap().slot, 1, "the released slot is reused");
    register(&mut m, bob(), 2 * WND);
    assert_eq!(m.provider(bob()).unwrap().slot, 3, "a returning provider takes a new slot");
    ghost_check(&m, &everyone());
}

#[ink::test]
fn offers_list_update_remove_and_their_errors() {
    let mut m = fresh();
    as_(bob());
    assert_eq!(m.list_offer(None, offer_input(PRICE, 1)), Err(Error::NotProvider));
    register(&mut m, bob(), 2 * WND);
    as_(bob());
    let mut o = offer_input(PRICE, 20_423);
    let id = m.list_offer(None, o.clone()).unwrap();
    assert_eq!(m.offer(id).unwrap().gpu_class, 14, "the class follows the benchmark score");
    assert_eq!(m.offer(id).unwrap().info().unwrap().endpoint, "http://gpu.example:8800");
    o.info = vec![];
    assert_eq!(m.list_offer(None, o.clone()), Err(Error::BadText));
    o.info = vec![1; MAX_OFFER_INFO_LEN + 1];
    assert_eq!(m.list_offer(None, o.clone()), Err(Error::BadText));
    for bad in [OfferInput { price_per_unit: 0, ..offer_input(PRICE, 1) }, OfferInput { max_units: 0, ..offer_input(PRICE, 1) }, OfferInput { vram_mib: 0, ..offer_input(PRICE, 1) }] {
        assert_eq!(m.list_offer(None, bad), Err(Error::BadOffer));
    }
    assert_eq!(m.list_offer(Some(9), offer_input(PRICE, 1)), Err(Error::OfferNotFound));
    m.list_offer(Some(id), offer_input(3 * PRICE, 1)).unwrap();
    assert_eq!(m.offer(id).unwrap().input.price_per_unit, 3 * PRICE);
    register(&mut m, charlie(), 2 * WND);
    as_(charlie());
    assert_eq!(m.list_offer(Some(id), offer_input(PRICE, 1)), Err(Error::NotOfferOwner));
    assert_eq!(m.remove_offer(id), Err(Error::NotOfferOwner));
    as_(bob());
    m.remove_offer(id).unwrap();
    assert!(!m.offer(id).unwrap().active);
    assert_eq!(m.remove_offer(id), Err(Error::OfferNotFound));
    assert_eq!(m.state().offer_count, 1);
}

#[ink::test]
fn create_job_errors_move_no_funds() {
    let mut m = market();
    let contract_before = balance_of(test::callee());
    let renter_before = balance_of(django());
    let cases: Vec<(JobInput, Error)> = vec![
        (JobInput { tasks: 0, ..job_input(None, 1, 10, 0) }, Error::BadTaskCount),
        (JobInput { tasks: MAX_TASKS + 1, ..job_input(None, 1, 10, 0) }, Error::BadTaskCount),
        (JobInput { units_per_task: 0, ..job_input(None, 1, 10, 0) }, Error::BadJob),
        (JobInput { max_price_per_unit: 0, ..job_input(None, 1, 10, 0) }, Error::BadJob),
        (JobInput { check_rate_bps: BPS + 1, ..job_input(None, 1, 10, 0) }, Error::BadJob),
        (JobInput { uri: vec![], ..job_input(None, 1, 10, 0) }, Error::BadText),
        (JobInput { uri: vec![b'x'; MAX_URI_LEN + 1], ..job_input(None, 1, 10, 0) }, Error::BadText),
        (JobInput { compute_blocks: 1, ..job_input(None, 1, 10, 0) }, Error::BadComputeWindow),
        (JobInput { compute_blocks: econ::max_compute_blocks(EPOCH, 3) + 1, ..job_input(None, 1, 10, 0) }, Error::BadComputeWindow),
        (job_input(Some(7), 1, 10, 0), Error::OfferNotFound),
        (JobInput { requirements: Requirements { min_vram_mib: 100_000, ..Default::default() }, ..job_input(Some(0), 1, 10, 0) }, Error::RequirementsNotMet),
        (JobInput { requirements: Requirements { gpu_class: Some(3), ..Default::default() }, ..job_input(Some(0), 1, 10, 0) }, Error::RequirementsNotMet),
        (job_input(Some(0), 2, 600_000, 0), Error::JobTooLarge),
        (JobInput { max_price_per_unit: PRICE / 2, ..job_input(Some(0), 1, 10, 0) }, Error::PriceAboveMax),
    ];
    for (input, err) in cases {
        let escrow = econ::escrow_for(input.tasks, input.units_per_task.max(1), input.max_price_per_unit.max(1), 10_000).unwrap_or(0);
        assert_eq!(paid(django(), escrow, || m.create_job(input.clone(), [1; 32])), Err(err), "{input:?}");
    }
    let input = job_input(None, 1, 10, 0);
    let escrow = escrow_of(&m, &input);
    assert_eq!(paid(django(), escrow - 1, || m.create_job(input.clone(), [1; 32])), Err(Error::WrongPayment));
    assert_eq!(paid(django(), escrow + 1, || m.create_job(input.clone(), [1; 32])), Err(Error::WrongPayment));
    // Hiring one's own offer is refused.
    assert_eq!(paid(bob(), escrow, || m.create_job(job_input(Some(0), 1, 10, 0), [1; 32])), Err(Error::SelfDealing));
    assert_eq!(balance_of(test::callee()), contract_before);
    assert_eq!(balance_of(django()), renter_before);
    assert_eq!(m.state().job_count, 0);
    ghost_check(&m, &everyone());
}

#[ink::test]
fn auction_lowest_wins_outbid_lock_is_released_and_late_bids_extend_the_window() {
    let mut m = market();
    register(&mut m, bob(), 30 * WND);
    register(&mut m, eve(), 30 * WND);
    list(&mut m, eve(), PRICE);
    let id = create(&mut m, django(), job_input(None, 4, 250, 1_000), &seed(1));
    as_(bob());
    assert_eq!(m.bid(id, 0, 3 * PRICE), Err(Error::PriceAboveMax));
    assert_eq!(m.bid(id, 0, 0), Err(Error::PriceAboveMax));
    assert_eq!(m.bid(id, 1, PRICE), Err(Error::NotOfferOwner));
    m.bid(id, 0, 2 * PRICE).unwrap();
    let lock_b = econ::lock_for(2 * WND, 1_000, 10_000, WND);
    assert_eq!(m.provider(bob()).unwrap().locked, lock_b);
    as_(charlie());
    assert_eq!(m.bid(id, 1, 2 * PRICE), Err(Error::BidNotBetter), "a tie needs a better reputation");
    // Charlie's stake cannot cover the lock of a 1.5 WND job at a 10 % check rate (22 WND).
    assert_eq!(m.bid(id, 1, 3 * PRICE / 2), Err(Error::InsufficientFreeStake));
    as_(eve());
    m.bid(id, 2, 3 * PRICE / 2).unwrap();
    assert_eq!(m.provider(bob()).unwrap().locked, 0, "the outbid lock is released");
    assert_eq!(m.job(id).unwrap().core.provider, eve());
    as_(django());
    assert_eq!(m.bid(id, 0, PRICE), Err(Error::SelfDealing), "the renter cannot bid");
    // The last block of the window: a bid extends it by the guard.
    advance(3);
    let deadline = m.job(id).unwrap().core.phase_deadline;
    assert_eq!(now(), deadline);
    as_(bob());
    m.bid(id, 0, PRICE).unwrap();
    assert_eq!(m.job(id).unwrap().core.phase_deadline, now() + SNIPE_GUARD_BLOCKS);
    ghost_check(&m, &[alice(), bob(), charlie(), django(), eve(), frank()]);
    assert_eq!(cleanup(&mut m, id), Err(Error::DeadlineNotPassed));
    advance(SNIPE_GUARD_BLOCKS + 1);
    cleanup(&mut m, id).unwrap();
    let c = m.job(id).unwrap().core;
    assert_eq!((c.state, c.provider, c.price_per_unit), (JobState::Assigned, bob(), PRICE));
    assert_eq!(c.lock, econ::lock_for(WND, 1_000, 10_000, WND));
    ghost_check(&m, &[alice(), bob(), charlie(), django(), eve(), frank()]);
}

#[ink::test]
fn an_auction_without_bids_can_be_reopened_or_refunded() {
    let mut m = market();
    let input = job_input(None, 1, 10, 0);
    let escrow = escrow_of(&m, &input);
    let before = balance_of(django());
    let id = create(&mut m, django(), input, &seed(1));
    as_(django());
    assert_eq!(m.reopen_job(id), Err(Error::DeadlineNotPassed));
    advance(4);
    as_(bob());
    assert_eq!(m.reopen_job(id), Err(Error::NotAuthorized));
    as_(django());
    m.reopen_job(id).unwrap();
    assert_eq!(state(&m, id), JobState::Open);
    advance(4);
    cleanup(&mut m, id).unwrap();
    assert_eq!(state(&m, id), JobState::Refunded);
    assert_eq!(m.withdrawable_of(django()), escrow);
    as_(django());
    m.withdraw().unwrap();
    assert_eq!(balance_of(django()), before);
    assert_eq!(cleanup(&mut m, id), Err(Error::WrongState));
    assert_eq!(job_kinds(id).last(), Some(&JobEventKind::Refunded { amount: escrow, reason: RefundReason::NoBids }));
    ghost_check(&m, &everyone());
}

#[ink::test]
fn direct_hire_is_accepted_at_the_price_of_the_hire_not_a_raised_one() {
    let mut m = market();
    let id = create(&mut m, django(), job_input(Some(0), 1, 1_000, 0), &seed(1));
    assert_eq!(m.job(id).unwrap().core.provider, bob(), "a direct hire names its provider");
    as_(bob());
    m.list_offer(Some(0), offer_input(2 * PRICE, 1_000)).unwrap();
    as_(charlie());
    assert_eq!(m.accept_job(id), Err(Error::NotOfferOwner));
    as_(bob());
    m.accept_job(id).unwrap();
    let c = m.job(id).unwrap().core;
    assert_eq!((c.state, c.price_per_unit, c.lock), (JobState::Assigned, PRICE, WND));
    assert_eq!(m.accept_job(id), Err(Error::WrongState));
    let id2 = create(&mut m, django(), job_input(Some(0), 1, 1_000, 0), &seed(2));
    advance(4);
    as_(bob());
    assert_eq!(m.accept_job(id2), Err(Error::DeadlinePassed));
    cleanup(&mut m, id2).unwrap();
    assert_eq!(state(&m, id2), JobState::Refunded);
    ghost_check(&m, &everyone());
}

/// The happy paths with every unit accounted for.
#[ink::test]
fn unchecked_job_settles_with_exact_payouts_and_events() {
    let mut m = market();
    let input = job_input(Some(0), 1, 1_000, 0);
    let escrow = escrow_of(&m, &input);
    assert_eq!(escrow, 6 * WND, "2 WND at the maximum price + two verifier fees of 2 WND");
    let id = create(&mut m, django(), input, &seed(9));
    as_(bob());
    m.accept_job(id).unwrap();
    let out = Outputs::honest(id, 1);
    provider_commit(&mut m, id, bob(), &out).unwrap();
    assert_eq!(provider_commit(&mut m, id, bob(), &out), Err(Error::WrongState));
    assert_eq!(reveal_seed(&mut m, id, django(), &seed(9)), Err(Error::DeadlineNotPassed), "same block as the commitment");
    advance(1);
    assert_eq!(reveal_seed(&mut m, id, bob(), &seed(9)), Err(Error::NotAuthorized));
    assert_eq!(reveal_seed(&mut m, id, django(), &seed(8)), Err(Error::SeedMismatch));
    reveal_seed(&mut m, id, django(), &seed(9)).unwrap();
    assert_eq!(state(&m, id), JobState::Reveal);
    assert!(!m.job(id).unwrap().core.checked(), "rate 0: never checked");
    // A reveal that does not match the commitment, or carries leaves it needs not, is refused.
    as_(bob());
    assert_eq!(
        m.reveal(id, [0; 32], Reveal::Provider { batch_root: out.batch_root(), leaves: vec![], proof: vec![] }),
        Err(Error::CommitmentMismatch)
    );
    assert_eq!(
        m.reveal(id, salt_of(bob(), id), Reveal::Provider { batch_root: out.batch_root(), leaves: out.leaves(), proof: vec![] }),
        Err(Error::BadProof)
    );
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    assert_eq!(state(&m, id), JobState::Settled);
    // 1 WND of work: 0.98 to Bob, 0.02 to the treasury, 5 back to Django.
    assert_eq!(m.withdrawable_of(bob()), WND - WND / 50);
    assert_eq!(m.withdrawable_of(django()), 5 * WND);
    assert_eq!(m.state().totals.treasury, WND / 50);
    assert_eq!(m.provider(bob()).unwrap().locked, 0);
    let rep = m.provider(bob()).unwrap().reputation;
    assert_eq!((rep.jobs_completed, rep.value_settled), (1, WND));
    assert_eq!(m.price_index(m.offer(0).unwrap().gpu_class), Some(PRICE));
    assert_eq!(
        job_kinds(id).last(),
        Some(&JobEventKind::Settled {
            batch_root: out.batch_root(),
            provider_payout: WND - WND / 50,
            verifier_fees: 0,
            protocol_fee: WND / 50,
            renter_refund: 5 * WND,
            tasks: 1,
            sampled: 0
        })
    );
    ghost_check(&m, &everyone());
}

/// A direct hire's provider may commit instead of accepting: one call accepts (the same
/// checks, lock and events as `accept_job`) and commits; nobody else can use it to take a
/// job, and the job then settles exactly as one accepted and committed in two calls.
#[ink::test]
fn direct_hire_is_accepted_and_committed_in_one_call() {
    let mut m = market();
    let id = create(&mut m, django(), job_input(Some(0), 1, 1_000, 0), &seed(9));
    let out = Outputs::honest(id, 1);
    let before = m.provider(bob()).unwrap();
    // Strangers and the renter cannot take the hire by committing; a zero commitment is no
    // commitment; nothing moved.
    assert_eq!(provider_commit(&mut m, id, charlie(), &out), Err(Error::NotOfferOwner));
    assert_eq!(provider_commit(&mut m, id, django(), &out), Err(Error::NotOfferOwner));
    as_(bob());
    assert_eq!(m.commit(id, [0; 32]), Err(Error::BadJob));
    assert_eq!(state(&m, id), JobState::AwaitingAccept);
    assert_eq!(m.provider(bob()).unwrap().locked, before.locked);
    provider_commit(&mut m, id, bob(), &out).unwrap();
    let c = m.job(id).unwrap().core;
    assert_eq!((c.state, c.price_per_unit, c.lock, c.commit_block), (JobState::Committed, PRICE, WND, now()));
    assert_eq!(m.provider(bob()).unwrap().locked, WND);
    let kinds = job_kinds(id);
    assert!(matches!(kinds[kinds.len() - 2], JobEventKind::Assigned { offer_id: 0, price_per_unit: PRICE, lock: WND, .. }), "{kinds:?}");
    assert!(matches!(kinds[kinds.len() - 1], JobEventKind::Committed { .. }), "{kinds:?}");
    assert_eq!(m.accept_job(id), Err(Error::WrongState));
    assert_eq!(provider_commit(&mut m, id, bob(), &out), Err(Error::WrongState));
    advance(1);
    reveal_seed(&mut m, id, django(), &seed(9)).unwrap();
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    assert_eq!(state(&m, id), JobState::Settled);
    assert_eq!(m.withdrawable_of(bob()), WND - WND / 50);
    assert_eq!(m.withdrawable_of(django()), 5 * WND);
    assert_eq!(m.provider(bob()).unwrap().locked, 0);
    // Past the accept window the hire can no longer be taken this way either.
    let id2 = create(&mut m, django(), job_input(Some(0), 1, 1_000, 0), &seed(2));
    advance(4);
    assert_eq!(provider_commit(&mut m, id2, bob(), &Outputs::honest(id2, 1)), Err(Error::DeadlinePassed));
    // Bob's free stake must cover the lock, as for accept_job.
    let id3 = create(&mut m, django(), job_input(Some(0), 1, 1_000, 0), &seed(3));
    as_(bob());
    m.unstake(m.provider(bob()).unwrap().free()).unwrap();
    assert_eq!(provider_commit(&mut m, id3, bob(), &Outputs::honest(id3, 1)), Err(Error::InsufficientFreeStake));
    assert_eq!((state(&m, id3), m.provider(bob()).unwrap().locked), (JobState::AwaitingAccept, 0));
    ghost_check(&m, &everyone());
}

#[ink::test]
fn checked_job_pays_provider_and_verifier_exactly() {
    let mut m = market();
    let id = create(&mut m, django(), job_input(Some(0), 1, 1_000, BPS), &seed(9));
    as_(bob());
    m.accept_job(id).unwrap();
    let out = Outputs::honest(id, 1);
    provider_commit(&mut m, id, bob(), &out).unwrap();
    advance(1);
    reveal_seed(&mut m, id, django(), &seed(9)).unwrap();
    assert_eq!(state(&m, id), JobState::VerifierCommit);
    assert_eq!(sample_of(&m, id), vec![0]);
    let v = verifier(&m, id).unwrap();
    assert_eq!(v, charlie(), "the only other provider");
    let bond = m.job(id).unwrap().current_verifier().unwrap().bond;
    assert_eq!(bond, 2 * WND, "twice the 1 WND fee");
    assert_eq!(m.provider(charlie()).unwrap().locked, bond);
    // The verifier's window is the provider's compute window.
    assert_eq!(m.job(id).unwrap().core.phase_deadline, now() + 5);
    assert_eq!(provider_reveal(&mut m, id, bob(), &out), Err(Error::WrongState), "no reveal before the verifier commits");
    assert_eq!(verifier_commit(&mut m, id, bob(), &out), Err(Error::NotAuthorized));
    verifier_commit(&mut m, id, charlie(), &out).unwrap();
    assert_eq!(verifier_commit(&mut m, id, charlie(), &out), Err(Error::WrongState));
    advance(1);
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    assert_eq!(provider_reveal(&mut m, id, bob(), &out), Err(Error::AlreadyDone));
    verifier_reveal(&mut m, id, charlie(), &out, false).unwrap();
    assert_eq!(state(&m, id), JobState::Settled);
    assert_eq!(m.withdrawable_of(bob()), WND - WND / 50);
    assert_eq!(m.withdrawable_of(charlie()), WND, "the fee: 100 % of the re-executed work");
    assert_eq!(m.withdrawable_of(django()), 4 * WND);
    assert_eq!(m.provider(charlie()).unwrap().locked, 0);
    assert_eq!(m.provider(bob()).unwrap().reputation.checks_passed, 1);
    assert!(verifier_kinds(id, charlie()).contains(&VerifierEventKind::Paid { fee: WND }));
    ghost_check(&m, &everyone());
}

#[ink::test]
fn a_batch_reveals_only_its_sample_with_one_multiproof() {
    let mut m = market();
    register(&mut m, eve(), 50 * WND);
    let s = pick_seed(&m, bob(), |id| Outputs::honest(id, 100), 100, 1_000, true);
    let id = create(&mut m, django(), job_input(Some(0), 100, 10, 1_000), &s);
    as_(bob());
    m.accept_job(id).unwrap();
    let out = Outputs::honest(id, 100);
    provider_commit(&mut m, id, bob(), &out).unwrap();
    advance(1);
    reveal_seed(&mut m, id, django(), &s).unwrap();
    let sample = sample_of(&m, id);
    assert!(!sample.is_empty() && sample.len() < 40, "about 10 of 100: {}", sample.len());
    assert_eq!(m.job(id).unwrap().core.sampled, sample.len() as u32);
    let v = verifier(&m, id).unwrap();
    verifier_commit(&mut m, id, v, &out).unwrap();
    advance(1);
    // A leaf list of the wrong length, a wrong leaf, a proof of other indices: refused.
    let all = out.leaves();
    let leaves: Vec<_> = sample.iter().map(|&i| all[i as usize]).collect();
    let proof = merkle::multiproof::<H>(&all, &sample).unwrap();
    as_(bob());
    let salt = salt_of(bob(), id);
    let r = out.batch_root();
    assert_eq!(m.reveal(id, salt, Reveal::Provider { batch_root: r, leaves: leaves[1..].to_vec(), proof: proof.clone() }), Err(Error::BadProof));
    let mut bad = leaves.clone();
    bad[0] = [9; 32];
    assert_eq!(m.reveal(id, salt, Reveal::Provider { batch_root: r, leaves: bad, proof: proof.clone() }), Err(Error::BadProof));
    let other: Vec<u32> = sample.iter().map(|i| (i + 1) % 100).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let proof_other = merkle::multiproof::<H>(&all, &other).unwrap();
    assert_eq!(m.reveal(id, salt, Reveal::Provider { batch_root: r, leaves: leaves.clone(), proof: proof_other }), Err(Error::BadProof));
    provider_reveal(&mut m, id, bob(), &out).unwrap();
    verifier_reveal(&mut m, id, v, &out, false).unwrap();
    assert_eq!(state(&m, id), JobState::Settled);
    // Value 100 tasks × 10 units × PRICE = 1 WND; the verifier is paid for its sample only.
    let fee = econ::verifier_fee(10 * PRICE * sample.len() as Amount, 10_000);
    assert_eq!(m.withdrawable_of(v), fee);
    assert_eq!(m.withdrawable_of(django()), 6 * WND - WND - fee);
    ghost_check(&m, &[alice(), bob(), charlie(), django(), eve(), frank()]);
}

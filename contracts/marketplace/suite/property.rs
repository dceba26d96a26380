//! Random operation sequences, with random (valid) parameters, random stakes and job sizes
//! above the minimum stake, and parties that lie, fall silent, report falsely or call
//! anything in any state. After every step the ghost accounting holds and ended jobs never
//! change; after the sequence, with deadlines passing and `cleanup` called by a keeper,
//! every job ends within a bounded number of blocks.
//! `PROPTEST_SEQUENCES` (default 2,000) sets the number of sequences.
use super::sim::Rng;
use super::*;

#[test]
fn random_sequences_keep_the_books_and_every_job_ends() {
    let sequences: u64 = std::env::var("PROPTEST_SEQUENCES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let mut seen_ok = [0u64; 16];
    let mut ends: BTreeMap<String, u64> = BTreeMap::new();
    for seq in 0..sequences {
        ink::env::test::run_test::<E, _>(|_| {
            run_sequence(seq, &mut seen_ok, &mut ends);
            Ok(())
        })
        .unwrap();
    }
    println!("successful operations by kind: {seen_ok:?}\nterminal states: {ends:?}");
    // The walk reached every operation and every ending.
    assert!(seen_ok.iter().all(|n| *n > 0), "an operation never succeeded: {seen_ok:?}");
    for s in ["Settled", "Refunded", "Slashed", "Unavailable", "Unverified"] {
        assert!(ends.get(s).copied().unwrap_or(0) > 0, "no job ended {s}: {ends:?}");
    }
}

fn run_sequence(seq: u64, seen_ok: &mut [u64; 16], ends: &mut BTreeMap<String, u64>) {
    let mut rng = Rng(seq.wrapping_mul(7919) + 1);
    crate::test_chain::SALT.with(|s| s.set(seq));
    test::set_block_number::<E>(0);
    let providers: Vec<Address> = (0..5).map(acct).collect();
    let renters = [django(), eve()];
    let mut actors = providers.clone();
    actors.extend(renters);
    actors.push(frank());
    let mut all = actors.clone();
    all.push(alice());
    let mut m = fresh_with(&actors);
    let params = random_params(&mut rng);
    as_(alice());
    m.set_params(params).unwrap();
    for p in &providers {
        if rng.below(5) > 0 {
            register(&mut m, *p, (5 + rng.below(400)) as Amount * WND);
            list(&mut m, *p, PRICE * (1 + rng.below(3)) as Amount);
        }
    }
    advance(EPOCH);
    // What each party committed (to reveal it later) and each job's seed.
    let mut outputs: BTreeMap<(u64, Address), Outputs> = BTreeMap::new();
    let mut seeds: BTreeMap<u64, Hash32> = BTreeMap::new();
    let mut terminal: BTreeMap<u64, Job> = BTreeMap::new();
    for _ in 0..40 {
        let who = actors[rng.below(actors.len() as u64) as usize];
        let count = m.state().job_count;
        let job = rng.below(count + 1);
        let core = m.job(job).map(|j| j.core);
        let guided = rng.below(10) < 7;
        let op = match core.as_ref().map(|c| c.state) {
            Some(JobState::Open) if guided => [6, 6, 12][rng.below(3) as usize],
            Some(JobState::AwaitingAccept) if guided => 7,
            Some(JobState::Assigned) if guided => [9, 9, 9, 8][rng.below(4) as usize],
            Some(JobState::InputCheck) if guided => [8, 12][rng.below(2) as usize],
            Some(JobState::Committed) if guided => 10,
            Some(JobState::VerifierCommit) if guided => [9, 9, 8, 12][rng.below(4) as usize],
            Some(JobState::Reveal) if guided => 11,
            _ => rng.below(16),
        };
        // Usually the party the step needs.
        let who = match (&core, op) {
            (Some(c), 7 | 8 | 9 | 11) if rng.below(5) > 0 => {
                let j = m.job(job).unwrap();
                match j.current_verifier() {
                    Some(v) if matches!(c.state, JobState::InputCheck | JobState::VerifierCommit | JobState::Reveal) && rng.below(2) == 0 => v.account,
                    _ if c.has_provider() => c.provider,
                    _ => who,
                }
            }
            (Some(c), 10) if rng.below(5) > 0 => c.renter,
            _ => who,
        };
        let honest = rng.below(4) > 0;
        let r: Result<()> = match op {
            0 => paid(who, (1 + rng.below(50)) as Amount * WND / 2, || m.stake()),
            1 => {
                as_(who);
                m.unstake((1 + rng.below(40)) as Amount * WND / 2)
            }
            2 => {
                as_(who);
                m.complete_unstake()
            }
            3 => {
                as_(who);
                let id = if rng.below(2) == 0 { None } else { Some(rng.below(m.state().offer_count + 1)) };
                m.list_offer(id, offer_input(PRICE * (1 + rng.below(3)) as Amount, 1 + rng.below(5_000) as u32)).map(|_| ())
            }
            4 => {
                as_(who);
                m.remove_offer(rng.below(m.state().offer_count + 1))
            }
            5 => {
                let direct = rng.below(2) == 0 && m.state().offer_count > 0;
                let offer = direct.then(|| rng.below(m.state().offer_count));
                let tasks = 1 + rng.below(8) as u32;
                let value_units = (500 + rng.below(20_000)) / u64::from(tasks);
                let rate = [0, 1_000, 5_000, BPS][rng.below(4) as usize];
                let mut input = job_input(offer, tasks, value_units.max(1), rate);
                input.pay_if_unverified = rng.below(2) == 0;
                input.max_price_per_unit = 3 * PRICE;
                input.compute_blocks = 2 + rng.below(4) as u32;
                let s = rng.hash();
                let escrow = escrow_of(&m, &input);
                let c = hash::seed_commitment::<H>(&s);
                let r = paid(who, escrow, || m.create_job(input, c));
                if let Ok(id) = r {
                    seeds.insert(id, s);
                }
                r.map(|_| ())
            }
            6 => {
                as_(who);
                let offer = rng.below(m.state().offer_count + 1);
                m.bid(job, offer, PRICE * (1 + rng.below(3)) as Amount / 2)
            }
            7 => {
                as_(who);
                m.accept_job(job)
            }
            8 => {
                as_(who);
                let available = rng.below(2) == 0;
                m.report(job, available)
            }
            9 => match &core {
                Some(c) if c.state == JobState::Assigned && who == c.provider => {
                    let out = if honest { Outputs::honest(job, c.tasks) } else { Outputs::fake(job, c.tasks, 1) };
                    outputs.insert((job, who), out.clone());
                    provider_commit(&mut m, job, who, &out)
                }
                Some(c) if c.state == JobState::VerifierCommit => {
                    let out = if honest { Outputs::honest(job, c.tasks) } else { Outputs::fake(job, c.tasks, 2) };
                    outputs.insert((job, who), out.clone());
                    verifier_commit(&mut m, job, who, &out)
                }
                _ => {
                    as_(who);
                    m.commit(job, rng.hash())
                }
            },
            10 => {
                let s = if honest { seeds.get(&job).copied().unwrap_or_default() } else { rng.hash() };
                reveal_seed(&mut m, job, who, &s)
            }
            11 => match (&core, outputs.get(&(job, who)).cloned()) {
                (Some(c), Some(out)) if who == c.provider => provider_reveal(&mut m, job, who, &out),
                (Some(_), Some(out)) => {
                    let r = verifier_reveal(&mut m, job, who, &out, false);
                    if r == Err(Error::RootsRequired) {
                        verifier_reveal(&mut m, job, who, &out, true)
                    } else {
                        r
                    }
                }
                _ => {
                    as_(who);
                    m.reveal(job, rng.hash(), Reveal::Verifier { answer: rng.hash(), roots: vec![] })
                }
            },
            12 => cleanup(&mut m, job),
            13 => {
                as_(who);
                m.withdraw().map(|_| ())
            }
            14 => {
                as_(if rng.below(4) == 0 { who } else { alice() });
                m.set_params(random_params(&mut rng))
            }
            _ => {
                advance(1 + rng.below(6) as u32);
                Ok(())
            }
        };
        if r.is_ok() {
            seen_ok[op as usize] += 1;
        }
        ghost_check(&m, &all);
        for (id, j) in &terminal {
            assert_eq!(&m.job(*id).unwrap(), j, "ended job {id} changed");
        }
        for id in 0..m.state().job_count {
            let j = m.job(id).unwrap();
            if j.core.state.is_terminal() {
                terminal.entry(id).or_insert(j);
            }
        }
    }
    // A keeper calls cleanup on everything as deadlines pass: every job ends, in bounded blocks.
    let start = now();
    loop {
        let live: Vec<u64> = (0..m.state().job_count).filter(|id| !state(&m, *id).is_terminal()).collect();
        if live.is_empty() {
            break;
        }
        assert!(now() - start < 3 * EPOCH, "jobs {live:?} did not end in 3 epochs");
        advance(1);
        for id in live {
            let _ = cleanup(&mut m, id);
            ghost_check(&m, &all);
        }
    }
    for id in 0..m.state().job_count {
        *ends.entry(format!("{:?}", state(&m, id))).or_default() += 1;
    }
    // Everyone withdraws: what stays is exactly the stakes and the treasury.
    for a in &all {
        as_(*a);
        let _ = m.withdraw();
    }
    let t = m.state().totals;
    assert_eq!(t.withdrawable, 0);
    assert_eq!(m.contract_balance(), t.stakes + t.treasury);
}

fn random_params(rng: &mut Rng) -> Params {
    Params {
        protocol_fee_bps: rng.below(u64::from(MAX_PROTOCOL_FEE_BPS) + 1) as u16,
        verifier_fee_bps: rng.below(u64::from(MAX_VERIFIER_FEE_BPS) + 1) as u16,
        default_check_rate_bps: rng.below(10_001) as u16,
        min_stake: (1 + rng.below(40)) as Amount * WND / 10,
        accept_window: 2 + rng.below(4) as u32,
        bid_window: 2 + rng.below(4) as u32,
        reveal_window: 2 + rng.below(4) as u32,
        unstake_cooldown: 2 + rng.below(8) as u32,
    }
}

//! The adversarial market simulation: random markets per strategy (`SIM_MARKETS`, 120 by
//! default, thousands for the recorded table), each with
//! an honest majority and one adversary (or coalition), driven job by job through the
//! contract. For every strategy it prints the adversary's mean profit per job, with a 95 %
//! confidence interval, beside the profit of an honest participant in the same role, and
//! asserts that the adversary's *excess* over playing honestly is below zero (or exactly
//! zero where the rules make the strategy impossible).
//!
//! Profit is money: what an account holds inside the contract (withdrawable, stake,
//! unbonding) and outside it, minus the compute it spent. Honest work costs
//! [`COST_BPS`] of its market value (the provider's margin); a cheater or a lazy verifier
//! spends nothing. Markets use the default economics (2 % protocol fee, verifier fee = the
//! value of the re-executed work, 10 % check rate, 1 WND minimum stake) and job values from
//! 0.5 to 20 WND, above the minimum stake, so locks are sized by value, not by the floor.
//!
//! `SIM_MARKETS` (default 120 per strategy row) scales the run.
use super::*;
use crate::marketplace::Marketplace;
use std::collections::{BTreeMap, BTreeSet};

/// Honest work costs this share of its value.
pub const COST_BPS: u16 = 5_000;
/// The check rate of the simulated jobs.
const RATE: u16 = 1_000;

/// A tiny deterministic generator (splitmix64).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn hash(&mut self) -> Hash32 {
        sha(&[&self.next().to_le_bytes()])
    }
}

/// What a provider does with a job it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Computes every task.
    Honest,
    /// Computes nothing and commits made-up outputs.
    Skip,
    /// Computes all but one task.
    SkipOne,
    /// Takes jobs and never commits (the auction griefer).
    NeverCommit,
}

/// What an account does when drawn as a verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duty {
    Honest,
    /// Answers whatever its coalition's provider committed (else honest).
    Collude,
    /// Answers a made-up output of its coalition when its coalition rents (framing).
    Frame,
    /// Never computes: commits a made-up answer.
    Lazy,
}

/// What a renter does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renting {
    Honest,
    /// Never reveals its seed.
    Silent,
    /// Serves no inputs after the assignment.
    Withhold,
    /// Posts kernels too long to finish: no provider or verifier can execute them.
    Overlong,
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub addr: Address,
    pub work: Work,
    pub duty: Duty,
    pub renting: Renting,
    /// Agents of one coalition (>0) act together.
    pub coalition: u8,
    pub offer: Option<u64>,
    /// The lowest price per unit it bids in auctions (none: it does not bid).
    pub reserve: Option<Amount>,
    /// It bids only in an auction's last block, one tick under the best bid.
    pub sniper: bool,
}

impl Agent {
    pub fn honest(addr: Address) -> Self {
        Self { addr, work: Work::Honest, duty: Duty::Honest, renting: Renting::Honest, coalition: 0, offer: None, reserve: None, sniper: false }
    }
}

/// One market: the contract, its agents, and what they spent on compute.
pub struct Market {
    pub m: Marketplace,
    pub agents: Vec<Agent>,
    pub spent: BTreeMap<Address, Amount>,
    pub rng: Rng,
    /// Per job: the inputs cannot be fetched or executed (a griefing renter's job).
    broken: BTreeSet<u64>,
    /// Per (job, verifier): the outputs it committed to (None: a made-up answer).
    answers: BTreeMap<(u64, Address), Option<Outputs>>,
    /// Stake moves an attacker makes between a commitment and its draw.
    pub on_commit: Option<fn(&mut Market, u64)>,
    /// A grinding Sybil's top-up is in and must come out after the draw.
    pub grinding: bool,
    pub jobs: Vec<u64>,
}

fn agent_of(agents: &[Agent], a: Address) -> Agent {
    agents.iter().find(|x| x.addr == a).cloned().unwrap_or_else(|| Agent::honest(a))
}

impl Market {
    /// A market: `agents` (the first ones providers with `stakes[i]`, the rest renters),
    /// the providers' stake bonded one epoch before any job.
    pub fn new(seed: u64, agents: Vec<Agent>, stakes: &[Amount]) -> Self {
        test::set_block_number::<E>(0);
        crate::test_chain::SALT.with(|s| s.set(seed));
        let addrs: Vec<Address> = agents.iter().map(|a| a.addr).collect();
        let m = fresh_with(&addrs);
        let mut market = Self {
            m,
            agents,
            spent: BTreeMap::new(),
            rng: Rng(seed),
            broken: BTreeSet::new(),
            answers: BTreeMap::new(),
            on_commit: None,
            grinding: false,
            jobs: vec![],
        };
        as_(alice());
        market.m.set_params(Params { accept_window: 3, bid_window: 3, reveal_window: 3, unstake_cooldown: 5, ..Params::default() }).unwrap();
        for (i, stake) in stakes.iter().enumerate() {
            let a = market.agents[i].addr;
            register(&mut market.m, a, *stake);
            let id = list(&mut market.m, a, PRICE);
            market.agents[i].offer = Some(id);
        }
        advance(EPOCH);
        market
    }

    pub fn agent(&self, a: Address) -> Agent {
        agent_of(&self.agents, a)
    }

    /// The value of the work a renter received from job `id` (its price, if it was paid
    /// for: settled, or unverified and paid), which a renter's profit counts beside money.
    pub fn received(&self, id: u64) -> Amount {
        let c = self.m.job(id).unwrap().core;
        let paid = match c.state {
            JobState::Settled => true,
            JobState::Unverified => job_kinds(id).iter().any(|k| matches!(k, JobEventKind::Unverified { paid: true, .. })),
            _ => false,
        };
        if paid { c.value() } else { 0 }
    }

    /// Everything `a` owns, inside the contract and out, minus the compute it spent.
    pub fn wealth(&self, a: Address) -> i128 {
        let inside = self.m.withdrawable_of(a) + self.m.provider(a).map_or(0, |p| p.stake + p.unbonding);
        (balance_of(a) + inside) as i128 - self.spent.get(&a).copied().unwrap_or(0) as i128
    }

    fn spend(&mut self, a: Address, amount: Amount) {
        *self.spent.entry(a).or_default() += amount;
    }

    fn accounts(&self) -> Vec<Address> {
        let mut v: Vec<Address> = self.agents.iter().map(|a| a.addr).collect();
        v.extend([alice(), frank()]);
        v
    }

    /// The outputs a provider of `work` commits for job `id`.
    fn provider_outputs(&self, id: u64, tasks: u32, work: Work) -> Outputs {
        match work {
            Work::Honest | Work::NeverCommit => Outputs::honest(id, tasks),
            Work::Skip => Outputs::fake(id, tasks, 1),
            Work::SkipOne => Outputs::one_wrong(id, tasks, tasks / 2),
        }
    }

    /// Creates a job of `tasks` tasks worth about `value` at `PRICE` for `renter`: a direct
    /// hire of `provider`'s offer, or an auction (`None`).
    pub fn create(&mut self, renter: Address, provider: Option<Address>, tasks: u32, value: Amount, rate: u16) -> u64 {
        let units = (value / PRICE / Amount::from(tasks)).max(1) as u64;
        let offer = provider.map(|p| self.agent(p).offer.expect("a provider"));
        let mut input = job_input(offer, tasks, units, rate);
        input.max_price_per_unit = PRICE;
        let s = self.rng.hash();
        let id = create(&mut self.m, renter, input, &s);
        if matches!(self.agent(renter).renting, Renting::Withhold | Renting::Overlong) {
            self.broken.insert(id);
        }
        seeds_insert(id, s);
        self.jobs.push(id);
        id
    }

    /// Drives job `id` to its end, every party acting by its strategy.
    pub fn run(&mut self, id: u64) {
        for _ in 0..400 {
            let j = self.m.job(id).unwrap();
            let c = j.core.clone();
            if self.grinding && c.state != JobState::Committed {
                as_(acct(1));
                self.m.unstake(8_000 * WND).unwrap();
                self.grinding = false;
            }
            if c.state.is_terminal() {
                ghost_check(&self.m, &self.accounts());
                return;
            }
            let acted = self.step(id, &j);
            ghost_check(&self.m, &self.accounts());
            if !acted {
                advance(1);
                if now() > c.phase_deadline || c.draw_at.is_some_and(|b| b < now()) {
                    cleanup(&mut self.m, id).unwrap();
                }
            }
        }
        panic!("job {id} did not end");
    }

    /// One action on job `id` by whoever owes one now; false if nobody can act this block.
    fn step(&mut self, id: u64, j: &Job) -> bool {
        let c = &j.core;
        if c.draw_at.is_some() {
            return false;
        }
        let provider = self.agent(c.provider);
        let broken = self.broken.contains(&id);
        match c.state {
            JobState::AwaitingAccept => {
                as_(c.provider);
                self.m.accept_job(id).is_ok()
            }
            JobState::Open => {
                // Truthful bidders bid their reserve at once; a sniper waits for the last
                // block and undercuts the best bid by one tick.
                let tick = PRICE / 1_000;
                let bidders: Vec<Agent> = self.agents.iter().filter(|a| a.reserve.is_some() && a.addr != c.renter).cloned().collect();
                let mut acted = false;
                for a in bidders {
                    let reserve = a.reserve.unwrap();
                    let best = if c.has_provider() { Some(c.price_per_unit) } else { None };
                    let price = if a.sniper {
                        if now() != self.m.job(id).unwrap().core.phase_deadline || c.provider == a.addr {
                            continue;
                        }
                        best.map_or(reserve, |b| b.saturating_sub(tick)).max(reserve)
                    } else {
                        reserve
                    };
                    if best.is_some_and(|b| price >= b) || c.provider == a.addr {
                        continue;
                    }
                    as_(a.addr);
                    acted |= self.m.bid(id, a.offer.unwrap(), price).is_ok();
                    break;
                }
                acted
            }
            JobState::Assigned => {
                if provider.work == Work::NeverCommit {
                    return false;
                }
                if broken {
                    if c.reported {
                        return false;
                    }
                    as_(c.provider);
                    return self.m.report(id, false).is_ok();
                }
                let out = self.provider_outputs(id, c.tasks, provider.work);
                if provider.work == Work::Honest {
                    self.spend(c.provider, econ::bps_of(c.value(), COST_BPS));
                } else if provider.work == Work::SkipOne {
                    self.spend(c.provider, econ::bps_of(c.value() - c.task_value(), COST_BPS));
                }
                let ok = provider_commit(&mut self.m, id, c.provider, &out).is_ok();
                if ok {
                    if let Some(f) = self.on_commit {
                        f(self, id);
                    }
                }
                ok
            }
            JobState::InputCheck => {
                let Some(v) = j.current_verifier() else { return false };
                let duty = self.agent(v.account);
                // A colluder helps its provider; anyone else tells what it finds.
                let available = if duty.duty == Duty::Collude && duty.coalition != 0 && duty.coalition == provider.coalition {
                    false
                } else {
                    !broken
                };
                self.spend(v.account, econ::bps_of(c.task_value(), COST_BPS / 10));
                as_(v.account);
                self.m.report(id, available).is_ok()
            }
            JobState::Committed => {
                let renter = self.agent(c.renter);
                if renter.renting == Renting::Silent || now() <= c.commit_block {
                    return false;
                }
                let s = seeds_get(id);
                reveal_seed(&mut self.m, id, c.renter, &s).is_ok()
            }
            JobState::VerifierCommit => {
                let Some(v) = j.current_verifier() else { return false };
                if v.has_committed() {
                    return false;
                }
                if broken {
                    as_(v.account);
                    return self.m.report(id, false).is_ok();
                }
                let me = self.agent(v.account);
                let renter = self.agent(c.renter);
                let k = Amount::from(c.sampled);
                let out = match me.duty {
                    Duty::Collude if me.coalition != 0 && me.coalition == provider.coalition => {
                        Some(self.provider_outputs(id, c.tasks, provider.work))
                    }
                    Duty::Frame if me.coalition != 0 && me.coalition == renter.coalition => Some(Outputs::fake(id, c.tasks, 77)),
                    Duty::Lazy => None,
                    _ => {
                        self.spend(v.account, econ::bps_of(c.task_value() * k, COST_BPS));
                        Some(Outputs::honest(id, c.tasks))
                    }
                };
                let answer = match &out {
                    Some(o) => o.answer(id, &sample_of(&self.m, id)),
                    None => self.rng.hash(),
                };
                self.answers.insert((id, v.account), out);
                as_(v.account);
                self.m.commit(id, hash::verifier_commitment::<H>(id, v.account, &answer, &salt_of(v.account, id))).is_ok()
            }
            JobState::Reveal => {
                let mut acted = false;
                if c.batch_root == [0; 32] && now() > c.commit_block {
                    let out = self.provider_outputs(id, c.tasks, provider.work);
                    acted |= provider_reveal(&mut self.m, id, c.provider, &out).is_ok();
                }
                let j = self.m.job(id).unwrap();
                if let Some(v) = j.current_verifier().filter(|v| v.has_committed() && !v.has_revealed()) {
                    if now() > v.committed_at {
                        match self.answers.get(&(id, v.account)).cloned().flatten() {
                            Some(out) => {
                                let r = verifier_reveal(&mut self.m, id, v.account, &out, false);
                                let r = if r == Err(Error::RootsRequired) { verifier_reveal(&mut self.m, id, v.account, &out, true) } else { r };
                                acted |= r.is_ok();
                            }
                            None => {
                                // A made-up answer: reveal it as is (no roots behind it).
                                as_(v.account);
                                let _ = self.m.reveal(id, salt_of(v.account, id), Reveal::Verifier { answer: [1; 32], roots: vec![] });
                            }
                        }
                    }
                }
                acted
            }
            _ => false,
        }
    }
}

thread_local! {
    static SEEDS: std::cell::RefCell<BTreeMap<u64, Hash32>> = const { std::cell::RefCell::new(BTreeMap::new()) };
}
fn seeds_insert(id: u64, s: Hash32) {
    SEEDS.with(|m| m.borrow_mut().insert(id, s));
}
fn seeds_get(id: u64) -> Hash32 {
    SEEDS.with(|m| m.borrow()[&id])
}

/// Mean and 95 % half-width of a sample.
pub fn mean_ci(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, 1.96 * (var / n).sqrt())
}

/// One row of the strategy table: the adversary's and an honest participant's profit per
/// job (in WND), per market.
pub struct Row {
    pub name: &'static str,
    pub adversary: Vec<f64>,
    pub honest: Vec<f64>,
}

impl Row {
    pub fn excess(&self) -> (f64, f64) {
        let d: Vec<f64> = self.adversary.iter().zip(&self.honest).map(|(a, h)| a - h).collect();
        mean_ci(&d)
    }
}

pub fn markets() -> u64 {
    std::env::var("SIM_MARKETS").ok().and_then(|v| v.parse().ok()).unwrap_or(120)
}

pub fn wnd(x: i128) -> f64 {
    x as f64 / WND as f64
}

/// Prints the strategy table (markdown, for BENCHMARKS.md).
pub fn print_table(title: &str, rows: &[Row]) {
    println!("\n{title}\n");
    println!("| strategy | adversary profit per job (WND, 95 % CI) | honest profit per job, same role | excess over honest (95 % CI) |");
    println!("|---|---|---|---|");
    for r in rows {
        let (a, ac) = mean_ci(&r.adversary);
        let (h, hc) = mean_ci(&r.honest);
        let (e, ec) = r.excess();
        println!("| {} | {a:+.4} ± {ac:.4} | {h:+.4} ± {hc:.4} | {e:+.4} ± {ec:.4} |", r.name);
    }
}

// ------------------------------------------------------------------ the strategies

/// Honest providers (coalition 0) and the renters of a market.
fn crowd(first: u16, providers: u16) -> Vec<Agent> {
    (first..first + providers).map(|i| Agent::honest(acct(i))).collect()
}

const RENTER: u16 = 900;

/// A provider running `jobs` jobs of `tasks` tasks by `work`, with a coalition of Sybil
/// verifiers holding `share_bps` of the verifier weight; returns (its profit per job, an
/// honest provider's in the same market) for one market.
fn provider_market(seed: u64, work: Work, tasks: u32, share_bps: u16, grind: bool) -> (f64, f64) {
    let n_honest = 8u16;
    let stake = 400 * WND;
    // The coalition: the cheater (acct 0) plus Sybil verifiers (acct 1) whose stake is
    // `share` of all the verifier weight.
    let mut agents = vec![Agent { coalition: 1, work, ..Agent::honest(acct(0)) }];
    let honest_weight = stake * Amount::from(n_honest);
    let sybil = if share_bps == 0 { 0 } else { honest_weight * Amount::from(share_bps) / Amount::from(BPS - share_bps) };
    agents.push(Agent { coalition: 1, duty: Duty::Collude, ..Agent::honest(acct(1)) });
    agents.extend(crowd(10, n_honest));
    agents.push(Agent::honest(acct(RENTER)));
    let mut stakes = vec![stake, sybil.max(WND)];
    stakes.extend(std::iter::repeat_n(stake, n_honest as usize));
    let mut mk = Market::new(seed, agents, &stakes);
    if grind {
        // Between each commitment and its draw the Sybil tops its stake up to 2.5× all the
        // honest weight (taking it out again right after the draw, well inside an epoch).
        mk.on_commit = Some(|mk, _| {
            if now() % EPOCH < EPOCH - 20 {
                register(&mut mk.m, acct(1), 8_000 * WND);
                mk.grinding = true;
            }
        });
    }
    let cheater = acct(0);
    let honest = acct(10);
    let coalition_start = mk.wealth(cheater) + mk.wealth(acct(1));
    let honest_start = mk.wealth(honest);
    let jobs = 12;
    for _ in 0..jobs {
        let value = (1 + mk.rng.below(20)) as Amount * WND / 2;
        for p in [cheater, honest] {
            let id = mk.create(acct(RENTER), Some(p), tasks, value, RATE);
            mk.run(id);
        }
    }
    let coalition = mk.wealth(cheater) + mk.wealth(acct(1)) - coalition_start;
    (wnd(coalition) / jobs as f64, wnd(mk.wealth(honest) - honest_start) / jobs as f64)
}

fn run_rows<F: Fn(u64) -> (f64, f64)>(name: &'static str, f: F) -> Row {
    let mut row = Row { name, adversary: vec![], honest: vec![] };
    for seed in 0..markets() {
        let mut out = (0.0, 0.0);
        ink::env::test::run_test::<E, _>(|_| {
            out = f(seed + 1);
            Ok(())
        })
        .unwrap();
        row.adversary.push(out.0);
        row.honest.push(out.1);
    }
    row
}

/// Renter strategies: (the renter's profit per job, an honest renter's per job, and the
/// worst an honest provider did in the market) for one market. A renter's profit is its
/// money plus the value of the work it received (what it paid for it).
fn renter_market(seed: u64, renting: Renting) -> (f64, f64, f64) {
    let mut agents = crowd(10, 6);
    agents.push(Agent { renting, ..Agent::honest(acct(RENTER)) });
    agents.push(Agent::honest(acct(RENTER + 1)));
    let stakes = vec![400 * WND; 6];
    let mut mk = Market::new(seed, agents, &stakes);
    let providers: Vec<Address> = (10..16).map(acct).collect();
    let start: Vec<i128> = providers.iter().map(|p| mk.wealth(*p)).collect();
    let (g0, h0) = (mk.wealth(acct(RENTER)), mk.wealth(acct(RENTER + 1)));
    let jobs = 10;
    let mut got = [0i128; 2];
    for k in 0..jobs {
        let value = (1 + mk.rng.below(20)) as Amount * WND / 2;
        let p = providers[k % providers.len()];
        for (i, r) in [acct(RENTER), acct(RENTER + 1)].into_iter().enumerate() {
            let id = mk.create(r, Some(p), 1, value, RATE);
            mk.run(id);
            got[i] += mk.received(id) as i128;
        }
    }
    let worst = providers.iter().zip(&start).map(|(p, s)| mk.wealth(*p) - s).min().unwrap();
    let per_job = |x: i128| wnd(x) / jobs as f64;
    (per_job(mk.wealth(acct(RENTER)) - g0 + got[0]), per_job(mk.wealth(acct(RENTER + 1)) - h0 + got[1]), wnd(worst))
}

/// A lazy verifier (never computes, commits made-up answers) against an honest verifier of
/// the same stake, in a market whose jobs are all checked and where one provider cheats
/// (so there are disputes to decide): their profit per job of the market.
fn lazy_market(seed: u64) -> (f64, f64) {
    let mut agents = vec![Agent { work: Work::Skip, ..Agent::honest(acct(0)) }, Agent { duty: Duty::Lazy, ..Agent::honest(acct(2)) }];
    agents.extend(crowd(10, 5));
    agents.push(Agent::honest(acct(RENTER)));
    let mut mk = Market::new(seed, agents, &[400 * WND; 7]);
    let (l0, h0) = (mk.wealth(acct(2)), mk.wealth(acct(11)));
    let jobs = 12;
    for k in 0..jobs {
        let value = (1 + mk.rng.below(20)) as Amount * WND / 2;
        let p = if k % 3 == 0 { acct(0) } else { acct(10 + (k % 5) as u16) };
        let id = mk.create(acct(RENTER), Some(p), 1, value, BPS);
        mk.run(id);
    }
    (wnd(mk.wealth(acct(2)) - l0) / jobs as f64, wnd(mk.wealth(acct(11)) - h0) / jobs as f64)
}

/// A renter whose Sybil verifiers (20 % of the weight) try to frame the providers it hires
/// (`frame`), or the same coalition playing honestly: the coalition's profit per job (money
/// plus the value of the work received), an honest renter's, and the honest providers'
/// money per job.
fn framing_market(seed: u64, frame: bool) -> (f64, f64, f64) {
    let mut agents = crowd(10, 6);
    agents.push(Agent { coalition: 2, ..Agent::honest(acct(RENTER)) });
    agents.push(Agent::honest(acct(RENTER + 1)));
    let duty = if frame { Duty::Frame } else { Duty::Honest };
    agents.push(Agent { coalition: 2, duty, ..Agent::honest(acct(1)) });
    let honest_weight = 400 * WND * 5; // the hired provider is never drawn for its own job
    let mut stakes = vec![400 * WND; 6];
    stakes.extend([0, 0]);
    let sybil = honest_weight / 4; // 20 % of the eligible weight
    let mut mk = Market::new(seed, agents.clone(), &stakes[..6]);
    register(&mut mk.m, acct(1), sybil);
    advance(EPOCH);
    let providers: Vec<Address> = (10..16).map(acct).collect();
    let p0: i128 = providers.iter().map(|p| mk.wealth(*p)).sum();
    let (c0, h0) = (mk.wealth(acct(RENTER)) + mk.wealth(acct(1)), mk.wealth(acct(RENTER + 1)));
    let jobs = 12;
    let mut got = [0i128; 2];
    for k in 0..jobs {
        let value = (1 + mk.rng.below(20)) as Amount * WND / 2;
        for (i, r) in [acct(RENTER), acct(RENTER + 1)].into_iter().enumerate() {
            let id = mk.create(r, Some(providers[k % 6]), 1, value, RATE);
            mk.run(id);
            got[i] += mk.received(id) as i128;
        }
    }
    let p1: i128 = providers.iter().map(|p| mk.wealth(*p)).sum();
    (
        wnd(mk.wealth(acct(RENTER)) + mk.wealth(acct(1)) - c0 + got[0]) / jobs as f64,
        wnd(mk.wealth(acct(RENTER + 1)) - h0 + got[1]) / jobs as f64,
        wnd(p1 - p0) / (2 * jobs) as f64,
    )
}

/// A renter hiring its own Sybil provider (unchecked, no work done) to pump reputation and
/// the price index: the coalition's money per job (the honest alternative is not trading).
fn wash_market(seed: u64) -> (f64, f64) {
    let mut agents = vec![Agent { coalition: 3, work: Work::Skip, ..Agent::honest(acct(0)) }];
    agents.extend(crowd(10, 3));
    agents.push(Agent { coalition: 3, ..Agent::honest(acct(RENTER)) });
    let mut mk = Market::new(seed, agents, &[400 * WND; 4]);
    let w0 = mk.wealth(acct(0)) + mk.wealth(acct(RENTER));
    let jobs = 12;
    for _ in 0..jobs {
        let value = (1 + mk.rng.below(20)) as Amount * WND / 2;
        let id = mk.create(acct(RENTER), Some(acct(0)), 1, value, 0);
        mk.run(id);
    }
    (wnd(mk.wealth(acct(0)) + mk.wealth(acct(RENTER)) - w0) / jobs as f64, 0.0)
}

/// Auctions with truthful bidders and one sniper: what the renter paid above the lowest
/// honest reserve, per job (a sniper can win only by undercutting, never raise the price).
fn sniper_market(seed: u64) -> (f64, f64) {
    let mut agents = crowd(10, 4);
    let mut rng = Rng(seed);
    for a in agents.iter_mut() {
        a.reserve = Some(PRICE * (800 + rng.below(200)) as Amount / 1_000);
    }
    agents.push(Agent { sniper: true, reserve: Some(PRICE * (800 + rng.below(200)) as Amount / 1_000), ..Agent::honest(acct(5)) });
    agents.push(Agent::honest(acct(RENTER)));
    let lowest_honest = agents.iter().filter(|a| !a.sniper).filter_map(|a| a.reserve).min().unwrap();
    let mut mk = Market::new(seed, agents, &[400 * WND; 5]);
    let jobs = 8;
    let mut premium = 0i128;
    for _ in 0..jobs {
        let units = 1 + mk.rng.below(5_000) as u64;
        let id = mk.create(acct(RENTER), None, 1, Amount::from(units) * PRICE, RATE);
        mk.run(id);
        let c = mk.m.job(id).unwrap().core;
        if c.state == JobState::Settled {
            premium += (c.price_per_unit as i128 - lowest_honest as i128) * i128::from(c.units_per_task);
        }
    }
    (wnd(premium.max(0)) / jobs as f64, 0.0)
}

/// The admin changes every parameter while jobs run: what the honest parties of those
/// jobs got, against the same market without the change (exactly equal: excess 0).
fn admin_market(seed: u64, change: bool) -> (f64, f64) {
    let mut agents = crowd(10, 4);
    agents.push(Agent::honest(acct(RENTER)));
    let mut mk = Market::new(seed, agents, &[400 * WND; 4]);
    let honest: Vec<Address> = (10..14).map(acct).chain([acct(RENTER)]).collect();
    let w0: i128 = honest.iter().map(|a| mk.wealth(*a)).sum();
    let t0 = mk.m.state().totals.treasury;
    let mut ids = vec![];
    for k in 0..8 {
        let value = (1 + mk.rng.below(20)) as Amount * WND / 2;
        ids.push(mk.create(acct(RENTER), Some(acct(10 + (k % 4) as u16)), 1, value, RATE));
    }
    if change {
        as_(alice());
        mk.m.set_params(Params {
            protocol_fee_bps: MAX_PROTOCOL_FEE_BPS,
            verifier_fee_bps: 0,
            min_stake: 50 * WND,
            reveal_window: 2,
            ..test_params()
        })
        .unwrap();
    }
    for id in ids {
        mk.run(id);
    }
    let w1: i128 = honest.iter().map(|a| mk.wealth(*a)).sum();
    (wnd(w1 - w0) / 8.0, wnd((mk.m.state().totals.treasury - t0) as i128) / 8.0)
}

#[test]
fn strategy_table() {
    let mut rows = vec![];
    // Providers that skip work, alone and with Sybil verifiers; a stake-grinding Sybil.
    rows.push(run_rows("cheater skips all work (N = 1)", |s| provider_market(s, Work::Skip, 1, 0, false)));
    rows.push(run_rows("cheater skips one task of 20", |s| provider_market(s, Work::SkipOne, 20, 0, false)));
    for (name, share) in [("cheater + Sybil verifiers, 5 % of weight", 500u16), ("cheater + Sybil verifiers, 10 %", 1_000), ("cheater + Sybil verifiers, 20 %", 2_000)] {
        rows.push(run_rows(name, move |s| provider_market(s, Work::Skip, 1, share, false)));
    }
    rows.push(run_rows("stake-grinding Sybil (tops up after each commit)", |s| provider_market(s, Work::Skip, 1, 500, true)));
    rows.push(run_rows("non-committing auction griefer", |s| provider_market(s, Work::NeverCommit, 1, 0, false)));
    rows.push(run_rows("lazy verifier (made-up answers)", lazy_market));
    // Griefing renters: the adversary's money per job against an honest renter's.
    let mut worst_provider = f64::INFINITY;
    for (name, r) in [("renter withholds inputs", Renting::Withhold), ("renter posts over-long kernels", Renting::Overlong), ("renter never reveals its seed", Renting::Silent)] {
        let mut row = Row { name, adversary: vec![], honest: vec![] };
        for seed in 0..markets() {
            let mut out = (0.0, 0.0, 0.0);
            ink::env::test::run_test::<E, _>(|_| {
                out = renter_market(seed + 1, r);
                Ok(())
            })
            .unwrap();
            row.adversary.push(out.0);
            row.honest.push(out.1);
            worst_provider = worst_provider.min(out.2);
        }
        rows.push(row);
    }
    // Framing: the coalition against the same coalition playing honestly (same market).
    let mut framed = vec![];
    let mut row = Row { name: "framing renter + Sybil verifiers, 20 % (vs. the same coalition honest)", adversary: vec![], honest: vec![] };
    for seed in 0..markets() {
        for frame in [true, false] {
            let mut out = (0.0, 0.0, 0.0);
            ink::env::test::run_test::<E, _>(|_| {
                out = framing_market(seed + 1, frame);
                Ok(())
            })
            .unwrap();
            if frame {
                row.adversary.push(out.0);
                framed.push(out.2);
            } else {
                row.honest.push(out.0);
            }
        }
    }
    rows.push(row);
    rows.push(run_rows("self-hiring wash trader", wash_market));
    let sniper = run_rows("auction sniper (renter's premium over the lowest honest reserve)", sniper_market);
    let mut admin = Row { name: "admin changes every parameter mid-job (honest parties' money)", adversary: vec![], honest: vec![] };
    for seed in 0..markets().min(40) {
        for change in [true, false] {
            let mut out = (0.0, 0.0);
            ink::env::test::run_test::<E, _>(|_| {
                out = admin_market(seed + 1, change);
                Ok(())
            })
            .unwrap();
            if change { admin.adversary.push(out.0) } else { admin.honest.push(out.0) }
        }
    }
    print_table("Strategy table (contract v3), profit per job in WND", &rows);
    print_table("Strategies the rules make impossible (exactly zero)", &[sniper, admin]);
    let (fm, fci) = mean_ci(&framed);
    println!("
honest providers' money per job in the framing markets: {fm:+.4} ± {fci:.4} WND");
    for r in &rows {
        let (e, ci) = r.excess();
        assert!(e + ci < 0.0, "{}: excess {e:+.4} ± {ci:.4} is not below zero", r.name);
    }
    assert!(worst_provider >= 0.0, "an honest provider lost {worst_provider} WND to a griefing renter");
}

#[test]
fn impossible_strategies_gain_exactly_nothing() {
    for seed in 1..=6 {
        let mut runs = vec![];
        for change in [true, false] {
            ink::env::test::run_test::<E, _>(|_| {
                runs.push(admin_market(seed, change));
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(runs[0], runs[1], "a mid-job parameter change moved money (seed {seed})");
        let mut premium = 0.0;
        ink::env::test::run_test::<E, _>(|_| {
            premium = sniper_market(seed).0;
            Ok(())
        })
        .unwrap();
        assert_eq!(premium, 0.0, "a sniper raised the price (seed {seed})");
    }
}

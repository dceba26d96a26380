//! The market folded from its events: one row per job (its timeline, who won at what
//! price, how many tasks were checked, where the money went, who was slashed) and one per
//! account (stake, payouts, verifier fees, slashes). The one folding library: `capacloud
//! summary` prints it, the indexer stores it.
//!
//! [`Fold::apply`] takes events one at a time in chain order, so a follower can fold as it
//! goes; nothing here reads the chain except [`summarize`].

use crate::chain::{ChainError, ContractEvent};
use crate::marketplace::{
    AccountEvent, AccountEventKind, Amount, Event, JobEvent, JobEventKind, JobState, MarketEvent, MarketEventKind,
    OfferInfo, RefundReason, Reputation, SlashReason, VerifierEvent, VerifierEventKind,
};
use codec::Decode;
use crate::Marketplace;
use std::collections::BTreeMap;
use subxt::utils::H160;

/// Where an event stands in the chain: block and index among the contract's events of
/// that block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct At {
    pub block: u32,
    pub index: u32,
}

/// One job's story.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobRow {
    pub job_id: u64,
    pub renter: H160,
    /// The assigned provider (or the best bidder while open).
    pub provider: Option<H160>,
    /// Hired directly (`true`) or auctioned.
    pub direct: bool,
    pub offer_id: Option<u64>,
    pub gpu_class: Option<u8>,
    pub tasks: u32,
    pub units_per_task: u64,
    pub check_rate_bps: u16,
    pub escrow: Amount,
    pub bids: u32,
    pub price_per_unit: Option<Amount>,
    /// Tasks the renter's seed sampled for checking (`None`: not decided yet).
    pub sampled: Option<u32>,
    /// The state the events say it is in.
    pub state: Option<JobState>,
    pub batch_root: Option<[u8; 32]>,
    pub provider_payout: Amount,
    /// What the job's verifiers earned (their `Paid` events; a slashed liar's stake included).
    pub verifier_fees: Amount,
    pub protocol_fee: Amount,
    /// Escrow returned to the renter.
    pub renter_refund: Amount,
    /// Who was slashed, how much and why.
    pub slashes: Vec<(H160, Amount, String)>,
    /// Verifiers drawn, by round.
    pub verifiers: Vec<(u8, H160)>,
    pub created: At,
    pub ended: Option<At>,
    /// Every event of the job: where, and what (the kind's name).
    pub timeline: Vec<(At, String)>,
}

impl JobRow {
    /// Work units of the whole job.
    pub fn work_units(&self) -> u64 {
        u64::from(self.tasks) * self.units_per_task
    }
}

/// What the events say about one account.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountRow {
    pub account: H160,
    /// Bonded stake as last reported (`Staked`), less unstake requests and slashes since.
    pub stake: Amount,
    pub slot: u32,
    /// Paid as provider (after the protocol fee).
    pub provider_payouts: Amount,
    /// Paid as verifier.
    pub verifier_fees: Amount,
    /// Taken from its stake.
    pub slashed: Amount,
    pub slashes: u32,
    pub jobs_settled: u32,
    pub withdrawn: Amount,
    pub offers: Vec<u64>,
    /// Registered as a provider (it staked).
    pub registered: bool,
    /// What it can withdraw: every credit the events show (payouts, fees, refunds, unbonded
    /// stake, a claimed treasury) less its withdrawals.
    pub withdrawable: Amount,
    /// The contract's reputation record, replayed from the events by the contract's rules.
    pub reputation: Reputation,
}

/// An offer as its events describe it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OfferRow {
    pub offer_id: u64,
    pub provider: H160,
    pub gpu_class: u8,
    pub price_per_unit: Amount,
    pub max_units: u64,
    pub vram_mib: u32,
    pub benchmark_score: u32,
    /// The offer's description (`None`: its bytes do not decode as one).
    pub info: Option<OfferInfo>,
    /// Listed (or last updated) here.
    pub listed: At,
    /// `false` once removed.
    pub active: bool,
}

/// A price-index point: a job of `value` settled at `price` moved class `gpu_class` to `index`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PricePoint {
    pub at: At,
    pub gpu_class: u8,
    pub price: Amount,
    pub value: Amount,
    pub index: Amount,
}

/// Events folded into rows.
#[derive(Clone, Debug, Default)]
pub struct Fold {
    pub jobs: BTreeMap<u64, JobRow>,
    pub accounts: BTreeMap<H160, AccountRow>,
    pub offers: BTreeMap<u64, OfferRow>,
    pub prices: Vec<PricePoint>,
    pub treasury_claimed: Amount,
    /// Events folded, decodable or not.
    pub events: u64,
    /// Events that did not decode (kept out of the rows, counted here).
    pub undecodable: usize,
}

impl Fold {
    fn account(&mut self, a: H160) -> &mut AccountRow {
        self.accounts.entry(a).or_insert_with(|| AccountRow { account: a, ..Default::default() })
    }

    /// Folds one event (events must come in chain order).
    pub fn apply(&mut self, at: At, event: Option<&Event>) {
        self.events += 1;
        match event {
            None => self.undecodable += 1,
            Some(Event::Job(e)) => self.job(at, e),
            Some(Event::Verifier(e)) => self.verifier(at, e),
            Some(Event::Account(e)) => self.account_event(at, e),
            Some(Event::Market(e)) => self.market(at, e),
        }
    }

    fn job(&mut self, at: At, e: &JobEvent) {
        use JobEventKind as K;
        let name = kind_name(&e.kind);
        let mut paid_provider = None;
        let mut slashed = None;
        // (provider, checked, value) of a payout; (provider, reason, value) of a slash.
        let mut completed: Option<(H160, bool, Amount)> = None;
        // Credits to withdrawable balances (the contract's `credit` and `pay_from_escrow`).
        let mut credits: Vec<(H160, Amount)> = Vec::new();
        let mut failed: Option<(H160, SlashReason, Amount)> = None;
        {
            let row = self.jobs.entry(e.job_id).or_insert_with(|| JobRow { job_id: e.job_id, ..Default::default() });
            row.renter = e.renter;
            row.timeline.push((at, name));
            if e.provider != H160::zero() {
                row.provider = Some(e.provider);
            }
            match &e.kind {
                K::Created { input, escrow, .. } => {
                    row.direct = input.offer_id.is_some();
                    row.offer_id = input.offer_id;
                    row.tasks = input.tasks;
                    row.units_per_task = input.units_per_task;
                    row.check_rate_bps = input.check_rate_bps;
                    row.escrow = *escrow;
                    row.created = at;
                    row.state = Some(if row.direct { JobState::AwaitingAccept } else { JobState::Open });
                }
                K::Reopened { .. } => {
                    row.state = Some(JobState::Open);
                    row.provider = None;
                }
                K::BidPlaced { price_per_unit, offer_id, .. } => {
                    row.bids += 1;
                    row.price_per_unit = Some(*price_per_unit);
                    row.offer_id = Some(*offer_id);
                }
                K::Assigned { offer_id, price_per_unit, gpu_class, .. } => {
                    row.offer_id = Some(*offer_id);
                    row.price_per_unit = Some(*price_per_unit);
                    row.gpu_class = Some(*gpu_class);
                    row.state = Some(JobState::Assigned);
                }
                K::InputsReported { .. } => row.state = Some(JobState::InputCheck),
                K::InputsChecked { available, .. } => {
                    row.state = Some(if *available { JobState::Assigned } else { JobState::Unavailable });
                }
                K::Committed { .. } => row.state = Some(JobState::Committed),
                K::SeedRevealed { sampled, .. } => {
                    row.sampled = Some(*sampled);
                    row.state = Some(if *sampled > 0 { JobState::VerifierCommit } else { JobState::Reveal });
                }
                K::DrawDue { round, .. } => {
                    row.state = Some(if *round == 0 { JobState::InputCheck } else { JobState::VerifierCommit });
                }
                K::Revealed { batch_root, .. } => row.batch_root = Some(*batch_root),
                // Verifier fees are counted from the verifiers' `Paid` events: they include
                // what slashed liars paid, which `Settled` (escrow only) leaves out.
                K::Settled { batch_root, provider_payout, protocol_fee, renter_refund, .. } => {
                    row.batch_root = Some(*batch_root);
                    row.provider_payout += provider_payout;
                    row.protocol_fee += protocol_fee;
                    row.renter_refund += renter_refund;
                    row.state = Some(JobState::Settled);
                    row.ended = Some(at);
                    paid_provider = Some((e.provider, *provider_payout));
                    completed = Some((e.provider, row.sampled.unwrap_or(0) > 0, provider_payout + protocol_fee));
                    credits.extend([(e.provider, *provider_payout), (e.renter, *renter_refund)]);
                }
                K::Unverified { paid, provider_payout, protocol_fee, renter_refund } => {
                    row.provider_payout += provider_payout;
                    row.protocol_fee += protocol_fee;
                    row.renter_refund += renter_refund;
                    row.state = Some(JobState::Unverified);
                    row.ended = Some(at);
                    if *paid {
                        paid_provider = Some((e.provider, *provider_payout));
                        completed = Some((e.provider, false, provider_payout + protocol_fee));
                        credits.push((e.provider, *provider_payout));
                    }
                    credits.push((e.renter, *renter_refund));
                }
                K::Unavailable { fee, renter_refund } => {
                    credits.extend([(e.provider, *fee), (e.renter, *renter_refund)]);
                    row.renter_refund += renter_refund;
                    row.state = Some(JobState::Unavailable);
                    row.ended = Some(at);
                }
                K::Refunded { amount, reason } => {
                    credits.push((e.renter, *amount));
                    row.renter_refund += amount;
                    row.state = Some(if *reason == RefundReason::ProviderSlashed { JobState::Slashed } else { JobState::Refunded });
                    row.ended = Some(at);
                }
                K::ProviderSlashed { amount, reason, .. } => {
                    row.slashes.push((e.provider, *amount, format!("{reason:?}")));
                    slashed = Some((e.provider, *amount));
                    let value = row.price_per_unit.unwrap_or(0).saturating_mul(Amount::from(row.work_units()));
                    failed = Some((e.provider, *reason, value));
                }
            }
        }
        if let Some((p, amount)) = paid_provider {
            let a = self.account(p);
            a.provider_payouts += amount;
            a.jobs_settled += 1;
        }
        if let Some((p, amount)) = slashed {
            let a = self.account(p);
            a.slashed += amount;
            a.slashes += 1;
            a.stake = a.stake.saturating_sub(amount);
        }
        for (account, amount) in credits.into_iter().filter(|(_, a)| *a > 0) {
            let a = self.account(account);
            a.withdrawable = a.withdrawable.saturating_add(amount);
        }
        // The contract's reputation rules (`settle`, `provider_fault`, the commit timeout).
        if let Some((p, checked, value)) = completed {
            let r = &mut self.account(p).reputation;
            r.jobs_completed += 1;
            r.checks_passed += u32::from(checked);
            r.value_settled = r.value_settled.saturating_add(value);
        }
        if let Some((p, reason, value)) = failed {
            let r = &mut self.account(p).reputation;
            match reason {
                // Paid to the verifier who checked; not a mark on the record.
                SlashReason::FalseUnavailability => {}
                SlashReason::WrongResult => {
                    r.checks_failed += 1;
                    r.value_failed = r.value_failed.saturating_add(value.saturating_mul(5));
                }
                _ => {
                    r.timeouts += 1;
                    r.value_failed = r.value_failed.saturating_add(value.saturating_mul(2));
                }
            }
        }
    }

    fn verifier(&mut self, at: At, e: &VerifierEvent) {
        use VerifierEventKind as K;
        let row = self.jobs.entry(e.job_id).or_insert_with(|| JobRow { job_id: e.job_id, ..Default::default() });
        row.timeline.push((at, format!("verifier {}", kind_name(&e.kind))));
        match &e.kind {
            K::Drawn { round, .. } => row.verifiers.push((*round, e.verifier)),
            K::Slashed { amount, reason, .. } => {
                row.slashes.push((e.verifier, *amount, format!("{reason:?}")));
                let a = self.account(e.verifier);
                a.slashed += amount;
                a.slashes += 1;
                a.stake = a.stake.saturating_sub(*amount);
                if *reason == SlashReason::VerifierSilent {
                    a.reputation.timeouts += 1;
                } else {
                    a.reputation.checks_failed += 1;
                }
            }
            K::Paid { fee } => {
                row.verifier_fees += fee;
                // An availability check's fee is no check of a result.
                let check = row.state != Some(JobState::InputCheck);
                let a = self.account(e.verifier);
                a.verifier_fees += fee;
                a.withdrawable = a.withdrawable.saturating_add(*fee);
                a.reputation.checks_passed += u32::from(check);
            }
            _ => {}
        }
    }

    fn account_event(&mut self, at: At, e: &AccountEvent) {
        use AccountEventKind as K;
        match &e.kind {
            K::OfferListed { offer_id, gpu_class, input, .. } => {
                let row = OfferRow {
                    offer_id: *offer_id,
                    provider: e.account,
                    gpu_class: *gpu_class,
                    price_per_unit: input.price_per_unit,
                    max_units: input.max_units,
                    vram_mib: input.vram_mib,
                    benchmark_score: input.benchmark_score,
                    info: OfferInfo::decode(&mut &input.info[..]).ok(),
                    listed: at,
                    active: true,
                };
                self.offers.insert(*offer_id, row);
            }
            K::OfferRemoved { offer_id } => {
                if let Some(o) = self.offers.get_mut(offer_id) {
                    o.active = false;
                }
            }
            _ => {}
        }
        let a = self.account(e.account);
        match &e.kind {
            K::Staked { stake, slot, .. } => {
                a.stake = *stake;
                a.slot = *slot;
                a.registered = true;
            }
            K::UnstakeRequested { amount, .. } => a.stake = a.stake.saturating_sub(*amount),
            K::Unstaked { amount, slot_released } => {
                a.withdrawable = a.withdrawable.saturating_add(*amount);
                if *slot_released {
                    a.slot = 0;
                }
            }
            K::OfferListed { offer_id, updated: false, .. } => a.offers.push(*offer_id),
            K::Withdrawn { amount } => {
                a.withdrawn += amount;
                a.withdrawable = a.withdrawable.saturating_sub(*amount);
            }
            _ => {}
        }
    }

    fn market(&mut self, at: At, e: &MarketEvent) {
        match &e.kind {
            MarketEventKind::PriceIndexUpdated { gpu_class, price, value, index } => {
                self.prices.push(PricePoint { at, gpu_class: *gpu_class, price: *price, value: *value, index: *index })
            }
            MarketEventKind::TreasuryClaimed { admin, amount } => {
                self.treasury_claimed += amount;
                let a = self.account(*admin);
                a.withdrawable = a.withdrawable.saturating_add(*amount);
            }
            _ => {}
        }
    }
}

/// The name of an event kind (its variant), for timelines.
fn kind_name(kind: &impl std::fmt::Debug) -> String {
    let s = format!("{kind:?}");
    s.split([' ', '{', '(']).next().unwrap_or_default().to_string()
}

/// Folds `events` (in chain order; the index counts within each block).
pub fn fold(events: &[(u32, ContractEvent)]) -> Fold {
    let mut f = Fold::default();
    let mut last = (u32::MAX, 0u32);
    for (block, e) in events {
        let index = if last.0 == *block { last.1 + 1 } else { 0 };
        last = (*block, index);
        f.apply(At { block: *block, index }, e.decoded.as_ref());
    }
    f
}

/// One provider's standing now: the contract's record beside what the events say.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderRow {
    pub provider: H160,
    pub stake: Amount,
    pub reputation_score: u32,
    pub jobs_completed: u32,
    pub checks_passed: u32,
    pub checks_failed: u32,
    pub timeouts: u32,
    pub provider_payouts: Amount,
    pub verifier_fees: Amount,
    pub slashed: Amount,
    /// What it can withdraw now.
    pub withdrawable: Amount,
}

/// The folded history with every provider's current standing.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub from_block: u32,
    pub to_block: u32,
    pub jobs: Vec<JobRow>,
    pub providers: Vec<ProviderRow>,
    pub prices: Vec<PricePoint>,
    pub undecodable_events: usize,
}

/// Reads `market`'s events from `from_block` to the finalized head, folds them, and reads
/// the providers' records at that same head.
///
/// # Errors
/// Chain errors.
pub async fn summarize(market: &Marketplace<'_>, from_block: u32) -> Result<Summary, ChainError> {
    let chain = market.chain();
    let (market, to_block) = market.finalized().await?;
    let market = &market;
    let events = chain.contract_events_in(market.address(), from_block, to_block).await?;
    let f = fold(&events);
    let mut providers = Vec::new();
    for (account, row) in &f.accounts {
        let Some(p) = market.provider(*account).await? else { continue };
        providers.push(ProviderRow {
            provider: *account,
            stake: p.stake,
            reputation_score: p.reputation.score(),
            jobs_completed: p.reputation.jobs_completed,
            checks_passed: p.reputation.checks_passed,
            checks_failed: p.reputation.checks_failed,
            timeouts: p.reputation.timeouts,
            provider_payouts: row.provider_payouts,
            verifier_fees: row.verifier_fees,
            slashed: row.slashed,
            withdrawable: market.withdrawable_of(*account).await?,
        });
    }
    Ok(Summary { from_block, to_block, jobs: f.jobs.into_values().collect(), providers, prices: f.prices, undecodable_events: f.undecodable })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marketplace::SlashReason;

    fn addr(b: u8) -> H160 {
        H160::from([b; 20])
    }

    #[test]
    fn a_slashed_jobs_verifier_fees_are_what_its_verifiers_were_paid() {
        let (renter, provider, v1, v2) = (addr(1), addr(2), addr(3), addr(4));
        let at = |block| At { block, index: 0 };
        let job = |kind| Event::Job(JobEvent { job_id: 7, renter, provider, kind });
        let paid = |verifier, fee| Event::Verifier(VerifierEvent { job_id: 7, provider, verifier, kind: VerifierEventKind::Paid { fee } });
        let mut f = Fold::default();
        f.apply(at(5), Some(&paid(v1, 30)));
        f.apply(at(6), Some(&paid(v2, 30)));
        f.apply(at(6), Some(&job(JobEventKind::ProviderSlashed { amount: 45, to_verifiers: 45, to_treasury: 0, reason: SlashReason::WrongResult })));
        f.apply(at(6), Some(&job(JobEventKind::Refunded { amount: 85, reason: RefundReason::ProviderSlashed })));
        f.apply(at(7), None);
        let row = &f.jobs[&7];
        assert_eq!((row.verifier_fees, row.renter_refund, row.state, row.ended), (60, 85, Some(JobState::Slashed), Some(at(6))));
        assert_eq!(row.slashes, vec![(provider, 45, "WrongResult".to_string())]);
        assert_eq!((f.accounts[&v1].verifier_fees, f.accounts[&provider].slashed), (30, 45));
        assert_eq!(f.undecodable, 1);
    }
}

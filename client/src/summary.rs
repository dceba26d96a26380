//! A market's history folded from its events: one row per job (who won at what price,
//! whether it was checked, where the money went, who was slashed) and one per provider
//! (stake, reputation, earnings). What `capacloud summary` prints and `make demo` ends with.

use crate::chain::{ChainError, ContractEvent};
use crate::marketplace::{Amount, Event, JobState};
use crate::Marketplace;
use std::collections::BTreeMap;
use subxt::utils::H160;

/// One job's story.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobRow {
    pub job_id: u64,
    pub renter: Option<H160>,
    /// Hired directly (`true`) or auctioned.
    pub direct: bool,
    pub bids: u32,
    pub provider: Option<H160>,
    pub price_per_unit: Option<Amount>,
    pub work_units: u64,
    pub checked: Option<bool>,
    /// The job's state now.
    pub state: Option<JobState>,
    pub provider_payout: Amount,
    pub verifier_fees: Amount,
    pub protocol_fee: Amount,
    /// Escrow returned to the renter (refunds, unspent escrow, slash compensation included).
    pub renter_refund: Amount,
    /// Who was slashed, how much and why.
    pub slashes: Vec<(H160, Amount, String)>,
    pub created_block: u32,
    pub ended_block: Option<u32>,
}

/// One provider's standing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderRow {
    pub provider: H160,
    pub stake: Amount,
    pub reputation_score: u32,
    pub jobs_completed: u32,
    pub checks_passed: u32,
    pub checks_failed: u32,
    pub timeouts: u32,
    /// Paid as provider for settled jobs.
    pub provider_payouts: Amount,
    /// Taken from its stake.
    pub slashed: Amount,
    /// What it can withdraw now (payouts, verifier fees and slash shares not yet withdrawn).
    pub withdrawable: Amount,
}

/// The folded history.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub from_block: u32,
    pub to_block: u32,
    pub jobs: Vec<JobRow>,
    pub providers: Vec<ProviderRow>,
    /// Events this client could not decode (kept out of the rows, counted here).
    pub undecodable_events: usize,
}

/// Events folded into job rows and per-account totals.
#[derive(Clone, Debug, Default)]
pub struct Folded {
    pub jobs: BTreeMap<u64, JobRow>,
    /// Per account: (paid as provider, slashed).
    pub money: BTreeMap<H160, (Amount, Amount)>,
    /// Events that did not decode.
    pub undecodable: usize,
}

/// Folds `events` (in chain order).
pub fn fold(events: &[(u32, ContractEvent)]) -> Folded {
    let mut jobs: BTreeMap<u64, JobRow> = BTreeMap::new();
    let mut money: BTreeMap<H160, (Amount, Amount)> = BTreeMap::new();
    let mut undecodable = 0;
    for (block, e) in events {
        let Some(ev) = &e.decoded else {
            undecodable += 1;
            continue;
        };
        match ev {
            Event::JobCreated { job_id, renter, input, .. } => {
                let row = jobs.entry(*job_id).or_default();
                row.job_id = *job_id;
                row.renter = Some(*renter);
                row.direct = input.offer_id.is_some();
                row.work_units = input.work_units;
                row.created_block = *block;
            }
            Event::BidPlaced { job_id, .. } => jobs.entry(*job_id).or_default().bids += 1,
            Event::JobAssigned { job_id, provider, price_per_unit, .. } => {
                let row = jobs.entry(*job_id).or_default();
                row.provider = Some(*provider);
                row.price_per_unit = Some(*price_per_unit);
            }
            Event::SeedRevealed { job_id, checked, .. } => jobs.entry(*job_id).or_default().checked = Some(*checked),
            Event::JobSettled { job_id, provider, provider_payout, verifier_fees, protocol_fee, renter_refund, checked, .. } => {
                let row = jobs.entry(*job_id).or_default();
                row.provider_payout += provider_payout;
                row.verifier_fees += verifier_fees;
                row.protocol_fee += protocol_fee;
                row.renter_refund += renter_refund;
                row.checked = Some(*checked);
                row.ended_block = Some(*block);
                money.entry(*provider).or_default().0 += provider_payout;
            }
            Event::JobRefunded { job_id, amount, .. } => {
                let row = jobs.entry(*job_id).or_default();
                row.renter_refund += amount;
                row.ended_block = Some(*block);
            }
            Event::Slashed { job_id, account, amount, to_renter, reason, .. } => {
                let row = jobs.entry(*job_id).or_default();
                row.slashes.push((*account, *amount, format!("{reason:?}")));
                row.renter_refund += to_renter;
                money.entry(*account).or_default().1 += amount;
            }
            _ => {}
        }
    }
    Folded { jobs, money, undecodable }
}

/// Reads `market`'s events from `from_block` to the finalized head and the current state
/// of its jobs and providers.
///
/// # Errors
/// Chain errors.
pub async fn summarize(market: &Marketplace<'_>, from_block: u32) -> Result<Summary, ChainError> {
    let chain = market.chain();
    let to_block = chain.finalized_number().await?;
    let events = chain.contract_events_in(market.address(), from_block, to_block).await?;
    let Folded { mut jobs, money, undecodable: undecodable_events } = fold(&events);
    for (id, row) in jobs.iter_mut() {
        row.state = market.job(*id).await?.map(|j| j.state);
    }
    let mut providers = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for id in 0..market.offer_count().await? {
        let Some(o) = market.offer(id).await? else { continue };
        if !seen.insert(o.provider) {
            continue;
        }
        let Some(p) = market.provider(o.provider).await? else { continue };
        let (provider_payouts, slashed) = money.get(&o.provider).copied().unwrap_or_default();
        providers.push(ProviderRow {
            provider: o.provider,
            stake: p.stake,
            reputation_score: market.reputation_score(o.provider).await?,
            jobs_completed: p.reputation.jobs_completed,
            checks_passed: p.reputation.checks_passed,
            checks_failed: p.reputation.checks_failed,
            timeouts: p.reputation.timeouts,
            provider_payouts,
            slashed,
            withdrawable: market.withdrawable_of(o.provider).await?,
        });
    }
    Ok(Summary { from_block, to_block, jobs: jobs.into_values().collect(), providers, undecodable_events })
}

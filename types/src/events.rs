//! The contract's events. There are four ink! events, one per subject, each with the
//! subject's accounts as topics and a `kind` saying what happened:
//!
//! | event | topics | kinds |
//! |---|---|---|
//! | [`JobEvent`] | job id, renter, provider | [`JobEventKind`] |
//! | [`VerifierEvent`] | job id, provider, verifier | [`VerifierEventKind`] |
//! | [`AccountEvent`] | account | [`AccountEventKind`] |
//! | [`MarketEvent`] | — | [`MarketEventKind`] |
//!
//! An indexer filters by topic (a renter's jobs, a provider's jobs, a verifier's duties)
//! and rebuilds the market from the kinds alone, without reading storage. The structs
//! here are how clients decode them: field order and types equal the contract's event
//! declarations (the contract's metadata test checks every signature topic).
use crate::{Address, Amount, BlockNumber, Hash32, JobInput, OfferInput, Params};
use parity_scale_codec::{Decode, Encode};
use scale_info::TypeInfo;

/// Why a job's escrow went back to its renter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum RefundReason {
    /// The auction closed without a bid.
    NoBids,
    /// The hired provider did not accept in time.
    NotAccepted,
    /// The provider let the job time out uncommitted (after the re-opens).
    NoCommitment,
    /// A dispute ended without a majority.
    NoMajority,
    /// The provider was slashed (lied or fell silent at the reveal).
    ProviderSlashed,
    /// The provider reported the inputs unavailable and no verifier could be had to confirm.
    InputsUnconfirmed,
    /// A decided check found no verifier and the renter chose not to pay unverified work.
    Unverified,
}

/// Why stake was slashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum SlashReason {
    /// An assigned job timed out without a commitment (partial).
    CommitTimeout,
    /// The provider did not reveal in time.
    ProviderSilent,
    /// A verifier did not commit, reveal or vote in time.
    VerifierSilent,
    /// The revealed answer lost the majority vote (a proven lie).
    WrongResult,
    /// A dispute's deciding verifier matched neither side.
    NoMatch,
    /// The provider reported the inputs unavailable and a verifier found them available.
    FalseUnavailability,
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum JobEventKind {
    /// Created with its escrow (a direct hire names the offer's provider as the event's provider).
    Created { input: JobInput, escrow: Amount, phase_deadline: BlockNumber },
    /// Back to auction: the renter re-opened it, or its provider let it time out.
    Reopened { phase_deadline: BlockNumber },
    /// A bid became the best bid (the window may have been extended: soft close).
    BidPlaced { offer_id: u64, price_per_unit: Amount, phase_deadline: BlockNumber },
    /// The provider got the job at `price_per_unit` and locked `lock`.
    Assigned { offer_id: u64, price_per_unit: Amount, lock: Amount, gpu_class: u8, commit_deadline: BlockNumber },
    /// The provider reported the inputs unavailable, depositing `deposit`.
    InputsReported { deposit: Amount },
    /// The availability check ended: inputs available (back to `Assigned`) or not.
    InputsChecked { available: bool, commit_deadline: BlockNumber },
    /// The provider committed.
    Committed { commitment: Hash32, reveal_deadline: BlockNumber },
    /// The check decision: the renter's seed (`None`: it stayed silent), the check seed,
    /// and how many of the job's tasks were sampled (their indices follow from the seed:
    /// [`crate::sample::sampled`]).
    SeedRevealed { seed: Option<Hash32>, check_seed: Hash32, tasks: u32, sampled: u32 },
    /// A verifier draw became due; it will be made from the hash of `beacon_block`.
    DrawDue { round: u8, beacon_block: BlockNumber },
    /// The provider revealed its batch root (and its answer over the sample, if checked).
    Revealed { batch_root: Hash32, answer: Hash32 },
    /// Paid out.
    Settled {
        batch_root: Hash32,
        provider_payout: Amount,
        verifier_fees: Amount,
        protocol_fee: Amount,
        renter_refund: Amount,
        tasks: u32,
        sampled: u32,
    },
    /// A decided check found no verifier: paid (the renter chose so) or refunded.
    Unverified { paid: bool, provider_payout: Amount, protocol_fee: Amount, renter_refund: Amount },
    /// A verifier confirmed the inputs unavailable: the renter paid the provider and the
    /// verifier `fee` each; the rest came back.
    Unavailable { fee: Amount, renter_refund: Amount },
    /// The escrow went back to the renter.
    Refunded { amount: Amount, reason: RefundReason },
    /// The provider's stake was slashed: fees to verifiers that were right, the rest to the
    /// treasury (never to the renter).
    ProviderSlashed { amount: Amount, to_verifiers: Amount, to_treasury: Amount, reason: SlashReason },
}

/// What happened to a verifier of a job.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum VerifierEventKind {
    /// Drawn for `round` (0: availability, 1: check, 2: dispute), bond locked.
    Drawn { round: u8, bond: Amount, deadline: BlockNumber },
    Committed { commitment: Hash32 },
    /// Revealed its answer (with the roots behind it when they were required).
    Revealed { answer: Hash32, with_roots: bool },
    /// Reported it could not fetch the job's inputs (replaced, not slashed).
    ReportedUnavailable,
    /// Voted in an availability check.
    Voted { available: bool },
    /// Was paid `fee` for its work (bond released).
    Paid { fee: Amount },
    /// Its bond was slashed.
    Slashed { amount: Amount, to_verifiers: Amount, to_treasury: Amount, reason: SlashReason },
}

/// What happened to an account (as provider, or any withdrawer).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum AccountEventKind {
    /// Registered (slot given) or added stake.
    Staked { added: Amount, stake: Amount, slot: u32 },
    UnstakeRequested { amount: Amount, unbond_at: BlockNumber },
    /// Unbonded stake became withdrawable; with nothing left the slot was released.
    Unstaked { amount: Amount, slot_released: bool },
    OfferListed { offer_id: u64, gpu_class: u8, input: OfferInput, updated: bool },
    OfferRemoved { offer_id: u64 },
    Withdrawn { amount: Amount },
}

/// What happened to the market as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum MarketEventKind {
    /// New parameters, for jobs created from `effective_at` on.
    ParamsScheduled { params: Params, effective_at: BlockNumber },
    AdminProposed { admin: Address, proposed: Address },
    AdminChanged { old: Address, new: Address },
    TreasuryClaimed { admin: Address, amount: Amount },
    /// A job of `value` settled at `price`; the class's index is now `index`.
    PriceIndexUpdated { gpu_class: u8, price: Amount, value: Amount, index: Amount },
}

/// A job event as the contract emits it (topics: job id, renter, provider).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct JobEvent {
    pub job_id: u64,
    pub renter: Address,
    pub provider: Address,
    pub kind: JobEventKind,
}

/// A verifier event as the contract emits it (topics: job id, provider, verifier).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VerifierEvent {
    pub job_id: u64,
    pub provider: Address,
    pub verifier: Address,
    pub kind: VerifierEventKind,
}

/// An account event as the contract emits it (topic: account).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AccountEvent {
    pub account: Address,
    pub kind: AccountEventKind,
}

/// A market event as the contract emits it (no topic besides its signature).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MarketEvent {
    pub kind: MarketEventKind,
}

/// The ink! event signatures (`Name(field types)`, as the contract declares them); their
/// BLAKE2b-256 is each event's first topic.
pub mod signature {
    pub const JOB: &str = "JobEvent(u64,Address,Address,JobEventKind)";
    pub const VERIFIER: &str = "VerifierEvent(u64,Address,Address,VerifierEventKind)";
    pub const ACCOUNT: &str = "AccountEvent(Address,AccountEventKind)";
    pub const MARKET: &str = "MarketEvent(MarketEventKind)";
}

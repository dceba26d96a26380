//! The ink! ABI of the marketplace contract: message selectors, argument and return
//! encodings, the contract's types and `Error`, and its events.
//!
//! Mirrors `contracts/marketplace/lib.rs`; the `abi_matches_contract_metadata` test in
//! `tests/` checks every selector and event topic here against the built contract's
//! metadata, so the two cannot drift apart unnoticed. Amounts are contract units
//! (10^-18 WND); 1 planck = [`UNITS_PER_PLANCK`] units.

use codec::{Decode, Encode};
use primitive_types::U256;
use subxt::utils::{H160, H256};

/// The interface version this client speaks (the contract's `version()` message).
pub const INTERFACE_VERSION: u32 = 2;

/// Contract units per native planck (18 vs 12 decimals).
pub const UNITS_PER_PLANCK: u128 = 1_000_000;

/// Amounts in contract units.
pub type Amount = u128;
/// A 32-byte sha256 hash.
pub type Hash32 = [u8; 32];

/// The ink! selector of a constructor or message: the first four bytes of
/// BLAKE2b-256 of its name.
pub fn selector(label: &str) -> [u8; 4] {
    let h = sp_crypto_hashing::blake2_256(label.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// Call data for `label` with SCALE-encoded `args`.
pub fn call_data(label: &str, args: &impl Encode) -> Vec<u8> {
    let mut data = selector(label).to_vec();
    args.encode_to(&mut data);
    data
}

/// Constructor and message names, as the contract declares them.
pub mod msg {
    pub const NEW: &str = "new";
    pub const VERSION: &str = "version";
    pub const ADMIN: &str = "admin";
    pub const PARAMS: &str = "params";
    pub const SET_PARAMS: &str = "set_params";
    pub const CLAIM_TREASURY: &str = "claim_treasury";
    pub const ACCOUNTING: &str = "accounting";
    pub const BALANCE_CHECK: &str = "balance_check";
    pub const PROVIDER: &str = "provider";
    pub const REPUTATION_SCORE: &str = "reputation_score";
    pub const OFFER: &str = "offer";
    pub const OFFER_COUNT: &str = "offer_count";
    pub const JOB: &str = "job";
    pub const JOB_COUNT: &str = "job_count";
    pub const WITHDRAWABLE_OF: &str = "withdrawable_of";
    pub const PRICE_INDEX: &str = "price_index";
    pub const REQUIRED_LOCK: &str = "required_lock";
    pub const REQUIRED_ESCROW: &str = "required_escrow";
    pub const REGISTER_PROVIDER: &str = "register_provider";
    pub const ADD_STAKE: &str = "add_stake";
    pub const REQUEST_UNSTAKE: &str = "request_unstake";
    pub const COMPLETE_UNSTAKE: &str = "complete_unstake";
    pub const LIST_OFFER: &str = "list_offer";
    pub const UPDATE_OFFER: &str = "update_offer";
    pub const REMOVE_OFFER: &str = "remove_offer";
    pub const CREATE_JOB: &str = "create_job";
    pub const BID: &str = "bid";
    pub const CLOSE_AUCTION: &str = "close_auction";
    pub const REOPEN_JOB: &str = "reopen_job";
    pub const ACCEPT_JOB: &str = "accept_job";
    pub const COMMIT_RESULT: &str = "commit_result";
    pub const REVEAL_SEED: &str = "reveal_seed";
    pub const COMMIT_VERIFICATION: &str = "commit_verification";
    pub const REVEAL_RESULT: &str = "reveal_result";
    pub const CLEANUP: &str = "cleanup";
    pub const WITHDRAW: &str = "withdraw";

    /// Every constructor and message, for the metadata cross-check.
    pub const ALL: &[&str] = &[
        NEW,
        VERSION,
        ADMIN,
        PARAMS,
        SET_PARAMS,
        CLAIM_TREASURY,
        ACCOUNTING,
        BALANCE_CHECK,
        PROVIDER,
        REPUTATION_SCORE,
        OFFER,
        OFFER_COUNT,
        JOB,
        JOB_COUNT,
        WITHDRAWABLE_OF,
        PRICE_INDEX,
        REQUIRED_LOCK,
        REQUIRED_ESCROW,
        REGISTER_PROVIDER,
        ADD_STAKE,
        REQUEST_UNSTAKE,
        COMPLETE_UNSTAKE,
        LIST_OFFER,
        UPDATE_OFFER,
        REMOVE_OFFER,
        CREATE_JOB,
        BID,
        CLOSE_AUCTION,
        REOPEN_JOB,
        ACCEPT_JOB,
        COMMIT_RESULT,
        REVEAL_SEED,
        COMMIT_VERIFICATION,
        REVEAL_RESULT,
        CLEANUP,
        WITHDRAW,
    ];
}

/// Protocol parameters (`marketplace::Params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Params {
    pub protocol_fee_bps: u16,
    pub verifier_fee_bps: u16,
    pub default_check_rate_bps: u16,
    pub min_stake: Amount,
    pub accept_window: u32,
    pub bid_window: u32,
    pub reveal_window: u32,
    pub unstake_cooldown: u32,
}

/// `marketplace::Reputation`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Reputation {
    pub jobs_completed: u32,
    pub checks_passed: u32,
    pub checks_failed: u32,
    pub timeouts: u32,
    pub value_settled: Amount,
}

/// `marketplace::Provider`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Provider {
    pub stake: Amount,
    pub locked: Amount,
    pub unbonding: Amount,
    pub unbond_at: u32,
    pub index: u32,
    pub reputation: Reputation,
}

/// `marketplace::OfferInput`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct OfferInput {
    pub gpu_vendor: String,
    pub gpu_model: String,
    pub vram_mib: u32,
    pub backend: String,
    pub benchmark_score: u32,
    pub gpu_class: u32,
    pub price_per_unit: Amount,
    pub max_units: u64,
    pub endpoint: String,
}

/// `marketplace::Offer`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Offer {
    pub provider: H160,
    pub info: OfferInput,
    pub active: bool,
}

/// `marketplace::Requirements`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Requirements {
    pub min_vram_mib: u32,
    pub min_benchmark_score: u32,
    pub gpu_class: Option<u32>,
}

/// `marketplace::JobInput`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct JobInput {
    pub spec_hash: Hash32,
    pub spec_uri: String,
    pub work_units: u64,
    pub max_price_per_unit: Amount,
    pub requirements: Requirements,
    pub deadline: u32,
    pub check_rate_bps: u16,
    pub seed_commitment: Hash32,
    pub offer_id: Option<u64>,
}

/// `marketplace::JobState`, in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub enum JobState {
    Open,
    AwaitingAccept,
    Assigned,
    Committed,
    VerifierCommit,
    Reveal,
    Settled,
    Refunded,
    Slashed,
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Settled | JobState::Refunded | JobState::Slashed)
    }
}

/// `marketplace::Bid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Bid {
    pub provider: H160,
    pub offer_id: u64,
    pub price_per_unit: Amount,
    pub reputation_score: u32,
    pub lock: Amount,
}

/// `marketplace::Verifier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Verifier {
    pub account: H160,
    pub bond: Amount,
    pub commitment: Option<Hash32>,
    pub root: Option<Hash32>,
}

/// `marketplace::JobCore`: the lifecycle part of a job.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct JobCore {
    pub renter: H160,
    pub check_rate_bps: u16,
    pub state: JobState,
    pub phase_deadline: u32,
    pub escrow: Amount,
    pub provider: Option<H160>,
    pub offer_id: Option<u64>,
    pub gpu_class: u32,
    pub price_per_unit: Amount,
    pub lock: Amount,
    pub provider_commitment: Option<Hash32>,
    pub provider_root: Option<Hash32>,
    pub checked: bool,
    pub check_seed: Hash32,
    pub round: u8,
    pub draws: u8,
    pub drawn_count: u8,
}

/// `marketplace::Job`: the assembled job; the core's fields read through `Deref`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Job {
    pub core: JobCore,
    pub input: JobInput,
    pub best_bid: Option<Bid>,
    pub verifiers: [Option<Verifier>; 2],
    pub drawn: Vec<H160>,
}

impl std::ops::Deref for Job {
    type Target = JobCore;
    fn deref(&self) -> &JobCore {
        &self.core
    }
}

impl Job {
    /// The verifier of the current round, if one is drawn.
    pub fn current_verifier(&self) -> Option<Verifier> {
        self.verifiers[usize::from(self.round.saturating_sub(1)).min(1)]
    }
}

/// `marketplace::Accounting`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Accounting {
    pub escrow: Amount,
    pub stakes: Amount,
    pub withdrawable: Amount,
    pub treasury: Amount,
}

impl Accounting {
    /// escrow + stakes + withdrawable + treasury.
    pub fn total(&self) -> Amount {
        self.escrow + self.stakes + self.withdrawable + self.treasury
    }
}

/// `marketplace::RefundReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub enum RefundReason {
    NoBids,
    NotAccepted,
    NoCommitment,
    NoMajority,
    ProviderSlashed,
}

/// `marketplace::SlashReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub enum SlashReason {
    CommitTimeout,
    ProviderSilent,
    VerifierSilent,
    WrongResult,
}

/// Every refusal of the contract (`marketplace::Error`), in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize, thiserror::Error)]
pub enum ContractError {
    #[error("the caller is not the marketplace admin")]
    NotAdmin,
    #[error("a parameter is outside its documented bound")]
    ParamOutOfBounds,
    #[error("the transferred value is not what the message requires")]
    WrongPayment,
    #[error("the transferred value is too large")]
    ValueTooLarge,
    #[error("registration needs at least the minimum stake")]
    StakeTooLow,
    #[error("the account is already a registered provider")]
    AlreadyRegistered,
    #[error("the account is not a registered provider")]
    NotProvider,
    #[error("the provider registry is full")]
    RegistryFull,
    #[error("not enough free (unlocked) stake")]
    InsufficientFreeStake,
    #[error("nothing is unbonding")]
    NothingToUnstake,
    #[error("the unstake cooldown has not passed")]
    CooldownActive,
    #[error("a text field is empty or too long")]
    BadText,
    #[error("an offer field is zero where it must not be")]
    BadOffer,
    #[error("no such offer")]
    OfferNotFound,
    #[error("the offer belongs to another provider")]
    NotOfferOwner,
    #[error("the offer does not meet the job's requirements")]
    RequirementsNotMet,
    #[error("the job is larger than the offer takes")]
    JobTooLarge,
    #[error("a job field is zero or inconsistent")]
    BadJob,
    #[error("the deadline is too soon for the job's windows")]
    DeadlineTooSoon,
    #[error("no such job")]
    JobNotFound,
    #[error("the job is not in the state this step needs")]
    WrongState,
    #[error("the caller is not the party this step needs")]
    NotAuthorized,
    #[error("the phase's deadline has passed")]
    DeadlinePassed,
    #[error("the phase's deadline has not passed yet")]
    DeadlineNotPassed,
    #[error("the price is above the job's maximum")]
    PriceAboveMax,
    #[error("the bid does not beat the best bid")]
    BidNotBetter,
    #[error("the auction has no bid")]
    NoBids,
    #[error("the revealed seed does not match the commitment")]
    SeedMismatch,
    #[error("the revealed root and salt do not match the commitment")]
    CommitmentMismatch,
    #[error("this step was already done")]
    AlreadyDone,
    #[error("nothing to withdraw")]
    NothingToWithdraw,
    #[error("the chain refused the transfer")]
    TransferFailed,
    #[error("an amount overflowed")]
    Overflow,
}

/// ink!'s `LangError`: the call could not be dispatched to a message at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum LangError {
    CouldNotReadInput,
}

/// `balance_check()`: the contract's balance beside the sum of its totals.
pub type BalanceCheck = (U256, U256);

/// An event of the marketplace contract, decoded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ParamsUpdated { admin: H160, params: Params },
    ProviderStaked { provider: H160, added: Amount, stake: Amount },
    UnstakeRequested { provider: H160, amount: Amount, unbond_at: u32 },
    ProviderUnstaked { provider: H160, amount: Amount },
    OfferListed { offer_id: u64, provider: H160, offer: OfferInput, updated: bool },
    OfferRemoved { offer_id: u64, provider: H160 },
    JobCreated { job_id: u64, renter: H160, input: JobInput, escrow: Amount, check_rate_bps: u16, phase_deadline: u32 },
    BidPlaced { job_id: u64, provider: H160, offer_id: u64, price_per_unit: Amount },
    JobAssigned {
        job_id: u64,
        renter: H160,
        provider: H160,
        offer_id: u64,
        price_per_unit: Amount,
        lock: Amount,
        commit_deadline: u32,
    },
    ResultCommitted { job_id: u64, provider: H160, commitment: Hash32 },
    SeedRevealed { job_id: u64, renter: H160, seed: Option<Hash32>, check_seed: Hash32, checked: bool },
    VerifierDrawn { job_id: u64, provider: H160, verifier: H160, round: u8, bond: Amount, commit_deadline: u32 },
    VerificationCommitted { job_id: u64, verifier: H160, commitment: Hash32 },
    ResultRevealed { job_id: u64, by: H160, root: Hash32, is_provider: bool },
    JobSettled {
        job_id: u64,
        renter: H160,
        provider: H160,
        root: Hash32,
        provider_payout: Amount,
        verifier_fees: Amount,
        protocol_fee: Amount,
        renter_refund: Amount,
        checked: bool,
    },
    JobRefunded { job_id: u64, renter: H160, amount: Amount, reason: RefundReason },
    Slashed {
        job_id: u64,
        account: H160,
        amount: Amount,
        to_renter: Amount,
        to_verifiers: Amount,
        to_treasury: Amount,
        reason: SlashReason,
    },
    Withdrawn { account: H160, amount: Amount },
    PriceIndexUpdated { gpu_class: u32, clearing_price: Amount, index: Amount },
}

impl Event {
    /// The job an event is about, if any.
    pub fn job_id(&self) -> Option<u64> {
        match self {
            Event::JobCreated { job_id, .. }
            | Event::BidPlaced { job_id, .. }
            | Event::JobAssigned { job_id, .. }
            | Event::ResultCommitted { job_id, .. }
            | Event::SeedRevealed { job_id, .. }
            | Event::VerifierDrawn { job_id, .. }
            | Event::VerificationCommitted { job_id, .. }
            | Event::ResultRevealed { job_id, .. }
            | Event::JobSettled { job_id, .. }
            | Event::JobRefunded { job_id, .. }
            | Event::Slashed { job_id, .. } => Some(*job_id),
            _ => None,
        }
    }
}

/// Event names with their field types, exactly as ink! hashes them into the signature topic.
pub mod event_sig {
    pub const PARAMS_UPDATED: &str = "ParamsUpdated(Address,Params)";
    pub const PROVIDER_STAKED: &str = "ProviderStaked(Address,Amount,Amount)";
    pub const UNSTAKE_REQUESTED: &str = "UnstakeRequested(Address,Amount,BlockNumber)";
    pub const PROVIDER_UNSTAKED: &str = "ProviderUnstaked(Address,Amount)";
    pub const OFFER_LISTED: &str = "OfferListed(u64,Address,OfferInput,bool)";
    pub const OFFER_REMOVED: &str = "OfferRemoved(u64,Address)";
    pub const JOB_CREATED: &str = "JobCreated(u64,Address,JobInput,Amount,u16,BlockNumber)";
    pub const BID_PLACED: &str = "BidPlaced(u64,Address,u64,Amount)";
    pub const JOB_ASSIGNED: &str = "JobAssigned(u64,Address,Address,u64,Amount,Amount,BlockNumber)";
    pub const RESULT_COMMITTED: &str = "ResultCommitted(u64,Address,Hash32)";
    pub const SEED_REVEALED: &str = "SeedRevealed(u64,Address,Option<Hash32>,Hash32,bool)";
    pub const VERIFIER_DRAWN: &str = "VerifierDrawn(u64,Address,Address,u8,Amount,BlockNumber)";
    pub const VERIFICATION_COMMITTED: &str = "VerificationCommitted(u64,Address,Hash32)";
    pub const RESULT_REVEALED: &str = "ResultRevealed(u64,Address,Hash32,bool)";
    pub const JOB_SETTLED: &str = "JobSettled(u64,Address,Address,Hash32,Amount,Amount,Amount,Amount,bool)";
    pub const JOB_REFUNDED: &str = "JobRefunded(u64,Address,Amount,RefundReason)";
    pub const SLASHED: &str = "Slashed(u64,Address,Amount,Amount,Amount,Amount,SlashReason)";
    pub const WITHDRAWN: &str = "Withdrawn(Address,Amount)";
    pub const PRICE_INDEX_UPDATED: &str = "PriceIndexUpdated(u32,Amount,Amount)";

    /// Every event, for the metadata cross-check.
    pub const ALL: &[&str] = &[
        PARAMS_UPDATED,
        PROVIDER_STAKED,
        UNSTAKE_REQUESTED,
        PROVIDER_UNSTAKED,
        OFFER_LISTED,
        OFFER_REMOVED,
        JOB_CREATED,
        BID_PLACED,
        JOB_ASSIGNED,
        RESULT_COMMITTED,
        SEED_REVEALED,
        VERIFIER_DRAWN,
        VERIFICATION_COMMITTED,
        RESULT_REVEALED,
        JOB_SETTLED,
        JOB_REFUNDED,
        SLASHED,
        WITHDRAWN,
        PRICE_INDEX_UPDATED,
    ];
}

/// The first topic of an event: BLAKE2b-256 of its signature string.
pub fn signature_topic(signature: &str) -> H256 {
    H256(sp_crypto_hashing::blake2_256(signature.as_bytes()))
}

/// The topic ink! gives an indexed field: its encoding, zero-padded to 32 bytes when it
/// fits, else the BLAKE2b-256 of the encoding.
pub fn field_topic(value: &impl Encode) -> H256 {
    let enc = value.encode();
    if enc.len() <= 32 {
        let mut t = [0u8; 32];
        t[..enc.len()].copy_from_slice(&enc);
        H256(t)
    } else {
        H256(sp_crypto_hashing::blake2_256(&enc))
    }
}

/// Why an emitted event could not be decoded as a marketplace event.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error("event has no signature topic")]
    NoTopic,
    #[error("unknown signature topic {0:?}")]
    UnknownTopic(H256),
    #[error("event data does not decode: {0}")]
    Data(#[from] codec::Error),
}

/// Decodes a marketplace event from its topics and data (the data is the whole event, in
/// field order, topics included).
pub fn decode_event(topics: &[H256], data: &[u8]) -> Result<Event, EventDecodeError> {
    use event_sig as s;
    let sig = *topics.first().ok_or(EventDecodeError::NoTopic)?;
    let i = &mut &data[..];
    let is = |name: &str| sig == signature_topic(name);
    let ev = if is(s::PARAMS_UPDATED) {
        Event::ParamsUpdated { admin: Decode::decode(i)?, params: Decode::decode(i)? }
    } else if is(s::PROVIDER_STAKED) {
        Event::ProviderStaked { provider: Decode::decode(i)?, added: Decode::decode(i)?, stake: Decode::decode(i)? }
    } else if is(s::UNSTAKE_REQUESTED) {
        Event::UnstakeRequested { provider: Decode::decode(i)?, amount: Decode::decode(i)?, unbond_at: Decode::decode(i)? }
    } else if is(s::PROVIDER_UNSTAKED) {
        Event::ProviderUnstaked { provider: Decode::decode(i)?, amount: Decode::decode(i)? }
    } else if is(s::OFFER_LISTED) {
        Event::OfferListed {
            offer_id: Decode::decode(i)?,
            provider: Decode::decode(i)?,
            offer: Decode::decode(i)?,
            updated: Decode::decode(i)?,
        }
    } else if is(s::OFFER_REMOVED) {
        Event::OfferRemoved { offer_id: Decode::decode(i)?, provider: Decode::decode(i)? }
    } else if is(s::JOB_CREATED) {
        Event::JobCreated {
            job_id: Decode::decode(i)?,
            renter: Decode::decode(i)?,
            input: Decode::decode(i)?,
            escrow: Decode::decode(i)?,
            check_rate_bps: Decode::decode(i)?,
            phase_deadline: Decode::decode(i)?,
        }
    } else if is(s::BID_PLACED) {
        Event::BidPlaced {
            job_id: Decode::decode(i)?,
            provider: Decode::decode(i)?,
            offer_id: Decode::decode(i)?,
            price_per_unit: Decode::decode(i)?,
        }
    } else if is(s::JOB_ASSIGNED) {
        Event::JobAssigned {
            job_id: Decode::decode(i)?,
            renter: Decode::decode(i)?,
            provider: Decode::decode(i)?,
            offer_id: Decode::decode(i)?,
            price_per_unit: Decode::decode(i)?,
            lock: Decode::decode(i)?,
            commit_deadline: Decode::decode(i)?,
        }
    } else if is(s::RESULT_COMMITTED) {
        Event::ResultCommitted { job_id: Decode::decode(i)?, provider: Decode::decode(i)?, commitment: Decode::decode(i)? }
    } else if is(s::SEED_REVEALED) {
        Event::SeedRevealed {
            job_id: Decode::decode(i)?,
            renter: Decode::decode(i)?,
            seed: Decode::decode(i)?,
            check_seed: Decode::decode(i)?,
            checked: Decode::decode(i)?,
        }
    } else if is(s::VERIFIER_DRAWN) {
        Event::VerifierDrawn {
            job_id: Decode::decode(i)?,
            provider: Decode::decode(i)?,
            verifier: Decode::decode(i)?,
            round: Decode::decode(i)?,
            bond: Decode::decode(i)?,
            commit_deadline: Decode::decode(i)?,
        }
    } else if is(s::VERIFICATION_COMMITTED) {
        Event::VerificationCommitted {
            job_id: Decode::decode(i)?,
            verifier: Decode::decode(i)?,
            commitment: Decode::decode(i)?,
        }
    } else if is(s::RESULT_REVEALED) {
        Event::ResultRevealed {
            job_id: Decode::decode(i)?,
            by: Decode::decode(i)?,
            root: Decode::decode(i)?,
            is_provider: Decode::decode(i)?,
        }
    } else if is(s::JOB_SETTLED) {
        Event::JobSettled {
            job_id: Decode::decode(i)?,
            renter: Decode::decode(i)?,
            provider: Decode::decode(i)?,
            root: Decode::decode(i)?,
            provider_payout: Decode::decode(i)?,
            verifier_fees: Decode::decode(i)?,
            protocol_fee: Decode::decode(i)?,
            renter_refund: Decode::decode(i)?,
            checked: Decode::decode(i)?,
        }
    } else if is(s::JOB_REFUNDED) {
        Event::JobRefunded {
            job_id: Decode::decode(i)?,
            renter: Decode::decode(i)?,
            amount: Decode::decode(i)?,
            reason: Decode::decode(i)?,
        }
    } else if is(s::SLASHED) {
        Event::Slashed {
            job_id: Decode::decode(i)?,
            account: Decode::decode(i)?,
            amount: Decode::decode(i)?,
            to_renter: Decode::decode(i)?,
            to_verifiers: Decode::decode(i)?,
            to_treasury: Decode::decode(i)?,
            reason: Decode::decode(i)?,
        }
    } else if is(s::WITHDRAWN) {
        Event::Withdrawn { account: Decode::decode(i)?, amount: Decode::decode(i)? }
    } else if is(s::PRICE_INDEX_UPDATED) {
        Event::PriceIndexUpdated {
            gpu_class: Decode::decode(i)?,
            clearing_price: Decode::decode(i)?,
            index: Decode::decode(i)?,
        }
    } else {
        return Err(EventDecodeError::UnknownTopic(sig));
    };
    Ok(ev)
}

/// `sha256(tag ‖ job_id LE ‖ account ‖ root ‖ salt)`: the provider's (`b"P"`) or a
/// verifier's (`b"V"`) result commitment.
pub fn result_commitment(tag: &[u8], job_id: u64, account: H160, root: &Hash32, salt: &Hash32) -> Hash32 {
    let mut buf = Vec::with_capacity(1 + 8 + 20 + 64);
    buf.extend_from_slice(tag);
    buf.extend_from_slice(&job_id.to_le_bytes());
    buf.extend_from_slice(account.as_bytes());
    buf.extend_from_slice(root);
    buf.extend_from_slice(salt);
    sp_crypto_hashing::sha2_256(&buf)
}

/// `sha256(seed)`: the renter's seed commitment.
pub fn seed_commitment(seed: &Hash32) -> Hash32 {
    sp_crypto_hashing::sha2_256(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_is_blake2_prefix() {
        // BLAKE2b-256("flip") starts with 0x633aa551: the selector of ink!'s flipper example.
        assert_eq!(selector("flip"), [0x63, 0x3a, 0xa5, 0x51]);
    }

    #[test]
    fn call_data_is_selector_then_args() {
        let data = call_data(msg::VERSION, &());
        assert_eq!(data, selector("version").to_vec());
        let data = call_data("x", &7u32);
        assert_eq!(&data[4..], &[7, 0, 0, 0]);
    }

    #[test]
    fn unknown_event_is_an_error_not_a_panic() {
        let err = decode_event(&[H256([1; 32])], &[]).unwrap_err();
        assert!(matches!(err, EventDecodeError::UnknownTopic(_)));
        assert!(matches!(decode_event(&[], &[]).unwrap_err(), EventDecodeError::NoTopic));
        let short = decode_event(&[signature_topic(event_sig::PARAMS_UPDATED)], &[0; 3]);
        assert!(matches!(short.unwrap_err(), EventDecodeError::Data(_)));
    }

    #[test]
    fn events_round_trip_through_their_encoding() {
        let enc = (7u64, H160([1; 20]), 5u128, RefundReason::NoMajority).encode();
        let ev = decode_event(&[signature_topic(event_sig::JOB_REFUNDED)], &enc).unwrap();
        assert_eq!(
            ev,
            Event::JobRefunded { job_id: 7, renter: H160([1; 20]), amount: 5, reason: RefundReason::NoMajority }
        );
        assert_eq!(ev.job_id(), Some(7));
    }

    #[test]
    fn commitments_are_sha256_of_the_documented_layout() {
        // sha256 of 32 zero bytes, a known answer.
        assert_eq!(hex::encode(seed_commitment(&[0; 32])), "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
        let c = result_commitment(b"P", 1, H160([2; 20]), &[3; 32], &[4; 32]);
        let mut buf = b"P".to_vec();
        buf.extend_from_slice(&1u64.to_le_bytes());
        buf.extend_from_slice(&[2; 20]);
        buf.extend_from_slice(&[3; 32]);
        buf.extend_from_slice(&[4; 32]);
        assert_eq!(c, sp_crypto_hashing::sha2_256(&buf));
    }
}

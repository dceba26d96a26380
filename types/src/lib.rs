//! What the CapaCloud marketplace contract and its clients share: the stored and exchanged
//! types, the events' payloads, the contract's `Error`, the job lifecycle with its legal
//! transitions, and the pure rules both sides compute (economics, task sampling, batch
//! Merkle multiproofs, commitments).
//!
//! `no_std`, SCALE codec and scale-info only. The contract (PolkaVM, its own workspace)
//! and every host crate (client, worker, indexer) depend on this one crate, so a type or a
//! rule is written once; the contract's metadata test in `tests/` stays the guard that the
//! chain speaks what this crate says. Amounts are `u128` contract units (10^-18 WND; one
//! native planck is [`UNITS_PER_PLANCK`] units). Every deadline is a block number.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod econ;
pub mod events;
pub mod hash;
pub mod merkle;
pub mod sample;
pub mod state;

pub use events::*;
pub use state::JobState;

use alloc::vec::Vec;
use parity_scale_codec::{Decode, Encode};
use scale_info::TypeInfo;

/// A contract account (pallet-revive's H160 view of an account).
pub use primitive_types::H160 as Address;

/// Amounts in contract units (10^-18 WND).
pub type Amount = u128;
/// A 32-byte sha256 hash.
pub type Hash32 = [u8; 32];
/// A block number (the dev chain's timestamp is always 0: every deadline is a block).
pub type BlockNumber = u32;

/// The interface version of the contract this crate describes (`market().version`).
pub const INTERFACE_VERSION: u32 = 3;
/// Contract units per native planck (18 vs 12 decimals).
pub const UNITS_PER_PLANCK: Amount = 1_000_000;
/// Contract units in one WND.
pub const UNITS_PER_WND: Amount = 1_000_000_000_000_000_000;
/// Basis points in one whole.
pub const BPS: u16 = 10_000;

/// Upper bound on the protocol fee (10 %).
pub const MAX_PROTOCOL_FEE_BPS: u16 = 1_000;
/// Upper bound on the verifier fee: twice the value of the work re-executed.
pub const MAX_VERIFIER_FEE_BPS: u16 = 20_000;
/// Lower bound on every window, in blocks.
pub const MIN_WINDOW_BLOCKS: u32 = 2;
/// Upper bound on the accept, bid and unstake windows (about 7 days at 6 s blocks).
pub const MAX_WINDOW_BLOCKS: u32 = 100_800;
/// Upper bound on the reveal window: a draw reads the hash of a block at most this far
/// back, and the chain keeps the last 256 block hashes.
pub const MAX_REVEAL_WINDOW: u32 = 200;
/// Most tasks in one job (a batch).
pub const MAX_TASKS: u32 = 4_096;
/// Provider slots (the verifier-sampling tree's leaves); slots are recycled.
pub const MAX_PROVIDERS: u32 = 1_024;
/// Verifier draws per round (the first plus replacements of silent or unable verifiers).
pub const MAX_DRAWS: u8 = 3;
/// Accounts a job remembers as drawn (excluded from later draws of the job).
pub const MAX_DRAWN: usize = 2 * MAX_DRAWS as usize;
/// How often a job whose provider let it time out is re-opened before it is refunded.
pub const MAX_REOPENS: u8 = 1;
/// Share of a provider's lock taken (to the treasury) when it lets a job time out uncommitted.
pub const TIMEOUT_PENALTY_BPS: u16 = 1_000;
/// The share of verifier weight a cheater may control and still lose in expectation (20 %):
/// locks are sized with it (see [`econ::lock_for`]).
pub const COLLUSION_BPS: u16 = 2_000;
/// A bid in the last `SNIPE_GUARD_BLOCKS` of an auction extends it by that much (soft close),
/// at most until the bid window has doubled.
pub const SNIPE_GUARD_BLOCKS: u32 = 2;
/// Longest spec URI, in bytes.
pub const MAX_URI_LEN: usize = 96;
/// Longest opaque offer description ([`OfferInfo`] encoded), in bytes.
pub const MAX_OFFER_INFO_LEN: usize = 200;
/// pallet-revive's limit on one storage value and on one event (topics included), in bytes.
pub const PAYLOAD_BYTES: usize = 416;
/// Stake is weighed for the verifier draw in whole units of this many contract units (1 µWND).
pub const WEIGHT_UNIT: Amount = 1_000_000_000_000;

/// Protocol parameters, set by the admin within the bounds above. A job keeps the values
/// in force when it was created ([`Terms`]); a change applies to new jobs only, after
/// the contract's `params_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct Params {
    /// Fee taken from the provider's payout, in basis points.
    pub protocol_fee_bps: u16,
    /// Fee of a verifier that matched the majority, in basis points of the value of the
    /// tasks it re-executed (10,000 = the provider's price for the same work).
    pub verifier_fee_bps: u16,
    /// The check rate clients propose when the renter names none (advisory; a job's own
    /// rate is taken literally, 0 = never checked).
    pub default_check_rate_bps: u16,
    /// The least stake to register, the least lock per job and the least verifier bond.
    pub min_stake: Amount,
    /// Blocks a provider has to accept a direct hire.
    pub accept_window: u32,
    /// Blocks bids are taken on an open job.
    pub bid_window: u32,
    /// Blocks each seed-reveal, draw and reveal phase lasts.
    pub reveal_window: u32,
    /// Blocks between asking to unstake and being able to withdraw.
    pub unstake_cooldown: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            protocol_fee_bps: 200,
            verifier_fee_bps: 10_000,
            default_check_rate_bps: 1_000,
            min_stake: UNITS_PER_WND,
            accept_window: 20,
            bid_window: 10,
            reveal_window: 20,
            unstake_cooldown: 50,
        }
    }
}

impl Params {
    /// Whether every field is within its documented bound.
    pub fn is_valid(&self) -> bool {
        let window_ok = |w: u32| (MIN_WINDOW_BLOCKS..=MAX_WINDOW_BLOCKS).contains(&w);
        self.protocol_fee_bps <= MAX_PROTOCOL_FEE_BPS
            && self.verifier_fee_bps <= MAX_VERIFIER_FEE_BPS
            && self.default_check_rate_bps <= BPS
            && self.min_stake >= UNITS_PER_PLANCK
            && window_ok(self.accept_window)
            && window_ok(self.bid_window)
            && (MIN_WINDOW_BLOCKS..=MAX_REVEAL_WINDOW).contains(&self.reveal_window)
            && window_ok(self.unstake_cooldown)
    }

    /// The part of the parameters a job keeps for its whole life.
    pub fn terms(&self) -> Terms {
        Terms {
            protocol_fee_bps: self.protocol_fee_bps,
            verifier_fee_bps: self.verifier_fee_bps,
            reveal_window: self.reveal_window,
            bid_window: self.bid_window,
            min_stake: self.min_stake,
        }
    }
}

/// The protocol parameters a job was created under (fixed for its whole life).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct Terms {
    pub protocol_fee_bps: u16,
    pub verifier_fee_bps: u16,
    pub reveal_window: u32,
    pub bid_window: u32,
    pub min_stake: Amount,
}

/// Per-provider reputation. Failures and successes are weighed by value, so many tiny
/// (wash) jobs buy little.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct Reputation {
    pub jobs_completed: u32,
    pub checks_passed: u32,
    pub checks_failed: u32,
    pub timeouts: u32,
    /// Value of the jobs it was paid for (contract units).
    pub value_settled: Amount,
    /// Value of the jobs it lost by a wrong result (weighed 5×) or a timeout (2×).
    pub value_failed: Amount,
}

impl Reputation {
    /// Score in basis points: settled value over settled plus weighted failed value plus one
    /// WND (so a newcomer scores 0 and the score grows with real, paid work).
    pub fn score(&self) -> u32 {
        let good = self.value_settled;
        let bad = self.value_failed;
        let den = good.saturating_add(bad).saturating_add(UNITS_PER_WND);
        econ::mul_div(good, BPS as u128, den) as u32
    }

    /// Adds `d`'s counts and values, saturating: the contract records an outcome as one
    /// such delta, written with the rest of the provider's record.
    pub fn add(&mut self, d: &Reputation) {
        self.jobs_completed = self.jobs_completed.saturating_add(d.jobs_completed);
        self.checks_passed = self.checks_passed.saturating_add(d.checks_passed);
        self.checks_failed = self.checks_failed.saturating_add(d.checks_failed);
        self.timeouts = self.timeouts.saturating_add(d.timeouts);
        self.value_settled = self.value_settled.saturating_add(d.value_settled);
        self.value_failed = self.value_failed.saturating_add(d.value_failed);
    }
}

/// A registered provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct Provider {
    /// Bonded stake (locked part included); it is the provider's weight in verifier draws.
    pub stake: Amount,
    /// Part of `stake` locked by held jobs, best bids and verifier bonds.
    pub locked: Amount,
    /// Stake leaving, withdrawable from block `unbond_at` (no longer weighed or lockable).
    pub unbonding: Amount,
    pub unbond_at: BlockNumber,
    /// Slot in the verifier-sampling tree, 1-based; 0 once the provider left.
    pub slot: u32,
    pub reputation: Reputation,
}

impl Provider {
    /// Stake not locked by anything.
    pub fn free(&self) -> Amount {
        self.stake.saturating_sub(self.locked)
    }
}

/// What a provider offers (listed, updated and removed by it).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct OfferInput {
    pub price_per_unit: Amount,
    /// The largest job (units per task × tasks) it takes.
    pub max_units: u64,
    pub vram_mib: u32,
    /// The worker's measured adapter score (GOP/s of the library matmul); the offer's GPU
    /// class follows from it ([`econ::gpu_class`]).
    pub benchmark_score: u32,
    /// [`OfferInfo`] SCALE-encoded (vendor, model, backend, endpoint); opaque to the contract.
    pub info: Vec<u8>,
}

/// The descriptive part of an offer, carried SCALE-encoded in [`OfferInput::info`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OfferInfo {
    pub gpu_vendor: alloc::string::String,
    pub gpu_model: alloc::string::String,
    /// wgpu backend and driver, e.g. "Vulkan NVIDIA 580.159".
    pub backend: alloc::string::String,
    /// URL where the provider serves job outputs.
    pub endpoint: alloc::string::String,
}

/// A listed offer; `active == false` is a removed offer.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct Offer {
    pub provider: Address,
    pub gpu_class: u8,
    pub active: bool,
    pub input: OfferInput,
}

impl Offer {
    /// The offer's description, if its bytes decode.
    pub fn info(&self) -> Option<OfferInfo> {
        OfferInfo::decode(&mut &self.input.info[..]).ok()
    }
}

/// What a job asks of an offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct Requirements {
    pub min_vram_mib: u32,
    pub min_benchmark_score: u32,
    pub gpu_class: Option<u8>,
}

/// `create_job`'s terms (the renter's seed commitment is a separate argument).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct JobInput {
    /// sha256 of the SCALE-encoded job spec (kernel, dispatch, binding shapes).
    pub spec_hash: Hash32,
    /// sha256 of the task manifest (every task's inputs); zero for a job whose one task's
    /// inputs are in the spec.
    pub manifest_hash: Hash32,
    /// Where the spec is served (the manifest and inputs are named inside it).
    pub uri: Vec<u8>,
    /// Number of tasks N (1 ..= [`MAX_TASKS`]).
    pub tasks: u32,
    pub units_per_task: u64,
    pub max_price_per_unit: Amount,
    pub requirements: Requirements,
    /// Blocks the provider has from assignment to its commitment (a verifier gets as many).
    pub compute_blocks: u32,
    /// Probability that each task is re-executed, in basis points; 0 = never checked.
    pub check_rate_bps: u16,
    /// If a decided check finds no verifier, pay the provider anyway (else refund).
    pub pay_if_unverified: bool,
    /// Direct hire of this offer; `None` opens an auction.
    pub offer_id: Option<u64>,
}

impl JobInput {
    /// Work units of the whole job (tasks × units per task).
    pub fn work_units(&self) -> u64 {
        u64::from(self.tasks).saturating_mul(self.units_per_task)
    }
}

/// A verifier drawn for a job (round 0: input availability, 1: first check, 2: dispute).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct Verifier {
    pub account: Address,
    pub bond: Amount,
    pub drawn_at: BlockNumber,
    /// Its commitment (zero: none yet).
    pub commitment: Hash32,
    pub committed_at: BlockNumber,
    /// Its answer: the comparison hash of the sampled tasks' leaves (zero: none yet).
    pub answer: Hash32,
    pub revealed_at: BlockNumber,
}

impl Verifier {
    pub fn has_committed(&self) -> bool {
        self.commitment != [0; 32]
    }
    pub fn has_revealed(&self) -> bool {
        self.answer != [0; 32]
    }
}

/// The lifecycle part of a job, stored under `jobs`: everything a message needs to move
/// the job on, so a message reads one storage value, not the whole job.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct JobCore {
    pub renter: Address,
    /// The hired offer's provider (direct hire); while open, the best bidder (whose lock is
    /// held); then the assigned provider. Zero: none.
    pub provider: Address,
    pub state: JobState,
    pub phase_deadline: BlockNumber,
    /// When the current auction opened (bounds its soft-close extensions).
    pub opened_at: BlockNumber,
    pub tasks: u32,
    pub units_per_task: u64,
    pub max_price_per_unit: Amount,
    pub requirements: Requirements,
    pub compute_blocks: u32,
    pub check_rate_bps: u16,
    pub pay_if_unverified: bool,
    /// The hired offer (direct hire), the best bid's offer while open, then the winning offer.
    pub offer_id: Option<u64>,
    pub gpu_class: u8,
    /// Price per unit: the hired offer's price when the job was created (direct hire), the
    /// best bid while open, then the winning price.
    pub price_per_unit: Amount,
    /// The best bidder's reputation score when it bid (auction tie-break).
    pub bid_score: u32,
    /// Escrow still held for this job.
    pub escrow: Amount,
    /// Provider stake locked for this job (or by the best bid; its availability deposit
    /// included).
    pub lock: Amount,
    pub seed_commitment: Hash32,
    /// The provider's commitment `c_p` (zero: none yet).
    pub commitment: Hash32,
    /// Block of the commitment (or of the availability report): its hash seeds the first
    /// draw and its epoch is the stake snapshot every draw of this phase uses.
    pub commit_block: BlockNumber,
    /// The check was given up (no verifier could be had); the job ends `Unverified`.
    pub unverified: bool,
    /// The provider reported the inputs unavailable (once per assignment).
    pub reported: bool,
    /// The renter revealed its seed (else the job was checked on the fallback seed, with
    /// at least one task sampled).
    pub seed_revealed: bool,
    pub check_seed: Hash32,
    /// How many tasks the check seed sampled.
    pub sampled: u32,
    /// The provider's revealed batch root (zero: not yet).
    pub batch_root: Hash32,
    /// The provider's comparison hash of the sampled leaves, and the block it became public.
    pub provider_answer: Hash32,
    pub answered_at: BlockNumber,
    /// 0 = availability check, 1 = first check, 2 = dispute.
    pub round: u8,
    /// Draws made in the current round.
    pub draws: u8,
    /// A draw is due: its beacon is the hash of this block (sealed after the event that made
    /// the draw due); anyone may make it once the block is sealed.
    pub draw_at: Option<BlockNumber>,
    /// Verifiers of this round that reported the inputs unavailable.
    pub unavailable_reports: u8,
    pub reopens: u8,
    pub terms: Terms,
}

impl JobCore {
    /// Whether the renter paid the provider for the work: settled, or unverified with the
    /// renter's "pay anyway" (workers serve a job's outputs to its renter only then).
    pub fn renter_paid(&self) -> bool {
        self.state == JobState::Settled || (self.state == JobState::Unverified && self.pay_if_unverified)
    }

    /// Price × units × tasks (what the provider earns before the protocol fee).
    pub fn value(&self) -> Amount {
        self.task_value().saturating_mul(Amount::from(self.tasks))
    }

    /// Price × units of one task.
    pub fn task_value(&self) -> Amount {
        self.price_per_unit.saturating_mul(Amount::from(self.units_per_task))
    }

    /// Whether a provider is assigned (or, while open, bid).
    pub fn has_provider(&self) -> bool {
        self.provider != Address::zero()
    }

    /// Whether the job is being checked: tasks were sampled and a verifier can still be had.
    pub fn checked(&self) -> bool {
        self.sampled > 0 && !self.unverified
    }

    /// The verifier slot of the current round.
    pub fn slot(&self) -> u8 {
        self.round.min(2)
    }
}

/// A job as clients assemble it: the core and the pieces stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Job {
    pub core: JobCore,
    pub input: JobInput,
    /// Verifier of round 0 (availability), 1 and 2.
    pub verifiers: [Option<Verifier>; 3],
}

impl core::ops::Deref for Job {
    type Target = JobCore;
    fn deref(&self) -> &JobCore {
        &self.core
    }
}

impl Job {
    /// The verifier of the current round, if drawn.
    pub fn current_verifier(&self) -> Option<Verifier> {
        self.verifiers[usize::from(self.core.slot())]
    }
}

/// Contract-wide money totals; their sum equals the contract's balance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
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

/// The contract's root storage value (everything but the mappings): what a client reads
/// at [`keys::ROOT`] to see the market at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub struct MarketState {
    /// [`INTERFACE_VERSION`] of the contract that wrote this state.
    pub version: u32,
    pub admin: Address,
    pub pending_admin: Option<Address>,
    /// The parameters before the scheduled change (see [`MarketState::params_at`]).
    pub params: Params,
    /// A scheduled change and the block it applies from (to new jobs only).
    pub pending_params: Option<(Params, BlockNumber)>,
    pub totals: Accounting,
    /// Blocks per stake-snapshot epoch.
    pub epoch_blocks: u32,
    /// Blocks between `set_params` and the new parameters applying.
    pub params_delay: u32,
    /// Jobs ever created (ids are `0..job_count`).
    pub job_count: u64,
    /// Offers ever listed (ids are `0..offer_count`).
    pub offer_count: u64,
    /// Slots ever handed out (1..=slots_used).
    pub slots_used: u32,
    /// Entries in the released-slot stack.
    pub free_slots: u32,
    /// Providers holding a slot now.
    pub providers: u32,
}

impl MarketState {
    /// The parameters new jobs get at block `now`.
    pub fn params_at(&self, now: BlockNumber) -> Params {
        match self.pending_params {
            Some((p, at)) if now >= at => p,
            _ => self.params,
        }
    }
}

/// Where the contract keeps its state: the storage key of every mapping (ink! `ManualKey`s)
/// and of the root value. A client reads an entry through pallet-revive's
/// `ReviveApi_get_storage_var_key` with the key [`keys::entry`]`(MAPPING, &key)`, and the
/// root at [`keys::ROOT`]; the values decode as the types of this crate.
pub mod keys {
    use alloc::vec::Vec;
    use parity_scale_codec::Encode;

    /// The root value ([`crate::MarketState`]).
    pub const ROOT: u32 = 0;
    /// `Address -> Provider`.
    pub const PROVIDERS: u32 = 0x0100;
    /// `slot (u32) -> Address` (zero: released).
    pub const SLOT_OWNER: u32 = 0x0101;
    /// `stack index (u32) -> (slot, epoch released)`.
    pub const FREE_SLOTS: u32 = 0x0102;
    /// `block id (u32) -> the sampling tree's block` (contract-internal).
    pub const TREE: u32 = 0x0103;
    /// `offer id (u64) -> Offer`.
    pub const OFFERS: u32 = 0x0200;
    /// `job id (u64) -> JobCore`.
    pub const JOBS: u32 = 0x0300;
    /// `job id (u64) -> JobInput`.
    pub const INPUTS: u32 = 0x0301;
    /// `(job id, round) -> Verifier`.
    pub const VERIFIERS: u32 = 0x0302;
    /// `job id -> [Address; MAX_DRAWN]` (everyone drawn since the commitment).
    pub const DRAWN: u32 = 0x0303;
    /// `Address -> Amount` withdrawable.
    pub const WITHDRAWABLE: u32 = 0x0400;
    /// `GPU class (u8) -> Amount` price index.
    pub const PRICE_INDEX: u32 = 0x0401;

    /// The storage key of `mapping`'s entry for `key` (ink!: the SCALE encoding of
    /// `(mapping key, key)`).
    pub fn entry(mapping: u32, key: &impl Encode) -> Vec<u8> {
        (mapping, key).encode()
    }

    /// The storage key of the root value.
    pub fn root() -> Vec<u8> {
        ROOT.encode()
    }
}

/// What a provider or verifier reveals (`reveal`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Reveal {
    /// The provider: its batch root, and when the job is checked the sampled tasks'
    /// leaves (ascending task order) with one multiproof against the root.
    Provider { batch_root: Hash32, leaves: Vec<Hash32>, proof: Vec<Hash32> },
    /// A verifier: its comparison hash, or the sampled tasks' output roots themselves
    /// (required when its answer equals one that was public before it committed).
    Verifier { answer: Hash32, roots: Vec<Hash32> },
}

/// Every way a message can refuse. A refusal reverts: no funds move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Error {
    /// The caller is not the admin (or the proposed admin).
    NotAdmin,
    /// A parameter is outside its documented bound.
    ParamOutOfBounds,
    /// The transferred value is not what the message requires.
    WrongPayment,
    /// The transferred value does not fit the contract's accounting type.
    ValueTooLarge,
    /// Registration needs at least `min_stake`.
    StakeTooLow,
    /// The caller is not a registered provider.
    NotProvider,
    /// Every provider slot is taken.
    RegistryFull,
    /// Not enough free (unlocked) stake.
    InsufficientFreeStake,
    /// Nothing is unbonding.
    NothingToUnstake,
    /// The unstake cooldown has not passed.
    CooldownActive,
    /// A URI or offer description is empty or too long.
    BadText,
    /// An offer field is zero where it must not be.
    BadOffer,
    /// No such offer (or it was removed).
    OfferNotFound,
    /// The offer belongs to another provider.
    NotOfferOwner,
    /// The offer does not meet the job's requirements.
    RequirementsNotMet,
    /// The job is larger than the offer takes.
    JobTooLarge,
    /// A job field is zero or inconsistent.
    BadJob,
    /// No tasks, or more than [`MAX_TASKS`].
    BadTaskCount,
    /// The compute window is too long for the stake snapshot (or too short).
    BadComputeWindow,
    /// A renter cannot hire or bid on its own offers and jobs.
    SelfDealing,
    /// No such job.
    JobNotFound,
    /// The job is not in the state this message needs.
    WrongState,
    /// The caller is not the party this step needs.
    NotAuthorized,
    /// The phase's deadline has passed.
    DeadlinePassed,
    /// The phase's deadline has not passed yet (or a draw's beacon block is not sealed).
    DeadlineNotPassed,
    /// The price is zero or above the job's maximum.
    PriceAboveMax,
    /// The bid does not beat the best bid.
    BidNotBetter,
    /// The revealed seed does not match the commitment.
    SeedMismatch,
    /// The revealed answer and salt do not match the commitment.
    CommitmentMismatch,
    /// The leaves, their count or the multiproof do not match the batch root and sample.
    BadProof,
    /// This answer was public before the verifier committed: reveal the roots behind it.
    RootsRequired,
    /// The caller has already done this step.
    AlreadyDone,
    /// Nothing to withdraw.
    NothingToWithdraw,
    /// The chain refused the transfer.
    TransferFailed,
    /// An amount overflowed.
    Overflow,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::NotAdmin => "The caller is not the admin (or the proposed admin).",
            Error::ParamOutOfBounds => "A parameter is outside its documented bound.",
            Error::WrongPayment => "The transferred value is not what the message requires.",
            Error::ValueTooLarge => "The transferred value does not fit the contract's accounting type.",
            Error::StakeTooLow => "Registration needs at least `min_stake`.",
            Error::NotProvider => "The caller is not a registered provider.",
            Error::RegistryFull => "Every provider slot is taken.",
            Error::InsufficientFreeStake => "Not enough free (unlocked) stake.",
            Error::NothingToUnstake => "Nothing is unbonding.",
            Error::CooldownActive => "The unstake cooldown has not passed.",
            Error::BadText => "A URI or offer description is empty or too long.",
            Error::BadOffer => "An offer field is zero where it must not be.",
            Error::OfferNotFound => "No such offer (or it was removed).",
            Error::NotOfferOwner => "The offer belongs to another provider.",
            Error::RequirementsNotMet => "The offer does not meet the job's requirements.",
            Error::JobTooLarge => "The job is larger than the offer takes.",
            Error::BadJob => "A job field is zero or inconsistent.",
            Error::BadTaskCount => "No tasks, or more than [`MAX_TASKS`].",
            Error::BadComputeWindow => "The compute window is too long for the stake snapshot (or too short).",
            Error::SelfDealing => "A renter cannot hire or bid on its own offers and jobs.",
            Error::JobNotFound => "No such job.",
            Error::WrongState => "The job is not in the state this message needs.",
            Error::NotAuthorized => "The caller is not the party this step needs.",
            Error::DeadlinePassed => "The phase's deadline has passed.",
            Error::DeadlineNotPassed => "The phase's deadline has not passed yet (or a draw's beacon block is not sealed).",
            Error::PriceAboveMax => "The price is zero or above the job's maximum.",
            Error::BidNotBetter => "The bid does not beat the best bid.",
            Error::SeedMismatch => "The revealed seed does not match the commitment.",
            Error::CommitmentMismatch => "The revealed answer and salt do not match the commitment.",
            Error::BadProof => "The leaves, their count or the multiproof do not match the batch root and sample.",
            Error::RootsRequired => "This answer was public before the verifier committed: reveal the roots behind it.",
            Error::AlreadyDone => "The caller has already done this step.",
            Error::NothingToWithdraw => "Nothing to withdraw.",
            Error::TransferFailed => "The chain refused the transfer.",
            Error::Overflow => "An amount overflowed.",
        })
    }
}


//! CapaCloud marketplace contract: the one place where money and reputation move.
//!
//! Providers register with a stake and list offers; renters create jobs with escrow and a
//! seed commitment; jobs are hired directly or auctioned (lowest price wins); providers
//! commit to a Merkle root of their output; the renter's seed decides whether the job is
//! spot-checked; a stake-weighted verifier re-executes and commits; roots are revealed and
//! compared; the contract settles, refunds or slashes, and every payout is a pull payment.
//! The product spec is `shared/PROTOCOL.md`; the state machine is documented on [`JobState`].
//!
//! Chain facts this contract is written for (pallet-revive 0.10, see TOOLCHAIN.md):
//! `Mapping::remove/contains` silently do nothing, so state is never removed, only
//! tombstoned; the block timestamp is always 0, so every deadline is a block number;
//! the runtime's native-to-eth ratio is 10^6, which [`CapaEnv`] declares.
//!
//! Amounts are `u128` in contract units (10^-18 WND; 1 planck = 10^6 units).
#![cfg_attr(not(feature = "std"), no_std, no_main)]

// PolkaVM's default stack is too small to decode a `Job` (the contract traps with
// `ContractTrapped` on the first read); measured on the dev chain, see ARCHITECTURE.md.
#[cfg(not(feature = "std"))]
ink::min_stack_size!(131072);

/// The contract environment of Asset Hub Westend (pallet-revive 0.10).
///
/// Identical to ink!'s default environment except for the native-to-eth ratio: the runtime
/// has 12 native decimals and 18 in the contract, a ratio of 10^6 (ink! assumes 10^8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[ink::scale_derive(TypeInfo)]
pub enum CapaEnv {}

impl ink::env::Environment for CapaEnv {
    const NATIVE_TO_ETH_RATIO: u32 = 1_000_000;
    const TRUST_BACKED_ASSETS_PRECOMPILE_INDEX: u16 =
        <ink::env::DefaultEnvironment as ink::env::Environment>::TRUST_BACKED_ASSETS_PRECOMPILE_INDEX;
    const POOL_ASSETS_PRECOMPILE_INDEX: u16 =
        <ink::env::DefaultEnvironment as ink::env::Environment>::POOL_ASSETS_PRECOMPILE_INDEX;
    type AccountId = <ink::env::DefaultEnvironment as ink::env::Environment>::AccountId;
    type Balance = <ink::env::DefaultEnvironment as ink::env::Environment>::Balance;
    type Hash = <ink::env::DefaultEnvironment as ink::env::Environment>::Hash;
    type Timestamp = <ink::env::DefaultEnvironment as ink::env::Environment>::Timestamp;
    type BlockNumber = <ink::env::DefaultEnvironment as ink::env::Environment>::BlockNumber;
    type EventRecord = <ink::env::DefaultEnvironment as ink::env::Environment>::EventRecord;
}

#[ink::contract(env = crate::CapaEnv)]
mod marketplace {
    use ink::prelude::string::String;
    use ink::primitives::U256;
    use ink::storage::Mapping;

    /// Amounts in contract units (10^-18 WND).
    pub type Amount = u128;
    /// A 32-byte hash (sha256).
    pub type Hash32 = [u8; 32];

    /// Basis points in one whole (100%).
    pub const BPS: u16 = 10_000;
    /// Upper bound on the protocol fee an admin can set (10%).
    pub const MAX_PROTOCOL_FEE_BPS: u16 = 1_000;
    /// Upper bound on the verifier fee an admin can set (10%).
    pub const MAX_VERIFIER_FEE_BPS: u16 = 1_000;
    /// Lower bound on every window, in blocks.
    pub const MIN_WINDOW_BLOCKS: u32 = 2;
    /// Upper bound on every window, in blocks (about 7 days at 6 s blocks).
    pub const MAX_WINDOW_BLOCKS: u32 = 100_800;
    /// Capacity of the provider registry (and of the verifier-sampling tree); a power of two.
    pub const MAX_PROVIDERS: u32 = 1024;
    /// Most verifier draws per verification round (a silent verifier is replaced up to this).
    pub const MAX_DRAWS: u8 = 3;
    /// Share of a provider's lock slashed when it lets an assigned job time out uncommitted.
    pub const TIMEOUT_PENALTY_BPS: u16 = 1_000;
    /// Weight of a new clearing price in the price index (exponential moving average).
    pub const PRICE_INDEX_ALPHA_BPS: u16 = 2_000;
    /// Longest GPU vendor string.
    pub const MAX_VENDOR_LEN: usize = 32;
    /// Longest GPU model, backend or endpoint string.
    pub const MAX_TEXT_LEN: usize = 64;
    /// Longest job spec URI.
    pub const MAX_URI_LEN: usize = 128;
    /// pallet-revive's limit on one storage value and on one event (topics included), in
    /// bytes. Every stored type and event is sized below it (see the `payload_limits` test);
    /// the text limits above follow from it.
    pub const PAYLOAD_BYTES: usize = 416;

    /// The largest `JobCreated` event: 3 topics, job id, renter, the largest `JobInput`
    /// (its URI is the only variable field: 2-byte length prefix + text), escrow, rate, deadline.
    const MAX_JOB_CREATED_BYTES: usize = 3 * 32 + 8 + 20 + (32 + 2 + MAX_URI_LEN + 8 + 16 + 13 + 4 + 2 + 32 + 9) + 16 + 2 + 4;
    /// The largest `OfferListed` event: 3 topics, offer id, provider, the largest `OfferInput`, flag.
    const MAX_OFFER_LISTED_BYTES: usize =
        3 * 32 + 8 + 20 + (1 + MAX_VENDOR_LEN) + 3 * (2 + MAX_TEXT_LEN) + 4 + 4 + 4 + 16 + 8 + 1;
    const _: () = assert!(MAX_JOB_CREATED_BYTES <= PAYLOAD_BYTES && MAX_OFFER_LISTED_BYTES <= PAYLOAD_BYTES);

    /// Protocol parameters, set by the admin within the bounds above.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Params {
        /// Fee taken from the provider's payout, in basis points.
        pub protocol_fee_bps: u16,
        /// Fee paid to each verifier that re-executes a job, in basis points of the job value.
        pub verifier_fee_bps: u16,
        /// Spot-check rate used when a job names none (0), in basis points.
        pub default_check_rate_bps: u16,
        /// The least stake locked per held job and the largest verifier bond, in contract units.
        pub min_stake: Amount,
        /// Blocks a provider has to accept a direct hire.
        pub accept_window: u32,
        /// Blocks bids are taken on an open job.
        pub bid_window: u32,
        /// Blocks each seed-reveal, verifier-commit and reveal phase lasts.
        pub reveal_window: u32,
        /// Blocks between asking to unstake and being able to withdraw.
        pub unstake_cooldown: u32,
    }

    impl Default for Params {
        fn default() -> Self {
            Self {
                protocol_fee_bps: 200,
                verifier_fee_bps: 300,
                default_check_rate_bps: 1_000,
                // 1 WND: 10^12 plancks × 10^6 contract units per planck.
                min_stake: 1_000_000_000_000_000_000,
                accept_window: 20,
                bid_window: 10,
                reveal_window: 20,
                unstake_cooldown: 50,
            }
        }
    }

    impl Params {
        /// Checks every field against its bound.
        fn validate(&self) -> Result<()> {
            let window_ok = |w: u32| (MIN_WINDOW_BLOCKS..=MAX_WINDOW_BLOCKS).contains(&w);
            if self.protocol_fee_bps > MAX_PROTOCOL_FEE_BPS
                || self.verifier_fee_bps > MAX_VERIFIER_FEE_BPS
                || self.default_check_rate_bps == 0
                || self.default_check_rate_bps > BPS
                || self.min_stake == 0
                || !window_ok(self.accept_window)
                || !window_ok(self.bid_window)
                || !window_ok(self.reveal_window)
                || !window_ok(self.unstake_cooldown)
            {
                return Err(Error::ParamOutOfBounds);
            }
            Ok(())
        }
    }

    /// Per-provider reputation counters.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Reputation {
        pub jobs_completed: u32,
        pub checks_passed: u32,
        pub checks_failed: u32,
        pub timeouts: u32,
        pub value_settled: Amount,
    }

    impl Reputation {
        /// Score in basis points: successes over successes plus weighted failures; 0 for a
        /// new provider, approaching 10,000 with a clean record.
        pub fn score(&self) -> u32 {
            let good = u64::from(self.jobs_completed) + u64::from(self.checks_passed);
            let bad = 5 * u64::from(self.checks_failed) + 2 * u64::from(self.timeouts);
            (10_000 * good / (good + bad + 1)) as u32
        }
    }

    /// A registered provider.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Provider {
        /// Bonded stake, locked part included.
        pub stake: Amount,
        /// Part of `stake` locked by held jobs and verifier bonds.
        pub locked: Amount,
        /// Stake leaving, withdrawable from block `unbond_at`.
        pub unbonding: Amount,
        pub unbond_at: BlockNumber,
        /// Slot in the verifier-sampling tree (1-based).
        pub index: u32,
        pub reputation: Reputation,
    }

    impl Provider {
        /// Stake not locked by anything.
        pub fn free(&self) -> Amount {
            self.stake.saturating_sub(self.locked)
        }
    }

    /// What a provider offers (listed, updated and removed by it).
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct OfferInput {
        pub gpu_vendor: String,
        pub gpu_model: String,
        pub vram_mib: u32,
        /// wgpu backend and driver, e.g. "Vulkan NVIDIA 580.159".
        pub backend: String,
        /// The worker's measured adapter score (GOP/s of the library matmul).
        pub benchmark_score: u32,
        /// Coarse GPU class (the score's class); keys the price index.
        pub gpu_class: u32,
        pub price_per_unit: Amount,
        pub max_units: u64,
        /// URL where the provider serves job outputs.
        pub endpoint: String,
    }

    /// A listed offer; `active == false` is a removed offer (tombstone).
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Offer {
        pub provider: Address,
        pub info: OfferInput,
        pub active: bool,
    }

    /// What a job asks of an offer.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Requirements {
        pub min_vram_mib: u32,
        pub min_benchmark_score: u32,
        pub gpu_class: Option<u32>,
    }

    /// `create_job`'s arguments.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct JobInput {
        pub spec_hash: Hash32,
        pub spec_uri: String,
        pub work_units: u64,
        pub max_price_per_unit: Amount,
        pub requirements: Requirements,
        /// Block by which the provider must commit its result.
        pub deadline: BlockNumber,
        /// Spot-check rate in basis points; 0 takes the default.
        pub check_rate_bps: u16,
        /// sha256 of the renter's secret seed.
        pub seed_commitment: Hash32,
        /// Direct hire of this offer; `None` opens an auction.
        pub offer_id: Option<u64>,
    }

    /// The lifecycle of a job. Every non-terminal state has a deadline (`phase_deadline`)
    /// after which anyone may call `cleanup`, so every job ends Settled, Refunded or Slashed.
    ///
    /// ```text
    /// Open ──bid*, close_auction──▶ Assigned ──commit_result──▶ Committed ──reveal_seed──▶ Reveal (unchecked)
    /// AwaitingAccept ──accept_job──▶ Assigned                          └──(checked)──▶ VerifierCommit ──▶ Reveal
    /// Reveal: roots equal ▶ Settled; differ ▶ VerifierCommit (round 2) ▶ Reveal ▶ majority: Settled | Slashed
    /// timeouts: Open/AwaitingAccept ▶ Refunded; Assigned ▶ Refunded (provider penalised);
    ///           Committed ▶ checked draw; VerifierCommit ▶ redraw (verifier slashed);
    ///           Reveal ▶ Slashed (silent provider) or redraw (silent verifier)
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub enum JobState {
        /// Taking bids until the deadline.
        Open,
        /// Waiting for the named offer's provider to accept.
        AwaitingAccept,
        /// The provider runs the job and must commit by the deadline.
        Assigned,
        /// The provider committed; the renter must reveal its seed.
        Committed,
        /// A verifier was drawn and must commit its own result.
        VerifierCommit,
        /// Commitments are in; the roots must be revealed.
        Reveal,
        /// Paid out (terminal).
        Settled,
        /// Escrow returned to the renter (terminal).
        Refunded,
        /// The provider was slashed and the renter refunded (terminal).
        Slashed,
    }

    impl JobState {
        /// Whether the job has ended.
        pub fn is_terminal(self) -> bool {
            matches!(self, JobState::Settled | JobState::Refunded | JobState::Slashed)
        }
    }

    /// The best bid so far on an open job (its provider's lock is held).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Bid {
        pub provider: Address,
        pub offer_id: u64,
        pub price_per_unit: Amount,
        pub reputation_score: u32,
        pub lock: Amount,
    }

    /// A verifier drawn for a job.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Verifier {
        pub account: Address,
        pub bond: Amount,
        pub commitment: Option<Hash32>,
        pub root: Option<Hash32>,
    }

    /// A job's verifier of one round, if drawn.
    pub type VerifierSlot = Option<Verifier>;

    /// The lifecycle part of a job, stored under `jobs`. A job is stored in pieces (this
    /// core, its input, best bid, verifier slots and drawn list) because pallet-revive caps a
    /// storage value at [`PAYLOAD_BYTES`]; [`Job`] assembles them.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct JobCore {
        pub renter: Address,
        pub check_rate_bps: u16,
        pub state: JobState,
        pub phase_deadline: BlockNumber,
        /// Escrow still held for this job.
        pub escrow: Amount,
        pub provider: Option<Address>,
        pub offer_id: Option<u64>,
        pub gpu_class: u32,
        pub price_per_unit: Amount,
        /// Provider stake locked for this job.
        pub lock: Amount,
        pub provider_commitment: Option<Hash32>,
        pub provider_root: Option<Hash32>,
        pub checked: bool,
        pub check_seed: Hash32,
        /// 1 = first verification, 2 = dispute.
        pub round: u8,
        /// Verifiers drawn in the current round.
        pub draws: u8,
        /// Length of the job's drawn list.
        pub drawn_count: u8,
    }

    /// A job and everything its lifecycle has recorded, assembled from its stored pieces.
    /// The core's fields read and write through `Deref`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Job {
        pub core: JobCore,
        pub input: JobInput,
        pub best_bid: Option<Bid>,
        pub verifiers: [Option<Verifier>; 2],
        /// Every verifier ever drawn for this job (at most 2 × MAX_DRAWS); none is drawn twice.
        pub drawn: ink::prelude::vec::Vec<Address>,
    }

    impl core::ops::Deref for Job {
        type Target = JobCore;
        fn deref(&self) -> &JobCore {
            &self.core
        }
    }

    impl core::ops::DerefMut for Job {
        fn deref_mut(&mut self) -> &mut JobCore {
            &mut self.core
        }
    }

    impl Job {
        /// The verifier slot of the current round (0 for round 1, 1 for the dispute).
        pub fn slot(&self) -> usize {
            usize::from(self.round.saturating_sub(1)).min(1)
        }

        /// Price × units (what the provider earns before the protocol fee).
        pub fn value(&self) -> Amount {
            self.price_per_unit.saturating_mul(Amount::from(self.input.work_units))
        }
    }

    /// Contract-wide money totals; their sum equals the contract's balance.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
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

    #[ink(storage)]
    pub struct Marketplace {
        admin: Address,
        params: Params,
        totals: Accounting,
        providers: Mapping<Address, Provider>,
        provider_at: Mapping<u32, Address>,
        provider_count: u32,
        /// Fenwick tree over provider slots of their free stake (verifier sampling weights).
        weight_tree: Mapping<u32, Amount>,
        /// Each slot's current weight.
        weights: Mapping<u32, Amount>,
        total_weight: Amount,
        offers: Mapping<u64, Offer>,
        next_offer_id: u64,
        jobs: Mapping<u64, JobCore>,
        job_inputs: Mapping<u64, JobInput>,
        best_bids: Mapping<u64, Option<Bid>>,
        job_verifiers: Mapping<(u64, u8), VerifierSlot>,
        drawn: Mapping<(u64, u8), Address>,
        next_job_id: u64,
        withdrawable: Mapping<Address, Amount>,
        price_index: Mapping<u32, Amount>,
    }

    // ---------------------------------------------------------------- events

    /// The admin changed the protocol parameters.
    #[ink(event)]
    pub struct ParamsUpdated {
        #[ink(topic)]
        pub admin: Address,
        pub params: Params,
    }

    /// A provider registered (or added stake).
    #[ink(event)]
    pub struct ProviderStaked {
        #[ink(topic)]
        pub provider: Address,
        pub added: Amount,
        pub stake: Amount,
    }

    /// A provider asked to unstake; funds are withdrawable from `unbond_at`.
    #[ink(event)]
    pub struct UnstakeRequested {
        #[ink(topic)]
        pub provider: Address,
        pub amount: Amount,
        pub unbond_at: BlockNumber,
    }

    /// Unbonded stake moved to the provider's withdrawable balance.
    #[ink(event)]
    pub struct ProviderUnstaked {
        #[ink(topic)]
        pub provider: Address,
        pub amount: Amount,
    }

    /// An offer was listed or updated.
    #[ink(event)]
    pub struct OfferListed {
        #[ink(topic)]
        pub offer_id: u64,
        #[ink(topic)]
        pub provider: Address,
        pub offer: OfferInput,
        pub updated: bool,
    }

    /// An offer was removed.
    #[ink(event)]
    pub struct OfferRemoved {
        #[ink(topic)]
        pub offer_id: u64,
        #[ink(topic)]
        pub provider: Address,
    }

    /// A job was created (or re-opened) with its escrow.
    #[ink(event)]
    pub struct JobCreated {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub renter: Address,
        pub input: JobInput,
        pub escrow: Amount,
        pub check_rate_bps: u16,
        pub phase_deadline: BlockNumber,
    }

    /// A bid became the best bid of an open job.
    #[ink(event)]
    pub struct BidPlaced {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub provider: Address,
        pub offer_id: u64,
        pub price_per_unit: Amount,
    }

    /// A provider got the job at `price_per_unit`, with `lock` of its stake locked.
    #[ink(event)]
    pub struct JobAssigned {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub renter: Address,
        #[ink(topic)]
        pub provider: Address,
        pub offer_id: u64,
        pub price_per_unit: Amount,
        pub lock: Amount,
        pub commit_deadline: BlockNumber,
    }

    /// The provider committed to its result.
    #[ink(event)]
    pub struct ResultCommitted {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub provider: Address,
        pub commitment: Hash32,
    }

    /// The check decision: the renter's seed (or, if it stayed silent, the fallback seed).
    #[ink(event)]
    pub struct SeedRevealed {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub renter: Address,
        pub seed: Option<Hash32>,
        pub check_seed: Hash32,
        pub checked: bool,
    }

    /// A verifier was drawn for a job.
    #[ink(event)]
    pub struct VerifierDrawn {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub provider: Address,
        #[ink(topic)]
        pub verifier: Address,
        pub round: u8,
        pub bond: Amount,
        pub commit_deadline: BlockNumber,
    }

    /// A verifier committed to its re-execution.
    #[ink(event)]
    pub struct VerificationCommitted {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub verifier: Address,
        pub commitment: Hash32,
    }

    /// A root was revealed (by the provider or a verifier).
    #[ink(event)]
    pub struct ResultRevealed {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub by: Address,
        pub root: Hash32,
        pub is_provider: bool,
    }

    /// A job settled: what each party was credited.
    #[ink(event)]
    pub struct JobSettled {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub renter: Address,
        #[ink(topic)]
        pub provider: Address,
        pub root: Hash32,
        pub provider_payout: Amount,
        pub verifier_fees: Amount,
        pub protocol_fee: Amount,
        pub renter_refund: Amount,
        pub checked: bool,
    }

    /// A job's escrow went back to its renter.
    #[ink(event)]
    pub struct JobRefunded {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub renter: Address,
        pub amount: Amount,
        pub reason: RefundReason,
    }

    /// Stake was slashed and distributed.
    #[ink(event)]
    pub struct Slashed {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub account: Address,
        pub amount: Amount,
        pub to_renter: Amount,
        pub to_verifiers: Amount,
        pub to_treasury: Amount,
        pub reason: SlashReason,
    }

    /// A pull payment left the contract.
    #[ink(event)]
    pub struct Withdrawn {
        #[ink(topic)]
        pub account: Address,
        pub amount: Amount,
    }

    /// The price index of a GPU class moved.
    #[ink(event)]
    pub struct PriceIndexUpdated {
        #[ink(topic)]
        pub gpu_class: u32,
        pub clearing_price: Amount,
        pub index: Amount,
    }

    /// Why a job was refunded.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub enum RefundReason {
        NoBids,
        NotAccepted,
        NoCommitment,
        NoMajority,
        ProviderSlashed,
    }

    /// Why stake was slashed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub enum SlashReason {
        /// An assigned job timed out without a commitment (partial slash).
        CommitTimeout,
        /// The provider did not reveal its root in time.
        ProviderSilent,
        /// A verifier did not commit or reveal in time.
        VerifierSilent,
        /// The committed root lost the majority vote.
        WrongResult,
    }

    // ---------------------------------------------------------------- errors

    /// Every way a message can refuse. A refusal reverts: no funds move.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub enum Error {
        /// The caller is not the admin.
        NotAdmin,
        /// A parameter is outside its documented bound.
        ParamOutOfBounds,
        /// The transferred value is not what the message requires.
        WrongPayment,
        /// The transferred value does not fit the contract's accounting type.
        ValueTooLarge,
        /// Registration needs at least `min_stake`.
        StakeTooLow,
        /// The caller is already a registered provider.
        AlreadyRegistered,
        /// The caller is not a registered provider.
        NotProvider,
        /// The provider registry is full.
        RegistryFull,
        /// Not enough free (unlocked) stake.
        InsufficientFreeStake,
        /// Nothing is unbonding, or its cooldown has not passed.
        NothingToUnstake,
        /// The unstake cooldown has not passed.
        CooldownActive,
        /// A text field is empty or too long.
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
        /// The deadline is too soon for the job's windows.
        DeadlineTooSoon,
        /// No such job.
        JobNotFound,
        /// The job is not in the state this message needs.
        WrongState,
        /// The caller is not the party this step needs.
        NotAuthorized,
        /// The phase's deadline has passed.
        DeadlinePassed,
        /// The phase's deadline has not passed yet.
        DeadlineNotPassed,
        /// The price is above the job's maximum.
        PriceAboveMax,
        /// The bid does not beat the best bid.
        BidNotBetter,
        /// The auction has no bid.
        NoBids,
        /// The revealed seed does not match the commitment.
        SeedMismatch,
        /// The revealed root and salt do not match the commitment.
        CommitmentMismatch,
        /// The caller has already done this step.
        AlreadyDone,
        /// Nothing to withdraw.
        NothingToWithdraw,
        /// The chain refused the transfer.
        TransferFailed,
        /// An amount overflowed.
        Overflow,
    }

    /// Result type of every fallible message.
    pub type Result<T> = core::result::Result<T, Error>;

    impl Default for Marketplace {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Marketplace {
        // ------------------------------------------------------------ constructors

        /// Creates the marketplace with the caller as admin and default parameters.
        #[ink(constructor)]
        pub fn new() -> Self {
            Self {
                admin: Self::env().caller(),
                params: Params::default(),
                totals: Accounting::default(),
                providers: Mapping::default(),
                provider_at: Mapping::default(),
                provider_count: 0,
                weight_tree: Mapping::default(),
                weights: Mapping::default(),
                total_weight: 0,
                offers: Mapping::default(),
                next_offer_id: 0,
                jobs: Mapping::default(),
                job_inputs: Mapping::default(),
                best_bids: Mapping::default(),
                job_verifiers: Mapping::default(),
                drawn: Mapping::default(),
                next_job_id: 0,
                withdrawable: Mapping::default(),
                price_index: Mapping::default(),
            }
        }

        // ------------------------------------------------------------ admin and reads

        /// The interface version of this contract; clients refuse a version they do not speak.
        #[ink(message)]
        pub fn version(&self) -> u32 {
            2
        }

        /// The admin account.
        #[ink(message)]
        pub fn admin(&self) -> Address {
            self.admin
        }

        /// The current protocol parameters.
        #[ink(message)]
        pub fn params(&self) -> Params {
            self.params
        }

        /// Replaces the protocol parameters and emits [`ParamsUpdated`].
        ///
        /// # Errors
        /// - [`Error::NotAdmin`] if the caller is not the admin.
        /// - [`Error::ParamOutOfBounds`] if any field is outside its bound.
        #[ink(message)]
        pub fn set_params(&mut self, params: Params) -> Result<()> {
            let caller = self.env().caller();
            if caller != self.admin {
                return Err(Error::NotAdmin);
            }
            params.validate()?;
            self.params = params;
            self.env().emit_event(ParamsUpdated { admin: caller, params });
            Ok(())
        }

        /// Moves `amount` of the treasury to the admin's withdrawable balance.
        ///
        /// # Errors
        /// [`Error::NotAdmin`]; [`Error::NothingToWithdraw`] if the treasury holds less.
        #[ink(message)]
        pub fn claim_treasury(&mut self, amount: Amount) -> Result<()> {
            let caller = self.env().caller();
            if caller != self.admin {
                return Err(Error::NotAdmin);
            }
            if amount == 0 || amount > self.totals.treasury {
                return Err(Error::NothingToWithdraw);
            }
            self.totals.treasury -= amount;
            self.credit(caller, amount);
            Ok(())
        }

        /// The money totals (escrow + stakes + withdrawable + treasury).
        #[ink(message)]
        pub fn accounting(&self) -> Accounting {
            self.totals
        }

        /// The contract's balance beside the sum of its totals: equal in every reachable state.
        #[ink(message)]
        pub fn balance_check(&self) -> (U256, U256) {
            (self.env().balance(), U256::from(self.totals.total()))
        }

        /// A provider's record.
        #[ink(message)]
        pub fn provider(&self, account: Address) -> Option<Provider> {
            self.providers.get(account)
        }

        /// A provider's reputation score (basis points), 0 for unknown accounts.
        #[ink(message)]
        pub fn reputation_score(&self, account: Address) -> u32 {
            self.providers.get(account).map(|p| p.reputation.score()).unwrap_or(0)
        }

        /// An offer (removed offers have `active == false`).
        #[ink(message)]
        pub fn offer(&self, offer_id: u64) -> Option<Offer> {
            self.offers.get(offer_id)
        }

        /// The number of offers ever listed (ids are `0..offer_count`).
        #[ink(message)]
        pub fn offer_count(&self) -> u64 {
            self.next_offer_id
        }

        /// A job.
        #[ink(message)]
        pub fn job(&self, job_id: u64) -> Option<Job> {
            self.load_job(job_id).ok()
        }

        /// The number of jobs ever created (ids are `0..job_count`).
        #[ink(message)]
        pub fn job_count(&self) -> u64 {
            self.next_job_id
        }

        /// An account's withdrawable balance.
        #[ink(message)]
        pub fn withdrawable_of(&self, account: Address) -> Amount {
            self.withdrawable.get(account).unwrap_or(0)
        }

        /// The price index (EMA of clearing prices per work unit) of a GPU class.
        #[ink(message)]
        pub fn price_index(&self, gpu_class: u32) -> Option<Amount> {
            self.price_index.get(gpu_class)
        }

        /// The stake a job of `value` at check rate `check_rate_bps` locks:
        /// `max(min_stake, value × (1 − p) / p)`.
        #[ink(message)]
        pub fn required_lock(&self, value: Amount, check_rate_bps: u16) -> Amount {
            self.lock_for(value, check_rate_bps)
        }

        /// The escrow `create_job` needs: units × max price plus two verifier fees at that
        /// price, rounded up to whole plancks.
        #[ink(message)]
        pub fn required_escrow(&self, work_units: u64, max_price_per_unit: Amount) -> Option<Amount> {
            self.escrow_for(work_units, max_price_per_unit).ok()
        }

        // ------------------------------------------------------------ providers

        /// Registers the caller as a provider with the transferred value as stake.
        ///
        /// # Errors
        /// [`Error::AlreadyRegistered`], [`Error::StakeTooLow`] (below `min_stake`),
        /// [`Error::RegistryFull`], [`Error::ValueTooLarge`].
        #[ink(message, payable)]
        pub fn register_provider(&mut self) -> Result<()> {
            let caller = self.env().caller();
            let value = self.transferred()?;
            if self.providers.get(caller).is_some() {
                return Err(Error::AlreadyRegistered);
            }
            if value < self.params.min_stake {
                return Err(Error::StakeTooLow);
            }
            if self.provider_count >= MAX_PROVIDERS {
                return Err(Error::RegistryFull);
            }
            self.provider_count += 1;
            let index = self.provider_count;
            self.provider_at.insert(index, &caller);
            let p = Provider { stake: value, index, ..Default::default() };
            self.totals.stakes = self.totals.stakes.checked_add(value).ok_or(Error::Overflow)?;
            self.save_provider(caller, &p);
            self.env().emit_event(ProviderStaked { provider: caller, added: value, stake: value });
            Ok(())
        }

        /// Adds the transferred value to the caller's stake.
        ///
        /// # Errors
        /// [`Error::NotProvider`], [`Error::WrongPayment`] (zero), [`Error::ValueTooLarge`].
        #[ink(message, payable)]
        pub fn add_stake(&mut self) -> Result<()> {
            let caller = self.env().caller();
            let value = self.transferred()?;
            let mut p = self.providers.get(caller).ok_or(Error::NotProvider)?;
            if value == 0 {
                return Err(Error::WrongPayment);
            }
            p.stake = p.stake.checked_add(value).ok_or(Error::Overflow)?;
            self.totals.stakes = self.totals.stakes.checked_add(value).ok_or(Error::Overflow)?;
            self.save_provider(caller, &p);
            self.env().emit_event(ProviderStaked { provider: caller, added: value, stake: p.stake });
            Ok(())
        }

        /// Starts unbonding `amount` of free stake; it becomes withdrawable after the cooldown
        /// (a later request adds to it and restarts the cooldown).
        ///
        /// # Errors
        /// [`Error::NotProvider`], [`Error::InsufficientFreeStake`] (zero or above free stake).
        #[ink(message)]
        pub fn request_unstake(&mut self, amount: Amount) -> Result<()> {
            let caller = self.env().caller();
            let mut p = self.providers.get(caller).ok_or(Error::NotProvider)?;
            if amount == 0 || amount > p.free() {
                return Err(Error::InsufficientFreeStake);
            }
            p.stake -= amount;
            p.unbonding += amount;
            p.unbond_at = self.now().saturating_add(self.params.unstake_cooldown);
            self.save_provider(caller, &p);
            self.env().emit_event(UnstakeRequested { provider: caller, amount, unbond_at: p.unbond_at });
            Ok(())
        }

        /// Moves unbonded stake to the caller's withdrawable balance once the cooldown passed.
        ///
        /// # Errors
        /// [`Error::NotProvider`], [`Error::NothingToUnstake`], [`Error::CooldownActive`].
        #[ink(message)]
        pub fn complete_unstake(&mut self) -> Result<()> {
            let caller = self.env().caller();
            let mut p = self.providers.get(caller).ok_or(Error::NotProvider)?;
            if p.unbonding == 0 {
                return Err(Error::NothingToUnstake);
            }
            if self.now() < p.unbond_at {
                return Err(Error::CooldownActive);
            }
            let amount = p.unbonding;
            p.unbonding = 0;
            self.totals.stakes -= amount;
            self.save_provider(caller, &p);
            self.credit(caller, amount);
            self.env().emit_event(ProviderUnstaked { provider: caller, amount });
            Ok(())
        }

        // ------------------------------------------------------------ offers

        /// Lists an offer; returns its id.
        ///
        /// # Errors
        /// [`Error::NotProvider`], [`Error::BadText`], [`Error::BadOffer`].
        #[ink(message)]
        pub fn list_offer(&mut self, offer: OfferInput) -> Result<u64> {
            let caller = self.env().caller();
            self.providers.get(caller).ok_or(Error::NotProvider)?;
            Self::check_offer(&offer)?;
            let id = self.next_offer_id;
            self.next_offer_id += 1;
            self.offers.insert(id, &Offer { provider: caller, info: offer.clone(), active: true });
            self.env().emit_event(OfferListed { offer_id: id, provider: caller, offer, updated: false });
            Ok(id)
        }

        /// Replaces an offer's terms (jobs already assigned keep theirs).
        ///
        /// # Errors
        /// [`Error::OfferNotFound`], [`Error::NotOfferOwner`], [`Error::BadText`], [`Error::BadOffer`].
        #[ink(message)]
        pub fn update_offer(&mut self, offer_id: u64, offer: OfferInput) -> Result<()> {
            let caller = self.env().caller();
            let mut o = self.own_offer(offer_id, caller)?;
            Self::check_offer(&offer)?;
            o.info = offer.clone();
            self.offers.insert(offer_id, &o);
            self.env().emit_event(OfferListed { offer_id, provider: caller, offer, updated: true });
            Ok(())
        }

        /// Withdraws an offer (a tombstone stays).
        ///
        /// # Errors
        /// [`Error::OfferNotFound`], [`Error::NotOfferOwner`].
        #[ink(message)]
        pub fn remove_offer(&mut self, offer_id: u64) -> Result<()> {
            let caller = self.env().caller();
            let mut o = self.own_offer(offer_id, caller)?;
            o.active = false;
            self.offers.insert(offer_id, &o);
            self.env().emit_event(OfferRemoved { offer_id, provider: caller });
            Ok(())
        }

        // ------------------------------------------------------------ jobs: creation and matching

        /// Creates a job. The transferred value must equal [`Self::required_escrow`].
        /// With `offer_id` the job waits for that offer's provider (direct hire); without,
        /// it takes bids for `bid_window` blocks.
        ///
        /// # Errors
        /// [`Error::BadJob`], [`Error::BadText`], [`Error::DeadlineTooSoon`],
        /// [`Error::OfferNotFound`], [`Error::WrongPayment`], [`Error::ValueTooLarge`], [`Error::Overflow`].
        #[ink(message, payable)]
        pub fn create_job(&mut self, input: JobInput) -> Result<u64> {
            let caller = self.env().caller();
            let value = self.transferred()?;
            if input.work_units == 0 || input.max_price_per_unit == 0 || input.check_rate_bps > BPS {
                return Err(Error::BadJob);
            }
            if input.spec_uri.is_empty() || input.spec_uri.len() > MAX_URI_LEN {
                return Err(Error::BadText);
            }
            let now = self.now();
            let window = if input.offer_id.is_some() { self.params.accept_window } else { self.params.bid_window };
            let phase_deadline = now.saturating_add(window);
            if input.deadline <= phase_deadline.saturating_add(MIN_WINDOW_BLOCKS) {
                return Err(Error::DeadlineTooSoon);
            }
            if let Some(id) = input.offer_id {
                let o = self.offers.get(id).ok_or(Error::OfferNotFound)?;
                if !o.active {
                    return Err(Error::OfferNotFound);
                }
            }
            let escrow = self.escrow_for(input.work_units, input.max_price_per_unit)?;
            if value != escrow {
                return Err(Error::WrongPayment);
            }
            let check_rate_bps =
                if input.check_rate_bps == 0 { self.params.default_check_rate_bps } else { input.check_rate_bps };
            let id = self.next_job_id;
            self.next_job_id += 1;
            let state = if input.offer_id.is_some() { JobState::AwaitingAccept } else { JobState::Open };
            let job = Job {
                core: JobCore {
                    renter: caller,
                    check_rate_bps,
                    state,
                    phase_deadline,
                    escrow,
                    provider: None,
                    offer_id: None,
                    gpu_class: 0,
                    price_per_unit: 0,
                    lock: 0,
                    provider_commitment: None,
                    provider_root: None,
                    checked: false,
                    check_seed: [0; 32],
                    round: 0,
                    draws: 0,
                    drawn_count: 0,
                },
                input: input.clone(),
                best_bid: None,
                verifiers: [None, None],
                drawn: ink::prelude::vec::Vec::new(),
            };
            self.totals.escrow = self.totals.escrow.checked_add(escrow).ok_or(Error::Overflow)?;
            self.job_inputs.insert(id, &job.input);
            self.store_job(id, &job);
            self.env().emit_event(JobCreated { job_id: id, renter: caller, input, escrow, check_rate_bps, phase_deadline });
            Ok(id)
        }

        /// Bids `price_per_unit` on an open job with one of the caller's offers. The best bid
        /// (lowest price; ties: higher reputation, then earlier) holds its stake lock; an
        /// outbid provider's lock is released.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::DeadlinePassed`],
        /// [`Error::PriceAboveMax`], [`Error::OfferNotFound`], [`Error::NotOfferOwner`],
        /// [`Error::RequirementsNotMet`], [`Error::JobTooLarge`], [`Error::NotAuthorized`]
        /// (the renter), [`Error::BidNotBetter`], [`Error::InsufficientFreeStake`].
        #[ink(message)]
        pub fn bid(&mut self, job_id: u64, offer_id: u64, price_per_unit: Amount) -> Result<()> {
            let caller = self.env().caller();
            let mut job = self.job_in(job_id, JobState::Open)?;
            self.before_deadline(&job)?;
            if price_per_unit == 0 || price_per_unit > job.input.max_price_per_unit {
                return Err(Error::PriceAboveMax);
            }
            if caller == job.renter {
                return Err(Error::NotAuthorized);
            }
            let offer = self.own_offer(offer_id, caller)?;
            Self::qualifies(&job, &offer)?;
            let mut p = self.providers.get(caller).ok_or(Error::NotProvider)?;
            let score = p.reputation.score();
            if let Some(best) = job.best_bid {
                let better = price_per_unit < best.price_per_unit
                    || (price_per_unit == best.price_per_unit && score > best.reputation_score);
                if !better {
                    return Err(Error::BidNotBetter);
                }
            }
            let value = price_per_unit.checked_mul(Amount::from(job.input.work_units)).ok_or(Error::Overflow)?;
            let lock = self.lock_for(value, job.check_rate_bps);
            // The caller's own previous best bid frees its lock for this one.
            let own_previous = job.best_bid.filter(|b| b.provider == caller).map(|b| b.lock).unwrap_or(0);
            if p.free() + own_previous < lock {
                return Err(Error::InsufficientFreeStake);
            }
            // All checks passed: release the previous best bid's lock, take the new one.
            if let Some(best) = job.best_bid.take() {
                self.unlock(best.provider, best.lock);
                p = self.providers.get(caller).ok_or(Error::NotProvider)?;
            }
            p.locked += lock;
            self.save_provider(caller, &p);
            job.best_bid = Some(Bid { provider: caller, offer_id, price_per_unit, reputation_score: score, lock });
            self.store_job(job_id, &job);
            self.env().emit_event(BidPlaced { job_id, provider: caller, offer_id, price_per_unit });
            Ok(())
        }

        /// After the bid window, assigns an open job to its best bid (anyone may call).
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::DeadlineNotPassed`], [`Error::NoBids`].
        #[ink(message)]
        pub fn close_auction(&mut self, job_id: u64) -> Result<()> {
            let mut job = self.job_in(job_id, JobState::Open)?;
            self.after_deadline(&job)?;
            let bid = job.best_bid.take().ok_or(Error::NoBids)?;
            let gpu_class = self.offers.get(bid.offer_id).map(|o| o.info.gpu_class).unwrap_or(0);
            self.assign(job_id, &mut job, &bid, gpu_class);
            self.store_job(job_id, &job);
            Ok(())
        }

        /// The renter re-opens an open job whose bid window passed without a bid.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::NotAuthorized`], [`Error::WrongState`],
        /// [`Error::DeadlineNotPassed`], [`Error::DeadlineTooSoon`] (the job's deadline is too close).
        #[ink(message)]
        pub fn reopen_job(&mut self, job_id: u64) -> Result<()> {
            let caller = self.env().caller();
            let mut job = self.load_job(job_id)?;
            if caller != job.renter {
                return Err(Error::NotAuthorized);
            }
            if job.state != JobState::Open || job.best_bid.is_some() {
                return Err(Error::WrongState);
            }
            let now = self.after_deadline(&job)?;
            let phase_deadline = now.saturating_add(self.params.bid_window);
            if job.input.deadline <= phase_deadline.saturating_add(MIN_WINDOW_BLOCKS) {
                return Err(Error::DeadlineTooSoon);
            }
            job.phase_deadline = phase_deadline;
            self.store_job(job_id, &job);
            self.env().emit_event(JobCreated {
                job_id,
                renter: caller,
                input: job.input.clone(),
                escrow: job.escrow,
                check_rate_bps: job.check_rate_bps,
                phase_deadline,
            });
            Ok(())
        }

        /// The named offer's provider accepts a direct hire at the offer's price.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::DeadlinePassed`],
        /// [`Error::NotOfferOwner`], [`Error::OfferNotFound`], [`Error::RequirementsNotMet`],
        /// [`Error::JobTooLarge`], [`Error::PriceAboveMax`], [`Error::InsufficientFreeStake`].
        #[ink(message)]
        pub fn accept_job(&mut self, job_id: u64) -> Result<()> {
            let caller = self.env().caller();
            let mut job = self.job_in(job_id, JobState::AwaitingAccept)?;
            self.before_deadline(&job)?;
            let offer_id = job.input.offer_id.ok_or(Error::WrongState)?;
            let offer = self.own_offer(offer_id, caller)?;
            Self::qualifies(&job, &offer)?;
            let price = offer.info.price_per_unit;
            if price > job.input.max_price_per_unit {
                return Err(Error::PriceAboveMax);
            }
            let value = price.checked_mul(Amount::from(job.input.work_units)).ok_or(Error::Overflow)?;
            let lock = self.lock_for(value, job.check_rate_bps);
            let mut p = self.providers.get(caller).ok_or(Error::NotProvider)?;
            if p.free() < lock {
                return Err(Error::InsufficientFreeStake);
            }
            p.locked += lock;
            self.save_provider(caller, &p);
            let terms = Bid { provider: caller, offer_id, price_per_unit: price, reputation_score: 0, lock };
            self.assign(job_id, &mut job, &terms, offer.info.gpu_class);
            self.store_job(job_id, &job);
            Ok(())
        }

        // ------------------------------------------------------------ execution and verification

        /// The provider commits `sha256("P" ‖ job_id ‖ provider ‖ root ‖ salt)` before the deadline.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::NotAuthorized`], [`Error::DeadlinePassed`].
        #[ink(message)]
        pub fn commit_result(&mut self, job_id: u64, commitment: Hash32) -> Result<()> {
            let caller = self.env().caller();
            let mut job = self.job_in(job_id, JobState::Assigned)?;
            if job.provider != Some(caller) {
                return Err(Error::NotAuthorized);
            }
            let now = self.before_deadline(&job)?;
            job.provider_commitment = Some(commitment);
            job.state = JobState::Committed;
            job.phase_deadline = now.saturating_add(self.params.reveal_window);
            self.store_job(job_id, &job);
            self.env().emit_event(ResultCommitted { job_id, provider: caller, commitment });
            Ok(())
        }

        /// The renter reveals its seed; `sha256(seed ‖ c_p)` decides whether the job is checked.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::NotAuthorized`],
        /// [`Error::DeadlinePassed`], [`Error::SeedMismatch`].
        #[ink(message)]
        pub fn reveal_seed(&mut self, job_id: u64, seed: Hash32) -> Result<()> {
            let caller = self.env().caller();
            let mut job = self.job_in(job_id, JobState::Committed)?;
            if caller != job.renter {
                return Err(Error::NotAuthorized);
            }
            self.before_deadline(&job)?;
            if Self::sha256(&[&seed]) != job.input.seed_commitment {
                return Err(Error::SeedMismatch);
            }
            let commitment = job.provider_commitment.unwrap_or_default();
            let check_seed = Self::sha256(&[&seed, &commitment]);
            let checked = check_decision(&check_seed, job.check_rate_bps);
            self.decide(job_id, &mut job, Some(seed), check_seed, checked);
            self.store_job(job_id, &job);
            Ok(())
        }

        /// The current verifier commits `sha256("V" ‖ job_id ‖ verifier ‖ root ‖ salt)`.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::NotAuthorized`], [`Error::DeadlinePassed`].
        #[ink(message)]
        pub fn commit_verification(&mut self, job_id: u64, commitment: Hash32) -> Result<()> {
            let caller = self.env().caller();
            let mut job = self.job_in(job_id, JobState::VerifierCommit)?;
            let slot = job.slot();
            let mut v = job.verifiers[slot].ok_or(Error::WrongState)?;
            if v.account != caller {
                return Err(Error::NotAuthorized);
            }
            let now = self.before_deadline(&job)?;
            v.commitment = Some(commitment);
            job.verifiers[slot] = Some(v);
            job.state = JobState::Reveal;
            job.phase_deadline = now.saturating_add(self.params.reveal_window);
            self.store_job(job_id, &job);
            self.env().emit_event(VerificationCommitted { job_id, verifier: caller, commitment });
            Ok(())
        }

        /// The provider or a verifier reveals its root and salt; once every needed root is
        /// in, the job settles, goes to a second verifier, or slashes.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::NotAuthorized`],
        /// [`Error::DeadlinePassed`], [`Error::AlreadyDone`], [`Error::CommitmentMismatch`].
        #[ink(message)]
        pub fn reveal_result(&mut self, job_id: u64, root: Hash32, salt: Hash32) -> Result<()> {
            let caller = self.env().caller();
            let mut job = self.job_in(job_id, JobState::Reveal)?;
            self.before_deadline(&job)?;
            if job.provider == Some(caller) {
                if job.provider_root.is_some() {
                    return Err(Error::AlreadyDone);
                }
                let c = job.provider_commitment.unwrap_or_default();
                if Self::commitment(b"P", job_id, caller, &root, &salt) != c {
                    return Err(Error::CommitmentMismatch);
                }
                job.provider_root = Some(root);
                self.env().emit_event(ResultRevealed { job_id, by: caller, root, is_provider: true });
            } else {
                let slot = job.slot();
                let mut v = match job.verifiers[slot] {
                    Some(v) if v.account == caller && job.checked => v,
                    _ => return Err(Error::NotAuthorized),
                };
                if v.root.is_some() {
                    return Err(Error::AlreadyDone);
                }
                if Self::commitment(b"V", job_id, caller, &root, &salt) != v.commitment.unwrap_or_default() {
                    return Err(Error::CommitmentMismatch);
                }
                v.root = Some(root);
                job.verifiers[slot] = Some(v);
                self.env().emit_event(ResultRevealed { job_id, by: caller, root, is_provider: false });
            }
            self.resolve(job_id, &mut job);
            self.store_job(job_id, &job);
            Ok(())
        }

        /// After a phase's deadline, moves the job on (anyone may call): refunds unfilled
        /// jobs, penalises a silent provider, checks a job whose renter stayed silent,
        /// replaces a silent verifier, slashes a provider that did not reveal.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`] (terminal), [`Error::DeadlineNotPassed`].
        #[ink(message)]
        pub fn cleanup(&mut self, job_id: u64) -> Result<()> {
            let mut job = self.load_job(job_id)?;
            if job.state.is_terminal() {
                return Err(Error::WrongState);
            }
            self.after_deadline(&job)?;
            match job.state {
                JobState::Open => match job.best_bid.take() {
                    Some(bid) => {
                        let gpu_class = self.offers.get(bid.offer_id).map(|o| o.info.gpu_class).unwrap_or(0);
                        self.assign(job_id, &mut job, &bid, gpu_class);
                    }
                    None => self.refund(job_id, &mut job, RefundReason::NoBids),
                },
                JobState::AwaitingAccept => self.refund(job_id, &mut job, RefundReason::NotAccepted),
                JobState::Assigned => {
                    let provider = job.provider.unwrap_or(job.renter);
                    let penalty = job.lock / Amount::from(BPS) * Amount::from(TIMEOUT_PENALTY_BPS);
                    self.update_reputation(provider, |r| r.timeouts += 1);
                    self.refund(job_id, &mut job, RefundReason::NoCommitment);
                    self.slash(job_id, &job, provider, penalty, SlashReason::CommitTimeout, &[]);
                }
                JobState::Committed => {
                    // The renter stayed silent: the job is checked, with a seed it cannot steer.
                    let commitment = job.provider_commitment.unwrap_or_default();
                    let check_seed = Self::sha256(&[&commitment, &job_id.to_le_bytes()]);
                    self.decide(job_id, &mut job, None, check_seed, true);
                }
                JobState::VerifierCommit => {
                    // Nobody has revealed anything yet: a replacement learns nothing.
                    self.slash_silent_verifier(job_id, &mut job);
                    self.draw_verifier(job_id, &mut job);
                }
                JobState::Reveal => {
                    self.slash_silent_verifier(job_id, &mut job);
                    if job.provider_root.is_none() {
                        self.provider_fault(job_id, &mut job, SlashReason::ProviderSilent);
                    } else if job.round >= 2 {
                        // The roots in dispute are public already: draw another tie-breaker.
                        self.draw_verifier(job_id, &mut job);
                    } else {
                        // The provider's root is public now, so a replacement could copy it:
                        // the check is given up and the job settles on the provider's root.
                        self.round_failed(job_id, &mut job);
                    }
                }
                JobState::Settled | JobState::Refunded | JobState::Slashed => return Err(Error::WrongState),
            }
            self.store_job(job_id, &job);
            Ok(())
        }

        // ------------------------------------------------------------ payments

        /// Sends the caller its whole withdrawable balance.
        ///
        /// # Errors
        /// [`Error::NothingToWithdraw`], [`Error::TransferFailed`] (nothing changes).
        #[ink(message)]
        pub fn withdraw(&mut self) -> Result<Amount> {
            let caller = self.env().caller();
            let amount = self.withdrawable.get(caller).unwrap_or(0);
            if amount == 0 {
                return Err(Error::NothingToWithdraw);
            }
            self.withdrawable.insert(caller, &0);
            self.totals.withdrawable -= amount;
            self.env().transfer(caller, U256::from(amount)).map_err(|_| Error::TransferFailed)?;
            self.env().emit_event(Withdrawn { account: caller, amount });
            Ok(amount)
        }

        // ------------------------------------------------------------ private helpers

        fn now(&self) -> BlockNumber {
            self.env().block_number()
        }

        /// The current block, if the job's phase deadline has not passed.
        fn before_deadline(&self, job: &Job) -> Result<BlockNumber> {
            let now = self.now();
            if now > job.phase_deadline {
                return Err(Error::DeadlinePassed);
            }
            Ok(now)
        }

        /// The current block, if the job's phase deadline has passed.
        fn after_deadline(&self, job: &Job) -> Result<BlockNumber> {
            let now = self.now();
            if now <= job.phase_deadline {
                return Err(Error::DeadlineNotPassed);
            }
            Ok(now)
        }

        fn transferred(&self) -> Result<Amount> {
            let v = self.env().transferred_value();
            if v > U256::from(Amount::MAX) {
                return Err(Error::ValueTooLarge);
            }
            Ok(v.as_u128())
        }

        fn sha256(parts: &[&[u8]]) -> Hash32 {
            let mut buf = ink::prelude::vec::Vec::new();
            for p in parts {
                buf.extend_from_slice(p);
            }
            let mut out = [0u8; 32];
            ink::env::hash_bytes::<ink::env::hash::Sha2x256>(&buf, &mut out);
            out
        }

        /// `sha256(tag ‖ job_id LE ‖ account ‖ root ‖ salt)`.
        fn commitment(tag: &[u8], job_id: u64, account: Address, root: &Hash32, salt: &Hash32) -> Hash32 {
            Self::sha256(&[tag, &job_id.to_le_bytes(), account.as_bytes(), root, salt])
        }

        fn lock_for(&self, value: Amount, check_rate_bps: u16) -> Amount {
            let p = Amount::from(check_rate_bps.clamp(1, BPS));
            let lock = value.saturating_mul(Amount::from(BPS) - p) / p;
            lock.max(self.params.min_stake)
        }

        fn verifier_fee(&self, value: Amount) -> Amount {
            value / Amount::from(BPS) * Amount::from(self.params.verifier_fee_bps)
                + value % Amount::from(BPS) * Amount::from(self.params.verifier_fee_bps) / Amount::from(BPS)
        }

        /// units × max price + two verifier fees, rounded up to whole plancks so a wallet
        /// can pay it exactly (the rounding comes back to the renter at settlement).
        fn escrow_for(&self, work_units: u64, max_price: Amount) -> Result<Amount> {
            let value = max_price.checked_mul(Amount::from(work_units)).ok_or(Error::Overflow)?;
            let raw = value.checked_add(2 * self.verifier_fee(value)).ok_or(Error::Overflow)?;
            let planck = Amount::from(<crate::CapaEnv as ink::env::Environment>::NATIVE_TO_ETH_RATIO);
            raw.div_ceil(planck).checked_mul(planck).ok_or(Error::Overflow)
        }

        fn check_offer(o: &OfferInput) -> Result<()> {
            let text_ok = |s: &String, max: usize| !s.is_empty() && s.len() <= max;
            if !text_ok(&o.gpu_vendor, MAX_VENDOR_LEN)
                || !text_ok(&o.gpu_model, MAX_TEXT_LEN)
                || !text_ok(&o.backend, MAX_TEXT_LEN)
                || !text_ok(&o.endpoint, MAX_TEXT_LEN)
            {
                return Err(Error::BadText);
            }
            if o.vram_mib == 0 || o.price_per_unit == 0 || o.max_units == 0 {
                return Err(Error::BadOffer);
            }
            Ok(())
        }

        fn own_offer(&self, offer_id: u64, caller: Address) -> Result<Offer> {
            let o = self.offers.get(offer_id).ok_or(Error::OfferNotFound)?;
            if !o.active {
                return Err(Error::OfferNotFound);
            }
            if o.provider != caller {
                return Err(Error::NotOfferOwner);
            }
            Ok(o)
        }

        fn qualifies(job: &Job, offer: &Offer) -> Result<()> {
            let r = &job.input.requirements;
            if offer.info.vram_mib < r.min_vram_mib
                || offer.info.benchmark_score < r.min_benchmark_score
                || r.gpu_class.is_some_and(|c| c != offer.info.gpu_class)
            {
                return Err(Error::RequirementsNotMet);
            }
            if job.input.work_units > offer.info.max_units {
                return Err(Error::JobTooLarge);
            }
            Ok(())
        }

        /// Loads a job that must be in `state`.
        fn job_in(&self, job_id: u64, state: JobState) -> Result<Job> {
            let job = self.load_job(job_id)?;
            if job.state != state {
                return Err(Error::WrongState);
            }
            Ok(job)
        }

        /// Assembles a job from its stored pieces.
        fn load_job(&self, job_id: u64) -> Result<Job> {
            let core = self.jobs.get(job_id).ok_or(Error::JobNotFound)?;
            let input = self.job_inputs.get(job_id).ok_or(Error::JobNotFound)?;
            let drawn = (0..core.drawn_count).filter_map(|i| self.drawn.get((job_id, i))).collect();
            let slot = |i: u8| self.job_verifiers.get((job_id, i)).flatten();
            Ok(Job { core, input, best_bid: self.best_bids.get(job_id).flatten(), verifiers: [slot(0), slot(1)], drawn })
        }

        /// Stores the pieces of a job that messages change (the input never changes; the
        /// drawn list is appended to by `draw_verifier`).
        fn store_job(&mut self, job_id: u64, job: &Job) {
            self.jobs.insert(job_id, &job.core);
            self.best_bids.insert(job_id, &job.best_bid);
            self.job_verifiers.insert((job_id, 0), &job.verifiers[0]);
            self.job_verifiers.insert((job_id, 1), &job.verifiers[1]);
        }

        fn credit(&mut self, account: Address, amount: Amount) {
            if amount == 0 {
                return;
            }
            let w = self.withdrawable.get(account).unwrap_or(0);
            self.withdrawable.insert(account, &(w + amount));
            self.totals.withdrawable += amount;
        }

        /// Saves a provider and refreshes its sampling weight (its free stake).
        fn save_provider(&mut self, account: Address, p: &Provider) {
            self.providers.insert(account, p);
            let new = p.free();
            let old = self.weights.get(p.index).unwrap_or(0);
            if new != old {
                self.weights.insert(p.index, &new);
                let mut i = p.index;
                while i <= MAX_PROVIDERS {
                    let t = self.weight_tree.get(i).unwrap_or(0);
                    self.weight_tree.insert(i, &t.wrapping_add(new).wrapping_sub(old));
                    i += i & i.wrapping_neg();
                }
                self.total_weight = self.total_weight.wrapping_add(new).wrapping_sub(old);
            }
        }

        fn unlock(&mut self, account: Address, amount: Amount) {
            if let Some(mut p) = self.providers.get(account) {
                p.locked = p.locked.saturating_sub(amount);
                self.save_provider(account, &p);
            }
        }

        fn update_reputation(&mut self, account: Address, f: impl FnOnce(&mut Reputation)) {
            if let Some(mut p) = self.providers.get(account) {
                f(&mut p.reputation);
                self.providers.insert(account, &p);
            }
        }

        /// Gives the job to `winner` (an auction's best bid, or the hired offer's terms).
        fn assign(&mut self, job_id: u64, job: &mut Job, winner: &Bid, gpu_class: u32) {
            let Bid { provider, offer_id, price_per_unit: price, lock, .. } = *winner;
            job.provider = Some(provider);
            job.offer_id = Some(offer_id);
            job.gpu_class = gpu_class;
            job.price_per_unit = price;
            job.lock = lock;
            job.state = JobState::Assigned;
            job.phase_deadline = job.input.deadline.max(self.now().saturating_add(MIN_WINDOW_BLOCKS));
            // Price index: EMA of clearing prices per GPU class.
            let index = match self.price_index.get(gpu_class) {
                None => price,
                Some(old) => {
                    let a = Amount::from(PRICE_INDEX_ALPHA_BPS);
                    let b = Amount::from(BPS);
                    old / b * (b - a) + price / b * a + (old % b * (b - a) + price % b * a) / b
                }
            };
            self.price_index.insert(gpu_class, &index);
            self.env().emit_event(JobAssigned {
                job_id,
                renter: job.renter,
                provider,
                offer_id,
                price_per_unit: price,
                lock,
                commit_deadline: job.phase_deadline,
            });
            self.env().emit_event(PriceIndexUpdated { gpu_class, clearing_price: price, index });
        }

        /// Records the check decision and moves to the provider reveal or a verifier draw.
        fn decide(&mut self, job_id: u64, job: &mut Job, seed: Option<Hash32>, check_seed: Hash32, checked: bool) {
            job.check_seed = check_seed;
            job.checked = checked;
            self.env().emit_event(SeedRevealed { job_id, renter: job.renter, seed, check_seed, checked });
            if checked {
                job.round = 1;
                job.draws = 0;
                self.draw_verifier(job_id, job);
            } else {
                job.state = JobState::Reveal;
                job.phase_deadline = self.now().saturating_add(self.params.reveal_window);
            }
        }

        /// Draws the current round's verifier by stake from the check seed, excluding the
        /// provider, the renter and earlier verifiers of the job; O(log MAX_PROVIDERS).
        /// With nobody eligible (or all draws used) the round is given up: see `round_failed`.
        fn draw_verifier(&mut self, job_id: u64, job: &mut Job) {
            let slot = job.slot();
            if job.draws >= MAX_DRAWS {
                return self.round_failed(job_id, job);
            }
            // Provider, renter and every verifier drawn before: at most 2 + 2 × MAX_DRAWS.
            let mut excluded = [0u32; 2 + 2 * MAX_DRAWS as usize];
            let mut n = 0;
            let parties = [job.provider, Some(job.renter)];
            for a in parties.iter().flatten().chain(job.drawn.iter()) {
                if let Some(p) = self.providers.get(*a) {
                    if !excluded[..n].contains(&p.index) && n < excluded.len() {
                        excluded[n] = p.index;
                        n += 1;
                    }
                }
            }
            excluded[..n].sort_unstable();
            let mut eligible = self.total_weight;
            for idx in &excluded[..n] {
                eligible = eligible.saturating_sub(self.weights.get(*idx).unwrap_or(0));
            }
            job.draws += 1;
            if eligible == 0 {
                return self.round_failed(job_id, job);
            }
            let h = Self::sha256(&[&job.check_seed, b"draw", &[job.round, job.draws]]);
            let mut r = Amount::from_le_bytes(h[..16].try_into().unwrap_or([0; 16])) % eligible;
            // Map r from the reduced range to the full one by skipping excluded intervals.
            for idx in &excluded[..n] {
                let start = self.prefix_weight(*idx - 1);
                if r >= start {
                    r += self.weights.get(*idx).unwrap_or(0);
                }
            }
            let idx = self.find_slot(r);
            let Some(account) = self.provider_at.get(idx) else {
                return self.round_failed(job_id, job);
            };
            let Some(mut p) = self.providers.get(account) else {
                return self.round_failed(job_id, job);
            };
            let bond = p.free().min(self.params.min_stake);
            p.locked += bond;
            self.save_provider(account, &p);
            job.verifiers[slot] = Some(Verifier { account, bond, commitment: None, root: None });
            self.drawn.insert((job_id, job.drawn_count), &account);
            job.drawn.push(account);
            job.drawn_count += 1;
            job.state = JobState::VerifierCommit;
            job.phase_deadline = self.now().saturating_add(self.params.reveal_window);
            self.env().emit_event(VerifierDrawn {
                job_id,
                provider: job.provider.unwrap_or(job.renter),
                verifier: account,
                round: job.round,
                bond,
                commit_deadline: job.phase_deadline,
            });
        }

        /// Sum of weights of slots 1..=idx (Fenwick prefix sum).
        fn prefix_weight(&self, mut idx: u32) -> Amount {
            let mut sum: Amount = 0;
            while idx > 0 {
                sum = sum.wrapping_add(self.weight_tree.get(idx).unwrap_or(0));
                idx &= idx - 1;
            }
            sum
        }

        /// The slot whose weight interval holds `r` (smallest idx with prefix(idx) > r).
        fn find_slot(&self, mut r: Amount) -> u32 {
            let mut pos = 0u32;
            let mut step = MAX_PROVIDERS;
            while step > 0 {
                let next = pos + step;
                if next <= MAX_PROVIDERS {
                    let t = self.weight_tree.get(next).unwrap_or(0);
                    if t <= r {
                        pos = next;
                        r -= t;
                    }
                }
                step >>= 1;
            }
            pos + 1
        }

        /// Slashes the current round's verifier if it was drawn and has not revealed (the
        /// caller has established that its deadline passed), and removes it from the job.
        fn slash_silent_verifier(&mut self, job_id: u64, job: &mut Job) {
            let slot = job.slot();
            if !job.checked || job.verifiers[slot].is_none_or(|v| v.root.is_some()) {
                return;
            }
            if let Some(v) = job.verifiers[slot].take() {
                self.unlock(v.account, v.bond);
                self.slash(job_id, job, v.account, v.bond, SlashReason::VerifierSilent, &[]);
                self.update_reputation(v.account, |r| r.timeouts += 1);
            }
        }

        /// No (further) verifier could be had for the current round.
        /// Round 1: the job proceeds unchecked (settles on the provider's root).
        /// Round 2: without a majority the renter is refunded and nobody is slashed.
        fn round_failed(&mut self, job_id: u64, job: &mut Job) {
            if job.round >= 2 {
                for v in job.verifiers.iter().flatten() {
                    self.unlock(v.account, v.bond);
                }
                self.refund(job_id, job, RefundReason::NoMajority);
                return;
            }
            job.checked = false;
            job.verifiers = [None, None];
            if job.provider_root.is_some() {
                self.settle(job_id, job, &[]);
            } else {
                job.state = JobState::Reveal;
                job.phase_deadline = self.now().saturating_add(self.params.reveal_window);
            }
        }

        /// Called after every reveal: settles, escalates or slashes once the needed roots are in.
        fn resolve(&mut self, job_id: u64, job: &mut Job) {
            let Some(p_root) = job.provider_root else { return };
            if !job.checked {
                return self.settle(job_id, job, &[]);
            }
            let v1 = job.verifiers[0];
            let Some(v1_root) = v1.and_then(|v| v.root) else { return };
            if job.round == 1 {
                if v1_root == p_root {
                    self.update_reputation(job.provider.unwrap_or(job.renter), |r| r.checks_passed += 1);
                    return self.settle(job_id, job, &[v1]);
                }
                // Dispute: a second verifier breaks the tie.
                job.round = 2;
                job.draws = 0;
                return self.draw_verifier(job_id, job);
            }
            let v2 = job.verifiers[1];
            let Some(v2_root) = v2.and_then(|v| v.root) else { return };
            if v2_root == p_root {
                // The first verifier lied (or erred): slash it, pay the provider.
                if let Some(v) = v1 {
                    self.unlock(v.account, v.bond);
                    self.slash(job_id, job, v.account, v.bond, SlashReason::WrongResult, &[v2]);
                    self.update_reputation(v.account, |r| r.checks_failed += 1);
                }
                self.update_reputation(job.provider.unwrap_or(job.renter), |r| r.checks_passed += 1);
                job.verifiers[0] = None;
                self.settle(job_id, job, &[v2]);
            } else if v2_root == v1_root {
                self.provider_fault(job_id, job, SlashReason::WrongResult);
            } else {
                for v in [v1, v2].into_iter().flatten() {
                    self.unlock(v.account, v.bond);
                }
                self.refund(job_id, job, RefundReason::NoMajority);
            }
        }

        /// Pays out a job whose provider root stands. `honest` verifiers get the verifier fee
        /// and their bonds back.
        fn settle(&mut self, job_id: u64, job: &mut Job, honest: &[Option<Verifier>]) {
            let provider = job.provider.unwrap_or(job.renter);
            let value = job.value();
            let protocol_fee = value / Amount::from(BPS) * Amount::from(self.params.protocol_fee_bps)
                + value % Amount::from(BPS) * Amount::from(self.params.protocol_fee_bps) / Amount::from(BPS);
            let fee = self.verifier_fee(value);
            let mut verifier_fees: Amount = 0;
            for v in honest.iter().flatten() {
                self.unlock(v.account, v.bond);
                self.credit(v.account, fee);
                verifier_fees += fee;
            }
            self.unlock(provider, job.lock);
            job.lock = 0;
            self.credit(provider, value - protocol_fee);
            self.totals.treasury += protocol_fee;
            let renter_refund = job.escrow - value - verifier_fees;
            self.credit(job.renter, renter_refund);
            self.totals.escrow -= job.escrow;
            job.escrow = 0;
            self.update_reputation(provider, |r| {
                r.jobs_completed += 1;
                r.value_settled = r.value_settled.saturating_add(value);
            });
            job.state = JobState::Settled;
            self.env().emit_event(JobSettled {
                job_id,
                renter: job.renter,
                provider,
                root: job.provider_root.unwrap_or_default(),
                provider_payout: value - protocol_fee,
                verifier_fees,
                protocol_fee,
                renter_refund,
                checked: job.checked,
            });
        }

        /// The provider is at fault (silent at reveal, or outvoted): its whole lock is
        /// slashed, the renter refunded and compensated, honest verifiers paid from the slash.
        fn provider_fault(&mut self, job_id: u64, job: &mut Job, reason: SlashReason) {
            let provider = job.provider.unwrap_or(job.renter);
            let lock = job.lock;
            self.unlock(provider, lock);
            job.lock = 0;
            let mut honest = [None, None];
            for (i, v) in job.verifiers.iter().enumerate() {
                // Verifiers still on the job revealed (silent ones were slashed and removed).
                if let Some(v) = v {
                    self.unlock(v.account, v.bond);
                    honest[i] = Some(*v).filter(|v| v.root.is_some());
                }
            }
            self.update_reputation(provider, |r| match reason {
                SlashReason::WrongResult => r.checks_failed += 1,
                _ => r.timeouts += 1,
            });
            self.refund(job_id, job, RefundReason::ProviderSlashed);
            self.slash(job_id, job, provider, lock, reason, &honest);
            job.state = JobState::Slashed;
        }

        /// Returns the job's escrow to the renter and releases the provider's lock.
        fn refund(&mut self, job_id: u64, job: &mut Job, reason: RefundReason) {
            if let Some(bid) = job.best_bid.take() {
                self.unlock(bid.provider, bid.lock);
            }
            if let Some(provider) = job.provider.filter(|_| job.lock > 0) {
                self.unlock(provider, job.lock);
                job.lock = 0;
            }
            let amount = job.escrow;
            self.credit(job.renter, amount);
            self.totals.escrow -= amount;
            job.escrow = 0;
            job.state = JobState::Refunded;
            self.env().emit_event(JobRefunded { job_id, renter: job.renter, amount, reason });
        }

        /// Takes `amount` of `account`'s stake (already unlocked by the caller) and pays it
        /// out: the renter first (up to the job's value), then each honest verifier (up to
        /// the verifier fee), the rest to the treasury.
        fn slash(
            &mut self,
            job_id: u64,
            job: &Job,
            account: Address,
            amount: Amount,
            reason: SlashReason,
            honest: &[Option<Verifier>],
        ) {
            let Some(mut p) = self.providers.get(account) else { return };
            let amount = amount.min(p.stake);
            if amount == 0 {
                return;
            }
            p.stake -= amount;
            self.save_provider(account, &p);
            self.totals.stakes -= amount;
            let value = job.value();
            let to_renter = amount.min(value);
            self.credit(job.renter, to_renter);
            let mut rest = amount - to_renter;
            let fee = self.verifier_fee(value);
            let mut to_verifiers: Amount = 0;
            for v in honest.iter().flatten() {
                let pay = rest.min(fee);
                self.credit(v.account, pay);
                rest -= pay;
                to_verifiers += pay;
            }
            self.totals.treasury += rest;
            self.env().emit_event(Slashed {
                job_id,
                account,
                amount,
                to_renter,
                to_verifiers,
                to_treasury: rest,
                reason,
            });
        }
    }

    /// Whether a job is checked: the first 8 bytes of the check seed, as a little-endian
    /// integer, mod 10,000, below the check rate.
    pub fn check_decision(check_seed: &Hash32, check_rate_bps: u16) -> bool {
        let mut b = [0u8; 8];
        b.copy_from_slice(&check_seed[..8]);
        u64::from_le_bytes(b) % u64::from(BPS) < u64::from(check_rate_bps)
    }


    #[cfg(test)]
    mod tests {
        use super::*;
        use ink::env::test;

        type E = crate::CapaEnv;
        /// 1 WND in contract units.
        const WND: Amount = 1_000_000_000_000_000_000;

        fn contract_addr() -> Address {
            Address::from([0xCC; 20])
        }
        fn acc() -> test::DefaultAccounts {
            test::default_accounts()
        }
        fn alice() -> Address { acc().alice }
        fn bob() -> Address { acc().bob }
        fn charlie() -> Address { acc().charlie }
        fn django() -> Address { acc().django }
        fn eve() -> Address { acc().eve }

        fn setup() -> Marketplace {
            setup_at(contract_addr())
        }

        /// A fresh marketplace at `addr` (each needs its own address: storage is per address).
        fn setup_at(addr: Address) -> Marketplace {
            for a in [alice(), bob(), charlie(), django(), eve(), acc().frank] {
                test::set_contract_balance(a, U256::from(u128::MAX / 4));
            }
            test::set_callee(addr);
            test::set_contract_balance(addr, U256::zero());
            as_(alice());
            let mut m = Marketplace::new();
            // Short windows keep the tests readable.
            let p = Params { accept_window: 3, bid_window: 3, reveal_window: 3, unstake_cooldown: 5, ..Params::default() };
            m.set_params(p).unwrap();
            m
        }

        fn as_(who: Address) {
            test::set_caller(who);
            test::set_value_transferred(U256::zero());
        }

        fn pay(who: Address, value: Amount) {
            test::set_caller(who);
            test::transfer_in(U256::from(value));
        }

        fn advance(blocks: u32) {
            for _ in 0..blocks {
                test::advance_block::<E>();
            }
        }

        fn now() -> BlockNumber {
            ink::env::block_number::<E>()
        }

        /// The money invariant: the contract's balance equals its totals, to the unit.
        fn assert_invariant(m: &Marketplace) {
            let balance = test::get_contract_balance::<E>(test::callee()).unwrap();
            assert_eq!(balance, U256::from(m.accounting().total()), "balance != escrow + stakes + withdrawable + treasury");
            let (b, t) = m.balance_check();
            assert_eq!(b, t);
        }

        fn sha(parts: &[&[u8]]) -> Hash32 {
            let mut buf = ink::prelude::vec::Vec::new();
            for p in parts {
                buf.extend_from_slice(p);
            }
            let mut out = [0u8; 32];
            ink::env::hash_bytes::<ink::env::hash::Sha2x256>(&buf, &mut out);
            out
        }

        fn commit_of(tag: &[u8], job_id: u64, who: Address, root: &Hash32, salt: &Hash32) -> Hash32 {
            sha(&[tag, &job_id.to_le_bytes(), who.as_bytes(), root, salt])
        }

        /// A seed whose check decision against commitment `c` is `checked`.
        fn seed_for(c: &Hash32, rate: u16, checked: bool) -> Hash32 {
            (0u8..=255)
                .map(|i| [i; 32])
                .find(|s| check_decision(&sha(&[s, c]), rate) == checked)
                .expect("a seed with the wanted decision")
        }

        // ---- event helpers: one decoder, one assert helper per event

        fn emitted<T: ink::env::Event + ink::scale::Decode>() -> ink::prelude::vec::Vec<T> {
            let sig = T::SIGNATURE_TOPIC.expect("events carry a signature topic");
            test::recorded_events()
                .into_iter()
                .filter(|e| e.topics.first() == Some(&sig))
                .map(|e| T::decode(&mut &e.data[..]).expect("event decodes"))
                .collect()
        }
        fn last<T: ink::env::Event + ink::scale::Decode>() -> T {
            emitted::<T>().pop().expect("event was emitted")
        }
        fn assert_params_updated(admin: Address, params: Params) {
            let e = last::<ParamsUpdated>();
            assert_eq!((e.admin, e.params), (admin, params));
        }
        fn assert_provider_staked(provider: Address, added: Amount, stake: Amount) {
            let e = last::<ProviderStaked>();
            assert_eq!((e.provider, e.added, e.stake), (provider, added, stake));
        }
        fn assert_unstake_requested(provider: Address, amount: Amount, unbond_at: BlockNumber) {
            let e = last::<UnstakeRequested>();
            assert_eq!((e.provider, e.amount, e.unbond_at), (provider, amount, unbond_at));
        }
        fn assert_provider_unstaked(provider: Address, amount: Amount) {
            let e = last::<ProviderUnstaked>();
            assert_eq!((e.provider, e.amount), (provider, amount));
        }
        fn assert_offer_listed(offer_id: u64, provider: Address, updated: bool) {
            let e = last::<OfferListed>();
            assert_eq!((e.offer_id, e.provider, e.updated), (offer_id, provider, updated));
        }
        fn assert_offer_removed(offer_id: u64, provider: Address) {
            let e = last::<OfferRemoved>();
            assert_eq!((e.offer_id, e.provider), (offer_id, provider));
        }
        fn assert_job_created(job_id: u64, renter: Address, escrow: Amount) {
            let e = last::<JobCreated>();
            assert_eq!((e.job_id, e.renter, e.escrow), (job_id, renter, escrow));
        }
        fn assert_bid_placed(job_id: u64, provider: Address, price: Amount) {
            let e = last::<BidPlaced>();
            assert_eq!((e.job_id, e.provider, e.price_per_unit), (job_id, provider, price));
        }
        fn assert_job_assigned(job_id: u64, provider: Address, price: Amount, lock: Amount) {
            let e = last::<JobAssigned>();
            assert_eq!((e.job_id, e.provider, e.price_per_unit, e.lock), (job_id, provider, price, lock));
        }
        fn assert_result_committed(job_id: u64, provider: Address, commitment: Hash32) {
            let e = last::<ResultCommitted>();
            assert_eq!((e.job_id, e.provider, e.commitment), (job_id, provider, commitment));
        }
        fn assert_seed_revealed(job_id: u64, checked: bool) {
            let e = last::<SeedRevealed>();
            assert_eq!((e.job_id, e.checked), (job_id, checked));
        }
        fn assert_verifier_drawn(job_id: u64, verifier: Address, round: u8) {
            let e = last::<VerifierDrawn>();
            assert_eq!((e.job_id, e.verifier, e.round), (job_id, verifier, round));
        }
        fn assert_verification_committed(job_id: u64, verifier: Address) {
            let e = last::<VerificationCommitted>();
            assert_eq!((e.job_id, e.verifier), (job_id, verifier));
        }
        fn assert_result_revealed(job_id: u64, by: Address, root: Hash32, is_provider: bool) {
            let e = last::<ResultRevealed>();
            assert_eq!((e.job_id, e.by, e.root, e.is_provider), (job_id, by, root, is_provider));
        }
        fn assert_job_settled(job_id: u64, provider: Address, payout: Amount, verifier_fees: Amount, fee: Amount, refund: Amount) {
            let e = last::<JobSettled>();
            assert_eq!(
                (e.job_id, e.provider, e.provider_payout, e.verifier_fees, e.protocol_fee, e.renter_refund),
                (job_id, provider, payout, verifier_fees, fee, refund)
            );
        }
        fn assert_job_refunded(job_id: u64, amount: Amount, reason: RefundReason) {
            let e = last::<JobRefunded>();
            assert_eq!((e.job_id, e.amount, e.reason), (job_id, amount, reason));
        }
        fn assert_slashed(job_id: u64, account: Address, amount: Amount, reason: SlashReason) -> Slashed {
            let e = last::<Slashed>();
            assert_eq!((e.job_id, e.account, e.amount, e.reason), (job_id, account, amount, reason));
            assert_eq!(e.to_renter + e.to_verifiers + e.to_treasury, e.amount);
            e
        }
        fn assert_withdrawn(account: Address, amount: Amount) {
            let e = last::<Withdrawn>();
            assert_eq!((e.account, e.amount), (account, amount));
        }
        fn assert_price_index_updated(gpu_class: u32, price: Amount, index: Amount) {
            let e = last::<PriceIndexUpdated>();
            assert_eq!((e.gpu_class, e.clearing_price, e.index), (gpu_class, price, index));
        }

        // ---- scenario helpers

        const PRICE: Amount = WND / 100;
        const UNITS: u64 = 10;

        fn offer_input(price: Amount, class: u32) -> OfferInput {
            OfferInput {
                gpu_vendor: "NVIDIA".into(),
                gpu_model: "H100".into(),
                vram_mib: 81_920,
                backend: "Vulkan NVIDIA 580".into(),
                benchmark_score: 20_000,
                gpu_class: class,
                price_per_unit: price,
                max_units: 1_000,
                endpoint: "http://127.0.0.1:8080".into(),
            }
        }

        fn register(m: &mut Marketplace, who: Address, stake: Amount) {
            pay(who, stake);
            m.register_provider().unwrap();
        }

        fn list(m: &mut Marketplace, who: Address, price: Amount) -> u64 {
            as_(who);
            m.list_offer(offer_input(price, 7)).unwrap()
        }

        fn job_input(offer_id: Option<u64>, rate: u16, seed: &Hash32) -> JobInput {
            JobInput {
                spec_hash: [0x5E; 32],
                spec_uri: "sha256:5e5e".into(),
                work_units: UNITS,
                max_price_per_unit: PRICE,
                requirements: Requirements { min_vram_mib: 1024, min_benchmark_score: 1, gpu_class: None },
                deadline: now() + 20,
                check_rate_bps: rate,
                seed_commitment: sha(&[seed]),
                offer_id,
            }
        }

        fn create(m: &mut Marketplace, renter: Address, input: JobInput) -> u64 {
            let escrow = m.required_escrow(input.work_units, input.max_price_per_unit).unwrap();
            pay(renter, escrow);
            m.create_job(input).unwrap()
        }

        /// Bob (provider, stake 100 WND) and Charlie (verifier pool) registered; Bob's offer at
        /// `price`; a direct-hire job by Alice, accepted by Bob. Returns (market, job, offer).
        fn assigned_job(rate: u16, seed: &Hash32, price: Amount) -> (Marketplace, u64, u64) {
            let mut m = setup();
            register(&mut m, bob(), 100 * WND);
            register(&mut m, charlie(), 50 * WND);
            let offer = list(&mut m, bob(), price);
            let job = create(&mut m, alice(), job_input(Some(offer), rate, seed));
            as_(bob());
            m.accept_job(job).unwrap();
            assert_invariant(&m);
            (m, job, offer)
        }

        fn state(m: &Marketplace, job: u64) -> JobState {
            m.job(job).unwrap().state
        }

        // ---- admin

        #[ink::test]
        fn new_sets_caller_as_admin_and_defaults() {
            as_(alice());
            let m = Marketplace::new();
            assert_eq!(m.admin(), alice());
            assert_eq!(m.params(), Params::default());
            assert_eq!(m.version(), 2);
            Params::default().validate().expect("defaults are within bounds");
            assert_eq!(m.accounting(), Accounting::default());
        }

        #[ink::test]
        fn set_params_by_admin_updates_and_emits() {
            let mut m = setup();
            let p = Params { protocol_fee_bps: 150, bid_window: 7, ..m.params() };
            assert_eq!(m.set_params(p), Ok(()));
            assert_eq!(m.params(), p);
            assert_params_updated(alice(), p);
        }

        #[ink::test]
        fn set_params_errors() {
            let mut m = setup();
            let d = m.params();
            as_(bob());
            assert_eq!(m.set_params(Params { protocol_fee_bps: 150, ..d }), Err(Error::NotAdmin));
            as_(alice());
            let bad = [
                Params { protocol_fee_bps: MAX_PROTOCOL_FEE_BPS + 1, ..d },
                Params { verifier_fee_bps: MAX_VERIFIER_FEE_BPS + 1, ..d },
                Params { default_check_rate_bps: 0, ..d },
                Params { default_check_rate_bps: BPS + 1, ..d },
                Params { min_stake: 0, ..d },
                Params { accept_window: MIN_WINDOW_BLOCKS - 1, ..d },
                Params { bid_window: MAX_WINDOW_BLOCKS + 1, ..d },
                Params { reveal_window: 0, ..d },
                Params { unstake_cooldown: MAX_WINDOW_BLOCKS + 1, ..d },
            ];
            for p in bad {
                assert_eq!(m.set_params(p), Err(Error::ParamOutOfBounds), "{p:?}");
            }
            assert_eq!(m.params(), d);
        }

        // ---- providers and stake

        #[ink::test]
        fn register_add_unstake_withdraw() {
            let mut m = setup();
            register(&mut m, bob(), 2 * WND);
            assert_provider_staked(bob(), 2 * WND, 2 * WND);
            pay(bob(), WND);
            m.add_stake().unwrap();
            assert_provider_staked(bob(), WND, 3 * WND);
            assert_invariant(&m);
            as_(bob());
            m.request_unstake(WND).unwrap();
            let at = now() + 5;
            assert_unstake_requested(bob(), WND, at);
            assert_eq!(m.provider(bob()).unwrap().stake, 2 * WND);
            assert_eq!(m.complete_unstake(), Err(Error::CooldownActive));
            advance(5);
            m.complete_unstake().unwrap();
            assert_provider_unstaked(bob(), WND);
            assert_eq!(m.withdrawable_of(bob()), WND);
            assert_invariant(&m);
            let before = test::get_contract_balance::<E>(bob()).unwrap();
            assert_eq!(m.withdraw(), Ok(WND));
            assert_withdrawn(bob(), WND);
            assert_eq!(test::get_contract_balance::<E>(bob()).unwrap(), before + U256::from(WND));
            assert_eq!(m.accounting().stakes, 2 * WND);
            assert_invariant(&m);
        }

        #[ink::test]
        fn provider_errors() {
            let mut m = setup();
            pay(bob(), WND - 1);
            assert_eq!(m.register_provider(), Err(Error::StakeTooLow));
            register(&mut m, bob(), WND);
            pay(bob(), WND);
            assert_eq!(m.register_provider(), Err(Error::AlreadyRegistered));
            pay(charlie(), WND);
            assert_eq!(m.add_stake(), Err(Error::NotProvider));
            as_(bob());
            assert_eq!(m.add_stake(), Err(Error::WrongPayment));
            assert_eq!(m.request_unstake(0), Err(Error::InsufficientFreeStake));
            assert_eq!(m.request_unstake(WND + 1), Err(Error::InsufficientFreeStake));
            assert_eq!(m.complete_unstake(), Err(Error::NothingToUnstake));
            as_(charlie());
            assert_eq!(m.request_unstake(1), Err(Error::NotProvider));
            assert_eq!(m.complete_unstake(), Err(Error::NotProvider));
            assert_eq!(m.withdraw(), Err(Error::NothingToWithdraw));
            as_(bob());
            assert_eq!(m.claim_treasury(1), Err(Error::NotAdmin));
            as_(alice());
            assert_eq!(m.claim_treasury(1), Err(Error::NothingToWithdraw));
        }

        // ---- offers

        #[ink::test]
        fn offers_list_update_remove() {
            let mut m = setup();
            register(&mut m, bob(), WND);
            let id = list(&mut m, bob(), PRICE);
            assert_offer_listed(id, bob(), false);
            assert_eq!(m.offer_count(), 1);
            let mut o = offer_input(2 * PRICE, 8);
            o.vram_mib = 40_960;
            m.update_offer(id, o.clone()).unwrap();
            assert_offer_listed(id, bob(), true);
            assert_eq!(m.offer(id).unwrap().info, o);
            m.remove_offer(id).unwrap();
            assert_offer_removed(id, bob());
            assert!(!m.offer(id).unwrap().active);
            assert_eq!(m.remove_offer(id), Err(Error::OfferNotFound));
        }

        #[ink::test]
        fn offer_errors() {
            let mut m = setup();
            as_(bob());
            assert_eq!(m.list_offer(offer_input(PRICE, 1)), Err(Error::NotProvider));
            register(&mut m, bob(), WND);
            register(&mut m, charlie(), WND);
            as_(bob());
            let mut o = offer_input(PRICE, 1);
            o.gpu_vendor = String::new();
            assert_eq!(m.list_offer(o), Err(Error::BadText));
            let mut o = offer_input(PRICE, 1);
            o.endpoint = "x".repeat(MAX_TEXT_LEN + 1);
            assert_eq!(m.list_offer(o), Err(Error::BadText));
            assert_eq!(m.list_offer(offer_input(0, 1)), Err(Error::BadOffer));
            let id = list(&mut m, bob(), PRICE);
            as_(charlie());
            assert_eq!(m.update_offer(id, offer_input(PRICE, 1)), Err(Error::NotOfferOwner));
            assert_eq!(m.remove_offer(id), Err(Error::NotOfferOwner));
            assert_eq!(m.update_offer(99, offer_input(PRICE, 1)), Err(Error::OfferNotFound));
        }

        // ---- job creation and matching

        #[ink::test]
        fn create_job_escrows_and_emits() {
            let mut m = setup();
            let seed = [1; 32];
            let input = job_input(None, 0, &seed);
            let escrow = m.required_escrow(UNITS, PRICE).unwrap();
            // units × price + two verifier fees (3% each by default).
            assert_eq!(escrow, 10 * PRICE + 2 * (10 * PRICE * 3 / 100));
            let id = create(&mut m, alice(), input);
            assert_job_created(id, alice(), escrow);
            let job = m.job(id).unwrap();
            assert_eq!((job.state, job.escrow, job.check_rate_bps), (JobState::Open, escrow, 1_000));
            assert_eq!(m.accounting().escrow, escrow);
            assert_invariant(&m);
        }

        #[ink::test]
        fn create_job_errors_move_no_funds() {
            let mut m = setup();
            let seed = [1; 32];
            let escrow = m.required_escrow(UNITS, PRICE).unwrap();
            let cases: [(JobInput, Error); 6] = [
                (JobInput { work_units: 0, ..job_input(None, 0, &seed) }, Error::BadJob),
                (JobInput { check_rate_bps: BPS + 1, ..job_input(None, 0, &seed) }, Error::BadJob),
                (JobInput { spec_uri: String::new(), ..job_input(None, 0, &seed) }, Error::BadText),
                (JobInput { deadline: now() + 4, ..job_input(None, 0, &seed) }, Error::DeadlineTooSoon),
                (job_input(Some(42), 0, &seed), Error::OfferNotFound),
                (job_input(None, 0, &seed), Error::WrongPayment),
            ];
            for (i, (input, err)) in cases.into_iter().enumerate() {
                // The last case pays one unit too little; the others pay the right escrow.
                test::set_caller(alice());
                test::set_value_transferred(U256::from(if i == 5 { escrow - 1 } else { escrow }));
                assert_eq!(m.create_job(input), Err(err));
            }
            assert_eq!(m.job_count(), 0);
            assert_eq!(m.accounting(), Accounting::default());
        }

        #[ink::test]
        fn auction_lowest_price_wins_and_outbid_lock_is_released() {
            let mut m = setup();
            register(&mut m, bob(), 100 * WND);
            register(&mut m, charlie(), 100 * WND);
            let ob = list(&mut m, bob(), PRICE);
            let oc = list(&mut m, charlie(), PRICE);
            let job = create(&mut m, alice(), job_input(None, 1_000, &[1; 32]));
            as_(bob());
            m.bid(job, ob, PRICE).unwrap();
            assert_bid_placed(job, bob(), PRICE);
            let lock = m.required_lock(10 * PRICE, 1_000);
            assert_eq!(lock, WND.max(10 * PRICE * 9));
            assert_eq!(m.provider(bob()).unwrap().locked, lock);
            as_(charlie());
            assert_eq!(m.bid(job, oc, PRICE), Err(Error::BidNotBetter), "equal price, equal reputation");
            m.bid(job, oc, PRICE - 1).unwrap();
            assert_bid_placed(job, charlie(), PRICE - 1);
            assert_eq!(m.provider(bob()).unwrap().locked, 0, "outbid lock released");
            assert_eq!(m.close_auction(job), Err(Error::DeadlineNotPassed));
            advance(4);
            assert_eq!(m.bid(job, oc, PRICE - 2), Err(Error::DeadlinePassed));
            as_(eve());
            m.close_auction(job).unwrap();
            assert_job_assigned(job, charlie(), PRICE - 1, m.required_lock(10 * (PRICE - 1), 1_000));
            assert_price_index_updated(7, PRICE - 1, PRICE - 1);
            assert_eq!(state(&m, job), JobState::Assigned);
            assert_eq!(m.close_auction(job), Err(Error::WrongState));
            assert_invariant(&m);
        }

        #[ink::test]
        fn bid_errors() {
            let mut m = setup();
            register(&mut m, bob(), 2 * WND);
            register(&mut m, alice(), 100 * WND);
            let ob = list(&mut m, bob(), PRICE);
            let oa = list(&mut m, alice(), PRICE);
            let job = create(&mut m, alice(), job_input(None, 1_000, &[1; 32]));
            as_(bob());
            assert_eq!(m.bid(99, ob, PRICE), Err(Error::JobNotFound));
            assert_eq!(m.bid(job, ob, PRICE + 1), Err(Error::PriceAboveMax));
            assert_eq!(m.bid(job, oa, PRICE), Err(Error::NotOfferOwner));
            as_(alice());
            assert_eq!(m.bid(job, oa, PRICE), Err(Error::NotAuthorized), "the renter cannot bid");
            // Requirements and size.
            let mut small = offer_input(PRICE, 7);
            small.vram_mib = 512;
            as_(bob());
            let os = m.list_offer(small).unwrap();
            assert_eq!(m.bid(job, os, PRICE), Err(Error::RequirementsNotMet));
            let mut tiny = offer_input(PRICE, 7);
            tiny.max_units = 1;
            let ot = m.list_offer(tiny).unwrap();
            assert_eq!(m.bid(job, ot, PRICE), Err(Error::JobTooLarge));
            // 2 WND of stake cannot cover a 9 × value lock at a high price.
            let big = create(&mut m, charlie(), JobInput { max_price_per_unit: WND, ..job_input(None, 1_000, &[1; 32]) });
            as_(bob());
            assert_eq!(m.bid(big, ob, WND), Err(Error::InsufficientFreeStake));
            assert_eq!(m.provider(bob()).unwrap().locked, 0);
            assert_invariant(&m);
        }

        #[ink::test]
        fn no_bids_reopen_then_refund() {
            let mut m = setup();
            let job = create(&mut m, alice(), job_input(None, 1_000, &[1; 32]));
            let escrow = m.job(job).unwrap().escrow;
            as_(bob());
            assert_eq!(m.reopen_job(job), Err(Error::NotAuthorized));
            as_(alice());
            assert_eq!(m.reopen_job(job), Err(Error::DeadlineNotPassed));
            advance(4);
            as_(eve());
            assert_eq!(m.close_auction(job), Err(Error::NoBids));
            as_(alice());
            m.reopen_job(job).unwrap();
            assert_job_created(job, alice(), escrow);
            assert_eq!(m.cleanup(job), Err(Error::DeadlineNotPassed));
            advance(4);
            as_(eve());
            m.cleanup(job).unwrap();
            assert_job_refunded(job, escrow, RefundReason::NoBids);
            assert_eq!(state(&m, job), JobState::Refunded);
            assert_eq!(m.withdrawable_of(alice()), escrow);
            assert_eq!(m.cleanup(job), Err(Error::WrongState), "terminal jobs never change");
            assert_invariant(&m);
        }

        #[ink::test]
        fn direct_hire_accept_and_errors() {
            let mut m = setup();
            register(&mut m, bob(), 100 * WND);
            register(&mut m, charlie(), 100 * WND);
            let expensive = list(&mut m, bob(), PRICE * 2);
            let job = create(&mut m, alice(), job_input(Some(expensive), 1_000, &[1; 32]));
            assert_eq!(state(&m, job), JobState::AwaitingAccept);
            as_(charlie());
            assert_eq!(m.accept_job(job), Err(Error::NotOfferOwner));
            as_(bob());
            assert_eq!(m.accept_job(job), Err(Error::PriceAboveMax));
            let ok = list(&mut m, bob(), PRICE);
            let job2 = create(&mut m, alice(), job_input(Some(ok), 1_000, &[1; 32]));
            as_(bob());
            m.accept_job(job2).unwrap();
            assert_job_assigned(job2, bob(), PRICE, m.required_lock(10 * PRICE, 1_000));
            assert_eq!(m.accept_job(job2), Err(Error::WrongState));
            advance(4);
            assert_eq!(m.accept_job(job), Err(Error::DeadlinePassed));
            as_(eve());
            m.cleanup(job).unwrap();
            assert_job_refunded(job, m.required_escrow(UNITS, PRICE).unwrap(), RefundReason::NotAccepted);
            assert_invariant(&m);
        }

        // ---- execution, check decision, settlement

        #[ink::test]
        fn unchecked_job_settles_with_exact_payouts() {
            let root = [0xAB; 32];
            let salt = [0x5A; 32];
            // Rate 50%: a seed that leaves job 0 (the first job of a fresh market) unchecked.
            let c = commit_of(b"P", 0, bob(), &root, &salt);
            let seed = seed_for(&c, 5_000, false);
            let (mut m2, job2, _) = assigned_job(5_000, &seed, PRICE);
            assert_eq!(job2, 0);
            let c2 = c;
            as_(charlie());
            assert_eq!(m2.commit_result(job2, c2), Err(Error::NotAuthorized));
            as_(bob());
            m2.commit_result(job2, c2).unwrap();
            assert_result_committed(job2, bob(), c2);
            assert_eq!(m2.commit_result(job2, c2), Err(Error::WrongState));
            as_(bob());
            assert_eq!(m2.reveal_seed(job2, seed), Err(Error::NotAuthorized));
            as_(alice());
            assert_eq!(m2.reveal_seed(job2, [9; 32]), Err(Error::SeedMismatch));
            m2.reveal_seed(job2, seed).unwrap();
            assert_seed_revealed(job2, false);
            assert_eq!(state(&m2, job2), JobState::Reveal);
            as_(bob());
            assert_eq!(m2.reveal_result(job2, [0xAC; 32], salt), Err(Error::CommitmentMismatch));
            m2.reveal_result(job2, root, salt).unwrap();
            assert_result_revealed(job2, bob(), root, true);
            let value = 10 * PRICE;
            let fee = value * 200 / 10_000;
            let escrow = m2.required_escrow(UNITS, PRICE).unwrap();
            assert_job_settled(job2, bob(), value - fee, 0, fee, escrow - value);
            assert_eq!(state(&m2, job2), JobState::Settled);
            assert_eq!(m2.withdrawable_of(bob()), value - fee);
            assert_eq!(m2.withdrawable_of(alice()), escrow - value);
            assert_eq!(m2.accounting().treasury, fee);
            assert_eq!(m2.provider(bob()).unwrap().locked, 0);
            let rep = m2.provider(bob()).unwrap().reputation;
            assert_eq!((rep.jobs_completed, rep.value_settled), (1, value));
            assert_eq!(m2.reveal_result(job2, root, salt), Err(Error::WrongState));
            assert_invariant(&m2);
            as_(alice());
            m2.claim_treasury(fee).unwrap();
            assert_eq!(m2.withdrawable_of(alice()), escrow - value + fee);
            assert_invariant(&m2);
        }

        /// Drives a checked job (rate 100%) through commit, seed reveal and verifier draw.
        /// Returns (market, job, provider root, salt).
        fn checked_job_at_verifier() -> (Marketplace, u64, Hash32, Hash32) {
            let seed = [3; 32];
            let (mut m, job, _) = assigned_job(BPS, &seed, PRICE);
            let (root, salt) = ([0xAB; 32], [0x5A; 32]);
            as_(bob());
            m.commit_result(job, commit_of(b"P", job, bob(), &root, &salt)).unwrap();
            as_(alice());
            m.reveal_seed(job, seed).unwrap();
            assert_seed_revealed(job, true);
            // Charlie is the only eligible verifier (Bob provides, Alice rents).
            assert_verifier_drawn(job, charlie(), 1);
            assert_eq!(state(&m, job), JobState::VerifierCommit);
            assert_eq!(m.provider(charlie()).unwrap().locked, WND);
            assert_invariant(&m);
            (m, job, root, salt)
        }

        #[ink::test]
        fn checked_honest_job_pays_provider_and_verifier() {
            let (mut m, job, root, salt) = checked_job_at_verifier();
            let vsalt = [0x77; 32];
            as_(bob());
            assert_eq!(m.commit_verification(job, [0; 32]), Err(Error::NotAuthorized));
            as_(charlie());
            m.commit_verification(job, commit_of(b"V", job, charlie(), &root, &vsalt)).unwrap();
            assert_verification_committed(job, charlie());
            assert_eq!(state(&m, job), JobState::Reveal);
            m.reveal_result(job, root, vsalt).unwrap();
            assert_result_revealed(job, charlie(), root, false);
            assert_eq!(m.reveal_result(job, root, vsalt), Err(Error::AlreadyDone));
            assert_eq!(state(&m, job), JobState::Reveal, "waits for the provider");
            as_(bob());
            m.reveal_result(job, root, salt).unwrap();
            let value = 10 * PRICE;
            let (pfee, vfee) = (value * 200 / 10_000, value * 300 / 10_000);
            let escrow = m.required_escrow(UNITS, PRICE).unwrap();
            assert_job_settled(job, bob(), value - pfee, vfee, pfee, escrow - value - vfee);
            assert_eq!(m.withdrawable_of(charlie()), vfee);
            assert_eq!(m.provider(charlie()).unwrap().locked, 0);
            assert_eq!(m.provider(bob()).unwrap().reputation.checks_passed, 1);
            assert_invariant(&m);
        }

        /// Registers Django as a second verifier candidate before the dispute round.
        fn dispute(provider_root: Hash32, v1_root: Hash32, v2_root: Hash32) -> (Marketplace, u64) {
            let (mut m, job, root, salt) = checked_job_at_verifier();
            assert_eq!(root, provider_root);
            register(&mut m, django(), 50 * WND);
            let vsalt = [0x77; 32];
            as_(charlie());
            m.commit_verification(job, commit_of(b"V", job, charlie(), &v1_root, &vsalt)).unwrap();
            m.reveal_result(job, v1_root, vsalt).unwrap();
            as_(bob());
            m.reveal_result(job, root, salt).unwrap();
            // Roots differ: Django is the only candidate left for round 2.
            assert_verifier_drawn(job, django(), 2);
            assert_eq!(state(&m, job), JobState::VerifierCommit);
            as_(django());
            m.commit_verification(job, commit_of(b"V", job, django(), &v2_root, &vsalt)).unwrap();
            m.reveal_result(job, v2_root, vsalt).unwrap();
            assert_invariant(&m);
            (m, job)
        }

        #[ink::test]
        fn cheating_provider_is_slashed_and_renter_compensated() {
            let (good, bad) = ([0xCD; 32], [0xAB; 32]);
            let (m, job) = dispute(bad, good, good);
            assert_eq!(state(&m, job), JobState::Slashed);
            let lock = m.required_lock(10 * PRICE, BPS);
            let e = assert_slashed(job, bob(), lock, SlashReason::WrongResult);
            let value = 10 * PRICE;
            let vfee = value * 300 / 10_000;
            let escrow = m.required_escrow(UNITS, PRICE).unwrap();
            assert_eq!(e.to_renter, lock.min(value));
            assert_eq!(m.withdrawable_of(alice()), escrow + e.to_renter);
            // Both verifiers were honest and are paid from the slash.
            assert_eq!(e.to_verifiers, (lock - e.to_renter).min(2 * vfee));
            assert_eq!(m.provider(bob()).unwrap().stake, 100 * WND - lock);
            assert_eq!(m.provider(bob()).unwrap().reputation.checks_failed, 1);
            assert_eq!(m.provider(charlie()).unwrap().locked, 0);
            assert_eq!(m.provider(django()).unwrap().locked, 0);
            assert_invariant(&m);
        }

        #[ink::test]
        fn lying_verifier_is_slashed_and_provider_paid() {
            let (good, bad) = ([0xAB; 32], [0xCD; 32]);
            let (m, job) = dispute(good, bad, good);
            assert_eq!(state(&m, job), JobState::Settled);
            let e = last::<Slashed>();
            assert_eq!((e.account, e.amount, e.reason), (charlie(), WND, SlashReason::WrongResult));
            assert_eq!(m.provider(charlie()).unwrap().stake, 49 * WND);
            assert_eq!(m.provider(charlie()).unwrap().reputation.checks_failed, 1);
            let value = 10 * PRICE;
            assert_eq!(last::<JobSettled>().provider_payout, value - value * 200 / 10_000);
            assert_invariant(&m);
        }

        #[ink::test]
        fn three_different_roots_refund_without_slash() {
            let (m, job) = dispute([0xAB; 32], [0xCD; 32], [0xEF; 32]);
            assert_eq!(state(&m, job), JobState::Refunded);
            assert_eq!(last::<JobRefunded>().reason, RefundReason::NoMajority);
            assert!(emitted::<Slashed>().is_empty());
            for who in [bob(), charlie(), django()] {
                assert_eq!(m.provider(who).unwrap().locked, 0);
            }
            assert_invariant(&m);
        }

        // ---- timeouts

        #[ink::test]
        fn silent_provider_after_assignment_refunds_and_penalises() {
            let (mut m, job, _) = assigned_job(1_000, &[1; 32], PRICE);
            let lock = m.job(job).unwrap().lock;
            as_(eve());
            assert_eq!(m.cleanup(job), Err(Error::DeadlineNotPassed));
            advance(21);
            as_(bob());
            assert_eq!(m.commit_result(job, [0; 32]), Err(Error::DeadlinePassed));
            as_(eve());
            m.cleanup(job).unwrap();
            let escrow = m.required_escrow(UNITS, PRICE).unwrap();
            assert_job_refunded(job, escrow, RefundReason::NoCommitment);
            let penalty = lock / 10;
            let e = assert_slashed(job, bob(), penalty, SlashReason::CommitTimeout);
            assert_eq!(m.withdrawable_of(alice()), escrow + e.to_renter);
            let p = m.provider(bob()).unwrap();
            assert_eq!((p.locked, p.stake, p.reputation.timeouts), (0, 100 * WND - penalty, 1));
            assert_invariant(&m);
        }

        #[ink::test]
        fn silent_renter_gets_its_job_checked() {
            let (mut m, job, _) = assigned_job(5_000, &[1; 32], PRICE);
            as_(bob());
            m.commit_result(job, [7; 32]).unwrap();
            advance(4);
            as_(alice());
            assert_eq!(m.reveal_seed(job, [1; 32]), Err(Error::DeadlinePassed));
            as_(eve());
            m.cleanup(job).unwrap();
            let e = last::<SeedRevealed>();
            assert_eq!((e.seed, e.checked), (None, true));
            assert_verifier_drawn(job, charlie(), 1);
            assert_invariant(&m);
        }

        #[ink::test]
        fn silent_verifier_is_slashed_and_replaced() {
            let (mut m, job, _, _) = checked_job_at_verifier();
            register(&mut m, django(), 50 * WND);
            advance(4);
            as_(eve());
            m.cleanup(job).unwrap();
            assert_slashed(job, charlie(), WND, SlashReason::VerifierSilent);
            assert_verifier_drawn(job, django(), 1);
            assert_eq!(m.provider(charlie()).unwrap().reputation.timeouts, 1);
            assert_invariant(&m);
            // Django is silent too; then nobody is left, the check is given up, and the job
            // waits for the provider's reveal.
            advance(4);
            m.cleanup(job).unwrap();
            assert_slashed(job, django(), WND, SlashReason::VerifierSilent);
            let j = m.job(job).unwrap();
            assert_eq!((j.state, j.checked), (JobState::Reveal, false));
            as_(bob());
            m.reveal_result(job, [0xAB; 32], [0x5A; 32]).unwrap();
            assert_eq!(state(&m, job), JobState::Settled);
            assert_invariant(&m);
        }

        #[ink::test]
        fn silent_provider_at_reveal_is_slashed() {
            let (mut m, job, root, _) = checked_job_at_verifier();
            let vsalt = [0x77; 32];
            as_(charlie());
            m.commit_verification(job, commit_of(b"V", job, charlie(), &root, &vsalt)).unwrap();
            m.reveal_result(job, root, vsalt).unwrap();
            advance(4);
            as_(eve());
            m.cleanup(job).unwrap();
            assert_eq!(state(&m, job), JobState::Slashed);
            let lock = m.required_lock(10 * PRICE, BPS);
            let e = assert_slashed(job, bob(), lock, SlashReason::ProviderSilent);
            assert_eq!(m.withdrawable_of(charlie()), e.to_verifiers);
            assert_eq!(m.provider(bob()).unwrap().reputation.timeouts, 1);
            assert_invariant(&m);
        }

        #[ink::test]
        fn silent_verifier_at_reveal_round_one_settles_unchecked() {
            let (mut m, job, root, salt) = checked_job_at_verifier();
            as_(charlie());
            m.commit_verification(job, [1; 32]).unwrap();
            as_(bob());
            m.reveal_result(job, root, salt).unwrap();
            advance(4);
            as_(eve());
            m.cleanup(job).unwrap();
            assert_slashed(job, charlie(), WND, SlashReason::VerifierSilent);
            assert_eq!(state(&m, job), JobState::Settled);
            assert!(!last::<JobSettled>().checked);
            assert_invariant(&m);
        }

        // ---- reputation, price index, lock rule

        #[ink::test]
        fn reputation_score_and_price_index() {
            let r = Reputation { jobs_completed: 9, checks_passed: 0, checks_failed: 0, timeouts: 0, value_settled: 0 };
            assert_eq!(r.score(), 9_000);
            let r = Reputation { checks_failed: 1, ..r };
            assert_eq!(r.score(), 6_000);
            assert_eq!(Reputation::default().score(), 0);
            let mut m = setup();
            register(&mut m, bob(), 100 * WND);
            register(&mut m, charlie(), 100 * WND);
            let ob = list(&mut m, bob(), PRICE);
            for (i, price) in [PRICE, PRICE / 2].into_iter().enumerate() {
                let job = create(&mut m, alice(), job_input(None, 1_000, &[1; 32]));
                as_(bob());
                m.bid(job, ob, price).unwrap();
                advance(4);
                m.close_auction(job).unwrap();
                let want = if i == 0 { PRICE } else { PRICE * 8 / 10 + PRICE / 2 * 2 / 10 };
                assert_price_index_updated(7, price, want);
                assert_eq!(m.price_index(7), Some(want));
            }
            assert_invariant(&m);
        }

        #[ink::test]
        fn lock_makes_cheating_unprofitable_in_expectation() {
            let m = setup();
            for p in [100u16, 1_000, 5_000, BPS] {
                let value = 1_000 * WND;
                let lock = m.required_lock(value, p);
                // A cheat gains `value` when unchecked (prob 1 − p) and loses `lock` when checked (prob p).
                let gain = value as i128 * i128::from(BPS - p);
                let loss = lock as i128 * i128::from(p);
                assert!(loss >= gain, "p = {p}");
            }
            assert_eq!(m.required_lock(1, BPS), WND, "bounded below by min_stake");
        }


        /// Calls a payable message; on `Err` undoes the value transfer, as the chain's revert would.
        fn paid<T>(who: Address, value: Amount, f: impl FnOnce() -> Result<T>) -> Result<T> {
            let caller_before = test::get_contract_balance::<E>(who).unwrap();
            let contract_before = test::get_contract_balance::<E>(test::callee()).unwrap();
            pay(who, value);
            let r = f();
            if r.is_err() {
                test::set_contract_balance(who, caller_before);
                test::set_contract_balance(test::callee(), contract_before);
            }
            r
        }

        /// ≥ 10,000 random operation sequences by random actors with random block advances.
        /// After every step: the money invariant holds and terminal jobs never change. After
        /// the sequence: once every deadline has passed and cleanup has run, every job is
        /// terminal. `PROPTEST_SEQUENCES` overrides the count.
        #[ink::test]
        fn property_random_sequences_keep_invariants() {
            let sequences: u64 = std::env::var("PROPTEST_SEQUENCES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
            let actors = [alice(), bob(), charlie(), django(), eve()];
            let good: Hash32 = [0x60; 32];
            let bad: Hash32 = [0xBA; 32];
            for a in actors {
                test::set_contract_balance(a, U256::from(u128::MAX / 4));
            }
            // How often each operation succeeded and each terminal state was reached: the
            // test fails if the random walk never exercised one of them.
            let mut ok_ops = [0u64; 15];
            let (mut settled, mut refunded, mut slashed, mut checked_settled) = (0u64, 0u64, 0u64, 0u64);
            for seq in 0..sequences {
                let mut rng = Rng(seq);
                let mut addr = [0u8; 20];
                addr[..8].copy_from_slice(&seq.to_le_bytes());
                addr[19] = 0xC0;
                test::set_callee(Address::from(addr));
                test::set_contract_balance(Address::from(addr), U256::zero());
                as_(alice());
                let mut m = Marketplace::new();
                m.set_params(Params { accept_window: 3, bid_window: 3, reveal_window: 3, unstake_cooldown: 4, ..Params::default() })
                    .unwrap();
                let mut seeds: ink::prelude::collections::BTreeMap<u64, Hash32> = Default::default();
                let mut roots: ink::prelude::collections::BTreeMap<(u64, Address), Hash32> = Default::default();
                let mut terminal: ink::prelude::collections::BTreeMap<u64, Job> = Default::default();
                let salt = [0x11; 32];
                // Warm start: a few providers with random stakes and offers.
                for p in [bob(), charlie(), django()] {
                    if rng.below(4) > 0 {
                        paid(p, (2 + rng.below(30) as Amount) * WND, || m.register_provider()).unwrap();
                        as_(p);
                        m.list_offer(offer_input((1 + rng.below(3) as Amount) * PRICE / 2, 0)).unwrap();
                    }
                }
                for _ in 0..40 {
                    let who = actors[rng.below(5) as usize];
                    let jobs = m.job_count().max(1);
                    let job = rng.below(jobs + 1);
                    // Mostly the step the job's state calls for (by the right actor, most of the
                    // time); otherwise any operation by anyone.
                    let state_now = m.job(job).map(|j| j.state);
                    let guided = rng.below(10) < 7;
                    let op = match state_now {
                        Some(JobState::Open) if guided => [6, 6, 7][rng.below(3) as usize],
                        Some(JobState::AwaitingAccept) if guided => 8,
                        Some(JobState::Assigned) if guided => 9,
                        Some(JobState::Committed) if guided => 10,
                        Some(JobState::VerifierCommit) if guided => 11,
                        Some(JobState::Reveal) if guided => 12,
                        _ => rng.below(15),
                    };
                    let right = rng.below(5) > 0;
                    let result = match op {
                        0 => paid(who, (1 + rng.below(30) as Amount) * WND, || m.register_provider()),
                        1 => paid(who, (1 + rng.below(10) as Amount) * WND, || m.add_stake()),
                        2 => {
                            as_(who);
                            m.request_unstake((1 + rng.below(20) as Amount) * WND / 2)
                        }
                        3 => {
                            as_(who);
                            m.complete_unstake()
                        }
                        4 => {
                            as_(who);
                            let mut o = offer_input((1 + rng.below(3) as Amount) * PRICE / 2, rng.below(2) as u32);
                            o.max_units = [5, 50][rng.below(2) as usize];
                            m.list_offer(o).map(|_| ())
                        }
                        5 => {
                            let seed = sha(&[&rng.next().to_le_bytes()]);
                            let direct = if rng.below(2) == 0 && m.offer_count() > 0 { Some(rng.below(m.offer_count())) } else { None };
                            let rate = [5_000u16, 1_000, BPS][rng.below(3) as usize];
                            let input = JobInput { deadline: now() + 8 + rng.below(20) as u32, ..job_input(direct, rate, &seed) };
                            let escrow = m.required_escrow(input.work_units, input.max_price_per_unit).unwrap();
                            let id = m.job_count();
                            let r = paid(who, escrow + [0, 0, 1][rng.below(3) as usize], || m.create_job(input));
                            if r.is_ok() {
                                seeds.insert(id, seed);
                            }
                            r.map(|_| ())
                        }
                        6 => {
                            // An offer of the bidder's own, most of the time.
                            let own: ink::prelude::vec::Vec<u64> =
                                (0..m.offer_count()).filter(|o| m.offer(*o).is_some_and(|o| o.provider == who)).collect();
                            let offer = if right && !own.is_empty() {
                                own[rng.below(own.len() as u64) as usize]
                            } else {
                                rng.below(m.offer_count().max(1))
                            };
                            as_(who);
                            m.bid(job, offer, (1 + rng.below(4) as Amount) * PRICE / 4)
                        }
                        7 => {
                            as_(who);
                            m.close_auction(job)
                        }
                        8 => {
                            let owner = m
                                .job(job)
                                .and_then(|j| j.input.offer_id)
                                .and_then(|o| m.offer(o))
                                .map(|o| o.provider);
                            as_(if right { owner.unwrap_or(who) } else { who });
                            m.accept_job(job)
                        }
                        9 => {
                            let who = if right { m.job(job).and_then(|j| j.provider).unwrap_or(who) } else { who };
                            as_(who);
                            let root = if rng.below(3) == 0 { bad } else { good };
                            let r = m.commit_result(job, commit_of(b"P", job, who, &root, &salt));
                            if r.is_ok() {
                                roots.insert((job, who), root);
                            }
                            r
                        }
                        10 => {
                            let renter = m.job(job).map(|j| j.renter).unwrap_or(who);
                            as_(if right { renter } else { who });
                            m.reveal_seed(job, seeds.get(&job).copied().unwrap_or_default())
                        }
                        11 => {
                            let drawn = m.job(job).and_then(|j| {
                                j.verifiers[usize::from(j.round.saturating_sub(1)).min(1)].map(|v| v.account)
                            });
                            let v = if right { drawn.unwrap_or(who) } else { who };
                            as_(v);
                            let root = if rng.below(4) == 0 { bad } else { good };
                            let r = m.commit_verification(job, commit_of(b"V", job, v, &root, &salt));
                            if r.is_ok() {
                                roots.insert((job, v), root);
                            }
                            r
                        }
                        12 => {
                            let j = m.job(job);
                            let candidates = [
                                j.as_ref().and_then(|j| j.provider),
                                j.as_ref().and_then(|j| j.verifiers[0].map(|v| v.account)),
                                j.as_ref().and_then(|j| j.verifiers[1].map(|v| v.account)),
                            ];
                            let by = candidates[rng.below(3) as usize].unwrap_or(who);
                            as_(by);
                            let root = roots.get(&(job, by)).copied().unwrap_or(good);
                            m.reveal_result(job, root, salt)
                        }
                        13 => {
                            as_(who);
                            m.cleanup(job)
                        }
                        _ => {
                            as_(who);
                            m.withdraw().map(|_| ())
                        }
                    };
                    if result.is_ok() {
                        ok_ops[op as usize] += 1;
                    }
                    if rng.below(4) == 0 {
                        advance(1 + rng.below(2) as u32);
                    }
                    assert_invariant(&m);
                    for (id, snapshot) in &terminal {
                        assert_eq!(&m.job(*id).unwrap(), snapshot, "terminal job {id} changed (sequence {seq})");
                    }
                    for id in 0..m.job_count() {
                        let j = m.job(id).unwrap();
                        if j.state.is_terminal() {
                            terminal.entry(id).or_insert(j);
                        }
                    }
                }
                // Liveness: with deadlines passed and cleanup called, every job ends; each
                // cleanup moves at least one phase, and a job has a bounded number of phases.
                for _ in 0..16 {
                    advance(20);
                    for id in 0..m.job_count() {
                        as_(eve());
                        let _ = m.cleanup(id);
                    }
                    assert_invariant(&m);
                }
                for id in 0..m.job_count() {
                    let j = m.job(id).unwrap();
                    assert!(j.state.is_terminal(), "job {id} stuck in {:?} (sequence {seq})", j.state);
                    assert_eq!(j.escrow, 0);
                    match j.state {
                        JobState::Settled if j.checked => checked_settled += 1,
                        JobState::Settled => settled += 1,
                        JobState::Refunded => refunded += 1,
                        _ => slashed += 1,
                    }
                }
                assert_eq!(m.accounting().escrow, 0, "no escrow left once every job ended");
                let locked: Amount = actors.iter().filter_map(|a| m.provider(*a)).map(|p| p.locked).sum();
                assert_eq!(locked, 0, "no stake left locked once every job ended (sequence {seq})");
            }
            eprintln!(
                "{sequences} sequences: successful ops by kind {ok_ops:?}; jobs settled {settled} \
                 (+{checked_settled} checked), refunded {refunded}, slashed {slashed}"
            );
            if sequences >= 1_000 {
                assert!(ok_ops.iter().all(|n| *n > 0), "every operation succeeded sometimes: {ok_ops:?}");
                assert!(settled > 0 && checked_settled > 0 && refunded > 0 && slashed > 0);
            }
        }


        /// Every stored value and every event, at its largest, fits pallet-revive's 416-byte
        /// payload limit (the off-chain engine does not enforce it; the chain traps).
        #[ink::test]
        fn payload_limits() {
            use ink::scale::Encode;
            let text = |n: usize| "x".repeat(n);
            let h = [0xFF; 32];
            let a = Address::from([0xFF; 20]);
            let offer = OfferInput {
                gpu_vendor: text(MAX_VENDOR_LEN),
                gpu_model: text(MAX_TEXT_LEN),
                vram_mib: u32::MAX,
                backend: text(MAX_TEXT_LEN),
                benchmark_score: u32::MAX,
                gpu_class: u32::MAX,
                price_per_unit: Amount::MAX,
                max_units: u64::MAX,
                endpoint: text(MAX_TEXT_LEN),
            };
            let input = JobInput {
                spec_hash: h,
                spec_uri: text(MAX_URI_LEN),
                work_units: u64::MAX,
                max_price_per_unit: Amount::MAX,
                requirements: Requirements { min_vram_mib: 1, min_benchmark_score: 1, gpu_class: Some(1) },
                deadline: u32::MAX,
                check_rate_bps: BPS,
                seed_commitment: h,
                offer_id: Some(u64::MAX),
            };
            let v = Some(Verifier { account: a, bond: Amount::MAX, commitment: Some(h), root: Some(h) });
            let core = JobCore {
                renter: a,
                check_rate_bps: BPS,
                state: JobState::Reveal,
                phase_deadline: u32::MAX,
                escrow: Amount::MAX,
                provider: Some(a),
                offer_id: Some(u64::MAX),
                gpu_class: u32::MAX,
                price_per_unit: Amount::MAX,
                lock: Amount::MAX,
                provider_commitment: Some(h),
                provider_root: Some(h),
                checked: true,
                check_seed: h,
                round: 2,
                draws: MAX_DRAWS,
                drawn_count: 2 * MAX_DRAWS,
            };
            let bid = Some(Bid { provider: a, offer_id: 1, price_per_unit: 1, reputation_score: 1, lock: 1 });
            let provider = Provider { stake: 1, locked: 1, unbonding: 1, unbond_at: 1, index: 1, reputation: Reputation::default() };
            let stored = [
                ("Offer", Offer { provider: a, info: offer.clone(), active: true }.encode().len()),
                ("JobInput", input.encode().len()),
                ("JobCore", core.encode().len()),
                ("Option<Bid>", bid.encode().len()),
                ("Option<Verifier>", v.encode().len()),
                ("Provider", provider.encode().len()),
                ("Params", Params::default().encode().len()),
            ];
            for (name, len) in stored {
                assert!(len <= PAYLOAD_BYTES, "{name}: {len} bytes");
            }
            let events = [
                ("JobCreated", 3, JobCreated { job_id: 1, renter: a, input, escrow: 1, check_rate_bps: 1, phase_deadline: 1 }.encode().len()),
                ("OfferListed", 3, OfferListed { offer_id: 1, provider: a, offer, updated: true }.encode().len()),
                (
                    "JobSettled",
                    4,
                    JobSettled {
                        job_id: 1,
                        renter: a,
                        provider: a,
                        root: h,
                        provider_payout: 1,
                        verifier_fees: 1,
                        protocol_fee: 1,
                        renter_refund: 1,
                        checked: true,
                    }
                    .encode()
                    .len(),
                ),
                ("SeedRevealed", 3, SeedRevealed { job_id: 1, renter: a, seed: Some(h), check_seed: h, checked: true }.encode().len()),
            ];
            for (name, topics, len) in events {
                assert!(topics * 32 + len <= PAYLOAD_BYTES, "{name}: {topics} topics + {len} bytes");
            }
            assert!(MAX_JOB_CREATED_BYTES >= 3 * 32 + 8 + 20 + 16 + 2 + 4);
        }


        #[ink::test]
        fn value_and_capacity_errors() {
            let mut m = setup();
            // More than the accounting type holds.
            test::set_caller(bob());
            test::set_value_transferred(U256::from(Amount::MAX) + U256::from(1u8));
            assert_eq!(m.register_provider(), Err(Error::ValueTooLarge));
            // Escrow that overflows.
            as_(alice());
            assert_eq!(m.required_escrow(3, Amount::MAX / 2), None);
            let input = JobInput { max_price_per_unit: Amount::MAX / 2, work_units: 3, ..job_input(None, 0, &[1; 32]) };
            assert_eq!(m.create_job(input), Err(Error::Overflow));
            // The registry holds MAX_PROVIDERS providers.
            for i in 0..MAX_PROVIDERS {
                let mut a = [0x10u8; 20];
                a[..4].copy_from_slice(&i.to_le_bytes());
                let who = Address::from(a);
                test::set_contract_balance(who, U256::from(10 * WND));
                register(&mut m, who, WND);
            }
            assert_eq!(m.provider(Address::from([0x10; 20])).map(|p| p.index), None);
            test::set_contract_balance(eve(), U256::from(10 * WND));
            pay(eve(), WND);
            assert_eq!(m.register_provider(), Err(Error::RegistryFull));
        }

        // ---- economics and properties

        /// A tiny deterministic PRNG for the randomized tests.
        struct Rng(u64);
        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }
            fn below(&mut self, n: u64) -> u64 {
                self.next() % n
            }
        }

        /// Runs `jobs` direct-hire jobs at the default 10% check rate through the contract
        /// with Charlie as the honest verifier; Bob computes honestly or never computes.
        /// Returns Bob's net result (payouts minus stake lost).
        fn run_provider(honest: bool, jobs: u64, seed: u64) -> i128 {
            let mut m = setup_at(Address::from([if honest { 0xD1 } else { 0xD2 }; 20]));
            register(&mut m, bob(), 10_000 * WND);
            register(&mut m, charlie(), 10_000 * WND);
            // A second honest verifier, so that a dispute always finds a tie-breaker.
            register(&mut m, django(), 10_000 * WND);
            let offer = list(&mut m, bob(), PRICE);
            let mut rng = Rng(seed);
            let stake0 = m.provider(bob()).unwrap().stake;
            for _ in 0..jobs {
                let seed: Hash32 = sha(&[&rng.next().to_le_bytes()]);
                let job = create(&mut m, alice(), job_input(Some(offer), 0, &seed));
                as_(bob());
                m.accept_job(job).unwrap();
                let good = sha(&[b"output", &job.to_le_bytes()]);
                let root = if honest { good } else { [0xBA; 32] };
                let salt = [9; 32];
                m.commit_result(job, commit_of(b"P", job, bob(), &root, &salt)).unwrap();
                as_(alice());
                m.reveal_seed(job, seed).unwrap();
                if state(&m, job) == JobState::VerifierCommit {
                    let v = m.job(job).unwrap().verifiers[0].unwrap().account;
                    as_(v);
                    m.commit_verification(job, commit_of(b"V", job, v, &good, &salt)).unwrap();
                    m.reveal_result(job, good, salt).unwrap();
                }
                as_(bob());
                if state(&m, job) == JobState::Reveal {
                    m.reveal_result(job, root, salt).unwrap();
                }
                // A mismatch goes to round 2, where the other honest verifier breaks the tie.
                if state(&m, job) == JobState::VerifierCommit {
                    let v = m.job(job).unwrap().verifiers[1].unwrap().account;
                    as_(v);
                    m.commit_verification(job, commit_of(b"V", job, v, &good, &salt)).unwrap();
                    m.reveal_result(job, good, salt).unwrap();
                }
                assert!(state(&m, job).is_terminal());
                assert_invariant(&m);
            }
            let p = m.provider(bob()).unwrap();
            m.withdrawable_of(bob()) as i128 + p.stake as i128 - stake0 as i128
        }

        #[ink::test]
        fn economics_cheater_loses_honest_earns() {
            let honest = run_provider(true, 200, 1);
            let cheat = run_provider(false, 200, 1);
            eprintln!("200 jobs of 10 units at 0.01 WND, 10% checks: honest net {honest}, cheater net {cheat} (contract units)");
            assert!(honest > 0, "an honest provider earns: {honest}");
            // 200 jobs × value 0.1 WND × 98% = 19.6 WND for the honest provider, to the unit.
            assert_eq!(honest, 200 * (10 * PRICE as i128) * 98 / 100);
            assert!(cheat < 0, "a provider that never computes loses: {cheat}");
        }
    }
}

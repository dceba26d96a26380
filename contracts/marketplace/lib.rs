//! CapaCloud marketplace contract: the one place where money and reputation move.
//!
//! Providers stake and list offers; renters create jobs of N tasks with escrow and a seed
//! commitment; jobs are hired directly or auctioned; providers commit to a batch root; the
//! renter's seed samples the tasks to check; verifiers drawn by stake from a snapshot and
//! a future block hash re-execute only the sample; answers are compared; the contract
//! settles, refunds or slashes, and every payout is a pull payment. The spec is
//! `shared/PROTOCOL.md` ("Task batches (v2)", "Adversaries and the rules that answer them
//! (v2)"); the lifecycle is [`capacloud_types::JobState`].
//!
//! The crate is split like ink!'s larger examples: this file holds storage, events and
//! messages; [`tree`] is the stake-snapshot sampling tree; the types, economics, task
//! sampling and batch Merkle proofs are the `capacloud-types` crate the clients share.
//!
//! Chain facts this contract is written for (pallet-revive 0.10, see TOOLCHAIN.md):
//! `Mapping::remove/contains` silently do nothing, so state is never removed, only
//! tombstoned; the block timestamp is always 0, so every deadline is a block number;
//! the runtime's native-to-eth ratio is 10^6, which [`CapaEnv`] declares; a storage value
//! and an event are at most 416 bytes; block hashes of the last 256 blocks are readable.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

pub mod tree;

#[cfg(test)]
#[path = "suite/mod.rs"]
mod suite;

// Decoding the larger job values needs more than PolkaVM's default stack.
#[cfg(not(feature = "std"))]
ink::min_stack_size!(131072);

/// The contract environment of Asset Hub Westend (pallet-revive 0.10): ink!'s default
/// environment with the runtime's native-to-eth ratio of 10^6 (ink! assumes 10^8).
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

/// The chain's sha256 (the SHA-256 precompile on chain, `sha2` in host tests).
pub struct ChainSha;

impl capacloud_types::hash::Sha256 for ChainSha {
    fn hash(parts: &[&[u8]]) -> [u8; 32] {
        let mut buf = ink::prelude::vec::Vec::new();
        for p in parts {
            buf.extend_from_slice(p);
        }
        let mut out = [0u8; 32];
        ink::env::hash_bytes::<ink::env::hash::Sha2x256>(&buf, &mut out);
        out
    }
}

/// Host tests' stand-in for the chain's block hashes: a hash of the block number and a
/// per-thread salt (tests vary the salt to vary every draw), zero outside the last 256.
#[cfg(feature = "std")]
pub mod test_chain {
    use std::cell::Cell;
    thread_local! {
        /// Mixed into every block hash of this thread.
        pub static SALT: Cell<u64> = const { Cell::new(0) };
    }
    pub fn block_hash(n: u32, now: u32) -> [u8; 32] {
        if n >= now || n + 256 < now {
            return [0; 32];
        }
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"block");
        h.update(SALT.with(|s| s.get()).to_le_bytes());
        h.update(n.to_le_bytes());
        h.finalize().into()
    }
}

#[ink::contract(env = crate::CapaEnv)]
mod marketplace {
    use crate::tree::{self, Block, Blocks};
    use crate::ChainSha;
    use capacloud_types::{
        econ, hash, keys, merkle, sample, AccountEventKind, Accounting, Amount, Error, Hash32, Job, JobCore,
        JobEventKind, JobInput, JobState, MarketEventKind, MarketState, Offer, OfferInput, Params, Provider,
        RefundReason, Reputation, Reveal, SlashReason, Verifier, VerifierEventKind, BPS, MAX_DRAWN, MAX_DRAWS,
        MAX_OFFER_INFO_LEN, MAX_PROVIDERS, MAX_REOPENS, MAX_TASKS, MAX_URI_LEN, MIN_WINDOW_BLOCKS,
        SNIPE_GUARD_BLOCKS,
    };
    use ink::storage::traits::ManualKey;
    use ink::prelude::vec::Vec;
    use ink::storage::Mapping;

    /// Result type of every fallible message.
    pub type Result<T> = core::result::Result<T, Error>;

    /// Attempts per draw before a drawn slot that cannot serve (no free stake for the
    /// bond, or left) makes the draw give up.
    const DRAW_TRIES: u32 = 4;

    /// Storage: one root value and the mappings, each under the key `capacloud_types::keys`
    /// names, so clients read any entry directly (pallet-revive's storage runtime API).
    #[ink(storage)]
    pub struct Marketplace {
        state: MarketState,
        providers: Mapping<Address, Provider, ManualKey<{ keys::PROVIDERS }>>,
        slot_owner: Mapping<u32, Address, ManualKey<{ keys::SLOT_OWNER }>>,
        /// Released slots: (slot, epoch released), reused two epochs later at the earliest.
        free_slots: Mapping<u32, (u32, u32), ManualKey<{ keys::FREE_SLOTS }>>,
        tree: Mapping<u32, Block, ManualKey<{ keys::TREE }>>,
        offers: Mapping<u64, Offer, ManualKey<{ keys::OFFERS }>>,
        jobs: Mapping<u64, JobCore, ManualKey<{ keys::JOBS }>>,
        inputs: Mapping<u64, JobInput, ManualKey<{ keys::INPUTS }>>,
        /// Verifier of (job, round).
        verifiers: Mapping<(u64, u8), Verifier, ManualKey<{ keys::VERIFIERS }>>,
        /// Everyone drawn for a job since its commitment (excluded from its later draws).
        drawn: Mapping<u64, [Address; MAX_DRAWN], ManualKey<{ keys::DRAWN }>>,
        withdrawable: Mapping<Address, Amount, ManualKey<{ keys::WITHDRAWABLE }>>,
        price_index: Mapping<u8, Amount, ManualKey<{ keys::PRICE_INDEX }>>,
    }

    // ---------------------------------------------------------------- events

    /// Something happened to a job (see `capacloud_types::events`).
    #[ink(event)]
    pub struct JobEvent {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub renter: Address,
        #[ink(topic)]
        pub provider: Address,
        pub kind: JobEventKind,
    }

    /// Something happened to a verifier of a job.
    #[ink(event)]
    pub struct VerifierEvent {
        #[ink(topic)]
        pub job_id: u64,
        #[ink(topic)]
        pub provider: Address,
        #[ink(topic)]
        pub verifier: Address,
        pub kind: VerifierEventKind,
    }

    /// Something happened to an account's stake, offers or balance.
    #[ink(event)]
    pub struct AccountEvent {
        #[ink(topic)]
        pub account: Address,
        pub kind: AccountEventKind,
    }

    /// Something happened to the market as a whole.
    #[ink(event)]
    pub struct MarketEvent {
        pub kind: MarketEventKind,
    }

    /// The tree's blocks as the contract stores them.
    struct TreeStore<'a, K: ink::storage::traits::StorageKey>(&'a Mapping<u32, Block, K>);

    impl<K: ink::storage::traits::StorageKey> Blocks for TreeStore<'_, K> {
        fn block(&self, id: u32) -> Block {
            self.0.get(id).unwrap_or_default()
        }
    }

    /// A verifier draw's outcome.
    struct Pick {
        account: Address,
        provider: Provider,
        bond: Amount,
    }

    impl Marketplace {
        // ------------------------------------------------------------ constructor

        /// Creates the marketplace with the caller as admin and `params` in force.
        /// `epoch_blocks` is the stake-snapshot epoch (it bounds how long a job may take, see
        /// `econ::max_compute_blocks`); `params_delay` the blocks before a parameter change
        /// applies to new jobs.
        ///
        /// # Errors
        /// [`Error::ParamOutOfBounds`] if a field of `params` is outside its bound or the
        /// epoch is too short for any compute window under them (`econ::max_compute_blocks`
        /// below [`MIN_WINDOW_BLOCKS`]).
        #[ink(constructor)]
        pub fn new(epoch_blocks: u32, params_delay: u32, params: Params) -> Result<Self> {
            if !params.is_valid() || econ::max_compute_blocks(epoch_blocks, params.reveal_window) < MIN_WINDOW_BLOCKS {
                return Err(Error::ParamOutOfBounds);
            }
            Ok(Self {
                state: MarketState {
                    version: capacloud_types::INTERFACE_VERSION,
                    admin: Self::env().caller(),
                    pending_admin: None,
                    params,
                    pending_params: None,
                    totals: Accounting::default(),
                    epoch_blocks: epoch_blocks.max(1),
                    params_delay,
                    job_count: 0,
                    offer_count: 0,
                    slots_used: 0,
                    free_slots: 0,
                    providers: 0,
                },
                providers: Mapping::default(),
                slot_owner: Mapping::default(),
                free_slots: Mapping::default(),
                tree: Mapping::default(),
                offers: Mapping::default(),
                jobs: Mapping::default(),
                inputs: Mapping::default(),
                verifiers: Mapping::default(),
                drawn: Mapping::default(),
                withdrawable: Mapping::default(),
                price_index: Mapping::default(),
            })
        }

        // ------------------------------------------------------------ admin

        /// Schedules new protocol parameters for jobs created `params_delay` blocks from
        /// now on (running jobs keep their terms). Replaces a change not yet in force.
        ///
        /// # Errors
        /// [`Error::NotAdmin`]; [`Error::ParamOutOfBounds`] if a field is outside its bound
        /// or the reveal window leaves no room for a compute window in an epoch.
        #[ink(message)]
        pub fn set_params(&mut self, params: Params) -> Result<()> {
            self.only_admin()?;
            if !params.is_valid() || econ::max_compute_blocks(self.state.epoch_blocks, params.reveal_window) < MIN_WINDOW_BLOCKS {
                return Err(Error::ParamOutOfBounds);
            }
            self.state.params = self.current_params();
            let effective_at = self.now().saturating_add(self.state.params_delay);
            self.state.pending_params = Some((params, effective_at));
            self.market_event(MarketEventKind::ParamsScheduled { params, effective_at });
            Ok(())
        }

        /// Hands the admin role over in two steps: the admin proposes `new`, then `new`
        /// calls this with its own address to accept.
        ///
        /// # Errors
        /// [`Error::NotAdmin`] if the caller is neither the admin nor the proposed admin
        /// accepting itself.
        #[ink(message)]
        pub fn set_admin(&mut self, new: Address) -> Result<()> {
            let caller = self.env().caller();
            if caller == self.state.admin {
                self.state.pending_admin = Some(new);
                self.market_event(MarketEventKind::AdminProposed { admin: caller, proposed: new });
            } else if self.state.pending_admin == Some(caller) && new == caller {
                let old = core::mem::replace(&mut self.state.admin, caller);
                self.state.pending_admin = None;
                self.market_event(MarketEventKind::AdminChanged { old, new });
            } else {
                return Err(Error::NotAdmin);
            }
            Ok(())
        }

        /// Moves `amount` of the treasury to the admin's withdrawable balance. The admin can
        /// reach nothing else: not escrows, not stakes.
        ///
        /// # Errors
        /// [`Error::NotAdmin`]; [`Error::NothingToWithdraw`] for zero or more than the treasury.
        #[ink(message)]
        pub fn claim_treasury(&mut self, amount: Amount) -> Result<()> {
            let admin = self.only_admin()?;
            if amount == 0 || amount > self.state.totals.treasury {
                return Err(Error::NothingToWithdraw);
            }
            self.state.totals.treasury -= amount;
            self.credit(admin, amount);
            self.market_event(MarketEventKind::TreasuryClaimed { admin, amount });
            Ok(())
        }

        // ------------------------------------------------------------ providers

        /// Adds the transferred value to the caller's stake, registering it (taking a slot)
        /// if it has none. Stake counts in verifier draws from the next epoch on.
        ///
        /// # Errors
        /// [`Error::WrongPayment`] (zero), [`Error::StakeTooLow`] (registration below
        /// `min_stake`), [`Error::RegistryFull`], [`Error::ValueTooLarge`], [`Error::Overflow`].
        #[ink(message, payable)]
        pub fn stake(&mut self) -> Result<()> {
            let caller = self.env().caller();
            let value = self.transferred()?;
            if value == 0 {
                return Err(Error::WrongPayment);
            }
            let mut p = self.providers.get(caller).unwrap_or_default();
            p.stake = p.stake.checked_add(value).ok_or(Error::Overflow)?;
            if p.slot == 0 {
                if p.stake < self.current_params().min_stake {
                    return Err(Error::StakeTooLow);
                }
                p.slot = self.take_slot()?;
                self.slot_owner.insert(p.slot, &caller);
                self.state.providers += 1;
            }
            self.state.totals.stakes = self.state.totals.stakes.checked_add(value).ok_or(Error::Overflow)?;
            self.save_provider(caller, &p, true);
            self.account_event(caller, AccountEventKind::Staked { added: value, stake: p.stake, slot: p.slot });
            Ok(())
        }

        /// Starts unbonding `amount` of free stake: it stops counting at once and becomes
        /// withdrawable after the cooldown (a later request adds to it and restarts it).
        ///
        /// # Errors
        /// [`Error::NotProvider`], [`Error::InsufficientFreeStake`] (zero or above free stake).
        #[ink(message)]
        pub fn unstake(&mut self, amount: Amount) -> Result<()> {
            let caller = self.env().caller();
            let mut p = self.registered(caller)?;
            if amount == 0 || amount > p.free() {
                return Err(Error::InsufficientFreeStake);
            }
            p.stake -= amount;
            p.unbonding += amount;
            p.unbond_at = self.now().saturating_add(self.current_params().unstake_cooldown);
            self.save_provider(caller, &p, true);
            self.account_event(caller, AccountEventKind::UnstakeRequested { amount, unbond_at: p.unbond_at });
            Ok(())
        }

        /// Moves unbonded stake to the caller's withdrawable balance once the cooldown passed;
        /// a provider left with nothing staked or locked gives its slot back.
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
            let amount = core::mem::take(&mut p.unbonding);
            self.state.totals.stakes -= amount;
            let slot_released = p.slot != 0 && p.stake == 0 && p.locked == 0;
            if slot_released {
                let n = self.state.free_slots;
                self.free_slots.insert(n, &(p.slot, self.epoch()));
                self.state.free_slots += 1;
                self.slot_owner.insert(p.slot, &Address::zero());
                self.state.providers -= 1;
                p.slot = 0;
            }
            self.providers.insert(caller, &p);
            self.credit(caller, amount);
            self.account_event(caller, AccountEventKind::Unstaked { amount, slot_released });
            Ok(())
        }

        // ------------------------------------------------------------ offers

        /// Lists an offer (`offer_id` `None`) or replaces one of the caller's; returns its id.
        /// Jobs already hired keep the price they were created with.
        ///
        /// # Errors
        /// [`Error::NotProvider`], [`Error::BadText`] (description empty or too long),
        /// [`Error::BadOffer`] (zero price, units or VRAM), [`Error::OfferNotFound`],
        /// [`Error::NotOfferOwner`].
        #[ink(message)]
        pub fn list_offer(&mut self, offer_id: Option<u64>, input: OfferInput) -> Result<u64> {
            let caller = self.env().caller();
            self.registered(caller)?;
            if input.info.is_empty() || input.info.len() > MAX_OFFER_INFO_LEN {
                return Err(Error::BadText);
            }
            if input.price_per_unit == 0 || input.max_units == 0 || input.vram_mib == 0 {
                return Err(Error::BadOffer);
            }
            let id = match offer_id {
                Some(id) => {
                    self.own_offer(id, caller)?;
                    id
                }
                None => {
                    self.state.offer_count += 1;
                    self.state.offer_count - 1
                }
            };
            let gpu_class = econ::gpu_class(input.benchmark_score);
            self.offers.insert(id, &Offer { provider: caller, gpu_class, active: true, input: input.clone() });
            self.account_event(caller, AccountEventKind::OfferListed { offer_id: id, gpu_class, input, updated: offer_id.is_some() });
            Ok(id)
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
            self.account_event(caller, AccountEventKind::OfferRemoved { offer_id });
            Ok(())
        }

        // ------------------------------------------------------------ jobs: creation and matching

        /// Creates a job of `input.tasks` tasks; the transferred value must equal
        /// `econ::escrow_for` under the current parameters. With `offer_id` the job waits for
        /// that offer's provider at the offer's current price (direct hire); without, it
        /// takes bids for `bid_window` blocks.
        ///
        /// # Errors
        /// [`Error::BadTaskCount`], [`Error::BadJob`], [`Error::BadText`],
        /// [`Error::BadComputeWindow`], [`Error::OfferNotFound`], [`Error::SelfDealing`],
        /// [`Error::RequirementsNotMet`], [`Error::JobTooLarge`], [`Error::PriceAboveMax`],
        /// [`Error::WrongPayment`], [`Error::ValueTooLarge`], [`Error::Overflow`].
        #[ink(message, payable)]
        pub fn create_job(&mut self, input: JobInput, seed_commitment: Hash32) -> Result<u64> {
            let caller = self.env().caller();
            let value = self.transferred()?;
            let params = self.current_params();
            if input.tasks == 0 || input.tasks > MAX_TASKS {
                return Err(Error::BadTaskCount);
            }
            if input.units_per_task == 0 || input.max_price_per_unit == 0 || input.check_rate_bps > BPS {
                return Err(Error::BadJob);
            }
            if input.uri.is_empty() || input.uri.len() > MAX_URI_LEN {
                return Err(Error::BadText);
            }
            let max_compute = econ::max_compute_blocks(self.state.epoch_blocks, params.reveal_window);
            if input.compute_blocks < MIN_WINDOW_BLOCKS || input.compute_blocks > max_compute {
                return Err(Error::BadComputeWindow);
            }
            let now = self.now();
            let mut core = JobCore {
                renter: caller,
                provider: Address::zero(),
                state: JobState::Open,
                phase_deadline: now.saturating_add(params.bid_window),
                opened_at: now,
                tasks: input.tasks,
                units_per_task: input.units_per_task,
                max_price_per_unit: input.max_price_per_unit,
                requirements: input.requirements,
                compute_blocks: input.compute_blocks,
                check_rate_bps: input.check_rate_bps,
                pay_if_unverified: input.pay_if_unverified,
                offer_id: input.offer_id,
                gpu_class: 0,
                price_per_unit: 0,
                bid_score: 0,
                escrow: 0,
                lock: 0,
                seed_commitment,
                commitment: [0; 32],
                commit_block: 0,
                unverified: false,
                reported: false,
                seed_revealed: false,
                check_seed: [0; 32],
                sampled: 0,
                batch_root: [0; 32],
                provider_answer: [0; 32],
                answered_at: 0,
                round: 0,
                draws: 0,
                draw_at: None,
                unavailable_reports: 0,
                reopens: 0,
                terms: params.terms(),
            };
            if let Some(id) = input.offer_id {
                let offer = self.offers.get(id).filter(|o| o.active).ok_or(Error::OfferNotFound)?;
                if offer.provider == caller {
                    return Err(Error::SelfDealing);
                }
                Self::qualifies(&core, &offer)?;
                if offer.input.price_per_unit > input.max_price_per_unit {
                    return Err(Error::PriceAboveMax);
                }
                core.provider = offer.provider;
                core.price_per_unit = offer.input.price_per_unit;
                core.state = JobState::AwaitingAccept;
                core.phase_deadline = now.saturating_add(params.accept_window);
            }
            let escrow = econ::escrow_for(input.tasks, input.units_per_task, input.max_price_per_unit, params.verifier_fee_bps)
                .ok_or(Error::Overflow)?;
            if value != escrow {
                return Err(Error::WrongPayment);
            }
            core.escrow = escrow;
            self.state.totals.escrow = self.state.totals.escrow.checked_add(escrow).ok_or(Error::Overflow)?;
            let id = self.state.job_count;
            self.state.job_count += 1;
            self.inputs.insert(id, &input);
            let phase_deadline = core.phase_deadline;
            self.job_event(id, &core, JobEventKind::Created { input, escrow, phase_deadline });
            self.jobs.insert(id, &core);
            Ok(id)
        }

        /// Bids `price_per_unit` on an open job with one of the caller's offers. The best bid
        /// (lowest price; ties: higher reputation, then earlier) holds its stake lock; an
        /// outbid provider's lock is released. A bid in the auction's last
        /// `SNIPE_GUARD_BLOCKS` extends it by that much (until the window has doubled).
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::DeadlinePassed`],
        /// [`Error::PriceAboveMax`], [`Error::SelfDealing`], [`Error::OfferNotFound`],
        /// [`Error::NotOfferOwner`], [`Error::RequirementsNotMet`], [`Error::JobTooLarge`],
        /// [`Error::NotProvider`], [`Error::BidNotBetter`], [`Error::InsufficientFreeStake`].
        #[ink(message)]
        pub fn bid(&mut self, job_id: u64, offer_id: u64, price_per_unit: Amount) -> Result<()> {
            let caller = self.env().caller();
            let mut core = self.job_in(job_id, JobState::Open)?;
            let now = self.before_deadline(&core)?;
            if price_per_unit == 0 || price_per_unit > core.max_price_per_unit {
                return Err(Error::PriceAboveMax);
            }
            if caller == core.renter {
                return Err(Error::SelfDealing);
            }
            let offer = self.own_offer(offer_id, caller)?;
            Self::qualifies(&core, &offer)?;
            let mut p = self.registered(caller)?;
            let score = p.reputation.score();
            let best = core.provider;
            if core.has_provider()
                && !(price_per_unit < core.price_per_unit || (price_per_unit == core.price_per_unit && score > core.bid_score))
            {
                return Err(Error::BidNotBetter);
            }
            let previous_lock = core.lock;
            core.price_per_unit = price_per_unit;
            let lock = econ::lock_for(core.value(), core.check_rate_bps, core.terms.verifier_fee_bps, core.terms.min_stake);
            let own_previous = if best == caller { previous_lock } else { 0 };
            if p.free() + own_previous < lock {
                return Err(Error::InsufficientFreeStake);
            }
            if core.has_provider() {
                self.unlock(best, previous_lock);
                p = self.registered(caller)?;
            }
            p.locked += lock;
            self.save_provider(caller, &p, false);
            core.provider = caller;
            core.offer_id = Some(offer_id);
            core.gpu_class = offer.gpu_class;
            core.bid_score = score;
            core.lock = lock;
            let limit = core.opened_at.saturating_add(core.terms.bid_window.saturating_mul(2));
            if now.saturating_add(SNIPE_GUARD_BLOCKS) > core.phase_deadline && core.phase_deadline < limit {
                core.phase_deadline = now.saturating_add(SNIPE_GUARD_BLOCKS).min(limit);
            }
            let phase_deadline = core.phase_deadline;
            self.job_event_to(job_id, &core, caller, JobEventKind::BidPlaced { offer_id, price_per_unit, phase_deadline });
            self.jobs.insert(job_id, &core);
            Ok(())
        }

        /// The renter re-opens an auction whose window passed without a bid.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::NotAuthorized`], [`Error::WrongState`] (not open
        /// or it has a bid), [`Error::DeadlineNotPassed`].
        #[ink(message)]
        pub fn reopen_job(&mut self, job_id: u64) -> Result<()> {
            let mut core = self.job_in(job_id, JobState::Open)?;
            if self.env().caller() != core.renter {
                return Err(Error::NotAuthorized);
            }
            if core.has_provider() {
                return Err(Error::WrongState);
            }
            let now = self.after_deadline(&core)?;
            self.reopen(job_id, &mut core, now);
            self.jobs.insert(job_id, &core);
            Ok(())
        }

        /// The hired offer's provider accepts a direct hire, at the price the offer had when
        /// the job was created.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::DeadlinePassed`],
        /// [`Error::OfferNotFound`], [`Error::NotOfferOwner`], [`Error::RequirementsNotMet`],
        /// [`Error::JobTooLarge`], [`Error::NotProvider`], [`Error::InsufficientFreeStake`].
        #[ink(message)]
        pub fn accept_job(&mut self, job_id: u64) -> Result<()> {
            let caller = self.env().caller();
            let mut core = self.job_in(job_id, JobState::AwaitingAccept)?;
            self.before_deadline(&core)?;
            self.accept(job_id, &mut core, caller)?;
            self.jobs.insert(job_id, &core);
            Ok(())
        }

        // ------------------------------------------------------------ execution and verification

        /// Reports on a job's inputs (and lets a verifier bow out):
        /// - the assigned provider, `available == false`: the inputs cannot be fetched. It
        ///   deposits one availability fee and a verifier is drawn to check (once per job);
        /// - the drawn availability verifier votes: unavailable ends the job (the renter pays
        ///   the provider and the verifier one fee each from its escrow); available pays the
        ///   provider's deposit to the verifier and gives the provider a fresh compute window;
        /// - a drawn check verifier, `available == false`, before committing: it is replaced
        ///   (neither paid nor slashed); if every verifier of the round reports so, the renter's
        ///   inputs are at fault and the provider is paid unverified.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::NotAuthorized`],
        /// [`Error::DeadlinePassed`], [`Error::AlreadyDone`], [`Error::InsufficientFreeStake`],
        /// [`Error::BadJob`] (a provider reporting inputs available).
        #[ink(message)]
        pub fn report(&mut self, job_id: u64, available: bool) -> Result<()> {
            let caller = self.env().caller();
            let mut core = self.load(job_id)?;
            let now = self.before_deadline(&core)?;
            match core.state {
                JobState::Assigned if caller == core.provider => {
                    if available {
                        return Err(Error::BadJob);
                    }
                    if core.reported {
                        return Err(Error::AlreadyDone);
                    }
                    let deposit = econ::availability_fee(core.task_value(), core.terms.verifier_fee_bps);
                    let mut p = self.registered(caller)?;
                    if p.free() < deposit {
                        return Err(Error::InsufficientFreeStake);
                    }
                    p.locked += deposit;
                    self.save_provider(caller, &p, false);
                    core.lock += deposit;
                    core.reported = true;
                    core.round = 0;
                    core.draws = 0;
                    core.commit_block = now;
                    self.drawn.insert(job_id, &[Address::zero(); MAX_DRAWN]);
                    self.goto(&mut core, JobState::InputCheck);
                    self.job_event(job_id, &core, JobEventKind::InputsReported { deposit });
                    self.schedule_draw(job_id, &mut core, now);
                }
                JobState::InputCheck => {
                    let v = self.current_verifier(job_id, &core, caller)?;
                    self.verifier_event(job_id, &core, caller, VerifierEventKind::Voted { available });
                    let fee = econ::availability_fee(core.task_value(), core.terms.verifier_fee_bps);
                    self.unlock(v.account, v.bond);
                    self.verifiers.insert((job_id, 0), &Verifier::default());
                    if available {
                        // The deposit pays the verifier who did the work of checking.
                        let deposit = fee.min(core.lock);
                        core.lock -= deposit;
                        let provider = core.provider;
                        let taken = self.charge(provider, deposit, deposit, Reputation::default());
                        self.credit(caller, taken);
                        self.job_event(job_id, &core, JobEventKind::ProviderSlashed {
                            amount: taken,
                            to_verifiers: taken,
                            to_treasury: 0,
                            reason: SlashReason::FalseUnavailability,
                        });
                        self.verifier_event(job_id, &core, caller, VerifierEventKind::Paid { fee: taken });
                        core.phase_deadline = now.saturating_add(core.compute_blocks);
                        self.goto(&mut core, JobState::Assigned);
                        let commit_deadline = core.phase_deadline;
                        self.job_event(job_id, &core, JobEventKind::InputsChecked { available, commit_deadline });
                    } else {
                        let provider = core.provider;
                        self.pay_from_escrow(&mut core, provider, fee);
                        self.pay_from_escrow(&mut core, caller, fee);
                        self.verifier_event(job_id, &core, caller, VerifierEventKind::Paid { fee });
                        let renter_refund = self.release_job(&mut core);
                        self.goto(&mut core, JobState::Unavailable);
                        self.job_event(job_id, &core, JobEventKind::InputsChecked { available, commit_deadline: 0 });
                        self.job_event(job_id, &core, JobEventKind::Unavailable { fee, renter_refund });
                    }
                }
                JobState::VerifierCommit if !available => {
                    let v = self.current_verifier(job_id, &core, caller)?;
                    if v.has_committed() {
                        return Err(Error::AlreadyDone);
                    }
                    self.unlock(v.account, v.bond);
                    self.verifiers.insert((job_id, core.slot()), &Verifier::default());
                    core.unavailable_reports += 1;
                    self.verifier_event(job_id, &core, caller, VerifierEventKind::ReportedUnavailable);
                    self.schedule_draw(job_id, &mut core, now);
                }
                _ => return Err(Error::WrongState),
            }
            self.jobs.insert(job_id, &core);
            Ok(())
        }

        /// Commits to a result: the assigned provider `sha256("P" ‖ job ‖ provider ‖
        /// batch_root ‖ salt)` before its deadline, or the drawn verifier `sha256("V" ‖ job ‖
        /// verifier ‖ answer ‖ salt)` before its own. The provider of a direct hire may commit
        /// instead of accepting (it ran the job before signing): the call accepts the job as
        /// [`Self::accept_job`] does and commits in one transaction (one block and one call's
        /// fee less).
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::NotAuthorized`],
        /// [`Error::DeadlinePassed`], [`Error::AlreadyDone`], [`Error::BadJob`] (zero); from a
        /// direct hire, [`Self::accept_job`]'s.
        #[ink(message)]
        pub fn commit(&mut self, job_id: u64, commitment: Hash32) -> Result<()> {
            let caller = self.env().caller();
            let mut core = self.load(job_id)?;
            if commitment == [0; 32] {
                return Err(Error::BadJob);
            }
            let now = self.before_deadline(&core)?;
            if core.state == JobState::AwaitingAccept {
                self.accept(job_id, &mut core, caller)?;
            }
            match core.state {
                JobState::Assigned if caller == core.provider => {
                    core.commitment = commitment;
                    core.commit_block = now;
                    core.phase_deadline = now.saturating_add(core.terms.reveal_window);
                    self.goto(&mut core, JobState::Committed);
                    self.job_event(job_id, &core, JobEventKind::Committed { commitment, reveal_deadline: core.phase_deadline });
                }
                JobState::VerifierCommit => {
                    let mut v = self.current_verifier(job_id, &core, caller)?;
                    if v.has_committed() {
                        return Err(Error::AlreadyDone);
                    }
                    v.commitment = commitment;
                    v.committed_at = now;
                    self.verifiers.insert((job_id, core.slot()), &v);
                    core.phase_deadline = now.saturating_add(core.terms.reveal_window);
                    self.goto(&mut core, JobState::Reveal);
                    self.verifier_event(job_id, &core, caller, VerifierEventKind::Committed { commitment });
                }
                _ => return Err(if core.state == JobState::Assigned { Error::NotAuthorized } else { Error::WrongState }),
            }
            self.jobs.insert(job_id, &core);
            Ok(())
        }

        /// The renter reveals its seed: `sha256(seed ‖ c_p)` samples the tasks to check. With
        /// at least one sampled the first verifier is drawn, by stake as it was when the
        /// epoch of the commitment began and the hash of the commitment's block.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::NotAuthorized`],
        /// [`Error::DeadlinePassed`], [`Error::SeedMismatch`].
        #[ink(message)]
        pub fn reveal_seed(&mut self, job_id: u64, seed: Hash32) -> Result<()> {
            let mut core = self.job_in(job_id, JobState::Committed)?;
            if self.env().caller() != core.renter {
                return Err(Error::NotAuthorized);
            }
            let now = self.before_deadline(&core)?;
            if now <= core.commit_block {
                // The draw needs the commitment's block sealed (its hash is the beacon).
                return Err(Error::DeadlineNotPassed);
            }
            if hash::seed_commitment::<ChainSha>(&seed) != core.seed_commitment {
                return Err(Error::SeedMismatch);
            }
            core.seed_revealed = true;
            let check_seed = sample::check_seed::<ChainSha>(&seed, &core.commitment);
            self.decide(job_id, &mut core, Some(seed), check_seed);
            self.jobs.insert(job_id, &core);
            Ok(())
        }

        /// Reveals what the caller committed to:
        /// - the provider its batch root, and for a checked job the sampled tasks' leaves with
        ///   one multiproof against the root;
        /// - the current verifier its answer, or the sampled tasks' roots behind it (required
        ///   when the answer equals one that was public before it committed).
        ///
        /// Once the answers a round needs are in, the job settles, goes to a dispute round,
        /// or slashes the side that lost.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`], [`Error::NotAuthorized`],
        /// [`Error::DeadlinePassed`], [`Error::AlreadyDone`], [`Error::CommitmentMismatch`],
        /// [`Error::BadProof`], [`Error::RootsRequired`].
        #[ink(message)]
        pub fn reveal(&mut self, job_id: u64, salt: Hash32, reveal: Reveal) -> Result<()> {
            let caller = self.env().caller();
            let mut core = self.job_in(job_id, JobState::Reveal)?;
            let now = self.before_deadline(&core)?;
            let revealed = match reveal {
                Reveal::Provider { batch_root, leaves, proof } if caller == core.provider => {
                    if core.batch_root != [0; 32] {
                        return Err(Error::AlreadyDone);
                    }
                    if hash::provider_commitment::<ChainSha>(job_id, caller, &batch_root, &salt) != core.commitment {
                        return Err(Error::CommitmentMismatch);
                    }
                    let mut answer = [0; 32];
                    if core.checked() {
                        let indices = self.sample_of(&core);
                        if !merkle::verify::<ChainSha>(core.tasks, &indices, &leaves, &proof, &batch_root) {
                            return Err(Error::BadProof);
                        }
                        answer = sample::answer::<ChainSha>(job_id, &leaves);
                        core.provider_answer = answer;
                        core.answered_at = now;
                    } else if !leaves.is_empty() || !proof.is_empty() {
                        return Err(Error::BadProof);
                    }
                    core.batch_root = batch_root;
                    self.job_event(job_id, &core, JobEventKind::Revealed { batch_root, answer });
                    None
                }
                Reveal::Verifier { answer, roots } => {
                    let mut v = self.current_verifier(job_id, &core, caller)?;
                    if v.has_revealed() {
                        return Err(Error::AlreadyDone);
                    }
                    let with_roots = !roots.is_empty();
                    let answer = if with_roots {
                        let indices = self.sample_of(&core);
                        if indices.len() != roots.len() {
                            return Err(Error::BadProof);
                        }
                        let leaves: Vec<Hash32> =
                            indices.iter().zip(&roots).map(|(i, r)| merkle::task_leaf::<ChainSha>(*i, r)).collect();
                        sample::answer::<ChainSha>(job_id, &leaves)
                    } else {
                        answer
                    };
                    if answer == [0; 32]
                        || hash::verifier_commitment::<ChainSha>(job_id, caller, &answer, &salt) != v.commitment
                    {
                        return Err(Error::CommitmentMismatch);
                    }
                    if !with_roots && self.was_public(job_id, &core, &answer, v.committed_at) {
                        return Err(Error::RootsRequired);
                    }
                    v.answer = answer;
                    v.revealed_at = now;
                    self.verifiers.insert((job_id, core.slot()), &v);
                    self.verifier_event(job_id, &core, caller, VerifierEventKind::Revealed { answer, with_roots });
                    Some(v)
                }
                _ => return Err(Error::NotAuthorized),
            };
            self.resolve(job_id, &mut core, revealed.as_ref());
            self.jobs.insert(job_id, &core);
            Ok(())
        }

        /// Moves a job on (anyone may call): makes a due verifier draw once its beacon block
        /// is sealed; after a phase's deadline, closes an auction or refunds it, penalises a
        /// provider that did not commit (re-opening the job once), checks a job whose renter
        /// stayed silent, slashes and replaces a silent verifier, slashes a provider that did
        /// not reveal.
        ///
        /// # Errors
        /// [`Error::JobNotFound`], [`Error::WrongState`] (ended), [`Error::DeadlineNotPassed`].
        #[ink(message)]
        pub fn cleanup(&mut self, job_id: u64) -> Result<()> {
            let mut core = self.load(job_id)?;
            if core.state.is_terminal() {
                return Err(Error::WrongState);
            }
            if core.draw_at.is_some() {
                self.materialize_if_due(job_id, &mut core)?;
                self.jobs.insert(job_id, &core);
                return Ok(());
            }
            let now = self.after_deadline(&core)?;
            match core.state {
                JobState::Open if core.has_provider() => self.assign(job_id, &mut core),
                JobState::Open => self.refund(job_id, &mut core, RefundReason::NoBids),
                JobState::AwaitingAccept => self.refund(job_id, &mut core, RefundReason::NotAccepted),
                JobState::Assigned => {
                    let provider = core.provider;
                    let penalty = econ::timeout_penalty(core.lock);
                    let lock = core.lock;
                    core.lock = 0;
                    let value = core.value();
                    let rep = Reputation { timeouts: 1, value_failed: value.saturating_mul(2), ..Default::default() };
                    let taken = self.charge(provider, lock, penalty, rep);
                    self.state.totals.treasury += taken;
                    self.job_event(job_id, &core, JobEventKind::ProviderSlashed {
                        amount: taken,
                        to_verifiers: 0,
                        to_treasury: taken,
                        reason: SlashReason::CommitTimeout,
                    });
                    if core.reopens < MAX_REOPENS {
                        core.reopens += 1;
                        core.provider = Address::zero();
                        core.offer_id = None;
                        core.price_per_unit = 0;
                        core.reported = false;
                        self.goto(&mut core, JobState::Open);
                        self.reopen(job_id, &mut core, now);
                    } else {
                        self.refund(job_id, &mut core, RefundReason::NoCommitment);
                    }
                }
                JobState::Committed => {
                    // The renter stayed silent: the job is checked (at least one task), with a
                    // seed it cannot steer.
                    let beacon = self.block_hash(core.commit_block);
                    let check_seed = sample::fallback_seed::<ChainSha>(&core.commitment, job_id, &beacon);
                    self.decide(job_id, &mut core, None, check_seed);
                }
                JobState::InputCheck | JobState::VerifierCommit => {
                    self.slash_silent_verifier(job_id, &mut core);
                    self.replace_verifier(job_id, &mut core);
                }
                JobState::Reveal => {
                    self.slash_silent_verifier(job_id, &mut core);
                    if core.batch_root == [0; 32] {
                        self.provider_fault(job_id, &mut core, SlashReason::ProviderSilent);
                    } else {
                        self.replace_verifier(job_id, &mut core);
                    }
                }
                _ => return Err(Error::WrongState),
            }
            self.jobs.insert(job_id, &core);
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
            self.state.totals.withdrawable -= amount;
            self.env().transfer(caller, ink::primitives::U256::from(amount)).map_err(|_| Error::TransferFailed)?;
            self.account_event(caller, AccountEventKind::Withdrawn { amount });
            Ok(amount)
        }

        // ------------------------------------------------------------ private: basics

        fn now(&self) -> BlockNumber {
            self.env().block_number()
        }

        fn epoch(&self) -> u32 {
            econ::epoch(self.now(), self.state.epoch_blocks)
        }

        /// The parameters new jobs get now (a scheduled change once in force).
        fn current_params(&self) -> Params {
            self.state.params_at(self.now())
        }

        fn only_admin(&self) -> Result<Address> {
            let caller = self.env().caller();
            if caller != self.state.admin {
                return Err(Error::NotAdmin);
            }
            Ok(caller)
        }

        fn transferred(&self) -> Result<Amount> {
            self.env().transferred_value().try_into().map_err(|_| Error::ValueTooLarge)
        }

        /// The hash of block `n` (zero outside the last 256 blocks).
        fn block_hash(&self, n: BlockNumber) -> Hash32 {
            let now = self.now();
            let h = Self::raw_block_hash(n, now);
            if h != [0; 32] {
                return h;
            }
            // The beacon block is too old (nobody moved the job for 256 blocks): fall back
            // to the newest sealed block.
            Self::raw_block_hash(now.saturating_sub(1), now)
        }

        #[cfg(not(feature = "std"))]
        fn raw_block_hash(n: BlockNumber, _now: BlockNumber) -> Hash32 {
            use pallet_revive_uapi::HostFn;
            let mut num = [0u8; 32];
            num[..4].copy_from_slice(&n.to_le_bytes());
            let mut out = [0u8; 32];
            pallet_revive_uapi::HostFnImpl::block_hash(&num, &mut out);
            out
        }

        #[cfg(feature = "std")]
        fn raw_block_hash(n: BlockNumber, now: BlockNumber) -> Hash32 {
            crate::test_chain::block_hash(n, now)
        }

        fn before_deadline(&self, core: &JobCore) -> Result<BlockNumber> {
            let now = self.now();
            if now > core.phase_deadline {
                return Err(Error::DeadlinePassed);
            }
            Ok(now)
        }

        fn after_deadline(&self, core: &JobCore) -> Result<BlockNumber> {
            let now = self.now();
            if now <= core.phase_deadline {
                return Err(Error::DeadlineNotPassed);
            }
            Ok(now)
        }

        fn load(&self, job_id: u64) -> Result<JobCore> {
            self.jobs.get(job_id).ok_or(Error::JobNotFound)
        }

        fn job_in(&self, job_id: u64, state: JobState) -> Result<JobCore> {
            let core = self.load(job_id)?;
            if core.state != state {
                return Err(Error::WrongState);
            }
            Ok(core)
        }

        /// Moves a job to `to`, which the lifecycle must allow.
        fn goto(&self, core: &mut JobCore, to: JobState) {
            debug_assert!(core.state.can_move_to(to), "illegal move {:?} -> {:?}", core.state, to);
            core.state = to;
        }

        fn registered(&self, account: Address) -> Result<Provider> {
            self.providers.get(account).filter(|p| p.slot != 0).ok_or(Error::NotProvider)
        }

        fn own_offer(&self, offer_id: u64, caller: Address) -> Result<Offer> {
            let o = self.offers.get(offer_id).filter(|o| o.active).ok_or(Error::OfferNotFound)?;
            if o.provider != caller {
                return Err(Error::NotOfferOwner);
            }
            Ok(o)
        }

        fn qualifies(core: &JobCore, offer: &Offer) -> Result<()> {
            let r = &core.requirements;
            if offer.input.vram_mib < r.min_vram_mib
                || offer.input.benchmark_score < r.min_benchmark_score
                || r.gpu_class.is_some_and(|c| c != offer.gpu_class)
            {
                return Err(Error::RequirementsNotMet);
            }
            if u64::from(core.tasks).saturating_mul(core.units_per_task) > offer.input.max_units {
                return Err(Error::JobTooLarge);
            }
            Ok(())
        }

        // ------------------------------------------------------------ private: money

        fn credit(&mut self, account: Address, amount: Amount) {
            if amount == 0 {
                return;
            }
            let w = self.withdrawable.get(account).unwrap_or(0);
            self.withdrawable.insert(account, &(w + amount));
            self.state.totals.withdrawable += amount;
        }

        /// Pays `amount` from the job's escrow to `account`.
        fn pay_from_escrow(&mut self, core: &mut JobCore, account: Address, amount: Amount) {
            let amount = amount.min(core.escrow);
            core.escrow -= amount;
            self.state.totals.escrow -= amount;
            self.credit(account, amount);
        }

        /// Returns what is left of the escrow to the renter and releases the provider's lock.
        fn release_job(&mut self, core: &mut JobCore) -> Amount {
            if core.lock > 0 {
                let (provider, lock) = (core.provider, core.lock);
                self.unlock(provider, lock);
                core.lock = 0;
            }
            let rest = core.escrow;
            let renter = core.renter;
            self.pay_from_escrow(core, renter, rest);
            rest
        }

        /// Saves a provider; `weigh` when its stake changed (its draw weight follows).
        fn save_provider(&mut self, account: Address, p: &Provider, weigh: bool) {
            self.providers.insert(account, p);
            if weigh && p.slot != 0 {
                let epoch = self.epoch();
                let store = TreeStore(&self.tree);
                let mut writes: [(u32, Option<Block>); 4] = Default::default();
                let mut n = 0;
                tree::set_weight(&store, p.slot - 1, econ::weight(p.stake), epoch, |id, b| {
                    writes[n] = (id, Some(*b));
                    n += 1;
                });
                for (id, b) in writes.iter().take(n) {
                    if let Some(b) = b {
                        self.tree.insert(*id, b);
                    }
                }
            }
        }

        fn unlock(&mut self, account: Address, amount: Amount) {
            if amount == 0 {
                return;
            }
            if let Some(mut p) = self.providers.get(account) {
                p.locked = p.locked.saturating_sub(amount);
                self.save_provider(account, &p, false);
            }
        }

        /// Settles an account's part in a job in one read and one write of its record (each
        /// storage access costs the call ~10 KB of proof): releases `unlock` of its locked
        /// stake, takes up to `take` of its stake out of the stakes total (for the caller to
        /// pay out) and adds `rep` to its reputation. Returns what was taken.
        fn charge(&mut self, account: Address, unlock: Amount, take: Amount, rep: Reputation) -> Amount {
            let Some(mut p) = self.providers.get(account) else { return 0 };
            p.locked = p.locked.saturating_sub(unlock);
            let taken = take.min(p.stake);
            p.stake -= taken;
            p.locked = p.locked.min(p.stake);
            self.state.totals.stakes -= taken;
            p.reputation.add(&rep);
            self.save_provider(account, &p, taken > 0);
            taken
        }

        // ------------------------------------------------------------ private: lifecycle

        fn reopen(&mut self, job_id: u64, core: &mut JobCore, now: BlockNumber) {
            core.opened_at = now;
            core.phase_deadline = now.saturating_add(core.terms.bid_window);
            self.job_event(job_id, core, JobEventKind::Reopened { phase_deadline: core.phase_deadline });
        }

        /// Gives the job to the provider its core names (the best bid, or the hired offer's
        /// provider), at the core's price and lock.
        fn assign(&mut self, job_id: u64, core: &mut JobCore) {
            core.phase_deadline = self.now().saturating_add(core.compute_blocks);
            self.goto(core, JobState::Assigned);
            self.job_event(job_id, core, JobEventKind::Assigned {
                offer_id: core.offer_id.unwrap_or_default(),
                price_per_unit: core.price_per_unit,
                lock: core.lock,
                gpu_class: core.gpu_class,
                commit_deadline: core.phase_deadline,
            });
        }

        /// `caller` accepts the direct hire `core` (in `AwaitingAccept`, before its deadline):
        /// locks its stake and assigns the job to it.
        fn accept(&mut self, job_id: u64, core: &mut JobCore, caller: Address) -> Result<()> {
            let offer_id = core.offer_id.ok_or(Error::WrongState)?;
            let offer = self.own_offer(offer_id, caller)?;
            Self::qualifies(core, &offer)?;
            let lock = econ::lock_for(core.value(), core.check_rate_bps, core.terms.verifier_fee_bps, core.terms.min_stake);
            let mut p = self.registered(caller)?;
            if p.free() < lock {
                return Err(Error::InsufficientFreeStake);
            }
            p.locked += lock;
            self.save_provider(caller, &p, false);
            core.lock = lock;
            core.gpu_class = offer.gpu_class;
            self.assign(job_id, core);
            Ok(())
        }

        /// The sampled task indices of a decided job.
        fn sample_of(&self, core: &JobCore) -> Vec<u32> {
            sample::sampled::<ChainSha>(&core.check_seed, core.tasks, core.check_rate_bps, !core.seed_revealed)
        }

        /// Records the check decision; a checked job draws its first verifier at once (the
        /// commitment's block is sealed), an unchecked one waits for the provider's reveal.
        fn decide(&mut self, job_id: u64, core: &mut JobCore, seed: Option<Hash32>, check_seed: Hash32) {
            core.check_seed = check_seed;
            let sampled = self.sample_of(core).len() as u32;
            core.sampled = sampled;
            self.job_event(job_id, core, JobEventKind::SeedRevealed { seed, check_seed, tasks: core.tasks, sampled });
            if core.checked() {
                core.round = 1;
                core.draws = 0;
                core.unavailable_reports = 0;
                core.draw_at = Some(core.commit_block);
                self.goto(core, JobState::VerifierCommit);
                self.draw_from(job_id, core, Some([Address::zero(); MAX_DRAWN]));
            } else {
                core.phase_deadline = self.now().saturating_add(core.terms.reveal_window);
                self.goto(core, JobState::Reveal);
            }
        }

        /// Makes a due draw if its beacon block is sealed.
        fn materialize_if_due(&mut self, job_id: u64, core: &mut JobCore) -> Result<()> {
            if let Some(b) = core.draw_at {
                if b >= self.now() {
                    return Err(Error::DeadlineNotPassed);
                }
                self.draw(job_id, core);
            }
            Ok(())
        }

        /// Makes the next draw of the current round due, from the hash of `beacon_block`
        /// (a block sealed after the event that made it due), or gives the round up when its
        /// draws are spent.
        fn schedule_draw(&mut self, job_id: u64, core: &mut JobCore, beacon_block: BlockNumber) {
            if core.draws >= MAX_DRAWS {
                return self.round_failed(job_id, core);
            }
            core.draw_at = Some(beacon_block);
            core.phase_deadline = self.now().saturating_add(core.terms.reveal_window);
            let to = if core.round == 0 { JobState::InputCheck } else { JobState::VerifierCommit };
            self.goto(core, to);
            self.job_event(job_id, core, JobEventKind::DrawDue { round: core.round, beacon_block });
        }

        /// Replaces a verifier that stayed silent past the deadline: the replacement is drawn
        /// at once from the hash of the deadline block (sealed only after the silent one could
        /// still act), or the round is given up when its draws are spent.
        fn replace_verifier(&mut self, job_id: u64, core: &mut JobCore) {
            let beacon_block = core.phase_deadline;
            self.schedule_draw(job_id, core, beacon_block);
            if core.draw_at.is_some() {
                self.draw(job_id, core);
            }
        }

        /// Who the due draw picks: by weight as at the start of the epoch of the job's
        /// commitment (or report), from the beacon block's hash; the renter, the provider and
        /// everyone drawn for the job before are excluded; a picked provider that cannot post
        /// the bond (or left) is passed over.
        fn pick(&self, job_id: u64, core: &JobCore, drawn: &[Address; MAX_DRAWN]) -> Option<Pick> {
            let x = econ::epoch(core.commit_block, self.state.epoch_blocks);
            if x.saturating_add(1) < self.epoch() {
                return None; // the snapshot is no longer kept (nobody moved the job for an epoch)
            }
            // Each tree block is read once per draw (the root block serves the total and the
            // descent's first level; exclusions and the descent may share leaf blocks).
            let store = tree::Cached::new(TreeStore(&self.tree));
            let mut excluded: Vec<(u32, u64)> = Vec::new();
            let exclude = |me: &Self, excluded: &mut Vec<(u32, u64)>, a: Address| {
                if let Some(p) = me.providers.get(a).filter(|p| p.slot != 0) {
                    let s = p.slot - 1;
                    if !excluded.iter().any(|(e, _)| *e == s) {
                        excluded.push((s, tree::weight_at(&store, s, x).unwrap_or(0)));
                    }
                }
            };
            exclude(self, &mut excluded, core.renter);
            exclude(self, &mut excluded, core.provider);
            for a in drawn {
                if *a != Address::zero() {
                    exclude(self, &mut excluded, *a);
                }
            }
            let total = tree::total_at(&store, x)?;
            let beacon = self.block_hash(core.draw_at.unwrap_or_default());
            let seed = sample::draw_seed::<ChainSha>(job_id, core.round, core.draws + 1, &core.commitment, &beacon);
            let bond = self.bond_of(core);
            for attempt in 0..DRAW_TRIES {
                let eligible = total.saturating_sub(excluded.iter().map(|(_, w)| *w).sum());
                if eligible == 0 {
                    return None;
                }
                let h = <ChainSha as hash::Sha256>::hash(&[&seed, &attempt.to_le_bytes()]);
                let r = u128::from_le_bytes(h[..16].try_into().unwrap_or([0; 16])) % u128::from(eligible);
                let slot = tree::find(&store, x, r as u64, &excluded)?;
                let account = self.slot_owner.get(slot + 1).unwrap_or_default();
                if let Some(provider) = self.providers.get(account) {
                    if provider.slot == slot + 1 && provider.free() >= bond {
                        return Some(Pick { account, provider, bond });
                    }
                }
                excluded.push((slot, tree::weight_at(&store, slot, x).unwrap_or(0)));
            }
            None
        }

        /// The bond a verifier of this job's current round posts.
        fn bond_of(&self, core: &JobCore) -> Amount {
            let work = if core.round == 0 {
                econ::availability_fee(core.task_value(), core.terms.verifier_fee_bps)
            } else {
                econ::verifier_fee(core.task_value().saturating_mul(Amount::from(core.sampled)), core.terms.verifier_fee_bps)
            };
            econ::bond_for(work, core.terms.min_stake)
        }

        /// Makes the due draw: locks the picked verifier's bond and opens its window (a
        /// verifier gets the provider's compute window); gives the round up if nobody can be
        /// drawn.
        fn draw(&mut self, job_id: u64, core: &mut JobCore) {
            self.draw_from(job_id, core, None)
        }

        /// [`Self::draw`] given who was drawn for the job before (`None`: as stored); the
        /// list is read and written once.
        fn draw_from(&mut self, job_id: u64, core: &mut JobCore, drawn: Option<[Address; MAX_DRAWN]>) {
            core.draw_at = None;
            let fresh = drawn.is_some();
            let mut drawn = drawn.unwrap_or_else(|| self.drawn.get(job_id).unwrap_or_default());
            let Some(Pick { account, mut provider, bond }) = self.pick(job_id, core, &drawn) else {
                if fresh {
                    self.drawn.insert(job_id, &drawn);
                }
                return self.round_failed(job_id, core);
            };
            provider.locked += bond;
            self.save_provider(account, &provider, false);
            let now = self.now();
            core.draws += 1;
            core.phase_deadline = now.saturating_add(core.compute_blocks);
            let v = Verifier { account, bond, drawn_at: now, ..Default::default() };
            self.verifiers.insert((job_id, core.slot()), &v);
            if let Some(free) = drawn.iter_mut().find(|a| **a == Address::zero()) {
                *free = account;
            }
            self.drawn.insert(job_id, &drawn);
            self.verifier_event(job_id, core, account, VerifierEventKind::Drawn { round: core.round, bond, deadline: core.phase_deadline });
        }

        /// The drawn verifier of the current round, if it is `caller`.
        fn current_verifier(&self, job_id: u64, core: &JobCore, caller: Address) -> Result<Verifier> {
            self.verifiers
                .get((job_id, core.slot()))
                .filter(|v| v.account == caller && v.account != Address::zero())
                .ok_or(Error::NotAuthorized)
        }

        /// Whether `answer` was public (the provider's, or in a dispute the first verifier's)
        /// before a verifier that committed at `committed_at` committed.
        fn was_public(&self, job_id: u64, core: &JobCore, answer: &Hash32, committed_at: BlockNumber) -> bool {
            if core.answered_at != 0 && core.answered_at <= committed_at && *answer == core.provider_answer {
                return true;
            }
            core.round == 2
                && self
                    .verifiers
                    .get((job_id, 1))
                    .is_some_and(|v1| v1.has_revealed() && v1.revealed_at <= committed_at && v1.answer == *answer)
        }

        /// Slashes the current round's verifier if it was drawn and has not answered (its
        /// deadline passed), to the treasury, and clears its slot.
        fn slash_silent_verifier(&mut self, job_id: u64, core: &mut JobCore) {
            let slot = core.slot();
            let Some(v) = self.verifiers.get((job_id, slot)).filter(|v| v.account != Address::zero() && !v.has_revealed())
            else {
                return;
            };
            let taken = self.charge(v.account, v.bond, v.bond, Reputation { timeouts: 1, ..Default::default() });
            self.state.totals.treasury += taken;
            self.verifiers.insert((job_id, slot), &Verifier::default());
            self.verifier_event(job_id, core, v.account, VerifierEventKind::Slashed {
                amount: taken,
                to_verifiers: 0,
                to_treasury: taken,
                reason: SlashReason::VerifierSilent,
            });
        }

        /// No (further) verifier could be had for the current round.
        /// - Availability check: nobody could confirm; the renter is refunded, nobody pays.
        /// - Dispute: no majority; refund, nobody slashed.
        /// - First check: the job is unverified. If every verifier drawn reported the inputs
        ///   unavailable, the renter's inputs are at fault and the provider is paid; otherwise
        ///   it is paid only if the renter chose so at creation.
        fn round_failed(&mut self, job_id: u64, core: &mut JobCore) {
            core.draw_at = None;
            match core.round {
                0 => self.refund(job_id, core, RefundReason::InputsUnconfirmed),
                2 => {
                    self.release_bond(job_id, 1);
                    self.refund(job_id, core, RefundReason::NoMajority);
                }
                _ => {
                    let inputs_at_fault = core.unavailable_reports > 0 && core.unavailable_reports == core.draws;
                    core.unverified = true;
                                        if inputs_at_fault || core.pay_if_unverified {
                        core.pay_if_unverified = true;
                        if core.batch_root != [0; 32] {
                            self.settle(job_id, core, &[]);
                        } else {
                            core.phase_deadline = self.now().saturating_add(core.terms.reveal_window);
                            self.goto(core, JobState::Reveal);
                        }
                    } else {
                        self.refund(job_id, core, RefundReason::Unverified);
                    }
                }
            }
        }

        /// Called after every reveal: settles, escalates or slashes once the needed answers
        /// are in.
        /// `revealed` is the verifier of the current round when it has just revealed (saves
        /// reading back what the caller wrote).
        fn resolve(&mut self, job_id: u64, core: &mut JobCore, revealed: Option<&Verifier>) {
            if core.batch_root == [0; 32] {
                return;
            }
            if !core.checked() {
                return self.settle(job_id, core, &[]);
            }
            let p = core.provider_answer;
            let current = core.slot();
            let verifier = |me: &Self, slot: u8| match revealed {
                Some(v) if slot == current => Some(v.clone()),
                _ => me.verifiers.get((job_id, slot)),
            };
            let Some(v1) = verifier(self, 1).filter(|v| v.has_revealed()) else { return };
            if core.round == 1 {
                if v1.answer == p {
                    return self.settle(job_id, core, &[(v1, 0)]);
                }
                // A dispute: a second verifier decides, drawn from a block after this one.
                core.round = 2;
                core.draws = 0;
                core.unavailable_reports = 0;
                let now = self.now();
                return self.schedule_draw(job_id, core, now);
            }
            let Some(v2) = verifier(self, 2).filter(|v| v.has_revealed()) else { return };
            if v2.answer == p {
                // The first verifier's answer lost: its bond pays the second one's fee.
                let fee = self.fee_of(core);
                let (to_v2, _) = self.slash_verifier(job_id, core, &v1, SlashReason::WrongResult, &[v2.account], fee);
                self.settle(job_id, core, &[(v2, to_v2)]);
            } else if v2.answer == v1.answer {
                self.provider_fault(job_id, core, SlashReason::WrongResult);
            } else {
                self.slash_verifier(job_id, core, &v2, SlashReason::NoMatch, &[], 0);
                self.release_bond(job_id, 1);
                self.refund(job_id, core, RefundReason::NoMajority);
            }
        }

        /// A verifier's fee for this job's sample.
        fn fee_of(&self, core: &JobCore) -> Amount {
            econ::verifier_fee(core.task_value().saturating_mul(Amount::from(core.sampled)), core.terms.verifier_fee_bps)
        }

        /// Releases the bond of the verifier in `slot` (no fee: it decided nothing).
        fn release_bond(&mut self, job_id: u64, slot: u8) {
            if let Some(v) = self.verifiers.get((job_id, slot)).filter(|v| v.account != Address::zero()) {
                self.unlock(v.account, v.bond);
            }
        }

        /// Slashes verifier `v`'s bond: up to `fee` each to the `winners`, the rest to the
        /// treasury. Returns (paid to each winner, to the treasury).
        fn slash_verifier(
            &mut self,
            job_id: u64,
            core: &JobCore,
            v: &Verifier,
            reason: SlashReason,
            winners: &[Address],
            fee: Amount,
        ) -> (Amount, Amount) {
            let taken = self.charge(v.account, v.bond, v.bond, Reputation { checks_failed: 1, ..Default::default() });
            let each = if winners.is_empty() { 0 } else { fee.min(taken / winners.len() as Amount) };
            for w in winners {
                self.credit(*w, each);
            }
            let to_verifiers = each * winners.len() as Amount;
            let to_treasury = taken - to_verifiers;
            self.state.totals.treasury += to_treasury;
            self.verifier_event(job_id, core, v.account, VerifierEventKind::Slashed { amount: taken, to_verifiers, to_treasury, reason });
            (each, to_treasury)
        }

        /// Pays out a job whose provider answer stands (or that was not, or could not be,
        /// checked). `honest` verifiers get their bonds back and their fee: the part a slash
        /// already paid them (the second field), the rest from the escrow.
        fn settle(&mut self, job_id: u64, core: &mut JobCore, honest: &[(Verifier, Amount)]) {
            let provider = core.provider;
            let value = core.value();
            let protocol_fee = econ::protocol_fee(value, core.terms.protocol_fee_bps);
            let fee = self.fee_of(core);
            let mut verifier_fees = 0;
            for (v, already) in honest {
                self.charge(v.account, v.bond, 0, Reputation { checks_passed: 1, ..Default::default() });
                let from_escrow = fee.saturating_sub(*already).min(core.escrow.saturating_sub(value));
                self.pay_from_escrow(core, v.account, from_escrow);
                verifier_fees += from_escrow;
                self.verifier_event(job_id, core, v.account, VerifierEventKind::Paid { fee: already + from_escrow });
            }
            let value = value.min(core.escrow);
            core.escrow -= value;
            self.state.totals.escrow -= value;
            self.credit(provider, value - protocol_fee);
            self.state.totals.treasury += protocol_fee;
            let checked = core.checked();
            let lock = core.lock;
            core.lock = 0;
            let rep = Reputation { jobs_completed: 1, checks_passed: checked.into(), value_settled: value, ..Default::default() };
            self.charge(provider, lock, 0, rep);
            let renter_refund = self.release_job(core);
            let class = core.gpu_class;
            let index = econ::price_index_next(self.price_index.get(class), core.price_per_unit, value);
            self.price_index.insert(class, &index);
            self.market_event(MarketEventKind::PriceIndexUpdated { gpu_class: class, price: core.price_per_unit, value, index });
            let provider_payout = value - protocol_fee;
            if core.unverified {
                self.goto(core, JobState::Unverified);
                self.job_event(job_id, core, JobEventKind::Unverified { paid: true, provider_payout, protocol_fee, renter_refund });
            } else {
                self.goto(core, JobState::Settled);
                self.job_event(job_id, core, JobEventKind::Settled {
                    batch_root: core.batch_root,
                    provider_payout,
                    verifier_fees,
                    protocol_fee,
                    renter_refund,
                    tasks: core.tasks,
                    sampled: core.sampled,
                });
            }
        }

        /// The provider is at fault (silent at the reveal, or outvoted): its whole lock is
        /// slashed. The verifiers that revealed get their fee from it (the lock covers both
        /// fees, see `econ::lock_for`; the escrow's verification reserve would pay any
        /// shortfall), the rest goes to the treasury; the renter gets its escrow back, never
        /// more.
        fn provider_fault(&mut self, job_id: u64, core: &mut JobCore, reason: SlashReason) {
            let provider = core.provider;
            let lock = core.lock;
            core.lock = 0;
            let value = core.value();
            let wrong = reason == SlashReason::WrongResult;
            let rep = Reputation {
                checks_failed: wrong.into(),
                timeouts: (!wrong).into(),
                value_failed: value.saturating_mul(if wrong { 5 } else { 2 }),
                ..Default::default()
            };
            let mut taken = self.charge(provider, lock, lock, rep);
            let amount = taken;
            let fee = self.fee_of(core);
            let mut to_verifiers = 0;
            for slot in [1u8, 2] {
                let Some(v) = self.verifiers.get((job_id, slot)).filter(|v| v.account != Address::zero()) else { continue };
                let revealed = v.has_revealed();
                self.charge(v.account, v.bond, 0, Reputation { checks_passed: revealed.into(), ..Default::default() });
                if revealed {
                    let from_slash = fee.min(taken);
                    taken -= from_slash;
                    to_verifiers += from_slash;
                    self.credit(v.account, from_slash);
                    let before = core.escrow;
                    self.pay_from_escrow(core, v.account, fee - from_slash);
                    let paid = from_slash + (before - core.escrow);
                    self.verifier_event(job_id, core, v.account, VerifierEventKind::Paid { fee: paid });
                }
            }
            self.state.totals.treasury += taken;
            self.job_event(job_id, core, JobEventKind::ProviderSlashed { amount, to_verifiers, to_treasury: taken, reason });
            let refund = self.release_job(core);
            self.goto(core, JobState::Slashed);
            self.job_event(job_id, core, JobEventKind::Refunded { amount: refund, reason: RefundReason::ProviderSlashed });
        }

        /// Returns the escrow to the renter, releases the provider's lock (and a best bid's).
        fn refund(&mut self, job_id: u64, core: &mut JobCore, reason: RefundReason) {
            let amount = self.release_job(core);
            if reason == RefundReason::Unverified {
                self.goto(core, JobState::Unverified);
                let kind = JobEventKind::Unverified { paid: false, provider_payout: 0, protocol_fee: 0, renter_refund: amount };
                self.job_event(job_id, core, kind);
            } else {
                self.goto(core, JobState::Refunded);
                self.job_event(job_id, core, JobEventKind::Refunded { amount, reason });
            }
        }

        /// A slot for a new provider: a released one two epochs after its release (no job
        /// still draws from a snapshot that had its old owner), else a fresh one.
        fn take_slot(&mut self) -> Result<u32> {
            if self.state.free_slots > 0 {
                let top = self.state.free_slots - 1;
                if let Some((slot, released)) = self.free_slots.get(top) {
                    if released.saturating_add(2) <= self.epoch() {
                        self.state.free_slots = top;
                        return Ok(slot);
                    }
                }
            }
            if self.state.slots_used >= MAX_PROVIDERS {
                return Err(Error::RegistryFull);
            }
            self.state.slots_used += 1;
            Ok(self.state.slots_used)
        }

        // ------------------------------------------------------------ private: events

        fn job_event(&self, job_id: u64, core: &JobCore, kind: JobEventKind) {
            self.job_event_to(job_id, core, core.provider, kind);
        }

        fn job_event_to(&self, job_id: u64, core: &JobCore, provider: Address, kind: JobEventKind) {
            self.env().emit_event(JobEvent { job_id, renter: core.renter, provider, kind });
        }

        fn verifier_event(&self, job_id: u64, core: &JobCore, verifier: Address, kind: VerifierEventKind) {
            self.env().emit_event(VerifierEvent { job_id, provider: core.provider, verifier, kind });
        }

        fn account_event(&self, account: Address, kind: AccountEventKind) {
            self.env().emit_event(AccountEvent { account, kind });
        }

        fn market_event(&self, kind: MarketEventKind) {
            self.env().emit_event(MarketEvent { kind });
        }
    }

    /// Reads for tests and tools on the host. Clients on chain read the same values straight
    /// from storage (`capacloud_types::keys`); these are not messages and cost no code.
    impl Marketplace {
        pub fn state(&self) -> MarketState {
            self.state.clone()
        }
        pub fn provider(&self, account: Address) -> Option<Provider> {
            self.providers.get(account)
        }
        pub fn offer(&self, offer_id: u64) -> Option<Offer> {
            self.offers.get(offer_id)
        }
        pub fn job(&self, job_id: u64) -> Option<Job> {
            let core = self.jobs.get(job_id)?;
            Some(Job {
                input: self.inputs.get(job_id)?,
                verifiers: [0u8, 1, 2].map(|r| self.verifiers.get((job_id, r)).filter(|v| v.account != Address::zero())),
                core,
            })
        }
        pub fn withdrawable_of(&self, account: Address) -> Amount {
            self.withdrawable.get(account).unwrap_or(0)
        }
        pub fn price_index(&self, gpu_class: u8) -> Option<Amount> {
            self.price_index.get(gpu_class)
        }
        pub fn slot_owner(&self, slot: u32) -> Address {
            self.slot_owner.get(slot).unwrap_or_default()
        }
        /// Slot `slot`'s (1-based) draw weight as at the start of epoch `x`, and the total.
        pub fn weights_at(&self, slot: u32, x: u32) -> (Option<u64>, Option<u64>) {
            let store = TreeStore(&self.tree);
            (tree::weight_at(&store, slot - 1, x), tree::total_at(&store, x))
        }
        pub fn contract_balance(&self) -> Amount {
            use ink::codegen::Env;
            self.env().balance().try_into().unwrap_or(Amount::MAX)
        }
        /// Who the first verifier draw of committed job `job_id` picks (its beacon the
        /// commitment's block), without making it.
        pub fn first_draw(&self, job_id: u64) -> Option<Address> {
            let mut core = self.jobs.get(job_id)?;
            core.round = 1;
            core.draws = 0;
            core.draw_at = Some(core.commit_block);
            self.pick(job_id, &core, &[Address::zero(); MAX_DRAWN]).map(|p| p.account)
        }
        /// Who a due draw of `job_id` would pick now.
        pub fn pending_draw(&self, job_id: u64) -> Option<Address> {
            let core = self.jobs.get(job_id)?;
            if core.draw_at.is_none_or(|b| b >= self.now()) {
                return None;
            }
            self.pick(job_id, &core, &self.drawn.get(job_id).unwrap_or_default()).map(|p| p.account)
        }
    }
}

pub use self::marketplace::*;

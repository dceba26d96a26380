//! CapaCloud marketplace contract: the one place where money and reputation move.
//!
//! This is the foundation slice: administration and bounded protocol parameters.
//! Offers, escrowed jobs, auctions, spot-checks and payouts build on it (see
//! `../../ARCHITECTURE.md` and `../../../shared/PROTOCOL.md`).
//!
//! Chain facts this contract is written for (pallet-revive 0.10, see TOOLCHAIN.md):
//! `Mapping::remove/contains` silently do nothing, so state is never removed, only
//! tombstoned; the block timestamp is always 0, so every deadline is a block number;
//! the runtime's native-to-eth ratio is 10^6, which [`CapaEnv`] declares.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

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
    use ink::primitives::U256;

    /// Basis points in one whole (100%).
    pub const BPS: u16 = 10_000;
    /// Upper bound on the protocol fee an admin can set (10%).
    pub const MAX_PROTOCOL_FEE_BPS: u16 = 1_000;
    /// Upper bound on the verifier fee an admin can set (10%).
    pub const MAX_VERIFIER_FEE_BPS: u16 = 1_000;
    /// Lower bound on every window, in blocks: short enough for a dev chain, long enough
    /// for a transaction to be included.
    pub const MIN_WINDOW_BLOCKS: u32 = 2;
    /// Upper bound on every window, in blocks (about 7 days at 6 s blocks).
    pub const MAX_WINDOW_BLOCKS: u32 = 100_800;

    /// Protocol parameters, set by the admin within the bounds above.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Params {
        /// Fee taken from the provider's payout, in basis points.
        pub protocol_fee_bps: u16,
        /// Fee paid to a verifier for a spot-check, in basis points of the job value.
        pub verifier_fee_bps: u16,
        /// Spot-check rate used when a job does not name one, in basis points.
        pub default_check_rate_bps: u16,
        /// The least stake locked per held job, in contract units (10^-18 of the native token).
        pub min_stake: U256,
        /// Blocks a provider has to accept a direct hire.
        pub accept_window: u32,
        /// Blocks bids are taken on an open job.
        pub bid_window: u32,
        /// Blocks each commit or reveal phase lasts.
        pub reveal_window: u32,
        /// Blocks a provider must wait between asking to unstake and withdrawing.
        pub unstake_cooldown: u32,
    }

    impl Default for Params {
        fn default() -> Self {
            Self {
                protocol_fee_bps: 200,
                verifier_fee_bps: 300,
                default_check_rate_bps: 1_000,
                // 1 WND: 10^12 plancks × 10^6 contract units per planck.
                min_stake: U256::from(1_000_000_000_000_000_000u128),
                accept_window: 20,
                bid_window: 10,
                reveal_window: 20,
                unstake_cooldown: 50,
            }
        }
    }

    impl Params {
        /// Checks every field against its bound.
        fn validate(&self) -> Result<(), Error> {
            let window_ok = |w: u32| (MIN_WINDOW_BLOCKS..=MAX_WINDOW_BLOCKS).contains(&w);
            if self.protocol_fee_bps > MAX_PROTOCOL_FEE_BPS
                || self.verifier_fee_bps > MAX_VERIFIER_FEE_BPS
                || self.default_check_rate_bps == 0
                || self.default_check_rate_bps > BPS
                || self.min_stake.is_zero()
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

    #[ink(storage)]
    pub struct Marketplace {
        /// The account allowed to change parameters.
        admin: Address,
        /// Current protocol parameters.
        params: Params,
    }

    /// The admin changed the protocol parameters.
    #[ink(event)]
    pub struct ParamsUpdated {
        #[ink(topic)]
        pub admin: Address,
        pub params: Params,
    }

    /// Every way a message can refuse. No refusal moves funds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub enum Error {
        /// The caller is not the admin.
        NotAdmin,
        /// A parameter is outside its documented bound.
        ParamOutOfBounds,
    }

    impl Marketplace {
        /// Creates the marketplace with the caller as admin and default parameters.
        #[ink(constructor)]
        pub fn new() -> Self {
            Self {
                admin: Self::env().caller(),
                params: Params::default(),
            }
        }

        /// The interface version of this contract; clients refuse a contract whose version
        /// they do not speak.
        #[ink(message)]
        pub fn version(&self) -> u32 {
            1
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
        pub fn set_params(&mut self, params: Params) -> Result<(), Error> {
            let caller = self.env().caller();
            if caller != self.admin {
                return Err(Error::NotAdmin);
            }
            params.validate()?;
            self.params = params;
            self.env().emit_event(ParamsUpdated { admin: caller, params });
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        type Env = crate::CapaEnv;

        fn accounts() -> ink::env::test::DefaultAccounts {
            ink::env::test::default_accounts()
        }

        fn set_caller(who: Address) {
            ink::env::test::set_caller(who);
        }

        fn assert_params_updated(event: &ink::env::test::EmittedEvent, admin: Address, params: Params) {
            let decoded = <ParamsUpdated as ink::scale::Decode>::decode(&mut &event.data[..])
                .expect("ParamsUpdated decodes");
            assert_eq!(decoded.admin, admin);
            assert_eq!(decoded.params, params);
        }

        #[ink::test]
        fn new_sets_caller_as_admin_and_defaults() {
            set_caller(accounts().alice);
            let m = Marketplace::new();
            assert_eq!(m.admin(), accounts().alice);
            assert_eq!(m.params(), Params::default());
            assert_eq!(m.version(), 1);
            Params::default().validate().expect("defaults are within bounds");
        }

        #[ink::test]
        fn set_params_by_admin_updates_and_emits() {
            set_caller(accounts().alice);
            let mut m = Marketplace::new();
            let p = Params { protocol_fee_bps: 150, bid_window: 7, ..Params::default() };
            assert_eq!(m.set_params(p), Ok(()));
            assert_eq!(m.params(), p);
            let events = ink::env::test::recorded_events();
            assert_eq!(events.len(), 1);
            assert_params_updated(&events[0], accounts().alice, p);
        }

        #[ink::test]
        fn set_params_by_other_is_not_admin() {
            set_caller(accounts().alice);
            let mut m = Marketplace::new();
            set_caller(accounts().bob);
            let p = Params { protocol_fee_bps: 150, ..Params::default() };
            assert_eq!(m.set_params(p), Err(Error::NotAdmin));
            assert_eq!(m.params(), Params::default());
            assert!(ink::env::test::recorded_events().is_empty());
        }

        #[ink::test]
        fn set_params_out_of_bounds_is_refused() {
            set_caller(accounts().alice);
            let mut m = Marketplace::new();
            let d = Params::default();
            let bad = [
                Params { protocol_fee_bps: MAX_PROTOCOL_FEE_BPS + 1, ..d },
                Params { verifier_fee_bps: MAX_VERIFIER_FEE_BPS + 1, ..d },
                Params { default_check_rate_bps: 0, ..d },
                Params { default_check_rate_bps: BPS + 1, ..d },
                Params { min_stake: U256::zero(), ..d },
                Params { accept_window: MIN_WINDOW_BLOCKS - 1, ..d },
                Params { bid_window: MAX_WINDOW_BLOCKS + 1, ..d },
                Params { reveal_window: 0, ..d },
                Params { unstake_cooldown: MAX_WINDOW_BLOCKS + 1, ..d },
            ];
            for p in bad {
                assert_eq!(m.set_params(p), Err(Error::ParamOutOfBounds), "{p:?}");
            }
            assert_eq!(m.params(), d);
            assert!(ink::env::test::recorded_events().is_empty());
            let _ = core::marker::PhantomData::<Env>;
        }
    }
}

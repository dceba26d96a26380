//! Typed handle over one deployed marketplace contract: one method per contract message.
//!
//! Reads are dry-runs (no transaction); writes are dry-run first and refused before signing
//! when the contract would return an `Error`. Payable messages take their value in contract
//! units and must be whole plancks (the contract's `required_escrow` already is).

use crate::chain::marketplace::{self as abi, msg, *};
use crate::chain::{Chain, ChainError, Deployment, Receipt};
use codec::Encode;
use subxt::utils::H160;

/// Reads the contract artifact (`marketplace.polkavm`) from disk.
pub fn read_code(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// Converts contract units to plancks, refusing amounts that are not whole plancks.
pub fn to_plancks(units: Amount) -> Result<u128, ChainError> {
    if units % UNITS_PER_PLANCK != 0 {
        return Err(ChainError::Unexpected(format!("{units} contract units is not a whole number of plancks")));
    }
    Ok(units / UNITS_PER_PLANCK)
}

/// A deployed marketplace, reached through a [`Chain`].
pub struct Marketplace<'a> {
    chain: &'a Chain,
    address: H160,
}

impl<'a> Marketplace<'a> {
    /// Uploads `code` and runs the `new` constructor; the signer becomes the admin.
    pub async fn deploy(chain: &'a Chain, code: &[u8]) -> Result<(Self, Deployment), ChainError> {
        let data = abi::call_data(msg::NEW, &());
        let deployment = chain.instantiate(code, &data, 0, None).await?;
        Ok((Self { chain, address: deployment.address }, deployment))
    }

    /// Attaches to a contract already deployed at `address`, checking its interface version.
    pub async fn at(chain: &'a Chain, address: H160) -> Result<Self, ChainError> {
        let m = Self { chain, address };
        let v = m.version().await?;
        if v != abi::INTERFACE_VERSION {
            return Err(ChainError::Unexpected(format!(
                "contract at {address:?} speaks interface version {v}, this client speaks {}",
                abi::INTERFACE_VERSION
            )));
        }
        Ok(m)
    }

    /// A handle to `address` without checking its interface version (for long-running
    /// services that check once at start-up).
    pub fn unchecked(chain: &'a Chain, address: H160) -> Self {
        Self { chain, address }
    }

    /// The same contract through another signer's connection.
    pub fn with<'b>(&self, chain: &'b Chain) -> Marketplace<'b> {
        Marketplace { chain, address: self.address }
    }

    /// The connection this handle signs with.
    pub fn chain(&self) -> &'a Chain {
        self.chain
    }

    /// The contract's address.
    pub fn address(&self) -> H160 {
        self.address
    }

    async fn read<R: codec::Decode>(&self, label: &str, args: impl Encode) -> Result<R, ChainError> {
        self.chain.query(self.address, &abi::call_data(label, &args)).await
    }

    async fn write(&self, label: &str, args: impl Encode, value_units: Amount) -> Result<Receipt, ChainError> {
        let value = to_plancks(value_units)?;
        self.chain.call(self.address, &abi::call_data(label, &args), value).await
    }

    /// The `Ok` value a write returns, read through the same dry-run the write used.
    fn returned<T: codec::Decode>(receipt: &Receipt) -> Result<T, ChainError> {
        let r: Result<T, ContractError> = crate::chain::decode_message_return(&receipt.dry_run.data)?;
        r.map_err(|e| ChainError::Unexpected(format!("dry-run returned {e:?}")))
    }

    // ---- reads
    pub async fn version(&self) -> Result<u32, ChainError> {
        self.read(msg::VERSION, ()).await
    }
    pub async fn admin(&self) -> Result<H160, ChainError> {
        self.read(msg::ADMIN, ()).await
    }
    pub async fn params(&self) -> Result<Params, ChainError> {
        self.read(msg::PARAMS, ()).await
    }
    pub async fn accounting(&self) -> Result<Accounting, ChainError> {
        self.read(msg::ACCOUNTING, ()).await
    }
    /// The contract's balance and the sum of its totals (equal in every reachable state).
    pub async fn balance_check(&self) -> Result<BalanceCheck, ChainError> {
        self.read(msg::BALANCE_CHECK, ()).await
    }
    pub async fn provider(&self, account: H160) -> Result<Option<Provider>, ChainError> {
        self.read(msg::PROVIDER, account).await
    }
    pub async fn reputation_score(&self, account: H160) -> Result<u32, ChainError> {
        self.read(msg::REPUTATION_SCORE, account).await
    }
    pub async fn offer(&self, offer_id: u64) -> Result<Option<Offer>, ChainError> {
        self.read(msg::OFFER, offer_id).await
    }
    pub async fn offer_count(&self) -> Result<u64, ChainError> {
        self.read(msg::OFFER_COUNT, ()).await
    }
    pub async fn job(&self, job_id: u64) -> Result<Option<Job>, ChainError> {
        self.read(msg::JOB, job_id).await
    }
    pub async fn job_count(&self) -> Result<u64, ChainError> {
        self.read(msg::JOB_COUNT, ()).await
    }
    pub async fn withdrawable_of(&self, account: H160) -> Result<Amount, ChainError> {
        self.read(msg::WITHDRAWABLE_OF, account).await
    }
    pub async fn price_index(&self, gpu_class: u32) -> Result<Option<Amount>, ChainError> {
        self.read(msg::PRICE_INDEX, gpu_class).await
    }
    pub async fn required_lock(&self, value: Amount, check_rate_bps: u16) -> Result<Amount, ChainError> {
        self.read(msg::REQUIRED_LOCK, (value, check_rate_bps)).await
    }
    pub async fn required_escrow(&self, work_units: u64, max_price_per_unit: Amount) -> Result<Option<Amount>, ChainError> {
        self.read(msg::REQUIRED_ESCROW, (work_units, max_price_per_unit)).await
    }

    // ---- writes
    pub async fn set_params(&self, params: Params) -> Result<Receipt, ChainError> {
        self.write(msg::SET_PARAMS, params, 0).await
    }
    pub async fn claim_treasury(&self, amount: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::CLAIM_TREASURY, amount, 0).await
    }
    /// Registers the signer as a provider with `stake` (contract units, whole plancks).
    pub async fn register_provider(&self, stake: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::REGISTER_PROVIDER, (), stake).await
    }
    pub async fn add_stake(&self, amount: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::ADD_STAKE, (), amount).await
    }
    pub async fn request_unstake(&self, amount: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::REQUEST_UNSTAKE, amount, 0).await
    }
    pub async fn complete_unstake(&self) -> Result<Receipt, ChainError> {
        self.write(msg::COMPLETE_UNSTAKE, (), 0).await
    }
    /// Lists an offer; returns its id (from the `OfferListed` event: the dry-run's id can
    /// be taken by a concurrent listing) with the receipt.
    pub async fn list_offer(&self, offer: &OfferInput) -> Result<(u64, Receipt), ChainError> {
        let r = self.write(msg::LIST_OFFER, offer, 0).await?;
        let id = r.events.iter().find_map(|e| match &e.decoded {
            Some(Event::OfferListed { offer_id, updated: false, .. }) if e.contract == self.address => Some(*offer_id),
            _ => None,
        });
        Ok((id.ok_or_else(|| ChainError::Unexpected("list_offer emitted no OfferListed".into()))?, r))
    }
    pub async fn update_offer(&self, offer_id: u64, offer: &OfferInput) -> Result<Receipt, ChainError> {
        self.write(msg::UPDATE_OFFER, (offer_id, offer), 0).await
    }
    pub async fn remove_offer(&self, offer_id: u64) -> Result<Receipt, ChainError> {
        self.write(msg::REMOVE_OFFER, offer_id, 0).await
    }
    /// Creates a job paying exactly `required_escrow`; returns its id with the receipt.
    pub async fn create_job(&self, input: &JobInput) -> Result<(u64, Receipt), ChainError> {
        let escrow = self
            .required_escrow(input.work_units, input.max_price_per_unit)
            .await?
            .ok_or_else(|| ChainError::Unexpected("escrow overflows".into()))?;
        let r = self.write(msg::CREATE_JOB, input, escrow).await?;
        // The id comes from the event: the dry-run's id can be taken by a concurrent job.
        let id = r.events.iter().find_map(|e| match &e.decoded {
            Some(Event::JobCreated { job_id, .. }) if e.contract == self.address => Some(*job_id),
            _ => None,
        });
        Ok((id.ok_or_else(|| ChainError::Unexpected("create_job emitted no JobCreated".into()))?, r))
    }
    pub async fn bid(&self, job_id: u64, offer_id: u64, price_per_unit: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::BID, (job_id, offer_id, price_per_unit), 0).await
    }
    pub async fn close_auction(&self, job_id: u64) -> Result<Receipt, ChainError> {
        self.write(msg::CLOSE_AUCTION, job_id, 0).await
    }
    pub async fn reopen_job(&self, job_id: u64) -> Result<Receipt, ChainError> {
        self.write(msg::REOPEN_JOB, job_id, 0).await
    }
    pub async fn accept_job(&self, job_id: u64) -> Result<Receipt, ChainError> {
        self.write(msg::ACCEPT_JOB, job_id, 0).await
    }
    pub async fn commit_result(&self, job_id: u64, commitment: Hash32) -> Result<Receipt, ChainError> {
        self.write(msg::COMMIT_RESULT, (job_id, commitment), 0).await
    }
    pub async fn reveal_seed(&self, job_id: u64, seed: Hash32) -> Result<Receipt, ChainError> {
        self.write(msg::REVEAL_SEED, (job_id, seed), 0).await
    }
    pub async fn commit_verification(&self, job_id: u64, commitment: Hash32) -> Result<Receipt, ChainError> {
        self.write(msg::COMMIT_VERIFICATION, (job_id, commitment), 0).await
    }
    pub async fn reveal_result(&self, job_id: u64, root: Hash32, salt: Hash32) -> Result<Receipt, ChainError> {
        self.write(msg::REVEAL_RESULT, (job_id, root, salt), 0).await
    }
    pub async fn cleanup(&self, job_id: u64) -> Result<Receipt, ChainError> {
        self.write(msg::CLEANUP, job_id, 0).await
    }
    /// Withdraws the signer's whole withdrawable balance; returns the amount.
    pub async fn withdraw(&self) -> Result<(Amount, Receipt), ChainError> {
        let r = self.write(msg::WITHDRAW, (), 0).await?;
        Ok((Self::returned(&r)?, r))
    }
}

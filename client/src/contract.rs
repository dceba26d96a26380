//! Typed handle over one deployed marketplace contract: a method per message, and reads of
//! its state straight from storage.
//!
//! Reads go through pallet-revive's storage runtime API with the keys `capacloud-types`
//! names (no transaction, no dry-run, no code in the contract for them); writes are dry-run
//! first and refused before signing when the contract would return an `Error`. Payable
//! messages take their value in contract units and must be whole plancks (the escrow and
//! stake amounts `econ` computes already are).

use crate::chain::marketplace::{self as abi, keys, msg, *};
use crate::chain::{Chain, ChainError, Deployment, Receipt};
use codec::{Decode, Encode};
use subxt::utils::{H160, H256};

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

/// The constructor's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deploy {
    /// Blocks per stake-snapshot epoch (it also caps a job's compute window).
    pub epoch_blocks: u32,
    /// Blocks between `set_params` and the new parameters applying to new jobs.
    pub params_delay: u32,
    /// The parameters in force from the start.
    pub params: Params,
}

impl Default for Deploy {
    /// A day of 6 s blocks per epoch, an hour's delay, the default parameters.
    fn default() -> Self {
        Self { epoch_blocks: 14_400, params_delay: 600, params: Params::default() }
    }
}

/// A deployed marketplace, reached through a [`Chain`]. Reads see the best block, or the
/// one block the handle is pinned to ([`Marketplace::finalized`], [`Marketplace::at_block`]).
pub struct Marketplace<'a> {
    chain: &'a Chain,
    address: H160,
    /// The block every read sees; `None`: the best block at the time of the read.
    block: Option<H256>,
}

impl<'a> Marketplace<'a> {
    /// Uploads `code` and runs the `new` constructor; the signer becomes the admin.
    pub async fn deploy(chain: &'a Chain, code: &[u8], args: Deploy) -> Result<(Self, Deployment), ChainError> {
        let data = abi::call_data(msg::NEW, &(args.epoch_blocks, args.params_delay, args.params));
        let deployment = chain.instantiate(code, &data, 0, None).await?;
        Ok((Self { chain, address: deployment.address, block: None }, deployment))
    }

    /// Attaches to a contract already deployed at `address`, checking its interface version.
    pub async fn at(chain: &'a Chain, address: H160) -> Result<Self, ChainError> {
        let m = Self { chain, address, block: None };
        let v = m.state().await?.version;
        if v != INTERFACE_VERSION {
            return Err(ChainError::Unexpected(format!(
                "contract at {address:?} speaks interface version {v}, this client speaks {INTERFACE_VERSION}"
            )));
        }
        Ok(m)
    }

    /// A handle to `address` without checking its interface version (for long-running
    /// services that check once at start-up).
    pub fn unchecked(chain: &'a Chain, address: H160) -> Self {
        Self { chain, address, block: None }
    }

    /// The same contract through another signer's connection.
    pub fn with<'b>(&self, chain: &'b Chain) -> Marketplace<'b> {
        Marketplace { chain, address: self.address, block: self.block }
    }

    /// The same contract with every read at block `hash` (one consistent snapshot across
    /// several reads).
    pub fn at_block(&self, hash: H256) -> Marketplace<'a> {
        Marketplace { chain: self.chain, address: self.address, block: Some(hash) }
    }

    /// The same contract with every read at the current finalized head: what no retracted
    /// block can take back. With it: the height of that head.
    ///
    /// # Errors
    /// RPC failures.
    pub async fn finalized(&self) -> Result<(Marketplace<'a>, u32), ChainError> {
        let (number, hash) = self.chain.finalized_head().await?;
        Ok((self.at_block(hash), number))
    }

    /// The connection this handle signs with.
    pub fn chain(&self) -> &'a Chain {
        self.chain
    }

    /// The contract's address.
    pub fn address(&self) -> H160 {
        self.address
    }

    /// The value stored under `key`, decoded.
    async fn load<T: Decode>(&self, key: Vec<u8>, what: &'static str) -> Result<Option<T>, ChainError> {
        match self.chain.storage_at(self.address, &key, self.block).await? {
            None => Ok(None),
            Some(bytes) => {
                let mut input = &bytes[..];
                let v = T::decode(&mut input).map_err(|source| ChainError::Decode { what, source })?;
                if !input.is_empty() {
                    return Err(ChainError::Unexpected(format!("{what}: {} bytes left over", input.len())));
                }
                Ok(Some(v))
            }
        }
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

    /// The first job event of `kind`'s shape this contract emitted in `r`.
    fn job_event(&self, r: &Receipt, pick: impl Fn(&JobEvent) -> bool) -> Option<JobEvent> {
        r.events.iter().find_map(|e| match &e.decoded {
            Some(Event::Job(j)) if e.contract == self.address && pick(j) => Some(j.clone()),
            _ => None,
        })
    }

    // ---- reads (storage)

    /// The root state: admin, parameters (current and scheduled), totals, counts, epoch.
    pub async fn state(&self) -> Result<MarketState, ChainError> {
        self.load(keys::root(), "market state").await?.ok_or_else(|| ChainError::Unexpected(format!("no marketplace at {:?}", self.address)))
    }
    /// The parameters new jobs get at block `now`.
    pub async fn params(&self, now: u32) -> Result<Params, ChainError> {
        Ok(self.state().await?.params_at(now))
    }
    /// The contract's balance beside the sum of its totals (equal in every reachable
    /// state), both read at one block.
    pub async fn balance_check(&self) -> Result<(Amount, Amount), ChainError> {
        let at = match self.block {
            Some(h) => h,
            None => self.chain.best_head().await?.1,
        };
        let total = self.at_block(at).state().await?.totals.total();
        Ok((self.chain.contract_balance(self.address, Some(at)).await?, total))
    }
    pub async fn provider(&self, account: H160) -> Result<Option<Provider>, ChainError> {
        self.load(keys::entry(keys::PROVIDERS, &account), "provider").await
    }
    pub async fn offer(&self, offer_id: u64) -> Result<Option<Offer>, ChainError> {
        self.load(keys::entry(keys::OFFERS, &offer_id), "offer").await
    }
    pub async fn offer_count(&self) -> Result<u64, ChainError> {
        Ok(self.state().await?.offer_count)
    }
    /// A job's core (everything its lifecycle needs; one storage read).
    pub async fn job_core(&self, job_id: u64) -> Result<Option<JobCore>, ChainError> {
        self.load(keys::entry(keys::JOBS, &job_id), "job").await
    }
    /// A job with its input and verifiers (five storage reads).
    pub async fn job(&self, job_id: u64) -> Result<Option<Job>, ChainError> {
        let Some(core) = self.job_core(job_id).await? else { return Ok(None) };
        let input = self
            .load(keys::entry(keys::INPUTS, &job_id), "job input")
            .await?
            .ok_or_else(|| ChainError::Unexpected(format!("job {job_id} has no input")))?;
        let mut verifiers = [None; 3];
        for (round, slot) in verifiers.iter_mut().enumerate() {
            let v: Option<Verifier> = self.load(keys::entry(keys::VERIFIERS, &(job_id, round as u8)), "verifier").await?;
            *slot = v.filter(|v| v.account != H160::zero());
        }
        Ok(Some(Job { core, input, verifiers }))
    }
    pub async fn job_count(&self) -> Result<u64, ChainError> {
        Ok(self.state().await?.job_count)
    }
    pub async fn withdrawable_of(&self, account: H160) -> Result<Amount, ChainError> {
        Ok(self.load(keys::entry(keys::WITHDRAWABLE, &account), "withdrawable").await?.unwrap_or(0))
    }
    pub async fn price_index(&self, gpu_class: u8) -> Result<Option<Amount>, ChainError> {
        self.load(keys::entry(keys::PRICE_INDEX, &gpu_class), "price index").await
    }

    // ---- writes

    pub async fn set_params(&self, params: Params) -> Result<Receipt, ChainError> {
        self.write(msg::SET_PARAMS, params, 0).await
    }
    /// Proposes `new` as admin (by the admin), or accepts the role (by `new` itself).
    pub async fn set_admin(&self, new: H160) -> Result<Receipt, ChainError> {
        self.write(msg::SET_ADMIN, new, 0).await
    }
    pub async fn claim_treasury(&self, amount: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::CLAIM_TREASURY, amount, 0).await
    }
    /// Adds `amount` (contract units, whole plancks) to the signer's stake, registering it
    /// if needed.
    pub async fn stake(&self, amount: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::STAKE, (), amount).await
    }
    pub async fn unstake(&self, amount: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::UNSTAKE, amount, 0).await
    }
    pub async fn complete_unstake(&self) -> Result<Receipt, ChainError> {
        self.write(msg::COMPLETE_UNSTAKE, (), 0).await
    }
    /// Lists an offer (`offer_id` `None`) or replaces one; returns its id (from the event:
    /// the dry-run's id can be taken by a concurrent listing) with the receipt.
    pub async fn list_offer(&self, offer_id: Option<u64>, offer: &OfferInput) -> Result<(u64, Receipt), ChainError> {
        let r = self.write(msg::LIST_OFFER, (offer_id, offer), 0).await?;
        let me = self.chain.address();
        let id = r.events.iter().find_map(|e| match &e.decoded {
            Some(Event::Account(AccountEvent { account, kind: AccountEventKind::OfferListed { offer_id, .. } }))
                if e.contract == self.address && *account == me =>
            {
                Some(*offer_id)
            }
            _ => None,
        });
        Ok((id.ok_or_else(|| ChainError::Unexpected("list_offer emitted no OfferListed".into()))?, r))
    }
    pub async fn remove_offer(&self, offer_id: u64) -> Result<Receipt, ChainError> {
        self.write(msg::REMOVE_OFFER, offer_id, 0).await
    }
    /// The escrow `create_job` takes for `input` under the parameters in force at `now`.
    pub async fn required_escrow(&self, input: &JobInput, now: u32) -> Result<Amount, ChainError> {
        let p = self.params(now).await?;
        econ::escrow_for(input.tasks, input.units_per_task, input.max_price_per_unit, p.verifier_fee_bps)
            .ok_or_else(|| ChainError::Unexpected("escrow overflows".into()))
    }
    /// Creates a job paying `escrow`; returns its id (from the event) with the receipt.
    pub async fn create_job(&self, input: &JobInput, seed_commitment: Hash32, escrow: Amount) -> Result<(u64, Receipt), ChainError> {
        let r = self.write(msg::CREATE_JOB, (input, seed_commitment), escrow).await?;
        let me = self.chain.address();
        let id = self.job_event(&r, |j| j.renter == me && matches!(j.kind, JobEventKind::Created { .. })).map(|j| j.job_id);
        Ok((id.ok_or_else(|| ChainError::Unexpected("create_job emitted no Created event".into()))?, r))
    }
    pub async fn bid(&self, job_id: u64, offer_id: u64, price_per_unit: Amount) -> Result<Receipt, ChainError> {
        self.write(msg::BID, (job_id, offer_id, price_per_unit), 0).await
    }
    pub async fn reopen_job(&self, job_id: u64) -> Result<Receipt, ChainError> {
        self.write(msg::REOPEN_JOB, job_id, 0).await
    }
    pub async fn accept_job(&self, job_id: u64) -> Result<Receipt, ChainError> {
        self.write(msg::ACCEPT_JOB, job_id, 0).await
    }
    /// The provider reports inputs unavailable (`false`), the availability verifier votes,
    /// or a check verifier bows out (`false`).
    pub async fn report(&self, job_id: u64, available: bool) -> Result<Receipt, ChainError> {
        self.write(msg::REPORT, (job_id, available), 0).await
    }
    pub async fn commit(&self, job_id: u64, commitment: Hash32) -> Result<Receipt, ChainError> {
        self.write(msg::COMMIT, (job_id, commitment), 0).await
    }
    pub async fn reveal_seed(&self, job_id: u64, seed: Hash32) -> Result<Receipt, ChainError> {
        self.write(msg::REVEAL_SEED, (job_id, seed), 0).await
    }
    pub async fn reveal(&self, job_id: u64, salt: Hash32, reveal: &Reveal) -> Result<Receipt, ChainError> {
        self.write(msg::REVEAL, (job_id, salt, reveal), 0).await
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

//! The one module that talks to the chain: it connects, signs, dry-runs, submits
//! extrinsics and decodes events. Nothing else in CapaCloud builds an extrinsic.
//!
//! Every state-changing contract call is dry-run first; the extrinsic then carries the
//! gas (`gas_required`) and storage deposit limit (the charged deposit) the dry-run
//! measured, so a call that would fail is refused before anything is signed or paid.
//!
//! **Best block and finality.** A signing party acts on the chain's *best* block: reads and
//! dry-runs see it, and a submission returns once its transaction is in a best block. On a
//! chain whose finality lags its head (Polkadot Hub: GRANDPA, a few blocks behind), waiting
//! for finality at every step would cost the lag once per protocol step. Finality is tracked
//! separately ([`Chain::finalized_head`], [`Chain::best_head`], reads pinned to a block
//! through [`Chain::storage_at`]): callers wait for it where a retracted block could hurt
//! them — before revealing a secret that a commitment in that block protects, and before
//! treating an outcome (a payment, a job's end) as done. Read-only followers (indexers)
//! use the finalized chain only.

pub mod marketplace;
pub mod revive;

use codec::{Decode, Encode};
use subxt::backend::legacy::LegacyRpcMethods;
use subxt::backend::rpc::RpcClient;
use subxt::blocks::ExtrinsicEvents;
use subxt::ext::scale_value::{At, Value};
use subxt::tx::{DefaultPayload, TxStatus};
use subxt::utils::{AccountId32, H160, H256};
use subxt::{OnlineClient, PolkadotConfig};
use subxt_signer::sr25519::Keypair;

pub use revive::{StorageDeposit, Weight};

/// Asset Hub's transaction format: `MultiAddress<AccountId32, ()>`, `MultiSignature`,
/// u32 block numbers; the asset-payment extension is left at "pay in native".
pub type Config = PolkadotConfig;

/// Errors of chain access. Each names what failed and carries what the node said.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("cannot connect to the chain at {url}: {reason} (is the node running? `make chain`)")]
    Connect { url: String, reason: String },
    #[error("chain RPC failed: {0}")]
    Rpc(Box<subxt::Error>),
    #[error("chain RPC call failed: {0}")]
    RpcCall(#[from] subxt::ext::subxt_rpcs::Error),
    #[error("could not decode chain data: {0}")]
    ChainDecode(#[from] subxt::error::DecodeError),
    #[error("`{0}` is not a contract address (0x followed by 40 hex digits)")]
    BadAddress(String),
    #[error("{what}: the runtime refused it: {reason}")]
    Dispatch { what: String, reason: String },
    #[error("{what}: the contract reverted{}", error_suffix(.error))]
    Reverted {
        what: String,
        /// The contract's `Error`, when the revert data decodes as one.
        error: Option<marketplace::ContractError>,
        data: Vec<u8>,
    },
    #[error("could not decode {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: codec::Error,
    },
    #[error("{what}: not in a block within {secs} s (it may still land; the next send re-reads the nonce)")]
    Timeout { what: String, secs: u64 },
    #[error("{0}")]
    Unexpected(String),
}

impl ChainError {
    /// Whether the connection failed (the reconnecting client recovers; retrying later can
    /// succeed), as opposed to the chain or the contract refusing something.
    pub fn is_connection(&self) -> bool {
        matches!(self, ChainError::Connect { .. } | ChainError::Rpc(_) | ChainError::RpcCall(_))
    }
}

impl From<subxt::Error> for ChainError {
    fn from(e: subxt::Error) -> Self {
        ChainError::Rpc(Box::new(e))
    }
}

fn error_suffix(e: &Option<marketplace::ContractError>) -> String {
    e.map(|e| format!(" with {e:?}: {e}")).unwrap_or_default()
}

/// Result of a dry-run: what the real call would cost and return.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DryRun {
    pub gas_consumed: Weight,
    pub gas_required: Weight,
    pub storage_deposit: StorageDeposit,
    /// The bytes the contract returned.
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

/// A contract event as the chain carried it, decoded when it could be.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ContractEvent {
    pub contract: H160,
    pub topics: Vec<H256>,
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
    /// `None` when the event is not one this client knows; it is kept raw and logged.
    pub decoded: Option<marketplace::Event>,
}

impl ContractEvent {
    fn from_emitted(e: revive::ContractEmitted) -> Self {
        let decoded = match marketplace::decode_event(&e.topics, &e.data) {
            Ok(ev) => Some(ev),
            Err(err) => {
                tracing::warn!(contract = ?e.contract, %err, "undecodable contract event kept raw");
                None
            }
        };
        Self { contract: e.contract, topics: e.topics, data: e.data, decoded }
    }
}

/// Blocks a reveal window must exceed the finality lag by: a reveal waits until the phase
/// that protects it is final, then needs a block to land in and one of slack.
pub const REVEAL_MARGIN_BLOCKS: u32 = 2;

/// Whether a reveal window of `window` blocks leaves time to reveal on a chain whose
/// finalized head is `lag` blocks behind its best block (see the module docs).
pub fn window_holds_lag(window: u32, lag: u32) -> bool {
    window > lag.saturating_add(REVEAL_MARGIN_BLOCKS)
}

/// Gas above the dry-run's estimate a call may use, in percent (unused gas is refunded).
pub const GAS_HEADROOM_PCT: u64 = 25;
/// Storage deposit above the dry-run's a call may be charged, in plancks (0.05 WND: a few
/// storage items; only what is stored is charged).
pub const DEPOSIT_HEADROOM: u128 = 50_000_000_000;
/// Sends of one call, the first included, when the state moves between dry-run and block.
pub const CALL_ATTEMPTS: u32 = 3;
/// Longest wait for a submitted transaction to be included in a best block.
pub const SUBMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn with_headroom(w: Weight) -> Weight {
    let up = |x: u64| x.saturating_add(x / 100 * GAS_HEADROOM_PCT);
    Weight { ref_time: up(w.ref_time), proof_size: up(w.proof_size) }
}

/// What a submitted extrinsic did, as of the best block that included it (it becomes final
/// when the finalized head reaches `block_number` with `block_hash` on its chain).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Receipt {
    pub block_hash: H256,
    pub block_number: u32,
    pub extrinsic_hash: H256,
    /// The dry-run the extrinsic's limits came from (its estimates, before headroom).
    pub dry_run: DryRun,
    /// The transaction fee paid, in plancks.
    pub fee: u128,
    pub events: Vec<ContractEvent>,
}

/// A deployed contract.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Deployment {
    pub address: H160,
    pub receipt: Receipt,
}

/// A connection to the chain with a signing key.
pub struct Chain {
    client: OnlineClient<Config>,
    rpc: LegacyRpcMethods<Config>,
    signer: Keypair,
    /// The next nonce this connection will use, held from choosing a nonce until the pool
    /// has the transaction, so concurrent writes through one connection get distinct
    /// nonces (subxt's default reads the nonce at the finalized block, which does not count
    /// transactions still in the pool). `None`: ask the node again.
    next_nonce: tokio::sync::Mutex<Option<u64>>,
}

/// Parses a contract (H160) address, `0x` + 40 hex digits (the `0x` is optional).
///
/// # Errors
/// [`ChainError::BadAddress`].
pub fn parse_address(s: &str) -> Result<H160, ChainError> {
    let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|_| ChainError::BadAddress(s.into()))?;
    if bytes.len() != 20 {
        return Err(ChainError::BadAddress(s.into()));
    }
    Ok(H160::from_slice(&bytes))
}

impl Chain {
    /// Connects to the node at `url` (ws://) and signs with `signer`. An unreachable node
    /// is an error at once; once connected, the connection reconnects by itself when it
    /// drops (retrying with backoff for about two minutes); a call in flight during the
    /// drop fails and can be retried.
    pub async fn connect(url: &str, signer: Keypair) -> Result<Self, ChainError> {
        let Reader { client, rpc } = Reader::connect(url).await?;
        Ok(Self { client, rpc, signer, next_nonce: tokio::sync::Mutex::new(None) })
    }

    /// The subxt client, for reading blocks and storage.
    pub fn client(&self) -> &OnlineClient<Config> {
        &self.client
    }

    /// The signing key (for requests signed off chain, e.g. reading outputs from a worker).
    pub fn keypair(&self) -> &Keypair {
        &self.signer
    }

    /// The signer's Substrate account.
    pub fn account(&self) -> AccountId32 {
        self.signer.public_key().into()
    }

    /// The signer's contract-side (H160) address.
    pub fn address(&self) -> H160 {
        revive::h160_of(&self.account())
    }

    /// The signer's free balance, in plancks.
    pub async fn free_balance(&self) -> Result<u128, ChainError> {
        free_balance(self, &self.account()).await
    }

    /// The number of the latest finalized block.
    pub async fn finalized_number(&self) -> Result<u32, ChainError> {
        Ok(finalized_head(&self.rpc).await?.0)
    }

    /// The number of the best block: the height the next transaction is judged against
    /// (its block is this one's child).
    pub async fn best_number(&self) -> Result<u32, ChainError> {
        Ok(best_head(&self.rpc).await?.0)
    }

    /// The latest finalized block: number and hash.
    pub async fn finalized_head(&self) -> Result<(u32, H256), ChainError> {
        finalized_head(&self.rpc).await
    }

    /// The best block: number and hash.
    pub async fn best_head(&self) -> Result<(u32, H256), ChainError> {
        best_head(&self.rpc).await
    }

    /// Blocks the finalized head is behind the best block, never less than the lag at the
    /// moment of the call: the finalized head is read first, so blocks made (and finalized)
    /// between the two reads can only make the figure larger. A worker declining a window
    /// too short for the lag, or the CLI refusing one, errs on the safe side.
    pub async fn finality_lag(&self) -> Result<u32, ChainError> {
        let (fin, _) = finalized_head(&self.rpc).await?;
        let (best, _) = best_head(&self.rpc).await?;
        Ok(best.saturating_sub(fin))
    }

    /// This account's transactions in the node's pool that the best block does not include
    /// yet: sent by an earlier life of this process (killed between sending and inclusion)
    /// or by a send that timed out. Acting on the best block's state before they land could
    /// send a step twice. The pool's next nonce is read before the best block's, so a block
    /// made between the two reads can only make the figure smaller, never invent one.
    ///
    /// # Errors
    /// A connection error ([`ChainError::is_connection`]), or a nonce subxt cannot decode.
    pub async fn pending_transactions(&self) -> Result<u64, ChainError> {
        let account = self.account();
        let pooled = self.rpc.system_account_next_index(&account).await?;
        let best = self.best_hash().await?;
        let nonce = self.client.blocks().at(best).await?.account_nonce(&account).await?;
        Ok(pooled.saturating_sub(nonce))
    }

    /// The block reads see when none is named: the best block.
    async fn best_hash(&self) -> Result<H256, ChainError> {
        self.rpc.chain_get_block_hash(None).await?.ok_or_else(|| ChainError::Unexpected("no best block".into()))
    }

    /// Whether pallet-revive already maps the signer's H160 back to its account.
    pub async fn is_mapped(&self) -> Result<bool, ChainError> {
        let key = vec![Value::from_bytes(self.address().0)];
        let q = subxt::dynamic::storage(revive::PALLET, "OriginalAccount", key);
        let found = self.client.storage().at(self.best_hash().await?).fetch(&q).await?;
        Ok(found.is_some())
    }

    /// Maps the signer's account for pallet-revive if it is not mapped yet (a contract
    /// caller must be). Returns whether an extrinsic was submitted.
    pub async fn ensure_mapped(&self) -> Result<bool, ChainError> {
        if self.is_mapped().await? {
            return Ok(false);
        }
        let payload = DefaultPayload::new(revive::PALLET, "map_account", revive::MapAccount {})
            .unvalidated();
        self.submit(&payload, "map_account").await?;
        Ok(true)
    }

    /// Dry-runs the instantiation of `code` with constructor call data `data`.
    pub async fn dry_run_instantiate(
        &self,
        code: &[u8],
        data: &[u8],
        value: u128,
        salt: Option<[u8; 32]>,
    ) -> Result<(DryRun, H160), ChainError> {
        let req = revive::InstantiateRequest {
            origin: self.account(),
            value,
            gas_limit: None,
            storage_deposit_limit: None,
            code: revive::Code::Upload(code.to_vec()),
            data: data.to_vec(),
            salt,
        };
        let (head, rest) = self.runtime_api("ReviveApi_instantiate", &req.encode()).await?;
        let ret: revive::InstantiateReturnValue = self.decode_result(rest, "instantiate")?;
        let dry = self.dry_run_of(head, ret.result, "instantiate")?;
        Ok((dry, ret.addr))
    }

    /// Uploads and instantiates a contract; gas and deposit come from a dry-run.
    pub async fn instantiate(
        &self,
        code: &[u8],
        data: &[u8],
        value: u128,
        salt: Option<[u8; 32]>,
    ) -> Result<Deployment, ChainError> {
        self.ensure_mapped().await?;
        let (dry, _) = self.dry_run_instantiate(code, data, value, salt).await?;
        let payload = DefaultPayload::new(
            revive::PALLET,
            "instantiate_with_code",
            revive::InstantiateWithCode {
                value,
                gas_limit: dry.gas_required,
                storage_deposit_limit: dry.storage_deposit.charge_or_zero(),
                code: code.to_vec(),
                data: data.to_vec(),
                salt,
            },
        )
        .unvalidated();
        let (events, mut receipt) = self.submit(&payload, "instantiate").await?;
        let inst = events
            .find_first::<revive::Instantiated>()?
            .ok_or_else(|| ChainError::Unexpected("instantiate emitted no Instantiated event".into()))?;
        receipt.dry_run = dry;
        Ok(Deployment { address: inst.contract, receipt })
    }

    /// Dry-runs a message call; a contract revert is returned as [`ChainError::Reverted`].
    pub async fn dry_run_call(&self, dest: H160, data: &[u8], value: u128) -> Result<DryRun, ChainError> {
        let req = revive::CallRequest {
            origin: self.account(),
            dest,
            value,
            gas_limit: None,
            storage_deposit_limit: None,
            input_data: data.to_vec(),
        };
        let (head, rest) = self.runtime_api("ReviveApi_call", &req.encode()).await?;
        let ret: revive::ExecReturnValue = self.decode_result(rest, "call")?;
        self.dry_run_of(head, ret, "call")
    }

    /// Reads a message's return value through a dry-run (no transaction, no fee).
    pub async fn query<R: Decode>(&self, dest: H160, data: &[u8]) -> Result<R, ChainError> {
        let dry = self.dry_run_call(dest, data, 0).await?;
        decode_message_return(&dry.data)
    }

    /// Reads the raw value a contract stores under `key` (pallet-revive's variable-length
    /// keys, as ink! mappings use them) at the best block, `None` if nothing is stored.
    pub async fn storage(&self, contract: H160, key: &[u8]) -> Result<Option<Vec<u8>>, ChainError> {
        self.storage_at(contract, key, None).await
    }

    /// [`Chain::storage`] at block `at` (`None`: the best block).
    pub async fn storage_at(&self, contract: H160, key: &[u8], at: Option<H256>) -> Result<Option<Vec<u8>>, ChainError> {
        let at = match at {
            Some(h) => h,
            None => self.best_hash().await?,
        };
        storage_in(&self.client, contract, key, at).await
    }

    /// A contract's balance in contract units (18 decimals) at block `at` (`None`: the
    /// best block).
    pub async fn contract_balance(&self, contract: H160, at: Option<H256>) -> Result<u128, ChainError> {
        let at = match at {
            Some(h) => h,
            None => self.best_hash().await?,
        };
        let bytes = self.client.runtime_api().at(at).call_raw("ReviveApi_balance", Some(&contract.encode())).await?;
        let b = primitive_types::U256::decode(&mut &bytes[..]).map_err(|source| ChainError::Decode { what: "balance", source })?;
        u128::try_from(b).map_err(|_| ChainError::Unexpected(format!("contract balance {b} exceeds u128")))
    }

    /// Calls a message in a signed extrinsic, after a dry-run that fixes gas and deposit.
    ///
    /// The dry-run sees the state before the transaction's block; another transaction in
    /// that block can change the path it takes (a verifier's reveal that turns out to be the
    /// last one settles the job, at ~4× the gas; several providers staking at once each
    /// write new stake-tree nodes). Limits therefore carry [`GAS_HEADROOM_PCT`] and
    /// [`DEPOSIT_HEADROOM`] above the dry-run (only what is used is charged), and a call that
    /// still runs out of gas or deposit is dry-run again on the new state and sent again,
    /// up to [`CALL_ATTEMPTS`] times in all.
    pub async fn call(&self, dest: H160, data: &[u8], value: u128) -> Result<Receipt, ChainError> {
        self.ensure_mapped().await?;
        let mut attempt = 1;
        loop {
            match self.call_once(dest, data, value).await {
                Err(ChainError::Dispatch { reason, .. })
                    if attempt < CALL_ATTEMPTS && (reason.contains("OutOfGas") || reason.contains("StorageDepositLimitExhausted")) =>
                {
                    tracing::warn!(%reason, attempt, "the state moved on between dry-run and inclusion; dry-running again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn call_once(&self, dest: H160, data: &[u8], value: u128) -> Result<Receipt, ChainError> {
        let dry = self.dry_run_call(dest, data, value).await?;
        let payload = DefaultPayload::new(
            revive::PALLET,
            "call",
            revive::Call {
                dest,
                value,
                gas_limit: with_headroom(dry.gas_required),
                storage_deposit_limit: dry.storage_deposit.charge_or_zero().saturating_add(DEPOSIT_HEADROOM),
                data: data.to_vec(),
            },
        )
        .unvalidated();
        let (_, mut receipt) = self.submit(&payload, "call").await?;
        receipt.dry_run = dry;
        Ok(receipt)
    }

    /// Calls a runtime API and splits its `ContractResult` into the fixed head and the
    /// bytes of the `result` field.
    async fn runtime_api(
        &self,
        func: &str,
        params: &[u8],
    ) -> Result<(revive::ContractResultHead, Vec<u8>), ChainError> {
        let bytes = self.client.runtime_api().at(self.best_hash().await?).call_raw(func, Some(params)).await?;
        let mut input = &bytes[..];
        let head = revive::ContractResultHead::decode(&mut input)
            .map_err(|source| ChainError::Decode { what: "ContractResult", source })?;
        Ok((head, input.to_vec()))
    }

    /// Decodes `Result<T, DispatchError>`; the error arm is named through the metadata.
    fn decode_result<T: Decode>(&self, bytes: Vec<u8>, what: &str) -> Result<T, ChainError> {
        match bytes.split_first() {
            Some((0, mut ok)) => {
                T::decode(&mut ok).map_err(|source| ChainError::Decode { what: "dry-run result", source })
            }
            Some((1, err)) => {
                let reason = match subxt::error::DispatchError::decode_from(err, self.client.metadata()) {
                    Ok(e) => e.to_string(),
                    Err(e) => format!("undecodable DispatchError 0x{} ({e})", hex::encode(err)),
                };
                Err(ChainError::Dispatch { what: format!("dry-run of {what}"), reason })
            }
            _ => Err(ChainError::Unexpected(format!("dry-run of {what}: malformed result"))),
        }
    }

    fn dry_run_of(
        &self,
        head: revive::ContractResultHead,
        ret: revive::ExecReturnValue,
        what: &str,
    ) -> Result<DryRun, ChainError> {
        if ret.did_revert() {
            return Err(reverted(what, ret.data));
        }
        Ok(DryRun {
            gas_consumed: head.gas_consumed,
            gas_required: head.gas_required,
            storage_deposit: head.storage_deposit,
            data: ret.data,
        })
    }

    /// Signs, submits and waits until a best block includes it (at most [`SUBMIT_TIMEOUT`]); a failed
    /// dispatch is an error. After any failure the next send re-reads the account's nonce
    /// from the node (pool included), so a lost or dropped transaction never leaves later
    /// ones waiting in the future queue.
    async fn submit(
        &self,
        payload: &impl subxt::tx::Payload,
        what: &str,
    ) -> Result<(ExtrinsicEvents<Config>, Receipt), ChainError> {
        let mut progress = {
            let mut next = self.next_nonce.lock().await;
            // The node's view counts this account's transactions in the pool.
            let pooled = self.rpc.system_account_next_index(&self.account()).await?;
            let nonce = pooled.max(next.unwrap_or(0));
            let params = subxt::config::DefaultExtrinsicParamsBuilder::<Config>::new().nonce(nonce).build();
            match self.client.tx().sign_and_submit_then_watch(payload, &self.signer, params).await {
                Ok(p) => {
                    *next = Some(nonce + 1);
                    p
                }
                Err(e) => {
                    *next = None;
                    return Err(e.into());
                }
            }
        };
        let deadline = tokio::time::Instant::now() + SUBMIT_TIMEOUT;
        let in_block = loop {
            let failure = match tokio::time::timeout_at(deadline, progress.next()).await {
                Err(_) => ChainError::Timeout { what: what.into(), secs: SUBMIT_TIMEOUT.as_secs() },
                // Acting on the best block: the caller tracks finality where it matters.
                Ok(Some(Ok(TxStatus::InBestBlock(b)))) | Ok(Some(Ok(TxStatus::InFinalizedBlock(b)))) => break b,
                Ok(Some(Ok(TxStatus::Error { message })))
                | Ok(Some(Ok(TxStatus::Invalid { message })))
                | Ok(Some(Ok(TxStatus::Dropped { message }))) => ChainError::Dispatch { what: what.into(), reason: message },
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => e.into(),
                Ok(None) => ChainError::Unexpected(format!("{what}: transaction watch ended")),
            };
            // Resynchronise with the node before the next send.
            *self.next_nonce.lock().await = None;
            return Err(failure);
        };
        let events = in_block.wait_for_success().await.map_err(|e| match e {
            subxt::Error::Runtime(d) => ChainError::Dispatch { what: what.into(), reason: d.to_string() },
            other => other.into(),
        })?;
        let block_number = self
            .rpc
            .chain_get_header(Some(in_block.block_hash()))
            .await?
            .map(|h| h.number)
            .unwrap_or_default();
        let fee = events
            .find_first::<revive::TransactionFeePaid>()?
            .map(|f| f.actual_fee)
            .unwrap_or_default();
        let mut contract_events = Vec::new();
        for ev in events.find::<revive::ContractEmitted>() {
            contract_events.push(ContractEvent::from_emitted(ev?));
        }
        let receipt = Receipt {
            block_hash: in_block.block_hash(),
            block_number,
            extrinsic_hash: in_block.extrinsic_hash(),
            dry_run: DryRun {
                gas_consumed: Weight::default(),
                gas_required: Weight::default(),
                storage_deposit: StorageDeposit::Charge(0),
                data: Vec::new(),
            },
            fee,
            events: contract_events,
        };
        tracing::debug!(what, block = block_number, fee, "extrinsic in a best block");
        Ok((events, receipt))
    }

    /// Contract events emitted in block `hash`, in order.
    pub async fn contract_events_at(&self, hash: H256) -> Result<Vec<ContractEvent>, ChainError> {
        contract_events_at(&self.client, hash).await
    }

    /// `contract`'s events in the blocks `from..=to` of the best chain (each with its block
    /// number), in chain order. Undecodable events are included raw.
    pub async fn contract_events_in(&self, contract: H160, from: u32, to: u32) -> Result<Vec<(u32, ContractEvent)>, ChainError> {
        let mut out = Vec::new();
        for n in from..=to {
            let hash = self
                .rpc
                .chain_get_block_hash(Some(n.into()))
                .await?
                .ok_or_else(|| ChainError::Unexpected(format!("no block #{n}")))?;
            for e in contract_events_at(&self.client, hash).await? {
                if e.contract == contract {
                    if e.decoded.is_none() {
                        tracing::warn!(block = n, topics = ?e.topics, "undecodable contract event kept raw");
                    }
                    out.push((n, e));
                }
            }
        }
        Ok(out)
    }
}

/// A read-only connection (no signing key): what indexers and followers use.
#[derive(Clone)]
pub struct Reader {
    client: OnlineClient<Config>,
    rpc: LegacyRpcMethods<Config>,
}

/// A contract event with its place in its block.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlockEvent {
    /// The extrinsic that emitted it (`None`: emitted outside one, e.g. at initialization).
    pub extrinsic_index: Option<u32>,
    pub event: ContractEvent,
}

impl Reader {
    /// Connects to the node at `url` (ws://); fails at once when nothing listens, then
    /// reconnects by itself when the connection drops (about two minutes of retries).
    ///
    /// # Errors
    /// [`ChainError::Connect`].
    pub async fn connect(url: &str) -> Result<Self, ChainError> {
        use subxt::backend::rpc::reconnecting_rpc_client::{ExponentialBackoff, RpcClient as Reconnecting};
        // Fail fast when nothing listens (the reconnecting client would keep retrying).
        RpcClient::from_insecure_url(url).await.map_err(|e| ChainError::Connect { url: url.into(), reason: e.to_string() })?;
        let reconnecting = Reconnecting::builder()
            .retry_policy(ExponentialBackoff::from_millis(100).max_delay(std::time::Duration::from_secs(2)).take(60))
            .build(url)
            .await
            .map_err(|e| ChainError::Connect { url: url.into(), reason: e.to_string() })?;
        let rpc_client = RpcClient::new(reconnecting);
        let client = OnlineClient::<Config>::from_rpc_client(rpc_client.clone())
            .await
            .map_err(|e| ChainError::Connect { url: url.into(), reason: e.to_string() })?;
        Ok(Self { client, rpc: LegacyRpcMethods::new(rpc_client) })
    }

    /// The subxt client.
    pub fn client(&self) -> &OnlineClient<Config> {
        &self.client
    }

    /// The chain's genesis hash (which chain this is).
    pub fn genesis_hash(&self) -> H256 {
        self.client.genesis_hash()
    }

    /// The latest finalized block: number and hash.
    ///
    /// # Errors
    /// RPC failures.
    pub async fn finalized_head(&self) -> Result<(u32, H256), ChainError> {
        finalized_head(&self.rpc).await
    }

    /// The hash of canonical block `n` (`None`: no such block yet).
    ///
    /// # Errors
    /// RPC failures.
    pub async fn block_hash(&self, n: u32) -> Result<Option<H256>, ChainError> {
        Ok(self.rpc.chain_get_block_hash(Some(n.into())).await?)
    }

    /// `contract`'s events in block `hash`, in order, each with its extrinsic. Undecodable
    /// events are included raw.
    ///
    /// # Errors
    /// RPC failures; a `ContractEmitted` event that does not decode as one.
    pub async fn contract_events_of(&self, contract: H160, hash: H256) -> Result<Vec<BlockEvent>, ChainError> {
        let events = self.client.events().at(hash).await?;
        let mut out = Vec::new();
        for ev in events.iter() {
            let ev = ev?;
            let Some(emitted) = ev.as_event::<revive::ContractEmitted>()? else { continue };
            if emitted.contract != contract {
                continue;
            }
            let extrinsic_index = match ev.phase() {
                subxt::events::Phase::ApplyExtrinsic(i) => Some(i),
                _ => None,
            };
            out.push(BlockEvent { extrinsic_index, event: ContractEvent::from_emitted(emitted) });
        }
        Ok(out)
    }

    /// Whether `contract` exists at block `hash` (it has a balance record there).
    async fn contract_exists_at(&self, contract: H160, hash: H256) -> Result<bool, ChainError> {
        let q = subxt::dynamic::storage(revive::PALLET, "AccountInfoOf", vec![Value::from_bytes(contract.0)]);
        Ok(self.client.storage().at(hash).fetch(&q).await?.is_some())
    }

    /// The block that deployed `contract`, found by bisection over blocks `0..=to` (the
    /// node must keep their state: an archive node). `None`: it does not exist at `to`.
    ///
    /// # Errors
    /// RPC failures (e.g. state pruned).
    pub async fn deployment_block(&self, contract: H160, to: u32) -> Result<Option<u32>, ChainError> {
        let at = |n: u32| async move {
            let hash = self.block_hash(n).await?.ok_or_else(|| ChainError::Unexpected(format!("no block #{n}")))?;
            self.contract_exists_at(contract, hash).await
        };
        if !at(to).await? {
            return Ok(None);
        }
        // Invariant: absent before `lo`, present at `hi`.
        let (mut lo, mut hi) = (0u32, to);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at(mid).await? {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(Some(hi))
    }
}

/// The latest finalized block: number and hash.
async fn finalized_head(rpc: &LegacyRpcMethods<Config>) -> Result<(u32, H256), ChainError> {
    let hash = rpc.chain_get_finalized_head().await?;
    let header = rpc.chain_get_header(Some(hash)).await?.ok_or_else(|| ChainError::Unexpected("finalized head has no header".into()))?;
    Ok((header.number, hash))
}

/// The best block: number and hash.
async fn best_head(rpc: &LegacyRpcMethods<Config>) -> Result<(u32, H256), ChainError> {
    let hash = rpc.chain_get_block_hash(None).await?.ok_or_else(|| ChainError::Unexpected("no best block".into()))?;
    let header = rpc.chain_get_header(Some(hash)).await?.ok_or_else(|| ChainError::Unexpected("best block has no header".into()))?;
    Ok((header.number, hash))
}

/// Contract events emitted in block `hash`, in order.
pub async fn contract_events_at(
    client: &OnlineClient<Config>,
    hash: H256,
) -> Result<Vec<ContractEvent>, ChainError> {
    let events = client.events().at(hash).await?;
    let mut out = Vec::new();
    for ev in events.find::<revive::ContractEmitted>() {
        out.push(ContractEvent::from_emitted(ev?));
    }
    Ok(out)
}

/// The free balance of `account`, in plancks, at the best block.
async fn free_balance(chain: &Chain, account: &AccountId32) -> Result<u128, ChainError> {
    let q = subxt::dynamic::storage("System", "Account", vec![Value::from_bytes(account.0)]);
    let Some(info) = chain.client.storage().at(chain.best_hash().await?).fetch(&q).await? else {
        return Ok(0);
    };
    let value = info.to_value()?;
    value
        .at("data")
        .and_then(|d| d.at("free"))
        .and_then(|f| f.as_u128())
        .ok_or_else(|| ChainError::Unexpected("System.Account has no data.free".into()))
}

/// Reads the raw value `contract` stores under `key` at block `at` (see [`Chain::storage`]).
async fn storage_in(client: &OnlineClient<Config>, contract: H160, key: &[u8], at: H256) -> Result<Option<Vec<u8>>, ChainError> {
    let params = (contract, key.to_vec()).encode();
    let bytes = client.runtime_api().at(at).call_raw("ReviveApi_get_storage_var_key", Some(&params)).await?;
    match bytes.split_first() {
        Some((0, mut ok)) => Option::<Vec<u8>>::decode(&mut ok).map_err(|source| ChainError::Decode { what: "storage value", source }),
        Some((1, err)) => Err(ChainError::Unexpected(format!(
            "contract storage of {contract:?} not readable (ContractAccessError 0x{})",
            hex::encode(err)
        ))),
        _ => Err(ChainError::Unexpected("malformed storage read result".into())),
    }
}

/// Decodes an ink! message's output, `Result<R, LangError>`.
pub fn decode_message_return<R: Decode>(data: &[u8]) -> Result<R, ChainError> {
    let r: Result<R, marketplace::LangError> = Decode::decode(&mut &data[..])
        .map_err(|source| ChainError::Decode { what: "message return value", source })?;
    r.map_err(|e| ChainError::Unexpected(format!("contract could not dispatch the message: {e:?}")))
}

fn reverted(what: &str, data: Vec<u8>) -> ChainError {
    // A message returning `Result<T, Error>` reverts with `Ok(Err(error))`.
    let error = <Result<Result<(), marketplace::ContractError>, marketplace::LangError>>::decode(&mut &data[..])
        .ok()
        .and_then(|r| r.ok())
        .and_then(|r| r.err());
    ChainError::Reverted { what: what.into(), error, data }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_data_names_the_contract_error() {
        let data = Ok::<Result<(), _>, marketplace::LangError>(Err(marketplace::ContractError::NotAdmin)).encode();
        match reverted("call", data) {
            ChainError::Reverted { error, .. } => assert_eq!(error, Some(marketplace::ContractError::NotAdmin)),
            other => panic!("unexpected {other:?}"),
        }
        match reverted("call", vec![9, 9]) {
            ChainError::Reverted { error, .. } => assert_eq!(error, None),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn addresses_parse_strictly() {
        let a = parse_address("0x41dccbd49b26c50d34355ed86ff0fa9e489d1e01").unwrap();
        assert_eq!(parse_address("41dccbd49b26c50d34355ed86ff0fa9e489d1e01").unwrap(), a);
        for bad in ["", "0x", "0x41dc", "0xzz", "0x41dccbd49b26c50d34355ed86ff0fa9e489d1e0101"] {
            assert!(matches!(parse_address(bad), Err(ChainError::BadAddress(_))), "{bad}");
        }
    }

    #[test]
    fn message_return_decodes_ok_and_lang_error() {
        let ok = Ok::<u32, marketplace::LangError>(7).encode();
        assert_eq!(decode_message_return::<u32>(&ok).unwrap(), 7);
        let lang = Err::<u32, _>(marketplace::LangError::CouldNotReadInput).encode();
        assert!(decode_message_return::<u32>(&lang).is_err());
    }
}

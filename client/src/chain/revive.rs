//! Wire types of pallet-revive 0.10 (polkadot-sdk stable2509): call payloads, dry-run
//! results and events, encoded exactly as the runtime expects them.
//!
//! Only [`super`] builds extrinsics from these; nothing else in the project does.

use codec::{Decode, Encode};
use subxt::ext::{scale_decode, scale_encode};
use subxt::utils::{AccountId32, H160, H256};

/// Name of the pallet in the runtime metadata.
pub const PALLET: &str = "Revive";

/// `sp_weights::Weight`, with both parts compact-encoded as the runtime does.
#[derive(
    Copy,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Encode,
    Decode,
    serde::Serialize,
    scale_encode::EncodeAsType,
)]
#[encode_as_type(crate_path = "subxt::ext::scale_encode")]
pub struct Weight {
    /// Computation time, in picoseconds of reference hardware.
    #[codec(compact)]
    pub ref_time: u64,
    /// Bytes of proof a parachain block must carry for this work.
    #[codec(compact)]
    pub proof_size: u64,
}

/// `Revive::instantiate_with_code`: upload code and instantiate it in one extrinsic.
#[derive(Debug, Encode, scale_encode::EncodeAsType)]
#[encode_as_type(crate_path = "subxt::ext::scale_encode")]
pub struct InstantiateWithCode {
    #[codec(compact)]
    pub value: u128,
    pub gas_limit: Weight,
    #[codec(compact)]
    pub storage_deposit_limit: u128,
    pub code: Vec<u8>,
    pub data: Vec<u8>,
    pub salt: Option<[u8; 32]>,
}

/// `Revive::call`: call a message of a deployed contract.
#[derive(Debug, Encode, scale_encode::EncodeAsType)]
#[encode_as_type(crate_path = "subxt::ext::scale_encode")]
pub struct Call {
    pub dest: H160,
    #[codec(compact)]
    pub value: u128,
    pub gas_limit: Weight,
    #[codec(compact)]
    pub storage_deposit_limit: u128,
    pub data: Vec<u8>,
}

/// `Revive::map_account`: registers the signer's H160 so it can talk to contracts.
#[derive(Debug, Encode, scale_encode::EncodeAsType)]
#[encode_as_type(crate_path = "subxt::ext::scale_encode")]
pub struct MapAccount {}

/// `pallet_revive::Code`: what a dry-run instantiation runs.
#[derive(Debug, Encode)]
pub enum Code {
    /// New code, uploaded by the instantiation.
    Upload(Vec<u8>),
    /// Code already on chain, by hash.
    #[allow(dead_code)]
    Existing(H256),
}

/// Parameters of the `ReviveApi_instantiate` runtime API.
#[derive(Debug, Encode)]
pub struct InstantiateRequest {
    pub origin: AccountId32,
    pub value: u128,
    pub gas_limit: Option<Weight>,
    pub storage_deposit_limit: Option<u128>,
    pub code: Code,
    pub data: Vec<u8>,
    pub salt: Option<[u8; 32]>,
}

/// Parameters of the `ReviveApi_call` runtime API.
#[derive(Debug, Encode)]
pub struct CallRequest {
    pub origin: AccountId32,
    pub dest: H160,
    pub value: u128,
    pub gas_limit: Option<Weight>,
    pub storage_deposit_limit: Option<u128>,
    pub input_data: Vec<u8>,
}

/// `pallet_revive::StorageDeposit`: what an execution adds to or frees from storage deposits.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageDeposit {
    /// Deposit released back to the origin.
    Refund(u128),
    /// Deposit the origin pays (and that the extrinsic's limit must cover).
    Charge(u128),
}

impl StorageDeposit {
    /// The amount charged, or zero for a refund.
    pub fn charge_or_zero(&self) -> u128 {
        match self {
            StorageDeposit::Charge(v) => *v,
            StorageDeposit::Refund(_) => 0,
        }
    }
}

/// The fixed-layout head of `pallet_revive::ContractResult`; the `result` that follows is
/// decoded separately because its error arm needs the runtime metadata.
#[derive(Clone, Debug, Decode)]
pub struct ContractResultHead {
    pub gas_consumed: Weight,
    pub gas_required: Weight,
    pub storage_deposit: StorageDeposit,
}

/// `ReturnFlags` bit set when the contract reverted its state changes.
pub const FLAG_REVERT: u32 = 1;

/// `pallet_revive::ExecReturnValue`: what a contract returned.
#[derive(Clone, Debug, PartialEq, Eq, Decode)]
pub struct ExecReturnValue {
    pub flags: u32,
    pub data: Vec<u8>,
}

impl ExecReturnValue {
    /// Whether the contract reverted (its state changes are discarded).
    pub fn did_revert(&self) -> bool {
        self.flags & FLAG_REVERT != 0
    }
}

/// `pallet_revive::InstantiateReturnValue`.
#[derive(Clone, Debug, PartialEq, Eq, Decode)]
pub struct InstantiateReturnValue {
    pub result: ExecReturnValue,
    pub addr: H160,
}

/// `Revive::ContractEmitted`: an event a contract emitted.
#[derive(Clone, Debug, PartialEq, Eq, scale_decode::DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
pub struct ContractEmitted {
    pub contract: H160,
    pub data: Vec<u8>,
    pub topics: Vec<H256>,
}

impl subxt::events::StaticEvent for ContractEmitted {
    const PALLET: &'static str = PALLET;
    const EVENT: &'static str = "ContractEmitted";
}

/// `Revive::Instantiated`: a contract was created.
#[derive(Clone, Debug, PartialEq, Eq, scale_decode::DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
pub struct Instantiated {
    pub deployer: H160,
    pub contract: H160,
}

impl subxt::events::StaticEvent for Instantiated {
    const PALLET: &'static str = PALLET;
    const EVENT: &'static str = "Instantiated";
}

/// `TransactionPayment::TransactionFeePaid`: the fee an extrinsic paid.
#[derive(Clone, Debug, PartialEq, Eq, scale_decode::DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
pub struct TransactionFeePaid {
    pub who: AccountId32,
    pub actual_fee: u128,
    pub tip: u128,
}

impl subxt::events::StaticEvent for TransactionFeePaid {
    const PALLET: &'static str = "TransactionPayment";
    const EVENT: &'static str = "TransactionFeePaid";
}

/// The H160 pallet-revive gives a Substrate account: the last 20 bytes of
/// keccak256(account id), or the first 20 bytes for an account derived from an H160
/// (one that ends in twelve `0xEE` bytes).
pub fn h160_of(account: &AccountId32) -> H160 {
    let bytes: &[u8; 32] = &account.0;
    if bytes[20..].iter().all(|b| *b == 0xEE) {
        H160::from_slice(&bytes[..20])
    } else {
        H160::from_slice(&sp_crypto_hashing::keccak_256(bytes)[12..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subxt_signer::sr25519::dev;

    #[test]
    fn dev_account_h160s_match_the_runtime() {
        // Values read off the dev chain (TOOLCHAIN.md).
        let alice = h160_of(&dev::alice().public_key().into());
        assert_eq!(hex::encode(alice.0), "9621dde636de098b43efb0fa9b61facfe328f99d");
        let bob = h160_of(&dev::bob().public_key().into());
        assert_eq!(hex::encode(bob.0), "41dccbd49b26c50d34355ed86ff0fa9e489d1e01");
    }

    #[test]
    fn eth_derived_account_maps_back_to_its_h160() {
        let mut id = [0xEEu8; 32];
        id[..20].copy_from_slice(&[7u8; 20]);
        assert_eq!(h160_of(&AccountId32(id)), H160::from([7u8; 20]));
    }

    #[test]
    fn weight_and_deposit_encode_like_the_runtime() {
        let w = Weight { ref_time: 1, proof_size: 2 };
        assert_eq!(w.encode(), vec![4, 8]); // two compact integers
        assert_eq!(StorageDeposit::Charge(5).encode()[0], 1);
        assert_eq!(StorageDeposit::Charge(5).charge_or_zero(), 5);
        assert_eq!(StorageDeposit::Refund(5).charge_or_zero(), 0);
    }
}

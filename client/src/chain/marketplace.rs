//! The ink! ABI of the marketplace contract: message selectors, argument and return
//! encodings, the contract's `Error`, and its events.
//!
//! Mirrors `contracts/marketplace/lib.rs`; the `abi_matches_contract_metadata` test in
//! `tests/` checks every selector and event topic here against the built contract's
//! metadata, so the two cannot drift apart unnoticed.

use codec::{Decode, Encode};
use primitive_types::U256;
use subxt::utils::{H160, H256};

/// The interface version this client speaks (the contract's `version()` message).
pub const INTERFACE_VERSION: u32 = 1;

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

    /// Every constructor and message, for the metadata cross-check.
    pub const ALL: &[&str] = &[NEW, VERSION, ADMIN, PARAMS, SET_PARAMS];
}

/// Protocol parameters (`marketplace::Params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Params {
    pub protocol_fee_bps: u16,
    pub verifier_fee_bps: u16,
    pub default_check_rate_bps: u16,
    /// In contract units (10^-18 WND).
    pub min_stake: U256,
    pub accept_window: u32,
    pub bid_window: u32,
    pub reveal_window: u32,
    pub unstake_cooldown: u32,
}

/// Every refusal of the contract (`marketplace::Error`), in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, serde::Serialize, thiserror::Error)]
pub enum ContractError {
    #[error("the caller is not the marketplace admin")]
    NotAdmin,
    #[error("a parameter is outside its documented bound")]
    ParamOutOfBounds,
}

/// ink!'s `LangError`: the call could not be dispatched to a message at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum LangError {
    CouldNotReadInput,
}

/// An event of the marketplace contract, decoded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ParamsUpdated { admin: H160, params: Params },
}

/// Event names with their field types, exactly as ink! hashes them into the signature topic.
pub mod event_sig {
    pub const PARAMS_UPDATED: &str = "ParamsUpdated(Address,Params)";

    /// Every event, for the metadata cross-check.
    pub const ALL: &[&str] = &[PARAMS_UPDATED];
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

/// Decodes a marketplace event from its topics and data.
pub fn decode_event(topics: &[H256], data: &[u8]) -> Result<Event, EventDecodeError> {
    let sig = topics.first().ok_or(EventDecodeError::NoTopic)?;
    let mut input = data;
    if *sig == signature_topic(event_sig::PARAMS_UPDATED) {
        let admin = H160::decode(&mut input)?;
        let params = Params::decode(&mut input)?;
        return Ok(Event::ParamsUpdated { admin, params });
    }
    Err(EventDecodeError::UnknownTopic(*sig))
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
}

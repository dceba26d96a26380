//! The marketplace contract's interface as this client speaks it: message names and call
//! data, the storage keys it reads state from, and the decoding of its four events.
//!
//! Every type the contract stores, takes, returns or emits comes from `capacloud-types`,
//! the crate the contract itself is built from, re-exported here: there is no second copy
//! to keep in step. What stays here is what ink! adds on top (selectors, the event
//! signatures as ink! hashes them, `LangError`); the `abi_matches_contract_metadata` test
//! in `tests/` checks every selector, event signature and storage key against the built
//! contract's metadata. Amounts are contract units (10^-18 WND); 1 planck =
//! [`UNITS_PER_PLANCK`] units.

pub use capacloud_types::*;
use codec::{Decode, Encode};
use subxt::utils::H256;

/// The contract's `Error` (a refused message).
pub type ContractError = capacloud_types::Error;

/// The ink! selector of a constructor or message: the first four bytes of BLAKE2b-256 of
/// its name.
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

/// Constructor and message names, as the contract declares them. Reads are not messages:
/// clients read storage directly ([`keys`]).
pub mod msg {
    pub const NEW: &str = "new";
    pub const SET_PARAMS: &str = "set_params";
    pub const SET_ADMIN: &str = "set_admin";
    pub const CLAIM_TREASURY: &str = "claim_treasury";
    pub const STAKE: &str = "stake";
    pub const UNSTAKE: &str = "unstake";
    pub const COMPLETE_UNSTAKE: &str = "complete_unstake";
    pub const LIST_OFFER: &str = "list_offer";
    pub const REMOVE_OFFER: &str = "remove_offer";
    pub const CREATE_JOB: &str = "create_job";
    pub const BID: &str = "bid";
    pub const REOPEN_JOB: &str = "reopen_job";
    pub const ACCEPT_JOB: &str = "accept_job";
    pub const REPORT: &str = "report";
    pub const COMMIT: &str = "commit";
    pub const REVEAL_SEED: &str = "reveal_seed";
    pub const REVEAL: &str = "reveal";
    pub const CLEANUP: &str = "cleanup";
    pub const WITHDRAW: &str = "withdraw";

    /// Every constructor and message, for the metadata cross-check.
    pub const ALL: &[&str] = &[
        NEW,
        SET_PARAMS,
        SET_ADMIN,
        CLAIM_TREASURY,
        STAKE,
        UNSTAKE,
        COMPLETE_UNSTAKE,
        LIST_OFFER,
        REMOVE_OFFER,
        CREATE_JOB,
        BID,
        REOPEN_JOB,
        ACCEPT_JOB,
        REPORT,
        COMMIT,
        REVEAL_SEED,
        REVEAL,
        CLEANUP,
        WITHDRAW,
    ];
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
    Job(JobEvent),
    Verifier(VerifierEvent),
    Account(AccountEvent),
    Market(MarketEvent),
}

impl Event {
    /// The job an event is about, if any.
    pub fn job_id(&self) -> Option<u64> {
        match self {
            Event::Job(e) => Some(e.job_id),
            Event::Verifier(e) => Some(e.job_id),
            _ => None,
        }
    }
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
    #[error("event data has {0} bytes left over")]
    Trailing(usize),
}

/// Decodes a marketplace event from its topics and data (the data is the whole event, in
/// field order, topics included).
pub fn decode_event(topics: &[H256], data: &[u8]) -> Result<Event, EventDecodeError> {
    let sig = *topics.first().ok_or(EventDecodeError::NoTopic)?;
    let i = &mut &data[..];
    let ev = if sig == signature_topic(signature::JOB) {
        Event::Job(Decode::decode(i)?)
    } else if sig == signature_topic(signature::VERIFIER) {
        Event::Verifier(Decode::decode(i)?)
    } else if sig == signature_topic(signature::ACCOUNT) {
        Event::Account(Decode::decode(i)?)
    } else if sig == signature_topic(signature::MARKET) {
        Event::Market(Decode::decode(i)?)
    } else {
        return Err(EventDecodeError::UnknownTopic(sig));
    };
    if !i.is_empty() {
        return Err(EventDecodeError::Trailing(i.len()));
    }
    Ok(ev)
}

/// The host's sha256 for the shared commitment and sampling rules.
pub type Sha = hash::HostSha256;

/// `sha256(seed)`: the renter's seed commitment.
pub fn seed_commitment(seed: &Hash32) -> Hash32 {
    hash::seed_commitment::<Sha>(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use subxt::utils::H160;

    #[test]
    fn selector_is_blake2_prefix() {
        // BLAKE2b-256("flip") starts with 0x633aa551: the selector of ink!'s flipper example.
        assert_eq!(selector("flip"), [0x63, 0x3a, 0xa5, 0x51]);
    }

    #[test]
    fn call_data_is_selector_then_args() {
        let data = call_data(msg::WITHDRAW, &());
        assert_eq!(data, selector("withdraw").to_vec());
        let data = call_data("x", &7u32);
        assert_eq!(&data[4..], &[7, 0, 0, 0]);
    }

    #[test]
    fn unknown_or_malformed_events_are_errors_not_panics() {
        let err = decode_event(&[H256([1; 32])], &[]).unwrap_err();
        assert!(matches!(err, EventDecodeError::UnknownTopic(_)));
        assert!(matches!(decode_event(&[], &[]).unwrap_err(), EventDecodeError::NoTopic));
        let short = decode_event(&[signature_topic(signature::JOB)], &[0; 3]);
        assert!(matches!(short.unwrap_err(), EventDecodeError::Data(_)));
        let mut long = JobEvent { job_id: 1, renter: H160([1; 20]), provider: H160::zero(), kind: JobEventKind::Reopened { phase_deadline: 9 } }.encode();
        long.push(0);
        assert!(matches!(decode_event(&[signature_topic(signature::JOB)], &long).unwrap_err(), EventDecodeError::Trailing(1)));
    }

    #[test]
    fn events_round_trip_through_their_encoding() {
        let e = JobEvent {
            job_id: 7,
            renter: H160([1; 20]),
            provider: H160([2; 20]),
            kind: JobEventKind::Refunded { amount: 5, reason: RefundReason::NoMajority },
        };
        let ev = decode_event(&[signature_topic(signature::JOB)], &e.encode()).unwrap();
        assert_eq!(ev, Event::Job(e));
        assert_eq!(ev.job_id(), Some(7));
    }

    #[test]
    fn seed_commitment_is_sha256() {
        // sha256 of 32 zero bytes, a known answer.
        assert_eq!(hex::encode(seed_commitment(&[0; 32])), "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
    }
}

//! Who may read a worker's outputs, and who may upload to a renter's blob server: signed
//! requests, and the reader list kept beside each output.
//!
//! A worker serves an output (its chunks, and a batch's task-root list) only to the accounts
//! granted it — the renter of a job that settled, so a refunded renter does not get the work
//! for free — or to anyone once one of those readers has made it public. A request proves
//! its account with an sr25519 signature in the `Authorization` header:
//!
//! ```text
//! Authorization: CapaCloud <account id hex>.<unix seconds>.<signature hex>
//! signed message: "capacloud-<action>:<root hex>:<unix seconds>"   (action: read | publish | upload)
//! ```
//!
//! A blob server run by `capacloud blobs serve` takes uploads (`PUT`) only signed (action
//! `upload`, naming the content address being stored) by the accounts it was started for,
//! so a stranger who can reach it cannot fill its disk.
//!
//! The signature names the root and the action, so it cannot be used for another output or
//! to publish one; it is accepted for [`MAX_SKEW`] seconds either side of the server's clock
//! (a replay within that window fetches what the signer could fetch anyway). The account's
//! contract address is the pallet-revive mapping of the account id, the address the
//! contract records as the job's renter.

use super::BlobError;
use crate::chain::revive::h160_of;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use subxt::utils::{AccountId32, H160};
use subxt_signer::sr25519::{self, Keypair};

/// The `Authorization` scheme name.
pub const SCHEME: &str = "CapaCloud";

/// Seconds a signed request stays valid either side of the server's clock.
pub const MAX_SKEW: u64 = 300;

/// What a signed request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read an output, its chunks or a batch's task-root list.
    Read,
    /// Make an output (or task-root list) readable by anyone.
    Publish,
    /// Store a blob, output or task-root list under its content address.
    Upload,
}

impl Action {
    fn tag(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Publish => "publish",
            Action::Upload => "upload",
        }
    }
}

/// The bytes signed for `action` on `root` at `time` (unix seconds).
pub fn message(action: Action, root: &[u8; 32], time: u64) -> Vec<u8> {
    format!("capacloud-{}:{}:{time}", action.tag(), hex::encode(root)).into_bytes()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An account that signs its requests (a renter fetching its outputs).
#[derive(Clone)]
pub struct Signer(Arc<Keypair>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({:?})", h160_of(&self.0.public_key().into()))
    }
}

impl Signer {
    pub fn new(keypair: Keypair) -> Self {
        Self(Arc::new(keypair))
    }

    /// The `Authorization` header value for `action` on `root`, signed now.
    pub fn header(&self, action: Action, root: &[u8; 32]) -> String {
        self.header_at(action, root, now())
    }

    /// As [`Signer::header`], signed at `time` (unix seconds).
    pub fn header_at(&self, action: Action, root: &[u8; 32], time: u64) -> String {
        let sig = self.0.sign(&message(action, root, time));
        format!("{SCHEME} {}.{time}.{}", hex::encode(self.0.public_key().0), hex::encode(sig.0))
    }
}

/// The contract address that signed `header` for `action` on `root`.
///
/// # Errors
/// [`BlobError::Unauthorized`]: no header, another scheme, a malformed value, a time more
/// than [`MAX_SKEW`] seconds from now, or a signature that does not verify for this action
/// and root.
pub fn verify(header: Option<&str>, action: Action, root: &[u8; 32]) -> Result<H160, BlobError> {
    verify_at(header, action, root, now())
}

fn verify_at(header: Option<&str>, action: Action, root: &[u8; 32], now: u64) -> Result<H160, BlobError> {
    let bad = |why: &str| BlobError::Unauthorized(why.to_string());
    let header = header.ok_or_else(|| bad("a signed request is required (Authorization: CapaCloud …)"))?;
    let value = header.strip_prefix(SCHEME).and_then(|v| v.strip_prefix(' ')).ok_or_else(|| bad("not a CapaCloud signature"))?;
    let mut parts = value.split('.');
    let (Some(account), Some(time), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("malformed signature"));
    };
    let account: [u8; 32] = hex::decode(account).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| bad("malformed account"))?;
    let time: u64 = time.parse().map_err(|_| bad("malformed time"))?;
    let sig: [u8; 64] = hex::decode(sig).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| bad("malformed signature"))?;
    if time.abs_diff(now) > MAX_SKEW {
        return Err(bad("signature expired or from the future (clock skew over 300 s)"));
    }
    if !sr25519::verify(&sr25519::Signature(sig), message(action, root, time), &sr25519::PublicKey(account)) {
        return Err(bad("signature does not verify"));
    }
    Ok(h160_of(&AccountId32(account)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use subxt_signer::sr25519::dev;

    #[test]
    fn a_signature_names_its_account_action_root_and_time() {
        let alice = Signer::new(dev::alice());
        let root = [7u8; 32];
        let t = 1_800_000_000;
        let h = alice.header_at(Action::Read, &root, t);
        let who = verify_at(Some(&h), Action::Read, &root, t + 10).unwrap();
        assert_eq!(who, h160_of(&dev::alice().public_key().into()));
        let refused = |header: Option<&str>, action, root: &[u8; 32], now| {
            assert!(matches!(verify_at(header, action, root, now), Err(BlobError::Unauthorized(_))), "{header:?}");
        };
        refused(None, Action::Read, &root, t);
        refused(Some(&h), Action::Publish, &root, t);
        refused(Some(&h), Action::Upload, &root, t);
        refused(Some(&h), Action::Read, &[8u8; 32], t);
        refused(Some(&h), Action::Read, &root, t + MAX_SKEW + 1);
        refused(Some(&h), Action::Read, &root, t - MAX_SKEW - 1);
        refused(Some(&h.replacen("CapaCloud", "Bearer", 1)), Action::Read, &root, t);
        refused(Some(&h.replace(&t.to_string(), &(t + 1).to_string())), Action::Read, &root, t);
        // Bob's key with Alice's claimed account does not verify.
        let bob = Signer::new(dev::bob()).header_at(Action::Read, &root, t);
        let alice_hex = hex::encode(dev::alice().public_key().0);
        let bob_hex = hex::encode(dev::bob().public_key().0);
        refused(Some(&bob.replace(&bob_hex, &alice_hex)), Action::Read, &root, t);
        refused(Some("CapaCloud zz.1.2"), Action::Read, &root, t);
        refused(Some("CapaCloud a.b.c.d"), Action::Read, &root, t);
    }
}

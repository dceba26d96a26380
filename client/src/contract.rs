//! Typed handle over one deployed marketplace contract: one method per message.

use crate::chain::marketplace::{self as abi, msg, Params};
use crate::chain::{Chain, ChainError, Deployment, Receipt};
use subxt::utils::H160;

/// Reads the contract artifact (`marketplace.polkavm`) from disk.
pub fn read_code(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
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

    /// The contract's address.
    pub fn address(&self) -> H160 {
        self.address
    }

    /// `version()`.
    pub async fn version(&self) -> Result<u32, ChainError> {
        self.chain.query(self.address, &abi::call_data(msg::VERSION, &())).await
    }

    /// `admin()`.
    pub async fn admin(&self) -> Result<H160, ChainError> {
        self.chain.query(self.address, &abi::call_data(msg::ADMIN, &())).await
    }

    /// `params()`.
    pub async fn params(&self) -> Result<Params, ChainError> {
        self.chain.query(self.address, &abi::call_data(msg::PARAMS, &())).await
    }

    /// `set_params(params)`; refused by the dry-run (nothing signed) when the contract
    /// would return an `Error`.
    pub async fn set_params(&self, params: Params) -> Result<Receipt, ChainError> {
        self.chain.call(self.address, &abi::call_data(msg::SET_PARAMS, &params), 0).await
    }
}

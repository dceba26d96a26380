//! CapaCloud's market indexer: it follows the marketplace contract's finalized events into
//! SQLite or PostgreSQL and serves them as a query API and a dashboard.
//!
//! - [`ingest`] backfills by block ranges and then follows the finalized head; each batch
//!   writes its raw events, the derived rows they changed and the cursor in one transaction.
//! - [`store`] owns the database: the raw `events` table, the derived tables (rebuilt from
//!   the raw ones by [`store::Store::rebuild`]) and the queries.
//! - [`api`] is the HTTP surface (JSON API, OpenAPI document, health, metrics) and
//!   [`dashboard`] the HTML page it serves at `/`.
//!
//! Events are folded by the client's [`capacloud_client::summary::Fold`], the one folding
//! library `capacloud summary` also uses; the chain is read only through
//! [`capacloud_client::chain::Reader`].

pub mod api;
pub mod dashboard;
pub mod ingest;
pub mod store;

use subxt::utils::{H160, H256};

/// What can stop the indexer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Chain(#[from] capacloud_client::chain::ChainError),
    #[error("the database indexes chain {stored:?}, but the node is on chain {node:?}; use another database")]
    WrongChain { stored: H256, node: H256 },
    #[error("the database indexes contract {stored:?}, not {asked:?}; use another database")]
    WrongContract { stored: H160, asked: H160 },
    #[error("block #{number} is {node:?} on the node but {stored:?} in the database: the finalized chain differs from what was indexed; refusing to continue")]
    HashMismatch { number: u32, stored: H256, node: H256 },
    #[error("no contract at {0:?} on this chain (pass --from-block to index from a given block anyway)")]
    NotDeployed(H160),
    #[error("the node did not answer within {0} s (reconnecting)")]
    Stalled(u64),
    #[error("the database holds unreadable data: {0}")]
    Corrupt(String),
}

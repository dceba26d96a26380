//! CapaCloud client library: chain access and the marketplace contract's ABI, shared by
//! the `capacloud` CLI, the provider worker and the integration tests.
//!
//! - [`chain`] is the only module that builds extrinsics, runs dry-runs or decodes events.
//! - [`marketplace`] (re-exported from `chain`) mirrors the contract's messages and events.
//! - [`Marketplace`] is the typed handle over one deployed contract.
//! - [`blob`] is the content-addressed store for specs, inputs and outputs, local or over HTTP.
//! - [`keys`] loads signing keys (URIs, phrases, polkadot.js exports) and makes new ones.
//! - [`renter`] builds, checks, submits and follows jobs.
//! - [`summary`] folds a market's events into per-job and per-provider rows.
//! - [`indexed`] reads the same rows from a `capacloud-indexer`'s API.

pub mod blob;
pub mod chain;
pub mod contract;
pub mod indexed;
pub mod keys;
pub mod renter;
pub mod summary;

pub use chain::marketplace;
pub use contract::Marketplace;

/// Resolves on Ctrl-C or SIGTERM (what `kill` and service managers send): the shutdown
/// signal of every CapaCloud daemon.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

//! CapaCloud provider worker library: what `capacloud-worker` runs, as functions tests can drive.
//!
//! - [`follow`] follows finalized blocks and yields the marketplace's events.
//! - [`provider`] is the job loop: take jobs, run them on the GPU, commit, reveal, verify.

pub mod follow;
pub mod provider;

//! CapaCloud provider worker library: what `capacloud-worker` runs, as functions tests can drive.
//!
//! - [`follow`] follows the best blocks and yields the marketplace's events.
//! - [`provider`] is the job loop: take jobs, run them on the GPU, commit, reveal, verify.
//! - [`lane`] orders long trials, shortest static bound first, preempting longer ones.
//! - [`isolate`] runs kernels in child processes, so a crashing driver takes down only the child.
//! - [`metrics`] is what it counts, served at `/metrics`.
//! - [`config`] is the daemon's configuration: file, env vars, flags.
//! - [`serve`] is its HTTP endpoint: outputs, chunk proofs, blobs, metrics.

pub mod config;
pub mod follow;
pub mod isolate;
pub mod lane;
pub mod metrics;
pub mod provider;
pub mod serve;

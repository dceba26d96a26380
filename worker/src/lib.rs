//! CapaCloud provider worker library: what `capacloud-worker` runs, as functions tests can drive.
//!
//! - [`follow`] follows finalized blocks and yields the marketplace's events.

pub mod follow;

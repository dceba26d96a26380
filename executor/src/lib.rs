//! CapaCloud GPU executor: turns a job spec into an output and its commitment, bit for bit
//! the same on every GPU vendor and on the CPU (lavapipe).
//!
//! - [`spec`]: the content-addressed job spec (SCALE-encoded, `spec_hash` = sha256).
//! - [`merkle`]: the output commitment (Merkle root over fixed-size chunks), inclusion proofs.
//! - [`workloads`]: the library of exact kernels, each with a CPU reference.
//! - [`gpu`]: device acquisition (a real GPU, else lavapipe); [`exec`]: running a spec on it.
//! - [`guard`]: the loop budget that makes loops end the same way on every adapter.
//! - [`cost`]: a static bound on the operations a task can execute, read from the WGSL.

pub mod batch;
pub mod cost;
pub mod exec;
pub mod gpu;
pub mod guard;
pub mod merkle;
pub mod score;
pub mod spec;
pub mod workloads;

pub use exec::{execute, ExecError, ExecLimits, Execution, Plan};
pub use gpu::{AdapterPreference, Gpu, GpuError};

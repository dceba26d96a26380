//! Runs a kernel in a child process (`capacloud-worker --run-kernel DIR`), so a shader that
//! crashes or wedges the GPU driver takes down only the child: the daemon kills it at the
//! time limit, counts the failure and goes on.
//!
//! The exchange is a private directory: the parent writes `spec` (the SCALE-encoded spec)
//! and `input-<binding>` files; the child opens its own adapter (same `CAPACLOUD_ADAPTER`),
//! runs the kernel with the same limits, and writes `output`. The parent recomputes the
//! Merkle commitment from the output itself.

use capacloud_executor::merkle::{self, Commitment};
use capacloud_executor::spec::JobSpec;
use capacloud_executor::{ExecLimits, Gpu};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Exit code of a child whose kernel failed (its reason is on stderr).
pub const EXIT_KERNEL_FAILED: i32 = 3;

/// Time a child gets beyond the kernel's limit, for starting and opening its adapter.
pub const STARTUP_GRACE: Duration = Duration::from_secs(30);

/// Why an isolated run produced no output.
#[derive(Debug, thiserror::Error)]
pub enum IsolateError {
    #[error("kernel child: {0}")]
    Io(#[from] std::io::Error),
    #[error("kernel child killed after {0:?} (time limit + start-up grace)")]
    Timeout(Duration),
    #[error("kernel child failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
}

/// Runs `spec` on `inputs` in a child process of `exe`; returns the output and its commitment.
/// The child is killed `grace` after the kernel's own time limit (use [`STARTUP_GRACE`]).
///
/// # Errors
/// [`IsolateError::Timeout`] (the child is killed), [`IsolateError::Failed`] for a failed
/// kernel or a crashed child, I/O errors.
pub async fn execute(exe: &Path, spec: &JobSpec, inputs: &BTreeMap<u32, Vec<u8>>, limits: &ExecLimits, grace: Duration) -> Result<(Vec<u8>, Commitment), IsolateError> {
    let dir = tempfile::Builder::new().prefix("capacloud-kernel-").tempdir()?;
    std::fs::write(dir.path().join("spec"), spec.encode_spec())?;
    for (binding, data) in inputs {
        std::fs::write(dir.path().join(format!("input-{binding}")), data)?;
    }
    let child = tokio::process::Command::new(exe)
        .arg("--run-kernel")
        .arg(dir.path())
        .arg("--kernel-timeout-ms")
        .arg(limits.timeout.as_millis().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let limit = limits.timeout + grace;
    // On timeout the child is dropped, and `kill_on_drop` kills it.
    let out = tokio::time::timeout(limit, child.wait_with_output()).await.map_err(|_| IsolateError::Timeout(limit))??;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
        return Err(IsolateError::Failed { status: out.status.to_string(), stderr: tail });
    }
    let output = std::fs::read(dir.path().join("output"))?;
    let commitment = merkle::commit(&output, merkle::DEFAULT_CHUNK);
    Ok((output, commitment))
}

/// The child's side: runs the kernel described in `dir` and writes `dir/output`.
///
/// # Errors
/// A description of what failed (the child prints it and exits [`EXIT_KERNEL_FAILED`]).
pub fn run_kernel_dir(dir: &Path, timeout: Duration) -> Result<(), String> {
    let bytes = std::fs::read(dir.join("spec")).map_err(|e| format!("reading the spec: {e}"))?;
    let limits = ExecLimits { timeout, ..ExecLimits::default() };
    let spec = JobSpec::decode_spec_with_limits(&bytes, &limits.spec).map_err(|e| format!("spec: {e}"))?;
    let mut inputs = BTreeMap::new();
    for b in &spec.bindings {
        if let capacloud_executor::spec::BindingKind::Input(_) = b.kind {
            let data = std::fs::read(dir.join(format!("input-{}", b.binding))).map_err(|e| format!("input {}: {e}", b.binding))?;
            inputs.insert(b.binding, data);
        }
    }
    let gpu = Gpu::from_env().map_err(|e| format!("opening a GPU adapter: {e}"))?;
    let exec = capacloud_executor::execute(&gpu, &spec, &inputs, &limits).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("output"), &exec.output).map_err(|e| format!("writing the output: {e}"))?;
    Ok(())
}

//! Runs renter kernels in a child process (`capacloud-worker --run-kernel DIR`), so a shader
//! that crashes or wedges the GPU driver, or compiles forever, takes down only the child:
//! the daemon kills it at the time limit, counts the failure and goes on. This is the
//! default; every renter kernel (its compilation included) runs here.
//!
//! The child starts with a cleared environment (only the adapter-selection and Vulkan
//! loader variables pass through), no core dumps, a cap on the file sizes it may write and
//! on its CPU time, and a scheduling [`Priority`]: a trial that may run until its time limit
//! runs in the background, so on a CPU adapter (lavapipe) a renter's runaway kernel takes
//! only the cycles that the kernels of signed jobs and quick trials leave. The exchange is a private directory: the parent writes `spec` (the
//! SCALE-encoded spec) and, per task, `task-<i>/input-<binding>`; the child opens its own
//! adapter (same `CAPACLOUD_ADAPTER`), runs the tasks in order with the same limits, and
//! writes `task-<i>/output`. The parent recomputes every Merkle commitment itself.

use capacloud_executor::merkle::{self, Commitment};
use capacloud_executor::spec::JobSpec;
use capacloud_executor::{ExecLimits, Gpu};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Exit code of a child whose kernel failed (its reason is on stderr).
pub const EXIT_KERNEL_FAILED: i32 = 3;

/// Time a child gets beyond its kernels' limits, for starting and opening its adapter.
pub const STARTUP_GRACE: Duration = Duration::from_secs(30);

/// Environment variables a kernel child keeps (everything else is cleared).
pub const PASSED_ENV: &[&str] =
    &["PATH", "CAPACLOUD_ADAPTER", "CAPACLOUD_LOG", "WGPU_BACKEND", "VK_ICD_FILENAMES", "VK_DRIVER_FILES", "LD_LIBRARY_PATH", "XDG_RUNTIME_DIR"];

/// Largest file a kernel child may write (its outputs): 4 GiB.
pub const MAX_CHILD_FILE: u64 = 4 << 30;

/// How the kernel child is scheduled against the worker's other kernels (its nice value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Nice 0, as the daemon: signed jobs' kernels, quick trials, health probes.
    Normal,
    /// Nice 19 ([`BACKGROUND_NICE`]): trials that may run until their time limit.
    Background,
}

/// The nice value of a [`Priority::Background`] child: the lowest priority, about 1/70 of a
/// normal process's CPU share while one wants the CPU.
pub const BACKGROUND_NICE: i32 = 19;

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
///
/// # Errors
/// As [`execute_tasks`].
pub async fn execute(exe: &Path, spec: &JobSpec, inputs: &BTreeMap<u32, Vec<u8>>, limits: &ExecLimits, grace: Duration) -> Result<(Vec<u8>, Commitment), IsolateError> {
    let mut out = execute_tasks(exe, spec, std::slice::from_ref(inputs), limits, grace).await?;
    Ok(out.remove(0))
}

/// Runs `spec` over every task's inputs in one child process of `exe` at normal priority;
/// returns each task's output and commitment, in order. The child is killed `grace` after
/// the tasks' time limits together (use [`STARTUP_GRACE`]).
///
/// # Errors
/// [`IsolateError::Timeout`] (the child is killed), [`IsolateError::Failed`] for a failed
/// kernel or a crashed child, I/O errors.
pub async fn execute_tasks(
    exe: &Path,
    spec: &JobSpec,
    tasks: &[BTreeMap<u32, Vec<u8>>],
    limits: &ExecLimits,
    grace: Duration,
) -> Result<Vec<(Vec<u8>, Commitment)>, IsolateError> {
    execute_tasks_at(exe, spec, tasks, limits, grace, Priority::Normal).await
}

/// [`execute_tasks`] with the child scheduled at `priority`.
///
/// # Errors
/// As [`execute_tasks`].
pub async fn execute_tasks_at(
    exe: &Path,
    spec: &JobSpec,
    tasks: &[BTreeMap<u32, Vec<u8>>],
    limits: &ExecLimits,
    grace: Duration,
    priority: Priority,
) -> Result<Vec<(Vec<u8>, Commitment)>, IsolateError> {
    let dir = tempfile::Builder::new().prefix("capacloud-kernel-").tempdir()?;
    std::fs::write(dir.path().join("spec"), spec.encode_spec())?;
    for (i, inputs) in tasks.iter().enumerate() {
        let t = dir.path().join(format!("task-{i}"));
        std::fs::create_dir(&t)?;
        for (binding, data) in inputs {
            std::fs::write(t.join(format!("input-{binding}")), data)?;
        }
    }
    let limit = limits.timeout * (tasks.len() as u32).max(1) + grace;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--run-kernel")
        .arg(dir.path())
        .arg("--kernel-timeout-ms")
        .arg(limits.timeout.as_millis().to_string())
        .env_clear()
        .envs(PASSED_ENV.iter().filter_map(|k| std::env::var_os(k).map(|v| (*k, v))))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let cpu_secs = limit.as_secs().saturating_mul(std::thread::available_parallelism().map_or(1, |n| n.get() as u64)) + 1;
    let nice = match priority {
        Priority::Normal => None,
        Priority::Background => Some(BACKGROUND_NICE),
    };
    // SAFETY: only async-signal-safe calls (setrlimit, setpriority) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let set = |resource, value: u64| {
                let lim = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
                if libc::setrlimit(resource, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            set(libc::RLIMIT_CORE, 0)?;
            set(libc::RLIMIT_FSIZE, MAX_CHILD_FILE)?;
            set(libc::RLIMIT_CPU, cpu_secs)?;
            // The child's own priority (who 0: the calling process), inherited by every
            // thread the driver starts in it.
            if let Some(n) = nice {
                if libc::setpriority(libc::PRIO_PROCESS, 0, n) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // On timeout the child is dropped, and `kill_on_drop` kills it.
    let out = tokio::time::timeout(limit, child.wait_with_output()).await.map_err(|_| IsolateError::Timeout(limit))??;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
        return Err(IsolateError::Failed { status: out.status.to_string(), stderr: tail });
    }
    let mut results = Vec::with_capacity(tasks.len());
    for i in 0..tasks.len() {
        let output = std::fs::read(dir.path().join(format!("task-{i}")).join("output"))?;
        let commitment = merkle::commit(&output, merkle::DEFAULT_CHUNK);
        results.push((output, commitment));
    }
    Ok(results)
}

/// The child's side: runs every task described in `dir` and writes their outputs.
///
/// # Errors
/// A description of what failed (the child prints it and exits [`EXIT_KERNEL_FAILED`]).
pub fn run_kernel_dir(dir: &Path, timeout: Duration) -> Result<(), String> {
    let bytes = std::fs::read(dir.join("spec")).map_err(|e| format!("reading the spec: {e}"))?;
    let limits = ExecLimits { timeout, ..ExecLimits::default() };
    let spec = JobSpec::decode_spec_with_limits(&bytes, &limits.spec).map_err(|e| format!("spec: {e}"))?;
    let gpu = Gpu::from_env().map_err(|e| format!("opening a GPU adapter: {e}"))?;
    let mut tasks = Vec::new();
    while dir.join(format!("task-{}", tasks.len())).is_dir() {
        let t = dir.join(format!("task-{}", tasks.len()));
        let mut inputs = BTreeMap::new();
        for b in &spec.bindings {
            if let capacloud_executor::spec::BindingKind::Input(_) = b.kind {
                let data = std::fs::read(t.join(format!("input-{}", b.binding))).map_err(|e| format!("input {}: {e}", b.binding))?;
                inputs.insert(b.binding, data);
            }
        }
        tasks.push(inputs);
    }
    let mut write_error = None;
    capacloud_executor::batch::execute_batch(&gpu, &spec, tasks, &limits, |i, exec| {
        if let Err(e) = std::fs::write(dir.join(format!("task-{i}")).join("output"), &exec.output) {
            write_error.get_or_insert(format!("writing task {i}'s output: {e}"));
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    write_error.map_or(Ok(()), Err)
}

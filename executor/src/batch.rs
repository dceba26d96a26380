//! Task batches: one kernel run over N tasks, each with its own inputs, listed in a
//! content-addressed task manifest; each task's output gets its own Merkle commitment.
//!
//! A batch job is a spec plus a [`TaskManifest`]. The spec fixes the kernel, the dispatch
//! and every binding's shape, and its own input references are task 0's; the manifest lists
//! every task's inputs (sha256, URI, length) in the order of the spec's input bindings, with
//! the lengths the spec gives. A single-task job has no manifest ([`TaskManifest::single`]
//! describes it the same way). The manifest's sha256 is the job's `manifest_hash` on chain.
//!
//! [`execute_batch`] compiles the kernel once and streams the tasks through it in two sets
//! of buffers: while the device runs one task, the output of the task before it is read
//! back and hashed and the next task's inputs are uploaded.
use crate::exec::{checks_for, Buffers, ExecError, ExecLimits, Execution, Kernel, Submitted};
use crate::gpu::Gpu;
use crate::spec::{sha256, BindingKind, InputRef, JobSpec};
use codec::{Decode, Encode};
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// The manifest format this build writes and reads.
pub const MANIFEST_VERSION: u16 = 1;
/// Longest URI of a task input, in bytes.
pub const MAX_TASK_URI: usize = 512;

/// Every task's inputs.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TaskManifest {
    pub version: u16,
    /// Per task, one reference per input binding of the spec, in binding order.
    pub tasks: Vec<Vec<InputRef>>,
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the task manifest does not decode: {0}")]
    Decode(String),
    #[error("task manifest version {0} is not supported (this build reads {MANIFEST_VERSION})")]
    Version(u16),
    #[error("the manifest lists {found} tasks, the job {expected}")]
    TaskCount { found: usize, expected: u32 },
    #[error("task {task}: {reason}")]
    Task { task: usize, reason: String },
    #[error("task 0 of the manifest is not the spec's inputs")]
    FirstTaskDiffers,
    #[error("the manifest's sha256 is not the job's manifest hash")]
    HashMismatch,
}

/// The spec's input bindings: (binding, reference), in binding order.
pub fn spec_inputs(spec: &JobSpec) -> Vec<(u32, InputRef)> {
    spec.bindings
        .iter()
        .filter_map(|b| match &b.kind {
            BindingKind::Input(r) => Some((b.binding, r.clone())),
            _ => None,
        })
        .collect()
}

impl TaskManifest {
    /// The manifest of a single-task job: its spec's inputs.
    pub fn single(spec: &JobSpec) -> Self {
        Self { version: MANIFEST_VERSION, tasks: vec![spec_inputs(spec).into_iter().map(|(_, r)| r).collect()] }
    }

    /// The SCALE encoding (what is stored and hashed).
    pub fn encode_manifest(&self) -> Vec<u8> {
        self.encode()
    }

    /// sha256 of the encoding: the job's `manifest_hash`.
    pub fn hash(&self) -> [u8; 32] {
        sha256(&self.encode_manifest())
    }

    /// Decodes and checks a manifest against the job: `tasks` tasks, shaped as `spec`,
    /// task 0 being the spec's own inputs, hashing to `expected_hash`.
    ///
    /// # Errors
    /// One [`ManifestError`] per kind of mismatch.
    pub fn decode_for(bytes: &[u8], spec: &JobSpec, tasks: u32, expected_hash: &[u8; 32]) -> Result<Self, ManifestError> {
        if sha256(bytes) != *expected_hash {
            return Err(ManifestError::HashMismatch);
        }
        let mut input = bytes;
        let m = Self::decode(&mut input).map_err(|e| ManifestError::Decode(e.to_string()))?;
        if !input.is_empty() {
            return Err(ManifestError::Decode(format!("{} trailing bytes", input.len())));
        }
        m.check(spec, tasks)?;
        Ok(m)
    }

    /// Checks the manifest's shape against `spec` and the job's task count.
    ///
    /// # Errors
    /// [`ManifestError`].
    pub fn check(&self, spec: &JobSpec, tasks: u32) -> Result<(), ManifestError> {
        if self.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(self.version));
        }
        if self.tasks.len() != tasks as usize || self.tasks.is_empty() {
            return Err(ManifestError::TaskCount { found: self.tasks.len(), expected: tasks });
        }
        let shape = spec_inputs(spec);
        for (i, refs) in self.tasks.iter().enumerate() {
            if refs.len() != shape.len() {
                return Err(ManifestError::Task { task: i, reason: format!("{} inputs, the spec has {}", refs.len(), shape.len()) });
            }
            for ((binding, want), got) in shape.iter().zip(refs) {
                if got.len != want.len {
                    return Err(ManifestError::Task {
                        task: i,
                        reason: format!("input {binding} is {} bytes, the spec's binding {}", got.len, want.len),
                    });
                }
                if got.uri.is_empty() || got.uri.len() > MAX_TASK_URI {
                    return Err(ManifestError::Task { task: i, reason: format!("input {binding} has an empty or too long URI") });
                }
            }
        }
        if self.tasks[0] != shape.into_iter().map(|(_, r)| r).collect::<Vec<_>>() {
            return Err(ManifestError::FirstTaskDiffers);
        }
        Ok(())
    }

    /// Task `task`'s inputs as (binding, reference).
    pub fn inputs_of(&self, spec: &JobSpec, task: usize) -> Vec<(u32, InputRef)> {
        spec_inputs(spec).into_iter().map(|(b, _)| b).zip(self.tasks[task].iter().cloned()).collect()
    }
}

/// Tasks on the device at once in [`execute_batch`]: each of them in its own set of
/// buffers, so that one task's output is read back and hashed while the next one runs.
pub const IN_FLIGHT: usize = 2;

/// Runs `spec` over every task in `tasks` (each a binding → bytes map shaped as the spec),
/// calling `done(i, execution)` in task order as each task's output is committed. The
/// kernel is compiled once; the tasks stream through [`IN_FLIGHT`] sets of buffers. Every
/// task runs under `limits.timeout`, counted from when the device could start it (its
/// submission, or the end of the task queued before it).
///
/// The inputs' lengths are checked against the spec's; their hashes are the caller's to
/// check against the manifest (the worker does as it fetches them).
///
/// # Errors
/// The first [`ExecError`]: of the spec or the kernel before any task runs, then a task's
/// ([`ExecError::MissingInput`], [`ExecError::InputLength`], a timeout, a lost device), or
/// what `done` returns. No later task is started after an error.
pub fn execute_batch(
    gpu: &Gpu,
    spec: &JobSpec,
    tasks: impl IntoIterator<Item = BTreeMap<u32, Vec<u8>>>,
    limits: &ExecLimits,
    done: impl FnMut(usize, Execution) -> Result<(), ExecError>,
) -> Result<(), ExecError> {
    execute_batch_with(gpu, spec, tasks, limits, IN_FLIGHT, done)
}

/// [`execute_batch`] with `in_flight` sets of buffers (at least 1: then each task is read
/// back before the next is submitted). For benchmarks and tests.
///
/// # Errors
/// As [`execute_batch`].
pub fn execute_batch_with(
    gpu: &Gpu,
    spec: &JobSpec,
    tasks: impl IntoIterator<Item = BTreeMap<u32, Vec<u8>>>,
    limits: &ExecLimits,
    in_flight: usize,
    mut done: impl FnMut(usize, Execution) -> Result<(), ExecError>,
) -> Result<(), ExecError> {
    let in_flight = in_flight.max(1);
    let kernel = Kernel::compile(gpu, spec, None, limits, checks_for(spec))?;
    let mut sets: Vec<Buffers> = Vec::with_capacity(in_flight);
    let mut queued: VecDeque<(usize, Submitted)> = VecDeque::with_capacity(in_flight);
    // When the device finished the last task collected: the next one could start then.
    let mut free_since = Instant::now();
    let mut finish = |sets: &[Buffers], (i, run): (usize, Submitted), free_since: &mut Instant| {
        let started = (*free_since).max(run.at);
        let (execution, finished) = sets[i % in_flight].collect(gpu, run, started, limits.timeout)?;
        *free_since = finished;
        done(i, execution)
    };
    for (i, inputs) in tasks.into_iter().enumerate() {
        check_shapes(spec, &inputs)?;
        if queued.len() == in_flight {
            // Its buffers are the ones this task reuses.
            finish(&sets, queued.pop_front().expect("the queue is full"), &mut free_since)?;
        }
        if sets.len() == i % in_flight {
            sets.push(kernel.buffers(gpu, spec, sets.len())?);
        }
        let set = &sets[i % in_flight];
        set.write_inputs(gpu, &inputs);
        queued.push_back((i, set.submit(gpu)?));
    }
    while let Some(run) = queued.pop_front() {
        finish(&sets, run, &mut free_since)?;
    }
    Ok(())
}

/// Checks that a task's inputs have the spec's bindings and lengths.
fn check_shapes(spec: &JobSpec, inputs: &BTreeMap<u32, Vec<u8>>) -> Result<(), ExecError> {
    for (binding, r) in spec.inputs() {
        let data = inputs.get(&binding).ok_or(ExecError::MissingInput { binding })?;
        if data.len() as u64 != r.len {
            return Err(ExecError::InputLength { binding, expected: r.len, found: data.len() as u64 });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Binding, Determinism, FORMAT_VERSION};

    fn spec() -> JobSpec {
        JobSpec {
            version: FORMAT_VERSION,
            wgsl: String::new(),
            entry_point: "main".into(),
            workgroups: [1, 1, 1],
            bindings: vec![
                Binding { binding: 0, kind: BindingKind::Input(InputRef { sha256: [1; 32], uri: "sha256:01".into(), len: 8 }) },
                Binding { binding: 1, kind: BindingKind::Output { len: 8 } },
            ],
            work_units: 1,
            determinism: Determinism::Exact,
            passes: vec![],
        }
    }

    fn manifest(n: usize) -> TaskManifest {
        let mut m = TaskManifest::single(&spec());
        for i in 1..n {
            m.tasks.push(vec![InputRef { sha256: [i as u8; 32], uri: format!("sha256:{i}"), len: 8 }]);
        }
        m
    }

    #[test]
    fn a_well_formed_manifest_round_trips() {
        let m = manifest(4);
        let bytes = m.encode_manifest();
        assert_eq!(TaskManifest::decode_for(&bytes, &spec(), 4, &m.hash()).unwrap(), m);
        assert_eq!(m.inputs_of(&spec(), 2)[0].0, 0);
        assert_eq!(m.inputs_of(&spec(), 2)[0].1.sha256, [2; 32]);
    }

    #[test]
    fn every_mismatch_is_its_own_error() {
        let s = spec();
        let m = manifest(3);
        let h = m.hash();
        let b = m.encode_manifest();
        assert_eq!(TaskManifest::decode_for(&b, &s, 3, &[0; 32]), Err(ManifestError::HashMismatch));
        assert!(matches!(TaskManifest::decode_for(&b, &s, 4, &h), Err(ManifestError::TaskCount { found: 3, expected: 4 })));
        let mut bad = m.clone();
        bad.tasks[1][0].len = 9;
        assert!(matches!(bad.check(&s, 3), Err(ManifestError::Task { task: 1, .. })));
        let mut bad = m.clone();
        let extra = bad.tasks[2][0].clone();
        bad.tasks[2].push(extra);
        assert!(matches!(bad.check(&s, 3), Err(ManifestError::Task { task: 2, .. })));
        let mut bad = m.clone();
        bad.tasks[0][0].sha256 = [9; 32];
        assert_eq!(bad.check(&s, 3), Err(ManifestError::FirstTaskDiffers));
        let mut bad = m.clone();
        bad.version = 9;
        assert_eq!(bad.check(&s, 3), Err(ManifestError::Version(9)));
        let mut trailing = b.clone();
        trailing.push(0);
        assert!(matches!(TaskManifest::decode_for(&trailing, &s, 3, &sha256(&trailing)), Err(ManifestError::Decode(_))));
        let empty = TaskManifest { version: MANIFEST_VERSION, tasks: vec![] };
        assert!(matches!(empty.check(&s, 0), Err(ManifestError::TaskCount { .. })));
    }
}

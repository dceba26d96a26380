//! Runs a job spec on a [`Gpu`]: validates the WGSL, checks the spec's bindings against the
//! shader's reflection and the inputs against their hashes, dispatches within the device's
//! limits and a time limit, reads the output back through staging buffers and commits to it.
//!
//! A multi-pass spec (format version 2) runs its dispatches in order inside one compute pass of
//! one submission, so the one time limit covers them all; wgpu orders the dispatches and makes
//! each one's storage writes visible to the next. Each dispatch gets the pipeline of its entry
//! point and a bind group of exactly the bindings that entry point uses, with the pass's own
//! uniform buffer where the pass replaces a declared uniform's bytes.
//!
//! User kernels always run with naga's bounds checks. Only the library's own kernels, whose
//! source is byte-identical to a [`crate::workloads`] kernel written so that no access can
//! leave its array, may run without them ([`Checks::TrustedLibraryKernel`]), and only when
//! the spec's parameters, buffers and dispatch agree with each other.

use crate::gpu::Gpu;
use crate::merkle::{Commitment, MerkleBuilder, DEFAULT_CHUNK};
use crate::spec::{sha256, BindingKind, JobSpec, SpecError, SpecLimits, FORMAT_VERSION};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wgpu::naga;

/// Runtime safety checks compiled into a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Bounds checks and loop bounding on (every user kernel). The loop budget of
    /// [`crate::guard`] applies under both settings.
    On,
    /// Off: allowed only where [`crate::workloads::trusted_without_checks`] proves every
    /// index in range (the library's tiled matmul with a consistent shape).
    TrustedLibraryKernel,
}

/// Limits on a single execution.
#[derive(Clone, Debug)]
pub struct ExecLimits {
    pub spec: SpecLimits,
    /// Wall-clock limit from submission to output read back.
    pub timeout: Duration,
}

impl Default for ExecLimits {
    fn default() -> Self {
        Self { spec: SpecLimits::default(), timeout: Duration::from_secs(60) }
    }
}

/// Why a job did not produce an output. Every variant is a job failure, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("invalid job spec: {0}")]
    Spec(#[from] SpecError),
    #[error("WGSL does not parse at line {line}, column {column}: {message}")]
    WgslParse { line: u32, column: u32, message: String },
    #[error("WGSL does not validate at line {line}, column {column}: {message}")]
    WgslInvalid { line: u32, column: u32, message: String },
    #[error("the shader has no compute entry point `{0}`")]
    NoEntryPoint(String),
    #[error("shader binding @group({group}) @binding({binding}) is outside bind group 0")]
    BindGroupNotZero { group: u32, binding: u32 },
    #[error("shader binding {binding} is used by the kernel but the spec does not declare it")]
    UndeclaredBinding { binding: u32 },
    #[error("spec binding {binding} is not used by the kernel's entry point (or, in a multi-pass job, by any of its passes)")]
    UnusedBinding { binding: u32 },
    #[error("pass {pass} replaces the uniform at binding {binding}, which its entry point does not use")]
    PassUniformUnused { pass: usize, binding: u32 },
    #[error("binding {binding}: the spec declares {spec} but the shader declares {shader}")]
    BindingKindMismatch { binding: u32, spec: &'static str, shader: &'static str },
    #[error("input for binding {binding} is missing")]
    MissingInput { binding: u32 },
    #[error("input for binding {binding} has {found} bytes, the spec says {expected}")]
    InputLength { binding: u32, expected: u64, found: u64 },
    #[error("input for binding {binding} has sha256 {found}, the spec says {expected}")]
    InputHash { binding: u32, expected: String, found: String },
    #[error("binding {binding}: {len} bytes exceed the device's limit of {max}")]
    BufferTooLarge { binding: u32, len: u64, max: u64 },
    #[error("dispatch of {requested} workgroups in dimension {dim} exceeds the device's limit of {max}")]
    DispatchTooLarge { dim: usize, requested: u32, max: u32 },
    #[error("{0}")]
    TooManyLoops(#[from] crate::guard::TooManyLoops),
    #[error("entry point `{entry}`: {what} is {value}, over the portable limit of {max} (what every adapter runs)")]
    NotPortable { entry: String, what: &'static str, value: u64, max: u64 },
    #[error("the shader declares pipeline-overridable constants (`override {0}`); a job cannot set them, so its workgroup sizes and work must be fixed in the source")]
    Overrides(String),
    #[error("the kernel does not validate with its loop budget compiled in: {0}")]
    Guard(String),
    #[error("checks can only be turned off for library kernels")]
    UntrustedKernel,
    #[error("the kernel did not finish within {0:?}; the device is abandoned")]
    Timeout(Duration),
    #[error("the GPU device was lost")]
    DeviceLost,
    #[error("the device rejected the job: {0}")]
    Device(String),
}

/// A kernel's output and its commitment.
#[derive(Clone, Debug)]
pub struct Execution {
    /// All output bindings, concatenated in binding order.
    pub output: Vec<u8>,
    pub commitment: Commitment,
    /// Submission to read-back, wall clock.
    pub elapsed: Duration,
}

/// What kind of resource a binding is, as the spec and the shader see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Input,
    Output,
    Uniform,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::Input => "a read-only storage buffer",
            Slot::Output => "a read-write storage buffer",
            Slot::Uniform => "a uniform buffer",
        }
    }
}

/// Parses and validates WGSL, returning the module and its analysis.
///
/// # Errors
/// [`ExecError::WgslParse`] / [`ExecError::WgslInvalid`] with the line and column.
pub fn validate_wgsl(source: &str) -> Result<(naga::Module, naga::valid::ModuleInfo), ExecError> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        let loc = e.location(source);
        ExecError::WgslParse {
            line: loc.map(|l| l.line_number).unwrap_or(0),
            column: loc.map(|l| l.line_position).unwrap_or(0),
            message: e.emit_to_string(source),
        }
    })?;
    let info = validator()
        .validate(&module)
        .map_err(|e| {
            let loc = e.location(source);
            ExecError::WgslInvalid {
                line: loc.map(|l| l.line_number).unwrap_or(0),
                column: loc.map(|l| l.line_position).unwrap_or(0),
                message: e.emit_to_string(source),
            }
        })?;
    Ok((module, info))
}

/// The bindings the entry point actually uses, by binding number.
fn reflect(module: &naga::Module, info: &naga::valid::ModuleInfo, entry: &str) -> Result<BTreeMap<u32, Slot>, ExecError> {
    let (index, _) = module
        .entry_points
        .iter()
        .enumerate()
        .find(|(_, ep)| ep.name == entry && ep.stage == naga::ShaderStage::Compute)
        .ok_or_else(|| ExecError::NoEntryPoint(entry.to_string()))?;
    let ep_info = info.get_entry_point(index);
    let mut used = BTreeMap::new();
    for (handle, var) in module.global_variables.iter() {
        let Some(rb) = &var.binding else { continue };
        if ep_info[handle].is_empty() {
            continue;
        }
        if rb.group != 0 {
            return Err(ExecError::BindGroupNotZero { group: rb.group, binding: rb.binding });
        }
        let slot = match var.space {
            naga::AddressSpace::Uniform => Slot::Uniform,
            naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => Slot::Output,
            naga::AddressSpace::Storage { .. } => Slot::Input,
            _ => return Err(ExecError::UndeclaredBinding { binding: rb.binding }),
        };
        used.insert(rb.binding, slot);
    }
    Ok(used)
}

/// Compute limits every kernel must fit: wgpu's defaults, which every adapter supports. A
/// kernel over the limits of some adapters would run on a provider and fail on a verifier
/// (or the reverse), so no one may be asked to run one.
pub const PORTABLE: wgpu::Limits = wgpu::Limits {
    max_compute_workgroup_storage_size: 16_384,
    max_compute_invocations_per_workgroup: 256,
    max_compute_workgroup_size_x: 256,
    max_compute_workgroup_size_y: 256,
    max_compute_workgroup_size_z: 64,
    ..wgpu::Limits::downlevel_defaults()
};

/// Checks entry point `entry`'s workgroup size and workgroup memory against [`PORTABLE`].
fn check_portable(module: &naga::Module, info: &naga::valid::ModuleInfo, entry: &str) -> Result<(), ExecError> {
    let Some((index, ep)) = module.entry_points.iter().enumerate().find(|(_, ep)| ep.name == entry && ep.stage == naga::ShaderStage::Compute) else {
        return Err(ExecError::NoEntryPoint(entry.to_string()));
    };
    let over = |what: &'static str, value: u64, max: u32| {
        (value > u64::from(max)).then(|| ExecError::NotPortable { entry: entry.to_string(), what, value, max: u64::from(max) })
    };
    let [x, y, z] = ep.workgroup_size.map(u64::from);
    let ep_info = info.get_entry_point(index);
    let shared: u64 = module
        .global_variables
        .iter()
        .filter(|(h, v)| v.space == naga::AddressSpace::WorkGroup && !ep_info[*h].is_empty())
        .map(|(_, v)| u64::from(module.types[v.ty].inner.size(module.to_ctx())))
        .sum();
    let checks = [
        over("the workgroup size along x", x, PORTABLE.max_compute_workgroup_size_x),
        over("the workgroup size along y", y, PORTABLE.max_compute_workgroup_size_y),
        over("the workgroup size along z", z, PORTABLE.max_compute_workgroup_size_z),
        over("the invocations per workgroup", x * y * z, PORTABLE.max_compute_invocations_per_workgroup),
        over("the workgroup memory in bytes", shared, PORTABLE.max_compute_workgroup_storage_size),
    ];
    checks.into_iter().flatten().next().map_or(Ok(()), Err)
}

/// What kind of resource each spec binding is.
fn declared_slots(spec: &JobSpec) -> BTreeMap<u32, Slot> {
    spec.bindings
        .iter()
        .map(|b| {
            let slot = match b.kind {
                BindingKind::Input(_) => Slot::Input,
                BindingKind::Output { .. } => Slot::Output,
                BindingKind::Uniform { .. } => Slot::Uniform,
            };
            (b.binding, slot)
        })
        .collect()
}

/// Checks that every binding `used` by an entry point is declared with the same kind.
fn check_used(declared: &BTreeMap<u32, Slot>, used: &BTreeMap<u32, Slot>) -> Result<(), ExecError> {
    for (&binding, &got) in used {
        match declared.get(&binding) {
            None => return Err(ExecError::UndeclaredBinding { binding }),
            Some(&want) if want != got => {
                return Err(ExecError::BindingKindMismatch { binding, spec: want.name(), shader: got.name() })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks the spec's bindings against the shader's, one to one (a single-pass job).
fn check_bindings(spec: &JobSpec, used: &BTreeMap<u32, Slot>) -> Result<(), ExecError> {
    let declared = declared_slots(spec);
    for (&binding, &want) in &declared {
        match used.get(&binding) {
            None => return Err(ExecError::UnusedBinding { binding }),
            Some(&got) if got != want => {
                return Err(ExecError::BindingKindMismatch { binding, spec: want.name(), shader: got.name() })
            }
            Some(_) => {}
        }
    }
    check_used(&declared, used)
}

/// The bindings each dispatch of `spec` uses, in dispatch order, after checking them against
/// the spec: a single-pass job's entry point uses exactly the declared bindings; in a
/// multi-pass job each entry point uses declared bindings of the right kind, each pass's
/// uniform replacement is used by its entry point, and every declared binding is used by at
/// least one dispatch.
fn dispatch_bindings(
    spec: &JobSpec,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
) -> Result<Vec<BTreeMap<u32, Slot>>, ExecError> {
    if spec.passes.is_empty() {
        let used = reflect(module, info, &spec.entry_point)?;
        check_bindings(spec, &used)?;
        return Ok(vec![used]);
    }
    let declared = declared_slots(spec);
    let mut all = Vec::new();
    for (index, (entry, _, uniform)) in spec.dispatches().enumerate() {
        let used = reflect(module, info, entry)?;
        check_used(&declared, &used)?;
        if let Some(u) = uniform {
            if !used.contains_key(&u.binding) {
                return Err(ExecError::PassUniformUnused { pass: index - 1, binding: u.binding });
            }
        }
        all.push(used);
    }
    if let Some(&binding) = declared.keys().find(|b| !all.iter().any(|used| used.contains_key(b))) {
        return Err(ExecError::UnusedBinding { binding });
    }
    Ok(all)
}

/// Everything that can be checked about a spec without a device: its fields and limits,
/// the WGSL (parse and validation, with line and column), and its bindings against the
/// reflection of every dispatch's entry point. Renters run it before submitting; workers
/// again before running.
///
/// # Errors
/// [`ExecError::Spec`], [`ExecError::WgslParse`], [`ExecError::WgslInvalid`],
/// [`ExecError::NoEntryPoint`], and the binding errors.
pub fn check_spec(spec: &JobSpec, limits: &SpecLimits) -> Result<(), ExecError> {
    checked_module(spec, limits).map(|_| ())
}

/// [`check_spec`], and then the static bound on the operations one task of `spec` can
/// execute ([`crate::cost::task_ops`]).
///
/// # Errors
/// As [`check_spec`].
pub fn check_spec_bounded(spec: &JobSpec, limits: &SpecLimits) -> Result<u64, ExecError> {
    let (module, _) = checked_module(spec, limits)?;
    // Every dispatch names a compute entry point once the checks passed.
    Ok(crate::cost::task_ops(spec, &module).unwrap_or(u64::MAX))
}

/// [`check_spec`]'s checks; the parsed module and each dispatch's used bindings.
fn checked_module(spec: &JobSpec, limits: &SpecLimits) -> Result<(naga::Module, Vec<BTreeMap<u32, Slot>>), ExecError> {
    spec.check(limits)?;
    let (module, info) = validate_wgsl(&spec.wgsl)?;
    crate::guard::check(&module)?;
    let used = dispatch_bindings(spec, &module, &info)?;
    if let Some((_, o)) = module.overrides.iter().next() {
        return Err(ExecError::Overrides(o.name.clone().unwrap_or_default()));
    }
    for (entry, _, _) in spec.dispatches() {
        check_portable(&module, &info, entry)?;
    }
    Ok((module, used))
}

/// The validator every module passes: all checks, no optional capabilities.
fn validator() -> naga::valid::Validator {
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
}

/// The kernel as it runs: `module` with the loop budget compiled into every loop
/// ([`crate::guard`]), validated again.
///
/// # Errors
/// [`ExecError::Guard`] if the instrumented module does not validate (a defect of the guard,
/// never of the kernel: the kernel itself validated).
pub fn guarded_module(mut module: naga::Module) -> Result<naga::Module, ExecError> {
    crate::guard::bound_loops(&mut module);
    validator()
        .validate(&module)
        .map_err(|e| ExecError::Guard(e.into_inner().to_string()))?;
    Ok(module)
}

/// Checks each input's length and sha256 against the spec.
///
/// # Errors
/// [`ExecError::MissingInput`], [`ExecError::InputLength`], [`ExecError::InputHash`].
pub fn check_inputs(spec: &JobSpec, inputs: &BTreeMap<u32, Vec<u8>>) -> Result<(), ExecError> {
    for (binding, r) in spec.inputs() {
        let data = inputs.get(&binding).ok_or(ExecError::MissingInput { binding })?;
        if data.len() as u64 != r.len {
            return Err(ExecError::InputLength { binding, expected: r.len, found: data.len() as u64 });
        }
        let h = sha256(data);
        if h != r.sha256 {
            return Err(ExecError::InputHash { binding, expected: hex::encode(r.sha256), found: hex::encode(h) });
        }
    }
    Ok(())
}

/// One dispatch of a plan: its pipeline, bind group (none if the entry point uses no
/// binding) and workgroup counts.
struct Step {
    pipeline: wgpu::ComputePipeline,
    bind_group: Option<wgpu::BindGroup>,
    workgroups: [u32; 3],
}

/// A job's kernel compiled on a device: one pipeline per distinct entry point, and the
/// bindings each dispatch uses. Compiled once, it runs any number of tasks (a batch's).
pub(crate) struct Kernel {
    pipelines: BTreeMap<String, wgpu::ComputePipeline>,
    used: Vec<BTreeMap<u32, Slot>>,
}

/// One set of a job's device buffers, with every dispatch bound to them: the inputs (written
/// per task), the uniforms, the outputs and their staging (read-back) buffers.
pub(crate) struct Buffers {
    steps: Vec<Step>,
    inputs: BTreeMap<u32, wgpu::Buffer>,
    /// (binding, device buffer, staging buffer, length) of each output, in binding order.
    outputs: Vec<(u32, wgpu::Buffer, wgpu::Buffer, u64)>,
}

/// A task submitted to the queue whose outputs are being mapped for reading.
pub(crate) struct Submitted {
    index: wgpu::SubmissionIndex,
    mapped: std::sync::mpsc::Receiver<(u32, Result<(), wgpu::BufferAsyncError>)>,
    pub(crate) at: Instant,
}

/// Runs `f` inside validation and out-of-memory error scopes: a device error raised by
/// what `f` creates is returned as [`ExecError::Device`], never a panic.
fn scoped<T>(gpu: &Gpu, f: impl FnOnce() -> Result<T, ExecError>) -> Result<T, ExecError> {
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let out = f()?;
    if let Some(e) = pollster::block_on(oom.pop()) {
        return Err(ExecError::Device(e.to_string()));
    }
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(ExecError::Device(e.to_string()));
    }
    Ok(out)
}

impl Kernel {
    /// Checks `spec` (everything [`check_spec`] checks, then `inputs` against it where given,
    /// then the dispatch against the device's limits) and compiles its guarded kernel on
    /// `gpu`. Inputs are checked before anything is compiled: bad inputs cost no compilation.
    ///
    /// # Errors
    /// Any [`ExecError`] about the spec, the WGSL, the bindings, the inputs or the device
    /// limits.
    pub(crate) fn compile(
        gpu: &Gpu,
        spec: &JobSpec,
        inputs: Option<&BTreeMap<u32, Vec<u8>>>,
        limits: &ExecLimits,
        checks: Checks,
    ) -> Result<Self, ExecError> {
        if gpu.is_lost() {
            return Err(ExecError::DeviceLost);
        }
        if checks == Checks::TrustedLibraryKernel && !crate::workloads::trusted_without_checks(spec) {
            return Err(ExecError::UntrustedKernel);
        }
        let (module, used) = checked_module(spec, &limits.spec)?;
        if let Some(inputs) = inputs {
            check_inputs(spec, inputs)?;
        }
        let guarded = guarded_module(module)?;
        let max_dim = gpu.limits.max_compute_workgroups_per_dimension;
        for (_, workgroups, _) in spec.dispatches() {
            for (dim, &n) in workgroups.iter().enumerate() {
                if n > max_dim {
                    return Err(ExecError::DispatchTooLarge { dim, requested: n, max: max_dim });
                }
            }
        }
        let max_storage = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
        let max_uniform = gpu.limits.max_uniform_buffer_binding_size;
        for b in &spec.bindings {
            let (len, max) = match &b.kind {
                BindingKind::Input(r) => (r.len, max_storage),
                BindingKind::Output { len } => (*len, max_storage),
                BindingKind::Uniform { data } => (data.len() as u64, max_uniform),
            };
            if len > max {
                return Err(ExecError::BufferTooLarge { binding: b.binding, len, max });
            }
        }
        scoped(gpu, || {
            let device = &gpu.device;
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some("job kernel"),
                source: wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(guarded)),
            };
            let shader = match checks {
                Checks::On => device.create_shader_module(desc),
                // SAFETY: only library kernels get here (checked above); each is written so
                // that every index is provably in range (see crate::workloads).
                Checks::TrustedLibraryKernel => unsafe {
                    device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                },
            };
            // One pipeline per distinct entry point, each with the layout of what it uses.
            let mut pipelines = BTreeMap::new();
            for (entry, _, _) in spec.dispatches() {
                if pipelines.contains_key(entry) {
                    continue;
                }
                let label = if spec.version == FORMAT_VERSION { "job pipeline".to_string() } else { format!("job pipeline {entry}") };
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&label),
                    layout: None,
                    module: &shader,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                pipelines.insert(entry.to_string(), pipeline);
            }
            Ok(Self { pipelines, used })
        })
    }

    /// A set of `spec`'s buffers (inputs not yet written) with every dispatch bound to them;
    /// `set` numbers the set in labels (a batch keeps two, see [`crate::batch`]).
    ///
    /// # Errors
    /// [`ExecError::Device`] if the device refuses a buffer or a bind group.
    pub(crate) fn buffers(&self, gpu: &Gpu, spec: &JobSpec, set: usize) -> Result<Buffers, ExecError> {
        let suffix = if set == 0 { String::new() } else { format!(" (set {set})") };
        scoped(gpu, || {
            let device = &gpu.device;
            let storage = |label: String, len: u64, usage: wgpu::BufferUsages| {
                device.create_buffer(&wgpu::BufferDescriptor { label: Some(&label), size: len, usage, mapped_at_creation: false })
            };
            let mut buffers = BTreeMap::new();
            let mut inputs = BTreeMap::new();
            let mut outputs = Vec::new();
            for b in &spec.bindings {
                let buffer = match &b.kind {
                    BindingKind::Input(r) => {
                        let buf = storage(format!("input {}{suffix}", b.binding), r.len, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST);
                        inputs.insert(b.binding, buf.clone());
                        buf
                    }
                    BindingKind::Uniform { data } => uniform_buffer(gpu, &format!("uniform {}{suffix}", b.binding), data),
                    BindingKind::Output { len } => {
                        let buf = storage(format!("output {}{suffix}", b.binding), *len, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
                        let staging = storage(format!("staging {}{suffix}", b.binding), *len, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
                        outputs.push((b.binding, buf.clone(), staging, *len));
                        buf
                    }
                };
                buffers.insert(b.binding, buffer);
            }
            outputs.sort_by_key(|o| o.0);

            let mut steps = Vec::new();
            for (index, ((entry, workgroups, uniform), used)) in spec.dispatches().zip(&self.used).enumerate() {
                let pipeline = self.pipelines[entry].clone();
                // The pass's own parameter block, where it replaces a declared uniform.
                let replacement = uniform.map(|u| {
                    (u.binding, uniform_buffer(gpu, &format!("pass {} uniform {}{suffix}", index - 1, u.binding), &u.data))
                });
                let entries: Vec<wgpu::BindGroupEntry> = used
                    .keys()
                    .map(|binding| {
                        let buf = match &replacement {
                            Some((b, buf)) if b == binding => buf,
                            _ => &buffers[binding],
                        };
                        wgpu::BindGroupEntry { binding: *binding, resource: buf.as_entire_binding() }
                    })
                    .collect();
                let bind_group = (!entries.is_empty()).then(|| {
                    let label = if index == 0 { format!("job bind group{suffix}") } else { format!("pass {} bind group{suffix}", index - 1) };
                    device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(&label),
                        layout: &pipeline.get_bind_group_layout(0),
                        entries: &entries,
                    })
                });
                steps.push(Step { pipeline, bind_group, workgroups });
            }
            Ok(Buffers { steps, inputs, outputs })
        })
    }
}

impl Buffers {
    /// Queues `inputs` (checked against the spec's shapes by the caller) into the input
    /// buffers; the next submission sees them.
    pub(crate) fn write_inputs(&self, gpu: &Gpu, inputs: &BTreeMap<u32, Vec<u8>>) {
        for (binding, buf) in &self.inputs {
            gpu.queue.write_buffer(buf, 0, &inputs[binding]);
        }
    }

    /// Records the job's dispatches `times` times over, in order, in one compute pass (wgpu
    /// puts a barrier between dispatches that write and read the same storage buffer).
    fn encode_dispatches(&self, encoder: &mut wgpu::CommandEncoder, times: u32) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("job pass"), timestamp_writes: None });
        for _ in 0..times {
            for step in &self.steps {
                pass.set_pipeline(&step.pipeline);
                if let Some(bind_group) = &step.bind_group {
                    pass.set_bind_group(0, bind_group, &[]);
                }
                let [x, y, z] = step.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
    }

    /// Submits one run (dispatches, then copies into the staging buffers) and asks for the
    /// staging buffers to be mapped once it completes; returns without waiting.
    ///
    /// # Errors
    /// [`ExecError::Device`] if the device refuses the commands.
    pub(crate) fn submit(&self, gpu: &Gpu) -> Result<Submitted, ExecError> {
        let at = Instant::now();
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("job commands") });
        self.encode_dispatches(&mut encoder, 1);
        for (_, buf, staging, len) in &self.outputs {
            encoder.copy_buffer_to_buffer(buf, 0, staging, 0, *len);
        }
        let index = gpu.queue.submit([encoder.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(ExecError::Device(e.to_string()));
        }
        let (tx, mapped) = std::sync::mpsc::channel();
        for (binding, _, staging, _) in &self.outputs {
            let tx = tx.clone();
            let binding = *binding;
            staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send((binding, r));
            });
        }
        Ok(Submitted { index, mapped, at })
    }

    /// Waits for `run` until `timeout` has passed since `started` (when the run could start
    /// on the device: its submission, or the completion of the run queued before it), reads
    /// the outputs back and commits to them; the staging buffers are free again after.
    /// Also returns when the device had finished the run.
    ///
    /// # Errors
    /// [`ExecError::Timeout`] (the device is then marked lost), [`ExecError::DeviceLost`],
    /// [`ExecError::Device`].
    pub(crate) fn collect(&self, gpu: &Gpu, run: Submitted, started: Instant, timeout: Duration) -> Result<(Execution, Instant), ExecError> {
        let left = timeout.saturating_sub(started.elapsed());
        wait(gpu, run.index, left, timeout)?;
        let finished = Instant::now();
        for (binding, r) in run.mapped.try_iter() {
            r.map_err(|e| ExecError::Device(format!("mapping output {binding}: {e}")))?;
        }
        let total: u64 = self.outputs.iter().map(|o| o.3).sum();
        let mut output = Vec::with_capacity(total as usize);
        let mut builder = MerkleBuilder::new(DEFAULT_CHUNK);
        for (binding, _, staging, _) in &self.outputs {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| ExecError::Device(format!("reading output {binding}: {e}")))?;
            builder.update(&view);
            output.extend_from_slice(&view);
            drop(view);
            staging.unmap();
        }
        Ok((Execution { output, commitment: builder.finalize(), elapsed: run.at.elapsed() }, finished))
    }
}

/// Waits up to `left` for submission `index`; `limit` is the time limit reported.
fn wait(gpu: &Gpu, index: wgpu::SubmissionIndex, left: Duration, limit: Duration) -> Result<(), ExecError> {
    match gpu.device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: Some(left) }) {
        Ok(_) => {}
        Err(wgpu::PollError::Timeout) => {
            gpu.mark_lost();
            return Err(ExecError::Timeout(limit));
        }
        Err(e) => return Err(ExecError::Device(e.to_string())),
    }
    if gpu.is_lost() {
        return Err(ExecError::DeviceLost);
    }
    Ok(())
}

/// A job compiled and uploaded to a device, ready to dispatch (more than once, for benchmarks).
pub struct Plan<'g> {
    gpu: &'g Gpu,
    buffers: Buffers,
}

impl<'g> Plan<'g> {
    /// Validates `spec` and `inputs` and prepares the kernel on `gpu`.
    ///
    /// # Errors
    /// Any [`ExecError`] about the spec, the WGSL, the bindings, the inputs or the device limits.
    pub fn new(
        gpu: &'g Gpu,
        spec: &JobSpec,
        inputs: &BTreeMap<u32, Vec<u8>>,
        limits: &ExecLimits,
        checks: Checks,
    ) -> Result<Self, ExecError> {
        let kernel = Kernel::compile(gpu, spec, Some(inputs), limits, checks)?;
        let buffers = kernel.buffers(gpu, spec, 0)?;
        buffers.write_inputs(gpu, inputs);
        Ok(Self { gpu, buffers })
    }

    /// Number of dispatches of one run of the job (1 for a single-pass job).
    pub fn dispatch_count(&self) -> usize {
        self.buffers.steps.len()
    }

    /// Dispatches once, reads the outputs back and commits to them.
    ///
    /// # Errors
    /// [`ExecError::Timeout`], [`ExecError::DeviceLost`], [`ExecError::Device`].
    pub fn run(&self, timeout: Duration) -> Result<Execution, ExecError> {
        let run = self.buffers.submit(self.gpu)?;
        let at = run.at;
        self.buffers.collect(self.gpu, run, at, timeout).map(|(e, _)| e)
    }

    /// Runs the job's dispatches `times` times in one submission and waits; for benchmarks.
    ///
    /// # Errors
    /// As [`Plan::run`].
    pub fn time_dispatches(&self, times: u32, timeout: Duration) -> Result<Duration, ExecError> {
        let start = Instant::now();
        let mut encoder = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench commands") });
        self.buffers.encode_dispatches(&mut encoder, times);
        let index = self.gpu.queue.submit([encoder.finish()]);
        wait(self.gpu, index, timeout, timeout)?;
        Ok(start.elapsed())
    }
}

/// A uniform buffer holding `data`, labelled `label`.
fn uniform_buffer(gpu: &Gpu, label: &str, data: &[u8]) -> wgpu::Buffer {
    let buf = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: data.len() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue.write_buffer(&buf, 0, data);
    buf
}

/// The runtime checks `spec` runs with: off only for a library kernel that provably needs
/// none ([`crate::workloads::trusted_without_checks`]).
pub(crate) fn checks_for(spec: &JobSpec) -> Checks {
    if crate::workloads::trusted_without_checks(spec) { Checks::TrustedLibraryKernel } else { Checks::On }
}

/// Validates and runs `spec` once: the worker's and the verifier's entry point.
///
/// # Errors
/// Any [`ExecError`]; none of them panics or leaves the process hung.
pub fn execute(
    gpu: &Gpu,
    spec: &JobSpec,
    inputs: &BTreeMap<u32, Vec<u8>>,
    limits: &ExecLimits,
) -> Result<Execution, ExecError> {
    Plan::new(gpu, spec, inputs, limits, checks_for(spec))?.run(limits.timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Binding, Determinism, InputRef, Pass, PassUniform, MULTI_PASS_VERSION};

    /// A multi-pass job: `fill` writes the output from the input, `scale` multiplies it in
    /// place by a per-pass uniform.
    fn multi() -> JobSpec {
        let wgsl = "@group(0) @binding(0) var<storage, read> src: array<u32>;\n\
                    @group(0) @binding(1) var<storage, read_write> dst: array<u32>;\n\
                    @group(0) @binding(2) var<uniform> k: vec4<u32>;\n\
                    @compute @workgroup_size(64) fn fill(@builtin(global_invocation_id) id: vec3<u32>) {\n\
                        if (id.x < arrayLength(&src)) { dst[id.x] = src[id.x] + k.x; }\n\
                    }\n\
                    @compute @workgroup_size(64) fn scale(@builtin(global_invocation_id) id: vec3<u32>) {\n\
                        if (id.x < arrayLength(&dst)) { dst[id.x] = dst[id.x] * k.x; }\n\
                    }\n\
                    @compute @workgroup_size(1) fn nothing() {}\n";
        JobSpec {
            version: MULTI_PASS_VERSION,
            wgsl: wgsl.into(),
            entry_point: "fill".into(),
            workgroups: [1, 1, 1],
            bindings: vec![
                Binding { binding: 0, kind: BindingKind::Input(InputRef { sha256: [0; 32], uri: "blob:x".into(), len: 256 }) },
                Binding { binding: 1, kind: BindingKind::Output { len: 256 } },
                Binding { binding: 2, kind: BindingKind::Uniform { data: vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] } },
            ],
            work_units: 1,
            determinism: Determinism::Exact,
            passes: vec![
                Pass {
                    entry_point: "scale".into(),
                    workgroups: [1, 1, 1],
                    uniform: Some(PassUniform { binding: 2, data: vec![3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }),
                },
                Pass { entry_point: "nothing".into(), workgroups: [1, 1, 1], uniform: None },
            ],
        }
    }

    #[test]
    fn multi_pass_spec_checks() {
        let limits = SpecLimits::default();
        assert!(check_spec(&multi(), &limits).is_ok());

        let mut s = multi();
        s.passes[0].entry_point = "nope".into();
        assert!(matches!(check_spec(&s, &limits), Err(ExecError::NoEntryPoint(e)) if e == "nope"));

        // A pass replacing a uniform its entry point does not read.
        let mut s = multi();
        s.passes[1].uniform = Some(PassUniform { binding: 2, data: vec![0; 16] });
        assert!(matches!(check_spec(&s, &limits), Err(ExecError::PassUniformUnused { pass: 1, binding: 2 })));

        // Every declared binding must be used by some pass; here none reads the input.
        let mut s = multi();
        s.entry_point = "nothing".into();
        assert!(matches!(check_spec(&s, &limits), Err(ExecError::UnusedBinding { binding: 0 })));

        // A pass's bindings are checked against the declared kinds.
        let mut s = multi();
        s.bindings[1].kind = BindingKind::Uniform { data: vec![0; 256] };
        s.bindings.push(Binding { binding: 3, kind: BindingKind::Output { len: 4 } });
        assert!(matches!(check_spec(&s, &limits), Err(ExecError::BindingKindMismatch { binding: 1, .. })));
        let mut s = multi();
        s.bindings.remove(2);
        s.passes[0].uniform = None;
        assert!(matches!(check_spec(&s, &limits), Err(ExecError::UndeclaredBinding { binding: 2 })));

        // Spec-level pass errors come through as ExecError::Spec.
        let mut s = multi();
        s.passes.clear();
        assert!(matches!(check_spec(&s, &limits), Err(ExecError::Spec(SpecError::NoPasses))));
        assert!(!ExecError::PassUniformUnused { pass: 0, binding: 1 }.to_string().is_empty());
    }

    #[test]
    fn kernels_over_the_portable_limits_are_refused_before_any_device() {
        let limits = SpecLimits::default();
        let with = |decl: &str, size: &str| {
            let mut s = multi();
            s.wgsl = s.wgsl.replace("@compute @workgroup_size(64) fn fill(", &format!("{decl}\n@compute @workgroup_size({size}) fn fill("));
            if decl.contains("tile") {
                s.wgsl = s.wgsl.replace("dst[id.x] = src[id.x] + k.x;", "tile[id.x % 16u] = src[id.x]; dst[id.x] = tile[0] + k.x;");
            }
            check_spec(&s, &limits)
        };
        assert!(with("var<workgroup> tile: array<u32, 4096>;", "64").is_ok(), "16 KiB of workgroup memory is portable");
        assert!(matches!(
            with("var<workgroup> tile: array<u32, 4097>;", "64"),
            Err(ExecError::NotPortable { what: "the workgroup memory in bytes", value: 16_388, max: 16_384, .. })
        ));
        assert!(matches!(with("", "512"), Err(ExecError::NotPortable { what: "the workgroup size along x", value: 512, .. })));
        assert!(matches!(with("", "32, 16"), Err(ExecError::NotPortable { what: "the invocations per workgroup", value: 512, max: 256, .. })));
        assert!(matches!(with("", "1, 1, 128"), Err(ExecError::NotPortable { what: "the workgroup size along z", value: 128, .. })));
        assert!(with("", "16, 16").is_ok());
        // A workgroup size (or anything else) set by a pipeline override is not fixed by the
        // source, so neither the limits nor the work bound could be read from it.
        assert!(matches!(with("override wg: u32 = 1024;", "wg"), Err(ExecError::Overrides(name)) if name == "wg"));
    }
}

//! Runs a job spec on a [`Gpu`]: validates the WGSL, checks the spec's bindings against the
//! shader's reflection and the inputs against their hashes, dispatches within the device's
//! limits and a time limit, reads the output back through staging buffers and commits to it.
//!
//! User kernels always run with naga's bounds checks. Only the library's own kernels, whose
//! source is byte-identical to a [`crate::workloads`] kernel written so that no access can
//! leave its array, may run without them ([`Checks::TrustedLibraryKernel`]), and only when
//! the spec's parameters, buffers and dispatch agree with each other.

use crate::gpu::Gpu;
use crate::merkle::{Commitment, MerkleBuilder, DEFAULT_CHUNK};
use crate::spec::{sha256, BindingKind, JobSpec, SpecError, SpecLimits};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wgpu::naga;

/// Runtime safety checks compiled into a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Bounds checks and loop bounding on (every user kernel).
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
    #[error("spec binding {binding} is not used by the kernel's entry point")]
    UnusedBinding { binding: u32 },
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
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
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

/// Checks the spec's bindings against the shader's, one to one.
fn check_bindings(spec: &JobSpec, used: &BTreeMap<u32, Slot>) -> Result<(), ExecError> {
    for b in &spec.bindings {
        let want = match b.kind {
            BindingKind::Input(_) => Slot::Input,
            BindingKind::Output { .. } => Slot::Output,
            BindingKind::Uniform { .. } => Slot::Uniform,
        };
        match used.get(&b.binding) {
            None => return Err(ExecError::UnusedBinding { binding: b.binding }),
            Some(&got) if got != want => {
                return Err(ExecError::BindingKindMismatch { binding: b.binding, spec: want.name(), shader: got.name() })
            }
            Some(_) => {}
        }
    }
    if let Some(&binding) = used.keys().find(|k| !spec.bindings.iter().any(|b| b.binding == **k)) {
        return Err(ExecError::UndeclaredBinding { binding });
    }
    Ok(())
}

/// Everything that can be checked about a spec without a device: its fields and limits,
/// the WGSL (parse and validation, with line and column), and its bindings against the
/// entry point's reflection. Renters run it before submitting; workers again before running.
///
/// # Errors
/// [`ExecError::Spec`], [`ExecError::WgslParse`], [`ExecError::WgslInvalid`],
/// [`ExecError::NoEntryPoint`], and the binding errors.
pub fn check_spec(spec: &JobSpec, limits: &SpecLimits) -> Result<(), ExecError> {
    spec.check(limits)?;
    let (module, info) = validate_wgsl(&spec.wgsl)?;
    check_bindings(spec, &reflect(&module, &info, &spec.entry_point)?)
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

/// A job compiled and uploaded to a device, ready to dispatch (more than once, for benchmarks).
pub struct Plan<'g> {
    gpu: &'g Gpu,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    /// (binding, device buffer, staging buffer, length) of each output.
    outputs: Vec<(u32, wgpu::Buffer, wgpu::Buffer, u64)>,
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
        if gpu.is_lost() {
            return Err(ExecError::DeviceLost);
        }
        if checks == Checks::TrustedLibraryKernel && !crate::workloads::trusted_without_checks(spec) {
            return Err(ExecError::UntrustedKernel);
        }
        check_spec(spec, &limits.spec)?;
        check_inputs(spec, inputs)?;
        let max_dim = gpu.limits.max_compute_workgroups_per_dimension;
        for (dim, &n) in spec.workgroups.iter().enumerate() {
            if n > max_dim {
                return Err(ExecError::DispatchTooLarge { dim, requested: n, max: max_dim });
            }
        }

        let device = &gpu.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some("job kernel"),
            source: wgpu::ShaderSource::Wgsl(spec.wgsl.as_str().into()),
        };
        let shader = match checks {
            Checks::On => device.create_shader_module(desc),
            // SAFETY: only library kernels get here (checked above); each is written so
            // that every index is provably in range (see crate::workloads).
            Checks::TrustedLibraryKernel => unsafe {
                device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            },
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("job pipeline"),
            layout: None,
            module: &shader,
            entry_point: Some(&spec.entry_point),
            compilation_options: Default::default(),
            cache: None,
        });

        let max_storage = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
        let max_uniform = gpu.limits.max_uniform_buffer_binding_size;
        let mut buffers = Vec::new();
        let mut outputs = Vec::new();
        for b in &spec.bindings {
            let (len, max) = match &b.kind {
                BindingKind::Input(r) => (r.len, max_storage),
                BindingKind::Output { len } => (*len, max_storage),
                BindingKind::Uniform { data } => (data.len() as u64, max_uniform),
            };
            if len > max {
                return Err(ExecError::BufferTooLarge { binding: b.binding, len, max });
            }
            let buffer = match &b.kind {
                BindingKind::Input(_) => {
                    let data = &inputs[&b.binding];
                    let buf = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("input {}", b.binding)),
                        size: len,
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                    gpu.queue.write_buffer(&buf, 0, data);
                    buf
                }
                BindingKind::Uniform { data } => {
                    let buf = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("uniform {}", b.binding)),
                        size: len,
                        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                    gpu.queue.write_buffer(&buf, 0, data);
                    buf
                }
                BindingKind::Output { .. } => {
                    let buf = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("output {}", b.binding)),
                        size: len,
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    });
                    let staging = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("staging {}", b.binding)),
                        size: len,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                    outputs.push((b.binding, buf.clone(), staging, len));
                    buf
                }
            };
            buffers.push((b.binding, buffer));
        }
        outputs.sort_by_key(|o| o.0);
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .map(|(binding, buf)| wgpu::BindGroupEntry { binding: *binding, resource: buf.as_entire_binding() })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("job bind group"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(ExecError::Device(e.to_string()));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(ExecError::Device(e.to_string()));
        }
        Ok(Self { gpu, pipeline, bind_group, workgroups: spec.workgroups, outputs })
    }

    fn encode_dispatches(&self, encoder: &mut wgpu::CommandEncoder, times: u32) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("job pass"), timestamp_writes: None });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        for _ in 0..times {
            let [x, y, z] = self.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
    }

    fn wait(&self, index: wgpu::SubmissionIndex, timeout: Duration) -> Result<(), ExecError> {
        match self.gpu.device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: Some(timeout) }) {
            Ok(_) => {}
            Err(wgpu::PollError::Timeout) => {
                self.gpu.mark_lost();
                return Err(ExecError::Timeout(timeout));
            }
            Err(e) => return Err(ExecError::Device(e.to_string())),
        }
        if self.gpu.is_lost() {
            return Err(ExecError::DeviceLost);
        }
        Ok(())
    }

    /// Dispatches once, reads the outputs back and commits to them.
    ///
    /// # Errors
    /// [`ExecError::Timeout`], [`ExecError::DeviceLost`], [`ExecError::Device`].
    pub fn run(&self, timeout: Duration) -> Result<Execution, ExecError> {
        let start = Instant::now();
        let scope = self.gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("job commands") });
        self.encode_dispatches(&mut encoder, 1);
        for (_, buf, staging, len) in &self.outputs {
            encoder.copy_buffer_to_buffer(buf, 0, staging, 0, *len);
        }
        let index = self.gpu.queue.submit([encoder.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(ExecError::Device(e.to_string()));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for (binding, _, staging, _) in &self.outputs {
            let tx = tx.clone();
            let binding = *binding;
            staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send((binding, r));
            });
        }
        drop(tx);
        self.wait(index, timeout)?;
        for (binding, r) in rx.iter() {
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
        Ok(Execution { output, commitment: builder.finalize(), elapsed: start.elapsed() })
    }

    /// Dispatches `times` times in one submission and waits; for benchmarks.
    ///
    /// # Errors
    /// As [`Plan::run`].
    pub fn time_dispatches(&self, times: u32, timeout: Duration) -> Result<Duration, ExecError> {
        let start = Instant::now();
        let mut encoder = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench commands") });
        self.encode_dispatches(&mut encoder, times);
        let index = self.gpu.queue.submit([encoder.finish()]);
        self.wait(index, timeout)?;
        Ok(start.elapsed())
    }
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
    let checks = if crate::workloads::trusted_without_checks(spec) { Checks::TrustedLibraryKernel } else { Checks::On };
    Plan::new(gpu, spec, inputs, limits, checks)?.run(limits.timeout)
}

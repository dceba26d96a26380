//! The job spec: what a renter asks a provider to run, content-addressed by sha256 of its SCALE encoding.
//!
//! A [`JobSpec`] names a WGSL compute kernel, its entry point, the dispatch size, and the
//! buffers bound to it (all in bind group 0): inputs fetched by URI and checked against their
//! sha256, outputs the runtime reads back, and small inline uniforms. The spec's SCALE
//! encoding is its canonical form; [`JobSpec::spec_hash`] (sha256 of that encoding) is the
//! `spec_hash` stored on-chain.
//!
//! Decoding is strict ([`JobSpec::decode_spec`]): trailing bytes, unknown format versions and
//! specs that break the [`SpecLimits`] are rejected, each with a distinct [`SpecError`].
//!
//! # Format versions
//!
//! - **Version 1** ([`FORMAT_VERSION`], single pass): the job is one dispatch of
//!   `entry_point` with `workgroups`. Its encoding is the SCALE encoding of the fields in
//!   declaration order, `version` to `determinism`, and nothing else.
//! - **Version 2** ([`MULTI_PASS_VERSION`], multi-pass): the same fields, then a non-empty
//!   SCALE `Vec<Pass>` ([`JobSpec::passes`]). The job is the version 1 dispatch followed by
//!   every [`Pass`] in order, all on the same buffers, in one submission and within one time
//!   limit; each pass sees everything the earlier ones wrote (e.g. the butterfly stages of a
//!   large NTT, or the levels of a Merkle tree). A pass names its entry point in the same WGSL
//!   module and its workgroup counts, and may replace, for that dispatch only, the bytes of one
//!   declared uniform binding ([`PassUniform`], same length), which carries the per-pass
//!   parameters. The first dispatch uses the declared uniform bytes.
//!
//! Every version 1 spec keeps its exact bytes and hash: the `passes` field is encoded only in
//! version 2. A version 1 spec with passes and a version 2 spec without any are rejected, so
//! every job has one encoding.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use codec::{Decode, Encode};
use thiserror::Error;

/// The single-pass job spec format version (what every spec without [`Pass`]es uses).
///
/// This build reads and writes it and [`MULTI_PASS_VERSION`].
pub const FORMAT_VERSION: u16 = 1;

/// The multi-pass job spec format version: a version 1 spec plus a non-empty list of further
/// dispatches ([`JobSpec::passes`]).
pub const MULTI_PASS_VERSION: u16 = 2;

/// sha256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha256_parts(&[data])
}

/// sha256 of the concatenation of `parts`, without concatenating them.
///
/// The `sha2` crate uses SHA-NI where the CPU has it; ring's SHA-256 measured the same here
/// (BENCHMARKS.md), so the lighter dependency stays.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p);
    }
    hasher.finalize().into()
}

/// A compute job: a WGSL kernel, how to dispatch it, and the buffers bound to it.
///
/// Encoded by hand (see the module docs): the version 1 fields, then [`JobSpec::passes`] only
/// when the version is [`MULTI_PASS_VERSION`] (or passes are present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// Spec format version: [`FORMAT_VERSION`] without passes, [`MULTI_PASS_VERSION`] with.
    pub version: u16,
    /// WGSL source of the kernel module.
    pub wgsl: String,
    /// Name of the `@compute` entry point in [`JobSpec::wgsl`].
    pub entry_point: String,
    /// Number of workgroups dispatched along x, y and z.
    pub workgroups: [u32; 3],
    /// Buffers bound to the kernel, all in bind group 0.
    pub bindings: Vec<Binding>,
    /// Work units the job is billed for (`price × work_units`).
    pub work_units: u64,
    /// How the output may be verified.
    pub determinism: Determinism,
    /// Further dispatches after the first (`entry_point` × `workgroups`), run in order on the
    /// same buffers. Empty in version 1; non-empty in version 2.
    pub passes: Vec<Pass>,
}

/// One further dispatch of a multi-pass job (format version 2).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Pass {
    /// Name of the `@compute` entry point in the spec's WGSL module.
    pub entry_point: String,
    /// Number of workgroups dispatched along x, y and z.
    pub workgroups: [u32; 3],
    /// Per-pass parameters: bytes that replace, for this dispatch only, the data of one
    /// declared [`BindingKind::Uniform`] binding. `None`: the declared data.
    pub uniform: Option<PassUniform>,
}

/// The per-pass replacement of a declared uniform binding's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PassUniform {
    /// The binding number of a declared [`BindingKind::Uniform`].
    pub binding: u32,
    /// The bytes for this pass; as long as the declared uniform's data.
    pub data: Vec<u8>,
}

impl Encode for JobSpec {
    fn size_hint(&self) -> usize {
        self.version.size_hint()
            + self.wgsl.size_hint()
            + self.entry_point.size_hint()
            + self.workgroups.size_hint()
            + self.bindings.size_hint()
            + self.work_units.size_hint()
            + self.determinism.size_hint()
            + if self.encodes_passes() { self.passes.size_hint() } else { 0 }
    }

    fn encode_to<T: codec::Output + ?Sized>(&self, dest: &mut T) {
        self.version.encode_to(dest);
        self.wgsl.encode_to(dest);
        self.entry_point.encode_to(dest);
        self.workgroups.encode_to(dest);
        self.bindings.encode_to(dest);
        self.work_units.encode_to(dest);
        self.determinism.encode_to(dest);
        if self.encodes_passes() {
            self.passes.encode_to(dest);
        }
    }
}

impl Decode for JobSpec {
    fn decode<I: codec::Input>(input: &mut I) -> Result<Self, codec::Error> {
        let version = u16::decode(input)?;
        let wgsl = String::decode(input)?;
        let entry_point = String::decode(input)?;
        let workgroups = <[u32; 3]>::decode(input)?;
        let bindings = Vec::<Binding>::decode(input)?;
        let work_units = u64::decode(input)?;
        let determinism = Determinism::decode(input)?;
        let passes = if version == MULTI_PASS_VERSION { Vec::<Pass>::decode(input)? } else { Vec::new() };
        Ok(JobSpec { version, wgsl, entry_point, workgroups, bindings, work_units, determinism, passes })
    }
}

/// One buffer binding of a job, in bind group 0.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Binding {
    /// The `@binding(n)` number in bind group 0.
    pub binding: u32,
    /// What the buffer holds and how it is bound.
    pub kind: BindingKind,
}

/// What a binding holds.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum BindingKind {
    /// A read-only storage buffer filled from a content-addressed input blob.
    Input(InputRef),
    /// A `read_write` storage buffer of `len` bytes, zero-initialised, read back as the
    /// job's output (outputs are concatenated in binding order of the spec).
    Output {
        /// Length of the buffer in bytes.
        len: u64,
    },
    /// A small uniform buffer whose contents travel inline in the spec.
    Uniform {
        /// The buffer's bytes.
        data: Vec<u8>,
    },
}

/// A content-addressed input blob.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct InputRef {
    /// sha256 of the blob; the fetched bytes must hash to it.
    pub sha256: [u8; 32],
    /// Where to fetch the blob from.
    pub uri: String,
    /// Length of the blob in bytes.
    pub len: u64,
}

/// The determinism class of a job, which decides how its result can be verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Determinism {
    /// Integer and fixed-point kernels: WGSL integer arithmetic is fully specified, so the
    /// output is bit-identical on every vendor and on CPU Vulkan, and a spot-check is a
    /// comparison of Merkle roots.
    Exact,
    /// Floating-point kernels: may run, but cannot be spot-checked yet (results may differ
    /// in the last bits between GPUs and drivers).
    Float,
}

/// Size limits a spec must respect to be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecLimits {
    /// Largest WGSL source, in bytes.
    pub max_wgsl_bytes: usize,
    /// Most bindings in a spec.
    pub max_bindings: usize,
    /// Largest single input or output buffer, in bytes.
    pub max_buffer_bytes: u64,
    /// Largest sum of all buffer lengths (inputs, outputs and uniforms), in bytes.
    pub max_total_bytes: u64,
    /// Largest uniform buffer, in bytes.
    pub max_uniform_bytes: usize,
    /// Most workgroups along any one dispatch dimension.
    pub max_workgroups_per_dim: u32,
    /// Most [`Pass`]es after the first dispatch (format version 2).
    pub max_passes: usize,
}

impl Default for SpecLimits {
    /// 256 KiB of WGSL, 8 bindings, 1 GiB per buffer, 2 GiB in total, 64 KiB per uniform,
    /// 65535 workgroups per dimension (wgpu's default `max_compute_workgroups_per_dimension`),
    /// 64 passes after the first dispatch.
    fn default() -> Self {
        Self {
            max_wgsl_bytes: 256 * 1024,
            max_bindings: 8,
            max_buffer_bytes: 1 << 30,
            max_total_bytes: 2 << 30,
            max_uniform_bytes: 64 * 1024,
            max_workgroups_per_dim: 65_535,
            max_passes: 64,
        }
    }
}

/// Why a job spec was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SpecError {
    /// The bytes are not a SCALE-encoded job spec.
    #[error("job spec is not a valid SCALE encoding: {0}")]
    Decode(String),
    /// A valid spec encoding was followed by extra bytes.
    #[error("job spec has {extra} trailing byte(s) after its SCALE encoding")]
    TrailingBytes {
        /// Number of bytes left over.
        extra: usize,
    },
    /// The spec's format version is not one this build supports.
    #[error("job spec format version {found} is not supported (this build supports version {supported}, and {MULTI_PASS_VERSION} for multi-pass jobs)")]
    UnsupportedVersion {
        /// Version found in the spec.
        found: u16,
        /// The single-pass version this build supports ([`FORMAT_VERSION`]).
        supported: u16,
    },
    /// A version 1 spec lists passes, which need [`MULTI_PASS_VERSION`].
    #[error("job spec version {FORMAT_VERSION} cannot have passes (multi-pass jobs are version {MULTI_PASS_VERSION})")]
    PassesNeedVersion2,
    /// A version 2 spec has no passes (a single-pass job is version 1).
    #[error("job spec version {MULTI_PASS_VERSION} has no passes (a single-pass job is version {FORMAT_VERSION})")]
    NoPasses,
    /// The spec has more passes than allowed.
    #[error("job spec has {count} passes, over the limit of {max}")]
    TooManyPasses {
        /// Number of passes in the spec.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A pass's entry point name is empty.
    #[error("pass {pass}: entry point is empty")]
    PassEmptyEntryPoint {
        /// Index into [`JobSpec::passes`].
        pass: usize,
    },
    /// A pass dispatches zero workgroups along a dimension.
    #[error("pass {pass}: dispatch has zero workgroups in dimension {dim} (0 = x, 1 = y, 2 = z)")]
    PassZeroWorkgroups {
        /// Index into [`JobSpec::passes`].
        pass: usize,
        /// The dimension (0 = x, 1 = y, 2 = z).
        dim: usize,
    },
    /// A pass dispatches more workgroups along a dimension than allowed.
    #[error("pass {pass}: dispatch has {count} workgroups in dimension {dim} (0 = x, 1 = y, 2 = z), over the limit of {max}")]
    PassTooManyWorkgroups {
        /// Index into [`JobSpec::passes`].
        pass: usize,
        /// The dimension (0 = x, 1 = y, 2 = z).
        dim: usize,
        /// Workgroups requested along it.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// A pass replaces the bytes of a binding that is not a declared uniform.
    #[error("pass {pass}: binding {binding} is not a declared uniform")]
    PassUniformUndeclared {
        /// Index into [`JobSpec::passes`].
        pass: usize,
        /// The binding number the pass names.
        binding: u32,
    },
    /// A pass's uniform bytes differ in length from the declared uniform's.
    #[error("pass {pass}: uniform for binding {binding} is {len} bytes, the declared uniform is {expected}")]
    PassUniformLength {
        /// Index into [`JobSpec::passes`].
        pass: usize,
        /// The binding number.
        binding: u32,
        /// Length of the pass's bytes.
        len: usize,
        /// Length of the declared uniform's data.
        expected: usize,
    },
    /// The entry point name is empty.
    #[error("job spec entry point is empty")]
    EmptyEntryPoint,
    /// The WGSL source is over the size limit.
    #[error("WGSL source is {len} bytes, over the limit of {max} bytes")]
    WgslTooLarge {
        /// Size of the source in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The spec has no output binding, so the job would produce nothing.
    #[error("job spec has no output binding")]
    NoOutput,
    /// The spec has more bindings than allowed.
    #[error("job spec has {count} bindings, over the limit of {max}")]
    TooManyBindings {
        /// Number of bindings in the spec.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two bindings share the same binding number.
    #[error("binding number {binding} is used more than once")]
    DuplicateBinding {
        /// The repeated binding number.
        binding: u32,
    },
    /// A dispatch dimension has zero workgroups.
    #[error("dispatch has zero workgroups in dimension {dim} (0 = x, 1 = y, 2 = z)")]
    ZeroWorkgroups {
        /// The dimension (0 = x, 1 = y, 2 = z).
        dim: usize,
    },
    /// A dispatch dimension has more workgroups than allowed.
    #[error("dispatch has {count} workgroups in dimension {dim} (0 = x, 1 = y, 2 = z), over the limit of {max}")]
    TooManyWorkgroups {
        /// The dimension (0 = x, 1 = y, 2 = z).
        dim: usize,
        /// Workgroups requested along it.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// An input or output buffer has length 0.
    #[error("buffer at binding {binding} has length 0")]
    EmptyBuffer {
        /// The binding number.
        binding: u32,
    },
    /// An input or output buffer is over the per-buffer limit.
    #[error("buffer at binding {binding} is {len} bytes, over the limit of {max} bytes")]
    BufferTooLarge {
        /// The binding number.
        binding: u32,
        /// The buffer's length in bytes.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// An input or output buffer's length is not a multiple of 4 bytes, which wgpu storage
    /// buffers require.
    #[error("buffer at binding {binding} is {len} bytes, not a multiple of 4")]
    UnalignedBuffer {
        /// The binding number.
        binding: u32,
        /// The buffer's length in bytes.
        len: u64,
    },
    /// All buffers together are over the total limit.
    #[error("buffers total {total} bytes, over the limit of {max} bytes")]
    TotalTooLarge {
        /// Sum of all buffer lengths (saturating).
        total: u64,
        /// The limit.
        max: u64,
    },
    /// A uniform buffer has no data.
    #[error("uniform at binding {binding} is empty")]
    EmptyUniform {
        /// The binding number.
        binding: u32,
    },
    /// A uniform buffer is over the uniform size limit.
    #[error("uniform at binding {binding} is {len} bytes, over the limit of {max} bytes")]
    UniformTooLarge {
        /// The binding number.
        binding: u32,
        /// The uniform's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A uniform buffer's length is not a multiple of 4 bytes.
    #[error("uniform at binding {binding} is {len} bytes, not a multiple of 4")]
    UnalignedUniform {
        /// The binding number.
        binding: u32,
        /// The uniform's length in bytes.
        len: usize,
    },
    /// The job is billed for zero work units.
    #[error("job spec has zero work units")]
    ZeroWorkUnits,
    /// An input's URI is empty, so it cannot be fetched.
    #[error("input at binding {binding} has an empty URI")]
    EmptyInputUri {
        /// The binding number.
        binding: u32,
    },
}

impl JobSpec {
    /// The canonical SCALE encoding of the spec.
    pub fn encode_spec(&self) -> Vec<u8> {
        self.encode()
    }

    /// The spec's content address: sha256 of its SCALE encoding.
    pub fn spec_hash(&self) -> [u8; 32] {
        sha256(&self.encode_spec())
    }

    /// Decodes a spec strictly and checks it against the default [`SpecLimits`].
    ///
    /// # Errors
    /// [`SpecError::Decode`] if the bytes are not a SCALE-encoded spec,
    /// [`SpecError::TrailingBytes`] if bytes follow the encoding,
    /// [`SpecError::UnsupportedVersion`] if the version is not [`FORMAT_VERSION`], and any
    /// error of [`JobSpec::check`].
    pub fn decode_spec(bytes: &[u8]) -> Result<JobSpec, SpecError> {
        Self::decode_spec_with_limits(bytes, &SpecLimits::default())
    }

    /// Like [`JobSpec::decode_spec`], with explicit limits.
    ///
    /// # Errors
    /// As [`JobSpec::decode_spec`].
    pub fn decode_spec_with_limits(bytes: &[u8], limits: &SpecLimits) -> Result<JobSpec, SpecError> {
        let mut input = bytes;
        let spec = JobSpec::decode(&mut input).map_err(|e| SpecError::Decode(e.to_string()))?;
        if !input.is_empty() {
            return Err(SpecError::TrailingBytes { extra: input.len() });
        }
        spec.check(limits)?;
        Ok(spec)
    }

    /// Checks the spec's version and its structure against `limits`.
    ///
    /// This does not validate the WGSL itself; the runtime does that when it builds the
    /// pipeline.
    ///
    /// # Errors
    /// The first problem found, as a [`SpecError`]: unsupported version, empty entry point,
    /// WGSL too large, bad workgroup counts, zero work units, too many or duplicate bindings,
    /// an input with an empty URI, a bad buffer or uniform length, no output, or a total size
    /// over the limit.
    pub fn check(&self, limits: &SpecLimits) -> Result<(), SpecError> {
        match self.version {
            FORMAT_VERSION if !self.passes.is_empty() => return Err(SpecError::PassesNeedVersion2),
            MULTI_PASS_VERSION if self.passes.is_empty() => return Err(SpecError::NoPasses),
            FORMAT_VERSION | MULTI_PASS_VERSION => {}
            found => {
                return Err(SpecError::UnsupportedVersion {
                    found,
                    supported: FORMAT_VERSION,
                })
            }
        }
        if self.entry_point.is_empty() {
            return Err(SpecError::EmptyEntryPoint);
        }
        if self.wgsl.len() > limits.max_wgsl_bytes {
            return Err(SpecError::WgslTooLarge {
                len: self.wgsl.len(),
                max: limits.max_wgsl_bytes,
            });
        }
        for (dim, &count) in self.workgroups.iter().enumerate() {
            if count == 0 {
                return Err(SpecError::ZeroWorkgroups { dim });
            }
            if count > limits.max_workgroups_per_dim {
                return Err(SpecError::TooManyWorkgroups {
                    dim,
                    count,
                    max: limits.max_workgroups_per_dim,
                });
            }
        }
        if self.work_units == 0 {
            return Err(SpecError::ZeroWorkUnits);
        }
        if self.bindings.len() > limits.max_bindings {
            return Err(SpecError::TooManyBindings {
                count: self.bindings.len(),
                max: limits.max_bindings,
            });
        }

        let mut seen = BTreeSet::new();
        let mut total: u64 = 0;
        let mut outputs = 0usize;
        for b in &self.bindings {
            if !seen.insert(b.binding) {
                return Err(SpecError::DuplicateBinding { binding: b.binding });
            }
            let len = match &b.kind {
                BindingKind::Input(input) => {
                    if input.uri.is_empty() {
                        return Err(SpecError::EmptyInputUri { binding: b.binding });
                    }
                    check_buffer(b.binding, input.len, limits)?;
                    input.len
                }
                BindingKind::Output { len } => {
                    outputs += 1;
                    check_buffer(b.binding, *len, limits)?;
                    *len
                }
                BindingKind::Uniform { data } => {
                    check_uniform(b.binding, data, limits)?;
                    // usize is at most 64 bits on every target Rust supports.
                    data.len() as u64
                }
            };
            total = total.saturating_add(len);
        }
        if outputs == 0 {
            return Err(SpecError::NoOutput);
        }
        total = total.saturating_add(self.check_passes(limits)?);
        if total > limits.max_total_bytes {
            return Err(SpecError::TotalTooLarge {
                total,
                max: limits.max_total_bytes,
            });
        }
        Ok(())
    }

    /// Whether the encoding carries [`JobSpec::passes`]: in version 2, and whenever there are
    /// passes (so an invalid version 1 spec with passes never encodes like a valid one).
    fn encodes_passes(&self) -> bool {
        self.version == MULTI_PASS_VERSION || !self.passes.is_empty()
    }

    /// Checks the passes (count, entry points, workgroups, uniform replacements) and returns
    /// the bytes of their uniform buffers, which count towards the total.
    fn check_passes(&self, limits: &SpecLimits) -> Result<u64, SpecError> {
        if self.passes.len() > limits.max_passes {
            return Err(SpecError::TooManyPasses {
                count: self.passes.len(),
                max: limits.max_passes,
            });
        }
        let mut bytes: u64 = 0;
        for (pass, p) in self.passes.iter().enumerate() {
            if p.entry_point.is_empty() {
                return Err(SpecError::PassEmptyEntryPoint { pass });
            }
            for (dim, &count) in p.workgroups.iter().enumerate() {
                if count == 0 {
                    return Err(SpecError::PassZeroWorkgroups { pass, dim });
                }
                if count > limits.max_workgroups_per_dim {
                    return Err(SpecError::PassTooManyWorkgroups {
                        pass,
                        dim,
                        count,
                        max: limits.max_workgroups_per_dim,
                    });
                }
            }
            if let Some(u) = &p.uniform {
                let declared = self.bindings.iter().find_map(|b| match &b.kind {
                    BindingKind::Uniform { data } if b.binding == u.binding => Some(data.len()),
                    _ => None,
                });
                let Some(expected) = declared else {
                    return Err(SpecError::PassUniformUndeclared { pass, binding: u.binding });
                };
                if u.data.len() != expected {
                    return Err(SpecError::PassUniformLength {
                        pass,
                        binding: u.binding,
                        len: u.data.len(),
                        expected,
                    });
                }
                bytes = bytes.saturating_add(u.data.len() as u64);
            }
        }
        Ok(bytes)
    }

    /// Every dispatch of the job in order, as `(entry point, workgroups, uniform replacement)`:
    /// the first dispatch (`entry_point` × `workgroups`, declared uniforms), then each pass.
    pub fn dispatches(&self) -> impl Iterator<Item = (&str, [u32; 3], Option<&PassUniform>)> + '_ {
        std::iter::once((self.entry_point.as_str(), self.workgroups, None))
            .chain(self.passes.iter().map(|p| (p.entry_point.as_str(), p.workgroups, p.uniform.as_ref())))
    }

    /// Total output size in bytes: the sum of all [`BindingKind::Output`] lengths
    /// (saturating; a checked spec never comes near `u64::MAX`).
    pub fn output_len(&self) -> u64 {
        self.bindings
            .iter()
            .filter_map(|b| match b.kind {
                BindingKind::Output { len } => Some(len),
                _ => None,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The spec's inputs, as `(binding number, input)` in spec order.
    pub fn inputs(&self) -> impl Iterator<Item = (u32, &InputRef)> + '_ {
        self.bindings.iter().filter_map(|b| match &b.kind {
            BindingKind::Input(input) => Some((b.binding, input)),
            _ => None,
        })
    }
}

/// Checks one input or output storage buffer length.
fn check_buffer(binding: u32, len: u64, limits: &SpecLimits) -> Result<(), SpecError> {
    if len == 0 {
        return Err(SpecError::EmptyBuffer { binding });
    }
    if len > limits.max_buffer_bytes {
        return Err(SpecError::BufferTooLarge {
            binding,
            len,
            max: limits.max_buffer_bytes,
        });
    }
    if len % 4 != 0 {
        return Err(SpecError::UnalignedBuffer { binding, len });
    }
    Ok(())
}

/// Checks one inline uniform buffer.
fn check_uniform(binding: u32, data: &[u8], limits: &SpecLimits) -> Result<(), SpecError> {
    if data.is_empty() {
        return Err(SpecError::EmptyUniform { binding });
    }
    if data.len() > limits.max_uniform_bytes {
        return Err(SpecError::UniformTooLarge {
            binding,
            len: data.len(),
            max: limits.max_uniform_bytes,
        });
    }
    if data.len() % 4 != 0 {
        return Err(SpecError::UnalignedUniform {
            binding,
            len: data.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed example spec of the golden test.
    fn example() -> JobSpec {
        JobSpec {
            version: FORMAT_VERSION,
            wgsl: "@compute @workgroup_size(1) fn main() {}".to_string(),
            entry_point: "main".to_string(),
            workgroups: [1, 1, 1],
            bindings: vec![
                Binding {
                    binding: 0,
                    kind: BindingKind::Input(InputRef {
                        sha256: [0x11; 32],
                        uri: "blob:example".to_string(),
                        len: 16,
                    }),
                },
                Binding {
                    binding: 1,
                    kind: BindingKind::Output { len: 16 },
                },
            ],
            work_units: 1,
            determinism: Determinism::Exact,
            passes: Vec::new(),
        }
    }

    /// A richer valid spec, with a uniform and two outputs.
    fn rich() -> JobSpec {
        let mut spec = example();
        spec.workgroups = [4, 2, 3];
        spec.work_units = 24;
        spec.bindings.push(Binding {
            binding: 2,
            kind: BindingKind::Uniform {
                data: vec![1, 0, 0, 0, 7, 0, 0, 0],
            },
        });
        spec.bindings.push(Binding {
            binding: 5,
            kind: BindingKind::Output { len: 64 },
        });
        spec
    }

    fn with_binding(mut spec: JobSpec, binding: u32, kind: BindingKind) -> JobSpec {
        spec.bindings.push(Binding { binding, kind });
        spec
    }

    /// Golden SCALE encoding of [`example`], computed by hand.
    const EXAMPLE_HEX: &str = concat!(
        "0100",                                     // version: u16 1, LE
        "a0",                                       // wgsl: compact length 40 (40 << 2 = 0xa0)
        "40636f6d707574652040776f726b67726f75705f", // "@compute @workgroup_"
        "73697a6528312920666e206d61696e2829207b7d", // "size(1) fn main() {}"
        "10",                                       // entry_point: compact length 4
        "6d61696e",                                 // "main"
        "010000000100000001000000",                 // workgroups [1, 1, 1]
        "08",                                       // bindings: compact length 2
        "00000000",                                 // binding 0
        "00",                                       // BindingKind::Input
        "1111111111111111111111111111111111111111111111111111111111111111", // sha256
        "30",                                       // uri: compact length 12
        "626c6f623a6578616d706c65",                 // "blob:example"
        "1000000000000000",                         // len: u64 16
        "01000000",                                 // binding 1
        "01",                                       // BindingKind::Output
        "1000000000000000",                         // len: u64 16
        "0100000000000000",                         // work_units: u64 1
        "00",                                       // Determinism::Exact
    );

    #[test]
    fn golden_encoding() {
        let spec = example();
        let bytes = spec.encode_spec();
        assert_eq!(hex::encode(&bytes), EXAMPLE_HEX);
        assert_eq!(bytes.len(), 141);
        assert_eq!(spec.spec_hash(), sha256(&bytes));
        let expected = hex::decode(EXAMPLE_HEX).expect("golden hex is valid");
        assert_eq!(JobSpec::decode_spec(&expected), Ok(spec));
    }

    #[test]
    fn example_specs_are_valid() {
        assert_eq!(example().check(&SpecLimits::default()), Ok(()));
        assert_eq!(rich().check(&SpecLimits::default()), Ok(()));
    }

    #[test]
    fn round_trip() {
        for spec in [example(), rich()] {
            let bytes = spec.encode_spec();
            assert_eq!(JobSpec::decode_spec(&bytes), Ok(spec.clone()));
            assert_eq!(JobSpec::decode(&mut &bytes[..]).expect("decodes"), spec);
        }
        let mut float = rich();
        float.determinism = Determinism::Float;
        assert_eq!(JobSpec::decode_spec(&float.encode_spec()), Ok(float));
    }

    #[test]
    fn spec_hash_is_sha256_of_encoding() {
        let spec = rich();
        assert_eq!(spec.spec_hash(), sha256(&spec.encode_spec()));
        // sha256("") as a sanity check of the helper.
        assert_eq!(
            hex::encode(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Asserts that `mutate` changes both the spec and its hash.
    fn changes_hash(base: &JobSpec, name: &str, mutate: impl FnOnce(&mut JobSpec)) {
        let mut spec = base.clone();
        mutate(&mut spec);
        assert_ne!(&spec, base, "mutation {name} changed nothing");
        assert_ne!(spec.spec_hash(), base.spec_hash(), "mutation {name} kept the hash");
    }

    #[test]
    fn hash_changes_when_any_field_changes() {
        let base = rich();
        changes_hash(&base, "version", |s| s.version = 2);
        changes_hash(&base, "wgsl", |s| s.wgsl.push(' '));
        changes_hash(&base, "entry_point", |s| s.entry_point = "main2".to_string());
        changes_hash(&base, "workgroups x", |s| s.workgroups[0] += 1);
        changes_hash(&base, "workgroups y", |s| s.workgroups[1] += 1);
        changes_hash(&base, "workgroups z", |s| s.workgroups[2] += 1);
        changes_hash(&base, "binding number", |s| s.bindings[0].binding = 7);
        changes_hash(&base, "binding order", |s| s.bindings.swap(0, 1));
        changes_hash(&base, "binding removed", |s| {
            s.bindings.pop();
        });
        changes_hash(&base, "input sha256", |s| {
            if let BindingKind::Input(i) = &mut s.bindings[0].kind {
                i.sha256[31] ^= 1;
            }
        });
        changes_hash(&base, "input uri", |s| {
            if let BindingKind::Input(i) = &mut s.bindings[0].kind {
                i.uri.push('x');
            }
        });
        changes_hash(&base, "input len", |s| {
            if let BindingKind::Input(i) = &mut s.bindings[0].kind {
                i.len += 4;
            }
        });
        changes_hash(&base, "output len", |s| s.bindings[1].kind = BindingKind::Output { len: 20 });
        changes_hash(&base, "binding kind", |s| {
            s.bindings[1].kind = BindingKind::Uniform { data: vec![0; 16] };
        });
        changes_hash(&base, "uniform data", |s| {
            if let BindingKind::Uniform { data } = &mut s.bindings[2].kind {
                data[0] ^= 1;
            }
        });
        changes_hash(&base, "work_units", |s| s.work_units += 1);
        changes_hash(&base, "determinism", |s| s.determinism = Determinism::Float);
    }

    #[test]
    fn output_len_and_inputs() {
        assert_eq!(example().output_len(), 16);
        assert_eq!(rich().output_len(), 16 + 64);
        let spec = with_binding(
            rich(),
            3,
            BindingKind::Input(InputRef {
                sha256: [0x22; 32],
                uri: "blob:second".to_string(),
                len: 8,
            }),
        );
        let inputs: Vec<(u32, &InputRef)> = spec.inputs().collect();
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[0].0, 0);
        assert_eq!(inputs[0].1.uri, "blob:example");
        assert_eq!(inputs[1].0, 3);
        assert_eq!(inputs[1].1.sha256, [0x22; 32]);
    }

    #[test]
    fn every_check_error() {
        let limits = SpecLimits::default();
        let input = |len: u64| {
            BindingKind::Input(InputRef {
                sha256: [0; 32],
                uri: "blob:x".to_string(),
                len,
            })
        };
        let big = limits.max_buffer_bytes;
        let cases: Vec<(JobSpec, SpecError)> = vec![
            (
                JobSpec { version: 0, ..example() },
                SpecError::UnsupportedVersion { found: 0, supported: FORMAT_VERSION },
            ),
            (
                JobSpec { entry_point: String::new(), ..example() },
                SpecError::EmptyEntryPoint,
            ),
            (
                JobSpec { wgsl: " ".repeat(limits.max_wgsl_bytes + 1), ..example() },
                SpecError::WgslTooLarge {
                    len: limits.max_wgsl_bytes + 1,
                    max: limits.max_wgsl_bytes,
                },
            ),
            (
                JobSpec {
                    bindings: vec![Binding { binding: 0, kind: input(16) }],
                    ..example()
                },
                SpecError::NoOutput,
            ),
            (
                JobSpec {
                    bindings: (0..9)
                        .map(|b| Binding { binding: b, kind: BindingKind::Output { len: 4 } })
                        .collect(),
                    ..example()
                },
                SpecError::TooManyBindings { count: 9, max: 8 },
            ),
            (
                with_binding(example(), 1, BindingKind::Output { len: 4 }),
                SpecError::DuplicateBinding { binding: 1 },
            ),
            (
                JobSpec { workgroups: [1, 0, 1], ..example() },
                SpecError::ZeroWorkgroups { dim: 1 },
            ),
            (
                JobSpec { workgroups: [1, 1, 65_536], ..example() },
                SpecError::TooManyWorkgroups { dim: 2, count: 65_536, max: 65_535 },
            ),
            (
                with_binding(example(), 2, BindingKind::Output { len: 0 }),
                SpecError::EmptyBuffer { binding: 2 },
            ),
            (
                with_binding(example(), 2, input(0)),
                SpecError::EmptyBuffer { binding: 2 },
            ),
            (
                with_binding(example(), 3, BindingKind::Output { len: big + 4 }),
                SpecError::BufferTooLarge { binding: 3, len: big + 4, max: big },
            ),
            (
                with_binding(example(), 3, input(big + 4)),
                SpecError::BufferTooLarge { binding: 3, len: big + 4, max: big },
            ),
            (
                with_binding(example(), 4, BindingKind::Output { len: 6 }),
                SpecError::UnalignedBuffer { binding: 4, len: 6 },
            ),
            (
                with_binding(example(), 4, input(3)),
                SpecError::UnalignedBuffer { binding: 4, len: 3 },
            ),
            (
                with_binding(
                    with_binding(example(), 2, BindingKind::Output { len: big }),
                    3,
                    input(big),
                ),
                SpecError::TotalTooLarge { total: 2 * big + 32, max: limits.max_total_bytes },
            ),
            (
                with_binding(example(), 2, BindingKind::Uniform { data: Vec::new() }),
                SpecError::EmptyUniform { binding: 2 },
            ),
            (
                with_binding(
                    example(),
                    2,
                    BindingKind::Uniform { data: vec![0; limits.max_uniform_bytes + 4] },
                ),
                SpecError::UniformTooLarge {
                    binding: 2,
                    len: limits.max_uniform_bytes + 4,
                    max: limits.max_uniform_bytes,
                },
            ),
            (
                with_binding(example(), 2, BindingKind::Uniform { data: vec![0; 5] }),
                SpecError::UnalignedUniform { binding: 2, len: 5 },
            ),
            (
                JobSpec { work_units: 0, ..example() },
                SpecError::ZeroWorkUnits,
            ),
            (
                with_binding(
                    example(),
                    2,
                    BindingKind::Input(InputRef { sha256: [0; 32], uri: String::new(), len: 4 }),
                ),
                SpecError::EmptyInputUri { binding: 2 },
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(spec.check(&limits), Err(expected.clone()), "spec: {spec:?}");
            // decode_spec runs the same check on a round-tripped spec.
            assert_eq!(JobSpec::decode_spec(&spec.encode_spec()), Err(expected.clone()));
            // Every error renders a message.
            assert!(!expected.to_string().is_empty());
        }
    }

    #[test]
    fn custom_limits_apply() {
        let tight = SpecLimits {
            max_total_bytes: 28,
            ..SpecLimits::default()
        };
        assert_eq!(
            example().check(&tight),
            Err(SpecError::TotalTooLarge { total: 32, max: 28 })
        );
        let bytes = example().encode_spec();
        assert_eq!(
            JobSpec::decode_spec_with_limits(&bytes, &tight),
            Err(SpecError::TotalTooLarge { total: 32, max: 28 })
        );
        let loose = SpecLimits {
            max_total_bytes: 32,
            ..SpecLimits::default()
        };
        assert_eq!(JobSpec::decode_spec_with_limits(&bytes, &loose), Ok(example()));
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = example().encode_spec();
        bytes.push(0);
        assert_eq!(
            JobSpec::decode_spec(&bytes),
            Err(SpecError::TrailingBytes { extra: 1 })
        );
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            JobSpec::decode_spec(&bytes),
            Err(SpecError::TrailingBytes { extra: 4 })
        );
    }

    #[test]
    fn wrong_version_rejected() {
        // Version 2 is the multi-pass format (see `multi_pass_*` below); 3 and up are unknown.
        for version in [0, 3, u16::MAX] {
            let spec = JobSpec { version, ..example() };
            assert_eq!(
                JobSpec::decode_spec(&spec.encode_spec()),
                Err(SpecError::UnsupportedVersion { found: version, supported: FORMAT_VERSION })
            );
        }
    }

    #[test]
    fn garbage_gives_decode_error() {
        let is_decode = |r: Result<JobSpec, SpecError>| matches!(r, Err(SpecError::Decode(_)));
        assert!(is_decode(JobSpec::decode_spec(&[])));
        assert!(is_decode(JobSpec::decode_spec(&[0xff; 7])));
        assert!(is_decode(JobSpec::decode_spec(&[0xff; 4096])));

        // Every strict prefix of a valid encoding is truncated.
        let bytes = example().encode_spec();
        for cut in 0..bytes.len() {
            assert!(is_decode(JobSpec::decode_spec(&bytes[..cut])), "prefix of {cut} bytes");
        }

        // An unknown enum variant: the last byte is the Determinism index.
        let mut bad_variant = bytes.clone();
        let last = bad_variant.len() - 1;
        bad_variant[last] = 2;
        assert!(is_decode(JobSpec::decode_spec(&bad_variant)));

        // Invalid UTF-8 in the WGSL source (byte 3 is its first character).
        let mut bad_utf8 = bytes.clone();
        bad_utf8[3] = 0xff;
        assert!(is_decode(JobSpec::decode_spec(&bad_utf8)));

        // A huge declared length must fail cleanly, not allocate or panic.
        let mut huge = vec![0x01, 0x00];
        huge.extend_from_slice(&[0x03, 0xff, 0xff, 0xff, 0xff]); // compact u32::MAX
        assert!(is_decode(JobSpec::decode_spec(&huge)));

        // Pseudo-random garbage never panics.
        let mut state: u64 = 0x0123_4567_89ab_cdef;
        for len in 0..512usize {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 56) as u8
                })
                .collect();
            let _ = JobSpec::decode_spec(&garbage);
        }
    }

    /// A valid multi-pass spec: [`rich`] plus two passes, one replacing the uniform.
    fn multi() -> JobSpec {
        let mut spec = rich();
        spec.version = MULTI_PASS_VERSION;
        spec.passes = vec![
            Pass {
                entry_point: "stage".to_string(),
                workgroups: [2, 1, 1],
                uniform: Some(PassUniform { binding: 2, data: vec![2, 0, 0, 0, 9, 0, 0, 0] }),
            },
            Pass { entry_point: "main".to_string(), workgroups: [1, 1, 1], uniform: None },
        ];
        spec
    }

    /// Golden encoding of [`multi`]: the version 1 bytes of [`rich`] with the version set to
    /// 2, then the SCALE `Vec<Pass>`.
    #[test]
    fn multi_pass_golden_encoding() {
        let mut v1 = rich().encode_spec();
        v1[0] = 2; // version: u16 2, LE
        let passes_hex = concat!(
            "08",                         // passes: compact length 2
            "14", "7374616765",           // entry_point "stage"
            "020000000100000001000000",   // workgroups [2, 1, 1]
            "01",                         // Some(PassUniform)
            "02000000",                   // binding 2
            "20", "0200000009000000",     // data: compact length 8, bytes
            "10", "6d61696e",             // entry_point "main"
            "010000000100000001000000",   // workgroups [1, 1, 1]
            "00",                         // None
        );
        let mut expected = v1;
        expected.extend(hex::decode(passes_hex).expect("golden hex is valid"));
        let spec = multi();
        assert_eq!(hex::encode(spec.encode_spec()), hex::encode(&expected));
        assert_eq!(JobSpec::decode_spec(&expected), Ok(spec.clone()));
        assert_eq!(spec.check(&SpecLimits::default()), Ok(()));
        // A single-pass spec keeps its version 1 bytes: no trace of the new field.
        assert_eq!(example().encode_spec().len(), 141);
    }

    #[test]
    fn multi_pass_dispatches_in_order() {
        let spec = multi();
        let d: Vec<_> = spec.dispatches().collect();
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].0, d[0].1, d[0].2), ("main", [4, 2, 3], None));
        assert_eq!((d[1].0, d[1].1, d[1].2.map(|u| u.binding)), ("stage", [2, 1, 1], Some(2)));
        assert_eq!((d[2].0, d[2].1, d[2].2), ("main", [1, 1, 1], None));
        assert_eq!(example().dispatches().count(), 1);
    }

    #[test]
    fn multi_pass_hash_covers_passes() {
        let base = multi();
        changes_hash(&base, "pass entry point", |s| s.passes[0].entry_point.push('x'));
        changes_hash(&base, "pass workgroups", |s| s.passes[1].workgroups[2] = 2);
        changes_hash(&base, "pass uniform data", |s| {
            if let Some(u) = &mut s.passes[0].uniform {
                u.data[0] ^= 1;
            }
        });
        changes_hash(&base, "pass uniform dropped", |s| s.passes[0].uniform = None);
        changes_hash(&base, "pass order", |s| s.passes.swap(0, 1));
        changes_hash(&base, "pass removed", |s| {
            s.passes.pop();
        });
    }

    #[test]
    fn multi_pass_errors() {
        let limits = SpecLimits::default();
        let with = |f: &dyn Fn(&mut JobSpec)| {
            let mut s = multi();
            f(&mut s);
            s
        };
        let cases: Vec<(JobSpec, SpecError)> = vec![
            (with(&|s| s.passes.clear()), SpecError::NoPasses),
            (
                with(&|s| s.passes = vec![s.passes[1].clone(); 65]),
                SpecError::TooManyPasses { count: 65, max: 64 },
            ),
            (with(&|s| s.passes[1].entry_point.clear()), SpecError::PassEmptyEntryPoint { pass: 1 }),
            (with(&|s| s.passes[0].workgroups[1] = 0), SpecError::PassZeroWorkgroups { pass: 0, dim: 1 }),
            (
                with(&|s| s.passes[1].workgroups[0] = 65_536),
                SpecError::PassTooManyWorkgroups { pass: 1, dim: 0, count: 65_536, max: 65_535 },
            ),
            (
                with(&|s| s.passes[1].uniform = Some(PassUniform { binding: 1, data: vec![0; 16] })),
                SpecError::PassUniformUndeclared { pass: 1, binding: 1 },
            ),
            (
                with(&|s| s.passes[1].uniform = Some(PassUniform { binding: 9, data: vec![0; 8] })),
                SpecError::PassUniformUndeclared { pass: 1, binding: 9 },
            ),
            (
                with(&|s| s.passes[0].uniform = Some(PassUniform { binding: 2, data: vec![0; 12] })),
                SpecError::PassUniformLength { pass: 0, binding: 2, len: 12, expected: 8 },
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(spec.check(&limits), Err(expected.clone()), "spec: {spec:?}");
            assert_eq!(JobSpec::decode_spec(&spec.encode_spec()), Err(expected.clone()));
            assert!(!expected.to_string().is_empty());
        }
        // Pass uniforms count towards the total.
        let tight = SpecLimits { max_total_bytes: 32 + 64 + 8, ..SpecLimits::default() };
        assert_eq!(rich().check(&tight), Ok(()));
        assert_eq!(multi().check(&tight), Err(SpecError::TotalTooLarge { total: 32 + 64 + 8 + 8, max: 32 + 64 + 8 }));
        // A version 1 spec with passes is refused by `check`; its encoding carries the passes,
        // which a version 1 decoder sees as trailing bytes (never silently dropped).
        let v1_with_passes = with(&|s| s.version = FORMAT_VERSION);
        assert_eq!(v1_with_passes.check(&limits), Err(SpecError::PassesNeedVersion2));
        assert!(matches!(
            JobSpec::decode_spec(&v1_with_passes.encode_spec()),
            Err(SpecError::TrailingBytes { .. })
        ));
        assert!(!SpecError::PassesNeedVersion2.to_string().is_empty());
        // A version 2 encoding cut before or inside its passes is a decode error.
        let bytes = multi().encode_spec();
        let v1_len = rich().encode_spec().len();
        for cut in v1_len..bytes.len() {
            assert!(matches!(JobSpec::decode_spec(&bytes[..cut]), Err(SpecError::Decode(_))), "cut {cut}");
        }
    }
}

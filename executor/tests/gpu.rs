//! The executor on a real wgpu device (lavapipe in CI): every library kernel's output equals
//! its CPU reference bit for bit, and every kind of bad input is a distinct error.

use capacloud_executor::exec::{self, Checks, ExecError, ExecLimits, Plan};
use capacloud_executor::merkle;
use capacloud_executor::spec::{Binding, BindingKind, Determinism, InputRef, JobSpec, FORMAT_VERSION};
use capacloud_executor::workloads::{self, Workload};
use std::collections::BTreeMap;
use std::time::Duration;

mod common;
use common::gpu;


fn run_workload(w: &dyn Workload) {
    let Some(gpu) = gpu() else { return };
    let prepared = w.prepare();
    let expected = w.cpu_reference(&prepared);
    let (spec, inputs) = prepared.to_job();
    let out = exec::execute(gpu, &spec, &inputs, &ExecLimits::default()).unwrap_or_else(|e| panic!("{}: {e}", w.name()));
    assert_eq!(out.output.len(), expected.len(), "{}", w.name());
    if out.output != expected {
        let first = out.output.iter().zip(&expected).position(|(a, b)| a != b).unwrap();
        panic!("{}: GPU differs from CPU first at byte {first}", w.name());
    }
    assert_eq!(out.commitment, merkle::commit(&expected, merkle::DEFAULT_CHUNK), "{}", w.name());
}

#[test]
fn matmul_tiled_matches_cpu() {
    run_workload(&workloads::Matmul { n: 192, seed: 1 });
}

#[test]
fn matmul_wide_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let m = workloads::Matmul { n: 256, seed: 5 };
    let prepared = m.prepare_wide();
    let expected = m.cpu_reference(&prepared);
    let (spec, inputs) = prepared.to_job();
    assert!(workloads::trusted_without_checks(&spec));
    let out = exec::execute(gpu, &spec, &inputs, &ExecLimits::default()).unwrap();
    assert!(out.output == expected, "wide matmul differs from CPU");
}

#[test]
fn matmul_naive_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let m = workloads::Matmul { n: 128, seed: 2 };
    let prepared = m.prepare_naive();
    let expected = m.cpu_reference(&prepared);
    let (spec, inputs) = prepared.to_job();
    assert!(!workloads::trusted_without_checks(&spec), "the naive baseline keeps bounds checks");
    let out = exec::execute(gpu, &spec, &inputs, &ExecLimits::default()).unwrap();
    assert!(out.output == expected, "naive matmul differs from CPU");
}

#[test]
fn sha256_batch_matches_cpu() {
    run_workload(&workloads::Sha256Batch { messages: 1000, seed: 3 });
}

#[test]
fn mandelbrot_matches_cpu() {
    run_workload(&workloads::Mandelbrot { width: 140, height: 100, max_iter: 256 });
}

#[test]
fn mandelbrot_strips_match_cpu() {
    for i in 0..3 {
        run_workload(&workloads::MandelbrotTile::strip(140, 100, 256, i, 3));
    }
}

#[test]
fn mandelbrot_png_is_written_and_decodes() {
    let Some(gpu) = gpu() else { return };
    let m = workloads::Mandelbrot { width: 700, height: 500, max_iter: 512 };
    let (spec, inputs) = m.prepare().to_job();
    let out = exec::execute(gpu, &spec, &inputs, &ExecLimits::default()).unwrap();
    let iters = workloads::bytes_to_words(&out.output);
    let dir = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| "../target".into());
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mandelbrot.png");
    workloads::mandelbrot::write_png(std::fs::File::create(&path).unwrap(), &iters, 700, 500, 512).unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (700, 500));
    assert_eq!(&buf[..info.buffer_size()], &workloads::mandelbrot::colorize(&iters, 512)[..]);
    eprintln!("wrote {}", path.display());
}

#[test]
fn dot_i8_matches_cpu() {
    run_workload(&workloads::DotI8Layer { rows: 300, cols: 512, seed: 4 });
}

/// A small valid custom job: out[i] = in[i] * 3 + 1.
fn custom_job() -> (JobSpec, BTreeMap<u32, Vec<u8>>) {
    let wgsl = "@group(0) @binding(0) var<storage, read> src: array<u32>;\n\
                @group(0) @binding(1) var<storage, read_write> dst: array<u32>;\n\
                @compute @workgroup_size(64)\n\
                fn main(@builtin(global_invocation_id) id: vec3<u32>) {\n\
                    if (id.x < arrayLength(&src)) { dst[id.x] = src[id.x] * 3u + 1u; }\n\
                }\n";
    let data: Vec<u8> = (0u32..256).flat_map(|i| i.to_le_bytes()).collect();
    let digest = capacloud_executor::spec::sha256(&data);
    let spec = JobSpec {
        version: FORMAT_VERSION,
        wgsl: wgsl.into(),
        entry_point: "main".into(),
        workgroups: [4, 1, 1],
        bindings: vec![
            Binding { binding: 0, kind: BindingKind::Input(InputRef { sha256: digest, uri: "blob:x".into(), len: 1024 }) },
            Binding { binding: 1, kind: BindingKind::Output { len: 1024 } },
        ],
        work_units: 1,
        determinism: Determinism::Exact,
        passes: Vec::new(),
    };
    (spec, BTreeMap::from([(0, data)]))
}

#[test]
fn custom_wgsl_runs_through_the_same_path() {
    let Some(gpu) = gpu() else { return };
    let (spec, inputs) = custom_job();
    let out = exec::execute(gpu, &spec, &inputs, &ExecLimits::default()).unwrap();
    let want: Vec<u8> = (0u32..256).flat_map(|i| (i * 3 + 1).to_le_bytes()).collect();
    assert_eq!(out.output, want);
}

#[test]
fn bad_inputs_get_distinct_errors() {
    let Some(gpu) = gpu() else { return };
    let limits = ExecLimits::default();
    let run = |spec: &JobSpec, inputs: &BTreeMap<u32, Vec<u8>>| exec::execute(gpu, spec, inputs, &limits).unwrap_err();

    let (spec, inputs) = custom_job();
    let mut tampered = inputs.clone();
    tampered.get_mut(&0).unwrap()[0] ^= 1;
    assert!(matches!(run(&spec, &tampered), ExecError::InputHash { binding: 0, .. }));
    assert!(matches!(run(&spec, &BTreeMap::new()), ExecError::MissingInput { binding: 0 }));

    let mut s = spec.clone();
    s.wgsl = s.wgsl.replace("dst[id.x] =", "dst[id.x] = = ");
    match run(&s, &inputs) {
        ExecError::WgslParse { line, column, .. } => assert_eq!((line, column > 0), (5, true)),
        other => panic!("expected WgslParse, got {other}"),
    }
    let mut s = spec.clone();
    s.wgsl = s.wgsl.replace("src[id.x] * 3u", "src[id.x] * 3.0");
    assert!(matches!(run(&s, &inputs), ExecError::WgslInvalid { .. } | ExecError::WgslParse { .. }));

    let mut s = spec.clone();
    s.entry_point = "nope".into();
    assert!(matches!(run(&s, &inputs), ExecError::NoEntryPoint(_)));

    let mut s = spec.clone();
    s.bindings[1].kind = BindingKind::Uniform { data: vec![0; 16] };
    s.bindings.push(Binding { binding: 2, kind: BindingKind::Output { len: 4 } });
    assert!(matches!(run(&s, &inputs), ExecError::BindingKindMismatch { binding: 1, .. }));

    let mut s = spec.clone();
    s.bindings.push(Binding { binding: 5, kind: BindingKind::Output { len: 4 } });
    assert!(matches!(run(&s, &inputs), ExecError::UnusedBinding { binding: 5 }));

    let mut s = spec.clone();
    s.bindings.remove(1);
    assert!(matches!(run(&s, &inputs), ExecError::Spec(_) | ExecError::UndeclaredBinding { binding: 1 }));

    let mut s = spec.clone();
    s.workgroups = [gpu.limits.max_compute_workgroups_per_dimension + 1, 1, 1];
    let e = exec::Plan::new(gpu, &s, &inputs, &ExecLimits { spec: capacloud_executor::spec::SpecLimits { max_workgroups_per_dim: u32::MAX, ..Default::default() }, ..Default::default() }, Checks::On);
    assert!(matches!(e.err().unwrap(), ExecError::DispatchTooLarge { dim: 0, .. }));

    // Checks cannot be switched off for a user kernel.
    assert!(matches!(Plan::new(gpu, &spec, &inputs, &limits, Checks::TrustedLibraryKernel).err().unwrap(), ExecError::UntrustedKernel));
    // Nor for the library matmul with a shape that disagrees with its buffers.
    let m = workloads::Matmul { n: 64, seed: 1 }.prepare();
    let (mut ms, mi) = m.to_job();
    assert!(workloads::trusted_without_checks(&ms));
    ms.workgroups = [2, 2, 1];
    assert!(!workloads::trusted_without_checks(&ms));
    assert!(matches!(Plan::new(gpu, &ms, &mi, &limits, Checks::TrustedLibraryKernel).err().unwrap(), ExecError::UntrustedKernel));
    let _ = Duration::ZERO;
}


#[test]
fn multi_pass_job_runs_passes_in_order_with_their_uniforms() {
    let Some(gpu) = gpu() else { return };
    let data: Vec<u8> = (0u32..256).flat_map(|i| i.to_le_bytes()).collect();
    let spec = common::multi_pass_spec(&data);
    let inputs = BTreeMap::from([(0, data)]);
    let out = exec::execute(gpu, &spec, &inputs, &ExecLimits::default()).unwrap();
    let want: Vec<u8> = (0u32..256).flat_map(|i| ((i + 1) * 15).to_le_bytes()).collect();
    assert_eq!(out.output, want);
    // A pass dispatch over the device's limit is refused like the first dispatch's.
    let mut s = spec.clone();
    s.passes[1].workgroups = [1, gpu.limits.max_compute_workgroups_per_dimension + 1, 1];
    let big = ExecLimits { spec: capacloud_executor::spec::SpecLimits { max_workgroups_per_dim: u32::MAX, ..Default::default() }, ..Default::default() };
    assert!(matches!(exec::execute(gpu, &s, &inputs, &big).unwrap_err(), ExecError::DispatchTooLarge { dim: 1, .. }));
}

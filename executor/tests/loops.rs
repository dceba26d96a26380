//! The loop budget ([`capacloud_executor::guard`]) on a real device (lavapipe in CI): kernels
//! that loop longer than a software adapter allows give the same, documented result on every
//! adapter, and what lavapipe does to the same kernels without the budget.

use capacloud_executor::exec::{self, ExecLimits};
use capacloud_executor::guard::{self, LOOP_BUDGET};
use capacloud_executor::spec::{Binding, BindingKind, Determinism, JobSpec, FORMAT_VERSION};
use capacloud_executor::workloads::{self, Workload};
use capacloud_executor::Gpu;
use std::collections::BTreeMap;
use wgpu::naga;

mod common;
use common::gpu;

/// Invocations per run: one workgroup of 64.
const LANES: u32 = 64;


const HEADER: &str = "struct Params { iters: u32, never: u32, pad0: u32, pad1: u32 }\n\
    @group(0) @binding(0) var<uniform> params: Params;\n\
    @group(0) @binding(1) var<storage, read_write> out: array<u32>;\n";

/// One counted loop of `params.iters` iterations per invocation.
fn single_loop() -> String {
    format!(
        "{HEADER}@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
         var n = 0u;\n\
         for (var i = 0u; i < params.iters; i += 1u) {{ n += 1u; }}\n\
         out[gid.x] = n;\n}}\n"
    )
}

/// Lane `l` of each group of 8 runs its own loop (case `l`), adding `l + 1` per iteration:
/// the worst case for a limiter shared by a SIMD group.
fn divergent_loops() -> String {
    let cases: String = (0..8)
        .map(|l| {
            format!(
                "case {l}u: {{ for (var i = 0u; i < params.iters; i += 1u) {{ n += {}u; }} }}\n",
                l + 1
            )
        })
        .collect();
    format!(
        "{HEADER}@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
         var n = 0u;\n\
         switch (gid.x % 8u) {{\n{cases}default: {{}}\n}}\n\
         out[gid.x] = n;\n}}\n"
    )
}

/// A long loop around 20 loops that no invocation enters (`params.never` matches no lane).
fn untaken_loops() -> String {
    let inner: String = (0..20)
        .map(|_| "for (var j = 0u; j < params.iters; j += 1u) { n += 1000000u; }\n")
        .collect();
    format!(
        "{HEADER}@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
         var n = 0u;\n\
         for (var i = 0u; i < params.iters; i += 1u) {{\n\
         if (params.never == gid.x) {{\n{inner}}}\n\
         n += 1u;\n}}\n\
         out[gid.x] = n;\n}}\n"
    )
}

fn params(iters: u32) -> Vec<u8> {
    // `never` = a value no invocation id in 0..LANES takes.
    [iters, u32::MAX, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A one-workgroup job of `wgsl` with `params(iters)` at binding 0 and one `u32` per
/// invocation out at binding 1.
fn spec_of(wgsl: &str, iters: u32) -> JobSpec {
    JobSpec {
        version: FORMAT_VERSION,
        wgsl: wgsl.into(),
        entry_point: "main".into(),
        workgroups: [1, 1, 1],
        bindings: vec![
            Binding {
                binding: 0,
                kind: BindingKind::Uniform {
                    data: params(iters),
                },
            },
            Binding {
                binding: 1,
                kind: BindingKind::Output {
                    len: u64::from(LANES) * 4,
                },
            },
        ],
        work_units: 1,
        determinism: Determinism::Exact,
        passes: Vec::new(),
    }
}

/// Through the executor (the budget compiled in), as a provider or verifier runs it.
fn run_guarded(gpu: &Gpu, wgsl: &str, iters: u32) -> Vec<u32> {
    let spec = spec_of(wgsl, iters);
    let out =
        exec::execute(gpu, &spec, &BTreeMap::new(), &ExecLimits::default()).expect("guarded run");
    words(&out.output)
}

/// The same kernel straight through wgpu, without the budget (what the executor never does).
fn run_raw(gpu: &Gpu, wgsl: &str, iters: u32) -> Vec<u32> {
    use wgpu::util::DeviceExt;
    let device = &gpu.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("unguarded kernel"),
        source: wgpu::ShaderSource::Wgsl(wgsl.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("unguarded pipeline"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("unguarded params"),
        contents: &params(iters),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let size = u64::from(LANES) * 4;
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("unguarded output"),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("unguarded staging"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("unguarded bindings"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("unguarded commands"),
    });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("unguarded pass"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&out, 0, &staging, 0, size);
    let index = gpu.queue.submit([encoder.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: Some(std::time::Duration::from_secs(60)),
        })
        .expect("poll");
    let view = staging.slice(..).get_mapped_range().expect("mapped");
    words(&view)
}

/// The budget's semantics on the CPU for a single counted loop of `iters` iterations (cost
/// 1): the body is entered `iters + 1` times (the last entry fails the condition), each
/// entry spends one unit, and an entry that finds the budget spent breaks.
fn single_loop_model(iters: u32) -> u32 {
    iters.min(LOOP_BUDGET)
}

#[test]
fn a_loop_longer_than_the_budget_stops_at_the_budget_on_every_adapter() {
    let Some(gpu) = gpu() else { return };
    let wgsl = single_loop();
    for iters in [
        0,
        1,
        1_000,
        LOOP_BUDGET - 1,
        LOOP_BUDGET,
        LOOP_BUDGET + 1,
        100_000,
        u32::MAX,
    ] {
        let got = run_guarded(gpu, &wgsl, iters);
        assert_eq!(
            got,
            vec![single_loop_model(iters); LANES as usize],
            "iters = {iters}"
        );
    }
}

#[test]
fn without_the_budget_lavapipe_cuts_a_long_loop() {
    let Some(gpu) = gpu() else { return };
    let got = run_raw(gpu, &single_loop(), 100_000);
    eprintln!(
        "unguarded 100,000-iteration loop on {}: {} iterations",
        gpu.describe(),
        got[0]
    );
    if gpu.is_software() {
        // The hazard the budget removes: a silent cut near 65,535, not the kernel's answer.
        assert!(
            got.iter().all(|&n| n < 65_536),
            "lavapipe ran {} iterations",
            got[0]
        );
    } else {
        assert_eq!(got, vec![100_000; LANES as usize]);
    }
}

#[test]
fn lanes_that_each_spend_the_whole_budget_in_different_loops_are_not_cut() {
    let Some(gpu) = gpu() else { return };
    let wgsl = divergent_loops();
    let want: Vec<u32> = (0..LANES).map(|g| LOOP_BUDGET * (g % 8 + 1)).collect();
    assert_eq!(run_guarded(gpu, &wgsl, 1_000_000), want);
    let want: Vec<u32> = (0..LANES).map(|g| 3_000 * (g % 8 + 1)).collect();
    assert_eq!(run_guarded(gpu, &wgsl, 3_000), want);
    // Without the budget, 8 lanes × 10,000 iterations share lavapipe's one limiter.
    let raw = run_raw(gpu, &wgsl, 10_000);
    let full: Vec<u32> = (0..LANES).map(|g| 10_000 * (g % 8 + 1)).collect();
    eprintln!(
        "unguarded divergent loops, 10,000 each, lanes 0..8: {:?}",
        &raw[..8]
    );
    if gpu.is_software() {
        // Measured on llvmpipe (8 lanes): [1, 11058, 30000, 40000, ...]: the lanes that ran
        // first spent the group's 65,535 and the others were cut.
        assert_ne!(raw, full);
    } else {
        assert_eq!(raw, full);
    }
}

#[test]
fn loops_no_invocation_enters_are_paid_for_by_the_loop_around_them() {
    let Some(gpu) = gpu() else { return };
    let wgsl = untaken_loops();
    // The outer loop costs 1 + 20 per entry: 100 iterations (101 entries) fit the budget ...
    assert_eq!(run_guarded(gpu, &wgsl, 100), vec![100; LANES as usize]);
    // ... 4,000 do not: 4,000 / 21 = 190 entries, each one iteration, on every adapter.
    assert_eq!(
        run_guarded(gpu, &wgsl, 4_000),
        vec![LOOP_BUDGET / 21; LANES as usize]
    );
    // Without the budget lavapipe charges the 20 untaken loops on every outer iteration and
    // cuts the outer loop near 65,535 / 21 = 3,120 (measured: 3,121).
    let raw = run_raw(gpu, &wgsl, 4_000);
    eprintln!(
        "unguarded: outer loop of 4,000 around 20 untaken loops ran {} iterations",
        raw[0]
    );
    if gpu.is_software() {
        assert!(raw[0] < 4_000, "lavapipe did not cut: {}", raw[0]);
    } else {
        assert_eq!(raw, vec![4_000; LANES as usize]);
    }
}

#[test]
fn an_entry_point_with_too_many_loops_is_refused_before_running() {
    // 33 loops in a helper, called 32 times: 1,056 loops after inlining (> MAX_LOOPS) although
    // the source has only 33.
    let helper: String = (0..33)
        .map(|_| "for (var j = 0u; j < params.iters; j += 1u) { n += 1u; }\n")
        .collect();
    let calls: String = (0..32).map(|_| "n += helper();\n").collect();
    let wgsl = format!(
        "{HEADER}fn helper() -> u32 {{ var n = 0u;\n{helper}return n; }}\n\
         @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
         var n = 0u;\n{calls}out[gid.x] = n;\n}}\n"
    );
    let module = naga::front::wgsl::parse_str(&wgsl).unwrap();
    let err = guard::check(&module).unwrap_err();
    assert_eq!(
        err,
        guard::TooManyLoops {
            entry: "main".into(),
            loops: 33 * 32,
            max: guard::MAX_LOOPS
        }
    );
    let spec = spec_of(&wgsl, 1);
    let limits = capacloud_executor::spec::SpecLimits::default();
    assert!(
        matches!(exec::check_spec(&spec, &limits), Err(exec::ExecError::TooManyLoops(e)) if e == err)
    );
    // 31 calls (1,023 loops) pass.
    let fewer = spec.wgsl.replacen("n += helper();\n", "", 1);
    assert!(guard::check(&naga::front::wgsl::parse_str(&fewer).unwrap()).is_ok());
}

#[test]
fn the_library_sizes_stop_where_the_budget_does() {
    let Some(gpu) = gpu() else { return };
    let run = |cols: u32| {
        let w = workloads::DotI8Layer {
            rows: 64,
            cols,
            seed: 9,
        };
        let prepared = w.prepare();
        let expected = w.cpu_reference(&prepared);
        let (spec, inputs) = prepared.to_job();
        exec::execute(gpu, &spec, &inputs, &ExecLimits::default())
            .unwrap()
            .output
            == expected
    };
    assert!(
        run(workloads::dot_i8::MAX_COLS),
        "the largest library row must be exact"
    );
    assert!(
        !run(workloads::dot_i8::MAX_COLS + 4),
        "one word more must be cut by the budget"
    );
}

#[test]
fn every_library_kernel_keeps_validating_with_the_budget() {
    use workloads::{dot_i8, mandelbrot, matmul, ntt, poseidon2, sha256};
    let kernels = [
        dot_i8::KERNEL,
        mandelbrot::KERNEL,
        matmul::KERNEL,
        matmul::NAIVE_KERNEL,
        matmul::WIDE_KERNEL,
        ntt::KERNEL,
        poseidon2::KERNEL,
        poseidon2::PERMUTE_KERNEL,
        sha256::KERNEL,
    ];
    for kernel in kernels {
        let module = naga::front::wgsl::parse_str(kernel.wgsl).expect(kernel.name);
        let guarded =
            exec::guarded_module(module.clone()).unwrap_or_else(|e| panic!("{}: {e}", kernel.name));
        let loops = guarded
            .global_variables
            .iter()
            .any(|(_, v)| v.name.as_deref() == Some(guard::BUDGET_VARIABLE));
        let mut again = module;
        assert_eq!(guard::bound_loops(&mut again) > 0, loops, "{}", kernel.name);
    }
}

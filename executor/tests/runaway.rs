//! A kernel that never ends: the executor returns `Timeout` instead of hanging, abandons the
//! device (further jobs on it fail with `DeviceLost`), and the process exits normally.
//! Its own test binary, so the abandoned device does not affect other tests.

use capacloud_executor::exec::{self, ExecError, ExecLimits};
use capacloud_executor::spec::{Binding, BindingKind, Determinism, JobSpec, FORMAT_VERSION};
use capacloud_executor::Gpu;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn runaway_kernel_times_out_and_abandons_the_device() {
    let gpu = match Gpu::from_env() {
        Ok(g) => g,
        Err(e) => {
            let ci = std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false);
            assert!(!ci, "no GPU adapter in CI ({e})");
            eprintln!("SKIPPED: no GPU adapter: {e}");
            return;
        }
    };
    // c[1] is never written, so the loop never breaks; the atomic keeps it from being removed.
    // lavapipe ends any loop after 65,535 iterations, so the kernel is also dispatched wide:
    // 65,535 × 64 invocations × 65,535 atomic adds would take hours on a CPU.
    let wgsl = "@group(0) @binding(0) var<storage, read_write> c: array<atomic<u32>>;\n\
                @compute @workgroup_size(64)\n\
                fn main() {\n\
                    loop {\n\
                        atomicAdd(&c[0], 1u);\n\
                        if (atomicLoad(&c[1]) == 7u) { break; }\n\
                    }\n\
                }\n";
    let spec = JobSpec {
        version: FORMAT_VERSION,
        wgsl: wgsl.into(),
        entry_point: "main".into(),
        workgroups: [65_535, 1, 1],
        bindings: vec![Binding { binding: 0, kind: BindingKind::Output { len: 8 } }],
        work_units: 1,
        determinism: Determinism::Exact,
        passes: Vec::new(),
    };
    let limits = ExecLimits { timeout: Duration::from_secs(2), ..Default::default() };
    match exec::execute(&gpu, &spec, &BTreeMap::new(), &limits) {
        Err(ExecError::Timeout(t)) => assert_eq!(t, Duration::from_secs(2)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(gpu.is_lost());
    assert!(matches!(exec::execute(&gpu, &spec, &BTreeMap::new(), &limits), Err(ExecError::DeviceLost)));
}

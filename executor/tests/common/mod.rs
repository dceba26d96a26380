//! What the executor's device tests share: the one device per test binary.

use capacloud_executor::spec::{sha256, Binding, BindingKind, Determinism, InputRef, JobSpec, Pass, PassUniform, MULTI_PASS_VERSION};
use capacloud_executor::Gpu;
use std::sync::OnceLock;

/// The shared device; `None` (skip, with a reason) only outside CI: with `CI` set, a missing
/// adapter fails the test.
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::from_env() {
        Ok(g) => {
            eprintln!("adapter: {}", g.describe());
            Some(g)
        }
        Err(e) => {
            let ci = std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false);
            assert!(!ci, "no GPU adapter in CI ({e}); install mesa-vulkan-drivers (make setup)");
            eprintln!("SKIPPED: no GPU adapter: {e}");
            None
        }
    })
    .as_ref()
}

/// A multi-pass job over `input` (256 words): `fill` writes dst = src + k with the declared
/// k = 1, then two `scale` passes multiply dst in place by their own k, 3 and 5:
/// dst = (src + 1) × 15.
#[allow(dead_code)] // not every test binary uses it
pub fn multi_pass_spec(input: &[u8]) -> JobSpec {
    let wgsl = "@group(0) @binding(0) var<storage, read> src: array<u32>;\n\
                @group(0) @binding(1) var<storage, read_write> dst: array<u32>;\n\
                @group(0) @binding(2) var<uniform> k: vec4<u32>;\n\
                @compute @workgroup_size(64) fn fill(@builtin(global_invocation_id) id: vec3<u32>) {\n\
                    if (id.x < arrayLength(&src)) { dst[id.x] = src[id.x] + k.x; }\n\
                }\n\
                @compute @workgroup_size(64) fn scale(@builtin(global_invocation_id) id: vec3<u32>) {\n\
                    if (id.x < arrayLength(&dst)) { dst[id.x] = dst[id.x] * k.x; }\n\
                }\n";
    let k = |x: u32| [x, 0, 0, 0].iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
    JobSpec {
        version: MULTI_PASS_VERSION,
        wgsl: wgsl.into(),
        entry_point: "fill".into(),
        workgroups: [4, 1, 1],
        bindings: vec![
            Binding { binding: 0, kind: BindingKind::Input(InputRef { sha256: sha256(input), uri: "blob:x".into(), len: 1024 }) },
            Binding { binding: 1, kind: BindingKind::Output { len: 1024 } },
            Binding { binding: 2, kind: BindingKind::Uniform { data: k(1) } },
        ],
        work_units: 1,
        determinism: Determinism::Exact,
        passes: vec![
            Pass { entry_point: "scale".into(), workgroups: [4, 1, 1], uniform: Some(PassUniform { binding: 2, data: k(3) }) },
            Pass { entry_point: "scale".into(), workgroups: [4, 1, 1], uniform: Some(PassUniform { binding: 2, data: k(5) }) },
        ],
    }
}

//! What the executor's device tests share: the one device per test binary.

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

//! `cargo bench -p capacloud-executor`: the executor's throughput beside its baselines, measured
//! in the same run and printed as Markdown tables (copied into BENCHMARKS.md).
//!
//! - u32 matmul: the library's tiled WGSL kernel and the naive WGSL kernel on the adapter
//!   (lavapipe here, a GPU on the device machine), the project's CPU reference (rayon), and
//!   matrixmultiply's f32 sgemm (a well-kept, tuned CPU GEMM) at the same sizes.
//! - Merkle commitment: one thread and all threads, against raw SHA-256 on one core (sha2)
//!   (the sha2 crate, which the commitment uses, and ring) and `openssl speed -evp sha256`
//!   run by this bench.
//!
//! Env: `BENCH_SIZES` (matmul orders, default `256,512,1024`), `BENCH_MERKLE_MB` (default 256),
//! `BENCH_CPU_MAX_N` (largest n for the CPU baselines, default 1024), `CAPACLOUD_ADAPTER`.

use capacloud_executor::exec::{Checks, ExecLimits, Plan};
use capacloud_executor::merkle::{self, DEFAULT_CHUNK};
use capacloud_executor::score::{matmul_ops, median_gops};
use capacloud_executor::workloads::{self, matmul, Matmul, Workload};
use capacloud_executor::Gpu;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

fn env_list(name: &str, default: &str) -> Vec<u32> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Best-of-3 wall time of `f`.
fn best_of<F: FnMut()>(mut f: F) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn matmul_table(gpu: &Gpu) {
    let sizes = env_list("BENCH_SIZES", "256,512,1024");
    let cpu_max = env_list("BENCH_CPU_MAX_N", "1024").first().copied().unwrap_or(1024);
    let limits = ExecLimits::default();
    println!("\n### u32 matmul, GOP/s (multiply-add = 2 ops) — adapter: {}\n", gpu.describe());
    println!("| n | tiled 64 WGSL | wide 128 WGSL | wide 128, bounds checks on | naive WGSL | best / naive | CPU reference (rayon, {} threads) | matrixmultiply sgemm f32 (GFLOP/s) |", rayon::current_num_threads());
    println!("|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let m = Matmul { n, seed: 7 };
        let tiled = m.prepare();
        let (spec, inputs) = tiled.to_job();
        let plan = Plan::new(gpu, &spec, &inputs, &limits, Checks::TrustedLibraryKernel).expect("tiled plan");
        // Correctness first: the benchmarked kernel's output equals the CPU reference.
        if n <= cpu_max {
            let out = plan.run(Duration::from_secs(600)).expect("tiled run");
            assert!(out.output == m.cpu_reference(&tiled), "tiled matmul n={n} differs from CPU");
        }
        let t = median_gops(&plan, matmul_ops(n), 5, Duration::from_millis(200)).expect("tiled");
        let wide = if n % matmul::WIDE_TILE == 0 {
            let wp = m.prepare_wide();
            let (wspec, winputs) = wp.to_job();
            let wplan = Plan::new(gpu, &wspec, &winputs, &limits, Checks::TrustedLibraryKernel).expect("wide plan");
            if n <= cpu_max {
                let out = wplan.run(Duration::from_secs(600)).expect("wide run");
                assert!(out.output == m.cpu_reference(&wp), "wide matmul n={n} differs from CPU");
            }
            let unchecked = median_gops(&wplan, matmul_ops(n), 5, Duration::from_millis(200)).expect("wide");
            // The same kernel with naga's bounds checks compiled in: what they cost.
            let cplan = Plan::new(gpu, &wspec, &winputs, &limits, Checks::On).expect("wide checked plan");
            let checked = median_gops(&cplan, matmul_ops(n), 3, Duration::from_millis(200)).expect("wide checked");
            Some((unchecked, checked))
        } else {
            None
        };
        let (nspec, ninputs) = m.prepare_naive().to_job();
        let nplan = Plan::new(gpu, &nspec, &ninputs, &limits, Checks::On).expect("naive plan");
        let nv = median_gops(&nplan, matmul_ops(n), 3, Duration::from_millis(200)).expect("naive");
        let (cpu, sgemm) = if n <= cpu_max {
            let (a, b) = m.inputs();
            let nn = n as usize;
            let cpu_t = best_of(|| {
                std::hint::black_box(workloads::matmul::cpu_matmul(&a, &b, nn));
            });
            let af: Vec<f32> = a.iter().map(|&x| (x % 1024) as f32).collect();
            let bf: Vec<f32> = b.iter().map(|&x| (x % 1024) as f32).collect();
            let mut cf = vec![0f32; nn * nn];
            let sg_t = best_of(|| unsafe {
                matrixmultiply::sgemm(nn, nn, nn, 1.0, af.as_ptr(), nn as isize, 1, bf.as_ptr(), nn as isize, 1, 0.0, cf.as_mut_ptr(), nn as isize, 1);
            });
            let ops = matmul_ops(n);
            (format!("{:.2}", ops / cpu_t.as_secs_f64() / 1e9), format!("{:.2}", ops / sg_t.as_secs_f64() / 1e9))
        } else {
            ("—".into(), "—".into())
        };
        let best = wide.map(|w| w.0).unwrap_or(0.0).max(t);
        let w = wide.map(|w| format!("{:.2}", w.0)).unwrap_or_else(|| "—".into());
        let wc = wide.map(|w| format!("{:.2}", w.1)).unwrap_or_else(|| "—".into());
        println!("| {n} | {t:.2} | {w} | {wc} | {nv:.2} | {:.2}× | {cpu} | {sgemm} |", best / nv);
    }
}

fn openssl_sha256_gbps() -> Option<f64> {
    let out = std::process::Command::new("openssl").args(["speed", "-seconds", "2", "-bytes", "16384", "-evp", "sha256"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Last line: "sha256  123456.78k" (kB/s in units of 1000 bytes).
    let line = text.lines().rev().find(|l| l.trim_start().starts_with("sha256"))?;
    let k: f64 = line.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(k * 1000.0 / 1e9)
}

fn merkle_table() {
    let mb = env_list("BENCH_MERKLE_MB", "256").first().copied().unwrap_or(256) as usize;
    let data: Vec<u8> = (0..mb << 20).map(|i| (i as u32).wrapping_mul(2654435761) as u8).collect();
    let gb = data.len() as f64 / 1e9;
    let one = best_of(|| {
        std::hint::black_box(merkle::commit(&data, DEFAULT_CHUNK));
    });
    let par = best_of(|| {
        std::hint::black_box(merkle::commit_parallel(&data, DEFAULT_CHUNK));
    });
    let raw = best_of(|| {
        std::hint::black_box(Sha256::digest(&data));
    });
    let ring_raw = best_of(|| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&data);
        std::hint::black_box(ctx.finish());
    });
    assert_eq!(merkle::commit(&data, DEFAULT_CHUNK), merkle::commit_parallel(&data, DEFAULT_CHUNK));
    // The same work on 1 MiB that stays in cache, as `openssl speed` measures (16 KiB blocks).
    let hot = &data[..1 << 20];
    let reps = mb;
    let one_hot = best_of(|| {
        for _ in 0..reps {
            std::hint::black_box(merkle::commit(hot, DEFAULT_CHUNK));
        }
    });
    let ossl = openssl_sha256_gbps();
    println!("\n### Merkle commitment of {mb} MiB, 4 KiB chunks, GB/s\n");
    println!("| commit (1 thread) | commit_parallel ({} threads) | ring sha256 raw, 1 core | sha2 crate raw, 1 core | openssl speed -evp sha256 (16 KiB), 1 core | commit / openssl | commit of 1 MiB in cache (1 thread) | in cache / openssl |", rayon::current_num_threads());
    println!("|---|---|---|---|---|---|---|---|");
    let o = ossl.map(|g| format!("{g:.2}")).unwrap_or_else(|| "n/a".into());
    let ratio = ossl.map(|g| format!("{:.0}%", gb / one.as_secs_f64() / g * 100.0)).unwrap_or_else(|| "n/a".into());
    let hot_ratio = ossl.map(|g| format!("{:.0}%", gb / one_hot.as_secs_f64() / g * 100.0)).unwrap_or_else(|| "n/a".into());
    println!(
        "| {:.2} | {:.2} | {:.2} | {:.2} | {o} | {ratio} | {:.2} | {hot_ratio} |",
        gb / one.as_secs_f64(),
        gb / par.as_secs_f64(),
        gb / ring_raw.as_secs_f64(),
        gb / raw.as_secs_f64(),
        gb / one_hot.as_secs_f64()
    );
}

fn workload_table(gpu: &Gpu) {
    println!("\n### Library workloads on the adapter vs their CPU references (wall time incl. upload and read-back)\n");
    println!("| workload | size | GPU ms | CPU ms | equal |");
    println!("|---|---|---|---|---|");
    for (name, size) in [("sha256", 65_536u32), ("mandelbrot", 700), ("dot-i8", 2048)] {
        let w = workloads::by_name(name, size, 1).expect("workload");
        let p = w.prepare();
        let (spec, inputs) = p.to_job();
        let t = Instant::now();
        let out = capacloud_executor::execute(gpu, &spec, &inputs, &ExecLimits::default()).expect("run");
        let g = t.elapsed();
        let t = Instant::now();
        let want = w.cpu_reference(&p);
        let c = t.elapsed();
        println!("| {name} | {size} | {:.1} | {:.1} | {} |", g.as_secs_f64() * 1e3, c.as_secs_f64() * 1e3, out.output == want);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let gpu = Gpu::from_env().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    let score = capacloud_executor::score::measure(&gpu).expect("score");
    println!("adapter: {}\nscore: {:.1} GOP/s (class {})", gpu.describe(), score.matmul_gops, score.class);
    matmul_table(&gpu);
    workload_table(&gpu);
    merkle_table();
}

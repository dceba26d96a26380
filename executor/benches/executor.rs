//! `cargo bench -p capacloud-executor`: the executor's throughput beside its baselines, measured
//! in the same run and printed as Markdown tables (copied into BENCHMARKS.md).
//!
//! - u32 matmul: the library's tiled WGSL kernel and the naive WGSL kernel on the adapter
//!   (lavapipe here, a GPU on the device machine), the project's CPU reference (rayon), and
//!   matrixmultiply's f32 sgemm (a well-kept, tuned CPU GEMM) at the same sizes.
//! - Task batches: N tasks as separate jobs (compiled and read back one by one) beside one
//!   batch with one buffer set and one streamed batch (two sets), per-task wall time.
//! - Merkle commitment: one thread and all threads, against raw SHA-256 on one core (sha2)
//!   (the sha2 crate, which the commitment uses, and ring) and `openssl speed -evp sha256`
//!   run by this bench.
//!
//! - Zero-knowledge kernels over BabyBear: the batched NTT (forward, and the coset LDE that
//!   STARK provers commit) and Poseidon2 (permutations, leaf hashes, whole Merkle trees) on the
//!   adapter beside Plonky3 0.8 on this CPU (all threads), same sizes, outputs compared; the NTT
//!   table adds a bandwidth bound from a device buffer copy measured in the same run.
//!
//! Env: `BENCH_SIZES` (matmul orders, default `256,512,1024`), `BENCH_MERKLE_MB` (default 256),
//! `BENCH_CPU_MAX_N` (largest n for the CPU baselines, default 1024), `CAPACLOUD_ADAPTER`;
//! `BENCH_SECTIONS` (comma list of `matmul`, `workloads`, `batch`, `merkle`, `zk`; default all);
//! `BENCH_BATCH_TASKS` (tasks per batch in the `batch` section, default 32);
//! `BENCH_NTT_LOGS` (log2 of the NTT rows, default `12,14,16`; up to 24 on a GPU),
//! `BENCH_NTT_COLS` (columns, default 16), `BENCH_NTT_BLOWUP` (log2 of the LDE blowup, default 1),
//! `BENCH_P2_LOGS` (log2 of the Poseidon2 states / leaves, default `14,16`),
//! `BENCH_COPY_MB` (device copy size for the bandwidth bound, default 256).

use capacloud_executor::exec::{Checks, ExecLimits, Plan};
use capacloud_executor::merkle::{self, DEFAULT_CHUNK};
use capacloud_executor::score::{matmul_ops, median_gops};
use capacloud_executor::workloads::babybear;
use capacloud_executor::workloads::ntt::{self, NttBabyBear, NttParams, Order};
use capacloud_executor::workloads::poseidon2::{self, Poseidon2Job, Poseidon2Mode};
use capacloud_executor::workloads::{self, matmul, Matmul, Workload};
use capacloud_executor::Gpu;
use p3_baby_bear::BabyBear;
use p3_commit::Mmcs;
use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::{CryptographicHasher, Permutation};
use rayon::prelude::*;
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

/// Task batches: the per-task wall time of N tasks run as N separate jobs (each compiled,
/// uploaded, run and read back on its own: what a batch of separate jobs costs, and what
/// `execute_batch` did before it streamed), as one batch with one buffer set (compiled
/// once, each task read back before the next starts) and as one streamed batch (two sets:
/// a task runs while the one before it is read back and hashed). Every task's commitment
/// is compared across the three.
fn batch_table(gpu: &Gpu) {
    use capacloud_executor::batch::{execute_batch_with, IN_FLIGHT};
    let n = env_list("BENCH_BATCH_TASKS", "32").first().copied().unwrap_or(32);
    println!("\n### Task batches: {n} tasks, ms per task (wall time incl. upload, read-back and the Merkle commitment)\n");
    println!("| workload | size per task | output per task | separate jobs (baseline) | batch, 1 buffer set | batch, streamed ({IN_FLIGHT} sets) | streamed vs separate | roots equal |");
    println!("|---|---|---|---|---|---|---|---|");
    let limits = ExecLimits::default();
    for (name, size) in [("sha256", 4096u32), ("sha256", 65_536), ("mandelbrot", 1024), ("matmul", 128)] {
        let jobs: Vec<_> = (0..n).map(|t| workloads::task_of(name, size, 1, t, n).expect("workload").prepare().to_job()).collect();
        let spec = jobs[0].0.clone();
        let separate = || -> (Duration, Vec<[u8; 32]>) {
            let t = Instant::now();
            let roots = jobs.iter().map(|(s, i)| capacloud_executor::execute(gpu, s, i, &limits).expect("separate run").commitment.root).collect();
            (t.elapsed(), roots)
        };
        let batch = |in_flight: usize| -> (Duration, Vec<[u8; 32]>) {
            let t = Instant::now();
            let mut roots = Vec::new();
            execute_batch_with(gpu, &spec, jobs.iter().map(|(_, i)| i.clone()), &limits, in_flight, |_, e| {
                roots.push(e.commitment.root);
                Ok(())
            })
            .expect("batch run");
            (t.elapsed(), roots)
        };
        // Warm-up (driver and allocator), then best of 3 for each.
        batch(IN_FLIGHT);
        let best = |f: &dyn Fn() -> (Duration, Vec<[u8; 32]>)| (0..3).map(|_| f()).min_by_key(|r| r.0).expect("three runs");
        let (sep, r0) = best(&separate);
        let (one, r1) = best(&|| batch(1));
        let (two, r2) = best(&|| batch(IN_FLIGHT));
        let per = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3 / f64::from(n));
        let out: u64 = spec.bindings.iter().filter_map(|b| match b.kind { capacloud_executor::spec::BindingKind::Output { len } => Some(len), _ => None }).sum();
        println!(
            "| {name} | {size} | {} KiB | {} | {} | {} | {:.2}× | {} |",
            out / 1024,
            per(sep),
            per(one),
            per(two),
            sep.as_secs_f64() / two.as_secs_f64(),
            r0 == r1 && r1 == r2
        );
    }
}

/// Device memory bandwidth of a buffer-to-buffer copy on the adapter, bytes read + written
/// per second (best of 5).
fn copy_bandwidth(gpu: &Gpu) -> f64 {
    let mb = env_list("BENCH_COPY_MB", "256").first().copied().unwrap_or(256);
    let size = u64::from(mb) << 20;
    let make = |label: &str, usage| {
        gpu.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false })
    };
    let src = make("bench copy source", wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let dst = make("bench copy destination", wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST);
    let copy = || {
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench copy") });
        encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, size);
        let t = Instant::now();
        gpu.queue.submit([encoder.finish()]);
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).expect("copy finishes");
        t.elapsed()
    };
    copy();
    let best = (0..5).map(|_| copy()).min().unwrap();
    2.0 * size as f64 / best.as_secs_f64()
}

/// Median wall time of one run of all of `plan`'s dispatches (repeated to last at least 200 ms
/// per sample, 5 samples), without upload or read-back.
fn median_job_time(plan: &Plan<'_>) -> Duration {
    let timeout = Duration::from_secs(600);
    let once = plan.time_dispatches(1, timeout).expect("warm-up");
    let reps = ((0.2 / once.as_secs_f64().max(1e-6)).ceil() as u32).clamp(1, 1000);
    let mut samples: Vec<Duration> =
        (0..5).map(|_| plan.time_dispatches(reps, timeout).expect("timed dispatches") / reps).collect();
    samples.sort();
    samples[2]
}

/// Median of 5 runs of `f` (each on fresh input made by `setup`, outside the timing).
fn median_cpu<T, S: FnMut() -> T, F: FnMut(T)>(mut setup: S, mut f: F) -> Duration {
    let mut samples: Vec<Duration> = (0..5)
        .map(|_| {
            let input = setup();
            let t = Instant::now();
            f(input);
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Plans `w`'s job, checks its output against the CPU reference (Plonky3), returns the plan.
fn checked_plan<'g>(gpu: &'g Gpu, w: &dyn Workload) -> (Plan<'g>, bool) {
    let p = w.prepare();
    let (spec, inputs) = p.to_job();
    let plan = Plan::new(gpu, &spec, &inputs, &ExecLimits::default(), Checks::On).expect("plan");
    let out = plan.run(Duration::from_secs(600)).expect("run");
    let equal = out.output == w.cpu_reference(&p);
    assert!(equal, "{}: GPU output differs from Plonky3", w.name());
    (plan, equal)
}

fn ntt_table(gpu: &Gpu, copy_bw: f64) {
    let logs = env_list("BENCH_NTT_LOGS", "12,14,16");
    let cols = env_list("BENCH_NTT_COLS", "16").first().copied().unwrap_or(16);
    let log_blowup = env_list("BENCH_NTT_BLOWUP", "1").first().copied().unwrap_or(1);
    let dft = Radix2DitParallel::<BabyBear>::default();
    println!(
        "\n### BabyBear NTT, {cols} columns — adapter: {} (device copy {:.1} GB/s) vs Plonky3 0.8 `Radix2DitParallel` ({} threads)\n",
        gpu.describe(),
        copy_bw / 1e9,
        rayon::current_num_threads()
    );
    println!("Natural-order input, bit-reversed output on both sides (what `dft_batch` / `coset_lde_batch` store). Elements = output elements; GB/s = (input + output bytes) / time; bandwidth bound = bytes every pass reads and writes / device copy bandwidth.\n");
    println!("| op | rows in → out | passes | GPU ms | GPU Melem/s | GPU GB/s | bandwidth bound ms | bound / GPU | Plonky3 ms | Plonky3 Melem/s | GPU / Plonky3 | equal |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for log_n in logs {
        let ops = [
            ("forward", NttParams::forward(log_n, cols)),
            (
                "coset LDE",
                NttParams::coset_lde(log_n.saturating_sub(log_blowup), cols, log_blowup, babybear::GENERATOR),
            ),
        ];
        for (name, params) in ops {
            let params = params.with_orders(Order::Natural, Order::BitReversed);
            let w = match NttBabyBear::seeded(params, 0x477) {
                Ok(w) => w,
                Err(e) => {
                    println!("| {name} | 2^{log_n} × {cols} | — | skipped: {e} |");
                    continue;
                }
            };
            let (plan, equal) = checked_plan(gpu, &w);
            let t = median_job_time(&plan);
            let traffic: u64 = ntt::pass_traffic(&params).iter().sum();
            let bound = Duration::from_secs_f64(traffic as f64 / copy_bw);
            let input = babybear::to_p3(&w.input_elements());
            let width = cols as usize;
            let cpu = match params.op {
                ntt::NttOp::Forward => median_cpu(
                    || RowMajorMatrix::new(input.clone(), width),
                    |m| {
                        std::hint::black_box(dft.dft_batch(m));
                    },
                ),
                _ => median_cpu(
                    || RowMajorMatrix::new(input.clone(), width),
                    |m| {
                        std::hint::black_box(dft.coset_lde_batch(m, log_blowup as usize, BabyBear::new(babybear::GENERATOR)));
                    },
                ),
            };
            let elems = (params.rows_out() * u64::from(cols)) as f64;
            let bytes = (params.input_len() + params.output_len()) as f64;
            println!(
                "| {name} | 2^{} → 2^{} | {} | {} | {:.1} | {:.2} | {} | {:.0}% | {} | {:.1} | {:.2}× | {equal} |",
                params.log_n,
                params.log_n_out(),
                plan.dispatch_count(),
                ms(t),
                elems / t.as_secs_f64() / 1e6,
                bytes / t.as_secs_f64() / 1e9,
                ms(bound),
                bound.as_secs_f64() / t.as_secs_f64() * 100.0,
                ms(cpu),
                elems / cpu.as_secs_f64() / 1e6,
                cpu.as_secs_f64() / t.as_secs_f64(),
            );
        }
    }
}

/// Plonky3's packed field (SIMD lanes of BabyBear; one lane in a build without AVX2/AVX-512).
type Packed = <BabyBear as p3_field::Field>::Packing;

/// Rows of `width` elements transposed into groups of `Packed::WIDTH` rows: element `j` of
/// group `g` packs element `j` of rows `g·WIDTH ..`.
fn pack_rows(rows: &[BabyBear], width: usize) -> Vec<Packed> {
    use p3_field::PackedValue;
    let lanes = Packed::WIDTH;
    let count = rows.len() / width;
    assert_eq!(count % lanes, 0, "whole lane groups");
    (0..count / lanes)
        .flat_map(|g| (0..width).map(move |j| Packed::from_fn(|lane| rows[(g * lanes + lane) * width + j])))
        .collect()
}

fn poseidon2_table(gpu: &Gpu) {
    let logs = env_list("BENCH_P2_LOGS", "14,16");
    let perm = p3_baby_bear::default_babybear_poseidon2_16();
    println!(
        "\n### Poseidon2 (BabyBear, width 16) — adapter: {} vs Plonky3 0.8 ({} threads)\n",
        gpu.describe(),
        rayon::current_num_threads()
    );
    println!("Leaves of 8 elements (one permutation each); a tree of L leaves is L hashes + L − 1 compressions. Rate = items (permutations, leaves) per second. Plonky3 runs its packed path ({} lanes of BabyBear per call in this build).\n", <Packed as p3_field::PackedValue>::WIDTH);
    println!("| job | items | dispatches | GPU ms | GPU items/s | Plonky3 ms | Plonky3 items/s | GPU / Plonky3 | equal |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for log in logs {
        let count = 1u32 << log;
        for (name, mode, width) in [
            ("permutations", Poseidon2Mode::Permute, 16),
            ("leaf hashes", Poseidon2Mode::HashLeaves, poseidon2::DEFAULT_LEAF_WIDTH),
            ("Merkle tree (leaves)", Poseidon2Mode::MerkleTree, poseidon2::DEFAULT_LEAF_WIDTH),
        ] {
            let w = match Poseidon2Job::seeded(mode, count, width, u64::from(log)) {
                Ok(w) => w,
                Err(e) => {
                    println!("| {name} | 2^{log} | — | skipped: {e} |");
                    continue;
                }
            };
            let (plan, equal) = checked_plan(gpu, &w);
            let t = median_job_time(&plan);
            let rows = babybear::to_p3(&w.input_elements());
            let cpu = match mode {
                // Plonky3's packed path (`F::Packing` lanes per call, SIMD when the build
                // targets AVX2/AVX-512), as its Merkle tree uses: states or leaves transposed
                // into lanes, outside the timing.
                Poseidon2Mode::Permute => median_cpu(
                    || pack_rows(&rows, 16),
                    |mut groups| {
                        groups.par_chunks_mut(16).for_each(|s| {
                            let s: &mut [Packed; 16] = s.try_into().expect("16 packed elements");
                            perm.permute_mut(s);
                        });
                        std::hint::black_box(groups);
                    },
                ),
                Poseidon2Mode::HashLeaves => {
                    let hash = poseidon2::LeafHash::new(perm.clone());
                    let w = width as usize;
                    median_cpu(
                        || pack_rows(&rows, w),
                        |groups| {
                            let digests: Vec<[Packed; 8]> =
                                groups.par_chunks(w).map(|leaf| hash.hash_iter(leaf.iter().copied())).collect();
                            std::hint::black_box(digests);
                        },
                    )
                }
                Poseidon2Mode::MerkleTree => {
                    let mmcs = poseidon2::Poseidon2Mmcs::new(
                        poseidon2::LeafHash::new(perm.clone()),
                        poseidon2::Compress::new(perm.clone()),
                        0,
                    );
                    median_cpu(
                        || RowMajorMatrix::new(rows.clone(), width as usize),
                        |m| {
                            std::hint::black_box(mmcs.commit_matrix(m));
                        },
                    )
                }
            };
            let items = f64::from(count);
            println!(
                "| {name} | 2^{log} | {} | {} | {:.0} | {} | {:.0} | {:.2}× | {equal} |",
                plan.dispatch_count(),
                ms(t),
                items / t.as_secs_f64(),
                ms(cpu),
                items / cpu.as_secs_f64(),
                cpu.as_secs_f64() / t.as_secs_f64(),
            );
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let gpu = Gpu::from_env().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    let sections = std::env::var("BENCH_SECTIONS").unwrap_or_else(|_| "matmul,workloads,batch,merkle,zk".into());
    let on = |name: &str| sections.split(',').any(|s| s.trim() == name);
    if on("matmul") {
        let score = capacloud_executor::score::measure(&gpu).expect("score");
        println!("adapter: {}\nscore: {:.1} GOP/s (class {})", gpu.describe(), score.matmul_gops, score.class);
        matmul_table(&gpu);
    }
    if on("workloads") {
        workload_table(&gpu);
    }
    if on("batch") {
        batch_table(&gpu);
    }
    if on("merkle") {
        merkle_table();
    }
    if on("zk") {
        let bw = copy_bandwidth(&gpu);
        ntt_table(&gpu, bw);
        poseidon2_table(&gpu);
    }
}

"""CUDA baselines for the GPU benchmark, run on the device machine in the same session as the
wgpu bench (bench/device.sh): cuBLAS FP32 GEMM through PyTorch (TF32 off) and a plain CUDA u32
matmul with 32x32 shared-memory tiles and 4 outputs per thread (CuPy RawKernel), the kernel
TOOLCHAIN.md measured at 11.6 TOP/s. Prints Markdown tables. Operations: multiply-add = 2."""
import subprocess

import cupy as cp
import numpy as np
import torch

U32_TILED = r"""
extern "C" __global__ void mm_u32(const unsigned* __restrict__ A, const unsigned* __restrict__ B,
                                  unsigned* __restrict__ C, int n) {
    __shared__ unsigned As[32][33];
    __shared__ unsigned Bs[32][33];
    int tx = threadIdx.x, ty = threadIdx.y;          // block 32 x 8; rows ty, ty+8, ty+16, ty+24
    int row = blockIdx.y * 32 + ty, col = blockIdx.x * 32 + tx;
    unsigned acc[4] = {0u, 0u, 0u, 0u};
    for (int k0 = 0; k0 < n; k0 += 32) {
        #pragma unroll
        for (int i = 0; i < 4; i++) {
            As[ty + 8 * i][tx] = A[(size_t)(row + 8 * i) * n + k0 + tx];
            Bs[ty + 8 * i][tx] = B[(size_t)(k0 + ty + 8 * i) * n + col];
        }
        __syncthreads();
        #pragma unroll
        for (int k = 0; k < 32; k++) {
            unsigned b = Bs[k][tx];
            #pragma unroll
            for (int i = 0; i < 4; i++) acc[i] += As[ty + 8 * i][k] * b;
        }
        __syncthreads();
    }
    #pragma unroll
    for (int i = 0; i < 4; i++) C[(size_t)(row + 8 * i) * n + col] = acc[i];
}
"""


def time_cupy(fn, iters):
    fn()
    cp.cuda.Device().synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    stop.synchronize()
    return cp.cuda.get_elapsed_time(start, stop) / 1e3 / iters


def main():
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,clocks.max.sm", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
    props = torch.cuda.get_device_properties(0)
    print(f"gpu: {smi}, {props.multi_processor_count} SMs")
    kern = cp.RawKernel(U32_TILED, "mm_u32")
    # correctness of the CUDA kernel against numpy (uint32 wraps mod 2^32)
    n = 256
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**32, size=(n, n), dtype=np.uint32)
    b = rng.integers(0, 2**32, size=(n, n), dtype=np.uint32)
    da, db, dc = cp.asarray(a), cp.asarray(b), cp.zeros((n, n), dtype=cp.uint32)
    kern((n // 32, n // 32), (32, 8), (da, db, dc, np.int32(n)))
    # uint64 products and sums wrap mod 2^64, which is exact mod 2^32
    want = ((a.astype(np.uint64) @ b.astype(np.uint64)) % (2**32)).astype(np.uint32)
    assert (cp.asnumpy(dc) == want).all(), "CUDA u32 kernel differs from numpy"
    print("\n| n | CUDA u32 tiled 32x32 (TOP/s) | cuBLAS FP32, TF32 off (TFLOP/s) |")
    print("|---|---|---|")
    torch.backends.cuda.matmul.allow_tf32 = False
    for n in (1024, 2048, 4096, 8192):
        da = cp.random.randint(0, 2**31, size=(n, n), dtype=cp.uint32)
        db = cp.random.randint(0, 2**31, size=(n, n), dtype=cp.uint32)
        dc = cp.zeros((n, n), dtype=cp.uint32)
        iters = max(3, int(2e12 / (2 * n**3)))
        t = time_cupy(lambda: kern((n // 32, n // 32), (32, 8), (da, db, dc, np.int32(n))), iters)
        ta = torch.rand((n, n), device="cuda")
        tb = torch.rand((n, n), device="cuda")
        torch.matmul(ta, tb)
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(iters):
            torch.matmul(ta, tb)
        e.record()
        torch.cuda.synchronize()
        tt = s.elapsed_time(e) / 1e3 / iters
        ops = 2 * n**3
        print(f"| {n} | {ops / t / 1e12:.2f} | {ops / tt / 1e12:.2f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# One run on the device machine (the `device` tool): the executor bench through Vulkan on the
# NVIDIA GPU, then the CUDA baselines, in the same session. Expects (carried, not committed):
#   .gl/libvulkan1_*.deb  the Vulkan loader (the image has the NVIDIA ICD but no loader)
#   .devbench/executor-bench  `cargo bench -p capacloud-executor --no-run` output, built here
# Writes Markdown to $OUT/wgpu.md and $OUT/cuda.md.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export CAPACLOUD_ADAPTER=gpu
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv
BENCH_SIZES=${BENCH_SIZES:-1024,2048,4096,8192} BENCH_CPU_MAX_N=1024 BENCH_MERKLE_MB=1024 \
  timeout 360 .devbench/executor-bench --bench 2>&1 | tee "$OUT/wgpu.md"
timeout 180 python3 bench/cuda_baselines.py 2>&1 | tee "$OUT/cuda.md"

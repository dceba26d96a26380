#!/bin/sh
# rustc wrapper for the contract build (Makefile's `contract`): cargo-contract replaces
# RUSTFLAGS, so the one flag it does not set is added here, for the PolkaVM target only.
# PolkaVM loads and stores need no alignment, and telling LLVM so lets it read a SCALE
# field with one load instead of byte by byte: the contract's code shrinks by about a
# quarter (BENCHMARKS.md), and every call carries that code in its proof.
rustc="$1"
shift
case "$*" in
*polkavm*) exec "$rustc" "$@" -Ctarget-feature=+unaligned-scalar-mem ;;
esac
exec "$rustc" "$@"

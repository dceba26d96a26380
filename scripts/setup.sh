#!/usr/bin/env bash
# Installs, idempotently, everything CapaCloud needs on a fresh Debian 12 machine:
# Debian packages, the linked `deb` toolchain for contract builds, cargo-contract, the
# chain node, the Asset Hub runtime and the dev chain spec.
#
# Tools go to $CAPACLOUD_HOME (default ~/.capacloud). Each heavy piece is taken from
# $CAPACLOUD_PREBUILT when that directory has it (checked against its SHA256SUMS), and
# built from crates.io otherwise (hours on 2 cores; see README.md).
set -euo pipefail

CAPACLOUD_HOME=${CAPACLOUD_HOME:-$HOME/.capacloud}
PREBUILT=${CAPACLOUD_PREBUILT:-}
CARGO_CONTRACT_VERSION=6.0.0-beta.2
NODE_CRATE_VERSION=0.10.0      # polkadot-omni-node crate of polkadot-sdk stable2509 ...
NODE_REPORTED_VERSION=1.20.0   # ... which reports the node version of that release
RUNTIME_VERSION=0.36.2         # asset-hub-westend-runtime (pallet-revive 0.10.1)
RUNTIME_WASM=asset_hub_westend_runtime.compact.compressed.wasm

BIN=$CAPACLOUD_HOME/bin
CHAIN=$CAPACLOUD_HOME/chain
BUILD=$CAPACLOUD_HOME/build
mkdir -p "$BIN" "$CHAIN" "$BUILD"
here=$(cd "$(dirname "$0")" && pwd)

log() { echo "[setup] $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A prebuilt file is used only when it is present and matches SHA256SUMS.
prebuilt_ok() {
  local f=$1
  [ -n "$PREBUILT" ] && [ -f "$PREBUILT/$f" ] && [ -f "$PREBUILT/SHA256SUMS" ] || return 1
  local want have
  want=$(awk -v f="$f" '$2 == f { print $1 }' "$PREBUILT/SHA256SUMS")
  have=$(sha256sum "$PREBUILT/$f" | cut -d' ' -f1)
  if [ -n "$want" ] && [ "$want" = "$have" ]; then return 0; fi
  log "WARNING: $PREBUILT/$f does not match SHA256SUMS; ignoring it"
  return 1
}

# 1. Debian packages: Debian's rustc 1.96 ships the Rust sources contract builds need
#    (-Zbuild-std) and lld-22 links LLVM 22 bitcode; lavapipe runs wgpu without a GPU.
apt_install rustc-web cargo-web rust-web-src lld-22 mesa-vulkan-drivers libvulkan1 \
  python3 curl ca-certificates

# 2. The `deb` toolchain (Debian's compiler through rustup) for contract and runtime builds.
if ! rustup toolchain list | grep -q '^deb'; then
  log "linking rustup toolchain deb -> /usr"
  rustup toolchain link deb /usr
fi

# 3. rust-lld: Debian has none. A wrapper *file* (a symlink would be written through
#    later) over lld-22; wasm links may leave host imports undefined, as runtimes need.
want_lld=$(cat <<'SH'
#!/bin/sh
if [ "$1" = "-flavor" ] && [ "$2" = "wasm" ]; then shift 2; exec /usr/lib/llvm-22/bin/lld -flavor wasm --allow-undefined "$@"; fi
exec /usr/lib/llvm-22/bin/lld "$@"
SH
)
if [ "$(cat /usr/local/bin/rust-lld 2>/dev/null)" != "$want_lld" ]; then
  log "installing /usr/local/bin/rust-lld wrapper"
  as_root rm -f /usr/local/bin/rust-lld
  printf '%s\n' "$want_lld" | as_root tee /usr/local/bin/rust-lld >/dev/null
  as_root chmod 755 /usr/local/bin/rust-lld
fi

# 4. cargo-contract.
if "$BIN/cargo-contract" contract --version 2>/dev/null | grep -q "$CARGO_CONTRACT_VERSION"; then
  log "cargo-contract $CARGO_CONTRACT_VERSION present"
elif prebuilt_ok cargo-contract; then
  log "cargo-contract from $PREBUILT"
  install -m 755 "$PREBUILT/cargo-contract" "$BIN/cargo-contract"
else
  log "building cargo-contract $CARGO_CONTRACT_VERSION from crates.io (~20 min on 2 cores)"
  cargo install cargo-contract --version "$CARGO_CONTRACT_VERSION" --locked --root "$CAPACLOUD_HOME"
fi

# 5. The node.
if "$BIN/polkadot-omni-node" --version 2>/dev/null | grep -q "$NODE_REPORTED_VERSION"; then
  log "polkadot-omni-node $NODE_CRATE_VERSION present"
elif prebuilt_ok polkadot-omni-node; then
  log "polkadot-omni-node from $PREBUILT"
  install -m 755 "$PREBUILT/polkadot-omni-node" "$BIN/polkadot-omni-node"
else
  log "building polkadot-omni-node $NODE_CRATE_VERSION from crates.io (1.5-2.5 h on 2 cores)"
  apt_install protobuf-compiler clang libclang-dev
  # The node bundles relay-chain runtimes a dev chain never runs: skip their Wasm.
  SKIP_WASM_BUILD=1 cargo install polkadot-omni-node --version "$NODE_CRATE_VERSION" --locked --root "$CAPACLOUD_HOME"
fi

# 6. The Asset Hub Westend runtime (Wasm).
if [ -f "$CHAIN/$RUNTIME_WASM" ]; then
  log "runtime $RUNTIME_VERSION present"
elif prebuilt_ok "$RUNTIME_WASM"; then
  log "runtime from $PREBUILT"
  install -m 644 "$PREBUILT/$RUNTIME_WASM" "$CHAIN/$RUNTIME_WASM"
else
  log "building asset-hub-westend-runtime $RUNTIME_VERSION from crates.io (~45 min on 2 cores)"
  sysroot=/usr/lib/rustlib/wasm32v1-none/lib
  if ! ls "$sysroot"/libcore-*.rlib >/dev/null 2>&1; then
    # core/alloc for wasm32v1-none with embedded bitcode (runtimes link with LTO).
    rm -rf "$BUILD/sysroot" && mkdir -p "$BUILD/sysroot/src"
    printf '[package]\nname = "sysroot-build"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n' >"$BUILD/sysroot/Cargo.toml"
    echo '#![no_std]' >"$BUILD/sysroot/src/lib.rs"
    (cd "$BUILD/sysroot" && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C embed-bitcode=yes" \
      cargo +deb build --release --target wasm32v1-none -Zbuild-std=core,alloc)
    as_root mkdir -p "$sysroot"
    as_root cp "$BUILD"/sysroot/target/wasm32v1-none/release/deps/lib{core,alloc,compiler_builtins}-*.rlib "$sysroot/"
  fi
  mkdir -p "$BUILD/runtime/src"
  printf '[package]\nname = "runtime-build"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n[dependencies]\nasset-hub-westend-runtime = "=%s"\n' \
    "$RUNTIME_VERSION" >"$BUILD/runtime/Cargo.toml"
  touch "$BUILD/runtime/src/lib.rs"
  (cd "$BUILD/runtime" && WASM_BUILD_TOOLCHAIN=deb cargo build --release)
  install -m 644 "$BUILD/runtime/target/release/wbuild/asset-hub-westend-runtime/$RUNTIME_WASM" "$CHAIN/$RUNTIME_WASM"
fi

# 7. The dev chain spec (regenerated when the runtime or the recipe changes).
"$here/chainspec.sh" "$BIN/polkadot-omni-node" "$CHAIN/$RUNTIME_WASM" "$CHAIN/capacloud-dev-raw.json"

log "done: tools in $BIN, chain spec in $CHAIN"

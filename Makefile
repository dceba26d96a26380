# CapaCloud developer entry points. `make setup` once, then `make demo` / `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

CAPACLOUD_HOME ?= $(HOME)/.capacloud
export CAPACLOUD_HOME
export PATH := $(CAPACLOUD_HOME)/bin:$(PATH)
# One target dir for host crates and the contract (CI points it outside the clone).
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
export CAPACLOUD_CONTRACT_DIR := $(CARGO_TARGET_DIR)/ink

# Contract builds use Debian's rustc (it ships the Rust sources -Zbuild-std needs).
CONTRACT_ENV := RUSTUP_TOOLCHAIN=deb CARGO_UNSTABLE_JSON_TARGET_SPEC=true RUSTC_WRAPPER=$(CURDIR)/scripts/contract-rustc.sh

.PHONY: setup contract contract-test build test demo bench-market bench-indexer bench-flood chain chain-stop fmt clippy clean

setup: ## install toolchains, cargo-contract, node, runtime and dev chain spec (idempotent)
	scripts/setup.sh

contract: setup ## build the marketplace contract (.polkavm, metadata .json, .contract bundle); runs the idempotent setup first
	cd contracts/marketplace && $(CONTRACT_ENV) cargo contract build --release --quiet
	@ls -l $(CAPACLOUD_CONTRACT_DIR)/marketplace.polkavm

contract-test: ## the contract's #[ink::test] unit tests (off-chain engine, host toolchain)
	cargo test --manifest-path contracts/marketplace/Cargo.toml

build: ## host crates: client, worker, indexer, tests
	cargo build --workspace --all-targets

test: contract contract-test ## everything: contract unit tests, host unit tests, chain integration tests
	cargo build --workspace --bins   # the CLI tests run the real binaries
	cargo test --workspace -- --test-threads 2

demo: contract ## a local market end to end: chain, contract, three providers (one cheats), a renter, indexer + dashboard, summary (KEEP=1: keep it running)
	KEEP=$(KEEP) scripts/demo.sh

bench-market: contract ## task batches vs separate jobs: chain cost, block capacity, compute per task, one batch end to end
	cargo build --bins
	$(CARGO_TARGET_DIR)/debug/capacloud-market-bench

bench-flood: contract ## a worker with its endpoint flooded (unsigned and stranger-signed reads, slowloris), then hired for runaway kernels, vs unattacked: job latency, RSS, jobs lost
	cargo build --bins
	$(CARGO_TARGET_DIR)/debug/capacloud-flood-bench

bench-indexer: contract ## the indexer: backfill vs raw RPC reads, store writes, API load at 10k/100k jobs, dashboard load
	cargo build --bins
	$(CARGO_TARGET_DIR)/debug/capacloud-indexer-bench

chain: ## start the local dev chain on ws://127.0.0.1:9944
	scripts/chain.sh start

chain-stop: ## stop it
	scripts/chain.sh stop

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	cargo clean

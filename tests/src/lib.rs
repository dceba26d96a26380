//! Test harness: a private dev-chain node per test and the paths of the built artifacts.
//!
//! [`TestNode::start`] runs `polkadot-omni-node` on free ports in a temp dir and kills it
//! when dropped, also when the test fails or panics (and, through `PR_SET_PDEATHSIG`,
//! when the test process itself dies).
//!
//! Prerequisites (node binary, chain spec, built contract) come from `make setup` and
//! `make contract`. When one is missing the test fails under CI (`CI` set) and is skipped
//! with a printed reason elsewhere.

pub mod drive;
pub mod procs;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to answer RPC (it takes ~10 s on 2 cores).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// `$CAPACLOUD_HOME`, where `make setup` installs the node and chain spec.
pub fn capacloud_home() -> PathBuf {
    capacloud_client::keys::capacloud_home().unwrap_or_else(|| PathBuf::from(".capacloud"))
}

/// The node binary: `$CAPACLOUD_NODE`, else the one `make setup` installed.
pub fn node_binary() -> PathBuf {
    std::env::var_os("CAPACLOUD_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| capacloud_home().join("bin/polkadot-omni-node"))
}

/// The raw dev chain spec: `$CAPACLOUD_CHAIN_SPEC`, else the one `make setup` generated.
pub fn chain_spec() -> PathBuf {
    std::env::var_os("CAPACLOUD_CHAIN_SPEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| capacloud_home().join("chain/capacloud-dev-raw.json"))
}

/// The directory holding `marketplace.polkavm` and `marketplace.json`:
/// `$CAPACLOUD_CONTRACT_DIR`, else `<target dir>/ink`.
pub fn contract_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CAPACLOUD_CONTRACT_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("ink")
}

/// Whether missing prerequisites must fail the test (CI) rather than skip it.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false)
}

/// Returns `None` (after printing why) when `what` is missing outside CI; panics in CI.
pub fn require(test: &str, what: &str, path: &Path) -> Option<()> {
    if path.exists() {
        return Some(());
    }
    let msg = format!("{what} not found at {} (run `make setup contract`)", path.display());
    if in_ci() {
        panic!("{test}: {msg}; CI does not skip");
    }
    eprintln!("SKIPPED {test}: {msg}");
    None
}

/// A private dev-chain node, killed on drop.
pub struct TestNode {
    child: Child,
    rpc_port: u16,
    p2p_port: u16,
    node: PathBuf,
    spec: PathBuf,
    dir: tempfile::TempDir,
    /// Blocks are made by [`TestNode::produce_blocks`], not the node's own timer.
    manual: bool,
}

/// The node's own block timer when blocks are made by hand: once a day (never, in a test).
const MANUAL_BLOCK_MS: &str = "86400000";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl TestNode {
    /// Starts a node for `test`, or returns `None` when prerequisites are missing outside CI.
    pub fn start(test: &str) -> Option<Self> {
        let node = node_binary();
        let spec = chain_spec();
        require(test, "polkadot-omni-node", &node)?;
        require(test, "dev chain spec", &spec)?;
        Some(Self::start_with(&node, &spec).unwrap_or_else(|e| panic!("{test}: {e}")))
    }

    /// Starts a node for `test` that makes no blocks by itself: [`TestNode::produce_blocks`]
    /// makes them, with finality lagging the head (what Polkadot Hub's GRANDPA does and the
    /// dev node's instant finality does not). `None` as for [`TestNode::start`].
    pub fn start_manual(test: &str) -> Option<Self> {
        let node = node_binary();
        let spec = chain_spec();
        require(test, "polkadot-omni-node", &node)?;
        require(test, "dev chain spec", &spec)?;
        let started = (|| {
            let dir = tempfile::Builder::new().prefix("capacloud-node-").tempdir().map_err(|e| e.to_string())?;
            let (rpc_port, p2p_port) = (free_port(), free_port());
            let child = Self::spawn(&node, &spec, dir.path(), rpc_port, p2p_port, MANUAL_BLOCK_MS)?;
            let mut me = Self { child, rpc_port, p2p_port, node: node.clone(), spec: spec.clone(), dir, manual: true };
            me.wait_ready()?;
            Ok::<_, String>(me)
        })();
        Some(started.unwrap_or_else(|e| panic!("{test}: {e}")))
    }

    /// Makes a block every `interval` through the node's manual-seal RPC
    /// (`engine_createBlock`, not finalized) and finalizes the block `lag` behind the new
    /// head (`engine_finalizeBlock`), until the returned handle is dropped. For a node from
    /// [`TestNode::start_manual`]; call from within a tokio runtime.
    pub fn produce_blocks(&self, interval: Duration, lag: u32) -> BlockProducer {
        assert!(self.manual, "produce_blocks needs a node from start_manual");
        let interval_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(interval.as_millis() as u64));
        let url = format!("http://127.0.0.1:{}", self.rpc_port);
        let ms = interval_ms.clone();
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let woken = wake.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let call = |method: &'static str, params: serde_json::Value| {
                let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
                let req = http.post(&url).header("content-type", "application/json").body(body);
                async move {
                    let bytes = req.send().await.map_err(|e| e.to_string())?.bytes().await.map_err(|e| e.to_string())?;
                    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                    match v.get("result") {
                        Some(r) => Ok(r.clone()),
                        None => Err(format!("{method}: {v}")),
                    }
                }
            };
            let mut made: u64 = 0;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms.load(std::sync::atomic::Ordering::Relaxed))) => {}
                    _ = woken.notified() => {}
                }
                if let Err(e) = call("engine_createBlock", serde_json::json!([true, false, null])).await {
                    eprintln!("block producer: {e}");
                    continue;
                }
                made += 1;
                if made > u64::from(lag) {
                    let target = made - u64::from(lag);
                    let finalized = async {
                        let hash = call("chain_getBlockHash", serde_json::json!([target])).await?;
                        call("engine_finalizeBlock", serde_json::json!([hash, null])).await
                    };
                    if let Err(e) = finalized.await {
                        eprintln!("block producer: finalizing #{target}: {e}");
                    }
                }
            }
        });
        BlockProducer { task, interval_ms, wake }
    }

    /// Starts `node` on `spec` with 1 s blocks and waits until its RPC answers.
    pub fn start_with(node: &Path, spec: &Path) -> Result<Self, String> {
        let dir = tempfile::Builder::new().prefix("capacloud-node-").tempdir().map_err(|e| e.to_string())?;
        let (rpc_port, p2p_port) = (free_port(), free_port());
        let child = Self::spawn(node, spec, dir.path(), rpc_port, p2p_port, "1000")?;
        let mut me = Self { child, rpc_port, p2p_port, node: node.into(), spec: spec.into(), dir, manual: false };
        me.wait_ready()?;
        Ok(me)
    }

    fn spawn(node: &Path, spec: &Path, dir: &Path, rpc_port: u16, p2p_port: u16, block_ms: &str) -> Result<Child, String> {
        let log = std::fs::File::create(dir.join("node.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(node);
        cmd.arg("--chain")
            .arg(spec)
            .arg("--base-path")
            .arg(dir.join("data"))
            .args(["--dev", "--dev-block-time", block_ms, "--state-pruning", "archive"])
            .args(["--no-prometheus", "--no-telemetry", "--no-mdns"])
            .args(["--rpc-port", &rpc_port.to_string(), "--port", &p2p_port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; the node dies with the test process.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd.spawn().map_err(|e| format!("cannot start {}: {e}", node.display()))
    }

    /// Kills the node and starts it again on the same ports and database: every RPC
    /// connection drops, and the chain goes on from where it was.
    /// Kills the node for good (what a crashed or unplugged node looks like to its clients).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) -> Result<(), String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let block_ms = if self.manual { MANUAL_BLOCK_MS } else { "1000" };
        self.child = Self::spawn(&self.node, &self.spec, self.dir.path(), self.rpc_port, self.p2p_port, block_ms)?;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("node exited with {status} before RPC answered:\n{}", self.log_tail(40)));
            }
            let ready = if self.manual { "Running JSON-RPC server" } else { "Imported #" };
            if TcpStream::connect(("127.0.0.1", self.rpc_port)).is_ok() && self.log_contains(ready) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!("node did not answer RPC within {START_TIMEOUT:?}:\n{}", self.log_tail(40)))
    }

    /// The node process's id (for resource measurements).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's WebSocket RPC URL.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    fn log_contains(&self, needle: &str) -> bool {
        std::fs::File::open(self.log_path())
            .map(|f| BufReader::new(f).lines().map_while(Result::ok).any(|l| l.contains(needle)))
            .unwrap_or(false)
    }

    /// The last `n` lines of the node's log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- node log tail ({}) ---\n{}", self.url(), self.log_tail(30));
        }
    }
}

/// A small filesystem of its own (a tmpfs of a given size), unmounted when dropped: a disk
/// that fills up. Needs the right to mount (root); without it the test fails in CI and is
/// skipped with a printed reason elsewhere.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// A `mib`-MiB tmpfs for `test`, or `None` (outside CI) when it cannot be mounted.
    pub fn mount(test: &str, mib: u32) -> Option<Self> {
        let dir = tempfile::Builder::new().prefix("capacloud-disk-").tempdir().expect("a temp dir");
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"]).arg(dir.path()).output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                let msg = format!("cannot mount a {mib} MiB tmpfs ({why}); run as root");
                if in_ci() {
                    panic!("{test}: {msg}; CI does not skip");
                }
                eprintln!("SKIPPED {test}: {msg}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Makes a node's blocks (see [`TestNode::produce_blocks`]); stops when dropped.
pub struct BlockProducer {
    task: tokio::task::JoinHandle<()>,
    interval_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Cuts the current wait short (see [`BlockProducer::set_interval`]).
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl BlockProducer {
    /// Changes the time between blocks: the block being waited for comes at once, the
    /// ones after it `interval` apart (a long interval pauses the chain until the next
    /// call).
    pub fn set_interval(&self, interval: Duration) {
        self.interval_ms.store(interval.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }
}

impl Drop for BlockProducer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The built contract: code bytes and parsed metadata.
pub struct ContractArtifacts {
    pub code: Vec<u8>,
    pub metadata: serde_json::Value,
}

/// Loads the contract built by `make contract`, or `None` (skip) outside CI when absent.
pub fn contract_artifacts(test: &str) -> Option<ContractArtifacts> {
    let dir = contract_dir();
    let code_path = dir.join("marketplace.polkavm");
    require(test, "contract code", &code_path)?;
    let code = std::fs::read(&code_path).expect("contract code readable");
    let meta = std::fs::read(dir.join("marketplace.json")).expect("contract metadata next to the code");
    let metadata = serde_json::from_slice(&meta).expect("contract metadata is JSON");
    Some(ContractArtifacts { code, metadata })
}

/// The GPU adapter for worker tests, or `None` (skip, with a printed reason) outside CI;
/// in CI a missing adapter fails the test.
pub fn gpu_or_skip(test: &str) -> Option<std::sync::Arc<capacloud_executor::Gpu>> {
    match capacloud_executor::Gpu::from_env() {
        Ok(g) => Some(std::sync::Arc::new(g)),
        Err(e) => {
            assert!(!in_ci(), "{test}: no GPU adapter in CI ({e}); install mesa-vulkan-drivers (make setup)");
            eprintln!("SKIPPED {test}: no GPU adapter: {e}");
            None
        }
    }
}

/// An offer of a lavapipe worker (benchmark score 6: GPU class 2) at `price` contract units
/// per work unit, serving at `endpoint`.
pub fn lavapipe_offer_at(price: u128, endpoint: &str) -> capacloud_client::marketplace::OfferInput {
    use capacloud_client::marketplace::{OfferInfo, OfferInput};
    let info = OfferInfo { gpu_vendor: "Mesa".into(), gpu_model: "llvmpipe".into(), backend: "Vulkan lavapipe".into(), endpoint: endpoint.into() };
    OfferInput { price_per_unit: price, max_units: 100_000, vram_mib: 4_096, benchmark_score: 6, info: codec::Encode::encode(&info) }
}

/// [`lavapipe_offer_at`] with a placeholder endpoint.
pub fn lavapipe_offer(price: u128) -> capacloud_client::marketplace::OfferInput {
    lavapipe_offer_at(price, "http://127.0.0.1:7070")
}

/// A worker configuration for tests: fast polling, default limits, no auto-withdraw, state
/// in memory only.
pub fn worker_config(offer_id: u64, price: u128, secret: u8, cheat: bool) -> capacloud_worker::provider::WorkerConfig {
    capacloud_worker::provider::WorkerConfig {
        offer_id,
        bid_price: price,
        salt_secret: [secret; 32],
        cheat,
        poll: std::time::Duration::from_millis(600),
        limits: capacloud_executor::ExecLimits::default(),
        withdraw_above: None,
        state_file: None,
        isolate: None,
        max_job_bytes: 1 << 30,
        fetch_timeout: std::time::Duration::from_secs(20),
        health_retry: capacloud_worker::provider::HEALTH_RETRY,
    }
}

/// An HTTP endpoint on a free local port, stopped when dropped.
pub struct Endpoint {
    pub url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// What a worker's endpoint serves beside its store: its metrics, and the gate that admits
/// readers of its outputs.
pub type WorkerSide = (std::sync::Arc<capacloud_worker::metrics::Metrics>, std::sync::Arc<dyn capacloud_client::blob::server::Gate>);

/// Serves `store` (with metrics at `/metrics` and outputs to their readers, as a worker
/// does; without them, as `capacloud blobs serve --anyone-may-upload` does: the tests'
/// renters upload unsigned) on a free port of 127.0.0.1.
pub async fn endpoint(store: capacloud_client::blob::LocalStore, worker: Option<WorkerSide>) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let app = match worker {
        Some((m, gate)) => capacloud_worker::serve::router(store, m, gate),
        None => capacloud_client::blob::server::router(store, capacloud_client::blob::server::DEFAULT_MAX_BODY, capacloud_client::blob::server::Uploaders::Anyone),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(capacloud_client::blob::server::serve(listener, app, async {
        let _ = stopped.await;
    }));
    Endpoint { url, _stop: stop }
}

/// Connects the six dev accounts genesis pre-maps: alice, bob, charlie, dave, eve, ferdie.
///
/// # Panics
/// When the node does not answer.
pub async fn dev_chains(url: &str) -> [capacloud_client::chain::Chain; 6] {
    use subxt_signer::sr25519::dev;
    let keys = [dev::alice(), dev::bob(), dev::charlie(), dev::dave(), dev::eve(), dev::ferdie()];
    let chains = futures::future::try_join_all(keys.map(|k| capacloud_client::chain::Chain::connect(url, k))).await.expect("dev accounts connect");
    chains.try_into().unwrap_or_else(|_| unreachable!("six keys, six connections"))
}

/// A connection for a worker (workers share theirs across tasks).
///
/// # Panics
/// When the node does not answer.
pub async fn worker_chain(url: &str, key: subxt_signer::sr25519::Keypair) -> std::sync::Arc<capacloud_client::chain::Chain> {
    std::sync::Arc::new(capacloud_client::chain::Chain::connect(url, key).await.expect("connect"))
}

/// The longest compute window test jobs ask for, in blocks.
pub const TEST_MAX_COMPUTE: u32 = 20;

/// The stake-snapshot epoch of a test market with reveal window `reveal`: the shortest that
/// admits [`TEST_MAX_COMPUTE`]-block compute windows (see `econ::max_compute_blocks`), so
/// that tests wait out as little as possible for stake to enter a snapshot.
pub fn test_epoch(reveal: u32) -> u32 {
    let draws = 2 * u32::from(capacloud_client::marketplace::MAX_DRAWS);
    reveal * (1 + 2 * draws) + draws * TEST_MAX_COMPUTE
}

/// Deploys the marketplace as `admin` for tests: a [`test_epoch`]-block epoch, parameter
/// changes applying at once, and short windows (blocks).
///
/// # Panics
/// When the deployment fails.
pub async fn deploy_fast<'a>(admin: &'a capacloud_client::chain::Chain, code: &[u8], accept_and_bid: u32, reveal: u32) -> capacloud_client::Marketplace<'a> {
    use capacloud_client::contract::Deploy;
    use capacloud_client::marketplace::Params;
    let epoch_blocks = test_epoch(reveal);
    let params = Params { accept_window: accept_and_bid, bid_window: accept_and_bid, reveal_window: reveal, unstake_cooldown: 4, ..Params::default() };
    let (m, _) = capacloud_client::Marketplace::deploy(admin, code, Deploy { epoch_blocks, params_delay: 0, params }).await.expect("deploy");
    assert_eq!(capacloud_client::marketplace::econ::max_compute_blocks(epoch_blocks, reveal), TEST_MAX_COMPUTE);
    m
}

/// Waits until the next stake-snapshot epoch has begun: stake bonded before now then
/// counts in verifier draws.
///
/// # Panics
/// When the chain stops answering.
pub async fn next_epoch(m: &capacloud_client::Marketplace<'_>) {
    let epoch = m.state().await.expect("state").epoch_blocks;
    let now = m.chain().best_number().await.expect("height");
    let target = (now / epoch + 1) * epoch;
    while m.chain().best_number().await.expect("height") < target {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Stakes `stake` for `provider` and lists `offer`; returns the offer id.
///
/// # Panics
/// When a call fails.
pub async fn provider_with_offer(
    m: &capacloud_client::Marketplace<'_>,
    provider: &capacloud_client::chain::Chain,
    stake: u128,
    offer: &capacloud_client::marketplace::OfferInput,
) -> u64 {
    let mp = m.with(provider);
    mp.stake(stake).await.expect("stake");
    mp.list_offer(None, offer).await.expect("list_offer").0
}

/// Two providers on a fresh marketplace, each able to check the other: a node whose blocks
/// the test makes (a second apart), the contract deployed by Alice ([`deploy_fast`], 6-block
/// accept and bid windows, 12-block reveal window), Bob and Charlie staked 20 WND each with a
/// lavapipe offer, and the stake-snapshot epoch passed so both can be drawn as verifiers.
pub struct TwoProviderMarket {
    /// Dropped before the node it makes blocks for.
    pub producer: BlockProducer,
    pub node: TestNode,
    /// Alice, Bob, Charlie, Dave, Eve, Ferdie.
    pub chains: [capacloud_client::chain::Chain; 6],
    pub market: subxt::utils::H160,
    pub bob_offer: u64,
    pub charlie_offer: u64,
    pub gpu: std::sync::Arc<capacloud_executor::Gpu>,
}

/// Starts a [`TwoProviderMarket`] whose offers ask `price` per unit, or `None` (outside CI)
/// when the contract, the GPU adapter or the node is missing.
///
/// # Panics
/// When a call fails.
pub async fn two_provider_market(test: &str, price: u128) -> Option<TwoProviderMarket> {
    let art = contract_artifacts(test)?;
    let gpu = gpu_or_skip(test)?;
    let node = TestNode::start_manual(test)?;
    let block = Duration::from_secs(1);
    let producer = node.produce_blocks(block, 0);
    let chains = dev_chains(&node.url()).await;
    let m = deploy_fast(&chains[0], &art.code, 6, 12).await;
    let stake = 20 * capacloud_client::marketplace::UNITS_PER_WND;
    let bob_offer = provider_with_offer(&m, &chains[1], stake, &lavapipe_offer(price)).await;
    let charlie_offer = provider_with_offer(&m, &chains[2], stake, &lavapipe_offer(price)).await;
    // As fast as the node makes blocks while waiting for the epoch that makes the new
    // stakes drawable.
    producer.set_interval(Duration::from_millis(10));
    next_epoch(&m).await;
    producer.set_interval(block);
    let market = m.address();
    Some(TwoProviderMarket { producer, node, chains, market, bob_offer, charlie_offer, gpu })
}

/// A binary of this workspace (`capacloud`, `capacloud-worker`), built beside the test
/// executables by `cargo build --workspace --bins` (what `make test` runs first).
///
/// # Panics
/// When it is not built.
pub fn built_binary(name: &str) -> PathBuf {
    let bin = binary_path(name);
    assert!(bin.exists(), "{} not built (run `cargo build --workspace --bins` first, as `make test` does)", bin.display());
    bin
}

/// A stand-in for the worker's kernel sandbox (for `WorkerConfig::isolate`), written to `path`:
/// a shell script that fails the way `fail` (shell, e.g. `exit 1` or `kill -SEGV $$`) says,
/// after printing `why` to stderr, whenever the shell test `when` holds (`$2` is the
/// kernel's exchange directory, `$2/spec` its encoded spec), and otherwise runs the real
/// kernel child (`capacloud-worker --run-kernel`). How the fault tests make a GPU or a
/// driver fail.
///
/// # Panics
/// When the script cannot be written or the worker binary is not built.
pub fn kernel_child_wrapper(path: &Path, when: &str, why: &str, fail: &str) -> PathBuf {
    let worker = built_binary("capacloud-worker");
    let script = format!("#!/bin/sh\nif {when}; then echo '{why}' >&2; {fail}; fi\nexec '{}' \"$@\"\n", worker.display());
    std::fs::write(path, script).expect("the wrapper script is written");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("the wrapper is made executable");
    path.to_path_buf()
}

/// Where this workspace's binary `name` is built, seen from the running test or benchmark.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    let deps = exe.parent().expect("deps/");
    // Test executables live in target/<profile>/deps; binaries in target/<profile>.
    let dir = if deps.ends_with("deps") { deps.parent().expect("target/<profile>") } else { deps };
    dir.join(name)
}

/// The directory of PostgreSQL's server binaries (`initdb`, `pg_ctl`):
/// `$CAPACLOUD_PG_BIN`, else the newest under `/usr/lib/postgresql/*/bin` (Debian's layout).
pub fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CAPACLOUD_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql").ok()?.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect();
    dirs.sort();
    dirs.pop()
}

/// A private PostgreSQL server in a temp dir on a free port, stopped on drop. As root
/// (CI containers) the server runs as the `postgres` system user: PostgreSQL refuses root.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl PgServer {
    /// Starts a server for `test`, or returns `None` (printing why) when PostgreSQL is not
    /// installed outside CI; in CI a missing server fails the test.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = pg_bin_dir() else {
            let msg = "PostgreSQL server binaries not found under /usr/lib/postgresql (apt install postgresql)";
            if in_ci() {
                panic!("{test}: {msg}; CI does not skip");
            }
            eprintln!("SKIPPED {test}: {msg}");
            return None;
        };
        Some(Self::start_in(bin).unwrap_or_else(|e| panic!("{test}: {e}")))
    }

    fn command(&self, program: &str) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            Command::new(self.bin.join(program))
        }
    }

    fn start_in(bin: PathBuf) -> Result<Self, String> {
        let dir = tempfile::Builder::new().prefix("capacloud-pg-").tempdir().map_err(|e| e.to_string())?;
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().map_err(|e| e.to_string())?;
            if !ok.success() {
                return Err("chown of the PostgreSQL temp dir failed".into());
            }
        }
        let me = Self { bin, dir, port: free_port(), as_postgres };
        let data = me.dir.path().join("data");
        let out = me
            .command("initdb")
            .args(["-U", "capacloud", "--auth=trust", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", me.port, me.dir.path().display());
        let out = me
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(me.dir.path().join("pg.log"))
            .arg("start")
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(me.dir.path().join("pg.log")).unwrap_or_default();
            return Err(format!("pg_ctl start failed: {}\n{log}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(me)
    }

    /// A database URL for a new, empty database `name`.
    pub fn database(&self, name: &str) -> String {
        let out = self
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "capacloud", name])
            .output()
            .expect("createdb runs");
        assert!(out.status.success(), "createdb {name}: {}", String::from_utf8_lossy(&out.stderr));
        format!("postgres://capacloud@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").args(["-m", "immediate", "-D"]).arg(self.dir.path().join("data")).arg("stop").output();
    }
}

/// Headless Chromium's DOM of `url` after its scripts ran (`--dump-dom`), or `None`
/// (printing why) when Chromium is not installed outside CI; in CI that fails the test.
pub fn browser_dom(test: &str, url: &str) -> Option<String> {
    let browser = ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|b| {
        Command::new(b).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    });
    let Some(browser) = browser else {
        let msg = "no headless browser (apt install chromium)";
        if in_ci() {
            panic!("{test}: {msg}; CI does not skip");
        }
        eprintln!("SKIPPED {test}: {msg}");
        return None;
    };
    let profile = tempfile::tempdir().expect("a temp dir");
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=3000"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("the browser runs");
    assert!(out.status.success(), "{test}: {browser} failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A child process killed (SIGKILL) and reaped when dropped, also when the test panics; it
/// also dies with the test process (`PR_SET_PDEATHSIG`).
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Spawns `cmd` under the guard.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        // SAFETY: prctl is async-signal-safe; the child dies with the test process.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd.spawn().map(Self)
    }

    /// Kills it now (SIGKILL, no chance to clean up) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `event` as the contract emits it (signature topic + SCALE data), stored at `block`'s
/// `index` with `block_hash`: synthetic input for the indexer's tests and benchmark.
pub fn raw_event(block: u32, index: u32, block_hash: subxt::utils::H256, event: &capacloud_client::marketplace::Event) -> capacloud_indexer::store::RawEvent {
    use capacloud_client::marketplace::{signature, signature_topic, Event};
    use codec::Encode;
    let (sig, data) = match event {
        Event::Job(x) => (signature::JOB, x.encode()),
        Event::Verifier(x) => (signature::VERIFIER, x.encode()),
        Event::Account(x) => (signature::ACCOUNT, x.encode()),
        Event::Market(x) => (signature::MARKET, x.encode()),
    };
    capacloud_indexer::store::RawEvent { block_number: block, event_index: index, block_hash, extrinsic_index: Some(1), topics: vec![signature_topic(sig)], data }
}

/// Bob and Charlie as providers with in-process workers, each with its own disk and HTTP
/// endpoint (a worker's: metrics, and a chain gate for outputs), staked, listed at `price`
/// and past a stake epoch, so either can be hired and drawn as the other's verifier.
pub struct TwoProviders {
    pub dirs: [tempfile::TempDir; 2],
    pub stores: [capacloud_client::blob::LocalStore; 2],
    pub metrics: [std::sync::Arc<capacloud_worker::metrics::Metrics>; 2],
    pub endpoints: [Endpoint; 2],
    pub offers: [u64; 2],
    pub workers: [std::sync::Arc<capacloud_worker::provider::Worker>; 2],
}

/// Sets up [`TwoProviders`] on `m` (node at `url`); with `charlie_isolated`, Charlie runs
/// kernels in the sandboxed child (the daemon's default) and Bob in process.
///
/// # Panics
/// When a call fails.
pub async fn two_providers(m: &capacloud_client::Marketplace<'_>, url: &str, gpu: std::sync::Arc<capacloud_executor::Gpu>, price: u128, charlie_isolated: bool) -> TwoProviders {
    use capacloud_client::blob::LocalStore;
    use capacloud_worker::metrics::Metrics;
    use std::sync::Arc;
    use subxt_signer::sr25519::dev;
    let dirs = [tempfile::tempdir().expect("a temp dir"), tempfile::tempdir().expect("a temp dir")];
    let stores = [LocalStore::new(dirs[0].path()).expect("a store"), LocalStore::new(dirs[1].path()).expect("a store")];
    let metrics = [Arc::new(Metrics::default()), Arc::new(Metrics::default())];
    let mut endpoints = Vec::new();
    for (store, metrics) in stores.iter().zip(&metrics) {
        let gate = capacloud_worker::serve::ChainGate::new(worker_chain(url, dev::ferdie()).await, m.address(), store.clone());
        endpoints.push(endpoint(store.clone(), Some((metrics.clone(), gate))).await);
    }
    let keys = [dev::bob(), dev::charlie()];
    let mut offers = [0; 2];
    for (i, key) in keys.iter().enumerate() {
        let chain = worker_chain(url, key.clone()).await;
        offers[i] = provider_with_offer(m, &chain, 20 * capacloud_client::marketplace::UNITS_PER_WND, &lavapipe_offer_at(price, &endpoints[i].url)).await;
    }
    next_epoch(m).await;
    let mut configs = [worker_config(offers[0], price, 1, false), worker_config(offers[1], price, 2, false)];
    if charlie_isolated {
        configs[1].isolate = Some(built_binary("capacloud-worker"));
    }
    let mut workers = Vec::new();
    for (i, (key, cfg)) in keys.into_iter().zip(configs).enumerate() {
        workers.push(capacloud_worker::provider::Worker::new(worker_chain(url, key).await, m.address(), gpu.clone(), stores[i].clone(), cfg, metrics[i].clone()));
    }
    let endpoints: [Endpoint; 2] = endpoints.try_into().unwrap_or_else(|_| unreachable!("two endpoints"));
    let workers = workers.try_into().unwrap_or_else(|_| unreachable!("two workers"));
    TwoProviders { dirs, stores, metrics, endpoints, offers, workers }
}

/// A node with the marketplace deployed by Alice ([`deploy_fast`] with 6-block accept and
/// bid windows and 10-block reveal windows) and Bob running the `capacloud-worker` binary
/// with its defaults (sandboxed kernels, 30 s fetches): what the fault tests start from.
pub struct BinaryWorkerMarket {
    pub node: TestNode,
    pub url: String,
    /// alice, bob, charlie, dave, eve, ferdie.
    pub chains: [capacloud_client::chain::Chain; 6],
    pub market: subxt::utils::H160,
    pub worker: procs::WorkerProcess,
    /// Holds the worker's log (`bob.log`) and, unless `data_dir` named one, its data.
    pub dir: tempfile::TempDir,
}

/// Starts a [`BinaryWorkerMarket`] for `test` (Bob's data in `data_dir` when given), or
/// `None` when a prerequisite (contract, GPU adapter, node) is missing outside CI.
///
/// # Panics
/// When a call fails.
pub async fn binary_worker_market(test: &str, price: u128, data_dir: Option<&Path>) -> Option<BinaryWorkerMarket> {
    binary_worker_market_with(test, price, data_dir, 6, &[]).await
}

/// [`binary_worker_market`] with an accept and bid window of `accept_window` blocks and
/// further arguments for the worker (`worker_args`).
///
/// # Panics
/// When a call fails.
pub async fn binary_worker_market_with(test: &str, price: u128, data_dir: Option<&Path>, accept_window: u32, worker_args: &[&str]) -> Option<BinaryWorkerMarket> {
    let art = contract_artifacts(test)?;
    gpu_or_skip(test)?;
    let node = TestNode::start(test)?;
    let url = node.url();
    let chains = dev_chains(&url).await;
    let market = deploy_fast(&chains[0], &art.code, accept_window, 10).await.address();
    let dir = tempfile::tempdir().expect("a temp dir");
    if let Some(d) = data_dir {
        std::os::unix::fs::symlink(d, dir.path().join("bob")).expect("a symlink to the data dir");
    }
    let worker = procs::start_worker_with("bob", "//Bob", &url, &format!("{market:?}"), price, dir.path(), worker_args).expect("capacloud-worker starts");
    Some(BinaryWorkerMarket { node, url, chains, market, worker, dir })
}

/// A renter's runaway kernel (the fault suite's): valid, on the 64 × 64 matmul job's
/// bindings, priced at exactly one unit per 256 workgroups, but every invocation spends its
/// whole loop budget on 64 xor-shift-multiply rounds an iteration (a chain no compiler folds,
/// unlike affine steps) over 65,535 × 64 invocations: about 3 × 10^12 vector operations,
/// many minutes on lavapipe.
pub fn runaway_job(seed: u64) -> capacloud_client::renter::JobBundle {
    use capacloud_executor::workloads::Workload;
    let (spec, inputs) = capacloud_executor::workloads::matmul::Matmul { n: 64, seed }.prepare().to_job();
    let mut job = capacloud_client::renter::JobBundle { spec, tasks: vec![inputs], library: None };
    let body = "x = (x ^ (x >> vec4<u32>(15u))) * vec4<u32>(2246822519u);".repeat(64);
    job.spec.wgsl = format!(
        "struct Params {{ n: u32, _pad0: u32, _pad1: u32, _pad2: u32 }}\n\
         @group(0) @binding(0) var<storage, read> mat_a: array<vec4<u32>>;\n\
         @group(0) @binding(1) var<storage, read> mat_b: array<vec4<u32>>;\n\
         @group(0) @binding(2) var<storage, read_write> mat_c: array<vec4<u32>>;\n\
         @group(0) @binding(3) var<uniform> params: Params;\n\
         @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
             var x = mat_a[id.x % arrayLength(&mat_a)] + mat_b[0] + vec4<u32>(params.n);\n\
             for (var i = 0u; i < 1000000u; i++) {{ {body} }}\n\
             mat_c[id.x % arrayLength(&mat_c)] = x;\n\
         }}\n"
    );
    job.spec.workgroups = [65_535, 1, 1];
    job.spec.work_units = 65_535u64.div_ceil(capacloud_worker::provider::WORKGROUPS_PER_UNIT);
    job
}

/// Job `id`'s events among `events` (as read by `contract_events_in`), with their blocks.
pub fn job_events(events: &[(u32, capacloud_client::chain::ContractEvent)], id: u64) -> Vec<(u32, capacloud_client::marketplace::JobEventKind)> {
    use capacloud_client::marketplace::Event;
    events
        .iter()
        .filter_map(|(b, e)| match &e.decoded {
            Some(Event::Job(j)) if j.job_id == id => Some((*b, j.kind.clone())),
            _ => None,
        })
        .collect()
}

/// The block of job `id`'s first event that `pick` accepts.
pub fn job_event_block(events: &[(u32, capacloud_client::chain::ContractEvent)], id: u64, pick: impl Fn(&capacloud_client::marketplace::JobEventKind) -> bool) -> Option<u32> {
    job_events(events, id).into_iter().find_map(|(b, k)| pick(&k).then_some(b))
}

/// A renter for tests: its blob server (what `capacloud blobs serve --anyone-may-upload`
/// runs, over a store in `dir`), a client of it, and its job journal (in `dir`).
pub struct RenterSide {
    pub dir: tempfile::TempDir,
    pub server: Endpoint,
    pub store: std::sync::Arc<dyn capacloud_client::blob::BlobStore>,
    pub journal: capacloud_client::renter::Journal,
}

/// Starts a [`RenterSide`].
///
/// # Panics
/// When the temp dir or the server cannot be made.
pub async fn renter_side() -> RenterSide {
    use capacloud_client::blob;
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = endpoint(blob::LocalStore::new(dir.path().join("blobs")).expect("a store"), None).await;
    let store = blob::open(&server.url).expect("an http store");
    let journal = capacloud_client::renter::Journal::new(dir.path().join("journal"));
    RenterSide { dir, server, store, journal }
}

/// The fault suite's verdict on an honest provider facing hostile input: nobody was slashed
/// among `events`, and `provider` still has `stake_before` staked and no timeout on its
/// record.
///
/// # Panics
/// When any of these does not hold, or the provider cannot be read.
pub async fn assert_provider_unharmed(m: &capacloud_client::Marketplace<'_>, events: &[(u32, capacloud_client::chain::ContractEvent)], provider: subxt::utils::H160, stake_before: u128) {
    use capacloud_client::marketplace::{Event, JobEventKind};
    assert!(
        !events.iter().any(|(_, e)| matches!(&e.decoded, Some(Event::Job(j)) if matches!(j.kind, JobEventKind::ProviderSlashed { .. }))),
        "nobody slashed"
    );
    let p = m.provider(provider).await.expect("the provider is readable").expect("the provider exists");
    assert_eq!(p.stake, stake_before, "the provider's stake untouched");
    assert_eq!(p.reputation.timeouts, 0, "no timeout on the provider's record");
}

/// The fault suite's verdict on an honest verifier that bowed out of job `job`: its
/// `report(false)` is among `events`, nothing of `verifier`'s was slashed, and it is as it
/// was before (`before`): the same stake and record, no lock left, nothing earned.
///
/// # Panics
/// When any of these does not hold, or the verifier cannot be read.
pub async fn assert_verifier_bowed_out_unharmed(
    m: &capacloud_client::Marketplace<'_>,
    events: &[(u32, capacloud_client::chain::ContractEvent)],
    job: u64,
    verifier: subxt::utils::H160,
    before: &capacloud_client::marketplace::Provider,
) {
    use capacloud_client::marketplace::{Event, VerifierEventKind};
    let bowed_out = events.iter().any(|(_, e)| matches!(&e.decoded, Some(Event::Verifier(v)) if v.job_id == job && v.verifier == verifier && v.kind == VerifierEventKind::ReportedUnavailable));
    assert!(bowed_out, "the bow-out is on chain");
    assert!(
        !events.iter().any(|(_, e)| matches!(&e.decoded, Some(Event::Verifier(v)) if v.verifier == verifier && matches!(v.kind, VerifierEventKind::Slashed { .. }))),
        "the verifier's bond was not slashed"
    );
    let after = m.provider(verifier).await.expect("the verifier is readable").expect("the verifier exists");
    assert_eq!((after.stake, after.locked), (before.stake, 0), "its stake untouched, its bond released");
    assert_eq!(after.reputation, before.reputation, "its record untouched");
    assert_eq!(m.withdrawable_of(verifier).await.expect("withdrawable"), 0, "nothing earned");
}

//! `capacloud`: the renter and operator CLI.
//!
//! Exit codes: 0 success; 1 the chain or network failed; 2 bad input (arguments, files,
//! or a call the contract refuses) — in that case nothing was signed and no funds moved.

use anyhow::{Context, Result};
use capacloud_client::chain::{self, Chain, ChainError};
use capacloud_client::blob::{self, LocalStore};
use capacloud_client::marketplace::{Job, JobState, OfferInfo, Params, Requirements, UNITS_PER_PLANCK};
use capacloud_client::renter::{self, RenterError, Terms};
use capacloud_client::keys::{self, KeyError};
use capacloud_client::{contract, Marketplace};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use subxt::utils::H160;

#[derive(Parser)]
#[command(name = "capacloud", version, about = "CapaCloud GPU marketplace: renter and operator CLI")]
struct Cli {
    /// Node RPC endpoint.
    #[arg(long, env = "CAPACLOUD_URL", default_value = "ws://127.0.0.1:9944", global = true)]
    url: String,
    /// Signing key: dev URI (//Alice), seed phrase, or 0x secret seed.
    #[arg(long, env = "CAPACLOUD_SURI", global = true, hide_env_values = true)]
    suri: Option<String>,
    /// Signing key: a polkadot.js JSON export (password from CAPACLOUD_KEY_PASSWORD or a prompt).
    #[arg(long, env = "CAPACLOUD_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Read `offers`, `job list` and `summary` from this indexer's API
    /// (`capacloud-indexer`, e.g. http://127.0.0.1:8090) instead of the chain.
    #[arg(long, env = "CAPACLOUD_INDEXER", global = true)]
    indexer: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Protocol parameters given on the command line; unspecified fields keep a base value.
#[derive(clap::Args, Debug)]
struct ParamFlags {
    #[arg(long)]
    protocol_fee_bps: Option<u16>,
    #[arg(long)]
    verifier_fee_bps: Option<u16>,
    #[arg(long)]
    default_check_rate_bps: Option<u16>,
    #[arg(long)]
    bid_window: Option<u32>,
    #[arg(long)]
    accept_window: Option<u32>,
    #[arg(long)]
    reveal_window: Option<u32>,
    #[arg(long)]
    unstake_cooldown: Option<u32>,
    /// Least stake, lock and bond, in contract units.
    #[arg(long)]
    min_stake: Option<u128>,
}

impl ParamFlags {
    /// `base` with the given fields replaced.
    fn apply(&self, base: Params) -> Params {
        Params {
            protocol_fee_bps: self.protocol_fee_bps.unwrap_or(base.protocol_fee_bps),
            verifier_fee_bps: self.verifier_fee_bps.unwrap_or(base.verifier_fee_bps),
            default_check_rate_bps: self.default_check_rate_bps.unwrap_or(base.default_check_rate_bps),
            min_stake: self.min_stake.unwrap_or(base.min_stake),
            accept_window: self.accept_window.unwrap_or(base.accept_window),
            bid_window: self.bid_window.unwrap_or(base.bid_window),
            reveal_window: self.reveal_window.unwrap_or(base.reveal_window),
            unstake_cooldown: self.unstake_cooldown.unwrap_or(base.unstake_cooldown),
        }
    }
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Upload and instantiate the marketplace contract; the signer becomes its admin.
    Deploy {
        /// The contract code built by `make contract`.
        #[arg(long, env = "CAPACLOUD_CONTRACT_CODE")]
        code: PathBuf,
        /// Blocks per stake-snapshot epoch (it also caps a job's compute window).
        #[arg(long, default_value_t = 14_400)]
        epoch_blocks: u32,
        /// Blocks before a parameter change applies to new jobs.
        #[arg(long, default_value_t = 600)]
        params_delay: u32,
        /// The parameters in force from the start; unspecified fields take their defaults.
        #[command(flatten)]
        params: ParamFlags,
    },
    /// Show the marketplace's protocol parameters.
    Params {
        #[arg(long, env = "CAPACLOUD_CONTRACT")]
        contract: String,
    },
    /// Change protocol parameters (admin only); unspecified fields keep their value.
    SetParams {
        #[arg(long, env = "CAPACLOUD_CONTRACT")]
        contract: String,
        #[command(flatten)]
        params: ParamFlags,
    },
    /// Key utilities.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// List active offers with their providers' reputation, cheapest first.
    Offers {
        #[arg(long, env = "CAPACLOUD_CONTRACT")]
        contract: String,
        /// Sort by price, or by price per benchmark point.
        #[arg(long, value_enum, default_value = "price")]
        sort: OfferSort,
    },
    /// Jobs: submit, inspect, list.
    Job {
        #[arg(long, env = "CAPACLOUD_CONTRACT", global = true)]
        contract: Option<String>,
        #[command(subcommand)]
        cmd: JobCmd,
    },
    /// Withdraw the signer's whole withdrawable balance.
    Withdraw {
        #[arg(long, env = "CAPACLOUD_CONTRACT")]
        contract: String,
    },
    /// The market's history: every job (winner, price, checked, payouts, slashes) and every
    /// provider (stake, reputation, earnings), folded from the contract's events.
    Summary {
        #[arg(long, env = "CAPACLOUD_CONTRACT")]
        contract: String,
        /// First block to read events from (the deployment's block, or 0).
        #[arg(long, default_value_t = 0)]
        from_block: u32,
    },
    /// Content-addressed blob storage.
    Blobs {
        #[command(subcommand)]
        cmd: BlobsCmd,
    },
}

#[derive(Subcommand)]
enum BlobsCmd {
    /// Serve a blob directory over HTTP (what workers serve at their endpoint), so
    /// providers on other machines can fetch a renter's specs and inputs. Runs until Ctrl-C.
    Serve {
        /// The directory to serve.
        #[arg(long, env = "CAPACLOUD_BLOBS")]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8700")]
        listen: std::net::SocketAddr,
        /// Largest upload, in MiB.
        #[arg(long, default_value_t = 256)]
        max_upload_mib: usize,
        /// An account (0x contract address) whose signed uploads are taken, besides the key
        /// given by --suri / --key-file (repeatable). Unsigned uploads are refused (401), and
        /// uploads signed by anyone else (403).
        #[arg(long = "uploader")]
        uploaders: Vec<String>,
        /// Take uploads from anyone who can reach the server (only on a network you trust:
        /// anyone could fill its disk).
        #[arg(long)]
        anyone_may_upload: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OfferSort {
    Price,
    PricePerScore,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum JobCmd {
    /// Submit a job (a library workload or custom WGSL, one task or a batch), follow it to
    /// the end, and fetch every task's output checked against the batch root revealed on
    /// chain. The job is journaled (seed and terms) under $CAPACLOUD_HOME/jobs before it is
    /// signed: `job follow` resumes it, `job fetch` fetches its output again.
    Submit {
        /// Library workload (see `capacloud_executor::workloads::NAMES`).
        #[arg(long, conflicts_with = "wgsl")]
        workload: Option<String>,
        /// Tasks: a count for a library workload (task i uses seed + i), or a directory of
        /// task directories for custom WGSL (each with one file per input binding, named
        /// by its number).
        #[arg(long, default_value = "1")]
        tasks: String,
        /// Workload size (its meaning depends on the workload).
        #[arg(long, default_value_t = 256)]
        size: u32,
        /// Columns (polynomials) of an `ntt-babybear` job [default: 16].
        #[arg(long)]
        columns: Option<u32>,
        /// Custom WGSL file.
        #[arg(long)]
        wgsl: Option<PathBuf>,
        #[arg(long, default_value = "main")]
        entry: String,
        /// Workgroups to dispatch, x,y,z (custom WGSL).
        #[arg(long, value_delimiter = ',', default_value = "1,1,1")]
        workgroups: Vec<u32>,
        /// Input buffer BINDING=FILE (custom WGSL, one task; repeatable).
        #[arg(long = "input", value_parser = parse_binding_file)]
        inputs: Vec<(u32, PathBuf)>,
        /// Output buffer BINDING=BYTES (custom WGSL; repeatable).
        #[arg(long = "output", value_parser = parse_binding_len)]
        outputs: Vec<(u32, u64)>,
        /// Work units (custom WGSL; library workloads price themselves).
        #[arg(long, default_value_t = 1)]
        units: u64,
        /// Hire this offer directly; without it the job is auctioned.
        #[arg(long)]
        offer: Option<u64>,
        /// Highest price per work unit, in contract units (10^-18 WND).
        #[arg(long)]
        max_price: u128,
        /// Probability each task is re-executed, in basis points (default: the market's
        /// advisory rate; 0 = never checked).
        #[arg(long)]
        check_rate_bps: Option<u16>,
        /// Blocks the provider has to compute and commit (a verifier gets as many).
        #[arg(long, default_value_t = 20)]
        compute_blocks: u32,
        /// Pay the provider even if the check finds no verifier.
        #[arg(long)]
        pay_if_unverified: bool,
        /// Write the output here: a file for one task, a directory (`<task>.bin`) for a batch.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where to store spec and inputs: a directory, or the http(s):// URL of a blob
        /// server providers can reach (`capacloud blobs serve`; a worker's endpoint takes no uploads).
        #[arg(long, env = "CAPACLOUD_BLOBS")]
        blobs: String,
        /// Write the Mandelbrot output as a PNG here.
        #[arg(long)]
        png: Option<PathBuf>,
        /// Seconds to wait for the job to end.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Show one job.
    Status { id: u64 },
    /// List all jobs.
    List,
    /// Resume following a job submitted from this machine (its seed is in the journal).
    Follow {
        id: u64,
        /// Seconds to wait for the job to end.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Fetch a paid job's output, checked against its batch root, from its provider (or
    /// its verifiers).
    Fetch {
        id: u64,
        /// A file for one task, a directory (`<task>.bin`) for a batch.
        #[arg(long)]
        out: PathBuf,
        /// Also look in this blob store (a directory or URL).
        #[arg(long, env = "CAPACLOUD_BLOBS")]
        blobs: Option<String>,
    },
    /// Make a paid job's outputs readable by anyone at its provider's (and verifiers')
    /// endpoints; until then workers serve them to the job's renter only (signed requests).
    Publish { id: u64 },
    /// Find the jobs of journal records that have no id yet (a `job submit` that died
    /// between signing and recording the id) and record their ids, for `job follow ID`.
    Recover,
}

fn parse_binding_file(s: &str) -> Result<(u32, PathBuf), String> {
    let (b, f) = s.split_once('=').ok_or("expected BINDING=FILE")?;
    Ok((b.parse().map_err(|_| format!("`{b}` is not a binding number"))?, PathBuf::from(f)))
}

fn parse_binding_len(s: &str) -> Result<(u32, u64), String> {
    let (b, n) = s.split_once('=').ok_or("expected BINDING=BYTES")?;
    Ok((
        b.parse().map_err(|_| format!("`{b}` is not a binding number"))?,
        n.parse().map_err(|_| format!("`{n}` is not a byte count"))?,
    ))
}

/// One line of `capacloud offers`.
#[derive(serde::Serialize)]
struct OfferRow {
    offer_id: u64,
    provider: H160,
    /// `None`: not known (read from an indexer with no record of the provider).
    reputation_score: Option<u32>,
    gpu_class: u8,
    price_per_unit: u128,
    benchmark_score: u32,
    vram_mib: u32,
    max_units: u64,
    info: Option<OfferInfo>,
}

/// A job as the CLI shows it.
#[derive(serde::Serialize)]
struct JobView {
    job_id: u64,
    state: JobState,
    renter: H160,
    provider: Option<H160>,
    price_per_unit: u128,
    tasks: u32,
    work_units: u64,
    /// Tasks sampled for checking (once decided).
    sampled: u32,
    unverified: bool,
    batch_root: Option<String>,
    verifiers: Vec<H160>,
}

impl JobView {
    /// A job as an indexer's events describe it.
    fn of_row(j: &capacloud_client::summary::JobRow) -> Self {
        Self {
            job_id: j.job_id,
            state: j.state.unwrap_or(JobState::Open),
            renter: j.renter,
            provider: j.provider,
            price_per_unit: j.price_per_unit.unwrap_or(0),
            tasks: j.tasks,
            work_units: j.work_units(),
            sampled: j.sampled.unwrap_or(0),
            unverified: j.state == Some(JobState::Unverified),
            batch_root: j.batch_root.map(hex::encode),
            verifiers: j.verifiers.iter().map(|(_, v)| *v).collect(),
        }
    }

    fn of(job_id: u64, j: &Job) -> Self {
        Self {
            job_id,
            state: j.state,
            renter: j.renter,
            provider: j.has_provider().then_some(j.provider),
            price_per_unit: j.price_per_unit,
            tasks: j.tasks,
            work_units: j.input.work_units(),
            sampled: j.sampled,
            unverified: j.unverified,
            batch_root: (j.batch_root != [0; 32]).then(|| hex::encode(j.batch_root)),
            verifiers: j.verifiers.iter().flatten().map(|v| v.account).collect(),
        }
    }
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Print the signer's Substrate account and its contract (H160) address.
    Address,
    /// Make a new key: prints a 24-word phrase (write it down; it is shown once) and its account.
    Generate,
    /// Check a polkadot.js JSON export (decrypting it) and copy it into the key store
    /// ($CAPACLOUD_HOME/keys) as <account>.json; use it later with --key-file.
    Import {
        /// The exported JSON file.
        file: PathBuf,
    },
}

/// Everything the CLI prints, in one type: text by default, JSON with `--json`.
#[derive(serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Output {
    Deployed { deployment: chain::Deployment },
    Params { contract: H160, admin: H160, params: Params },
    Called { receipt: chain::Receipt },
    Address { account: String, h160: H160 },
    Generated { phrase: String, account: String, h160: H160 },
    Imported { account: String, h160: H160, path: PathBuf },
    Served { listen: std::net::SocketAddr },
    Summary { summary: capacloud_client::summary::Summary },
    Offers { offers: Vec<OfferRow> },
    Job { job: JobView, output_bytes: Option<usize>, out: Option<PathBuf>, png: Option<PathBuf> },
    Jobs { jobs: Vec<JobView> },
    Withdrawn { amount: u128, receipt: chain::Receipt },
    Published { job_id: u64, published: usize },
    /// Ids found for journal records that had none, and how many records name no job.
    Recovered { job_ids: Vec<u64>, never_created: usize },
}

impl Output {
    fn print(&self, json: bool) -> Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
            return Ok(());
        }
        match self {
            Output::Deployed { deployment: d } => {
                println!("contract   {:?}", d.address);
                print_receipt(&d.receipt);
            }
            Output::Params { contract, admin, params } => {
                println!("contract   {contract:?}");
                println!("admin      {admin:?}");
                println!("{}", serde_json::to_string_pretty(params)?);
            }
            Output::Called { receipt } => print_receipt(receipt),
            Output::Address { account, h160 } => {
                println!("account    {account}");
                println!("h160       {h160:?}");
            }
            Output::Generated { phrase, account, h160 } => {
                println!("phrase     {phrase}");
                println!("account    {account}");
                println!("h160       {h160:?}");
                eprintln!("Write the phrase down: it is the key, and it is not stored anywhere.");
            }
            Output::Imported { account, h160, path } => {
                println!("account    {account}");
                println!("h160       {h160:?}");
                println!("stored     {}", path.display());
            }
            Output::Served { listen } => println!("stopped serving http://{listen}"),
            Output::Summary { summary } => print_summary(summary),
            Output::Offers { offers } => {
                println!("{:>5}  {:<42}  {:>6}  {:<28}  {:>8}  {:>5}  {:>22}", "offer", "provider", "rep", "gpu", "score", "class", "price/unit");
                for o in offers {
                    let gpu = o.info.as_ref().map(|i| format!("{} {}", i.gpu_vendor, i.gpu_model)).unwrap_or_else(|| "?".into());
                    println!(
                        "{:>5}  {:<42}  {:>6}  {:<28}  {:>8}  {:>5}  {:>22}",
                        o.offer_id,
                        format!("{:?}", o.provider),
                        o.reputation_score.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                        gpu,
                        o.benchmark_score,
                        o.gpu_class,
                        o.price_per_unit
                    );
                }
            }
            Output::Job { job, output_bytes, out, png } => {
                print_jobs(std::slice::from_ref(job));
                if let Some(n) = output_bytes {
                    println!("output     {n} bytes in {} task(s), each checked against the batch root revealed on chain", job.tasks);
                }
                if let Some(p) = out {
                    println!("saved      {}", p.display());
                }
                if let Some(p) = png {
                    println!("png        {}", p.display());
                }
            }
            Output::Jobs { jobs } => print_jobs(jobs),
            Output::Published { job_id, published } => {
                println!("job {job_id}: {published} outputs and task-root lists made public");
            }
            Output::Recovered { job_ids, never_created } => {
                for id in job_ids {
                    println!("job {id}: recovered (resume it with `capacloud job follow {id}`)");
                }
                println!("{} recovered, {never_created} journal records name no job (never created: nothing escrowed)", job_ids.len());
            }
            Output::Withdrawn { amount, receipt } => {
                println!("withdrawn  {amount} contract units ({} plancks)", amount / UNITS_PER_PLANCK);
                print_receipt(receipt);
            }
        }
        Ok(())
    }
}

fn print_jobs(jobs: &[JobView]) {
    println!("{:>4}  {:<14}  {:<42}  {:>20}  {:>6}  {:>8}  {:>7}", "job", "state", "provider", "price/unit", "tasks", "units", "sampled");
    for j in jobs {
        let provider = j.provider.map(|p| format!("{p:?}")).unwrap_or_else(|| "-".into());
        println!(
            "{:>4}  {:<14}  {:<42}  {:>20}  {:>6}  {:>8}  {:>7}",
            j.job_id,
            format!("{:?}", j.state),
            provider,
            j.price_per_unit,
            j.tasks,
            j.work_units,
            j.sampled
        );
    }
}

/// Contract units as WND with 6 decimals.
fn wnd(units: u128) -> String {
    format!("{:.6}", units as f64 / 1e18)
}

fn short(a: &H160) -> String {
    let s = format!("{a:?}");
    format!("{}…{}", &s[..6], &s[s.len() - 4..])
}

fn print_summary(s: &capacloud_client::summary::Summary) {
    println!("blocks #{}..#{}", s.from_block, s.to_block);
    println!(
        "{:>4}  {:<7}  {:>4}  {:<12}  {:>14}  {:>5}  {:>7}  {:<11}  {:>12}  {:>12}  {:>12}  {:<30}",
        "job", "hire", "bids", "provider", "price WND/unit", "tasks", "checked", "outcome", "to provider", "to verifiers", "to renter", "slashed"
    );
    for j in &s.jobs {
        let slashes: Vec<String> = j.slashes.iter().map(|(a, amt, why)| format!("{} {} ({why})", short(a), wnd(*amt))).collect();
        println!(
            "{:>4}  {:<7}  {:>4}  {:<12}  {:>14}  {:>5}  {:>7}  {:<11}  {:>12}  {:>12}  {:>12}  {:<30}",
            j.job_id,
            if j.direct { "direct" } else { "auction" },
            j.bids,
            j.provider.as_ref().map(short).unwrap_or_else(|| "-".into()),
            j.price_per_unit.map(wnd).unwrap_or_else(|| "-".into()),
            j.tasks,
            j.sampled.map(|k| if k > 0 { format!("{k}") } else { "no".into() }).unwrap_or_else(|| "-".into()),
            j.state.map(|st| format!("{st:?}")).unwrap_or_else(|| "?".into()),
            wnd(j.provider_payout),
            wnd(j.verifier_fees),
            wnd(j.renter_refund),
            if slashes.is_empty() { "-".into() } else { slashes.join(", ") }
        );
    }
    println!();
    println!(
        "{:<12}  {:>10}  {:>6}  {:>5}  {:>6}  {:>6}  {:>8}  {:>12}  {:>10}  {:>12}",
        "provider", "stake WND", "rep", "jobs", "passed", "failed", "timeouts", "payouts WND", "slashed", "withdrawable"
    );
    for p in &s.providers {
        println!(
            "{:<12}  {:>10}  {:>6}  {:>5}  {:>6}  {:>6}  {:>8}  {:>12}  {:>10}  {:>12}",
            short(&p.provider),
            wnd(p.stake),
            p.reputation_score,
            p.jobs_completed,
            p.checks_passed,
            p.checks_failed,
            p.timeouts,
            wnd(p.provider_payouts),
            wnd(p.slashed),
            wnd(p.withdrawable)
        );
    }
    if s.undecodable_events > 0 {
        println!("({} events did not decode; see the log)", s.undecodable_events);
    }
}

fn print_receipt(r: &chain::Receipt) {
    println!("block      #{} {:?}", r.block_number, r.block_hash);
    println!(
        "gas        ref_time {} ps, proof_size {} B",
        r.dry_run.gas_required.ref_time, r.dry_run.gas_required.proof_size
    );
    println!("deposit    {:?} plancks", r.dry_run.storage_deposit);
    println!("fee        {} plancks", r.fee);
    for e in &r.events {
        match &e.decoded {
            Some(ev) => println!("event      {}", serde_json::to_string(ev).unwrap_or_default()),
            None => println!("event      (unknown) topics {:?}", e.topics),
        }
    }
}

/// Bad input: reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

/// The renter's blob store at `location`: a directory, or the URL of a blob server, whose
/// uploads (and output reads) are then signed with the renter's key (`blobs serve` takes
/// uploads from its renter only).
fn renter_store(location: &str, signer: &subxt_signer::sr25519::Keypair) -> Result<std::sync::Arc<dyn blob::BlobStore>> {
    if blob::is_http_url(location) {
        let store = blob::HttpStore::new(location).map_err(|e| bad(format!("blob store {location}: {e}")))?;
        return Ok(std::sync::Arc::new(store.signed_by(blob::access::Signer::new(signer.clone()))));
    }
    blob::open(location).map_err(|e| bad(format!("blob store {location}: {e}")))
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// Contract refusals and dry-run rejections are the caller's input; the rest is failure.
fn classify(e: ChainError) -> anyhow::Error {
    match e {
        e @ (ChainError::Reverted { .. } | ChainError::BadAddress(_)) => bad(e.to_string()),
        e => anyhow::Error::new(e),
    }
}

/// Renter errors: a bad spec, file or workload is input; the chain part is classified.
fn classify_renter(e: RenterError) -> anyhow::Error {
    match e {
        RenterError::Chain(c) => classify(c),
        e @ (RenterError::UnknownWorkload(_)
        | RenterError::BadSpec(_)
        | RenterError::BadWorkloadInput(_)
        | RenterError::TaskShape { .. }
        | RenterError::TaskCount(_)
        | RenterError::Manifest(_)
        | RenterError::File { .. }
        | RenterError::NoOutput
        | RenterError::NotJournaled(..)) => bad(e.to_string()),
        e => anyhow::Error::new(e),
    }
}

/// Key errors are the caller's input, except a failing random source.
fn classify_key(e: KeyError) -> anyhow::Error {
    match e {
        e @ KeyError::Random(_) => anyhow::Error::new(e),
        e => bad(e.to_string()),
    }
}

/// Commands that need no chain connection.
async fn run_offline(cmd: &Cmd, suri: Option<&str>, key_file: Option<&std::path::Path>) -> Result<Option<Output>> {
    Ok(Some(match cmd {
        Cmd::Keys { cmd: KeysCmd::Address } => {
            let key = keys::load(suri, key_file).map_err(classify_key)?;
            Output::Address { account: key.account().to_string(), h160: key.h160() }
        }
        Cmd::Keys { cmd: KeysCmd::Generate } => {
            let (phrase, key) = keys::generate().map_err(classify_key)?;
            Output::Generated { phrase: phrase.to_string(), account: key.account().to_string(), h160: key.h160() }
        }
        Cmd::Keys { cmd: KeysCmd::Import { file } } => {
            let home = keys::capacloud_home().ok_or_else(|| bad("set CAPACLOUD_HOME (or HOME) for the key store"))?;
            let (key, path) = keys::import(file, &home.join("keys"), None).map_err(classify_key)?;
            Output::Imported { account: key.account().to_string(), h160: key.h160(), path }
        }
        Cmd::Blobs { cmd: BlobsCmd::Serve { dir, listen, max_upload_mib, uploaders, anyone_may_upload } } => {
            let uploaders = if *anyone_may_upload {
                blob::server::Uploaders::Anyone
            } else {
                let mut allowed = std::collections::BTreeSet::new();
                match keys::load(suri, key_file) {
                    Ok(key) => {
                        allowed.insert(key.h160());
                    }
                    Err(KeyError::Missing) => {}
                    Err(e) => return Err(classify_key(e)),
                }
                for u in uploaders {
                    allowed.insert(chain::parse_address(u).map_err(|e| bad(format!("--uploader {u}: {e}")))?);
                }
                if allowed.is_empty() {
                    return Err(bad("blobs serve takes uploads signed by the renter's key: give --suri or --key-file (or --uploader ADDRESS; --anyone-may-upload only on a network you trust)"));
                }
                blob::server::Uploaders::Signed(std::sync::Arc::new(allowed))
            };
            let store = LocalStore::new(dir).map_err(|e| bad(format!("blob store {}: {e}", dir.display())))?;
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| bad(format!("cannot listen on {listen}: {e}")))?;
            eprintln!("serving {} at http://{}", dir.display(), listener.local_addr()?);
            let app = blob::server::router(store, max_upload_mib << 20, uploaders);
            blob::server::serve(listener, app, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Output::Served { listen: *listen }
        }
        _ => return Ok(None),
    }))
}

fn sort_offers(offers: &mut [OfferRow], sort: OfferSort) {
    match sort {
        OfferSort::Price => offers.sort_by_key(|o| o.price_per_unit),
        OfferSort::PricePerScore => offers.sort_by_key(|o| o.price_per_unit / u128::from(o.benchmark_score.max(1))),
    }
}

/// `offers`, `job list` and `summary` answered by an indexer (`None`: another command).
async fn run_indexed(url: &str, cmd: &Cmd) -> Result<Option<Output>> {
    use capacloud_client::indexed::{Indexed, IndexedError};
    let ix = Indexed::new(url).map_err(|e| bad(e.to_string()))?;
    let failed = |e: IndexedError| anyhow::Error::new(e);
    Ok(Some(match cmd {
        Cmd::Offers { sort, .. } => {
            let reputation: std::collections::BTreeMap<H160, u32> =
                ix.accounts().await.map_err(failed)?.into_iter().map(|a| (a.account, a.reputation.score())).collect();
            let mut offers: Vec<OfferRow> = ix
                .offers()
                .await
                .map_err(failed)?
                .into_iter()
                .map(|o| OfferRow {
                    offer_id: o.offer_id,
                    provider: o.provider,
                    reputation_score: reputation.get(&o.provider).copied(),
                    gpu_class: o.gpu_class,
                    price_per_unit: o.price_per_unit,
                    benchmark_score: o.benchmark_score,
                    vram_mib: o.vram_mib,
                    max_units: o.max_units,
                    info: o.info,
                })
                .collect();
            sort_offers(&mut offers, *sort);
            Output::Offers { offers }
        }
        Cmd::Job { cmd: JobCmd::List, .. } => {
            let jobs = ix.jobs().await.map_err(failed)?.iter().map(JobView::of_row).collect();
            Output::Jobs { jobs }
        }
        Cmd::Summary { .. } => Output::Summary { summary: ix.summary().await.map_err(failed)? },
        _ => return Ok(None),
    }))
}

async fn run(cli: Cli) -> Result<Output> {
    if let Some(out) = run_offline(&cli.cmd, cli.suri.as_deref(), cli.key_file.as_deref()).await? {
        return Ok(out);
    }
    if let Some(url) = &cli.indexer {
        if let Some(out) = run_indexed(url, &cli.cmd).await? {
            return Ok(out);
        }
    }
    // Reads sign nothing, but pallet-revive dry-runs need a mapped origin: without a key they
    // run as the dev account //Alice (mapped on dev chains; elsewhere give your own key).
    let read_only = matches!(
        cli.cmd,
        Cmd::Params { .. }
            | Cmd::Offers { .. }
            | Cmd::Summary { .. }
            | Cmd::Job { cmd: JobCmd::Status { .. } | JobCmd::List, .. }
    );
    let signer = match keys::load(cli.suri.as_deref(), cli.key_file.as_deref()) {
        Err(KeyError::Missing) if read_only => keys::from_suri("//Alice").map_err(classify_key)?.pair,
        other => other.map_err(classify_key)?.pair,
    };
    // Validate local input before touching the network.
    let code = match &cli.cmd {
        Cmd::Deploy { code, .. } => Some(
            contract::read_code(code).map_err(|e| bad(format!("cannot read contract code {}: {e}", code.display())))?,
        ),
        _ => None,
    };
    let contract_addr = match &cli.cmd {
        Cmd::Params { contract }
        | Cmd::SetParams { contract, .. }
        | Cmd::Offers { contract, .. }
        | Cmd::Withdraw { contract }
        | Cmd::Summary { contract, .. } => Some(chain::parse_address(contract).map_err(classify)?),
        Cmd::Job { contract, .. } => {
            Some(chain::parse_address(contract.as_deref().ok_or_else(|| bad("--contract (or CAPACLOUD_CONTRACT) is required"))?).map_err(classify)?)
        }
        _ => None,
    };
    // A job is built and checked (WGSL, bindings, inputs) before anything touches the chain.
    let bundle = match &cli.cmd {
        Cmd::Job { cmd: JobCmd::Submit { workload, size, columns, wgsl, entry, workgroups, inputs, outputs, units, tasks, .. }, .. } => {
            let b = match (workload, wgsl) {
                (Some(name), None) => {
                    let n: u32 = tasks.parse().map_err(|_| bad(format!("--tasks {tasks}: a library workload takes a task count")))?;
                    renter::library_job_with_columns(name, *size, *columns, 1, n)
                }
                (None, Some(_)) if columns.is_some() => return Err(bad("--columns applies to the ntt-babybear library workload")),
                (None, Some(path)) => {
                    let wg: [u32; 3] = workgroups.as_slice().try_into().map_err(|_| bad("--workgroups takes x,y,z"))?;
                    let sets = match tasks.parse::<u32>() {
                        Ok(1) => vec![inputs.clone()],
                        Ok(_) => return Err(bad("--tasks for custom WGSL is a directory of task directories")),
                        Err(_) => renter::task_dirs(std::path::Path::new(tasks)).map_err(classify_renter)?,
                    };
                    renter::custom_job(path, entry, wg, &sets, outputs, *units)
                }
                _ => return Err(bad("give --workload NAME or --wgsl FILE")),
            }
            .map_err(classify_renter)?;
            renter::check(&b).map_err(classify_renter)?;
            Some(b)
        }
        _ => None,
    };
    let chain = Chain::connect(&cli.url, signer).await.map_err(classify)?;
    match cli.cmd {
        Cmd::Deploy { epoch_blocks, params_delay, params, .. } => {
            let code = code.expect("read above");
            let args = contract::Deploy { epoch_blocks, params_delay, params: params.apply(Params::default()) };
            let (_, deployment) = Marketplace::deploy(&chain, &code, args).await.map_err(classify)?;
            Ok(Output::Deployed { deployment })
        }
        Cmd::Params { .. } => {
            let m = Marketplace::at(&chain, contract_addr.expect("parsed above")).await.map_err(classify)?;
            let now = chain.best_number().await.map_err(classify)?;
            let st = m.state().await.map_err(classify)?;
            Ok(Output::Params { contract: m.address(), admin: st.admin, params: st.params_at(now) })
        }
        Cmd::SetParams { params, .. } => {
            let m = Marketplace::at(&chain, contract_addr.expect("parsed above")).await.map_err(classify)?;
            let now = chain.best_number().await.map_err(classify)?;
            let current = m.params(now).await.map_err(classify)?;
            let receipt = m.set_params(params.apply(current)).await.map_err(classify)?;
            Ok(Output::Called { receipt })
        }
        Cmd::Keys { .. } | Cmd::Blobs { .. } => unreachable!("handled by run_offline"),
        Cmd::Offers { sort, .. } => {
            let m = Marketplace::at(&chain, contract_addr.expect("parsed above")).await.map_err(classify)?;
            let mut offers = Vec::new();
            for id in 0..m.offer_count().await.map_err(classify)? {
                let Some(o) = m.offer(id).await.map_err(classify)? else { continue };
                if !o.active {
                    continue;
                }
                let reputation_score = Some(m.provider(o.provider).await.map_err(classify)?.map_or(0, |p| p.reputation.score()));
                offers.push(OfferRow {
                    offer_id: id,
                    provider: o.provider,
                    reputation_score,
                    gpu_class: o.gpu_class,
                    price_per_unit: o.input.price_per_unit,
                    benchmark_score: o.input.benchmark_score,
                    vram_mib: o.input.vram_mib,
                    max_units: o.input.max_units,
                    info: o.info(),
                });
            }
            sort_offers(&mut offers, sort);
            Ok(Output::Offers { offers })
        }
        Cmd::Summary { from_block, .. } => {
            let m = Marketplace::at(&chain, contract_addr.expect("parsed above")).await.map_err(classify)?;
            let summary = capacloud_client::summary::summarize(&m, from_block).await.map_err(classify)?;
            Ok(Output::Summary { summary })
        }
        Cmd::Withdraw { .. } => {
            let m = Marketplace::at(&chain, contract_addr.expect("parsed above")).await.map_err(classify)?;
            let (amount, receipt) = m.withdraw().await.map_err(classify)?;
            Ok(Output::Withdrawn { amount, receipt })
        }
        Cmd::Job { cmd, .. } => {
            let m = Marketplace::at(&chain, contract_addr.expect("parsed above")).await.map_err(classify)?;
            match cmd {
                JobCmd::Status { id } => {
                    let j = m.job(id).await.map_err(classify)?.ok_or_else(|| bad(format!("no job {id}")))?;
                    Ok(Output::Job { job: JobView::of(id, &j), output_bytes: None, out: None, png: None })
                }
                JobCmd::List => {
                    let mut jobs = Vec::new();
                    for id in 0..m.job_count().await.map_err(classify)? {
                        if let Some(j) = m.job(id).await.map_err(classify)? {
                            jobs.push(JobView::of(id, &j));
                        }
                    }
                    Ok(Output::Jobs { jobs })
                }
                JobCmd::Follow { id, timeout } => {
                    let seed = renter::journaled_seed(&journal()?, m.address(), id).map_err(classify_renter)?;
                    let job = follow_with_spinner(&m, id, &seed, timeout).await?;
                    Ok(Output::Job { job: JobView::of(id, &job), output_bytes: None, out: None, png: None })
                }
                JobCmd::Fetch { id, out, blobs } => {
                    let j = m.job(id).await.map_err(classify)?.ok_or_else(|| bad(format!("no job {id}")))?;
                    let fallback: std::sync::Arc<dyn blob::BlobStore> = match &blobs {
                        Some(b) => renter_store(b, chain.keypair())?,
                        None => std::sync::Arc::new(LocalStore::new(std::env::temp_dir().join("capacloud-fetch")).map_err(|e| anyhow::anyhow!(e))?),
                    };
                    let outputs = renter::fetch_outputs(&m, id, &j, fallback.as_ref()).await.map_err(classify_renter)?;
                    let bytes = save_outputs(&out, &outputs)?;
                    Ok(Output::Job { job: JobView::of(id, &j), output_bytes: Some(bytes), out: Some(out), png: None })
                }
                JobCmd::Recover => {
                    let (job_ids, never_created) = renter::recover(&m, &journal()?).await.map_err(classify_renter)?;
                    Ok(Output::Recovered { job_ids, never_created })
                }
                JobCmd::Publish { id } => {
                    let j = m.job(id).await.map_err(classify)?.ok_or_else(|| bad(format!("no job {id}")))?;
                    let published = renter::publish_outputs(&m, id, &j).await.map_err(classify_renter)?;
                    Ok(Output::Published { job_id: id, published })
                }
                JobCmd::Submit { offer, max_price, check_rate_bps, compute_blocks, pay_if_unverified, blobs, png, out, timeout, .. } => {
                    let bundle = bundle.expect("built above");
                    let store = renter_store(&blobs, chain.keypair())?;
                    let now = chain.best_number().await.map_err(classify)?;
                    let params = m.params(now).await.map_err(classify)?;
                    let lag = chain.finality_lag().await.map_err(classify)?;
                    if !capacloud_client::chain::window_holds_lag(params.reveal_window, lag) {
                        return Err(bad(format!(
                            "the market's reveal window ({} blocks) cannot hold this chain's finality lag ({lag} blocks) plus {} blocks: no worker would take the job",
                            params.reveal_window,
                            capacloud_client::chain::REVEAL_MARGIN_BLOCKS
                        )));
                    }
                    let terms = Terms {
                        offer_id: offer,
                        max_price_per_unit: max_price,
                        check_rate_bps: check_rate_bps.unwrap_or(params.default_check_rate_bps),
                        compute_blocks,
                        requirements: Requirements::default(),
                        pay_if_unverified,
                    };
                    let seed = renter::random_seed().map_err(classify_renter)?;
                    let input = renter::stage(store.as_ref(), &bundle, &terms).await.map_err(classify_renter)?;
                    let id = renter::create(&m, &journal()?, &input, &seed, now).await.map_err(classify_renter)?;
                    let job = follow_with_spinner(&m, id, &seed, timeout).await?;
                    let mut output_bytes = None;
                    let mut png_out = None;
                    let mut saved = None;
                    // Outputs are served to a renter that paid for them: settled, or unverified
                    // with "pay anyway" (a refunded renter gets its money back, not the work).
                    if job.batch_root != [0; 32] && job.core.renter_paid() {
                        let outputs = renter::fetch_outputs(&m, id, &job, store.as_ref()).await.map_err(classify_renter)?;
                        output_bytes = Some(outputs.iter().map(Vec::len).sum());
                        if let Some(path) = out {
                            save_outputs(&path, &outputs)?;
                            saved = Some(path);
                        }
                        if let (Some(path), Some((w, p))) = (png, bundle.library.as_ref()) {
                            if w.name() == "mandelbrot" {
                                // A batch's tasks are the image's strips, top to bottom.
                                let words = capacloud_executor::workloads::bytes_to_words(&outputs.concat());
                                let u = p[0].uniform_words();
                                let height = u[1] * outputs.len() as u32;
                                let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                                capacloud_executor::workloads::mandelbrot::write_png(file, &words, u[0], height, u[2])?;
                                png_out = Some(path);
                            }
                        }
                    }
                    Ok(Output::Job { job: JobView::of(id, &job), output_bytes, out: saved, png: png_out })
                }
            }
        }
    }
}

/// The renter's job journal, `$CAPACLOUD_HOME/jobs`.
fn journal() -> Result<renter::Journal> {
    let home = keys::capacloud_home().ok_or_else(|| bad("set CAPACLOUD_HOME (or HOME) for the job journal"))?;
    Ok(renter::Journal::new(home.join("jobs")))
}

async fn follow_with_spinner(m: &Marketplace<'_>, id: u64, seed: &[u8; 32], timeout: u64) -> Result<Job> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message(format!("job {id}: submitted"));
    let job = renter::follow(m, id, seed, std::time::Duration::from_secs(timeout), |s| bar.set_message(format!("job {id}: {s:?}")))
        .await
        .map_err(classify_renter)?;
    bar.finish_and_clear();
    Ok(job)
}

/// Writes outputs: one task to the file `out`, a batch into the directory `out` as
/// `<task>.bin`. Returns the bytes written.
fn save_outputs(out: &std::path::Path, outputs: &[Vec<u8>]) -> Result<usize> {
    if outputs.len() == 1 {
        std::fs::write(out, &outputs[0]).with_context(|| format!("writing {}", out.display()))?;
    } else {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        for (i, o) in outputs.iter().enumerate() {
            let p = out.join(format!("{i}.bin"));
            std::fs::write(&p, o).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    Ok(outputs.iter().map(Vec::len).sum())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CAPACLOUD_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let json = cli.json;
    let rt = match tokio::runtime::Runtime::new().context("starting the async runtime") {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)).and_then(|out| out.print(json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.downcast_ref::<BadInput>().is_some() { 2 } else { 1 };
            if json {
                println!("{}", serde_json::json!({ "kind": "error", "exit_code": code, "error": format!("{e:#}") }));
            }
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

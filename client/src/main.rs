//! `capacloud`: the renter and operator CLI.
//!
//! Exit codes: 0 success; 1 the chain or network failed; 2 bad input (arguments, files,
//! or a call the contract refuses) — in that case nothing was signed and no funds moved.

use anyhow::{Context, Result};
use capacloud_client::chain::{self, Chain, ChainError};
use capacloud_client::marketplace::Params;
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
    #[arg(long, env = "CAPACLOUD_SURI", default_value = "//Alice", global = true, hide_env_values = true)]
    suri: String,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Upload and instantiate the marketplace contract; the signer becomes its admin.
    Deploy {
        /// The contract code built by `make contract`.
        #[arg(long, env = "CAPACLOUD_CONTRACT_CODE")]
        code: PathBuf,
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
    },
    /// Key utilities.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Print the signer's Substrate account and its contract (H160) address.
    Address,
}

/// Everything the CLI prints, in one type: text by default, JSON with `--json`.
#[derive(serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Output {
    Deployed { deployment: chain::Deployment },
    Params { contract: H160, admin: H160, params: Params },
    Called { receipt: chain::Receipt },
    Address { account: String, h160: H160 },
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
        }
        Ok(())
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

fn bad(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

fn parse_h160(s: &str) -> Result<H160> {
    let hex_part = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(hex_part).map_err(|_| bad(format!("`{s}` is not a hex address")))?;
    if bytes.len() != 20 {
        return Err(bad(format!("`{s}` is not a 20-byte contract address")));
    }
    Ok(H160::from_slice(&bytes))
}

/// Contract refusals and dry-run rejections are the caller's input; the rest is failure.
fn classify(e: ChainError) -> anyhow::Error {
    match e {
        e @ (ChainError::Reverted { .. } | ChainError::BadSecret(_)) => bad(e.to_string()),
        e => anyhow::Error::new(e),
    }
}

async fn run(cli: Cli) -> Result<Output> {
    let signer = chain::keypair_from_uri(&cli.suri).map_err(classify)?;
    if let Cmd::Keys { cmd: KeysCmd::Address } = cli.cmd {
        let account: subxt::utils::AccountId32 = signer.public_key().into();
        let h160 = chain::revive::h160_of(&account);
        return Ok(Output::Address { account: account.to_string(), h160 });
    }
    // Validate local input before touching the network.
    let code = match &cli.cmd {
        Cmd::Deploy { code } => Some(
            contract::read_code(code).map_err(|e| bad(format!("cannot read contract code {}: {e}", code.display())))?,
        ),
        _ => None,
    };
    let contract_addr = match &cli.cmd {
        Cmd::Params { contract } | Cmd::SetParams { contract, .. } => Some(parse_h160(contract)?),
        _ => None,
    };
    let chain = Chain::connect(&cli.url, signer).await.map_err(classify)?;
    match cli.cmd {
        Cmd::Deploy { .. } => {
            let code = code.expect("read above");
            let (_, deployment) = Marketplace::deploy(&chain, &code).await.map_err(classify)?;
            Ok(Output::Deployed { deployment })
        }
        Cmd::Params { .. } => {
            let m = Marketplace::at(&chain, contract_addr.expect("parsed above")).await.map_err(classify)?;
            Ok(Output::Params { contract: m.address(), admin: m.admin().await.map_err(classify)?, params: m.params().await.map_err(classify)? })
        }
        Cmd::SetParams {
            protocol_fee_bps,
            verifier_fee_bps,
            default_check_rate_bps,
            bid_window,
            accept_window,
            reveal_window,
            unstake_cooldown,
            ..
        } => {
            let m = Marketplace::at(&chain, contract_addr.expect("parsed above")).await.map_err(classify)?;
            let mut p = m.params().await.map_err(classify)?;
            p.protocol_fee_bps = protocol_fee_bps.unwrap_or(p.protocol_fee_bps);
            p.verifier_fee_bps = verifier_fee_bps.unwrap_or(p.verifier_fee_bps);
            p.default_check_rate_bps = default_check_rate_bps.unwrap_or(p.default_check_rate_bps);
            p.bid_window = bid_window.unwrap_or(p.bid_window);
            p.accept_window = accept_window.unwrap_or(p.accept_window);
            p.reveal_window = reveal_window.unwrap_or(p.reveal_window);
            p.unstake_cooldown = unstake_cooldown.unwrap_or(p.unstake_cooldown);
            let receipt = m.set_params(p).await.map_err(classify)?;
            Ok(Output::Called { receipt })
        }
        Cmd::Keys { .. } => unreachable!("handled before connecting"),
    }
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

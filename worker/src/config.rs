//! The daemon's configuration: command-line flags over environment variables over a TOML
//! file (`--config`) over defaults.
//!
//! ```toml
//! url = "ws://127.0.0.1:9944"
//! key_file = "/etc/capacloud/provider.json"   # or suri = "…" (keep it out of shared files)
//! contract = "0x…"
//! data_dir = "/var/lib/capacloud-worker"      # blobs/ and state.json
//! listen = "0.0.0.0:8800"
//! endpoint = "http://gpu-17.example.net:8800" # what renters and verifiers are told
//! price = "1000000000000000"                  # per work unit, 10^-18 WND (integer or string)
//! stake_wnd = 20
//! withdraw_above_wnd = 5.0
//! kernel_secs = 60                            # per task; kernels run in a sandboxed child
//! max_job_mib = 4096                          # every task's inputs and outputs together
//! fetch_secs = 30                             # per fetch (spec, manifest, input)
//! # in_process = true                         # run kernels in the daemon (not sandboxed)
//! ```

use capacloud_client::marketplace::UNITS_PER_PLANCK;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("missing setting `{0}`: give --{flag} (or its env var, or `{0}` in the config file)", flag = .0.replace('_', "-"))]
    Missing(&'static str),
    #[error("setting `{name}` = {value}: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
}

/// The settings, read twice: from flags and environment variables (clap), and from the
/// TOML file (serde, same names in snake_case). Every setting is optional in both: what
/// neither gives comes from the defaults.
#[derive(clap::Parser, serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
#[command(name = "capacloud-worker", version, about = "CapaCloud provider worker: rents out this machine's GPU")]
pub struct Args {
    /// TOML config file (see the crate docs for its keys).
    #[arg(long, env = "CAPACLOUD_WORKER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Node RPC endpoint [default: ws://127.0.0.1:9944].
    #[arg(long, env = "CAPACLOUD_URL")]
    pub url: Option<String>,
    /// Signing key: dev URI (//Bob), seed phrase, or 0x secret seed.
    #[arg(long, env = "CAPACLOUD_SURI", hide_env_values = true)]
    pub suri: Option<String>,
    /// Signing key: a polkadot.js JSON export (password from CAPACLOUD_KEY_PASSWORD or a prompt).
    #[arg(long, env = "CAPACLOUD_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Marketplace contract address (0x + 40 hex digits).
    #[arg(long, env = "CAPACLOUD_CONTRACT")]
    pub contract: Option<String>,
    /// Directory for the worker's blobs (outputs, fetched inputs) and its state file.
    #[arg(long, env = "CAPACLOUD_WORKER_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the HTTP endpoint (outputs, proofs, blobs, /metrics) listens on [default: 127.0.0.1:8800].
    #[arg(long, env = "CAPACLOUD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// URL advertised in the offer [default: http://<listen address>].
    #[arg(long, env = "CAPACLOUD_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Stake to keep bonded, in WND: registers or tops up to it [default: 20].
    #[arg(long, env = "CAPACLOUD_STAKE_WND")]
    #[serde(default, deserialize_with = "big_int")]
    pub stake_wnd: Option<u128>,
    /// Price per work unit, in contract units (10^-18 WND). In the file, a string of digits
    /// too: contract units exceed TOML's 64-bit integers.
    #[arg(long, env = "CAPACLOUD_PRICE")]
    #[serde(default, deserialize_with = "big_int")]
    pub price: Option<u128>,
    /// Largest job, in work units [default: 1000000].
    #[arg(long, env = "CAPACLOUD_MAX_UNITS")]
    pub max_units: Option<u64>,
    /// VRAM to advertise, in MiB (wgpu does not report it) [default: 16384].
    #[arg(long, env = "CAPACLOUD_VRAM_MIB")]
    pub vram_mib: Option<u32>,
    /// Longest time between passes over the jobs when no event arrives, in seconds [default: 5].
    #[arg(long, env = "CAPACLOUD_POLL_SECS")]
    pub poll_secs: Option<f64>,
    /// Withdraw earnings whenever more than this many WND are withdrawable.
    #[arg(long, env = "CAPACLOUD_WITHDRAW_ABOVE_WND")]
    pub withdraw_above_wnd: Option<f64>,
    /// Run renter kernels in this process instead of a child (the default runs every kernel,
    /// compilation included, in a sandboxed child process that is killed at the time limit:
    /// a crashing or hanging driver then takes down only the child).
    #[arg(long, env = "CAPACLOUD_IN_PROCESS")]
    #[serde(default)]
    pub in_process: bool,
    /// Longest a kernel (one task) may run, in seconds [default: 60].
    #[arg(long, env = "CAPACLOUD_KERNEL_SECS")]
    pub kernel_secs: Option<u64>,
    /// Largest job it takes, every task's inputs and outputs together, in MiB [default: 4096].
    #[arg(long, env = "CAPACLOUD_MAX_JOB_MIB")]
    pub max_job_mib: Option<u64>,
    /// Longest one fetch (spec, manifest, input) may take, in seconds [default: 30].
    #[arg(long, env = "CAPACLOUD_FETCH_SECS")]
    pub fetch_secs: Option<u64>,
    /// Demo only: commit made-up results without computing (gets slashed when checked).
    #[arg(long)]
    #[serde(default)]
    pub cheat: bool,
    /// Internal: the child side of `--isolate` (runs the kernel described in DIR, then exits).
    #[arg(long, hide = true, value_name = "DIR")]
    #[serde(skip)]
    pub run_kernel: Option<PathBuf>,
    /// Internal: the kernel time limit of `--run-kernel`, in milliseconds.
    #[arg(long, hide = true, default_value_t = 60_000)]
    #[serde(skip)]
    pub kernel_timeout_ms: u64,
}

/// A u128 from a TOML integer or a string of digits.
fn big_int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Num {
        Int(u64),
        Text(String),
    }
    match <Num as serde::Deserialize>::deserialize(d)? {
        Num::Int(n) => Ok(Some(u128::from(n))),
        Num::Text(s) => s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("`{s}` is not a non-negative integer"))),
    }
}

impl Args {
    /// Reads and parses the config file `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::Parse`] (unknown keys included).
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), reason: e.to_string() })
    }
}

/// The resolved settings the daemon runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub suri: Option<String>,
    pub key_file: Option<PathBuf>,
    pub contract: String,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub endpoint: Option<String>,
    /// Stake target, contract units.
    pub stake: u128,
    pub price: u128,
    pub max_units: u64,
    pub vram_mib: u32,
    pub poll_secs: f64,
    /// Auto-withdraw threshold, contract units.
    pub withdraw_above: Option<u128>,
    /// Run kernels in sandboxed child processes (the default).
    pub isolate: bool,
    pub kernel_secs: u64,
    pub max_job_bytes: u64,
    pub fetch_secs: u64,
    pub cheat: bool,
}

/// `wnd` WND in contract units, rounded down to whole plancks.
///
/// # Errors
/// [`ConfigError::Invalid`] for negative, non-finite or absurd amounts.
pub fn wnd_to_units(name: &'static str, wnd: f64) -> Result<u128, ConfigError> {
    if !wnd.is_finite() || !(0.0..=1e12).contains(&wnd) {
        return Err(ConfigError::Invalid { name, value: wnd.to_string(), reason: "expected 0 to 10^12 WND".into() });
    }
    Ok((wnd * 1e12).floor() as u128 * UNITS_PER_PLANCK)
}

/// `value` if it is 1 ..= `max`.
fn positive(name: &'static str, value: u64, max: u64) -> Result<u64, ConfigError> {
    if value == 0 || value > max {
        return Err(ConfigError::Invalid { name, value: value.to_string(), reason: format!("expected 1 to {max}") });
    }
    Ok(value)
}

impl Settings {
    /// Flags and env vars over the config file over defaults.
    ///
    /// # Errors
    /// The file's errors; [`ConfigError::Missing`] for `contract`, `data_dir`, `price`;
    /// [`ConfigError::Invalid`] for out-of-range values.
    pub fn resolve(args: Args) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => Args::read(path)?,
            None => Args::default(),
        };
        let poll_secs = args.poll_secs.or(file.poll_secs).unwrap_or(5.0);
        if !(poll_secs.is_finite() && (0.05..=3600.0).contains(&poll_secs)) {
            return Err(ConfigError::Invalid { name: "poll_secs", value: poll_secs.to_string(), reason: "expected 0.05 to 3600 seconds".into() });
        }
        let stake_wnd = args.stake_wnd.or(file.stake_wnd).unwrap_or(20);
        let stake = stake_wnd
            .checked_mul(1_000_000_000_000 * UNITS_PER_PLANCK)
            .ok_or(ConfigError::Invalid { name: "stake_wnd", value: stake_wnd.to_string(), reason: "too large".into() })?;
        let withdraw_above = args.withdraw_above_wnd.or(file.withdraw_above_wnd).map(|w| wnd_to_units("withdraw_above_wnd", w)).transpose()?;
        // A key given on the command line replaces the file's key, whichever kind it is.
        let (suri, key_file) = if args.suri.is_some() || args.key_file.is_some() { (args.suri, args.key_file) } else { (file.suri, file.key_file) };
        Ok(Self {
            url: args.url.or(file.url).unwrap_or_else(|| "ws://127.0.0.1:9944".into()),
            suri,
            key_file,
            contract: args.contract.or(file.contract).ok_or(ConfigError::Missing("contract"))?,
            data_dir: args.data_dir.or(file.data_dir).ok_or(ConfigError::Missing("data_dir"))?,
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8800))),
            endpoint: args.endpoint.or(file.endpoint),
            stake,
            price: args.price.or(file.price).ok_or(ConfigError::Missing("price"))?,
            max_units: args.max_units.or(file.max_units).unwrap_or(1_000_000),
            vram_mib: args.vram_mib.or(file.vram_mib).unwrap_or(16_384),
            poll_secs,
            withdraw_above,
            isolate: !(args.in_process || file.in_process),
            kernel_secs: positive("kernel_secs", args.kernel_secs.or(file.kernel_secs).unwrap_or(60), 86_400)?,
            max_job_bytes: positive("max_job_mib", args.max_job_mib.or(file.max_job_mib).unwrap_or(4096), 1 << 20)? << 20,
            fetch_secs: positive("fetch_secs", args.fetch_secs.or(file.fetch_secs).unwrap_or(30), 3600)?,
            cheat: args.cheat || file.cheat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(["capacloud-worker"].iter().chain(extra)).unwrap()
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(
            &path,
            "contract = \"0x0101010101010101010101010101010101010101\"\ndata_dir = \"/srv/w\"\nprice = 5\nstake_wnd = \"30\"\nsuri = \"//Bob\"\nwithdraw_above_wnd = 2.5\nlisten = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = Settings::resolve(args(&["--config", p])).unwrap();
        assert_eq!((s.price, s.suri.as_deref(), s.listen.port()), (5, Some("//Bob"), 9000));
        assert_eq!(s.data_dir, PathBuf::from("/srv/w"));
        assert_eq!(s.withdraw_above, Some(2_500_000_000_000 * UNITS_PER_PLANCK));
        assert_eq!((s.url.as_str(), s.stake_wnd_back(), s.poll_secs), ("ws://127.0.0.1:9944", 30, 5.0));
        assert!(s.isolate, "kernels run sandboxed unless told otherwise");
        assert_eq!((s.kernel_secs, s.max_job_bytes, s.fetch_secs), (60, 4096 << 20, 30));
        assert!(!Settings::resolve(args(&["--config", p, "--in-process"])).unwrap().isolate);
        assert!(matches!(Settings::resolve(args(&["--config", p, "--kernel-secs", "0"])), Err(ConfigError::Invalid { name: "kernel_secs", .. })));

        let s = Settings::resolve(args(&["--config", p, "--price", "7", "--key-file", "k.json"])).unwrap();
        assert_eq!(s.price, 7);
        assert_eq!((s.suri, s.key_file), (None, Some(PathBuf::from("k.json"))), "a flag key replaces the file's key");
    }

    #[test]
    fn bad_configs_are_reported_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "prise = 5\n").unwrap();
        let p = path.to_str().unwrap();
        assert!(matches!(Settings::resolve(args(&["--config", p])), Err(ConfigError::Parse { .. })), "unknown key");
        std::fs::write(&path, "price = \"12x\"\n").unwrap();
        assert!(matches!(Settings::resolve(args(&["--config", p])), Err(ConfigError::Parse { .. })), "not a number");
        std::fs::write(&path, "price = \"340282366920938463463374607431768211455\"\ncontract = \"0x00\"\ndata_dir = \"/d\"\n").unwrap();
        assert_eq!(Settings::resolve(args(&["--config", p])).unwrap().price, u128::MAX, "above 2^64 as a string");
        assert!(matches!(Settings::resolve(args(&["--config", "/nonexistent.toml"])), Err(ConfigError::Read { .. })));
        let e = Settings::resolve(args(&["--contract", "0x00", "--data-dir", "/d"])).unwrap_err();
        assert!(matches!(e, ConfigError::Missing("price")), "{e}");
        assert!(e.to_string().contains("--price"));
        let e = Settings::resolve(args(&["--contract", "0x00", "--data-dir", "/d", "--price", "1", "--poll-secs", "0"])).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { name: "poll_secs", .. }));
        let e = Settings::resolve(args(&["--contract", "0x00", "--data-dir", "/d", "--price", "1", "--withdraw-above-wnd=-1"])).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { name: "withdraw_above_wnd", .. }));
    }

    impl Settings {
        fn stake_wnd_back(&self) -> u128 {
            self.stake / (1_000_000_000_000 * UNITS_PER_PLANCK)
        }
    }
}

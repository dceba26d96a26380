//! Benchmarks' view of real processes: `capacloud-worker` started as a provider would run it,
//! and the CPU time and memory of processes over a window (from `/proc`).

use anyhow::{ensure, Context, Result};
use capacloud_client::marketplace::Amount;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// CPU ticks (user + system, finished children's included: the kernel children) and
/// resident memory (KiB) of a process.
pub fn sample(pid: u32) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: utime is field 14, stime 15, cutime 16, cstime 17.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f[11..=14].iter().map(|v| v.parse::<u64>()).sum::<Result<u64, _>>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    Ok((ticks, rss))
}

/// CPU % and peak RSS of processes over a window, sampled by [`sampled`].
pub struct Window {
    pids: Vec<(String, u32)>,
    start: Instant,
    ticks0: Vec<u64>,
    peak_rss: Vec<u64>,
}

impl Window {
    /// Starts measuring `pids` (name, pid) now.
    ///
    /// # Errors
    /// A process that cannot be read.
    pub fn open(pids: &[(String, u32)]) -> Result<Self> {
        let s: Vec<(u64, u64)> = pids.iter().map(|(_, p)| sample(*p)).collect::<Result<_>>()?;
        Ok(Self { pids: pids.to_vec(), start: Instant::now(), ticks0: s.iter().map(|x| x.0).collect(), peak_rss: s.iter().map(|x| x.1).collect() })
    }

    fn poll(&mut self) {
        for (i, (_, pid)) in self.pids.iter().enumerate() {
            if let Ok((_, r)) = sample(*pid) {
                self.peak_rss[i] = self.peak_rss[i].max(r);
            }
        }
    }

    /// (name, CPU % of one core, peak RSS MiB) per process.
    ///
    /// # Errors
    /// A process that cannot be read.
    pub fn close(mut self) -> Result<Vec<(String, f64, f64)>> {
        self.poll();
        let secs = self.start.elapsed().as_secs_f64();
        // SAFETY: sysconf has no preconditions.
        let hz = (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64;
        let mut out = Vec::new();
        for (i, (name, pid)) in self.pids.iter().enumerate() {
            let (t, _) = sample(*pid)?;
            out.push((name.clone(), (t - self.ticks0[i]) as f64 / hz / secs * 100.0, self.peak_rss[i] as f64 / 1024.0));
        }
        Ok(out)
    }
}

/// Runs `fut` while sampling `window` every 250 ms.
pub async fn sampled<T>(window: &mut Window, fut: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tokio::time::sleep(Duration::from_millis(250)) => window.poll(),
        }
    }
}

/// A `capacloud-worker` process and what it printed when ready.
pub struct WorkerProcess {
    pub child: Child,
    pub offer_id: u64,
    /// Its HTTP endpoint (the URL in its offer).
    pub endpoint: String,
}

/// Starts `capacloud-worker` (the binary beside the running one) as `suri` on `contract`,
/// bidding `price`, its data and log under `dir`, and waits for its ready line.
///
/// # Errors
/// The binary missing, or the worker not starting (its log is `dir/<name>.log`).
pub fn start_worker(name: &str, suri: &str, url: &str, contract: &str, price: Amount, dir: &std::path::Path) -> Result<WorkerProcess> {
    start_worker_with(name, suri, url, contract, price, dir, &[])
}

/// [`start_worker`] with further command-line arguments (`extra`).
///
/// # Errors
/// As [`start_worker`].
pub fn start_worker_with(name: &str, suri: &str, url: &str, contract: &str, price: Amount, dir: &std::path::Path, extra: &[&str]) -> Result<WorkerProcess> {
    let bin = crate::binary_path("capacloud-worker");
    ensure!(bin.exists(), "{} not built (cargo build --bins)", bin.display());
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let mut child = Command::new(bin)
        .args(["--url", url, "--suri", suri, "--contract", contract, "--price", &price.to_string(), "--listen", "127.0.0.1:0", "--stake-wnd", "2000"])
        .arg("--data-dir")
        .arg(dir.join(name))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let ready: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("{name} did not start; see {}/{name}.log", dir.display()))?;
    Ok(WorkerProcess {
        child,
        offer_id: ready["offer_id"].as_u64().context("offer_id")?,
        endpoint: ready["endpoint"].as_str().context("endpoint")?.to_string(),
    })
}

/// Stops a worker as its operator would (SIGTERM) and checks it exits cleanly.
///
/// # Errors
/// The worker exiting with a failure status.
pub fn stop_worker(name: &str, mut child: Child) -> Result<()> {
    // SAFETY: kill(2) with a child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait()?;
    ensure!(status.success(), "worker {name} exited {status} after SIGTERM");
    Ok(())
}

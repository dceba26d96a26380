//! Ingestion: finalized blocks into the store, by block ranges, exactly once. A backfill
//! from the contract's deployment block, then the finalized head followed by polling
//! (ranges leave no gaps: every block from the cursor to the head is read, whatever the
//! node's subscriptions skipped); each batch is one database transaction.

use crate::store::{Cursor, RawEvent, Store, Touched};
use crate::Error;
use capacloud_client::chain::Reader;
use capacloud_client::summary::Fold;
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use subxt::utils::{H160, H256};

/// Longest wait for the node on one step (the head, or one batch's blocks and events);
/// past it the connection counts as stalled and ingestion restarts from the database.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

async fn within<T>(f: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::time::timeout(STALL_TIMEOUT, f).await.map_err(|_| Error::Stalled(STALL_TIMEOUT.as_secs()))?
}

/// How to ingest.
#[derive(Clone, Debug)]
pub struct Options {
    pub contract: H160,
    /// Index from this block instead of the contract's deployment block.
    pub from_block: Option<u32>,
    /// Blocks per batch (one transaction each).
    pub batch_blocks: u32,
    /// How often to look for a new finalized head once caught up.
    pub poll: Duration,
    /// Show a progress bar during the backfill (on a terminal).
    pub progress_bar: bool,
}

/// Where ingestion stands, shared with the API and exported as Prometheus metrics.
#[derive(Debug, Default)]
pub struct Progress {
    pub indexed_block: Gauge,
    pub head_block: Gauge,
    pub events: Counter,
    pub undecodable_events: Counter,
    pub batches: Counter,
    pub errors: Counter,
}

impl Progress {
    /// The metrics, registered under `capacloud_indexer_*`.
    pub fn registry(self: &Arc<Self>) -> Registry {
        let mut r = Registry::with_prefix("capacloud_indexer");
        r.register("indexed_block", "Last finalized block fully indexed", self.indexed_block.clone());
        r.register("head_block", "Latest finalized block seen on the node", self.head_block.clone());
        r.register("events", "Contract events stored", self.events.clone());
        r.register("undecodable_events", "Contract events stored raw because they did not decode", self.undecodable_events.clone());
        r.register("batches", "Batches committed", self.batches.clone());
        r.register("errors", "Ingestion errors (each followed by a restart from the database)", self.errors.clone());
        r
    }

    /// Blocks between the indexed height and the finalized head.
    pub fn lag(&self) -> i64 {
        (self.head_block.get() - self.indexed_block.get()).max(0)
    }
}

/// A running ingestion: the cursor, the fold of every stored event, and the chain.
pub struct Indexer {
    reader: Reader,
    store: Store,
    opts: Options,
    genesis: H256,
    first_block: u32,
    /// The next block to read.
    next: u32,
    fold: Fold,
    progress: Arc<Progress>,
}

impl Indexer {
    /// Resumes from the store's cursor, after checking it belongs to this chain and
    /// contract and that its block is still the node's block at that height; or starts at
    /// the deployment block (`from_block` when given).
    ///
    /// # Errors
    /// [`Error::WrongChain`], [`Error::WrongContract`], [`Error::HashMismatch`],
    /// [`Error::NotDeployed`]; chain and database errors.
    pub async fn start(reader: Reader, store: Store, opts: Options, progress: Arc<Progress>) -> Result<Self, Error> {
        let genesis = reader.genesis_hash();
        let (first_block, next) = match store.cursor().await? {
            Some(c) => {
                if c.genesis_hash != genesis {
                    return Err(Error::WrongChain { stored: c.genesis_hash, node: genesis });
                }
                if c.contract != opts.contract {
                    return Err(Error::WrongContract { stored: c.contract, asked: opts.contract });
                }
                let node = reader.block_hash(c.block_number).await?.unwrap_or_default();
                if node != c.block_hash {
                    return Err(Error::HashMismatch { number: c.block_number, stored: c.block_hash, node });
                }
                (c.first_block, c.block_number + 1)
            }
            None => {
                let first = match opts.from_block {
                    Some(b) => b,
                    None => {
                        let (head, _) = reader.finalized_head().await?;
                        reader.deployment_block(opts.contract, head).await?.ok_or(Error::NotDeployed(opts.contract))?
                    }
                };
                (first, first)
            }
        };
        let fold = store.fold().await?;
        progress.indexed_block.set(i64::from(next) - 1);
        tracing::info!(first_block, next, events = fold.jobs.len(), "indexer resumed");
        Ok(Self { reader, store, opts, genesis, first_block, next, fold, progress })
    }

    /// The next block to read.
    pub fn next_block(&self) -> u32 {
        self.next
    }

    /// Indexes every finalized block up to `target` (capped at the finalized head) and
    /// returns the last block indexed. After an error drop the indexer and start again
    /// (the database has every batch that committed; the in-memory fold may be ahead).
    ///
    /// # Errors
    /// Chain and database errors.
    pub async fn sync_to(&mut self, target: u32) -> Result<u32, Error> {
        let (head, _) = within(async { Ok(self.reader.finalized_head().await?) }).await?;
        self.progress.head_block.set(i64::from(head));
        let target = target.min(head);
        let bar = if self.opts.progress_bar && target >= self.next && target - self.next > self.opts.batch_blocks {
            indicatif::ProgressBar::new(u64::from(target - self.next + 1))
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} backfill [{bar:40}] {pos}/{len} blocks ({per_sec}, eta {eta}) {msg}")
                .expect("static template"),
        );
        while self.next <= target {
            let end = (self.next + self.opts.batch_blocks.max(1) - 1).min(target);
            let raw = within(fetch(&self.reader, self.opts.contract, self.next, end)).await?;
            self.commit(raw, end).await?;
            bar.inc(u64::from(end - self.next + 1));
            self.next = end + 1;
        }
        bar.finish_and_clear();
        Ok(self.next.saturating_sub(1))
    }

    async fn commit(&mut self, (raw, last_hash): (Vec<RawEvent>, H256), to: u32) -> Result<(), Error> {
        let (touched, undecodable) = apply_batch(&mut self.fold, &raw);
        let cursor = Cursor { genesis_hash: self.genesis, contract: self.opts.contract, first_block: self.first_block, block_number: to, block_hash: last_hash };
        self.store.commit_batch(&raw, &self.fold, &touched, &cursor).await?;
        self.progress.indexed_block.set(i64::from(to));
        self.progress.events.inc_by(raw.len() as u64);
        self.progress.undecodable_events.inc_by(undecodable);
        self.progress.batches.inc();
        tracing::debug!(to, events = raw.len(), "batch committed");
        Ok(())
    }

    /// Backfills, then follows the finalized head until `shutdown` resolves. A batch cut
    /// off by shutdown rolls back whole.
    ///
    /// # Errors
    /// Chain and database errors (the caller starts a new indexer from the database).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                r = self.sync_to(u32::MAX) => { r?; }
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(self.opts.poll) => {}
            }
        }
    }
}

/// `contract`'s events in blocks `from..=to` (8 blocks fetched at once) and the hash of
/// block `to`.
async fn fetch(reader: &Reader, contract: H160, from: u32, to: u32) -> Result<(Vec<RawEvent>, H256), Error> {
    let blocks: Vec<Result<(u32, H256, Vec<_>), Error>> = futures::stream::iter(from..=to)
        .map(|n| async move {
            let hash = reader.block_hash(n).await?.ok_or_else(|| Error::Corrupt(format!("the node has no block #{n}")))?;
            let events = reader.contract_events_of(contract, hash).await?;
            Ok((n, hash, events))
        })
        .buffered(8)
        .collect()
        .await;
    let mut raw = Vec::new();
    let mut last_hash = H256::zero();
    for b in blocks {
        let (n, hash, events) = b?;
        last_hash = hash;
        for (i, e) in events.into_iter().enumerate() {
            raw.push(RawEvent {
                block_number: n,
                event_index: i as u32,
                block_hash: hash,
                extrinsic_index: e.extrinsic_index,
                topics: e.event.topics,
                data: e.event.data,
            });
        }
    }
    Ok((raw, last_hash))
}

/// Folds a batch's raw events into `fold` (in order) and returns the rows they touched
/// and how many did not decode (those are stored raw and counted, never fatal).
pub fn apply_batch(fold: &mut Fold, raw: &[RawEvent]) -> (Touched, u64) {
    let mut touched = Touched::new(fold);
    let mut undecodable = 0;
    for e in raw {
        let decoded = e.decode();
        if decoded.is_none() {
            undecodable += 1;
            tracing::warn!(block = e.block_number, index = e.event_index, "undecodable contract event stored raw");
        }
        touched.note(decoded.as_ref());
        fold.apply(e.at(), decoded.as_ref());
    }
    (touched, undecodable)
}

/// [`Indexer::run`] that survives errors: after one it waits, then resumes from the
/// database (re-checking the cursor). Stops on `shutdown`, or on an error a restart cannot
/// fix (another chain or contract, a changed finalized block, a corrupt database).
///
/// # Errors
/// Those fatal errors.
pub async fn run_forever(url: String, store: Store, opts: Options, progress: Arc<Progress>, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    tokio::pin!(shutdown);
    loop {
        let attempt = async {
            let reader = Reader::connect(&url).await?;
            Indexer::start(reader, store.clone(), opts.clone(), progress.clone()).await?.run(std::future::pending()).await
        };
        let err = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = attempt => match r { Ok(()) => return Ok(()), Err(e) => e },
        };
        if matches!(err, Error::WrongChain { .. } | Error::WrongContract { .. } | Error::HashMismatch { .. } | Error::Corrupt(_) | Error::NotDeployed(_) | Error::Migrate(_)) {
            return Err(err);
        }
        progress.errors.inc();
        tracing::warn!(%err, "ingestion failed; resuming from the database in 2 s");
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

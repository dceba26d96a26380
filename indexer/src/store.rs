//! The indexer's database: raw events and the cursor written together, derived tables
//! rebuilt from the raw ones, and the queries the API serves. One query layer (sqlx's
//! `Any` driver) over SQLite and PostgreSQL, with the same migrations for both.

use crate::Error;
use capacloud_client::marketplace::{self, Event};
use capacloud_client::summary::{AccountRow, At, Fold, JobRow, OfferRow, PricePoint};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::collections::BTreeSet;
use subxt::utils::{H160, H256};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Where indexing stands: which chain and contract, and the last block written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cursor {
    pub genesis_hash: H256,
    pub contract: H160,
    /// The first block indexed (the contract's deployment, or `--from-block`).
    pub first_block: u32,
    /// The last block whose events are all stored.
    pub block_number: u32,
    pub block_hash: H256,
}

/// A contract event as stored in the raw layer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RawEvent {
    pub block_number: u32,
    /// Its index among the contract's events of the block.
    pub event_index: u32,
    pub block_hash: H256,
    pub extrinsic_index: Option<u32>,
    pub topics: Vec<H256>,
    #[serde(serialize_with = "hex_ser")]
    pub data: Vec<u8>,
}

fn hex_ser<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("0x{}", hex::encode(b)))
}

impl RawEvent {
    /// The event decoded (`None`: not one this client knows; kept raw, counted).
    pub fn decode(&self) -> Option<Event> {
        marketplace::decode_event(&self.topics, &self.data).ok()
    }

    pub fn at(&self) -> At {
        At { block: self.block_number, index: self.event_index }
    }
}

/// The rows a batch of events changed, to be written back.
#[derive(Clone, Debug, Default)]
pub struct Touched {
    pub jobs: BTreeSet<u64>,
    pub accounts: BTreeSet<H160>,
    pub offers: BTreeSet<u64>,
    /// Price points from this index of [`Fold::prices`] on are new.
    pub prices_from: usize,
}

impl Touched {
    /// Starts a batch over `fold` as it is now.
    pub fn new(fold: &Fold) -> Self {
        Self { prices_from: fold.prices.len(), ..Default::default() }
    }

    /// Notes what `event` can change (a superset: rows that do not exist are skipped).
    pub fn note(&mut self, event: Option<&Event>) {
        use capacloud_client::marketplace::AccountEventKind as A;
        match event {
            Some(Event::Job(e)) => {
                self.jobs.insert(e.job_id);
                self.accounts.insert(e.provider);
                self.accounts.insert(e.renter);
            }
            Some(Event::Verifier(e)) => {
                self.jobs.insert(e.job_id);
                self.accounts.insert(e.verifier);
            }
            Some(Event::Account(e)) => {
                self.accounts.insert(e.account);
                if let A::OfferListed { offer_id, .. } | A::OfferRemoved { offer_id } = &e.kind {
                    self.offers.insert(*offer_id);
                }
            }
            Some(Event::Market(e)) => {
                if let capacloud_client::marketplace::MarketEventKind::TreasuryClaimed { admin, .. } = &e.kind {
                    self.accounts.insert(*admin);
                }
            }
            None => {}
        }
    }

    /// Everything in `fold` (for a rebuild).
    pub fn all(fold: &Fold) -> Self {
        Self {
            jobs: fold.jobs.keys().copied().collect(),
            accounts: fold.accounts.keys().copied().collect(),
            offers: fold.offers.keys().copied().collect(),
            prices_from: 0,
        }
    }
}

/// Which jobs to list.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub state: Option<String>,
    pub renter: Option<H160>,
    pub provider: Option<H160>,
    /// Only jobs created after this point (cursor pagination, oldest first).
    pub after: Option<At>,
    pub limit: u32,
    /// Newest first instead (for the dashboard; `after` is then ignored).
    pub newest_first: bool,
}

/// A derived row with the block hash of the event it starts from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sourced<T> {
    #[serde(flatten)]
    pub row: T,
    /// The block and event the record starts from, and that block's hash.
    pub source: Source,
}

/// Where a record comes from on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    pub block: u32,
    pub event_index: u32,
    pub block_hash: H256,
}

/// Counts over the whole market.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[derive(serde::Deserialize)]
pub struct Stats {
    pub events: u64,
    pub undecodable_events: u64,
    pub jobs: u64,
    /// Jobs per state name.
    pub jobs_by_state: std::collections::BTreeMap<String, u64>,
    /// Settled jobs whose seed sampled at least one task for checking.
    pub jobs_checked: u64,
    /// Paid to providers and verifiers, in units (settled and unverified-but-paid jobs).
    pub volume: String,
    pub providers_with_stake: u64,
    pub offers_active: u64,
    pub slashes: u64,
}

/// The indexer's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn parse_h256(s: &str) -> Result<H256, Error> {
    let b = hex::decode(s.trim_start_matches("0x")).map_err(|_| Error::Corrupt(format!("bad hash {s}")))?;
    if b.len() != 32 {
        return Err(Error::Corrupt(format!("bad hash {s}")));
    }
    Ok(H256::from_slice(&b))
}

fn parse_h160(s: &str) -> Result<H160, Error> {
    let b = hex::decode(s.trim_start_matches("0x")).map_err(|_| Error::Corrupt(format!("bad address {s}")))?;
    if b.len() != 20 {
        return Err(Error::Corrupt(format!("bad address {s}")));
    }
    Ok(H160::from_slice(&b))
}

fn u32_of(row: &AnyRow, col: &str) -> Result<u32, Error> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| Error::Corrupt(format!("{col} = {v} out of range")))
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or
    /// `postgres://…`) and applies the migrations.
    ///
    /// # Errors
    /// [`Error::Db`] when it cannot be reached; [`Error::Migrate`].
    pub async fn open(url: &str) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite && !url.contains('?') && !url.contains(":memory:") { format!("{url}?mode=rwc") } else { url.to_string() };
        // One SQLite connection: writes are serialized anyway, and an in-memory database
        // exists per connection.
        let pool = AnyPoolOptions::new().max_connections(if sqlite { 1 } else { 4 }).connect(&url).await?;
        if sqlite && !url.contains(":memory:") {
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Where indexing stands (`None`: nothing indexed yet).
    ///
    /// # Errors
    /// [`Error::Db`]; [`Error::Corrupt`] for unreadable values.
    pub async fn cursor(&self) -> Result<Option<Cursor>, Error> {
        let Some(row) = sqlx::query("SELECT genesis_hash, contract, first_block, block_number, block_hash FROM cursor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Cursor {
            genesis_hash: parse_h256(&row.try_get::<String, _>("genesis_hash")?)?,
            contract: parse_h160(&row.try_get::<String, _>("contract")?)?,
            first_block: u32_of(&row, "first_block")?,
            block_number: u32_of(&row, "block_number")?,
            block_hash: parse_h256(&row.try_get::<String, _>("block_hash")?)?,
        }))
    }

    /// Writes a batch in one transaction: its raw events, the derived rows they changed
    /// (taken from `fold`, which has already applied them), and the cursor. Either all of
    /// it lands or none does, so a restart resumes exactly after the last batch.
    ///
    /// # Errors
    /// [`Error::Db`] (nothing written); an event already stored is an error, not a skip.
    pub async fn commit_batch(&self, events: &[RawEvent], fold: &Fold, touched: &Touched, cursor: &Cursor) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        for e in events {
            let decoded = e.decode();
            let kind = decoded.as_ref().map(kind_of);
            let job_id = decoded.as_ref().and_then(|d| d.job_id()).map(|j| j as i64);
            let topics: Vec<String> = e.topics.iter().map(|t| hex0x(t.as_bytes())).collect();
            sqlx::query(
                "INSERT INTO events (block_number, event_index, block_hash, extrinsic_index, topics, data, kind, job_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(i64::from(e.block_number))
            .bind(i64::from(e.event_index))
            .bind(hex0x(e.block_hash.as_bytes()))
            .bind(e.extrinsic_index.map(i64::from))
            .bind(topics.join(","))
            .bind(hex0x(&e.data))
            .bind(kind)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        }
        write_rows(&mut tx, fold, touched).await?;
        sqlx::query(
            "INSERT INTO cursor (id, genesis_hash, contract, first_block, block_number, block_hash) VALUES (1, $1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash",
        )
        .bind(hex0x(cursor.genesis_hash.as_bytes()))
        .bind(hex0x(cursor.contract.as_bytes()))
        .bind(i64::from(cursor.first_block))
        .bind(i64::from(cursor.block_number))
        .bind(hex0x(cursor.block_hash.as_bytes()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every raw event, in chain order.
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn raw_events(&self) -> Result<Vec<RawEvent>, Error> {
        let rows = sqlx::query(
            "SELECT block_number, event_index, block_hash, extrinsic_index, topics, data FROM events ORDER BY block_number, event_index",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(raw_of).collect()
    }

    /// The raw event at `at` (`None`: none there).
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn event(&self, at: At) -> Result<Option<RawEvent>, Error> {
        let row = sqlx::query(
            "SELECT block_number, event_index, block_hash, extrinsic_index, topics, data FROM events WHERE block_number = $1 AND event_index = $2",
        )
        .bind(i64::from(at.block))
        .bind(i64::from(at.index))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(raw_of).transpose()
    }

    /// Folds the raw events (no chain needed).
    ///
    /// # Errors
    /// As [`Store::raw_events`].
    pub async fn fold(&self) -> Result<Fold, Error> {
        let mut fold = Fold::default();
        for e in self.raw_events().await? {
            fold.apply(e.at(), e.decode().as_ref());
        }
        Ok(fold)
    }

    /// Recomputes every derived table from the raw events, in one transaction.
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`]; nothing changes on error.
    pub async fn rebuild(&self) -> Result<Fold, Error> {
        let fold = self.fold().await?;
        let mut tx = self.pool.begin().await?;
        for table in ["jobs", "accounts", "offers", "prices", "totals"] {
            sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
        }
        write_rows(&mut tx, &fold, &Touched::all(&fold)).await?;
        tx.commit().await?;
        Ok(fold)
    }

    async fn source(&self, at: At) -> Result<Source, Error> {
        let hash: Option<String> = sqlx::query_scalar("SELECT block_hash FROM events WHERE block_number = $1 AND event_index = $2")
            .bind(i64::from(at.block))
            .bind(i64::from(at.index))
            .fetch_optional(&self.pool)
            .await?;
        let hash = hash.ok_or_else(|| Error::Corrupt(format!("no raw event at {}:{}", at.block, at.index)))?;
        Ok(Source { block: at.block, event_index: at.index, block_hash: parse_h256(&hash)? })
    }

    /// Jobs matching `filter`, oldest first.
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Sourced<JobRow>>, Error> {
        let mut sql = String::from(
            "SELECT j.row_json, e.block_hash FROM jobs j JOIN events e ON e.block_number = j.created_block AND e.event_index = j.created_index WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = |sql: &mut String, clause: &str| {
            n += 1;
            sql.push_str(&clause.replace('?', &format!("${n}")));
        };
        if filter.state.is_some() {
            next(&mut sql, " AND j.state = ?");
        }
        if filter.renter.is_some() {
            next(&mut sql, " AND j.renter = ?");
        }
        if filter.provider.is_some() {
            next(&mut sql, " AND j.provider = ?");
        }
        if filter.after.is_some() && !filter.newest_first {
            next(&mut sql, " AND (j.created_block > ?");
            next(&mut sql, " OR (j.created_block = ?");
            next(&mut sql, " AND j.created_index > ?))");
        }
        let order = if filter.newest_first { "j.created_block DESC, j.created_index DESC" } else { "j.created_block, j.created_index" };
        sql.push_str(&format!(" ORDER BY {order} LIMIT {}", filter.limit));
        let mut q = sqlx::query(&sql);
        if let Some(s) = &filter.state {
            q = q.bind(s.clone());
        }
        if let Some(r) = filter.renter {
            q = q.bind(hex0x(r.as_bytes()));
        }
        if let Some(p) = filter.provider {
            q = q.bind(hex0x(p.as_bytes()));
        }
        if let Some(a) = filter.after.filter(|_| !filter.newest_first) {
            q = q.bind(i64::from(a.block)).bind(i64::from(a.block)).bind(i64::from(a.index));
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let row: JobRow = from_json(&r.try_get::<String, _>("row_json")?)?;
            out.push(Sourced { source: source_of(row.created, &r)?, row });
        }
        Ok(out)
    }

    /// One job with its timeline (`None`: unknown).
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn job(&self, job_id: u64) -> Result<Option<Sourced<JobRow>>, Error> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT row_json FROM jobs WHERE job_id = $1").bind(job_id as i64).fetch_optional(&self.pool).await?;
        let Some(json) = json else { return Ok(None) };
        let row: JobRow = from_json(&json)?;
        Ok(Some(Sourced { source: self.source(row.created).await?, row }))
    }

    /// Offers (active only unless `all`), optionally of one GPU class.
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn offers(&self, gpu_class: Option<u8>, all: bool) -> Result<Vec<Sourced<OfferRow>>, Error> {
        let rows = sqlx::query(
            "SELECT o.row_json, o.gpu_class, o.active, e.block_hash FROM offers o JOIN events e ON e.block_number = o.listed_block AND e.event_index = o.listed_index ORDER BY o.offer_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let class: i64 = r.try_get("gpu_class")?;
            let active: i64 = r.try_get("active")?;
            if gpu_class.is_some_and(|c| i64::from(c) != class) || (!all && active == 0) {
                continue;
            }
            let row: OfferRow = from_json(&r.try_get::<String, _>("row_json")?)?;
            out.push(Sourced { source: source_of(row.listed, &r)?, row });
        }
        Ok(out)
    }

    /// Every account the events credit or mention as provider or verifier (renters too).
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn accounts(&self) -> Result<Vec<AccountRow>, Error> {
        let rows = sqlx::query("SELECT row_json FROM accounts ORDER BY account").fetch_all(&self.pool).await?;
        rows.iter().map(|r| from_json(&r.try_get::<String, _>("row_json")?)).collect()
    }

    /// The accounts that registered as providers, in leaderboard order: reputation score
    /// first, then fewer slashes, then address.
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn providers(&self) -> Result<Vec<AccountRow>, Error> {
        let rows = sqlx::query("SELECT row_json FROM accounts WHERE registered = 1 ORDER BY account").fetch_all(&self.pool).await?;
        let mut out: Vec<AccountRow> = rows.iter().map(|r| from_json(&r.try_get::<String, _>("row_json")?)).collect::<Result<_, _>>()?;
        out.sort_by(|a, b| b.reputation.score().cmp(&a.reputation.score()).then(a.slashes.cmp(&b.slashes)).then(a.account.cmp(&b.account)));
        Ok(out)
    }

    /// Price-index points, oldest first, optionally of one GPU class; with `newest`, only
    /// the newest that many.
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn prices(&self, gpu_class: Option<u8>, newest: Option<u32>) -> Result<Vec<Sourced<PricePoint>>, Error> {
        let class = if gpu_class.is_some() { "WHERE p.gpu_class = $1" } else { "" };
        let limit = newest.map(|n| format!("LIMIT {n}")).unwrap_or_default();
        let sql = format!(
            "SELECT p.block_number, p.event_index, p.gpu_class, p.price, p.value, p.price_index, e.block_hash FROM prices p
             JOIN events e ON e.block_number = p.block_number AND e.event_index = p.event_index {class}
             ORDER BY p.block_number DESC, p.event_index DESC {limit}"
        );
        let mut q = sqlx::query(&sql);
        if let Some(c) = gpu_class {
            q = q.bind(i64::from(c));
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter().rev() {
            let amount = |col: &str| -> Result<u128, Error> {
                let s: String = r.try_get(col)?;
                s.parse().map_err(|_| Error::Corrupt(format!("{col} = {s}")))
            };
            let at = At { block: u32_of(r, "block_number")?, index: u32_of(r, "event_index")? };
            let row = PricePoint { at, gpu_class: u32_of(r, "gpu_class")? as u8, price: amount("price")?, value: amount("value")?, index: amount("price_index")? };
            out.push(Sourced { source: source_of(at, r)?, row });
        }
        Ok(out)
    }

    /// Market-wide counts, as of the last batch.
    ///
    /// # Errors
    /// [`Error::Db`], [`Error::Corrupt`].
    pub async fn stats(&self) -> Result<Stats, Error> {
        let json: Option<String> = sqlx::query_scalar("SELECT stats_json FROM totals WHERE id = 1").fetch_optional(&self.pool).await?;
        json.map_or(Ok(Stats::default()), |j| from_json(&j))
    }
}

/// The market-wide counts of everything folded.
pub fn stats_of(fold: &Fold) -> Stats {
    let mut s = Stats { events: fold.events, undecodable_events: fold.undecodable as u64, jobs: fold.jobs.len() as u64, ..Default::default() };
    let mut volume = 0u128;
    let mut by_state: std::collections::BTreeMap<Option<marketplace::JobState>, u64> = Default::default();
    for job in fold.jobs.values() {
        *by_state.entry(job.state).or_default() += 1;
        if job.state == Some(marketplace::JobState::Settled) && job.sampled.unwrap_or(0) > 0 {
            s.jobs_checked += 1;
        }
        volume = volume.saturating_add(job.provider_payout).saturating_add(job.verifier_fees);
        s.slashes += job.slashes.len() as u64;
    }
    s.volume = volume.to_string();
    s.jobs_by_state = by_state.into_iter().map(|(st, n)| (st.map_or_else(|| "Unknown".into(), |st| format!("{st:?}")), n)).collect();
    s.providers_with_stake = fold.accounts.values().filter(|a| a.registered && a.stake > 0).count() as u64;
    s.offers_active = fold.offers.values().filter(|o| o.active).count() as u64;
    s
}

/// The source of a record from its row's `block_hash` column.
fn source_of(at: At, r: &AnyRow) -> Result<Source, Error> {
    Ok(Source { block: at.block, event_index: at.index, block_hash: parse_h256(&r.try_get::<String, _>("block_hash")?)? })
}

fn raw_of(r: &AnyRow) -> Result<RawEvent, Error> {
    let topics: String = r.try_get("topics")?;
    let data: String = r.try_get("data")?;
    let ext: Option<i64> = r.try_get("extrinsic_index")?;
    Ok(RawEvent {
        block_number: u32_of(r, "block_number")?,
        event_index: u32_of(r, "event_index")?,
        block_hash: parse_h256(&r.try_get::<String, _>("block_hash")?)?,
        extrinsic_index: ext.map(|x| x as u32),
        topics: topics.split(',').filter(|t| !t.is_empty()).map(parse_h256).collect::<Result<_, _>>()?,
        data: hex::decode(data.trim_start_matches("0x")).map_err(|_| Error::Corrupt("bad event data".into()))?,
    })
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, Error> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("derived row: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Corrupt(format!("derived row: {e}")))
}

/// The event's kind as stored (e.g. `Job.Settled`).
fn kind_of(e: &Event) -> String {
    let (family, kind) = match e {
        Event::Job(e) => ("Job", format!("{:?}", e.kind)),
        Event::Verifier(e) => ("Verifier", format!("{:?}", e.kind)),
        Event::Account(e) => ("Account", format!("{:?}", e.kind)),
        Event::Market(e) => ("Market", format!("{:?}", e.kind)),
    };
    let name = kind.split([' ', '{', '(']).next().unwrap_or_default().to_string();
    format!("{family}.{name}")
}

async fn write_rows(tx: &mut sqlx::Transaction<'_, sqlx::Any>, fold: &Fold, touched: &Touched) -> Result<(), Error> {
    for id in &touched.jobs {
        let Some(j) = fold.jobs.get(id) else { continue };
        sqlx::query(
            "INSERT INTO jobs (job_id, state, renter, provider, tasks, escrow, created_block, created_index, ended_block, ended_index, row_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, renter = excluded.renter, provider = excluded.provider,
               tasks = excluded.tasks, escrow = excluded.escrow, created_block = excluded.created_block, created_index = excluded.created_index,
               ended_block = excluded.ended_block, ended_index = excluded.ended_index, row_json = excluded.row_json",
        )
        .bind(*id as i64)
        .bind(j.state.map(|s| format!("{s:?}")))
        .bind(hex0x(j.renter.as_bytes()))
        .bind(j.provider.map(|p| hex0x(p.as_bytes())))
        .bind(i64::from(j.tasks))
        .bind(j.escrow.to_string())
        .bind(i64::from(j.created.block))
        .bind(i64::from(j.created.index))
        .bind(j.ended.map(|a| i64::from(a.block)))
        .bind(j.ended.map(|a| i64::from(a.index)))
        .bind(to_json(j)?)
        .execute(&mut **tx)
        .await?;
    }
    for a in &touched.accounts {
        let Some(r) = fold.accounts.get(a) else { continue };
        sqlx::query(
            "INSERT INTO accounts (account, stake, slashed, slashes, provider_payouts, verifier_fees, jobs_settled, row_json, registered)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (account) DO UPDATE SET stake = excluded.stake, slashed = excluded.slashed, slashes = excluded.slashes,
               provider_payouts = excluded.provider_payouts, verifier_fees = excluded.verifier_fees,
               jobs_settled = excluded.jobs_settled, row_json = excluded.row_json, registered = excluded.registered",
        )
        .bind(hex0x(a.as_bytes()))
        .bind(r.stake.to_string())
        .bind(r.slashed.to_string())
        .bind(i64::from(r.slashes))
        .bind(r.provider_payouts.to_string())
        .bind(r.verifier_fees.to_string())
        .bind(i64::from(r.jobs_settled))
        .bind(to_json(r)?)
        .bind(i64::from(r.registered))
        .execute(&mut **tx)
        .await?;
    }
    for id in &touched.offers {
        let Some(o) = fold.offers.get(id) else { continue };
        sqlx::query(
            "INSERT INTO offers (offer_id, provider, gpu_class, price_per_unit, benchmark_score, active, listed_block, listed_index, row_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (offer_id) DO UPDATE SET provider = excluded.provider, gpu_class = excluded.gpu_class,
               price_per_unit = excluded.price_per_unit, benchmark_score = excluded.benchmark_score, active = excluded.active,
               listed_block = excluded.listed_block, listed_index = excluded.listed_index, row_json = excluded.row_json",
        )
        .bind(*id as i64)
        .bind(hex0x(o.provider.as_bytes()))
        .bind(i64::from(o.gpu_class))
        .bind(o.price_per_unit.to_string())
        .bind(i64::from(o.benchmark_score))
        .bind(i64::from(o.active))
        .bind(i64::from(o.listed.block))
        .bind(i64::from(o.listed.index))
        .bind(to_json(o)?)
        .execute(&mut **tx)
        .await?;
    }
    for p in fold.prices.iter().skip(touched.prices_from) {
        sqlx::query("INSERT INTO prices (block_number, event_index, gpu_class, price, value, price_index) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(i64::from(p.at.block))
            .bind(i64::from(p.at.index))
            .bind(i64::from(p.gpu_class))
            .bind(p.price.to_string())
            .bind(p.value.to_string())
            .bind(p.index.to_string())
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("INSERT INTO totals (id, stats_json) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET stats_json = excluded.stats_json")
        .bind(to_json(&stats_of(fold))?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

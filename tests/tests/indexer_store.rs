//! The indexer's store and API on SQLite and on a real PostgreSQL 15 server (started and
//! stopped by the test): batches land whole with their cursor, an event stored twice is
//! refused without a partial write, the derived tables equal the fold and survive a
//! rebuild and a reopen, the API paginates without loss or doubles and answers bad
//! parameters with a 400 and a message, and provider-written text reaches the dashboard
//! escaped. No chain needed: the events are encoded here as the contract emits them.

use capacloud_client::marketplace::{
    AccountEvent, AccountEventKind, Event, JobEvent, JobEventKind, JobInput, MarketEvent, MarketEventKind,
    OfferInfo, OfferInput, RefundReason, SlashReason, UNITS_PER_WND,
};
use capacloud_client::summary::Fold;
use capacloud_indexer::api::{self, AppState};
use capacloud_indexer::ingest::{apply_batch, Progress};
use capacloud_indexer::store::{Cursor, JobFilter, RawEvent, Store};
use codec::Encode;
use std::sync::Arc;
use subxt::utils::{H160, H256};

const RENTER: H160 = H160::repeat_byte(0x11);
const PROVIDER: H160 = H160::repeat_byte(0x22);
const CONTRACT: H160 = H160::repeat_byte(0xcc);
const JOBS: u64 = 60;
/// Above u64::MAX, as real stakes are (400 WND = 4·10^20 units).
const BIG: u128 = 400 * UNITS_PER_WND;

fn raw(block: u32, index: u32, e: &Event) -> RawEvent {
    capacloud_tests::raw_event(block, index, H256::repeat_byte(block as u8), e)
}

fn job(job_id: u64, provider: H160, kind: JobEventKind) -> Event {
    Event::Job(JobEvent { job_id, renter: RENTER, provider, kind })
}

fn created(job_id: u64) -> Event {
    let input = JobInput {
        spec_hash: [1; 32],
        manifest_hash: [0; 32],
        uri: b"http://spec".to_vec(),
        tasks: 1,
        units_per_task: 10,
        max_price_per_unit: 5,
        requirements: Default::default(),
        compute_blocks: 10,
        check_rate_bps: 1_000,
        pay_if_unverified: false,
        offer_id: Some(0),
    };
    job(job_id, PROVIDER, JobEventKind::Created { input, escrow: 150, phase_deadline: 99 })
}

/// A small market: a provider stakes and lists (its GPU name carries markup), job 0
/// settles, job 1 ends with the provider slashed, the offer is removed, one event does not
/// decode, and jobs 2.. are created for pagination. In blocks, each a list of events.
fn market() -> Vec<(u32, Vec<RawEvent>)> {
    let info = OfferInfo { gpu_vendor: "<b>Evil</b>".into(), gpu_model: "lavapipe".into(), backend: "Vulkan".into(), endpoint: "http://x".into() };
    let offer = OfferInput { price_per_unit: 5, max_units: 1_000, vram_mib: 1, benchmark_score: 3, info: info.encode() };
    let account = |kind| Event::Account(AccountEvent { account: PROVIDER, kind });
    let mut blocks: Vec<(u32, Vec<Event>)> = vec![
        (2, vec![account(AccountEventKind::Staked { added: BIG, stake: BIG, slot: 1 }), account(AccountEventKind::OfferListed { offer_id: 0, gpu_class: 1, input: offer, updated: false })]),
        (3, vec![created(0), job(0, PROVIDER, JobEventKind::Assigned { offer_id: 0, price_per_unit: 5, lock: 20, gpu_class: 1, commit_deadline: 9 })]),
        (
            5,
            vec![
                job(0, PROVIDER, JobEventKind::Settled { batch_root: [1; 32], provider_payout: 49, verifier_fees: 0, protocol_fee: 1, renter_refund: 100, tasks: 1, sampled: 0 }),
                Event::Market(MarketEvent { kind: MarketEventKind::PriceIndexUpdated { gpu_class: 1, price: 5, value: 50, index: 5 } }),
            ],
        ),
        (
            6,
            vec![
                created(1),
                job(1, PROVIDER, JobEventKind::ProviderSlashed { amount: 10, to_verifiers: 0, to_treasury: 10, reason: SlashReason::ProviderSilent }),
                job(1, PROVIDER, JobEventKind::Refunded { amount: 150, reason: RefundReason::ProviderSlashed }),
            ],
        ),
        (7, vec![account(AccountEventKind::OfferRemoved { offer_id: 0 })]),
    ];
    for id in 2..JOBS {
        blocks.push((8 + id as u32 / 3, vec![created(id)]));
    }
    // Merge same-block entries and number the events within each block.
    let mut out: Vec<(u32, Vec<RawEvent>)> = Vec::new();
    for (b, evs) in blocks {
        if out.last().is_none_or(|(lb, _)| *lb != b) {
            out.push((b, Vec::new()));
        }
        let list = &mut out.last_mut().unwrap().1;
        for e in evs {
            let i = list.len() as u32;
            list.push(raw(b, i, &e));
        }
    }
    // An event this client does not know (kept raw, counted).
    let list = &mut out.iter_mut().find(|(b, _)| *b == 7).unwrap().1;
    list.push(RawEvent { block_number: 7, event_index: 1, block_hash: H256::repeat_byte(7), extrinsic_index: None, topics: vec![H256::repeat_byte(0xee)], data: vec![1, 2, 3] });
    out
}

fn cursor_at(block: u32) -> Cursor {
    Cursor { genesis_hash: H256::repeat_byte(0x9e), contract: CONTRACT, first_block: 0, block_number: block, block_hash: H256::repeat_byte(block as u8) }
}

async fn commit(store: &Store, fold: &mut Fold, blocks: &[(u32, Vec<RawEvent>)]) {
    let events: Vec<RawEvent> = blocks.iter().flat_map(|(_, e)| e.clone()).collect();
    let (touched, _) = apply_batch(fold, &events);
    store.commit_batch(&events, fold, &touched, &cursor_at(blocks.last().unwrap().0)).await.unwrap();
}

async fn get(base: &str, path: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

async fn exercise(url: &str) {
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.cursor().await.unwrap(), None);
    let blocks = market();
    let split = blocks.iter().position(|(b, _)| *b == 7).unwrap();
    let mut fold = Fold::default();
    commit(&store, &mut fold, &blocks[..split]).await;
    assert_eq!(store.cursor().await.unwrap(), Some(cursor_at(6)));

    // The same batch again: refused whole, the cursor and the events unchanged.
    let again: Vec<RawEvent> = blocks[..split].iter().flat_map(|(_, e)| e.clone()).collect();
    let mut scratch = Fold::default();
    let (touched, _) = apply_batch(&mut scratch, &again);
    assert!(store.commit_batch(&again, &scratch, &touched, &cursor_at(99)).await.is_err(), "an event stored twice must be refused");
    assert_eq!(store.cursor().await.unwrap(), Some(cursor_at(6)));
    assert_eq!(store.raw_events().await.unwrap().len(), again.len());

    commit(&store, &mut fold, &blocks[split..]).await;
    let last = blocks.last().unwrap().0;
    assert_eq!(store.cursor().await.unwrap(), Some(cursor_at(last)));
    assert_eq!(fold.undecodable, 1);

    // Derived tables equal the fold, before and after a rebuild and after a reopen.
    let all = JobFilter { limit: 500, ..Default::default() };
    let check = |jobs: Vec<capacloud_indexer::store::Sourced<capacloud_client::summary::JobRow>>, fold: &Fold| {
        let rows: Vec<_> = jobs.into_iter().map(|s| s.row).collect();
        assert_eq!(rows, fold.jobs.values().cloned().collect::<Vec<_>>());
    };
    check(store.jobs(&all).await.unwrap(), &fold);
    assert_eq!(store.accounts().await.unwrap(), fold.accounts.values().cloned().collect::<Vec<_>>());
    assert_eq!(store.offers(None, true).await.unwrap().into_iter().map(|o| o.row).collect::<Vec<_>>(), fold.offers.values().cloned().collect::<Vec<_>>());
    assert!(store.offers(None, false).await.unwrap().is_empty(), "the removed offer is not active");
    let rebuilt = store.rebuild().await.unwrap();
    check(store.jobs(&all).await.unwrap(), &rebuilt);
    assert_eq!(rebuilt.jobs, fold.jobs);
    assert_eq!(rebuilt.prices, fold.prices);
    drop(store);
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.fold().await.unwrap().jobs, fold.jobs, "a reopened store folds to the same rows");
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.jobs, stats.slashes, stats.undecodable_events, stats.jobs_by_state["Settled"], stats.jobs_by_state["Slashed"]), (JOBS, 1, 1, 1, 1));
    assert_eq!(stats.volume, "49");

    // The API over it.
    let progress = Arc::new(Progress::default());
    progress.indexed_block.set(i64::from(last));
    progress.head_block.set(i64::from(last));
    let state = AppState { store: store.clone(), progress: progress.clone(), registry: Arc::new(progress.registry()), contract: CONTRACT };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    // Cursor pagination: every job once, in order.
    let mut seen = Vec::new();
    let mut path = "/api/jobs?limit=7".to_string();
    loop {
        let (code, page) = get(&base, &path).await;
        assert_eq!(code, 200, "{page}");
        for j in page["jobs"].as_array().unwrap() {
            seen.push(j["job_id"].as_u64().unwrap());
            assert!(j["source"]["block_hash"].as_str().unwrap().starts_with("0x"));
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/jobs?limit=7&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..JOBS).collect::<Vec<_>>());
    let (_, slashed) = get(&base, "/api/jobs?state=Slashed").await;
    assert_eq!(slashed["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(slashed["jobs"][0]["job_id"], 1);
    let (_, by_provider) = get(&base, &format!("/api/jobs?provider={PROVIDER:?}&limit=500")).await;
    assert_eq!(by_provider["jobs"].as_array().unwrap().len() as u64, JOBS);
    let (code, one) = get(&base, "/api/jobs/0").await;
    assert_eq!(code, 200);
    assert_eq!(one["state"], "Settled");
    assert_eq!(one["timeline"].as_array().unwrap().len(), 3);
    let (code, price) = get(&base, "/api/events/5/1").await;
    assert_eq!(code, 200);
    assert_eq!(price["decoded"]["event"], "market", "{price}");
    let (_, offers) = get(&base, "/api/offers?all=true&sort=price_per_score").await;
    assert_eq!(offers["offers"][0]["offer_id"], 0);
    let providers = reqwest::get(format!("{base}/api/providers")).await.unwrap().text().await.unwrap();
    assert!(providers.contains(&format!("\"stake\":{}", BIG - 10)), "amounts above u64 are exact: {providers}");
    let (_, points) = get(&base, "/api/prices?gpu_class=1").await;
    assert_eq!(points["points"].as_array().unwrap().len(), 1);
    let (_, hourly) = get(&base, "/api/prices?bucket_blocks=600").await;
    assert_eq!(hourly["rollups"][0]["open"], 5);
    assert_eq!(hourly["rollups"][0]["points"], 1);

    // Bad input: a 400 (404 for unknown records) with a message, never a 500.
    for (path, code, says) in [
        ("/api/jobs?state=Bogus", 400, "state must be"),
        ("/api/jobs?limit=0", 400, "limit must be"),
        ("/api/jobs?limit=501", 400, "limit must be"),
        ("/api/jobs?renter=0x12", 400, "renter must be"),
        ("/api/jobs?after=12", 400, "after must be"),
        ("/api/jobs?colour=red", 400, "unknown field"),
        ("/api/jobs?limit=-1", 400, "limit"),
        ("/api/jobs/abc", 400, "job id"),
        ("/api/jobs/999", 404, "no job 999"),
        ("/api/offers?sort=cheapest", 400, "sort must be"),
        ("/api/offers?gpu_class=300", 400, "gpu_class"),
        ("/api/prices?bucket_blocks=0", 400, "bucket_blocks"),
        ("/api/prices?limit=0", 400, "limit must be"),
        ("/api/events/5/x", 400, "integers"),
        ("/api/events/5/9", 404, "no contract event"),
    ] {
        let (got, body) = get(&base, path).await;
        assert_eq!(got, code, "{path}: {body}");
        assert!(body["error"].as_str().unwrap_or_default().contains(says), "{path}: {body}");
    }

    assert_eq!(get(&base, "/health").await.0, 200);
    assert_eq!(get(&base, "/ready").await.0, 200);
    progress.head_block.set(i64::from(last) + 10);
    let (code, st) = get(&base, "/ready").await;
    assert_eq!((code, st["lag"].as_i64()), (503, Some(10)), "lagging is not ready");
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!("capacloud_indexer_indexed_block {last}")), "{metrics}");
    let (_, doc) = get(&base, "/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/jobs"]["get"]["parameters"].as_array().unwrap().len() >= 5);
    let page = reqwest::get(format!("{base}/")).await.unwrap().text().await.unwrap();
    assert!(!page.contains("<b>Evil</b>"), "provider text never reaches the page as markup");
    assert!(!page.contains("data-offer-id=\"0\""), "a removed offer is not listed");
    assert_eq!(page.matches("data-job-id=").count(), 50, "the newest 50 jobs");
    assert!(page.contains(&format!("data-job-id=\"{}\"", JOBS - 1)) && !page.contains("data-job-id=\"1\""));
    assert!(page.contains("data-slashes=\"1\" class=\"slashed\""), "the slashed provider is marked");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn store_and_api_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&format!("sqlite://{}", dir.path().join("index.sqlite").display())).await;
}

#[tokio::test]
async fn store_and_api_on_postgres() {
    let Some(pg) = capacloud_tests::PgServer::start("store_and_api_on_postgres") else { return };
    exercise(&pg.database("store_test")).await;
}

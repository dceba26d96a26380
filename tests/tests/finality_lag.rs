//! The market on a chain whose finality lags its head, as on Polkadot Hub: 6 s blocks with
//! the finalized head [`LAG`] blocks behind the best one (the node's manual seal, driven by
//! the test). Two provider workers and a renter using `capacloud job submit`:
//!
//! - A checked job settles. Every step is taken on the best block — the provider accepts
//!   fewer than [`LAG`] blocks after the job was created, where waiting for finality would
//!   take more — while every secret waits until the commitment protecting it is final: the
//!   renter's seed is revealed at least [`LAG`] blocks after the provider's commitment, the
//!   provider's batch root at least [`LAG`] blocks after the verifier's commitment. The CLI
//!   returns once the settlement is final, with the output the renter paid for.
//! - When the market's reveal window cannot hold the lag, the CLI refuses the job before
//!   signing (exit 2, nothing spent), and a job created anyway is taken by no worker: the
//!   renter gets its escrow back exactly.
//!
//! Payouts are checked against the events to the unit and the money invariant at the end.

use capacloud_client::blob::{self, LocalStore};
use capacloud_client::chain::ContractEvent;
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, Journal, Terms};
use capacloud_tests::{contract_artifacts, deploy_fast, dev_chains, endpoint, gpu_or_skip, two_providers, TestNode, TwoProviders};
use std::time::Duration;

const PRICE: Amount = UNITS_PER_WND / 1_000;
/// Blocks the finalized head stays behind the best block.
const LAG: u32 = 4;
/// Polkadot Hub's block time, for the jobs; setup runs on quick blocks.
const HUB_BLOCK: Duration = Duration::from_secs(6);
const QUICK_BLOCK: Duration = Duration::from_millis(300);

/// Runs `capacloud --json job … submit …` as //Dave; returns its exit code and the JSON it
/// printed.
async fn submit(url: &str, contract: &str, blobs: &str, home: &std::path::Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = tokio::process::Command::new(capacloud_tests::built_binary("capacloud"))
        .env("CAPACLOUD_HOME", home)
        .args(["--url", url, "--suri", "//Dave", "--json", "job", "--contract", contract, "submit", "--blobs", blobs])
        .args(["--max-price", &PRICE.to_string(), "--check-rate-bps", "10000", "--compute-blocks", "20", "--timeout", "900"])
        .args(args)
        .output()
        .await
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("capacloud printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

/// The block of the first event of job `id` that `pick` selects.
fn block_of(events: &[(u32, ContractEvent)], id: u64, what: &str, pick: impl Fn(&Event) -> bool) -> u32 {
    events
        .iter()
        .find(|(_, e)| e.decoded.as_ref().is_some_and(|d| job_of(d) == Some(id) && pick(d)))
        .map(|(b, _)| *b)
        .unwrap_or_else(|| panic!("job {id}: no {what} event"))
}

fn kind(e: &Event) -> Option<&JobEventKind> {
    match e {
        Event::Job(j) => Some(&j.kind),
        _ => None,
    }
}

fn job_of(e: &Event) -> Option<u64> {
    match e {
        Event::Job(j) => Some(j.job_id),
        Event::Verifier(v) => Some(v.job_id),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_market_acts_on_the_best_block_and_reveals_only_behind_finality() {
    let test = "the_market_acts_on_the_best_block_and_reveals_only_behind_finality";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start_manual(test) else { return };
    let producer = node.produce_blocks(QUICK_BLOCK, LAG);
    let url = node.url();
    let [alice, bob, charlie, dave, _, _] = &dev_chains(&url).await;
    let m = deploy_fast(alice, &art.code, 6, 10).await;

    let TwoProviders { workers, metrics, offers, .. } = &two_providers(&m, &url, gpu, PRICE, false).await;
    let renter_dir = tempfile::tempdir().unwrap();
    let renter_server = endpoint(LocalStore::new(renter_dir.path().join("blobs")).unwrap(), None).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let contract = format!("{:?}", m.address());
    let out_file = renter_dir.path().join("mandelbrot.bin");
    let md = m.with(dave);
    let first_block = dave.best_number().await.unwrap();

    let renter = async {
        // 1. A checked job on 6 s blocks.
        producer.set_interval(HUB_BLOCK);
        let (code, settled) =
            submit(&url, &contract, &renter_server.url, renter_dir.path(), &["--workload", "mandelbrot", "--size", "64", "--offer", &offers[0].to_string(), "--out", out_file.to_str().unwrap()]).await;
        let (fin, fin_number) = md.finalized().await.unwrap();
        let id = settled["job"]["job_id"].as_u64().unwrap();
        let final_state = fin.job_core(id).await.unwrap().unwrap().state;
        let lag_seen = dave.finality_lag().await.unwrap();

        // 2. The market's reveal window shrinks below what the lag needs.
        producer.set_interval(QUICK_BLOCK);
        let now = alice.best_number().await.unwrap();
        let params = m.params(now).await.unwrap();
        m.set_params(Params { reveal_window: LAG + 2, ..params }).await.unwrap();
        while m.params(dave.best_number().await.unwrap()).await.unwrap().reveal_window != LAG + 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (balance, jobs) = (dave.free_balance().await.unwrap(), md.job_count().await.unwrap());
        let (refused_code, refused) = submit(&url, &contract, &renter_server.url, renter_dir.path(), &["--workload", "mandelbrot", "--size", "64", "--offer", &offers[0].to_string()]).await;
        let unchanged = (dave.free_balance().await.unwrap(), md.job_count().await.unwrap()) == (balance, jobs);

        // 3. The same job created anyway, bypassing the CLI's check: no worker takes it.
        let store = blob::open(&renter_server.url).unwrap();
        let bundle = renter::library_job("mandelbrot", 64, 1, 1).unwrap();
        let terms = Terms { offer_id: Some(offers[0]), max_price_per_unit: PRICE, check_rate_bps: 10_000, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };
        let input = renter::stage(store.as_ref(), &bundle, &terms).await.unwrap();
        let seed = renter::random_seed().unwrap();
        let journal = Journal::new(renter_dir.path().join("journal"));
        let unsafe_id = renter::create(&md, &journal, &input, &seed, dave.best_number().await.unwrap()).await.unwrap();
        let unsafe_job = renter::follow(&md, unsafe_id, &seed, Duration::from_secs(600), |_| {}).await.unwrap();
        let _ = stop_tx.send(true);
        (code, settled, final_state, fin_number, lag_seen, refused_code, refused, unchanged, unsafe_id, unsafe_job)
    };
    let (_, _, (code, settled, final_state, fin_number, lag_seen, refused_code, refused, unchanged, unsafe_id, unsafe_job)) =
        tokio::join!(workers[0].run(stopped(stop_rx.clone())), workers[1].run(stopped(stop_rx.clone())), renter);
    drop(producer);

    // The checked job settled, verified by Charlie, and the CLI saw it final.
    assert_eq!(code, Some(0), "{settled}");
    let id = settled["job"]["job_id"].as_u64().unwrap();
    assert_eq!(settled["job"]["state"], "Settled", "{settled}");
    assert_eq!(settled["job"]["verifiers"][0], format!("{:?}", charlie.address()), "{settled}");
    assert_eq!(final_state, JobState::Settled, "the CLI returned only once the settlement was final");
    assert!(lag_seen >= LAG, "the chain's finality really lagged, and the lag read never falls short ({lag_seen} blocks)");
    let saved = std::fs::read(&out_file).unwrap();
    assert_eq!(Some(saved.len() as u64), settled["output_bytes"].as_u64(), "the renter saved the output it paid for");

    // When each step landed.
    let head = dave.best_number().await.unwrap();
    let events = dave.contract_events_in(m.address(), first_block, head).await.unwrap();
    let created = block_of(&events, id, "Created", |e| matches!(kind(e), Some(JobEventKind::Created { .. })));
    let assigned = block_of(&events, id, "Assigned", |e| matches!(kind(e), Some(JobEventKind::Assigned { .. })));
    let committed = block_of(&events, id, "Committed", |e| matches!(kind(e), Some(JobEventKind::Committed { .. })));
    let seed_revealed = block_of(&events, id, "SeedRevealed", |e| matches!(kind(e), Some(JobEventKind::SeedRevealed { seed: Some(_), .. })));
    let verifier_committed = block_of(&events, id, "verifier Committed", |e| matches!(e, Event::Verifier(v) if matches!(v.kind, VerifierEventKind::Committed { .. })));
    let revealed = block_of(&events, id, "Revealed", |e| matches!(kind(e), Some(JobEventKind::Revealed { .. })));
    let settled_at = block_of(&events, id, "Settled", |e| matches!(kind(e), Some(JobEventKind::Settled { .. })));
    println!("job {id}: created #{created}, assigned #{assigned}, committed #{committed}, seed revealed #{seed_revealed}, verifier committed #{verifier_committed}, revealed #{revealed}, settled #{settled_at}, finalized head #{fin_number} when the CLI returned");
    assert!(assigned - created < LAG, "the provider accepted on the best block ({created} → {assigned}), not behind finality");
    assert!(seed_revealed >= committed + LAG, "the seed waited for the provider's commitment to be final ({committed} → {seed_revealed})");
    assert!(revealed >= verifier_committed + LAG, "the batch root waited for the verifier's commitment to be final ({verifier_committed} → {revealed})");
    assert!(fin_number >= settled_at, "final when the CLI returned");

    // Payouts to the unit: Bob's withdrawable is his payout, Charlie's his fee.
    let Some(JobEventKind::Settled { provider_payout, verifier_fees, .. }) = events.iter().find_map(|(_, e)| match &e.decoded {
        Some(Event::Job(j)) if j.job_id == id && matches!(j.kind, JobEventKind::Settled { .. }) => Some(j.kind.clone()),
        _ => None,
    }) else {
        unreachable!("found above")
    };
    assert!(provider_payout > 0 && verifier_fees > 0);
    assert_eq!(md.withdrawable_of(bob.address()).await.unwrap(), provider_payout);
    assert_eq!(md.withdrawable_of(charlie.address()).await.unwrap(), verifier_fees);

    // A window too short for the lag: refused before signing, then not taken by anyone.
    assert_eq!(refused_code, Some(2), "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("finality lag"), "{refused}");
    assert!(unchanged, "nothing was signed for the refused job");
    assert_eq!(unsafe_job.state, JobState::Refunded, "no worker took a job it could not reveal in time");
    assert!(metrics[0].failure_count("window_below_lag") > 0, "Bob declined the hire for its window");
    let events = dave.contract_events_in(m.address(), settled_at, dave.best_number().await.unwrap()).await.unwrap();
    let escrowed = events.iter().find_map(|(_, e)| match &e.decoded {
        Some(Event::Job(j)) if j.job_id == unsafe_id => match j.kind {
            JobEventKind::Created { escrow, .. } => Some(escrow),
            _ => None,
        },
        _ => None,
    });
    let refunded: Amount = events
        .iter()
        .filter_map(|(_, e)| match &e.decoded {
            Some(Event::Job(j)) if j.job_id == unsafe_id => match j.kind {
                JobEventKind::Refunded { amount, .. } => Some(amount),
                _ => None,
            },
            _ => None,
        })
        .sum();
    assert_eq!(Some(refunded), escrowed, "the renter got its escrow back exactly");
    assert!(!events.iter().any(|(_, e)| matches!(&e.decoded, Some(Event::Job(j)) if j.job_id == unsafe_id && matches!(j.kind, JobEventKind::ProviderSlashed { .. }))));

    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

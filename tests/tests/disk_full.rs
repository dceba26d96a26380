//! A provider whose disk is nearly full, on a real node: `capacloud-worker` (the binary, its
//! defaults) keeps its data on an 8 MiB filesystem. A direct hire whose output (a 12 MB
//! Mandelbrot image, no inputs: everything it needs to fetch fits) would not fit is declined
//! before anything is signed — accepted, it would have failed to store its output and cost
//! the provider its commitment — and refunded to the renter exactly; a small hire posted
//! after it is accepted and settles. Nobody is slashed, the provider's stake and reputation
//! are untouched, its metrics count `disk_full`, and the money invariant holds.

use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, Terms};
use capacloud_client::Marketplace;
use capacloud_tests::procs::stop_worker;
use capacloud_tests::{assert_provider_unharmed, binary_worker_market, job_events, renter_side, SmallDisk};
use std::time::Duration;

const PRICE: Amount = UNITS_PER_WND / 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_declines_a_job_its_disk_cannot_hold() {
    let test = "a_worker_declines_a_job_its_disk_cannot_hold";
    let Some(disk) = SmallDisk::mount(test, 8) else { return };
    // Bob's data directory is the small disk.
    let Some(market) = binary_worker_market(test, PRICE, Some(disk.path())).await else { return };
    let [alice, bob, _, dave, _, _] = &market.chains;
    let m = Marketplace::unchecked(alice, market.market);
    let md = m.with(dave);
    let worker = market.worker;
    let stake_before = m.provider(bob.address()).await.unwrap().unwrap().stake;

    let renter = renter_side().await;
    let terms = Terms { offer_id: Some(worker.offer_id), max_price_per_unit: PRICE, check_rate_bps: 0, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };
    let big = renter::library_job("mandelbrot", 2048, 1, 1).unwrap();
    let output_bytes: u64 = big.spec.bindings.iter().map(|b| if let capacloud_executor::spec::BindingKind::Output { len } = b.kind { len } else { 0 }).sum();
    assert!(output_bytes > 8 << 20, "the output ({output_bytes} bytes) is larger than the disk");
    let small = renter::library_job("matmul", 64, 1, 1).unwrap();
    let first_block = dave.best_number().await.unwrap();
    let mut jobs = Vec::new();
    for bundle in [&big, &small] {
        let input = renter::stage(renter.store.as_ref(), bundle, &terms).await.unwrap();
        let seed = renter::random_seed().unwrap();
        let id = renter::create(&md, &renter.journal, &input, &seed, dave.best_number().await.unwrap()).await.unwrap();
        jobs.push((id, seed));
    }
    let ended = futures::future::join_all(jobs.iter().map(|(id, seed)| renter::follow(&md, *id, seed, Duration::from_secs(600), |_| {}))).await;
    let metrics = reqwest::get(format!("{}/metrics", worker.endpoint)).await.unwrap().text().await.unwrap();
    stop_worker("bob", worker.child).unwrap();
    let [big_job, small_job] = [ended[0].as_ref().unwrap(), ended[1].as_ref().unwrap()];

    let events = dave.contract_events_in(m.address(), first_block, dave.best_number().await.unwrap()).await.unwrap();
    let of = |id: u64| -> Vec<JobEventKind> { job_events(&events, id).into_iter().map(|(_, k)| k).collect() };
    let (big_id, small_id) = (jobs[0].0, jobs[1].0);
    assert_eq!(big_job.state, JobState::Refunded, "the job the disk could not hold was refunded");
    assert!(!of(big_id).iter().any(|k| matches!(k, JobEventKind::Assigned { .. })), "and never accepted");
    let escrow = of(big_id).iter().find_map(|k| if let JobEventKind::Created { escrow, .. } = k { Some(*escrow) } else { None }).unwrap();
    let refunded: Amount = of(big_id).iter().filter_map(|k| if let JobEventKind::Refunded { amount, .. } = k { Some(*amount) } else { None }).sum();
    assert_eq!(refunded, escrow, "the renter got exactly its escrow back");
    assert_eq!(small_job.state, JobState::Settled, "the small job posted after it settled");
    let payout = of(small_id).iter().find_map(|k| if let JobEventKind::Settled { provider_payout, .. } = k { Some(*provider_payout) } else { None }).unwrap();
    assert_eq!(md.withdrawable_of(bob.address()).await.unwrap(), payout);
    assert_provider_unharmed(&m, &events, bob.address(), stake_before).await;
    assert!(
        metrics.lines().any(|l| l.starts_with("capacloud_worker_failures_total{") && l.contains("reason=\"disk_full\"")),
        "the refusal is counted as disk_full:\n{metrics}"
    );
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

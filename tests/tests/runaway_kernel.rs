//! A runaway kernel against `capacloud-worker` (the binary: kernels in the sandbox, here a
//! 10 s limit per kernel), on a real node, with a 40-block accept window so the trial ends
//! while the job is still open. The worker runs a kernel that could outlive its limit before
//! it signs anything (its *trial*): the runaway kernel fails its trial, is refused and never
//! accepted, and its renter gets back exactly its escrow. An honest job whose static bound
//! also calls for a trial (a Mandelbrot image), posted while the runaway's trial runs, does
//! not wait for it: its smaller bound preempts the runaway's trial (which starts again after
//! it), so it is tried first, accepted, committed with the trial's result (computed once, not
//! again after accepting) and settles with the CPU reference's root. Nobody is slashed, the
//! provider's stake and record are untouched, and the money invariant holds.

use capacloud_client::blob;
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, Terms};
use capacloud_client::Marketplace;
use capacloud_executor::workloads::{mandelbrot::Mandelbrot, Workload};
use capacloud_tests::procs::stop_worker;
use capacloud_tests::{assert_provider_unharmed, binary_worker_market_with, job_event_block, job_events, renter_side, runaway_job};
use std::time::Duration;

const PRICE: Amount = UNITS_PER_WND / 1_000;

/// `log` without ANSI colour sequences.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_kernel_is_refused_in_its_trial_before_anything_is_signed() {
    let test = "a_runaway_kernel_is_refused_in_its_trial_before_anything_is_signed";
    let Some(market) = binary_worker_market_with(test, PRICE, None, 40, &["--kernel-secs", "10"]).await else { return };
    let [alice, bob, _, dave, _, _] = &market.chains;
    let m = Marketplace::unchecked(alice, market.market);
    let md = m.with(dave);
    let worker = market.worker;
    let stake_before = m.provider(bob.address()).await.unwrap().unwrap().stake;

    let renter = renter_side().await;
    let terms = Terms { offer_id: Some(worker.offer_id), max_price_per_unit: PRICE, check_rate_bps: 0, compute_blocks: 20, requirements: Requirements::default(), pay_if_unverified: false };
    let image = Mandelbrot { width: 96, height: 64, max_iter: 128 };
    let prepared = image.prepare();
    let reference = image.cpu_reference(&prepared);
    let (spec, inputs) = prepared.to_job();
    let honest = renter::JobBundle { spec, tasks: vec![inputs], library: None };
    let mut bounds = Vec::new();
    for (name, bundle) in [("runaway", &runaway_job(7)), ("honest", &honest)] {
        let ops = capacloud_executor::exec::check_spec_bounded(&bundle.spec, &Default::default()).unwrap();
        assert!(ops > capacloud_worker::provider::TRUSTED_OPS, "{name}: its bound ({ops}) calls for a trial");
        bounds.push(ops);
    }
    assert!(bounds[1] < bounds[0], "the honest job's bound is the smaller: {bounds:?}");

    let log_path = market.dir.path().join("bob.log");
    let first_block = dave.best_number().await.unwrap();
    let mut jobs: Vec<(u64, Hash32)> = Vec::new();
    for bundle in [&runaway_job(7), &honest] {
        if let Some((runaway_id, _)) = jobs.first() {
            // The honest job is posted once the runaway's trial holds the long lane.
            let running = format!("job_id={runaway_id} ");
            let waited = std::time::Instant::now();
            while !plain(&std::fs::read_to_string(&log_path).unwrap_or_default()).lines().any(|l| l.contains("long trial running") && l.contains(&running)) {
                assert!(waited.elapsed() < Duration::from_secs(60), "the runaway job's trial never started");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let input = renter::stage(renter.store.as_ref(), bundle, &terms).await.unwrap();
        let seed = renter::random_seed().unwrap();
        let id = renter::create(&md, &renter.journal, &input, &seed, dave.best_number().await.unwrap()).await.unwrap();
        jobs.push((id, seed));
    }
    let ended = futures::future::join_all(jobs.iter().map(|(id, seed)| renter::follow(&md, *id, seed, Duration::from_secs(600), |_| {}))).await;
    let metrics = reqwest::get(format!("{}/metrics", worker.endpoint)).await.unwrap().text().await.unwrap();
    stop_worker("bob", worker.child).unwrap();
    let log = plain(&std::fs::read_to_string(&log_path).unwrap());
    let [runaway, honest] = [ended[0].as_ref().unwrap(), ended[1].as_ref().unwrap()];
    let (runaway_id, honest_id) = (jobs[0].0, jobs[1].0);

    let events = dave.contract_events_in(m.address(), first_block, dave.best_number().await.unwrap()).await.unwrap();
    let of = |id: u64| -> Vec<JobEventKind> { job_events(&events, id).into_iter().map(|(_, k)| k).collect() };
    // The runaway kernel: refused in its trial, never signed for, refunded exactly.
    assert_eq!(runaway.state, JobState::Refunded, "the runaway job was refunded");
    assert!(!of(runaway_id).iter().any(|k| matches!(k, JobEventKind::Assigned { .. })), "and never accepted");
    let escrow = of(runaway_id).iter().find_map(|k| if let JobEventKind::Created { escrow, .. } = k { Some(*escrow) } else { None }).unwrap();
    let refunded: Amount = of(runaway_id).iter().filter_map(|k| if let JobEventKind::Refunded { amount, .. } = k { Some(*amount) } else { None }).sum();
    assert_eq!(refunded, escrow, "the renter got exactly its escrow back");
    let refusal = log.lines().find(|l| l.contains("refused before signing") && l.contains(&format!("job_id={runaway_id}"))).unwrap_or_else(|| panic!("no refusal of job {runaway_id} in the log:\n{log}"));
    assert!(refusal.contains("did not finish within 10s"), "refused for running past its limit: {refusal}");

    // The honest job: tried, accepted, committed with the trial's result, settled.
    let created = job_event_block(&events, honest_id, |k| matches!(k, JobEventKind::Created { .. })).unwrap();
    let assigned = job_event_block(&events, honest_id, |k| matches!(k, JobEventKind::Assigned { .. })).unwrap();
    let committed = job_event_block(&events, honest_id, |k| matches!(k, JobEventKind::Committed { .. })).unwrap();
    println!("tried job {honest_id}: created #{created}, accepted #{assigned}, committed #{committed}");
    assert!(committed <= assigned + 2, "committed right after accepting, from the trial's result ({assigned} → {committed})");
    assert_eq!(honest.state, JobState::Settled, "the honest job settled");
    assert_eq!(honest.core.batch_root, blob::batch_root(&[blob::output_root(&reference)]), "with the CPU reference's output");
    let payout = of(honest_id).iter().find_map(|k| if let JobEventKind::Settled { provider_payout, .. } = k { Some(*provider_payout) } else { None }).unwrap();
    assert_eq!(md.withdrawable_of(bob.address()).await.unwrap(), payout, "Bob was paid for the honest job, nothing taken");
    assert!(metrics.contains("capacloud_worker_trials_total 1"), "one trial passed (the honest job's):\n{metrics}");
    let computed: Vec<&str> = log.lines().filter(|l| l.contains(" computed") && l.contains(&format!("job_id={honest_id}"))).collect();
    assert_eq!(computed.len(), 1, "the honest job was computed once:\n{computed:#?}");
    assert!(computed[0].contains("trial=true"), "in its trial: {}", computed[0]);

    // The order in the long lane: the runaway's trial ran, was preempted by the honest job's
    // (smaller bound), which ran to its end; then the runaway's ran again, until its limit.
    let lines: Vec<&str> = log.lines().collect();
    let at = |what: &str, id: u64| -> Vec<usize> { (0..lines.len()).filter(|&i| lines[i].contains(what) && lines[i].contains(&format!("job_id={id} "))).collect() };
    // (One trial at a time: the runaway's second run began once the honest trial's ended.)
    let runaway_runs = at("long trial running", runaway_id);
    let honest_runs = at("long trial running", honest_id);
    let honest_computed = at(" computed", honest_id)[0];
    let runaway_refused = at("refused before signing", runaway_id)[0];
    assert_eq!(runaway_runs.len(), 2, "the runaway's trial ran twice (preempted once): {runaway_runs:?}");
    assert_eq!(honest_runs.len(), 1, "the honest trial ran once, never preempted: {honest_runs:?}");
    assert!(
        runaway_runs[0] < honest_runs[0] && honest_runs[0] < runaway_runs[1] && runaway_runs[1] < runaway_refused && honest_computed < runaway_refused,
        "runaway ran, honest ran, runaway ran again and was refused after the honest job was computed: lines {runaway_runs:?}, {honest_runs:?}, {honest_computed}, {runaway_refused}"
    );
    assert!(metrics.contains("capacloud_worker_trial_preemptions_total 1"), "one preemption counted:\n{metrics}");

    assert_provider_unharmed(&m, &events, bob.address(), stake_before).await;
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

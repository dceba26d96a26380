//! A renter whose `capacloud job submit` dies (kill -9) right after its job was created,
//! before it revealed its seed, on a real node with a provider running the worker binary.
//! `capacloud job follow ID` resumes from the journal on disk: it reveals the seed the dead
//! process chose (the chain shows that very seed, not the fallback), the job settles, and
//! `capacloud job fetch ID --out` saves the output, equal to the CPU reference. Had it died
//! between signing and recording the id, `capacloud job recover` finds the job on chain by
//! its signer, seed commitment and terms, and records the id. The escrow
//! splits to the unit into the provider's payout, the fee and the renter's refund; one job,
//! escrowed once; the money invariant holds.

use capacloud_client::blob::LocalStore;
use capacloud_client::marketplace::*;
use capacloud_client::renter::{self, Journal};
use capacloud_client::Marketplace;
use capacloud_tests::procs::stop_worker;
use capacloud_tests::{binary_worker_market, built_binary, endpoint};
use std::process::Stdio;
use std::time::{Duration, Instant};

const PRICE: Amount = UNITS_PER_WND / 1_000;

/// `capacloud --json --url URL --suri //Dave job --contract C ARGS…` with `home` as
/// `$CAPACLOUD_HOME`.
fn cli(url: &str, contract: &str, home: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(built_binary("capacloud"));
    c.env("CAPACLOUD_HOME", home).args(["--url", url, "--suri", "//Dave", "--json", "job", "--contract", contract]).args(args);
    c
}

fn run_json(mut c: std::process::Command) -> serde_json::Value {
    let out = c.output().unwrap();
    assert!(out.status.success(), "capacloud exited {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renter_killed_after_create_resumes_from_its_journal() {
    let Some(market) = binary_worker_market("a_renter_killed_after_create_resumes_from_its_journal", PRICE, None).await else { return };
    let [alice, bob, _, dave, _, _] = &market.chains;
    let m = Marketplace::unchecked(alice, market.market);
    let (url, contract) = (market.url.clone(), format!("{:?}", m.address()));
    let md = m.with(dave);
    let worker = market.worker;
    let home = tempfile::tempdir().unwrap();
    let blobs = endpoint(LocalStore::new(home.path().join("blobs")).unwrap(), None).await;
    let dave_before = dave.free_balance().await.unwrap();

    // Submit, and kill the CLI the moment its journal names the job.
    let offer = worker.offer_id.to_string();
    let price = PRICE.to_string();
    let mut submit = cli(&url, &contract, home.path(), &["submit", "--workload", "matmul", "--size", "64", "--offer", &offer, "--max-price", &price, "--check-rate-bps", "0", "--blobs", &blobs.url]);
    let mut child = submit.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let journal = Journal::new(home.path().join("jobs"));
    let started = Instant::now();
    let record = loop {
        if let Some((_, r)) = journal.records().unwrap().into_iter().find(|(_, r)| r.job_id.is_some()) {
            break r;
        }
        assert!(child.try_wait().unwrap().is_none(), "the CLI ended before creating the job");
        assert!(started.elapsed() < Duration::from_secs(120), "no job created within 2 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let id = record.job_id.unwrap();
    let seed = record.seed().unwrap();
    let at_kill = md.job_core(id).await.unwrap().unwrap();
    assert!(!at_kill.seed_revealed, "killed before the seed was revealed (state {:?})", at_kill.state);

    // Resume: follow reveals the journaled seed and sees the job settle; fetch saves the output.
    let followed = tokio::task::spawn_blocking({
        let (url, contract, home) = (url.clone(), contract.clone(), home.path().to_path_buf());
        move || run_json(cli(&url, &contract, &home, &["follow", &id.to_string()]))
    })
    .await
    .unwrap();
    assert_eq!(followed["job"]["state"], "Settled", "{followed}");
    let out = home.path().join("out.bin");
    let fetched = tokio::task::spawn_blocking({
        let (url, contract, home, out) = (url.clone(), contract.clone(), home.path().to_path_buf(), out.clone());
        move || run_json(cli(&url, &contract, &home, &["fetch", &id.to_string(), "--out", out.to_str().unwrap()]))
    })
    .await
    .unwrap();
    stop_worker("bob", worker.child).unwrap();

    // Had it died between signing and recording the id, `job recover` finds the job.
    let (path, recorded) = journal.records().unwrap().into_iter().find(|(_, r)| r.job_id == Some(id)).unwrap();
    journal.write(&path, &renter::JobRecord { job_id: None, ..recorded }).unwrap();
    let recovered = tokio::task::spawn_blocking({
        let (url, contract, home) = (url.clone(), contract.clone(), home.path().to_path_buf());
        move || run_json(cli(&url, &contract, &home, &["recover"]))
    })
    .await
    .unwrap();
    assert_eq!(recovered["job_ids"], serde_json::json!([id]), "{recovered}");
    assert_eq!(recovered["never_created"], 0, "{recovered}");
    assert_eq!(journal.find(m.address(), id).unwrap().job_id, Some(id), "the id is back in the journal");
    let bundle = renter::library_job("matmul", 64, 1, 1).unwrap();
    let (w, prepared) = bundle.library.unwrap();
    let output = std::fs::read(&out).unwrap();
    assert_eq!(fetched["output_bytes"].as_u64(), Some(output.len() as u64));
    assert_eq!(output, w.cpu_reference(&prepared[0]), "the fetched output is the CPU reference's");

    // The chain saw the seed the killed process chose, and the payouts add up.
    let events = dave.contract_events_in(m.address(), 0, dave.best_number().await.unwrap()).await.unwrap();
    let job_events: Vec<&JobEventKind> = events
        .iter()
        .filter_map(|(_, e)| match &e.decoded {
            Some(Event::Job(j)) if j.job_id == id => Some(&j.kind),
            _ => None,
        })
        .collect();
    assert!(job_events.iter().any(|k| matches!(k, JobEventKind::SeedRevealed { seed: Some(s), .. } if *s == seed)), "the journaled seed was revealed");
    let escrow = job_events.iter().find_map(|k| match k {
        JobEventKind::Created { escrow, .. } => Some(*escrow),
        _ => None,
    });
    let (payout, fee, refund) = job_events
        .iter()
        .find_map(|k| match k {
            JobEventKind::Settled { provider_payout, protocol_fee, renter_refund, verifier_fees, .. } => {
                assert_eq!(*verifier_fees, 0, "unchecked");
                Some((*provider_payout, *protocol_fee, *renter_refund))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(Some(payout + fee + refund), escrow, "the escrow went to the provider, the fee and back to the renter, to the unit");
    assert_eq!(md.withdrawable_of(bob.address()).await.unwrap(), payout);
    assert_eq!(md.job_count().await.unwrap(), 1, "one job: nothing escrowed twice");
    assert_eq!(md.withdrawable_of(dave.address()).await.unwrap(), refund, "the renter's refund is withdrawable, to the unit");
    let spent = dave_before - dave.free_balance().await.unwrap();
    assert!(spent >= escrow.unwrap() / UNITS_PER_PLANCK, "the renter escrowed once ({spent} plancks with fees)");
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

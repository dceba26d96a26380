//! Zero-knowledge proving kernels through the market, as a renter runs them: `capacloud job
//! submit --workload ntt-babybear --columns 8` (a batch of two NTTs) and `--workload poseidon2-merkle`,
//! each hired directly, always checked by another provider's worker, settled on a real node;
//! the outputs the CLI fetched decode to BabyBear field elements equal to the CPU reference,
//! and with the provider's endpoint gone the renter fetches them from the verifier instead.

use capacloud_client::blob::LocalStore;
use capacloud_client::marketplace::*;
use capacloud_client::renter;
use capacloud_executor::workloads::babybear::P;
use capacloud_tests::{contract_artifacts, deploy_fast, dev_chains, endpoint, gpu_or_skip, two_providers, TestNode, TwoProviders};

const WND: Amount = UNITS_PER_WND;
const PRICE: Amount = WND / 1_000;

/// Runs `capacloud --json job submit …` as //Dave; returns the JSON it printed.
async fn submit(url: &str, contract: &str, blobs: &str, args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(capacloud_tests::built_binary("capacloud"))
        .args(["--url", url, "--suri", "//Dave", "--json", "job", "--contract", contract, "submit", "--blobs", blobs])
        .args(["--max-price", &PRICE.to_string(), "--check-rate-bps", "10000", "--compute-blocks", "20", "--timeout", "600"])
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "capacloud exited {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The output as field elements (little-endian u32 words), each checked to be below p.
fn field_elements(bytes: &[u8]) -> Vec<u32> {
    assert_eq!(bytes.len() % 4, 0);
    let words: Vec<u32> = bytes.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    assert!(words.iter().all(|&w| w < P), "every output word is a canonical BabyBear element");
    words
}

/// The CPU reference of each task of library workload `name` as the CLI builds it (seed 1).
fn references(name: &str, size: u32, columns: Option<u32>, tasks: u32) -> Vec<Vec<u32>> {
    let b = renter::library_job_with_columns(name, size, columns, 1, tasks).unwrap();
    let (w, prepared) = b.library.unwrap();
    prepared.iter().map(|p| field_elements(&w.cpu_reference(p))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_kernels_settle_verified_through_the_cli() {
    let test = "zk_kernels_settle_verified_through_the_cli";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(gpu) = gpu_or_skip(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let url = node.url();
    let [alice, bob, charlie, dave, _, _] = &dev_chains(&url).await;
    let m = deploy_fast(alice, &art.code, 6, 10).await;

    // Two providers, each its own disk and endpoint; Charlie runs kernels in the sandboxed
    // child (the daemon's default), Bob in process.
    let TwoProviders { dirs: _dirs, stores: _stores, workers, metrics, offers, endpoints } = two_providers(&m, &url, gpu, PRICE, true).await;
    let renter_dir = tempfile::tempdir().unwrap();
    let renter_server = endpoint(LocalStore::new(renter_dir.path().join("blobs")).unwrap(), None).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let contract = format!("{:?}", m.address());
    let ntt_out = renter_dir.path().join("ntt");
    let merkle_out = renter_dir.path().join("merkle.bin");
    let renter = async {
        let ntt = submit(&url, &contract, &renter_server.url, &["--workload", "ntt-babybear", "--size", "1024", "--columns", "8", "--tasks", "2", "--offer", &offers[0].to_string(), "--out", ntt_out.to_str().unwrap()]).await;
        let merkle = submit(&url, &contract, &renter_server.url, &["--workload", "poseidon2-merkle", "--size", "256", "--offer", &offers[1].to_string(), "--out", merkle_out.to_str().unwrap()]).await;
        let _ = stop_tx.send(true);
        (ntt, merkle)
    };
    let (_, _, (ntt, merkle)) = tokio::join!(workers[0].run(stopped(stop_rx.clone())), workers[1].run(stopped(stop_rx.clone())), renter);

    // Both settled after a full check by the other provider.
    for (job, provider, verifier) in [(&ntt, bob, charlie), (&merkle, charlie, bob)] {
        assert_eq!(job["job"]["state"], "Settled", "{job}");
        assert_eq!(job["job"]["provider"], format!("{:?}", provider.address()), "{job}");
        assert_eq!(job["job"]["verifiers"][0], format!("{:?}", verifier.address()), "{job}");
        let tasks = job["job"]["tasks"].as_u64().unwrap();
        assert_eq!(job["job"]["sampled"].as_u64(), Some(tasks), "every task re-executed at a 100 % rate");
    }

    // The outputs decode to field elements equal to the CPU reference, task by task.
    let ntt_ref = references("ntt-babybear", 1024, Some(8), 2);
    for (i, want) in ntt_ref.iter().enumerate() {
        let got = field_elements(&std::fs::read(ntt_out.join(format!("{i}.bin"))).unwrap());
        assert_eq!(got.len(), 1024 * 8, "2^10 rows × 8 columns");
        assert_eq!(&got, want, "NTT task {i}");
    }
    assert_ne!(ntt_ref[0], ntt_ref[1], "the two tasks transform different inputs");
    let merkle_ref = references("poseidon2-merkle", 256, None, 1);
    assert_eq!(field_elements(&std::fs::read(&merkle_out).unwrap()), merkle_ref[0]);

    // With Bob's endpoint gone, the renter gets the NTT job's outputs from its verifier,
    // Charlie, who re-executed every task and so keeps the whole task-root list too.
    let [bob_endpoint, charlie_endpoint] = endpoints;
    drop(bob_endpoint);
    let md = m.with(dave);
    let ntt_id = ntt["job"]["job_id"].as_u64().unwrap();
    let job = md.job(ntt_id).await.unwrap().unwrap();
    let nowhere = LocalStore::new(renter_dir.path().join("nowhere")).unwrap();
    let outputs = renter::fetch_outputs(&md, ntt_id, &job, &nowhere).await.unwrap();
    assert_eq!(outputs.iter().map(Vec::as_slice).map(field_elements).collect::<Vec<_>>(), ntt_ref, "the verifier served the same outputs");
    drop(charlie_endpoint);

    assert!(metrics[1].gpu_seconds.get() > 0.0, "Charlie computed (in the child) and verified");
    let (balance, total) = m.balance_check().await.unwrap();
    assert_eq!(balance, total, "money invariant");
}

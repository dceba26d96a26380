//! The `capacloud` CLI refuses bad input with exit code 2 and a message that says what is
//! wrong — a malformed or failing WGSL kernel, one over the portable workgroup limits,
//! bindings that do not match the shader, an unknown workload, a job the contract refuses, a
//! blob server that would take anyone's uploads — and in every case nothing is signed: the
//! renter's balance and the contract's job count do not change.

use capacloud_client::chain::Chain;
use capacloud_client::Marketplace;
use capacloud_tests::{contract_artifacts, TestNode};
use std::process::Command;
use subxt_signer::sr25519::dev;

fn cli() -> std::path::PathBuf {
    capacloud_tests::built_binary("capacloud")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_are_refused_before_anything_is_signed() {
    let test = "bad_jobs_are_refused_before_anything_is_signed";
    let Some(art) = contract_artifacts(test) else { return };
    let Some(node) = TestNode::start(test) else { return };
    let alice = Chain::connect(&node.url(), dev::alice()).await.unwrap();
    let dave = Chain::connect(&node.url(), dev::dave()).await.unwrap();
    let (m, _) = Marketplace::deploy(&alice, &art.code, capacloud_client::contract::Deploy::default()).await.unwrap();
    let contract = format!("{:?}", m.address());
    let before = dave.free_balance().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let broken = write("broken.wgsl", "@compute @workgroup_size(1)\nfn main() {\n  let x = ;\n}\n");
    let float = write(
        "float.wgsl",
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
         @compute @workgroup_size(1)\nfn main() { out[0] = 1.5; }\n",
    );
    let good = write(
        "good.wgsl",
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
         @compute @workgroup_size(1)\nfn main() { out[0] = 7u; }\n",
    );
    // 33 loops in a helper called 32 times: 1,056 loops after inlining, over the 1,024 allowed.
    let helper: String = (0..33).map(|_| "for (var j = 0u; j < 3u; j += 1u) { n += 1u; }\n").collect();
    let calls: String = (0..32).map(|_| "n += helper();\n").collect();
    let loopy = write(
        "loopy.wgsl",
        &format!(
            "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
             fn helper() -> u32 {{ var n = 0u;\n{helper}return n; }}\n\
             @compute @workgroup_size(1)\nfn main() {{ var n = 0u;\n{calls}out[0] = n; }}\n"
        ),
    );
    // 32 KiB of workgroup memory: more than wgpu's portable 16 KiB.
    let oversized = write(
        "oversized.wgsl",
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
         var<workgroup> big: array<u32, 8192>;\n\
         @compute @workgroup_size(64)\nfn main(@builtin(local_invocation_index) i: u32) { big[i] = i; workgroupBarrier(); out[0] = big[63]; }\n",
    );
    let blobs = dir.path().join("blobs");
    let run = |extra: &[&str]| {
        let out = Command::new(cli())
            .args(["--url", &node.url(), "--suri", "//Dave", "job", "--contract", &contract, "submit"])
            .args(["--max-price", "1000", "--blobs", blobs.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    let (code, err) = run(&["--wgsl", broken.to_str().unwrap(), "--output", "0=16"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("WGSL does not parse at line 3"), "{err}");

    let (code, err) = run(&["--wgsl", float.to_str().unwrap(), "--output", "0=16"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("WGSL does not"), "{err}");

    let (code, err) = run(&["--wgsl", loopy.to_str().unwrap(), "--output", "0=16"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("1056 loops"), "{err}");

    let (code, err) = run(&["--wgsl", oversized.to_str().unwrap(), "--output", "0=16"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("workgroup memory in bytes is 32768, over the portable limit of 16384"), "{err}");

    let (code, err) = run(&["--wgsl", good.to_str().unwrap(), "--output", "3=16"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("binding 3"), "{err}");

    let (code, err) = run(&["--wgsl", good.to_str().unwrap(), "--output", "0=10"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("multiple of 4") || err.contains("aligned"), "{err}");

    let (code, err) = run(&["--workload", "fft"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown workload `fft`"), "{err}");

    // Columns: only the NTT has them, 1..=1024.
    let (code, err) = run(&["--workload", "ntt-babybear", "--size", "1024", "--columns", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--columns 0"), "{err}");
    let (code, err) = run(&["--workload", "sha256", "--columns", "2"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--columns 2: sha256 takes no columns"), "{err}");
    let (code, err) = run(&["--wgsl", good.to_str().unwrap(), "--output", "0=16", "--columns", "2"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--columns applies to"), "{err}");

    // Batches: a task count for a library workload, a directory for custom WGSL.
    let (code, err) = run(&["--workload", "sha256", "--tasks", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("0 tasks"), "{err}");
    let (code, err) = run(&["--workload", "sha256", "--tasks", "5000"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("5000 tasks"), "{err}");
    let (code, err) = run(&["--workload", "sha256", "--tasks", "/no/such/dir"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("task count"), "{err}");
    // A task directory whose tasks disagree on their inputs' lengths.
    let tasks = dir.path().join("tasks");
    for (t, len) in [("a", 16usize), ("b", 20)] {
        std::fs::create_dir_all(tasks.join(t)).unwrap();
        std::fs::write(tasks.join(t).join("1.bin"), vec![0u8; len]).unwrap();
    }
    let reader = write(
        "reader.wgsl",
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
         @group(0) @binding(1) var<storage, read> inp: array<u32>;\n\
         @compute @workgroup_size(1)\nfn main() { out[0] = inp[0]; }\n",
    );
    let (code, err) = run(&["--wgsl", reader.to_str().unwrap(), "--output", "0=16", "--tasks", tasks.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("task 1"), "{err}");

    // A valid job that the contract refuses: a direct hire of an offer that does not exist.
    let (code, err) = run(&["--wgsl", good.to_str().unwrap(), "--output", "0=16", "--offer", "99"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("OfferNotFound"), "{err}");

    // A blob server must know whose uploads to take: without a key or an uploader it does
    // not start (it would take anyone's), and a malformed uploader is named.
    let serve = |extra: &[&str]| {
        let out = Command::new(cli())
            .env_remove("CAPACLOUD_SURI")
            .env_remove("CAPACLOUD_KEY_FILE")
            .args(["blobs", "serve", "--dir", blobs.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, err) = serve(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("takes uploads signed by the renter's key"), "{err}");
    let (code, err) = serve(&["--uploader", "0xnot-an-address"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--uploader 0xnot-an-address"), "{err}");

    assert_eq!(dave.free_balance().await.unwrap(), before, "no fee, no escrow: nothing was signed");
    assert_eq!(m.job_count().await.unwrap(), 0);
}

//! The binaries without a chain: `capacloud keys` (generate, address, import of a polkadot.js
//! export with its password from the environment) and the worker's configuration errors
//! (exit code 2 with a message that names the missing setting).

use std::path::{Path, PathBuf};
use std::process::Command;

use capacloud_tests::built_binary as bin;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/alice-polkadotjs.json")
}

/// Runs `capacloud --json ARGS` with a clean key environment; returns (exit code, stdout JSON or stderr).
fn capacloud(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(bin("capacloud"))
        .arg("--json")
        .args(args)
        .env_remove("CAPACLOUD_SURI")
        .env_remove("CAPACLOUD_KEY_FILE")
        .env_remove("CAPACLOUD_KEY_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

#[test]
fn keys_generate_address_and_import() {
    let (code, gen, err) = capacloud(&["keys", "generate"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let phrase = gen["phrase"].as_str().unwrap();
    assert_eq!(phrase.split(' ').count(), 24);
    let (code, addr, err) = capacloud(&["keys", "address"], &[("CAPACLOUD_SURI", phrase)]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(addr["account"], gen["account"], "the phrase is the key");
    assert_eq!(addr["h160"], gen["h160"]);

    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().to_str().unwrap();
    let fx = fixture();
    let fx_s = fx.to_str().unwrap();
    let (code, imported, err) =
        capacloud(&["keys", "import", fx_s], &[("CAPACLOUD_HOME", home_s), ("CAPACLOUD_KEY_PASSWORD", "whoisalice")]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(imported["account"], ALICE);
    let stored = home.path().join(format!("keys/{ALICE}.json"));
    assert_eq!(imported["path"], stored.to_str().unwrap());
    assert!(stored.exists());
    let (code, addr, err) = capacloud(&["keys", "address"], &[("CAPACLOUD_KEY_FILE", stored.to_str().unwrap()), ("CAPACLOUD_KEY_PASSWORD", "whoisalice")]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(addr["account"], ALICE);
    let (_, dev_alice, _) = capacloud(&["keys", "address", "--suri", "//Alice"], &[]);
    assert_eq!(addr["h160"], dev_alice["h160"]);

    // Wrong password, no password without a terminal, two keys, no key: exit 2, nothing stored.
    let home2 = tempfile::tempdir().unwrap();
    let home2_s = home2.path().to_str().unwrap();
    let (code, out, _) = capacloud(&["keys", "import", fx_s], &[("CAPACLOUD_HOME", home2_s), ("CAPACLOUD_KEY_PASSWORD", "nope")]);
    assert_eq!(code, Some(2));
    assert!(out["error"].as_str().unwrap().contains("password is wrong"), "{out}");
    let (code, out, _) = capacloud(&["keys", "import", fx_s], &[("CAPACLOUD_HOME", home2_s)]);
    assert_eq!(code, Some(2));
    assert!(out["error"].as_str().unwrap().contains("CAPACLOUD_KEY_PASSWORD"), "{out}");
    assert!(!home2.path().join("keys").exists() || std::fs::read_dir(home2.path().join("keys")).unwrap().count() == 0);
    let (code, out, _) = capacloud(&["keys", "address", "--suri", "//Bob", "--key-file", fx_s], &[]);
    assert_eq!(code, Some(2));
    assert!(out["error"].as_str().unwrap().contains("not both"), "{out}");
    let (code, out, _) = capacloud(&["keys", "address"], &[]);
    assert_eq!(code, Some(2));
    assert!(out["error"].as_str().unwrap().contains("--suri or --key-file"), "{out}");
}

#[test]
fn worker_refuses_incomplete_or_bad_configuration() {
    let worker = bin("capacloud-worker");
    let run = |args: &[&str]| {
        let out = Command::new(&worker)
            .args(args)
            .env_remove("CAPACLOUD_CONTRACT")
            .env_remove("CAPACLOUD_WORKER_DIR")
            .env_remove("CAPACLOUD_PRICE")
            .env_remove("CAPACLOUD_WORKER_CONFIG")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--data-dir", "/tmp/x", "--price", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--contract"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "contract = \"0x01\"\nprise = 1\n").unwrap();
    let (code, err) = run(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown field `prise`"), "{err}");
    // A complete configuration with a bad address: refused before any GPU or chain work.
    let (code, err) = run(&["--contract", "0x1234", "--data-dir", dir.path().to_str().unwrap(), "--price", "1", "--suri", "//Bob", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a contract address"), "{err}");
}

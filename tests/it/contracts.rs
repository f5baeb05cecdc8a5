//! The committed contract artifacts are what the Solidity sources compile to with the pinned
//! compiler: rebuilt in memory and compared byte for byte.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[test]
fn artifacts_match_the_solidity_sources() {
    crate::support::devnet::anvil_binary(); // installs tests/devnet/node_modules (solc with it) when missing
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("node")
        .arg(root.join("tests/devnet/build-contracts.mjs"))
        .arg("--check")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the contract check did not finish within 120s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", crate::support::output::text(&out));
}

#[test]
fn every_contract_the_tests_need_has_an_artifact() {
    for name in ["EscrowFactory", "Escrow", "BatchReceiver", "EventEmitter", "SedaProver", "SedaCore"] {
        let artifact = crate::support::devnet::artifact(name);
        assert!(artifact["abi"].as_array().is_some_and(|a| !a.is_empty()), "{name}: empty ABI");
        assert!(artifact["bytecode"].as_str().is_some_and(|b| b.len() > 100), "{name}: no bytecode");
    }
}

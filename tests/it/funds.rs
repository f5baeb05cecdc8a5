//! The signer's balance, watched while ferry runs: below `min_balance` a warning, below the cost
//! of one transaction new sends pause with `insufficient_funds` (nothing is signed) and go on,
//! in the same run, once the signer is funded. Real binary, real anvil.

use std::fs::File;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::sol_types::SolCall;
use serde_json::{Value, json};

use crate::deliver::{Net, view_u256};
use crate::support::command::{ferry_command, run};
use crate::support::devnet::{Anvil, DEV_ADDRESSES, IBatchReceiver};
use crate::support::hex::hex_u64;
use crate::support::output::{json_or_null, text};
use crate::support::process::KillOnDrop;

use crate::deliver::RECORD_FN as RECORD;
const ETHER: u128 = 1_000_000_000_000_000_000;

async fn set_signer_balance(anvil: &Anvil, wei: u128) {
    anvil.rpc("anvil_setBalance", json!([DEV_ADDRESSES[1], format!("{wei:#x}")])).await;
}

async fn signer_nonce(anvil: &Anvil) -> u64 {
    hex_u64(&anvil.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], "pending"])).await)
}

fn d0(report: &Value) -> &Value {
    report["chains"]
        .as_array()
        .and_then(|chains| chains.iter().find(|c| c["chain"] == "d0"))
        .unwrap_or_else(|| panic!("chain d0 in the report: {report}"))
}

fn with_min_balance(dir: &std::path::Path, min: &str) {
    let path = dir.join("ferry.yaml");
    let yaml = std::fs::read_to_string(&path).expect("ferry.yaml");
    let signer = "    signer: { key_env: FERRY_TEST_SIGNER }\n";
    assert!(yaml.contains(signer));
    std::fs::write(&path, yaml.replace(signer, &format!("{signer}    min_balance: {min}\n")))
        .expect("ferry.yaml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_that_cannot_pay_pauses_new_sends_and_they_go_on_once_it_is_funded() {
    const N: u64 = 3;
    let net = Net::start(1).await;
    net.emit(0, N).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    with_min_balance(dir.path(), "5");
    let (anvil, receiver) = &net.dests[0];
    set_signer_balance(anvil, 1_000).await;

    // 1,000 wei pays for nothing: the chain says so with its code, nothing is signed.
    let out = run(dir.path(), &["push", "--json", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let report = json_or_null(&out);
    let chain = d0(&report);
    assert_eq!(chain["problem"]["code"], "insufficient_funds", "{chain}");
    let message = chain["problem"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(DEV_ADDRESSES[1]) && message.contains("balance"), "names the signer: {chain}");
    assert_eq!((chain["transactions"].as_u64(), chain["pending"].as_u64()), (Some(0), Some(N)), "{chain}");
    assert_eq!(signer_nonce(anvil).await, 0, "nothing was signed");

    // A push that runs while the signer is funded goes on by itself, well before its deadline.
    let stdout = dir.path().join("push.stdout");
    let mut push = KillOnDrop::spawn(
        ferry_command(dir.path())
            .args(["push", "--json", "--timeout", "60s"])
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(dir.path().join("push.stderr")).expect("stderr file")),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Above the cost of a transaction, below min_balance (5 ETH): sends go on, with a warning.
    set_signer_balance(anvil, ETHER).await;
    let funded = Instant::now();
    let status = push.wait_within(Duration::from_secs(60)).await.expect("push ends");
    let stderr = std::fs::read_to_string(dir.path().join("push.stderr")).expect("stderr");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&stdout).expect("stdout")).unwrap_or(Value::Null);
    assert_eq!(status.code(), Some(0), "{report}\n{stderr}");
    assert!(funded.elapsed() < Duration::from_secs(30), "resumed {:?} after funding", funded.elapsed());
    assert_eq!(d0(&report)["confirmed"], N, "{report}");
    assert!(stderr.contains("below min_balance"), "a warning below min_balance: {stderr}");
    let total = view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await;
    assert_eq!(total, U256::from(N));
}

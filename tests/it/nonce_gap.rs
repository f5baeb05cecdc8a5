//! A destination that comes back reset — the same URL and chain id, every nonce 0, no contracts —
//! after ferry delivered to it: `push` says `nonce_gap` and signs nothing at a guessed nonce;
//! `inspect-store resync` lines ferry up with the chain, and the next `push` delivers every item
//! exactly once on the reset chain. Real binary, real anvil stopped and started again.

use alloy::primitives::U256;
use alloy::sol_types::SolCall;
use serde_json::{Value, json};

use crate::deliver::{Net, view_u256};
use crate::support::command::run;
use crate::support::devnet::{Anvil, DEV_ADDRESSES, IBatchReceiver};
use crate::support::hex::hex_u64;
use crate::support::output::{json_or_null, text};

use crate::deliver::RECORD_FN as RECORD;

fn d0(report: &Value) -> &Value {
    report["chains"]
        .as_array()
        .and_then(|chains| chains.iter().find(|c| c["chain"] == "d0"))
        .unwrap_or_else(|| panic!("chain d0 in the report: {report}"))
}

/// The signer's (`DEV_ADDRESSES[1]`) transaction count at `tag`.
async fn nonce(anvil: &Anvil, tag: &str) -> u64 {
    hex_u64(&anvil.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], tag])).await)
}

async fn recorded(anvil: &Anvil, receiver: alloy::primitives::Address, height: u64) -> U256 {
    view_u256(anvil, receiver, IBatchReceiver::recordedCountCall { height }.abi_encode()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_destination_is_a_nonce_gap_and_resync_recovers_it_exactly_once() {
    const FIRST: u64 = 4;
    const MORE: u64 = 2;
    let mut net = Net::start(1).await;
    net.emit(0, FIRST).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    let push = |timeout: &str| {
        let out = run(dir.path(), &["push", "--json", "--timeout", timeout]);
        let report = json_or_null(&out);
        (out, report)
    };

    let (out, report) = push("60s");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(d0(&report)["confirmed"], FIRST, "{report}");
    assert_eq!(nonce(&net.dests[0].0, "latest").await, FIRST);

    // The destination is reset: stopped, started again on the same port with the same chain
    // id from genesis, and its receiver deployed again (the same deployer at nonce 0: the same
    // address, so the config still names it).
    let receiver = net.dests[0].1;
    net.dests[0].0.restart_fresh().await;
    let anvil = &net.dests[0].0;
    assert_eq!(anvil.deploy("BatchReceiver", &[]).await, receiver, "redeployed at the same address");
    assert_eq!(nonce(anvil, "pending").await, 0);
    net.emit(FIRST, MORE).await;

    // ferry had seen nonces 0..4 confirmed; the chain counts none: a nonce gap, said with its
    // code, and nothing signed at a guessed nonce (ferry's next, 4, or the chain's, 0).
    let (out, report) = push("5s");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let chain = d0(&report);
    assert_eq!(chain["problem"]["code"], "nonce_gap", "{chain}");
    let message = chain["problem"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("next 4") && message.contains("resync"),
        "what ferry expected and what to do: {chain}"
    );
    assert_eq!(chain["transactions"], 0, "{chain}");
    assert_eq!((nonce(anvil, "latest").await, nonce(anvil, "pending").await), (0, 0), "nothing was sent");
    assert_eq!(
        view_u256(anvil, receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await,
        U256::ZERO
    );

    // The operator looks and resyncs: the transactions the chain forgot are dropped and their
    // deliveries are pending again.
    let out = run(dir.path(), &["inspect-store", "resync", "--chain", "d0", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let resynced = json_or_null(&out);
    assert_eq!(resynced["forgotten"], json!([0, 1, 2, 3]), "{resynced}");
    assert_eq!((resynced["latest"].as_u64(), resynced["pending"].as_u64()), (Some(0), Some(0)), "{resynced}");

    // The next push sends everything, once each, from the chain's nonce 0.
    let (out, report) = push("60s");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let chain = d0(&report);
    assert_eq!(
        (chain["confirmed"].as_u64(), chain["left"].as_u64()),
        (Some(FIRST + MORE), Some(0)),
        "{chain}"
    );
    assert_eq!(chain["problem"], Value::Null, "{chain}");
    for height in 0..FIRST + MORE {
        assert_eq!(recorded(anvil, receiver, height).await, U256::from(1), "height {height}");
    }
    assert_eq!(
        view_u256(anvil, receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await,
        U256::from(FIRST + MORE)
    );
    assert_eq!((nonce(anvil, "latest").await, nonce(anvil, "pending").await), (FIRST + MORE, FIRST + MORE));

    // And again: nothing left, nothing sent.
    let (out, report) = push("30s");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(d0(&report)["transactions"], 0, "{report}");
}

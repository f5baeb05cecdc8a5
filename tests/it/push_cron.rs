//! `push` as cron runs it: `--timeout` is a deadline for the whole command, whatever the RPCs do;
//! every reason it exits 4 is a stable code and a message on the chain or the source that caused
//! it; a dry run whose simulations fail is not a success. Real binary, real anvil chains.

use std::path::Path;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::sol_types::SolCall;
use serde_json::{Value, json};

use crate::deliver::{Net, view_u256};
use crate::support::command::run;
use crate::support::devnet::IBatchReceiver;
use crate::support::output::{json_or_null, text};

use crate::deliver::RECORD_FN as RECORD;
const POST: &str = "function postBatch(uint64 height, bytes32 root)";
const DEAD: &str = "http://127.0.0.1:9";
const GWEI: u128 = 1_000_000_000;

fn chain<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["chains"]
        .as_array()
        .and_then(|chains| chains.iter().find(|c| c["chain"] == name))
        .unwrap_or_else(|| panic!("chain {name} in the report: {report}"))
}

/// Replaces `from` with `to` in the test's ferry.yaml.
fn edit_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("ferry.yaml");
    let yaml = std::fs::read_to_string(&path).expect("ferry.yaml");
    assert!(yaml.contains(from), "`{from}` in ferry.yaml");
    std::fs::write(&path, yaml.replace(from, to)).expect("ferry.yaml");
}

/// A source and a destination that do not answer, and a healthy destination with work in the
/// store: `push --timeout 5s` is back within 6 s, exit 4, naming the source in its sync report
/// and the dead chain with `rpc_failing`; the healthy chain got every delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_timeout_is_a_deadline_for_the_whole_command_and_names_what_was_dead() {
    const N: u64 = 5;
    let net = Net::start(2).await;
    net.emit(0, N).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // d1's URL is dead from the start; the source's items are read into the store first.
    net.write_config(dir.path(), RECORD, "", Some(1));
    let out = run(dir.path(), &["backfill", "--from", "0", "--to", "latest", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Now the source's RPC is dead too.
    edit_config(dir.path(), &net.source.url(), DEAD);

    let started = Instant::now();
    let out = run(dir.path(), &["push", "--json", "--timeout", "5s"]);
    let took = started.elapsed();
    eprintln!("push --timeout 5s with a dead source and a dead destination returned after {took:?}");
    let report = json_or_null(&out);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(took < Duration::from_secs(6), "push --timeout 5s took {took:?}: {}", text(&out));

    let synced = report["synced"].as_array().expect("the sync report");
    let source = synced.iter().find(|s| s["source"] == "batches").expect("the source in the sync report");
    assert!(source["error"].as_str().is_some_and(|e| !e.is_empty()), "the failed sync says why: {source}");
    assert_eq!(source["code"], "rpc_failing", "{source}");

    let dead = chain(&report, "d1");
    assert_eq!(dead["problem"]["code"], "rpc_failing", "{dead}");
    assert!(dead["problem"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{dead}");
    assert_eq!(dead["pending"], N, "{dead}");

    let healthy = chain(&report, "d0");
    assert_eq!((healthy["confirmed"].as_u64(), healthy["left"].as_u64()), (Some(N), Some(0)), "{healthy}");
    assert_eq!(healthy["problem"], Value::Null, "{healthy}");
    let (anvil, receiver) = &net.dests[0];
    let total = view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await;
    assert_eq!(total, U256::from(N));

    // The table says both too, with the chain's code.
    let out = run(dir.path(), &["push", "--no-sync", "--timeout", "3s"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("rpc_failing"), "the table shows the code: {said}");
}

/// A fee cap under the base fee, with no bump due before the deadline: `push` exits 4 and the
/// chain says why with `fee_cap_below_base_fee` (it used to say nothing once a round had found
/// no bump to make).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_cap_below_the_base_fee_is_said_with_its_code() {
    let net = Net::start(1).await;
    net.emit(0, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    // Cap 1 gwei, bumps only after a minute: none is due within this push.
    edit_config(
        dir.path(),
        "    signer: { key_env: FERRY_TEST_SIGNER }\n",
        "    signer: { key_env: FERRY_TEST_SIGNER }\n    gas: { max_fee_gwei: 1, bump_after: 1m }\n",
    );
    let anvil = &net.dests[0].0;
    anvil.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{:#x}", 50 * GWEI)])).await;
    anvil.mine(1).await;

    let out = run(dir.path(), &["push", "--json", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let report = json_or_null(&out);
    let d0 = chain(&report, "d0");
    assert_eq!(d0["problem"]["code"], "fee_cap_below_base_fee", "{d0}");
    let message = d0["problem"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("fee cap") && message.contains("base fee"), "{d0}");
}

/// A wrong `already_done.view` (the contract has no such function): the dry run exits 4, and
/// the chain's problem is `simulation_failed` naming the view's revert, not a failing RPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_whose_checks_fail_exits_4_with_the_code() {
    let net = Net::start(1).await;
    net.emit(0, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = "    already_done:\n      view: function lastHeight() view returns (uint64)\n      compare: \">= height\"\n";
    net.write_config(dir.path(), POST, wrong, None);

    let out = run(dir.path(), &["push", "--dry-run", "--json", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let report = json_or_null(&out);
    let d0 = chain(&report, "d0");
    assert_eq!(d0["problem"]["code"], "simulation_failed", "{d0}");
    let message = d0["problem"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("reverted"), "the message says the view reverted: {d0}");
    assert_eq!(d0["transactions"], 0, "a dry run sends nothing: {d0}");

    // The right view: the same dry run is a success.
    let right = "    already_done:\n      view: function lastBatchHeight() view returns (uint64)\n      compare: \">= height\"\n";
    net.write_config(dir.path(), POST, right, None);
    let out = run(dir.path(), &["push", "--dry-run", "--json", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

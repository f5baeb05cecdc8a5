//! Delivery through the real binary: a source chain emitting batches and three destination anvils
//! with a receiver that accepts repeats, so that every transaction ferry makes is counted.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;
use serde_json::Value;

use crate::devnet::{Anvil, DEV_KEYS, IBatchReceiver, IEventEmitter};

pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_STORE")
        .env_remove("FERRY_LOG")
        .env("NO_COLOR", "1")
        .env("FERRY_TEST_SIGNER", DEV_KEYS[1])
        .stdin(Stdio::null())
        .output()
        .expect("ferry runs")
}

pub(crate) fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub(crate) struct Net {
    pub(crate) source: Anvil,
    pub(crate) emitter: Address,
    pub(crate) dests: Vec<(Anvil, Address)>,
}

impl Net {
    pub(crate) async fn start(n: usize) -> Net {
        let source = Anvil::start(31337).await;
        let emitter = source.deploy("EventEmitter", &[]).await;
        let mut dests = Vec::new();
        for i in 0..n {
            let anvil = Anvil::start(41000 + i as u64).await;
            let receiver = anvil.deploy("BatchReceiver", &[]).await;
            dests.push((anvil, receiver));
        }
        Net { source, emitter, dests }
    }

    /// A config routing BatchReady events to `function` on every destination.
    pub(crate) fn write_config(&self, dir: &Path, function: &str, already_done: &str, dead_url_for: Option<usize>) {
        let mut yaml = format!(
            "chains:\n  src:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 1\n    poll_interval: 200ms\n",
            self.source.url()
        );
        let mut targets = String::new();
        for (i, (anvil, receiver)) in self.dests.iter().enumerate() {
            let url = if dead_url_for == Some(i) { "http://127.0.0.1:9".to_string() } else { anvil.url() };
            yaml.push_str(&format!(
                "  d{i}:\n    chain_id: {}\n    rpc: [\"{url}\"]\n    confirmations: 1\n    poll_interval: 200ms\n    request_timeout: 2s\n    signer: {{ key_env: FERRY_TEST_SIGNER }}\n",
                anvil.chain_id()
            ));
            targets.push_str(&format!("      d{i}: \"{}\"\n", receiver.to_checksum(None)));
        }
        yaml.push_str(&format!(
            "sources:\n  batches:\n    kind: evm\n    chain: src\n    contracts:\n      - address: \"{}\"\n        events: [\"event BatchReady(uint64 indexed height, bytes32 root)\"]\n",
            self.emitter.to_checksum(None)
        ));
        yaml.push_str(&format!(
            "targets:\n  receiver:\n    kind: evm-call\n    function: {function}\n    args:\n      height: {{ field: height }}\n      root: {{ field: root }}\n{already_done}    chains:\n{targets}"
        ));
        yaml.push_str("routes:\n  - source: batches\n    targets: [receiver]\n");
        std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
    }

    pub(crate) async fn emit(&self, from: u64, n: u64) {
        self.source.send(self.emitter, IEventEmitter::emitBatchesCall { from, n }.abi_encode()).await;
        self.source.mine(1).await;
    }
}

pub(crate) async fn view_u256(anvil: &Anvil, to: Address, data: Vec<u8>) -> U256 {
    let out = anvil.call(to, data).await.expect("view call");
    U256::from_be_slice(&out)
}

pub(crate) fn push(dir: &Path, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["push", "--json", "--timeout", "90s"];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_items_reach_three_chains_exactly_once() {
    let net = Net::start(3).await;
    net.emit(0, 200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);

    let (out, report) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for chain in report["chains"].as_array().expect("chains") {
        assert_eq!(chain["confirmed"], 200, "{chain}");
        assert_eq!(chain["left"], 0, "{chain}");
        assert_eq!(chain["transactions"], 200, "{chain}");
    }
    for (anvil, receiver) in &net.dests {
        let total = view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await;
        assert_eq!(total, U256::from(200), "chain {}", anvil.chain_id());
        for h in [0u64, 99, 199] {
            let n = view_u256(anvil, *receiver, IBatchReceiver::recordedCountCall { height: h }.abi_encode())
                .await;
            assert_eq!(n, U256::from(1), "height {h} on chain {}", anvil.chain_id());
        }
    }

    // Again: nothing new to send, nothing sent.
    let (out, report) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(report["chains"].as_array().expect("chains").iter().all(|c| c["transactions"] == 0), "{report}");
    for (anvil, receiver) in &net.dests {
        let total = view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await;
        assert_eq!(total, U256::from(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_there_is_skipped_and_a_dry_run_sends_nothing() {
    let net = Net::start(1).await;
    let (anvil, receiver) = &net.dests[0];
    // Heights 0 and 1 are on the destination already.
    anvil
        .send(*receiver, IBatchReceiver::postBatchCall { height: 0, root: [1u8; 32].into() }.abi_encode())
        .await;
    anvil
        .send(*receiver, IBatchReceiver::postBatchCall { height: 1, root: [1u8; 32].into() }.abi_encode())
        .await;
    net.emit(0, 4).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(
        dir.path(),
        "function postBatch(uint64 height, bytes32 root)",
        "    already_done:\n      revert_errors: [\"error BatchAlreadyExists(uint64 height)\"]\n",
        None,
    );

    let (out, report) = push(dir.path(), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(report["chains"][0]["transactions"], 0);
    let posted = || view_u256(anvil, *receiver, IBatchReceiver::postedCountCall {}.abi_encode());
    assert_eq!(posted().await, U256::from(2), "a dry run sends nothing");

    let (out, report) = push(dir.path(), &[]);
    // 0 and 1 revert with the configured BatchAlreadyExists in simulation: skipped, not sent.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let chain = &report["chains"][0];
    assert_eq!((chain["skipped"].clone(), chain["confirmed"].clone()), (2.into(), 2.into()), "{chain}");
    assert_eq!(posted().await, U256::from(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_destination_does_not_hold_up_the_others_and_push_exits_4_naming_it() {
    let net = Net::start(2).await;
    net.emit(0, 20).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", Some(1));
    let started = std::time::Instant::now();
    let out = run(dir.path(), &["push", "--json", "--timeout", "15s"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
    let chains = report["chains"].as_array().expect("chains");
    let healthy = chains.iter().find(|c| c["chain"] == "d0").expect("d0");
    assert_eq!(healthy["confirmed"], 20, "{healthy}");
    let dead = chains.iter().find(|c| c["chain"] == "d1").expect("d1");
    assert!(dead["problem"].as_str().is_some_and(|p| !p.is_empty()), "{dead}");
    assert!(text(&out).contains("d1"), "the dead chain is named");
    let (anvil, receiver) = &net.dests[0];
    assert_eq!(
        view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await,
        U256::from(20)
    );
}

//! Delivery through the real binary: a source chain emitting batches and three destination anvils
//! with a receiver that accepts repeats, so that every transaction ferry makes is counted.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;
use serde_json::Value;

use crate::support::command::{ferry_command, run};
use crate::support::devnet::{Anvil, DEV_ADDRESSES, IBatchReceiver, IEventEmitter};
use crate::support::output::{json_or_null, text};
use crate::support::process::KillOnDrop;

pub(crate) struct Net {
    pub(crate) source: Anvil,
    pub(crate) emitter: Address,
    pub(crate) dests: Vec<(Anvil, Address)>,
}

/// What [`Net::yaml`] writes: the target's function (and already-done lines), which
/// destinations (all when `None`), per-destination (url, request timeout) overrides, and lines
/// appended to the route.
pub(crate) struct Yaml<'a> {
    pub function: &'a str,
    pub already_done: &'a str,
    pub dests: Option<&'a [usize]>,
    pub urls: &'a [(usize, String, &'a str)],
    pub route: &'a str,
}

impl Default for Yaml<'_> {
    fn default() -> Self {
        Yaml { function: RECORD_FN, already_done: "", dests: None, urls: &[], route: "" }
    }
}

/// The receiver's `record`, which takes every height (the reload, stop and metrics tests).
pub(crate) const RECORD_FN: &str = "function record(uint64 height, bytes32 root)";

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
    pub(crate) fn write_config(
        &self,
        dir: &Path,
        function: &str,
        already_done: &str,
        dead_url_for: Option<usize>,
    ) {
        let urls: Vec<(usize, String, &str)> =
            dead_url_for.map(|i| (i, "http://127.0.0.1:9".to_string(), "2s")).into_iter().collect();
        let yaml = self.yaml(&Yaml { function, already_done, urls: &urls, ..Yaml::default() });
        std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
    }

    /// The text of a config routing BatchReady events to one `evm-call` target on the chosen
    /// destinations, the one builder the delivery, reload, stop and metrics tests share.
    pub(crate) fn yaml(&self, spec: &Yaml<'_>) -> String {
        let mut yaml = format!(
            "chains:\n  src:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 1\n    poll_interval: 200ms\n",
            self.source.url()
        );
        let mut targets = String::new();
        for (i, (anvil, receiver)) in self.dests.iter().enumerate() {
            if spec.dests.is_some_and(|only| !only.contains(&i)) {
                continue;
            }
            let (url, timeout) = match spec.urls.iter().find(|(j, _, _)| *j == i) {
                Some((_, url, timeout)) => (url.clone(), *timeout),
                None => (anvil.url(), "2s"),
            };
            yaml.push_str(&format!(
                "  d{i}:\n    chain_id: {}\n    rpc: [\"{url}\"]\n    confirmations: 1\n    poll_interval: 200ms\n    request_timeout: {timeout}\n    signer: {{ key_env: FERRY_TEST_SIGNER }}\n",
                anvil.chain_id()
            ));
            targets.push_str(&format!("      d{i}: \"{}\"\n", receiver.to_checksum(None)));
        }
        yaml.push_str(&format!(
            "sources:\n  batches:\n    kind: evm\n    chain: src\n    contracts:\n      - address: \"{}\"\n        events: [\"event BatchReady(uint64 indexed height, bytes32 root)\"]\n",
            self.emitter.to_checksum(None)
        ));
        let (function, already_done) = (spec.function, spec.already_done);
        yaml.push_str(&format!(
            "targets:\n  receiver:\n    kind: evm-call\n    function: {function}\n    args:\n      height: {{ field: height }}\n      root: {{ field: root }}\n{already_done}    chains:\n{targets}"
        ));
        yaml.push_str("routes:\n  - source: batches\n    targets: [receiver]\n");
        if !spec.route.is_empty() {
            yaml.push_str(&format!("    {}\n", spec.route));
        }
        yaml
    }

    /// d0 holds heights 0 and 1 already, posted by hand; heights 0..3 are emitted and the config
    /// posts them with `postBatch`, whose simulation reverts for those two: two deliveries that
    /// fail for good and one that lands, for the operator's tests.
    pub(crate) async fn two_posted_by_hand(&self, dir: &Path) {
        let (anvil, receiver) = &self.dests[0];
        for h in 0..2u64 {
            anvil
                .send(
                    *receiver,
                    IBatchReceiver::postBatchCall { height: h, root: [1u8; 32].into() }.abi_encode(),
                )
                .await;
        }
        self.emit(0, 3).await;
        self.write_config(
            dir,
            "function postBatch(uint64 height, bytes32 root)",
            "    errors: [\"error BatchAlreadyExists(uint64 height)\"]\n",
            None,
        );
    }

    pub(crate) async fn emit(&self, from: u64, n: u64) {
        self.source.send(self.emitter, IEventEmitter::emitBatchesCall { from, n }.abi_encode()).await;
        self.source.mine(1).await;
    }
}

/// Mines a block on each node every `every` while alive, as a real chain keeps making blocks.
/// anvil's automine alone can leave a transaction queued behind the one being mined as it
/// arrived, with every later nonce waiting on it until some new transaction comes (under a loaded
/// machine, about one push in four); a real chain's next block takes it.
pub(crate) struct Miner(tokio::task::JoinHandle<()>);

impl Miner {
    pub(crate) fn start(urls: Vec<String>, every: std::time::Duration) -> Miner {
        Miner(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let body = r#"{"jsonrpc":"2.0","id":1,"method":"anvil_mine","params":["0x1"]}"#;
            loop {
                tokio::time::sleep(every).await;
                for url in &urls {
                    let request = client.post(url).header("content-type", "application/json").body(body);
                    let _ = request.send().await;
                }
            }
        }))
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.0.abort();
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
    let report = json_or_null(&out);
    (out, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_items_reach_three_chains_exactly_once() {
    let net = Net::start(3).await;
    net.emit(0, 200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let _miner = Miner::start(
        net.dests.iter().map(|(anvil, _)| anvil.url()).collect(),
        std::time::Duration::from_millis(500),
    );

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
    let report: Value = json_or_null(&out);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
    let chains = report["chains"].as_array().expect("chains");
    let healthy = chains.iter().find(|c| c["chain"] == "d0").expect("d0");
    assert_eq!(healthy["confirmed"], 20, "{healthy}");
    let dead = chains.iter().find(|c| c["chain"] == "d1").expect("d1");
    assert_eq!(dead["problem"]["code"], "rpc_failing", "{dead}");
    assert!(dead["problem"]["message"].as_str().is_some_and(|p| !p.is_empty()), "{dead}");
    assert!(text(&out).contains("d1"), "the dead chain is named");
    let (anvil, receiver) = &net.dests[0];
    assert_eq!(
        view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await,
        U256::from(20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_with_deliver_leaves_the_range_ingested_and_delivered() {
    let net = Net::start(1).await;
    net.emit(0, 6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let out = run(dir.path(), &["backfill", "--from", "0", "--to", "latest", "--deliver", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json_or_null(&out);
    assert_eq!(report["deliveries"][0]["confirmed"], 6, "{report}");
    let (anvil, receiver) = &net.dests[0];
    assert_eq!(
        view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await,
        U256::from(6)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_new_items_as_they_come() {
    let net = Net::start(2).await;
    net.emit(0, 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path()).args(["watch"]).stdout(Stdio::null()).stderr(Stdio::null()),
    );
    let total = async |i: usize| {
        let (anvil, receiver) = &net.dests[i];
        view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    let mut emitted = false;
    loop {
        let (a, b) = (total(0).await, total(1).await);
        if a == U256::from(8) && b == U256::from(8) {
            break;
        }
        if !emitted && a == U256::from(3) && b == U256::from(3) {
            // The backlog is out; new items while watch runs.
            net.emit(3, 5).await;
            emitted = true;
        }
        // The source needs a block on top for its one confirmation.
        net.source.mine(1).await;
        assert!(std::time::Instant::now() < deadline, "watch delivered {a} and {b} of 8");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch exits within 20s of SIGINT");
    assert_eq!(status.code(), Some(130));
    for i in 0..2 {
        let (anvil, receiver) = &net.dests[i];
        for h in 0..8u64 {
            let n = view_u256(anvil, *receiver, IBatchReceiver::recordedCountCall { height: h }.abi_encode())
                .await;
            assert_eq!(n, U256::from(1), "height {h} on chain {}", anvil.chain_id());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_retries_and_skips_failed_deliveries_and_is_refused_without_yes() {
    let net = Net::start(1).await;
    // Heights 0 and 1 are there already; without `BatchAlreadyExists` declared as "already
    // there", their simulation reverts: failed for good, with the decoded reason.
    let dir = tempfile::tempdir().expect("tempdir");
    net.two_posted_by_hand(dir.path()).await;
    let (out, report) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(report["chains"][0]["failed"], 2, "{report}");

    let listed = run(dir.path(), &["inspect-store", "deliveries", "--state", "failed", "--json"]);
    let rows: Value = json_or_null(&listed)["deliveries"].clone();
    let ids: Vec<String> =
        rows.as_array().expect("rows").iter().map(|r| r["id"].as_str().expect("id").to_string()).collect();
    assert_eq!(ids.len(), 2, "{rows}");
    assert!(
        rows.to_string().contains("reverted: BatchAlreadyExists(0)"),
        "the decoded reason is kept: {rows}"
    );

    // The menus need a terminal.
    let out = run(dir.path(), &["inspect-store", "manage"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("needs a terminal"), "{}", text(&out));
    // Not on a terminal and no --yes: refused, nothing changed.
    let out = run(dir.path(), &["inspect-store", "retry", &ids[0]]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    // A delivery that is not failed cannot be retried; the whole request is refused.
    let confirmed =
        json_or_null(&run(dir.path(), &["inspect-store", "deliveries", "--state", "confirmed", "--json"]));
    let confirmed_id = confirmed["deliveries"][0]["id"].as_str().expect("a confirmed delivery").to_string();
    let out = run(dir.path(), &["inspect-store", "retry", &ids[0], &confirmed_id, "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is confirmed"), "{}", text(&out));
    let out = run(dir.path(), &["inspect-store", "retry", "receiver/d0/ev:1:2", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "an id naming nothing: {}", text(&out));

    // Skip one, retry the other with "already there" declared now: it is skipped by the check.
    let out =
        run(dir.path(), &["inspect-store", "skip", &ids[1], "--reason", "posted by hand", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json_or_null(&out)["changed"][0]["to"], "skipped");
    let out = run(dir.path(), &["inspect-store", "retry", &ids[0], "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json_or_null(&out)["changed"][0]["to"], "pending");
    net.write_config(
        dir.path(),
        "function postBatch(uint64 height, bytes32 root)",
        "    already_done:\n      revert_errors: [\"error BatchAlreadyExists(uint64 height)\"]\n",
        None,
    );
    let (out, report) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let chain = &report["chains"][0];
    assert_eq!(
        (chain["skipped"].clone(), chain["failed"].clone(), chain["transactions"].clone()),
        (2.into(), 0.into(), 0.into()),
        "{chain}"
    );
    let all = json_or_null(&run(dir.path(), &["inspect-store", "deliveries", "--json"]));
    assert!(all.to_string().contains("skipped by the operator: posted by hand"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_signer_variable_is_a_config_error() {
    let net = Net::start(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let out = ferry_command(dir.path())
        .args(["push", "--no-sync"])
        .env_remove("FERRY_TEST_SIGNER")
        .output()
        .expect("ferry runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("FERRY_TEST_SIGNER"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_drops_what_no_node_holds_and_sends_it_again_once() {
    let net = Net::start(1).await;
    net.emit(0, 4).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let (anvil, receiver) = &net.dests[0];
    anvil.rpc("evm_setAutomine", serde_json::json!([false])).await;
    // Signed and sent, never mined: push gives up at its timeout with the four in flight.
    let out = run(dir.path(), &["push", "--json", "--timeout", "4s"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(json_or_null(&out)["chains"][0]["sent"], 4, "{}", text(&out));
    // The node forgets them, as a restarted node would.
    anvil.rpc("anvil_dropAllTransactions", serde_json::json!([])).await;

    let out = run(dir.path(), &["inspect-store", "resync", "--chain", "d0"]);
    assert_eq!(out.status.code(), Some(2), "asks first: {}", text(&out));
    let out = run(dir.path(), &["inspect-store", "resync", "--chain", "d0", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let resynced = json_or_null(&out);
    assert_eq!(resynced["dropped"], serde_json::json!([0, 1, 2, 3]), "{resynced}");
    assert_eq!((resynced["latest"].clone(), resynced["pending"].clone()), (0.into(), 0.into()), "{resynced}");
    let pending =
        json_or_null(&run(dir.path(), &["inspect-store", "deliveries", "--state", "pending", "--json"]));
    assert_eq!(pending["matched"], 4, "{pending}");

    anvil.rpc("evm_setAutomine", serde_json::json!([true])).await;
    let (out, report) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(report["chains"][0]["confirmed"], 4, "{report}");
    for h in 0..4u64 {
        let n =
            view_u256(anvil, *receiver, IBatchReceiver::recordedCountCall { height: h }.abi_encode()).await;
        assert_eq!(n, U256::from(1), "height {h}");
    }
    let latest = anvil.rpc("eth_getTransactionCount", serde_json::json!([DEV_ADDRESSES[1], "latest"])).await;
    assert_eq!(latest, "0x4", "nonces 0..4, no gap");
}

/// A source whose node is gone cannot be synced: push delivers what the store holds in the half
/// of `--timeout` the sync leaves, says what it could not sync and exits 4, even though every
/// chain has nothing left (the soak found a push that exited 0 after its sync timed out, and one
/// whose stuck sync left the deliveries no time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_cannot_be_synced_is_work_left_undone() {
    let net = Net::start(1).await;
    net.emit(0, 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let out = run(dir.path(), &["backfill", "--from", "0", "--to", "latest", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let config = dir.path().join("ferry.yaml");
    let yaml = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, yaml.replace(&net.source.url(), "http://127.0.0.1:9")).expect("config");

    let out = run(dir.path(), &["push", "--json", "--timeout", "5s"]);
    let report: Value = json_or_null(&out);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(report["synced"][0]["error"].is_string(), "{report}");
    assert_eq!(
        (report["chains"][0]["confirmed"].clone(), report["chains"][0]["left"].clone()),
        (3.into(), 0.into()),
        "{report}"
    );
    assert!(text(&out).contains("sources not synced to their safe head"), "{}", text(&out));
}

//! Sinks through the real binary: a source chain emitting Pings, routed to sink targets served by
//! real receivers (the test webhook receiver, real `redis-server` and `nats-server -js`, the
//! Pub/Sub test endpoint, a JSONL file). Each checks what arrived against the keys ferry must
//! have handed over: every item's idempotency key, exactly once where the sink allows it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use alloy::sol_types::SolCall;
use serde_json::Value;

use crate::support::command::ferry_command;
use crate::support::devnet::{Anvil, IEventEmitter};
use crate::support::output::{json_or_null, text};
use crate::support::process::KillOnDrop;
use crate::support::webhook::{Mode, WebhookReceiver};

pub(crate) const SECRET: &str = "sink-test-webhook-secret";

/// A source chain with an emitter of Pings, and the keys of what it emitted.
pub(crate) struct Source {
    pub(crate) anvil: Anvil,
    pub(crate) emitter: Address,
    /// `ev:<chain>:<block>:<log>` of every Ping emitted, in order.
    pub(crate) items: Vec<String>,
}

impl Source {
    pub(crate) async fn start() -> Source {
        let anvil = Anvil::start(31337).await;
        let emitter = anvil.deploy("EventEmitter", &[]).await;
        Source { anvil, emitter, items: Vec::new() }
    }

    /// Emits `n` Pings in one transaction and mines a block on top (the source's one confirmation).
    pub(crate) async fn emit(&mut self, n: u64) {
        let receipt = self
            .anvil
            .send(
                self.emitter,
                IEventEmitter::emitManyCall { n: alloy::primitives::U256::from(n) }.abi_encode(),
            )
            .await;
        let block = receipt["blockNumber"]
            .as_str()
            .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
            .expect("block number");
        let logs = receipt["logs"].as_array().expect("logs");
        for log in logs {
            let index = log["logIndex"]
                .as_str()
                .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
                .expect("log index");
            self.items.push(format!("ev:31337:{block}:{index}"));
        }
        self.anvil.mine(1).await;
    }

    /// A config with this source routed to `targets` (YAML of the `targets:` map, indented by two).
    pub(crate) fn write_config(&self, dir: &Path, targets: &str) {
        let names: Vec<&str> = targets
            .lines()
            .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':'))
            .map(|l| l.trim().trim_end_matches(':'))
            .collect();
        let yaml = format!(
            "chains:\n  src:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 1\n    poll_interval: 200ms\n\
             sources:\n  pings:\n    kind: evm\n    chain: src\n    contracts:\n      - address: \"{}\"\n        events: [\"event Ping(uint256 indexed seq, address indexed from, bytes32 data)\"]\n\
             targets:\n{targets}\
             routes:\n  - source: pings\n    targets: [{}]\n",
            self.anvil.url(),
            self.emitter.to_checksum(None),
            names.join(", ")
        );
        std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
    }

    pub(crate) fn keys(&self, target: &str) -> Vec<String> {
        self.items.iter().map(|i| format!("{target}/{i}")).collect()
    }
}

/// `ferry ARGS…` with the webhook secret in its environment.
pub(crate) fn ferry(dir: &Path, args: &[&str]) -> std::process::Output {
    ferry_env(dir, args, &[])
}

/// [`ferry`] with more environment variables.
pub(crate) fn ferry_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    ferry_command(dir)
        .args(args)
        .env("WEBHOOK_SECRET", SECRET)
        .envs(env.iter().copied())
        .output()
        .expect("ferry runs")
}

pub(crate) fn webhook_target(name: &str, receiver: &WebhookReceiver, extra: &str) -> String {
    format!(
        "  {name}:\n    kind: webhook\n    url: \"{}\"\n    secret_env: WEBHOOK_SECRET\n    timeout: 2s\n{extra}",
        receiver.url()
    )
}

fn chain<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["chains"].as_array().and_then(|c| c.iter().find(|c| c["chain"] == name)).unwrap_or(&Value::Null)
}

/// Keys the receiver accepted (2xx), with how often.
fn accepted(receiver: &WebhookReceiver) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in receiver.received() {
        *counts.entry(r.key.clone()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_every_item_once_and_a_refused_one_fails_until_the_operator_retries() {
    let mut source = Source::start().await;
    source.emit(40).await;
    let receiver = WebhookReceiver::start(Some(SECRET));
    let keys = source.keys("hook");
    let refused = keys[7].clone();
    receiver.set_mode_for_key(&refused, Mode::with_body(400, "no such escrow"));
    let dir = tempfile::tempdir().expect("tempdir");
    source.write_config(dir.path(), &webhook_target("hook", &receiver, ""));

    let out = ferry(dir.path(), &["push", "--json", "--timeout", "60s"]);
    let report = json_or_null(&out);
    assert_eq!(out.status.code(), Some(4), "a permanent failure is work left undone: {}", text(&out));
    let hook = chain(&report, "hook");
    assert_eq!((hook["confirmed"].as_u64(), hook["failed"].as_u64()), (Some(39), Some(1)), "{report}");
    let failures = hook["failures"].to_string();
    assert!(failures.contains(&refused) && failures.contains("HTTP 400: no such escrow"), "{failures}");

    // Every other key once, each body the documented message for its item, signed and verified.
    let got = accepted(&receiver);
    for key in &keys {
        let want = usize::from(key != &refused);
        assert_eq!(got.get(key).copied().unwrap_or(0), want, "{key}");
    }
    for r in receiver.received() {
        let body = &r.body;
        assert_eq!(body["v"], 1);
        assert_eq!(body["key"].as_str(), Some(r.key.as_str()));
        assert_eq!(body["kind"], "event");
        assert_eq!(body["source"], "pings");
        assert_eq!(body["event"], "Ping");
        assert_eq!(format!("hook/{}", body["item"].as_str().unwrap_or_default()), r.key);
        assert!(body["fields"]["seq"].is_string(), "{body}");
    }

    // The refusal is in the store, permanent, with the status; the operator retries it.
    let id = refused.clone();
    let listed = ferry(
        dir.path(),
        &["inspect-store", "deliveries", "--target", "hook", "--state", "failed", "--json"],
    );
    let rows = json_or_null(&listed);
    let row = &rows["deliveries"][0];
    assert_eq!(row["id"].as_str(), Some(id.as_str()), "{rows}");
    assert_eq!(row["retryable"], false);
    assert!(row["reason"].as_str().is_some_and(|r| r.contains("HTTP 400")), "{row}");
    receiver.set_mode_for_key(&refused, Mode::Ok);
    let retried = ferry(dir.path(), &["inspect-store", "retry", &id, "--yes"]);
    assert_eq!(retried.status.code(), Some(0), "{}", text(&retried));
    let out = ferry(dir.path(), &["push", "--no-sync", "--json", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(accepted(&receiver).get(&refused).copied(), Some(1));
    let done = ferry(
        dir.path(),
        &["inspect-store", "deliveries", "--target", "hook", "--state", "confirmed", "--json"],
    );
    let rows = json_or_null(&done);
    assert_eq!(rows["deliveries"].as_array().map(Vec::len), Some(40), "{rows}");
    assert!(rows["deliveries"].as_array().into_iter().flatten().all(|r| r["ack"] == "HTTP 200"), "{rows}");
    // A second push has nothing to hand over.
    let before = receiver.requests().len();
    let out = ferry(dir.path(), &["push", "--no-sync", "--json", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(receiver.requests().len(), before);
}

/// A receiver answering 500 for a minute, then 200: `watch` keeps trying with backoff, nothing
/// fails for good, and every item arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_down_for_a_minute_then_back_gets_everything_and_nothing_fails_for_good() {
    let mut source = Source::start().await;
    let receiver = WebhookReceiver::start(Some(SECRET));
    receiver.set_mode(Mode::Status(500));
    let dir = tempfile::tempdir().expect("tempdir");
    source.write_config(dir.path(), &webhook_target("hook", &receiver, ""));
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path())
            .args(["watch"])
            .env("WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    source.emit(20).await;
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        source.anvil.mine(1).await;
    }
    let refused = receiver.requests().len();
    assert!(refused >= 20, "watch kept trying while the receiver failed: {refused} requests");
    assert!(receiver.received().is_empty());
    receiver.set_mode(Mode::Ok);
    let keys = source.keys("hook");
    let deadline = Instant::now() + Duration::from_secs(90);
    while accepted(&receiver).len() < keys.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} arrived after the receiver came back",
            accepted(&receiver).len(),
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch stops");
    assert_eq!(status.code(), Some(130), "{}", watch.read_stderr());
    let got = accepted(&receiver);
    for key in &keys {
        assert_eq!(got.get(key).copied(), Some(1), "{key}");
    }
    let failed = ferry(dir.path(), &["inspect-store", "deliveries", "--state", "failed", "--json"]);
    assert_eq!(json_or_null(&failed)["deliveries"].as_array().map(Vec::len), Some(0), "{}", text(&failed));
}

/// SEDA batches go to sinks too: each signed batch one JSONL line with the whole batch, next to
/// the Prover it is posted to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seda_batches_reach_a_jsonl_sink_whole_next_to_their_prover() {
    use crate::support::seda_net::{ConfigOpts, SedaNet};
    let net = SedaNet::start(4, 1).await;
    net.api.produce(6);
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let config = std::fs::read_to_string(dir.path().join("ferry.yaml")).expect("config");
    let config = config.replace(
        "routes:\n  - source: seda\n    targets: [provers]\n",
        "  archive:\n    kind: jsonl\n    path: batches.jsonl\nroutes:\n  - source: seda\n    targets: [provers, archive]\n",
    );
    std::fs::write(dir.path().join("ferry.yaml"), config).expect("config");
    let out = ferry(dir.path(), &["push", "--json", "--timeout", "90s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = std::fs::read_to_string(dir.path().join("batches.jsonl")).expect("the JSONL file");
    let batches: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(batches.len(), 6, "{lines}");
    for (i, b) in batches.iter().enumerate() {
        let n = i as u64 + 1;
        let signed = net.api.batch(n);
        assert_eq!(b["kind"], "batch");
        assert_eq!(b["source"], "seda");
        assert_eq!(b["batch"]["number"], n);
        assert_eq!(b["batch"]["batch_id"], signed.batch_id.to_string());
        assert_eq!(b["batch"]["validators"].as_array().map(Vec::len), Some(signed.validators.len()));
        assert_eq!(b["batch"]["signatures"].as_array().map(Vec::len), Some(signed.signatures.len()));
        assert!(
            b["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("archive/batch:") && k.ends_with(&format!(":{n}"))),
            "{b}"
        );
    }
}

/// `ordered: true`: one request at a time, in item order; an item the receiver refuses for a
/// while holds back the items after it, and they arrive in order once it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_webhook_receives_items_in_order_even_across_retries() {
    let mut source = Source::start().await;
    let receiver = WebhookReceiver::start(Some(SECRET));
    let dir = tempfile::tempdir().expect("tempdir");
    source.write_config(dir.path(), &webhook_target("hook", &receiver, "    ordered: true\n"));
    source.emit(12).await;
    let keys = source.keys("hook");
    receiver.set_mode_for_key(&keys[3], Mode::Status(503));
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path())
            .args(["watch"])
            .env("WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.requests().iter().filter(|r| r.key == keys[3]).count() < 2 {
        assert!(Instant::now() < deadline, "the refused item was not tried again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted(&receiver).len(), 3, "nothing after the refused item went out");
    receiver.set_mode_for_key(&keys[3], Mode::Ok);
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted(&receiver).len() < keys.len() {
        assert!(Instant::now() < deadline, "only {} of {} arrived", accepted(&receiver).len(), keys.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watch.signal("INT");
    watch.wait_within(Duration::from_secs(20)).await.expect("watch stops");
    let order: Vec<String> = receiver.received().into_iter().map(|r| r.key).collect();
    assert_eq!(order, keys, "received in item order, each once");
    assert_eq!(receiver.max_in_flight(), 1, "one request at a time");
}

/// logrotate: the JSONL file is renamed and `watch` gets SIGHUP; the next lines go to a new file
/// at the path, and the two files hold every item once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jsonl_file_rotated_under_watch_is_reopened_on_sighup_and_nothing_is_lost_or_doubled() {
    let mut source = Source::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    source.write_config(dir.path(), "  archive:\n    kind: jsonl\n    path: items.jsonl\n");
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path()).args(["watch"]).stdout(Stdio::null()).stderr(Stdio::piped()),
    );
    let path = dir.path().join("items.jsonl");
    let lines = |p: &Path| std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0);
    let wait_for = async |p: &Path, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while lines(p) < n {
            assert!(Instant::now() < deadline, "{} has {} of {n} lines", p.display(), lines(p));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    source.emit(30).await;
    wait_for(&path, 30).await;
    let rotated = dir.path().join("items.jsonl.1");
    std::fs::rename(&path, &rotated).expect("rotate");
    assert!(watch.signal("HUP"), "SIGHUP sent");
    source.emit(20).await;
    wait_for(&path, 20).await;
    assert!(watch.running(), "SIGHUP does not stop watch");
    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch stops");
    assert_eq!(status.code(), Some(130), "{}", watch.read_stderr());
    let mut seen: Vec<String> = Vec::new();
    for file in [&rotated, &path] {
        for line in std::fs::read_to_string(file).expect("a JSONL file").lines() {
            let v: Value = serde_json::from_str(line).expect("a whole JSON line");
            seen.push(v["key"].as_str().expect("a key").to_string());
        }
    }
    assert_eq!((lines(&rotated), lines(&path)), (30, 20));
    assert_eq!(seen, source.keys("archive"), "every item once, in order, across the two files");
}

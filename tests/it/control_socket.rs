//! Operator actions while `watch` runs: `inspect-store retry|skip|cancel` hand the action to the
//! running `watch` over its control socket (`<store>.sock`, owner-only), which carries it out
//! between its workers' rounds. A second `watch` is still refused; a socket left by a killed
//! `watch` does not stop the next one.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256, keccak256};
use alloy::sol_types::SolCall;
use serde_json::{Value, json};

use crate::deliver::{Miner, Net, view_u256};
use crate::support::command::{ferry_command, run};
use crate::support::devnet::{Anvil, IBatchReceiver};
use crate::support::output::{json_or_null, text};
use crate::support::process::KillOnDrop;

fn start_watch(dir: &Path, log: &str) -> KillOnDrop {
    let log = std::fs::File::create(dir.join(log)).expect("log file");
    KillOnDrop::spawn(ferry_command(dir).args(["watch"]).stdout(Stdio::null()).stderr(log))
}

fn watch_log(dir: &Path, log: &str) -> String {
    std::fs::read_to_string(dir.join(log)).unwrap_or_default()
}

/// The deliveries, in item order (the heights in order), as `inspect-store deliveries --json`;
/// none while `watch` is still creating the store.
fn deliveries(dir: &Path) -> Vec<Value> {
    let out = run(dir, &["inspect-store", "deliveries", "--json"]);
    json_or_null(&out)["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits (at most `limit`) until the deliveries' states are `want`, in item order.
async fn wait_for_states(dir: &Path, want: &[&str], limit: Duration, log: &str) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let rows = deliveries(dir);
        let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap_or("?")).collect();
        if states == want {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "states {states:?}, waiting for {want:?}\nrows: {rows:?}\nwatch: {}",
            watch_log(dir, log)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn id(row: &Value) -> String {
    row["id"].as_str().expect("an id").to_string()
}

/// `roots[height]` of the BatchReceiver (its third slot holds the mapping) set back to zero, as
/// if the batch had never been posted.
async fn forget_root(anvil: &Anvil, receiver: alloy::primitives::Address, height: u64) {
    let mut preimage = [0u8; 64];
    preimage[24..32].copy_from_slice(&height.to_be_bytes());
    preimage[63] = 2;
    let slot = keccak256(preimage);
    anvil.rpc("anvil_setStorageAt", json!([receiver, slot, B256::ZERO])).await;
}

fn operator(dir: &Path, args: &[&str]) -> Output {
    // No signer in the environment: the running watch has it, the command needs none.
    ferry_command(dir).args(args).env_remove("FERRY_TEST_SIGNER").output().expect("ferry runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_and_skip_reach_the_running_watch_over_an_owner_only_socket() {
    let net = Net::start(1).await;
    let (anvil, receiver) = (&net.dests[0].0, net.dests[0].1);
    let _miner = Miner::start(vec![net.source.url(), anvil.url()], Duration::from_millis(300));
    // Heights 0 and 1 are there already: their simulation reverts, failed for good.
    let dir = tempfile::tempdir().expect("tempdir");
    net.two_posted_by_hand(dir.path()).await;
    let log = "watch.log";
    let mut watch = start_watch(dir.path(), log);
    let rows =
        wait_for_states(dir.path(), &["failed", "failed", "confirmed"], Duration::from_secs(60), log).await;
    let (first, second) = (id(&rows[0]), id(&rows[1]));

    let socket = dir.path().join("ferry.redb.sock");
    let meta = std::fs::metadata(&socket).expect("watch listens on ferry.redb.sock");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");

    // Without the socket's help this was refused: the store is held.
    let out = run(dir.path(), &["push", "--no-sync"]);
    assert_eq!(out.status.code(), Some(5), "a second writer is refused as busy: {}", text(&out));
    let second_watch = run(dir.path(), &["watch"]);
    assert_eq!(
        second_watch.status.code(),
        Some(5),
        "a second watch is refused as busy: {}",
        text(&second_watch)
    );
    assert!(text(&second_watch).contains("held"), "{}", text(&second_watch));

    // The batch is no longer there: the retried delivery is sent again, by the running watch.
    forget_root(anvil, receiver, 0).await;
    let out = operator(dir.path(), &["inspect-store", "retry", &first, "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let changed = json_or_null(&out)["changed"].clone();
    assert_eq!(changed[0]["id"], first.as_str(), "{changed}");
    assert_eq!((changed[0]["from"].clone(), changed[0]["to"].clone()), ("failed".into(), "pending".into()));
    // The human table, as without a watch, for the refusal of what is not failed any more.
    let out = operator(dir.path(), &["inspect-store", "retry", &id(&rows[2]), "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nothing changed") && text(&out).contains("is confirmed"), "{}", text(&out));

    let out =
        operator(dir.path(), &["inspect-store", "skip", &second, "--reason", "posted by hand", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 changed") && text(&out).contains("skipped"), "{}", text(&out));

    let rows =
        wait_for_states(dir.path(), &["confirmed", "skipped", "confirmed"], Duration::from_secs(60), log)
            .await;
    assert!(rows[1]["reason"].as_str().is_some_and(|r| r.contains("posted by hand")), "{rows:?}");
    let root = view_u256(anvil, receiver, IBatchReceiver::getRootCall { height: 0 }.abi_encode()).await;
    assert_eq!(
        root,
        U256::from_be_bytes(keccak256(U256::ZERO.to_be_bytes::<32>()).0),
        "height 0 posted by ferry"
    );
    let posted = view_u256(anvil, receiver, IBatchReceiver::postedCountCall {}.abi_encode()).await;
    assert_eq!(posted, U256::from(4), "two by hand, height 2, and height 0 once again");
    assert!(watch_log(dir.path(), log).contains("operator action"), "{}", watch_log(dir.path(), log));

    // A killed watch leaves its socket behind; the next watch replaces it.
    watch.kill().expect("SIGKILL");
    watch.wait().expect("reaped");
    assert!(socket.exists(), "the socket is left behind");
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_err(), "nothing answers on it");
    let log = "watch2.log";
    let mut watch = start_watch(dir.path(), log);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !watch_log(dir.path(), log).contains("control socket listening") {
        assert!(watch.running(), "the next watch stopped: {}", watch_log(dir.path(), log));
        assert!(Instant::now() < deadline, "no new socket: {}", watch_log(dir.path(), log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        watch_log(dir.path(), log).contains("replacing a stale control socket"),
        "{}",
        watch_log(dir.path(), log)
    );
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok(), "the new watch answers");
    // A stop removes it.
    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch exits");
    assert_eq!(status.code(), Some(130), "{}", watch_log(dir.path(), log));
    assert!(!socket.exists(), "removed on a clean stop");

    // Without a watch the same commands act on the file, as before.
    let out = operator(dir.path(), &["inspect-store", "retry", &second, "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_runs_inside_the_chains_worker_of_the_running_watch() {
    let net = Net::start(1).await;
    let (anvil, receiver) = (&net.dests[0].0, net.dests[0].1);
    let _miner = Miner::start(vec![net.source.url()], Duration::from_millis(300));
    net.emit(0, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    // The destination does not mine: both transactions wait in its pool.
    anvil.rpc("evm_setAutomine", json!([false])).await;
    let log = "watch.log";
    let mut watch = start_watch(dir.path(), log);
    let rows = wait_for_states(dir.path(), &["sent", "sent"], Duration::from_secs(60), log).await;
    assert_eq!((rows[0]["nonce"].clone(), rows[1]["nonce"].clone()), (0.into(), 1.into()), "{rows:?}");

    let out = operator(
        dir.path(),
        &["inspect-store", "cancel", "--chain", "d0", "--nonce", "0", "--yes", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cancelled = json_or_null(&out);
    assert_eq!(cancelled["nonce"], 0, "{cancelled}");
    assert_eq!(cancelled["chain"], "d0", "{cancelled}");
    assert_eq!(cancelled["replaced_tx_hash"], rows[0]["tx_hash"], "{cancelled}");
    assert_eq!(cancelled["broadcast"], true, "{cancelled}");
    // Nothing to cancel on a chain this watch does not deliver to.
    let out = operator(dir.path(), &["inspect-store", "cancel", "--chain", "src", "--nonce", "0", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no delivery worker of chain `src`"), "{}", text(&out));

    // Mined now: the cancellation took nonce 0, the other delivery lands.
    let _dest_miner = Miner::start(vec![anvil.url()], Duration::from_millis(300));
    let rows = wait_for_states(dir.path(), &["failed", "confirmed"], Duration::from_secs(60), log).await;
    assert!(rows[0]["reason"].as_str().is_some_and(|r| r.contains("cancel")), "{rows:?}");
    for (h, want) in [(0u64, 0u64), (1, 1)] {
        let n =
            view_u256(anvil, receiver, IBatchReceiver::recordedCountCall { height: h }.abi_encode()).await;
        assert_eq!(n, U256::from(want), "height {h}");
    }
    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch exits");
    assert_eq!(status.code(), Some(130), "{}", watch_log(dir.path(), log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_in_the_running_watch_signs_the_dropped_nonces_again_without_a_gap() {
    let net = Net::start(1).await;
    let (anvil, receiver) = (&net.dests[0].0, net.dests[0].1);
    let _miner = Miner::start(vec![net.source.url()], Duration::from_millis(300));
    net.emit(0, 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    anvil.rpc("evm_setAutomine", json!([false])).await;
    let log = "watch.log";
    let started = Instant::now();
    let mut watch = start_watch(dir.path(), log);
    wait_for_states(dir.path(), &["sent", "sent", "sent"], Duration::from_secs(60), log).await;
    // The node forgets them, as a restarted node would.
    anvil.rpc("anvil_dropAllTransactions", json!([])).await;
    let out = operator(dir.path(), &["inspect-store", "resync", "--chain", "d0", "--yes", "--json"]);
    let resynced_at = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let resynced = json_or_null(&out);
    assert_eq!(
        (resynced["latest"].clone(), resynced["stored_next"].clone()),
        (0.into(), 3.into()),
        "{resynced}"
    );
    // The worker broadcasts unmined transactions again 10 s after it started; before that no
    // node holds them, and the resync drops all three.
    if resynced_at < Duration::from_secs(9) {
        assert_eq!(resynced["dropped"], json!([0, 1, 2]), "{resynced}");
    }

    // Signed again from the chain's nonce: each lands once, and nonces 0..3 leave no gap.
    let _dest_miner = Miner::start(vec![anvil.url()], Duration::from_millis(300));
    wait_for_states(dir.path(), &["confirmed", "confirmed", "confirmed"], Duration::from_secs(60), log).await;
    for h in 0..3u64 {
        let n =
            view_u256(anvil, receiver, IBatchReceiver::recordedCountCall { height: h }.abi_encode()).await;
        assert_eq!(n, U256::from(1), "height {h}");
    }
    let signer = crate::support::devnet::DEV_ADDRESSES[1];
    let latest = anvil.rpc("eth_getTransactionCount", json!([signer, "latest"])).await;
    assert_eq!(latest, "0x3", "nonces 0..3, no gap");
    assert!(
        watch_log(dir.path(), log).contains("next nonce after the resync"),
        "{}",
        watch_log(dir.path(), log)
    );
    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch exits");
    assert_eq!(status.code(), Some(130), "{}", watch_log(dir.path(), log));
}

/// A sink's deliveries are written by its worker, which trusts the state it read: a retry holds
/// that worker while it is written, then wakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sink_delivery_is_retried_by_the_running_watch() {
    use crate::sinks::{SECRET, Source, webhook_target};
    use crate::support::webhook::{Mode, WebhookReceiver};

    let mut source = Source::start().await;
    source.emit(5).await;
    let receiver = WebhookReceiver::start(Some(SECRET));
    let keys = source.keys("hook");
    let refused = keys[2].clone();
    receiver.set_mode_for_key(&refused, Mode::with_body(400, "not yet"));
    let dir = tempfile::tempdir().expect("tempdir");
    source.write_config(dir.path(), &webhook_target("hook", &receiver, ""));
    let log = std::fs::File::create(dir.path().join("watch.log")).expect("log file");
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path())
            .args(["watch"])
            .env("WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(log),
    );
    let log = "watch.log";
    let want = |refused_state: &'static str| {
        let mut states = vec!["confirmed"; 5];
        states[2] = refused_state;
        states
    };
    wait_for_states(dir.path(), &want("failed"), Duration::from_secs(60), log).await;

    receiver.set_mode_for_key(&refused, Mode::Ok);
    // The operator's shell has no webhook secret: the running watch has it.
    let out = operator(dir.path(), &["inspect-store", "retry", &refused, "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json_or_null(&out)["changed"][0]["to"], "pending", "{}", text(&out));
    wait_for_states(dir.path(), &want("confirmed"), Duration::from_secs(60), log).await;
    let accepted = receiver.received().iter().filter(|r| r.key == refused).count();
    assert_eq!(accepted, 1, "handed over once, after the retry");
    for key in &keys {
        assert_eq!(receiver.received().iter().filter(|r| &r.key == key).count(), 1, "{key}");
    }
    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch exits");
    assert_eq!(status.code(), Some(130), "{}", watch_log(dir.path(), log));
}
